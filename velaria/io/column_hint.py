"""The column names the statement being planned refers to, for file sources typed meanwhile.

A CSV file's types are decided by a walk over the whole file, and the same walk can convert
the columns a scan will read at little extra cost (see :mod:`velaria.io.csv_scan_typing`).
A scan knows its columns, but a SQL query over a table registered with ``CREATE TABLE ...
USING csv`` types the file earlier, while the query is planned and before any scan exists.
:func:`planning` records, for the planning of one statement, the names the statement
mentions as column references; a source typed during that time converts those of its
columns in the typing walk, and the query's scan then finds them already converted instead
of walking the file a second time.

The names are a hint, never a contract: a name that is no column of the file is ignored, a
column the scan reads that was not named is converted by the scan as before, and a named
column the scan does not read only costs its conversion. The hint is per thread of
execution (a :class:`contextvars.ContextVar`), so concurrent statements do not see each
other's names.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable, Iterator

__all__ = ["planning", "current"]

_NAMES: ContextVar[frozenset[str] | None] = ContextVar("velaria_planned_columns", default=None)


@contextmanager
def planning(names: Iterable[str]) -> Iterator[None]:
    """While the block runs, :func:`current` is ``names`` (an empty set: no hint)."""
    token = _NAMES.set(frozenset(names) or None)
    try:
        yield
    finally:
        _NAMES.reset(token)


def current() -> frozenset[str] | None:
    """The column names of the statement being planned in this context, or None."""
    return _NAMES.get()
