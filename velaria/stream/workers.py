"""Local-workers mode: the eligible grouped aggregate runs in worker processes.

The driver cuts each source batch into one contiguous slice per worker and hands each slice to
its worker as an Arrow IPC stream:
through a shared-memory block when the slice is at least ``shared_memory_min_payload_bytes``
(``transport_mode=shared-memory``), otherwise copied through the worker's pipe
(``rpc-copy``). Each worker runs the query's partition-local transforms (filters, projections,
window assignment) on its slice and folds the result into a fresh aggregate (the same operators
and kernels as the driver's, same engine), and sends back the exported state; the driver
merges the states into the query's running aggregate (``merge_state``) and emits the updated
groups, then runs the transforms after the aggregate. Results equal single-process mode.

Workers are fresh interpreters (``python -m velaria.stream.workers``, connected to the driver
by a Unix socket pair), started when the query's first batch arrives; unlike
``multiprocessing``'s spawn they never re-import the user's main script, so a script without
an ``if __name__ == "__main__"`` guard works. They are shut down (asked, then terminated)
when the query ends, fails or is stopped; a worker also exits on its own when the driver's
end of its socket closes, so no worker outlives its query. A worker that dies fails the query
with an error naming it and its exit code.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from multiprocessing import shared_memory
from multiprocessing.connection import Connection

import pyarrow as pa

from ..errors import ExecutionError

__all__ = ["WorkerPool"]

_POLL_S = 0.05


def _write_ipc(sink, table: pa.Table) -> None:
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)


def _ipc_size(table: pa.Table) -> int:
    mock = pa.MockOutputStream()
    _write_ipc(mock, table)
    return mock.size()


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    _write_ipc(sink, table)
    return sink.getvalue()


def _attach(name: str) -> shared_memory.SharedMemory:
    """Attach to the driver's block without adopting it: the driver owns and unlinks it
    (before Python 3.13 attaching registers the block with this process's resource tracker,
    which would unlink it again at exit)."""
    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        from multiprocessing import resource_tracker
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, "shared_memory")
        return shm


def _aggregate_slice(ctx, buf: pa.Buffer, ops) -> bytes:
    """The exported partial state of the IPC slice in ``buf``: ``ops`` (the query's
    partition-local transforms, then its aggregate, built once per worker as the driver
    builds them, so the state layout is the driver's) are opened afresh, fold the slice, and
    the aggregate's snapshot goes back (nothing from ``buf`` is kept)."""
    batch = pa.ipc.open_stream(buf).read_all()
    for op in ops:
        op.open(ctx)                     # a fresh aggregate for every slice
    try:
        for b in batch.to_batches():
            outs = [b]
            for op in ops[:-1]:
                outs = [o for x in outs for o in op.push(x)]
            for x in outs:
                ops[-1].push(x)
        return _ipc_bytes(ops[-1].snapshot()).to_pybytes()
    finally:
        for op in ops:
            op.close()


def _worker_main(conn, engine: str, spec) -> None:
    """Worker process loop: slice in, exported partial aggregate state out. ``spec``: the
    aggregate's plan node with the nodes below it down to the scan."""
    from ..exec.operators import ExecContext
    from ..kernels import kernel_set
    from ..reference.functions import EvalContext
    from .operators import stream_operators
    from .plan import linearize
    ctx = ExecContext(kernel_set(engine))
    ops = stream_operators(linearize(spec), aggregate_mode="final")
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return                                   # the driver went away
        if msg is None:
            return
        kind, payload, now = msg
        ctx.eval_context = EvalContext(now=now)
        try:
            if kind == "shm":
                shm = _attach(payload[0])
                view = shm.buf[:payload[1]]
                try:
                    reply = _aggregate_slice(ctx, pa.py_buffer(view), ops)
                finally:
                    view.release()
                    shm.close()
            else:
                reply = _aggregate_slice(ctx, pa.py_buffer(payload), ops)
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which fails the query
            reply = b"ERR" + f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
        conn.send_bytes(reply)


class _Worker:
    """One worker process and the driver's end of its socket."""

    def __init__(self, name: str, engine: str, spec):
        parent, child = socket.socketpair()
        env = dict(os.environ)
        # the worker imports velaria from wherever this process did
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "velaria.stream.workers", str(child.fileno())],
                                         pass_fds=(child.fileno(),), env=env)
        finally:
            child.close()
        self.name = name
        self.pid = self.proc.pid
        self.conn = Connection(parent.detach())
        self.asked = False
        self.conn.send((engine, spec))

    @property
    def exitcode(self) -> int | None:
        return self.proc.poll()

    def ask_to_stop(self) -> None:
        """Tell the worker to exit after its current slice (no wait; once)."""
        if self.asked:
            return
        self.asked = True
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        self.ask_to_stop()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.conn.close()


