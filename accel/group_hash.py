"""Persistent int64 -> group id table (``accel/src/group_hash.c``) with a numpy twin.

A running aggregate meets the same group keys batch after batch. :class:`Int64GroupTable`
numbers distinct int64 keys in first-appearance order and remembers them, so each batch costs
one hash probe per row, whatever the number of groups seen so far (a value-set lookup rebuilt
per batch would cost the whole state every batch). The aggregate kernels pack several key
columns' codes into one int64 and number the packed keys here.

The C table is open addressing with linear probing, kept at most half full; the numpy twin
(used when the C module is missing) keeps the keys sorted and answers with ``searchsorted``.
Both return the same ids and new-row positions, checked by ``tests/test_group_hash.py``.
"""
from __future__ import annotations

import numpy as np

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_hash_group_ids"):       # an older build without group_hash.c
        raise ImportError("the C module has no group hash kernel")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["Int64GroupTable", "blocked_ids", "c_available", "number_packed", "number_short_strings"]

_I64 = np.int64


def c_available() -> bool:
    """True when the compiled C table is in use."""
    return _lib is not None


def _ptr(a: np.ndarray):
    """``a``'s data as ``int64_t *`` (the caller keeps ``a`` alive during the call)."""
    return _ffi.cast("int64_t *", a.ctypes.data)


class Int64GroupTable:
    """Distinct int64 keys numbered 0, 1, ... in the order they first appear."""

    def __init__(self, use_c: bool | None = None):
        self.use_c = c_available() if use_c is None else (use_c and c_available())
        self.keys = np.empty(0, dtype=_I64)          # the key of each group id, in id order
        self._bits = 0
        self._slot_keys = np.empty(1, dtype=_I64)
        self._slot_gids = np.full(1, -1, dtype=_I64)
        self._sorted = np.empty(0, dtype=_I64)       # numpy twin: keys sorted, and their ids
        self._sorted_ids = np.empty(0, dtype=_I64)

    def __len__(self) -> int:
        return int(self.keys.size)

    def ids(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(group id of each key, positions in ``keys`` of the keys that opened a group, in
        order). New keys are remembered."""
        keys = np.ascontiguousarray(keys, dtype=_I64)
        if self.use_c:
            return self._ids_c(keys)
        return self._ids_np(keys)

    # -- C ------------------------------------------------------------------------------
    def _ids_c(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = keys.size
        self._reserve(len(self) + n)
        out = np.empty(n, dtype=_I64)
        new_rows = np.empty(n, dtype=_I64)
        start = len(self)
        nxt = _lib.velaria_hash_group_ids(_ptr(keys), n, _ptr(self._slot_keys), _ptr(self._slot_gids),
                                          self._bits, start, _ptr(out), _ptr(new_rows))
        new_rows = new_rows[:nxt - start].copy()
        if new_rows.size:
            self.keys = np.concatenate([self.keys, keys[new_rows]])
        return out, new_rows

    def _reserve(self, groups: int) -> None:
        """Grow the slots so that ``groups`` keys fill at most half of them (rehashing the
        known keys in id order gives them back the same ids)."""
        if 2 * groups <= self._slot_gids.size:
            return
        bits = max(self._bits, 4)
        while (1 << bits) < 2 * groups:
            bits += 1
        self._bits = bits
        self._slot_keys = np.empty(1 << bits, dtype=_I64)
        self._slot_gids = np.full(1 << bits, -1, dtype=_I64)
        known = self.keys
        if known.size:
            # the out arrays must stay referenced while C writes them
            ids, rows = np.empty(known.size, dtype=_I64), np.empty(known.size, dtype=_I64)
            _lib.velaria_hash_group_ids(_ptr(known), known.size, _ptr(self._slot_keys), _ptr(self._slot_gids),
                                        bits, 0, _ptr(ids), _ptr(rows))

    # -- numpy twin -----------------------------------------------------------------------
    def _ids_np(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        pos = np.searchsorted(self._sorted, uniq)
        found = pos < self._sorted.size
        found[found] = self._sorted[pos[found]] == uniq[found]
        ids = np.empty(uniq.size, dtype=_I64)
        ids[found] = self._sorted_ids[pos[found]]
        new = np.flatnonzero(~found)
        new = new[np.argsort(first[new], kind="stable")]           # first-appearance order
        start = len(self)
        ids[new] = start + np.arange(new.size, dtype=_I64)
        if new.size:
            self.keys = np.concatenate([self.keys, uniq[new]])
            merged = np.concatenate([self._sorted, uniq[new]])
            merged_ids = np.concatenate([self._sorted_ids, ids[new]])
            order = np.argsort(merged, kind="stable")
            self._sorted, self._sorted_ids = merged[order], merged_ids[order]
        return ids[inverse.reshape(-1)], first[new].astype(_I64)


#: keys numbered per call of :func:`blocked_ids` (the table reserves room for a call's keys)
_BLOCK = 1 << 15


def blocked_ids(table: Int64GroupTable, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``table.ids(keys)`` a block of keys at a time. The table sizes itself for every key of
    a call being new, so numbering millions of rows with few distinct keys in one call would
    allocate (and page in) a table of millions of slots; per block it stays cache-sized."""
    n = keys.size
    if n <= _BLOCK:
        return table.ids(keys)
    from .batch_c import _pool_empty      # pooled: a fresh 8n-byte array would page-fault afresh

    keys = np.ascontiguousarray(keys, dtype=_I64)
    gids = _pool_empty(n, _I64)
    new_parts = []
    for lo in range(0, n, _BLOCK):
        g, new = table.ids(keys[lo:lo + _BLOCK])
        gids[lo:lo + g.size] = g
        if new.size:
            new_parts.append(new + lo)
    new_rows = np.concatenate(new_parts) if new_parts else np.empty(0, dtype=_I64)
    return gids, new_rows


def number_short_strings(table: Int64GroupTable, arr, values):
    """``(codes, values)`` numbering the string array ``arr`` across batches: each value of at
    most 8 bytes packed into one int64 (``pack_short_str``) and looked up in the persistent
    ``table``; ``values`` (an Arrow array or None) holds the value of each code so far, and
    the returned one has the new values appended in first-appearance order. None when ``arr``
    cannot be packed (a longer value, a NUL byte): the caller leaves this path."""
    from .select_terms import pack_short_str

    packed = pack_short_str(arr)
    if packed is None:
        return None
    return number_packed(table, arr, packed, values)


def number_packed(table: Int64GroupTable, arr, packed: np.ndarray, values):
    """``(codes, values)`` numbering ``arr`` across batches through its int64 words
    ``packed`` (one per row, equal exactly when the values are): as
    :func:`number_short_strings`, for any column that packs one-to-one (an int64 column is
    its own words)."""
    import pyarrow as pa

    from velaria.errors import ExecutionError

    codes, new_rows = blocked_ids(table, packed)
    if len(table) >= 1 << 31:
        raise ExecutionError("GROUP BY key column has more than 2**31 distinct values")
    if new_rows.size:
        added = arr.take(pa.array(new_rows, type=pa.int64()))
        values = added if values is None else pa.concat_arrays([values, added])
    return codes, values
