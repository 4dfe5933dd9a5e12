"""Two shortcuts of the accelerated GROUP BY that skip the group id per row.

* :class:`KeyBitmap` -- a GROUP BY with no aggregate calls (``SELECT DISTINCT``-like; the inner
  step that ``COUNT(DISTINCT x)`` per group is planned as) on several integer keys with small
  value ranges. It needs only the rows that open a group: each row's keys are packed in mixed
  radix into one slot (a NULL key has its own digit) and a bitmap of every possible slot, kept
  across batches, tells the first occurrences (``group_fused.bitmap_first_rows``). One bit per
  possible key stays in cache where a hash table of a million pairs does not.
* :func:`dense_sum_columns` -- one integer key on the dense lookup table with only float SUM /
  AVG over columns without NULL and ``COUNT(*)``: the group ids, sums and counts are folded in
  one pass (``group_fused.dense_group_sum_f64``), in row order, so the totals are the
  reference's left-to-right sums bit for bit.

Groups are numbered exactly as on the general paths (first appearance), so the output never
depends on which path ran.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from . import group_fused

__all__ = ["KeyBitmap", "dense_sum_columns"]


def _small_int(t: pa.DataType) -> bool:
    return pat.is_integer(t) and not pat.is_uint64(t)


class KeyBitmap:
    """First occurrences of several small-range integer keys, through one persistent bitmap.

    The value range of each key column is fixed by the first batch; a later batch with a value
    outside it, or another type, does not fit (:meth:`first_rows` returns None) and the caller
    continues on its hashing path."""

    def __init__(self, types: list[pa.DataType], lows: list[int], radixes: list[int]):
        self.types, self.lows, self.radixes = types, lows, radixes
        bits = int(np.prod(radixes, dtype=object))
        self.bitmap = np.zeros((bits + 7) // 8, dtype=np.uint8)

    @classmethod
    def open(cls, key_arrays: list[pa.Array], num_rows: int) -> "KeyBitmap | None":
        """A bitmap sized for these keys' value ranges, or None when the keys are not all
        integers or the key space is too large for a bitmap (more than
        ``group_fused.BITMAP_MAX_BITS`` bits, or far more bits than rows)."""
        if len(key_arrays) < 2 or not group_fused.c_available():
            return None
        if not all(_small_int(k.type) for k in key_arrays):
            return None
        lows, radixes = [], []
        for k in key_arrays:
            mm = pc.min_max(k)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if lo is None:
                lo = hi = 0
            lows.append(lo)
            radixes.append(hi - lo + 2)             # the values, then NULL's digit
        bits = int(np.prod(radixes, dtype=object))
        if bits > min(group_fused.BITMAP_MAX_BITS, 64 * num_rows + (1 << 23)):
            return None
        return cls([k.type for k in key_arrays], lows, radixes)

    def first_rows(self, key_arrays: list[pa.Array]) -> np.ndarray | None:
        """The rows of this batch whose key combination was never seen (ascending), or None
        when the batch does not fit the bitmap (nothing is recorded then)."""
        cols, valids = [], []
        for k, t, lo, radix in zip(key_arrays, self.types, self.lows, self.radixes):
            if not k.type.equals(t):
                return None
            mm = pc.min_max(k)
            if mm["min"].is_valid and (mm["min"].as_py() < lo or mm["max"].as_py() > lo + radix - 2):
                return None
            valid = None
            if k.null_count:
                valid = pc.is_valid(k).to_numpy(zero_copy_only=False)
                k = k.fill_null(lo)
            cols.append(k.to_numpy(zero_copy_only=False))
            valids.append(valid)
        return group_fused.bitmap_first_rows(cols, valids, self.lows, self.radixes, self.bitmap)


def dense_sum_columns(states, arg_arrays) -> list | None:
    """The float column each aggregate of ``states`` adds (None for ``COUNT(*)``) when every
    aggregate is a float64 SUM / AVG over a column without NULL or ``COUNT(*)`` and at least
    one sums; None when the one-pass kernel does not cover them."""
    columns = []
    for state, arg in zip(states, arg_arrays):
        func = state.agg.func
        if arg is None and func == "count":
            columns.append(None)
        elif (func in ("sum", "avg") and isinstance(arg, pa.Array) and pat.is_float64(arg.type)
              and arg.null_count == 0 and state.lanes is None):
            columns.append(arg)
        else:
            return None
    return columns if any(c is not None for c in columns) else None
