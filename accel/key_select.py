"""The rows of a join's other input whose key a bitmap of join keys holds, as row numbers, in
one pass (the join key pre-filter's test and its selection together).

A join whose left input has ended knows its left keys; a right row whose key is not among them
matches nothing. ``bitmap_select_rows`` answers "which rows of these keys are in the set" for a
set held as a bitmap over its keys' range (``accel.join_hash.KeyTable``), and returns the kept
row numbers directly: the C kernel (``accel/src/key_select.c``) reads each key once and writes
only the numbers of the rows it keeps (no mask of one byte per row, no second pass to find the
set bytes), on several threads, eight keys per step on AVX-512. ``gather_rows`` then takes
those rows of every column. The numpy twin is the same arithmetic on whole arrays;
``tests/test_key_select.py`` compares the two.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .predicates import _gather
from .select_terms import _ffi, _lib
from .threads import default_threads

__all__ = ["c_available", "bitmap_select_rows", "gather_rows"]

#: rows per thread at least (a thread start costs more than testing fewer keys)
_ROWS_PER_THREAD = 1 << 16


def c_available() -> bool:
    """True when the compiled kernel is in use."""
    return _lib is not None and hasattr(_lib, "velaria_bitmap_select_rows")


def bitmap_select_rows(keys: np.ndarray, valid: np.ndarray | None, lo: int, span: int, bitmap: np.ndarray,
                       use_c: bool | None = None, threads: int | None = None) -> np.ndarray:
    """The row numbers ``i`` (int64, ascending) where ``valid[i]`` (None: every row) is set and
    ``keys[i]`` (int64) lies in ``[lo, lo + span)`` with bit ``keys[i] - lo`` of ``bitmap``
    (uint64 words, least significant bit first) set."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if valid is not None:
        valid = np.ascontiguousarray(valid).view(np.uint8)
        if valid.size != keys.size:
            raise ValueError(f"bitmap_select_rows: {keys.size} keys but {valid.size} validity bytes; "
                             "pass one validity byte per key, or None")
    bitmap = np.ascontiguousarray(bitmap, dtype=np.uint64)
    if span < 0 or (span + 63) // 64 > bitmap.size:
        raise ValueError(f"bitmap_select_rows: a span of {span} keys needs {(span + 63) // 64} bitmap words, "
                         f"got {bitmap.size}; pass the bitmap built for that span")
    use_c = c_available() if use_c is None else (use_c and c_available())
    if not use_c:
        return _select_numpy(keys, valid, lo, span, bitmap)
    from ._loader import _LEVEL_OF, backend
    out = np.empty(keys.size, dtype=np.int64)      # pages are touched only where numbers are written
    kept = _lib.velaria_bitmap_select_rows(
        _LEVEL_OF[backend()], max(1, min(default_threads() if threads is None else threads,
                                         keys.size // _ROWS_PER_THREAD)),
        _ffi.cast("int64_t *", keys.ctypes.data),
        _ffi.NULL if valid is None else _ffi.cast("uint8_t *", valid.ctypes.data), keys.size, lo, span,
        _ffi.cast("uint64_t *", bitmap.ctypes.data), _ffi.cast("int64_t *", out.ctypes.data))
    return out[:kept]


def _select_numpy(keys: np.ndarray, valid: np.ndarray | None, lo: int, span: int, bitmap: np.ndarray) -> np.ndarray:
    """Twin of the C kernel: the same test on whole arrays."""
    b = keys.view(np.uint64) - np.uint64(lo & 0xFFFF_FFFF_FFFF_FFFF)    # wraps as C's unsigned subtraction
    inside = b < np.uint64(span)
    hit = np.zeros(keys.size, dtype=bool)
    bi = b[inside]
    hit[inside] = ((bitmap[(bi >> np.uint64(6)).astype(np.int64)] >> (bi & np.uint64(63))) & np.uint64(1)).astype(bool)
    if valid is not None:
        hit &= valid != 0
    return np.flatnonzero(hit).astype(np.int64)


def gather_rows(batch: pa.RecordBatch, rows: np.ndarray) -> pa.RecordBatch:
    """The rows ``rows`` (ascending row numbers) of ``batch``: 8-byte NULL-free columns gathered
    in C, the others by Arrow's ``take``; ``batch`` itself when every row is kept."""
    if rows.size == batch.num_rows:
        return batch
    return _gather(batch, rows, range(batch.num_columns), [None] * batch.num_columns)
