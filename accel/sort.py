"""Accelerated ``sort_indices``: every ORDER BY key of a sortable type becomes a numeric key
column (numbers as they are, bool / date / timestamp as int64, strings as the dense rank of
their value among the distinct values) and one stable C radix sort orders the rows by all of
them (``sort_rows``), LIMIT included; vectors and other types run the reference. Twin of
``velaria.reference.batch.sort_indices``.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.reference import batch as _ref

from .arrow_util import _F64, _I64, _is_float, _is_int, _is_str, _valid
from .sort_rows import SortColumn, sort_rows

__all__ = ["sort_indices"]


# ---- sort

def _sortable(t) -> bool:
    return (_is_float(t) or pat.is_integer(t) or _is_str(t) or pat.is_boolean(t) or pat.is_null(t)
            or pat.is_date(t) or pat.is_timestamp(t))


def sort_indices(key_arrays: list[pa.Array], descending: list[bool], nulls_first: list[bool],
                 limit: int | None = None) -> pa.Array:
    """Row order as int64 indices: stable, multi-key; only the first ``limit`` when given."""
    if (not key_arrays or not (len(key_arrays) == len(descending) == len(nulls_first))
            or (limit is not None and limit < 0)
            or not all(_sortable(k.type) for k in key_arrays)):
        return _ref.sort_indices(key_arrays, descending, nulls_first, limit)
    columns = []
    for arr, desc, nf in zip(key_arrays, descending, nulls_first):
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pat.is_null(arr.type):
            continue                            # all NULL: no effect on the order
        columns.append(SortColumn(_key_values(arr), _valid(arr), bool(desc), bool(nf)))
    if not columns:
        n = len(key_arrays[0])
        return pa.array(np.arange(n if limit is None else min(limit, n), dtype=np.int64))
    return pa.array(sort_rows(columns, limit), type=_I64)


def _key_values(arr: pa.Array) -> np.ndarray:
    """The values of ``arr`` as a numpy array whose order is the reference order of the
    column: float64, int64, or uint64 (uint64 columns, and the dense ranks of strings). What
    a NULL slot holds does not matter (the sort never reads it)."""
    t = arr.type
    if _is_str(t):
        return _string_ranks(arr)
    if _is_float(t):
        target = _F64
    elif pat.is_uint64(t):
        target = pa.uint64()
    elif _is_int(t) or pat.is_boolean(t) or pat.is_date(t) or pat.is_timestamp(t):
        target = _I64
    else:  # pragma: no cover - _sortable admits nothing else
        raise TypeError(f"no sort key for type {t}")
    if pat.is_date32(t):
        arr = arr.cast(pa.int32())
    elif pat.is_date64(t) or pat.is_timestamp(t):
        arr = arr.cast(_I64)
    return _primitive_view(arr if arr.type.equals(target) else arr.cast(target))


def _primitive_view(arr: pa.Array) -> np.ndarray:
    """The data buffer of a fixed-width array as numpy (no copy, NULL slots as stored)."""
    dtype = arr.type.to_pandas_dtype()
    buf = arr.buffers()[1]
    if buf is None:
        return np.zeros(len(arr), dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=len(arr), offset=arr.offset * np.dtype(dtype).itemsize)


def _string_ranks(arr: pa.Array) -> np.ndarray:
    """uint64 dense rank of each string among the distinct strings, in byte (code point)
    order: one hash pass to the distinct values, a sort of those only."""
    encoded = pc.dictionary_encode(arr)
    rank = np.empty(len(encoded.dictionary), dtype=np.uint64)
    rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(rank), dtype=np.uint64)
    codes = _primitive_view(encoded.indices)
    if not len(rank):
        return np.zeros(len(arr), dtype=np.uint64)
    return rank.take(codes, mode="clip")     # a NULL slot's code may be anything