class WorkerPool:
    """The worker processes of one query."""

    def __init__(self, runtime, workers: list[_Worker], agg_pos: int):
        self.runtime = runtime
        self.workers = workers
        self.agg_pos = agg_pos
        self.options = runtime.options
        self.shared_memory = False               # set once a slice really went through shared memory

    @classmethod
    def start(cls, runtime) -> "WorkerPool":
        ops = runtime.operators
        agg_pos = next(i for i, op in enumerate(ops) if getattr(op, "stateful", False))
        # the workers run the transforms below the aggregate and the aggregate itself: they get
        # the aggregate's plan node with its input chain (operators[i] runs plan.nodes[i + 1])
        shipped = runtime.plan.nodes[agg_pos + 1]
        workers: list[_Worker] = []
        try:
            for i in range(runtime.options.effective_local_workers):
                workers.append(_Worker(f"{runtime.progress.query_id}-worker-{i}", runtime.kernels.engine, shipped))
        except BaseException:
            cls(runtime, workers, agg_pos).close()
            raise
        return cls(runtime, workers, agg_pos)

    def run(self, runtime, batch: pa.RecordBatch):
        """Process one micro-batch: the transforms up to the aggregate and a partial
        aggregate in the workers (one contiguous slice each), the merge and the rest here.
        Returns (outputs, seconds in stateful work)."""
        if not batch.num_rows:
            return [], 0.0
        t0 = time.perf_counter()
        table = pa.Table.from_batches([batch])
        n = min(len(self.workers), table.num_rows)
        step = -(-table.num_rows // n)
        now = runtime._exec_ctx().eval_context.now
        blocks = []
        try:
            for i in range(n):
                part = table.slice(i * step, step)
                size = _ipc_size(part)
                if self.options.shared_memory_transport and size >= self.options.shared_memory_min_payload_bytes:
                    # the IPC stream is written straight into the block: one copy, no pipe
                    shm = shared_memory.SharedMemory(create=True, size=max(1, size))
                    blocks.append(shm)
                    view = shm.buf[:size]
                    writer = pa.FixedSizeBufferWriter(pa.py_buffer(view))
                    _write_ipc(writer, part)
                    writer.close()
                    del writer
                    view.release()
                    self._send(i, ("shm", (shm.name, size), now))
                    self.shared_memory = True
                else:
                    self._send(i, ("bytes", _ipc_bytes(part).to_pybytes(), now))
            states = [self._receive(i) for i in range(n)]
        finally:
            for shm in blocks:
                shm.close()
                shm.unlink()
        agg = runtime.operators[self.agg_pos]
        for state in states:
            if state.num_rows:
                agg.merge(state)
        updated = agg.emit_updated()
        outs = [updated] if updated.num_rows else []
        state_s = time.perf_counter() - t0
        after, s2 = runtime._run_operators_many(outs, self.agg_pos + 1)
        d = runtime.decisions
        if self.shared_memory and not d.used_shared_memory:
            d.resolve_local_workers(True, True)
            runtime.progress.apply(d)
        return after, state_s + s2

    def _died(self, i: int) -> ExecutionError:
        w = self.workers[i]
        try:
            w.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        return ExecutionError(f"local worker {w.name} (pid {w.pid}) died with exit code {w.exitcode} "
                              "while aggregating a batch; the query stops here and its last checkpoint stays valid")

    def _send(self, i: int, msg) -> None:
        try:
            self.workers[i].conn.send(msg)
        except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
            raise self._died(i) from exc

    def _receive(self, i: int) -> pa.Table:
        w = self.workers[i]
        while not w.conn.poll(_POLL_S):
            if w.exitcode is not None:
                raise self._died(i)
        try:
            data = w.conn.recv_bytes()
        except (EOFError, OSError) as exc:
            raise self._died(i) from exc
        if data.startswith(b"ERR"):
            raise ExecutionError(f"local worker {w.name} failed: {data[3:].decode('utf-8', 'replace')}")
        return pa.ipc.open_stream(pa.py_buffer(data)).read_all()

    def close(self) -> None:
        """Stop every worker: ask, wait briefly, then terminate; close the sockets."""
        for w in self.workers:          # all asked first: they exit in parallel
            w.ask_to_stop()
        for w in self.workers:
            w.stop()
        self.workers = []

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]


if __name__ == "__main__":          # a worker process: python -m velaria.stream.workers <fd>
    _conn = Connection(int(sys.argv[1]))
    _engine, _spec = _conn.recv()
    _worker_main(_conn, _engine, _spec)
