"""Accelerated ``window_eval``: window functions vectorised with numpy over one sort of the rows.

Twin of ``velaria.reference.batch.window_eval`` (semantics: ``velaria.reference.window``).
The rows are sorted once by (partition code, ORDER BY keys) with the accelerated stable sort;
partition and peer boundaries come from the factorised keys, and every function is computed
on the sorted positions, then scattered back to input order:

* rankings, NTILE, LAG / LEAD, FIRST_VALUE / LAST_VALUE and COUNT: index arithmetic on any
  frame of ROWS or RANGE without offsets;
* integer SUM / AVG: exact prefix-sum differences while no total can leave int64 (AVG: 2**53);
* float SUM / AVG and numeric MIN / MAX: frames that start at the partition start, as a
  running ``cumsum`` / ``accumulate`` per partition -- the same left-to-right order as the
  reference, so the same float rounding.

Everything else (RANGE offsets, sliding float sums, MIN / MAX of text, key types that cannot
be factorised, a possible overflow) is delegated to the reference, which gives the answer (or
the error) by definition.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from velaria.plan import types as T
from velaria.reference import batch as _ref

from .arrow_util import _F64, _I64, _conform, _is_float, _is_int, _valid
from .distinct import _combine, _hashable
from .sort import sort_indices

__all__ = ["window_eval"]

_INT64_MAX = 2 ** 63 - 1
_INT64_MIN = -(2 ** 63)


def _flat(a):
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


class _Layout:
    """The sorted positions of the rows with their partition and peer boundaries."""

    def __init__(self, partition: list[pa.Array], order: list[pa.Array], descending, nulls_first, n: int):
        codes = _combine(partition)[0] if partition else np.zeros(n, dtype=np.int64)
        perm = sort_indices([pa.array(codes, type=_I64)] + order, [False] + list(descending),
                            [False] + list(nulls_first))
        self.perm = np.asarray(perm.to_numpy(zero_copy_only=False), dtype=np.int64)
        self.idx = np.arange(n, dtype=np.int64)
        sp = codes[self.perm]
        part_new = np.ones(n, dtype=bool)
        part_new[1:] = sp[1:] != sp[:-1]
        peer_new = part_new.copy()
        if order:
            so = _combine(order)[0][self.perm]
            peer_new[1:] |= so[1:] != so[:-1]
        self.part_new, self.peer_new = part_new, peer_new
        self.pstart, self.pend = self._bounds(part_new)
        self.peer_start, self.peer_end = self._bounds(peer_new)

    def _bounds(self, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per sorted position: first and last position of its run (``new`` marks run starts)."""
        starts = np.nonzero(new)[0]
        sizes = np.diff(np.append(starts, len(new)))
        run = np.cumsum(new) - 1
        return starts[run], starts[run] + sizes[run] - 1

    def partitions(self):
        """(start, stop) of each partition in sorted positions."""
        starts = np.nonzero(self.part_new)[0]
        return zip(starts.tolist(), np.append(starts[1:], len(self.part_new)).tolist())

    def to_input_order(self, sorted_values: pa.Array) -> pa.Array:
        inverse = np.empty_like(self.perm)
        inverse[self.perm] = self.idx
        return sorted_values.take(pa.array(inverse, type=_I64))


def window_eval(call, args: list[pa.Array], partition: list[pa.Array], order: list[pa.Array],
                num_rows: int) -> pa.Array:
    """One window function over every row (``window.window_values``), as an Arrow array of
    ``call.type`` in input row order."""
    args, partition, order = [_flat(a) for a in args], [_flat(p) for p in partition], [_flat(o) for o in order]
    if num_rows == 0 or T.is_null(call.type) or not all(_hashable(k.type) for k in partition + order):
        return _ref.window_eval(call, args, partition, order, num_rows)
    lay = _Layout(partition, order, call.descending, call.nulls_first, num_rows)
    result = _sorted_result(call, args, lay)
    if result is None:
        return _ref.window_eval(call, args, partition, order, num_rows)
    return lay.to_input_order(result)


def _sorted_result(call, args, lay: _Layout) -> pa.Array | None:
    """The function's values at the sorted positions, or None when the reference must run."""
    func, idx = call.func, lay.idx
    if func == "row_number":
        return pa.array(idx - lay.pstart + 1, type=_I64)
    if func == "rank":
        return pa.array(lay.peer_start - lay.pstart + 1, type=_I64)
    if func == "dense_rank":
        c = np.cumsum(lay.peer_new)
        return pa.array(c - c[lay.pstart] + 1, type=_I64)
    if func == "ntile":
        return pa.array(_ntile(call.param, idx - lay.pstart, lay.pend - lay.pstart + 1), type=_I64)
    if func in ("lag", "lead"):
        return _shifted(call, args, lay)
    bounds = _frame(call, lay)
    if bounds is None:
        return None
    s, e = bounds
    empty = s > e
    if func in ("first_value", "last_value"):
        src = np.where(empty, 0, s if func == "first_value" else e)
        taken = _conform(args[0], call.type, len(args[0])).take(pa.array(lay.perm[src], type=_I64))
        return pc.if_else(pa.array(empty), pa.nulls(len(idx), type=call.type), taken) if empty.any() else taken
    if func == "count" and not args:
        return pa.array(np.where(empty, 0, e - s + 1), type=_I64)
    if func not in ("count", "sum", "avg", "min", "max"):
        return None                   # the variances and MEDIAN: the reference
    value = args[0].take(pa.array(lay.perm, type=_I64))
    valid = _valid(value)
    valid = np.ones(len(idx), dtype=bool) if valid is None else valid
    counts = np.concatenate([[0], np.cumsum(valid)])
    cnt = np.where(empty, 0, counts[np.maximum(e, -1) + 1] - counts[np.minimum(s, len(idx))])
    if func == "count":
        return pa.array(cnt, type=_I64)
    none = cnt == 0
    if func in ("sum", "avg"):
        totals = _sums(call, value, valid, s, e, empty, lay)
        if totals is None:
            return None
        out = totals / np.where(none, 1, cnt) if func == "avg" else totals
        return pa.array(out, type=call.type, mask=none)
    return _min_max(call, value, valid, s, e, none, lay)


