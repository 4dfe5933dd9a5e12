"""Windows (tumbling, sliding, time formats), the built-in sources and sinks, the custom
stream helpers and the StreamingDataFrame methods."""
from __future__ import annotations

import os
import threading
import time

import pyarrow as pa
import pytest

from velaria import (CustomArrowStreamSink, CustomArrowStreamSource, Session, consume_arrow_batches_with_custom_sink,
                     create_stream_from_custom_source)
from velaria.errors import VelariaError, VelariaValueError
from velaria.exec.window import WindowAssignOperator, window_node
from velaria.plan import logical as L
from velaria.stream.plan import StreamScanSource

from stream_fakes import collect


def assign(values, window_ms, slide_ms=0, type=None):
    batch = pa.record_batch({"ts": pa.array(values, type)})
    scan = L.Scan(schema=batch.schema, source=StreamScanSource(batch.schema), table_name="t")
    op = WindowAssignOperator(window_node(scan, "ts", window_ms, slide_ms, "w"))
    return [(r["ts"], r["w"]) for r in op.push(batch)[0].to_pylist()]


# ------------------------------------------------------------------------------ windows
def test_tumbling_window_formats():
    got = assign(["2026-03-28T09:00:01.700", "2026-03-28 09:00:59", "2026-03-28", None, "1500"], 1500)
    assert got == [("2026-03-28T09:00:01.700", "2026-03-28T09:00:01.500"),
                   ("2026-03-28 09:00:59", "2026-03-28T09:00:58.500"),
                   ("2026-03-28", "2026-03-28T00:00:00"),
                   (None, None),
                   ("1500", "1970-01-01T00:00:01.500")]


def test_tumbling_window_truncates_toward_zero_for_negative_times():
    assert assign([-1, -60000, 59999], 60000, type=pa.int64()) == [
        (-1, "1970-01-01T00:00:00"), (-60000, "1969-12-31T23:59:00"), (59999, "1970-01-01T00:00:00")]


def test_sliding_window_expands_rows_in_ascending_window_order():
    got = assign([0, 45_000, None], 60_000, 30_000, pa.int64())
    assert got == [(0, "1969-12-31T23:59:30"), (0, "1970-01-01T00:00:00"),
                   (45_000, "1970-01-01T00:00:00"), (45_000, "1970-01-01T00:00:30"),
                   (None, None)]


def test_sliding_window_counts_match_upstream():
    s = Session()
    t = pa.table({"ts": ["2026-03-29T10:00:00", "2026-03-29T10:00:10", "2026-03-29T10:00:35"],
                  "key": ["u1"] * 3})
    s.create_temp_view("ev", s.create_stream_from_arrow(t))
    _, rows = collect(s, s.stream_sql("SELECT window_start, key, COUNT(*) AS event_count FROM ev "
                                      "WINDOW BY ts EVERY 60000 SLIDE 30000 AS window_start GROUP BY window_start, key"))
    assert {(r["window_start"], r["key"], r["event_count"]) for r in rows} == {
        ("2026-03-29T09:59:30", "u1", 2), ("2026-03-29T10:00:00", "u1", 3), ("2026-03-29T10:00:30", "u1", 1)}


def test_multi_aggregate_window_with_having_alias():
    s = Session()
    t = pa.table({"ts": ["2026-03-29T10:00:00", "2026-03-29T10:00:10", "2026-03-29T10:00:20", "2026-03-29T10:00:30"],
                  "key": ["u1", "u1", "u2", "u1"], "value": [10, 5, 4, 7]})
    s.create_temp_view("ev", s.create_stream_from_arrow(t))
    _, rows = collect(s, s.stream_sql(
        "SELECT window_start, key, COUNT(*) AS c, SUM(value) AS total, MIN(value) AS lo, MAX(value) AS hi, "
        "AVG(value) AS avg_value FROM ev WINDOW BY ts EVERY 60000 AS window_start GROUP BY window_start, key "
        "HAVING avg_value > 6"))
    assert rows == [{"window_start": "2026-03-29T10:00:00", "key": "u1", "c": 3, "total": 22, "lo": 5, "hi": 10,
                     "avg_value": 22 / 3}]


