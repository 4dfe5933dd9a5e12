"""A pool of long-lived worker processes running module-level functions: ``submit(fn, *args)``
returns a :class:`concurrent.futures.Future`.

The workers are forks of the template interpreter of :mod:`velaria.worker_launcher` (the same
start-up the stream runtime's local workers use): they start in milliseconds, never import the
user's ``__main__`` script, and are reaped by the template. Each worker runs one task at a time;
the arguments and the result (or the exception) are pickled over its socket, so ``fn`` must be a
function that the worker can import by name.

A worker that dies breaks the pool, like ``concurrent.futures.ProcessPoolExecutor``: every task
not finished fails with ``BrokenProcessPool`` naming the worker and its exit code
(:meth:`WorkerPool.lost`), the other workers are stopped, and the owner starts a new pool.
"""
from __future__ import annotations

import importlib
import queue
import threading
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from .worker_launcher import start_worker

__all__ = ["WorkerPool", "serve"]

_POLL_S = 0.05


def serve(conn) -> None:
    """A pool worker's loop: ``(module, function, args)`` in, ``(True, result)`` or
    ``(False, exception)`` out, until ``None`` or the pool's end of the socket closes."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        module, name, args = msg
        try:
            reply = (True, getattr(importlib.import_module(module), name)(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the caller's future
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - a result or exception that does not pickle
            conn.send((False, RuntimeError(f"{type(exc).__name__} while returning the result of {name}: {exc}")))


class WorkerPool:
    """``workers`` worker processes, each fed by one thread of the owner's process."""

    def __init__(self, workers: int, name: str = "pool"):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._broken: str | None = None
        self._lock = threading.Lock()
        self._dead: dict[int, int | None] = {}
        self.procs = []
        try:
            for i in range(workers):
                self.procs.append(start_worker(f"{name}-{i}", "velaria.worker_pool:serve"))
        except BaseException:
            self.shutdown()
            raise
        self._threads = [threading.Thread(target=self._feed, args=(w,), daemon=True, name=f"{w.name}-feeder")
                         for w in self.procs]
        for t in self._threads:
            t.start()

    def pids(self) -> list[int]:
        return [w.pid for w in self.procs]

    def lost(self) -> str:
        """The workers that died, as ``pid:N (exit code C)``."""
        return ", ".join(f"pid:{pid} (exit code {code})" for pid, code in self._dead.items()) or "unknown"

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args)`` on a free worker."""
        fut: Future = Future()
        if self._broken is not None:
            fut.set_exception(BrokenProcessPool(self._broken))
        else:
            self._tasks.put((fut, fn.__module__, fn.__name__, args))
        return fut

    def _feed(self, w) -> None:
        while True:
            item = self._tasks.get()
            if item is None:
                return
            fut, module, name, args = item
            if not fut.set_running_or_notify_cancel():
                continue
            if self._broken is not None:
                fut.set_exception(BrokenProcessPool(self._broken))
                continue
            try:
                w.conn.send((module, name, args))
                while not w.conn.poll(_POLL_S):
                    if w.exit_code() is not None:
                        raise EOFError
                ok, value = w.conn.recv()
            except (EOFError, OSError):
                with self._lock:
                    first = self._broken is None
                if first:                      # not a worker the broken pool asked to stop
                    self._break(w)
                fut.set_exception(BrokenProcessPool(self._broken))
                return
            except BaseException as exc:  # noqa: BLE001 - e.g. arguments that do not pickle
                fut.set_exception(exc)
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _break(self, w) -> None:
        """Worker ``w`` died: fail everything queued, stop the other workers."""
        code = w.exit_code(1.0)
        with self._lock:
            self._dead[w.pid] = code
            self._broken = self._broken or (f"a worker process of the pool died ({self.lost()}); "
                                            "the pool is broken and stops")
        while True:
            try:
                item = self._tasks.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[0].set_running_or_notify_cancel():
                item[0].set_exception(BrokenProcessPool(self._broken))
        for other in self.procs:
            if other is not w:
                other.ask_to_stop()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop the workers (after the running tasks; queued ones are cancelled when asked)."""
        if cancel_futures:
            while True:
                try:
                    item = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in self.procs:
            self._tasks.put(None)
        if wait:
            for t in getattr(self, "_threads", []):
                t.join()
        for w in self.procs:
            w.stop()
        self.procs = []
