"""Defects a user hit in the stream runtime, each pinned by a test: a sink or source that fails
while opening or closing, CSV directories whose files disagree or arrive out of order, rows
pushed into a realtime source, checkpoints restored into a different source."""
from __future__ import annotations

import os
import stat
import threading
import time

import pyarrow as pa
import pytest

from velaria import Session
from velaria.errors import SourceFormatError, VelariaError
from velaria.stream import StreamSink

from stream_fakes import RecordingSource, events

SUM_SQL = "SELECT key, SUM(value) AS s FROM ev GROUP BY key"


class FailingSink(StreamSink):
    """Raises ``KeyError`` from the hook named ``where`` (once, when ``once``)."""

    def __init__(self, where: str, once: bool = False):
        super().__init__()
        self.where = where
        self.once = once
        self.rows: list[dict] = []
        self.closes = 0

    def _maybe_fail(self, hook: str) -> None:
        if hook == self.where:
            if self.once:
                self.where = ""
            raise KeyError(f"{hook} failed (test sink)")

    def _do_open(self, context):
        self._maybe_fail("open")

    def _do_write(self, batch):
        self._maybe_fail("write")
        self.rows.extend(batch.to_pylist())

    def _do_flush(self):
        self._maybe_fail("flush")

    def _do_checkpoint(self, marker):
        self._maybe_fail("checkpoint")

    def _do_close(self):
        self.closes += 1
        self._maybe_fail("close")

    def name(self):
        return "failing"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------------------ sink failures
@pytest.mark.parametrize("mode", ["single-process", "local-workers"])
@pytest.mark.parametrize("where", ["open", "write", "flush", "checkpoint", "close"])
def test_a_sink_failing_in_any_hook_fails_the_query_and_closes_everything(mode, where):
    s = Session()
    source = RecordingSource(events(3))
    s.create_temp_view("ev", s.create_stream_from_source(source))
    sink = FailingSink(where)
    q = s.stream_sql(SUM_SQL).write_stream_sink(sink, trigger_interval_ms=0, execution_mode=mode,
                                                local_workers=2)
    with pytest.raises(KeyError, match=f"{where} failed"):
        q.start()
        q.await_termination()
    assert q.progress()["status"] == "failed"
    assert source._state == "closed" and sink._state == "closed"
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in q._rt.worker_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in q._rt.worker_pids)
    with pytest.raises(KeyError, match=f"{where} failed"):      # raised again, not a lifecycle error
        q.await_termination()


def test_a_sink_whose_open_failed_once_can_be_started_again():
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(events(2)))
    sink = FailingSink("open", once=True)
    q = s.stream_sql(SUM_SQL).write_stream_sink(sink, trigger_interval_ms=0)
    with pytest.raises(KeyError):
        q.start()
    assert q.progress()["status"] == "failed"
    assert q.await_termination() == 2
    assert q.progress()["status"] == "stopped"
    assert {r["key"]: r["s"] for r in sink.rows}["a"] == 0 + 2 + 4 + 6


# ------------------------------------------------------------------------------ CSV directories
def _csv_dir_query(path, **opts):
    s = Session()
    s.create_temp_view("ev", s.read_stream_csv_dir(str(path)))
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql("SELECT key, SUM(v) AS s FROM ev GROUP BY key").write_stream_queue_sink(
        sink, trigger_interval_ms=0, **opts)
    q.start()
    return q, sink


def _drain(sink) -> list[dict]:
    rows = []
    while (t := sink.poll_arrow()) is not None:
        rows.extend(t.to_pylist())
    return rows


def test_a_csv_file_with_another_header_is_an_error_naming_it(tmp_path):
    (tmp_path / "a.csv").write_text("key,v\nx,1\n")
    (tmp_path / "b.csv").write_text("v,key\n2,x\n")
    q, _ = _csv_dir_query(tmp_path)
    with pytest.raises(SourceFormatError, match=r"b\.csv has columns \['v', 'key'\].*same header"):
        q.await_termination(max_batches=2)
    assert q.progress()["status"] == "failed"


