"""Reference sort kernels: a stable multi-key sort and its top-N twin.

Semantics
---------
* **Order of values** (one column holds one type): numbers by value -- ``int`` and ``float``
  compare exactly as numbers, ``-0.0`` equals ``0.0``, and NaN sorts *after* every number
  (greater than ``+inf``; all NaNs are equal). Strings compare by code point (the same as
  UTF-8 byte order), ``False < True``, dates and timestamps chronologically, vectors first by
  length and then element by element.
* **NULL placement** is given per key by ``nulls_first``; the planner passes ASC -> NULLs
  last and DESC -> NULLs first unless the query says ``NULLS FIRST`` / ``NULLS LAST``.
  ``descending`` never moves NULLs: it only reverses the order of the non-NULL values.
* **Stability**: rows whose keys are all equal keep their input order (ties break by input
  position), for ``sort_indices`` and ``top_n_indices`` alike, so
  ``top_n_indices(..., n) == sort_indices(...)[:n]`` exactly.
* The result is a list of row indices (a permutation for ``sort_indices``); the executor
  gathers rows with it.

Errors: ``VelariaValueError`` when the argument lists disagree in length or no key is given.
"""
from __future__ import annotations

import heapq
import math

from velaria.errors import VelariaValueError

__all__ = ["sort_key", "sort_indices", "top_n_indices"]


def sort_key(value):
    """A key that orders non-NULL values of one column as described in the module docstring.

    Numbers map to ``(0, value)`` and NaN to ``(1,)``, so NaN is greater than every number and
    equal to every other NaN; vectors map to ``(0, length, element keys)``.
    """
    if isinstance(value, float) and math.isnan(value):
        return (1,)
    if isinstance(value, (list, tuple)):
        return (0, len(value), tuple(sort_key(v) for v in value))
    return (0, value)


class _Descending:
    """Wraps a key so that ``<`` is reversed (for DESC keys of any type, strings included)."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __eq__(self, other):
        return self.key == other.key

    def __lt__(self, other):
        return other.key < self.key


def _row_key_function(key_columns, descending, nulls_first):
    if not key_columns:
        raise VelariaValueError("sort needs at least one key column")
    if not (len(key_columns) == len(descending) == len(nulls_first)):
        raise VelariaValueError("key_columns, descending and nulls_first must have the same length")
    specs = list(zip(key_columns, descending, nulls_first))

    def row_key(i):
        parts = []
        for column, desc, nf in specs:
            value = column[i]
            if value is None:
                # NULL rank 0 sorts before rank 1; the second part is never compared with a
                # non-NULL key because the ranks differ.
                parts.append((0 if nf else 1, 0))
            else:
                k = sort_key(value)
                parts.append((1 if nf else 0, _Descending(k) if desc else k))
        return tuple(parts)

    return row_key


def _needs_sort_key(column: list) -> bool:
    """True when plain Python order is not our order (a NaN or a vector is present)."""
    return any((type(v) is float and v != v) or isinstance(v, (list, tuple)) for v in column)


def sort_indices(key_columns: list[list], descending: list[bool], nulls_first: list[bool]) -> list[int]:
    """Return the row indices in sorted order (stable; ties keep input order)."""
    _row_key_function(key_columns, descending, nulls_first)  # validates the arguments
    order = list(range(len(key_columns[0])))
    # One stable pass per key, least significant key first: after the pass for key k the rows
    # are ordered by key k, and rows equal on key k keep the order of the later keys.
    for column, desc, nf in reversed(list(zip(key_columns, descending, nulls_first))):
        nulls = [i for i in order if column[i] is None]
        rest = [i for i in order if column[i] is not None]
        if _needs_sort_key(column):
            rest.sort(key=lambda i: sort_key(column[i]), reverse=desc)  # reverse=True is stable
        else:
            rest.sort(key=column.__getitem__, reverse=desc)
        order = nulls + rest if nf else rest + nulls
    return order


def top_n_indices(key_columns: list[list], descending: list[bool], nulls_first: list[bool],
                  n: int) -> list[int]:
    """Return ``sort_indices(key_columns, descending, nulls_first)[:n]`` in O(N log n)."""
    row_key = _row_key_function(key_columns, descending, nulls_first)
    if n < 0:
        raise VelariaValueError(f"n must be >= 0, got {n}")
    # heapq.nsmallest is stable: equal keys come out in input order.
    return heapq.nsmallest(n, range(len(key_columns[0])), key=row_key)
