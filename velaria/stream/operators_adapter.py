"""TEMPORARY adapter: per-batch operators over the batch plan nodes, for the stream driver.

The stream runtime is a second *driver* over the batch engine's plan nodes and kernels: it
pushes each micro-batch through one operator per plan node, and every operator calls the same
Session kernels (``filter_batch``, ``evaluate``, ``hash_aggregate``, ``sort_indices``) that
batch SQL calls. These small classes give the batch nodes the operator lifecycle the driver
needs (``open``, ``push``, ``finish``, ``snapshot``, ``restore``, ``close``,
``explain_line``) until the shared operator layer of the batch executor provides it; then
this module is replaced by that layer and the driver does not change.

The running aggregate keeps its state as an Arrow table of *partial* aggregates (per group:
COUNT, SUM, MIN, MAX, and SUM + COUNT for AVG), which is also what worker processes send back
and what checkpoints store. Merging partials is itself a GROUP BY through the same
``hash_aggregate`` kernel (SUM of counts and sums, MIN of minima, MAX of maxima), so running
totals are exact and equal batch SQL over the same rows.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ExecutionError
from ..exec.executor import ExecContext, _eval
from ..plan import logical as L
from ..plan.expr import AggregateCall, Column
from ..reference.aggregate import aggregate_result_type
from ..plan.types import INT

__all__ = ["FilterOperator", "ProjectOperator", "RunningAggregateOperator", "SortOperator",
           "LimitOperator", "operator_for"]


class _Stateless:
    """Operators whose output for a batch depends only on that batch."""

    stateful = False
    partition_local = True

    def __init__(self, node: L.Node):
        self.node = node
        self.ctx: ExecContext | None = None

    def open(self, ctx: ExecContext) -> None:
        self.ctx = ctx

    def finish(self) -> list[pa.RecordBatch]:
        return []

    def snapshot(self):
        return None

    def restore(self, state) -> None:
        pass

    def close(self) -> None:
        pass


class FilterOperator(_Stateless):
    """WHERE / HAVING through the ``filter_batch`` kernel."""

    def push(self, batch):
        if batch.num_rows == 0:
            return [batch]
        return [self.ctx.kernels.filter_batch(self.node.predicate, batch, self.ctx.eval_context)]


class ProjectOperator(_Stateless):
    """SELECT list expressions through the ``evaluate`` kernel."""

    def push(self, batch):
        arrays = [_eval(self.ctx, e, batch) for e in self.node.exprs]
        return [pa.RecordBatch.from_arrays(arrays, schema=self.node.schema)]


class SortOperator(_Stateless):
    """ORDER BY, applied to each micro-batch (as native Velaria does)."""

    partition_local = False

    def push(self, batch):
        if batch.num_rows == 0:
            return [batch]
        keys = [_eval(self.ctx, k, batch) for k in self.node.keys]
        order = self.ctx.kernels.sort_indices(keys, self.node.descending, self.node.nulls_first, self.node.limit)
        return [batch.take(order)]


class LimitOperator(_Stateless):
    """LIMIT / OFFSET, applied to each micro-batch (as native Velaria does)."""

    partition_local = False

    def push(self, batch):
        n = self.node
        end = None if n.limit is None else n.offset + n.limit
        return [batch.slice(n.offset, None if end is None else max(0, end - n.offset))]


def _partial_plan(aggregates: list[AggregateCall]):
    """Per aggregate, the partial aggregates over input rows and how each final value is made.

    Returns ``(partial_calls, finals)`` where ``finals[i]`` is ``(func, [partial indices])``.
    """
    partial: list[AggregateCall] = []
    finals = []
    for a in aggregates:
        if a.distinct:
            raise ExecutionError(f"stream aggregates cannot be DISTINCT ({a.func.upper()}(DISTINCT ...)); "
                                 "use a batch query over the collected rows")
        if a.func == "avg":
            s_type = aggregate_result_type("sum", a.arg.type)
            partial.append(AggregateCall(type=s_type, func="sum", arg=a.arg))
            partial.append(AggregateCall(type=INT, func="count", arg=a.arg))
            finals.append(("avg", [len(partial) - 2, len(partial) - 1]))
        else:
            partial.append(AggregateCall(type=a.type, func=a.func, arg=a.arg))
            finals.append((a.func, [len(partial) - 1]))
    return partial, finals


_MERGE = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}


class RunningAggregateOperator:
    """A GROUP BY that runs across micro-batches.

    ``running=True`` (stream SQL, stateful DataFrame aggregates): each ``push`` folds the batch
    into the state and emits the current values of the groups that batch touched (the running
    totals so far); ``finish`` emits nothing more. ``running=False`` (stateless DataFrame
    ``group_sum`` / ``group_count``): each batch is aggregated on its own.

    ``snapshot()`` returns the state (keys + partial aggregates) as a ``pa.Table``;
    ``restore(table)`` loads one; :meth:`merge_partials` folds partial tables computed
    elsewhere (worker processes) into the state.
    """

    stateful = True
    partition_local = False

    def __init__(self, node: L.Aggregate, running: bool = True):
        self.node = node
        self.running = running
        self.num_keys = len(node.keys)
        self.partial_calls, self._finals = _partial_plan(list(node.aggregates))
        key_fields = [node.schema.field(i) for i in range(self.num_keys)]
        self.partial_schema = pa.schema(key_fields + [pa.field(f"__partial_{i}", c.type)
                                                      for i, c in enumerate(self.partial_calls)])
        self._merge_calls = [AggregateCall(type=c.type, func=_MERGE[c.func],
                                           arg=Column(type=c.type, index=self.num_keys + i, name=f"__partial_{i}"))
                             for i, c in enumerate(self.partial_calls)]
        self._merge_calls.append(AggregateCall(type=INT, func="sum",
                                               arg=Column(type=INT, index=len(self.partial_schema), name="__touched")))
        self.ctx: ExecContext | None = None
        self.state: pa.Table | None = None
        self.last_path = ""

    # ---------------------------------------------------------------- lifecycle
    def open(self, ctx: ExecContext) -> None:
        self.ctx = ctx

    def partial(self, batch: pa.RecordBatch, ctx: ExecContext | None = None) -> pa.RecordBatch:
        """The partial aggregates of one input batch (keys + partial columns)."""
        ctx = ctx or self.ctx
        keys = [_eval(ctx, k, batch) for k in self.node.keys]
        seen: dict = {}
        args = []
        for c in self.partial_calls:
            if c.arg is None:
                args.append(None)
                continue
            key = repr(c.arg)
            if key not in seen:
                seen[key] = _eval(ctx, c.arg, batch)
            args.append(seen[key])
        agg = ctx.kernels.hash_aggregate(self.partial_calls, self.num_keys)
        agg.update(keys, args, batch.num_rows)
        arrays = agg.finish([f.type for f in self.partial_schema])
        return pa.RecordBatch.from_arrays(arrays, schema=self.partial_schema)

    def push(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        if batch.num_rows == 0:
            return []
        part = self.partial(batch)
        if not self.running:
            return [self._final(part)]
        return [self.merge_partials([part])]

    def merge_partials(self, parts: list[pa.RecordBatch]) -> pa.RecordBatch:
        """Fold partial batches into the state; return the final values of the touched groups."""
        parts = [p for p in parts if p.num_rows]
        if not parts:
            return self._final(pa.RecordBatch.from_pylist([], schema=self.partial_schema))
        if self.state is None and len(parts) == 1:
            self.state = pa.Table.from_batches(parts)
            return self._final(parts[0])
        merger = self.ctx.kernels.hash_aggregate(self._merge_calls, self.num_keys)
        nk = self.num_keys
        inputs = ([] if self.state is None else [(self.state.combine_chunks().to_batches(), 0)]) + \
                 [([p], 1) for p in parts]
        for batches, touched in inputs:
            for b in batches:
                cols = list(b.columns)
                flag = pa.array(np.full(b.num_rows, touched, dtype=np.int64))
                merger.update(cols[:nk], cols[nk:] + [flag], b.num_rows)
        arrays = merger.finish([f.type for f in self.partial_schema] + [INT])
        merged = pa.RecordBatch.from_arrays(arrays[:-1], schema=self.partial_schema)
        self.state = pa.Table.from_batches([merged])
        touched = pc.greater(arrays[-1], 0)
        return self._final(merged.filter(touched))

    def _final(self, part: pa.RecordBatch) -> pa.RecordBatch:
        """Final aggregate values (the node's output schema) of partial rows."""
        out = list(part.columns[:self.num_keys])
        for (func, idx), field in zip(self._finals, list(self.node.schema)[self.num_keys:]):
            if func == "avg":
                s, c = part.column(self.num_keys + idx[0]), part.column(self.num_keys + idx[1])
                zero = pc.equal(c, 0)
                value = pc.divide(s.cast(pa.float64()), pc.if_else(zero, 1, c).cast(pa.float64()))
                out.append(pc.if_else(zero, pa.scalar(None, pa.float64()), value))
            else:
                col = part.column(self.num_keys + idx[0])
                out.append(col if col.type.equals(field.type) else col.cast(field.type))
        return pa.RecordBatch.from_arrays(out, schema=self.node.schema)

    def finish(self) -> list[pa.RecordBatch]:
        return []

    def snapshot(self) -> pa.Table | None:
        return self.state

    def restore(self, state: pa.Table | None) -> None:
        if state is not None and not state.schema.equals(self.partial_schema):
            raise ExecutionError(f"aggregate state has schema {state.schema}, expected {self.partial_schema}")
        self.state = state

    def close(self) -> None:
        pass


def operator_for(node: L.Node, running: bool = True):
    """The operator that runs plan node ``node`` in a stream (Scan has none)."""
    from ..exec.window import WindowAssign, WindowAssignOperator
    if isinstance(node, WindowAssign):
        return WindowAssignOperator(node)
    if isinstance(node, L.Filter):
        return FilterOperator(node)
    if isinstance(node, L.Project):
        return ProjectOperator(node)
    if isinstance(node, L.Aggregate):
        return RunningAggregateOperator(node, running=getattr(node, "running", running))
    if isinstance(node, L.Sort):
        return SortOperator(node)
    if isinstance(node, L.Limit):
        return LimitOperator(node)
    raise ExecutionError(f"plan node {type(node).__name__} cannot run in a stream")
