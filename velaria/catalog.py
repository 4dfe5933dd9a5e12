"""A Session's catalog: table and view names -> what they hold.

Each :class:`~velaria.Session` owns one catalog (native Velaria shares one per process; we
deliberately do not). Names are matched exactly first, then case-insensitively, because SQL
folds unquoted identifiers to lower case while Python callers register names as written.
"""
from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .errors import CatalogNotFoundError, VelariaError
from .io.base import TableSource
from .plan import logical as L

__all__ = ["CatalogEntry", "Catalog"]


@dataclass
class CatalogEntry:
    """A named table. ``kind`` is ``batch`` (temp view / table), ``source`` or ``sink``.

    A batch entry holds either a lazy plan (a view over a DataFrame) or a source.
    ``declared_types`` are the SQL types of a ``CREATE TABLE t (...)`` (used by INSERT).
    """

    name: str
    kind: str = "batch"
    source: TableSource | None = None
    frame: Any = None                      # a DataFrame (view) -- planned lazily
    declared_types: dict = field(default_factory=dict)
    stream: bool = False                   # a stream SOURCE / SINK (stream runtime issue)

    def plan(self) -> L.Node:
        """The plan that produces this table's rows."""
        if self.frame is not None:
            plan = self.frame._view_plan()
            if isinstance(plan, L.Scan):  # name the scan after the view, as explain shows it
                plan = L.Scan(schema=plan.schema, source=plan.source, table_name=self.name,
                              columns=plan.columns, filters=list(plan.filters))
            return plan
        src = self.source
        return L.Scan(schema=src.schema, source=src, table_name=self.name)

    @property
    def schema(self) -> pa.Schema:
        return self.plan().schema


class Catalog:
    """Name -> :class:`CatalogEntry`, safe to use from several threads at once.

    Every read and write holds one lock (re-entrant: ``lookup`` calls ``find``), so a thread
    registering a view never breaks another thread's lookup mid-iteration. Entries themselves
    are immutable once registered; a query plans against the entries it looked up.
    """

    def __init__(self):
        self._entries: dict[str, CatalogEntry] = {}
        self._lock = threading.RLock()

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def find(self, name: str) -> CatalogEntry | None:
        with self._lock:
            if name in self._entries:
                return self._entries[name]
            folded = [e for n, e in self._entries.items() if n.lower() == name.lower()]
            return folded[0] if len(folded) == 1 else None

    def lookup(self, name: str, byte_offset: int | None = None) -> CatalogEntry:
        entry = self.find(name)
        if entry is None:
            close = difflib.get_close_matches(name, self.names(), n=1)
            known = ", ".join(sorted(self.names())) or "(none)"
            hint = (f"Did you mean {close[0]}? " if close else "") + f"Tables in this session: {known}."
            raise CatalogNotFoundError(f"view not found: {name}", hint=hint, byte_offset=byte_offset)
        return entry

    def register(self, entry: CatalogEntry, replace_batch: bool = True) -> None:
        """Add ``entry``; an existing batch view of the same name is replaced, a stream one is not."""
        with self._lock:
            old = self.find(entry.name)
            if old is not None:
                if old.kind != "batch" or old.stream or not replace_batch:
                    raise VelariaError(f"table already exists: {entry.name}")
                del self._entries[old.name]
            self._entries[entry.name] = entry

    def drop(self, name: str) -> None:
        with self._lock:
            entry = self.find(name)
            if entry is not None:
                del self._entries[entry.name]
