"""Delivery guarantees and durability profiles of stream queries: the ordered guarantee, the
capability flags, the weakest-link rule, profile selection (fail closed), what progress,
explain and ``StreamingQuery.delivery`` report, the guarantee matrix page and its evidence,
and crash tests behind the certified at-least-once paths."""
from __future__ import annotations

import collections
import csv
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria import Session
from velaria.errors import VelariaValueError
from velaria.stream import Capabilities, DeliveryGuarantee, StreamSink, StreamSource
from velaria.stream import delivery as D
from velaria.stream import delivery_matrix as M
from velaria.stream.sinks import ConsoleStreamSink, CsvFileStreamSink, MemoryStreamSink, QueueStreamSink
from velaria.stream.sources import ArrowStreamSource, CsvDirectorySource, QueueStreamSource

ROOT = Path(__file__).resolve().parent.parent
BE, ALO, EFF, EXO = (DeliveryGuarantee.BEST_EFFORT, DeliveryGuarantee.AT_LEAST_ONCE,
                     DeliveryGuarantee.EFFECTIVELY_ONCE, DeliveryGuarantee.EXACTLY_ONCE)
DEV, DURABLE = D.PROFILES["dev-local"], D.PROFILES["single-node-durable"]


@pytest.fixture(autouse=True)
def _no_profile_env(monkeypatch):
    monkeypatch.delenv(D.PROFILE_ENV, raising=False)


# ------------------------------------------------------------------------------ the vocabulary
def test_guarantees_are_ordered_weakest_first_with_kebab_labels():
    assert BE < ALO < EFF < EXO
    assert [g.label for g in DeliveryGuarantee] == ["best-effort", "at-least-once", "effectively-once",
                                                    "exactly-once"]
    assert str(EFF) == "effectively-once" and min(EXO, ALO, EFF) is ALO
    assert all(DeliveryGuarantee.parse(g.label) is g for g in DeliveryGuarantee)
    with pytest.raises(VelariaValueError, match="unknown delivery guarantee 'once'; use one of best-effort"):
        DeliveryGuarantee.parse("once")


def test_two_phase_needs_transactional_and_checkpointable():
    for kw in ({"two_phase": True}, {"two_phase": True, "transactional": True},
               {"two_phase": True, "checkpointable": True}):
        with pytest.raises(ValueError, match=r"two_phase=True\) also needs transactional=True and checkpointable=True"):
            Capabilities(**kw)
    assert Capabilities(two_phase=True, transactional=True, checkpointable=True).guarantee() is EXO


def test_capability_flags_must_be_bools():
    with pytest.raises(TypeError, match="Capabilities.rewindable must be a bool, got int"):
        Capabilities(rewindable=1)


def _all_capabilities():
    names = [f.name for f in fields(Capabilities)]
    for bits in itertools.product((False, True), repeat=len(names)):
        kw = dict(zip(names, bits))
        if kw["two_phase"] and not (kw["transactional"] and kw["checkpointable"]):
            continue
        yield Capabilities(**kw)


def test_the_capability_ladder_is_conservative():
    seen = collections.Counter()
    for c in _all_capabilities():
        g = c.guarantee()
        seen[g] += 1
        if g is EXO:
            assert c.two_phase and c.transactional and c.checkpointable
        elif g is EFF:
            assert c.idempotent_keyed and not c.two_phase
        elif g is ALO:
            assert (c.rewindable or c.checkpointable) and not (c.idempotent_keyed or c.two_phase)
        else:
            assert not (c.rewindable or c.checkpointable or c.idempotent_keyed)
        # bounded, transactional alone and resumable_flush never raise the rung
        assert Capabilities(**{**c.__dict__, "bounded": False, "resumable_flush": False}).guarantee() is g
    assert set(seen) == set(DeliveryGuarantee)


