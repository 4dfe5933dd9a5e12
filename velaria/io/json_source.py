"""JSON files (``json_lines``: one object per line; ``json_array``: ``[obj, obj, ...]``) as a
typed TableSource.

Only the requested ``columns`` are kept, in that order; a missing key is NULL. JSON values
keep their JSON type: strings are never re-typed (``"42"`` stays text); an integer that does
not fit int64 becomes a float (a RuntimeWarning says its low digits were lost); a number too
large for a DOUBLE (``1e400``) keeps its text rather than becoming infinity; a nested object becomes its JSON text (compact form); an array
must hold only numbers and becomes a float32 vector. Columns are then typed per column (see
:mod:`velaria.io.typing_rules`): ints and floats mixed give float64; any other mix gives a
string column in which non-string values are written as JSON-like text.

Malformed JSON raises SourceFormatError with the file, line and column.
"""
from __future__ import annotations

import json
import re
import warnings
from typing import Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SourceFormatError, VelariaValueError
from .json_array_stream import iter_array_elements
from .paths import check_readable_file, raise_invalid_utf8, reject_binary
from .typed_source import FastPathUnavailable, TypedFileSource
from .typing_rules import arrow_type, check_infer_dates, classify_iso_text, merge_kinds, render_value

__all__ = ["JsonSource", "JSON_FORMATS", "canonical_json_format"]

JSON_FORMATS = {"json_lines": "json_lines", "jsonl": "json_lines", "lines": "json_lines",
                "json_array": "json_array", "array": "json_array"}
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def canonical_json_format(fmt: str) -> str:
    """``jsonl``/``lines`` -> ``json_lines``; ``array`` -> ``json_array``; else an error."""
    try:
        return JSON_FORMATS[fmt]
    except (KeyError, TypeError):
        raise VelariaValueError(
            f"format must be one of: json_lines, json_array (got {fmt!r}; the aliases jsonl, "
            f"lines and array are accepted too)") from None


def _reject_constant(name: str):
    raise ValueError(f"invalid json keyword: {name}")


class _OverflowText(str):
    """The text of a JSON number too large for a DOUBLE (``1e400``): kept as text, because
    reading it as a float would turn it into infinity."""


class _RoundedInt(float):
    """A JSON integer beyond int64, read as the nearest DOUBLE (its low digits are lost)."""


def _parse_float(text: str):
    value = float(text)
    return value if value not in (_INF, -_INF) else _OverflowText(text)


_INF = float("inf")
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_parse_float)


class _NotVector(Exception):
    pass


def _starts_with_object(path: str) -> bool:
    """Whether the first non-blank byte (after a BOM) is ``{``. pyarrow's JSON reader
    crashes the process (segfault, pyarrow 26) on a file whose first row is ``null``, so
    it only ever sees files that start like a JSON-lines file; the reference parser reports
    anything else."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    head = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    stripped = head.lstrip(b" \t\r\n")
    return stripped.startswith(b"{")


def _has_long_int(path: str) -> bool:
    """Whether the file may hold an integer literal beyond int64 (read in chunks)."""
    tail = b""
    with open(path, "rb") as handle:
        while True:
            data = handle.read(16 << 20)
            if not data:
                return False
            if _LONG_INT.search(tail + data):
                return True
            tail = data[-64:]


# a backslash escape: ``\\``, ``\uXXXX`` or a one-character one, read left to right so that
# ``\\ud800`` (an escaped backslash, then text) is not taken for a surrogate escape
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")


def _locate_unpaired_surrogate(path: str) -> tuple[int, int] | None:
    """Line and column (1-based) of the first ``\\uD800``-``\\uDFFF`` escape in ``path`` that
    is not half of a high-low pair, or None."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            pending = None   # a high surrogate escape waiting for its low half
            for match in _ESCAPE.finditer(line):
                code = int(match.group(1), 16) if match.group(1) else None
                low = code is not None and 0xDC00 <= code <= 0xDFFF
                if pending is not None and not (low and match.start() == pending.end()):
                    return number, pending.start() + 1
                if code is not None and 0xD800 <= code <= 0xDBFF:
                    pending = match
                    continue
                if low and pending is None:
                    return number, match.start() + 1
                pending = None
            if pending is not None:
                return number, pending.start() + 1
    return None


