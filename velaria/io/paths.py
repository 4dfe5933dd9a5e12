"""Path handling shared by every file reader: argument checks, open errors, fingerprints and
locating bad bytes.

Every reader accepts ``str`` or any ``os.PathLike``. Opening problems raise errors whose
message starts with upstream's text (``cannot open csv file: <path>``) and then says what is
wrong and how to fix it.
"""
from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass

from ..errors import SourceFormatError, VelariaError, VelariaFileNotFoundError

__all__ = [
    "as_path_str",
    "expand_paths",
    "names_several_files",
    "check_readable_file",
    "FileFingerprint",
    "fingerprint",
    "locate_offset",
    "find_invalid_utf8",
    "raise_invalid_utf8",
    "reject_binary",
]


def as_path_str(path, arg: str = "path") -> str:
    """Return ``path`` as a ``str`` (accepts ``str`` and ``os.PathLike``; raises TypeError
    otherwise, ValueError for an embedded NUL)."""
    if isinstance(path, (bytes, bytearray)):
        raise TypeError(f"{arg} must be str or os.PathLike, not bytes")
    try:
        text = os.fspath(path)
    except TypeError:
        raise TypeError(f"{arg} must be str or os.PathLike, not {type(path).__name__}") from None
    if isinstance(text, bytes):
        raise TypeError(f"{arg} must be str or os.PathLike returning str")
    if "\x00" in text:
        raise ValueError(f"{arg} contains an embedded NUL character")
    return text


def _is_glob(path: str) -> bool:
    return any(ch in path for ch in "*?[")


def names_several_files(path: str) -> bool:
    """True when ``path`` is a glob or a directory (several files read as one table)."""
    return _is_glob(path) or os.path.isdir(path)


def expand_paths(path: str, what: str, suffix: str) -> list[str]:
    """The files ``path`` names: itself, the matches of a glob, or the ``*<suffix>`` files
    below a directory; sorted. Raises VelariaFileNotFoundError when there are none."""
    if _is_glob(path):
        files = sorted(p for p in _glob.glob(path, recursive=True) if os.path.isfile(p))
        if not files:
            raise VelariaFileNotFoundError(
                f"cannot open {what} file: {path} (the pattern matches no file; check it)", path)
        return files
    if os.path.isdir(path):
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(path)
                       for name in names if name.endswith(suffix) and not name.startswith("."))
        if not files:
            raise VelariaFileNotFoundError(
                f"cannot open {what} file: {path} (the directory holds no "
                f"{'*' + suffix + ' file' if suffix else 'file'})", path)
        return files
    if not os.path.exists(path):
        raise VelariaFileNotFoundError(
            f"cannot open {what} file: {path} (no such file; check the path)", path)
    return [path]


def check_readable_file(path: str, open_message: str, *, allow_empty: bool = False,
                        empty_message: str | None = None) -> None:
    """Raise the documented error unless ``path`` is an existing, readable, non-empty regular
    file. ``open_message`` is upstream's prefix, e.g. ``"cannot open csv file"``."""
    if not os.path.exists(path):
        raise VelariaFileNotFoundError(
            f"{open_message}: {path} (no such file; check the path)", path)
    if os.path.isdir(path):
        raise VelariaFileNotFoundError(
            f"{open_message}: {path} (it is a directory; pass the path of a file)", path)
    if not os.path.isfile(path):
        raise VelariaFileNotFoundError(
            f"{open_message}: {path} (not a regular file)", path)
    try:
        with open(path, "rb") as handle:
            first = handle.read(1)
    except OSError as exc:
        raise VelariaError(
            f"{open_message}: {path} ({exc.strerror or exc}; check the file permissions)") from exc
    if not first and not allow_empty:
        raise SourceFormatError(empty_message or f"{open_message}: {path} (the file is empty)")


@dataclass(frozen=True)
class FileFingerprint:
    """What identifies one version of a file: absolute path, size, mtime, inode and ctime
    (all times in ns). Size and mtime alone are not enough: ``cp -p``, ``rsync -t`` and
    coarse-mtime filesystems produce new contents with the same size and mtime; a rewrite
    still changes the ctime (which user tools cannot set back), and a replace-by-rename
    changes the inode."""

    abs_path: str
    size: int
    mtime_ns: int
    inode: int = 0
    ctime_ns: int = 0


def fingerprint(path: str) -> FileFingerprint:
    """Stat ``path`` and return its :class:`FileFingerprint`."""
    st = os.stat(path)
    return FileFingerprint(os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino,
                           st.st_ctime_ns)


def locate_offset(path: str, byte_offset: int) -> tuple[int, int]:
    """Return the 1-based (line, column) of ``byte_offset`` in ``path``; the column counts
    bytes from the line start, 1-based."""
    line, line_start, pos = 1, 0, 0
    with open(path, "rb") as handle:
        while pos < byte_offset:
            chunk = handle.read(min(1 << 20, byte_offset - pos))
            if not chunk:
                break
            start = 0
            while True:
                idx = chunk.find(b"\n", start)
                if idx < 0:
                    break
                line += 1
                line_start = pos + idx + 1
                start = idx + 1
            pos += len(chunk)
    return line, byte_offset - line_start + 1


def find_invalid_utf8(path: str) -> int | None:
    """Return the byte offset of the first byte that is not valid UTF-8, or None."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    pos = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            final = not chunk
            try:
                decoder.decode(chunk, final)
            except UnicodeDecodeError as exc:
                # exc.start is relative to the buffered input (pending bytes + chunk)
                pending = len(exc.object) - len(chunk)
                return pos - pending + exc.start
            if final:
                return None
            pos += len(chunk)


def reject_binary(path: str, what: str) -> None:
    """Raise SourceFormatError naming the format when ``path`` is a known binary format
    (Parquet, xlsx, gzip, ...) rather than text, with how to read it instead."""
    from .magic import FORMAT_NAMES, how_to_read, sniff_format

    binary = sniff_format(path)
    if binary is not None:
        raise SourceFormatError(
            f"{what} {path} is not text: it is {FORMAT_NAMES[binary]}; {how_to_read(binary)}")


def raise_invalid_utf8(path: str, what: str, offset: int | None = None) -> None:
    """Raise SourceFormatError naming the line and column of the first invalid UTF-8 byte."""
    reject_binary(path, what)
    if offset is None:
        offset = find_invalid_utf8(path)
    if offset is None:
        raise SourceFormatError(f"{what} {path} is not valid UTF-8; re-encode it as UTF-8")
    line, col = locate_offset(path, offset)
    raise SourceFormatError(
        f"invalid UTF-8 in {what} {path} at line {line}, column {col} (byte offset {offset}); "
        f"re-encode the file as UTF-8")
