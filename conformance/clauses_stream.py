"""Clauses on the stream runtime: progress, snapshot_json, explain, execution modes,
checkpoint delivery, lifecycle and windows. They use only the public API (Session stream
methods, StreamingDataFrame, StreamingQuery, the realtime sink), so they run against any
target, native Velaria included.
"""
from __future__ import annotations

import json
import os
import tempfile

from . import ClauseFailure, Context, clause

_FIELDS = ("query_id status requested_execution_mode execution_mode execution_reason transport_mode "
           "batches_pulled batches_processed blocked_count max_backlog_batches inflight_batches inflight_partitions "
           "last_batch_latency_ms last_sink_latency_ms last_state_latency_ms last_source_offset backpressure_active "
           "actor_eligible used_actor_runtime used_shared_memory has_stateful_ops has_window sink_is_blocking "
           "source_is_bounded estimated_partitions projected_payload_bytes sampled_batches sampled_rows_per_batch "
           "average_projected_payload_bytes actor_speedup compute_to_overhead_ratio estimated_state_size_bytes "
           "estimated_batch_cost backpressure_max_queue_batches backpressure_high_watermark "
           "backpressure_low_watermark checkpoint_delivery_mode").split()

_REPRO = """import pyarrow as pa
import {target} as target
s = {session}
t = pa.table({{"ts": ["2026-03-29T10:00:00", "2026-03-29T10:00:10", "2026-03-29T10:00:35"],
              "key": ["u1", "u1", "u2"], "value": [10, 5, 7]}})
s.create_temp_view("ev", s.create_stream_from_arrow(t.to_batches(max_chunksize=2)))
"""


def _expect(cond: bool, msg: str):
    if not cond:
        raise ClauseFailure(msg)


def _events(ctx: Context):
    import pyarrow as pa
    s = ctx.session()
    t = pa.table({"ts": ["2026-03-29T10:00:00", "2026-03-29T10:00:10", "2026-03-29T10:00:35"],
                  "key": ["u1", "u1", "u2"], "value": [10, 5, 7]})
    ctx.api(s, "create_temp_view")("ev", ctx.api(s, "create_stream_from_arrow")(t.to_batches(max_chunksize=2)))
    return s


def _run(ctx: Context, s, sql: str, **opts):
    sink = ctx.api(s, "create_realtime_stream_sink")()
    q = ctx.api(ctx.api(s, "stream_sql")(sql), "write_stream_queue_sink")(sink, trigger_interval_ms=0, **opts)
    q.start()
    q.await_termination()
    rows = []
    while (t := sink.poll_arrow()) is not None:
        rows.extend(t.to_pylist())
    return q, rows


_AGG = "SELECT key, SUM(value) AS total FROM ev GROUP BY key"


@clause("stream-progress-001", "progress() has every contract field with its type, and status 'stopped' at the end",
        repro=_REPRO + "q = s.stream_sql('" + _AGG + "').write_stream_queue_sink(s.create_realtime_stream_sink(), "
        "trigger_interval_ms=0)\nq.start(); q.await_termination(); print(q.progress())")
def progress_fields(ctx: Context):
    s = _events(ctx)
    q, _ = _run(ctx, s, _AGG)
    p = ctx.api(q, "progress")()
    missing = [f for f in _FIELDS if f not in p]
    _expect(not missing, "progress() lacks %s" % missing)
    _expect(p["status"] == "stopped", "status after a bounded run is %r" % p["status"])
    _expect(p["batches_processed"] == 2 and p["last_source_offset"] == "2",
            "batches_processed/last_source_offset are %r/%r, expected 2/'2'" % (p["batches_processed"], p["last_source_offset"]))
    for f in ("actor_speedup", "compute_to_overhead_ratio"):
        _expect(isinstance(p[f], float), "%s is %r, expected a float" % (f, p[f]))
    for f in ("backpressure_active", "has_stateful_ops", "source_is_bounded"):
        _expect(isinstance(p[f], bool), "%s is %r, expected a bool" % (f, p[f]))


