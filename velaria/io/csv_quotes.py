"""Detect a CSV quoted field that is never closed.

pyarrow's CSV reader treats an unterminated quoted field as one value running to the end of
the file, so ``a,b\\n1,"abc\\n2,3\\n`` would read as a single row: every later row silently
disappears into one cell. :func:`check_quotes_terminated` finds that case and raises an error
naming the line where the open quote is.

Quoting follows pyarrow's reader: a quote opens a quoted field only as the first character of
a field (after a delimiter, a line end, or the start of the file); inside, ``""`` is an
escaped quote and a single ``"`` closes the field. A quote in the middle of an unquoted field
is an ordinary character.

The check is cheap in the common case: a well-formed region holds an even number of quote
characters, so the exact scan (a regex walk over the quoted fields) runs only when the count
is odd. Both passes read the file in bounded chunks.
"""
from __future__ import annotations

import re

from ..errors import SourceFormatError
from .paths import locate_offset

__all__ = ["check_quotes_terminated", "find_unterminated_quote"]

_READ_BYTES = 16 << 20
#: the rest of a quoted field after its opening quote, up to and including the closing quote
_QUOTED_REST = re.compile(rb'[^"]*(?:""[^"]*)*"(?!")')


def _count_quotes(path: str, offset: int) -> int:
    count = 0
    with open(path, "rb") as handle:
        handle.seek(offset)
        while True:
            data = handle.read(_READ_BYTES)
            if not data:
                return count
            count += data.count(b'"')


def find_unterminated_quote(path: str, offset: int, delimiter: str) -> int | None:
    """The byte offset of the opening quote of a quoted field that is never closed, scanning
    from ``offset`` (a record boundary), or None when every quoted field is closed."""
    opener = re.compile(rb'(?:(?<=[\r\n])|(?<=' + re.escape(delimiter.encode()) +
                        rb')|(?<=\xef\xbb\xbf)|\A)"')
    with open(path, "rb") as handle:
        handle.seek(offset)
        buf = handle.read(_READ_BYTES)
        base = offset  # file offset of buf[0]
        eof = len(buf) < _READ_BYTES
        pos = 0
        while True:
            found = opener.search(buf, pos)
            if found is None:
                if eof:
                    return None
                # keep the last byte: the lookbehind of an opener at the refill needs it
                base += len(buf) - 1
                buf = buf[-1:] + handle.read(_READ_BYTES)
                eof = len(buf) - 1 < _READ_BYTES
                pos = 1
                continue
            closed = _QUOTED_REST.match(buf, found.end())
            # a quote ending the buffer may be the first half of an escaped ``""``
            while (closed is None or closed.end() == len(buf)) and not eof:
                more = handle.read(_READ_BYTES)
                eof = len(more) < _READ_BYTES
                buf += more
                closed = _QUOTED_REST.match(buf, found.end())
            if closed is None:
                return base + found.start()
            pos = closed.end()


def check_quotes_terminated(path: str, offset: int, delimiter: str,
                            shown_path: str | None = None) -> None:
    """Raise SourceFormatError when a quoted field from ``offset`` on is never closed.
    ``shown_path`` is the name messages use (default ``path``)."""
    if _count_quotes(path, offset) % 2 == 0:
        return
    at = find_unterminated_quote(path, offset, delimiter)
    if at is None:
        return
    line, column = locate_offset(path, at)
    raise SourceFormatError(
        f"unterminated quoted field in csv file {shown_path or path}: the quote at line {line}, column "
        f"{column} is never closed, so the rest of the file would be read as one value; "
        f"close the quote (write a quote inside a quoted field as \"\")")
