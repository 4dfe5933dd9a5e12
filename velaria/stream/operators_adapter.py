"""TEMPORARY adapter: per-batch operators over the batch plan nodes, for the stream driver.

The stream runtime is a second *driver* over the batch engine's plan nodes and kernels: it
pushes each micro-batch through one operator per plan node, and every operator calls the same
Session kernels (``filter_batch``, ``evaluate``, ``hash_aggregate``, ``sort_indices``) that
batch SQL calls. These small classes give the batch nodes the operator lifecycle the driver
needs (``open``, ``push``, ``finish``, ``snapshot``, ``restore``, ``close``,
``explain_line``) until the shared operator layer of the batch executor provides it; then
this module is replaced by that layer and the driver does not change.

The running aggregate is the batch aggregate kernel itself, kept alive across batches: it
emits the groups each batch updated, and its Arrow state export is what checkpoints store and
what worker processes send back to be merged.
"""
from __future__ import annotations

import pyarrow as pa

from ..errors import ExecutionError
from ..exec.executor import ExecContext, _eval
from ..plan import logical as L

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


class RunningAggregateOperator:
    """A GROUP BY that runs across micro-batches, on one long-lived ``hash_aggregate`` kernel.

    ``running=True`` (stream SQL, stateful DataFrame aggregates): each ``push`` folds the batch
    into the kernel's state and emits the current values of the groups that batch touched
    (``emit_updated``, non-destructive), so running totals are exact and equal batch SQL over
    the rows so far. ``running=False`` (stateless DataFrame ``group_sum`` / ``group_count``):
    each batch is aggregated on its own.

    ``snapshot()`` is the kernel's ``export_state()`` (an Arrow table), ``restore(table)`` its
    ``import_state``; :meth:`merge_partial_states` folds states computed elsewhere (worker
    processes) into this one through ``merge_state``.
    """

    stateful = True
    partition_local = False

    def __init__(self, node: L.Aggregate, running: bool = True):
        self.node = node
        self.running = running
        self.num_keys = len(node.keys)
        self.types = [f.type for f in node.schema]
        self.key_types = self.types[:self.num_keys]
        self.ctx: ExecContext | None = None
        self.agg = None

    def _new_kernel(self):
        return self.ctx.kernels.hash_aggregate(list(self.node.aggregates), self.num_keys)

    def open(self, ctx: ExecContext) -> None:
        self.ctx = ctx
        self.agg = self._new_kernel()

    @property
    def path(self) -> str:
        """The kernel path that ran (dense-c, arrow-hash, python-dict, reference, ...)."""
        return getattr(self.agg, "path", "reference")

    def update(self, agg, batch: pa.RecordBatch, ctx: ExecContext | None = None) -> None:
        """Fold ``batch`` into kernel ``agg`` (keys and arguments evaluated once each)."""
        ctx = ctx or self.ctx
        keys = [_eval(ctx, k, batch) for k in self.node.keys]
        seen: dict = {}
        args = []
        for a in self.node.aggregates:
            if a.arg is None:
                args.append(None)
                continue
            key = repr(a.arg)
            if key not in seen:
                seen[key] = _eval(ctx, a.arg, batch)
            args.append(seen[key])
        agg.update(keys, args, batch.num_rows)

    def _batch(self, arrays) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays(arrays, schema=self.node.schema)

    def push(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        if batch.num_rows == 0:
            return []
        if not self.running:
            agg = self._new_kernel()
            self.update(agg, batch)
            return [self._batch(agg.finish(self.types))]
        self.update(self.agg, batch)
        return [self._batch(self.agg.emit_updated(self.types))]

    def merge_partial_states(self, states: list[pa.Table]) -> list[pa.RecordBatch]:
        """Fold partial states (from worker processes) in; emit the touched groups."""
        for st in states:
            if st.num_rows:
                self.agg.merge_state(st)
        return [self._batch(self.agg.emit_updated(self.types))]

    def finish(self) -> list[pa.RecordBatch]:
        return []

    def snapshot(self) -> pa.Table | None:
        return self.agg.export_state(self.key_types) if self.running else None

    def restore(self, state: pa.Table | None) -> None:
        self.agg = self._new_kernel()
        if state is not None:
            self.agg.import_state(state)

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
