"""Checkpoints: atomic files, corrupt / truncated / foreign files refused, restart semantics
of both delivery modes, and crash tests (a child process killed with SIGKILL before, during
and after checkpoint writes; a restart completes with every input row counted)."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pytest

from velaria import Session
from velaria.stream.checkpoint import CheckpointError, read_checkpoint

from stream_fakes import RecordingSink, RecordingSource, events


def make_query(session, path, batches=None, mode="at-least-once", sink=None, src=None):
    src = src or RecordingSource(batches or events(4))
    frame = session.create_stream_from_source(src).group_count(["key"], stateful=True, output_column="n")
    return frame.write_stream_sink(sink or RecordingSink(), trigger_interval_ms=0, checkpoint_path=str(path),
                                   checkpoint_delivery_mode=mode), src


def test_checkpoint_file_has_native_keys_in_order(tmp_path):
    q, _ = make_query(Session(), tmp_path / "ck")
    q.start()
    q.await_termination()
    lines = (tmp_path / "ck").read_text().splitlines()
    keys = [l.split("=", 1)[0] for l in lines]
    assert keys[0] == "velaria_stream_checkpoint" and keys[1] == "query_fingerprint"
    assert keys[2:19] == ["batches_pulled", "batches_processed", "blocked_count", "max_backlog_batches",
                          "last_source_offset", "requested_execution_mode", "execution_mode", "execution_reason",
                          "transport_mode", "aggregate_impl", "aggregate_reason", "estimated_state_size_bytes",
                          "estimated_batch_cost", "backpressure_max_queue_batches", "backpressure_high_watermark",
                          "backpressure_low_watermark", "checkpoint_delivery_mode"]
    assert keys[-1] == "checksum"
    assert not (tmp_path / "ck.tmp").exists()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b.replace(b"batches_processed=4", b"batches_processed=9"), "corrupt"),
    (lambda b: b"batches_pulled=1\nbatches_processed=1\n", "is not a Velaria stream checkpoint"),
])
def test_damaged_checkpoints_are_refused_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "ck"
    q, _ = make_query(Session(), path)
    q.start()
    q.await_termination()
    path.write_bytes(damage(path.read_bytes()))
    q2, _ = make_query(Session(), path)
    q2.start()
    with pytest.raises(CheckpointError) as info:
        q2.await_termination()
    assert str(path) in str(info.value) and message in str(info.value)
    assert q2.progress()["status"] == "failed" and q2.progress()["batches_processed"] == 0


def test_a_checkpoint_of_another_query_is_refused(tmp_path):
    path = tmp_path / "ck"
    q, _ = make_query(Session(), path)
    q.start()
    q.await_termination()
    other = Session().create_stream_from_source(RecordingSource(events(1))).write_stream_sink(
        RecordingSink(), trigger_interval_ms=0, checkpoint_path=str(path))
    other.start()
    with pytest.raises(CheckpointError, match="different query"):
        other.await_termination()


def test_at_least_once_replays_and_counters_continue(tmp_path):
    path = tmp_path / "ck"
    q, _ = make_query(Session(), path)
    q.start()
    assert q.await_termination(max_batches=1) == 1
    sink = RecordingSink()
    q2, _ = make_query(Session(), path, sink=sink)
    q2.start()
    assert q2.await_termination() == 4                       # the source replays from the start
    p = q2.progress()
    assert p["batches_processed"] == 5 and p["last_source_offset"] == "4"
    assert p["checkpoint_delivery_mode"] == "at-least-once"
    # state was not restored (the replay rebuilds it): running totals are exact
    last = {r["key"]: r["n"] for r in sink.rows}
    assert last == {"a": 8, "b": 4, None: 4}


def test_best_effort_restores_offset_and_state(tmp_path):
    path = tmp_path / "ck"
    q, _ = make_query(Session(), path, mode="best-effort")
    q.start()
    assert q.await_termination(max_batches=2) == 2
    sink = RecordingSink()
    q2, _ = make_query(Session(), path, mode="best-effort", sink=sink,
                       src=RestorableSource(events(4)))
    q2.start()
    assert q2.await_termination() == 2                       # resumes after offset 2
    last = {r["key"]: r["n"] for r in sink.rows}
    assert last == {"a": 8, "b": 4, None: 4}                 # restored state + the rest = exact totals


class RestorableSource(RecordingSource):
    def _do_restore(self, offset):
        self.i = int(offset)
        return True


# ------------------------------------------------------------------------------ crash tests
CHILD = textwrap.dedent("""
    import os, sys, time
    from velaria import Session
    import velaria.stream.checkpoint as ck
    indir, sink, ckpt, mode, kill_at, where = sys.argv[1:7]
    kill_at = int(kill_at)
    real_write = ck.write_checkpoint
    calls = [0]
    def write(path, data):
        calls[0] += 1
        if calls[0] == kill_at and where == "before":
            os.kill(os.getpid(), 9)
        if calls[0] == kill_at and where == "during":
            # leave a half-written temporary file behind, then die
            with open(path + ".tmp", "wb") as f:
                f.write(b"velaria_stream_checkpoint=1\\nbatches_pul")
                f.flush(); os.fsync(f.fileno())
            os.kill(os.getpid(), 9)
        real_write(path, data)
        if calls[0] == kill_at and where == "after":
            os.kill(os.getpid(), 9)
    ck.write_checkpoint = write
    s = Session()
    s.sql(f"CREATE SOURCE TABLE src (key TEXT, value BIGINT) USING csv OPTIONS(path: '{indir}')")
    s.sql(f"CREATE SINK TABLE out (key TEXT, total BIGINT, n BIGINT) USING csv OPTIONS(path: '{sink}')")
    q = s.start_stream_sql("INSERT INTO out SELECT key, SUM(value) AS total, COUNT(*) AS n FROM src GROUP BY key",
                           trigger_interval_ms=0, checkpoint_path=ckpt, checkpoint_delivery_mode=mode)
    q.await_termination(max_batches=int(sys.argv[7]))
    print("done", q.progress()["batches_processed"])
