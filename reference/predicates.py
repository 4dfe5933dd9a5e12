"""Three-valued (Kleene) logic and row selection.

A predicate value is ``True``, ``False`` or ``None`` (SQL NULL, "unknown").

=========  =========  =========  =========  =========
a          b          a AND b    a OR b     NOT a
=========  =========  =========  =========  =========
True       True       True       True       False
True       NULL       NULL       True       False
False      NULL       False      NULL       True
NULL       NULL       NULL       NULL       NULL
False      False      False      False      True
=========  =========  =========  =========  =========

(``AND`` and ``OR`` are symmetric.) ``WHERE``, ``HAVING``, join conditions and ``CASE WHEN``
keep a row only when the predicate is exactly ``True``: NULL behaves like ``False`` there --
see :func:`selection`.
"""
from __future__ import annotations

__all__ = ["and3", "or3", "not3", "and_columns", "or_columns", "not_column", "selection"]


def and3(a: bool | None, b: bool | None) -> bool | None:
    """Kleene AND: False wins over NULL, NULL wins over True."""
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def or3(a: bool | None, b: bool | None) -> bool | None:
    """Kleene OR: True wins over NULL, NULL wins over False."""
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def not3(a: bool | None) -> bool | None:
    """Kleene NOT: NOT NULL is NULL."""
    return None if a is None else not a


def and_columns(left: list, right: list) -> list:
    """Element-wise :func:`and3` of two predicate columns."""
    return [and3(a, b) for a, b in zip(left, right)]


def or_columns(left: list, right: list) -> list:
    """Element-wise :func:`or3` of two predicate columns."""
    return [or3(a, b) for a, b in zip(left, right)]


def not_column(column: list) -> list:
    """Element-wise :func:`not3` of a predicate column."""
    return [None if a is None else not a for a in column]


def selection(mask: list) -> list[int]:
    """The row indices where ``mask`` is exactly ``True`` (NULL and False drop the row)."""
    return [i for i, keep in enumerate(mask) if keep is True]
