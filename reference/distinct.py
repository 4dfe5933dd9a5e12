"""Reference DISTINCT kernel (SELECT DISTINCT and UNION) and the shared hashing key.

Two rows are the same when every column is the same, where:

* NULL equals NULL (unlike ``=``, DISTINCT and GROUP BY treat NULLs as one value);
* ``-0.0`` equals ``0.0`` and every NaN equals every other NaN;
* numbers compare by value (``1 == 1.0``), but a boolean never equals a number and a string
  never equals a number (``'1'`` and ``1`` are different);
* vectors compare element by element.

``distinct_indices`` returns the index of the first occurrence of each distinct row, in input
order, so the executor keeps the first row of every duplicate set.
"""
from __future__ import annotations

import math

__all__ = ["hash_key", "distinct_indices"]


class _NaN:
    """The one key every NaN maps to (NaN != NaN in Python, so it cannot be its own key)."""

    __slots__ = ()

    def __repr__(self):
        return "NaN"


_NAN = _NaN()


def hash_key(value):
    """A hashable key under which equal values (in the sense of the module docstring) meet.

    ``None`` stays ``None`` (one NULL group), NaN becomes a single sentinel, booleans are
    tagged so that ``True`` never meets ``1``, and vectors become tuples. ``-0.0`` needs no
    care: it already equals ``0.0`` and hashes the same.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float) and math.isnan(value):
        return _NAN
    if isinstance(value, list):
        return ("vector", tuple(hash_key(v) for v in value))
    return value


def distinct_indices(columns: list[list]) -> list[int]:
    """Return the indices of the first occurrence of each distinct row, in input order."""
    if not columns:
        return []
    seen: set = set()
    keep: list[int] = []
    for i, row in enumerate(zip(*columns)):
        key = tuple(hash_key(v) for v in row)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep
