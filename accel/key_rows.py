"""The row numbers of the keys in a join key set, in one C pass (``accel/src/key_rows.c``).

The join key pre-filter (``velaria.exec.probe_filter``) asks which rows of the probe side have
a key the build side has. With the key set held as a bitmap (``join_hash.KeyTable``), the
numbers of those rows are written directly, instead of a byte per row and a second pass over
it to find the set bytes."""
from __future__ import annotations

import numpy as np

from .threads import default_threads

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_bitmap_rows"):        # an older build without key_rows.c
        raise ImportError("the C module has no bitmap_rows kernel")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["bitmap_rows"]


def bitmap_rows(table, keys: np.ndarray, valid: np.ndarray | None) -> np.ndarray | None:
    """The ascending numbers (int64) of the rows whose key is valid and in ``table`` (a
    ``join_hash.KeyTable``); None when the C kernel is missing or the table holds its keys in a
    hash table rather than a bitmap."""
    if _lib is None or getattr(table, "bitmap", None) is None:
        return None
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    if valid is not None:
        valid = np.ascontiguousarray(valid, dtype=np.uint8)
    out = np.empty(keys.size, dtype=np.int64)
    kept = _lib.velaria_bitmap_rows(_ffi.cast("int64_t *", keys.ctypes.data),
                                    _ffi.NULL if valid is None else _ffi.cast("uint8_t *", valid.ctypes.data),
                                    keys.size, table.lo, table.span,
                                    _ffi.cast("uint64_t *", table.bitmap.ctypes.data),
                                    _ffi.cast("int64_t *", out.ctypes.data), default_threads())
    return out[:kept]
