"""Convert the columns a CSV scan reads straight from a quote-free chunk's bytes to Arrow.

pyarrow's reader tokenizes every field of every row, builds its own parse buffers and then
converts the requested columns. :class:`ChunkConverter` instead hands each chunk to the C
converter (:func:`velaria.accel.csv_typing.csv_convert`, on every core): one walk over the
bytes finds the cells and writes only the read columns' values into Arrow buffers (int64,
float64 correctly rounded, bool, date32, timestamp[us], string), NULL for a null marker.

It converts by the typing rules, which are stricter than pyarrow's conversions (``007`` is
no integer, ``inf`` no double), so on every chunk it accepts it gives exactly the values
pyarrow gives. It says when it cannot, and the caller parses the chunk with pyarrow as
before: a quote character (the caller switches to the quote-aware reader), a line with
another field count (pyarrow's error or skipped row), invalid UTF-8, or a cell that is no
value of its column's type (an explicit ``column_types`` pyarrow may still accept, or a
file changed after typing: pyarrow then reports the conversion error).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pyarrow as pa

from .csv_scan_typing import usable_delimiter
from .typing_rules import arrow_type, kind_of_arrow_type

__all__ = ["ChunkConverter", "convertible_kind"]

#: the kinds the C converter writes
_KINDS = ("int", "float", "bool", "date", "timestamp", "string")


def convertible_kind(typ: pa.DataType) -> str | None:
    """The converter's kind for a column read as ``typ``, or None when it has none."""
    kind = kind_of_arrow_type(typ)
    # only the exact types the converter writes (kind_of_arrow_type reads any other
    # type as text, and any timestamp as one)
    return kind if typ == arrow_type(kind) and kind in _KINDS else None


class ChunkConverter:
    """Converts the columns ``need`` (of ``names``, read as ``types``) out of chunks of a CSV
    file split at ``delimiter``, with ``null_values`` meaning NULL."""

    def __init__(self, names: Sequence[str], need: Sequence[str], kinds: Mapping[str, str],
                 delimiter: str, null_values: Sequence[str]):
        from ..accel import csv_typing

        self._kernel = csv_typing
        self.ncols = len(names)
        self.need = list(need)
        self.kinds = [kinds.get(name) for name in names]
        #: the read columns in file order, as the converter returns them
        self.file_order = [name for name in names if name in kinds]
        self.delimiter = delimiter
        self.null_values = list(null_values)
        self.threads = csv_typing.default_threads()

    @classmethod
    def for_scan(cls, names: Sequence[str], need: Sequence[str] | None,
                 types: Mapping[str, pa.DataType], delimiter: str,
                 null_values: Sequence[str]) -> "ChunkConverter | None":
        """A converter when every read column has a type it produces and the scanner can
        split at ``delimiter``; else None (pyarrow parses). A scan reading no column (a row
        count) is left to pyarrow too."""
        if not need or not usable_delimiter(delimiter) or len(set(need)) != len(need):
            return None
        kinds = {}
        for name in need:
            kind = convertible_kind(types.get(name, pa.string()))
            if kind is None:
                return None
            kinds[name] = kind
        return cls(names, need, kinds, delimiter, null_values)

    def convert(self, data) -> tuple[str, pa.Table | None]:
        """``(status, table of the read columns in the scan's order)`` of ``data``, whole
        data lines (no header); the table only with status ``ok`` (the statuses:
        ``velaria.reference.csv_typing.CONVERT_STATUSES``)."""
        status, table = self._kernel.csv_convert(
            data, self.ncols, self.kinds, self.delimiter, self.null_values, self.threads,
            names=self.file_order)
        if status != "ok":
            return status, None
        return status, table if self.file_order == self.need else table.select(self.need)
