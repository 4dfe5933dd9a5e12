"""The stream driver: pull micro-batches from a source, push them through the plan's
operators, write the sink, checkpoint, acknowledge.

One :class:`StreamRuntime` per started query. A producer thread pulls batches into a bounded
:class:`~velaria.stream.batch_queue.BatchQueue` (backpressure); the consumer, on the thread
that called ``await_termination``, runs each batch through the operators, writes and flushes
the sink, then makes progress durable in this order::

    source.checkpoint(marker); sink.checkpoint(marker); checkpoint file (atomic); source.ack(token)

so a source never forgets data that the checkpoint file does not cover. A failure in an
operator or the sink sets status ``failed``, closes operators, source and sink, keeps the last
checkpoint file untouched and re-raises from ``await_termination``.
"""
from __future__ import annotations

import hashlib
import itertools
import threading
import time

import pyarrow as pa

from ..errors import SourceFormatError, VelariaError
from ..exec.operators import ExecContext
from . import checkpoint as ckpt
from .abi import CheckpointMarker, PullContext, SinkContext, SourceContext
from .batch_queue import BatchQueue, QueuedBatch
from ..exec.window import WindowKeyAggregateOperator
from .delivery import delivery_view, require_profile_storage
from .operators import stream_operators
from .plan import StreamPlan
from .progress import Progress
from .strategy import StreamDecisions, StreamOptions

__all__ = ["StreamRuntime", "next_query_id"]

_QUERY_IDS = itertools.count(1)
_ID_LOCK = threading.Lock()