# ------------------------------------------------------------------------------ the weakest-link rule
def _oracle(src, sink, path, mode, profile, offsets_in_tx):
    """The rule written out link by link, independently of the implementation."""
    source_cap = EXO if (src.rewindable or src.checkpointable) else BE
    if sink is None:
        sink_cap = ALO
    elif sink.two_phase:
        sink_cap = EXO if offsets_in_tx else EFF
    elif sink.idempotent_keyed:
        sink_cap = EFF
    elif sink.rewindable or sink.checkpointable:
        sink_cap = ALO
    else:
        sink_cap = BE
    checkpoint_cap = EXO if (path and mode == "at-least-once") else BE
    profile_cap = EXO if profile.restart_durable else BE
    caps = {"source": source_cap, "sink": sink_cap, "checkpoint": checkpoint_cap, "profile": profile_cap}
    eff = min(caps.values())
    return eff, tuple(k for k in D.LINKS if caps[k] == eff and eff < EXO)


_caps = st.sampled_from(list(_all_capabilities()))


@settings(max_examples=300, deadline=None)
@given(src=_caps, sink=st.one_of(st.none(), _caps), path=st.sampled_from(["", "/ck"]),
       mode=st.sampled_from(["at-least-once", "best-effort"]), profile=st.sampled_from([DEV, DURABLE]),
       offsets=st.booleans())
def test_effective_guarantee_is_the_weakest_link(src, sink, path, mode, profile, offsets):
    g, limited_by, reasons = D.effective_guarantee(src, sink, D.CheckpointLink(path, mode), profile,
                                                   offsets_in_sink_transaction=offsets)
    assert (g, limited_by) == _oracle(src, sink, path, mode, profile, offsets)
    assert len(reasons) == len(limited_by) and all(isinstance(r, str) and r for r in reasons)
    assert bool(limited_by) == (g < EXO)
    # weakening one link never strengthens the result
    weaker_source = Capabilities(bounded=src.bounded)
    assert D.effective_guarantee(weaker_source, sink, D.CheckpointLink(path, mode), profile,
                                 offsets_in_sink_transaction=offsets)[0] <= g
    assert D.effective_guarantee(src, sink, D.CheckpointLink("", mode), profile,
                                 offsets_in_sink_transaction=offsets)[0] <= g


def test_a_transactional_sink_without_offsets_in_its_transaction_is_effectively_once():
    tx = Capabilities(two_phase=True, transactional=True, checkpointable=True)
    rewind = Capabilities(rewindable=True)
    ck = D.CheckpointLink("/ck", "at-least-once")
    g, by, reasons = D.effective_guarantee(rewind, tx, ck, DURABLE, sink_name="tx")
    assert (g, by) == (EFF, ("sink",))
    assert "the source offsets live in the checkpoint file, not in the sink's transaction" in reasons[0]
    assert D.effective_guarantee(rewind, tx, ck, DURABLE, offsets_in_sink_transaction=True)[:2] == (EXO, ())


# ------------------------------------------------------------------------------ built-in and user endpoints
def test_built_in_sources_and_sinks_declare_honest_capabilities(tmp_path):
    assert ArrowStreamSource([]).capabilities() == Capabilities(bounded=True, rewindable=True, checkpointable=True)
    assert CsvDirectorySource(str(tmp_path)).capabilities() == Capabilities(rewindable=True, checkpointable=True)
    assert QueueStreamSource(["a"]).capabilities() == Capabilities()
    assert CsvFileStreamSink(str(tmp_path / "o.csv")).capabilities().guarantee() is ALO
    assert ConsoleStreamSink().capabilities().guarantee() is ALO
    assert QueueStreamSink().capabilities().guarantee() is BE
    assert MemoryStreamSink().capabilities().guarantee() is BE


class _Rows(StreamSource):
    def __init__(self, batches):
        super().__init__()
        self.batches, self.i = list(batches), 0

    def _do_open(self, context):
        self.i = 0

    def _do_next_batch(self, pull):
        self.i += 1
        return self.batches[self.i - 1] if self.i <= len(self.batches) else None

    def offset(self):
        return str(self.i)

    def schema(self):
        return self.batches[0].schema


class _RewindableRows(_Rows):
    def capabilities(self):
        return Capabilities(bounded=True, rewindable=True)