def _ntile(buckets: int, pos: np.ndarray, size: np.ndarray) -> np.ndarray:
    per, extra = np.divmod(size, buckets)
    big = extra * (per + 1)          # rows held by the first `extra` (larger) buckets
    return np.where(pos < big, pos // (per + 1) + 1, extra + (pos - big) // np.maximum(per, 1) + 1)


def _shifted(call, args, lay: _Layout) -> pa.Array:
    k = call.param if call.func == "lead" else -call.param
    src = lay.idx + k
    inside = (src >= lay.pstart) & (src <= lay.pend)
    n = len(lay.idx)
    value = _conform(args[0], call.type, n)
    taken = value.take(pa.array(lay.perm[np.where(inside, src, 0)], type=_I64))
    if len(args) > 1:
        fallback = _conform(args[1], call.type, n).take(pa.array(lay.perm, type=_I64))
    else:
        fallback = pa.nulls(n, type=call.type)
    return pc.if_else(pa.array(inside), taken, fallback)


def _frame(call, lay: _Layout) -> tuple[np.ndarray, np.ndarray] | None:
    """(first, last) sorted positions of every row's frame; None for RANGE with offsets."""
    frame, idx = call.frame, lay.idx

    def bound(b, side):
        kind, k = b
        if kind == "unbounded":
            return lay.pstart if side == "start" else lay.pend
        if kind == "current":
            if frame.mode == "rows":
                return idx
            return lay.peer_start if side == "start" else lay.peer_end
        if frame.mode == "range":
            return None
        return idx - k if kind == "preceding" else idx + k
    s, e = bound(frame.start, "start"), bound(frame.end, "end")
    if s is None or e is None:
        return None
    return np.maximum(s, lay.pstart), np.minimum(e, lay.pend)


def _running(values: np.ndarray, lay: _Layout, ufunc) -> np.ndarray:
    """``ufunc.accumulate`` restarted at every partition start (left to right)."""
    out = np.empty_like(values)
    for a, b in lay.partitions():
        out[a:b] = ufunc.accumulate(values[a:b])
    return out


def _sums(call, value: pa.Array, valid, s, e, empty, lay: _Layout) -> np.ndarray | None:
    """Frame totals (float64, or int64 for an integer SUM), or None to delegate."""
    n = len(lay.idx)
    safe_s, safe_e = np.where(empty, 0, s), np.where(empty, 0, e)
    if _is_int(value.type):
        x = np.where(valid, value.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), 0)
        limit = 2 ** 53 if call.func == "avg" else 2 ** 63
        # the largest magnitude as a Python int: np.abs(-2**63) wraps around to -2**63
        if n and max(int(x.max()), -int(x.min())) * n >= limit:
            return None               # a total might leave the exact range: the reference decides
        prefix = np.concatenate([[0], np.cumsum(x)])
        return prefix[safe_e + 1] - prefix[safe_s]
    if not _is_float(value.type) or call.frame.start[0] != "unbounded":
        return None
    x = np.where(valid, value.cast(_F64).fill_null(0.0).to_numpy(zero_copy_only=False), 0.0)
    # a running total that starts from +0.0 as the reference's does (0 + -0.0 is 0.0)
    running = _running(np.where(lay.part_new, x + 0.0, x), lay, np.add)
    return running[safe_e]


def _min_max(call, value: pa.Array, valid, s, e, none, lay: _Layout) -> pa.Array | None:
    if call.frame.start[0] != "unbounded" or not (_is_int(value.type) or _is_float(value.type)):
        return None
    safe_e = np.where(s > e, 0, e)
    if _is_int(value.type):
        fill = _INT64_MAX if call.func == "min" else _INT64_MIN
        x = np.where(valid, value.cast(_I64).fill_null(0).to_numpy(zero_copy_only=False), fill)
        best = _running(x, lay, np.minimum if call.func == "min" else np.maximum)
    else:
        x = value.cast(_F64).fill_null(0.0).to_numpy(zero_copy_only=False)
        if np.any((x == 0) & np.signbit(x) & valid):
            return None               # -0.0 ties with 0.0: the first seen wins (reference)
        if call.func == "min":        # fmin skips NaN unless every value is NaN (NaN is largest)
            best = _running(np.where(valid, x, np.nan), lay, np.fmin)
        else:                         # maximum propagates NaN (NaN is largest)
            best = _running(np.where(valid, x, -np.inf), lay, np.maximum)
    return pa.array(best[safe_e], mask=none).cast(call.type)
