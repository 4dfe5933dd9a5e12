"""Built-in stream sinks: memory, console, CSV file (append), queue (the realtime sink)."""
from __future__ import annotations

import collections
import csv
import io
import os
import sys
import threading
import warnings

import pyarrow as pa

from ..errors import VelariaError
from ..render import value_text as render_value
from .abi import SinkContext, StreamSink
from .csv_tail import cut_torn_tail, first_record_length
from .delivery import Capabilities

__all__ = ["MemoryStreamSink", "ConsoleStreamSink", "CsvFileStreamSink", "QueueStreamSink"]


class MemoryStreamSink(StreamSink):
    """Keeps every batch written (``batches``) plus ``rows_written`` (non-blocking)."""

    def __init__(self):
        super().__init__()
        self.batches: list[pa.RecordBatch] = []
        self.rows_written = 0

    def _do_write(self, batch):
        self.batches.append(batch)
        self.rows_written += batch.num_rows

    def table(self, schema: pa.Schema | None = None) -> pa.Table:
        """Everything written, as one table."""
        batches = [b for b in self.batches if b.num_columns]
        if not batches:
            return pa.table({}) if schema is None else schema.empty_table()
        return pa.Table.from_batches(batches)

    def name(self) -> str:
        return "memory"

    def capabilities(self) -> Capabilities:
        return Capabilities()            # lives and dies with the process


class ConsoleStreamSink(StreamSink):
    """Prints ``[console:console] batch``, the tab-joined header and the tab-joined rows."""

    def __init__(self, out=None):
        super().__init__()
        self._out = out

    def _do_write(self, batch):
        out = self._out or sys.stdout
        lines = ["[console:console] batch", "\t".join(batch.schema.names)]
        for row in batch.to_pylist():
            lines.append("\t".join(render_value(v) for v in row.values()))
        out.write("\n".join(lines) + "\n")

    def _do_flush(self):
        (self._out or sys.stdout).flush()

    def name(self) -> str:
        return "console"

    def capabilities(self) -> Capabilities:
        # flush() hands every line to the OS before the checkpoint; a replay prints it again
        return Capabilities(checkpointable=True)


class CsvFileStreamSink(StreamSink):
    """Appends RFC 4180 CSV to ``path``.

    The header is the sink's declared ``columns`` (CREATE SINK TABLE), else the query's output
    names; it is written only when the file is missing or empty when the query opens it. A
    query's output maps to the declared columns by position, so the widths must agree. Values
    are rendered as text (NULL as an empty field) and quoted when they contain the delimiter,
    a quote or a line break. Each batch is appended with one write; ``flush`` fsyncs, so a
    checkpoint never covers rows the file has not got.

    The sink owns its file: when it opens an existing file that ends in part of a record (the
    append of a process killed mid-write), it cuts that part off first (``repaired_bytes``
    says how many bytes, and a ``RuntimeWarning`` names the file), so a restarted query never
    leaves a torn line; the rows of that batch come again from the replay. An existing file
    whose header is not this sink's (another query's output, another file) is refused, never
    appended to: the rows would land under the wrong columns.
    """

    def __init__(self, path: str, delimiter: str = ",", columns: list[str] | None = None):
        super().__init__()
        if len(delimiter) != 1:
            raise VelariaError(f"CSV sink delimiter must be one character, got {delimiter!r}")
        self.path = os.fspath(path)
        self.delimiter = delimiter
        self.columns = list(columns) if columns else None
        self._file = None
        self._needs_header = False
        self._existing_header: list[str] | None = None    # the header the file holds, if any
        self.repaired_bytes = 0

    def _do_open(self, context: SinkContext):
        parent = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(parent, exist_ok=True)
            # checked before the torn-tail repair: a file that is not this sink's stays untouched
            self._existing_header = self._read_header()
            if self.columns is not None:
                self._check_header(self.columns)
            self.repaired_bytes = cut_torn_tail(self.path)
            self._needs_header = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
            self._file = open(self.path, "ab", buffering=0)
        except OSError as exc:
            raise VelariaError(f"cannot open stream sink file: {self.path} ({exc.strerror or exc})") from exc
        if self.repaired_bytes:
            warnings.warn(f"stream sink file {self.path} ended in an incomplete record (an append cut short "
                          f"by a crash); removed its last {self.repaired_bytes} bytes before appending",
                          RuntimeWarning, stacklevel=2)

    def _read_header(self) -> list[str] | None:
        """The first record of the file, parsed as this sink writes it; None when the file is
        missing or its first MiB holds no complete record (empty, or a header torn by a crash).
        Only the head is read: the torn-tail repair reads the rest."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(1 << 20)
        except FileNotFoundError:
            return None
        end = first_record_length(head)
        if end == 0:
            return None
        text = head[:end].decode("utf-8", "replace")
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter), [])

    def _check_header(self, header: list[str]) -> None:
        """Refuse to append rows with ``header`` to a file that holds another header."""
        if self._existing_header is not None and self._existing_header != list(header):
            raise VelariaError(f"stream sink file {self.path} already holds CSV with the header "
                               f"{self._existing_header}, not this sink's columns {list(header)}; appending would "
                               "put rows under the wrong columns. Point the sink at a new file, or move the "
                               "existing one away")

    def _do_write(self, batch):
        names = batch.schema.names
        if self.columns is not None and len(names) != len(self.columns):
            raise VelariaError(f"stream sink {self.path} declares {len(self.columns)} columns "
                               f"{self.columns} but the query produces {len(names)} {names}; "
                               "INSERT maps columns by position, so select exactly the sink's columns")
        if self.columns is None and self._existing_header is not None:
            self._check_header(names)           # the header is the query's output names
            self._existing_header = None        # checked once per open
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self.delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        if self._needs_header:
            writer.writerow(self.columns or names)
            self._needs_header = False
        cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for row in zip(*cols):
            writer.writerow(["" if v is None else render_value(v) for v in row])
        data = memoryview(buf.getvalue().encode("utf-8"))
        while data:                     # one write() per batch; loop only on a short write
            data = data[self._file.write(data):]

    def _do_flush(self):
        os.fsync(self._file.fileno())        # unbuffered: every write already reached the OS

    def _do_close(self):
        if self._file is not None:
            self._file.close()
            self._file = None

    def name(self) -> str:
        return "file_append"

    def capabilities(self) -> Capabilities:
        # flush() fsyncs before the checkpoint, so a checkpoint never covers rows the file has
        # not got; a replay appends rows again (a torn last line is cut off at the next open)
        return Capabilities(checkpointable=True)


class QueueStreamSink(StreamSink):
    """Batches a running query emits, polled by Python (the realtime sink)."""

    def __init__(self):
        super().__init__()
        self._queue: collections.deque = collections.deque()
        self._mutex = threading.Lock()
        self.finished = False

    def poll(self) -> pa.Table | None:
        with self._mutex:
            if not self._queue:
                return None
            return pa.Table.from_batches([self._queue.popleft()])

    def _do_open(self, context):
        self.finished = False

    def _do_write(self, batch):
        with self._mutex:
            self._queue.append(batch)

    def _do_close(self):
        self.finished = True

    def name(self) -> str:
        return "queue"

    def capabilities(self) -> Capabilities:
        return Capabilities()            # an in-process queue: a crash loses what was not polled
