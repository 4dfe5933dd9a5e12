"""C selection helpers (``accel/src/select_terms.c``) with a numpy twin for each.

======================== ======================================================================
``and_cmp``              byte mask of the rows where every ``column op constant`` term is TRUE
                         (float64 / int64 / int32 columns; NaN above every number, -0.0 == 0.0,
                         a NULL operand drops the row), in one blocked pass over the batch
``and_compact``          the rows of NULL-free 8-byte columns where every term is TRUE, compacted
                         in the pass that tests the terms (threaded, no mask written)
``sum_lanes_where``      the float SUM lanes of a column over the rows where every term is TRUE,
                         without building the mask or the filtered column (each block's mask
                         stays in L1)
``pack_short_str``       each string of at most 7 bytes packed into one int64 (equal strings,
                         equal words; NULL is -1), or None when a string is longer
======================== ======================================================================

The kernels that call them (``filter_batch``, ``HashAggregate``) are the twins of the
reference kernels of the same names; ``tests/test_select_terms.py`` checks C against numpy
and the calling kernels against the reference.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .batch_c import CMP_OPS, _CMP_NP, _pool_empty
from .threads import default_threads

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_and_cmp"):              # an older build without select_terms.c
        raise ImportError("the C module has no selection kernels")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["Term", "KINDS", "and_cmp", "and_compact", "sum_lanes_where", "pack_short_str", "c_available"]

#: numpy value type of a term's column -> the C kernel's kind code
KINDS = {np.dtype(np.float64): 0, np.dtype(np.int64): 1, np.dtype(np.int32): 2}


def c_available() -> bool:
    """True when the compiled C kernels are in use."""
    return _lib is not None


@dataclass
class Term:
    """One ``column op constant`` term: the column's raw values (float64, int64 or int32;
    NULL slots arbitrary), its validity as bytes (None: no NULLs), the operator and the
    constant (a float for a float64 column, an int in the column's range otherwise)."""

    values: np.ndarray
    valid: np.ndarray | None
    op: str
    constant: float | int


#: row numbers are returned while at most 1 row in IDX_SHARE is kept (as in the C pass)
IDX_SHARE = 8
#: rows per thread below which one thread does the whole pass (a thread start costs more)
_ROWS_PER_THREAD = 1 << 19


def threads_for(n: int) -> int:
    """Threads for an ``n``-row pass: ``$VELARIA_THREADS`` or the CPUs this process may use,
    at most one per ``_ROWS_PER_THREAD`` rows."""
    return max(1, min(default_threads(), n // _ROWS_PER_THREAD))


def and_cmp(terms: list[Term], n: int, want_idx: bool = False,
            use_c: bool | None = None) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(bool mask of the ``n`` rows where every term is TRUE, how many rows it keeps, their
    row numbers in order when ``want_idx`` and few rows are kept, else None). The C pass
    writes the row numbers while at most 1 row in 8 is kept so far and stops past that share
    (a caller then compacts by the mask and needs no numbers); the numpy twin gives them when
    at most 1 row in 8 is kept overall."""
    use_c = c_available() if use_c is None else (use_c and c_available())
    if not terms:
        return np.ones(n, dtype=np.bool_), n, (np.arange(n, dtype=np.int64) if want_idx else None)
    if use_c:
        return _and_cmp_c(terms, n, want_idx)
    mask, kept = _and_cmp_np(terms, n)
    few = want_idx and kept * IDX_SHARE <= n
    return mask, kept, (np.flatnonzero(mask).astype(np.int64) if few else None)


def _c_terms(terms: list[Term]) -> tuple:
    """The C kernels' term arguments (kinds, ops, columns, validity, float and int constants)
    and the arrays they point into, which must stay referenced while C reads them."""
    k = len(terms)
    keep = []
    kinds, ops = _ffi.new("int[]", k), _ffi.new("int[]", k)
    cols, valids = _ffi.new("void *[]", k), _ffi.new("uint8_t *[]", k)
    fconsts, iconsts = _ffi.new("double[]", k), _ffi.new("int64_t[]", k)
    for i, t in enumerate(terms):
        values = np.ascontiguousarray(t.values)
        keep.append(values)
        kinds[i] = KINDS[values.dtype]
        ops[i] = CMP_OPS[t.op]
        cols[i] = _ffi.cast("void *", values.ctypes.data)
        if t.valid is None:
            valids[i] = _ffi.NULL
        else:
            v = np.ascontiguousarray(t.valid, dtype=np.uint8)
            keep.append(v)
            valids[i] = _ffi.cast("uint8_t *", v.ctypes.data)
        if values.dtype == np.float64:
            fconsts[i] = float(t.constant)
        else:
            iconsts[i] = int(t.constant)
    return (kinds, cols, valids, ops, fconsts, iconsts), keep


def _and_cmp_c(terms: list[Term], n: int, want_idx: bool) -> tuple[np.ndarray, int, np.ndarray | None]:
    args, _keep = _c_terms(terms)
    from ._loader import _LEVEL_OF, backend
    mask = _pool_empty(n, np.uint8)
    idx = _pool_empty(n, np.int64) if want_idx else None
    complete = _ffi.new("int *")
    kept = int(_lib.velaria_and_cmp(_LEVEL_OF[backend()], threads_for(n), n, len(terms), *args,
                                    _ffi.cast("uint8_t *", mask.ctypes.data),
                                    _ffi.NULL if idx is None else _ffi.cast("int64_t *", idx.ctypes.data),
                                    complete))
    return mask.view(np.bool_), kept, (idx[:kept] if want_idx and complete[0] else None)


def and_compact(terms: list[Term], columns: list[np.ndarray], n: int,
                use_c: bool | None = None) -> tuple[list[pa.Buffer], int]:
    """(for each uint64 array of ``columns``, an Arrow buffer holding its values on the rows
    where every term is TRUE, in order; how many rows that is). The C pass tests the terms and
    compacts the columns block by block on several threads, reading each column once and
    writing no mask; each thread writes its rows' values from its first row on and the pieces
    are then moved together, so the result does not depend on the thread count."""
    use_c = c_available() if use_c is None else (use_c and c_available())
    if not terms:
        raise ValueError("and_compact needs at least one term; with none every row is kept")
    if any(c.size != n for c in columns) or any(t.values.size != n for t in terms):
        raise ValueError(f"and_compact: every column and term needs {n} values, one per row")
    if not use_c:
        mask, kept = _and_cmp_np(terms, n)
        return [pa.py_buffer(np.ascontiguousarray(c[mask])) for c in columns], kept
    from ._loader import _LEVEL_OF, backend
    args, _keep = _c_terms(terms)
    srcs = [np.ascontiguousarray(c, dtype=np.uint64) for c in columns]
    bufs = [pa.allocate_buffer(max(n, 1) * 8, resizable=True) for _ in srcs]
    c_srcs = _ffi.new("uint64_t *[]", [_ffi.cast("uint64_t *", s.ctypes.data) for s in srcs])
    c_outs = _ffi.new("uint64_t *[]", [_ffi.cast("uint64_t *", b.address) for b in bufs])
    kept = int(_lib.velaria_and_compact_u64(_LEVEL_OF[backend()], threads_for(n), n, len(terms), *args,
                                            len(srcs), c_srcs, c_outs))
    for b in bufs:
        # room for every row was reserved; only the pages written are touched. Shrinking the
        # allocation would copy the kept values (the pool's realloc moves a block shrunk below
        # half its size), which cost more than the pass itself here
        b.resize(kept * 8, shrink_to_fit=False)
    return bufs, kept


def sum_lanes_where(terms: list[Term], x: np.ndarray, valid: np.ndarray | None, lanes: np.ndarray,
                    pos: int, use_c: bool | None = None, y: np.ndarray | None = None,
                    y_valid: np.ndarray | None = None) -> tuple[int, int]:
    """Add to the float SUM lanes ``lanes`` (16 float64, updated in place; the next value goes
    to lane ``pos % 16``) the float64 values of ``x`` -- or, with a second factor ``y``, the
    products ``x * y`` -- on the rows where every term is TRUE and ``valid`` (and ``y_valid``;
    bytes, None: no NULLs) is set, in row order: the lanes end exactly as
    ``batch_c.sum_lanes_f64`` over the filtered column (of products) leaves them. Returns (values
    added, rows where every term is TRUE). The C pass never builds the mask or the filtered
    column: each block's mask stays in L1; with several threads the others test and compact
    chunks of rows ahead into cache-sized buffers while this one adds every value, in row order.
    With ``y``, only the kept rows' factors are read (their row numbers listed per block)."""
    use_c = c_available() if use_c is None else (use_c and c_available())
    n = x.size
    if any(t.values.size != n for t in terms) or (y is not None and y.size != n):
        raise ValueError(f"sum_lanes_where: every term's column and the second factor need {n} values, "
                         "one per row of x")
    if use_c and lanes.flags.c_contiguous and lanes.dtype == np.float64:
        from ._loader import _LEVEL_OF, backend
        args, _keep = _c_terms(terms)
        xs = np.ascontiguousarray(x, dtype=np.float64)
        ys = None if y is None else np.ascontiguousarray(y, dtype=np.float64)
        v = None if valid is None else np.ascontiguousarray(valid, dtype=np.uint8)
        yv = None if y_valid is None else np.ascontiguousarray(y_valid, dtype=np.uint8)
        rows = _ffi.new("int64_t *")
        added = _lib.velaria_sum_lanes_where_f64(
            _LEVEL_OF[backend()], threads_for(n), n, len(terms), *args, _ffi.cast("double *", xs.ctypes.data),
            _ffi.NULL if v is None else _ffi.cast("uint8_t *", v.ctypes.data),
            _ffi.NULL if ys is None else _ffi.cast("double *", ys.ctypes.data),
            _ffi.NULL if yv is None else _ffi.cast("uint8_t *", yv.ctypes.data),
            _ffi.cast("double *", lanes.ctypes.data), pos, rows)
        return int(added), int(rows[0])
    from .batch_c import _sum_lanes_numpy
    mask, rows = _and_cmp_np(terms, n) if terms else (np.ones(n, dtype=np.bool_), n)
    for bytes_ in (valid, y_valid):
        if bytes_ is not None:
            mask &= np.asarray(bytes_, dtype=np.bool_)
    with np.errstate(all="ignore"):         # overflow to inf, inf - inf: values, not warnings
        values = np.asarray(x, dtype=np.float64)[mask]
        if y is not None:
            values = values * np.asarray(y, dtype=np.float64)[mask]
        return _sum_lanes_numpy(values, lanes, pos), rows


def _and_cmp_np(terms: list[Term], n: int) -> tuple[np.ndarray, int]:
    mask = np.ones(n, dtype=np.bool_)
    for t in terms:
        cond = _CMP_NP[t.op](t.values, t.constant)
        if t.values.dtype == np.float64 and t.op in ("!=", ">", ">="):
            cond |= np.isnan(t.values)          # NaN is above every number
        mask &= cond
        if t.valid is not None:
            mask &= t.valid.astype(np.bool_)
    return mask, int(np.count_nonzero(mask))


def pack_short_str(arr: pa.Array, use_c: bool | None = None) -> np.ndarray | None:
    """int64 per row of a utf8 / binary ``arr`` (int32 offsets): its bytes little-endian,
    zero-padded to 8, so equal strings give equal words; NULL gives -1 (eight 0xFF bytes, never
    valid UTF-8). None when some non-NULL value is longer than 8 bytes, contains a NUL byte
    (``"a\\0"`` would pack as ``"a"``) or packs to -1: the words would not be one-to-one."""
    use_c = c_available() if use_c is None else (use_c and c_available())
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=arr.offset + n + 1)[arr.offset:]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    valid = None
    if arr.null_count:
        valid = np.asarray(arr.is_valid()).astype(np.uint8)
    if use_c:
        out = np.empty(n, dtype=np.int64)
        bad = _lib.velaria_pack_short_str(
            _ffi.cast("int32_t *", offsets.ctypes.data), _ffi.cast("uint8_t *", data.ctypes.data), data.size,
            _ffi.NULL if valid is None else _ffi.cast("uint8_t *", valid.ctypes.data), n,
            _ffi.cast("int64_t *", out.ctypes.data))
        return None if bad else out
    starts, lens = offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)
    if valid is not None:
        lens = np.where(valid == 0, 0, lens)       # whatever lies under a NULL is not read
    if (lens > 8).any():
        return None
    words = np.zeros(n, dtype=np.uint64)
    for j in range(int(lens.max(initial=0))):
        has = lens > j
        byte = np.where(has, data[np.where(has, starts + j, 0)], 0).astype(np.uint64)
        if (has & (byte == 0)).any():
            return None
        words |= byte << np.uint64(8 * j)
    if (words == np.uint64(0xFFFFFFFFFFFFFFFF)).any():
        return None
    out = words.view(np.int64)
    if valid is not None:
        out[valid == 0] = -1
    return out
