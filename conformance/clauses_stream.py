"""Clauses on the stream contract: progress fields, snapshot_json, stream explain, windows,
execution modes, checkpoint delivery and the source/sink lifecycle.

They use native Velaria's Python names (``create_stream_from_arrow``, ``stream_sql``,
``explain_stream_sql``, ``start_stream_sql``, ``StreamingDataFrame.write_stream_queue_sink``,
``StreamingQuery.progress`` / ``snapshot_json`` / ``await_termination``, the realtime source and
sink). Every stream entry point is called through :meth:`Context.call`, so a target without the
stream API, or one that says it is not available yet, reports ``not-supported``; a target whose
process dies on them reports ``crashed`` for that clause only (the runner isolates clauses).

Inputs are small bounded Arrow streams: each record batch is one micro-batch.
"""
from __future__ import annotations

import json
import os
import re
import tempfile

from . import ClauseFailure, Context, clause

#: the stable progress fields, in native's dictionary order (the contract's names)
PROGRESS_FIELDS = (
    ("query_id", str), ("status", str), ("requested_execution_mode", str), ("execution_mode", str),
    ("execution_reason", str), ("transport_mode", str), ("checkpoint_delivery_mode", str),
    ("batches_pulled", int), ("batches_processed", int), ("blocked_count", int), ("max_backlog_batches", int),
    ("inflight_batches", int), ("inflight_partitions", int), ("last_batch_latency_ms", int),
    ("last_sink_latency_ms", int), ("last_state_latency_ms", int), ("last_source_offset", str),
    ("backpressure_active", bool), ("actor_eligible", bool), ("used_actor_runtime", bool),
    ("used_shared_memory", bool), ("has_stateful_ops", bool), ("has_window", bool), ("sink_is_blocking", bool),
    ("source_is_bounded", bool), ("estimated_partitions", int), ("projected_payload_bytes", int),
    ("sampled_batches", int), ("sampled_rows_per_batch", int), ("average_projected_payload_bytes", int),
    ("actor_speedup", float), ("compute_to_overhead_ratio", float), ("estimated_state_size_bytes", int),
    ("estimated_batch_cost", int), ("backpressure_max_queue_batches", int), ("backpressure_high_watermark", int),
    ("backpressure_low_watermark", int),
)
#: the strategy lines explain_stream_sql must carry (the contract's "single explanation outlet")
STRATEGY_KEYS = ("requested_mode", "selected_mode", "reason", "actor_eligible", "transport_mode",
                 "estimated_state_size_bytes", "estimated_batch_cost", "shared_memory_transport",
                 "shared_memory_min_payload_bytes", "checkpoint_delivery_mode", "backpressure_max_queue_batches",
                 "backpressure_high_watermark", "backpressure_low_watermark")

_EVENTS = {"ts": ["2026-03-29T10:00:00", "2026-03-29T10:00:10", "2026-03-29T10:00:20", "2026-03-29T10:00:30"],
           "key": ["u1", "u1", "u1", "u2"], "value": [10, 5, 7, 4]}
_AGG = "SELECT key, COUNT(*) AS n FROM events GROUP BY key"

_REPRO = """import pyarrow as pa
import {target} as target
s = {session}
t = pa.table({{"ts": %r, "key": %r, "value": %r}})
s.create_temp_view("events", s.create_stream_from_arrow(pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=2))))
""" % (_EVENTS["ts"], _EVENTS["key"], _EVENTS["value"])


def _expect(cond: bool, msg: str):
    if not cond:
        raise ClauseFailure(msg)


def _stream_session(ctx: Context, rows_per_batch: int = 2, events: dict | None = None):
    """A Session with stream view ``events`` over a bounded Arrow stream (2 batches by default)."""
    import pyarrow as pa

    s = ctx.session()
    t = pa.table(events or _EVENTS)
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=rows_per_batch))
    sdf = ctx.call(s, "create_stream_from_arrow", reader)
    ctx.call(s, "create_temp_view", "events", sdf)
    return s


