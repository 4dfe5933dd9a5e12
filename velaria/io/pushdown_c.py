"""A scan's pushed filters applied with the accelerator's C kernels, where that gives exactly
the rows :func:`velaria.io.pushdown.apply_filters` keeps with pyarrow.

A cold CSV scan ends with its kept batches filtered one by one while the consumer (an
aggregate) handles the one before: pyarrow's comparison and ``filter`` cost about twice the
consumer's time there, so the consumer waited for them. Here the comparisons run as one C
pass writing a byte mask (:func:`velaria.accel.select_terms.and_cmp`), NULL-free 8-byte
columns are compacted by it in C, and NULL-free text columns are gathered by row number in
C (:func:`velaria.accel.string_take.take_strings`); other columns go through Arrow's filter.

Only comparisons whose C answer is pyarrow's are taken:

* an int64 column against an int (not a bool) in the int64 range;
* a float64 column against a number (NaN above every number, as the engine orders it and
  as the pyarrow path keeps it: ``>`` and ``>=`` keep NaN rows there too), an int constant
  only within +-2**53 (where it converts to float exactly), never a NaN constant.

A NULL in a compared column drops its row, as a NULL comparison never passes. Any other
filter leaves the whole batch to pyarrow.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from .base import PushedFilter

__all__ = ["filter_in_c", "stats"]

#: batches whose pushed filters ran in C (tests read it to check the fast path ran)
stats = {"c": 0}

_OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
_TWO53 = 2 ** 53


def _kernels():
    """The accelerator's selection modules, or None where they are not compiled."""
    try:
        from ..accel import filter_terms, select_terms, string_take
    except ImportError:  # pragma: no cover - depends on the build
        return None
    if not select_terms.c_available():
        return None
    return select_terms, filter_terms, string_take


def _term(column, op: str, value, select_terms):
    """The C term of ``column op value``, or None when its answer might differ from
    pyarrow's (see the module docstring)."""
    op = _OPS.get(op)
    if op is None or not isinstance(column, pa.Array) or isinstance(value, bool):
        return None
    t = column.type
    if pat.is_int64(t):
        if type(value) is not int or not _INT64[0] <= value <= _INT64[1]:
            return None
        dtype = np.int64
    elif pat.is_float64(t):
        if not isinstance(value, (int, float)):
            return None
        if (isinstance(value, int) and abs(value) > _TWO53) or value != value:
            return None
        dtype, value = np.float64, float(value)
    else:
        return None
    offset, n = column.offset, len(column)
    values = np.frombuffer(column.buffers()[1], dtype=dtype, count=offset + n)[offset:]
    valid = None
    if column.null_count:
        valid = np.unpackbits(np.frombuffer(column.buffers()[0], dtype=np.uint8),
                              bitorder="little", count=offset + n)[offset:]
    return select_terms.Term(values, valid, op, value)


def _gathered(batch: pa.RecordBatch, mask: np.ndarray, kept: int, idx, filter_terms,
              string_take) -> pa.RecordBatch:
    """The rows of ``batch`` where ``mask`` is True (``kept`` of them, neither none nor
    all; ``idx``: their row numbers, or None): NULL-free text columns gathered in C by row
    number (on this thread: the scan's consumer has the other core), the others by
    :func:`filter_terms.compact` (8-byte columns compacted in C, few rows gathered)."""
    arrays: list = [None] * batch.num_columns
    rows = None
    if kept >= string_take.MIN_ROWS:
        for i, column in enumerate(batch.columns):
            if pat.is_string(column.type) and not column.null_count:
                if rows is None:
                    rows = pa.array(np.flatnonzero(mask) if idx is None else idx)
                arrays[i] = string_take.take_strings(column, rows, threads=1)
    rest = [i for i, array in enumerate(arrays) if array is None]
    if rest:
        others = filter_terms.compact(batch.select(rest), mask, kept, idx)
        for i, array in zip(rest, others.columns):
            arrays[i] = array
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def filter_in_c(batch: pa.RecordBatch, filters: Sequence[PushedFilter],
                kept_batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """The rows of ``kept_batch`` (columns of ``batch``, row for row) for which every filter
    is TRUE over ``batch``, or None when a filter is not one the C kernels answer exactly as
    pyarrow (the caller then filters with pyarrow)."""
    kernels = _kernels()
    if kernels is None or not filters:
        return None
    select_terms, filter_terms, string_take = kernels
    names = batch.schema.names
    terms = []
    for flt in filters:
        if names.count(flt.column) != 1:
            return None
        term = _term(batch.column(flt.column), flt.op, flt.value, select_terms)
        if term is None:
            return None
        terms.append(term)
    n = batch.num_rows
    mask, kept, idx = select_terms.and_cmp(terms, n, want_idx=True)
    stats["c"] += 1
    if kept == n:
        return kept_batch
    if kept == 0 or not kept_batch.num_columns:   # no columns: a row count's scan
        return kept_batch.slice(0, kept)
    return _gathered(kept_batch, mask, kept, idx, filter_terms, string_take)
