"""A WHERE clause and the float sums of a global aggregate above it, in one pass.

``SELECT SUM(v) FROM t WHERE v > 0.5`` would otherwise compare every row, write the kept
values to a new column, then read that column again to sum it. When the WHERE clause is an
AND of ``column op constant`` terms (``filter_terms``) and the aggregate has no GROUP BY and
only float SUM / AVG of columns or of products of two float64 columns (TPC-H Q6's
``SUM(l_extendedprice * l_discount)``) and ``COUNT(*)``, each SUM's lanes are fed straight
from the batch (``select_terms.sum_lanes_where``: every block's mask is built in L1 and its
kept values -- or the products of its kept rows' factors -- are added in the specified lane
order). The lanes receive the same values in the same order as after filtering (and
multiplying), so the result is bit-identical to filtering first; only the bytes moved change
(the columns are read once, nothing is written).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from velaria.plan.expr import Column
from velaria.plan.fold_args import product_factors
from velaria.plan.kernel_paths import report

from . import batch_c
from .arrow_util import _valid
from .expressions import evaluate
from .filter_terms import conjunction_term_list
from .predicates import filter_batch
from .select_terms import and_cmp, sum_lanes_where

__all__ = ["filter_fold", "update_where"]


def filter_fold(predicate, batch: pa.RecordBatch, aggregator, args, context=None) -> int:
    """Twin of ``reference.batch.filter_fold``: fold into ``aggregator`` (no keys) the rows of
    ``batch`` where ``predicate`` is TRUE, argument ``j`` the expression ``args[j]`` on those
    rows (None: ``COUNT(*)``); returns how many rows were kept. In one pass with the predicate
    when the shapes fit (``update_where``: bare float64 columns and products of two), else
    ``filter_batch``, then the arguments evaluated on the kept rows and ``update``."""
    update = getattr(aggregator, "update_where", None)
    inputs = _fold_inputs(args, batch) if update is not None and batch.num_rows else None
    if inputs is not None:
        kept = update(predicate, batch, inputs)
        if kept is not None:
            report("and-cmp")
            report("sum-where")
            return kept
    rows = filter_batch(predicate, batch, context)
    if rows.num_rows:
        aggregator.update([], [None if a is None else evaluate(a, rows, context) for a in args], rows.num_rows)
    return rows.num_rows


def _fold_inputs(args, batch: pa.RecordBatch) -> list | None:
    """Per argument what ``update_where`` reads: None (``COUNT(*)``), a column's array, or the
    pair of float64 arrays of a product (``product_factors``); None when an argument is another
    expression or a factor's array is not float64 (the evaluator then casts it)."""
    inputs: list = []
    for a in args:
        factors = product_factors(a)
        if a is None:
            inputs.append(None)
        elif isinstance(a, Column):
            inputs.append(batch.column(a.index))
        elif factors is not None and all(pat.is_float64(batch.column(c.index).type) for c in factors):
            inputs.append(tuple(batch.column(c.index) for c in factors))
        else:
            return None
    return inputs


def update_where(agg, predicate, batch: pa.RecordBatch, arg_arrays: list) -> int | None:
    """Fold into the global aggregate ``agg`` (an ``accel.aggregate.HashAggregate`` without
    keys) the rows of ``batch`` where ``predicate`` is TRUE, as ``update`` on the filtered
    batch with the arguments evaluated would; each of ``arg_arrays`` is None (``COUNT(*)``), an
    array, or a pair of arrays whose products are summed. Returns how many rows the predicate
    keeps; None, with nothing folded, when the shapes do not fit (the caller then filters and
    calls ``update``)."""
    if agg._num_keys or agg._mode == "reference" or not batch_c.available():
        return None
    for state, arg in zip(agg._states, arg_arrays):
        if arg is None:
            if not (state.agg.func == "count" and state.agg.arg is None):
                return None
        elif not (state.agg.func in ("sum", "avg") and state.lanes is not None and not state.agg.distinct
                  and all(isinstance(a, pa.Array) and pat.is_float64(a.type) for a in _factors(arg))):
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
        (x, valid), *second = [_values(a) for a in _factors(arg)]
        y, y_valid = second[0] if second else (None, None)
        added, rows = sum_lanes_where(terms, x, valid, state.lanes, int(state.count[0]), y=y, y_valid=y_valid)
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


def _factors(arg) -> tuple:
    """The arrays an argument of ``update_where`` multiplies (one for a plain column)."""
    return arg if isinstance(arg, tuple) else (arg,)


def _values(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """A float64 array's values (no copy) and its validity bytes (None without NULLs)."""
    off = arr.offset
    x = np.frombuffer(arr.buffers()[1], dtype=np.float64, count=off + len(arr))[off:]
    valid = _valid(arr)
    return x, None if valid is None else valid.view(np.uint8)
