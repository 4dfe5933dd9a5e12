"""The kept rows of a batch's columns, compacted by a byte mask on several threads.

``compact_columns`` builds a filter's output columns from the mask its predicate gave: the
values of each NULL-free 8-byte column whose mask byte is set, in row order. The C kernel
(``accel/src/compact_rows.c``) cuts the rows into one contiguous range per thread, counts the
kept rows of each range, gives each range its first output slot from the running sum of the
counts and lets every thread write its range there, so the output is the same for any thread
count (the split decides who writes a value, never where it goes). On AVX-512 it moves eight
values per instruction (``vcompresspd``). Its numpy twin is boolean indexing;
``tests/test_compact_rows.py`` compares the two.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from .batch_c import _pool_empty
from .select_terms import _ffi, _lib, threads_for      # the same compiled module

__all__ = ["c_available", "compact_columns", "plain_u64", "raw_u64"]


def c_available() -> bool:
    """True when the compiled C kernel is in use."""
    return _lib is not None and hasattr(_lib, "velaria_compact_cols_u64")


def plain_u64(a) -> bool:
    """True for a NULL-free 8-byte fixed-width Arrow column (moved as raw 64-bit words)."""
    t = a.type
    return (not isinstance(a, pa.ChunkedArray) and a.null_count == 0 and pat.is_primitive(t)
            and not pat.is_boolean(t) and t.bit_width == 64)


def raw_u64(arr: pa.Array) -> np.ndarray:
    """The data buffer of an 8-byte fixed-width ``arr`` as uint64 words (no copy)."""
    off = arr.offset
    return np.frombuffer(arr.buffers()[1], dtype=np.uint64, count=off + len(arr))[off:]


def compact_columns(columns: list[np.ndarray], mask: np.ndarray, kept: int,
                    use_c: bool | None = None) -> list[np.ndarray]:
    """For each uint64 array of ``columns`` (all as long as the bool ``mask``), the values
    where ``mask`` is True, in order, as a new array of ``kept`` values (``kept`` must be the
    mask's true count). The output lives in Arrow's memory pool."""
    if not columns:
        return []
    use_c = c_available() if use_c is None else (use_c and c_available())
    n = mask.size
    if any(c.size != n for c in columns):
        raise ValueError(f"compact_columns: every column needs {n} values, one per mask byte; "
                         f"got {[c.size for c in columns]}")
    if not use_c:
        keep = np.asarray(mask, dtype=np.bool_)
        outs = []
        for c in columns:
            out = _pool_empty(kept, np.uint64)
            out[:] = c[keep]
            outs.append(out)
        return outs
    from ._loader import _LEVEL_OF, backend
    m = np.ascontiguousarray(mask).view(np.uint8)
    srcs = [np.ascontiguousarray(c, dtype=np.uint64) for c in columns]
    outs = [_pool_empty(kept, np.uint64) for _ in columns]
    c_srcs = _ffi.new("uint64_t *[]", [_ffi.cast("uint64_t *", s.ctypes.data) for s in srcs])
    c_outs = _ffi.new("uint64_t *[]", [_ffi.cast("uint64_t *", o.ctypes.data) for o in outs])
    got = _lib.velaria_compact_cols_u64(_LEVEL_OF[backend()], threads_for(n), n,
                                        _ffi.cast("uint8_t *", m.ctypes.data), len(srcs), c_srcs, c_outs, kept)
    if got != kept:
        raise ValueError(f"compact_columns: the mask keeps {'more than ' if got < 0 else ''}"
                         f"{kept if got < 0 else got} rows, but the caller said {kept}; pass the mask's true count")
    return outs
