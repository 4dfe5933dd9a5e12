"""Cut the columns a CSV scan reads out of a quote-free chunk, so pyarrow parses less.

pyarrow's reader tokenizes every field of a row even when it converts only a few columns.
:class:`ChunkProjector` hands each chunk to the C scanner (:mod:`velaria.accel.csv_typing`,
on every core) first: one walk over the bytes copies the read columns' cells into a smaller
CSV (each row: the kept cells, each followed by the delimiter, then ``\\n``; the trailing
delimiter makes an empty last field, named :data:`PAD`, so no row becomes an empty line that
a reader would skip). pyarrow then parses that instead of the chunk, with the same options:
the same cells meet the same conversions, so the rows are the same.

The walk says when it cannot do this exactly, and the chunk is then parsed as it is: a quote
character (the caller switches to the quote-aware reader), a line with another field count
(an error or a skipped row, pyarrow's call), invalid UTF-8 anywhere in the chunk.
"""
from __future__ import annotations

from typing import Sequence

from .csv_scan_typing import usable_delimiter

__all__ = ["ChunkProjector", "PAD"]

#: name of the empty last field of each cut-out row (no header holds it: a NUL never reaches
#: a header, binary files are refused)
PAD = "\x00pad"


class ChunkProjector:
    """Cuts ``need`` (some of ``names``) out of chunks of a CSV file split at ``delimiter``."""

    def __init__(self, names: Sequence[str], need: Sequence[str], delimiter: str):
        from ..accel import csv_typing

        self._kernel = csv_typing
        self.ncols = len(names)
        self.delimiter = delimiter
        wanted = set(need)
        self.keep = [i for i, name in enumerate(names) if name in wanted]
        #: the column names of a cut-out chunk, in file order, then :data:`PAD`
        self.columns = [names[i] for i in self.keep] + [PAD]
        self.threads = csv_typing.default_threads()
        self._out: bytearray | None = None    # the scanner's scratch buffer, reused

    @classmethod
    def for_scan(cls, names: Sequence[str], need: Sequence[str] | None,
                 delimiter: str) -> "ChunkProjector | None":
        """A projector when cutting pays (the scan reads fewer columns than the file has)
        and the scanner can split at ``delimiter``; else None."""
        if need is None or len(set(need)) >= len(names) or not usable_delimiter(delimiter):
            return None
        return cls(names, need, delimiter)

    def cut(self, data) -> tuple[str, bytes | None]:
        """``(status, rows of the kept columns)`` of ``data``, whole data lines (no header);
        the rows only with status ``ok`` (the statuses: ``velaria.reference.csv_typing``)."""
        need = 2 * len(data) + 16 * self.threads + 16
        if self._out is None or len(self._out) < need:
            self._out = bytearray(need)
        # every column starts as text: no classification, only the walk and the copy
        status, _, _, rows = self._kernel.csv_column_kinds(
            data, self.ncols, self.delimiter, (), False, ["string"] * self.ncols,
            self.threads, keep=self.keep, out=self._out)
        return status, rows
