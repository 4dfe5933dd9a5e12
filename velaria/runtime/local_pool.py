"""``single-node``: partition tasks on a pool of local worker processes.

Arrow data crosses the process boundary as Arrow IPC streams in shared memory
(``multiprocessing.shared_memory``): an in-memory partition is written there by the client
and read by the worker, a task's result is written there by the worker and read (then
unlinked) by the client. Only the small task description is pickled through the worker's
socket. The workers are :class:`velaria.worker_pool.WorkerPool` processes: forks of the
template interpreter that the stream runtime's local workers come from too
(:mod:`velaria.worker_launcher`), so they start in milliseconds, never re-import the user's
main script, and load the kernels once each. One pool per worker count serves every
single-node Session of the process (start-up is paid once); it stops at interpreter exit or
with :func:`shutdown_pools`, and a pool with a dead worker is replaced at the next query.
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import shared_memory

import pyarrow as pa

from ..errors import ExecutionError
from ..io.base import DEFAULT_BATCH_ROWS, ArrowTableSource, TableSource
from ..plan import logical as L
from ..plan.physical import linearize
from ..worker_launcher import MappedBlock
from ..worker_pool import WorkerPool
from .partition import ipc_stream_bytes
from .shuffle_stages import run_bucket, run_map
from .stages import PartitionTask, replace_node, run_task

__all__ = ["LocalPoolBackend", "SharedMemoryTableSource", "shutdown_pools"]

#: worker count -> the process-wide pool of that size
_POOLS: dict[int, WorkerPool] = {}


def shutdown_pools() -> None:
    """Stop every local worker pool (a later single-node query starts a new one)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)


def _write_shm(table: pa.Table) -> tuple[str, int]:
    """``table`` as an Arrow IPC stream in a new shared-memory block: (name, size)."""
    buf = ipc_stream_bytes(table)
    shm = shared_memory.SharedMemory(create=True, size=max(buf.size, 1))
    try:
        shm.buf[:buf.size] = memoryview(buf).cast("B")
    except BaseException:
        shm.close()
        shm.unlink()
        raise
    shm.close()
    return shm.name, buf.size


def _read_shm(name: str, size: int, unlink: bool) -> pa.Table:
    """The Arrow table in shared-memory block ``name`` (copied out; unlinked if asked)."""
    block = MappedBlock(name)
    try:
        table = pa.ipc.open_stream(pa.py_buffer(bytes(block.buf[:size]))).read_all()
    finally:
        block.close()
        if unlink:
            _unlink(name)
    return table


class SharedMemoryTableSource(TableSource):
    """An in-memory partition handed to a worker through shared memory."""

    kind = "memory"

    def __init__(self, name: str, size: int, schema: pa.Schema):
        self.name = name
        self.size = size
        self._schema = schema

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def scan(self, columns=None, filters=(), batch_rows=DEFAULT_BATCH_ROWS):
        yield from ArrowTableSource(_read_shm(self.name, self.size, unlink=False)).scan(columns, filters, batch_rows)


def _hand_over(table: pa.Table) -> tuple[str, int]:
    """``table`` in a new shared-memory block that the client owns (and unlinks)."""
    from multiprocessing import resource_tracker

    name, size = _write_shm(table)
    # the client unlinks the block after reading it; stop this process's tracker from
    # reporting it as leaked
    resource_tracker.unregister("/" + name.lstrip("/"), "shared_memory")
    return name, size


def _worker_entry(task: PartitionTask) -> tuple[str, int, int, str]:
    """Pool entry point: run ``task``, return its result's shared-memory block, row count
    and this worker's name."""
    table = run_task(task)
    name, size = _hand_over(table)
    return name, size, table.num_rows, f"pid:{os.getpid()}"


def _map_entry(task) -> tuple[list[tuple[str, int]], str]:
    """Pool entry point of a shuffle map task: one shared-memory block per bucket."""
    return [_hand_over(piece) for piece in run_map(task)], f"pid:{os.getpid()}"


def _bucket_entry(task, pieces: list[tuple[str, int]]) -> tuple[str, int, int, str]:
    """Pool entry point of a bucket task: read its pieces (the client unlinks them later)."""
    table = run_bucket(task, [_read_shm(name, size, unlink=False) for name, size in pieces])
    name, size = _hand_over(table)
    return name, size, table.num_rows, f"pid:{os.getpid()}"


def _unlink(name: str) -> None:
    try:
        shm = shared_memory.SharedMemory(name=name)
        shm.close()
        shm.unlink()
    except FileNotFoundError:
        pass


def _result_blocks(fut) -> list[str]:
    """The shared-memory blocks a finished task's result names (none if it failed)."""
    if not fut.done() or fut.cancelled() or fut.exception() is not None:
        return []
    result = fut.result()
    return [n for n, _ in result[0]] if isinstance(result[0], list) else [result[0]]


def _abandoned_cleanup(abandoned: threading.Event):
    """A future callback: once the query failed (``abandoned`` set), unlink the blocks of
    the task's result, since no one will read them."""
    def callback(fut):
        if abandoned.is_set():
            for name in _result_blocks(fut):
                _unlink(name)
    return callback


