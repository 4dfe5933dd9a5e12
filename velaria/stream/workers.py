"""Local-workers mode: the eligible grouped aggregate runs in worker processes, which split
either the batches or the groups (:func:`merges_exactly` decides).

Split batches (partial states that merge exactly: COUNT, MIN, MAX, integer and decimal SUM /
AVG): each batch goes to one worker, the workers taking turns. The worker runs the query's
partition-local transforms (filters, projections, window assignment) on the whole batch, folds
it into its aggregate and sends back the batch's partial state by group id: the ids of the
groups it touched with their counts and exact totals, plus the keys of only the groups it
numbered since its previous reply (the ids are stable, the touched groups restart empty).
The driver keeps one array per worker mapping the worker's ids to its own, numbers only the
new keys, merges the partials into its own running aggregate in batch order and emits the
groups each batch updated, as single-process mode does; the state never leaves the driver.

Split groups (float sums, DISTINCT): every group belongs to exactly one worker, chosen from one of its
key values (:mod:`velaria.stream.key_partition`: the window number for a windowed aggregate,
else a hash). A batch goes to every worker that may own rows of it (for a window over the
source's integer time column, the workers of the windows its time range touches, see
:mod:`velaria.stream.batch_routing`; else every worker). Each keeps the rows of the groups it
owns, folds them into its own running aggregate and sends back the rows that aggregate emits:
the current values of its groups that the batch updated. The driver concatenates them.

Either way the driver writes each source batch once, as an Arrow IPC stream, into one
shared-memory block (``transport_mode=shared-memory``; a batch smaller than
``shared_memory_min_payload_bytes`` is copied through the socket instead: ``rpc-copy``) that
the workers read in place, runs the operators after the aggregate, writes the sink and
checkpoints. The workers run the same operators and kernels as the driver (same engine).
Results equal single-process mode (the same rows per batch; with split groups, within a batch
grouped by worker).

Pipelining: the driver sends up to ``PIPELINE_DEPTH`` batches ahead before it waits for the
oldest one's rows, so the workers never wait for the driver's sink and checkpoint work; batches
still complete (sink, checkpoint, ack) strictly in order, and every batch in flight is
completed before the query ends or stops.

State (split groups; with split batches it stays in the driver): before the first batch, the
driver's aggregate state (restored from a checkpoint, or left by an earlier run of the query)
is handed to the workers, each importing its own groups.
A checkpoint gathers the workers' states with the batch it covers (they are disjoint, so the
checkpointed state is their concatenation); when the workers stop at the end of a run, their
states go back into the driver's aggregate, so a later run continues the running totals.

Processes: workers are forks of a template interpreter (:mod:`velaria.worker_launcher`), so
they start in milliseconds and never import the user's main script. They live as long as the
query's run: stopped (asked, then terminated) when it ends, fails or is stopped, and a worker
also exits on its own when the driver's end of its socket closes. A worker that dies fails the
query with an error naming it and its exit code.
"""
from __future__ import annotations

import collections
import select
import time
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np
import pyarrow as pa

from ..errors import ExecutionError
from ..worker_launcher import MappedBlock
from .batch_routing import BatchRouter

__all__ = ["WorkerPool", "PIPELINE_DEPTH"]

#: batches the driver sends ahead of the oldest one it has not completed
PIPELINE_DEPTH = 4
_POLL_MS = 50                   # how often a wait for a reply checks that the worker lives


def _write_ipc(sink, table) -> None:
    with pa.ipc.new_stream(sink, table.schema) as w:
        if isinstance(table, pa.RecordBatch):
            w.write_batch(table)
        else:
            w.write_table(table)


def _write_into(block: shared_memory.SharedMemory, room: int, table) -> int | None:
    """Write ``table``'s IPC stream at the start of ``block`` (at most ``room`` bytes); its
    length, or None when it does not fit."""
    view = block.buf[:room]
    try:
        writer = pa.FixedSizeBufferWriter(pa.py_buffer(view))
        try:
            _write_ipc(writer, table)
            return writer.tell()
        except OSError:                     # "Write out of bounds": the stream outgrew room
            return None
        finally:
            writer.close()
            del writer
    finally:
        view.release()


def _ipc_bytes(table) -> bytes:
    sink = pa.BufferOutputStream()
    _write_ipc(sink, table)
    return sink.getvalue().to_pybytes()


def _read_ipc(buf) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(buf) if not isinstance(buf, pa.Buffer) else buf).read_all()


# ------------------------------------------------------------------------------ in the worker

