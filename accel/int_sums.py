"""Exact per-group int64 sums in one pass (``accel/src/group_int_sum.c``) with a numpy twin.

A group's running integer total is kept as ``hi * 2**32 + lo`` (``0 <= lo < 2**32``), so no
sum of int64 values ever wraps (the aggregate turns ``hi`` into Python ints if it ever nears
the int64 range). :func:`group_sum_i64` adds a batch in one C pass over the rows, each add carrying
out of ``lo`` into ``hi`` at once (so a batch touches only its rows' groups, never the whole
state). Its numpy twin adds the two 32-bit halves with ``bincount`` (exact in float64 while
each partial sum stays below 2**53, hence chunks of 2**20 rows), then carries over every group.
``tests/test_int_sums.py`` checks both against Python integers.
"""
from __future__ import annotations

import numpy as np

from .group_sums import c_columns, shares_validity

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_group_sum_i64"):         # an older build without it
        raise ImportError("the C module has no int sum kernel")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["group_sum_i64", "group_sum_multi_i64", "half_sums", "c_available", "HI_LIMIT"]

#: ``|hi|`` must stay below this before a batch is added (the adds of one batch of fewer than
#: 2**31 rows then cannot wrap int64)
HI_LIMIT = 1 << 61


def c_available() -> bool:
    return _lib is not None


def group_sum_i64(gids: np.ndarray, x: np.ndarray, valid: np.ndarray | None, lo: np.ndarray,
                  hi: np.ndarray, counts: np.ndarray, use_c: bool | None = None) -> None:
    """Add ``x[i]`` to group ``gids[i]``'s total (``hi * 2**32 + lo``) and 1 to its count, for
    every valid row; updates ``lo``, ``hi`` and ``counts`` (int64, C-contiguous) in place.
    Requires ``0 <= lo < 2**32``, ``|hi| < HI_LIMIT`` and fewer than 2**31 rows."""
    gids = np.ascontiguousarray(gids, dtype=np.int64)
    x = np.ascontiguousarray(x, dtype=np.int64)
    if valid is not None:
        valid = np.ascontiguousarray(valid, dtype=np.uint8)
    for a in (lo, hi, counts):
        assert a.dtype == np.int64 and a.flags.c_contiguous
    if use_c is None:
        use_c = c_available()
    if use_c and _lib is not None:
        ptr = lambda a, t="int64_t *": _ffi.NULL if a is None else _ffi.cast(t, a.ctypes.data)  # noqa: E731
        # the kernel carries as it adds: no pass over every group
        _lib.velaria_group_sum_i64(ptr(gids), ptr(x), ptr(valid, "uint8_t *"), x.size, ptr(lo), ptr(hi),
                                   ptr(counts))
    else:
        _group_sum_i64_np(gids, x, valid, lo, hi, counts)
        _carry(lo, hi)


def _carry(lo: np.ndarray, hi: np.ndarray) -> None:
    """Move ``lo``'s bits above the low 32 into ``hi`` (after the numpy twin's adds)."""
    carry = lo >> 32
    lo -= carry << 32
    hi += carry


def group_sum_multi_i64(gids: np.ndarray, columns: list[tuple[np.ndarray, np.ndarray | None]],
                        los: list[np.ndarray], his: list[np.ndarray], counts: list[np.ndarray],
                        use_c: bool | None = None) -> None:
    """:func:`group_sum_i64` for each ``(x, valid)`` of ``columns`` with its ``lo`` / ``hi`` /
    ``counts`` arrays, in one pass over ``gids`` (same totals: integer sums are exact in any
    order); columns sharing one validity are counted once."""
    if use_c is None:
        use_c = c_available()
    if not (use_c and _lib is not None and hasattr(_lib, "velaria_group_sum_multi_i64")):
        for (x, valid), lo, hi, count in zip(columns, los, his, counts):
            group_sum_i64(gids, x, valid, lo, hi, count, use_c=use_c)
        return
    k = len(columns)
    for arrays in (los, his, counts):
        for a in arrays:
            assert a.dtype == np.int64 and a.flags.c_contiguous
    shared = shares_validity(columns)
    before = counts[0].copy() if shared else None
    keep = [np.ascontiguousarray(gids, dtype=np.int64)]      # what C reads stays referenced
    xs, valids = c_columns(columns, "int64_t", np.int64, keep)
    lo_p, hi_p, cnt_p = (_ffi.new("int64_t *[]", k) for _ in range(3))
    for j in range(k):
        lo_p[j] = _ffi.cast("int64_t *", los[j].ctypes.data)
        hi_p[j] = _ffi.cast("int64_t *", his[j].ctypes.data)
        cnt_p[j] = _ffi.NULL if shared and j else _ffi.cast("int64_t *", counts[j].ctypes.data)
    _lib.velaria_group_sum_multi_i64(_ffi.cast("int64_t *", keep[0].ctypes.data), keep[0].size, k, xs, valids,
                                     lo_p, hi_p, cnt_p)
    if shared:
        added = counts[0] - before
        for count in counts[1:k]:
            count += added


def half_sums(gids: np.ndarray, x: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
    """(per-group sums of the low 32 bits, of the signed high 32 bits) of int64 ``x`` over
    ``g`` groups, as int64: float64 ``bincount`` is exact while every partial sum stays below
    2**53, hence chunks of 2**20 rows (and one pass when the values are small enough)."""
    lo_part = np.zeros(g, dtype=np.int64)
    hi_part = np.zeros(g, dtype=np.int64)
    step = 1 << 20
    small = x.size and max(int(x.max()), -int(x.min())) * min(x.size, step) < 2 ** 53
    for start in range(0, x.size, step):
        xs, gs = x[start:start + step], gids[start:start + step]
        if small:
            lo_part += np.bincount(gs, weights=xs.astype(np.float64), minlength=g).astype(np.int64)
        else:
            lo_part += np.bincount(gs, weights=(xs & 0xFFFFFFFF).astype(np.float64), minlength=g).astype(np.int64)
            hi_part += np.bincount(gs, weights=(xs >> 32).astype(np.float64), minlength=g).astype(np.int64)
    return lo_part, hi_part


def _group_sum_i64_np(gids, x, valid, lo, hi, counts) -> None:
    if valid is not None:
        keep = valid.astype(bool)
        gids, x = gids[keep], x[keep]
    lo_part, hi_part = half_sums(gids, x, lo.size)
    lo += lo_part          # |lo_part| < 2**53: with the carry taken after, lo cannot wrap
    hi += hi_part
    counts += np.bincount(gids, minlength=lo.size)
