"""The fast path of regex line files: Arrow's ``extract_regex`` (RE2, C++) over whole chunks
of lines, used only where it gives exactly what Python's ``re.fullmatch`` gives per line.

Where the two engines agree: on ASCII text, for the syntax both accept, RE2 reproduces
Python's leftmost-first matches and capture groups; ``\\d``, ``\\w``, ``\\b`` are the same on
ASCII, and ``\\s`` differs only on ``\\v`` and ``\\x1c``-``\\x1f``. So a chunk of the file takes
the fast path when it is pure ASCII, holds no ``\\r`` (Python's universal newlines would
split there), no ``\\v`` and no ``\\x1c``-``\\x1f``; any other chunk is matched line by line
with ``re`` (the reference path), so a file may mix both and the result is the same. A
pattern RE2 rejects (look-around, back-references, ``\\Z``, possessive quantifiers, ...)
uses the reference path for the whole file.

RE2 names the groups it extracts, so the pattern's capture groups are renamed
``(?P<_g1>...)`` in order (existing names keep their place); ``^(?:...)$`` anchors the
pattern to the whole line, as ``fullmatch`` does.
"""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["re2_pattern", "fast_chunk", "extract_groups", "CHUNK_BYTES"]

CHUNK_BYTES = 16 << 20
#: bytes after which Python's reading or matching differs from RE2's (see above)
_PYTHON_ONLY_BYTES = (b"\r", b"\x0b", b"\x1c", b"\x1d", b"\x1e", b"\x1f")


def re2_pattern(pattern: str, groups: int) -> tuple[str, list[str]] | None:
    """``(anchored pattern with every capture group named, the names by group number 1..n)``,
    or None when the pattern cannot be rewritten or RE2 does not accept it."""
    out, names = [], []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
            continue
        if ch == "(":
            if pattern.startswith("(?P<", i):
                end = pattern.find(">", i)
                if end < 0:
                    return None
                names.append(pattern[i + 4:end])
                out.append(pattern[i:end + 1])
                i = end + 1
                continue
            if pattern.startswith("(?", i):
                out.append("(?")
                i += 2
                continue
            name = f"_g{len(names) + 1}"
            names.append(name)
            out.append(f"(?P<{name}>")
            i += 1
            continue
        out.append(ch)
        i += 1
    if len(names) != groups:
        return None
    anchored = "^(?:" + "".join(out) + ")$"
    if not names:  # extract_regex needs at least one named group
        anchored = "^(?P<_g0>(?:" + "".join(out) + "))$"
    try:
        pc.extract_regex(pa.array([""], pa.string()), pattern=anchored)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return anchored, names


def fast_chunk(chunk: bytes) -> bool:
    """Whether a chunk of the file may take the fast path (see the module docstring)."""
    # each test is a C-speed scan (isascii, memchr); a regex would be ~20x slower here
    return chunk.isascii() and not any(b in chunk for b in _PYTHON_ONLY_BYTES)


def chunk_lines(chunk: bytes, skip_empty: bool, at_end: bool) -> pa.Array:
    """The lines of an ASCII chunk (ending at a newline unless ``at_end``) as a string array."""
    lines = pc.split_pattern(pa.array([chunk.decode("ascii")], pa.string()), "\n").flatten()
    if chunk.endswith(b"\n"):  # the piece after the final newline is not a line
        lines = lines.slice(0, len(lines) - 1)
    if skip_empty:
        lines = lines.filter(pc.not_equal(lines, ""))
    return lines


def extract_groups(lines: pa.Array, pattern: str, names: list[str], indexes: list[int],
                   null_text: pa.Array) -> tuple[list[pa.Array], int]:
    """(one string array per requested group index, number of unmatched lines) for the
    lines; a group that did not take part, or whose text is a NULL marker, is NULL."""
    found = pc.extract_regex(lines, pattern=pattern)
    matched = pc.is_valid(found)
    unmatched = len(lines) - pc.sum(matched).as_py() if len(lines) else 0
    found = found.filter(matched)
    whole = lines.filter(matched)
    out = []
    for index in indexes:
        column = whole if index == 0 else found.field(names[index - 1])
        out.append(pc.if_else(pc.is_in(column, value_set=null_text),
                              pa.scalar(None, pa.string()), column))
    return out, int(unmatched)


def chunks(path: str) -> Iterator[tuple[bytes, bool]]:
    """The file (BOM removed) as ``(chunk, at_end)`` pieces ending at a newline."""
    with open(path, "rb") as handle:
        pending = b""
        first = True
        while True:
            data = handle.read(CHUNK_BYTES)
            if first and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            first = False
            if not data:
                if pending:
                    yield pending, True
                return
            data = pending + data
            cut = data.rfind(b"\n")
            if cut < 0:
                pending = data
                continue
            pending = data[cut + 1:]
            yield data[:cut + 1], False
