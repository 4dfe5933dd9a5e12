"""The operators a stream runs: the batch engine's operators, plus the few stream variants.

A stream is planned into the same plan nodes as batch SQL and runs the same operator classes
(:mod:`velaria.exec.operators`), pushed one micro-batch at a time by the stream driver. The
differences are choices of mode, not second implementations:

* GROUP BY runs the batch :class:`~velaria.exec.operators.AggregateOperator` in its
  ``running`` mode (emit the updated groups after each batch; state exportable, restorable,
  mergeable);
* ORDER BY and LIMIT apply to each micro-batch (native Velaria's stream semantics), so
  :class:`MicroBatchSortOperator` and :class:`MicroBatchLimitOperator` reset the batch
  operators' state for every batch;
* a DataFrame ``group_sum`` / ``group_count`` with ``stateful=False`` aggregates each batch
  on its own (:class:`BatchLocalAggregateOperator`);
* ``WINDOW BY`` runs :class:`~velaria.exec.window.WindowAssignOperator`; when a GROUP BY
  right above groups by the window column and nothing else reads it, the window column goes
  into the aggregate as int64 milliseconds and the aggregate
  (:class:`~velaria.exec.window.WindowKeyAggregateOperator`) formats the text of the groups
  it emits (same output; integers hash much faster than their text).
"""
from __future__ import annotations

from ..errors import ExecutionError
from ..exec.operators import OPERATORS, AggregateOperator, LimitOperator, Operator, SortOperator
from ..exec.window import (WindowAssign, WindowAssignOperator, WindowKeyAggregateOperator, late_encoded_columns,
                           late_numbered_window, late_unread_columns, late_window_key)
from ..plan import logical as L

__all__ = ["MicroBatchSortOperator", "MicroBatchLimitOperator", "BatchLocalAggregateOperator", "stream_operator",
           "stream_operators"]


class MicroBatchSortOperator(SortOperator):
    """ORDER BY over each micro-batch."""

    barrier = False

    def push(self, batch, port=0):
        if batch.num_rows == 0:
            return []
        super().push(batch, port)
        return super().finish()

    def finish(self):
        return []


class MicroBatchLimitOperator(LimitOperator):
    """LIMIT / OFFSET over each micro-batch."""

    def push(self, batch, port=0):
        self.open(self.ctx)                 # each micro-batch starts a fresh count
        out = super().push(batch, port)
        self.done = False                   # never stops the stream
        return [b for b in out if b.num_rows]

    def finish(self):
        return []


class BatchLocalAggregateOperator(AggregateOperator):
    """GROUP BY over each micro-batch on its own (stateless ``group_sum`` / ``group_count``)."""

    stateful = False

    def __init__(self, node, children=None):
        super().__init__(node, children, mode="final")

    def push(self, batch, port=0):
        if batch.num_rows == 0:
            return []
        self.agg = self.ctx.kernels.hash_aggregate(self.node.aggregates, len(self.node.keys))
        super().push(batch, port)
        return super().finish()

    def finish(self):
        return []

    def snapshot(self):
        return None


def stream_operator(node: L.Node, aggregate_mode: str = "running") -> Operator:
    """The operator that runs plan node ``node`` in a stream (Scan has none: the driver
    feeds the source's batches straight into the operator above it). ``aggregate_mode``:
    see :func:`stream_operators`."""
    from .plan import StatelessAggregate
    if isinstance(node, WindowAssign):
        return WindowAssignOperator(node)
    if isinstance(node, StatelessAggregate):
        return BatchLocalAggregateOperator(node)
    if type(node) is L.Aggregate:
        return AggregateOperator(node, mode=aggregate_mode)
    if type(node) is L.Sort:
        return MicroBatchSortOperator(node)
    if type(node) is L.Limit:
        return MicroBatchLimitOperator(node)
    if type(node) in (L.Filter, L.Project):
        return OPERATORS[type(node)](node)
    raise ExecutionError(f"plan node {type(node).__name__} cannot run in a stream")


def stream_operators(nodes: list[L.Node], aggregate_mode: str = "running") -> list[Operator]:
    """The operators for ``nodes[1:]`` (``nodes[0]`` is the scan), one per node, with the
    windowed aggregate's late window formatting where it applies. ``aggregate_mode="final"``:
    a worker's partial aggregate of a stateful GROUP BY (folds, emits nothing per batch)."""
    ops: list[Operator] = []
    late: dict[int, int] = {}            # aggregate position -> its window key position
    for i, node in enumerate(nodes[1:], start=1):
        if isinstance(node, WindowAssign) and i + 1 < len(nodes):
            key = late_window_key(node, nodes[i + 1])
            if key is not None:
                late[i + 1] = key
                ops.append(WindowAssignOperator(node, epoch_ms=True,
                                                encode=late_encoded_columns(node, nodes[i + 1]),
                                                numbered=late_numbered_window(node, nodes[i + 1]),
                                                unread=late_unread_columns(node, nodes[i + 1])))
                continue
        if i in late:
            window = nodes[i - 1]
            ops.append(WindowKeyAggregateOperator(node, mode=aggregate_mode, window_key=late[i],
                                                  step=window.slide_ms))
            continue
        ops.append(stream_operator(node, aggregate_mode))
    return ops