@pytest.mark.parametrize("kwargs, message", [
    ({"window_ms": 0}, "window size must be positive"),
    ({"window_ms": 1000, "slide_ms": 2000}, "window slide must be <= window size"),
])
def test_window_argument_errors(kwargs, message):
    s = Session()
    sdf = s.create_stream_from_arrow(pa.table({"ts": [1]}))
    with pytest.raises(VelariaValueError, match=message):
        sdf.window("ts", **kwargs)


def test_window_output_column_must_be_new():
    s = Session()
    sdf = s.create_stream_from_arrow(pa.table({"ts": [1], "w": ["x"]})).window("ts", 1000, output_column="w")
    with pytest.raises(VelariaValueError, match="window output column already exists: w"):
        collect(s, sdf)


def test_bad_timestamp_text_fails_the_query():
    s = Session()
    sdf = s.create_stream_from_arrow(pa.table({"ts": ["yesterday"]})).window("ts", 1000)
    with pytest.raises(VelariaError, match="unsupported timestamp format: yesterday"):
        collect(s, sdf)


# ------------------------------------------------------------------------------ sources
def test_record_batch_reader_keeps_batch_boundaries():
    s = Session()
    t = pa.table({"a": [1, 2, 3]})
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=2))
    q, rows = collect(s, s.create_stream_from_arrow(reader))
    assert q.progress()["batches_processed"] == 2 and q.progress()["last_source_offset"] == "2"
    assert [r["a"] for r in rows] == [1, 2, 3]


def test_realtime_source_and_sink_with_a_running_query():
    s = Session()
    src = s.create_realtime_stream_source(["key", "value"])
    sink = s.create_realtime_stream_sink()
    frame = s.read_realtime_stream_source(src).group_count(["key"], stateful=True, output_column="event_count")
    q = frame.write_stream_queue_sink(sink, trigger_interval_ms=0)
    q.start()
    t = threading.Thread(target=q.await_termination)
    t.start()
    src.push_rows([{"key": "u1", "value": 1}, ("u2", 2)])
    src.push_arrow(pa.table({"key": ["u1"], "value": [3]}))
    assert not q.progress()["source_is_bounded"]
    src.close()
    t.join(10)
    assert not t.is_alive() and sink.closed()
    rows = []
    while (b := sink.poll_arrow()) is not None:
        rows.extend(b.to_pylist())
    assert rows[-1] == {"key": "u1", "event_count": 2}
    assert q.progress()["last_source_offset"] == "2"


def test_realtime_source_errors():
    s = Session()
    src = s.create_realtime_stream_source(["a", "b"])
    with pytest.raises(VelariaError, match="queue stream source schema mismatch"):
        src.push_arrow(pa.table({"b": [1], "a": [2]}))
    with pytest.raises(VelariaError, match="row width does not match realtime source schema"):
        src.push_rows([(1,)])
    with pytest.raises(VelariaError, match="rows must contain dicts or sequences"):
        src.push_rows([5])
    with pytest.raises(VelariaError, match="read_realtime_stream_source expects a RealtimeStreamSource"):
        s.read_realtime_stream_source("nope")
    with pytest.raises(VelariaError, match="write_stream_queue_sink expects a RealtimeStreamSink"):
        s.create_stream_from_arrow(pa.table({"a": [1]})).write_stream_queue_sink(object())


