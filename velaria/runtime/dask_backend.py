"""``distributed``: partition tasks on a Dask distributed cluster.

Dask only schedules tasks and moves their Arrow results: every task runs this engine's own
operators and kernels (:func:`velaria.runtime.stages.run_task`) in the worker process, and a
file partition is read by the worker from its path. The cluster is reached at an explicit
address with a connect timeout; it is never replaced by local execution.

A worker lost mid-query: the scheduler reruns its tasks on the remaining workers (Dask's
``distributed.scheduler.allowed-failures`` bounds how often); if a task keeps losing its
worker, the query fails with an error that names the worker. The answer is either complete
or an error, never partial.
"""
from __future__ import annotations

import atexit
import contextlib
import threading

from ..errors import ExecutionError, VelariaError
from .modes import START_CLUSTER_HINT
from .shuffle_stages import run_bucket, run_map
from .stages import PartitionTask, run_task

__all__ = ["DaskBackend", "ClusterUnavailableError", "close_clients"]

#: scheduler address -> [client, sessions using it]: one connection per cluster and process
_CLIENTS: dict[str, list] = {}
_LOCK = threading.Lock()


def close_clients() -> None:
    """Disconnect every shared Dask client (at interpreter exit, or from tests)."""
    with _LOCK:
        while _CLIENTS:
            _, (client, _) = _CLIENTS.popitem()
            client.close()


atexit.register(close_clients)


class ClusterUnavailableError(VelariaError, ConnectionError):
    """The Dask scheduler cannot be reached, has no workers, or lost the query's tasks."""


def _import_client():
    try:
        from distributed import Client
    except ImportError as exc:
        raise ClusterUnavailableError(
            "runtime_mode='distributed' needs the Dask packages; install them with "
            "pip install 'velaria-py[distributed]' (dask and distributed)") from exc
    return Client


class DaskBackend:
    """A connection to the Dask scheduler at ``address``, shared by the process's Sessions
    (a Dask client is a heavy object: one per cluster is enough)."""

    name = "dask"

    def __init__(self, address: str, connect_timeout: float = 10.0):
        Client = _import_client()
        self.address = address
        self.connect_timeout = connect_timeout
        self._closed = False
        with _LOCK:
            entry = _CLIENTS.get(address)
            if entry is not None and entry[0].status != "running":   # a closed or broken connection
                _CLIENTS.pop(address)
                entry = None
            if entry is None:
                try:
                    client = Client(address, timeout=connect_timeout, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise ClusterUnavailableError(
                        f"cannot reach the Dask scheduler at {address} within connect_timeout={connect_timeout}s "
                        f"({type(exc).__name__}: {exc}); check that the scheduler runs and the address is right, "
                        f"or {START_CLUSTER_HINT}") from None
                entry = _CLIENTS[address] = [client, 0]
            entry[1] += 1
            self.client = entry[0]

    def slots(self) -> int:
        """Worker threads in the cluster now; waits up to the connect timeout for a worker
        (one may be restarting) and raises when there is none."""
        total = sum(self.client.nthreads().values())
        if not total:
            try:
                self.client.wait_for_workers(1, timeout=self.connect_timeout)
            except TimeoutError:
                raise ClusterUnavailableError(
                    f"the Dask cluster at {self.address} has no workers (waited {self.connect_timeout}s); "
                    f"start some with `dask worker {self.address}`") from None
            total = sum(self.client.nthreads().values())
        return total

    def run(self, tasks: list[PartitionTask], timeout: float | None = None):
        """``(results, workers)``: each task's Arrow result in task order, and the workers
        that held them."""
        futures = self.client.map(run_task, tasks, pure=False, key=[f"velaria-task-{_token()}-{t.index}"
                                                                     for t in tasks])
        with self._guard(futures, futures, timeout):
            results = self.client.gather(futures)
            holders = self.client.who_has(futures)
        return results, _holders(futures, holders)

    def run_shuffle(self, maps: list, buckets: list,
                    timeout: float | None = None):
        """``(results, workers, moved)``: the map tasks, then one bucket task per bucket that
        takes its bucket's piece of every map result (Dask moves the pieces between the
        workers; they never pass through the client). Returns the bucket results in bucket
        order, the workers that held map or bucket results, and the bytes of pieces moved.
        A lost worker's map results are recomputed by Dask from the task graph."""
        token = _token()
        map_futures = self.client.map(run_map, maps, pure=False,
                                      key=[f"velaria-shuffle-map-{token}-{m.index}" for m in maps])
        pieces = [[self.client.submit(_piece, f, b, pure=False, key=f"velaria-shuffle-piece-{token}-{m.index}-{b}")
                   for b in range(len(buckets))] for m, f in zip(maps, map_futures)]
        bucket_futures = [self.client.submit(_run_bucket, t, *[p[t.index] for p in pieces], pure=False,
                                             key=f"velaria-shuffle-bucket-{token}-{t.index}") for t in buckets]
        everything = map_futures + [f for p in pieces for f in p] + bucket_futures
        with self._guard(everything, bucket_futures, timeout):
            out = self.client.gather(bucket_futures)
            holders = self.client.who_has(map_futures + bucket_futures)
        results = [table for table, _ in out]
        moved = sum(nbytes for _, nbytes in out)
        return results, _holders(map_futures + bucket_futures, holders), moved

    @contextlib.contextmanager
    def _guard(self, futures: list, waited: list, timeout: float | None):
        """Wait for ``waited`` within ``timeout``; turn a lost worker or scheduler into a
        ``ClusterUnavailableError``; release ``futures`` at the end."""
        from distributed import KilledWorker, wait

        try:
            if timeout is not None:
                try:
                    with self.client.as_current():
                        wait(waited, timeout=timeout)
                except TimeoutError:
                    left = sum(not f.done() for f in waited)
                    raise ExecutionError(f"{left} of {len(waited)} partition tasks did not finish within "
                                         f"task_timeout={timeout}s on the Dask cluster at {self.address}") from None
            yield
        except KilledWorker as exc:
            worker = getattr(exc, "last_worker", None)
            name = getattr(worker, "address", worker)
            raise ClusterUnavailableError(
                f"Dask worker {name} died while running partition task {exc.task}, and the task was already "
                f"retried {exc.allowed_failures} times on other workers; no partial answer is returned") from None
        except (OSError, TimeoutError) as exc:
            raise ClusterUnavailableError(f"lost the Dask scheduler at {self.address} during the query "
                                          f"({type(exc).__name__}: {exc})") from None
        finally:
            for f in futures:
                f.release()

    def close(self) -> None:
        """Release this Session's use of the shared client; the last one disconnects."""
        with _LOCK:
            if self._closed:
                return
            self._closed = True
            entry = _CLIENTS.get(self.address)
            if entry is None or entry[0] is not self.client:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            _CLIENTS.pop(self.address)
        self.client.close()


def _piece(pieces: list, bucket: int):
    """Bucket ``bucket``'s piece of a map task's result (runs where the result is)."""
    return pieces[bucket]


def _run_bucket(task, *pieces):
    """A bucket task on a worker: its result and the bytes of the pieces it took in."""
    return run_bucket(task, list(pieces)), sum(p.nbytes for p in pieces)


def _holders(futures: list, holders: dict) -> list[str]:
    """The workers holding ``futures``' results, in first-seen order."""
    workers: list[str] = []
    for key in (f.key for f in futures):
        for w in holders.get(key, ()):
            if w not in workers:
                workers.append(w)
    return workers


def _token() -> str:
    import uuid
    return uuid.uuid4().hex[:12]
