"""The C path of the accelerated ``hash_join`` (``accel/src/hash_join.c``): row pairs of an
equi-join on one int64 key per row, in the reference output order.

The smaller side is the build side. Its distinct keys are numbered in an open-addressing
table and its rows bucketed by number (a stable counting sort); the other side looks its keys
up. Probing with the left rows writes each left row's bucket of right rows in turn, which is
the reference order directly. When the left side is the smaller one, the right rows are the
probes; they scatter themselves behind the left rows they match, each left row's output slots
being reserved beforehand, so the order is again left rows in order, each with its right rows
in order. Either way the cost is one hash probe per row plus the output, with no sort.

:func:`join_pairs` returns None when the C module is missing; ``accel/join.py`` then uses its
numpy path. Keys arrive already reduced to one int64 per row (``accel/join.py`` packs or
factorises them) with a validity mask: a row whose key has a NULL never matches.
"""
from __future__ import annotations

import numpy as np

from velaria.plan.kernel_paths import report

from .group_hash import _ptr
from .threads import default_threads

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_join_build"):        # an older build without hash_join.c
        raise ImportError("the C module has no hash join kernel")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["c_available", "join_pairs", "key_found", "KeyTable"]

_I64 = np.int64
_INT32_MAX = 2 ** 31 - 1
_i64 = _ptr      # an int64 array's data as ``int64_t *``, as the group tables pass it


def c_available() -> bool:
    """True when the compiled hash join is in use."""
    return _lib is not None




def _i32(a: np.ndarray):
    return _ffi.cast("int32_t *", a.ctypes.data)


def _u64(a: np.ndarray):
    return _ffi.cast("uint64_t *", a.ctypes.data)


def _u8(valid: np.ndarray | None):
    return _ffi.NULL if valid is None else _ffi.cast("uint8_t *", valid.ctypes.data)