class _Upserts(StreamSink):
    def __init__(self):
        super().__init__()
        self.by_key = {}

    def _do_write(self, batch):
        for row in batch.to_pylist():
            self.by_key[row["k"]] = row

    def name(self):
        return "upsert"

    def capabilities(self):
        return Capabilities(idempotent_keyed=True, checkpointable=True)


class _Liar(StreamSink):
    def _do_write(self, batch):
        pass

    def capabilities(self):
        return "exactly-once"


def _table():
    return pa.table({"k": ["a", "b", "a", "c"], "v": [1, 2, 3, 4]})


def test_user_endpoints_default_conservatively_and_may_override(tmp_path):
    s = Session()
    batches = _table().to_batches(max_chunksize=2)
    q = s.create_stream_from_source(_Rows(batches)).write_stream_sink(_Upserts(), trigger_interval_ms=0,
                                                                        checkpoint_path=str(tmp_path / "ck"),
                                                                        durability_profile="single-node-durable")
    assert (q.delivery["effective"], q.delivery["limited_by"]) == ("best-effort", "source")
    sink = _Upserts()
    q = s.create_stream_from_source(_RewindableRows(batches)).write_stream_sink(
        sink, trigger_interval_ms=0, checkpoint_path=str(tmp_path / "ck2"), durability_profile="single-node-durable")
    assert q.delivery["sink_guarantee"] == "effectively-once"
    assert (q.delivery["effective"], q.delivery["limited_by"]) == ("effectively-once", "sink")
    q.start()
    q.await_termination()
    assert q.progress()["delivery_guarantee"] == "effectively-once"
    assert sink.by_key["a"]["v"] == 3


def test_capabilities_must_return_a_capabilities_object():
    s = Session()
    with pytest.raises(TypeError, match=r"_Liar.capabilities\(\) must return velaria.stream.Capabilities, got str"):
        s.create_stream_from_arrow(_table()).write_stream_sink(_Liar())


# ------------------------------------------------------------------------------ durability profiles
def test_profile_specs_are_frozen_and_say_what_each_promises():
    assert DEV.restart_durable is False and DEV.checkpoint_storage == "ephemeral" and DEV.state_store == "memory"
    assert DURABLE.restart_durable and DURABLE.checkpoint_storage == "local-file" and not DURABLE.multi_node_safe
    with pytest.raises(AttributeError):
        DEV.restart_durable = True


def test_profile_comes_from_the_option_then_the_environment_then_the_default(monkeypatch):
    assert D.resolve_profile() is DEV
    monkeypatch.setenv(D.PROFILE_ENV, "")
    assert D.resolve_profile() is DEV
    monkeypatch.setenv(D.PROFILE_ENV, "single-node-durable")
    assert D.resolve_profile() is DURABLE
    assert D.resolve_profile("dev-local") is DEV
    s = Session()
    q = s.create_stream_from_arrow(_table()).write_stream_queue_sink(s.create_realtime_stream_sink(),
                                                                      checkpoint_path="/nonexistent/ck")
    assert q.progress()["durability_profile"] == "single-node-durable"


@pytest.mark.parametrize("value, message", [
    ("foo", "unknown durability_profile 'foo'; valid profiles: dev-local, single-node-durable"),
    ("Dev-Local", "unknown durability_profile 'Dev-Local'"),
    ("distributed-durable", "durability_profile='distributed-durable' is not available: it needs a distributed "
                            "state and checkpoint backend"),
])
def test_unknown_or_reserved_profiles_fail_closed(value, message):
    s = Session()
    frame = s.create_stream_from_arrow(_table())
    with pytest.raises(VelariaValueError, match=message):
        frame.write_stream_csv("/tmp/never.csv", durability_profile=value)
    s.create_temp_view("ev", frame)
    with pytest.raises(ValueError, match=message):
        s.explain_stream_sql("SELECT k FROM ev", durability_profile=value)


def test_an_unknown_profile_in_the_environment_fails_closed(monkeypatch):
    monkeypatch.setenv(D.PROFILE_ENV, "durable")
    s = Session()
    with pytest.raises(VelariaValueError, match=r"unknown \$VELARIA_DURABILITY_PROFILE 'durable'"):
        s.create_stream_from_arrow(_table()).write_stream_console()


