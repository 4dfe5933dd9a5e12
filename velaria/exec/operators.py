"""Operators: one small class per plan node kind, with one lifecycle for batch and stream.

Lifecycle (every operator)::

    open(ctx)                   once, before any batch
    push(batch, port=0)  -> [batches]   one input batch in, zero or more output batches out
    finish()             -> [batches]   every input has ended; barriers emit here
    snapshot()           -> pa.Table | None   state as Arrow (None: stateless)
    restore(state)                      load a snapshot into a freshly opened operator
    close()                             always called, on success and on failure

A *source* operator has no input; it is pulled with ``next_batch()`` and carries an offset
(``checkpoint()`` returns it, ``restore_offset(offset)`` resumes there), so a stream driver can
record where it is and a restarted query can continue.

The batch driver (:mod:`velaria.exec.driver`) pulls every source, pushes through the
operators, then finishes them; the stream driver (``velaria.stream``) pushes micro-batches
through the *same* operators and checkpoints their snapshots. Operators keep their state in
the object, never in a generator frame, so it can be snapshotted, shipped and restored.

Every operator calls its kernel through the Session's :class:`~velaria.kernels.KernelSet`
(``ctx.kernels``), never a module directly, and renders its own explain line
(``explain_line``) from the plan node it was built for.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ExecutionError, VelariaValueError
from ..io.base import ArrowTableSource
from ..kernels import KernelSet
from ..plan import logical as L
from ..plan.expr import Column, Expr
from ..plan.kernel_paths import collecting
from ..plan.physical import filter_kernel
from ..plan.probe_keys import arriving_rows_target, probe_filter_target
from .column_take import take_columns
from .probe_filter import ProbeFilter
from .shared_args import plan_reuse
from .subquery_join import subquery_join

__all__ = ["ExecContext", "Operator", "SourceOperator", "CollectingOperator", "ScanOperator", "OneRowOperator", "FilterOperator",
           "ProjectOperator", "AggregateOperator", "SortOperator", "LimitOperator", "JoinOperator",
           "UnionOperator", "SetOpOperator", "DistinctOperator", "WindowOperator", "HybridSearchOperator", "KeywordSearchOperator", "OPERATORS", "empty_batch"]


class ExecContext:
    """What one execution shares: kernels, the clock reading NOW()/TODAY() see, batch size.

    NOW() and TODAY() read the clock once per execution context: once per batch query, and
    once per micro-batch in a stream (the stream driver makes a fresh reading per batch with
    :meth:`tick`), so every row of one batch sees the same instant.
    """

    def __init__(self, kernels: KernelSet, batch_rows: int = 65536, memory_whole_chunks: bool = False):
        self.kernels = kernels
        self.batch_rows = batch_rows
        # in-memory sources (kind "memory") handed out in their own chunks, not batch_rows
        self.memory_whole_chunks = memory_whole_chunks
        self.tick()

    def tick(self) -> None:
        """Take a new clock reading for NOW() / TODAY()."""
        from ..reference.functions import EvalContext
        self.eval_context = EvalContext.current()


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A record batch of ``schema`` with no rows."""
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def _single_batch(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    """``batches`` as one record batch (barrier operators work on their whole input)."""
    rows = [b for b in batches if b.num_rows]
    if not rows:
        return empty_batch(schema)
    whole = _rejoined_slices(rows, schema)
    if whole is not None:
        return whole
    table = pa.Table.from_batches([_with_schema(b, schema) for b in rows], schema=schema).combine_chunks()
    return table.to_batches()[0]          # one chunk per column -> one batch


def _rejoined_slices(rows: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch | None:
    """``rows`` as one batch without copying when they are consecutive slices of the same
    arrays (an in-memory table scanned batch by batch): each column is the slice of the
    shared buffers that spans them all. None when they are not (or a column is nested)."""
    if len(rows) == 1:
        return _with_schema(rows[0], schema)
    columns = []
    for j in range(len(schema)):
        first = rows[0].column(j)
        if first.type.num_fields or pa.types.is_dictionary(first.type):
            return None
        addresses = [None if buf is None else buf.address for buf in first.buffers()]
        end = first.offset + len(first)
        for b in rows[1:]:
            col = b.column(j)
            if col.offset != end or [None if buf is None else buf.address for buf in col.buffers()] != addresses:
                return None
            end += len(col)
        columns.append(pa.Array.from_buffers(first.type, end - first.offset, first.buffers(), offset=first.offset))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _with_schema(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    return batch if batch.schema.equals(schema) else pa.RecordBatch.from_arrays(list(batch.columns), schema=schema)


class Operator:
    """Base class: a stateless pass-through; subclasses override what they need."""

    #: True when the operator emits only at ``finish`` (it needs all of its input)
    barrier = False
    #: True when the operator keeps state across batches (its snapshot is not None)
    stateful = False

    def __init__(self, node: L.Node, children: list["Operator"] | None = None):
        self.node = node
        self.schema = node.schema
        self.children = list(children or [])
        self.ctx: ExecContext | None = None
        self.done = False            # True when no further input can change the output (LIMIT)
        self.rows_in = 0
        self.rows_out = 0

    @property
    def name(self) -> str:
        return type(self).__name__.removesuffix("Operator")

    # -- lifecycle -----------------------------------------------------------------------

    def open(self, ctx: ExecContext) -> None:
        self.ctx = ctx

    def push(self, batch: pa.RecordBatch, port: int = 0) -> list[pa.RecordBatch]:
        return [batch]

    def input_ended(self, port: int) -> None:
        """Every batch of input ``port`` has been pushed (the batch driver says so; other
        drivers may not, so nothing may depend on being told)."""

    def finish(self) -> list[pa.RecordBatch]:
        return []

    def snapshot(self) -> pa.Table | None:
        return None

    def restore(self, state: pa.Table | None) -> None:
        if state is not None:
            raise VelariaValueError(f"operator {self.name} is stateless; it cannot restore a snapshot")

    def close(self) -> None:
        pass

    def explain_line(self) -> str:
        """This operator's line in explain's ``logical`` section (upstream's step format)."""
        from ..plan.explain import step_line
        return step_line(self.node)

    # -- helpers -------------------------------------------------------------------------

    def _eval(self, e: Expr, batch: pa.RecordBatch) -> pa.Array:
        """``e`` over ``batch`` through the registry's ``evaluate`` kernel. A bare column
        reference is the batch's own array (no kernel call; explain's kernel list counts on it)."""
        if isinstance(e, Column):
            arr = batch.column(e.index)
            return arr if arr.type.equals(e.type) else arr.cast(e.type)
        return self.ctx.kernels.evaluate(e, batch, self.ctx.eval_context)


class SourceOperator(Operator):
    """A source: pulled with ``next_batch()`` (None at the end), with an offset.

    ``checkpoint()`` returns the offset of the next batch (rows delivered so far);
    ``ack(offset)`` says everything before it is durable downstream; ``restore_offset(offset)``
    (before the first ``next_batch``) resumes a scan there.
    """

    def __init__(self, node: L.Node):
        super().__init__(node, [])
        self.offset = 0
        self.acked = 0

    def next_batch(self) -> pa.RecordBatch | None:
        raise NotImplementedError

    def checkpoint(self) -> int:
        return self.offset

    def ack(self, offset: int) -> None:
        if offset > self.offset:
            raise VelariaValueError(f"ack({offset}) is past what source {self.name} delivered ({self.offset})")
        self.acked = offset

    def restore_offset(self, offset: int) -> None:
        raise VelariaValueError(f"source {self.name} cannot resume at an offset")


class ScanOperator(SourceOperator):
    """Scan a :class:`~velaria.io.base.TableSource` with the plan's projection and filters.

    The pushdown lives in the plan node, not in the source: one source serves several scans
    (queries, workers) at once.
    """

    def open(self, ctx: ExecContext) -> None:
        super().open(ctx)
        self._skip = 0
        self._batches = None

    def _rows_per_batch(self) -> int:
        """The Session's ``batch_rows``, or for an in-memory source (data already materialised;
        nothing to bound) its whole chunks when allowed."""
        node, ctx = self.node, self.ctx
        if ctx.memory_whole_chunks and isinstance(node.source, ArrowTableSource):
            hint = node.source.num_rows_hint()
            if hint:
                return max(ctx.batch_rows, hint)
        return ctx.batch_rows

    def restore_offset(self, offset: int) -> None:
        if self._batches is not None:
            raise VelariaValueError("restore_offset() must come before the first next_batch()")
        self._skip = self.offset = self.acked = offset

    def next_batch(self) -> pa.RecordBatch | None:
        node = self.node
        if self._batches is None:
            self._batches = iter(node.source.scan(node.columns, node.filters, self._rows_per_batch()))
        while True:
            b = next(self._batches, None)
            if b is None:
                return None
            if self._skip:                       # resuming: drop what was delivered before
                if b.num_rows <= self._skip:
                    self._skip -= b.num_rows
                    continue
                b = b.slice(self._skip)
                self._skip = 0
            self.offset += b.num_rows
            return self._conform(b)

    def _conform(self, b: pa.RecordBatch) -> pa.RecordBatch:
        node = self.node
        if b.schema.equals(node.schema):
            return b
        if b.num_columns == len(node.schema):
            b = b.rename_columns(node.schema.names)
        if not b.schema.equals(node.schema):
            try:
                b = b.cast(node.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise ExecutionError(f"source {node.table_name} yielded a batch with schema {b.schema}, "
                                     f"expected {node.schema}: {exc}") from exc
        return b

    def close(self) -> None:
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()                              # release the file the scan generator holds
        self._batches = None


class OneRowOperator(SourceOperator):
    """One row and no real columns: the projection above computes only literals / functions."""

    def next_batch(self) -> pa.RecordBatch | None:
        if self.offset:
            return None
        self.offset = 1
        return pa.record_batch([pa.nulls(1)], names=["__one"])


class _PathsMixin:
    """Collects the implementation paths its kernels report (``velaria.plan.kernel_paths``)."""

    def _start_paths(self) -> None:
        self._paths: dict = {}

    @property
    def path(self) -> str | None:
        """The paths the kernels reported, ``+``-joined in first-use order (None: none)."""
        return "+".join(self._paths) if getattr(self, "_paths", None) else None


def _true_count(selection) -> int:
    """How many rows a selection (numpy or Arrow bool array) keeps."""
    if isinstance(selection, pa.Array):
        return selection.true_count
    return int(np.count_nonzero(selection))


class FilterOperator(_PathsMixin, Operator):
    """Keep the rows whose predicate is TRUE (``filter_batch`` kernel); under a join, first
    drop the rows whose join key the join's other input lacks (``probe_filter``).

    Under an aggregate that reads rows in place (``offer_selection``), a batch that keeps most
    of its rows is passed up whole, with the kept rows in ``selection`` (``filter_select``
    kernel): the aggregate skips the others, and no column is copied."""

    #: set by the join this filter feeds (``velaria.exec.probe_filter``)
    probe_filter: ProbeFilter | None = None
    #: the share of a batch's rows that must be kept for it to travel whole with a selection
    SELECTION_SHARE = 0.75

    def __init__(self, node, children=None):
        super().__init__(node, children)
        self.offer_selection = False     # set by a parent that takes ``selection``
        self.selection = None            # the kept rows of the batch last passed up whole
        self.defer = False               # set by a parent that applies the predicate itself

    def open(self, ctx):
        super().open(ctx)
        self._start_paths()

    def push(self, batch, port=0):
        if batch.num_rows == 0:
            return []
        with collecting(self._paths):
            if self.probe_filter is not None:
                if not (self.defer or self.offer_selection):
                    kept = self.probe_filter.filter(batch, self.node.predicate, self.ctx.kernels,
                                                    self.ctx.eval_context)
                    if kept is not None:
                        return [kept] if kept.num_rows else []
                batch = self.probe_filter.apply(batch)
                if batch.num_rows == 0:
                    return []
            if self.defer:
                # the global aggregate above folds only the rows the predicate keeps, in the
                # same pass that tests it (``AggregateOperator._push_where``)
                return [batch]
            if not self.offer_selection:
                kept = self.ctx.kernels.filter_batch(self.node.predicate, batch, self.ctx.eval_context)
                return [kept] if kept.num_rows else []
            kept, self.selection = self.ctx.kernels.filter_select(
                self.node.predicate, batch, self.ctx.eval_context, self.SELECTION_SHARE)
        if self.selection is not None:
            # the driver counts the whole batch out; count only the rows kept
            self.rows_out -= batch.num_rows - _true_count(self.selection)
        return [kept] if kept.num_rows else []


class ProjectOperator(_PathsMixin, Operator):
    """Compute the output columns (``evaluate`` kernel); an empty input still yields a schema."""

    def open(self, ctx):
        super().open(ctx)
        self._produced = False
        self._start_paths()

    def push(self, batch, port=0):
        if batch.num_rows == 0 and self._produced:
            return []
        self._produced = True
        with collecting(self._paths):
            return [pa.RecordBatch.from_arrays([self._eval(e, batch) for e in self.node.exprs], schema=self.schema)]

    def finish(self):
        return [] if self._produced else [empty_batch(self.schema)]


class AggregateOperator(Operator):
    """Hash aggregate (``hash_aggregate`` kernel).

    ``mode="final"`` (batch): ``push`` folds, ``finish`` emits every group once.
    ``mode="running"`` (stream): ``push`` folds and emits the current values of the groups
    that batch updated; ``finish`` emits nothing more. Either way the state is exportable
    (``snapshot``), restorable and mergeable (``merge``: partial states from workers).
    """

    barrier = True
    stateful = True

    def __init__(self, node: L.Aggregate, children=None, mode: str = "final"):
        super().__init__(node, children)
        if mode not in ("final", "running"):
            raise VelariaValueError(f"aggregate mode must be 'final' or 'running', got {mode!r}")
        self.mode = mode
        self.barrier = mode == "final"

    def open(self, ctx):
        super().open(ctx)
        self.agg = ctx.kernels.hash_aggregate(self.node.aggregates, len(self.node.keys))
        # a Filter right below a batch aggregate with group keys passes most-kept batches
        # whole with a selection (the grouped kernels skip rows in place); one below a batch
        # aggregate of column sums without keys passes its batches unfiltered, the aggregate
        # applying the predicate while it sums (``_push_where``). Decided by the function
        # that also writes the plan record explain renders, so the two never disagree.
        below = self.children[0] if self.children else None
        feed = filter_kernel(self.node, below.node if isinstance(below, FilterOperator) else None, self.mode)
        self._filter = below if feed == "filter_select" else None
        if self._filter is not None:
            self._filter.offer_selection = True
        self._where = below if feed == "filter_fold" else None
        if self._where is not None:
            self._where.defer = True
        self._types = [f.type for f in self.schema]
        # an argument shared by several aggregates (SUM(v), AVG(v)) is evaluated once per
        # batch and handed over as the same array object: for each aggregate, the position
        # of the first aggregate with the same argument (None for COUNT(*)); decided once here
        first: dict[str, int] = {}
        self._arg_source = [None if a.arg is None else first.setdefault(repr(a.arg), i)
                            for i, a in enumerate(self.node.aggregates)]
        self._reuse = None                       # per argument: ``shared_args.Reuse`` or None

    @property
    def path(self) -> str | None:
        """The kernel's implementation path that ran (None before any data)."""
        return getattr(self.agg, "path", None)

    def push(self, batch, port=0):
        if batch.num_rows == 0:
            return []
        if self._where is not None:
            self._push_where(batch)
            return []
        selection = None if self._filter is None else self._filter.selection
        if selection is None:
            self.agg.update(*self._inputs(batch), batch.num_rows)
        else:
            self.rows_in -= batch.num_rows - _true_count(selection)
            try:
                # keys and arguments over every row, the aggregate skipping the unselected
                inputs = self._inputs(batch)
            except Exception:
                # a row the filter dropped made an expression fail (an overflow, a bad
                # cast): evaluate on the kept rows only, which raises what the query would
                batch = batch.filter(selection if isinstance(selection, pa.Array) else pa.array(selection))
                self.agg.update(*self._inputs(batch), batch.num_rows)
            else:
                self.agg.update(*inputs, batch.num_rows, selection=selection)
        if self.mode == "running":
            out = self.emit_updated()
            return [out] if out.num_rows else []
        return []

    def _push_where(self, batch) -> None:
        """Fold the rows of ``batch`` (passed up unfiltered by the Filter below) that the
        Filter's predicate keeps (``filter_fold`` kernel: in one pass with the predicate where
        it can; its paths are the Filter's)."""
        where = self._where
        columns = list(batch.columns)
        for a in self.node.aggregates:       # as ``_eval`` reads a bare column: in its planned type
            if isinstance(a.arg, Column) and not columns[a.arg.index].type.equals(a.arg.type):
                columns[a.arg.index] = columns[a.arg.index].cast(a.arg.type)
        if any(c is not b for c, b in zip(columns, batch.columns)):
            batch = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
        with collecting(where._paths):
            kept = self.ctx.kernels.filter_fold(where.node.predicate, batch, self.agg,
                                                [a.arg for a in self.node.aggregates],
                                                self.ctx.eval_context)
        # the driver counted the whole batch out of the Filter and into this operator
        where.rows_out -= batch.num_rows - kept
        self.rows_in -= batch.num_rows - kept

    def _inputs(self, batch) -> tuple[list, list]:
        """(key arrays, argument arrays) of ``batch``; an argument several aggregates share is
        evaluated once and passed as the same array."""
        node = self.node
        keys = [self._eval(k, batch) for k in node.keys]
        if self._reuse is None:                  # the batch width is fixed by the plan
            self._reuse = plan_reuse([a.arg for a in node.aggregates], batch.num_columns)
        args: list = []
        for i, (a, source) in enumerate(zip(node.aggregates, self._arg_source)):
            reuse = self._reuse[i]
            if source != i:
                args.append(None if source is None else args[source])
            elif reuse is not None and isinstance(args[reuse.source], pa.Array):
                # an earlier argument is a subtree of this one: its values stand in for it
                wider = pa.RecordBatch.from_arrays(batch.columns + [args[reuse.source]],
                                                   names=batch.schema.names + [f"arg{reuse.source}"])
                args.append(self._eval(reuse.expr, wider))
            else:
                args.append(self._eval(a.arg, batch))
        return keys, args

    def emit_updated(self) -> pa.RecordBatch:
        """The current values of the groups updated since the previous call."""
        return pa.RecordBatch.from_arrays(self.agg.emit_updated(self._types), schema=self.schema)

    def finish(self):
        if self.mode == "running":
            return []
        return [pa.RecordBatch.from_arrays(self.agg.finish(self._types), schema=self.schema)]

    def key_types(self) -> list[pa.DataType]:
        return self._types[:len(self.node.keys)]

    def snapshot(self) -> pa.Table:
        return self.agg.export_state(self.key_types())

    def restore(self, state):
        if state is not None:
            self.agg.import_state(state)

    def merge(self, state: pa.Table) -> None:
        """Fold a partial state (another partition's ``snapshot``) into this operator."""
        self.agg.merge_state(state)

    def take_partial(self, known: int) -> tuple[pa.Table, pa.Table]:
        """The partial state of the rows folded in since the previous call, by group id: (the
        keys of the groups numbered from id ``known`` on, an ``id`` column then the touched
        groups' states in ``snapshot``'s layout without keys); those groups restart empty.
        Merged in order (``merge_partial``), the successive partials equal the whole state."""
        return self.agg.take_updated_partial(self.key_types(), known)

    def merge_partial(self, new_keys: pa.Table, partial: pa.Table, id_map):
        """Fold another operator's ``take_partial`` in; ``id_map`` (None at first) maps its
        group ids to ours and is returned extended by ``new_keys``."""
        return self.agg.merge_partial(new_keys, partial, id_map)


class CollectingOperator(Operator):
    """A barrier that needs its whole input: ``push`` keeps each batch, ``finish`` works on
    them together (:meth:`take_input`)."""

    barrier = True

    def open(self, ctx):
        super().open(ctx)
        self._rows: list[pa.RecordBatch] = []

    def push(self, batch, port=0):
        self._rows.append(batch)
        return []

    def take_input(self, schema: pa.Schema) -> pa.RecordBatch:
        """Everything pushed so far as one record batch of ``schema`` (and forget it)."""
        batch = _single_batch(self._rows, schema)
        self._rows = []
        return batch


class SortOperator(CollectingOperator):
    """Stable multi-key sort (``sort_take`` kernel: the rows in the order of ``sort_indices``),
    optionally only the first ``limit`` rows."""

    def finish(self):
        batch = self.take_input(self.schema)
        if batch.num_rows == 0:
            return [batch]
        node = self.node
        keys = [self._eval(k, batch) for k in node.keys]
        return self.ctx.kernels.sort_take(batch, keys, node.descending, node.nulls_first, node.limit)


class LimitOperator(Operator):
    """OFFSET / LIMIT; sets ``done`` once the limit is reached so the driver stops pulling."""

    def open(self, ctx):
        super().open(ctx)
        self._skip = self.node.offset
        self._left = self.node.limit
        self.done = self._left == 0

    def push(self, batch, port=0):
        if self.done:
            return []
        if self._skip:
            if batch.num_rows <= self._skip:
                self._skip -= batch.num_rows
                return []
            batch = batch.slice(self._skip)
            self._skip = 0
        if self._left is not None:
            if batch.num_rows >= self._left:
                self.done = True
                return [batch.slice(0, self._left)]
            self._left -= batch.num_rows
        return [batch]

    def finish(self):
        return [empty_batch(self.schema)]


class JoinOperator(_PathsMixin, Operator):
    """Hash join (``hash_join`` kernel): port 0 is the left input, port 1 the right.

    Without equality keys (CROSS JOIN, only non-equality conditions) every pair is a
    candidate: the kernel joins on a constant key. A residual condition filters the matched
    pairs (``evaluate``); outer joins then pad the rows that kept no pair."""

    barrier = True

    def open(self, ctx):
        super().open(ctx)
        self._sides: tuple[list, list] = ([], [])
        self._start_paths()
        self._left_keys = None          # evaluated early for the probe filter
        self._probe_filter = None
        target = probe_filter_target(self.node)
        if target is not None:
            op = self.children[1]
            while isinstance(op, ProjectOperator):
                op = op.children[0]
            if isinstance(op, FilterOperator) and op.node is target[0]:
                self._probe_filter = op.probe_filter = ProbeFilter(target[1])
        # without such a Filter, the join tests its right rows itself as they arrive
        column = arriving_rows_target(self.node)
        self._arriving = None if column is None else ProbeFilter(column)

    def push(self, batch, port=0):
        if port == 1 and self._arriving is not None and self._arriving.armed:
            with collecting(self._paths):
                batch = self._arriving.apply(batch)
        self._sides[port].append(batch)
        return []

    def input_ended(self, port):
        prefilter = self._probe_filter or self._arriving
        if port != 0 or prefilter is None:
            return
        # the left input is complete: its keys filter the right input from its first batch
        # (in the Filter below, or here as the rows arrive)
        lb = _single_batch(self._sides[0], self.node.left.schema)
        self._sides[0][:] = [lb]
        with collecting(self._paths):
            self._left_keys = [self._eval(k, lb) for k in self.node.left_keys]
            prefilter.arm(self.ctx.kernels.key_set(self._left_keys))

    def finish(self):
        with collecting(self._paths):
            return self._join()

    def _join(self):
        node = self.node
        lb = _join_side(self._sides[0], node.left.schema)
        rb = _join_side(self._sides[1], node.right.schema)
        self._sides = ([], [])
        if node.how in L.SUBQUERY_JOINS:
            lkeys = [self._eval(k, lb) for k in node.left_keys]
            rkeys = [self._eval(k, rb) for k in node.right_keys]
            return [subquery_join(self.ctx.kernels, node.how, lb, rb, lkeys, rkeys, node.null_aware, self.schema)]
        if node.left_keys:
            lkeys = self._left_keys or [self._eval(k, lb) for k in node.left_keys]
            rkeys = [self._eval(k, rb) for k in node.right_keys]
        else:
            lkeys = [pa.array(np.zeros(lb.num_rows, dtype=np.int64))]
            rkeys = [pa.array(np.zeros(rb.num_rows, dtype=np.int64))]
        if node.residual is None:
            li, ri = self.ctx.kernels.hash_join(lkeys, rkeys, node.how)
        else:
            li, ri = self.ctx.kernels.hash_join(lkeys, rkeys, "inner")
            pairs = self._all_pairs(lb, rb, li, ri)
            keep = pc.fill_null(self._eval(node.residual, pairs), False)
            li, ri = _pad_unmatched(li.filter(keep), ri.filter(keep), lb.num_rows, rb.num_rows, node.how)
        return [self._pairs(lb, rb, li, ri)]

    def _columns(self, lb, rb, li, ri, positions) -> list:
        """The joined columns at ``positions`` (over the left columns then the right ones);
        a NULL index gives a NULL row (the padding of outer joins)."""
        nl = len(self.node.left.schema)      # lb has a placeholder column when nl == 0
        # a side whose every row comes out once, in order (a fact table joined to a dimension
        # on its key) keeps its columns as they are instead of gathering them
        left_as_is, right_as_is = _every_row_in_order(li, lb.num_rows), _every_row_in_order(ri, rb.num_rows)
        out, jobs, slots = [], [], []
        for i in positions:
            column, as_is, indices = (lb.column(i), left_as_is, li) if i < nl else (rb.column(i - nl), right_as_is, ri)
            out.append(column if as_is else None)
            if not as_is:
                slots.append(len(out) - 1)
                jobs.append((column, indices))
        for slot, taken in zip(slots, take_columns(jobs, self.ctx.kernels.origin("hash_join") == "accel")):
            out[slot] = taken
        return out

    def _all_pairs(self, lb, rb, li, ri) -> pa.RecordBatch:
        """Every column of the joined pairs (what a residual condition reads)."""
        node = self.node
        schema = pa.schema(list(node.left.schema) + list(node.right.schema))
        if not schema:             # a condition over constants only (ON TRUE)
            return _no_columns(len(li))
        return pa.RecordBatch.from_arrays(self._columns(lb, rb, li, ri, range(len(schema))), schema=schema)

    def _pairs(self, lb, rb, li, ri) -> pa.RecordBatch:
        """The join's output: the columns the plan above reads (``node.output``), or all."""
        positions = self.node.output if self.node.output is not None else range(len(self.schema))
        if not len(positions):     # no column is read above (COUNT(*)): only the pair count matters
            return _no_columns(len(li))
        return pa.RecordBatch.from_arrays(self._columns(lb, rb, li, ri, positions), schema=self.schema)


def _every_row_in_order(indices: pa.Array, num_rows: int) -> bool:
    """True when ``indices`` is ``0, 1, ..., num_rows - 1`` (taking them changes nothing)."""
    if len(indices) != num_rows or indices.null_count:
        return False
    if num_rows == 0:
        return True
    a = indices.to_numpy(zero_copy_only=False)
    return bool(a[0] == 0 and a[-1] == num_rows - 1 and (num_rows == 1 or (a[1:] > a[:-1]).all()))


def _rows_placeholder(num_rows: int) -> pa.RecordBatch:
    """A batch of ``num_rows`` rows whose one column of NULLs is never read."""
    return pa.record_batch([pa.nulls(num_rows)], names=["__rows"])


def _no_columns(num_rows: int) -> pa.RecordBatch:
    """A batch of ``num_rows`` rows and no column (Arrow keeps the count of a selection)."""
    return _rows_placeholder(num_rows).select([])


def _join_side(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    """One join input as a single batch. A side none of whose columns is needed (``COUNT(*)``
    over a join, no FROM) still contributes its row count, so it gets a placeholder column of
    that many NULLs (never read: output positions only cover the real columns)."""
    if not schema:
        return _rows_placeholder(sum(b.num_rows for b in batches))
    return _single_batch(batches, schema)


def _pad_unmatched(li: pa.Array, ri: pa.Array, nl: int, nr: int, how: str) -> tuple[pa.Array, pa.Array]:
    """Outer-join padding after a residual filter, in the kernel's output order: left rows in
    order, each with its kept pairs (LEFT / FULL: a row with none once, next to a NULL right
    index), then (RIGHT / FULL) the right rows with no kept pair, next to a NULL left index."""
    left = li.to_numpy(zero_copy_only=False).astype(np.int64)
    right = ri.to_numpy(zero_copy_only=False).astype(np.int64)
    lpad = np.zeros(len(left), dtype=bool)
    rpad = np.zeros(len(left), dtype=bool)
    if how in ("left", "full"):
        lonely = np.setdiff1d(np.arange(nl, dtype=np.int64), left)
        left = np.concatenate([left, lonely])
        right = np.concatenate([right, np.zeros(len(lonely), dtype=np.int64)])
        lpad, rpad = np.concatenate([lpad, np.zeros(len(lonely), bool)]), np.concatenate([rpad, np.ones(len(lonely), bool)])
        order = np.argsort(left, kind="stable")       # each lonely left row at its place
        left, right, lpad, rpad = left[order], right[order], lpad[order], rpad[order]
    if how in ("right", "full"):
        lonely = np.setdiff1d(np.arange(nr, dtype=np.int64), right[~rpad])
        left = np.concatenate([left, np.zeros(len(lonely), dtype=np.int64)])
        right = np.concatenate([right, lonely])
        lpad, rpad = np.concatenate([lpad, np.ones(len(lonely), bool)]), np.concatenate([rpad, np.zeros(len(lonely), bool)])
    return (pa.array(left, type=pa.int64(), mask=lpad if lpad.any() else None),
            pa.array(right, type=pa.int64(), mask=rpad if rpad.any() else None))


class UnionOperator(CollectingOperator):
    """Concatenate the inputs (one port each); ``distinct`` keeps the first of equal rows."""

    def __init__(self, node: L.Union, children=None):
        super().__init__(node, children)
        self.barrier = node.distinct

    def push(self, batch, port=0):
        batch = _with_schema(batch, self.schema)
        if not self.node.distinct:
            return [batch]
        return super().push(batch, port)

    def finish(self):
        if not self.node.distinct:
            return []
        return [_distinct(self, self.take_input(self.schema))]


def _distinct(op: Operator, batch: pa.RecordBatch) -> pa.RecordBatch:
    if batch.num_rows == 0:
        return batch
    return batch.take(op.ctx.kernels.distinct_indices(list(batch.columns)))


class SetOpOperator(Operator):
    """INTERSECT / EXCEPT [ALL] (``setop_indices`` kernel): port 0 is the left input, port 1
    the right; emits the left rows the kernel keeps, in left order."""

    barrier = True

    def open(self, ctx):
        super().open(ctx)
        self._sides: tuple[list, list] = ([], [])

    def push(self, batch, port=0):
        self._sides[port].append(_with_schema(batch, self.schema))
        return []

    def finish(self):
        left = _single_batch(self._sides[0], self.schema)
        right = _single_batch(self._sides[1], self.schema)
        self._sides = ([], [])
        keep = self.ctx.kernels.setop_indices(list(left.columns), list(right.columns), self.node.kind, self.node.all)
        return [left.take(keep)]


class WindowOperator(CollectingOperator):
    """Window functions (``window_eval`` kernel, one call per function): a barrier that
    appends one column per function to its whole input, rows in input order."""

    def finish(self):
        node = self.node
        batch = self.take_input(node.input.schema)
        columns = list(batch.columns)
        for f in node.functions:
            # the kernel runs even on empty input: explain names it, so it must run
            columns.append(self.ctx.kernels.window_eval(
                f, [self._eval(a, batch) for a in f.args], [self._eval(p, batch) for p in f.partition],
                [self._eval(o, batch) for o in f.order], batch.num_rows))
        return [pa.RecordBatch.from_arrays(columns, schema=self.schema)]


class DistinctOperator(CollectingOperator):
    """SELECT DISTINCT (``distinct_indices`` kernel): the first row of each distinct row."""

    def finish(self):
        return [_distinct(self, self.take_input(self.schema))]


class _SearchOperator(CollectingOperator):
    """A top-k search over all of its input rows that appends a score column."""

    def search(self, table: pa.Table) -> pa.Table:
        raise NotImplementedError

    def finish(self):
        table = pa.Table.from_batches([self.take_input(self.node.input.schema)])
        result = self.search(table)
        out = [pa.RecordBatch.from_arrays(list(b.columns), schema=self.schema) for b in result.to_batches()]
        return out or [empty_batch(self.schema)]


class HybridSearchOperator(_SearchOperator):
    """Vector top-k over the input rows (``vector_topk`` kernel), appending ``vector_score``."""

    def search(self, table):
        from .. import vector
        node = self.node
        return vector.hybrid_search_table(table, node.column, node.query_text, node.metric, node.top_k,
                                          node.score_threshold, self.ctx.kernels)


class KeywordSearchOperator(_SearchOperator):
    """BM25 top-k over the input rows' text columns (``keyword_topk`` kernel), appending
    ``keyword_score``."""

    def search(self, table):
        from ..vector import keyword
        node = self.node
        return keyword.keyword_search_table(table, list(node.columns), node.query, node.top_k,
                                            self.ctx.kernels, node.tokenizer)


#: plan node kind -> operator class (the physical plan builds one operator per node)
OPERATORS: dict[type, type[Operator]] = {
    L.Scan: ScanOperator, L.OneRow: OneRowOperator, L.Filter: FilterOperator, L.Project: ProjectOperator,
    L.Aggregate: AggregateOperator, L.Sort: SortOperator, L.Limit: LimitOperator, L.Join: JoinOperator,
    L.Union: UnionOperator, L.SetOp: SetOpOperator, L.Distinct: DistinctOperator, L.Window: WindowOperator,
    L.HybridSearch: HybridSearchOperator,
    L.KeywordSearch: KeywordSearchOperator,
}
