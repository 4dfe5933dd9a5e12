"""C batch-operator helpers (``accel/src/batch_ops.c``) with a numpy twin for each.

The batch-operator kernels (``aggregate``, ``predicates``) call these functions; each runs the compiled C kernel when the cffi module
loaded and otherwise its numpy twin (same results, bit for bit), so a missing C build costs
speed only. ``tests/test_kernel_parity.py`` runs both on generated data and compares them.

======================== ======================================================================
``dense_group_ids``      global first-appearance group id per row of an integer key column
                         through a dense lookup table indexed by ``key - lo`` (NULL: own slot)
``group_sum_f64``        per-group float64 sums (and counts) added in row order
``group_count``          per-group row / non-NULL counts
``select_cmp``           rows (and their values) where a float64 / int64 column compared with a
                         constant is TRUE (NaN above every number, NULL dropped), in row order
``gather_u64``           ``src[idx]`` for 8-byte values
``compact_u64``          the 8-byte values whose mask byte is set, in order (branch-free)
``sum_lanes_f64``        float SUM in the specified lane order (16 interleaved lanes, each left
                         to right; SIMD on AVX2 / AVX-512, the same bits on every level)
``combine_lanes_f64``    the 16 lanes combined pairwise into the total
``group_welford_f64``    per-group Welford variance state (count, mean, m2) folded in row order
======================== ======================================================================
"""
from __future__ import annotations

import numpy as np

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_select_cmp_f64"):          # an older build without batch_ops.c
        raise ImportError("the C module has no batch kernels")
except Exception as exc:  # pragma: no cover - depends on the build
    _ffi = _lib = None
    import_error: BaseException | None = exc
else:
    import_error = None

__all__ = ["available", "dense_group_ids", "group_sum_f64", "group_count",
           "select_cmp", "gather_u64", "CMP_OPS", "SUM_LANES", "sum_lanes_f64", "combine_lanes_f64",
           "compact_u64", "group_welford_f64"]

_use_c = _lib is not None


def available() -> bool:
    """True when the compiled C batch kernels are in use."""
    return _use_c


def _ptr(ctype: str, a: np.ndarray | None):
    if a is None:
        return _ffi.NULL
    return _ffi.cast(ctype, a.ctypes.data)


def _contig(a: np.ndarray | None, dtype) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


# --------------------------------------------------------------------------- group ids

