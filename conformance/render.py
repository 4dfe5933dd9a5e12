"""Canonical text rendering of query results, so that results compare as text.

One value renders to one token; a row renders to its tokens joined by one space. The rules
are those of sqllogictest corpora (DuckDB, DataFusion), pinned here so that every clause and
every target is compared the same way:

=========================  ==========================================================
value                      rendering
=========================  ==========================================================
``None`` (SQL NULL)        ``NULL``
``True`` / ``False``       ``true`` / ``false``
int                        decimal digits, e.g. ``-12``
float                      ``repr`` of the value rounded to 12 significant digits, so
                           ``0.1 + 0.2`` renders ``0.3`` and ``1.0`` renders ``1.0``;
                           ``NaN``, ``Infinity``, ``-Infinity``; ``-0.0`` keeps its sign
str                        the text itself; the empty string renders ``(empty)``
list (vector)              ``[`` + elements rendered as floats joined by ``,`` + ``]``
Decimal (DECIMAL(p, s))    plain digits with the type's ``s`` decimals, e.g. ``-2.50``
=========================  ==========================================================

Column type letters (``query <types>``) are checked against the Python type of each
non-NULL value: ``I`` int (not bool), ``R`` float, ``T`` str, ``B`` bool, ``V`` list of
floats, ``D`` decimal.Decimal, ``?`` anything.

Sort modes: ``nosort`` keeps the engine's row order (use it only when the order is part of
the clause); ``rowsort`` sorts the rendered rows as strings (order-insensitive comparison);
``valuesort`` sorts every rendered value individually.
"""
from __future__ import annotations

import decimal
import math

__all__ = ["render_value", "render_row", "render_rows", "check_type", "SORT_MODES", "FLOAT_DIGITS"]

FLOAT_DIGITS = 12
SORT_MODES = ("nosort", "rowsort", "valuesort")


def render_float(x: float) -> str:
    """Render a float canonically: 12 significant digits, IEEE specials spelled out."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    return repr(float(format(x, ".%dg" % FLOAT_DIGITS)))


def render_value(v: object) -> str:
    """Render one cell value as one canonical token (see the module docstring)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return render_float(v)
    if isinstance(v, str):
        return "(empty)" if v == "" else v
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(render_value(float(e)) if isinstance(e, (int, float)) and not isinstance(e, bool)
                              else render_value(e) for e in v) + "]"
    return repr(v)


def render_row(row) -> str:
    return " ".join(render_value(v) for v in row)


def render_rows(rows, sort: str = "nosort") -> list[str]:
    """Render rows to lines, applying the sort mode (``nosort``, ``rowsort``, ``valuesort``)."""
    if sort not in SORT_MODES:
        raise ValueError("unknown sort mode %r (expected one of %s)" % (sort, ", ".join(SORT_MODES)))
    if sort == "valuesort":
        return sorted(render_value(v) for row in rows for v in row)
    lines = [render_row(r) for r in rows]
    if sort == "rowsort":
        lines.sort()
    return lines


_TYPE_NAMES = {"I": "integer", "R": "float", "T": "text", "B": "boolean", "V": "vector", "D": "decimal",
               "?": "any"}


def check_type(letter: str, v: object) -> bool:
    """True when non-NULL value ``v`` has the Python type that column letter ``letter`` requires."""
    if v is None or letter == "?":
        return True
    if letter == "I":
        return isinstance(v, int) and not isinstance(v, bool)
    if letter == "R":
        return isinstance(v, float)
    if letter == "T":
        return isinstance(v, str)
    if letter == "B":
        return isinstance(v, bool)
    if letter == "V":
        return isinstance(v, list) and all(isinstance(e, float) for e in v)
    if letter == "D":
        return isinstance(v, decimal.Decimal)
    raise ValueError("unknown column type letter %r (expected one of %s)" % (letter, "".join(_TYPE_NAMES)))


def type_name(letter: str) -> str:
    return _TYPE_NAMES.get(letter, letter)
