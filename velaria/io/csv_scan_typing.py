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

import mmap
import os
from concurrent.futures import ThreadPoolExecutor

from . import progress
from .csv_chunk_walk import NextRead, walk_in_parts

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


def _data_start(buf, filled: int, header: bool, at_end: bool) -> int | None:
    """Offset of the first data line in the file's first chunk (``buf[:filled]``): after a
    UTF-8 BOM, and with a header after the header line (blank lines before it are skipped);
    None when the header line cannot be found plainly (it holds a quoted line end, or ends
    in a lone \\r). Only the header line is copied out of ``buf``."""
    first = 3 if bytes(buf[:min(3, filled)]) == b"\xef\xbb\xbf" else 0
    if not header:
        return first
    while first < filled and buf[first] in b"\r\n":
        first += 1
    line_end = buf.find(b"\n", first, filled)
    if line_end < 0:
        # a file that is only a header line (without a line end) has no data
        line = bytes(buf[first:filled])
        plain = at_end and b"\r" not in line and line.count(b'"') % 2 == 0
        return filled if plain else None
    line = bytes(buf[first:line_end])
    if line.count(b'"') % 2 or b"\r" in line[:-1]:
        return None
    return line_end + 1


def _buffer(size: int):
    """A chunk buffer of ``size`` bytes: private anonymous memory, its pages faulted in by
    the threads that read into it (a bytearray would first zero all of it on one core)."""
    if not hasattr(mmap, "MAP_PRIVATE"):   # Windows
        return bytearray(size)
    return mmap.mmap(-1, max(1, size), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def _line_chunks(handle, size: int, source, reads: list | None = None):
    """The file's bytes as ``(view, offset, end, at_end)``: ``view`` holds the bytes from file
    offset ``offset`` on (at most a chunk), of which ``view[:end]`` are whole lines (``end``
    None: no line end in a full chunk). The bytes after ``end`` start the next chunk. Chunks
    alternate between two buffers, so the caller may walk one while the next is read into the
    other: with ``reads`` (a list), ``reads[0]`` is the next chunk's read (a
    :class:`~.csv_chunk_walk.NextRead`, or None) whose pieces the caller may read while it
    walks this chunk; what it did not read is read when the next chunk is asked for. The
    first chunk is a short one, so that the walk starts sooner (read on to a full chunk when
    its lines are long). A file that shrinks while it is read is an error (read, not
    memory-mapped: never SIGBUS)."""
    from ..accel import csv_typing

    pieces = csv_typing.default_threads() if reads is not None else 1
    count = 2 if size > _CHUNK_BYTES else 1
    buffers = [_buffer(min(_CHUNK_BYTES, size)) for _ in range(count)]
    views = [memoryview(b) for b in buffers]
    offset = 0        # file offset of the current buffer's first byte
    held = 0          # bytes of a partial line carried to the front of the buffer
    turn = 0
    limit = min(_FIRST_BYTES, len(buffers[0])) if count > 1 else len(buffers[0])
    pending = None    # the current buffer's read, begun while the previous chunk was walked
    used = set()      # buffers a next chunk's read filled before (their pages are in)
    try:
        while True:
            buf, view = buffers[turn], views[turn]
            want = min(limit - held, size - offset - held)
            if pending is not None:
                got = pending.finish()
                pending = None
            else:
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
            if not at_end and end is not None:
                # the next chunk: the partial last line moved to the front of the other
                # buffer, then the file's next bytes after it
                nxt = (turn + 1) % count
                held = filled - end
                buffers[nxt][:held] = bytes(view[end:filled])
                want = min(limit - held, size - offset - filled)
                pending = NextRead(handle.fileno(), buffers[nxt], held, held + want,
                                   offset + filled, pieces, fresh=nxt not in used)
                used.add(nxt)
            if reads is not None:
                reads[:] = [pending]
            yield view[:filled], offset, end, at_end
            if at_end or end is None:
                return
            turn = (turn + 1) % count
            offset += end
    finally:
        if reads is not None:
            reads.clear()
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
    ncols = len(kinds)
    delimiter, nulls, dates = source.delimiter, source.null_values, source.infer_dates

    def typed(data, start_kinds):
        status, got_kinds, got_rows, _ = csv_typing.csv_column_kinds(
            data, ncols, delimiter, nulls, dates, start_kinds, 1)
        return status, got_kinds, got_rows, None

    def converted(data, start_kinds):
        return csv_typing.csv_type_convert(data, ncols, delimiter, nulls, dates, start_kinds, 1,
                                           convert)

    reads: list = []
    pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="velaria-csv-walk") \
        if threads > 1 else None
    with open(source.data_path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        chunks = _line_chunks(handle, size, source, reads)
        try:
            for view, offset, end, at_end in chunks:
                skip = 0
                if offset == 0:
                    skip = _data_start(view.obj, len(view), source.header, at_end)
                    if skip is None:
                        return None
                if end is None or end <= skip and not at_end:
                    return None  # a line longer than a chunk: the Arrow pass streams it
                # every thread walks its part of this chunk, then reads its piece of the next
                status, kinds, got_rows, got = walk_in_parts(
                    converted if converting else typed, view.obj, skip, end, kinds, threads,
                    pool, reads[0] if reads else None)
                if converting:
                    more = sum(a.nbytes for _, cols in got for _, a in cols if a is not None)
                    if held_bytes + more <= budget:
                        parts.extend(got)
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
            if pool is not None:
                pool.shutdown(wait=True)
    if not parts:
        return kinds, rows, None, None
    return kinds, rows, parts, None if until >= size else until