def dense_group_ids(keys: np.ndarray, valid: np.ndarray | None, lo: int, lut: np.ndarray,
                    null_slot: int, next_gid: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(group id per row, rows that opened a new group, new next_gid). ``lut`` (int64, -1 =
    unseen) maps ``key - lo`` to a group id and ``null_slot`` the NULL key; it is updated."""
    keys = _contig(keys, np.int64)
    valid = _contig(valid, np.uint8)
    n = keys.size
    if _use_c:
        out = np.empty(n, dtype=np.int64)
        new_rows = np.empty(min(n, lut.size), dtype=np.int64)
        nxt = _lib.velaria_dense_group_ids(_ptr("int64_t *", keys), _ptr("uint8_t *", valid), n, lo,
                                           _ptr("int64_t *", lut), null_slot, next_gid,
                                           _ptr("int64_t *", out), _ptr("int64_t *", new_rows))
        return out, new_rows[:nxt - next_gid].copy(), int(nxt)
    return _dense_group_ids_np(keys, valid, lo, lut, null_slot, next_gid)


def _dense_group_ids_np(keys, valid, lo, lut, null_slot, next_gid):
    with np.errstate(over="ignore"):
        slots = (keys.astype(np.uint64) - np.uint64(lo & 0xFFFFFFFFFFFFFFFF)).astype(np.int64)
    if valid is not None:
        slots = np.where(valid.astype(bool), slots, null_slot)
    uniq, first = np.unique(slots, return_index=True)
    unseen = lut[uniq] < 0
    new_slots, new_rows = uniq[unseen], first[unseen]
    order = np.argsort(new_rows, kind="stable")
    new_rows = new_rows[order]
    lut[new_slots[order]] = next_gid + np.arange(new_rows.size, dtype=np.int64)
    return lut[slots], new_rows.astype(np.int64), next_gid + int(new_rows.size)


# --------------------------------------------------------------------------- sums / counts


def _valid_rows(gids: np.ndarray | None, x: np.ndarray, valid: np.ndarray | None):
    """(group id, value) of the valid rows, in row order (``gids`` None: every row in group 0)
    -- what the numpy twins of the grouped kernels fold."""
    if gids is None:
        gids = np.zeros(x.size, dtype=np.int64)
    if valid is not None:
        keep = valid.astype(bool)
        gids, x = gids[keep], x[keep]
    return gids, x

def group_sum_f64(gids: np.ndarray | None, x: np.ndarray, valid: np.ndarray | None,
                  totals: np.ndarray, counts: np.ndarray | None) -> None:
    """``totals[g] += x[i]`` in row order for every valid row (``gids`` None: group 0), and
    ``counts[g] += 1`` for the same rows when ``counts`` is given. Updates in place."""
    x = _contig(x, np.float64)
    gids = _contig(gids, np.int64)
    valid = _contig(valid, np.uint8)
    assert totals.dtype == np.float64 and totals.flags.c_contiguous
    assert counts is None or (counts.dtype == np.int64 and counts.flags.c_contiguous)
    if _use_c:
        _lib.velaria_group_sum_f64(_ptr("int64_t *", gids), _ptr("double *", x), _ptr("uint8_t *", valid),
                                   x.size, _ptr("double *", totals), _ptr("int64_t *", counts))
        return
    gids, x = _valid_rows(gids, x, valid)
    g = totals.size
    # bincount adds the weights of each bin in input order; the running totals go first
    idx = np.concatenate([np.arange(g, dtype=np.int64), gids])
    totals[:] = np.bincount(idx, weights=np.concatenate([totals, x]), minlength=g)[:g]
    if counts is not None:
        counts += np.bincount(gids, minlength=g)[:g]


def group_count(gids: np.ndarray, valid: np.ndarray | None, counts: np.ndarray) -> None:
    """``counts[g] += 1`` per row (or per valid row). Updates in place."""
    gids = _contig(gids, np.int64)
    valid = _contig(valid, np.uint8)
    assert counts.dtype == np.int64 and counts.flags.c_contiguous
    if _use_c:
        _lib.velaria_group_count(_ptr("int64_t *", gids), _ptr("uint8_t *", valid), gids.size,
                                 _ptr("int64_t *", counts))
        return
    if valid is not None:
        gids = gids[valid.astype(bool)]
    counts += np.bincount(gids, minlength=counts.size)[:counts.size]


# --------------------------------------------------------------------------- selection

#: comparison operator -> the C kernels' op code
CMP_OPS = {"=": 0, "!=": 1, "<": 2, "<=": 3, ">": 4, ">=": 5}
_CMP_NP = {"=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
           ">=": np.greater_equal}


def _pool_empty(n: int, dtype) -> np.ndarray:
    """An uninitialised array in Arrow's memory pool (mimalloc / jemalloc keep freed pages, so
    a batch-sized output does not page-fault afresh on every call as a new numpy array does)."""
    import pyarrow as pa
    dtype = np.dtype(dtype)
    buf = pa.allocate_buffer(max(n, 1) * dtype.itemsize)
    return np.frombuffer(buf, dtype=dtype, count=n)


def select_cmp(x: np.ndarray, valid: np.ndarray | None, op: str, c, want_idx: bool = True,
               want_vals: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(row numbers, values) of the rows of ``x`` (float64 or int64) where ``x op c`` is TRUE
    under the reference rules: NaN above every number (``c`` is never NaN), -0.0 == 0.0, NULL
    rows (``valid`` False) dropped. Either output may be skipped (None)."""
    code = CMP_OPS[op]
    is_float = x.dtype == np.float64
    x = np.ascontiguousarray(x, dtype=np.float64 if is_float else np.int64)
    valid = _contig(valid, np.uint8)
    n = x.size
    if _use_c:
        idx = _pool_empty(n, np.int64) if want_idx else None
        vals = _pool_empty(n, x.dtype) if want_vals else None
        if is_float:
            k = _lib.velaria_select_cmp_f64(_ptr("double *", x), _ptr("uint8_t *", valid), n, code, float(c),
                                            _ptr("int64_t *", idx), _ptr("double *", vals))
        else:
            k = _lib.velaria_select_cmp_i64(_ptr("int64_t *", x), _ptr("uint8_t *", valid), n, code, int(c),
                                            _ptr("int64_t *", idx), _ptr("int64_t *", vals))
        return (idx[:k] if want_idx else None), (vals[:k] if want_vals else None)
    cond = _CMP_NP[op](x, c)
    if is_float and op in ("!=", ">", ">="):
        cond |= np.isnan(x)
    if valid is not None:
        cond &= valid.astype(bool)
    idx = np.flatnonzero(cond).astype(np.int64)
    return (idx if want_idx else None), (x[idx] if want_vals else None)


