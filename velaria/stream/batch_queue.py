"""The bounded queue between a stream query's producer (source puller) and its consumer.

Counters follow native Velaria: the producer blocks while the queue holds
``max(1, max_inflight_batches)`` batches or ``max(1, max_queued_partitions)`` partitions, and
resumes once the backlog falls to the low watermark; ``blocked_count`` counts the waits,
``backpressure_active`` is raised after an enqueue that reaches the high watermark (or while
blocked) and cleared by a dequeue that reaches the low watermark.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

__all__ = ["QueuedBatch", "BatchQueue"]


@dataclass
class QueuedBatch:
    batch: object
    offset: str
    partitions: int


class BatchQueue:
    def __init__(self, options, progress):
        self.max_batches = max(1, options.max_inflight_batches)
        self.max_parts = max(1, options.max_queued_partitions)
        self.high = max(1, options.backpressure_high_watermark)
        self.low = options.backpressure_low_watermark
        self.progress = progress
        self.cond = threading.Condition()
        self.items: collections.deque[QueuedBatch] = collections.deque()
        self.partitions = 0
        self.done = False          # the producer has finished pulling
        self.source_ended = False  # ... because the bounded source is exhausted
        self.stopped = False       # the consumer asked the producer to stop
        self.error: BaseException | None = None

    def _full(self) -> bool:
        return len(self.items) >= self.max_batches or self.partitions >= self.max_parts

    def _drained(self) -> bool:
        return len(self.items) <= self.low and self.partitions < self.max_parts

    def wait_for_room(self) -> bool:
        """Block the producer while the queue is full. False when the query stopped."""
        with self.cond:
            if self._full() and not self.stopped:
                p = self.progress
                p.blocked_count += 1
                p.backpressure_active = True
                p.status = "backpressure"
                self.cond.wait_for(lambda: self.stopped or self._drained())
            return not self.stopped

    def put(self, item: QueuedBatch) -> None:
        with self.cond:
            self.items.append(item)
            self.partitions += item.partitions
            p = self.progress
            p.batches_pulled += 1
            p.inflight_batches = len(self.items)
            p.inflight_partitions = self.partitions
            p.max_backlog_batches = max(p.max_backlog_batches, len(self.items))
            if len(self.items) >= self.high or self.partitions >= self.max_parts:
                p.backpressure_active = True
            self.cond.notify_all()

    def get(self) -> QueuedBatch | None:
        """The next batch; None when the producer is done and the queue empty, or stopped."""
        with self.cond:
            self.cond.wait_for(lambda: self.items or self.done or self.stopped or self.error is not None)
            if self.error is not None:
                raise self.error
            if self.stopped or not self.items:
                return None
            item = self.items.popleft()
            self.partitions -= item.partitions
            p = self.progress
            p.inflight_batches = len(self.items)
            p.inflight_partitions = self.partitions
            if self._drained():
                p.backpressure_active = False
                if p.status == "backpressure":
                    p.status = "running"
            self.cond.notify_all()
            return item

    def finish(self, error: BaseException | None = None) -> None:
        with self.cond:
            self.done = True
            if error is not None:
                self.error = error
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early when the query stops."""
        with self.cond:
            self.cond.wait_for(lambda: self.stopped, timeout=seconds)