def test_a_csv_file_arriving_out_of_name_order_is_an_error_not_skipped(tmp_path):
    (tmp_path / "b.csv").write_text("key,v\nx,1\n")
    q, sink = _csv_dir_query(tmp_path)
    assert q.await_termination(max_batches=1) == 1
    (tmp_path / "c.csv").write_text("key,v\nx,2\n")
    assert q.await_termination(max_batches=1) == 1
    assert _drain(sink)[-1] == {"key": "x", "s": 3}
    (tmp_path / "a.csv").write_text("key,v\nx,100\n")      # sorts before b.csv, already read
    guard = threading.Timer(20, q.stop)        # the defect was a silent skip: waiting forever
    guard.start()
    try:
        with pytest.raises(SourceFormatError, match=r"a\.csv appeared after c\.csv was read"):
            q.await_termination(max_batches=1)
    finally:
        guard.cancel()


def test_a_restored_csv_directory_does_not_refuse_the_files_behind_its_offset(tmp_path):
    data, ck = tmp_path / "in", str(tmp_path / "q.ckpt")
    data.mkdir()
    (data / "1.csv").write_text("key,v\nx,1\n")
    (data / "2.csv").write_text("key,v\nx,2\n")
    q, _ = _csv_dir_query(data, checkpoint_path=ck, checkpoint_delivery_mode="best-effort")
    assert q.await_termination(max_batches=1) == 1
    q, sink = _csv_dir_query(data, checkpoint_path=ck, checkpoint_delivery_mode="best-effort")
    assert q.await_termination(max_batches=1) == 1
    assert _drain(sink) == [{"key": "x", "s": 3}]


# ------------------------------------------------------------------------------ realtime source
def _realtime_query(s, src):
    s.create_temp_view("ev", s.read_realtime_stream_source(src))
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql("SELECT key, SUM(v) AS s FROM ev GROUP BY key").write_stream_queue_sink(
        sink, trigger_interval_ms=0)
    return q, sink


def test_push_rows_refuses_a_value_its_column_type_would_truncate():
    s = Session()
    src = s.create_realtime_stream_source(["key", "v"])
    src.push_rows([("a", 1)])
    with pytest.raises(VelariaError, match="1.5.* truncated"):
        src.push_rows([("a", 1.5)])
    src.push_rows([("a", 2.0), {"key": "a", "v": None}])      # exact values still fit
    src.close()
    q, sink = _realtime_query(s, src)
    assert q.await_termination() == 2
    assert _drain(sink)[-1] == {"key": "a", "s": 3}


@pytest.mark.parametrize("start_first", [False, True])
def test_a_first_push_of_only_nulls_does_not_fix_the_column_type(start_first):
    s = Session()
    src = s.create_realtime_stream_source(["key", "v"])
    if start_first:
        q, sink = _realtime_query(s, src)
    src.push_rows([("a", None)])
    src.push_rows([("a", 2)])
    src.push_arrow(pa.table({"key": ["b"], "v": pa.array([5], pa.int64())}))
    src.close()
    if not start_first:
        q, sink = _realtime_query(s, src)
    assert q.await_termination() == 3
    assert {r["key"]: r["s"] for r in _drain(sink)} == {"a": 2, "b": 5}


def test_values_after_a_query_planned_over_nulls_fail_with_a_clear_error():
    s = Session()
    src = s.create_realtime_stream_source(["key", "v"])
    q, _ = _realtime_query(s, src)
    src.push_rows([("a", None)])
    assert q.await_termination(max_batches=1) == 1           # planned: v has the null type
    src.push_rows([("a", 2)])
    with pytest.raises(SourceFormatError, match="only\\s+NULLs when the query was planned"):
        q.await_termination(max_batches=1)


# ------------------------------------------------------------------------------ checkpoints
def test_a_checkpoint_is_refused_for_the_same_query_over_another_directory(tmp_path):
    first, second, ck = tmp_path / "first", tmp_path / "second", str(tmp_path / "q.ckpt")
    for d in (first, second):
        d.mkdir()
        (d / "1.csv").write_text("key,v\nx,1\n")
        (d / "2.csv").write_text("key,v\nx,2\n")
    q, _ = _csv_dir_query(first, checkpoint_path=ck, checkpoint_delivery_mode="best-effort")
    assert q.await_termination(max_batches=2) == 2
    before = open(ck, "rb").read()
    q, sink = _csv_dir_query(second, checkpoint_path=ck, checkpoint_delivery_mode="best-effort")
    with pytest.raises(VelariaError, match="q.ckpt was written by a different query"):
        q.await_termination(max_batches=1)
    assert _drain(sink) == [] and open(ck, "rb").read() == before


