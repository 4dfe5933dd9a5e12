"""Printing results: one strict-JSON document (the default for scripts), a readable table, or CSV.

Tables use rich when it is installed (wrapped, truncated cells; vectors abbreviated) and a
plain boxed table otherwise. JSON never contains ``NaN``/``Infinity`` (they become null).
"""
from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass

import pyarrow as pa

from ..workspace.artifacts import json_safe

__all__ = ["Output", "emit", "emit_error", "dumps", "cell_text"]

_MAX_CELL = 60
_VECTOR_HEAD = 3


@dataclass
class Output:
    """What a command produced: the JSON ``doc``, and optionally the result ``table`` or a
    ``text`` (explain) that the table/csv formats print instead."""

    doc: dict
    table: pa.Table | None = None
    text: str | None = None
    exit_code: int = 0
    text_always: bool = False  # print ``text`` as is even for --format json
    total_rows: int | None = None  # rows in the full result when ``table`` shows only the first ones
    key_values: dict | None = None  # shown as a field/value table by --format table/csv
    columns: list[str] | None = None  # the columns table/csv show of a listing (default: all)


def dumps(doc) -> str:
    """Upstream's JSON text (``indent=2``, UTF-8 kept), strict: no NaN/Infinity tokens."""
    return json.dumps(json_safe(doc), indent=2, ensure_ascii=False, allow_nan=False)


def cell_text(value) -> str:
    """A value for a table cell: vectors abbreviated to their first elements and length; NULL
    as ``NULL`` and a text ``null`` quoted, line breaks as ``\\n`` (as ``DataFrame.show``)."""
    from ..render import cell_text as scalar_text
    if isinstance(value, (list, tuple)) and len(value) > 2 * _VECTOR_HEAD and \
            all(isinstance(v, (int, float)) or v is None for v in value):
        def short(v):  # 6 significant digits are plenty to recognise a vector on screen
            return "null" if v is None else f"{v:.6g}"
        head = ", ".join(short(v) for v in value[:_VECTOR_HEAD])
        return f"[{head}, …, {short(value[-1])}] ({len(value)} values)"
    if isinstance(value, dict):
        return json.dumps(json_safe(value), ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(cell_text(v) for v in value) + "]"
    return scalar_text(value)


def _rows_of(out: Output) -> tuple[list[str], list[list]] | None:
    """Column names and rows to show for ``out``: its table, or the main list in its doc."""
    if out.table is not None:
        return out.table.schema.names, [list(r.values()) for r in out.table.to_pylist()]
    doc = out.doc
    for key in ("rows", "runs", "artifacts"):  # result rows win over lists of records
        for holder in (doc, doc.get("preview"), doc.get("result")):
            rows = holder.get(key) if isinstance(holder, dict) else None
            if not isinstance(rows, list):
                continue
            names = list(holder.get("schema") or []) if key == "rows" else list(out.columns or [])
            for r in rows if out.columns is None or key == "rows" else []:
                for k in r:
                    if k not in names:
                        names.append(k)
            return names, [[r.get(n) for n in names] for r in rows]
    return None


def _plain_table(names: list[str], rows: list[list]) -> str:
    cells = [[_clip(cell_text(v)) for v in r] for r in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [sep, "| " + " | ".join(n.ljust(w) for n, w in zip(names, widths)) + " |", sep]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.append(sep)
    return "\n".join(lines)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_CELL else text[:_MAX_CELL - 1] + "…"


def _rich_table(names: list[str], rows: list[list], stream) -> bool:
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return False
    cells = [[cell_text(v) for v in r] for r in rows]
    table = Table(header_style="bold")
    natural = 4
    for i, n in enumerate(names):
        longest = max([len(n)] + [len(r[i]) for r in cells])
        numeric = bool(rows) and all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
                                     for r in rows if r[i] is not None)
        # short cells (ids, times, numbers) never wrap; long ones wrap within _MAX_CELL
        table.add_column(n, justify="right" if numeric else "left", no_wrap=longest <= 32,
                         overflow="ellipsis" if longest <= 32 else "fold", max_width=_MAX_CELL)
        natural += min(longest, _MAX_CELL) + 3
    for r in cells:  # Text, not markup: a value such as "[a, b]" must print as is
        table.add_row(*[Text(_clip(c) if len(c) > 4 * _MAX_CELL else c) for c in r])
    terminal = getattr(stream, "isatty", lambda: False)()
    console = Console(file=stream, highlight=False, width=None if terminal else max(80, min(natural, 400)))
    console.print(table)
    return True


def _key_values(doc: dict) -> tuple[list[str], list[list]]:
    return ["field", "value"], [[k, v] for k, v in doc.items()]


def emit(out: Output, fmt: str, stream=None) -> None:
    """Print ``out`` in ``fmt`` (``json``, ``table`` or ``csv``) to ``stream`` (stdout)."""
    stream = stream or sys.stdout
    if out.text_always:
        stream.write(out.text)
        return
    if fmt == "json":
        stream.write(dumps(out.doc) + "\n")
        return
    if out.text is not None:
        stream.write(out.text if out.text.endswith("\n") else out.text + "\n")
        return
    listing = None if out.key_values is not None else _rows_of(out)
    names, rows = listing or _key_values(out.key_values if out.key_values is not None else out.doc)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(names)
        from ..render import value_text
        for r in rows:
            w.writerow(["" if v is None else (json.dumps(json_safe(v)) if isinstance(v, dict) else value_text(v))
                        for v in r])
        stream.write(buf.getvalue())
        return
    if not _rich_table(names, rows, stream):
        stream.write(_plain_table(names, rows) + "\n")
    if listing is None:
        return
    total = out.total_rows if out.total_rows is not None else len(rows)
    more = f" (showing first {len(rows)})" if total > len(rows) else ""
    stream.write(f"{total} row{'s' if total != 1 else ''}{more}\n")


def emit_error(doc: dict, fmt: str) -> None:
    """JSON: the error document on stdout (upstream). Table/csv: a readable message on stderr."""
    if fmt == "json":
        sys.stdout.write(dumps(doc) + "\n")
        return
    lines = [f"velaria: error: {doc['error']}"]
    details = doc.get("details") or {}
    if "cause" in details:
        lines.append(f"  cause: {details['cause']}")
    if "hint" in details:
        lines.append(f"  hint: {details['hint']}")
    tag = doc["error_type"] + (f", phase {doc['phase']}" if doc.get("phase") else "")
    lines.append(f"  ({tag})")
    sys.stderr.write("\n".join(lines) + "\n")
