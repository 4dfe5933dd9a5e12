"""``take`` of a string column by row index, in C on several threads (``accel/src/string_take.c``).

A join that emits a text column gathers its strings: ``join_dim`` writes a dimension's name for
each of a million fact rows. Arrow's ``take`` copies them on one thread; :func:`take_strings`
splits the rows into contiguous ranges, one per thread, sums each range's bytes, then copies
each range's strings from where the ranges before it end. The result is what ``take`` returns,
byte for byte, for every thread count (Arrow ``string`` keeps 32-bit offsets, ``large_string``
64-bit ones).

It applies to a column and indices without NULLs and at least ``MIN_ROWS`` rows; elsewhere it
returns None and the caller takes with Arrow (which also raises the error for an index out of
range: the C pass checks every index and stands aside).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .threads import default_threads

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_take_str_bytes"):        # an older build without string_take.c
        raise ImportError("the C module has no string gather")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["take_strings", "MIN_ROWS", "stats"]

#: fewer output rows than this are left to Arrow's take (threads cost more than they save)
MIN_ROWS = 1 << 15
#: the C gathers that ran (tests read it to check the fast path ran)
stats = {"c": 0}
_MAX_THREADS = 64            # the C side's most ranges
_INT32_MAX = 2 ** 31 - 1


def _ptr(a: np.ndarray, ctype: str = "void *"):
    return _ffi.cast(ctype, a.ctypes.data)


def take_strings(column, indices, threads: int | None = None) -> pa.Array | None:
    """``column.take(indices)`` for a ``string`` / ``large_string`` array without NULLs and
    integer indices without NULLs, gathered in C on up to ``threads`` threads (default: the
    accelerator's); None where that does not apply."""
    if (_lib is None or not isinstance(column, pa.Array) or not isinstance(indices, pa.Array)
            or len(indices) < MIN_ROWS or column.null_count or indices.null_count
            or not pa.types.is_integer(indices.type)):
        return None
    wide = pa.types.is_large_string(column.type)
    if not (wide or pa.types.is_string(column.type)):
        return None
    offset_type = np.int64 if wide else np.int32
    _, offsets_buf, data_buf = column.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=offset_type, count=column.offset + len(column) + 1)[column.offset:]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    idx = np.ascontiguousarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    n = idx.size
    threads = default_threads() if threads is None else threads
    range_bytes = np.zeros(_MAX_THREADS, dtype=np.int64)
    total = _lib.velaria_take_str_bytes(_ptr(offsets), int(wide), len(column), _ptr(idx, "int64_t *"), n,
                                        _ptr(range_bytes, "int64_t *"), threads)
    if total < 0 or (not wide and total > _INT32_MAX):     # a bad index, or more bytes than string holds
        return None
    out_offsets = np.empty(n + 1, dtype=offset_type)
    out_data = np.empty(max(int(total), 1), dtype=np.uint8)
    _lib.velaria_take_str_copy(_ptr(offsets), int(wide), len(column), _ptr(data, "uint8_t *"), data.size,
                               _ptr(idx, "int64_t *"), n, _ptr(out_offsets), _ptr(out_data, "uint8_t *"),
                               _ptr(range_bytes, "int64_t *"), threads)
    stats["c"] += 1
    return pa.Array.from_buffers(column.type, n, [None, pa.py_buffer(out_offsets), pa.py_buffer(out_data[:total])])