def gather_u64(src: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``src[idx]`` for an 8-byte ``src`` (viewed as uint64; the result has ``src``'s dtype)."""
    src = np.ascontiguousarray(src)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    if _use_c and src.dtype.itemsize == 8:
        out = _pool_empty(idx.size, src.dtype)
        _lib.velaria_gather_u64(_ptr("uint64_t *", src), _ptr("int64_t *", idx), idx.size, _ptr("uint64_t *", out))
        return out
    return src[idx]


# --------------------------------------------------------------------------- float SUM lanes

SUM_LANES = 16


def sum_lanes_f64(x: np.ndarray, valid: np.ndarray | None, lanes: np.ndarray, pos: int) -> int:
    """Add the float64 values of ``x`` (NULL rows, ``valid`` False, skipped) to the running
    lane sums ``lanes`` (16 float64, updated in place): the k-th value added goes to lane
    ``(pos + k) % 16``, each lane summed left to right (the float SUM order of
    ``reference.aggregate``). Returns the number of values added. The C kernel runs on the
    current SIMD level; every level gives the same bits."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if _use_c and lanes.flags.c_contiguous and lanes.dtype == np.float64:
        from ._loader import _LEVEL_OF, backend
        v = _contig(valid, np.uint8)
        return int(_lib.velaria_sum_lanes_f64(_LEVEL_OF[backend()], _ptr("double *", x), _ptr("uint8_t *", v),
                                              x.size, _ptr("double *", lanes), pos))
    if valid is not None:
        x = x[np.asarray(valid, dtype=bool)]
    with np.errstate(all="ignore"):         # overflow to inf, inf - inf: values, not warnings
        return _sum_lanes_numpy(x, lanes, pos)


def _sum_lanes_numpy(x: np.ndarray, lanes: np.ndarray, pos: int) -> int:
    k = x.size
    head = min(k, (-pos) % SUM_LANES)
    for i in range(head):                    # up to the next lane-0 boundary, one at a time
        lanes[(pos + i) % SUM_LANES] += x[i]
    rest = x[head:]
    full = rest.size // SUM_LANES
    if full:
        # accumulate over the outer axis starts from the first row itself and adds row after
        # row, so with the running lanes as the first row each column is the same left-to-right
        # chain as the C loop (reduce may start from the identity +0.0, which turns a -0.0 lane
        # into +0.0)
        block = np.vstack([lanes[None, :], rest[:full * SUM_LANES].reshape(full, SUM_LANES)])
        lanes[:] = np.add.accumulate(block, axis=0)[-1]
    tail = rest[full * SUM_LANES:]
    lanes[:tail.size] += tail
    return k


def combine_lanes_f64(lanes: np.ndarray) -> float:
    """The lanes combined pairwise: (0+1), (2+3), ... then again, down to one value."""
    t = [float(v) for v in lanes]
    while len(t) > 1:
        t = [t[2 * j] + t[2 * j + 1] for j in range(len(t) // 2)]
    return t[0]


def compact_u64(src: np.ndarray, mask: np.ndarray, out: np.ndarray) -> int:
    """Write the 8-byte values of ``src`` whose ``mask`` is True to the front of ``out``, in
    order; returns how many. ``out`` needs one slot more than that count (the branch-free C
    loop writes every value at the current output index)."""
    if _use_c and src.flags.c_contiguous and out.flags.c_contiguous:
        m = mask.view(np.uint8) if mask.dtype == np.bool_ and mask.flags.c_contiguous else _contig(mask, np.uint8)
        return int(_lib.velaria_compact_u64(_ptr("uint64_t *", src), _ptr("uint8_t *", m), src.size,
                                            _ptr("uint64_t *", out)))
    kept = src[np.asarray(mask, dtype=bool)]
    out[:kept.size] = kept.view(out.dtype)
    return kept.size


# --------------------------------------------------------------------------- variance state

def group_welford_f64(gids: np.ndarray | None, x: np.ndarray, valid: np.ndarray | None,
                      counts: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
    """Welford's update (``n += 1; d = x - mean; mean += d / n; m2 += d * (x - mean)``) of each
    valid row's group, in row order (``gids`` None: group 0); updates the arrays in place."""
    x = _contig(x, np.float64)
    gids = _contig(gids, np.int64)
    valid = _contig(valid, np.uint8)
    if _use_c:
        _lib.velaria_group_welford_f64(_ptr("int64_t *", gids), _ptr("double *", x), _ptr("uint8_t *", valid),
                                       x.size, _ptr("int64_t *", counts), _ptr("double *", mean),
                                       _ptr("double *", m2))
        return
    gids, x = _valid_rows(gids, x, valid)
    # each group's values in row order; step r updates every group's r-th value at once
    order = np.argsort(gids, kind="stable")
    g_sorted, x_sorted = gids[order], x[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]]) if g_sorted.size else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, g_sorted.size])
    with np.errstate(all="ignore"):
        for r in range(int(sizes.max()) if sizes.size else 0):
            live = sizes > r
            g = g_sorted[starts[live]]
            v = x_sorted[starts[live] + r]
            counts[g] += 1
            d = v - mean[g]
            mean[g] += d / counts[g].astype(np.float64)
            m2[g] += d * (v - mean[g])
