"""Line files (logs and other one-record-per-line text) as a typed TableSource.

Each mapping ``(column, source_index)`` names one output column:

* ``mode="split"``: the line is split on ``split_delimiter`` (no quoting); ``source_index``
  is the 0-based field; a line with fewer fields gives NULL.
* ``mode="regex"``: the line must fully match ``regex_pattern`` (Python ``re.fullmatch``);
  ``source_index`` is the capture group (0 = the whole match). Lines that do not match are
  skipped and counted (``source.stats["unmatched_lines"]``, shown by explain, and a
  RuntimeWarning when any line did not match). Patterns that can backtrack exponentially
  (``(a+)+``) are rejected up front (:mod:`velaria.io.regex_safety`).

Field text is not unescaped. Empty, ``null`` and ``NULL`` fields are NULL; other fields are
typed per column with the ``line`` dialect of :mod:`velaria.io.typing_rules`.
"""
from __future__ import annotations

import re
import warnings
from typing import Iterator, Sequence

import pyarrow as pa

from ..errors import SourceFormatError, VelariaValueError
from .paths import check_readable_file, raise_invalid_utf8, reject_binary
from . import line_regex_fast
from .line_regex_fast import re2_pattern
from .regex_safety import check_regex
from .typed_source import TypedFileSource
from .typing_rules import classify_text, convert_text

__all__ = ["LineSource", "LINE_MODES"]

LINE_MODES = ("split", "regex")
_NULL_TEXT = {"", "null", "NULL"}


_NEWLINES = re.compile(r"\r\n|\r|\n")


def _split_universal(text: str, skip_empty: bool) -> Iterator[str]:
    """The lines of ``text`` as Python's universal-newline reading gives them."""
    parts = _NEWLINES.split(text)
    if parts and parts[-1] == "":
        parts.pop()  # the text ends with a line end
    for line in parts:
        if line or not skip_empty:
            yield line