@clause("stream-snapshot-001", "snapshot_json() is compact one-line JSON with the progress contract's field names",
        repro=_REPRO + "q = s.stream_sql('" + _AGG + "').write_stream_queue_sink(s.create_realtime_stream_sink(), "
        "trigger_interval_ms=0)\nq.start(); q.await_termination(); print(q.snapshot_json())")
def snapshot_json(ctx: Context):
    s = _events(ctx)
    q, _ = _run(ctx, s, _AGG)
    text = ctx.api(q, "snapshot_json")()
    _expect("\n" not in text and ", " not in text and '": ' not in text, "snapshot_json() is not compact: %r" % text[:80])
    snap = json.loads(text)
    missing = [f for f in _FIELDS if f not in snap]
    _expect(not missing, "snapshot_json() lacks %s" % missing)
    p = q.progress()
    differ = [f for f in _FIELDS if snap[f] != p[f]]
    _expect(not differ, "snapshot_json() and progress() differ on %s" % differ)


@clause("stream-explain-001", "explain_stream_sql returns exactly the sections logical, physical, strategy",
        repro=_REPRO + "print(s.explain_stream_sql('" + _AGG + "'))")
def explain_sections(ctx: Context):
    s = _events(ctx)
    text = ctx.api(s, "explain_stream_sql")(_AGG)
    heads = [l for l in text.splitlines() if l in ("logical", "physical", "strategy")]
    _expect(heads == ["logical", "physical", "strategy"], "section headers are %r" % heads)
    _expect(text.startswith("logical\nsource=ev\n1. Scan source=ev\n2. Aggregate keys=[key] "
                            "aggs=[SUM(value) AS total] stateful=true\nphysical\n"), "logical section: %r" % text[:160])
    for line in ("actor_eligible=true", "aggregate_impl=local-global", "reason=configured single-process execution",
                 "estimated_batch_cost=320", "checkpoint_delivery_mode=at-least-once", "backpressure_high_watermark=2"):
        _expect(line + "\n" in text, "explain lacks the line %r" % line)


@clause("stream-explain-002", "explain's strategy and progress() report the same decisions",
        repro=_REPRO + "print(s.explain_stream_sql('" + _AGG + "', checkpoint_delivery_mode='best-effort'))")
def explain_agrees_with_progress(ctx: Context):
    s = _events(ctx)
    text = ctx.api(s, "explain_stream_sql")(_AGG, trigger_interval_ms=0, checkpoint_delivery_mode="best-effort")
    strategy = dict(l.split("=", 1) for l in text.split("strategy\n", 1)[1].splitlines())
    q, _ = _run(ctx, s, _AGG, checkpoint_delivery_mode="best-effort")
    p = q.progress()
    pairs = [("requested_mode", "requested_execution_mode"), ("selected_mode", "execution_mode"),
             ("reason", "execution_reason"), ("transport_mode", "transport_mode"),
             ("checkpoint_delivery_mode", "checkpoint_delivery_mode"), ("has_stateful_ops", "has_stateful_ops"),
             ("estimated_state_size_bytes", "estimated_state_size_bytes")]
    for e, k in pairs:
        v = p[k]
        v = ("true" if v else "false") if isinstance(v, bool) else str(v)
        _expect(strategy[e] == v, "explain says %s=%s, progress says %s=%s" % (e, strategy[e], k, v))


@clause("stream-mode-001", "local-workers with local_workers=4 runs the eligible aggregate on workers, same rows",
        repro=_REPRO + "q = s.stream_sql('" + _AGG + "').write_stream_queue_sink(s.create_realtime_stream_sink(), "
        "trigger_interval_ms=0, execution_mode='local-workers', local_workers=4)\nq.start(); q.await_termination(); "
        "print(q.progress())")