class _Partitioned:
    """A worker's part of the query: the transforms, then its own groups' running aggregate
    (``split``: the aggregate of whole batches, handed out as a partial state per batch)."""

    def __init__(self, engine: str, spec, workers: int, index: int, split: bool = False):
        from ..exec.operators import ExecContext
        from ..exec.window import WindowAssignOperator
        from ..kernels import kernel_set
        from .key_partition import partition_key
        from .operators import stream_operators
        from .plan import linearize
        self.ctx = ExecContext(kernel_set(engine))
        # split: the aggregate folds and emits nothing; ``partial`` takes what a batch folded
        self.ops = stream_operators(linearize(spec), aggregate_mode="final" if split else "running")
        for op in self.ops:
            op.open(self.ctx)
        self.agg = self.ops[-1]
        self.split = split
        self.workers, self.index = workers, index
        self.known = 0          # split: how many of its groups' keys the driver has been sent
        if split:
            self.owned_below = False
            return
        self.key, self.step = partition_key(self.agg)
        # partitioned by window: the window assignment right below keeps only this worker's
        # windows, so the rows reaching the aggregate are all its own
        below = self.ops[-2] if len(self.ops) > 1 else None
        self.owned_below = self.step > 0 and isinstance(below, WindowAssignOperator) and below.epoch_ms
        if self.owned_below:
            below.owner = (workers, index)

    def _mine(self, keys) -> np.ndarray:
        from .key_partition import partition_ids
        return partition_ids(keys, self.workers, self.step) == self.index

    def run(self, table: pa.Table) -> list[pa.RecordBatch] | tuple[pa.Table, pa.Table]:
        """Fold this worker's rows of ``table``; the rows its aggregate emits (``split``: the
        partial state of every row of ``table`` by group id, with the keys of its groups that
        are new since the previous batch: ``take_partial``)."""
        out: list[pa.RecordBatch] = []
        for b in table.to_batches():
            parts = [b]
            for op in self.ops[:-1]:
                parts = [o for x in parts for o in op.push(x)]
            for x in parts:
                if self.split or self.owned_below:
                    out.extend(self.agg.push(x))           # split: final mode, emits nothing
                    continue
                mask = self._mine(self.agg._eval(self.agg.node.keys[self.key], x))
                if mask.any():
                    out.extend(self.agg.push(x if mask.all() else x.filter(pa.array(mask))))
        if not self.split:
            return out
        new_keys, partial = self.agg.take_partial(self.known)
        self.known += new_keys.num_rows
        return new_keys, partial

    def load(self, state: pa.Table) -> None:
        """Import this worker's groups of an exported state (into the fresh aggregate)."""
        mine = state.filter(pa.array(self._mine(state.column(f"k{self.key}"))))
        if mine.num_rows:
            self.agg.restore(mine)


class _Attached:
    """The driver's shared-memory blocks this worker has mapped, by name (the driver reuses a
    few blocks for every batch, so each is mapped once; the least recently used beyond
    ``keep`` are unmapped)."""

    def __init__(self, keep: int = 2 * PIPELINE_DEPTH + 2):
        self.blocks: collections.OrderedDict[str, MappedBlock] = collections.OrderedDict()
        self.keep = keep

    def batch(self, source) -> tuple[pa.Table, memoryview | None]:
        """The batch a message points at (read in place), and the view to release after it."""
        if source[0] != "shm":
            return _read_ipc(source[1]), None
        name = source[1]
        shm = self.blocks.pop(name, None) or MappedBlock(name)
        self.blocks[name] = shm
        while len(self.blocks) > self.keep:
            self.blocks.popitem(last=False)[1].close()
        view = shm.buf[:source[2]]
        return _read_ipc(view), view

    def close(self) -> None:
        while self.blocks:
            self.blocks.popitem()[1].close()


