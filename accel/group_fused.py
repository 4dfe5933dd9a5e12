"""Two GROUP BY shapes done in one C pass each (``accel/src/key_bitmap.c``,
``accel/src/dense_group_sum.c``), with a numpy twin for each (same results, bit for bit;
``tests/test_group_fused.py`` compares them).

========================= =====================================================================
``bitmap_first_rows``     rows whose packed key is seen for the first time (a bitmap of every
                          possible key, kept across batches): a keys-only GROUP BY on small-range
                          integer keys, the inner step of ``COUNT(DISTINCT x)`` per group
``dense_group_sum_f64``   one integer key numbered through the dense lookup table with the float
                          SUM / AVG totals and the row counts folded in the same pass
========================= =====================================================================
"""
from __future__ import annotations

import numpy as np

from . import batch_c

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_dense_group_sum_f64"):     # an older build
        raise ImportError("the C module has no fused group kernels")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["c_available", "pack_slots", "bitmap_first_rows", "dense_group_sum_f64", "BITMAP_MAX_BITS"]

#: largest key space (bits) a keys-only GROUP BY numbers through a bitmap (32 MiB)
BITMAP_MAX_BITS = 1 << 28


def c_available() -> bool:
    """True when the compiled C kernels are in use."""
    return _lib is not None


def _ptr(ctype: str, a: np.ndarray | None):
    return _ffi.NULL if a is None else _ffi.cast(ctype, a.ctypes.data)


def pack_slots(cols: list[np.ndarray], valids: list, lows: list[int], radixes: list[int]) -> np.ndarray:
    """Each row's keys packed in mixed radix into one int64 slot: digit ``col - low``, or
    ``radix - 1`` for a NULL (``valid`` False); the first column is the most significant."""
    slots = np.zeros(cols[0].size if cols else 0, dtype=np.int64)
    for col, valid, lo, radix in zip(cols, valids, lows, radixes):
        digit = np.subtract(col, lo, dtype=np.int64)
        if valid is not None:
            digit[~valid.astype(bool)] = radix - 1
        slots = slots * radix + digit
    return slots


def bitmap_first_rows(cols: list[np.ndarray], valids: list, lows: list[int], radixes: list[int],
                      bitmap: np.ndarray, use_c: bool | None = None) -> np.ndarray:
    """The rows (ascending) whose key combination's bit in ``bitmap`` (uint8, bit ``s & 7`` of
    byte ``s >> 3`` for the slot ``s`` of ``pack_slots``) was clear when the row was reached;
    their bits are set in place. ``cols`` are int64 key columns whose values lie in ``[low,
    low + radix - 2]`` (a NULL slot's value is ignored); ``8 * bitmap.size`` covers the
    product of the radixes."""
    cols = [np.ascontiguousarray(c, dtype=np.int64) for c in cols]
    valids = [None if v is None else np.ascontiguousarray(v, dtype=np.uint8) for v in valids]
    assert bitmap.dtype == np.uint8 and bitmap.flags.c_contiguous
    use_c = c_available() if use_c is None else (use_c and c_available())
    n = cols[0].size if cols else 0
    if use_c:
        rows = np.empty(n, dtype=np.int64)
        m = _lib.velaria_bitmap_first_rows(
            len(cols), _ffi.new("int64_t *[]", [_ptr("int64_t *", c) for c in cols]),
            _ffi.new("uint8_t *[]", [_ptr("uint8_t *", v) for v in valids]),
            _ffi.new("int64_t[]", [int(x) for x in lows]), _ffi.new("int64_t[]", [int(x) for x in radixes]),
            n, _ptr("uint8_t *", bitmap), _ptr("int64_t *", rows))
        return rows[:m].copy()
    slots = pack_slots(cols, valids, lows, radixes)
    uniq, first = np.unique(slots, return_index=True)
    bits = np.left_shift(np.uint8(1), (uniq & 7).astype(np.uint8))
    unseen = (bitmap[uniq >> 3] & bits) == 0
    np.bitwise_or.at(bitmap, uniq[unseen] >> 3, bits[unseen])
    return np.sort(first[unseen]).astype(np.int64)


def dense_group_sum_f64(keys: np.ndarray, valid: np.ndarray | None, lo: int, lut: np.ndarray, null_slot: int,
                        next_gid: int, xs: list[np.ndarray], totals: list[np.ndarray], count: np.ndarray,
                        use_c: bool | None = None) -> tuple[np.ndarray, int]:
    """``batch_c.dense_group_ids`` (the lookup table ``lut`` is updated) with, per row in
    order, ``totals[j][g] += xs[j][row]`` for every float column (no NULLs) and
    ``count[g] += 1``. ``totals`` and ``count`` must hold every group the batch may open
    (``next_gid + lut.size``). Returns (rows that opened a group, the next group id)."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    valid = None if valid is None else np.ascontiguousarray(valid, dtype=np.uint8)
    xs = [np.ascontiguousarray(x, dtype=np.float64) for x in xs]
    assert all(t.dtype == np.float64 and t.flags.c_contiguous for t in totals)
    assert count.dtype == np.int64 and count.flags.c_contiguous
    assert all(t.size >= next_gid + lut.size for t in totals) and count.size >= next_gid + lut.size
    use_c = c_available() if use_c is None else (use_c and c_available())
    if not use_c:
        gids, new_rows, nxt = batch_c._dense_group_ids_np(keys, valid, lo, lut, null_slot, next_gid)
        for x, total in zip(xs, totals):
            batch_c.group_sum_f64(gids, x, None, total, None)
        batch_c.group_count(gids, None, count)
        return new_rows, nxt
    new_rows = np.empty(min(keys.size, lut.size), dtype=np.int64)
    k = len(xs)
    x_ptrs = _ffi.new("double *[]", [_ptr("double *", x) for x in xs] or [_ffi.NULL])
    t_ptrs = _ffi.new("double *[]", [_ptr("double *", t) for t in totals] or [_ffi.NULL])
    nxt = _lib.velaria_dense_group_sum_f64(_ptr("int64_t *", keys), _ptr("uint8_t *", valid), keys.size, lo,
                                           _ptr("int64_t *", lut), null_slot, next_gid,
                                           _ptr("int64_t *", new_rows), k, x_ptrs, t_ptrs,
                                           _ptr("int64_t *", count))
    return new_rows[:nxt - next_gid].copy(), int(nxt)
