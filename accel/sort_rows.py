"""Stable ORDER BY row order over numeric key columns: the C radix sort
(``accel/src/radix_sort.c``, threaded) with a numpy twin that gives the same indices.

A key column is ``SortColumn(values, valid, descending, nulls_first)`` where ``values`` is a
numpy array of one of three kinds:

* ``uint64`` -- compared as unsigned numbers (the string sort passes dense ranks this way);
* ``int64`` -- compared as signed numbers;
* ``float64`` -- NaN above every number (all NaNs equal), ``-0.0`` equal to ``0.0``.

``valid`` is a boolean mask (False = NULL) or None; the value of a NULL row is never read.
``descending`` reverses the order of the non-NULL values; ``nulls_first`` puts NULL rows
before them. Rows equal on every key keep their input order, so the answer is the one stable
order, whatever the number of threads.

``tests/test_sort_rows.py`` compares the two bit for bit and with the reference sort.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

from .threads import default_threads

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_sort_rows_take"):   # an older build without radix_sort.c
        raise ImportError("the C module has no radix sort")
except Exception as exc:  # pragma: no cover - depends on the build
    _ffi = _lib = None
    import_error: BaseException | None = exc
else:
    import_error = None

__all__ = ["SortColumn", "available", "sort_rows", "sort_rows_take", "order_keys", "bar_skips"]

_use_c = _lib is not None

#: numpy dtype -> the C kernel's key kind
_KINDS = {np.dtype(np.uint64): 0, np.dtype(np.int64): 1, np.dtype(np.float64): 2}
_SIGN = np.uint64(1 << 63)


class SortColumn(NamedTuple):
    """One ORDER BY key: its values (uint64, int64 or float64), NULL mask and direction."""

    values: np.ndarray
    valid: np.ndarray | None
    descending: bool
    nulls_first: bool


def available() -> bool:
    """True when the compiled C sort is in use."""
    return _use_c


def bar_skips() -> int:
    """How many blocks of rows the C LIMIT pass has skipped with its vectorised bar test (0
    without the C sort); tests read it to check that the test runs."""
    return int(_lib.velaria_sort_bar_skips()) if _use_c else 0


def sort_rows(columns: list[SortColumn], limit: int | None = None, threads: int | None = None) -> np.ndarray:
    """int64 row numbers of the stable order by ``columns`` (most significant first); only
    the first ``limit`` when given."""
    rows, _ = sort_rows_take(columns, [], limit, threads)
    return rows


def sort_rows_take(columns: list[SortColumn], payload: list[np.ndarray], limit: int | None = None,
                   threads: int | None = None, rows: bool = True) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """(the row numbers of :func:`sort_rows`, or None when ``rows`` is False; each array of
    ``payload`` (fixed-width values, one per row) in that order). The C sort moves the payload
    with its first pass over the rows when the keys fit one 64-bit word, so the gather at the
    end reads near where it writes."""
    n = len(columns[0].values) if columns else 0
    limit = n if limit is None else min(max(limit, 0), n)
    columns = [_checked(c, n) for c in columns]
    payload = [_checked_payload(p, n) for p in payload]
    if _use_c and n < (1 << 32) and len(columns) <= 64 and len(payload) <= 64:
        out = _pooled(limit, np.dtype(np.int64)) if rows or not payload else None
        taken = [_pooled(limit, p.dtype) for p in payload]
        c_threads = default_threads() if threads is None else threads
        data = _ffi.new("void *[]", [_ffi.cast("void *", c.values.ctypes.data) for c in columns] or 1)
        valid = _ffi.new("uint8_t *[]", [_ffi.NULL if c.valid is None else _ffi.cast("uint8_t *", c.valid.ctypes.data)
                                         for c in columns] or 1)
        kinds = _ffi.new("int[]", [_KINDS[c.values.dtype] for c in columns] or 1)
        desc = _ffi.new("int[]", [int(c.descending) for c in columns] or 1)
        nf = _ffi.new("int[]", [int(c.nulls_first) for c in columns] or 1)
        out_ptr = _ffi.NULL if out is None else _ffi.cast("int64_t *", out.ctypes.data)
        if payload:
            src = _ffi.new("void *[]", [_ffi.cast("void *", p.ctypes.data) for p in payload])
            width = _ffi.new("int[]", [p.dtype.itemsize for p in payload])
            dst = _ffi.new("void *[]", [_ffi.cast("void *", t.ctypes.data) for t in taken])
            got = _lib.velaria_sort_rows_take(len(columns), kinds, data, valid, desc, nf, n, limit, c_threads,
                                              out_ptr, len(payload), src, width, dst)
        else:
            got = _lib.velaria_sort_rows(len(columns), kinds, data, valid, desc, nf, n, limit, c_threads, out_ptr)
        if got == -1:
            raise MemoryError(f"ORDER BY of {n} rows: out of memory for the sort buffers")
        if got != limit:  # pragma: no cover - a bug in the kernel
            raise RuntimeError(f"the C sort wrote {got} of {limit} rows")
        return (out if rows else None), taken
    order = _sort_rows_numpy(columns, limit)
    return (order if rows else None), [p[order] for p in payload]


def _pooled(n: int, dtype: np.dtype) -> np.ndarray:
    """An uninitialised array from Arrow's memory pool: the pool keeps freed pages for the next
    allocation, where a large numpy array is fresh memory from the OS each time, and the page
    faults of first touching it cost as much as a quarter of a large sort."""
    return np.frombuffer(pa.allocate_buffer(n * dtype.itemsize), dtype=dtype, count=n)


def _checked_payload(p: np.ndarray, n: int) -> np.ndarray:
    values = np.ascontiguousarray(p)
    if values.ndim != 1 or values.dtype.itemsize not in (1, 2, 4, 8) or values.dtype.hasobject:
        raise TypeError(f"payload columns must be one-dimensional fixed-width numbers, got {values.dtype}")
    if len(values) != n:
        raise ValueError(f"a payload column differs in length from the sort keys ({len(values)} vs {n} rows)")
    return values


def _checked(c: SortColumn, n: int) -> SortColumn:
    values = np.ascontiguousarray(c.values)
    if values.dtype not in _KINDS:
        raise TypeError(f"sort key values must be uint64, int64 or float64, got {values.dtype}")
    if len(values) != n:
        raise ValueError(f"sort key columns differ in length ({len(values)} vs {n} rows)")
    valid = None if c.valid is None else np.ascontiguousarray(c.valid, dtype=np.bool_)
    return SortColumn(values, valid, bool(c.descending), bool(c.nulls_first))


def order_keys(c: SortColumn) -> list[np.ndarray]:
    """uint64 keys (most significant first) whose unsigned order is the column's order: a
    NULL rank (0 for the rows that go first) when there are NULLs, then the values with NULL
    rows set to 0."""
    x = c.values
    if x.dtype == np.float64:
        bits = (x + 0.0).view(np.uint64)                       # -0.0 -> 0.0
        k = np.where(bits >> np.uint64(63) != 0, ~bits, bits | _SIGN)
        k[np.isnan(x)] = np.uint64(0xFFFFFFFFFFFFFFFF)
    elif x.dtype == np.int64:
        k = x.view(np.uint64) ^ _SIGN
    else:
        k = x.copy()
    if c.descending:
        k = ~k
    if c.valid is None:
        return [k]
    k[~c.valid] = 0
    return [(c.valid == c.nulls_first).astype(np.uint64), k]


def _sort_rows_numpy(columns: list[SortColumn], limit: int) -> np.ndarray:
    """The twin: ``np.lexsort`` (stable) over :func:`order_keys` of every column."""
    keys = [k for c in columns for k in order_keys(c)]
    n = len(columns[0].values) if columns else 0
    if not keys:
        return np.arange(limit, dtype=np.int64)
    order = np.lexsort(keys[::-1]) if n else np.zeros(0, dtype=np.int64)
    return order[:limit].astype(np.int64, copy=False)
