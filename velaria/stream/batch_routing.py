"""Which local workers a batch must go to, read from its time range alone.

A windowed aggregate's groups belong to workers by window number (window start divided by the
slide, modulo the worker count; NULL windows to worker 0). When the window assignment reads an
integer time column straight from the source batch, the driver can bound the window numbers of
a whole batch from its earliest and latest times: one min/max per batch, no work per row. A
stream in time order puts most batches inside one or two windows, so a batch often concerns
only some of the workers, and the others are not sent it at all (for them it would fold no row
and emit nothing). The bound is conservative: a worker sent a batch may still own none of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["BatchRouter"]


def _trunc_div(a: int, b: int) -> int:
    """Integer division toward zero (the window assignment's rule)."""
    q = abs(a) // b
    return q if a >= 0 else -q


@dataclass(frozen=True)
class BatchRouter:
    """Bounds the owners of a batch's rows for a window over column ``time_index`` (window
    ``window_ms``, slide ``slide_ms``) whose windows are split among ``workers`` workers."""

    time_index: int
    window_ms: int
    slide_ms: int
    workers: int

    @classmethod
    def for_operators(cls, operators: list, agg_pos: int, workers: int) -> "BatchRouter | None":
        """The router for the workers' operators, or None when the batch cannot be routed by
        time: the aggregate is not split by window number, or the window assignment does not
        read the source batch directly."""
        from ..exec.window import WindowAssignOperator, WindowKeyAggregateOperator
        agg = operators[agg_pos]
        if agg_pos != 1 or not isinstance(agg, WindowKeyAggregateOperator) or agg.step <= 0:
            return None
        window = operators[0]
        if not isinstance(window, WindowAssignOperator) or not window.epoch_ms:
            return None
        node = window.node
        return cls(window._index, node.window_ms, node.slide_ms, workers)

    def owners(self, batch: pa.RecordBatch) -> list[int]:
        """The workers that may own a row of ``batch`` (every worker when it cannot tell)."""
        everyone = list(range(self.workers))
        column = batch.column(self.time_index)
        if not pa.types.is_integer(column.type) or batch.num_rows == 0:
            return everyone
        bounds = pc.min_max(column)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        owners = {0} if column.null_count else set()
        if lo is not None:
            copies = -(-self.window_ms // self.slide_ms)          # windows per row, at most
            first = _trunc_div(lo, self.slide_ms) - (copies - 1)
            last = _trunc_div(hi, self.slide_ms)
            if last - first + 1 >= self.workers:
                return everyone
            owners.update(n % self.workers for n in range(first, last + 1))
        return sorted(owners)
