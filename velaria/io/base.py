"""The batch source interface that every table scan goes through.

A :class:`TableSource` knows its schema up front and yields ``pyarrow.RecordBatch`` es on
demand, so a query streams a file larger than memory batch by batch. The executor asks for
only the columns the query references (projection pushdown) and hands the source the simple
conjunctive filters it found in WHERE (filter pushdown). Pushdown is an optimisation only: a
source may use the filters to skip rows that certainly fail them, and the executor still
evaluates the full WHERE on what comes back, so a source that ignores them is correct.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import pyarrow as pa

from ..errors import ColumnNotFoundError, SourceFormatError

__all__ = ["PushedFilter", "TableSource", "ArrowTableSource", "DEFAULT_BATCH_ROWS",
           "empty_batch", "resolve_columns", "check_unique_names"]

DEFAULT_BATCH_ROWS = 65536


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A zero-row batch of ``schema`` (what a scan yields when no row qualifies)."""
    return pa.RecordBatch.from_pylist([], schema=schema) if len(schema) else \
        pa.record_batch([], schema=schema)


def resolve_columns(source, names: Sequence[str], columns: Sequence[str] | None) -> list[str]:
    """The columns a scan of ``source`` (whose columns are ``names``) asked for: all of them
    for None, else ``columns``, each checked to exist (ColumnNotFoundError naming the
    source and its columns)."""
    if columns is None:
        return list(names)
    for name in columns:
        if name not in names:
            raise ColumnNotFoundError(
                f"column not found: {name} (the {source.kind} source {source.path} has columns "
                f"{', '.join(names)})")
    return list(columns)


def check_unique_names(names: Sequence[str], where: str) -> None:
    """Raise SourceFormatError for the first name of ``names`` seen twice (``where``: the
    header the names come from, as the message says it)."""
    seen = set()
    for name in names:
        if name in seen:
            raise SourceFormatError(f"duplicate column name {name!r} in {where}; "
                                    f"rename one of the columns")
        seen.add(name)


@dataclass(frozen=True)
class PushedFilter:
    """``column <op> value`` where ``column`` is a name in the source schema, ``op`` one of
    ``= != < <= > >=``, ``value`` a non-NULL Python scalar. SQL semantics: a NULL cell never
    passes."""

    column: str
    op: str
    value: Any

    def render(self) -> str:
        return f"{self.column}{self.op}{self.value!r}"


class TableSource:
    """Base class of batch sources. Subclasses set ``kind`` and implement :meth:`scan`."""

    #: ``memory`` | ``csv`` | ``line`` | ``json`` | ``excel`` (explain prints ``source=<kind>``)
    kind: str = "memory"

    @property
    def schema(self) -> pa.Schema:
        """The full Arrow schema of the source (known without reading every row)."""
        raise NotImplementedError

    def scan(self, columns: Sequence[str] | None = None, filters: Sequence[PushedFilter] = (),
             batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Yield record batches holding ``columns`` (all when None) in that order.

        ``columns=[]`` is a real request (``SELECT COUNT(*)``): the batches then have no
        columns but must still carry the source's row counts.
        """
        raise NotImplementedError

    def num_rows_hint(self) -> int | None:
        """The row count if known without scanning, else None."""
        return None

    def describe(self, columns=None, filters=None) -> str:
        """Detail for explain of a scan pushing down ``columns`` / ``filters``, e.g.
        ``path=/data/x.csv delimiter=','``."""
        return ""

    def supports_filter_pushdown(self) -> bool:
        return False


class ArrowTableSource(TableSource):
    """An in-memory ``pyarrow.Table`` (from ``create_dataframe_from_arrow``, INSERT, ...)."""

    kind = "memory"

    def __init__(self, table: pa.Table):
        self.table = table

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def scan(self, columns=None, filters=(), batch_rows=DEFAULT_BATCH_ROWS):
        table = self.table if columns is None else self.table.select(list(columns))
        if table.num_rows == 0:
            yield empty_batch(table.schema)
            return
        yield from table.to_batches(max_chunksize=batch_rows)

    def num_rows_hint(self):
        return self.table.num_rows
