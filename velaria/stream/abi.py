"""The public source/sink ABI of the stream runtime.

A stream query drives one source and one sink through a fixed lifecycle::

    source.open(context)  sink.open(context)
    repeat:  batch = source.next_batch(pull)      (None: nothing right now / end of a bounded source)
             ... operators ...  sink.write(out); sink.flush()
             source.checkpoint(marker); sink.checkpoint(marker)
             <checkpoint file written atomically>
             source.ack(token)                     (only after the checkpoint is durable)
    source.close()  sink.close()                   (always, on failure too)

Subclass :class:`StreamSource` / :class:`StreamSink` to plug in your own. The base classes
enforce the call order: a call that breaks it (``next_batch`` before ``open``, anything after
``close``, ``ack`` of a token that was never checkpointed) raises :class:`LifecycleError`, so a
misbehaving driver or a source used by two queries at once is caught at the first wrong call.
Subclasses implement the ``_do_*`` hooks; the public methods do the order checks.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pyarrow as pa

from ..errors import VelariaError
from .delivery import Capabilities

__all__ = ["LifecycleError", "SourceContext", "PullContext", "SinkContext", "CheckpointMarker",
           "StreamSource", "StreamSink"]


class LifecycleError(VelariaError):
    """A source or sink method was called out of the open -> next_batch -> checkpoint -> ack ->
    close order."""


@dataclass(frozen=True)
class SourceContext:
    """What a source learns when its query opens it."""

    query_id: str
    trigger_interval_ms: int
    max_inflight_batches: int
    max_queued_partitions: int
    checkpoint_path: str
    source_is_bounded: bool


@dataclass(frozen=True)
class PullContext:
    """The queue state at the time of one ``next_batch`` call (a source may throttle on it)."""

    query_id: str
    backlog_batches: int
    inflight_batches: int
    queued_partitions: int
    max_inflight_batches: int
    backpressure_active: bool


@dataclass(frozen=True)
class SinkContext:
    """What a sink learns when its query opens it."""

    query_id: str
    checkpoint_path: str
    requested_execution_mode: str


@dataclass(frozen=True)
class CheckpointMarker:
    """Progress the query is about to make durable: the offset of the batch just processed and
    the count of processed batches."""

    query_id: str
    source_offset: str
    batches_processed: int


class _Lifecycle:
    """Call-order bookkeeping shared by sources and sinks."""

    def __init__(self):
        self._state = "new"          # new -> open -> closed (re-open allowed after close)
        self._lock = threading.Lock()

    def _require_open(self, what: str) -> None:
        if self._state != "open":
            raise LifecycleError(f"{type(self).__name__}.{what}() called while the {self._role} is "
                                 f"{self._state}; call open() first and never after close()")

    _role = "stream object"

    def close(self) -> None:
        """End the run. Always called; calling it twice is harmless."""
        with self._lock:
            if self._state != "open":
                self._state = "closed"
                return
            self._state = "closed"
        self._do_close()

    def _do_close(self) -> None:
        """Override: release what the run held."""

    def _opened_or_closed(self, context) -> None:
        """Run the ``_do_open`` hook. If it raises, the object is not open: it counts as
        closed again, so the query can be started anew once the cause is fixed."""
        try:
            self._do_open(context)
        except BaseException:
            with self._lock:
                self._state = "closed"
            raise


class StreamSource(_Lifecycle):
    """Base class of stream sources.

    Rules (enforced here):

    * ``open(context)`` first. A source may be re-opened after ``close()`` (a query restarted);
      opening an open source is an error (one source serves one running query at a time).
    * ``next_batch(pull)`` returns a ``pa.RecordBatch``, or ``None`` when nothing is available:
      for a bounded source (``bounded()`` true) ``None`` means the end.
    * ``offset()`` is the offset token of the last batch returned (read right after the pull).
    * ``checkpoint(marker)`` announces that progress up to ``marker.source_offset`` is about to
      be written; ``ack(token)`` comes only after the checkpoint file is durable, with a token
      that was checkpointed. A source may then release what it kept for replay.
    * ``restore(offset)`` (optional, ``best-effort`` delivery): resume after ``offset``; return
      True if the source honoured it. Called between ``open`` and the first ``next_batch``.
    * ``close()`` always ends the run (also on failure); it is idempotent.
    """

    _role = "source"

    def __init__(self):
        super().__init__()
        self._pending_tokens: list[str] = []

    # ---------------------------------------------------------------- public, order-checked
    def open(self, context: SourceContext) -> None:
        """Start a run of a query (``context`` says which)."""
        with self._lock:
            if self._state == "open":
                raise LifecycleError(f"{type(self).__name__}.open() called on an open source; a source "
                                     "serves one running query at a time (close() it first)")
            self._state = "open"
            self._pending_tokens = []
        self._opened_or_closed(context)

    def next_batch(self, pull: PullContext) -> pa.RecordBatch | None:
        """The next batch, or None (nothing now; the end for a bounded source)."""
        self._require_open("next_batch")
        return self._do_next_batch(pull)

    def checkpoint(self, marker: CheckpointMarker) -> None:
        """Progress up to ``marker.source_offset`` is about to be made durable."""
        self._require_open("checkpoint")
        self._pending_tokens.append(marker.source_offset)
        self._do_checkpoint(marker)

    def ack(self, token: str) -> None:
        """The checkpoint holding ``token`` is durable; the source may forget what precedes it."""
        self._require_open("ack")
        if token not in self._pending_tokens:
            raise LifecycleError(f"{type(self).__name__}.ack({token!r}) without a checkpoint of that offset; "
                                 "ack only follows checkpoint(marker) with the same source_offset")
        del self._pending_tokens[:self._pending_tokens.index(token) + 1]
        self._do_ack(token)

    def restore(self, offset: str) -> bool:
        """Resume after ``offset`` (best-effort delivery). True if the source supports it."""
        self._require_open("restore")
        return self._do_restore(offset)


    # ---------------------------------------------------------------- description
    def bounded(self) -> bool:
        """True if the source ends by itself (``next_batch`` returning None means the end)."""
        return True

    def offset(self) -> str:
        """The offset token of the last batch returned."""
        return ""

    def schema(self) -> pa.Schema | None:
        """The batch schema, if known before the first batch (None: learnt from the first batch)."""
        return None

    def describe(self) -> str:
        return type(self).__name__

    def capabilities(self) -> Capabilities:
        """What this source can do for delivery guarantees. The default promises nothing
        beyond ``bounded``: a source that can replay its data after a restart (``rewindable``)
        or resume after a checkpointed offset (``checkpointable``) overrides this."""
        return Capabilities(bounded=bool(self.bounded()))

    # ---------------------------------------------------------------- hooks for subclasses
    def _do_open(self, context: SourceContext) -> None:
        pass

    def _do_next_batch(self, pull: PullContext) -> pa.RecordBatch | None:
        raise NotImplementedError

    def _do_checkpoint(self, marker: CheckpointMarker) -> None:
        pass

    def _do_ack(self, token: str) -> None:
        pass

    def _do_restore(self, offset: str) -> bool:
        return False



class StreamSink(_Lifecycle):
    """Base class of stream sinks.

    Rules (enforced here): ``open(context)`` first; then per batch ``write(batch)`` and
    ``flush()``; ``checkpoint(marker)`` after the batch is flushed; ``close()`` always ends the
    run (idempotent). ``write`` receives every batch the query emits, empty ones included.
    ``name()`` is what progress reports: ``memory`` and ``console`` sinks are non-blocking,
    every other sink counts as blocking (``sink_is_blocking``).
    """

    _role = "sink"

    def open(self, context: SinkContext) -> None:
        """Start a run of a query."""
        with self._lock:
            if self._state == "open":
                raise LifecycleError(f"{type(self).__name__}.open() called on an open sink; a sink "
                                     "serves one running query at a time (close() it first)")
            self._state = "open"
        self._opened_or_closed(context)

    def write(self, batch: pa.RecordBatch) -> None:
        """Accept one output batch."""
        self._require_open("write")
        self._do_write(batch)

    def flush(self) -> None:
        """Make the written batches visible / durable as far as the sink promises."""
        self._require_open("flush")
        self._do_flush()

    def checkpoint(self, marker: CheckpointMarker) -> None:
        """Progress up to ``marker`` is about to be made durable."""
        self._require_open("checkpoint")
        self._do_checkpoint(marker)


    def name(self) -> str:
        """``memory``, ``console``, ``file_append``, ``queue``, or a custom name."""
        return "custom"

    def capabilities(self) -> Capabilities:
        """What this sink can do for delivery guarantees. The default promises nothing (the
        query reports best-effort); a sink whose ``flush()`` makes output durable declares
        ``checkpointable``, one that upserts by key ``idempotent_keyed``, and so on."""
        return Capabilities()

    def _do_open(self, context: SinkContext) -> None:
        pass

    def _do_write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def _do_flush(self) -> None:
        pass

    def _do_checkpoint(self, marker: CheckpointMarker) -> None:
        pass

