"""``read_excel``: one sheet of an .xlsx workbook as a DataFrame.

Built directly on openpyxl in read-only mode (no pandas): rows stream from the sheet, columns
are typed (see :mod:`velaria.io.excel_source`), sheets are chosen by index or name, and an
unknown sheet lists the sheets that exist.
"""
from __future__ import annotations

from .io.excel_source import ExcelSource

__all__ = ["read_excel"]


def read_excel(session, path, *, sheet_name=0, date_format="%Y-%m-%d",
               coerce_datetime_to_string=True):
    """Read sheet ``sheet_name`` (index or name) of the .xlsx file ``path``; dates become
    text formatted with ``date_format`` unless ``coerce_datetime_to_string`` is false."""
    source = ExcelSource(path, sheet_name=sheet_name, date_format=date_format,
                         coerce_datetime_to_string=coerce_datetime_to_string)
    if hasattr(session, "context"):
        return session.context.frame_from_source(source)
    return session.create_dataframe_from_arrow(source.table)