def _run_query(ctx: Context, s, sql: str = _AGG, **options):
    """Run ``sql`` to a queue sink until the bounded source ends; return (query, sink, batches)."""
    sdf = ctx.call(s, "stream_sql", sql)
    sink = ctx.call(s, "create_realtime_stream_sink")
    query = ctx.call(sdf, "write_stream_queue_sink", sink, trigger_interval_ms=0, **options)
    ctx.call(query, "await_termination")
    batches = []
    while True:
        b = ctx.call(sink, "poll_arrow")
        if b is None:
            break
        batches.append(b)
    return query, sink, batches


def _progress(ctx: Context, query) -> dict:
    p = ctx.call(query, "progress")
    _expect(isinstance(p, dict), "progress() returned %s, expected dict" % type(p).__name__)
    return p


# ------------------------------------------------------------------------------------ progress

@clause("stream-progress-001", "progress() is a dict with every contract field, each of its type",
        repro=_REPRO + "q = s.stream_sql(%r).write_stream_queue_sink(s.create_realtime_stream_sink(), "
                       "trigger_interval_ms=0)\nq.await_termination()\nprint(q.progress())" % _AGG)
def progress_fields(ctx: Context):
    s = _stream_session(ctx)
    query, _sink, _ = _run_query(ctx, s)
    p = _progress(ctx, query)
    missing = [k for k, _t in PROGRESS_FIELDS if k not in p]
    _expect(not missing, "progress() lacks contract fields %s" % missing)
    for key, typ in PROGRESS_FIELDS:
        _expect(type(p[key]) is typ, "progress()[%r] is %s %r, expected %s" % (key, type(p[key]).__name__, p[key], typ.__name__))


@clause("stream-progress-002", "the contract fields keep native's dictionary order (extensions may follow)")
def progress_order(ctx: Context):
    s = _stream_session(ctx)
    query, _sink, _ = _run_query(ctx, s)
    keys = [k for k in _progress(ctx, query) if k in dict(PROGRESS_FIELDS)]
    want = [k for k, _t in PROGRESS_FIELDS]
    _expect(keys == want, "contract fields come in the order %r, expected %r" % (keys, want))


@clause("stream-progress-003", "after a bounded 2-batch Arrow stream: status stopped, 2 batches pulled and "
        "processed, last_source_offset '2', source_is_bounded true")
def progress_values(ctx: Context):
    s = _stream_session(ctx)
    query, _sink, _ = _run_query(ctx, s)
    p = _progress(ctx, query)
    want = {"status": "stopped", "batches_pulled": 2, "batches_processed": 2, "last_source_offset": "2",
            "source_is_bounded": True, "has_stateful_ops": True, "has_window": False}
    got = {k: p.get(k) for k in want}
    _expect(got == want, "progress() has %r, expected %r" % (got, want))


# ------------------------------------------------------------------------------------ snapshot_json

@clause("stream-snapshot-001", "snapshot_json() is one line of JSON with the progress fields under the same "
        "names and values")
def snapshot_json(ctx: Context):
    s = _stream_session(ctx)
    query, _sink, _ = _run_query(ctx, s)
    p = _progress(ctx, query)
    text = ctx.call(query, "snapshot_json")
    _expect(isinstance(text, str) and "\n" not in text.strip(), "snapshot_json() is not one line of text: %r" % (text,))
    try:
        snap = json.loads(text)
    except ValueError as exc:
        raise ClauseFailure("snapshot_json() is not JSON (%s): %r" % (exc, text)) from exc
    for key, _typ in PROGRESS_FIELDS:
        _expect(key in snap, "snapshot_json() lacks %r" % key)
        same = snap[key] == p[key] or (isinstance(p[key], float) and float(snap[key]) == p[key])
        _expect(same or key.endswith("_latency_ms"),
                "snapshot_json()[%r] = %r but progress()[%r] = %r" % (key, snap[key], key, p[key]))


# ------------------------------------------------------------------------------------ explain

