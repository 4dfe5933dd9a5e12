"""Stream runtime contract: progress fields, snapshot_json, explain sections, explain/progress
agreement, lifecycle order, backpressure, failures, options and stream SQL errors."""
from __future__ import annotations

import csv
import json

import pyarrow as pa
import pytest

import velaria
from velaria import Session
from velaria.errors import (CatalogNotFoundError, SQLSemanticError, SQLTableKindError, SQLUnsupportedError,
                            VelariaError, VelariaValueError)
from velaria.stream import LifecycleError, SourceContext
from velaria.stream.progress import PROGRESS_KEYS

from stream_fakes import RecordingSink, RecordingSource, collect, events

CONTRACT_FIELDS = {
    "query_id": str, "status": str, "requested_execution_mode": str, "execution_mode": str,
    "execution_reason": str, "transport_mode": str, "batches_pulled": int, "batches_processed": int,
    "blocked_count": int, "max_backlog_batches": int, "inflight_batches": int, "inflight_partitions": int,
    "last_batch_latency_ms": int, "last_sink_latency_ms": int, "last_state_latency_ms": int,
    "last_source_offset": str, "backpressure_active": bool, "actor_eligible": bool, "used_actor_runtime": bool,
    "used_shared_memory": bool, "has_stateful_ops": bool, "has_window": bool, "sink_is_blocking": bool,
    "source_is_bounded": bool, "estimated_partitions": int, "projected_payload_bytes": int,
    "sampled_batches": int, "sampled_rows_per_batch": int, "average_projected_payload_bytes": int,
    "actor_speedup": float, "compute_to_overhead_ratio": float, "estimated_state_size_bytes": int,
    "estimated_batch_cost": int, "backpressure_max_queue_batches": int, "backpressure_high_watermark": int,
    "backpressure_low_watermark": int, "checkpoint_delivery_mode": str,
}

AGG_SQL = "SELECT key, SUM(value) AS value_sum FROM events WHERE value > 0 GROUP BY key"


@pytest.fixture
def s():
    session = Session()
    session.create_temp_view("events", session.create_stream_from_arrow(events()))
    return session


def run_to_sink(session, sql, **opts):
    return collect(session, session.stream_sql(sql), **opts)


# ------------------------------------------------------------------------------ progress
def test_every_progress_field_is_present_with_its_type(s):
    q, _ = run_to_sink(s, AGG_SQL)
    p = q.progress()
    for name, typ in CONTRACT_FIELDS.items():
        assert name in p, name
        assert type(p[name]) is typ, (name, p[name])
    assert p["status"] == "stopped"
    assert p["query_id"].startswith("stream-query-")
    assert p["batches_pulled"] == p["batches_processed"] == 3
    assert p["last_source_offset"] == "3"
    assert p["inflight_batches"] == p["inflight_partitions"] == 0
    assert p["checkpoint_delivery_mode"] == "at-least-once"
    assert p["has_stateful_ops"] and not p["has_window"] and p["source_is_bounded"]
    assert p["estimated_state_size_bytes"] == 1024
    assert p["backpressure_max_queue_batches"] == 2 and p["backpressure_high_watermark"] == 2


def test_snapshot_json_has_the_same_keys_and_values(s):
    q, _ = run_to_sink(s, AGG_SQL)
    snap = json.loads(q.snapshot_json())
    assert set(snap) == set(q.progress())
    assert snap == q.progress()
    assert " " not in q.snapshot_json().replace("configured single-process execution", "").split('"aggregate_reason"')[0]
    assert list(q.progress())[:7] == list(PROGRESS_KEYS)[:7]


#: progress keys beyond the contract, each documented (docs/streaming.md, docs/delivery.md)
DOCUMENTED_EXTENSIONS = {"aggregate_impl", "aggregate_reason", "engine", "aggregate_path", "durability_profile",
                         "delivery_guarantee", "delivery_guarantee_limited_by"}


