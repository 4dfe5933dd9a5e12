"""CSV column typing over raw bytes in C (``accel/src/csv_typing.c``), the twin of
:func:`velaria.reference.csv_typing.csv_column_kinds` (same name, signature and answers).

One pass over the bytes decides every column's kind without building text columns;
``threads`` > 1 scans parts of a big buffer concurrently (the call releases the GIL).
:func:`csv_convert` (twin of :func:`velaria.reference.csv_typing.csv_convert`) walks the
bytes the same way and writes the read columns' values straight into Arrow buffers.
"""
from __future__ import annotations

import os
from typing import Sequence

import pyarrow as pa

try:
    from ._velaria_accel import ffi as _ffi, lib as _lib
    if not hasattr(_lib, "velaria_csv_column_kinds"):       # an older build without it
        raise ImportError("the C module has no CSV typing scanner")
except Exception:  # pragma: no cover - depends on the build
    _ffi = _lib = None

__all__ = ["csv_column_kinds", "csv_convert", "csv_type_convert", "c_available", "KIND_NAMES",
           "default_threads", "indexed_batches"]

#: kind code (csv_typing.c) -> kind name (velaria.io.typing_rules)
KIND_NAMES = ("null", "bool", "int", "float", "date", "timestamp", "string")
_KIND_CODES = {name: code for code, name in enumerate(KIND_NAMES)}
_STATUSES = ("ok", "quote", "ragged", "utf8", "reference", "convert", "memory")


def c_available() -> bool:
    """True when the compiled scanner is present."""
    return _lib is not None


def indexed_batches() -> int:
    """How many batches of rows the walk has handled column by column in this process (its
    indexed walk: a structural pass finds a batch's cell ends, then one loop per column).
    The projection (``keep``) still walks row by row. Tests use it to see the walk ran."""
    return int(_lib.velaria_csv_indexed_batches()) if _lib is not None else 0


