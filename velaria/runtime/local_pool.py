"""``single-node``: partition tasks on a pool of local worker processes.

Arrow data crosses the process boundary as Arrow IPC streams in shared memory
(``multiprocessing.shared_memory``): an in-memory partition is written there by the client
and read by the worker, a task's result is written there by the worker and read (then
unlinked) by the client. Only the small task description is pickled through the pool's
pipe. Workers are started with ``spawn`` (safe with threads in the client) on the first
partitioned query and load the kernels once each; one pool per worker count serves every
single-node Session of the process (start-up is paid once), and it stops at interpreter exit
or with :func:`shutdown_pools`.

This pool is small and private to the batch runtime.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from multiprocessing import shared_memory

import pyarrow as pa

from ..errors import ExecutionError
from ..io.base import DEFAULT_BATCH_ROWS, ArrowTableSource, TableSource
from ..plan import logical as L
from ..plan.physical import linearize
from .partition import ipc_stream_bytes
from .stages import PartitionTask, replace_node, run_task

__all__ = ["LocalPoolBackend", "SharedMemoryTableSource", "shutdown_pools"]

#: worker count -> the process-wide pool of that size
_POOLS: dict[int, ProcessPoolExecutor] = {}


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
    shm = shared_memory.SharedMemory(name=name)
    try:
        table = pa.ipc.open_stream(pa.py_buffer(bytes(shm.buf[:size]))).read_all()
    finally:
        shm.close()
        if unlink:
            shm.unlink()
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


def _worker_entry(task: PartitionTask) -> tuple[str, int, int, str]:
    """Pool entry point: run ``task``, return its result's shared-memory block, row count
    and this worker's name."""
    from multiprocessing import resource_tracker

    table = run_task(task)
    name, size = _write_shm(table)
    # the client unlinks the block after reading it; stop this process's tracker from
    # reporting it as leaked
    resource_tracker.unregister("/" + name.lstrip("/"), "shared_memory")
    return name, size, table.num_rows, f"pid:{os.getpid()}"


class LocalPoolBackend:
    """Runs partition tasks on ``workers`` local processes."""

    name = "process-pool"

    def __init__(self, workers: int | None = None):
        self.workers = workers or max(2, os.cpu_count() or 2)

    def slots(self) -> int:
        return self.workers

    def _executor(self) -> ProcessPoolExecutor:
        pool = _POOLS.get(self.workers)
        if pool is None:
            pool = _POOLS[self.workers] = ProcessPoolExecutor(max_workers=self.workers,
                                                              mp_context=get_context("spawn"))
        return pool

    def _ship(self, task: PartitionTask, blocks: list[str]) -> PartitionTask:
        plan = task.plan
        for scan in [n for n in linearize(plan) if isinstance(n, L.Scan)]:
            if isinstance(scan.source, ArrowTableSource):
                name, size = _write_shm(scan.source.table)
                blocks.append(name)
                shm_scan = L.Scan(schema=scan.schema, source=SharedMemoryTableSource(name, size, scan.source.schema),
                                  table_name=scan.table_name, columns=scan.columns, filters=scan.filters)
                plan = replace_node(plan, scan, shm_scan)
        return dataclasses.replace(task, plan=plan)

    def run(self, tasks: list[PartitionTask], timeout: float | None = None):
        """``(results, workers)``: each task's Arrow result in task order, and the workers
        that ran them."""
        blocks: list[str] = []
        results: list[pa.Table | None] = [None] * len(tasks)
        workers: list[str] = []
        try:
            pool = self._executor()
            futures = [pool.submit(_worker_entry, self._ship(t, blocks)) for t in tasks]
            for i, fut in enumerate(futures):
                name, size, _, worker = fut.result(timeout=timeout)
                results[i] = _read_shm(name, size, unlink=True)
                if worker not in workers:
                    workers.append(worker)
        except BrokenProcessPool as exc:
            broken = _POOLS.pop(self.workers, None)
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise ExecutionError(f"a local worker process died while running a partition task ({exc}); "
                                 "the pool was shut down and restarts with the next query") from exc
        except TimeoutError as exc:
            raise ExecutionError(f"partition tasks did not finish within task_timeout={timeout}s") from exc
        finally:
            for name in blocks:
                try:
                    shm = shared_memory.SharedMemory(name=name)
                    shm.close()
                    shm.unlink()
                except FileNotFoundError:
                    pass
        return results, workers

    def close(self) -> None:
        """Nothing to release per Session: the pool is shared (see :func:`shutdown_pools`)."""
