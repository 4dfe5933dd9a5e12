"""Local-workers mode: disjoint group ownership, window ownership before the copies are built,
pipelining, state hand-over / gathering / checkpoints, and the template-forked processes."""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import threading

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import velaria.stream.workers as workers_mod
from velaria import Session
from velaria import worker_launcher
from velaria.exec.window import WindowAssignOperator, window_node
from velaria.plan import logical as L
from velaria.stream.key_partition import partition_ids
from velaria.stream.plan import StreamScanSource

from stream_fakes import RecordingSink, RecordingSource, collect, events

LW = {"execution_mode": "local-workers", "local_workers": 2, "trigger_interval_ms": 0}


# ------------------------------------------------------------------------------ ownership
def _groups_agree(values, arr, n, step=0):
    """Equal values (hash_key equality) get one owner, every owner is in range."""
    ids = partition_ids(arr, n, step)
    assert ids.shape == (len(arr),) and ((0 <= ids) & (ids < n)).all()
    owner = {}
    for v, p in zip(values, ids.tolist()):
        key = ("nan",) if isinstance(v, float) and v != v else (v + 0.0 if isinstance(v, float) else v)
        assert owner.setdefault(key, p) == p, (v, owner[key], p)
    return ids


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.sampled_from([0.0, -0.0, float("nan")])),
                max_size=30), st.integers(2, 5))
def test_equal_floats_have_one_owner(values, n):
    _groups_agree(values, pa.array(values, pa.float64()), n)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=5)), max_size=30), st.integers(2, 5))
def test_text_owner_is_the_same_plain_dictionary_or_chunked(values, n):
    arr = pa.array(values, pa.string())
    ids = _groups_agree(values, arr, n)
    assert (partition_ids(arr.dictionary_encode(), n) == ids).all()
    assert (partition_ids(pa.array(values, pa.large_string()), n) == ids).all()
    assert (partition_ids(pa.chunked_array([arr[:3], arr[3:]], pa.string()), n) == ids).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), max_size=30), st.integers(2, 5))
def test_integer_owner_is_the_same_for_every_width(values, n):
    ids = _groups_agree(values, pa.array(values, pa.int64()), n)
    small = [None if v is None else v % 100 for v in values]
    assert (partition_ids(pa.array(small, pa.int8()), n) == partition_ids(pa.array(small, pa.int64()), n)).all()
    assert ids.size == len(values)


def test_window_owner_alternates_windows_and_nulls_go_to_the_first():
    starts = pa.array([0, 30_000, 60_000, -30_000, None], pa.int64())
    assert partition_ids(starts, 2, 30_000).tolist() == [0, 1, 0, 1, 0]


_MS = st.one_of(st.none(), st.integers(-10**9, 10**9), st.integers(0, 400_000))


@settings(max_examples=150, deadline=None)
@given(st.lists(_MS, min_size=1, max_size=40), st.sampled_from([(60_000, 60_000), (60_000, 30_000), (60_000, 20_000),
                                                               (1_000, 300)]),
       st.integers(2, 3), st.booleans())
def test_window_owners_split_the_copies_exactly(ms, sizes, n, numbered):
    """The owners' outputs together are exactly the full output (every (row, window) copy
    once), each owner holds only its windows, and rows keep their order."""
    every, slide = sizes
    batch = pa.record_batch({"ts": pa.array(ms, pa.int64()), "row": pa.array(range(len(ms)), pa.int64())})
    scan = L.Scan(schema=batch.schema, source=StreamScanSource(batch.schema), table_name="t")
    node = window_node(scan, "ts", every, slide, "w")

    def copies(owner):
        op = WindowAssignOperator(node, epoch_ms=True, numbered=numbered)
        op.owner = owner
        out = op.push(batch)
        if not out:
            return []
        w = out[0].column(2)
        if owner is not None:
            assert (partition_ids(w, owner[0], slide) == owner[1]).all()
        rows = out[0].column(1).to_pylist()
        assert rows == sorted(rows)
        return list(zip(rows, w.cast(pa.int64()).to_pylist()))

    whole = collections.Counter(copies(None))
    parts = collections.Counter()
    for i in range(n):
        parts.update(copies((n, i)))
    assert parts == whole


# ------------------------------------------------------------------------------ runs
def _final(rows, keys=("key",)):
    return {tuple(r[k] for k in keys): r for r in rows}


SQL = "SELECT key, COUNT(*) AS n, SUM(v) AS total FROM ev GROUP BY key"


def _source(rows=4000, batch=250):
    keys = [None if i % 13 == 0 else f"k{i % 37}" for i in range(rows)]
    return pa.table({"key": keys, "v": list(range(rows))}).to_batches(max_chunksize=batch)


def test_pipelined_batches_complete_in_order_with_the_single_process_rows(monkeypatch):
    depth = []
    real = workers_mod.WorkerPool._complete

    def complete(self):
        depth.append(len(self._inflight))
        return real(self)
    monkeypatch.setattr(workers_mod.WorkerPool, "_complete", complete)
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_source()))
    q, rows = collect(s, s.stream_sql(SQL), execution_mode="local-workers", local_workers=2)
    single = Session()
    single.create_temp_view("ev", single.create_stream_from_arrow(_source()))
    _, want = collect(single, single.stream_sql(SQL))
    assert sorted(map(repr, rows)) == sorted(map(repr, want))            # the same rows, batch by batch
    assert max(depth) == workers_mod.PIPELINE_DEPTH + 1                   # batches really were sent ahead
    p = q.progress()
    assert p["used_actor_runtime"] and p["batches_processed"] == 16


