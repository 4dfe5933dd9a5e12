"""Accelerated ``sort_indices``: a C stable radix sort for one numeric key, else stable
``pc.sort_indices`` over derived keys (NULL rank, NaN flag, value with -0.0 folded into 0.0);
vectors run the reference. Twin of ``velaria.reference.batch.sort_indices``.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.reference import batch as _ref

from . import batch_c
from .arrow_util import _F64, _I64, _is_float, _is_int, _is_num, _is_str, _np_values, _valid

__all__ = ["sort_indices"]


# ---- sort

def _sortable(t) -> bool:
    return (_is_num(t) or pat.is_integer(t) or _is_str(t) or pat.is_boolean(t) or pat.is_null(t)
            or pat.is_date(t) or pat.is_timestamp(t))


def sort_indices(key_arrays: list[pa.Array], descending: list[bool], nulls_first: list[bool],
                 limit: int | None = None) -> pa.Array:
    """Row order as int64 indices: stable, multi-key; only the first ``limit`` when given."""
    if (not key_arrays or not (len(key_arrays) == len(descending) == len(nulls_first))
            or (limit is not None and limit < 0)
            or not all(_sortable(k.type) for k in key_arrays)):
        return _ref.sort_indices(key_arrays, descending, nulls_first, limit)
    n = len(key_arrays[0])
    if len(key_arrays) == 1:
        fast = _sort_one_numeric(key_arrays[0], descending[0], nulls_first[0])
        if fast is not None:
            return fast if limit is None else fast.slice(0, limit)
    columns: list[pa.Array] = []
    keys: list[tuple[str, str]] = []

    def add(arr, order):
        keys.append((f"k{len(columns)}", order))
        columns.append(arr)

    for arr, desc, nf in zip(key_arrays, descending, nulls_first):
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pat.is_null(arr.type):
            continue                            # all NULL: no effect on the order
        order = "descending" if desc else "ascending"
        if arr.null_count:
            is_null = pc.is_null(arr)
            add((pc.invert(is_null) if nf else is_null).cast(pa.uint8()), "ascending")
        if _is_float(arr.type):
            v = arr.cast(_F64)
            nan = pc.is_nan(v)
            if pc.any(nan).as_py():
                add(pc.fill_null(nan, False).cast(pa.uint8()), order)      # NaN above numbers
                v = pc.if_else(nan, 0.0, v)
            arr = pc.add(v, 0.0)                                           # -0.0 ties 0.0
        elif pat.is_boolean(arr.type):
            arr = arr.cast(pa.uint8())
        add(arr, order)
    if not columns or n == 0:
        order_idx = pa.array(np.arange(n, dtype=np.int64))
    else:
        table = pa.Table.from_arrays(columns, names=[k for k, _ in keys])
        order_idx = pc.sort_indices(table, sort_keys=keys).cast(_I64)
    if limit is not None:
        order_idx = order_idx.slice(0, limit)
    return order_idx


def _sort_one_numeric(arr: pa.Array, desc: bool, nulls_first: bool) -> pa.Array | None:
    """One int or float ORDER BY key: a stable radix argsort of order-preserving uint64 keys
    (NaN above every number, -0.0 tied with 0.0); NULL rows, in input order, go first or last.
    None for other key types."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if _is_float(t):
        x = _np_values(arr, _F64, 0.0)
    elif _is_int(t):
        x = _np_values(arr, _I64, 0)
    else:
        return None
    valid = _valid(arr)
    if valid is None:
        order = batch_c.radix_argsort(batch_c.sort_key(x, desc))
    else:
        rows = np.flatnonzero(valid)
        order = rows[batch_c.radix_argsort(batch_c.sort_key(x[rows], desc))]
        nulls = np.flatnonzero(~valid)
        order = np.concatenate([nulls, order] if nulls_first else [order, nulls])
    return pa.array(order, type=_I64)
