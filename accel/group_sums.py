"""Grouped float SUM / AVG of several arguments in one pass (``accel/src/group_multi_sum.c``),
with a numpy twin (one ``batch_c.group_sum_f64`` per argument: the same additions in the same
order, so the same bits; ``tests/test_group_sums.py`` checks it).

A GROUP BY with several float sums (TPC-H Q1 has five) reads the per-row group ids once
instead of once per aggregate.
"""
from __future__ import annotations

import numpy as np

from . import batch_c

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_group_sum_multi_f64"):     # an older build
        raise ImportError("the C module has no multi-column group sum")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["group_sum_multi_f64", "c_available"]


def c_available() -> bool:
    """True when the compiled C kernel is in use."""
    return _lib is not None


def group_sum_multi_f64(gids: np.ndarray, columns: list[tuple[np.ndarray, np.ndarray | None]],
                        totals: list[np.ndarray], counts: list[np.ndarray], use_c: bool | None = None) -> None:
    """For each ``(x, valid)`` of ``columns`` and its ``totals`` / ``counts`` arrays (float64 /
    int64, indexed by group id, updated in place): every valid row's value added to its
    group's total in row order, and counted."""
    use_c = c_available() if use_c is None else (use_c and c_available())
    if not use_c:
        for (x, valid), total, count in zip(columns, totals, counts):
            batch_c.group_sum_f64(gids, x, valid, total, count)
        return
    k = len(columns)
    if shares_validity(columns):
        # one validity for all (no NULLs, or one selection): the counts are equal, so C counts
        # once and the other columns get the same increments
        before = counts[0].copy()
        _multi_c(gids, columns, totals, [counts[0]] + [None] * (k - 1))
        added = counts[0] - before
        for count in counts[1:k]:
            count += added
        return
    _multi_c(gids, columns, totals, counts)


def shares_validity(columns: list[tuple[np.ndarray, np.ndarray | None]]) -> bool:
    """True when several ``(x, valid)`` columns have one validity object (or all None): the
    C passes then count each row once."""
    return len(columns) > 1 and all(valid is columns[0][1] for _, valid in columns)


def c_columns(columns: list[tuple[np.ndarray, np.ndarray | None]], ctype: str, dtype, keep: list):
    """(``ctype *[]`` of the values, ``uint8_t *[]`` of the validities, NULL for None) of
    ``columns`` for a C pass; the arrays C reads are appended to ``keep``. One byte array per
    validity object, so a shared validity stays one pointer (which the C passes compare)."""
    k = len(columns)
    xs, valids = _ffi.new(f"{ctype} *[]", k), _ffi.new("uint8_t *[]", k)
    as_bytes: dict = {}
    for j, (x, valid) in enumerate(columns):
        x = np.ascontiguousarray(x, dtype=dtype)
        keep.append(x)
        xs[j] = _ffi.cast(f"{ctype} *", x.ctypes.data)
        if valid is None:
            valids[j] = _ffi.NULL
            continue
        if id(valid) not in as_bytes:
            as_bytes[id(valid)] = np.ascontiguousarray(valid).view(np.uint8) if valid.dtype == np.bool_ \
                else np.ascontiguousarray(valid, dtype=np.uint8)
        keep.append(as_bytes[id(valid)])
        valids[j] = _ffi.cast("uint8_t *", as_bytes[id(valid)].ctypes.data)
    return xs, valids


def _multi_c(gids, columns, totals, counts) -> None:
    k = len(columns)
    keep = [np.ascontiguousarray(gids, dtype=np.int64)]      # what C reads stays referenced
    xs, valids = c_columns(columns, "double", np.float64, keep)
    tot, cnt = _ffi.new("double *[]", k), _ffi.new("int64_t *[]", k)
    for j, (total, count) in enumerate(zip(totals, counts)):
        if not (total.flags.c_contiguous and (count is None or count.flags.c_contiguous)):
            raise ValueError("group_sum_multi_f64: totals and counts must be contiguous arrays")
        tot[j] = _ffi.cast("double *", total.ctypes.data)
        cnt[j] = _ffi.NULL if count is None else _ffi.cast("int64_t *", count.ctypes.data)
    _lib.velaria_group_sum_multi_f64(_ffi.cast("int64_t *", keep[0].ctypes.data), keep[0].size, k,
                                     xs, valids, tot, cnt)
