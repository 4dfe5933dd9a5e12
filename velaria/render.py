"""Text and HTML rendering of values and tables (``show()``, ``repr``, notebooks, CLI).

Tables show the column types under the names, NULL as ``NULL`` (a text cell that reads
``null`` or ``NULL`` is quoted, so the two never look alike), cells cut to a maximum width
with ``…``, line breaks in cells as ``\\n``, and wide (East Asian) characters counted as two
columns so that the borders line up.
"""
from __future__ import annotations

import html
import math
import unicodedata

import pyarrow as pa

__all__ = ["value_text", "cell_text", "format_table", "format_html", "python_values",
           "display_width", "NULL_TEXT"]

#: how a NULL cell is shown
NULL_TEXT = "NULL"
#: the widest a cell is shown, in terminal columns
MAX_CELL_WIDTH = 40


def python_values(column, name: str) -> list:
    """``column.to_pylist()``, with a clear error for values Python cannot hold: Python's
    datetime and timedelta stop at microseconds, so a nanosecond value that is not a whole
    number of microseconds cannot become one without changing it."""
    try:
        return column.to_pylist()
    except ValueError as exc:
        if "anosecond" not in str(exc):
            raise
        from .errors import VelariaValueError

        raise VelariaValueError(
            f"column {name!r} holds nanosecond-precision values that Python's datetime / "
            f"timedelta cannot represent ({exc.args[0].split(' to convert')[0]}); use "
            f"to_arrow() to keep the nanoseconds, or CAST the column to a microsecond type "
            f"in the query") from None


def value_text(v) -> str:
    """A value as text: ``null``, ``true``/``false``, shortest round-trip floats, ``[a,b]`` vectors."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(value_text(x) for x in v) + "]"
    return str(v)


def cell_text(v) -> str:
    """A cell for display: NULL distinct from the text 'null', line breaks escaped."""
    if v is None:
        return NULL_TEXT
    if isinstance(v, str):
        if v.lower() == "null":
            return f"'{v}'"
        return v.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return value_text(v)


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide and fullwidth characters count 2, combining 0."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _truncate(text: str, limit: int) -> str:
    if display_width(text) <= limit:
        return text
    out, width = [], 0
    for ch in text:
        w = display_width(ch)
        if width + w > limit - 1:
            break
        out.append(ch)
        width += w
    return "".join(out) + "…"


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - display_width(text))
    return gap + text if right else text + gap


def _type_name(typ: pa.DataType) -> str:
    return str(typ).replace("<item: float>", "<float>")


def format_table(table: pa.Table, max_rows: int = 20, total: int | None = None) -> str:
    """A boxed text table of the first ``max_rows`` rows (names, then types, then rows),
    with a row-count footer. ``total`` is the full row count when ``table`` holds only a
    preview (None: the table is complete; -1: unknown, more rows follow)."""
    names = table.schema.names
    head = table.slice(0, max_rows)
    cols = [[_truncate(cell_text(v), MAX_CELL_WIDTH) for v in python_values(c, n)]
            for c, n in zip(head.columns, names)]
    types = [_type_name(f.type) for f in table.schema]
    headers = [_truncate(n, MAX_CELL_WIDTH) for n in names]
    widths = [max([display_width(h), display_width(t)] + [display_width(x) for x in col])
              for h, t, col in zip(headers, types, cols)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [sep,
             "| " + " | ".join(_pad(h, w, False) for h, w in zip(headers, widths)) + " |",
             "| " + " | ".join(_pad(t, w, False) for t, w in zip(types, widths)) + " |",
             sep]
    numeric = [pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
               for f in table.schema]
    for r in range(head.num_rows):
        cells = [_pad(col[r], w, num) for col, w, num in zip(cols, widths, numeric)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(sep)
    lines.append(_footer(table.num_rows if total is None else total, max_rows, head.num_rows))
    return "\n".join(lines)


def _footer(count: int, max_rows: int, shown: int) -> str:
    if count < 0:
        return f"showing the first {shown} rows (more follow)"
    more = f" (showing first {max_rows})" if count > max_rows else ""
    return f"{count} row{'s' if count != 1 else ''}{more}"


def format_html(table: pa.Table, max_rows: int = 20, total: int | None = None) -> str:
    """An HTML table (names and types in the head, NULL in italics) for notebooks."""
    names = table.schema.names
    head = table.slice(0, max_rows)
    cols = [python_values(c, n) for c, n in zip(head.columns, names)]
    parts = ["<table>", "<thead><tr>"]
    parts += [f"<th>{html.escape(n)}<br><small>{html.escape(_type_name(f.type))}</small></th>"
              for n, f in zip(names, table.schema)]
    parts.append("</tr></thead><tbody>")
    for r in range(head.num_rows):
        cells = []
        for col in cols:
            v = col[r]
            cells.append("<td><i>NULL</i></td>" if v is None else
                         f"<td>{html.escape(_truncate(value_text(v), 200))}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    parts.append(f"<p>{html.escape(_footer(table.num_rows if total is None else total, max_rows, head.num_rows))}</p>")
    return "".join(parts)
