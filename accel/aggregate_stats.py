"""VAR_SAMP / VAR_POP / STDDEV_SAMP / STDDEV_POP and MEDIAN for the accelerated aggregate.

Twins of the reference's rules (``velaria.reference.aggregate``), vectorised per group:

* The variances keep Welford's state (count, mean, m2) per group, folded in row order by one
  C pass (``batch_c.group_welford_f64``: the reference's operations in its order, so the same
  bits); the result is ``m2 / (n - 1)`` (NULL below two values) or ``m2 / n`` (0.0 for one
  value), STDDEV its square root; partial states merge with Chan's formula, operation for
  operation as the reference.
* MEDIAN keeps every value with its group id, in input order (chunks per batch); at the end one
  stable sort by (group, value) -- ``-0.0`` ties with ``0.0`` and NaN is above every number, as
  ``sort_key`` orders them, so the middle value of each group is the reference's -- and the
  middle one or ``lo + (hi - lo) * 0.5`` of the middle two (``lo * 0.5 + hi * 0.5`` when one is
  infinite).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from velaria.reference.aggregate import VARIANCE_FUNCTIONS

from . import batch_c
from .arrow_util import _F64, _I64, _is_float, _np_values

__all__ = ["STAT_FUNCS", "stat_type_supported", "fold", "result", "export_columns", "merge", "subset"]

STAT_FUNCS = VARIANCE_FUNCTIONS + ("median",)


def stat_type_supported(func: str, t: pa.DataType) -> bool:
    """Argument types the vectorised statistics compute exactly: int8..int64 and float32/64."""
    return (pa.types.is_integer(t) and not pa.types.is_uint64(t)) or pa.types.is_float32(t) or pa.types.is_float64(t)


def _values(arg: pa.Array) -> np.ndarray:
    """The argument as float64 (floats) or int64 (integers), NULL slots 0."""
    return _np_values(arg, _F64, 0.0) if _is_float(arg.type) else _np_values(arg, _I64, 0)


def fold(state, gids: np.ndarray | None, arg: pa.Array, valid: np.ndarray | None, g: int) -> None:
    """Add one batch's argument values (``valid`` False: NULL, skipped) to ``state``."""
    state.kind = "float"
    if state.agg.func in VARIANCE_FUNCTIONS:
        # ints widen to float64 exactly as Python's float(int) (round to nearest)
        x = _np_values(arg, _F64, 0.0)
        batch_c.group_welford_f64(gids, x, valid, state.count[:g], state.mean[:g], state.m2[:g])
        return
    x = _values(arg)
    ids = np.zeros(len(arg), dtype=np.int64) if gids is None else gids
    if valid is not None:
        ids, x = ids[valid], x[valid]
    if ids.size:
        state.values.append((ids, x))
        state.count[:g] += np.bincount(ids, minlength=g)


def result(state, g: int) -> pa.Array:
    """The statistic of each of the ``g`` groups (NULL where the rule says so)."""
    func, count = state.agg.func, state.count[:g]
    if func == "median":
        return _medians(state, g)
    m2 = state.m2[:g]
    n = count.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if func.endswith("_samp"):
            var = m2 / (n - 1.0)
            null = count < 2
        else:
            var = np.where(count == 1, 0.0, m2 / n)   # one value does not vary, even inf
            null = count == 0
        out = np.sqrt(var) if func.startswith("stddev") else var
    return pa.array(out, type=_F64, mask=null)


def _grouped(state) -> tuple[np.ndarray, np.ndarray]:
    """(group ids, values) of every value kept so far, in input order."""
    if not state.values:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    ids = np.concatenate([c[0] for c in state.values])
    x = np.concatenate([c[1] for c in state.values])
    state.values = [(ids, x)]                 # keep one chunk: later calls do not concatenate again
    return ids, x


def _medians(state, g: int) -> pa.Array:
    ids, x = _grouped(state)
    count = np.bincount(ids, minlength=g)[:g]
    out = np.zeros(g, dtype=np.float64)
    if ids.size:
        key = x + 0.0 if x.dtype == np.float64 else x       # -0.0 ties with 0.0, as sort_key
        order = np.argsort(key, kind="stable")                # NaN last, ties in input order
        order = order[np.argsort(ids[order], kind="stable")]
        xs = x[order].astype(np.float64)
        starts = np.concatenate([[0], np.cumsum(count)[:-1]])
        has = count > 0
        mid = starts + count // 2
        odd = (count % 2 == 1) & has
        even = (count % 2 == 0) & has
        out[odd] = xs[mid[odd]]
        lo, hi = xs[mid[even] - 1], xs[mid[even]]
        with np.errstate(invalid="ignore", over="ignore"):
            inf = np.isinf(lo) | np.isinf(hi)
            out[even] = np.where(inf, lo * 0.5 + hi * 0.5, lo + (hi - lo) * 0.5)
    return pa.array(out, type=_F64, mask=count == 0)


def export_columns(state, g: int, prefix: str, schema: pa.Schema) -> dict:
    """The state's columns of ``export_state`` (``a{i}_mean`` / ``a{i}_m2`` or ``a{i}_values``)."""
    if state.agg.func in VARIANCE_FUNCTIONS:
        return {prefix + "mean": pa.array(state.mean[:g], type=_F64), prefix + "m2": pa.array(state.m2[:g], type=_F64)}
    ids, x = _grouped(state)
    order = np.argsort(ids, kind="stable")                    # each group's values in input order
    offsets = np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=g)[:g])]).astype(np.int32)
    t = schema.field(prefix + "values").type
    values = pa.array(x[order]).cast(t.value_type)
    return {prefix + "values": pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values, type=t)}


def merge(state, table: pa.Table, prefix: str, gids: np.ndarray, count: np.ndarray, g: int) -> None:
    """Fold an exported partial in (one row per group; ``gids`` the rows' group ids here),
    before ``state.count`` grows."""
    state.kind = "float"
    present = count > 0
    if state.agg.func in VARIANCE_FUNCTIONS:
        ids = gids[present]
        n_b = count[present].astype(np.float64)
        mean_b = table.column(prefix + "mean").to_numpy(zero_copy_only=False)[present]
        m2_b = table.column(prefix + "m2").to_numpy(zero_copy_only=False)[present]
        n_a = state.count[ids].astype(np.float64)
        fresh = state.count[ids] == 0
        mean_a, m2_a = state.mean[ids], state.m2[ids]
        with np.errstate(all="ignore"):
            n = n_a + n_b
            delta = mean_b - mean_a
            # the reference's Chan update, operation for operation (Python evaluates left to right)
            mean = mean_a + delta * n_b / n
            m2 = m2_a + m2_b + delta * delta * n_a * n_b / n
        state.mean[ids] = np.where(fresh, mean_b, mean)
        state.m2[ids] = np.where(fresh, m2_b, m2)
        return
    lists = table.column(prefix + "values").combine_chunks()
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(lists)
    if len(flat):
        state.values.append((np.repeat(gids, lengths), _values(flat)))


def subset(state, sub, idx: np.ndarray) -> None:
    """Restrict ``sub`` (a copy of ``state``) to the groups ``idx``, renumbered 0..len-1."""
    if state.agg.func in VARIANCE_FUNCTIONS:
        sub.mean, sub.m2 = state.mean[idx], state.m2[idx]
        return
    ids, x = _grouped(state)
    renumber = np.full(max(len(state.count), 1), -1, dtype=np.int64)
    renumber[idx] = np.arange(len(idx))
    new = renumber[ids]
    keep = new >= 0
    sub.values = [(new[keep], x[keep])]
