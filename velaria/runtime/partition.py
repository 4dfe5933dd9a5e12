"""Split a scan's source into partitions that workers read on their own.

* a glob or directory of files (``ConcatSource``, multi-file Parquet / Arrow IPC): one
  partition per file, read by the worker from where it sits;
* one Parquet file with several row groups: contiguous row-group ranges;
* an in-memory Arrow table: contiguous row chunks (shipped with the task).

Partitions are contiguous and in source order, so concatenating their outputs in partition
order gives the rows in the order one scan would (stable sorts and ties stay as embedded).
Any other source (one CSV / JSON / line file, Excel) is not split: the caller records that.
"""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from ..io.base import DEFAULT_BATCH_ROWS, ArrowTableSource, PushedFilter, TableSource
from ..io.multi_source import ConcatSource
from ..io.parquet_source import ParquetSource

__all__ = ["split_source", "ParquetRowGroupSource", "ArrowChunkSource", "ipc_stream_bytes"]


def ipc_stream_bytes(table: pa.Table) -> pa.Buffer:
    """``table`` as one Arrow IPC stream (how runtime tasks carry in-memory rows)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


class ArrowChunkSource(ArrowTableSource):
    """A row chunk of an in-memory table that pickles as an Arrow IPC stream of just its
    rows (pickling a sliced table would carry the whole parent's buffers to every task)."""

    def __getstate__(self):
        return {"ipc": ipc_stream_bytes(self.table)}

    def __setstate__(self, state):
        self.table = pa.ipc.open_stream(state["ipc"]).read_all()


class ParquetRowGroupSource(TableSource):
    """Row groups ``[first, stop)`` of one Parquet file, read where the file sits."""

    kind = "parquet"

    def __init__(self, path: str, schema: pa.Schema, first: int, stop: int):
        self.path = path
        self._schema = schema
        self.first = first
        self.stop = stop

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def scan(self, columns: Sequence[str] | None = None, filters: Sequence[PushedFilter] = (),
             batch_rows: int = DEFAULT_BATCH_ROWS):
        import pyarrow.parquet as pq

        names = list(self._schema.names) if columns is None else list(columns)
        target = pa.schema([self._schema.field(n) for n in names])
        produced = False
        # filters are not applied here: the Filter above the scan evaluates WHERE anyway
        with pq.ParquetFile(self.path) as f:
            for batch in f.iter_batches(batch_size=batch_rows, row_groups=range(self.first, self.stop),
                                        columns=names):
                if batch.num_rows:
                    produced = True
                    yield batch
        if not produced:
            yield pa.RecordBatch.from_pylist([], schema=target) if names else pa.record_batch([], schema=target)

    def describe(self, columns=None, filters=None) -> str:
        return f"path={self.path} row_groups={self.first}..{self.stop - 1}"


def _ranges(total: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, near-equal ``[start, stop)`` ranges covering ``range(total)``."""
    parts = max(1, min(parts, total))
    step, extra = divmod(total, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + step + (1 if i < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def _parquet_row_groups(source: ParquetSource, parts: int):
    import pyarrow.parquet as pq

    path = source.files[0]
    groups = pq.ParquetFile(path).metadata.num_row_groups
    if groups < 2:
        return None, f"one {source.kind} file with one row group"
    ranges = _ranges(groups, parts)
    return ([ParquetRowGroupSource(path, source.schema, a, b) for a, b in ranges],
            f"row-group ranges of {path}")


def split_source(source: TableSource, parts: int) -> tuple[list[TableSource] | None, str]:
    """``(partitions, how)`` for ``source`` aimed at ``parts`` partitions, or ``(None, why
    not)`` when the source cannot be split."""
    if isinstance(source, ConcatSource) and len(source.sources) > 1:
        return list(source.sources), f"{len(source.sources)} files of {source.path}"
    if isinstance(source, ParquetSource):
        if len(source.files) > 1:
            return [type(source)(f) for f in source.files], f"{len(source.files)} files of {source.path}"
        if source.kind == "parquet":
            return _parquet_row_groups(source, parts)
        return None, f"one {source.kind} file"
    if isinstance(source, ArrowTableSource):
        table = source.table
        if table.num_rows < 2 or parts < 2:
            return None, "in-memory table too small to split" if table.num_rows < 2 else "one worker"
        return ([ArrowChunkSource(table.slice(a, b - a)) for a, b in _ranges(table.num_rows, parts)],
                f"row chunks of an in-memory table ({table.num_rows} rows)")
    return None, f"source kind {source.kind} (one file) is read by one task"
