"""Row gathers by an index array on several threads.

A sort's output is its input gathered by the sorted row numbers: one random read per row and
column, bound by memory latency rather than by one core's arithmetic. Arrow's ``take`` releases
the GIL, so slices of the index array are gathered at once, each into its own output batch
(in order: together they are the sorted rows).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from ..accel.threads import default_threads

__all__ = ["take_rows"]

#: rows per thread below which one thread gathers everything (a hand-off costs more)
ROWS_PER_THREAD = 1 << 20

_pool: list = []             # [(pid, executor)]: a pool does not survive a fork
_pool_lock = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if not _pool or _pool[0][0] != os.getpid() or _pool[0][1]._max_workers < threads:
            _pool[:] = [(os.getpid(), ThreadPoolExecutor(max_workers=threads, thread_name_prefix="velaria-take"))]
        return _pool[0][1]


def take_rows(batch: pa.RecordBatch, order: pa.Array) -> list[pa.RecordBatch]:
    """``batch.take(order)`` as consecutive batches, gathered on up to
    ``default_threads()`` threads (one per ``ROWS_PER_THREAD`` output rows)."""
    n = len(order)
    threads = min(default_threads(), n // ROWS_PER_THREAD)
    if threads <= 1:
        return [batch.take(order)]
    bounds = [n * t // threads for t in range(threads + 1)]
    parts = [order.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])]
    return list(_executor(threads).map(batch.take, parts))