def test_a_profile_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="durability_profile must be a str, got int"):
        Session().create_stream_from_arrow(_table()).write_stream_console(durability_profile=1)


def test_single_node_durable_without_checkpoint_path_refuses_to_start(tmp_path):
    s = Session()
    msg = ("durability_profile='single-node-durable' needs a durable checkpoint but the query has no "
           "checkpoint_path; pass checkpoint_path='<file>'")
    q = s.create_stream_from_arrow(_table()).write_stream_csv(str(tmp_path / "o.csv"),
                                                              durability_profile="single-node-durable")
    with pytest.raises(VelariaValueError, match=msg):
        q.start()
    with pytest.raises(VelariaValueError, match=msg):
        q.await_termination()
    assert q.progress()["status"] == "created" and not (tmp_path / "o.csv").exists()
    s.create_temp_view("ev", s.create_stream_from_arrow(_table()))
    s.sql(f"CREATE SINK TABLE o (k TEXT, v BIGINT) USING csv OPTIONS(path: '{tmp_path / 'o2.csv'}')")
    with pytest.raises(VelariaValueError, match=msg):
        s.start_stream_sql("INSERT INTO o SELECT k, v FROM ev", durability_profile="single-node-durable")


# ------------------------------------------------------------------------------ what queries report
VIEW_KEYS = ["source", "sink", "sink_guarantee", "checkpoint", "profile", "source_offsets_in_sink_transaction",
             "effective", "limited_by", "reasons"]


def test_progress_snapshot_explain_and_delivery_agree(tmp_path):
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_table().to_batches(max_chunksize=2)))
    s.sql(f"CREATE SINK TABLE o (k TEXT, v BIGINT) USING csv OPTIONS(path: '{tmp_path / 'o.csv'}')")
    sql = "INSERT INTO o SELECT k, v FROM ev"
    opts = {"trigger_interval_ms": 0, "checkpoint_path": str(tmp_path / "ck"), "durability_profile": "single-node-durable"}
    explained = s.explain_stream_sql(sql, **opts)
    q = s.start_stream_sql(sql, **opts)
    q.await_termination()
    p, snap, view = q.progress(), json.loads(q.snapshot_json()), q.delivery
    assert list(view) == VIEW_KEYS
    assert view == {"source": "memory", "sink": "file_append", "sink_guarantee": "at-least-once",
                    "checkpoint": "local-file:at-least-once", "profile": "single-node-durable",
                    "source_offsets_in_sink_transaction": False, "effective": "at-least-once", "limited_by": "sink",
                    "reasons": ["sink file_append appends: a replay after a crash writes rows again"]}
    for key, vkey in (("delivery_guarantee", "effective"), ("delivery_guarantee_limited_by", "limited_by"),
                      ("durability_profile", "profile")):
        assert p[key] == snap[key] == view[vkey]
        assert f"\n{key}={view[vkey]}\n" in explained
        assert f"\n{key}={view[vkey]}\n" in q.explain()
    assert p["checkpoint_delivery_mode"] == "at-least-once"      # the contract field keeps its two values


def test_the_default_query_reports_best_effort_and_why():
    s = Session()
    q = s.create_stream_from_arrow(_table()).write_stream_console()
    p = q.progress()
    assert (p["durability_profile"], p["delivery_guarantee"], p["delivery_guarantee_limited_by"]) == \
           ("dev-local", "best-effort", "checkpoint,profile")
    assert q.delivery["checkpoint"] == "none"
    assert q.delivery["reasons"] == [
        "no checkpoint_path: nothing records what was delivered across a restart",
        "durability profile dev-local promises nothing across a process restart (choose single-node-durable "
        "with a checkpoint_path)"]


def test_explain_of_a_select_without_a_sink_caps_at_at_least_once(tmp_path):
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_table()))
    text = s.explain_stream_sql("SELECT k, v FROM ev", checkpoint_path=str(tmp_path / "ck"),
                                durability_profile="single-node-durable")
    assert text.endswith("durability_profile=single-node-durable\ndelivery_guarantee=at-least-once\n"
                         "delivery_guarantee_limited_by=sink\n")


