"""Compressed text files (gzip, zstd, bzip2): decompressed once to a private temporary file.

Text readers scan a file several times (typing, scans, locating a bad line), at byte offsets,
so a compressed file is decompressed once, streaming (bounded memory), into a file in a
private temporary directory (mode 0700) that is deleted with the source. Messages still name
the compressed file; line numbers count lines of its decompressed text.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import weakref

import pyarrow as pa

from ..errors import SourceFormatError, VelariaValueError
from .magic import sniff_format

__all__ = ["COMPRESSIONS", "resolve_compression", "decompressed_copy"]

#: accepted ``compression`` values -> pyarrow codec (None: not compressed)
COMPRESSIONS = {"infer": "infer", None: "infer", "none": None, "gzip": "gzip", "gz": "gzip",
                "zstd": "zstd", "zst": "zstd", "bz2": "bz2", "bzip2": "bz2"}
_SNIFFED = {"gzip": "gzip", "zstd": "zstd", "bzip2": "bz2"}


def resolve_compression(path: str, compression) -> str | None:
    """The codec to read ``path`` with: ``compression`` itself, or for ``"infer"`` (the
    default) the one its magic bytes show, or None for an uncompressed file."""
    if compression is not None and not isinstance(compression, str):
        raise TypeError("compression must be str or None")
    try:
        codec = COMPRESSIONS[compression.lower() if isinstance(compression, str) else None]
    except KeyError:
        raise VelariaValueError(
            f"compression must be one of: infer, none, gzip, zstd, bz2 (got {compression!r})"
        ) from None
    if codec == "infer":
        return _SNIFFED.get(sniff_format(path) or "")
    return codec


def decompressed_copy(owner, path: str, codec: str, what: str) -> str:
    """Decompress ``path`` into a private temporary file that lives as long as ``owner``."""
    directory = tempfile.mkdtemp(prefix="velaria-decompressed-")
    target = os.path.join(directory, os.path.basename(path))
    weakref.finalize(owner, shutil.rmtree, directory, True)
    try:
        with pa.input_stream(path, compression=codec) as source, open(target, "wb") as sink:
            while True:
                data = source.read(8 << 20)
                if not data:
                    break
                sink.write(data)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceFormatError(
            f"cannot decompress {what} {path} as {codec}: {exc}; check the compression= "
            f"argument or the file") from None
    return target