def worker_main(conn, engine: str, spec, workers: int, index: int, split: bool = False) -> None:
    """A worker's loop. ``spec``: the aggregate's plan node with the nodes below it down to
    the scan. Messages: ``("batch", source, now, want_state)``, ``("load", state)``,
    ``("state",)``, ``None`` (exit). Replies: ``("ok", rows, state)`` or ``("err", text)``;
    ``split``: a batch's reply carries its partial state in place of rows."""
    from ..reference.functions import EvalContext
    part = _Partitioned(engine, spec, workers, index, split)
    attached = _Attached()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return                                   # the driver went away
        if msg is None:
            attached.close()
            return
        reply: tuple
        try:
            if msg[0] == "batch":
                _, source, now, want_state = msg
                part.ctx.eval_context = EvalContext(now=now)
                table, view = attached.batch(source)
                try:
                    out = part.run(table)
                finally:
                    del table
                    if view is not None:
                        # the driver reuses the block for a later batch: nothing kept may point
                        # into it (release() refuses while anything does; the query then fails)
                        view.release()
                if isinstance(out, tuple):            # split: (new keys, partial) by group id
                    new_keys, partial = out
                    # nothing touched and no new key: nothing to send (``known`` stays in step)
                    rows = ((_ipc_bytes(new_keys) if new_keys.num_rows else None, _ipc_bytes(partial))
                            if partial.num_rows or new_keys.num_rows else None)
                else:
                    rows = _ipc_bytes(pa.Table.from_batches(out)) if out else None
                reply = ("ok", rows, _ipc_bytes(part.agg.snapshot()) if want_state else None)
            elif msg[0] == "load":
                part.load(_read_ipc(msg[1]))
                reply = ("ok", None, None)
            else:                                     # "state"
                reply = ("ok", None, _ipc_bytes(part.agg.snapshot()))
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which fails the query
            reply = ("err", f"{type(exc).__name__}: {exc}")
        conn.send(reply)


# ------------------------------------------------------------------------------ in the driver

@dataclass
class _Pending:
    """A batch sent to the workers and not yet completed."""

    item: object
    block: shared_memory.SharedMemory | None
    started: float
    targets: list[int]          # the workers it was sent to


