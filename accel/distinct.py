"""Key factorisation (hash_key equality as Arrow value equality) and accelerated
``distinct_indices`` (first row of each combined factorised key). Twin of
``velaria.reference.batch.distinct_indices``; the factorisation also serves the aggregate and
the join.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from velaria.reference import batch as _ref

from .arrow_util import _F64, _I64, _is_float, _is_str, _mask_of, _np_values

__all__ = ["distinct_indices", "setop_indices"]


# ---- factorisation

def _hashable(t) -> bool:
    """Key types whose Arrow hashing gives exactly ``hash_key`` equality (after _normal)."""
    return (pat.is_integer(t) or _is_float(t) or _is_str(t) or pat.is_boolean(t)
            or pat.is_null(t) or pat.is_date(t) or pat.is_timestamp(t) or pat.is_binary(t)
            or pat.is_large_binary(t))


def _normal(arr: pa.Array) -> pa.Array:
    """``arr`` with hash_key equality as Arrow value equality: a float becomes the int64 bits
    of its value with -0.0 folded into 0.0 and every NaN made the same NaN."""
    if not _is_float(arr.type):
        return arr
    x = _np_values(arr, _F64, 0.0) + 0.0        # -0.0 + 0.0 == +0.0
    x[np.isnan(x)] = np.nan
    return pa.array(x.view(np.int64), type=_I64, mask=_mask_of(arr))


def _codes(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(int64 code per row in first-appearance order, the normalised distinct values);
    NULL is a value of its own."""
    n = len(arr)
    if pat.is_null(arr.type):
        return np.zeros(n, dtype=np.int64), pa.nulls(1 if n else 0)
    d = _normal(arr).dictionary_encode(null_encoding="encode")
    return d.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), d.dictionary


def _combine(arrays: Sequence[pa.Array]) -> tuple[np.ndarray, int]:
    """One int64 code per row, equal exactly when every column is equal (hash_key sense)."""
    return _combine_codes([_codes(arr) for arr in arrays])


def _combine_codes(parts) -> tuple[np.ndarray, int]:
    """Combine per-column ``(codes, dictionary)`` into one int64 code per row."""
    combined = None
    size = 1
    for c, dictionary in parts:
        k = max(len(dictionary), 1)
        if combined is None:
            combined, size = c, k
            continue
        if size * k >= 2 ** 62:        # compact before the product could overflow
            _, combined = np.unique(combined, return_inverse=True)
            size = int(combined.max()) + 1 if combined.size else 1
        combined = combined * k + c
        size *= k
    return combined, size


def distinct_indices(arrays: list[pa.Array]) -> pa.Array:
    """Indices of the first occurrence of each distinct row, in input order."""
    if not arrays or not all(_hashable(a.type) for a in arrays):
        return _ref.distinct_indices(arrays)
    arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays]
    if len(arrays[0]) == 0:
        return pa.array([], type=_I64)
    codes, _ = _combine(arrays)
    _, first = np.unique(codes, return_index=True)
    first.sort()
    return pa.array(first.astype(np.int64), type=_I64)


def setop_indices(left: list[pa.Array], right: list[pa.Array], kind: str, keep_all: bool) -> pa.Array:
    """Indices of the left rows that INTERSECT / EXCEPT [ALL] keeps, in left input order."""
    if kind not in ("intersect", "except") or not left or len(left) != len(right) \
            or not all(_hashable(a.type) and a.type.equals(b.type) for a, b in zip(left, right)):
        return _ref.setop_indices(left, right, kind, keep_all)
    nl = len(left[0])
    both = [pa.concat_arrays([_flat(a), _flat(b)]) for a, b in zip(left, right)]
    codes, _ = _combine(both)
    _, dense = np.unique(codes, return_inverse=True)
    dense = dense.reshape(-1)
    lc, rc = dense[:nl], dense[nl:]
    k = int(dense.max()) + 1 if dense.size else 1
    on_right = np.bincount(rc, minlength=k)[lc]
    # rank: earlier occurrences of the same row on the left (a stable sort groups them)
    order = np.argsort(lc, kind="stable")
    sorted_codes = lc[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]] if nl else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(starts, np.arange(nl), 0))
    rank = np.empty(nl, dtype=np.int64)
    rank[order] = np.arange(nl) - first
    if kind == "intersect":
        allowed = on_right if keep_all else np.minimum(on_right, 1)
    else:
        on_left = np.bincount(lc, minlength=k)[lc]
        allowed = np.maximum(on_left - on_right, 0) if keep_all else (on_right == 0).astype(np.int64)
    return pa.array(np.nonzero(rank < allowed)[0].astype(np.int64), type=_I64)


def _flat(a):
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
