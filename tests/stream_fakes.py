"""Test doubles for the stream ABI: a recording source and sink that fail on any call out of
the lifecycle order, a slow sink, and a failing sink; :func:`collect` runs a streaming frame
to a realtime sink and returns its rows."""
from __future__ import annotations

import threading
import time

import pyarrow as pa

from velaria.stream import StreamSink, StreamSource

_ORDER_ERROR = "lifecycle order violated"


class RecordingSource(StreamSource):
    """Yields ``batches``; records every call in ``calls`` (shared with a sink if given)."""

    def __init__(self, batches, calls=None, bounded=True):
        super().__init__()
        self.batches = list(batches)
        self.calls = calls if calls is not None else []
        self.i = 0
        self._bounded = bounded
        self.acked: list[str] = []

    def _do_open(self, context):
        self.calls.append(("source.open", context.query_id))
        self.i = 0

    def _do_next_batch(self, pull):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        self.calls.append(("source.next_batch", str(self.i)))
        return self.batches[self.i - 1]

    def offset(self):
        return str(self.i)

    def _do_checkpoint(self, marker):
        self.calls.append(("source.checkpoint", marker.source_offset))

    def _do_ack(self, token):
        self.calls.append(("source.ack", token))
        self.acked.append(token)

    def _do_close(self):
        self.calls.append(("source.close", ""))

    def bounded(self):
        return self._bounded

    def schema(self):
        return self.batches[0].schema if self.batches else None

    def describe(self):
        return "recording"


class RecordingSink(StreamSink):
    def __init__(self, calls=None, delay_s: float = 0.0, fail_on: int | None = None):
        super().__init__()
        self.calls = calls if calls is not None else []
        self.rows: list[dict] = []
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.writes = 0
        self.lock = threading.Lock()

    def _do_open(self, context):
        self.calls.append(("sink.open", context.query_id))

    def _do_write(self, batch):
        self.writes += 1
        if self.fail_on is not None and self.writes >= self.fail_on:
            raise OSError("disk full (test sink)")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.calls.append(("sink.write", batch.num_rows))
        self.rows.extend(batch.to_pylist())

    def _do_flush(self):
        self.calls.append(("sink.flush", ""))

    def _do_checkpoint(self, marker):
        self.calls.append(("sink.checkpoint", marker.source_offset))

    def _do_close(self):
        self.calls.append(("sink.close", ""))

    def name(self):
        return "recording"


def events(n_batches=3, rows=4):
    """Small event batches: ts (ms), key, value."""
    out = []
    for b in range(n_batches):
        base = b * rows
        out.append(pa.record_batch({
            "ts": pa.array([(base + i) * 15_000 for i in range(rows)], pa.int64()),
            "key": pa.array(["a", "b", "a", None][:rows] * (rows // 4 or 1))[:rows],
            "value": pa.array([base + i for i in range(rows)], pa.int64()),
        }))
    return out


def collect(session, frame, **opts):
    """Run ``frame`` into a realtime queue sink until it ends; returns (query, rows)."""
    sink = session.create_realtime_stream_sink()
    q = frame.write_stream_queue_sink(sink, trigger_interval_ms=0, **opts)
    q.start()
    q.await_termination()
    rows = []
    while (t := sink.poll_arrow()) is not None:
        rows.extend(t.to_pylist())
    return q, rows
