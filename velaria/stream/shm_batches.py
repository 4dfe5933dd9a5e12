"""A record batch's buffers laid out in a shared-memory block, without the Arrow IPC format.

The query's process hands every batch to a local worker through shared memory. Writing an
IPC stream costs its metadata, the stream's own framing and, for a batch sliced out of a
larger one (an Arrow source's batches usually are), a rebased copy of each string column's
offsets on top of copying the data. Here each buffer the batch needs is copied once into the
block, 64-byte aligned: fixed-width values as they are, a string column's offsets rebased
while they are copied, and its value bytes; the worker rebuilds the arrays over the block in
place. The *layout* (a tuple of integers plus the schema's IPC bytes, a few hundred bytes)
travels in the message.

Only flat columns take this path: fixed-width numbers, dates, times, timestamps, durations
and decimals, and (large) strings and binaries, with a validity bitmap at a whole byte.
:func:`raw_size` returns None for any other batch (booleans, dictionaries, nested types, a
NULL bitmap starting mid-byte), and the caller writes an IPC stream instead.
"""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

__all__ = ["raw_size", "write_raw", "read_raw"]

_ALIGN = 64


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


def _offset_type(t: pa.DataType):
    """The offsets' numpy type of a string or binary type, None for fixed-width, False for
    any other type."""
    if pat.is_string(t) or pat.is_binary(t):
        return np.int32
    if pat.is_large_string(t) or pat.is_large_binary(t):
        return np.int64
    if (pat.is_integer(t) or pat.is_floating(t) or pat.is_timestamp(t) or pat.is_date(t)
            or pat.is_time(t) or pat.is_duration(t) or pat.is_decimal(t)) and t.bit_width % 8 == 0:
        return None
    return False


def _parts(batch: pa.RecordBatch):
    """Per column: (validity byte range or None, offsets (numpy, this slice's n + 1) or None,
    data byte range) over the column's own buffers; None when a column cannot go raw."""
    out = []
    for column in batch.columns:
        t = column.type
        kind = _offset_type(t)
        if kind is False:
            return None
        n, off = len(column), column.offset
        buffers = column.buffers()
        validity = None
        if column.null_count:
            if off % 8:
                return None
            validity = (off // 8, (off + n + 7) // 8)
        if kind is None:
            width = t.bit_width // 8
            out.append((validity, None, (off * width, (off + n) * width)))
        else:
            if n == 0 or buffers[1] is None:
                out.append((validity, np.zeros(1, dtype=kind), (0, 0)))
                continue
            offsets = np.frombuffer(buffers[1], dtype=kind)[off:off + n + 1]
            out.append((validity, offsets, (int(offsets[0]), int(offsets[-1]))))
    return out


def raw_size(batch: pa.RecordBatch) -> int | None:
    """Bytes :func:`write_raw` needs for ``batch``; None when ``batch`` cannot go raw."""
    parts = _parts(batch)
    if parts is None:
        return None
    total = 0
    for validity, offsets, (lo, hi) in parts:
        if validity is not None:
            total += _aligned(validity[1] - validity[0])
        if offsets is not None:
            total += _aligned(offsets.nbytes)
        total += _aligned(hi - lo)
    return max(total, 1)


def write_raw(buf, batch: pa.RecordBatch, schema_bytes: bytes) -> tuple:
    """Copy ``batch``'s buffers into the writable buffer ``buf`` (at least
    ``raw_size(batch)`` bytes); the layout :func:`read_raw` rebuilds it from.
    ``schema_bytes``: ``batch.schema`` as IPC bytes (the caller keeps them per schema)."""
    dst = np.frombuffer(buf, dtype=np.uint8)
    pos = 0
    columns = []

    def put(src, lo: int, hi: int) -> tuple[int, int]:
        nonlocal pos
        start = pos
        if hi > lo:
            dst[start:start + hi - lo] = np.frombuffer(src, dtype=np.uint8, count=hi - lo, offset=lo)
        pos = start + _aligned(hi - lo)
        return start, hi - lo

    try:
        for column, (validity, offsets, (lo, hi)) in zip(batch.columns, _parts(batch)):
            buffers = column.buffers()
            v = put(buffers[0], *validity) if validity is not None else None
            o = None
            if offsets is not None:
                # rebased while copied: the worker's offsets start at 0 in its value bytes
                o = (pos, offsets.nbytes)
                np.subtract(offsets, offsets[0], out=dst[pos:pos + offsets.nbytes].view(offsets.dtype))
                pos += _aligned(offsets.nbytes)
            d = put(buffers[-1], lo, hi)
            columns.append((v, column.null_count, o, d))
    finally:
        del dst                       # no export of the block's memory may outlive the write
    return schema_bytes, batch.num_rows, tuple(columns)


@functools.lru_cache(maxsize=16)
def _schema(schema_bytes: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(schema_bytes))


def read_raw(block: pa.Buffer, layout: tuple) -> pa.RecordBatch:
    """The batch :func:`write_raw` laid out in ``block`` (its arrays point into ``block``,
    nothing is copied)."""
    schema_bytes, n, columns = layout
    schema = _schema(schema_bytes)
    arrays = []
    for field, (v, null_count, o, d) in zip(schema, columns):
        validity = block.slice(*v) if v is not None else None
        data = block.slice(*d)
        buffers = [validity, data] if o is None else [validity, block.slice(*o), data]
        arrays.append(pa.Array.from_buffers(field.type, n, buffers, null_count=null_count))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
