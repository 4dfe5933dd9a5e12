"""Custom stream helpers: turn Python rows into Arrow micro-batches, and Arrow batches into
calls of a Python callback, each flushed by row count or elapsed time (native Velaria's
``custom_stream`` module, same names, arguments and errors)."""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

__all__ = ["CustomStreamEmitOptions", "CustomArrowStreamSource", "CustomArrowStreamSink",
           "create_stream_from_custom_source", "consume_arrow_batches_with_custom_sink"]


@dataclass
class CustomStreamEmitOptions:
    """When to emit: after ``emit_rows`` rows or ``emit_interval_seconds``, whichever first."""

    emit_interval_seconds: float = 1.0
    emit_rows: int = 1024

    def validate(self) -> "CustomStreamEmitOptions":
        if not self.emit_interval_seconds > 0:
            raise ValueError("emit_interval_seconds must be > 0")
        if not self.emit_rows > 0:
            raise ValueError("emit_rows must be > 0")
        return self


def _typed_table(columns: list[list], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from Python column values. Each column is typed by its values and
    then cast, so a value the column's type cannot hold exactly (1.5 in an integer column) is a
    ``ValueError`` naming the column; Arrow's conversion straight to the type would truncate it."""
    arrays = []
    for values, field in zip(columns, schema):
        try:
            arrays.append(pa.array(values).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"column {field.name!r} cannot hold these values as {field.type}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)


class CustomArrowStreamSource:
    """Rows (dicts, or sequences with a ``schema``) -> Arrow tables of bounded size."""

    def __init__(self, schema: pa.Schema | None = None, *, emit_interval_seconds: float = 1.0,
                 emit_rows: int = 1024):
        self.schema = schema
        self.options = CustomStreamEmitOptions(emit_interval_seconds, emit_rows).validate()

    def _table(self, rows: list) -> pa.Table:
        if not rows:
            return pa.table({})
        if isinstance(rows[0], Mapping):
            if not all(isinstance(r, Mapping) for r in rows):
                raise ValueError("mixed row types are not supported")
            if self.schema is None:
                return pa.Table.from_pylist(rows)
            names = self.schema.names
            return _typed_table([[r.get(n) for r in rows] for n in names], self.schema)
        if self.schema is None:
            raise ValueError("schema is required when rows are sequence-based")
        width = len(self.schema)
        for r in rows:
            if isinstance(r, Mapping) or not isinstance(r, Sequence) or isinstance(r, (str, bytes)):
                raise ValueError("mixed row types are not supported")
            if len(r) != width:
                raise ValueError("row width does not match schema")
        return _typed_table([[r[i] for r in rows] for i in range(width)], self.schema)

    def iter_arrow_batches(self, rows):
        """Yield tables: a buffer is emitted once it holds ``emit_rows`` rows or its window
        (monotonic clock, restarted at each emit) is ``emit_interval_seconds`` old."""
        buffer: list = []
        started = time.monotonic()
        for row in rows:
            buffer.append(row)
            if len(buffer) >= self.options.emit_rows or \
                    time.monotonic() - started >= self.options.emit_interval_seconds:
                yield self._table(buffer)
                buffer = []
                started = time.monotonic()
        if buffer:
            yield self._table(buffer)

    def to_arrow_batches(self, rows) -> list[pa.Table]:
        return list(self.iter_arrow_batches(rows))

    def to_stream_dataframe(self, session, rows):
        return session.create_stream_from_arrow(self.to_arrow_batches(rows))


class CustomArrowStreamSink:
    """Collects Arrow tables and calls ``on_emit(table)`` per ``emit_rows`` rows or interval."""

    def __init__(self, on_emit, *, emit_interval_seconds: float = 1.0, emit_rows: int = 1024):
        if not callable(on_emit):
            raise ValueError("on_emit must be callable")
        self.on_emit = on_emit
        self.options = CustomStreamEmitOptions(emit_interval_seconds, emit_rows).validate()
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._started: float | None = None

    def write_batch(self, batch: pa.Table) -> None:
        if self._started is None:
            self._started = time.monotonic()
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        self._pending.append(batch)
        self._rows += batch.num_rows
        if self._rows >= self.options.emit_rows or \
                time.monotonic() - self._started >= self.options.emit_interval_seconds:
            self._emit()

    def _emit(self) -> None:
        table = pa.concat_tables(self._pending, promote_options="none")
        self._pending, self._rows, self._started = [], 0, None
        self.on_emit(table)

    def close(self) -> None:
        if self._pending:
            self._emit()


def create_stream_from_custom_source(session, rows, *, schema=None, emit_interval_seconds=1.0, emit_rows=1024):
    """``session.create_stream_from_arrow`` over the batches of a :class:`CustomArrowStreamSource`."""
    source = CustomArrowStreamSource(schema, emit_interval_seconds=emit_interval_seconds, emit_rows=emit_rows)
    return source.to_stream_dataframe(session, rows)


def consume_arrow_batches_with_custom_sink(batches, sink: CustomArrowStreamSink) -> None:
    """``sink.write_batch`` for each batch, then ``sink.close()``."""
    for b in batches:
        sink.write_batch(b)
    sink.close()
