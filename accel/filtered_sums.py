"""A WHERE clause and the float sums of a global aggregate above it, in one pass.

``SELECT SUM(v) FROM t WHERE v > 0.5`` would otherwise compare every row, write the kept
values to a new column, then read that column again to sum it. When the WHERE clause is an
AND of ``column op constant`` terms (``filter_terms``) and the aggregate has no GROUP BY and
only float SUM / AVG of columns and ``COUNT(*)``, each SUM's lanes are fed straight from the
batch (``select_terms.sum_lanes_where``: every block's mask is built in L1 and its kept values
are added in the specified lane order). The lanes receive the same values in the same order as
after filtering, so the result is bit-identical to filtering first; only the bytes moved
change (the column is read once, nothing is written).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from velaria.plan.kernel_paths import report

from . import batch_c
from .arrow_util import _valid
from .filter_terms import conjunction_term_list
from .predicates import filter_batch
from .select_terms import and_cmp, sum_lanes_where

__all__ = ["filter_fold", "update_where"]


def filter_fold(predicate, batch: pa.RecordBatch, aggregator, arg_columns, context=None) -> int:
    """Twin of ``reference.batch.filter_fold``: fold into ``aggregator`` (no keys) the rows of
    ``batch`` where ``predicate`` is TRUE, argument ``j`` read from column ``arg_columns[j]``
    (None: ``COUNT(*)``); returns how many rows were kept. In one pass with the predicate when
    the shapes fit (``update_where``), else ``filter_batch`` then ``update``."""
    args = [None if i is None else batch.column(i) for i in arg_columns]
    update = getattr(aggregator, "update_where", None)
    if update is not None and batch.num_rows:
        kept = update(predicate, batch, args)
        if kept is not None:
            report("and-cmp")
            report("sum-where")
            return kept
    rows = filter_batch(predicate, batch, context)
    if rows.num_rows:
        aggregator.update([], [None if i is None else rows.column(i) for i in arg_columns], rows.num_rows)
    return rows.num_rows


def update_where(agg, predicate, batch: pa.RecordBatch, arg_arrays: list) -> int | None:
    """Fold into the global aggregate ``agg`` (an ``accel.aggregate.HashAggregate`` without
    keys) the rows of ``batch`` where ``predicate`` is TRUE, as ``update`` on the filtered
    batch would; returns how many rows the predicate keeps. None, with nothing folded, when
    the shapes do not fit (the caller then filters and calls ``update``)."""
    if agg._num_keys or agg._mode == "reference" or not batch_c.available():
        return None
    for state, arg in zip(agg._states, arg_arrays):
        if arg is None:
            if not (state.agg.func == "count" and state.agg.arg is None):
                return None
        elif not (state.agg.func in ("sum", "avg") and state.lanes is not None and not state.agg.distinct
                  and isinstance(arg, pa.Array) and pat.is_float64(arg.type)):
            return None
    terms = conjunction_term_list(predicate, batch)
    if terms is None:
        return None
    if terms is False:                       # a NULL constant: no row is kept
        return 0
    agg._mode = "fast"
    n = batch.num_rows
    rows = None
    for state, arg in zip(agg._states, arg_arrays):
        if arg is None:
            continue
        state.mirror = False                 # each sum folds its own column here
        off = arg.offset
        x = np.frombuffer(arg.buffers()[1], dtype=np.float64, count=off + n)[off:]
        valid = _valid(arg)
        added, rows = sum_lanes_where(terms, x, None if valid is None else valid.view(np.uint8),
                                      state.lanes, int(state.count[0]))
        if added:
            state.kind = "float"
            state.count[0] += added
            state.total[0] = batch_c.combine_lanes_f64(state.lanes)
    if rows is None:                         # COUNT(*) only
        rows = and_cmp(terms, n)[1]
    for state, arg in zip(agg._states, arg_arrays):
        if arg is None:
            state.count[0] += rows
    if rows:
        agg._touch(None)
    return rows
