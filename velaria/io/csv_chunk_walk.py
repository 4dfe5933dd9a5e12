"""The typing walk over one chunk of a CSV file on every core, each core then reading its
piece of the next chunk.

The C walk splits a chunk into one part per core. While it ran, a separate thread used to
read the next chunk: three busy threads on two cores, so one walk thread started a few
milliseconds late (the reader had its core) and the other then waited for it at the chunk's
end, one core idle in every chunk. Here each part is walked by its own thread (the caller's
and pool threads, one C call each: the calls release the GIL) and every thread, once its
part is walked, reads its share of the next chunk with ``preadv`` (``pread`` where there is
none; both release the GIL): reading fills the time a thread would otherwise wait for the
others.

The parts are the ones the C walk cuts itself (:func:`part_bounds`), so the walk's answers
and the parts it converts are the same as one threaded C call's.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .typing_rules import merge_kinds

__all__ = ["NextRead", "part_bounds", "walk_in_parts", "MIN_SPLIT_BYTES"]

#: a chunk shorter than this is walked in one part (as the C walk does: a thread would cost
#: more than it saves)
MIN_SPLIT_BYTES = 1 << 20


class NextRead:
    """The read of the next chunk's bytes into ``buf[start:stop]`` (from file offset
    ``offset`` of the open file ``fd``), cut into ``pieces`` that different threads may read
    at once (:meth:`read_piece`); :meth:`finish` reads what no thread read and says how many
    bytes the range got (fewer than asked: the file is shorter now). ``fresh``: ``buf`` (an
    anonymous ``mmap``) was never written, so each piece first has its pages faulted in with
    one ``madvise`` (cheaper than a fault per page inside the read)."""

    def __init__(self, fd: int, buf, start: int, stop: int, offset: int, pieces: int,
                 fresh: bool = False):
        n = stop - start
        step = -(-n // max(1, pieces))
        self._fd, self._buf, self._offset, self._fresh = fd, buf, offset - start, fresh
        self._bounds = [(start + min(i * step, n), start + min((i + 1) * step, n))
                        for i in range(max(1, pieces))]
        self._got: list[int | None] = [None] * len(self._bounds)
        self._error: OSError | None = None

    @property
    def pieces(self) -> int:
        return len(self._bounds)

    def read_piece(self, i: int) -> None:
        """Read piece ``i`` (once; at most one thread per piece)."""
        if i >= len(self._got) or self._got[i] is not None:
            return
        start, stop = self._bounds[i]
        got = 0
        view = memoryview(self._buf)
        try:
            if self._fresh and stop > start:
                _populate(self._buf, start, stop)
            while start + got < stop:
                n = _pread_into(self._fd, view[start + got:stop], self._offset + start + got)
                if n <= 0:
                    break
                got += n
        except OSError as exc:   # raised by finish(), on the thread that reads the chunks
            self._error = exc
        finally:
            view.release()
        self._got[i] = got

    def finish(self) -> int:
        """The bytes read from the start of the range, once every piece is read."""
        for i in range(len(self._got)):
            self.read_piece(i)
        if self._error is not None:
            raise self._error
        total = 0
        for (start, stop), got in zip(self._bounds, self._got):
            total += got
            if got < stop - start:   # the file ends here: later pieces got nothing
                break
        return total


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` from file offset ``offset`` (not moving the file's position);
    the bytes read (0 at the end of the file)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    data = os.pread(fd, len(view), offset)   # no preadv (Windows): read, then copy
    view[:len(data)] = data
    return len(data)


#: madvise(MADV_POPULATE_WRITE) (Linux 5.14 on): fault a range's pages in at once
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23) if sys.platform == "linux" else None


def _libc_madvise():
    """libc's ``madvise`` through ctypes, which releases the GIL while it runs (``mmap``'s
    own ``madvise`` holds it: the other walk thread could not return from its C call
    meanwhile); None where it cannot be loaded."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):   # pragma: no cover - depends on the platform
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _libc_madvise() if _POPULATE_WRITE is not None else None


def _populate(buf, start: int, stop: int) -> None:
    """Fault in the pages of ``buf[start:stop]`` (an anonymous mmap) without writing them,
    where the kernel can (elsewhere, or in a bytearray, the read faults them in)."""
    if _MADVISE is None or not isinstance(buf, mmap.mmap):
        return
    first = start - start % mmap.PAGESIZE
    anchor = ctypes.c_char.from_buffer(buf, first)   # the address of buf[first]
    try:
        _MADVISE(ctypes.addressof(anchor), stop - first, _POPULATE_WRITE)  # an old kernel
    finally:                                                                # refuses: fine
        del anchor


def part_bounds(buf, start: int, end: int, parts: int) -> list[int]:
    """Offsets in ``buf`` cutting ``buf[start:end]`` (whole lines) into ``parts`` parts of
    about equal length, each ending just after a ``\\n`` (as the C walk cuts them)."""
    length = end - start
    bounds = [start]
    at = start
    for t in range(parts):
        stop = end
        if t < parts - 1:
            stop = max(start + length // parts * (t + 1), at)
            newline = buf.find(b"\n", stop, end)
            stop = newline + 1 if newline >= 0 else end
        bounds.append(stop)
        at = stop
    return bounds


def walk_in_parts(walk: Callable, buf, start: int, end: int, kinds: list[str], threads: int,
                  pool: ThreadPoolExecutor | None, next_read: NextRead | None):
    """``(status, kinds, rows, converted)`` of ``walk`` (one C walk of a part on one thread:
    ``walk(data, kinds)``) over ``buf[start:end]`` cut into one part per thread, the first on
    this thread and the others on ``pool`` (``threads - 1`` workers); each thread then reads
    its piece of ``next_read``. ``status`` is the first part's that is not ``ok``; ``kinds``
    are the parts' kinds merged; ``converted`` the parts' conversions, in file order (None
    when ``walk`` converts nothing)."""
    parts = threads if end - start >= MIN_SPLIT_BYTES and pool is not None else 1
    bounds = part_bounds(buf, start, end, parts)
    view = memoryview(buf)

    def job(t: int):
        try:
            if t < parts:
                return walk(view[bounds[t]:bounds[t + 1]], kinds)
            return None
        finally:
            if next_read is not None:
                next_read.read_piece(t)

    jobs = max(parts, next_read.pieces if next_read is not None else 1)
    futures = [pool.submit(job, t) for t in range(1, jobs)] if pool is not None else []
    try:
        results = [job(0)]
    finally:
        # every helper is done with the buffers before anything is raised or returned
        for future in futures:
            future.exception()
        view.release()
    results += [future.result() for future in futures]
    results = [r for r in results if r is not None]
    status = next((r[0] for r in results if r[0] != "ok"), "ok")
    merged = results[0][1]
    for result in results[1:]:
        merged = [merge_kinds(a, b) for a, b in zip(merged, result[1])]
    converted = None
    if results[0][3] is not None:
        converted = [part for result in results for part in result[3]]
    return status, merged, sum(r[2] for r in results), converted
