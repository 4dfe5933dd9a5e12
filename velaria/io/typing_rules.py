"""Per-column value typing for file sources (see docs/io.md, "Typing rules").

A column's type is decided over the WHOLE file: it is ``int64`` if every non-NULL cell is an
integer, ``float64`` if every one is numeric, ``bool`` if every one is true/false, a
``FixedSizeList<float32>`` vector if every one is a numeric vector of the same length
(``List<float32>`` when lengths differ), else ``string`` (cells keep their original text).
A column with no non-NULL cell is ``string``. With date inference on (the default of the CSV
and JSON readers; ``infer_dates=False`` keeps text, as native Velaria does), a column whose
every cell is an ISO date ``YYYY-MM-DD`` is ``date32``, and one whose every cell is an ISO
date or timestamp ``YYYY-MM-DD[( |T)HH:MM:SS[.ffffff]]`` (no zone) is ``timestamp[us]``;
a cell that is not a real calendar date (``2024-02-30``) or is before year 1 keeps the
column text.

Typing works in two steps: :func:`classify_text` gives the *kind* of one batch of a column
and :func:`merge_kinds` folds batch kinds together; :func:`convert_text` then converts a batch
of cells to the column's final Arrow type.

Kinds are strings: ``null`` (no value seen), ``bool``, ``int``, ``float``, ``string``,
``date``, ``timestamp``, ``vector:<n>`` and ``vlist``.

Dialects differ in what a cell means:

* ``csv``: empty cell is NULL, ``null`` is text; ``true``/``TRUE``/``false``/``FALSE`` are
  booleans; an integer with a significant leading zero (``007``, ``-00``) is text, but
  ``0.5`` is a float; an integer that overflows int64 is text (it is usually an identifier,
  and converting it would lose digits); a number beyond DOUBLE's range (``1e400``) is text
  too (reading it as a float would give infinity).
* ``line``: empty, ``null`` and ``NULL`` are NULL (the line parser does this); there is no
  leading-zero rule (``007`` is 7); overflow is text as in csv.
"""
from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "merge_kinds",
    "arrow_type",
    "kind_of_arrow_type",
    "classify_text",
    "classify_convert_text",
    "classify_text_cell",
    "convert_text",
    "parse_vector_text",
    "render_value",
    "forced_kinds",
    "classify_iso_text",
    "check_infer_dates",
]

#: type names a reader's ``column_types`` accepts -> kind
_TYPE_NAMES = {
    "int": "int", "integer": "int", "bigint": "int", "int64": "int", "long": "int",
    "double": "float", "float": "float", "float64": "float", "real": "float",
    "bool": "bool", "boolean": "bool",
    "string": "string", "text": "string", "varchar": "string", "str": "string",
    "date": "date", "timestamp": "timestamp", "datetime": "timestamp",
}

_INT_RE = {"csv": r"^-?(?:0|[1-9][0-9]*)$", "line": r"^-?[0-9]+$"}
_NUMERIC_RE = {
    d: r"^(?:" + _INT_RE[d][1:-1] + r"|[0-9+\-]*[.eE][0-9.eE+\-]*)$" for d in _INT_RE
}
_INT_PY = {d: re.compile(p) for d, p in _INT_RE.items()}
_FLOAT_LEX_PY = re.compile(r"^[0-9+\-]*[.eE][0-9.eE+\-]*$")
_LONG_INT_RE = r"^-?[0-9]{19,}$"
_BOOL_TEXT = {"true": True, "TRUE": True, "false": False, "FALSE": False}
_BOOL_SET = pa.array(list(_BOOL_TEXT), pa.string())
_TRUE_SET = pa.array(["true", "TRUE"], pa.string())
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_INF = float("inf")
_VECTOR_SPLIT = re.compile(r"[\s,]+")
_ISO_DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
_ISO_TIME_RE = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)?$"
_ISO_TIME_PY = re.compile(_ISO_TIME_RE)
_ISO_DATE_PY = re.compile(_ISO_DATE_RE)
_TIME_KINDS = {"date": pa.date32(), "timestamp": pa.timestamp("us")}
_FIRST_DAY = {"date": -719_162, "timestamp": -62_135_596_800_000_000}   # 0001-01-01