def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line in ("logical", "physical", "strategy"):
            current = line
            out[current] = []
        elif current is not None:
            out[current].append(line)
        elif line.strip():
            raise ClauseFailure("explain_stream_sql has text before its first section: %r" % line)
    return out


@clause("stream-explain-001", "explain_stream_sql returns exactly the sections logical, physical, strategy, in order",
        repro=_REPRO + "print(s.explain_stream_sql(%r))" % _AGG)
def explain_sections(ctx: Context):
    s = _stream_session(ctx)
    text = ctx.call(s, "explain_stream_sql", _AGG)
    _expect(isinstance(text, str), "explain_stream_sql returned %s" % type(text).__name__)
    headers = [ln for ln in text.splitlines() if ln in ("logical", "physical", "strategy")]
    _expect(headers == ["logical", "physical", "strategy"],
            "section lines are %r, expected ['logical', 'physical', 'strategy']:\n%s" % (headers, text))


@clause("stream-explain-002", "the strategy section names mode, reason, actor eligibility, transport, estimates, "
        "shared-memory knobs, checkpoint delivery mode and backpressure thresholds")
def explain_strategy(ctx: Context):
    s = _stream_session(ctx)
    strategy = _sections(ctx.call(s, "explain_stream_sql", _AGG)).get("strategy", [])
    keys = {ln.split("=", 1)[0] for ln in strategy if "=" in ln}
    missing = [k for k in STRATEGY_KEYS if k not in keys]
    _expect(not missing, "strategy section lacks %s:\n%s" % (missing, "\n".join(strategy)))


@clause("stream-explain-003", "explain strategy and progress() describe the same decision (mode, transport, "
        "checkpoint delivery mode, backpressure thresholds)")
def explain_matches_progress(ctx: Context):
    s = _stream_session(ctx)
    options = {"checkpoint_delivery_mode": "best-effort"}
    strategy = dict(ln.split("=", 1) for ln in _sections(ctx.call(s, "explain_stream_sql", _AGG, trigger_interval_ms=0,
                                                                   **options)).get("strategy", []) if "=" in ln)
    query, _sink, _ = _run_query(ctx, s, **options)
    p = _progress(ctx, query)
    pairs = [("selected_mode", "execution_mode"), ("requested_mode", "requested_execution_mode"),
             ("transport_mode", "transport_mode"), ("checkpoint_delivery_mode", "checkpoint_delivery_mode"),
             ("backpressure_max_queue_batches", "backpressure_max_queue_batches"),
             ("backpressure_high_watermark", "backpressure_high_watermark"),
             ("backpressure_low_watermark", "backpressure_low_watermark")]
    for skey, pkey in pairs:
        _expect(skey in strategy, "strategy has no %s line" % skey)
        pv = p.get(pkey)
        pv = str(pv).lower() if isinstance(pv, bool) else str(pv)
        _expect(strategy[skey] == pv, "strategy %s=%s but progress()[%r] = %r" % (skey, strategy[skey], pkey, p.get(pkey)))


# ------------------------------------------------------------------------------------ windows

def _window_rows(ctx: Context, sql: str) -> set[tuple]:
    s = _stream_session(ctx, rows_per_batch=4, events={"ts": ["2026-03-29T10:00:00", "2026-03-29T10:00:10",
                                                              "2026-03-29T10:00:35"],
                                                       "key": ["u1", "u1", "u1"], "value": [1, 2, 3]})
    _query, _sink, batches = _run_query(ctx, s, sql)
    rows = set()
    for b in batches:
        for r in b.to_pylist():
            rows.add(tuple(r.values()))
    return rows


@clause("stream-window-001", "WINDOW BY ts EVERY 60000 AS window_start: tumbling windows, start as "
        "YYYY-MM-DDTHH:MM:SS text")
def window_tumbling(ctx: Context):
    got = _window_rows(ctx, "SELECT window_start, key, COUNT(*) AS n FROM events "
                            "WINDOW BY ts EVERY 60000 AS window_start GROUP BY window_start, key")
    want = {("2026-03-29T10:00:00", "u1", 3)}
    _expect(got == want, "tumbling windows gave %r, expected %r" % (sorted(got), sorted(want)))


