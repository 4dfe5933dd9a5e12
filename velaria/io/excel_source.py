"""Excel (.xlsx) sheets read with openpyxl in read-only mode (rows stream from the sheet XML;
the workbook is never loaded whole), typed per column, as an in-memory TableSource.

The first row is the header (an empty header cell becomes ``Unnamed: <i>``, as pandas does,
and so does a column whose only cells lie right of the header row's last cell);
rows whose cells are all empty are skipped. Cell values keep their Excel type: numbers give
int64 (all integral) or float64, booleans bool, text string (never re-typed). Dates and times
become text formatted with ``date_format`` when ``coerce_datetime_to_string`` (the default),
else timestamps. A column mixing kinds becomes string.
"""
from __future__ import annotations

import datetime as _dt
import warnings
import zipfile

import pyarrow as pa

from ..errors import SourceFormatError, VelariaError, VelariaValueError
from .base import ArrowTableSource, check_unique_names
from .paths import as_path_str, check_readable_file
from .typing_rules import arrow_type, merge_kinds, render_value

__all__ = ["ExcelSource", "load_excel_table"]


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return "timestamp"
    return "string"


def _text(value, date_format: str):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.strftime(date_format)
    return render_value(value)


def _load_book(path: str, data_only: bool):
    """An openpyxl read-only workbook over an open handle (openpyxl refuses paths without an
    .xlsx extension; a handle works for any name). Closing the book closes the handle."""
    import openpyxl

    handle = open(path, "rb")
    try:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=data_only)
    except BaseException:
        handle.close()
        raise
    close = book.close

    def close_both():
        try:
            close()
        finally:
            handle.close()

    book.close = close_both
    return book


def _open_sheet(path: str, sheet_name):
    try:
        book = _load_book(path, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for damaged files
        raise SourceFormatError(
            f"cannot read excel file: {path} (not a readable .xlsx workbook: {exc})") from None
    names = book.sheetnames
    if isinstance(sheet_name, bool) or not isinstance(sheet_name, (int, str)):
        book.close()
        raise TypeError("sheet_name must be a sheet index (int) or a sheet name (str)")
    if isinstance(sheet_name, int):
        if not 0 <= sheet_name < len(names):
            book.close()
            raise VelariaValueError(
                f"sheet index {sheet_name} is out of range for {path}; the workbook has "
                f"{len(names)} sheet(s): {', '.join(repr(n) for n in names)}")
        return book, book[names[sheet_name]], names[sheet_name]
    if sheet_name not in names:
        book.close()
        raise VelariaValueError(
            f"worksheet named {sheet_name!r} not found in {path}; the sheets are: "
            f"{', '.join(repr(n) for n in names)}")
    return book, book[sheet_name], sheet_name


def _sheet_has_formulas(path: str, sheet) -> bool:
    """Whether the sheet's XML holds any formula element (read as a stream, not parsed)."""
    member = getattr(sheet, "_worksheet_path", None) or getattr(sheet, "worksheet_path", None)
    if not member:
        return True
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member.lstrip("/")) as handle:
            tail = b""
            while True:
                data = handle.read(1 << 20)
                if not data:
                    return False
                if b"<f>" in tail + data or b"<f " in tail + data:
                    return True
                tail = data[-3:]
    except (KeyError, OSError, zipfile.BadZipFile):
        return True


def _uncached_formulas(path: str, sheet_name) -> int:
    """How many formula cells of the sheet have no cached result (they read as NULL)."""
    values_book = _load_book(path, data_only=True)
    try:
        values = values_book[values_book.sheetnames[sheet_name]] \
            if isinstance(sheet_name, int) else values_book[sheet_name]
        if not _sheet_has_formulas(path, values):
            return 0
        formula_book = _load_book(path, data_only=False)
        try:
            formulas = formula_book[values.title]
            values.reset_dimensions()
            formulas.reset_dimensions()
            count = 0
            for vrow, frow in zip(values.iter_rows(values_only=True),
                                  formulas.iter_rows(values_only=True)):
                for value, formula in zip(vrow, frow):
                    if value is None and isinstance(formula, str) and formula.startswith("="):
                        count += 1
            return count
        finally:
            formula_book.close()
    finally:
        values_book.close()