# ------------------------------------------------------------------------------ CSV sink
def _insert_into_csv(path, **opts):
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(events(2)))
    s.sql(f"CREATE SINK TABLE out (key TEXT, s BIGINT) USING csv OPTIONS(path: '{path}')")
    return s.start_stream_sql("INSERT INTO out SELECT key, SUM(value) AS s FROM ev GROUP BY key",
                              trigger_interval_ms=0, **opts)


def test_a_csv_sink_refuses_a_file_holding_another_header_and_leaves_it_untouched(tmp_path):
    path = tmp_path / "out.csv"
    foreign = b"x,y,z\r\n1,2,3\r\n4,5"          # another tool's file, no final line break
    path.write_bytes(foreign)
    with pytest.raises(VelariaError, match=r"already holds CSV with the header \['x', 'y', 'z'\], not this "
                                           r"sink's columns \['key', 's'\]"):
        _insert_into_csv(path)
    assert path.read_bytes() == foreign


def test_a_csv_sink_appends_to_a_file_with_its_own_header(tmp_path):
    path = tmp_path / "out.csv"
    path.write_bytes(b"key,s\r\nold,1\r\n")
    assert _insert_into_csv(path).await_termination() == 2
    lines = path.read_bytes().split(b"\r\n")
    assert lines[:2] == [b"key,s", b"old,1"] and lines.count(b"key,s") == 1


def test_write_stream_csv_refuses_a_file_holding_another_queries_header(tmp_path):
    path = tmp_path / "out.csv"
    path.write_bytes(b"window_start,total\r\n2026-01-01T00:00:00,3\r\n")
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(events(2)))
    q = s.stream_sql("SELECT key, SUM(value) AS s FROM ev GROUP BY key").write_stream_csv(
        str(path), trigger_interval_ms=0)
    with pytest.raises(VelariaError, match="already holds CSV with the header"):
        q.await_termination()
    assert path.read_bytes() == b"window_start,total\r\n2026-01-01T00:00:00,3\r\n"


# ------------------------------------------------------------------------------ window times
WINDOW_COUNT = ("SELECT window_start, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 60000 AS window_start "
                "GROUP BY window_start")


def _window_counts(ts: pa.Array, **opts) -> list[dict]:
    from stream_fakes import collect
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(pa.table({"ts": ts, "v": list(range(len(ts)))})))
    return collect(s, s.stream_sql(WINDOW_COUNT), **opts)[1]


@pytest.mark.parametrize("unit", ["us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC"])
def test_sub_millisecond_arrow_timestamps_fall_in_their_windows(unit, tz):
    import datetime as dt
    ts = pa.array([dt.datetime(2026, 1, 1, 10, 0, 59, 999_999), dt.datetime(2026, 1, 1, 10, 1, 0, 1), None,
                   dt.datetime(1969, 12, 31, 23, 59, 59, 999_500)], pa.timestamp("us")).cast(pa.timestamp(unit, tz))
    assert _window_counts(ts) == [{"window_start": "2026-01-01T10:00:00", "c": 1},
                                  {"window_start": "2026-01-01T10:01:00", "c": 1},
                                  {"window_start": None, "c": 1},
                                  {"window_start": "1970-01-01T00:00:00", "c": 1}]    # trunc(-1 ms)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e30])
def test_a_float_time_that_is_no_millisecond_fails_naming_the_window_column(bad):
    from velaria.errors import ExecutionError
    with pytest.raises(ExecutionError, match="window time column holds a value that is not a time"):
        _window_counts(pa.array([1.0, bad]))


# ------------------------------------------------------------------------------ custom helpers
@pytest.mark.parametrize("rows", [[("a", 1), ("b", 1.5)], [{"k": "a", "v": 1}, {"k": "b", "v": 1.5}]])
def test_custom_source_refuses_a_value_its_schema_type_would_truncate(rows):
    import velaria
    src = velaria.CustomArrowStreamSource(pa.schema([("k", pa.string()), ("v", pa.int64())]), emit_rows=10)
    with pytest.raises(ValueError, match="column 'v' cannot hold these values as int64.*1.5"):
        src.to_arrow_batches(rows)
    assert src.to_arrow_batches([("a", 2.0), ("b", None)])[0].to_pylist() == [{"k": "a", "v": 2},
                                                                          {"k": "b", "v": None}]