def local_workers_mode(ctx: Context):
    s = _events(ctx)
    _, single = _run(ctx, s, _AGG)
    q, rows = _run(ctx, s, _AGG, execution_mode="local-workers", local_workers=4)
    p = q.progress()
    _expect(p["execution_mode"] == "local-workers" and p["used_actor_runtime"] is True,
            "mode/used_actor_runtime are %r/%r" % (p["execution_mode"], p["used_actor_runtime"]))
    _expect(p["transport_mode"] in ("shared-memory", "rpc-copy"), "transport_mode is %r" % p["transport_mode"])
    last = lambda rs: {r["key"]: r["total"] for r in rs}  # noqa: E731
    _expect(last(rows) == last(single), "local-workers rows %r differ from single-process %r" % (rows, single))


@clause("stream-mode-002", "local_workers=0 in local-workers mode falls back in process and says why",
        repro=_REPRO + "q = s.stream_sql('" + _AGG + "').write_stream_queue_sink(s.create_realtime_stream_sink(), "
        "trigger_interval_ms=0, execution_mode='local-workers', local_workers=0)\nq.start(); q.await_termination(); "
        "print(q.progress())")
def local_workers_zero(ctx: Context):
    s = _events(ctx)
    q, _ = _run(ctx, s, _AGG, execution_mode="local-workers", local_workers=0)
    p = q.progress()
    _expect(p["execution_mode"] == "local-workers" and not p["used_actor_runtime"] and p["transport_mode"] == "inproc",
            "progress %r" % {k: p[k] for k in ("execution_mode", "used_actor_runtime", "transport_mode")})
    _expect("local_workers > 1" in p["execution_reason"], "execution_reason is %r" % p["execution_reason"])


@clause("stream-mode-003", "bad execution_mode / checkpoint_delivery_mode values raise with native messages",
        repro=_REPRO + "s.explain_stream_sql('" + _AGG + "', execution_mode='threads')")
def mode_errors(ctx: Context):
    s = _events(ctx)
    for kw, msg in (({"execution_mode": "threads"}, "execution_mode must be 'single-process' or 'local-workers'"),
                    ({"checkpoint_delivery_mode": "x"}, "checkpoint_delivery_mode must be 'at-least-once' or 'best-effort'")):
        try:
            ctx.api(s, "explain_stream_sql")(_AGG, **kw)
        except RuntimeError as exc:
            _expect(msg in str(exc), "message %r lacks %r" % (str(exc), msg))
        else:
            raise ClauseFailure("explain_stream_sql accepted %r" % (kw,))


@clause("stream-checkpoint-001", "a checkpoint file is written; a restart continues the counters (at-least-once)",
        repro=_REPRO + "q = s.stream_sql('" + _AGG + "').write_stream_queue_sink(s.create_realtime_stream_sink(), "
        "trigger_interval_ms=0, checkpoint_path='/tmp/ck')\nq.start(); q.await_termination(max_batches=1)")
def checkpoint_restart(ctx: Context):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ck")
        s = _events(ctx)
        q1 = ctx.api(s, "stream_sql")(_AGG).write_stream_queue_sink(
            s.create_realtime_stream_sink(), trigger_interval_ms=0, checkpoint_path=path)
        q1.start()
        _expect(q1.await_termination(max_batches=1) == 1, "first run did not process 1 batch")
        _expect(os.path.exists(path) and not os.path.exists(path + ".tmp"), "no checkpoint file (or a leftover .tmp)")
        q2 = s.stream_sql(_AGG).write_stream_queue_sink(s.create_realtime_stream_sink(), trigger_interval_ms=0,
                                                        checkpoint_path=path)
        q2.start()
        n = q2.await_termination()
        p = q2.progress()
        _expect(n == 2 and p["batches_processed"] >= 3 and p["last_source_offset"] == "2",
                "restart processed %r, batches_processed=%r, offset=%r" % (n, p["batches_processed"], p["last_source_offset"]))


@clause("stream-checkpoint-002", "best-effort restores the source offset of an Arrow stream",
        repro=_REPRO + "# run 1 with max_batches=1 and checkpoint_delivery_mode='best-effort', then run 2")