class _Blocks:
    """The driver's shared-memory blocks, reused batch after batch (a fresh block per batch
    would cost its creation, the kernel zeroing its pages and the page faults every time). A
    block is taken for one batch and given back once every worker finished with it."""

    def __init__(self):
        self.free: list[shared_memory.SharedMemory] = []
        self.all: list[shared_memory.SharedMemory] = []

    def take(self, size: int) -> shared_memory.SharedMemory:
        fits = [b for b in self.free if b.size >= size]
        if fits:
            block = min(fits, key=lambda b: b.size)
            self.free.remove(block)
            return block
        if self.free:                          # too small: retire one, so the count stays bounded
            self._drop(self.free.pop())
        block = shared_memory.SharedMemory(create=True, size=max(1, size + size // 4))
        self.all.append(block)
        return block

    def give_back(self, block: shared_memory.SharedMemory | None) -> None:
        if block is not None:
            self.free.append(block)

    def _drop(self, block: shared_memory.SharedMemory) -> None:
        self.all.remove(block)
        block.close()
        block.unlink()

    def close(self) -> None:
        """Unlink every block (workers still mapping one keep it until they unmap it)."""
        while self.all:
            self._drop(self.all[-1])
        self.free = []


def merges_exactly(node) -> bool:
    """True when partial states of aggregate plan node ``node`` merge into exactly the values
    one pass over the rows gives: COUNT, MIN, MAX, and SUM / AVG of integers or decimals
    (exact totals). A float SUM's rounding depends on the order of its additions, and
    DISTINCT keeps value sets: those keep each group in one worker instead.

    It decides how the workers share the work: exactly merging partials split the batches
    (each worker folds whole batches into partial states the driver merges), others split
    the groups (each keeps its own groups' rows of every batch it is sent). Splitting batches
    reads no row twice, needs nothing from the workers at a checkpoint, and costs the driver a
    lookup of the worker's group ids plus the keys of its new groups. That holds for a
    tumbling window too: routing its batches by time (split groups) sends a batch that crosses
    a window's end to both workers and makes each one emit and format its groups, which costs
    more CPU in all than the driver's merge."""
    for a in node.aggregates:
        if a.distinct:
            return False
        if a.func in ("count", "min", "max"):
            continue
        if a.func in ("sum", "avg") and a.arg is not None and (
                pa.types.is_integer(a.arg.type) or pa.types.is_decimal(a.arg.type)):
            continue
        return False
    return True


@dataclass
class Completed:
    """A batch the workers finished: the queued item, the aggregate's rows, the workers'
    combined state (when asked for) and the seconds from sending to the last reply."""

    item: object
    rows: list
    state: pa.Table | None
    seconds: float


class WorkerPool:
    """The worker processes of one run of a query."""

    def __init__(self, runtime, agg_pos: int, split: bool = False):
        self.runtime = runtime
        self.agg_pos = agg_pos
        # split: whole batches go to one worker each, which returns the batch's partial state;
        # the driver's aggregate merges them in batch order and holds the running state
        self.split = split
        self._next = 0                           # split: the worker the next batch goes to
        self._maps: list = []                    # split, per worker: its group ids -> the driver's
        self._empty_keys: pa.Table | None = None
        self.options = runtime.options
        self.workers: list = []
        self.shared_memory = False               # set once a batch really went through shared memory
        self._inflight: collections.deque[_Pending] = collections.deque()
        self._blocks = _Blocks()
        self._replies: list[collections.deque] = []      # per worker: replies read, not yet used
        # one poll set over every worker's socket (which have replies waiting: one system call),
        # and one per worker (wait for that worker's reply); Connection.poll builds a selector
        # per call, which cost more than the rest of the messages of a batch
        self._ready = select.poll()
        self._by_fd: dict[int, int] = {}
        self._polls: list = []
        # a windowed aggregate over the source's own time column: batches go only to the
        # workers whose windows they may touch
        self._router: BatchRouter | None = None

    @classmethod
    def start(cls, runtime) -> "WorkerPool":
        """Start the workers and hand them the driver aggregate's current state."""
        from ..worker_launcher import start_worker
        ops = runtime.operators
        agg_pos = next(i for i, op in enumerate(ops) if getattr(op, "stateful", False))
        # the workers run the transforms below the aggregate and the aggregate itself: they get
        # the aggregate's plan node with its input chain (operators[i] runs plan.nodes[i + 1])
        shipped = runtime.plan.nodes[agg_pos + 1]
        agg = ops[agg_pos]
        n = runtime.options.effective_local_workers
        router = BatchRouter.for_operators(ops, agg_pos, n)
        pool = cls(runtime, agg_pos, split=merges_exactly(agg.node))
        pool._router = None if pool.split else router
        try:
            for i in range(n):
                pool._replies.append(collections.deque())
                pool._maps.append(None)
                pool._add(start_worker(f"{runtime.progress.query_id}-worker-{i}", "velaria.stream.workers:worker_main",
                                       runtime.kernels.engine, shipped, n, i, pool.split))
            state = None if pool.split else agg.snapshot()       # split: the state stays here
            if state is not None and state.num_rows:
                data = _ipc_bytes(state)
                for i in range(n):
                    pool._send(i, ("load", data))
                for i in range(n):
                    pool._receive(i)
                agg.close()                      # the workers own the groups now
                agg.open(runtime._exec_ctx())
        except BaseException:
            pool.close(keep_state=False)
            raise
        return pool

    def _add(self, worker) -> None:
        """Take a started worker in (its socket joins the poll sets)."""
        fd = worker.conn.fileno()
        self._by_fd[fd] = len(self.workers)
        self._ready.register(fd, select.POLLIN)
        own = select.poll()
        own.register(fd, select.POLLIN)
        self._polls.append(own)
        self.workers.append(worker)

    # -------------------------------------------------------------- batches
    def submit(self, item, batch: pa.RecordBatch, now, want_state: bool) -> list[Completed]:
        """Send ``batch`` to every worker; returns the batches completed meanwhile (the
        oldest ones, once more than ``PIPELINE_DEPTH`` are in flight), in order."""
        t0 = time.perf_counter()
        block = None
        if self.options.shared_memory_transport and batch.nbytes >= self.options.shared_memory_min_payload_bytes:
            # the IPC stream is written straight into the block, once for all workers
            block, size = self._write_block(batch)
            source = ("shm", block.name, size)
        else:
            source = ("bytes", _ipc_bytes(batch))
        if self.split:                  # one worker folds the whole batch; the state is here
            targets, want_state = [self._next], False
            self._next = (self._next + 1) % len(self.workers)
        else:
            # a checkpoint gathers every worker's state with the batch, so then all get it
            targets = (self._router.owners(batch) if self._router is not None and not want_state
                       else list(range(len(self.workers))))
        self._inflight.append(_Pending(item, block, t0, targets))
        for i in targets:
            self._send(i, ("batch", source, now, want_state))
        if block is not None:
            self.shared_memory = True
        self._read_ready()
        done = []
        while len(self._inflight) > PIPELINE_DEPTH:
            done.append(self._complete())
        return done

    def _write_block(self, batch: pa.RecordBatch) -> tuple[shared_memory.SharedMemory, int]:
        """A shared block holding ``batch``'s IPC stream, and the stream's length. The block is
        taken for an upper bound of that length (the batch message, the schema message, room
        for padding and the end marker), so the batch is serialised once; a stream that
        outgrows the bound (large dictionaries) is measured, then written into a block that fits."""
        bound = pa.ipc.get_record_batch_size(batch) + batch.schema.serialize().size + 4096
        block = self._blocks.take(bound)
        size = _write_into(block, bound, batch)
        if size is None:
            self._blocks.give_back(block)
            sink = pa.MockOutputStream()
            _write_ipc(sink, batch)
            block = self._blocks.take(sink.size())
            size = _write_into(block, sink.size(), batch)
        return block, size

    def drain(self) -> list[Completed]:
        """Complete every batch in flight, in order."""
        return [self._complete() for _ in range(len(self._inflight))]

    def _read_ready(self) -> None:
        """Read the replies already there, so a worker never waits for room in its socket
        while the driver waits for another worker."""
        while True:
            ready = self._ready.poll(0)         # a worker that died is ready too: _receive says so
            if not ready:
                return
            for fd, _ in ready:
                i = self._by_fd[fd]
                self._replies[i].append(self._receive(i))

    def _complete(self) -> Completed:
        pending = self._inflight[0]
        replies = [self._replies[i].popleft() if self._replies[i] else self._receive(i)
                   for i in pending.targets]
        self._inflight.popleft()
        self._blocks.give_back(pending.block)
        if self.split:
            rows = self._merged(pending.targets[0], replies[0][1])
        else:
            # one batch of rows per source batch, as in single-process mode
            parts = [_read_ipc(data) for _, data, _ in replies if data is not None]
            rows = pa.concat_tables(parts).combine_chunks().to_batches() if parts else []
        states = [_read_ipc(s) for _, _, s in replies if s is not None]
        state = pa.concat_tables(states) if states else None
        return Completed(pending.item, rows, state, time.perf_counter() - pending.started)

    def _merged(self, worker: int, data) -> list[pa.RecordBatch]:
        """Merge a batch's partial state (from ``worker``: the keys of its new groups and the
        partial by its group ids, or None when the batch touched no group) into the driver's
        aggregate; the rows it emits (the current values of the groups the batch updated, as
        single-process mode emits). Only new keys are numbered: the worker's ids of the others
        map to the driver's through ``_maps`` (one array per worker)."""
        agg = self.runtime.operators[self.agg_pos]
        if data is not None:
            keys, partial = data
            new_keys = _read_ipc(keys) if keys is not None else self._no_keys(agg)
            self._maps[worker] = agg.merge_partial(new_keys, _read_ipc(partial), self._maps[worker])
        out = agg.emit_updated()
        return [out] if out.num_rows else []

    def _no_keys(self, agg) -> pa.Table:
        """An empty key table of ``agg``'s key types (a partial whose groups are all known)."""
        if self._empty_keys is None:
            types = agg.key_types()
            self._empty_keys = pa.table([pa.array([], type=t) for t in types],
                                        names=[f"k{j}" for j in range(len(types))])
        return self._empty_keys

    # -------------------------------------------------------------- state
    def gather(self) -> pa.Table:
        """Every worker's state, concatenated (the groups are disjoint)."""
        for i in range(len(self.workers)):
            self._send(i, ("state",))
        return pa.concat_tables([_read_ipc(self._receive(i)[2]) for i in range(len(self.workers))])

    # -------------------------------------------------------------- messages
    def _died(self, i: int) -> ExecutionError:
        w = self.workers[i]
        return ExecutionError(f"local worker {w.name} (pid {w.pid}) died with exit code {w.exit_code(1.0)} "
                              "while aggregating a batch; the query stops here and its last checkpoint stays valid")

    def _send(self, i: int, msg) -> None:
        try:
            self.workers[i].conn.send(msg)
        except (BrokenPipeError, ConnectionResetError, EOFError) as exc:
            raise self._died(i) from exc

    def _receive(self, i: int):
        w = self.workers[i]
        while not self._polls[i].poll(_POLL_MS):
            if w.exit_code() is not None:
                raise self._died(i)
        try:
            reply = w.conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died(i) from exc
        if reply[0] == "err":
            raise ExecutionError(f"local worker {w.name} failed: {reply[1]}")
        return reply

    # -------------------------------------------------------------- shutdown
    def close(self, keep_state: bool = True) -> None:
        """Stop every worker. ``keep_state``: first move their states back into the driver's
        aggregate (nothing may be in flight then). Every shared-memory block is unlinked."""
        try:
            if keep_state and self.workers and not self._inflight and not self.split:
                state = self.gather()
                agg = self.runtime.operators[self.agg_pos]
                if state.num_rows:
                    agg.close()
                    agg.open(self.runtime._exec_ctx())
                    agg.restore(state)
        finally:
            self._inflight.clear()
            for w in self.workers:          # all asked first: they exit in parallel
                w.ask_to_stop()
            for w in self.workers:
                w.stop()
            self.workers = []
            self._ready, self._by_fd, self._polls = select.poll(), {}, []
            self._blocks.close()

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