def merge_kinds(a: str, b: str) -> str:
    """The kind of a column holding cells of kind ``a`` and cells of kind ``b``."""
    if a == b:
        return a
    if a == "null":
        return b
    if b == "null":
        return a
    if {a, b} == {"int", "float"}:
        return "float"
    if {a, b} == {"date", "timestamp"}:
        return "timestamp"
    if a.startswith(("vector", "vlist")) and b.startswith(("vector", "vlist")):
        return "vlist"
    return "string"


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a column of ``kind``."""
    if kind == "int":
        return pa.int64()
    if kind == "float":
        return pa.float64()
    if kind == "bool":
        return pa.bool_()
    if kind in _TIME_KINDS:
        return _TIME_KINDS[kind]
    if kind.startswith("vector:"):
        return pa.list_(pa.float32(), int(kind.split(":", 1)[1]))
    if kind == "vlist":
        return pa.list_(pa.float32())
    return pa.string()


def kind_of_arrow_type(typ: pa.DataType) -> str:
    """Inverse of :func:`arrow_type` (used when a schema comes back from a cache)."""
    if pa.types.is_int64(typ):
        return "int"
    if pa.types.is_float64(typ):
        return "float"
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_date32(typ):
        return "date"
    if pa.types.is_timestamp(typ):
        return "timestamp"
    if pa.types.is_fixed_size_list(typ):
        return f"vector:{typ.list_size}"
    if pa.types.is_list(typ):
        return "vlist"
    return "string"


def parse_vector_text(text: str) -> list[float] | None:
    """``[1 2 3]`` / ``[1,2,3]`` / ``[1, 2, 3]`` -> ``[1.0, 2.0, 3.0]``; None if the text is not
    a non-empty bracketed list of finite-syntax numbers."""
    if len(text) < 3 or text[0] != "[" or text[-1] != "]":
        return None
    body = text[1:-1].strip()
    if not body:
        return None
    out = []
    for token in _VECTOR_SPLIT.split(body):
        if not token or not _is_number_text(token):
            return None
        out.append(float(token))
    return out


def _is_number_text(token: str) -> bool:
    if _INT_PY["line"].match(token):
        return True
    if _FLOAT_LEX_PY.match(token) and any(ch.isdigit() for ch in token):
        try:
            float(token)
        except ValueError:
            return False
        return True
    return False


def classify_text_cell(text: str | None, dialect: str = "csv", dates: bool = False) -> str:
    """The kind of one cell (``None`` is ``null``); ``dates``: ISO dates and timestamps are
    ``date`` / ``timestamp``."""
    if text is None:
        return "null"
    if dates and _ISO_TIME_PY.match(text):
        return "date" if _ISO_DATE_PY.match(text) else "timestamp"
    if text in _BOOL_TEXT:
        return "bool"
    if _INT_PY[dialect].match(text):
        return "int" if _INT64_MIN <= int(text) <= _INT64_MAX else "string"
    if _FLOAT_LEX_PY.match(text) and any(ch.isdigit() for ch in text):
        try:
            value = float(text)
        except ValueError:
            return "string"
        return "float" if value not in (_INF, -_INF) else "string"
    if text.startswith("["):
        vec = parse_vector_text(text)
        if vec is not None:
            return f"vector:{len(vec)}"
    return "string"


def _all(mask: pa.Array) -> bool:
    return bool(pc.all(mask).as_py() is not False)


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def _has_leading_zero_int(values: pa.Array) -> bool:
    """True when some integer-looking cell has a significant leading zero (``007``)."""
    length = pc.binary_length(values)
    zero = pc.and_(pc.starts_with(values, "0"), pc.greater(length, 1))
    minus_zero = pc.and_(pc.starts_with(values, "-0"), pc.greater(length, 2))
    return _any(pc.or_(zero, minus_zero))


def _numeric_cells_follow_rules(values: pa.Array, as_float: pa.Array, dialect: str) -> bool:
    """Arrow's float parser accepts more than our rule (``inf``, ``+5``, ``007``, int64
    overflow); check the cells where it might differ against the exact rule."""
    odd = pc.invert(pc.is_finite(as_float))
    for prefix in ("+", "0", "-0"):
        odd = pc.or_(odd, pc.starts_with(values, prefix))
    odd = pc.or_(odd, pc.greater_equal(pc.binary_length(values), 19))
    if not _any(odd):
        return True
    if not _all(pc.is_finite(as_float)):
        return False  # a number beyond DOUBLE's range (1e400): reading it would give inf
    subset = values.filter(odd)
    if not _all(pc.match_substring_regex(subset, _NUMERIC_RE[dialect])):
        return False
    return _ints_fit(subset)


def _ints_fit(values: pa.Array) -> bool:
    """True when every integer-looking cell of 19+ digits fits in int64."""
    long_mask = pc.match_substring_regex(values, _LONG_INT_RE)
    if not _any(long_mask):
        return True
    try:
        pc.cast(values.filter(long_mask), pa.int64())
    except (pa.ArrowInvalid, OverflowError):
        return False
    return True


def classify_iso_text(values) -> str:
    """``date`` / ``timestamp`` when every cell of a NULL-free text batch is an ISO date
    (timestamp) of a real calendar day from year 1 on, else ``string``."""
    if not _all(pc.match_substring_regex(values, _ISO_TIME_RE)):
        return "string"
    kind = "date" if _all(pc.match_substring_regex(values, _ISO_DATE_RE)) else "timestamp"
    try:
        converted = pc.cast(values, _TIME_KINDS[kind])
    except pa.ArrowInvalid:                 # 2024-02-30, 25:00:00
        return "string"
    # year 0 parses, but no Python date holds it (the reference kernels could not read it)
    lowest = pc.min(converted.cast(pa.int32() if kind == "date" else pa.int64())).as_py()
    return kind if lowest is None or lowest >= _FIRST_DAY[kind] else "string"


def classify_text(arr: pa.Array, dialect: str = "csv", dates: bool = False) -> str:
    """The kind of a batch of text cells (a string array whose NULLs are NULL cells)."""
    return classify_convert_text(arr, dialect, dates)[0]


def classify_convert_text(arr, dialect: str = "csv", dates: bool = False):
    """``(kind, values)`` of a batch of text cells: the batch's kind (as
    :func:`classify_text`) and, for ``int`` / ``float`` / ``bool`` batches, the cells
    converted to that type (the conversion falls out of the check); for other kinds the text
    itself. Accepts an Array or a ChunkedArray (kept chunked)."""
    values = pc.drop_null(arr)
    if len(values) == 0:
        return "null", arr
    first = classify_text_cell(values[0].as_py(), dialect, dates)
    if first == "string":
        return "string", arr
    if first in _TIME_KINDS:
        return classify_iso_text(values), arr
    if first == "bool":
        if _all(pc.is_in(values, value_set=_BOOL_SET)):
            return "bool", convert_text(arr, "bool", dialect)
        return "string", arr
    if first in ("int", "float"):
        if first == "int":
            try:
                as_int = pc.cast(arr, pa.int64())  # accepts exactly [-]digits that fit int64
            except pa.ArrowInvalid:
                pass
            else:
                if dialect == "csv" and _has_leading_zero_int(values):
                    return "string", arr
                # Arrow's cast also reads hexadecimal ("0x10"), which is text by our rule
                if _any(pc.match_substring(values, "x", ignore_case=True)):
                    return "string", arr
                return "int", as_int
        try:
            as_float = pc.cast(arr, pa.float64())
        except pa.ArrowInvalid:
            return "string", arr
        if _numeric_cells_follow_rules(values, pc.drop_null(as_float), dialect):
            return "float", as_float
        return "string", arr
    # vectors: checked cell by cell in Python (rare)
    kind = "null"
    for cell in values.to_pylist():
        vec = parse_vector_text(cell)
        if vec is None:
            return "string", arr
        kind = merge_kinds(kind, f"vector:{len(vec)}")
    return kind, arr


def convert_text(arr: pa.Array, kind: str, dialect: str = "csv") -> pa.Array:
    """Convert a batch of text cells to the Arrow type of ``kind`` (the column's final kind,
    so every non-NULL cell is known to fit it)."""
    if kind in ("string", "null"):
        return arr if arr.type == pa.string() else pc.cast(arr, pa.string())
    if kind == "int":
        return pc.cast(arr, pa.int64())
    if kind == "float":
        return pc.cast(arr, pa.float64())
    if kind == "bool":
        return pc.if_else(pc.is_null(arr), pa.scalar(None, pa.bool_()),
                          pc.is_in(arr, value_set=_TRUE_SET))
    if kind in _TIME_KINDS:
        return pc.cast(arr, _TIME_KINDS[kind])
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    vectors = [None if cell is None else parse_vector_text(cell) for cell in arr.to_pylist()]
    return pa.array(vectors, type=arrow_type(kind))


def render_value(value) -> str:
    """Text of a parsed (JSON or Excel) value inside a column that became ``string``."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render_float32(v) for v in value) + "]"
    return str(value)


