"""GROUP BY on two string columns of one-byte values through a direct-indexed table
(``accel/src/byte_keys.c``), with a numpy twin.

Flags and status letters (TPC-H Q1 groups by two of them) have at most 258 distinct values
per column: the empty string, each byte, NULL. The pair of codes indexes a table of
258 * 258 group ids, so a row costs two offset reads and one table slot instead of packing
each string and probing a hash table per column and once more for the pair. Both twins
return the same ids and new-row positions (``tests/test_byte_keys.py``).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from .threads import default_threads

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_byte_pair_ids"):       # an older build without byte_keys.c
        raise ImportError("the C module has no byte-pair group kernel")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["BYTE_CODES", "new_table", "byte_pair_ids", "c_available", "takes"]

#: codes per column: 0 the empty string, 1 + b a one-byte value b, 257 NULL
BYTE_CODES = 258


def c_available() -> bool:
    """True when the compiled C kernel is in use."""
    return _lib is not None


def new_table() -> np.ndarray:
    """An empty pair table: every slot -1 (no group)."""
    return np.full(BYTE_CODES * BYTE_CODES, -1, dtype=np.int32)


def takes(arr) -> bool:
    """True when ``arr`` has the layout the kernel reads: a utf8 / binary array (int32
    offsets, one chunk)."""
    return isinstance(arr, pa.Array) and (pat.is_string(arr.type) or pat.is_binary(arr.type))


def _offsets(arr: pa.Array) -> np.ndarray:
    off, n = arr.offset, len(arr)
    return np.frombuffer(arr.buffers()[1], dtype=np.int32, count=off + n + 1)[off:]


def _data(arr: pa.Array) -> np.ndarray:
    buf = arr.buffers()[2]
    return np.zeros(1, dtype=np.uint8) if buf is None or buf.size == 0 else np.frombuffer(buf, dtype=np.uint8)


def byte_pair_ids(a: pa.Array, b: pa.Array, selection: np.ndarray | None, table: np.ndarray,
                  next_gid: int, use_c: bool | None = None,
                  threads: int | None = None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(group id per row, rows that opened a group, the next group id) for the value pairs of
    string arrays ``a`` and ``b``, numbered through ``table`` (updated in place; new pairs
    get ``next_gid``, ``next_gid + 1``, ... in row order). Rows where ``selection`` is False
    are not numbered and get id 0. None (``table`` unchanged) when a value is longer than one
    byte. The C kernel splits large inputs over ``threads`` threads (default: the engine's
    thread count) with the same answer."""
    use_c = c_available() if use_c is None else (use_c and c_available())
    n = len(a)
    if use_c:
        return _ids_c(a, b, selection, table, next_gid, n, default_threads() if threads is None else threads)
    return _ids_np(a, b, selection, table, next_gid, n)


def _ids_c(a, b, selection, table, next_gid, n, threads):
    keep = []                                      # what C reads stays referenced

    def column(arr):
        off, data = _offsets(arr), _data(arr)
        bits = arr.buffers()[0] if arr.null_count else None
        keep.extend([off, data, bits])
        return (_ffi.cast("int32_t *", off.ctypes.data), _ffi.cast("uint8_t *", data.ctypes.data),
                _ffi.NULL if bits is None else _ffi.cast("uint8_t *", bits.address), arr.offset)

    sel = _ffi.NULL
    if selection is not None:
        s = np.ascontiguousarray(selection, dtype=np.bool_).view(np.uint8)
        keep.append(s)
        sel = _ffi.cast("uint8_t *", s.ctypes.data)
    gids = np.empty(n, dtype=np.int64)
    new_rows = np.empty(min(n, BYTE_CODES * BYTE_CODES), dtype=np.int64)
    n_new = _ffi.new("int64_t *")
    nxt = _lib.velaria_byte_pair_ids(n, *column(a), *column(b), sel, _ffi.cast("int32_t *", table.ctypes.data),
                                     next_gid, _ffi.cast("int64_t *", gids.ctypes.data),
                                     _ffi.cast("int64_t *", new_rows.ctypes.data), n_new, threads)
    if nxt < 0:
        return None
    return gids, new_rows[:n_new[0]], int(nxt)


def _codes_np(arr: pa.Array) -> np.ndarray | None:
    off = _offsets(arr)
    lengths = np.diff(off)
    if lengths.size and int(lengths.max()) > 1:
        return None
    data = _data(arr)
    first = data[np.minimum(off[:-1], data.size - 1)].astype(np.int64)
    codes = np.where(lengths == 1, first + 1, 0)
    if arr.null_count:
        codes[~np.asarray(arr.is_valid(), dtype=bool)] = BYTE_CODES - 1
    return codes


def _ids_np(a, b, selection, table, next_gid, n):
    ca, cb = _codes_np(a), _codes_np(b)
    if ca is None or cb is None:
        return None
    slots = ca * BYTE_CODES + cb
    rows = np.arange(n, dtype=np.int64) if selection is None else np.flatnonzero(selection)
    picked = slots[rows]
    distinct, first = np.unique(picked, return_index=True)
    fresh = table[distinct] < 0
    order = np.argsort(first[fresh], kind="stable")           # new pairs in row order
    new_slots, new_at = distinct[fresh][order], first[fresh][order]
    table[new_slots] = next_gid + np.arange(new_slots.size, dtype=np.int32)
    gids = np.zeros(n, dtype=np.int64)
    gids[rows] = table[picked]
    return gids, rows[new_at], next_gid + int(new_slots.size)
