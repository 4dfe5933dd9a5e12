"""CSV files as a streamed, typed :class:`~velaria.io.base.TableSource`.

The typing pass (:mod:`velaria.io.typing_rules`) is one C walk over the raw bytes when the
file has no quote after its header (:mod:`.csv_scan_typing`); when a scan asked for it, the
same walk converts the columns that scan reads (kept within the parsed-file budget, so the
scan does not read the file again). Otherwise pyarrow reads every column as text and each is
typed per column. Scans convert the requested columns of each quote-free chunk straight into
their final types with the C converter (:mod:`.csv_convert`); a chunk it declines is parsed
by pyarrow's multi-threaded reader (cut down to the read columns by the C scanner first,
:mod:`.csv_projection`), and from the first quote on pyarrow's streaming reader takes the
rest of the file (RFC 4180 quoting, quoted newlines, CRLF, UTF-8 BOM).

Rows whose field count differs from the header are an error naming the line
(``on_bad_lines="error"``, the default) or are skipped and counted (``on_bad_lines="skip"``;
the count is in ``source.stats["skipped_bad_lines"]``, explain, and a RuntimeWarning). A
quoted field that is never closed is an error naming its line (:mod:`.csv_quotes`).

Options: ``header=False`` (columns ``c0..cN`` or ``column_names``), ``null_values`` (the
texts that mean NULL), ``column_types`` (skip typing for some columns), ``compression``
(gzip / zstd / bzip2, inferred from the magic bytes by default; the file is decompressed
once to a private temporary file, see :mod:`.compression`).
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
import threading
import warnings
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import SourceFormatError, VelariaValueError
from .csv_convert import ChunkConverter
from .csv_projection import ChunkProjector
from .csv_quotes import check_quotes_terminated
from .csv_scan_typing import scan_column_kinds
from .read_ahead import read_ahead
from . import column_hint, parsed_cache, progress
from .base import check_unique_names
from .compression import decompressed_copy, resolve_compression
from .paths import (check_readable_file, find_invalid_utf8, locate_offset, raise_invalid_utf8,
                    reject_binary)
from .typed_source import TypedFileSource, retain_limit
from .typing_rules import (arrow_type, check_infer_dates, classify_convert_text, classify_text, convert_text,
                           forced_kinds)

__all__ = ["CsvSource", "read_csv_header", "ON_BAD_LINES"]

ON_BAD_LINES = ("error", "skip")
_BLOCK_SIZE = 8 << 20
_CHUNK_BYTES = 8 << 20
_RAGGED_RE = re.compile(r"Expected (\d+) columns, got (\d+)")


_POOL: list = []
_POOL_LOCK = threading.Lock()


def _classify_pool():
    with _POOL_LOCK:
        if not _POOL:
            from concurrent.futures import ThreadPoolExecutor
            _POOL.append(ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1),
                                            thread_name_prefix="velaria-csv-typing"))
        return _POOL[0]


def _csv_dialect(delimiter: str):
    class _D(csv.Dialect):
        pass
    _D.delimiter = delimiter
    _D.quotechar = '"'
    _D.doublequote = True
    _D.skipinitialspace = False
    _D.lineterminator = "\n"
    _D.quoting = csv.QUOTE_MINIMAL
    _D.strict = False
    return _D


_HEADER_LIMIT = 16 << 20


def _first_record(path: str, delimiter: str) -> list[str] | None:
    """The first non-blank record of the file, reading only a prefix that grows until the
    record is complete (a file that is one huge line is not read whole)."""
    size = 1 << 16
    while True:
        with open(path, "rb") as handle:
            data = handle.read(size)
            at_end = len(data) < size or not handle.read(1)
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=at_end)
        buf = io.StringIO(text, newline="")
        header = None
        for record in csv.reader(buf, dialect=_csv_dialect(delimiter)):
            if record:
                header = record
                break
        if header is None and at_end:
            return None
        if at_end or (header is not None and buf.tell() < len(text)):
            return header
        if size >= _HEADER_LIMIT:
            raise SourceFormatError(
                f"the header of csv file {path} is longer than {_HEADER_LIMIT >> 20} MiB; "
                f"is it really a csv file with a header row? (pass delimiter= if the columns "
                f"are not comma-separated)")
        size *= 4


def read_csv_header(path: str, delimiter: str = ",", shown_path: str | None = None
                    ) -> list[str]:
    """The header cells of a CSV file (first non-blank record, unquoted, not trimmed).
    Raises SourceFormatError for an empty file, invalid UTF-8 or duplicate names.
    ``shown_path`` is the name messages use (the compressed file of a decompressed copy)."""
    if shown_path is not None and shown_path != path:
        try:
            return read_csv_header(path, delimiter)
        except SourceFormatError as exc:
            raise SourceFormatError(str(exc).replace(path, shown_path)) from None
    try:
        header = _first_record(path, delimiter)
    except UnicodeDecodeError:
        raise_invalid_utf8(path, "csv file")
    except csv.Error as exc:
        raise SourceFormatError(f"cannot parse the header of csv file {path}: {exc}") from None
    if header is None:
        raise SourceFormatError(
            f"csv file is empty: {path} (a csv file needs a header row naming its columns)")
    check_unique_names(header, f"the header of csv file {path}")
    return header


def _check_null_values(values) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple, set, frozenset)) or \
            not all(isinstance(v, str) for v in values):
        raise TypeError("null_values must be a string or a list of strings, not "
                        f"{type(values).__name__}")
    return list(values)


def _column_names(data_path: str, path: str, delimiter: str, header: bool,
                  column_names) -> list[str]:
    """The header's names, or ``column_names``, or for a file without a header ``c0..cN``
    (one per field of the first record)."""
    if column_names is not None:
        if isinstance(column_names, str) or not all(isinstance(c, str) for c in column_names):
            raise TypeError("column_names must be a list of strings")
        names = list(column_names)
        if len(set(names)) != len(names):
            raise VelariaValueError(f"column_names has duplicate names: {names}")
        if header:
            found = read_csv_header(data_path, delimiter, path)
            if len(found) != len(names):
                raise VelariaValueError(
                    f"column_names has {len(names)} name(s) but the header of csv file {path} "
                    f"has {len(found)}: {found}")
        return names
    if header:
        return read_csv_header(data_path, delimiter, path)
    first = _first_record(data_path, delimiter)
    if first is None:
        raise SourceFormatError(f"csv file is empty: {path}")
    return [f"c{i}" for i in range(len(first))]


def _locate_ragged_row(path: str, delimiter: str, expected: int, header: bool = True
                       ) -> tuple[int, int, str] | None:
    """(line, field count, text) of the first record whose field count is not ``expected``."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, dialect=_csv_dialect(delimiter))
        seen_header = not header
        prev_line = 0
        for record in reader:
            start_line = prev_line + 1
            prev_line = reader.line_num
            if not record:
                continue
            if not seen_header:
                seen_header = True
                continue
            if len(record) != expected:
                return start_line, len(record), delimiter.join(record)
    return None


