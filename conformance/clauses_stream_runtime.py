"""Stream runtime clauses beyond the contract fields (see ``clauses_stream``): the worker
processes of local-workers mode, option errors, and restarts from a checkpoint in both
delivery modes. Public API only, so they run against any target, native Velaria included.
"""
from __future__ import annotations

import os
import tempfile

from . import ClauseFailure, Context, NotSupported, clause

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


@clause("runtime-workers-001", "local-workers with local_workers=4 runs the eligible aggregate on workers, same rows",
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


@clause("runtime-options-001", "bad execution_mode / checkpoint_delivery_mode values raise with native messages",
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


@clause("runtime-restart-001", "a checkpoint file is written; a restart continues the counters (at-least-once)",
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


@clause("runtime-restart-002", "best-effort restores the source offset of an Arrow stream",
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


@clause("runtime-delivery-001", "progress and explain report the end-to-end delivery guarantee: best-effort by "
        "default, at-least-once for a checkpointed CSV sink under single-node-durable, which refuses to start "
        "without checkpoint_path", extension="delivery-guarantees",
        repro=_REPRO + "s.sql(\"CREATE SINK TABLE o (key TEXT, total BIGINT) USING csv OPTIONS(path: '/tmp/o.csv')\")\n"
        "q = s.start_stream_sql('INSERT INTO o " + _AGG + "', trigger_interval_ms=0, checkpoint_path='/tmp/ck', "
        "durability_profile='single-node-durable')\nq.await_termination(); print(q.progress())")
def delivery_guarantee(ctx: Context):
    s = _events(ctx)
    q, _ = _run(ctx, s, _AGG)
    p = q.progress()
    if "delivery_guarantee" not in p:
        raise NotSupported("progress()['delivery_guarantee']", "the target does not report delivery guarantees")
    _expect((p.get("delivery_guarantee"), p.get("delivery_guarantee_limited_by"), p.get("durability_profile")) ==
            ("best-effort", "sink,checkpoint,profile", "dev-local"),
            "default queue query reports %r" % ({k: p.get(k) for k in ("delivery_guarantee",
                                                  "delivery_guarantee_limited_by", "durability_profile")},))
    _expect(p["checkpoint_delivery_mode"] == "at-least-once", "checkpoint_delivery_mode changed to %r"
            % p["checkpoint_delivery_mode"])
    with tempfile.TemporaryDirectory() as d:
        out, ck = os.path.join(d, "o.csv"), os.path.join(d, "ck")
        ctx.api(s, "sql")("CREATE SINK TABLE o (key TEXT, total BIGINT) USING csv OPTIONS(path: '%s')" % out)
        sql = "INSERT INTO o " + _AGG
        try:
            ctx.api(s, "start_stream_sql")(sql, trigger_interval_ms=0, durability_profile="single-node-durable")
        except ValueError as exc:
            _expect("checkpoint_path" in str(exc), "refusal does not mention checkpoint_path: %s" % exc)
        else:
            raise ClauseFailure("single-node-durable started without checkpoint_path")
        opts = {"trigger_interval_ms": 0, "checkpoint_path": ck, "durability_profile": "single-node-durable"}
        strategy = dict(ln.split("=", 1) for ln in ctx.api(s, "explain_stream_sql")(sql, **opts)
                        .split("strategy\n", 1)[-1].splitlines() if "=" in ln)
        q = ctx.api(s, "start_stream_sql")(sql, **opts)
        q.await_termination()
        p = q.progress()
        for key, want in (("delivery_guarantee", "at-least-once"), ("delivery_guarantee_limited_by", "sink"),
                          ("durability_profile", "single-node-durable")):
            _expect(p.get(key) == want, "progress()[%r] is %r, expected %r" % (key, p.get(key), want))
            _expect(strategy.get(key) == want, "explain strategy %s=%r, expected %r" % (key, strategy.get(key), want))
        _expect(q.delivery.get("effective") == "at-least-once", "delivery view %r" % (q.delivery,))