def test_progress_keys_are_the_contract_fields_plus_documented_extensions(s):
    q, _ = run_to_sink(s, AGG_SQL)
    assert set(q.progress()) == set(CONTRACT_FIELDS) | DOCUMENTED_EXTENSIONS
    assert set(json.loads(q.snapshot_json())) == set(CONTRACT_FIELDS) | DOCUMENTED_EXTENSIONS
    assert q.progress()["checkpoint_delivery_mode"] in ("at-least-once", "best-effort")


def test_query_ids_count_up_and_status_starts_created(s):
    q1 = s.stream_sql(AGG_SQL).write_stream_queue_sink(s.create_realtime_stream_sink())
    q2 = s.stream_sql(AGG_SQL).write_stream_queue_sink(s.create_realtime_stream_sink())
    n1, n2 = (int(q.progress()["query_id"].rsplit("-", 1)[1]) for q in (q1, q2))
    assert n2 == n1 + 1
    assert q1.progress()["status"] == "created"
    assert q1.start() is q1 and q1.progress()["status"] == "running"
    q1.stop()
    assert q1.progress()["status"] == "stopped"


# ------------------------------------------------------------------------------ explain
UPSTREAM_EXAMPLE_1 = """logical
source=events
1. Scan source=events
2. Filter column=value op=>
3. Aggregate keys=[key] aggs=[SUM(value) AS value_sum] stateful=true
physical
writes_to_sink=false
has_window=false
has_stateful_ops=true
partition_local_prefix_nodes=2
actor_eligible=true
actor_eligibility_reason=final stateful grouped aggregate with supported SUM/COUNT/MIN/MAX/AVG outputs is eligible for actor acceleration
1. Scan partition_local=true
2. Filter partition_local=true
3. Aggregate partition_local=false stateful=true
strategy
requested_mode=single-process
selected_mode=single-process
"""


def test_explain_has_exactly_three_sections_with_upstream_lines(s):
    text = s.explain_stream_sql(AGG_SQL)
    lines = text.splitlines()
    assert [l for l in lines if l in ("logical", "physical", "strategy")] == ["logical", "physical", "strategy"]
    assert text.startswith(UPSTREAM_EXAMPLE_1)
    strategy = lines[lines.index("strategy") + 1:]
    keys = [l.split("=", 1)[0] for l in strategy]
    assert keys[:29] == ["requested_mode", "selected_mode", "simd_backend", "compiled_backends", "aggregate_impl",
                         "aggregate_reason", "reason", "actor_eligible", "used_actor_runtime", "transport_mode",
                         "has_window", "has_stateful_ops", "sink_is_blocking", "source_is_bounded",
                         "estimated_state_size_bytes", "estimated_batch_cost", "backpressure_max_queue_batches",
                         "backpressure_high_watermark", "backpressure_low_watermark", "checkpoint_delivery_mode",
                         "local_worker_count", "max_inflight_partitions", "shared_memory_transport",
                         "shared_memory_min_payload_bytes", "columnar_operator", "columnar_fallback_type",
                         "columnar_reason", "columnar_input_row_count", "columnar_affected_columns"]
    assert "estimated_batch_cost=384" in strategy and "aggregate_impl=local-global" in strategy
    assert text.endswith("\n")


def test_explain_local_workers_lines(s):
    text = s.explain_stream_sql(AGG_SQL, execution_mode="local-workers", local_workers=4, max_inflight_partitions=4)
    assert "requested_mode=local-workers\nselected_mode=local-workers\n" in text
    assert ("reason=configured local-workers execution; credit-based scheduling is available for the eligible "
            "grouped aggregate\n") in text
    assert "local_worker_count=4\n" in text and "max_inflight_partitions=4\n" in text