# ------------------------------------------------------------------------------ one consumer
def test_a_second_concurrent_await_termination_is_refused_not_run_twice():
    s = Session()
    src = s.create_realtime_stream_source(["key", "v"])
    q, sink = _realtime_query(s, src)
    q.start()
    results: dict = {}

    def consume(name):
        try:
            results[name] = q.await_termination()
        except VelariaError as exc:
            results[name] = exc

    first = threading.Thread(target=consume, args=("first",))
    first.start()
    deadline = time.monotonic() + 5
    while q._rt._consumer is None and time.monotonic() < deadline:
        time.sleep(0.01)
    guard = threading.Timer(20, q.stop)        # before the fix the second call ran as a consumer too
    guard.start()
    try:
        consume("second")
    finally:
        guard.cancel()
    assert isinstance(results["second"], VelariaError)
    assert "already running in thread" in str(results["second"])
    for _ in range(50):
        src.push_rows([("a", 1)])
    src.close()
    first.join(20)
    assert results["first"] == 50
    assert _drain(sink)[-1] == {"key": "a", "s": 50}


def test_a_failed_directory_fsync_of_a_checkpoint_is_a_checkpoint_error(tmp_path, monkeypatch):
    from velaria.stream import checkpoint as ckpt
    real_fsync = os.fsync

    def fsync(fd):                               # files sync, the directory fails
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(ckpt.os, "fsync", fsync)
    q = _insert_into_csv(tmp_path / "out.csv", checkpoint_path=str(tmp_path / "q.ckpt"))
    with pytest.raises(ckpt.CheckpointError, match=r"cannot finish checkpoint write: .*q\.ckpt \(Input/output error\)"):
        q.await_termination()
    assert q.progress()["status"] == "failed"


class StopAfterSink(StreamSink):
    """Stops its own query from inside ``write`` once it has seen ``n`` batches."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.writes = 0
        self.query = None

    def _do_write(self, batch):
        self.writes += 1
        if self.writes == self.n:
            self.query.stop()


@pytest.mark.parametrize("mode", ["single-process", "local-workers"])
def test_a_sink_may_stop_its_own_query(mode, tmp_path):
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(events(6)))
    sink = StopAfterSink(2)
    ck = tmp_path / "q.ckpt"
    q = s.stream_sql(SUM_SQL).write_stream_sink(
        sink, trigger_interval_ms=0, execution_mode=mode, local_workers=2, checkpoint_path=str(ck))
    sink.query = q
    processed = q.await_termination()
    assert q.progress()["status"] == "stopped" and sink._state == "closed"
    # local workers complete the batches already sent to them (up to 4 ahead) before stopping
    assert 2 <= processed <= 6 if mode == "local-workers" else processed == 2
    assert f"batches_processed={processed}\n" in ck.read_text()


class CountingSink(StreamSink):
    def __init__(self):
        super().__init__()
        self.opens = self.closes = self.rows = 0

    def _do_open(self, context):
        self.opens += 1

    def _do_write(self, batch):
        self.rows += batch.num_rows

    def _do_close(self):
        self.closes += 1


def test_start_while_await_termination_runs_reopens_nothing():
    s = Session()
    src = s.create_realtime_stream_source(["key", "v"])
    s.create_temp_view("ev", s.read_realtime_stream_source(src))
    sink = CountingSink()
    q = s.stream_sql("SELECT key, v FROM ev").write_stream_sink(sink, trigger_interval_ms=0)
    q.start()
    runner = threading.Thread(target=q.await_termination)
    runner.start()
    deadline = time.monotonic() + 5
    while q._rt._consumer is None and time.monotonic() < deadline:
        time.sleep(0.01)
    src.push_rows([("a", 1)])
    assert q.start() is q
    assert (sink.opens, sink.closes) == (1, 0) and q.progress()["status"] in ("running", "backpressure")
    src.push_rows([("a", 2)])
    src.close()
    runner.join(20)
    assert (sink.opens, sink.closes, sink.rows) == (1, 1, 2)


def test_a_csv_stream_over_a_file_instead_of_a_directory_is_an_error_not_a_silent_wait(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("key,v\nx,1\n")
    s = Session()
    s.create_temp_view("ev", s.read_stream_csv_dir(str(path)))
    with pytest.raises(SourceFormatError, match=r"data\.csv is a file, not a directory"):
        s.stream_sql("SELECT key, SUM(v) AS s FROM ev GROUP BY key")