class _BuildTable:
    """The build side's keys numbered (a dense lookup table or a hash table), and its rows
    bucketed by number when a join asks for the buckets."""

    #: dense table when the keys span at most this many values per build row (int32 entries)
    DENSE_SPAN_PER_ROW = 4
    #: largest key range given a bitmap of the keys present: 2**25 bits, 4 MiB, about a cache slice
    BITMAP_MAX = 1 << 25

    def __init__(self, keys: np.ndarray, valid: np.ndarray | None, rows_if_unique: bool = False):
        """``rows_if_unique``: first try numbering each key by its row (a build side whose keys
        are distinct then needs no numbering and no per-row numbers); a repeated key ends the
        try and the keys are numbered as usual."""
        n = keys.size
        self.n = n
        present = keys if valid is None else keys[valid.view(bool)]
        self.valid = valid
        self.lo, self.span = (int(present.min()), int(present.max()) - int(present.min()) + 1) if present.size else (0, 0)
        self.lut = self.slots = self.bitmap = None
        #: numbers are build rows (a unique side built with ``rows_if_unique``): no ``gids``
        self.by_row = False
        if present.size and self.span <= self.DENSE_SPAN_PER_ROW * n + 1024:
            self.lut = np.full(self.span, -1, dtype=np.int32)
            self.by_row = rows_if_unique and n <= _INT32_MAX and bool(
                _lib.velaria_join_build_unique_dense(_i64(keys), _u8(valid), n, self.lo, _i32(self.lut)))
            if not self.by_row:
                if rows_if_unique:              # undo the try
                    self.lut.fill(-1)
                self.gids = np.empty(n, dtype=_I64)
                self.groups = int(_lib.velaria_join_build_dense(_i64(keys), _u8(valid), n, self.lo,
                                                                _i32(self.lut), _i64(self.gids)))
        else:
            self.bits = int(2 * n - 1).bit_length() if n else 0    # 2**bits >= 2 * n: at most half full
            self.slots = np.full(2 << self.bits, -1, dtype=_I64)    # (key, number) pairs; number -1: empty
            self.by_row = rows_if_unique and bool(
                _lib.velaria_join_build_unique(_i64(keys), _u8(valid), n, _i64(self.slots), self.bits))
            if not self.by_row:
                if rows_if_unique:
                    self.slots.fill(-1)
                self.gids = np.empty(n, dtype=_I64)
                self.groups = int(_lib.velaria_join_build(_i64(keys), _u8(valid), n, _i64(self.slots), self.bits,
                                                          _i64(self.gids)))
            if present.size and self.span <= self.BITMAP_MAX:    # misses answered from cache
                self.bitmap = np.zeros((self.span + 63) // 64, dtype=np.uint64)
                _lib.velaria_join_bitmap(_i64(keys), _u8(valid), n, self.lo, _u64(self.bitmap))
            else:
                self.span = 0                   # no range filter (and the span may pass int64)
        if self.by_row:
            self.groups = n                     # a number per row, NULL keys' numbers never found
        #: every valid build row has a key of its own: a number stands for one row
        self.unique = self.by_row or self.groups == present.size
        self._buckets = None

    @property
    def starts(self) -> np.ndarray:
        """Where each number's bucket of build rows starts in ``order`` (``groups + 1`` entries)."""
        return self._bucketed()[0]

    @property
    def order(self) -> np.ndarray:
        """The valid build rows grouped by number (a stable counting sort: row order within one)."""
        return self._bucketed()[1]

    def _bucketed(self) -> tuple[np.ndarray, np.ndarray]:
        # only joins with repeated build keys need the buckets: a unique side skips the sort
        if self._buckets is None:
            starts, order = np.empty(self.groups + 1, dtype=_I64), np.empty(self.n, dtype=_I64)
            _lib.velaria_join_bucket(_i64(self.gids), self.n, self.groups, _i64(starts), _i64(order))
            self._buckets = starts, order
        return self._buckets

    def rows(self) -> np.ndarray | None:
        """For a unique build side, the build row of each number; None when the number is the row
        itself (numbered by row, or no NULL key: the numbers follow the rows)."""
        if self.by_row or self.valid is None or self.groups == self.n:
            return None
        return np.flatnonzero(self.valid.view(bool)).astype(_I64)

    def lookup(self, keys: np.ndarray, valid: np.ndarray | None, counts: np.ndarray | None = None) -> np.ndarray:
        """The number of each key, -1 where the build side has no such key (or it is NULL);
        ``counts`` (one per number, zeroed) gets the rows found per number."""
        out = np.empty(keys.size, dtype=_I64)
        per_group = _ffi.NULL if counts is None else _i64(counts)
        if self.lut is not None:
            _lib.velaria_join_lookup_dense(_i64(keys), _u8(valid), keys.size, self.lo, self.span, _i32(self.lut),
                                           _i64(out), per_group, self.groups, default_threads())
        else:
            bitmap = _ffi.NULL if self.bitmap is None else _u64(self.bitmap)
            _lib.velaria_join_lookup(_i64(keys), _u8(valid), keys.size, _i64(self.slots), self.bits,
                                     bitmap, self.lo, self.span, _i64(out), per_group, self.groups, default_threads())
        return out


def _contiguous(keys: np.ndarray, valid: np.ndarray | None):
    keys = np.ascontiguousarray(keys, dtype=_I64)
    return keys, None if valid is None else np.ascontiguousarray(valid, dtype=np.uint8)


def join_pairs(lkeys: np.ndarray, lvalid: np.ndarray | None, rkeys: np.ndarray, rvalid: np.ndarray | None,
               how: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(left index, left padded, right index)`` of the join, -1 as the right index of a
    padded left row (LEFT / FULL); padded right rows (RIGHT / FULL) come last with
    ``left padded`` set. None when the C module is missing."""
    if _lib is None:
        return None
    lkeys, lvalid = _contiguous(lkeys, lvalid)
    rkeys, rvalid = _contiguous(rkeys, rvalid)
    if lkeys.size < rkeys.size:
        left, right, lonely_right = _build_left(lkeys, lvalid, rkeys, rvalid, how)
    else:
        left, right, lonely_right = _build_right(lkeys, lvalid, rkeys, rvalid, how)
    left_pad = np.zeros(left.size + lonely_right.size, dtype=bool)
    if lonely_right.size:               # RIGHT / FULL: the right rows no left row matched
        left_pad[left.size:] = True
        left = np.concatenate([left, np.zeros(lonely_right.size, dtype=_I64)])
        right = np.concatenate([right, lonely_right])
    return left, left_pad, right


def key_found(lkeys: np.ndarray, lvalid: np.ndarray | None, rkeys: np.ndarray, rvalid: np.ndarray | None) -> np.ndarray:
    """Per left row: does some right row have the same (non-NULL) key? The right keys are
    numbered in a table (no buckets needed) and each left key looked up."""
    return KeyTable(rkeys, rvalid).contains(lkeys, lvalid)[0]


class KeyTable:
    """A set of int64 keys built once, then asked about many arrays of keys (the accelerated
    ``key_set``): a bitmap over the keys' range when it is at most ``BITMAP_MAX`` values (an
    exact answer from one bit per row, from cache), else the join's build table."""

    def __init__(self, keys: np.ndarray, valid: np.ndarray | None):
        keys, valid = _contiguous(keys, valid)
        present = keys if valid is None else keys[valid.view(bool)]
        self.lo = int(present.min()) if present.size else 0
        span = int(present.max()) - self.lo + 1 if present.size else 0
        self.bitmap = self._table = None
        if span <= _BuildTable.BITMAP_MAX:
            self.span = span
            self.bitmap = np.zeros((span + 63) // 64 + 1, dtype=np.uint64)
            _lib.velaria_join_bitmap(_i64(keys), _u8(valid), keys.size, self.lo, _u64(self.bitmap))
        else:
            self._table = _BuildTable(keys, valid)

    def contains(self, keys: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, int]:
        """``(mask, count)``: per key, is it in the set? (A NULL, ``valid`` 0, never is.)"""
        keys, valid = _contiguous(keys, valid)
        if self._table is not None:
            mask = self._table.lookup(keys, valid) >= 0
            return mask, int(np.count_nonzero(mask))
        out = np.empty(keys.size, dtype=np.uint8)
        kept = _lib.velaria_join_bitmap_contains(_i64(keys), _u8(valid), keys.size, self.lo, self.span,
                                                 _u64(self.bitmap), _ffi.cast("uint8_t *", out.ctypes.data),
                                                 default_threads())
        return out.view(bool), int(kept)


def _emit(matches: np.ndarray, how: str) -> np.ndarray:
    """Output slots per left row: its matches, at least one for LEFT / FULL (the padding)."""
    return np.maximum(matches, 1) if how in ("left", "full") else matches


def _probe_unique(table: _BuildTable, keys: np.ndarray, valid: np.ndarray | None, how: str):
    """``_build_right`` for a right side with distinct keys: each left row meets at most one right
    row, so one threaded C pass writes the pairs (no match counts, prefix sums or buckets)."""
    n = keys.size
    rows = table.rows()
    left, right = np.empty(n, dtype=_I64), np.empty(n, dtype=_I64)
    hit = np.zeros(table.groups, dtype=np.uint8) if how in ("right", "full") else None
    lut = table.lut is not None
    count = _lib.velaria_join_probe_unique(
        _i64(keys), _u8(valid), n, _ffi.NULL if lut else _i64(table.slots), 0 if lut else table.bits,
        _i32(table.lut) if lut else _ffi.NULL, _u64(table.bitmap) if table.bitmap is not None else _ffi.NULL,
        table.lo, table.span, _ffi.NULL if rows is None else _i64(rows), int(how in ("left", "full")),
        _i64(left), _i64(right), _ffi.NULL if hit is None else _ffi.cast("uint8_t *", hit.ctypes.data),
        default_threads())
    report("unique-build")
    lonely = np.empty(0, dtype=_I64)
    if hit is not None:                 # right rows no left row found, NULL keys included
        found = np.zeros(table.n, dtype=bool)
        found[slice(None) if rows is None else rows] = hit.view(bool)
        lonely = np.flatnonzero(~found).astype(_I64)
    return left[:count], right[:count], lonely


def _build_right(lkeys, lvalid, rkeys, rvalid, how):
    table = _BuildTable(rkeys, rvalid, rows_if_unique=True)
    if table.unique:
        return _probe_unique(table, lkeys, lvalid, how)
    gl = table.lookup(lkeys, lvalid)
    sizes = np.diff(table.starts)
    matches = np.where(gl >= 0, sizes[gl] if sizes.size else 0, 0)
    emit = _emit(matches, how)
    total = int(emit.sum())
    left, right = np.empty(total, dtype=_I64), np.empty(total, dtype=_I64)
    _lib.velaria_join_gather(_i64(gl), _i64(emit), gl.size, _i64(table.starts), _i64(table.order), _i64(left),
                             _i64(right), default_threads())
    lonely = np.empty(0, dtype=_I64)
    if how in ("right", "full"):
        hit_group = np.zeros(table.groups, dtype=bool)
        hit_group[gl[gl >= 0]] = True
        hit = table.gids >= 0
        hit[hit] = hit_group[table.gids[hit]]
        lonely = np.flatnonzero(~hit).astype(_I64)
    return left, right, lonely


def _build_left(lkeys, lvalid, rkeys, rvalid, how):
    table = _BuildTable(lkeys, lvalid)
    per_group = np.zeros(table.groups, dtype=_I64)            # right rows per left key
    gr = table.lookup(rkeys, rvalid, per_group)
    matches = np.where(table.gids >= 0, per_group[table.gids] if per_group.size else 0, 0)
    emit = _emit(matches, how)
    left = np.repeat(np.arange(matches.size, dtype=_I64), emit)
    right = np.full(left.size, -1, dtype=_I64)
    cursor = np.cumsum(emit) - emit                 # each left row's first output slot
    if _lib.velaria_join_scatter(_i64(gr), gr.size, table.groups, _i64(table.starts), _i64(table.order),
                                 _i64(cursor), _i64(right), default_threads()) < 0:
        raise MemoryError("hash join: no memory for the per-thread match counts of the scatter")
    lonely = np.flatnonzero(gr < 0).astype(_I64) if how in ("right", "full") else np.empty(0, dtype=_I64)
    return left, right, lonely