@clause("stream-window-002", "EVERY 60000 SLIDE 30000: each row lands in every overlapping window")
def window_sliding(ctx: Context):
    got = _window_rows(ctx, "SELECT window_start, key, COUNT(*) AS n FROM events "
                            "WINDOW BY ts EVERY 60000 SLIDE 30000 AS window_start GROUP BY window_start, key")
    want = {("2026-03-29T09:59:30", "u1", 2), ("2026-03-29T10:00:00", "u1", 3), ("2026-03-29T10:00:30", "u1", 1)}
    _expect(got == want, "sliding windows gave %r, expected %r" % (sorted(got), sorted(want)))


@clause("stream-window-003", "SLIDE larger than EVERY is rejected: 'WINDOW SLIDE must be > 0 and <= EVERY'")
def window_bad_slide(ctx: Context):
    s = _stream_session(ctx)
    try:
        ctx.call(s, "explain_stream_sql", "SELECT window_start, COUNT(*) AS n FROM events "
                                          "WINDOW BY ts EVERY 1000 SLIDE 2000 AS window_start GROUP BY window_start")
    except RuntimeError as exc:
        _expect("WINDOW SLIDE must be > 0 and <= EVERY" in str(exc), "error text: %s" % exc)
        return
    raise ClauseFailure("SLIDE 2000 with EVERY 1000 was accepted")


# ------------------------------------------------------------------------------------ execution modes

@clause("stream-mode-001", "progress() reports the requested mode, the mode used, the reason and the transport: "
        "single-process by default")
def mode_default(ctx: Context):
    s = _stream_session(ctx)
    query, _sink, _ = _run_query(ctx, s)
    p = _progress(ctx, query)
    _expect(p.get("requested_execution_mode") == "single-process" and p.get("execution_mode") == "single-process",
            "modes are %r / %r, expected single-process" % (p.get("requested_execution_mode"), p.get("execution_mode")))
    _expect(isinstance(p.get("execution_reason"), str) and p["execution_reason"] != "",
            "execution_reason is empty: %r" % (p.get("execution_reason"),))
    _expect(p.get("transport_mode") == "inproc", "transport_mode is %r, expected inproc" % (p.get("transport_mode"),))


@clause("stream-mode-002", "local-workers with local_workers=0: mode local-workers, no actor runtime, inproc "
        "transport, and the reason says why ('local_workers > 1')")
def mode_local_workers(ctx: Context):
    s = _stream_session(ctx)
    query, _sink, _ = _run_query(ctx, s, execution_mode="local-workers", local_workers=0)
    p = _progress(ctx, query)
    got = {k: p.get(k) for k in ("execution_mode", "used_actor_runtime", "transport_mode")}
    _expect(got == {"execution_mode": "local-workers", "used_actor_runtime": False, "transport_mode": "inproc"},
            "progress() has %r" % got)
    _expect("local_workers > 1" in str(p.get("execution_reason")),
            "execution_reason %r does not say 'local_workers > 1'" % (p.get("execution_reason"),))


# ------------------------------------------------------------------------------------ checkpoint delivery

@clause("stream-checkpoint-001", "checkpoint_delivery_mode is at-least-once by default and echoes best-effort")
def checkpoint_modes(ctx: Context):
    for option, want in ((None, "at-least-once"), ("best-effort", "best-effort"), ("at-least-once", "at-least-once")):
        s = _stream_session(ctx)
        query, _sink, _ = _run_query(ctx, s, **({"checkpoint_delivery_mode": option} if option else {}))
        got = _progress(ctx, query).get("checkpoint_delivery_mode")
        _expect(got == want, "checkpoint_delivery_mode=%r gave %r, expected %r" % (option, got, want))


@clause("stream-checkpoint-002", "checkpoint_path gets a complete checkpoint with last_source_offset and "
        "checkpoint_delivery_mode after the run (replaced atomically: no temporary file left)")
