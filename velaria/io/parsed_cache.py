"""Process-wide cache of parsed file contents, so a warm re-read does not parse again.

The typing pass of an Arrow-parsed source (CSV, and JSON lines through ``pyarrow.json``)
keeps what it parsed (see :mod:`.typed_source`) so that the first scan need not parse the
file again. This module keeps those parsed batches after the source object is gone, keyed
like the typing cache: the reader class, the file's fingerprint (absolute path, size, mtime,
inode and ctime) and the reader options. A new source over the unchanged file (a new
Session, a re-read) then scans straight from memory: Arrow arrays are immutable, so every
reader shares them without copying.

Nothing stale is served: a rewritten file has another fingerprint (a rewrite changes the
ctime, a replace-by-rename the inode), so it misses; an entry is used only together with the
typing it was parsed under (the column kinds are stored with it and must match); and scans
re-check the fingerprint before reading.

A file whose parsed columns exceed the budget may leave its first part here (a *prefix*
entry: the batches of the lines before a byte offset, :func:`store_prefix`), so a re-read
scans that part from memory and parses only the rest.

Memory is bounded: at most ``VELARIA_IO_CACHE_MB`` (default 256) MB of Arrow data in all,
least recently used entries evicted first; ``0`` turns the cache off. Sources parsed in
Python, wholly or in part (their batches hold Python lists, whose size Arrow cannot
measure), are not cached.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import pyarrow as pa

__all__ = ["lookup", "store", "lookup_prefix", "store_prefix", "forget", "clear",
           "budget_bytes", "held_bytes", "retained_nbytes"]

#: key -> (column kinds, retained batches, retained column indexes, bytes)
_ENTRIES: "OrderedDict[tuple, tuple[tuple, list, frozenset, int]]" = OrderedDict()
_LOCK = threading.Lock()
_HELD = [0]
DEFAULT_CACHE_MB = 256


def budget_bytes() -> int:
    """The cache's size limit from ``VELARIA_IO_CACHE_MB`` (a bad value is an error naming
    the variable)."""
    text = os.environ.get("VELARIA_IO_CACHE_MB", str(DEFAULT_CACHE_MB))
    try:
        mb = float(text)
    except ValueError:
        from ..errors import VelariaValueError

        raise VelariaValueError(
            f"VELARIA_IO_CACHE_MB must be a number of megabytes (got {text!r}); set it to "
            f"0 to turn the parsed-file cache off") from None
    return max(0, int(mb * (1 << 20)))


def held_bytes() -> int:
    """Bytes of Arrow data the cache holds now."""
    with _LOCK:
        return _HELD[0]


def retained_nbytes(retained: list) -> int | None:
    """Bytes of Arrow data in retained batches (lists of ``(kind, array)`` per column); None
    when some batch holds Python values (a line file may mix Arrow and Python chunks), whose
    size Arrow cannot measure."""
    total = 0
    for batch in retained:
        if isinstance(batch, int):  # a prefix entry's end offset
            continue
        for _, kept in batch:
            if kept is None:  # a column this entry does not hold
                continue
            if not isinstance(kept, (pa.Array, pa.ChunkedArray)):
                return None
            total += kept.nbytes
    return total


def lookup(key: tuple, kinds: list[str]) -> tuple[list, set[int]] | None:
    """``(retained batches, retained columns)`` parsed under exactly ``kinds``, or None."""
    with _LOCK:
        entry = _ENTRIES.get(key)
        if entry is None or entry[0] != tuple(kinds):
            return None
        _ENTRIES.move_to_end(key)
        return entry[1], set(entry[2])


def store(key: tuple, kinds: list[str], retained: list, retained_cols: set[int]) -> bool:
    """Keep ``retained`` for later readers of the same file; False when it does not fit."""
    size = retained_nbytes(retained)
    budget = budget_bytes()
    if size is None or size > budget or not retained_cols:
        return False
    with _LOCK:
        old = _ENTRIES.pop(key, None)
        if old is not None:
            _HELD[0] -= old[3]
        while _ENTRIES and _HELD[0] + size > budget:
            _, evicted = _ENTRIES.popitem(last=False)
            _HELD[0] -= evicted[3]
        _ENTRIES[key] = (tuple(kinds), retained, frozenset(retained_cols), size)
        _HELD[0] += size
    return True


def lookup_prefix(key: tuple, kinds: list[str]) -> tuple[list, set[int], int] | None:
    """``(batches, columns, until)`` of a prefix entry parsed under exactly ``kinds``: the
    batches of the file's lines before byte ``until``; or None."""
    found = lookup(("prefix",) + key, kinds)
    if found is None:
        return None
    (until, *batches), cols = found
    return batches, cols, until


def store_prefix(key: tuple, kinds: list[str], batches: list, cols: set[int],
                 until: int) -> bool:
    """Keep the batches of the lines before byte ``until`` of a file whose parsed columns do
    not fit whole; False when they do not fit either."""
    return store(("prefix",) + key, kinds, [until, *batches], cols)


def forget(key: tuple) -> None:
    """Drop the file's entries (it turned out to have changed)."""
    with _LOCK:
        for entry_key in (key, ("prefix",) + key):
            old = _ENTRIES.pop(entry_key, None)
            if old is not None:
                _HELD[0] -= old[3]


def clear() -> None:
    """Drop every entry."""
    with _LOCK:
        _ENTRIES.clear()
        _HELD[0] = 0
