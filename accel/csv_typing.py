"""CSV column typing over raw bytes in C (``accel/src/csv_typing.c``), the twin of
:func:`velaria.reference.csv_typing.csv_column_kinds` (same name, signature and answers).

One pass over the bytes decides every column's kind without building text columns;
``threads`` > 1 scans parts of a big buffer concurrently (the call releases the GIL).
"""
from __future__ import annotations

import os
from typing import Sequence

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_csv_column_kinds"):       # an older build without it
        raise ImportError("the C module has no CSV typing scanner")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["csv_column_kinds", "c_available", "KIND_NAMES", "default_threads"]

#: kind code (csv_typing.c) -> kind name (velaria.io.typing_rules)
KIND_NAMES = ("null", "bool", "int", "float", "date", "timestamp", "string")
_KIND_CODES = {name: code for code, name in enumerate(KIND_NAMES)}
_STATUSES = ("ok", "quote", "ragged", "utf8", "reference")


def c_available() -> bool:
    """True when the compiled scanner is present."""
    return _lib is not None


def default_threads() -> int:
    """Threads for one scan: every core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _use_simd(simd: bool | None) -> bool:
    if simd is not None:
        return simd
    from . import _loader

    return _loader.backend() != "scalar-c"


def csv_column_kinds(data, ncols: int, delimiter: str = ",",
                     null_values: Sequence[str] = ("",), dates: bool = True,
                     kinds: Sequence[str] | None = None, threads: int = 1,
                     keep: Sequence[int] | None = None, simd: bool | None = None,
                     out: bytearray | None = None
                     ) -> tuple[str, list[str], int, bytes | None]:
    """``(status, kinds, rows, projected)`` of ``data`` (bytes-like: whole data lines of a
    CSV file); see the reference twin for the contract. ``out``: a scratch buffer for the
    projection to reuse from call to call (one shorter than ``2 * len(data) + 16 * threads
    + 16`` bytes is not used). A delimiter the scanner cannot use (not one
    ASCII character, or a quote / line-end character) gives status ``reference``.
    ``simd``: find cell ends with AVX2 (default: when the SIMD backend in use is not
    ``scalar-c``; see ``VELARIA_SIMD``); False uses the portable loop (same answers)."""
    if _lib is None:
        raise RuntimeError("the C CSV typing scanner is not built; use "
                           "velaria.reference.csv_typing.csv_column_kinds")
    start = ["null"] * ncols if kinds is None else list(kinds)
    if len(delimiter) != 1 or ord(delimiter) >= 128 or delimiter in '"\r\n':
        return "reference", start, 0, None
    codes = bytearray(_KIND_CODES[k] for k in start)
    markers = [v.encode("utf-8") for v in null_values]
    nulls = b"".join(markers)
    null_lens = _ffi.new("int64_t[]", [len(m) for m in markers] or [0])
    rows = _ffi.new("int64_t *")
    buf = _ffi.from_buffer("uint8_t[]", data)
    keep_flags = out_ptr = _ffi.NULL
    out_len = _ffi.new("int64_t *")
    if keep is not None:
        flags = bytearray(ncols)
        for i in keep:
            flags[i] = 1
        keep_flags = _ffi.from_buffer("uint8_t[]", flags)
        need = 2 * len(buf) + 16 * max(1, threads) + 16      # see csv_typing.c: projection
        if out is None or len(out) < need:
            out = bytearray(need)
        out_ptr = _ffi.from_buffer("uint8_t[]", out)
    status = _lib.velaria_csv_column_kinds(
        buf, len(buf), ncols, ord(delimiter), _ffi.from_buffer("uint8_t[]", nulls + b"\0"),
        null_lens, len(markers), int(bool(dates)), int(_use_simd(simd)), int(threads),
        _ffi.from_buffer("uint8_t[]", codes), rows, keep_flags, out_ptr, out_len)
    projected = None
    if keep is not None and status == 0:
        projected = bytes(memoryview(out)[:out_len[0]])
    return _STATUSES[status], [KIND_NAMES[c] for c in codes], int(rows[0]), projected
