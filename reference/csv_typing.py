"""CSV column typing over raw bytes: the executable specification of the C scanner
(``accel/src/csv_typing.c``, wrapped by ``velaria.accel.csv_typing``), same name and signature.

:func:`csv_column_kinds` types the data lines of a CSV file (no header) cell by cell with
the CSV typing rules of :mod:`velaria.io.typing_rules`, without building text columns. It
handles the plain case only and says so otherwise, never guessing: a quote character, a
line with another field count, invalid UTF-8 or a cell that may be a vector (``[...``) give
a status other than ``"ok"``, and the caller types the file with the full reader.
"""
from __future__ import annotations

import datetime
import re
from typing import Sequence

import pyarrow as pa

from velaria.io.typing_rules import classify_text_cell, merge_kinds

__all__ = ["csv_column_kinds", "csv_convert", "csv_type_convert", "STATUSES", "CONVERT_STATUSES"]

#: why the scanner could not type the bytes (``ok``: it did)
STATUSES = ("ok", "quote", "ragged", "utf8", "reference")
_LINE_END = re.compile("\r\n|\r|\n")
_ISO_ASCII = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                        r"(?:\.[0-9]{1,6})?)?", re.ASCII)


def _iso_is_real(cell: str) -> bool:
    """Whether an ISO-shaped cell names a real day from year 1 on (and a real time of day)."""
    match = _ISO_ASCII.fullmatch(cell)
    if match is None:
        return False
    try:
        datetime.date(int(cell[0:4]), int(cell[5:7]), int(cell[8:10]))
    except ValueError:                      # 2024-02-30, year 0
        return False
    if match.group(1) is None:
        return True
    return int(match.group(1)) < 24 and int(match.group(2)) < 60 and int(match.group(3)) < 60


def _cell_kind(cell: str, dates: bool) -> str:
    """The typing kind of one non-NULL cell; ``reference`` for a possible vector."""
    if cell.startswith("["):
        return "reference"
    kind = classify_text_cell(cell, "csv", dates)
    if kind in ("date", "timestamp") and not _iso_is_real(cell):
        return "string"
    return kind


def csv_column_kinds(data, ncols: int, delimiter: str = ",",
                     null_values: Sequence[str] = ("",), dates: bool = True,
                     kinds: Sequence[str] | None = None, threads: int = 1,
                     keep: Sequence[int] | None = None
                     ) -> tuple[str, list[str], int, bytes | None]:
    """``(status, kinds, rows, projected)`` for ``data``, whole data lines of a CSV file without its
    header (bytes-like, ending at a line end or at the end of the file).

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``; empty lines are skipped. Each line
    must have ``ncols`` fields split at ``delimiter`` (one ASCII character). A cell equal to
    one of ``null_values`` is NULL. ``kinds`` (one per column, default all ``null``) is the
    kind of each column so far; a column already ``string`` is not looked at. ``dates``:
    ISO dates and timestamps are ``date`` / ``timestamp``. ``threads`` only matters to the C
    twin (it gives the same answer on any number).

    ``keep`` (column indexes, ascending) asks for ``projected``: those columns' cells as a
    smaller CSV, each row being its kept cells, each followed by ``delimiter``, then
    ``\n`` (the trailing delimiter makes an extra empty field, so no row is an empty line);
    None without ``keep``.

    ``status`` is ``ok`` or the reason the bytes need the full reader (see ``STATUSES``);
    ``kinds``, ``rows`` and ``projected`` mean something only when it is ``ok``."""
    kinds = ["null"] * ncols if kinds is None else list(kinds)
    data = bytes(data)
    if b'"' in data:
        return "quote", kinds, 0, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "utf8", kinds, 0, None
    nulls = set(null_values)
    rows = 0
    out: list[str] = []
    for line in _LINE_END.split(text):
        if not line:
            continue
        cells = line.split(delimiter)
        if len(cells) != ncols:
            return "ragged", kinds, rows, None
        for i, cell in enumerate(cells):
            if kinds[i] == "string":
                continue
            kind = "null" if cell in nulls else _cell_kind(cell, dates)
            if kind == "reference":
                return "reference", kinds, rows, None
            kinds[i] = merge_kinds(kinds[i], kind)
        if keep is not None:
            out.append("".join(cells[i] + delimiter for i in keep) + "\n")
        rows += 1
    return "ok", kinds, rows, None if keep is None else "".join(out).encode("utf-8")


#: why the converter could not convert the bytes (``ok``: it did); ``convert``: a cell is no
#: value of its column's type by the typing rules; ``memory``: only the C twin runs out
CONVERT_STATUSES = STATUSES + ("convert", "memory")
_CONVERT_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
                  "date": pa.date32(), "timestamp": pa.timestamp("us"), "string": pa.string(),
                  "null": pa.string()}
_NO_VALUE = object()


def _timestamp(cell: str) -> datetime.datetime:
    """A real ISO date or timestamp cell (``YYYY-MM-DD[(T| )HH:MM:SS[.f{1,6}]]``)."""
    day = datetime.date(int(cell[0:4]), int(cell[5:7]), int(cell[8:10]))
    if len(cell) == 10:
        return datetime.datetime(day.year, day.month, day.day)
    micros = int(cell[20:].ljust(6, "0")) if len(cell) > 20 else 0
    return datetime.datetime(day.year, day.month, day.day, int(cell[11:13]), int(cell[14:16]),
                             int(cell[17:19]), micros)


