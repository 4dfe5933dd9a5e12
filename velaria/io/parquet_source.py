"""Parquet (and Arrow IPC) files as a streamed TableSource (``read_parquet``, ``read_arrow``,
``CREATE TABLE ... USING parquet``).

A source is one file, a glob (``data/*.parquet``, ``**`` for subdirectories) or a directory
(every ``*.parquet`` file below it, in name order). The files must share one schema. Column
types are Parquet's own (no typing pass). Scans read only the requested columns, and pushed
filters (``column op literal``) skip whole row groups whose min/max statistics rule them
out before the remaining rows are filtered exactly; both come from ``pyarrow.dataset``.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SourceFormatError
from .base import (DEFAULT_BATCH_ROWS, PushedFilter, TableSource, empty_batch,
                   resolve_columns)
from .paths import expand_paths
from .pushdown import render_pushdown, usable_filters
from .scan_filter import filtered_batches

__all__ = ["ParquetSource", "ArrowIpcSource"]

_OPS = {"=": "__eq__", "==": "__eq__", "!=": "__ne__", "<>": "__ne__", "<": "__lt__",
        "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


def _render(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {f.type}" for f in schema)


def _expression(flt: PushedFilter):
    return getattr(pc.field(flt.column), _OPS[flt.op])(pa.scalar(flt.value))


class ParquetSource(TableSource):
    """One Parquet file, a glob of them or a directory of them; see the module docstring."""

    kind = "parquet"
    #: the ``pyarrow.dataset`` format name and the file suffix a directory is searched for
    dataset_format = "parquet"
    suffix = ".parquet"

    @staticmethod
    def _read_schema(path: str) -> pa.Schema:
        import pyarrow.parquet as pq

        return pq.read_schema(path)

    def __init__(self, path: str):
        self.path = path
        self.files = expand_paths(path, self.kind, self.suffix)
        try:
            first = self._read_schema(self.files[0])
            for other_path in self.files[1:]:
                other = self._read_schema(other_path)
                if not other.equals(first):
                    raise SourceFormatError(
                        f"{self.kind} files of {path} have different schemas: {self.files[0]} has "
                        f"{_render(first)}, {other_path} has {_render(other)}; read them "
                        f"separately and combine them with UNION ALL")
            self._schema = first
            self._dataset = self._open_dataset(first)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceFormatError(
                f"cannot read {self.kind} file {path}: {exc} (is it really {self.what}?)"
            ) from None

    #: what a file of this source is, for messages
    what = "a Parquet file"

    def _open_dataset(self, schema: pa.Schema):
        import pyarrow.dataset as ds

        return ds.dataset(self.files, schema=schema, format=self.dataset_format)

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def num_rows_hint(self) -> int | None:
        if self._dataset is None:
            return None
        try:
            return self._dataset.count_rows()  # from the footers, no data read
        except (pa.ArrowInvalid, OSError):
            return None

    def _file_batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """Every batch of every file, as ``columns``, for files ``pyarrow.dataset`` cannot
        open (a subclass's); only called when :meth:`_open_dataset` returned None."""
        raise NotImplementedError

    def scan(self, columns: Sequence[str] | None = None, filters: Sequence[PushedFilter] = (),
             batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        names = resolve_columns(self, self.schema.names, columns)
        flts = usable_filters(filters, self.schema)
        # Arrow skips row groups by their min / max statistics, which leave NaN out (a group
        # holding 1.0 and NaN claims every value is 1.0), and its comparisons drop NaN where
        # the engine keeps it: a float column's filters run on the rows read instead
        late = [f for f in flts if pa.types.is_floating(self.schema.field(f.column).type)
                or self._dataset is None]
        expr = None
        for flt in flts:
            if flt not in late:
                part = _expression(flt)
                expr = part if expr is None else expr & part
        read = names + [c for c in dict.fromkeys(f.column for f in late) if c not in names]
        out_schema = pa.schema([self.schema.field(n) for n in names])
        produced = False
        try:
            if self._dataset is None:
                batches = self._file_batches(read)
            else:
                batches = self._dataset.scanner(columns=read, filter=expr,
                                                batch_size=batch_rows).to_batches()
            for batch in filtered_batches(batches, late, names, in_memory=False):
                if batch.num_rows == 0 and produced:
                    continue
                produced = True
                yield batch
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceFormatError(f"cannot read {self.kind} file {self.path}: {exc}") from None
        if not produced:
            yield empty_batch(out_schema)

    def describe(self, columns: Sequence[str] | None = None,
                 filters: Sequence[PushedFilter] | None = None) -> str:
        files = f" files={len(self.files)}" if len(self.files) > 1 else ""
        return f"path={self.path}{files} " + render_pushdown(columns, filters or ())

    def supports_filter_pushdown(self) -> bool:
        return True

    def options_key(self) -> str:
        return "files=" + ",".join(self.files)


class ArrowIpcSource(ParquetSource):
    """Arrow IPC files (Feather v2, ``.arrow``): same behaviour as :class:`ParquetSource`
    (projection; filters are applied per batch, as IPC files carry no statistics). Files in
    the IPC *stream* format (``.arrows``, no footer) are read too, batch by batch: a glob
    holding one is read without ``pyarrow.dataset``, which opens only the file format."""

    kind = "arrow"
    dataset_format = "ipc"
    suffix = ".arrow"
    what = "an Arrow IPC file or stream"

    @staticmethod
    def _read_schema(path: str) -> pa.Schema:
        import pyarrow.ipc as ipc

        with pa.OSFile(path) as source:
            if _is_ipc_stream(path):
                return ipc.open_stream(source).schema
            return ipc.open_file(source).schema

    def _open_dataset(self, schema: pa.Schema):
        self._streams = {f for f in self.files if _is_ipc_stream(f)}   # sniffed once, not per scan
        if self._streams:
            return None
        return super()._open_dataset(schema)

    def _file_batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        import pyarrow.ipc as ipc

        for path in self.files:
            with pa.OSFile(path) as source:
                if path in self._streams:
                    batches = ipc.open_stream(source)
                else:
                    reader = ipc.open_file(source)
                    batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
                for batch in batches:
                    yield batch.select(columns)


def _is_ipc_stream(path: str) -> bool:
    """True when ``path`` starts like an Arrow IPC stream (a continuation marker; the IPC
    file format starts with ``ARROW1`` instead)."""
    from .magic import sniff_format

    return sniff_format(path) == "arrow_stream"