@pytest.mark.parametrize("sql, expected, extra", [
    ("SELECT key, COUNT(*) AS c FROM events WINDOW BY ts EVERY 60000 SLIDE 30000 AS window_start "
     "GROUP BY window_start, key",
     ["1. Scan source=events", "2. WindowAssign time_column=ts window_ms=60000 slide_ms=30000 output=window_start",
      "3. Aggregate keys=[window_start, key] aggs=[COUNT(*) AS c] stateful=true", "4. Project columns=[key, c]"],
     ["actor_eligible=false", "actor_eligibility_reason=actor acceleration requires the eligible grouped aggregate "
      "to be the final stream transform", "4. Project partition_local=true", "aggregate_impl=hash-ref",
      "estimated_batch_cost=448", "partition_local_prefix_nodes=2"]),
    ("SELECT UPPER(key) AS k, value AS v, LENGTH(key) FROM events WHERE key != 'x' ORDER BY v DESC LIMIT 2",
     ["1. Scan source=events", "2. Filter column=key op=!=", "3. WithColumn output=k function=upper args=[column(key)]",
      "4. WithColumn output=length_key function=length args=[column(key)]", "5. WithColumn output=v from=value",
      "6. Project columns=[k, v, length_key]", "7. OrderBy columns=[v DESC]", "8. Limit limit=2"],
     ["partition_local_prefix_nodes=6", "actor_eligibility_reason=query plan is not eligible for actor acceleration",
      "aggregate_impl=not-applicable", "aggregate_reason=\n", "estimated_state_size_bytes=0", "estimated_batch_cost=448"]),
    ("SELECT LOWER(key), SUM(value) FROM events GROUP BY LOWER(key) HAVING SUM(value) > 3",
     ["1. Scan source=events", "2. WithColumn output=__group_expr_0 function=lower args=[column(key)]",
      "3. Aggregate keys=[__group_expr_0] aggs=[SUM(value) AS sum_value] stateful=true",
      "4. Filter column=sum_value op=>", "5. WithColumn output=lower_key from=__group_expr_0",
      "6. Project columns=[lower_key, sum_value]"], []),
    ("SELECT * FROM events", ["1. Scan source=events"], ["partition_local_prefix_nodes=1", "estimated_batch_cost=64"]),
])
def test_upstream_logical_plans(s, sql, expected, extra):
    text = s.explain_stream_sql(sql)
    logical = text.split("physical\n")[0].splitlines()[2:]
    assert logical == expected
    for e in extra:
        assert e in text


def test_explain_of_insert_names_the_sink(s, tmp_path):
    s.sql(f"CREATE SINK TABLE out_sink (window_start TEXT, key TEXT, value_sum BIGINT) USING csv "
          f"OPTIONS(path: '{tmp_path / 'o.csv'}', delimiter: ',')")
    s.create_temp_view("ws", s.create_stream_from_arrow(
        pa.table({"window_start": ["2026-03-28T09:00:00"], "key": ["a"], "value": [1]})))
    text = s.explain_stream_sql("INSERT INTO out_sink SELECT window_start, key, SUM(value) AS value_sum FROM ws "
                                "GROUP BY window_start, key")
    assert text.startswith("logical\nsource=ws\nsink=out_sink\n1. Scan source=ws\n"
                           "2. Aggregate keys=[window_start, key] aggs=[SUM(value) AS value_sum] stateful=true\n")
    assert "physical\nwrites_to_sink=true\nsink=out_sink\n" in text
    assert "sink_is_blocking=true" in text and "estimated_batch_cost=320" in text
    assert "partition_local_prefix_nodes=1" in text


SHARED = [("requested_mode", "requested_execution_mode"), ("selected_mode", "execution_mode"),
          ("reason", "execution_reason"), ("transport_mode", "transport_mode"), ("actor_eligible", "actor_eligible"),
          ("used_actor_runtime", "used_actor_runtime"), ("has_window", "has_window"),
          ("has_stateful_ops", "has_stateful_ops"), ("sink_is_blocking", "sink_is_blocking"),
          ("source_is_bounded", "source_is_bounded"), ("estimated_state_size_bytes", "estimated_state_size_bytes"),
          ("aggregate_impl", "aggregate_impl"), ("aggregate_reason", "aggregate_reason"),
          ("checkpoint_delivery_mode", "checkpoint_delivery_mode"),
          ("backpressure_high_watermark", "backpressure_high_watermark"),
          ("backpressure_low_watermark", "backpressure_low_watermark")]


@pytest.mark.parametrize("opts", [{}, {"checkpoint_delivery_mode": "best-effort"},
                                  {"execution_mode": "local-workers", "local_workers": 0}])
