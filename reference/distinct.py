"""Reference DISTINCT kernel (SELECT DISTINCT and UNION) and the shared hashing key.

Two rows are the same when every column is the same, where:

* NULL equals NULL (unlike ``=``, DISTINCT and GROUP BY treat NULLs as one value);
* ``-0.0`` equals ``0.0`` and every NaN equals every other NaN;
* numbers compare by value (``1 == 1.0``), but a boolean never equals a number and a string
  never equals a number (``'1'`` and ``1`` are different);
* vectors compare element by element;
* intervals compare by length with a month of 30 days, as ``=`` does (``INTERVAL '1 month'``,
  ``INTERVAL '30 days'`` and ``INTERVAL '720 hours'`` are one value; the first one seen is
  kept).

``distinct_indices`` returns the index of the first occurrence of each distinct row, in input
order, so the executor keeps the first row of every duplicate set.

``setop_indices`` computes INTERSECT / EXCEPT with the same row equality, as the left rows to
keep, in left input order (PostgreSQL's multiset rules; ``c_l`` and ``c_r`` are how often a
row occurs on the left and on the right):

* ``INTERSECT``: the first occurrence of each left row that occurs on the right;
* ``INTERSECT ALL``: the first ``min(c_l, c_r)`` occurrences;
* ``EXCEPT``: the first occurrence of each left row that does not occur on the right;
* ``EXCEPT ALL``: the first ``max(c_l - c_r, 0)`` occurrences.
"""
from __future__ import annotations

import math

import pyarrow as pa

from velaria.errors import VelariaValueError

__all__ = ["hash_key", "distinct_indices", "setop_indices", "SETOP_KINDS"]

SETOP_KINDS = ("intersect", "except")


class _NaN:
    """The one key every NaN maps to (NaN != NaN in Python, so it cannot be its own key)."""

    __slots__ = ()

    def __repr__(self):
        return "NaN"


_NAN = _NaN()
_NS_PER_DAY = 86_400 * 10**9


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
    if isinstance(value, pa.MonthDayNano):
        return ("interval", (value.months * 30 + value.days) * _NS_PER_DAY + value.nanoseconds)
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


def setop_indices(left: list[list], right: list[list], kind: str, keep_all: bool) -> list[int]:
    """Indices of the left rows that ``left INTERSECT|EXCEPT [ALL] right`` keeps, in order."""
    if kind not in SETOP_KINDS:
        raise VelariaValueError(f"set operation must be one of: {', '.join(SETOP_KINDS)} (got {kind!r})")
    if len(left) != len(right) or not left:
        raise VelariaValueError("a set operation needs the same number (>= 1) of left and right columns")
    def counts(columns) -> dict[tuple, int]:
        out: dict[tuple, int] = {}
        for row in zip(*columns):
            key = tuple(hash_key(v) for v in row)
            out[key] = out.get(key, 0) + 1
        return out
    on_left, on_right = counts(left), counts(right)
    seen: dict[tuple, int] = {}
    keep: list[int] = []
    for i, row in enumerate(zip(*left)):
        key = tuple(hash_key(v) for v in row)
        rank = seen.get(key, 0)                 # earlier occurrences of this row on the left
        seen[key] = rank + 1
        c_l, c_r = on_left[key], on_right.get(key, 0)
        if kind == "intersect":
            allowed = c_r if keep_all else min(c_r, 1)
        else:
            allowed = max(c_l - c_r, 0) if keep_all else (0 if c_r else 1)
        if rank < allowed:
            keep.append(i)
    return keep