# ------------------------------------------------------------------------------ the matrix of claimed paths
def _make_source(s, kind, tmp_path):
    if kind == "arrow":
        return s.create_stream_from_arrow(_table())
    if kind == "csv-dir":
        d = tmp_path / "in"
        d.mkdir(exist_ok=True)
        (d / "part-000.csv").write_text("k,v\na,1\n")
        return s.read_stream_csv_dir(str(d))
    src = s.create_realtime_stream_source(["k", "v"])
    src.push_rows([("a", 1)])
    return s.read_realtime_stream_source(src)


def _make_query(s, frame, row, tmp_path):
    opts = {"trigger_interval_ms": 0, "durability_profile": row.profile}
    if row.checkpoint != "none":
        opts.update(checkpoint_path=str(tmp_path / "ck"), checkpoint_delivery_mode=row.checkpoint)
    if row.sink == "realtime-queue":
        return frame.write_stream_queue_sink(s.create_realtime_stream_sink(), **opts)
    if row.sink == "console":
        return frame.write_stream_sink(ConsoleStreamSink(out=io.StringIO()), **opts)
    s.create_temp_view("src", frame)
    s.sql(f"CREATE SINK TABLE out (k TEXT, v BIGINT) USING csv OPTIONS(path: '{tmp_path / 'out.csv'}')")
    return s.start_stream_sql("INSERT INTO out SELECT k, v FROM src", **opts)


@pytest.mark.parametrize("row", M.ROWS, ids=["-".join(r.key) for r in M.ROWS])
def test_reported_guarantee_of_each_path(row, tmp_path):
    """The guarantee a real query over this path reports is the one the matrix claims."""
    s = Session()
    q = _make_query(s, _make_source(s, row.source, tmp_path), row, tmp_path)
    q.await_termination(max_batches=1)
    p = q.progress()
    view = row.computed()
    assert p["delivery_guarantee"] == row.claim == view.effective.label
    assert p["delivery_guarantee_limited_by"] == view.limited_by_text
    assert q.delivery == view.as_dict() | {"source": q.delivery["source"]}
    assert f"delivery_guarantee={row.claim}\n" in q.explain()


def test_matrix_rows_are_unique_with_known_kinds_and_statuses():
    keys = [r.key for r in M.ROWS]
    assert len(keys) == len(set(keys))
    for r in M.ROWS:
        assert r.source in M.SOURCES and r.sink in M.SINKS and r.profile in D.PROFILES
        assert r.checkpoint in ("none", "at-least-once", "best-effort") and r.status in M.STATUSES
        assert r.notes, f"{r.key} needs a note"


def test_every_certified_row_names_evidence_and_claims_what_the_runtime_reports():
    for r in M.ROWS:
        if r.status == "certified":
            assert r.evidence, f"certified row {r.key} names no evidence"
        assert DeliveryGuarantee.parse(r.claim) is r.computed().effective, r.key
    assert not M._claims_hold()


def test_every_evidence_id_is_a_collected_test():
    ids = sorted({e for r in M.ROWS for e in r.evidence})
    files = sorted({e.split("::", 1)[0] for e in ids})
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    collected = {ln.strip() for ln in out.stdout.splitlines() if "::" in ln}
    missing = [e for e in ids if e not in collected]
    assert not missing, f"evidence ids the suite does not collect: {missing}\n{out.stdout[-2000:]}{out.stderr[-2000:]}"


def test_the_committed_matrix_page_equals_the_generated_one():
    page = (ROOT / "docs" / "delivery.md").read_text(encoding="utf-8")
    assert M.replace_section(page, M.render()) == page, (
        "docs/delivery.md is stale: run python -m velaria.stream.delivery_matrix docs/delivery.md")