def _abandon(abandoned: threading.Event, futures: list) -> None:
    """The query failed: unlink the results already there; later ones unlink themselves."""
    abandoned.set()
    for fut in futures:
        fut.cancel()
        for name in _result_blocks(fut):
            _unlink(name)


def _submit(pool, futures: list, abandoned: threading.Event, fn, *args):
    fut = pool.submit(fn, *args)
    fut.add_done_callback(_abandoned_cleanup(abandoned))
    futures.append(fut)
    return fut


class LocalPoolBackend:
    """Runs partition tasks on ``workers`` local processes."""

    name = "process-pool"

    def __init__(self, workers: int | None = None):
        self.workers = workers or max(2, os.cpu_count() or 2)

    def slots(self) -> int:
        return self.workers

    def _executor(self) -> WorkerPool:
        pool = _POOLS.get(self.workers)
        if pool is None:
            pool = _POOLS[self.workers] = WorkerPool(self.workers, name="single-node-worker")
        return pool

    def _ship(self, task, blocks: list[str]):
        """``task`` with its in-memory scans moved to shared memory (a task that wraps a
        partition task, ``task.task``, has that one shipped)."""
        if not isinstance(task, PartitionTask):
            return dataclasses.replace(task, task=self._ship(task.task, blocks))
        plan = task.plan
        for scan in [n for n in linearize(plan) if isinstance(n, L.Scan)]:
            if isinstance(scan.source, ArrowTableSource):
                name, size = _write_shm(scan.source.table)
                blocks.append(name)
                shm_scan = L.Scan(schema=scan.schema, source=SharedMemoryTableSource(name, size, scan.source.schema),
                                  table_name=scan.table_name, columns=scan.columns, filters=scan.filters)
                plan = replace_node(plan, scan, shm_scan)
        return dataclasses.replace(task, plan=plan)

    def run(self, tasks: list, timeout: float | None = None):
        """``(results, workers)``: each task's Arrow result in task order, and the workers
        that ran them."""
        blocks: list[str] = []
        workers: list[str] = []
        futures: list = []
        with self._guard(blocks, timeout, futures) as abandoned:
            pool = self._executor()
            for t in tasks:
                _submit(pool, futures, abandoned, _worker_entry, self._ship(t, blocks))
            results = [self._collect(fut, timeout, workers) for fut in list(futures)]
        return results, workers

    def run_shuffle(self, maps: list, buckets: list,
                    timeout: float | None = None):
        """``(results, workers, moved)``: run the map tasks, hand bucket ``b``'s pieces (in
        map order, through shared memory) to bucket task ``b``, and return the bucket
        results in bucket order, the workers, and the bytes of the pieces moved."""
        blocks: list[str] = []
        workers: list[str] = []
        futures: list = []
        with self._guard(blocks, timeout, futures) as abandoned:
            pool = self._executor()
            map_futures = [_submit(pool, futures, abandoned, _map_entry, self._ship(m, blocks)) for m in maps]
            pieces: list[list[tuple[str, int]]] = []
            for fut in map_futures:
                out, worker = fut.result(timeout=timeout)
                blocks.extend(name for name, _ in out)
                pieces.append(out)
                if worker not in workers:
                    workers.append(worker)
            moved = sum(size for out in pieces for _, size in out)
            bucket_futures = [_submit(pool, futures, abandoned, _bucket_entry, t, [out[t.index] for out in pieces])
                              for t in buckets]
            results = [self._collect(fut, timeout, workers) for fut in bucket_futures]
        return results, workers, moved

    @staticmethod
    def _collect(fut, timeout, workers: list[str]) -> pa.Table:
        name, size, _, worker = fut.result(timeout=timeout)
        if worker not in workers:
            workers.append(worker)
        return _read_shm(name, size, unlink=True)

    @contextlib.contextmanager
    def _guard(self, blocks: list[str], timeout: float | None, futures: list):
        """Turn a dead worker or a timeout into an ``ExecutionError``. Always unlink
        ``blocks``; on failure also the result blocks of ``futures`` that nobody will read
        (those finishing later unlink theirs in :func:`_abandoned_cleanup`)."""
        abandoned = threading.Event()
        try:
            yield abandoned
        except BrokenProcessPool as exc:
            _abandon(abandoned, futures)
            broken = _POOLS.pop(self.workers, None)
            lost = broken.lost() if broken is not None else "unknown"
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise ExecutionError(f"local worker process {lost} died while running a partition task ({exc}); "
                                 "no partial answer is returned. The pool was shut down and restarts with the "
                                 "next query") from exc
        except TimeoutError as exc:
            _abandon(abandoned, futures)
            raise ExecutionError(f"partition tasks did not finish within task_timeout={timeout}s") from exc
        except BaseException:
            _abandon(abandoned, futures)
            raise
        finally:
            for name in blocks:
                _unlink(name)

    def close(self) -> None:
        """Nothing to release per Session: the pool is shared (see :func:`shutdown_pools`)."""