def checkpoint_best_effort(ctx: Context):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ck")
        s = _events(ctx)
        q1 = s.stream_sql(_AGG).write_stream_queue_sink(s.create_realtime_stream_sink(), trigger_interval_ms=0,
                                                        checkpoint_path=path, checkpoint_delivery_mode="best-effort")
        q1.start()
        q1.await_termination(max_batches=1)
        q2 = s.stream_sql(_AGG).write_stream_queue_sink(s.create_realtime_stream_sink(), trigger_interval_ms=0,
                                                        checkpoint_path=path, checkpoint_delivery_mode="best-effort")
        q2.start()
        n = q2.await_termination()
        _expect(n == 1, "best-effort restart processed %r batches, expected the 1 remaining" % n)
        _expect(q2.progress()["checkpoint_delivery_mode"] == "best-effort", "delivery mode not echoed")


@clause("stream-lifecycle-001", "start() returns the query, await_termination returns batches processed in the call",
        repro=_REPRO + "q = s.stream_sql('SELECT * FROM ev').write_stream_queue_sink(s.create_realtime_stream_sink(), "
        "trigger_interval_ms=0)\nprint(q.start() is q, q.await_termination(max_batches=1))")
def lifecycle(ctx: Context):
    s = _events(ctx)
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql("SELECT * FROM ev").write_stream_queue_sink(sink, trigger_interval_ms=0)
    _expect(q.progress()["status"] == "created", "status before start() is %r" % q.progress()["status"])
    _expect(q.start() is q, "start() did not return the query")
    _expect(q.progress()["status"] == "running", "status after start() is %r" % q.progress()["status"])
    _expect(q.await_termination(max_batches=1) == 1, "await_termination(max_batches=1) did not return 1")
    _expect(sink.closed(), "the queue sink is not closed after await_termination")


@clause("stream-window-001", "tumbling WINDOW BY ... EVERY 60000 assigns YYYY-MM-DDTHH:MM:SS window starts",
        repro=_REPRO + "print(s.stream_sql('SELECT window_start, key, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 60000 "
        "AS window_start GROUP BY window_start, key'))")
def window_tumbling(ctx: Context):
    s = _events(ctx)
    _, rows = _run(ctx, s, "SELECT window_start, key, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 60000 AS window_start "
                           "GROUP BY window_start, key")
    last = {(r["window_start"], r["key"]): r["c"] for r in rows}
    _expect(last == {("2026-03-29T10:00:00", "u1"): 2, ("2026-03-29T10:00:00", "u2"): 1}, "got %r" % last)


@clause("stream-window-002", "sliding EVERY 60000 SLIDE 30000 puts a row in every window that contains it",
        repro=_REPRO + "# SELECT window_start, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 60000 SLIDE 30000 ...")
def window_sliding(ctx: Context):
    s = _events(ctx)
    _, rows = _run(ctx, s, "SELECT window_start, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 60000 SLIDE 30000 "
                           "AS window_start GROUP BY window_start")
    last = {r["window_start"]: r["c"] for r in rows}
    _expect(last == {"2026-03-29T09:59:30": 2, "2026-03-29T10:00:00": 3, "2026-03-29T10:00:30": 1}, "got %r" % last)


@clause("stream-window-003", "a window slide longer than the window is rejected",
        repro=_REPRO + "s.stream_sql('SELECT window_start, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 1000 SLIDE 2000 "
        "AS window_start GROUP BY window_start')")
def window_bad_slide(ctx: Context):
    s = _events(ctx)
    try:
        ctx.api(s, "stream_sql")("SELECT window_start, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 1000 SLIDE 2000 "
                                 "AS window_start GROUP BY window_start")
    except RuntimeError as exc:
        _expect("stream SQL WINDOW SLIDE must be > 0 and <= EVERY" in str(exc), "message is %r" % str(exc))
    else:
        raise ClauseFailure("SLIDE 2000 > EVERY 1000 was accepted")