def test_rewrite_doc_replaces_only_the_generated_section(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(f"# intro\n\n{M.BEGIN}\nold\n{M.END}\n\nafter\n", encoding="utf-8")
    M.rewrite_doc(str(page))
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# intro\n\n" + M.BEGIN) and text.endswith(M.END + "\n\nafter\n")
    assert "| csv-dir | csv-file | single-node-durable |" in text and "\nold\n" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["p.md"]
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="the page lacks the markers"):
        M.rewrite_doc(str(page))


# ------------------------------------------------------------------------------ evidence: restarts and crashes
def _csv_rows(path):
    with open(path, newline="") as f:
        return [(r["k"], int(r["v"])) for r in csv.DictReader(f)]


def test_restart_over_the_same_arrow_data_delivers_every_row(tmp_path):
    batches = _table().to_batches(max_chunksize=1)
    opts = {"trigger_interval_ms": 0, "checkpoint_path": str(tmp_path / "ck"), "durability_profile": "single-node-durable"}
    first = Session().create_stream_from_arrow(batches).write_stream_csv(str(tmp_path / "o.csv"), **opts)
    first.start()
    assert first.await_termination(max_batches=2) == 2
    first.stop()
    # a new process would rebuild the stream from the same data: a new Session, the same checkpoint
    again = Session().create_stream_from_arrow(batches).write_stream_csv(str(tmp_path / "o.csv"), **opts)
    again.start()
    assert again.await_termination() == 4                  # at-least-once: replayed from the start
    assert again.progress()["delivery_guarantee"] == "at-least-once"
    got = collections.Counter(_csv_rows(tmp_path / "o.csv"))
    want = collections.Counter(zip(*_table().to_pydict().values()))
    assert set(got) == set(want)                             # every row, nothing foreign
    assert got == want + collections.Counter(list(want.elements())[:2])  # the first two rows twice


CHILD = textwrap.dedent("""
    import json, os, sys
    from velaria import Session
    import velaria.stream.checkpoint as ck
    indir, sink, ckpt, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    real_write, calls = ck.write_checkpoint, [0]
    def write(path, data):
        real_write(path, data)
        calls[0] += 1
        if calls[0] == kill_after:
            os.kill(os.getpid(), 9)          # the sink holds this batch, the checkpoint covers it
    ck.write_checkpoint = write
    s = Session()
    s.sql(f"CREATE SOURCE TABLE src (k TEXT, v BIGINT) USING csv OPTIONS(path: '{indir}')")
    s.sql(f"CREATE SINK TABLE out (k TEXT, v BIGINT) USING csv OPTIONS(path: '{sink}')")
    q = s.start_stream_sql("INSERT INTO out SELECT k, v FROM src", trigger_interval_ms=0, checkpoint_path=ckpt,
                           durability_profile="single-node-durable")
    q.await_termination(max_batches=int(sys.argv[5]))
    p = q.progress()
    print(json.dumps({k: p[k] for k in ("delivery_guarantee", "delivery_guarantee_limited_by", "batches_processed")}))
""")
FILES = 5


@pytest.mark.parametrize("kill_after", [1, 3])
def test_sigkill_then_restart_delivers_every_row_at_least_once(tmp_path, kill_after):
    indir = tmp_path / "in"
    indir.mkdir()
    expected = collections.Counter()
    for i in range(FILES):
        rows = [(f"k{j % 2}", i * 10 + j) for j in range(3)]
        (indir / f"part-{i:03d}.csv").write_text("k,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
        expected.update(rows)
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    def child(kill, batches):
        return subprocess.run([sys.executable, str(script), str(indir), str(tmp_path / "out.csv"),
                               str(tmp_path / "ck"), str(kill), str(batches)], capture_output=True, text=True,
                              timeout=120)

    crashed = child(kill_after, FILES)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    resumed = child(0, FILES)                   # at-least-once: the new source replays every file
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert report["delivery_guarantee"] == "at-least-once" and report["delivery_guarantee_limited_by"] == "sink"
    got = collections.Counter(_csv_rows(tmp_path / "out.csv"))
    assert set(got) == set(expected)                         # every input row, nothing foreign
    first_files = collections.Counter(r for r in expected if r[1] // 10 < kill_after)
    assert got == expected + first_files                     # the files before the kill, twice
