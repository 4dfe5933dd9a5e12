"""Finding the end of the last complete record of an RFC 4180 CSV file.

The CSV file sink appends one micro-batch at a time. A process killed in the middle of such an
append leaves the file ending in part of a record; the restarted query cuts that part off
before it appends again, so the file never holds a torn line.

A record ends at a line break that lies outside a quoted field. In RFC 4180 every quote
character belongs to a quoted field (a quote inside one is written twice), so a position is
outside every quoted field exactly when the number of quote characters before it is even.
"""
from __future__ import annotations

import os

__all__ = ["complete_length", "first_record_length", "cut_torn_tail"]

_QUOTE = b'"'
_CHUNK = 1 << 20


def _quotes_in(f, start: int, end: int) -> int:
    """Quote characters among bytes ``[start, end)`` of the open binary file ``f``."""
    f.seek(start)
    count = 0
    left = end - start
    while left > 0:
        data = f.read(min(_CHUNK, left))
        if not data:
            break
        count += data.count(_QUOTE)
        left -= len(data)
    return count


def first_record_length(head: bytes) -> int:
    """The byte length of the first record of CSV text starting with ``head`` (through its line
    feed), or 0 when ``head`` holds no complete record."""
    quotes, pos = 0, 0
    while True:
        nl = head.find(b"\n", pos)
        if nl < 0:
            return 0
        quotes += head.count(_QUOTE, pos, nl)
        if quotes % 2 == 0:
            return nl + 1
        pos = nl + 1


def complete_length(f, size: int) -> int:
    """The byte length of the longest prefix of the open binary file ``f`` (``size`` bytes
    long) that ends right after a record: after a line feed outside every quoted field.
    ``size`` when the file already ends that way, 0 when no record is complete."""
    if size == 0:
        return 0
    parity = _quotes_in(f, 0, size) % 2          # quotes before ``end``, modulo 2
    end = size
    while end > 0:
        start = max(0, end - _CHUNK)
        f.seek(start)
        chunk = f.read(end - start)
        pos = len(chunk)
        while True:
            nl = chunk.rfind(b"\n", 0, pos)
            if nl < 0:
                break
            # quotes between this line feed and ``end`` change the parity at the line feed
            if (parity - chunk.count(_QUOTE, nl + 1)) % 2 == 0:
                return start + nl + 1
            pos = nl
        parity = (parity - chunk.count(_QUOTE)) % 2
        end = start
    return 0


def cut_torn_tail(path: str) -> int:
    """Truncate the CSV file at ``path`` after its last complete record (durably: the
    truncation is fsynced). Returns the number of bytes removed (0 when the file is intact
    or missing)."""
    try:
        f = open(path, "r+b")
    except FileNotFoundError:
        return 0
    with f:
        size = os.fstat(f.fileno()).st_size
        keep = complete_length(f, size)
        if keep == size:
            return 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return size - keep
