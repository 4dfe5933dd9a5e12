"""``filter_batch`` for a conjunction of ``column op constant`` terms in one C pass.

WHERE clauses of analytic queries are mostly ANDs of range tests on columns: a date range, a
``BETWEEN``, a threshold (TPC-H Q6 has four). Evaluating them term by term materialises a
boolean column per term and one per AND; here every term reads its column once, block by
block, and ANDs into one byte mask (``select_terms.and_cmp``), then the kept rows are
compacted. Only shapes whose C comparison is exactly the reference's are taken:

* a float64 column against a number (an integer constant only within +-2**53, where the
  conversion to float is exact); NaN is above every number, -0.0 equals 0.0;
* an int64 or int32 column against an integer constant in its range;
* a date32 (or a microsecond timestamp) column against a constant of exactly its type, compared as the
  underlying day (microsecond) counts.

The constant side may be any expression without columns (``DATE '1994-01-01' + INTERVAL '1'
YEAR``); it is evaluated once per batch on one row, with the same kernel and errors as the
general path. A NULL constant makes its term NULL everywhere, so nothing is kept. Any other
shape returns None and the general path decides.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from velaria.plan.expr import Call, Cast, Column, Expr, Literal, conjuncts
from velaria.reference.functions import get_function

from . import batch_c
from .compact_rows import compact_columns, plain_u64, raw_u64
from .arrow_util import _TWO53, _valid
from .dates import Unsupported, _constant as _constant_value, _constant_us
from .select_terms import Term, and_cmp, and_compact

__all__ = ["conjunction_terms", "conjunction_term_list", "conjunction_mask", "filter_conjunction", "compact", "compact_by_mask"]

_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_INT32 = (-(2 ** 31), 2 ** 31 - 1)
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_US_PER_DAY = 86_400_000_000
#: below this share of rows kept, rows are gathered by number instead of compacted by mask
_GATHER_SHARE = 8


def _constant(e: Expr) -> bool:
    """True when ``e`` reads no column and gives one value per query (no RANDOM())."""
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Call):
            if not get_function(x.name).deterministic:
                return False
            stack.extend(x.args)
        elif isinstance(x, Cast):
            stack.append(x.arg)
        elif not isinstance(x, Literal):
            return False                     # columns, CASE, subqueries: the general path
    return True


def conjunction_terms(predicate: Expr) -> list[tuple[Column, str, Expr]] | None:
    """``predicate`` as ``[(column, op, constant expression)]`` (column on the left), or None
    when it is not an AND of column-vs-constant comparisons."""
    terms = []
    for c in conjuncts(predicate):
        if not (isinstance(c, Call) and c.name in _FLIP and len(c.args) == 2):
            return None
        left, right = c.args
        if isinstance(left, Column) and _constant(right):
            terms.append((left, c.name, right))
        elif isinstance(right, Column) and _constant(left):
            terms.append((right, _FLIP[c.name], left))
        else:
            return None
    return terms


def _term(col: pa.Array, col_type, op: str, const: Expr) -> Term | None | bool:
    """The C term for ``col op const``; False when the constant is NULL (nothing is kept);
    None when the comparison is not one the C kernel computes exactly as the reference."""
    if isinstance(col, pa.ChunkedArray) or not col.type.equals(col_type):
        return None
    t = col.type
    try:
        if pat.is_date32(t) or (pat.is_timestamp(t) and t.unit == "us"):
            known, value = _constant_us(const)
        else:
            known, value = _constant_value(const)
    except Unsupported:                       # the constant raises: the general path says so
        return None
    if not known:
        return None
    if value is None:
        return False
    if type(value) is int and pat.is_floating(const.type):
        value = float(value)              # a DOUBLE literal holding an int is that double (2**63 - 1 -> 2**63)
    if pat.is_float64(t):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            return None
        if type(value) is int and abs(value) > _TWO53:
            return None
        dtype, value = np.float64, float(value)
    elif pat.is_int64(t) or pat.is_int32(t):
        if type(value) is not int:
            return None
        lo, hi = _INT64 if pat.is_int64(t) else _INT32
        if not lo <= value <= hi:
            return None
        dtype = np.int64 if pat.is_int64(t) else np.int32
    elif pat.is_date32(t):
        dtype, value = np.int32, _days_bound(op, value)
        if value is None:
            return None
    elif pat.is_timestamp(t) and t.unit == "us":
        dtype = np.int64
    else:                                   # other timestamp units: the general path converts them
        return None
    off, n = col.offset, len(col)
    values = np.frombuffer(col.buffers()[1], dtype=dtype, count=off + n)[off:]
    valid = _valid(col)
    return Term(values, None if valid is None else valid.view(np.uint8), op, value)


def _days_bound(op: str, us: int) -> int | None:
    """The day number ``k`` with ``day op k`` equal to ``day * 86400e6 op us`` (a date is
    midnight), or None when there is none in the int32 range or ``=`` / ``!=`` meets an
    instant that is not a midnight."""
    floor_k, rest = divmod(us, _US_PER_DAY)
    if op in ("=", "!=") and rest:
        return None
    k = floor_k + (rest != 0) if op in ("<", ">=") else floor_k
    return k if _INT32[0] <= k <= _INT32[1] else None


def conjunction_term_list(predicate: Expr, batch: pa.RecordBatch) -> list[Term] | bool | None:
    """The C terms of ``predicate`` over ``batch``; False when a constant is NULL (no row is
    kept); None when the predicate has another shape (the caller's general path decides)."""
    shape = conjunction_terms(predicate)
    if shape is None:
        return None
    terms = []
    for column, op, const_expr in shape:
        term = _term(batch.column(column.index), column.type, op, const_expr)
        if term is None or term is False:
            return term
        terms.append(term)
    return terms


def conjunction_mask(predicate: Expr, batch: pa.RecordBatch
                     ) -> tuple[np.ndarray, int, np.ndarray | None] | None:
    """(bool mask of the rows of ``batch`` where every term of ``predicate`` is TRUE, how many
    it keeps, their row numbers when few are kept), or None when the predicate has another
    shape (the caller's general path decides)."""
    terms = conjunction_term_list(predicate, batch)
    if terms is None:
        return None
    n = batch.num_rows
    if terms is False:
        return np.zeros(n, dtype=np.bool_), 0, np.zeros(0, dtype=np.int64)
    # row numbers come back only when few rows are kept (then they are gathered by number);
    # otherwise the rows are compacted by the mask
    return and_cmp(terms, n, want_idx=True)


def filter_conjunction(predicate: Expr, batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """The rows of ``batch`` where every term of ``predicate`` is TRUE, or None when the
    predicate has another shape (the caller's general path decides)."""
    if batch.num_columns and all(plain_u64(batch.column(i)) for i in range(batch.num_columns)):
        # NULL-free 8-byte columns only: test and compact in one pass over them
        terms = conjunction_term_list(predicate, batch)
        if terms is None:
            return None
        if terms is False or not terms:
            return batch.slice(0, 0) if terms is False else batch
        n = batch.num_rows
        bufs, kept = and_compact(terms, [raw_u64(batch.column(i)) for i in range(batch.num_columns)], n)
        if kept == n:
            return batch
        return pa.RecordBatch.from_arrays(
            [pa.Array.from_buffers(batch.column(i).type, kept, [None, b]) for i, b in enumerate(bufs)],
            schema=batch.schema)
    found = conjunction_mask(predicate, batch)
    return None if found is None else compact(batch, *found)


def compact(batch: pa.RecordBatch, mask: np.ndarray, kept: int, idx: np.ndarray | None = None) -> pa.RecordBatch:
    """The rows of ``batch`` where the bool array ``mask`` is True (``kept`` of them), in
    order: few rows are gathered by row number (``idx`` when given), many compacted by the mask
    (``compact_by_mask``)."""
    from .predicates import _gather

    n = batch.num_rows
    if kept == n:
        return batch
    if kept == 0:
        return batch.slice(0, 0)
    if kept * _GATHER_SHARE < n:
        if idx is None:
            idx = np.flatnonzero(mask)
        return _gather(batch, idx, range(batch.num_columns), [None] * batch.num_columns)
    return compact_by_mask(batch, mask, kept)


def compact_by_mask(batch: pa.RecordBatch, mask: np.ndarray, kept: int) -> pa.RecordBatch:
    """The rows of ``batch`` where the bool array ``mask`` is True (``kept`` of them, neither 0
    nor all), in order: the NULL-free 8-byte columns together in one threaded C pass
    (``compact_rows``), the rest by Arrow's filter."""
    plain = [i for i in range(batch.num_columns) if plain_u64(batch.column(i))] if batch_c.available() else []
    arrays: list = [None] * batch.num_columns
    outs = compact_columns([raw_u64(batch.column(i)) for i in plain], mask, kept)
    for i, out in zip(plain, outs):
        arrays[i] = pa.Array.from_buffers(batch.column(i).type, kept, [None, pa.py_buffer(out)])
    arrow_mask = None
    for i in range(batch.num_columns):
        if arrays[i] is None:
            if arrow_mask is None:
                arrow_mask = pa.array(mask, type=pa.bool_())
            arrays[i] = batch.column(i).filter(arrow_mask)
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
