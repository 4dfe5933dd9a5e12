"""Built-in stream sources: Arrow batches in memory, a directory of CSV files, a push queue."""
from __future__ import annotations

import collections
import os
import threading

import pyarrow as pa

from ..errors import SourceFormatError, VelariaError
from .abi import PullContext, SourceContext, StreamSource
from .delivery import Capabilities

__all__ = ["ArrowStreamSource", "CsvDirectorySource", "QueueStreamSource", "batches_of"]


def batches_of(arrow_obj) -> list[pa.RecordBatch]:
    """Record batches of any Arrow input, keeping its batch boundaries: a Table gives its
    chunks, a RecordBatchReader (or ``__arrow_c_stream__`` exporter) one batch per batch it
    yields, a list each item's batches; a dict of lists is one batch. View layouts (polars'
    ``string_view``) become their classic layouts, as for batch frames."""
    from .. import arrow_interop
    return [arrow_interop.batch_without_views(b) for b in _raw_batches_of(arrow_obj)]


def _raw_batches_of(arrow_obj) -> list[pa.RecordBatch]:
    if isinstance(arrow_obj, pa.RecordBatch):
        return [arrow_obj]
    if isinstance(arrow_obj, pa.Table):
        return arrow_obj.to_batches() or [pa.RecordBatch.from_pylist([], schema=arrow_obj.schema)]
    if isinstance(arrow_obj, pa.RecordBatchReader):
        return list(arrow_obj)
    if isinstance(arrow_obj, (list, tuple)):
        out: list[pa.RecordBatch] = []
        for item in arrow_obj:
            out.extend(_raw_batches_of(item))
        if out and any(b.schema.names != out[0].schema.names for b in out):
            raise VelariaError("Arrow stream batches must share the same column names "
                               f"(first batch has {out[0].schema.names})")
        return out
    from .. import arrow_interop
    if hasattr(arrow_obj, "__arrow_c_stream__"):
        # called without a requested schema: some exporters take no argument
        return list(arrow_interop.stream_reader(arrow_obj))
    return _raw_batches_of(arrow_interop.to_table(arrow_obj))


def _cast_to(data, schema: pa.Schema, error):
    """``data`` (a Table or RecordBatch) with ``schema``'s types, cast when they differ; a cast
    that fails raises ``error(arrow_exception)``."""
    if data.schema.equals(schema):
        return data
    try:
        return data.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise error(exc) from exc


def _typed_nulls(known: pa.Schema | None, new: pa.Schema) -> pa.Schema:
    """``known`` with each column that is still of the null type (only NULLs seen so far)
    taking ``new``'s type for it; ``new`` when nothing is known yet."""
    if known is None:
        return new
    if not any(pa.types.is_null(f.type) for f in known) or known.names != new.names:
        return known
    return pa.schema([n if pa.types.is_null(k.type) else k for k, n in zip(known, new)])


class ArrowStreamSource(StreamSource):
    """A bounded stream over Arrow record batches held in memory. Offset: the number of
    batches pulled so far (``"2"`` after two). ``restore(offset)`` resumes after that many."""

    def __init__(self, batches: list[pa.RecordBatch]):
        super().__init__()
        self._batches = list(batches)
        self._index = 0

    def _do_open(self, context: SourceContext) -> None:
        self._index = 0

    def _do_next_batch(self, pull: PullContext):
        if self._index >= len(self._batches):
            return None
        batch = self._batches[self._index]
        self._index += 1
        return batch

    def _do_restore(self, offset: str) -> bool:
        try:
            n = int(offset)
        except ValueError:
            return False
        self._index = max(0, min(n, len(self._batches)))
        return True

    def offset(self) -> str:
        return str(self._index)

    def schema(self):
        return self._batches[0].schema if self._batches else None

    def describe(self) -> str:
        return "memory"

    def capabilities(self) -> Capabilities:
        # the batches stay in memory: a re-opened source replays them, restore() skips ahead
        return Capabilities(bounded=True, rewindable=True, checkpointable=True)