def test_csv_directory_source_picks_up_new_files_and_never_half_files(tmp_path):
    s = Session()
    d = tmp_path / "in"
    d.mkdir()
    (d / "001.csv").write_text("key,value\na,1\nb,2\n")
    (d / "002.csv.tmp").write_text("key,value\na,100\n")          # being written: ignored
    (d / ".003.csv").write_text("key,value\na,1000\n")            # hidden: ignored
    s.create_temp_view("files", s.read_stream_csv_dir(str(d)))
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql("SELECT key, SUM(value) AS total FROM files GROUP BY key").write_stream_queue_sink(
        sink, trigger_interval_ms=0)
    q.start()
    assert q.await_termination(max_batches=1) == 1
    os.rename(d / "002.csv.tmp", d / "002.csv")                    # renamed into place: read
    assert q.await_termination(max_batches=1) == 1
    assert q.progress()["last_source_offset"] == "002.csv" and not q.progress()["source_is_bounded"]
    rows = []
    while (b := sink.poll_arrow()) is not None:
        rows.extend(b.to_pylist())
    assert rows[-1] == {"key": "a", "total": 101}


def test_unbounded_source_runs_until_stop(tmp_path):
    s = Session()
    sdf = s.read_stream_csv_dir(str(tmp_path / "missing"))
    q = sdf.write_stream_console(trigger_interval_ms=0)
    q.start()
    t = threading.Thread(target=q.await_termination)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()
    q.stop()
    t.join(5)
    assert not t.is_alive() and q.progress()["status"] == "stopped"


def test_create_source_table_over_a_directory(tmp_path):
    s = Session()
    (tmp_path / "a.csv").write_text("ts,key,value\n2026-03-29T10:00:00,u1,3\n")
    s.sql(f"CREATE SOURCE TABLE src (ts TEXT, key TEXT, value BIGINT) USING csv OPTIONS(path: '{tmp_path}')")
    s.sql(f"CREATE SINK TABLE out (window_start TEXT, key TEXT, total BIGINT) USING csv "
          f"OPTIONS(path: '{tmp_path / 'out' / 'o.csv'}')")
    q = s.start_stream_sql("INSERT INTO out SELECT window_start, key, SUM(value) AS total FROM src "
                           "WINDOW BY ts EVERY 60000 AS window_start GROUP BY window_start, key",
                           trigger_interval_ms=0)
    assert q.await_termination(max_batches=1) == 1
    assert (tmp_path / "out" / "o.csv").read_bytes() == b"window_start,key,total\r\n2026-03-29T10:00:00,u1,3\r\n"
    with pytest.raises(VelariaError, match="INSERT INTO is not allowed on SOURCE TABLE"):
        s.sql("INSERT INTO src VALUES ('x', 'y', 1)")
    with pytest.raises(VelariaError, match="SINK"):
        s.sql("SELECT * FROM out")


# ------------------------------------------------------------------------------ DataFrame methods
def test_streaming_dataframe_methods():
    s = Session()
    t = pa.table({"k": ["a", "b", None, "a"], "v": [1, 2, 3, 4]})
    sdf = s.create_stream_from_arrow(t.to_batches(max_chunksize=2))
    _, rows = collect(s, sdf.filter("v", ">", 1).with_column("v2", "v").drop("k").select(["v2"]))
    assert [r["v2"] for r in rows] == [2, 3, 4]
    _, rows = collect(s, sdf.filter("k", "=", None))
    assert rows == [{"k": None, "v": 3}]
    _, rows = collect(s, sdf.limit(1))
    assert [r["v"] for r in rows] == [1, 3]                        # per micro-batch
    _, rows = collect(s, sdf.group_sum(["k"], "v"))
    assert rows == [{"k": "a", "sum": 1.0}, {"k": "b", "sum": 2.0}, {"k": None, "sum": 3.0}, {"k": "a", "sum": 4.0}]
    _, rows = collect(s, sdf.group_sum(["k"], "v", stateful=True))
    assert rows[2:] == [{"k": "a", "sum": 5.0}, {"k": None, "sum": 3.0}]      # running totals
    with pytest.raises(VelariaError, match="value must be None, int, float, bool, or string"):
        sdf.filter("v", ">", object())
    with pytest.raises(VelariaValueError, match="unsupported filter op: ~"):
        sdf.filter("v", "~", 1)