def _locate_long_line(path: str, limit: int) -> tuple[int, int] | None:
    """(line number, byte length) of the first line of ``path`` longer than ``limit`` bytes,
    read in 1 MiB pieces (the long line itself is never held)."""
    line, length = 1, 0
    with open(path, "rb") as handle:
        while piece := handle.read(1 << 20):
            start = 0
            while (nl := piece.find(b"\n", start)) >= 0:
                length += nl - start
                if length > limit:
                    return line, length
                line, length, start = line + 1, 0, nl + 1
            length += len(piece) - start
            if length > limit:
                while (more := handle.read(1 << 20)) and (nl := more.find(b"\n")) < 0:
                    length += len(more)
                return line, length + (nl if more else 0)
    return None


#: batch kind of a column a scan kept (parsed straight into the column's final type)
_PARSED = "parsed"
#: name of the empty last field of each row the C typing scan cut out (no header has it: a
#: NUL never reaches a header, binary files are refused)
_PAD = "\x00pad"


#: batch kind of a column the typing walk did not convert (or not into its final type)
_UNCONVERTED = "unconverted"


def _final_parts(parts: list, convert: list[int], kinds: list[str], ncols: int) -> list:
    """The typing walk's converted parts as kept batches (see TypedFileSource's retention):
    a column's part is kept when it was converted into the column's final type (or is
    exactly convertible to it: NULLs, dates to timestamps); else it is ``_UNCONVERTED`` and
    the scan parses the column again."""
    batches = []
    for rows, columns in parts:
        batch = [(_UNCONVERTED, None)] * ncols
        for col, (kind, array) in zip(convert, columns):
            final = kinds[col]
            if kind == "null":
                batch[col] = (_PARSED, pa.nulls(rows, arrow_type(final)))
            elif kind == final:
                batch[col] = (_PARSED, array)
            elif (kind, final) == ("date", "timestamp"):
                batch[col] = (_PARSED, array.cast(arrow_type(final)))
        batches.append(batch)
    return batches