def _widen(row, names: list[str], columns: list[list], kinds: list[str]) -> None:
    """Add a column ``Unnamed: <i>`` (NULL in the rows before) for every position up to the
    last non-empty cell of ``row`` that lies right of the header: a cell there is data,
    and dropping it would lose it silently."""
    last = max((i for i, v in enumerate(row) if v is not None and v != ""), default=-1)
    filled = len(columns[0]) if columns else 0
    for i in range(len(names), last + 1):
        name = f"Unnamed: {i}"
        if name in names:
            raise SourceFormatError(f"column {name!r} of the header row collides with the name "
                                    f"given to an unnamed column of data; rename it")
        names.append(name)
        columns.append([None] * filled)
        kinds.append("null")


def load_excel_table(path, sheet_name=0, date_format="%Y-%m-%d",
                     coerce_datetime_to_string=True) -> tuple[pa.Table, str]:
    """(typed table, sheet title) of one sheet; see the module docstring."""
    path = as_path_str(path)
    check_readable_file(path, "cannot open excel file")
    book, sheet, title = _open_sheet(path, sheet_name)
    try:
        # read-only mode trusts the sheet's <dimension> record, which writers often leave
        # stale; forgetting it makes openpyxl read every row and cell that is really there
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        header = None
        for row in rows:
            if any(v is not None for v in row):
                header = list(row)
                break
        if header is None:
            return pa.table({}), title
        while header and header[-1] is None:
            header.pop()
        names = [f"Unnamed: {i}" if v is None else _text(v, date_format)
                 for i, v in enumerate(header)]
        check_unique_names(names, f"the header row of sheet {title!r} of {path}")
        columns: list[list] = [[] for _ in names]
        kinds = ["null"] * len(names)
        for row in rows:
            if not any(v is not None for v in row):
                continue
            _widen(row, names, columns, kinds)
            for i in range(len(names)):
                value = row[i] if i < len(row) else None
                if isinstance(value, str) and value == "":
                    value = None
                columns[i].append(value)
                if value is not None and kinds[i] != "string":
                    kinds[i] = merge_kinds(kinds[i], _kind(value))
    except VelariaError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means a damaged workbook
        raise SourceFormatError(
            f"cannot read sheet {title!r} of excel file {path}: the workbook is damaged "
            f"({type(exc).__name__}: {exc}); re-save it from a spreadsheet program") from None
    finally:
        book.close()
    try:
        uncached = _uncached_formulas(path, sheet_name)
    except Exception:  # noqa: BLE001 - the values were read fine; the warning is best effort
        uncached = 0
    if uncached:
        warnings.warn(
            f"{uncached} formula cell(s) of sheet {title!r} in {path} have no saved result "
            f"and read as NULL (the file was written by a program that does not compute "
            f"formulas); open and save it in a spreadsheet program to store the results",
            RuntimeWarning, stacklevel=3)
    arrays = []
    for col, kind in zip(columns, kinds):
        if kind == "timestamp" and coerce_datetime_to_string:
            kind = "string"
        if kind == "timestamp":
            arrays.append(pa.array(col, pa.timestamp("us")))
        elif kind in ("string", "null"):
            arrays.append(pa.array([_text(v, date_format) for v in col], pa.string()))
        elif kind == "float":
            arrays.append(pa.array([None if v is None else float(v) for v in col], pa.float64()))
        else:
            arrays.append(pa.array(col, arrow_type(kind)))
    return pa.Table.from_arrays(arrays, names=names), title


class ExcelSource(ArrowTableSource):
    """One sheet of an .xlsx workbook (read eagerly, streamed row by row)."""

    kind = "excel"

    def __init__(self, path, sheet_name=0, date_format="%Y-%m-%d",
                 coerce_datetime_to_string=True):
        self.path = as_path_str(path)
        table, self.sheet = load_excel_table(self.path, sheet_name, date_format,
                                             coerce_datetime_to_string)
        super().__init__(table)

    def describe(self, columns=None, filters=None) -> str:
        return f"path={self.path} sheet={self.sheet!r}"
