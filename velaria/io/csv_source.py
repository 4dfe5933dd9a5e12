"""CSV files as a streamed, typed :class:`~velaria.io.base.TableSource`.

Parsing uses pyarrow's multi-threaded CSV reader (RFC 4180 quoting, quoted newlines, CRLF,
UTF-8 BOM). The typing pass reads every column as text and types it per column
(:mod:`velaria.io.typing_rules`); scans then let pyarrow parse only the requested columns
straight into their final types.

Rows whose field count differs from the header are an error naming the line
(``on_bad_lines="error"``, the default) or are skipped and counted (``on_bad_lines="skip"``;
the count is in ``source.stats["skipped_bad_lines"]``, explain, and a RuntimeWarning).
"""
from __future__ import annotations

import csv
import re
import threading
import warnings
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import SourceFormatError, VelariaValueError
from .paths import check_readable_file, raise_invalid_utf8
from .typed_source import TypedFileSource
from .typing_rules import arrow_type, classify_text, convert_text

__all__ = ["CsvSource", "read_csv_header", "ON_BAD_LINES"]

ON_BAD_LINES = ("error", "skip")
_BLOCK_SIZE = 8 << 20
_RAGGED_RE = re.compile(r"Expected (\d+) columns, got (\d+)")


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


def read_csv_header(path: str, delimiter: str = ",") -> list[str]:
    """The header cells of a CSV file (first non-blank record, unquoted, not trimmed).
    Raises SourceFormatError for an empty file, invalid UTF-8 or duplicate names."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = None
            for record in csv.reader(handle, dialect=_csv_dialect(delimiter)):
                if record:
                    header = record
                    break
    except UnicodeDecodeError:
        raise_invalid_utf8(path, "csv file")
    except csv.Error as exc:
        raise SourceFormatError(f"cannot parse the header of csv file {path}: {exc}") from None
    if header is None:
        raise SourceFormatError(
            f"csv file is empty: {path} (a csv file needs a header row naming its columns)")
    seen = set()
    for name in header:
        if name in seen:
            raise SourceFormatError(
                f"duplicate column name {name!r} in the header of csv file {path}; "
                f"rename one of the columns")
        seen.add(name)
    return header


def _locate_ragged_row(path: str, delimiter: str, expected: int) -> tuple[int, int, str] | None:
    """(line, field count, text) of the first record whose field count is not ``expected``."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, dialect=_csv_dialect(delimiter))
        seen_header = False
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


class CsvSource(TypedFileSource):
    """A CSV file with a header row; see the module docstring."""

    kind = "csv"
    dialect = "csv"

    def __init__(self, path: str, delimiter: str = ",", on_bad_lines: str = "error"):
        if on_bad_lines not in ON_BAD_LINES:
            raise VelariaValueError(
                f"on_bad_lines must be one of: {', '.join(ON_BAD_LINES)} (got {on_bad_lines!r})")
        check_readable_file(path, "cannot open csv file", allow_empty=True)
        self.delimiter = delimiter
        self.on_bad_lines = on_bad_lines
        super().__init__(path, read_csv_header(path, delimiter))

    # ---- hooks -------------------------------------------------------------------------
    def options_key(self) -> str:
        return f"delimiter={self.delimiter!r};on_bad_lines={self.on_bad_lines}"

    def _describe_options(self) -> str:
        text = f"delimiter={self.delimiter!r}"
        if self.on_bad_lines == "skip":
            text += f" on_bad_lines=skip skipped_bad_lines={self._stats.get('skipped_bad_lines', 0)}"
        return text

    def _classify(self, raw) -> str:
        return classify_text(raw, "csv")

    def _convert(self, raw, kind: str) -> pa.Array:
        return convert_text(raw, kind, "csv")

    def _check_typing_stats(self, stats: dict) -> None:
        skipped = stats.get("skipped_bad_lines", 0)
        if skipped and not stats.get("warned"):
            stats["warned"] = True
            warnings.warn(f"skipped {skipped} bad line(s) of csv file {self.path} "
                          f"(field count differs from the header)", RuntimeWarning, stacklevel=4)

    # ---- pyarrow reading ---------------------------------------------------------------
    def _open(self, names: Sequence[str], types: dict, counter: list | None):
        lock = threading.Lock()

        def on_bad_row(row):
            if self.on_bad_lines == "error":
                return "error"
            if counter is not None:
                with lock:
                    counter[0] += 1
            return "skip"

        return pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=_BLOCK_SIZE, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_bad_row),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(names), null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=True,
                true_values=["true", "TRUE"], false_values=["false", "FALSE"]),
        )

    def _read(self, names: Sequence[str], types: dict, counter: list | None
              ) -> Iterator[pa.RecordBatch]:
        try:
            reader = self._open(names, types, counter)
            for batch in reader:
                yield batch
        except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
            self._raise_parse_error(exc)

    def _raise_parse_error(self, exc: Exception):
        msg = str(exc)
        if "UTF8" in msg or "UTF-8" in msg:
            raise_invalid_utf8(self.path, "csv file")
        match = _RAGGED_RE.search(msg)
        if match:
            found = _locate_ragged_row(self.path, self.delimiter, len(self.names))
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
        raise SourceFormatError(f"cannot parse csv file {self.path}: {msg}") from None

    def _raw_batches(self, names, batch_rows, stats):
        counter = [0] if stats is not None else None
        types = {n: pa.string() for n in names}
        for batch in self._read(names, types, counter):
            yield [batch.column(i) for i in range(batch.num_columns)]
        if stats is not None:
            stats["skipped_bad_lines"] = counter[0]

    def _typed_batches(self, need, batch_rows):
        """Fast path: pyarrow parses each requested column straight into its final type."""
        if self._retained is not None:
            yield from super()._typed_batches(need, batch_rows)
            return
        index = {n: i for i, n in enumerate(self.names)}
        kinds = [self._kinds[index[n]] for n in need]
        direct = {"int", "float", "bool", "string", "null"}
        types = {n: (arrow_type(k) if k in direct else pa.string()) for n, k in zip(need, kinds)}
        fields = [pa.field(n, arrow_type(k)) for n, k in zip(need, kinds)]
        target = pa.schema(fields)
        for batch in self._read(need, types, None):
            arrays = []
            for i, kind in enumerate(kinds):
                col = batch.column(i)
                arrays.append(col if kind in direct else convert_text(col, kind, "csv"))
            yield pa.RecordBatch.from_arrays(arrays, schema=target)