class LineSource(TypedFileSource):
    """A line file read in split or regex mode; see the module docstring."""

    kind = "line"
    dialect = "line"

    @property
    def python_parser(self) -> bool:
        """Regex files on the Arrow path keep Arrow arrays, sized by bytes (as CSV)."""
        return self._re2 is None

    def __init__(self, path: str, mappings: Sequence[tuple[str, int]], mode: str = "split",
                 split_delimiter: str = ",", regex_pattern: str = "",
                 skip_empty_lines: bool = True, parser: str = "auto"):
        if mode not in LINE_MODES:
            raise VelariaValueError(f"mode must be one of: split, regex (got {mode!r})")
        mappings = [(str(name), int(index)) for name, index in mappings]
        if not mappings:
            raise VelariaValueError(
                "line source mappings cannot be empty (pass mappings=[('name', 0), ...])")
        seen = set()
        for name, _ in mappings:
            if name in seen:
                raise VelariaValueError(f"duplicate column: {name} (in line source mappings)")
            seen.add(name)
        self.mode = mode
        self.split_delimiter = split_delimiter
        self.regex_pattern = regex_pattern
        self.skip_empty_lines = bool(skip_empty_lines)
        self.mappings = mappings
        self._regex = None
        if mode == "regex":
            if not regex_pattern:
                raise VelariaValueError(
                    "regex mode requires regex_pattern (pass regex_pattern=r'...')")
            self._regex = check_regex(regex_pattern)
            for name, index in mappings:
                if index > self._regex.groups:
                    raise VelariaValueError(
                        f"mapping {name!r} uses source_index {index}, beyond the "
                        f"{self._regex.groups} capture group(s) of regex_pattern "
                        f"{regex_pattern!r} (0 is the whole match)")
        if parser not in ("auto", "arrow", "python"):
            raise VelariaValueError(f"parser must be one of: auto, arrow, python (got {parser!r})")
        #: regex mode: (RE2 pattern, group names) when Arrow's RE2 can take chunks of lines
        self._re2 = None
        if self._regex is not None and parser != "python":
            self._re2 = re2_pattern(regex_pattern, self._regex.groups)
        check_readable_file(path, "cannot open line file", allow_empty=True)
        reject_binary(path, "line file")
        super().__init__(path, [name for name, _ in mappings])

    # ---- hooks -------------------------------------------------------------------------
    def options_key(self) -> str:
        return (f"mode={self.mode};delimiter={self.split_delimiter!r};"
                f"regex={self.regex_pattern!r};skip_empty={self.skip_empty_lines};"
                f"mappings={self.mappings!r}")

    def _describe_options(self) -> str:
        if self.mode == "split":
            text = f"mode=split delimiter={self.split_delimiter!r}"
        else:
            text = (f"mode=regex regex_pattern={self.regex_pattern!r} "
                    f"unmatched_lines={self._stats.get('unmatched_lines', 0)} "
                    f"parser={'arrow' if self._re2 is not None else 'python'}")
        maps = ",".join(f"{n}:{i}" for n, i in self.mappings)
        return f"{text} mappings=[{maps}]"

    def _classify(self, raw) -> str:
        return classify_text(raw, "line")

    def _convert(self, raw, kind: str) -> pa.Array:
        return convert_text(raw, kind, "line")

    def _check_typing_stats(self, stats: dict) -> None:
        if self.mode == "regex":
            self._warn_unmatched(stats)
            return
        if not stats.get("rows"):
            return
        widest = stats.get("max_fields", 0)
        for name, index in self.mappings:
            if index >= widest:
                raise SourceFormatError(
                    f"mapping {name!r} uses source_index {index}, beyond the fields of every "
                    f"line of {self.path} (the widest line has {widest} field(s) split on "
                    f"{self.split_delimiter!r}); fix the mapping or split_delimiter")

    def _warn_unmatched(self, stats: dict) -> None:
        unmatched = stats.get("unmatched_lines", 0)
        if not unmatched or stats.get("warned"):
            return
        stats["warned"] = True
        total = unmatched + stats.get("rows", 0)
        if stats.get("rows"):
            what = f"{unmatched} of {total} line(s) of line file {self.path} did not fully match"
        else:
            what = f"none of the {total} line(s) of line file {self.path} fully matched"
        warnings.warn(
            f"{what} regex_pattern {self.regex_pattern!r}; unmatched lines are skipped (the "
            f"pattern must match the whole line: add '.*' where the line may hold more)",
            RuntimeWarning, stacklevel=4)

    # ---- parsing -----------------------------------------------------------------------
    def _lines(self) -> Iterator[str]:
        """The file's lines without their line ends (UTF-8, BOM and CRLF handled)."""
        try:
            with open(self.path, encoding="utf-8-sig", newline=None) as handle:
                for line in handle:
                    if line.endswith("\n"):
                        line = line[:-1]
                    if not line and self.skip_empty_lines:
                        continue
                    yield line
        except UnicodeDecodeError:
            raise_invalid_utf8(self.path, "line file")

    def _raw_batches(self, names, batch_rows, stats):
        if self._re2 is not None:
            return self._regex_chunks(names, batch_rows, stats)
        return self._line_batches(self._lines(), names, batch_rows, stats)

    def _regex_chunks(self, names, batch_rows, stats):
        """Regex mode by chunks: Arrow's RE2 where it matches ``re`` exactly, else the
        reference path for that chunk (see :mod:`velaria.io.line_regex_fast`)."""
        index_of = dict(self.mappings)
        indexes = [index_of[n] for n in names]
        pattern, group_names = self._re2
        null_text = pa.array(sorted(_NULL_TEXT), pa.string())
        unmatched = 0
        fast_rows = 0
        for chunk, at_end in line_regex_fast.chunks(self.path):
            if line_regex_fast.fast_chunk(chunk):
                lines = line_regex_fast.chunk_lines(chunk, self.skip_empty_lines, at_end)
                for start in range(0, len(lines), batch_rows):
                    columns, missed = line_regex_fast.extract_groups(
                        lines.slice(start, batch_rows), pattern, group_names, indexes, null_text)
                    unmatched += missed
                    fast_rows += len(columns[0]) if columns else 0
                    yield columns
                continue
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:
                raise_invalid_utf8(self.path, "line file")
            part = {}
            yield from self._line_batches(_split_universal(text, self.skip_empty_lines), names,
                                          batch_rows, part)
            unmatched += part.get("unmatched_lines", 0)
        if stats is not None:
            stats["unmatched_lines"] = unmatched
            stats["max_fields"] = 0
            stats["fast_rows"] = fast_rows

    def _line_batches(self, lines, names, batch_rows, stats):
        """The reference path: each line matched (or split) in Python."""
        index_of = dict(self.mappings)
        indexes = [index_of[n] for n in names]
        columns: list[list] = [[] for _ in names]
        count = 0
        max_fields = 0
        unmatched = 0
        split = self.mode == "split"
        delim = self.split_delimiter
        regex = self._regex
        for line in lines:
            if split:
                fields = line.split(delim)
                if len(fields) > max_fields:
                    max_fields = len(fields)
                nfields = len(fields)
                for col, idx in zip(columns, indexes):
                    cell = fields[idx] if idx < nfields else None
                    col.append(None if cell in _NULL_TEXT else cell)
            else:
                match = regex.fullmatch(line)
                if match is None:
                    unmatched += 1
                    continue
                for col, idx in zip(columns, indexes):
                    cell = match.group(idx)
                    col.append(None if cell is None or cell in _NULL_TEXT else cell)
            count += 1
            if count == batch_rows:
                yield [pa.array(col, pa.string()) for col in columns]
                columns = [[] for _ in names]
                count = 0
        if count:
            yield [pa.array(col, pa.string()) for col in columns]
        if stats is not None:
            stats["max_fields"] = max_fields
            stats["unmatched_lines"] = unmatched