def checkpoint_file(ctx: Context):
    with tempfile.TemporaryDirectory(prefix="velaria_conf_") as d:
        path = os.path.join(d, "q.ckpt")
        s = _stream_session(ctx)
        _run_query(ctx, s, checkpoint_path=path, checkpoint_delivery_mode="best-effort")
        _expect(os.path.isfile(path), "no checkpoint file at checkpoint_path")
        text = open(path, encoding="utf-8").read()
        for key, want in (("last_source_offset", "2"), ("checkpoint_delivery_mode", "best-effort")):
            m = re.search(r"(?m)^\s*\"?%s\"?\s*[=:]\s*\"?([^\"\n,]*)" % key, text)
            _expect(m is not None and m.group(1).strip() == want,
                    "checkpoint lacks %s=%s:\n%s" % (key, want, text[:2000]))
        leftovers = [n for n in os.listdir(d) if n != "q.ckpt" and n.startswith("q.ckpt")]
        _expect(not leftovers, "temporary checkpoint files left behind: %s" % leftovers)


# ------------------------------------------------------------------------------------ lifecycle

@clause("stream-lifecycle-001", "realtime source -> query -> queue sink: rows pushed before close() all arrive, in "
        "order; the sink reports closed() after the query ends")
def lifecycle_realtime(ctx: Context):
    s = ctx.session()
    source = ctx.call(s, "create_realtime_stream_source", ["key", "value"])
    sdf = ctx.call(s, "read_realtime_stream_source", source)
    ctx.call(s, "create_temp_view", "rt", sdf)
    ctx.call(source, "push_rows", [["a", 1], ["b", 2]])
    ctx.call(source, "push_rows", [{"key": "c", "value": 3}])
    ctx.call(source, "close")
    sink = ctx.call(s, "create_realtime_stream_sink")
    query = ctx.call(ctx.call(s, "stream_sql", "SELECT key, value FROM rt"), "write_stream_queue_sink", sink,
                     trigger_interval_ms=0)
    _expect(not ctx.call(sink, "closed"), "the sink reports closed() before the query ran")
    processed = ctx.call(query, "await_termination")
    _expect(processed == 2, "await_termination() returned %r, expected 2 batches" % (processed,))
    rows = []
    while (b := ctx.call(sink, "poll_arrow")) is not None:
        rows += [[r["key"], r["value"]] for r in b.to_pylist()]
    _expect(rows == [["a", 1], ["b", 2], ["c", 3]], "the sink received %r" % (rows,))
    _expect(ctx.call(sink, "closed") is True, "the sink is not closed() after the query ended")


@clause("stream-lifecycle-002", "StreamingQuery status: created before start, stopped after a bounded run; "
        "start() returns the query itself")
def lifecycle_status(ctx: Context):
    s = _stream_session(ctx)
    sink = ctx.call(s, "create_realtime_stream_sink")
    query = ctx.call(ctx.call(s, "stream_sql", _AGG), "write_stream_queue_sink", sink, trigger_interval_ms=0)
    _expect(_progress(ctx, query).get("status") == "created",
            "status before start() is %r, expected created" % _progress(ctx, query).get("status"))
    _expect(ctx.call(query, "start") is query, "start() did not return the query itself")
    ctx.call(query, "await_termination")
    _expect(_progress(ctx, query).get("status") == "stopped",
            "status after the bounded run is %r, expected stopped" % _progress(ctx, query).get("status"))


@clause("stream-lifecycle-003", "four one-row batches: every batch is pulled, processed and its offset "
        "recorded (batches_processed 4, last_source_offset '4')")
def lifecycle_offsets(ctx: Context):
    s = _stream_session(ctx, rows_per_batch=1)
    query, _sink, _ = _run_query(ctx, s)
    p = _progress(ctx, query)
    _expect((p.get("batches_processed"), p.get("last_source_offset")) == (4, "4"),
            "after 4 one-row batches: batches_processed=%r, last_source_offset=%r; expected 4 and '4'"
            % (p.get("batches_processed"), p.get("last_source_offset")))


