"""Group ids for pairs of small codes: a direct-indexed table while the pairs are dense.

The several-key aggregate numbers its key columns pairwise: (code of the keys so far, code of
the next key) -> the pair's id, in first-appearance order, remembered across batches. Both
codes count up from 0 (each column numbers its distinct values in order of appearance), so
while their ranges are small -- a windowed GROUP BY window, key has a few windows a batch and
at most a few thousand keys -- a pair's slot ``a * stride + b`` in a plain lookup table
numbers it with one load per row instead of a hash probe.

:class:`PairTable` keeps that table as long as it stays small, or dense (at most
``_DENSITY`` slots per pair seen), and otherwise hands its pairs, in id order, to a
persistent hash table (:class:`~accel.group_hash.Int64GroupTable` over ``a << 31 | b``), which
gives them back the same ids. Either way the ids and the rows that opened a pair are exactly
those of numbering the packed pairs in the hash table (``tests/test_pair_ids.py``).

A side may come as dictionary indices and the code of each dictionary position (a sliding
window's copies carry their key that way): the C kernel (``accel/src/pair_ids.c``) then looks
both codes up per row, with no code array built first; its numpy twin runs without the C
module and gives the same ids.
"""
from __future__ import annotations

import numpy as np

from . import batch_c
from .group_hash import Int64GroupTable, blocked_ids

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_pair_ids"):       # an older build without pair_ids.c
        raise ImportError("the C module has no pair numbering kernel")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["PairTable", "c_available"]

_I64 = np.int64


def c_available() -> bool:
    """True when the compiled pair kernel is in use."""
    return _lib is not None


def _index(x: np.ndarray) -> np.ndarray:
    """``x`` as a contiguous int32 or int64 array (other integer widths widened)."""
    if x.dtype != np.int32:
        x = x.astype(_I64, copy=False)
    return np.ascontiguousarray(x)


def _codes(idx: np.ndarray, code_of: np.ndarray | None) -> np.ndarray:
    """The int64 code of each row: ``code_of[idx]``, or the index itself."""
    return idx.astype(_I64, copy=False) if code_of is None else code_of[idx]