def test_explain_and_progress_agree_on_every_shared_decision(s, tmp_path, opts):
    s.sql(f"CREATE SINK TABLE o (key TEXT, value_sum BIGINT) USING csv OPTIONS(path: '{tmp_path / 'o.csv'}')")
    sql = "INSERT INTO o " + AGG_SQL
    explained = s.explain_stream_sql(sql, **opts)
    q = s.start_stream_sql(sql, trigger_interval_ms=0, **opts)
    q.await_termination()
    live = q.explain()
    p = q.progress()
    strategy = dict(l.split("=", 1) for l in live.split("strategy\n")[1].splitlines())
    for ekey, pkey in SHARED:
        value = p[pkey]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        assert strategy[ekey] == text, (ekey, strategy[ekey], text)
    # before running, explain printed the same plan sections
    assert explained.split("strategy\n")[0] == live.split("strategy\n")[0]


# ------------------------------------------------------------------------------ lifecycle
def test_lifecycle_order_recorded_by_custom_source_and_sink():
    s = Session()
    calls: list = []
    src = RecordingSource(events(2), calls)
    sink = RecordingSink(calls)
    q = s.create_stream_from_source(src).write_stream_sink(sink, trigger_interval_ms=0)
    q.start()
    assert q.await_termination() == 2
    names = [c[0] for c in calls]
    assert names[:2] == ["source.open", "sink.open"]
    assert names[-2:] == ["source.close", "sink.close"]
    consumer = [c for c in calls if c[0] != "source.next_batch"]
    per_batch = ["sink.write", "sink.flush", "source.checkpoint", "sink.checkpoint", "source.ack"]
    assert [c[0] for c in consumer[2:-2]] == per_batch * 2
    assert src.acked == ["1", "2"]


def test_ack_comes_after_the_checkpoint_file_is_written(tmp_path):
    s = Session()
    path = tmp_path / "ck"
    seen = []

    class Src(RecordingSource):
        def _do_ack(self, token):
            seen.append((token, path.read_text().split("last_source_offset=")[1].split("\n")[0]))

    q = s.create_stream_from_source(Src(events(2))).write_stream_sink(RecordingSink(), trigger_interval_ms=0,
                                                                       checkpoint_path=str(path))
    q.start()
    q.await_termination()
    assert seen == [("1", "1"), ("2", "2")]


def test_wrong_call_order_is_an_error():
    src = RecordingSource(events(1))
    with pytest.raises(LifecycleError, match="call open"):
        src.next_batch(None)
    src.open(SourceContext("q", 0, 2, 8, "", True))
    with pytest.raises(LifecycleError, match="open source"):
        src.open(SourceContext("q", 0, 2, 8, "", True))
    with pytest.raises(LifecycleError, match="without a checkpoint"):
        src.ack("1")
    src.close()
    src.close()                         # idempotent
    with pytest.raises(LifecycleError):
        src.next_batch(None)
    sink = RecordingSink()
    with pytest.raises(LifecycleError):
        sink.write(events(1)[0])


def test_a_sink_error_fails_the_query_and_closes_everything(tmp_path):
    s = Session()
    calls: list = []
    ck = tmp_path / "ck"
    q = s.create_stream_from_source(RecordingSource(events(3), calls)).write_stream_sink(
        RecordingSink(calls, fail_on=2), trigger_interval_ms=0, checkpoint_path=str(ck))
    q.start()
    with pytest.raises(OSError, match="disk full"):
        q.await_termination()
    assert q.progress()["status"] == "failed"
    assert ("source.close", "") in calls and ("sink.close", "") in calls
    assert "last_source_offset=1\n" in ck.read_text()       # the last checkpoint stays valid


def test_a_transform_error_fails_the_query(tmp_path):
    s = Session()
    s.create_temp_view("t", s.create_stream_from_arrow(pa.table({"x": ["1", "oops"]})))
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql("SELECT CAST(x AS BIGINT) AS y FROM t").write_stream_queue_sink(sink, trigger_interval_ms=0)
    q.start()
    with pytest.raises(VelariaError):
        q.await_termination()
    assert q.progress()["status"] == "failed"
    assert sink.closed()