class CsvDirectorySource(StreamSource):
    """An unbounded stream over a directory of CSV files: each regular file is one batch,
    taken in sorted file-name order; a file is read once its name sorts after the last one
    read. Offset: the last file name read. The position survives re-opening (a query that
    runs ``await_termination`` again continues with the next file); a new source object, as
    in a restarted process, starts from the first file unless a checkpoint restores it.

    Files must appear atomically: write ``name.tmp`` (or any name starting with ``.``) and
    rename it into place. Names starting with ``.`` or ending in ``.tmp`` are never read, so a
    half-written file is never read half. A missing directory yields no batches (yet).
    ``columns`` (from CREATE SOURCE TABLE) and ``types`` fix the schema; a file whose header
    differs (from the declared columns, or else from the first file's) is an error naming the
    file. A file that appears with a name sorting before one already read would never be read
    (the offset is one file name); it is an error naming it, never skipped.
    """

    def __init__(self, path: str, delimiter: str = ",", columns: list[str] | None = None,
                 schema: pa.Schema | None = None):
        super().__init__()
        self.path = os.fspath(path)
        self.delimiter = delimiter
        #: the declared column names (None: the first file's header decides)
        self.columns = list(columns) if columns else None
        self._schema = schema
        self._last = ""
        #: names up to ``_last`` that were read or lie behind a restored offset
        self._done: set[str] = set()

    def _candidates(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []                  # not created yet: no batches (yet)
        except NotADirectoryError:
            raise SourceFormatError(f"stream CSV source {self.path} is a file, not a directory; the source "
                                    "reads every file that appears in a directory: pass the directory "
                                    "(read_csv reads a single file)") from None
        return [n for n in names if not n.startswith(".") and not n.endswith(".tmp")
                and os.path.isfile(os.path.join(self.path, n))]

    def _do_next_batch(self, pull: PullContext):
        for name in self._candidates():
            if name > self._last:
                batch = self.read_file(name)
                self._last = name
                self._done.add(name)
                return batch
            if name not in self._done:
                raise SourceFormatError(
                    f"stream CSV file {os.path.join(self.path, name)} appeared after {self._last} was read; "
                    "files are read once, in file-name order, so this one would never be read. Name new "
                    "files so that they sort after every file already there (a zero-padded sequence "
                    f"number or UTC timestamp prefix), or move it out of {self.path}")
        return None

    def read_file(self, name: str) -> pa.RecordBatch:
        """One file of the directory as one batch (the CSV reader's typing rules)."""
        from ..io.csv_source import CsvSource
        full = os.path.join(self.path, name)
        src = CsvSource(full, self.delimiter)
        if self.columns is not None and src.schema.names != self.columns:
            raise SourceFormatError(f"stream CSV file {full} has columns {src.schema.names}, expected "
                                    f"{self.columns}; every file in {self.path} needs the same header")
        table = pa.Table.from_batches(list(src.scan()), schema=src.schema).combine_chunks()
        if self._schema is None:
            self._schema = table.schema
        elif table.schema.names != self._schema.names:
            raise SourceFormatError(f"stream CSV file {full} has columns {table.schema.names}, the stream's "
                                    f"are {self._schema.names}; every file in {self.path} needs the same header")
        table = _cast_to(table, self._schema, lambda exc: SourceFormatError(
            f"stream CSV file {full} does not match the stream schema "
            f"{self._schema}: {exc}; fix the file or declare column types"))
        batches = table.to_batches()
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)

    def _do_restore(self, offset: str) -> bool:
        self._last = offset
        # the files up to the offset were read before the restart
        self._done.update(n for n in self._candidates() if n <= offset)
        return True

    def bounded(self) -> bool:
        return False

    def offset(self) -> str:
        return self._last

    def schema(self):
        if self._schema is None:
            names = self._candidates()
            if names:
                self._schema = self.read_file(names[0]).schema
        return self._schema

    def describe(self) -> str:
        return f"directory_csv:{self.path}"

    def capabilities(self) -> Capabilities:
        # files stay in the directory (deleting them is the user's call): a new source replays
        # them in name order, and restore() resumes after the checkpointed file name
        return Capabilities(bounded=False, rewindable=True, checkpointable=True)


class QueueStreamSource(StreamSource):
    """A queue that Python producers push batches into while a query runs (the realtime
    source). Unbounded until :meth:`close_input`; offset: the number of batches consumed.

    The first pushed batch types the columns; later batches are cast to those types (a cast
    that would lose information, such as 1.5 into an integer column, is an error). A column
    that held only NULLs so far has no type yet: the first batch with values in it types it,
    and until every column has a type, :meth:`schema` is None, so a query is planned over the
    types the data really has."""

    def __init__(self, columns: list[str]):
        super().__init__()
        self.columns = list(columns)
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closed_input = False
        self._consumed = 0
        self._schema: pa.Schema | None = None

    def push(self, batch: pa.RecordBatch) -> None:
        if batch.schema.names != self.columns:
            raise VelariaError("queue stream source schema mismatch: got columns "
                               f"{batch.schema.names}, the source was created with {self.columns}")
        with self._cond:
            if self._closed_input:
                raise VelariaError("realtime stream source is closed; create a new source to push more rows")
            self._schema = _typed_nulls(self._schema, batch.schema)
            batch = _cast_to(batch, self._schema, lambda exc: VelariaError(
                f"queue stream source schema mismatch: batch types {batch.schema} "
                f"cannot be cast to the source's {self._schema}: {exc}"))
            self._queue.append(batch)
            self._cond.notify_all()

    def close_input(self) -> None:
        with self._cond:
            self._closed_input = True
            self._cond.notify_all()

    def _do_open(self, context: SourceContext) -> None:
        pass

    def _do_next_batch(self, pull: PullContext):
        with self._cond:
            if not self._queue:
                return None
            self._consumed += 1
            return self._queue.popleft()

    def _do_restore(self, offset: str) -> bool:
        return False

    def bounded(self) -> bool:
        return self._closed_input

    def offset(self) -> str:
        return str(self._consumed)

    def schema(self):
        if self._schema is None or any(pa.types.is_null(f.type) for f in self._schema):
            return None        # not typed yet: the query is planned on its first batch
        return self._schema

    def describe(self) -> str:
        return "queue"

    def capabilities(self) -> Capabilities:
        # a pushed batch is handed over once and kept nowhere: it cannot be replayed or resumed
        return Capabilities(bounded=False)