def _convert_arrow(raw: pa.Array, kind: str) -> pa.Array:
    """A fast-parser column converted to the Arrow type of the column's final ``kind``,
    with the reference parser's result (a string column writes other values as
    :func:`~velaria.io.typing_rules.render_value` text)."""
    typ = arrow_type(kind)
    if raw.type == typ:
        return raw
    if raw.type == pa.null():
        return pa.nulls(len(raw), typ)
    if kind == "float" and raw.type == pa.int64():
        return pc.cast(raw, pa.float64())
    if kind in ("date", "timestamp") and raw.type == pa.string():
        return pc.cast(raw, typ)           # typing checked every cell is ISO text
    return pa.array([v if v is None or isinstance(v, str) else render_value(v)
                     for v in raw.to_pylist()], pa.string())


def _cell(value):
    """Map one decoded JSON value to the Python value a column holds."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        try:
            return _RoundedInt(value)
        except OverflowError:  # beyond DOUBLE too: keep the digits as text
            return _OverflowText(str(value))
    if isinstance(value, dict):
        return _NestedText(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    if isinstance(value, list):
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise _NotVector()
        return [float(item) for item in value]
    return str(value)


class _NestedText(str):
    """A nested object's JSON text (a str, typed as string)."""


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return f"vector:{len(value)}"
    return "string"


JSON_PARSERS = ("auto", "arrow", "python")
_ARROW_KINDS = {pa.int64(): "int", pa.float64(): "float", pa.bool_(): "bool",
                pa.string(): "string", pa.null(): "null"}
#: an integer literal of 19+ digits may not fit int64 (the reference parser warns about it)
_LONG_INT = re.compile(rb'[:\[,]\s*-?[0-9]{19,}')


