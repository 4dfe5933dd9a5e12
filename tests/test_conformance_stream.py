"""The stream clauses against a scripted stand-in for native Velaria's stream API.

Our stream runtime is built elsewhere, so against ``velaria`` every ``stream-*`` clause reports
``not-supported`` (tests/test_conformance.py checks that). To prove the clauses themselves work
-- that they pass on a target behaving as native Velaria is documented to, and fail a target
that breaks a promise -- this file runs them in-process against ``_FakeStreamSession``: a small
pure-Python imitation of native's documented stream surface for exactly the queries the clauses
use. It is a test double, not a stream engine.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import types

import pyarrow as pa
from velaria.conformance import all_clauses, runner
from velaria.conformance.clauses_stream import PROGRESS_FIELDS

_REASON = {"single-process": "configured single-process execution",
           "local-workers": "configured local-workers execution; using generic partition workers because credit "
                            "acceleration requires local_workers > 1"}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _ms(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


class _Source:
    def __init__(self, batches: list[pa.Table], bounded: bool = True):
        self.batches, self.bounded = batches, bounded


class _Realtime(_Source):
    def __init__(self, columns):
        super().__init__([], bounded=False)
        self.columns = list(columns)

    def push_rows(self, rows):
        self.batches.append(pa.Table.from_pylist([r if isinstance(r, dict) else dict(zip(self.columns, r))
                                                  for r in rows]))

    def close(self):
        self.bounded = True


class _Sink:
    def __init__(self):
        self.queue, self.is_closed = [], False

    def poll_arrow(self):
        return self.queue.pop(0) if self.queue else None

    def closed(self):
        return self.is_closed


class _Plan:
    """The three query shapes the clauses use: projection, GROUP BY key with COUNT(*), and a
    windowed COUNT(*) per (window_start, key)."""

    def __init__(self, sql: str):
        m = re.search(r"WINDOW BY ts EVERY (\d+)(?: SLIDE (\d+))? AS window_start", sql)
        self.window = (int(m.group(1)), int(m.group(2) or m.group(1))) if m else None
        if self.window and self.window[1] > self.window[0]:
            raise RuntimeError("not supported in SQL v1: stream SQL WINDOW SLIDE must be > 0 and <= EVERY")
        self.grouped = "GROUP BY" in sql
        self.source = re.search(r"FROM (\w+)", sql).group(1)
        self.columns = [c.strip() for c in re.match(r"SELECT (.*?) FROM", sql).group(1).split(",")]
        self.state: dict[tuple, int] = {}

    def apply(self, batch: pa.Table) -> pa.Table:
        if not self.grouped:
            return batch.select(self.columns)
        keys = []
        for r in batch.to_pylist():
            if self.window is None:
                keys.append((r["key"],))
                continue
            size, slide = self.window
            ts = _ms(r["ts"])
            last = ts // slide * slide
            for i in range(-(-size // slide)):
                start = last - i * slide
                if start <= ts < start + size:
                    keys.append((_iso(start), r["key"]))
        touched = []
        for k in keys:
            self.state[k] = self.state.get(k, 0) + 1
            if k not in touched:
                touched.append(k)
        names = ["key"] if self.window is None else ["window_start", "key"]
        return pa.Table.from_pylist([dict(zip(names + ["n"], k + (self.state[k],))) for k in touched])


class _Query:
    _ids = 0

    def __init__(self, plan: _Plan, source: _Source, sink: _Sink, options: dict):
        _Query._ids += 1
        self.plan, self.source, self.sink, self.options = plan, source, sink, options
        self.status, self.pulled, self.offset = "created", 0, ""

    def start(self):
        self.status = "running"
        return self

    def await_termination(self, max_batches: int = 0):
        self.start()
        done = 0
        while self.pulled < len(self.source.batches):
            batch = self.source.batches[self.pulled]
            self.pulled += 1
            self.sink.queue.append(self.plan.apply(batch))
            done += 1
            self.offset = str(self.pulled)
            if self.options.get("checkpoint_path"):
                self._checkpoint(self.options["checkpoint_path"])
        self.status, self.sink.is_closed = "stopped", True
        return done

    def _checkpoint(self, path: str):
        p = self.progress()
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("".join("%s=%s\n" % (k, p[k]) for k in ("batches_processed", "last_source_offset",
                                                              "checkpoint_delivery_mode")))
        os.replace(path + ".tmp", path)

    def progress(self) -> dict:
        mode = self.options.get("execution_mode", "single-process")
        values = {"query_id": "stream-query-%d" % self._ids, "status": self.status,
                  "requested_execution_mode": mode, "execution_mode": mode, "execution_reason": _REASON[mode],
                  "transport_mode": "inproc",
                  "checkpoint_delivery_mode": self.options.get("checkpoint_delivery_mode", "at-least-once"),
                  "batches_pulled": self.pulled, "batches_processed": self.pulled, "last_source_offset": self.offset,
                  "source_is_bounded": self.source.bounded, "has_stateful_ops": self.plan.grouped,
                  "has_window": self.plan.window is not None, "sink_is_blocking": True,
                  "backpressure_max_queue_batches": 2, "backpressure_high_watermark": 2,
                  "backpressure_low_watermark": 1}
        return {k: values.get(k, typ()) for k, typ in PROGRESS_FIELDS}

    def snapshot_json(self) -> str:
        return json.dumps(self.progress(), separators=(",", ":"))


class _StreamFrame:
    def __init__(self, session, sql: str | None = None, source: _Source | None = None):
        self.session, self.sql, self.source = session, sql, source

    def write_stream_queue_sink(self, sink, trigger_interval_ms=1000, **options):
        plan = _Plan(self.sql)
        return _Query(plan, self.session.views[plan.source], sink, options)


class _FakeStreamSession:
    """Native's documented stream surface, for the clauses' queries only (see the module docstring)."""

    def __init__(self, **_kwargs):
        self.views: dict[str, _Source] = {}

    def create_stream_from_arrow(self, reader):
        return _StreamFrame(self, source=_Source([pa.Table.from_batches([b]) for b in reader]))

    def create_realtime_stream_source(self, columns):
        return _Realtime(columns)

    def read_realtime_stream_source(self, source):
        return _StreamFrame(self, source=source)

    def create_realtime_stream_sink(self):
        return _Sink()

    def create_temp_view(self, name, frame):
        self.views[name] = frame.source

    def stream_sql(self, sql):
        return _StreamFrame(self, sql=sql)

    def explain_stream_sql(self, sql, trigger_interval_ms=1000, checkpoint_delivery_mode="at-least-once",
                           execution_mode="single-process", **_options):
        plan = _Plan(sql)
        strategy = {"requested_mode": execution_mode, "selected_mode": execution_mode,
                    "reason": _REASON[execution_mode], "actor_eligible": "true", "transport_mode": "inproc",
                    "estimated_state_size_bytes": 1024 if plan.grouped else 0, "estimated_batch_cost": 320,
                    "backpressure_max_queue_batches": 2, "backpressure_high_watermark": 2,
                    "backpressure_low_watermark": 1, "checkpoint_delivery_mode": checkpoint_delivery_mode,
                    "shared_memory_transport": "true", "shared_memory_min_payload_bytes": 65536}
        return ("logical\nsource=%s\n1. Scan source=%s\nphysical\nwrites_to_sink=false\nstrategy\n" % (
            plan.source, plan.source)) + "".join("%s=%s\n" % kv for kv in strategy.items())


class _CustomSink:
    """Native's documented CustomArrowStreamSink: buffer, emit at emit_rows, emit the rest on close."""

    def __init__(self, on_emit, *, emit_interval_seconds=1.0, emit_rows=1024):
        self.on_emit, self.emit_rows, self.pending = on_emit, emit_rows, []

    def write_batch(self, batch):
        self.pending.append(batch)
        if sum(t.num_rows for t in self.pending) >= self.emit_rows:
            self._emit()

    def _emit(self):
        if self.pending:
            self.on_emit(pa.concat_tables(self.pending))
            self.pending = []

    def close(self):
        self._emit()


