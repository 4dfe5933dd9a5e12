"""Text rendering of values and tables (``show()``, ``repr``, CLI output)."""
from __future__ import annotations

import math

import pyarrow as pa

__all__ = ["value_text", "format_table", "python_values"]


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


def format_table(table: pa.Table, max_rows: int = 20) -> str:
    """A boxed text table of the first ``max_rows`` rows, with a row count footer."""
    names = table.schema.names
    head = table.slice(0, max_rows)
    cols = [[value_text(v) for v in python_values(c, n)] for c, n in zip(head.columns, names)]
    widths = [max([len(n)] + [len(x) for x in col]) for n, col in zip(names, cols)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [sep, "| " + " | ".join(n.ljust(w) for n, w in zip(names, widths)) + " |", sep]
    for r in range(head.num_rows):
        cells = []
        for col, w, f in zip(cols, widths, table.schema):
            text = col[r]
            numeric = pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
            cells.append(text.rjust(w) if numeric else text.ljust(w))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(sep)
    more = f" (showing first {max_rows})" if table.num_rows > max_rows else ""
    lines.append(f"{table.num_rows} row{'s' if table.num_rows != 1 else ''}{more}")
    return "\n".join(lines)
