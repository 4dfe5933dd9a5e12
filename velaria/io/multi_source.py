"""Several files read as one table (``read_csv("logs/*.csv")``, a directory of CSV files).

Each file is its own source, typed on its own; the table's schema is the files' common one.
Files must have the same column names in the same order. A column that is int64 in some
files and float64 in others is float64; a column with no value in a file (a header-only
file, empty cells) takes the type the other files give it; any other type difference is an error that names
the files and suggests ``column_types`` (silently turning numbers into text would change
them). Scans read the files one after another, in name order.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import pyarrow as pa

from ..errors import SourceFormatError
from .base import DEFAULT_BATCH_ROWS, PushedFilter, TableSource, empty_batch

__all__ = ["ConcatSource", "csv_files_source"]


def csv_files_source(path: str, **options) -> "ConcatSource":
    """The CSV files a glob or directory ``path`` names, each read with ``options`` (the
    :class:`~velaria.io.csv_source.CsvSource` keywords), as one table."""
    from .csv_source import CsvSource
    from .paths import expand_paths

    return ConcatSource(path, [CsvSource(f, **options) for f in expand_paths(path, "csv", "")])


class ConcatSource(TableSource):
    """The concatenation of ``sources`` (non-empty, same column names)."""

    def __init__(self, path: str, sources: Sequence[TableSource]):
        self.path = path
        self.sources = list(sources)
        self.kind = self.sources[0].kind
        self._schema: pa.Schema | None = None

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._schema = self._unify()
        return self._schema

    def _unify(self) -> pa.Schema:
        first = self.sources[0]
        fields = list(first.schema)
        # columns no file so far gave a value: they take the type of the first file that does
        open_ = set(_valueless_columns(first))
        for src in self.sources[1:]:
            other = src.schema
            if other.names != first.schema.names:
                raise SourceFormatError(
                    f"the files of {self.path} have different columns: {first.path} has "
                    f"{first.schema.names}, {src.path} has {other.names}; read them separately")
            valueless = _valueless_columns(src)
            for i, (mine, theirs) in enumerate(zip(fields, other)):
                if i in valueless:
                    continue
                if i in open_:
                    fields[i] = mine.with_type(theirs.type)
                    open_.discard(i)
                    continue
                if mine.type == theirs.type:
                    continue
                numeric = {mine.type, theirs.type} <= {pa.int64(), pa.float64()}
                if numeric or mine.type == pa.null() or theirs.type == pa.null():
                    wider = pa.float64() if numeric else \
                        (theirs.type if mine.type == pa.null() else mine.type)
                    fields[i] = mine.with_type(wider)
                    continue
                raise SourceFormatError(
                    f"column {mine.name!r} is {mine.type} in some files of {self.path} but "
                    f"{theirs.type} in {src.path}; pass column_types={{{mine.name!r}: "
                    f"'STRING'}} (or the type you want) to read every file the same way")
        return pa.schema(fields)

    def scan(self, columns: Sequence[str] | None = None, filters: Sequence[PushedFilter] = (),
             batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        schema = self.schema
        names = list(schema.names) if columns is None else list(columns)
        target = pa.schema([schema.field(n) for n in names])
        produced = False
        for src in self.sources:
            for batch in src.scan(columns, filters, batch_rows):
                if batch.num_rows == 0:
                    continue
                if not batch.schema.equals(target):
                    batch = batch.cast(target)
                produced = True
                yield batch
        if not produced:
            yield empty_batch(target)

    def num_rows_hint(self) -> int | None:
        hints = [src.num_rows_hint() for src in self.sources]
        return None if any(h is None for h in hints) else sum(hints)

    def describe(self, columns=None, filters=None) -> str:
        return f"path={self.path} files={len(self.sources)}"

    def supports_filter_pushdown(self) -> bool:
        return True


def _valueless_columns(source: TableSource) -> set[int]:
    """Indexes of the columns in which ``source`` holds no value (a header-only file, a column
    of empty cells): they carry no evidence of a type, so they do not vote on the common one."""
    kinds = getattr(source, "column_kinds", None)
    return set() if kinds is None else {i for i, k in enumerate(kinds()) if k == "null"}