""")

FILES = 6


def _write_inputs(d):
    d.mkdir()
    expected = {}
    for i in range(FILES):
        rows = [("k%d" % (j % 3), i * 10 + j) for j in range(4)]
        with open(d / f"part-{i:03d}.csv", "w") as f:
            f.write("key,value\n" + "".join(f"{k},{v}\n" for k, v in rows))
        for k, v in rows:
            t, n = expected.get(k, (0, 0))
            expected[k] = (t + v, n + 1)
    return expected


def _run_child(tmp_path, mode, kill_at, where, max_batches=FILES):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.run([sys.executable, str(script), str(tmp_path / "in"), str(tmp_path / "out.csv"),
                           str(tmp_path / "ck"), mode, str(kill_at), where, str(max_batches)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("mode", ["at-least-once", "best-effort"])
@pytest.mark.parametrize("kill_at, where", [(1, "before"), (3, "during"), (4, "after")])
def test_sigkill_then_restart_counts_every_row(tmp_path, mode, kill_at, where):
    expected = _write_inputs(tmp_path / "in")
    crashed = _run_child(tmp_path, mode, kill_at, where)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    if kill_at > 1 or where != "before":
        # the last complete checkpoint is intact and loadable (magic line, checksum)
        text = (tmp_path / "ck").read_text()
        assert text.startswith("velaria_stream_checkpoint=1\n") and "\nchecksum=" in text
        fingerprint = text.split("query_fingerprint=")[1].split("\n")[0]
        assert read_checkpoint(str(tmp_path / "ck"), fingerprint) is not None
    # the directory source never ends by itself: the restart runs the batches it has left
    remaining = FILES
    if mode == "best-effort" and (tmp_path / "ck").exists():
        offset = (tmp_path / "ck").read_text().split("last_source_offset=")[1].split("\n")[0]
        remaining = FILES - (int(offset[5:8]) + 1)
    resumed = _run_child(tmp_path, mode, 0, "none", max_batches=remaining) if remaining else None
    assert resumed is None or resumed.returncode == 0, resumed.stderr
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    final = {}
    for r in rows:
        final[r["key"]] = (int(r["total"]), int(r["n"]))
    assert final == expected                                  # every input row's contribution, exactly once in state


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_no_worker_process_outlives_its_query():
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(
        pa.table({"k": ["a", "b"] * 50, "v": list(range(100))}).to_batches(max_chunksize=30)))
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql("SELECT k, SUM(v) AS s FROM ev GROUP BY k").write_stream_queue_sink(
        sink, trigger_interval_ms=0, execution_mode="local-workers", local_workers=2)
    q.start()
    q.await_termination()
    p = q.progress()
    assert p["used_actor_runtime"] and p["execution_mode"] == "local-workers"
    assert p["transport_mode"] in ("rpc-copy", "shared-memory")
    assert p["used_shared_memory"] == (p["transport_mode"] == "shared-memory")
    assert len(q._rt.worker_pids) == 2 and all(_gone(pid) for pid in q._rt.worker_pids)


def test_a_dying_worker_fails_the_query():
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(
        pa.table({"k": ["a", "b"] * 50, "v": list(range(100))}).to_batches(max_chunksize=30)))
    q = s.stream_sql("SELECT k, SUM(v) AS s FROM ev GROUP BY k").write_stream_queue_sink(
        s.create_realtime_stream_sink(), trigger_interval_ms=0, execution_mode="local-workers", local_workers=2)
    rt = q._rt
    real_resolve = rt._resolve_mode

    def resolve_then_kill():
        real_resolve()
        os.kill(rt._workers.pids()[0], signal.SIGKILL)
        time.sleep(0.2)
    rt._resolve_mode = resolve_then_kill
    q.start()
    from velaria.errors import ExecutionError
    with pytest.raises(ExecutionError, match="died with exit code -9"):
        q.await_termination()
    assert q.progress()["status"] == "failed"
    assert all(_gone(pid) for pid in rt.worker_pids)


def test_shared_memory_and_copy_transports(tmp_path):
    s = Session()
    big = pa.table({"k": [f"k{i % 100}" for i in range(40_000)], "v": list(range(40_000))})
    for threshold, transport in [(1, "shared-memory"), (1 << 40, "rpc-copy")]:
        s2 = Session()
        s2.create_temp_view("ev", s2.create_stream_from_arrow(big))
        sink = s2.create_realtime_stream_sink()
        q = s2.stream_sql("SELECT k, SUM(v) AS s FROM ev GROUP BY k").write_stream_queue_sink(
            sink, trigger_interval_ms=0, execution_mode="local-workers", local_workers=2)
        q._rt.options = q._rt.options.__class__(**{**q._rt.options.__dict__,
                                                   "shared_memory_min_payload_bytes": threshold})
        q.start()
        q.await_termination()
        assert q.progress()["transport_mode"] == transport
        total = sum(r["s"] for r in sink.poll_arrow().to_pylist())
        assert total == sum(range(40_000))
    del s


def test_a_damaged_checkpoint_is_refused_before_a_schemaless_source_sends_a_batch(tmp_path):
    """A source that names no schema and sends no batch: the plan (and with it the query's
    fingerprint) never exists, yet a damaged checkpoint file is refused at the start, naming
    the file, instead of going unnoticed until a first batch arrives."""
    path = tmp_path / "ck"
    q, _ = make_query(Session(), path)
    q.start()
    q.await_termination()
    intact = path.read_bytes()
    path.write_bytes(intact[: len(intact) // 2])
    q2, src = make_query(Session(), path, src=RecordingSource([]))
    q2.start()
    with pytest.raises(CheckpointError, match="truncated") as info:
        q2.await_termination()
    assert str(path) in str(info.value) and q2.progress()["status"] == "failed"
    path.write_bytes(intact)                      # an intact file is accepted, nothing to run
    q3, _ = make_query(Session(), path, src=RecordingSource([]))
    q3.start()
    assert q3.await_termination() == 0 and q3.progress()["status"] != "failed"
