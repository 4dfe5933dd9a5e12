"""Recognise binary file formats by their first bytes (their "magic numbers").

Text readers use this to say what a file really is (a Parquet file passed to ``read_csv``
is reported as Parquet, not as "invalid UTF-8"), and ``probe`` uses it to pick the reader.
"""
from __future__ import annotations

__all__ = ["sniff_format", "FORMAT_NAMES", "how_to_read"]

#: format -> human name
FORMAT_NAMES = {
    "parquet": "a Parquet file",
    "arrow": "an Arrow IPC (Feather v2) file",
    "arrow_stream": "an Arrow IPC stream",
    "xlsx": "an Excel workbook (.xlsx)",
    "zip": "a zip archive",
    "gzip": "a gzip-compressed file",
    "zstd": "a zstd-compressed file",
    "bzip2": "a bzip2-compressed file",
    "xz": "an xz-compressed file",
}

_MAGIC = [
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    # an IPC stream's first message starts with the continuation marker 0xFFFFFFFF (bytes
    # that never start UTF-8 text)
    (b"\xff\xff\xff\xff", "arrow_stream"),
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
]


def sniff_format(path: str) -> str | None:
    """The binary format of ``path`` (a key of :data:`FORMAT_NAMES`), or None for text."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(10)
    except OSError:
        return None
    # bzip2: "BZh", a block-size digit, then the block magic (plain text may start "BZh")
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bzip2"
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            if fmt == "zip" and _is_xlsx(path):
                return "xlsx"
            return fmt
    return None


def _is_xlsx(path: str) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


# read_csv and USING csv recognise these compressions by their magic bytes; other readers do not
_COMPRESSED_CSV = ("a compressed CSV file is read with Session.read_csv(path) or CREATE TABLE t "
                   "USING csv OPTIONS(path: '...'), which decompress it; other formats must be "
                   "decompressed first")


def how_to_read(fmt: str) -> str:
    """How to read a file of binary format ``fmt`` with Velaria."""
    return {
        "parquet": "read it with Session.read_parquet(path) or CREATE TABLE t USING parquet "
                   "OPTIONS(path: '...')",
        "arrow": "read it with Session.read_arrow(path)",
        "arrow_stream": "read it with Session.read_arrow(path)",
        "xlsx": "read it with velaria.read_excel(session, path)",
        "gzip": _COMPRESSED_CSV,
        "zstd": _COMPRESSED_CSV,
        "bzip2": _COMPRESSED_CSV,
    }.get(fmt, "extract or decompress it first")