def next_query_id() -> str:
    """``stream-query-<n>`` from a process-wide counter starting at 1."""
    with _ID_LOCK:
        return f"stream-query-{next(_QUERY_IDS)}"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class StreamRuntime:
    """One stream query: plan, decisions, progress, source, sink and the run loop.

    ``planner(schema)`` plans the query over the source's schema. When the schema is known up
    front (Arrow batches, declared columns) the query is planned at construction, so a bad
    query fails at once; otherwise (a realtime source nothing was pushed to yet) it is planned
    on the first batch.
    """

    def __init__(self, planner, source, sink, options: StreamOptions, kernels, sink_name: str | None = None):
        self.planner = planner
        self.source = source
        self.sink = sink
        self.options = options
        self.kernels = kernels
        self.sink_name = sink_name
        self.progress = Progress(query_id=next_query_id())
        self.plan: StreamPlan | None = None
        self.decisions: StreamDecisions | None = None
        self.operators: list = []
        self.started = False
        self._lock = threading.RLock()
        self._queue: BatchQueue | None = None
        self._producer: threading.Thread | None = None
        self._workers = None
        self.worker_pids: list[int] = []       # the worker processes this query started
        self._consumer: threading.Thread | None = None    # the thread in await_termination
        self._consumer_done = threading.Event()
        self._checkpoint_loaded = False
        self._restored_offset = False
        self._opened = False
        self.error: BaseException | None = None
        schema = source.schema()
        if schema is not None:
            self._set_plan(planner(schema))
        self.progress.status = "created"
        self.progress.checkpoint_delivery_mode = options.checkpoint_delivery_mode
        self.progress.requested_execution_mode = self.progress.execution_mode = options.execution_mode
        self.progress.backpressure_high_watermark = options.backpressure_high_watermark
        self.progress.backpressure_low_watermark = options.backpressure_low_watermark
        self.progress.backpressure_max_queue_batches = max(1, options.max_inflight_batches)
        self.progress.engine = kernels.engine
        self.delivery = delivery_view(source, sink, options)
        self.progress.apply_delivery(self.delivery)

    # ---------------------------------------------------------------- planning
    def _set_plan(self, plan: StreamPlan) -> None:
        self.plan = plan
        self.decisions = StreamDecisions.decide(plan, self.options, self.sink_name or self._sink_label(),
                                                self.source.bounded(), self.kernels)
        self.progress.apply(self.decisions)
        self.progress.estimated_batch_cost = self.decisions.estimated_batch_cost
        self.operators = stream_operators(plan.nodes)
        text = "\n".join(plan.logical_text()) + "\n" + str(plan.output_schema)
        if any(isinstance(op, WindowKeyAggregateOperator) for op in self.operators):
            text += "\nwindow keys in state: int64 epoch milliseconds"     # the state's layout
        self._fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _sink_label(self) -> str | None:
        return self.sink.name() if self.sink is not None else None

    def fingerprint(self) -> str:
        """The plan's identity in checkpoint files, hashed once when the plan is set (the
        checkpoint writes it after every micro-batch)."""
        return self._fingerprint

    def check_startable(self) -> None:
        require_profile_storage(self.delivery.profile, self.options.checkpoint_path)
        if self.plan is not None and self.plan.has_order_by and not self.source.bounded():
            raise VelariaError("stream ORDER BY requires a bounded source")

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Open source and sink (again, if this query ran before); status ``running``. While
        ``await_termination`` runs, the query is running already: nothing is re-opened under it."""
        with self._lock:
            if self._consumer is not None:
                return
            self.check_startable()
            if self.started:
                self._close_endpoints()
            ctx = SourceContext(self.progress.query_id, self.options.trigger_interval_ms,
                                self.options.max_inflight_batches, self.options.max_queued_partitions,
                                self.options.checkpoint_path, self.source.bounded())
            try:
                self.source.open(ctx)
            except BaseException as exc:
                self._fail(exc)
                raise
            try:
                self.sink.open(SinkContext(self.progress.query_id, self.options.checkpoint_path,
                                           self.options.execution_mode))
            except BaseException as exc:
                self._fail(exc)
                try:
                    self.source.close()
                except BaseException as close_exc:  # noqa: BLE001 - the open error is the one to raise
                    exc.add_note(f"closing the source after the failed sink open also failed: {close_exc!r}")
                raise
            self.started = True
            self._checkpoint_loaded = False
            if self.plan is not None and not self._opened:
                # operator state lives as long as the query: a second await_termination
                # continues the running totals (the source decides whether it rewinds)
                for op in self.operators:
                    op.open(self._exec_ctx())
                self._opened = True
            self.progress.status = "running"

    def stop(self) -> None:
        """Stop a running query: status ``stopped``; operators, source and sink closed. While
        ``await_termination`` runs on another thread, that thread completes the batches already
        sent to local workers and shuts down; this call waits for it. Called from the thread in
        ``await_termination`` itself (a sink that has seen enough), it returns at once and the
        run ends after the current batch."""
        with self._lock:
            if self._queue is not None:
                self._queue.stop()
            consumer = self._consumer
            if consumer is threading.current_thread():
                # called from a sink or source hook inside await_termination: the batch being
                # processed completes (sink, checkpoint, ack), then the run loop shuts down
                pass
            elif consumer is not None:
                self._consumer_done.wait()
            else:
                try:
                    self._shutdown()
                except BaseException as exc:
                    self._fail(exc)
                    raise
            if self.progress.status != "failed":
                self.progress.status = "stopped"

    def _fail(self, exc: BaseException) -> None:
        """Record ``exc`` as the query's failure: status ``failed``."""
        self.error = exc
        self.progress.status = "failed"

    def _close_endpoints(self) -> None:
        # not started from here on, even if a close below raises: the next start() re-opens
        self.started = False
        for op in self.operators:
            try:
                op.close()
            except Exception:  # noqa: BLE001 - closing must reach the source and sink
                pass
        try:
            self.source.close()
        finally:
            self.sink.close()

    def _shutdown(self, failed: bool = False) -> None:
        if self._producer is not None and self._producer is not threading.current_thread():
            self._producer.join()
        self._producer = None
        if self._workers is not None:
            workers, self._workers = self._workers, None
            workers.close(keep_state=not failed)      # their running state back into the driver
        if self.started:
            self._close_endpoints()

    # ---------------------------------------------------------------- checkpoints
    def _load_checkpoint(self) -> None:
        path = self.options.checkpoint_path
        self._checkpoint_loaded = True
        if not path:
            return
        if self.plan is None:
            # The plan waits for the first batch when the source names no schema, so the file
            # cannot be matched to this query yet; a damaged one is still refused now rather
            # than when (or if) a first batch arrives. It is read again, whole, with the plan.
            ckpt.read_checkpoint(path, None)
            return
        data = ckpt.read_checkpoint(path, self.fingerprint())
        if data is None:
            return
        p = self.progress
        v = data.values
        try:
            p.batches_pulled = int(v.get("batches_pulled", 0))
            p.batches_processed = int(v.get("batches_processed", 0))
            p.blocked_count = int(v.get("blocked_count", 0))
            p.max_backlog_batches = int(v.get("max_backlog_batches", 0))
        except ValueError as exc:
            raise ckpt.CheckpointError(f"checkpoint file {path} has a non-integer counter ({exc})") from exc
        p.last_source_offset = v.get("last_source_offset", "")
        p.apply(self.decisions)
        p.status = "restored"
        # Operator state is restored only together with the source offset: replaying the
        # source from its start into restored state would count those rows twice.
        self._restored_offset = False
        if self.options.checkpoint_delivery_mode == "best-effort" and p.last_source_offset:
            self._restored_offset = bool(self.source.restore(p.last_source_offset))
        if self._restored_offset:
            if len(data.states) != len(self.operators):
                raise ckpt.CheckpointError(f"checkpoint file {path} holds {len(data.states)} operator states, "
                                           f"the query has {len(self.operators)} operators")
            for op, state in zip(self.operators, data.states):
                if state is not None:          # a fresh operator takes the checkpointed state
                    op.close()
                    op.open(self._exec_ctx())
                    op.restore(state)

    def _persist(self, offset: str, worker_state: pa.Table | None = None) -> None:
        """Make batch ``offset`` durable. ``worker_state``: the aggregate's state as the local
        workers hold it after that batch (the driver's own aggregate is empty meanwhile)."""
        p = self.progress
        marker = CheckpointMarker(p.query_id, offset, p.batches_processed)
        self.source.checkpoint(marker)
        self.sink.checkpoint(marker)
        if self.options.checkpoint_path:
            values = {k: getattr(p, k) for k in ckpt.COUNTER_KEYS}
            states = [op.snapshot() for op in self.operators]
            if worker_state is not None:
                states[self._workers.agg_pos] = worker_state
            ckpt.write_checkpoint(self.options.checkpoint_path,
                                  ckpt.CheckpointData(self.fingerprint(), values, states))
        if offset:
            self.source.ack(offset)

    # ---------------------------------------------------------------- the run loop
    def _produce(self, queue: BatchQueue, limit: int) -> None:
        """Pull batches into ``queue`` until the bounded source ends, ``limit`` batches were
        pulled (when > 0: never pull a batch this run will not process), or the query stops."""
        p = self.progress
        o = self.options
        workers = o.effective_local_workers
        pulled = 0
        try:
            while (not limit or pulled < limit) and queue.wait_for_room():
                pull = PullContext(p.query_id, p.inflight_batches, p.inflight_batches, p.inflight_partitions,
                                   o.max_inflight_batches, p.backpressure_active)
                batch = self.source.next_batch(pull)
                if batch is None:
                    if self.source.bounded():
                        queue.source_ended = True
                        break
                    queue.wait(o.idle_wait_ms / 1000)
                    continue
                if isinstance(batch, pa.Table):
                    batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else \
                        pa.RecordBatch.from_pylist([], schema=batch.schema)
                offset = self.source.offset()
                rows = batch.num_rows
                parts = min(workers, rows) if rows else 1
                p.estimated_partitions = max(p.estimated_partitions, parts)
                p.projected_payload_bytes = max(p.projected_payload_bytes, batch.nbytes)
                p.estimated_batch_cost = max(p.estimated_batch_cost, rows * batch.num_columns)
                queue.put(QueuedBatch(batch, offset, parts))
                pulled += 1
                if o.trigger_interval_ms > 0:
                    queue.wait(o.trigger_interval_ms / 1000)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            queue.finish(exc)
            return
        queue.finish()

    def await_termination(self, max_batches: int = 0) -> int:
        """Run until the bounded source ends, ``max_batches`` batches ran in this call, or
        ``stop()``. Returns the batches processed in this call."""
        if not isinstance(max_batches, int) or isinstance(max_batches, bool):
            raise TypeError(f"max_batches must be an int, got {type(max_batches).__name__}")
        if max_batches < 0:
            from ..errors import VelariaValueError
            raise VelariaValueError(f"max_batches must be >= 0 (0 = until the source ends), got {max_batches}")
        with self._lock:
            if self._consumer is not None:
                # two consumers would pull one source and update one state concurrently
                raise VelariaError(f"await_termination of {self.progress.query_id} is already running in thread "
                                   f"{self._consumer.name!r}; run it in one thread at a time (stop() may be "
                                   "called from any thread)")
            if not self.started:
                self.start()
            self._consumer = threading.current_thread()
            self._consumer_done.clear()
        processed = 0
        try:
            if not self._checkpoint_loaded:
                self._load_checkpoint()
            queue = self._queue = BatchQueue(self.options, self.progress)
            self._producer = threading.Thread(target=self._produce, args=(queue, max_batches), daemon=True,
                                              name=f"{self.progress.query_id}-producer")
            self._producer.start()
            taken = 0
            while True:
                item = queue.get()
                if item is None:
                    break
                processed += self._process(item)
                taken += 1
                if max_batches and taken >= max_batches:
                    break
            if self._workers is not None:          # batches still at the workers complete first
                processed += self._complete_from_workers(self._workers.drain())
            if queue.source_ended and not queue.items and not queue.stopped:
                self._finish_operators()
        except BaseException as exc:
            self._fail(exc)
            if self._queue is not None:
                self._queue.stop()
            try:
                self._shutdown(failed=True)
            except BaseException as close_exc:  # noqa: BLE001 - the first error is the one to raise
                exc.add_note(f"closing the query after this error also failed: {close_exc!r}")
            finally:
                self._consumer = None
                self._consumer_done.set()
            raise
        try:
            if self._queue is not None:
                self._queue.stop()
            self._shutdown()
        except BaseException as exc:
            self._fail(exc)          # a sink that cannot close has not delivered its output
            raise
        finally:
            self._consumer = None
            self._consumer_done.set()
        if self.progress.status != "failed":
            self.progress.status = "stopped"
        return processed

    def _ensure_plan(self, batch: pa.RecordBatch) -> None:
        if self.plan is None:
            # the source's types when it knows them by now (a realtime source learns a column's
            # type from the first pushed value, possibly after this batch of NULLs)
            schema = self.source.schema()
            self._set_plan(self.planner(schema if schema is not None and schema.names == batch.schema.names
                                        else batch.schema))
            for op in self.operators:
                op.open(self._exec_ctx())
            self._opened = True
            self._load_checkpoint()

    def _exec_ctx(self) -> ExecContext:
        if not hasattr(self, "_ctx"):
            self._ctx = ExecContext(self.kernels)
        return self._ctx

    def _run_operators(self, batch: pa.RecordBatch, start: int = 0,
                       stop: int | None = None) -> tuple[list[pa.RecordBatch], float]:
        """Push ``batch`` through ``operators[start:stop]``; returns the outputs and the
        seconds spent in stateful operators."""
        return self._run_operators_many([batch], start, stop)

    def _run_operators_many(self, outs: list[pa.RecordBatch], start: int = 0,
                            stop: int | None = None) -> tuple[list[pa.RecordBatch], float]:
        state_s = 0.0
        for op in self.operators[start:stop]:
            t = time.perf_counter()
            nxt = []
            for b in outs:
                try:
                    nxt.extend(op.push(b))
                except Exception as exc:
                    exc.add_note(f"in stream operator {type(op).__name__} of {self.progress.query_id}")
                    raise
            outs = nxt
            if op.stateful:
                state_s += time.perf_counter() - t
        return outs, state_s

    def _process(self, item: QueuedBatch) -> int:
        """Run one queued batch; returns the batches completed (local workers complete the
        batches sent earlier, in order, and may hold this one for later)."""
        batch = item.batch
        self._ensure_plan(batch)
        # cast the batch to the planned schema (later CSV files / pushes may type differently)
        schema = self.plan.input_schema
        if batch.schema.names != schema.names:
            raise VelariaError(f"stream batch has columns {batch.schema.names}, the query was planned for "
                               f"{schema.names}")
        if not batch.schema.equals(schema):
            try:
                batch = batch.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise SourceFormatError(
                    f"stream batch at source offset {item.offset!r} has types {batch.schema.types}, the query "
                    f"was planned for {schema.types} (columns {schema.names}): {exc}. A column holding only "
                    "NULLs when the query was planned has the null type; give the first batch typed "
                    "columns (for example push_arrow with an explicit schema)") from exc
        self._exec_ctx().tick()          # NOW()/TODAY(): one clock reading per micro-batch
        t0 = time.perf_counter()
        if self.decisions is not None and not self.decisions.resolved:
            self._resolve_mode()
        if self._workers is not None:
            done = self._workers.submit(item, batch, self._exec_ctx().eval_context.now,
                                        want_state=bool(self.options.checkpoint_path))
            if self._workers.shared_memory and not self.decisions.used_shared_memory:
                self.decisions.resolve_local_workers(True, True)
                self.progress.apply(self.decisions)
            return self._complete_from_workers(done)
        outs, state_s = self._run_operators(batch)
        return self._complete(item, outs, t0, state_s)

    def _complete_from_workers(self, done) -> int:
        """Complete batches the local workers finished: the operators after the aggregate
        run here, then sink, counters and checkpoint, in batch order."""
        for d in done:
            t0 = time.perf_counter() - d.seconds
            outs, state_s = self._run_operators_many(d.rows, self._workers.agg_pos + 1)
            self._complete(d.item, outs, t0, d.seconds + state_s, worker_state=d.state)
        return len(done)

    def _complete(self, item: QueuedBatch, outs: list[pa.RecordBatch], t0: float, state_s: float,
                  worker_state: pa.Table | None = None) -> int:
        """Write a processed batch's rows to the sink, update the counters, checkpoint."""
        p = self.progress
        agg = next((op for op in self.operators if getattr(op, "path", None)), None)
        if agg is not None and agg.path != self.decisions.aggregate_path:
            self.decisions.record_aggregate_path(agg.path)
            p.aggregate_path = agg.path
        ts = time.perf_counter()
        self._write(outs)
        end = time.perf_counter()
        p.batches_processed += 1
        p.last_batch_latency_ms = _ms(end - t0)
        p.last_sink_latency_ms = _ms(end - ts)
        p.last_state_latency_ms = _ms(state_s)
        p.last_source_offset = item.offset
        p.status = "backpressure" if p.backpressure_active else "running"
        self._persist(item.offset, worker_state)
        return 1

    def _write(self, outs: list[pa.RecordBatch]) -> None:
        outs = [b for b in outs if b.num_rows] or [pa.RecordBatch.from_pylist([], schema=self.plan.output_schema)]
        for b in outs:
            self.sink.write(b)
        self.sink.flush()

    def _finish_operators(self) -> None:
        """End of a bounded source: barrier operators emit what they still hold."""
        pending: list[pa.RecordBatch] = []
        for i, op in enumerate(self.operators):
            produced = []
            for b in pending:
                produced.extend(op.push(b))
            produced.extend(op.finish())
            pending = produced
        if any(b.num_rows for b in pending):
            self._write(pending)

    def _resolve_mode(self) -> None:
        d = self.decisions
        if d.requested_mode == "single-process":
            d.resolve_single_process()
        elif d.uses_workers:
            from .workers import WorkerPool
            self._workers = WorkerPool.start(self)
            self.worker_pids = self._workers.pids()
            d.resolve_local_workers(True, self._workers.shared_memory)
        else:
            d.resolve_local_workers(False)
        self.progress.apply(d)
