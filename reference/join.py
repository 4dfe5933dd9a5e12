"""Reference hash equi-join: the row pairs of ``left JOIN right ON l1 = r1 AND l2 = r2 ...``.

* A hash table is built on the right keys and probed with the left keys.
* Output order: left rows in input order; for each left row its matching right rows in
  right-row order. ``how="left"`` (and ``"full"``) emits an unmatched left row once, paired
  with ``None``. ``how="right"`` (and ``"full"``) then appends every right row that matched
  no left row, in right-row order, paired with a ``None`` left index.
* ``CROSS JOIN`` is the inner join on a constant key (every pair matches); conditions other
  than key equality are a residual filter the executor applies to the matched pairs.
* A NULL in any key column never matches anything (SQL ``=``); native Velaria compares the
  text of the keys, so NULL matched NULL there.
* Keys compare by value across numeric types (``1`` matches ``1.0``; ``-0.0`` matches ``0.0``),
  NaN matches NaN, a boolean never matches a number, a string never matches a number
  (``distinct.hash_key`` equality).

Returns ``(left_indices, right_indices)`` of equal length; a right index is None only for a
padded left row (LEFT / FULL), a left index only for a padded right row (RIGHT / FULL).
"""
from __future__ import annotations

from velaria.errors import VelariaValueError

from .distinct import hash_key

__all__ = ["JOIN_KINDS", "hash_join_indices", "key_matches", "KeySet"]

JOIN_KINDS = ("inner", "left", "right", "full")


def _row_keys(key_columns: list[list], num_rows: int):
    """One hashable key per row, or None when the row has a NULL key."""
    if not key_columns:
        return [()] * num_rows
    return [None if None in row else tuple(hash_key(v) for v in row) for row in zip(*key_columns)]


def hash_join_indices(left_keys: list[list], right_keys: list[list],
                      how: str) -> tuple[list[int | None], list[int | None]]:
    """Return the matching ``(left_index, right_index)`` pairs as two lists."""
    if how not in JOIN_KINDS:
        raise VelariaValueError(f"join kind must be one of: {', '.join(JOIN_KINDS)} (got {how!r})")
    if len(left_keys) != len(right_keys) or not left_keys:
        raise VelariaValueError("a join needs the same number (>= 1) of left and right key columns")
    table: dict[tuple, list[int]] = {}
    for j, key in enumerate(_row_keys(right_keys, len(right_keys[0]))):
        if key is not None:
            table.setdefault(key, []).append(j)
    out_left: list[int | None] = []
    out_right: list[int | None] = []
    for i, key in enumerate(_row_keys(left_keys, len(left_keys[0]))):
        matches = table.get(key) if key is not None else None
        if matches:
            out_left.extend([i] * len(matches))
            out_right.extend(matches)
        elif how in ("left", "full"):
            out_left.append(i)
            out_right.append(None)
    if how in ("right", "full"):
        matched = set(out_right)
        unmatched = [j for j in range(len(right_keys[0])) if j not in matched]
        out_left.extend([None] * len(unmatched))
        out_right.extend(unmatched)
    return out_left, out_right


def key_matches(left_keys: list[list], right_keys: list[list]) -> list[bool]:
    """For each left row: does some right row have equal keys? The join's equality (a NULL
    key matches nothing); what semi, anti and mark joins need, without forming the pairs."""
    if len(left_keys) != len(right_keys) or not left_keys:
        raise VelariaValueError("key_matches needs the same number (>= 1) of left and right key columns")
    return KeySet(right_keys).contains(left_keys)


class KeySet:
    """The distinct non-NULL keys of one side of a join, kept to answer ``contains`` for many
    batches of the other side: ``KeySet(keys).contains(probe)`` equals
    ``key_matches(probe, keys)`` (the join's equality; a NULL key is in no set)."""

    def __init__(self, key_columns: list[list]):
        if not key_columns:
            raise VelariaValueError("a key set needs at least one key column")
        self.width = len(key_columns)
        self._present = {key for key in _row_keys(key_columns, len(key_columns[0])) if key is not None}

    def contains(self, key_columns: list[list]) -> list[bool]:
        """For each probe row: is its key in the set?"""
        if len(key_columns) != self.width:
            raise VelariaValueError(f"the key set has {self.width} key column(s); got {len(key_columns)} to look up")
        return [key is not None and key in self._present for key in _row_keys(key_columns, len(key_columns[0]))]