class JsonSource(TypedFileSource):
    """A JSON lines or JSON array file; see the module docstring.

    ``parser``: ``auto`` (default) parses JSON lines with ``pyarrow.json`` (multi-threaded C++)
    and falls back to the reference parser, Python's ``json``, for any file whose result the
    fast parser cannot reproduce exactly (nested values, mixed kinds in one column, keys
    first seen late in the file, integers beyond int64, NaN, ...); ``arrow`` and ``python``
    force one (``arrow`` still falls back rather than give a different result). JSON arrays
    always use the reference parser."""

    kind = "json"
    dialect = "json"

    def __init__(self, path: str, columns: Sequence[str] | None, format: str = "json_lines",
                 parser: str = "auto", infer_dates: bool = True):
        self.format = canonical_json_format(format)
        #: ISO date / timestamp strings become date32 / timestamp[us] (False: text, as native)
        self.infer_dates = check_infer_dates(infer_dates)
        if parser not in JSON_PARSERS:
            raise VelariaValueError(f"parser must be one of: {', '.join(JSON_PARSERS)} "
                                    f"(got {parser!r})")
        self.parser = "python" if (parser == "python" or self.format != "json_lines") \
            else "arrow"
        checked = columns is None
        if checked:  # the file is checked once, before its keys are read
            self._check_file(path)
            columns = self._all_keys(path)
        columns = list(columns)
        if not columns:
            raise VelariaValueError(
                "json source columns cannot be empty (pass columns=['name', ...])")
        seen = set()
        for name in columns:
            if name in seen:
                raise VelariaValueError(f"duplicate column: {name} (in json columns)")
            seen.add(name)
        if not checked:
            self._check_file(path)
        super().__init__(path, columns)

    @staticmethod
    def _check_file(path: str) -> None:
        check_readable_file(path, "cannot open json file", allow_empty=True)
        reject_binary(path, "json file")

    @property
    def python_parser(self) -> bool:
        return self.parser == "python"

    def _use_reference_parser(self) -> None:
        self.parser = "python"

    def _all_keys(self, path: str) -> list[str]:
        """Every top-level key of the file's objects, in first-appearance order."""
        self.path = path
        keys: dict[str, None] = {}
        for _, obj in self._objects():
            for key in obj:
                keys.setdefault(key)
        if not keys:
            raise SourceFormatError(
                f"json file {path} has no keys to read (it is empty or every object is "
                f"empty); pass columns=[...]")
        return list(keys)

    # ---- hooks -------------------------------------------------------------------------
    def options_key(self) -> str:
        return f"format={self.format};columns={self.names!r};dates={self.infer_dates}"

    def _describe_options(self) -> str:
        return f"format={self.format} parser={self.parser}"

    def _classify(self, raw) -> str:
        if isinstance(raw, pa.Array):
            kind = _ARROW_KINDS[raw.type]
            if kind == "string" and self.infer_dates and raw.null_count < len(raw):
                return classify_iso_text(pc.drop_null(raw))
            return kind
        kind = "null"
        for value in raw:
            if value is not None:
                kind = merge_kinds(kind, _kind(value))
                if kind == "string":
                    break
        if kind == "string" and self.infer_dates:
            texts = [v for v in raw if v is not None]
            if all(type(v) is str for v in texts):
                try:
                    return classify_iso_text(pa.array(texts, pa.string()))
                except UnicodeEncodeError:
                    self._raise_unpaired_surrogate()
        return kind

    def _convert(self, raw, kind: str) -> pa.Array:
        if isinstance(raw, pa.Array):
            return _convert_arrow(raw, kind)
        try:
            return self._convert_values(raw, kind)
        except UnicodeEncodeError:
            self._raise_unpaired_surrogate()

    def _raise_unpaired_surrogate(self):
        """A decoded string holds half a UTF-16 surrogate pair (``"\\ud800"``), which UTF-8
        text cannot hold: say where the escape is."""
        found = _locate_unpaired_surrogate(self.path)
        where = f" at line {found[0]}, column {found[1]}" if found else ""
        raise SourceFormatError(
            f"json file {self.path} has a string with an unpaired surrogate escape{where} "
            f"(\\ud800-\\udfff); fix the escape or write the character itself") from None

    def _convert_values(self, raw, kind: str) -> pa.Array:
        typ = arrow_type(kind)
        if kind in ("string", "null"):
            return pa.array([v if v is None or isinstance(v, str) else render_value(v)
                             for v in raw], pa.string())
        if kind == "float":
            return pa.array([None if v is None else float(v) for v in raw], typ)
        if kind in ("date", "timestamp"):
            return pc.cast(pa.array(raw, pa.string()), typ)
        return pa.array(raw, typ)

    # ---- parsing -----------------------------------------------------------------------
    def _objects(self) -> Iterator[tuple[int, dict]]:
        """Yield (line or element number, object) for every row of the file."""
        if self.format == "json_lines":
            yield from self._line_objects()
        else:
            yield from self._array_objects()

    def _error(self, what: str, line: int, col: int | None = None, fix: str = ""):
        where = f"line {line}" + (f", column {col}" if col is not None else "")
        raise SourceFormatError(f"{what}: {self.path} at {where}" + (f"; {fix}" if fix else ""))

    def _line_objects(self):
        try:
            with open(self.path, encoding="utf-8-sig", newline=None) as handle:
                for lineno, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        obj = _DECODER.decode(line)
                    except json.JSONDecodeError as exc:
                        self._error(f"malformed JSON ({exc.msg})", lineno, exc.colno,
                                    "each line must hold one JSON object")
                    except RecursionError:
                        self._error("JSON nested too deeply", lineno, None,
                                    "flatten the data (nesting beyond ~900 levels)")
                    except ValueError as exc:
                        self._error(f"malformed JSON ({exc})", lineno)
                    if not isinstance(obj, dict):
                        self._error(f"json object expected (found {type(obj).__name__})",
                                    lineno, None, "each line must hold one JSON object")
                    yield lineno, obj
        except UnicodeDecodeError:
            raise_invalid_utf8(self.path, "json file")

    def _array_objects(self):
        """The array's elements, decoded one at a time (:mod:`.json_array_stream`), so memory
        does not grow with the file."""
        try:
            with open(self.path, encoding="utf-8-sig") as handle:
                for number, obj in iter_array_elements(handle, _DECODER, self._error):
                    if not isinstance(obj, dict):
                        raise SourceFormatError(
                            f"json object expected: {self.path} array element {number} is a "
                            f"{type(obj).__name__}; every element must be a JSON object")
                    yield number, obj
        except UnicodeDecodeError:
            raise_invalid_utf8(self.path, "json file")

    def _raw_batches(self, names, batch_rows, stats):
        if self.parser == "arrow":
            return self._arrow_batches(names, stats)
        return self._python_batches(names, batch_rows, stats)

    def _arrow_batches(self, names, stats):
        """The fast parser: ``pyarrow.json`` batches as Arrow arrays, or FastPathUnavailable
        (before the first batch or later: the typing pass then starts over)."""
        import pyarrow.json as pajson

        if not _starts_with_object(self.path) or _has_long_int(self.path):
            raise FastPathUnavailable
        schema = None  # ISO-looking strings: keep them text (pyarrow would infer timestamps)
        while True:
            try:
                reader = pajson.open_json(
                    self.path, read_options=pajson.ReadOptions(block_size=8 << 20),
                    parse_options=pajson.ParseOptions(explicit_schema=schema,
                                                      unexpected_field_behavior="infer"))
            except StopIteration:  # no rows at all
                return
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):
                raise FastPathUnavailable from None
            temporal = [f for f in reader.schema if pa.types.is_temporal(f.type)]
            if not temporal or schema is not None:
                break
            schema = pa.schema([f.with_type(pa.string()) for f in temporal])
        try:
            for batch in reader:
                columns = []
                for name in names:
                    index = batch.schema.get_field_index(name)
                    column = batch.column(index) if index >= 0 else pa.nulls(batch.num_rows)
                    if column.type not in _ARROW_KINDS:
                        raise FastPathUnavailable
                    if column.type == pa.float64() and \
                            not pc.all(pc.is_finite(column)).as_py() in (True, None):
                        raise FastPathUnavailable  # NaN is an error for the reference parser
                    columns.append(column)
                if batch.num_rows:
                    yield columns
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise FastPathUnavailable from None
        if stats is not None:
            stats["rounded_big_ints"] = 0

    def _python_batches(self, names, batch_rows, stats):
        columns: list[list] = [[] for _ in names]
        count = 0
        rounded = 0
        for number, obj in self._objects():
            for col, name in zip(columns, names):
                try:
                    cell = _cell(obj.get(name))
                    if type(cell) is _RoundedInt:
                        rounded += 1
                    col.append(cell)
                except _NotVector:
                    where = "line" if self.format == "json_lines" else "array element"
                    raise SourceFormatError(
                        f"json array only supports numeric vectors: {self.path} {where} "
                        f"{number}, key {name!r}") from None
            count += 1
            if count == batch_rows:
                yield columns
                columns = [[] for _ in names]
                count = 0
        if count:
            yield columns
        if stats is not None:
            stats["rounded_big_ints"] = rounded

    def _check_typing_stats(self, stats: dict) -> None:
        rounded = stats.get("rounded_big_ints", 0)
        if rounded and not stats.get("warned"):
            stats["warned"] = True
            warnings.warn(
                f"{rounded} integer(s) in json file {self.path} do not fit int64 and were read "
                f"as DOUBLE, which keeps only about 16 significant digits; write them as JSON "
                f"strings to keep every digit", RuntimeWarning, stacklevel=4)
