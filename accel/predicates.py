"""Accelerated ``filter_batch``: a fused C compare-and-compact pass for ``column op constant``,
else ``evaluate`` then ``RecordBatch.filter`` (NULL drops the row). Twin of
``velaria.reference.batch.filter_batch``.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from velaria.plan.expr import Call, Column, Expr, Literal
from velaria.plan.kernel_paths import report
from velaria.reference import batch as _ref
from velaria.reference.functions import EvalContext

from . import batch_c, fused
from .arrow_util import _BOOL, _I64, _TWO53, _is_float, _nulls, _valid
from .expressions import _FLIP, evaluate
from .compact_rows import plain_u64
from .filter_terms import compact, compact_by_mask, conjunction_mask, filter_conjunction

__all__ = ["filter_batch", "filter_select"]


def filter_batch(predicate: Expr, batch: pa.RecordBatch, context=None) -> pa.RecordBatch:
    """The rows of ``batch`` for which ``predicate`` is TRUE (NULL and FALSE drop the row)."""
    if context is None:
        context = EvalContext.current()
    if not (pat.is_boolean(predicate.type) or pat.is_null(predicate.type)):
        return _ref.filter_batch(predicate, batch, context)
    if batch.num_rows and batch_c.available():
        kept = _filter_compare_constant(predicate, batch)
        if kept is not None:
            report("select-cmp")
            return kept
        kept = filter_conjunction(predicate, batch)
        if kept is not None:
            report("and-cmp")
            return kept
    if fused.can_fuse(predicate, batch):
        kept = _filter_fused(predicate, batch)
        if kept is not None:
            return kept
    mask = evaluate(predicate, batch, context)
    if pat.is_null(mask.type):
        mask = _nulls(batch.num_rows, _BOOL)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    if mask.true_count == batch.num_rows:
        return batch
    return batch.filter(mask, null_selection_behavior="drop")


def filter_select(predicate: Expr, batch: pa.RecordBatch, context=None,
                  min_share: float = 0.75) -> tuple[pa.RecordBatch, np.ndarray | None]:
    """``filter_batch`` for a consumer that can skip rows itself: ``(batch, mask)`` -- the
    batch unchanged and a bool array, True where ``predicate`` is TRUE -- when at least
    ``min_share`` of the rows but not all are kept, else ``(filter_batch's rows, None)``."""
    if context is None:
        context = EvalContext.current()
    n = batch.num_rows
    if n and batch_c.available() and pat.is_boolean(predicate.type):
        found = conjunction_mask(predicate, batch)
        if found is not None:
            report("and-cmp")
            mask, kept, idx = found
            if n > kept >= min_share * n:
                # the consumer reads the rows in place: compacting every column of a batch
                # that keeps most of its rows would copy nearly all of it for nothing
                report("selection")
                return batch, mask
            return compact(batch, mask, kept, idx), None
    return filter_batch(predicate, batch, context), None


def _filter_fused(predicate: Expr, batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """``filter_batch`` with the predicate fused (``accel.fused``: one mask, computed block by
    block), then, when every column is NULL-free and 8 bytes wide, compacted by the mask in
    one threaded C pass (``compact_rows``); otherwise the kept rows are taken by row number. None when the predicate is not fusable."""
    true = fused.fused_true_mask(predicate, batch)
    if true is None:
        return None
    if not all(plain_u64(batch.column(i)) for i in range(batch.num_columns)):
        return _keep_rows(batch, true)
    n = batch.num_rows
    k = int(np.count_nonzero(true))
    if k == n:
        return batch
    if k == 0:
        return batch.slice(0, 0)
    return compact_by_mask(batch, true, k)


def _keep_rows(batch: pa.RecordBatch, keep: np.ndarray) -> pa.RecordBatch:
    """The rows of ``batch`` where the numpy bool array ``keep`` is True, in order: 8-byte
    NULL-free columns gathered in C, the rest by ``take``."""
    n = batch.num_rows
    idx = np.flatnonzero(keep)
    k = idx.size
    if k == n:
        return batch
    if k == 0:
        return batch.slice(0, 0)
    return _gather(batch, idx, range(batch.num_columns), [None] * batch.num_columns)


def _gather(batch: pa.RecordBatch, idx: np.ndarray | None, columns, arrays: list) -> pa.RecordBatch:
    """Fill ``arrays[i]`` for ``i`` in ``columns`` with the rows ``idx`` of column ``i``
    (``idx`` may be None when ``columns`` is empty)."""
    take_idx = None
    for i in columns:
        a = batch.column(i)
        t = a.type
        if plain_u64(a):
            out = batch_c.gather_u64(_raw_values(a, np.uint64), idx)
            arrays[i] = pa.Array.from_buffers(t, idx.size, [None, pa.py_buffer(out)])
        else:
            if take_idx is None:
                take_idx = pa.array(idx, type=_I64)
            arrays[i] = a.take(take_idx)
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _raw_values(arr: pa.Array, dtype) -> np.ndarray:
    """The data buffer of a fixed-width ``arr`` as numpy (NULL slots hold arbitrary values)."""
    off = arr.offset
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=off + len(arr))[off:]


def _filter_compare_constant(predicate: Expr, batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """``filter_batch`` for ``column op constant`` on a float64 / int64 column in one C pass
    (compare and compact together, ``batch_c.select_cmp``): the compared column comes out
    compacted, 8-byte columns without NULLs are gathered in C, the rest by ``take``. None when
    the predicate has another shape (the general path decides)."""
    if not (isinstance(predicate, Call) and predicate.name in batch_c.CMP_OPS and len(predicate.args) == 2):
        return None
    left, right = predicate.args
    if isinstance(left, Column) and isinstance(right, Literal):
        col_expr, lit, op = left, right, predicate.name
    elif isinstance(right, Column) and isinstance(left, Literal):
        col_expr, lit, op = right, left, _FLIP[predicate.name]
    else:
        return None
    value = lit.value
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if type(value) is int and _is_float(lit.type):     # as the reference evaluates the literal
        value = float(value)
    col = batch.column(col_expr.index)
    if isinstance(col, pa.ChunkedArray) or not col.type.equals(col_expr.type):
        return None
    if pat.is_float64(col.type):
        if value != value or (type(value) is int and abs(value) > _TWO53):
            return None
        value, dtype = float(value), np.float64
    elif pat.is_int64(col.type):
        if type(value) is not int or not -(2 ** 63) <= value < 2 ** 63:
            return None
        dtype = np.int64
    else:
        return None
    n = batch.num_rows
    if col.null_count == n:
        return batch.slice(0, 0)
    valid = _valid(col)
    others = [i for i in range(batch.num_columns) if i != col_expr.index]
    idx, vals = batch_c.select_cmp(_raw_values(col, dtype), valid, op, value, want_idx=bool(others))
    k = vals.size
    if k == n:
        return batch
    if k == 0:
        return batch.slice(0, 0)
    arrays: list = [None] * batch.num_columns
    arrays[col_expr.index] = pa.Array.from_buffers(col.type, k, [None, pa.py_buffer(vals)])
    return _gather(batch, idx, others, arrays)