def _render_float32(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def forced_kinds(column_types, names, path: str) -> dict[int, str]:
    """``{column index: kind}`` from a reader's ``column_types`` (``{"id": "BIGINT", ...}``;
    SQL names, Python types int/float/bool/str, or Arrow types int64/float64/bool/string).
    Such columns skip typing: a cell that does not convert is an error at scan time."""
    if not column_types:
        return {}
    if not isinstance(column_types, dict):
        raise TypeError("column_types must be a dict of column name -> type")
    out = {}
    arrow = {pa.int64(): "int", pa.float64(): "float", pa.bool_(): "bool", pa.string(): "string",
             pa.date32(): "date", pa.timestamp("us"): "timestamp"}
    python = {int: "int", float: "float", bool: "bool", str: "string"}
    for name, typ in column_types.items():
        if name not in names:
            from ..errors import VelariaValueError

            raise VelariaValueError(
                f"column_types names column {name!r}, which {path} does not have (its columns: "
                f"{', '.join(names)})")
        if isinstance(typ, pa.DataType):
            kind = arrow.get(typ)
        elif isinstance(typ, type):
            kind = python.get(typ)
        elif isinstance(typ, str):
            kind = _TYPE_NAMES.get(typ.strip().lower())
        else:
            raise TypeError(f"column_types[{name!r}] must be a type name, a Python type or an "
                            f"Arrow type, not {type(typ).__name__}")
        if kind is None:
            from ..errors import VelariaValueError

            raise VelariaValueError(
                f"column_types[{name!r}] = {typ!r} is not a supported type; use one of BIGINT, "
                f"DOUBLE, BOOLEAN, STRING, DATE, TIMESTAMP (or int, float, bool, str)")
        out[names.index(name)] = kind
    return out


def check_infer_dates(value) -> bool:
    """The readers' ``infer_dates`` argument: a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"infer_dates must be True (ISO dates and timestamps become DATE / "
                        f"TIMESTAMP columns) or False (they stay text), not {value!r}")
    return value