# ------------------------------------------------------------------------------ backpressure
def test_backpressure_engages_with_a_slow_sink():
    s = Session()
    q = s.create_stream_from_source(RecordingSource(events(8))).write_stream_sink(
        RecordingSink(delay_s=0.03), trigger_interval_ms=0)
    q.start()
    assert q.await_termination() == 8
    p = q.progress()
    assert p["blocked_count"] >= 1
    assert p["max_backlog_batches"] == 2            # never more than max_inflight_batches queued
    assert p["batches_pulled"] == 8 and not p["backpressure_active"]


def test_max_batches_returns_batches_processed_in_this_call(s):
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql("SELECT * FROM events").write_stream_queue_sink(sink, trigger_interval_ms=0)
    q.start()
    assert q.await_termination(max_batches=1) == 1
    assert q.progress()["batches_processed"] == 1
    assert q.progress()["status"] == "stopped"


# ------------------------------------------------------------------------------ options
@pytest.mark.parametrize("opts, message", [
    ({"execution_mode": "threads"}, "execution_mode must be 'single-process' or 'local-workers'"),
    ({"checkpoint_delivery_mode": "exactly-once"}, "checkpoint_delivery_mode must be 'at-least-once' or 'best-effort'"),
])
def test_bad_option_values(s, opts, message):
    with pytest.raises(VelariaValueError) as info:
        s.explain_stream_sql(AGG_SQL, **opts)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)


def test_window_eviction_is_refused_not_ignored(s):
    with pytest.raises(VelariaValueError, match="max_retained_windows=3 is not supported"):
        s.explain_stream_sql(AGG_SQL, max_retained_windows=3)


def test_bad_option_types(s):
    with pytest.raises(TypeError, match="trigger_interval_ms must be an int"):
        s.explain_stream_sql(AGG_SQL, trigger_interval_ms=1.5)
    with pytest.raises(TypeError, match="unexpected stream option"):
        s.explain_stream_sql(AGG_SQL, trigger_ms=1)


def test_upstream_options_by_position_and_their_defaults(s):
    """Native Velaria's six stream SQL options may be passed by position, in its order, with
    its defaults; the other options stay keyword-only."""
    import inspect

    from velaria.stream.session_mixin import UPSTREAM_STREAM_OPTIONS
    from velaria.stream.strategy import StreamOptions

    for method in (s.start_stream_sql, s.explain_stream_sql):
        params = list(inspect.signature(method).parameters.values())
        assert [p.name for p in params[1:7]] == list(UPSTREAM_STREAM_OPTIONS)
        assert all(p.default == getattr(StreamOptions(), p.name) for p in params[1:7])
    by_position = s.explain_stream_sql(AGG_SQL, 0, "", "best-effort", "local-workers", 2)
    by_name = s.explain_stream_sql(AGG_SQL, trigger_interval_ms=0, checkpoint_delivery_mode="best-effort",
                                   execution_mode="local-workers", local_workers=2)
    assert by_position == by_name and "best-effort" in by_position
    with pytest.raises(TypeError):
        s.explain_stream_sql(AGG_SQL, 0, trigger_interval_ms=0)
    with pytest.raises(TypeError):
        s.explain_stream_sql(AGG_SQL, 0, "", "best-effort", "local-workers", 2, 0, 5)


# ------------------------------------------------------------------------------ stream SQL errors
@pytest.fixture
def kinds(s, tmp_path):
    s.create_temp_view("batch_t", s.create_dataframe_from_arrow(pa.table({"a": [1]})))
    s.sql(f"CREATE SINK TABLE snk (key TEXT, v BIGINT) USING csv OPTIONS(path: '{tmp_path / 'x.csv'}')")
    return s