class PairTable:
    """Pairs ``(a, b)`` of codes in ``[0, 2**31)`` numbered 0, 1, ... in first-appearance order."""

    #: the direct table may always take this many slots (8 bytes each) ...
    _SMALL = 1 << 20
    #: ... and beyond that at most this many slots per pair seen
    _DENSITY = 4

    def __init__(self, direct: bool = True, use_c: bool | None = None):
        self.use_c = c_available() if use_c is None else (use_c and c_available())
        self._lut: np.ndarray | None = np.full(1, -1, dtype=_I64) if direct else None
        self._rows = 0                    # direct table: rows (a values) and columns (b values)
        self._stride = 0
        self._count = 0
        self._a_parts: list[np.ndarray] = []     # direct table: the pair of each id, by id
        self._b_parts: list[np.ndarray] = []
        self._hash: Int64GroupTable | None = None if direct else Int64GroupTable()

    def __len__(self) -> int:
        return self._count if self._hash is None else len(self._hash)

    @property
    def direct(self) -> bool:
        """True while pairs are numbered through the direct-indexed table."""
        return self._hash is None

    def ids(self, a: np.ndarray, b: np.ndarray, a_codes: np.ndarray | None = None,
            b_codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(id of each row's pair, positions of the rows whose pair got a new id, in order).
        Row ``i``'s pair is ``(a[i], b[i])``, or with ``a_codes`` (int64) ``(a_codes[a[i]],
        ...)``: ``a`` then holds indices into it, likewise ``b``. New pairs are remembered."""
        a, b = _index(a), _index(b)
        if self._hash is None:
            found = self._ids_c(a, a_codes, b, b_codes) if self.use_c else self._ids_np(
                _codes(a, a_codes), _codes(b, b_codes))
            if found is not None:
                return found
        return blocked_ids(self._hash, (_codes(a, a_codes) << 31) | _codes(b, b_codes))

    # -- direct table --------------------------------------------------------------------
    def _ids_c(self, a, a_codes, b, b_codes):
        """The C kernel's numbering; None once the table has left for the hash table."""
        n = a.size
        out, new_rows, bounds = np.empty(n, dtype=_I64), np.empty(n, dtype=_I64), np.zeros(4, dtype=_I64)
        a_codes = None if a_codes is None else np.ascontiguousarray(a_codes, dtype=_I64)
        b_codes = None if b_codes is None else np.ascontiguousarray(b_codes, dtype=_I64)
        for _ in range(2):                # a code outside the table: grow it once, then again
            nxt = _lib.velaria_pair_ids(
                n, _ffi.cast("void *", a.ctypes.data), int(a.dtype == np.int32), _ptr_or_null(a_codes),
                0 if a_codes is None else a_codes.size,
                _ffi.cast("void *", b.ctypes.data), int(b.dtype == np.int32), _ptr_or_null(b_codes),
                0 if b_codes is None else b_codes.size,
                self._rows, self._stride, _ptr(self._lut), self._count, _ptr(out), _ptr(new_rows), _ptr(bounds))
            if nxt == -2:                 # an index outside its codes: numpy raises the IndexError
                return self._ids_np(_codes(a, a_codes), _codes(b, b_codes))
            if nxt >= 0:
                new_rows = new_rows[:nxt - self._count].copy()
                self._remember(_codes(a[new_rows], a_codes), _codes(b[new_rows], b_codes), int(nxt))
                return out, new_rows
            lo_a, hi_a, lo_b, hi_b = bounds.tolist()
            if min(lo_a, lo_b) < 0 or not self._fit(hi_a, hi_b):
                self._to_hash()
                return None
        raise AssertionError("the pair table did not cover the codes it was grown for")  # pragma: no cover

    def _ids_np(self, a: np.ndarray, b: np.ndarray):
        """The numpy twin of the C kernel (int64 codes); None once the table has left."""
        if a.size and (min(int(a.min()), int(b.min())) < 0 or not self._fit(int(a.max()), int(b.max()))):
            self._to_hash()               # a negative code has no slot (codes never are; be safe)
            return None
        flat = a * self._stride
        flat += b
        gids, new_rows, nxt = batch_c._dense_group_ids_np(flat, None, 0, self._lut, self._lut.size - 1,
                                                          self._count)
        self._remember(a[new_rows], b[new_rows], nxt)
        return gids, new_rows

    def _remember(self, a: np.ndarray, b: np.ndarray, count: int) -> None:
        if a.size:
            self._a_parts.append(a)
            self._b_parts.append(b)
        self._count = count

    def _fit(self, a_max: int, b_max: int) -> bool:
        """Make the direct table cover ``a <= a_max`` and ``b <= b_max``; False when it would
        grow past its bound (then the caller leaves for the hash table)."""
        if a_max < self._rows and b_max < self._stride:
            return True
        stride = self._stride
        while stride <= b_max:
            stride = max(16, 2 * stride)
        rows = max(self._rows, 16)
        while rows <= a_max:
            rows *= 2
        slots = rows * stride
        if slots > max(self._SMALL, self._DENSITY * self._count):
            return False
        lut = np.full(slots + 1, -1, dtype=_I64)           # one spare slot: dense_group_ids' NULL slot
        if self._count:
            a, b = self._pairs()
            lut[a * stride + b] = np.arange(self._count, dtype=_I64)
        self._lut, self._rows, self._stride = lut, rows, stride
        return True

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The pair of every id, in id order."""
        if len(self._a_parts) > 1:
            self._a_parts = [np.concatenate(self._a_parts)]
            self._b_parts = [np.concatenate(self._b_parts)]
        return self._a_parts[0], self._b_parts[0]

    def _to_hash(self) -> None:
        """Number the pairs seen so far in a hash table, in id order (same ids), and use it
        from now on."""
        table = Int64GroupTable()
        if self._count:
            a, b = self._pairs()
            gids, _ = blocked_ids(table, (a << 31) | b)
            if not np.array_equal(gids, np.arange(self._count)):       # pragma: no cover - invariant
                raise AssertionError("pair ids changed while leaving the direct table")
        self._hash, self._lut = table, None
        self._a_parts = self._b_parts = []


def _ptr(a: np.ndarray):
    return _ffi.cast("int64_t *", a.ctypes.data)


def _ptr_or_null(a: np.ndarray | None):
    return _ffi.NULL if a is None else _ptr(a)
