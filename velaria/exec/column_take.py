"""Gathering rows by index on several threads: a join's output columns, a sort's output rows.

Arrow's ``take`` copies on one thread, and releases the GIL while it copies. A gather is one
random read per row and column, bound by memory latency rather than one core's arithmetic, so
large gathers go to one small pool of threads (as many as the accelerator may use,
``VELARIA_THREADS`` or the CPU count):

* :func:`take_columns` (joins): one column per task. Below ``MIN_PARALLEL_ROWS`` output rows,
  or with one thread or one column, the columns are taken in turn on the caller's thread
  (starting a task costs more than it saves).
* :func:`take_rows` (sorts): consecutive slices of the index array, one per task, each into
  its own output batch; together, in order, they are the gathered rows.

Each piece is the same Arrow ``take`` as on one thread, so the output does not depend on the
thread count.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from ..accel.string_take import take_strings
from ..accel.threads import default_threads

__all__ = ["take_columns", "take_rows", "pool_map", "MIN_PARALLEL_ROWS", "ROWS_PER_THREAD", "stats"]

#: fewer output rows than this are gathered on the caller's thread
MIN_PARALLEL_ROWS = 16384

#: output rows per thread below which :func:`take_rows` gathers on the caller's thread
ROWS_PER_THREAD = 1 << 20

#: how many calls took their columns on the pool (``parallel``) or in turn (``serial``); the
#: tests read it to check which path ran
stats = {"parallel": 0, "serial": 0}

_pool: ThreadPoolExecutor | None = None
_pool_threads = 0
_pool_lock = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    """The shared pool, rebuilt when the thread count changed (``VELARIA_THREADS`` is read per
    call, as the C kernels do)."""
    global _pool, _pool_threads
    with _pool_lock:
        if _pool is None or _pool_threads != threads:
            old, _pool = _pool, ThreadPoolExecutor(max_workers=threads, thread_name_prefix="velaria-take")
            _pool_threads = threads
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _forget_after_fork() -> None:
    """A forked child (a worker process) inherits the pool but not its threads: it starts a
    pool of its own on first use."""
    global _pool, _pool_threads, _pool_lock
    _pool, _pool_threads, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def take_columns(jobs: list[tuple[pa.Array, pa.Array]], strings_in_c: bool = False) -> list[pa.Array]:
    """``[column.take(indices) for column, indices in jobs]``, the columns taken on several
    threads when there are enough rows (a NULL index gives a NULL row, as ``take`` does).
    ``strings_in_c`` (the accelerated engine) gathers string columns in C where it applies."""
    threads = min(default_threads(), len(jobs))
    rows = max((len(indices) for _, indices in jobs), default=0)
    if threads < 2 or rows < MIN_PARALLEL_ROWS:
        stats["serial"] += 1
        # one column (a text column of a dimension, say) may use every thread itself
        c_threads = default_threads() if strings_in_c else 0
        return [_take(column, indices, c_threads) for column, indices in jobs]
    stats["parallel"] += 1
    threads_each = 1 if strings_in_c else 0
    return list(_executor(default_threads()).map(lambda job: _take(job[0], job[1], threads_each), jobs))


def _take(column: pa.Array, indices: pa.Array, c_threads: int) -> pa.Array:
    """``column.take(indices)``; with ``c_threads`` (else 0), a string column without NULLs
    is gathered in C on that many threads (``accel/string_take.py``): the same array, faster."""
    taken = take_strings(column, indices, c_threads) if c_threads else None
    return column.take(indices) if taken is None else taken


def take_rows(batch: pa.RecordBatch, order: pa.Array) -> list[pa.RecordBatch]:
    """``batch.take(order)`` as consecutive batches, gathered on up to ``default_threads()``
    threads (one per ``ROWS_PER_THREAD`` output rows)."""
    n = len(order)
    threads = min(default_threads(), n // ROWS_PER_THREAD)
    if threads <= 1:
        return [batch.take(order)]
    bounds = [n * t // threads for t in range(threads + 1)]
    parts = [order.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])]
    return list(_executor(default_threads()).map(batch.take, parts))


def pool_map(fn, items: list) -> list:
    """``[fn(item) for item in items]`` on the shared pool (for Arrow calls that release the
    GIL, such as a hash pass over one slice of a column each)."""
    if len(items) < 2:
        return [fn(item) for item in items]
    return list(_executor(default_threads()).map(fn, items))