def _consume(batches, sink):
    for b in batches:
        sink.write_batch(b)
    sink.close()


def _custom_source(session, rows, *, schema=None, emit_interval_seconds=1.0, emit_rows=1024):
    tables = [pa.Table.from_pylist(rows[i:i + emit_rows]) for i in range(0, len(rows), emit_rows)]
    return session.create_stream_from_arrow(tables)


def _module(session_cls) -> types.ModuleType:
    mod = types.ModuleType("fake_stream_target")
    mod.Session = session_cls
    mod.CustomArrowStreamSink = _CustomSink
    mod.consume_arrow_batches_with_custom_sink = _consume
    mod.create_stream_from_custom_source = _custom_source
    return mod


STREAM_IDS = [c.id for c in all_clauses("stream-")]


def test_every_stream_clause_passes_on_a_native_like_target():
    report = runner.run(_module(_FakeStreamSession), clause_prefix="stream-")
    assert [r.clause.id for r in report.results] == STREAM_IDS and len(STREAM_IDS) >= 15
    assert all(r.cls == "pass" for r in report.results), report.format()


class _NoStrategy(_FakeStreamSession):
    """explain_stream_sql stops after the physical section."""

    def explain_stream_sql(self, sql, **options):
        return super().explain_stream_sql(sql, **options).split("strategy\n")[0]


def test_stream_clauses_catch_a_missing_strategy_section():
    report = runner.run(_module(_NoStrategy), clause_prefix="stream-")
    failed = {r.clause.id for r in report.results if r.cls == "fail"}
    assert failed == {"stream-explain-001", "stream-explain-002", "stream-explain-003"}, report.format()


def test_the_call_order_sink_catches_a_write_after_close():
    def sloppy(batches, sink):
        sink.close()
        for b in batches:
            sink.write_batch(b)
        sink.close()

    mod = _module(_FakeStreamSession)
    mod.consume_arrow_batches_with_custom_sink = sloppy
    report = runner.run(mod, clause_prefix="stream-lifecycle-004")
    assert [r.cls for r in report.results] == ["fail"]
    assert "write_batch after close" in report.results[0].detail and "close called twice" in report.results[0].detail


def test_stream_clauses_catch_wrong_progress_and_windows(monkeypatch):
    monkeypatch.setattr(_Query, "progress", lambda self: dict(reversed(list(_orig_progress(self).items()))))
    report = runner.run(_module(_FakeStreamSession), clause_prefix="stream-progress-002")
    assert [r.cls for r in report.results] == ["fail"]
    monkeypatch.undo()
    monkeypatch.setattr(_Plan, "__init__", _tumbling_only)
    report = runner.run(_module(_FakeStreamSession), clause_prefix="stream-window-002")
    assert [r.cls for r in report.results] == ["fail"] and "sliding windows gave" in report.results[0].detail


_orig_progress = _Query.progress
_orig_plan_init = _Plan.__init__


def _tumbling_only(self, sql):
    _orig_plan_init(self, sql)
    if self.window:
        self.window = (self.window[0], self.window[0])