def _value(cell: str, kind: str):
    """The value of a non-NULL cell in a column of ``kind``, or ``_NO_VALUE`` when the typing
    rules say it is no value of that kind."""
    if kind in ("string", "null"):
        return cell
    found = _cell_kind(cell, dates=kind in ("date", "timestamp"))
    if kind == "int" and found == "int":
        return int(cell)
    if kind == "float" and found in ("int", "float"):
        return float(cell)          # Python's float() rounds correctly, as the C twin does
    if kind == "bool" and found == "bool":
        return cell in ("true", "TRUE")
    if kind == "date" and found == "date":
        return _timestamp(cell).date()
    if kind == "timestamp" and found in ("date", "timestamp"):
        return _timestamp(cell)
    return _NO_VALUE


def csv_convert(data, ncols: int, kinds: Sequence[str | None], delimiter: str = ",",
                null_values: Sequence[str] = ("",), threads: int = 1,
                names: Sequence[str] | None = None) -> tuple[str, pa.Table | None]:
    """``(status, table)``: the columns of ``data`` whose ``kinds`` entry is not None, as
    arrays of that kind (``bool``, ``int`` int64, ``float`` float64, ``date`` date32,
    ``timestamp`` timestamp[us], ``string``; ``null`` is read as ``string``), in file order,
    named ``names`` (default ``c<index>``). ``data`` is read as :func:`csv_column_kinds`
    reads it (whole data lines, no header); a cell equal to one of ``null_values`` is NULL.
    The table is None unless ``status`` is ``ok``: the bytes hold what the scanner cannot
    read (``quote``, ``ragged``, ``utf8``) or a cell that is no value of its column's kind
    (``convert``: ``007`` in an int column, ``inf`` in a float column), which the caller
    leaves to a full CSV reader. ``threads`` only matters to the C twin."""
    read = [i for i, kind in enumerate(kinds) if kind is not None]
    names = [f"c{i}" for i in read] if names is None else list(names)
    data = bytes(data)
    if len(delimiter) != 1 or ord(delimiter) >= 128 or delimiter in '"\r\n':
        return "reference", None
    if b'"' in data:
        return "quote", None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "utf8", None
    nulls = set(null_values)
    columns: list[list] = [[] for _ in read]
    for line in _LINE_END.split(text):
        if not line:
            continue
        cells = line.split(delimiter)
        if len(cells) != ncols:
            return "ragged", None
        for out, i in zip(columns, read):
            value = None if cells[i] in nulls else _value(cells[i], kinds[i])
            if value is _NO_VALUE:
                return "convert", None
            out.append(value)
    schema = pa.schema([pa.field(name, _CONVERT_TYPES[kinds[i]]) for name, i in zip(names, read)])
    return "ok", pa.table([pa.array(values, type=field.type)
                           for values, field in zip(columns, schema)], schema=schema)


def _speculate(cells: list[tuple[str | None, str]]):
    """``(kind, array)`` of one column's cells in one part, each ``(kind, text)`` (kind None:
    NULL): the first value decides what the cells are read as (numbers, booleans, dates and
    timestamps, or text); a cell that cannot be read so gives ``(None, None)``, a column of
    NULLs ``("null", None)``."""
    group = {"int": "num", "float": "num", "bool": "bool", "date": "time", "timestamp": "time",
             "string": "str"}
    seen = {kind for kind, _ in cells if kind is not None}
    if not seen:
        return "null", None
    if len({group[k] for k in seen}) > 1:
        return None, None
    kind = "float" if "float" in seen else "timestamp" if "timestamp" in seen else seen.pop()
    values = [None if k is None else _value(text, kind) for k, text in cells]
    return kind, pa.array(values, type=_CONVERT_TYPES[kind])


def csv_type_convert(data, ncols: int, delimiter: str = ",",
                     null_values: Sequence[str] = ("",), dates: bool = True,
                     kinds: Sequence[str] | None = None, threads: int = 1,
                     convert: Sequence[int] = ()):
    """``(status, kinds, rows, parts)``: :func:`csv_column_kinds` (no projection) that also
    converts the columns ``convert`` while it types them, since their final types are not
    known yet by the kind of their own cells: ``parts`` (one here; the C twin may split a
    big buffer) holds ``(rows, [(kind, array), ...])``, one pair per converted column in
    file order. ``kind`` is what the column's cells in the part are: ``int`` (int64),
    ``float`` (float64; integers among decimals are read as decimals, ``-0`` is -0.0),
    ``bool``, ``date`` (date32), ``timestamp`` (timestamp[us]; dates among timestamps are
    midnight), ``string`` (every cell once the column is text: its kind so far, or the
    first value is text), ``null`` (only NULLs: no array), or None (no array: cells of two
    of those groups, e.g. text after numbers, which the caller parses again). A cell equal
    to a null marker is NULL. ``parts`` is empty unless ``status`` is ``ok``."""
    status, final, rows, _ = csv_column_kinds(data, ncols, delimiter, null_values, dates,
                                              kinds, threads)
    if status != "ok":
        return status, final, rows, []
    running = ["null"] * ncols if kinds is None else list(kinds)
    read = sorted(set(convert))
    nulls = set(null_values)
    cells: dict[int, list] = {i: [] for i in read}
    for line in _LINE_END.split(bytes(data).decode("utf-8")):
        if not line:
            continue
        row = line.split(delimiter)
        for i in read:
            text = row[i]
            if text in nulls:
                kind = None
            elif running[i] == "string":
                kind = "string"
            else:
                kind = _cell_kind(text, dates)
                running[i] = merge_kinds(running[i], kind)
            cells[i].append((kind, text))
    return status, final, rows, [(rows, [_speculate(cells[i]) for i in read])]