def _data_bom_kept(data, file_start: bool):
    """``data`` (CSV bytes for pyarrow) as pyarrow should read it: pyarrow drops a UTF-8 BOM at
    the start of its input, which is right only at the start of the file; a chunk that starts
    with U+FEFF as data gets an empty line first (pyarrow skips it) so the character stays."""
    if file_start or not bytes(data[:3]) == b"\xef\xbb\xbf":
        return data
    return b"\n" + bytes(data)


class _ScanKeeper:
    """Keeps what a scan parsed, so a re-read scans memory instead of parsing the file again.

    The C typing pass keeps nothing (it builds no columns), so the first scan that parses the
    file keeps its batches (only the columns it read, already typed) in the source and the
    process-wide parsed-file cache, within the same limits as the Arrow typing pass's
    retention. Only a scan that ran to the end is kept, and only when it read columns the
    kept data lacks."""

    def __init__(self, source: "CsvSource", cols: list[int], kinds: list[str],
                 whole: bool = True):
        self.source, self.cols = source, cols
        have = source._retained_cols if source._retained is not None else set()
        # a scan of part of the file (after the typing walk's converted first part) keeps
        # nothing: the whole file did not fit
        self.batches: list | None = (None if set(cols) <= have or not whole
                                     or not source.keep_parsed else [])
        self.limit = min(retain_limit(False), parsed_cache.budget_bytes())
        self.bytes = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if self.batches is None:
            return
        self.bytes += batch.nbytes
        if self.bytes > self.limit:
            self.batches = None
            return
        row = [("null", None)] * len(self.source.names)
        for col, array in zip(self.cols, batch.columns):
            row[col] = (_PARSED, array)
        self.batches.append(row)

    def finish(self) -> None:
        source = self.source
        if self.batches is None or source._typed_fp is None or source._kinds is None:
            return
        source._retained, source._retained_cols = self.batches, set(self.cols)
        parsed_cache.store(source._cache_key(source._typed_fp), source._kinds, self.batches,
                           set(self.cols))


