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
import warnings
from typing import Iterator, Sequence

import pyarrow as pa

from ..errors import SourceFormatError, VelariaValueError
from .paths import check_readable_file, raise_invalid_utf8, reject_binary
from .typed_source import TypedFileSource
from .typing_rules import arrow_type, merge_kinds, render_value

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


class JsonSource(TypedFileSource):
    """A JSON lines or JSON array file; see the module docstring."""

    kind = "json"
    dialect = "json"
    python_parser = True

    def __init__(self, path: str, columns: Sequence[str], format: str = "json_lines"):
        self.format = canonical_json_format(format)
        columns = list(columns)
        if not columns:
            raise VelariaValueError(
                "json source columns cannot be empty (pass columns=['name', ...])")
        seen = set()
        for name in columns:
            if name in seen:
                raise VelariaValueError(f"duplicate column: {name} (in json columns)")
            seen.add(name)
        check_readable_file(path, "cannot open json file", allow_empty=True)
        reject_binary(path, "json file")
        super().__init__(path, columns)

    # ---- hooks -------------------------------------------------------------------------
    def options_key(self) -> str:
        return f"format={self.format};columns={self.names!r}"

    def _describe_options(self) -> str:
        return f"format={self.format}"

    def _classify(self, raw) -> str:
        kind = "null"
        for value in raw:
            if value is not None:
                kind = merge_kinds(kind, _kind(value))
                if kind == "string":
                    break
        return kind

    def _convert(self, raw, kind: str) -> pa.Array:
        try:
            return self._convert_values(raw, kind)
        except UnicodeEncodeError:
            raise SourceFormatError(
                f"json file {self.path} has a string with an unpaired surrogate escape "
                f"(\\ud800-\\udfff); fix the escape or write the character itself") from None

    def _convert_values(self, raw, kind: str) -> pa.Array:
        typ = arrow_type(kind)
        if kind in ("string", "null"):
            return pa.array([v if v is None or isinstance(v, str) else render_value(v)
                             for v in raw], pa.string())
        if kind == "float":
            return pa.array([None if v is None else float(v) for v in raw], typ)
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
        try:
            with open(self.path, encoding="utf-8-sig") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            raise_invalid_utf8(self.path, "json file")
        stripped = text.lstrip()
        if not stripped:
            return
        if not stripped.startswith("["):
            lead = len(text) - len(stripped)
            line = text.count("\n", 0, lead) + 1
            self._error(f"json array source should start with '[' (found {stripped[0]!r})",
                        line, None, "use format='json_lines' for one object per line")
        try:
            doc = _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            self._error(f"malformed JSON ({exc.msg})", exc.lineno, exc.colno)
        except RecursionError:
            self._error("JSON nested too deeply", 1, None,
                        "flatten the data (nesting beyond ~900 levels)")
        except ValueError as exc:
            self._error(f"malformed JSON ({exc})", 1)
        for number, obj in enumerate(doc, start=1):
            if not isinstance(obj, dict):
                raise SourceFormatError(
                    f"json object expected: {self.path} array element {number} is a "
                    f"{type(obj).__name__}; every element must be a JSON object")
            yield number, obj

    def _raw_batches(self, names, batch_rows, stats):
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