@pytest.mark.parametrize("method, sql, cls, message", [
    ("stream_sql", "SELECT * FROM snk", SQLTableKindError,
     "table-kind constraint violation: stream SQL source table cannot be SINK TABLE: snk"),
    ("stream_sql", "SELECT * FROM batch_t", SQLTableKindError,
     "table-kind constraint violation: stream SQL source must be created with CREATE SOURCE TABLE: batch_t"),
    ("stream_sql", "SELECT * FROM nope", CatalogNotFoundError, "stream view not found: nope"),
    ("start_stream_sql", "INSERT INTO batch_t SELECT * FROM events", SQLTableKindError,
     "table-kind constraint violation: stream SQL sink must be created with CREATE SINK TABLE: batch_t"),
    ("start_stream_sql", "INSERT INTO events SELECT * FROM events", SQLTableKindError,
     "table-kind constraint violation: stream SQL sink cannot be SOURCE TABLE: events"),
    ("start_stream_sql", "INSERT INTO nowhere SELECT * FROM events", CatalogNotFoundError,
     "stream sink not found: nowhere"),
    ("stream_sql", "INSERT INTO snk SELECT * FROM events", SQLUnsupportedError,
     "not supported in SQL v1: streamSql only supports SELECT"),
    ("start_stream_sql", "INSERT INTO snk (key) SELECT key FROM events", SQLUnsupportedError,
     "not supported in SQL v1: stream SQL does not support INSERT column list"),
    ("stream_sql", "SELECT key FROM events UNION ALL SELECT key FROM events", SQLUnsupportedError,
     "not supported in SQL v1: stream SQL does not support UNION"),
    ("stream_sql", "SELECT a.key FROM events a JOIN events b ON a.key = b.key", SQLUnsupportedError,
     "not supported in SQL v1: stream SQL does not support JOIN"),
    ("stream_sql", "SELECT 1 AS one, key FROM events", SQLUnsupportedError,
     "not supported in SQL v1: stream SQL does not support literal projection"),
    ("stream_sql", "SELECT *, key FROM events", SQLUnsupportedError,
     "not supported in SQL v1: stream SQL SELECT * cannot be mixed with other projections"),
    ("stream_sql", "SELECT key FROM events WHERE value > 1 AND value < 5", SQLUnsupportedError,
     "not supported in SQL v1: stream SQL WHERE does not support AND/OR"),
    ("stream_sql", "SELECT SUM(value) AS s FROM events HAVING SUM(value) > 1", SQLSemanticError,
     "GROUP BY required for HAVING"),
    ("stream_sql", "SELECT key, COUNT(value) AS c FROM events GROUP BY key", SQLUnsupportedError,
     "stream SQL only supports COUNT(*)"),
    ("stream_sql", "SELECT key FROM events GROUP BY key", SQLSemanticError,
     "stream SQL aggregate query requires at least one aggregate output"),
    ("stream_sql", "SELECT key, MEDIAN(value) AS m FROM events GROUP BY key", SQLUnsupportedError,
     "stream SQL does not support the aggregate MEDIAN"),
    ("stream_sql", "SELECT STRING_AGG(key) AS k FROM events", SQLUnsupportedError,
     "stream SQL does not support the aggregate STRING_AGG"),
    ("stream_sql", "SELECT key, SUM(value) AS s FROM events GROUP BY key HAVING SUM(value) > 1 OR SUM(value) < 0",
     SQLUnsupportedError, "not supported in SQL v1: stream SQL HAVING does not support AND/OR"),
    ("stream_sql", "SELECT key, COUNT(*) AS c FROM events WINDOW BY ts EVERY 1000 SLIDE 2000 AS w GROUP BY key",
     SQLUnsupportedError, "not supported in SQL v1: stream SQL WINDOW SLIDE must be > 0 and <= EVERY"),
    ("explain_stream_sql", "CREATE TABLE z (a INT)", SQLUnsupportedError,
     "not supported in SQL v1: explainStreamSql only supports SELECT or INSERT INTO ... SELECT"),
])
def test_stream_sql_errors(kinds, method, sql, cls, message):
    with pytest.raises(cls) as info:
        getattr(kinds, method)(sql)
    assert info.value.message == message


def test_order_by_needs_a_bounded_source(s):
    src = s.create_realtime_stream_source(["k", "v"])
    s.create_temp_view("rt", s.read_realtime_stream_source(src))
    with pytest.raises(VelariaError, match="stream ORDER BY requires a bounded source"):
        s.explain_stream_sql("SELECT k, v FROM rt ORDER BY v")