class CsvSource(TypedFileSource):
    """A CSV file with a header row; see the module docstring."""

    kind = "csv"
    dialect = "csv"

    def __init__(self, path: str, delimiter: str = ",", on_bad_lines: str = "error", *,
                 header: bool = True, column_names: Sequence[str] | None = None,
                 null_values: Sequence[str] | None = None, column_types: dict | None = None,
                 compression: str | None = "infer", infer_dates: bool = True):
        if on_bad_lines not in ON_BAD_LINES:
            raise VelariaValueError(
                f"on_bad_lines must be one of: {', '.join(ON_BAD_LINES)} (got {on_bad_lines!r})")
        check_readable_file(path, "cannot open csv file", allow_empty=True)
        self.delimiter = delimiter
        self.on_bad_lines = on_bad_lines
        self.header = bool(header)
        #: ISO date / timestamp columns become date32 / timestamp[us] (False: text, as native)
        self.infer_dates = check_infer_dates(infer_dates)
        self.null_values = [""] if null_values is None else _check_null_values(null_values)
        self.compression = resolve_compression(path, compression)
        if self.compression is None:
            reject_binary(path, "csv file")
        #: the file that is parsed: ``path`` itself, or its decompressed copy
        self.data_path = path if self.compression is None else \
            decompressed_copy(self, path, self.compression, "csv file")
        names = _column_names(self.data_path, path, delimiter, self.header, column_names)
        self.forced_kinds = forced_kinds(column_types, names, path)
        #: chunks each parser read since this source was made: ``c`` (the C converter wrote
        #: the read columns' Arrow buffers) or ``pyarrow``
        self.chunk_parsers = {"c": 0, "pyarrow": 0}
        #: ``(batches, columns, until)``: the typing walk's converted columns of the file's
        #: lines before byte ``until`` (a file too big for the budget), or None
        self._prefix: tuple | None = None
        super().__init__(path, names)

    # ---- hooks -------------------------------------------------------------------------
    def options_key(self) -> str:
        return (f"delimiter={self.delimiter!r};on_bad_lines={self.on_bad_lines};"
                f"header={self.header};names={self.names!r};nulls={self.null_values!r};"
                f"types={sorted(self.forced_kinds.items())!r};compression={self.compression};"
                f"dates={self.infer_dates}")

    def _describe_options(self) -> str:
        text = f"delimiter={self.delimiter!r}"
        if not self.header:
            text += " header=false"
        if self.compression:
            text += f" compression={self.compression}"
        if self.on_bad_lines == "skip":
            text += f" on_bad_lines=skip skipped_bad_lines={self._stats.get('skipped_bad_lines', 0)}"
        return text

    def _classify(self, raw) -> str:
        return classify_text(raw, "csv", self.infer_dates)

    def _convert(self, raw, kind: str) -> pa.Array:
        return convert_text(raw, kind, "csv")

    def _check_typing_stats(self, stats: dict) -> None:
        skipped = stats.get("skipped_bad_lines", 0)
        if skipped and not stats.get("warned"):
            stats["warned"] = True
            warnings.warn(f"skipped {skipped} bad line(s) of csv file {self.path} "
                          f"(field count differs from the header)", RuntimeWarning, stacklevel=4)

    def _typing_pass(self, fp):
        """One C scan over the raw bytes when it can type the file by itself (no text
        columns are built, nothing is kept: the first scan parses only the columns it
        needs, straight into their types); else the Arrow pass of every column as text."""
        start = ["string" if i in self.forced_kinds else "null" for i in range(len(self.names))]
        hint, self._typing_hint = self._typing_hint, None
        if hint is None:  # typed while a query is planned: the columns that query names
            hint = [name for name in column_hint.current() or () if name in self.names]
        index = {name: i for i, name in enumerate(self.names)}
        # the columns the scan will read are converted by the same walk (given types are
        # left to the scan, whose conversion errors name the value)
        # a source that keeps no parsed copy (materialised) converts nothing here
        budget = (min(retain_limit(False), parsed_cache.budget_bytes())
                  if self.keep_parsed else 0)
        convert = sorted({index[n] for n in hint or () if index[n] not in self.forced_kinds}
                         if budget > 0 else ())
        scanned = scan_column_kinds(self, start, convert, budget)
        if scanned is None:
            kinds, stats, retain = super()._typing_pass(fp)
            stats["typing_path"] = "arrow"
            return kinds, stats, retain
        kinds, rows, parts, until = scanned
        stats = {"rows": rows, "skipped_bad_lines": 0, "typing_path": "scan"}
        if not parts:
            return kinds, stats, None
        batches = _final_parts(parts, convert, kinds, len(self.names))
        if until is None:       # the whole file: kept as a typing pass keeps batches
            return kinds, stats, batches
        # the first part of the file: this source's scans read it from memory, then the
        # rest of the file from byte ``until`` on
        cols = {c for c in convert if all(batch[c][0] == _PARSED for batch in batches)}
        self._prefix = (batches, cols, until) if cols else None
        if cols:   # and for later readers of the unchanged file
            parsed_cache.store_prefix(self._cache_key(fp), kinds, batches, cols, until)
        return kinds, stats, None

    # ---- retention: keep what classification converted ---------------------------------
    def _classify_keep(self, raw, current: str):
        if current == "string":
            return "string", raw
        return classify_convert_text(raw, "csv", self.infer_dates)

    def _classify_batch(self, raws, kinds):
        # pyarrow compute releases the GIL: classify big batches' columns in parallel
        todo = [i for i, kind in enumerate(kinds) if kind != "string"]
        if len(todo) < 2 or len(raws[0]) < 100_000:
            return super()._classify_batch(raws, kinds)
        results = _classify_pool().map(lambda i: self._classify_keep(raws[i], kinds[i]), todo)
        out = [("string", raw) for raw in raws]
        for i, result in zip(todo, results):
            out[i] = result
        return out

    def _kept_usable(self, batch_kind: str, final_kind: str) -> bool:
        # int/float/bool batches were kept converted (their text is gone): usable only for
        # the same kind, or int -> float; every other batch was kept as text.
        if batch_kind in ("int", "float", "bool"):
            return batch_kind == final_kind or (batch_kind, final_kind) == ("int", "float")
        return batch_kind != _UNCONVERTED

    def _from_kept(self, kept, batch_kind: str, final_kind: str):
        if batch_kind == _PARSED:  # kept by a scan: already of the final type
            return kept
        if batch_kind == final_kind and batch_kind in ("int", "float", "bool"):
            return kept
        if batch_kind == "int":  # final float: int64 -> float64 rounds as parsing the text does
            return pc.cast(kept, pa.float64(), safe=False)
        return convert_text(kept, final_kind, "csv")

    # ---- pyarrow reading ---------------------------------------------------------------
    def _options(self, names: Sequence[str], types: dict, counter: list | None):
        lock = threading.Lock()

        def on_bad_row(row):
            if self.on_bad_lines == "error":
                return "error"
            if counter is not None:
                with lock:
                    counter[0] += 1
            return "skip"

        parse = pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                   invalid_row_handler=on_bad_row)
        convert = pacsv.ConvertOptions(
            column_types=types, include_columns=list(names), null_values=self.null_values,
            strings_can_be_null=True, quoted_strings_can_be_null=True,
            true_values=["true", "TRUE"], false_values=["false", "FALSE"])
        return parse, convert

    def _raise_shrank(self, size: int, at: int):
        raise SourceFormatError(
            f"csv file {self.path} shrank while it was being read (it had {size} bytes, now "
            f"ends at byte {at}); read it again once it is no longer being rewritten")

    def _stream_tables(self, parse, convert, offset: int, size: int | None = None
                       ) -> Iterator[pa.Table]:
        """pyarrow's streaming reader from byte ``offset`` (a record boundary; 0 = the header).
        ``size``: the file's size when the read began (a smaller file is an error)."""
        opts = pacsv.ReadOptions(block_size=_BLOCK_SIZE, use_threads=True)
        if offset or not self.header:
            opts.column_names = self.names
        stream = pa.OSFile(self.data_path, "rb")
        try:
            if size is not None and stream.size() < size:
                self._raise_shrank(size, stream.size())
            # from a record boundary past the file's start, begin at the newline that ends the
            # previous record: pyarrow skips that empty line, and drops a UTF-8 BOM only at
            # the start of its input, so a data line starting with U+FEFF keeps it
            stream.seek(offset - 1 if offset else 0)
            position = offset
            for batch in pacsv.open_csv(stream, read_options=opts, parse_options=parse,
                                        convert_options=convert):
                progress.advance(stream.tell() - position)
                position = stream.tell()
                yield pa.Table.from_batches([batch])
        finally:
            stream.close()
        if size is not None and os.path.getsize(self.data_path) < size:
            self._raise_shrank(size, os.path.getsize(self.data_path))
        # pyarrow reads an unterminated quoted field to the end of the file as one value
        check_quotes_terminated(self.data_path, offset, self.delimiter, self.path)

    def _chunk_tables(self, parse, convert, start: int = 0) -> Iterator[pa.Table]:
        """The file as tables of ~_CHUNK_BYTES each, each parsed by pyarrow's multi-threaded
        reader. Chunks end at a newline, which is a record boundary only outside quotes: so
        chunking is used while no quote character follows the header line; from the first
        chunk holding one, the rest of the file goes through the streaming reader (which
        tracks quoting). Memory stays bounded by the chunk size. When the scan reads fewer
        columns than the file has, the C scanner first cuts them out of each quote-free
        chunk and pyarrow parses that (:mod:`.csv_projection`).

        Chunks are read, not memory-mapped: a file truncated while it is scanned (log
        rotation) would kill the process with SIGBUS through a mapping; read() just returns
        less, which becomes a clear error."""
        cores = os.cpu_count() or 1
        block = max(1 << 20, _CHUNK_BYTES // cores)
        converter = ChunkConverter.for_scan(self.names, convert.include_columns,
                                            convert.column_types, self.delimiter,
                                            self.null_values)
        projector = ChunkProjector.for_scan(self.names, convert.include_columns, self.delimiter)
        # a chunk holds no quote character, so no value holds a newline: pyarrow may then
        # split blocks at any newline (much faster than tracking quotes)
        plain = pacsv.ParseOptions(delimiter=parse.delimiter, newlines_in_values=False,
                                   invalid_row_handler=parse.invalid_row_handler)
        with open(self.data_path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            # one buffer for every chunk: pyarrow copies what it parses out of its input
            # (tests/test_io_csv_scan_typing.py checks), so a yielded table never refers to
            # it, and the file's pages are not faulted into fresh memory chunk after chunk
            buf = bytearray(min(_CHUNK_BYTES, size))
            view = memoryview(buf)
            body = pa.py_buffer(buf)
            offset = start  # file offset of the first byte of ``pending``
            handle.seek(start)
            pending = b""
            while True:
                # read exactly what the file still holds up to the chunk size: a short read
                # (even a partial one) means it shrank
                want = max(0, min(_CHUNK_BYTES - len(pending), size - offset - len(pending)))
                # the chunk is read straight after the carried-over partial line
                n = len(pending) + want
                buf[:len(pending)] = pending
                got = handle.readinto(view[len(pending):n]) if want else 0
                if got < want:
                    self._raise_shrank(size, offset + len(pending) + got)
                if not n:
                    return
                at_end = offset + n >= size
                skip = 0
                if offset == 0 and self.header:  # quotes in the header line are fine
                    first = 0
                    while first < n and buf[first] in b"\xef\xbb\xbf\r\n":
                        first += 1
                    line_end = buf.find(b"\n", first, n)
                    if line_end < 0 and at_end and buf.find(b"\r", first, n) < 0 \
                            and buf.count(b'"', first, n) % 2 == 0:
                        return  # the file is one header line without a newline: no rows
                    if line_end < 0 or buf.count(b'"', first, line_end) % 2:
                        yield from self._stream_tables(parse, convert, 0, size)
                        return
                    skip = line_end + 1
                end = n
                if not at_end:
                    cut = buf.rfind(b"\n", skip, n)
                    if cut < 0:
                        yield from self._stream_tables(parse, convert, offset, size)
                        return
                    end = cut + 1
                # pyarrow drops a UTF-8 BOM at the start of its input; the converter sees bytes
                bom = offset == 0 and skip == 0 and buf.startswith(b"\xef\xbb\xbf", 0, end)
                start = 3 if bom else skip
                status, table = ("", None) if converter is None else \
                    converter.convert(view[start:end])
                if table is None:   # pyarrow parses the chunk
                    rows = None
                    if status != "quote":
                        status, rows = ("", None) if projector is None else \
                            projector.cut(view[skip:end])
                    if status == "quote" or (status != "ok" and buf.find(b'"', skip, end) >= 0):
                        yield from self._stream_tables(parse, convert, offset, size)
                        return
                    if rows is not None:   # only the read columns, cut out by the C scanner
                        opts = pacsv.ReadOptions(column_names=projector.columns,
                                                 use_threads=True,
                                                 block_size=max(1 << 20, len(rows) // cores))
                        source = pa.BufferReader(_data_bom_kept(rows, offset == 0 and skip == 0))
                    else:
                        opts = pacsv.ReadOptions(block_size=block, use_threads=True)
                        if offset or not self.header:
                            opts.column_names = self.names
                        source = pa.BufferReader(body.slice(0, end) if offset == 0 else
                                                 _data_bom_kept(body.slice(0, end), False))
                    table = None if rows == b"" else pacsv.read_csv(
                        source, read_options=opts, parse_options=plain, convert_options=convert)
                    self.chunk_parsers["pyarrow"] += 1
                else:
                    self.chunk_parsers["c"] += 1
                pending = bytes(view[end:n])
                offset += end
                progress.advance(end)
                if table is not None and table.num_rows:
                    yield table
                if at_end and not pending:
                    return

    def _read(self, names: Sequence[str], types: dict, counter: list | None, start: int = 0
              ) -> Iterator[pa.Table]:
        """The file's rows from byte ``start`` (0, or a line start after the header)."""
        parse, convert = self._options(names, types, counter)
        size = os.path.getsize(self.data_path)
        tables = self._chunk_tables(parse, convert, start)
        if size - start > _CHUNK_BYTES:
            # the next chunk is read and converted while the caller handles this one
            tables = read_ahead(tables)
        try:
            yield from tables
        except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
            now = os.path.getsize(self.data_path)
            if now < size:  # truncated under the parser: say so, not what the parser saw
                self._raise_shrank(size, now)
            self._raise_parse_error(exc)
        except UnicodeDecodeError:
            # pyarrow decodes a bad row's text for the invalid-row handler; a row with
            # invalid UTF-8 (a multi-byte sequence cut at the end of the file) fails there
            self._raise_invalid_utf8()

    def _raise_invalid_utf8(self):
        if self.data_path == self.path:
            raise_invalid_utf8(self.path, "csv file")
        offset = find_invalid_utf8(self.data_path)
        line, column = locate_offset(self.data_path, offset or 0)
        raise SourceFormatError(
            f"invalid UTF-8 in csv file {self.path} (decompressed) at line {line}, column "
            f"{column}; re-encode the file as UTF-8")

    def _raise_parse_error(self, exc: Exception):
        msg = str(exc)
        if "UTF8" in msg or "UTF-8" in msg:
            self._raise_invalid_utf8()
        match = _RAGGED_RE.search(msg)
        if match:
            try:
                found = _locate_ragged_row(self.data_path, self.delimiter, len(self.names),
                                           self.header)
            except UnicodeDecodeError:
                self._raise_invalid_utf8()
            if found is not None:
                line, count, text = found
                raise SourceFormatError(
                    f"csv row at line {line} of {self.path} has {count} field(s) but the header "
                    f"has {len(self.names)}: {text[:200]!r}; fix the row, or pass "
                    f"on_bad_lines='skip' to skip such rows") from None
            raise SourceFormatError(
                f"csv file {self.path} has a row whose field count differs from the header "
                f"({match.group(2)} vs {match.group(1)}); fix the row, or pass "
                f"on_bad_lines='skip' to skip such rows") from None
        if "straddling object" in msg:
            # pyarrow's reader needs each record within one block of _BLOCK_SIZE bytes
            found = _locate_long_line(self.data_path, _BLOCK_SIZE)
            where = f"line {found[0]} is {found[1] / (1 << 20):.1f} MiB long" if found else \
                "a quoted value spans more than that"
            raise SourceFormatError(
                f"csv file {self.path} has a record too long to read ({where}; a record must "
                f"fit in the reader's {_BLOCK_SIZE >> 20} MiB blocks); split the value into "
                f"smaller fields or keep such large values outside the CSV file") from None
        # a quote that is never closed (in the header, too) is the cause of any other failure
        check_quotes_terminated(self.data_path, 0, self.delimiter, self.path)
        if "conversion error" in msg and self.forced_kinds:
            given = ", ".join(self.names[i] for i in sorted(self.forced_kinds))
            msg += f" (a column given in column_types ({given}) holds a value of another type; " \
                   f"fix the value or the type)"
        raise SourceFormatError(f"cannot parse csv file {self.path}: {msg}") from None

    def _raw_batches(self, names, batch_rows, stats):
        counter = [0] if stats is not None else None
        types = {n: pa.string() for n in names}
        for table in self._read(names, types, counter):
            yield [table.column(i) for i in range(table.num_columns)]
        if stats is not None:
            stats["skipped_bad_lines"] = counter[0]

    def _forget_typing(self) -> None:
        self._prefix = None
        super()._forget_typing()

    def _ensure_typed(self) -> None:
        fresh = self._kinds is None
        super()._ensure_typed()
        if fresh and self._typed_from_cache and self._retained is None:
            # a file too big for the cache may have left its first part there
            self._prefix = parsed_cache.lookup_prefix(self._cache_key(self._typed_fp),
                                                      self._kinds)

    def _typed_batches(self, need, batch_rows):
        """Fast path: each requested column is converted straight into its final type (the
        C converter, or pyarrow), or comes from what the typing pass kept."""
        index = {n: i for i, n in enumerate(self.names)}
        if self._kept_covers(need):
            yield from super()._typed_batches(need, batch_rows)
            return
        start = 0
        prefix = self._prefix
        if prefix is not None and all(index[n] in prefix[1] for n in need):
            batches, _, start = prefix
            target = pa.schema([pa.field(n, arrow_type(self._kinds[index[n]])) for n in need])
            for batch in batches:
                yield pa.RecordBatch.from_arrays([batch[index[n]][1] for n in need],
                                                 schema=target)
        kinds = [self._kinds[index[n]] for n in need]
        direct = {"int", "float", "bool", "string", "null", "date", "timestamp"}
        types = {n: (arrow_type(k) if k in direct else pa.string()) for n, k in zip(need, kinds)}
        fields = [pa.field(n, arrow_type(k)) for n, k in zip(need, kinds)]
        target = pa.schema(fields)
        keep = _ScanKeeper(self, [index[n] for n in need], kinds, whole=start == 0)
        for table in self._read(need, types, None, start):
            if not all(k in direct for k in kinds):
                table = pa.Table.from_arrays(
                    [col if kind in direct else convert_text(col, kind, "csv")
                     for col, kind in zip(table.columns, kinds)], schema=target)
            for batch in table.to_batches():
                keep.add(batch)
                yield batch
        keep.finish()