def default_threads() -> int:
    """Threads for one scan: every core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _use_simd(simd: bool | None) -> bool:
    if simd is not None:
        return simd
    from . import _loader

    return _loader.backend() != "scalar-c"


def _null_markers(null_values: Sequence[str]):
    """The null markers as the C code takes them: their bytes back to back, and lengths."""
    markers = [v.encode("utf-8") for v in null_values]
    return (_ffi.from_buffer("uint8_t[]", b"".join(markers) + b"\0"),
            _ffi.new("int64_t[]", [len(m) for m in markers] or [0]))


def _usable(delimiter: str) -> bool:
    return len(delimiter) == 1 and ord(delimiter) < 128 and delimiter not in '"\r\n'


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
    if not _usable(delimiter):
        return "reference", start, 0, None
    codes = bytearray(_KIND_CODES[k] for k in start)
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
    nulls, null_lens = _null_markers(null_values)
    status = _lib.velaria_csv_column_kinds(
        buf, len(buf), ncols, ord(delimiter), nulls, null_lens, len(null_values),
        int(bool(dates)), int(_use_simd(simd)), int(threads),
        _ffi.from_buffer("uint8_t[]", codes), rows, keep_flags, out_ptr, out_len)
    projected = None
    if keep is not None and status == 0:
        projected = bytes(memoryview(out)[:out_len[0]])
    return _STATUSES[status], [KIND_NAMES[c] for c in codes], int(rows[0]), projected


#: Arrow type of each kind csv_convert produces (a ``null`` column is read as text)
_CONVERT_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
                  "date": pa.date32(), "timestamp": pa.timestamp("us"), "string": pa.string(),
                  "null": pa.string()}
_SKIP = 255


def _owned(ptr, size: int):
    """An Arrow buffer over C memory that is freed when the last array using it goes."""
    owner = _ffi.gc(ptr, _lib.velaria_csv_free)
    return pa.foreign_buffer(int(_ffi.cast("uintptr_t", ptr)), size, base=owner)


def _column_array(col, typ: pa.DataType, rows: int) -> pa.Array:
    """The Arrow array over one converted column's buffers (ownership moves to Arrow)."""
    valid = _owned(col.valid, (rows + 7) // 8 + 1)
    if col.nulls == 0:
        valid = None
    if pa.types.is_string(typ):
        offsets = _owned(col.offsets, (rows + 1) * 4)
        data = _owned(col.values, col.values_len + 1)
        return pa.Array.from_buffers(typ, rows, [valid, offsets, data], null_count=col.nulls)
    return pa.Array.from_buffers(typ, rows, [valid, _owned(col.values, max(col.values_len, 1))],
                                 null_count=col.nulls)


def csv_convert(data, ncols: int, kinds: Sequence[str | None], delimiter: str = ",",
                null_values: Sequence[str] = ("",), threads: int = 1,
                names: Sequence[str] | None = None, simd: bool | None = None
                ) -> tuple[str, "pa.Table | None"]:
    """``(status, table)`` of ``data`` (bytes-like: whole data lines of a CSV file); see the
    reference twin for the contract. The table's arrays own C memory (no copy); with
    ``threads`` > 1 a big buffer is converted in parts concurrently (one record batch each;
    the call releases the GIL)."""
    if _lib is None:
        raise RuntimeError("the C CSV converter is not built; use "
                           "velaria.reference.csv_typing.csv_convert")
    if not _usable(delimiter):
        return "reference", None
    read = [i for i, kind in enumerate(kinds) if kind is not None]
    names = [f"c{i}" for i in read] if names is None else list(names)
    schema = pa.schema([pa.field(name, _CONVERT_TYPES[kinds[i]]) for name, i in zip(names, read)])
    types = bytearray(_SKIP if k is None else _KIND_CODES["string" if k == "null" else k]
                      for k in kinds)
    buf = _ffi.from_buffer("uint8_t[]", data)
    nulls, null_lens = _null_markers(null_values)
    parts = _ffi.new("int *")
    rows = _ffi.new("int64_t[16]")
    columns = _ffi.new("velaria_csv_column[]", 16 * max(1, len(read)))
    status = _lib.velaria_csv_convert(
        buf, len(buf), ncols, ord(delimiter), nulls, null_lens, len(null_values),
        int(_use_simd(simd)), int(threads), _ffi.from_buffer("uint8_t[]", types), parts, rows,
        columns)
    if status != 0:
        return _STATUSES[status], None
    batches = []
    for t in range(parts[0]):
        n = int(rows[t])
        arrays = [_column_array(columns[t * len(read) + k], field.type, n)
                  for k, field in enumerate(schema)]
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return "ok", pa.Table.from_batches(batches, schema=schema)


def csv_type_convert(data, ncols: int, delimiter: str = ",",
                     null_values: Sequence[str] = ("",), dates: bool = True,
                     kinds: Sequence[str] | None = None, threads: int = 1,
                     convert: Sequence[int] = (), simd: bool | None = None):
    """``(status, kinds, rows, parts)``: :func:`csv_column_kinds` of ``data`` that also
    converts the columns ``convert`` while it types them; see the reference twin for the
    contract. ``parts``: one ``(rows, [(kind, array), ...])`` per part the buffer was typed
    in (several with ``threads`` > 1 on a big buffer), the arrays owning C memory."""
    if _lib is None:
        raise RuntimeError("the C CSV typing scanner is not built; use "
                           "velaria.reference.csv_typing.csv_type_convert")
    start = ["null"] * ncols if kinds is None else list(kinds)
    if not _usable(delimiter):
        return "reference", start, 0, []
    codes = bytearray(_KIND_CODES[k] for k in start)
    hint = bytearray(ncols)
    for i in convert:
        hint[i] = 1
    read = sorted(set(convert))
    nulls, null_lens = _null_markers(null_values)
    rows = _ffi.new("int64_t *")
    parts = _ffi.new("int *")
    part_rows = _ffi.new("int64_t[16]")
    columns = _ffi.new("velaria_csv_column[]", 16 * max(1, len(read)))
    spec_kinds = bytearray(16 * max(1, len(read)))
    buf = _ffi.from_buffer("uint8_t[]", data)
    status = _lib.velaria_csv_type_convert(
        buf, len(buf), ncols, ord(delimiter), nulls, null_lens, len(null_values),
        int(bool(dates)), int(_use_simd(simd)), int(threads),
        _ffi.from_buffer("uint8_t[]", codes), rows, _ffi.from_buffer("uint8_t[]", hint),
        parts, part_rows, columns, _ffi.from_buffer("uint8_t[]", spec_kinds))
    out = []
    for t in range(parts[0] if status == 0 else 0):
        n = int(part_rows[t])
        converted = []
        for k in range(len(read)):
            code = spec_kinds[t * len(read) + k]
            if code == _SKIP or code == 0:
                converted.append((None if code == _SKIP else "null", None))
                continue
            kind = KIND_NAMES[code]
            converted.append((kind, _column_array(columns[t * len(read) + k],
                                                  _CONVERT_TYPES[kind], n)))
        out.append((n, converted))
    return _STATUSES[status], [KIND_NAMES[c] for c in codes], int(rows[0]), out