# ------------------------------------------------------------------------------------ custom source / sink

class _CallOrderSink:
    """A sink that enforces the documented call order: ``write_batch`` any number of times, then
    ``close`` exactly once; nothing after ``close``. Violations are recorded, not raised, so the
    clause can report them all."""

    def __init__(self):
        self.batches, self.calls, self.violations = [], [], []
        self.closed = False

    def write_batch(self, batch):
        self.calls.append("write_batch")
        if self.closed:
            self.violations.append("write_batch after close")
        self.batches.append(batch)

    def close(self):
        self.calls.append("close")
        if self.closed:
            self.violations.append("close called twice")
        self.closed = True


class _RecordingSession:
    """Stands in for a Session: records what a custom source hands to create_stream_from_arrow."""

    def __init__(self):
        self.received = []

    def create_stream_from_arrow(self, obj):
        self.received.append(obj)
        return "stream-frame"


@clause("stream-lifecycle-004", "consume_arrow_batches_with_custom_sink calls write_batch once per batch, in order, "
        "then close() exactly once (a call-order-enforcing sink)")
def custom_sink_order(ctx: Context):
    import pyarrow as pa

    consume = ctx.api(ctx.target, "consume_arrow_batches_with_custom_sink")
    batches = [pa.table({"x": [i, i + 1]}) for i in (0, 2, 4)]
    sink = _CallOrderSink()
    consume(batches, sink)
    _expect(not sink.violations, "lifecycle violations: %s (calls %s)" % (sink.violations, sink.calls))
    _expect(sink.calls == ["write_batch"] * 3 + ["close"], "calls were %s, expected 3 x write_batch then close"
            % sink.calls)
    _expect([b.to_pydict() for b in sink.batches] == [b.to_pydict() for b in batches],
            "the sink received other batches: %r" % [b.to_pydict() for b in sink.batches])


@clause("stream-lifecycle-005", "CustomArrowStreamSink buffers to emit_rows, emits in order, and close() emits the "
        "rest once; on_emit is never called after close()")
def custom_sink_emit(ctx: Context):
    import pyarrow as pa

    emitted, closed = [], []

    def on_emit(table):
        if closed:
            raise ClauseFailure("on_emit was called after close()")
        emitted.append(table.column("x").to_pylist())

    sink = ctx.api(ctx.target, "CustomArrowStreamSink")(on_emit, emit_interval_seconds=3600.0, emit_rows=3)
    for i in range(4):
        sink.write_batch(pa.table({"x": [2 * i, 2 * i + 1]}))
    _expect(emitted == [[0, 1, 2, 3], [4, 5, 6, 7]], "before close() the sink emitted %r, expected two tables of "
            "4 rows (emitted whenever 3 or more rows are pending)" % (emitted,))
    sink.write_batch(pa.table({"x": [8]}))
    sink.close()
    closed.append(True)
    _expect(emitted[2:] == [[8]], "close() emitted %r, expected the pending [8] once" % (emitted[2:],))


@clause("stream-lifecycle-006", "create_stream_from_custom_source cuts rows into Arrow batches of emit_rows, in "
        "row order, and hands them to Session.create_stream_from_arrow once")
def custom_source_batches(ctx: Context):
    make = ctx.api(ctx.target, "create_stream_from_custom_source")
    session = _RecordingSession()
    rows = [{"k": "a", "v": i} for i in range(5)]
    out = make(session, rows, emit_interval_seconds=3600.0, emit_rows=2)
    _expect(out == "stream-frame", "it returned %r, not what create_stream_from_arrow returned" % (out,))
    _expect(len(session.received) == 1, "create_stream_from_arrow was called %d times, expected once"
            % len(session.received))
    got = [t.to_pylist() for t in session.received[0]]
    want = [rows[0:2], rows[2:4], rows[4:5]]
    _expect(got == want, "batches %r, expected %r" % (got, want))
