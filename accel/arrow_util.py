"""Shared Arrow/numpy helpers of the accelerated kernels (types, NULL masks, conversions)."""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

_F64 = pa.float64()
_I64 = pa.int64()
_BOOL = pa.bool_()
_TWO53 = 2 ** 53


def _is_int(t) -> bool:
    """Integers that widen to int64 without loss (uint64 may not: it is left to the reference)."""
    return pat.is_integer(t) and not pat.is_uint64(t)


def _is_float(t) -> bool:
    return pat.is_float32(t) or pat.is_float64(t)


def _is_num(t) -> bool:
    return _is_int(t) or _is_float(t)


def _is_str(t) -> bool:
    return pat.is_string(t) or pat.is_large_string(t)


def _nulls(n: int, t) -> pa.Array:
    return pa.nulls(n, type=t)


def _np_values(arr: pa.Array, t, fill) -> np.ndarray:
    """``arr`` cast to ``t`` as a numpy array, NULL slots replaced by ``fill``."""
    a = arr.cast(t, safe=False) if not arr.type.equals(t) else arr
    if a.null_count:
        a = pc.fill_null(a, pa.scalar(fill, type=t))
    return a.to_numpy(zero_copy_only=False)


def _valid(arr: pa.Array) -> np.ndarray | None:
    """Boolean numpy mask of non-NULL slots (None when there is no NULL)."""
    if arr.null_count == 0:
        return None
    if pat.is_null(arr.type):
        return np.zeros(len(arr), dtype=bool)
    return pc.is_valid(arr).to_numpy(zero_copy_only=False)


def _conform(arr: pa.Array, t, n: int) -> pa.Array:
    """``arr`` as type ``t`` (int -> float widening, NULL-typed -> all NULL)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type.equals(t):
        return arr
    if pat.is_null(arr.type) or pat.is_null(t):
        return _nulls(n, t)
    return arr.cast(t, safe=False) if (_is_float(t) and _is_num(arr.type)) else arr.cast(t)


def _mask_of(a: pa.Array):
    v = _valid(a)
    return None if v is None else ~v