def test_write_stream_csv_and_console(tmp_path, capsys):
    s = Session()
    sdf = s.create_stream_from_arrow(pa.table({"k": ["a"], "v": [1.5]}))
    q = sdf.write_stream_csv(str(tmp_path / "o.csv"), trigger_interval_ms=0)
    q.start()
    q.await_termination()
    assert (tmp_path / "o.csv").read_bytes() == b"k,v\r\na,1.5\r\n"
    q = sdf.write_stream_console(trigger_interval_ms=0)
    q.start()
    q.await_termination()
    assert "[console:console] batch\nk\tv\na\t1.5\n" in capsys.readouterr().out
    assert q.progress()["sink_is_blocking"] is False


# ------------------------------------------------------------------------------ custom helpers
def test_custom_source_and_sink_helpers():
    src = CustomArrowStreamSource(emit_rows=2, emit_interval_seconds=60)
    tables = src.to_arrow_batches([{"a": 1}, {"a": 2}, {"a": 3}])
    assert [t.num_rows for t in tables] == [2, 1]
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    seq = CustomArrowStreamSource(schema, emit_rows=10)
    assert seq.to_arrow_batches([(1, "x")])[0].to_pylist() == [{"a": 1, "b": "x"}]
    with pytest.raises(ValueError, match="schema is required when rows are sequence-based"):
        CustomArrowStreamSource().to_arrow_batches([(1, 2)])
    with pytest.raises(ValueError, match="row width does not match schema"):
        seq.to_arrow_batches([(1,)])
    with pytest.raises(ValueError, match="mixed row types are not supported"):
        seq.to_arrow_batches([(1, "x"), {"a": 1}])
    with pytest.raises(ValueError, match="emit_rows must be > 0"):
        CustomArrowStreamSource(emit_rows=0)
    with pytest.raises(ValueError, match="emit_interval_seconds must be > 0"):
        CustomArrowStreamSink(print, emit_interval_seconds=0)
    with pytest.raises(ValueError, match="on_emit must be callable"):
        CustomArrowStreamSink(None)
    emitted = []
    sink = CustomArrowStreamSink(emitted.append, emit_rows=3, emit_interval_seconds=60)
    consume_arrow_batches_with_custom_sink([pa.table({"a": [1, 2]}), pa.table({"a": [3, 4]}), pa.table({"a": [5]})], sink)
    assert [t.num_rows for t in emitted] == [4, 1]
    s = Session()
    sdf = create_stream_from_custom_source(s, [{"a": i} for i in range(5)], emit_rows=2)
    q, rows = collect(s, sdf)
    assert q.progress()["batches_processed"] == 3 and [r["a"] for r in rows] == list(range(5))


def _iso(ms: int) -> str:
    from datetime import datetime, timedelta, timezone
    dt = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}" if ms % 1000 else "")


@pytest.mark.parametrize("slide", [15_000, 20_000, 30_000, 45_000, 60_000])
def test_window_assignment_matches_the_definition(slide):
    """The fast paths (rows in exactly w/s windows; sort-free formatting) against the plain
    definition, with and without NULL and negative times (which take the general path)."""
    import random
    rng = random.Random(slide)
    values = [rng.randrange(0, 400_000) for _ in range(200)]
    for extra in ([], [None, -7_000, 1_500]):
        vals = values + extra
        want = []
        for ts in vals:
            if ts is None:
                want.append((None, None))
            elif slide == 60_000:                    # tumbling: truncation toward zero
                want.append((ts, _iso(int(ts / 60_000) * 60_000)))
            else:
                last = int(ts / slide) * slide
                starts = sorted(last - i * slide for i in range(-(-60_000 // slide)))
                want.extend((ts, _iso(st)) for st in starts if st <= ts < st + 60_000)
        assert assign(vals, 60_000, slide, pa.int64()) == want