def _two_runs(**opts):
    sink = RecordingSink()
    q = Session().create_stream_from_source(RecordingSource(_source())).group_count(
        ["key"], stateful=True, output_column="n").write_stream_sink(sink, **opts)
    q.start()
    assert q.await_termination(max_batches=5) == 5
    assert q._rt._workers is None                 # the workers stopped; their state came back
    assert q.await_termination() == 16            # this source rewinds when it is opened again
    return {r["key"]: r["n"] for r in sink.rows}


def test_a_second_run_continues_the_running_totals():
    got = _two_runs(**LW)
    assert got == _two_runs(trigger_interval_ms=0)
    first5 = collections.Counter(pa.Table.from_batches(_source()[:5]).column("key").to_pylist())
    assert got == dict(first5 + collections.Counter(pa.Table.from_batches(_source()).column("key").to_pylist()))


@pytest.mark.parametrize("second", ["local-workers", "single-process"])
def test_a_checkpoint_of_worker_state_restores_exact_totals(tmp_path, second):
    class Restorable(RecordingSource):
        def _do_restore(self, offset):
            self.i = int(offset)
            return True
    path = str(tmp_path / "ck")
    opts = dict(LW, checkpoint_path=path, checkpoint_delivery_mode="best-effort")
    s = Session()
    q = s.create_stream_from_source(Restorable(_source())).group_count(["key"], stateful=True, output_column="n") \
        .write_stream_sink(RecordingSink(), **opts)
    q.start()
    assert q.await_termination(max_batches=6) == 6
    sink = RecordingSink()
    if second == "single-process":
        opts = dict(opts, execution_mode="single-process", local_workers=1)
    q2 = Session().create_stream_from_source(Restorable(_source())).group_count(
        ["key"], stateful=True, output_column="n").write_stream_sink(sink, **opts)
    q2.start()
    assert q2.await_termination() == 10                                   # resumes after batch 6
    last = {r["key"]: r["n"] for r in sink.rows}
    assert last == dict(collections.Counter(pa.Table.from_batches(_source()).column("key").to_pylist()))


def test_stop_from_another_thread_drains_and_leaves_no_worker():
    gate = threading.Event()

    class Slow(RecordingSink):
        def _do_write(self, batch):
            gate.set()
            super()._do_write(batch)

    src = RecordingSource(_source(rows=40_000, batch=100), bounded=False)
    q = Session().create_stream_from_source(src).group_count(["key"], stateful=True, output_column="n") \
        .write_stream_sink(Slow(delay_s=0.002), **LW)
    q.start()
    t = threading.Thread(target=q.await_termination)
    t.start()
    assert gate.wait(30)
    q.stop()
    t.join(30)
    assert not t.is_alive() and q.progress()["status"] == "stopped"
    assert all(not os.path.exists(f"/proc/{pid}") for pid in q._rt.worker_pids)
    p = q.progress()
    assert src.acked[-1] == p["last_source_offset"]                       # every completed batch was acked


def test_workers_are_forks_of_the_template_and_a_script_without_main_guard_works(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent("""
        import os
        import pyarrow as pa
        from velaria import Session, worker_launcher
        print("script body ran in", os.getpid(), flush=True)
        s = Session()
        s.create_temp_view("ev", s.create_stream_from_arrow(
            pa.table({"k": ["a", "b"] * 500, "v": list(range(1000))}).to_batches(max_chunksize=100)))
        sink = s.create_realtime_stream_sink()
        q = s.stream_sql("SELECT k, SUM(v) AS s FROM ev GROUP BY k").write_stream_queue_sink(
            sink, trigger_interval_ms=0, execution_mode="local-workers", local_workers=2)
        q.start(); q.await_termination()
        rows = {}
        while (t := sink.poll_arrow()) is not None:
            rows.update({r["k"]: r["s"] for r in t.to_pylist()})
        print("totals", rows, q.progress()["used_actor_runtime"], worker_launcher.launcher_pid() is not None)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("script body ran") == 1                       # never re-imported by a worker
    assert "totals {'a': 249500, 'b': 250000} True True" in out.stdout


def test_workers_are_children_of_the_template_and_stop_with_the_query():
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_source()))
    q = s.stream_sql(SQL).write_stream_queue_sink(s.create_realtime_stream_sink(), **LW)
    rt = q._rt
    real_resolve = rt._resolve_mode
    parents = []

    def resolve():
        real_resolve()
        for pid in rt._workers.pids():
            with open(f"/proc/{pid}/stat") as f:
                parents.append(int(f.read().rsplit(")", 1)[1].split()[1]))
    rt._resolve_mode = resolve
    q.start()
    q.await_termination()
    assert parents == [worker_launcher.launcher_pid()] * 2
    assert all(not os.path.exists(f"/proc/{pid}") for pid in rt.worker_pids)    # reaped, not zombies


# ------------------------------------------------------------------------------ shared blocks

@pytest.mark.parametrize("batch", [
    pa.record_batch([pa.array(range(5000)), pa.array([f"k{i % 7}" for i in range(5000)])], names=["a", "s"]),
    # a large dictionary makes the stream outgrow the batch message's size: measured, rewritten
    pa.record_batch([pa.array([str(i) * 20 for i in range(20000)]).dictionary_encode()], names=["d"]),
], ids=["plain", "dictionary"])
def test_a_batch_written_to_a_shared_block_reads_back_whole(batch):
    """The driver writes a batch's IPC stream into a reused shared block once, sized by a bound;
    the stream length it reports reads back the same batch."""
    blocks = workers_mod._Blocks()
    pool = workers_mod.WorkerPool.__new__(workers_mod.WorkerPool)
    pool._blocks = blocks
    try:
        block, size = pool._write_block(batch)
        assert workers_mod._read_ipc(block.buf[:size]).to_batches()[0].equals(batch)
        blocks.give_back(block)
    finally:
        blocks.close()
