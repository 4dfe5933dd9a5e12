"""The CSV typing pass in one C scan over the raw bytes (no text columns are built).

:func:`scan_column_kinds` reads the file in chunks (read, not memory-mapped: a file that
shrinks while it is read is a clear error, not SIGBUS) and folds each chunk's column kinds
with the C scanner (:mod:`velaria.accel.csv_typing`, on every core), which applies the same
typing rules as the Arrow pass of :class:`~velaria.io.csv_source.CsvSource`. It returns None
whenever the scanner cannot give that pass's answer by itself: a quote character after the
header, a line whose field count differs from the header (an error, or a skipped row), invalid
UTF-8 (an error with its position), a possible vector cell, a line longer than a chunk, a
delimiter that is not one ASCII character, or no compiled accelerator. The caller then runs
the Arrow pass, which also reports the errors.
"""
from __future__ import annotations

import os

from . import progress
from .read_ahead import read_ahead

__all__ = ["scan_column_kinds", "available"]

#: bytes read per scanner call (a longer line leaves the file to the Arrow pass)
_CHUNK_BYTES = 16 << 20
#: bytes of the first read of a file longer than a chunk: the walk starts on them while the
#: next chunk is read (a full first read would run alone, one core idle)
_FIRST_BYTES = 2 << 20


def available() -> bool:
    """Whether the compiled scanner is present."""
    try:
        from ..accel import csv_typing
    except ImportError:  # pragma: no cover - depends on the build
        return False
    return csv_typing.c_available()


def usable_delimiter(delimiter: str) -> bool:
    """Whether the scanner is present and can split at ``delimiter`` (one ASCII character
    that is not a quote or a line end)."""
    return (available() and len(delimiter) == 1 and ord(delimiter) < 128
            and delimiter not in '"\r\n')


def _data_start(buf: bytearray, filled: int, header: bool, at_end: bool) -> int | None:
    """Offset of the first data line in the file's first chunk (``buf[:filled]``): after a
    UTF-8 BOM, and with a header after the header line (blank lines before it are skipped);
    None when the header line cannot be found plainly (it holds a quoted line end, or ends
    in a lone \\r)."""
    chunk = memoryview(buf)[:filled].tobytes() if filled < len(buf) else buf
    if not header:
        return 3 if chunk.startswith(b"\xef\xbb\xbf") else 0
    first = 3 if chunk.startswith(b"\xef\xbb\xbf") else 0
    while first < len(chunk) and chunk[first] in b"\r\n":
        first += 1
    line_end = chunk.find(b"\n", first)
    if line_end < 0:
        # a file that is only a header line (without a line end) has no data
        line = chunk[first:]
        plain = at_end and b"\r" not in line and line.count(b'"') % 2 == 0
        return len(chunk) if plain else None
    line = chunk[first:line_end]
    if line.count(b'"') % 2 or b"\r" in line[:-1]:
        return None
    return line_end + 1


def _line_chunks(handle, size: int, source):
    """The file's bytes as ``(view, offset, end, at_end)``: ``view`` holds the bytes from file
    offset ``offset`` on (at most a chunk), of which ``view[:end]`` are whole lines (``end``
    None: no line end in a full chunk). The bytes after ``end`` start the next chunk. Chunks
    alternate between two buffers, so the caller may walk one while the next is read into the
    other (with one chunk in flight at a time); then the first chunk is a short one, so that
    the walk starts sooner (read on to a full chunk when its lines are long). A file that
    shrinks while it is read is an error (read, not memory-mapped: never SIGBUS)."""
    buffers = [bytearray(min(_CHUNK_BYTES, size))]
    views = [memoryview(buffers[0])]
    # the second buffer is made when first needed (zero-filling 16 MB takes a few ms, which
    # then overlap the first chunk's walk)
    count = 2 if size > _CHUNK_BYTES else 1
    offset = 0        # file offset of the current buffer's first byte
    held = 0          # bytes of a partial line carried to the front of the buffer
    turn = 0
    limit = min(_FIRST_BYTES, len(buffers[0])) if count > 1 else len(buffers[0])
    try:
        while True:
            buf, view = buffers[turn], views[turn]
            want = min(limit - held, size - offset - held)
            got = handle.readinto(view[held:held + want]) if want else 0
            if got < want:
                source._raise_shrank(size, offset + held + got)
            filled = held + got
            if not filled:
                return
            at_end = offset + filled >= size
            end = filled
            if not at_end:
                cut = buf.rfind(b"\n", 0, filled)
                if limit < len(buf) and cut < filled // 2:
                    # a short first read holding few lines: read on to a full chunk
                    held, limit = filled, len(buf)
                    continue
                end = cut + 1 if cut >= 0 else None
            limit = len(buf)
            yield view[:filled], offset, end, at_end
            if at_end or end is None:
                return
            held = filled - end
            turn = (turn + 1) % count
            if turn == len(buffers):
                buffers.append(bytearray(_CHUNK_BYTES))
                views.append(memoryview(buffers[turn]))
            # the partial last line, moved to the front of the next buffer
            buffers[turn][:held] = bytes(view[end:filled])
            offset += end
    finally:
        for view in views:
            view.release()


def scan_column_kinds(source, kinds: list[str], convert: list[int] | None = None,
                      budget: int = 0):
    """``(kinds, rows, parts, until)`` of ``source`` (a CsvSource) from one scan of its data
    lines, or None when only the Arrow pass can type it (see the module docstring).
    ``kinds`` is where each column starts (``string`` for a column whose type is given: it
    is not classified).

    ``convert`` (column indexes) asks the same walk to convert those columns too, by the kind
    of their cells so far (:func:`velaria.accel.csv_typing.csv_type_convert`): ``parts`` is
    then the list of its ``(rows, [(kind, array), ...])``, in file order, for the data lines
    before file offset ``until`` (a line start; None: the whole file), as far as they fit in
    ``budget`` bytes (the walk only types the rest); else ``parts`` is None."""
    if not usable_delimiter(source.delimiter):
        return None
    from ..accel import csv_typing

    threads = csv_typing.default_threads()
    converting = bool(convert)
    parts: list = []
    until = 0             # file offset where the converted parts end
    held_bytes = 0
    rows = 0
    with open(source.data_path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        chunks = _line_chunks(handle, size, source)
        if size > _CHUNK_BYTES:  # the next chunk is read while this one is walked
            chunks = read_ahead(chunks)
        try:
            for view, offset, end, at_end in chunks:
                skip = 0
                if offset == 0:
                    skip = _data_start(view.obj, len(view), source.header, at_end)
                    if skip is None:
                        return None
                if end is None or end <= skip and not at_end:
                    return None  # a line longer than a chunk: the Arrow pass streams it
                if not converting:
                    status, kinds, got_rows, _ = csv_typing.csv_column_kinds(
                        view[skip:end], len(kinds), source.delimiter, source.null_values,
                        source.infer_dates, kinds, threads)
                else:
                    status, kinds, got_rows, converted = csv_typing.csv_type_convert(
                        view[skip:end], len(kinds), source.delimiter, source.null_values,
                        source.infer_dates, kinds, threads, convert)
                    more = sum(a.nbytes for _, cols in converted for _, a in cols
                               if a is not None)
                    if held_bytes + more <= budget:
                        parts.extend(converted)
                        held_bytes += more
                        until = offset + end
                    else:  # full: this chunk's arrays go, the rest of the walk only types
                        converting = False
                if status != "ok":
                    return None
                rows += got_rows
                progress.advance(end)
        finally:
            chunks.close()
    if not parts:
        return kinds, rows, None, None
    return kinds, rows, parts, None if until >= size else until