def test_stream_view_names_are_not_reusable(s):
    with pytest.raises(VelariaError, match="table already exists: events"):
        s.create_temp_view("events", s.create_stream_from_arrow(events()))
    with pytest.raises(VelariaError, match="table already exists: events"):
        s.create_temp_view("events", s.create_dataframe_from_arrow(pa.table({"a": [1]})))


def test_csv_sink_writes_rfc4180_with_declared_columns(tmp_path):
    s = Session()
    t = pa.table({"k": ['a,b', 'say "hi"', "line\nbreak", None], "v": [1, 2, 3, 4]})
    s.create_temp_view("t", s.create_stream_from_arrow(t))
    out = tmp_path / "sub" / "o.csv"
    s.sql(f"CREATE SINK TABLE o (name TEXT, amount BIGINT) USING csv OPTIONS(path: '{out}')")
    q = s.start_stream_sql("INSERT INTO o SELECT k, v FROM t", trigger_interval_ms=0)
    q.await_termination()
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["name", "amount"], ["a,b", "1"], ['say "hi"', "2"], ["line\nbreak", "3"], ["", "4"]]
    q2 = s.start_stream_sql("INSERT INTO o SELECT k, v FROM t", trigger_interval_ms=0)
    q2.await_termination()
    with open(out, newline="") as f:
        assert len(list(csv.reader(f))) == 9             # appended, header written once


def test_csv_sink_width_mismatch_is_a_planning_error(tmp_path):
    s = Session()
    s.create_temp_view("t", s.create_stream_from_arrow(pa.table({"k": ["a"], "v": [1]})))
    s.sql(f"CREATE SINK TABLE o (name TEXT) USING csv OPTIONS(path: '{tmp_path / 'o.csv'}')")
    with pytest.raises(SQLSemanticError, match="the sink declares 1"):
        s.start_stream_sql("INSERT INTO o SELECT k, v FROM t")


def test_exports():
    for name in ["StreamingDataFrame", "StreamingQuery", "RealtimeStreamSource", "RealtimeStreamSink",
                 "CustomArrowStreamSource", "CustomArrowStreamSink", "CustomStreamEmitOptions",
                 "create_stream_from_custom_source", "consume_arrow_batches_with_custom_sink"]:
        assert name in velaria.__all__ and hasattr(velaria, name)


@pytest.mark.parametrize("sql, engine, paths", [
    ("SELECT key, SUM(value) AS s FROM events GROUP BY key", "accel", ("arrow-hash",)),
    ("SELECT key, value, COUNT(*) AS c FROM events GROUP BY key, value", "accel", ("packed-hash",)),
    ("SELECT value, COUNT(*) AS c FROM events GROUP BY value", "accel", ("dense-c", "dense-numpy")),
    ("SELECT key, SUM(value) AS s FROM events GROUP BY key", "reference", ("reference",)),
])
def test_the_aggregate_path_that_ran_is_reported(sql, engine, paths):
    from velaria import accel
    if engine == "accel" and not accel.available():
        pytest.skip("accelerator unavailable")
    session = Session(engine)
    session.create_temp_view("events", session.create_stream_from_arrow(events()))
    explained = session.explain_stream_sql(sql)
    q, _ = run_to_sink(session, sql)
    assert q.progress()["aggregate_path"] in paths
    assert f"aggregate_path={q.progress()['aggregate_path']}\n" in q.explain()
    assert any(f"aggregate_path={p}\n" in explained for p in paths)


@pytest.mark.parametrize("kind", ["SINK", "SOURCE"])
def test_stream_table_unknown_option_is_an_error_with_a_suggestion(tmp_path, kind):
    """A typo in CREATE SOURCE / SINK TABLE OPTIONS must not be ignored (the sink would write
    with the default delimiter)."""
    target = tmp_path / ("out.csv" if kind == "SINK" else "in")
    s = velaria.Session()
    with pytest.raises(velaria.errors.SQLSemanticError, match="unknown option 'delimeter'; did you mean 'delimiter'"):
        s.sql(f"CREATE {kind} TABLE t (k TEXT) USING csv OPTIONS(path: '{target}', delimeter: ';')")
    assert "t" not in s.tables()
