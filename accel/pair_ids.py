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
"""
from __future__ import annotations

import numpy as np

from . import batch_c
from .group_hash import Int64GroupTable, blocked_ids

__all__ = ["PairTable"]

_I64 = np.int64


class PairTable:
    """Pairs ``(a, b)`` of codes in ``[0, 2**31)`` numbered 0, 1, ... in first-appearance order."""

    #: the direct table may always take this many slots (8 bytes each) ...
    _SMALL = 1 << 20
    #: ... and beyond that at most this many slots per pair seen
    _DENSITY = 4

    def __init__(self, direct: bool = True):
        self._lut: np.ndarray | None = np.full(0, -1, dtype=_I64) if direct else None
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

    def ids(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(id of each pair ``(a[i], b[i])``, positions of the pairs that got a new id, in
        order). New pairs are remembered."""
        if self._hash is None and a.size and (min(int(a.min()), int(b.min())) < 0
                                              or not self._fit(int(a.max()), int(b.max()))):
            self._to_hash()             # a negative code has no slot (codes never are; be safe)
        if self._hash is not None:
            return blocked_ids(self._hash, (a << 31) | b)
        flat = a * self._stride
        flat += b
        gids, new_rows, nxt = batch_c.dense_group_ids(flat, None, 0, self._lut, self._lut.size - 1, self._count)
        if new_rows.size:
            self._a_parts.append(a[new_rows])
            self._b_parts.append(b[new_rows])
            self._count = nxt
        return gids, new_rows

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
