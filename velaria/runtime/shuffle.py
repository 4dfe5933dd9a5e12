"""Hash shuffle: split Arrow rows into buckets by a hash of their key columns.

Rows with equal keys always land in the same bucket, in every process and on every run:
the hash is computed from the values themselves (never Python's per-process salted
``hash``). The hash is deliberately *coarser* than the engine's key equality, which is
always safe (a bucket may hold keys that turn out different, never split one key):

* integers, booleans, dates, times and timestamps hash their int64 value (a date its day
  number, a timestamp its count of units);
* intervals hash their length with a month of 30 days (the length `=` compares), wrapped
  to 64 bits, so intervals of one length share a bucket whatever their parts;
* floats hash their float64 bits after turning -0.0 into 0.0 and every NaN into one NaN;
* strings and binaries hash their bytes (a polynomial hash over the value buffer, vectorised);
* decimals hash their text;
* NULL hashes to one constant;
* any other type (lists, structs, ...) hashes to one constant for the whole column: those
  rows all share a bucket, which is correct but does not spread them.

Each bucket keeps the rows in their input order.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["key_hashes", "bucket_ids", "split_by_bucket"]

_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)
_STRING_BASE = np.uint64(0x5BD1E9955BD1E995)   # odd: invertible modulo 2**64


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _int_hash(arr: pa.Array) -> np.ndarray:
    t = arr.type
    if pa.types.is_temporal(t):
        # Arrow casts no date / time type to int64 directly: read the stored integers (a date32
        # is its day number, a timestamp its count of units) and widen those
        arr = arr.view(pa.int32() if t.bit_width == 32 else pa.int64())
    values = pc.cast(arr, pa.int64(), safe=False).fill_null(0)
    return np.asarray(values.to_numpy(zero_copy_only=False)).view(np.uint64)


_NS_PER_DAY = np.uint64(86_400 * 10**9)
_INTERVAL = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanos", "<i8")])


def _interval_hash(arr: pa.Array) -> np.ndarray:
    """(months * 30 + days) days plus the nanoseconds, in wrapping uint64 arithmetic."""
    parts = np.frombuffer(arr.buffers()[1], dtype=_INTERVAL)[arr.offset:arr.offset + len(arr)]
    days = parts["months"].astype(np.int64) * 30 + parts["days"].astype(np.int64)
    return days.view(np.uint64) * _NS_PER_DAY + parts["nanos"].view(np.uint64)


def _float_hash(arr: pa.Array) -> np.ndarray:
    x = np.asarray(pc.cast(arr, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64)
    x = x + 0.0                        # -0.0 + 0.0 is 0.0: both zeros hash alike
    x[np.isnan(x)] = np.nan            # one NaN bit pattern
    return x.view(np.uint64)


def _powers(base: np.uint64, n: int) -> np.ndarray:
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


_SLICE_ROWS = 1 << 16        # bounds the temporary arrays of the string hash


def _bytes_hash(arr: pa.Array) -> np.ndarray:
    """sum(byte_i * B**i) over each value, with i counted from the value's first byte."""
    if len(arr) > _SLICE_ROWS:
        return np.concatenate([_bytes_hash(arr.slice(i, _SLICE_ROWS)) for i in range(0, len(arr), _SLICE_ROWS)])
    arr = pc.cast(arr, pa.large_binary())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + n + 1]
    data_buf = arr.buffers()[2]
    start, stop = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets).astype(np.uint64)
    if stop == start:
        return lengths * _PRIME
    data = np.frombuffer(data_buf, dtype=np.uint8)[start:stop].astype(np.uint64)
    rel = offsets - start
    powers = _powers(_STRING_BASE, len(data) + 1)
    inverse = _powers(np.uint64(pow(int(_STRING_BASE), -1, 1 << 64)), len(data) + 1)
    weighted = data * powers[:len(data)]
    nonempty = rel[:-1] < rel[1:]
    sums = np.zeros(n, dtype=np.uint64)
    if nonempty.any():
        sums[nonempty] = np.add.reduceat(weighted, rel[:-1][nonempty])
    # reduceat sums up to the next start, which for a non-empty value is its own end
    # because empty values were left out; rescale so each value's hash starts at B**0
    return sums * inverse[rel[:-1]] + lengths * _PRIME


def _column_hash(arr: pa.Array) -> np.ndarray:
    t = arr.type
    with np.errstate(over="ignore"):
        if pa.types.is_null(t):
            return np.full(len(arr), _NULL_HASH, dtype=np.uint64)
        if pa.types.is_floating(t):
            h = _float_hash(arr)
        elif pa.types.is_interval(t):
            h = _interval_hash(arr)
        elif pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_temporal(t):
            h = _int_hash(arr)
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
                or pa.types.is_large_binary(t):
            h = _bytes_hash(arr)
        elif pa.types.is_decimal(t):
            h = _bytes_hash(pc.cast(arr, pa.string()))
        else:
            return np.full(len(arr), _NULL_HASH, dtype=np.uint64)
        if arr.null_count:
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            h = np.where(valid, h, _NULL_HASH)
        return h


def key_hashes(columns: list) -> np.ndarray:
    """One uint64 hash per row of the key ``columns`` (Arrow arrays or chunked arrays of
    equal length); equal keys give equal hashes in every process."""
    if not columns:
        raise ValueError("key_hashes() needs at least one key column")
    h = np.zeros(len(columns[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            h = _mix(h * _PRIME ^ _column_hash(col))
    return h


def bucket_ids(columns: list, buckets: int) -> np.ndarray:
    """The bucket (0 .. buckets-1) of each row of the key ``columns``."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    return (key_hashes(columns) % np.uint64(buckets)).astype(np.int64)


def split_by_bucket(table: pa.Table, keys: list[str], buckets: int) -> list[pa.Table]:
    """``table``'s rows split into ``buckets`` tables by the hash of the ``keys`` columns;
    each bucket keeps the input's row order."""
    if table.num_rows == 0:
        return [table] * buckets
    ids = bucket_ids([table.column(k) for k in keys], buckets)
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(buckets + 1))
    sorted_table = table.take(pa.array(order))
    return [sorted_table.slice(int(bounds[b]), int(bounds[b + 1] - bounds[b])) for b in range(buckets)]
