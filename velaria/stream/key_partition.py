"""Which local worker owns a group of a stream's GROUP BY.

Local workers keep disjoint running state: a group belongs to exactly one worker, chosen by a
function of one of its key values (any function of the group key keeps a group in one place).
The function is the same in every process and on every batch, and it is computed the same way
on a batch's rows and on an exported state's key column, so a state handed over or restored
lands where the group's future rows will go. NULL is a value like any other (partition 0).

* the window key of a windowed aggregate (``step`` = the slide): window number modulo the
  worker count, so consecutive windows alternate between workers (a sliding window's copies of
  a row go to different workers);
* integers, dates, times, booleans: a multiplicative hash of the value;
* floats: the same hash of the value's bits, -0.0 and 0.0 one value, every NaN one value;
* text and binary: a polynomial hash of the bytes of each distinct value of the batch;
* anything else: the hash of its text.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

__all__ = ["partition_ids", "partition_key"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(0x100000001B3)


def _mix(v: np.ndarray, n: int) -> np.ndarray:
    """Fibonacci hashing of uint64 values into ``0 .. n-1`` (the high bits of v * golden)."""
    h = (v.astype(np.uint64, copy=False) * _GOLDEN) >> np.uint64(32)
    return (h % np.uint64(n)).astype(np.int64)


def _text_hash(arr: pa.Array) -> np.ndarray:
    """A uint64 per string (or binary) value: sum of byte * BASE**position, wrapping."""
    arr = arr.cast(pa.large_binary()) if not pat.is_large_binary(arr.type) else arr
    arr = arr.fill_null(b"")
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    data = arr.buffers()[2]
    lo, hi = int(offsets[0]), int(offsets[-1])
    raw = np.frombuffer(data, dtype=np.uint8, count=hi - lo, offset=lo) if data is not None and hi > lo \
        else np.zeros(0, dtype=np.uint8)
    lengths = np.diff(offsets)
    out = np.zeros(len(arr), dtype=np.uint64)
    if raw.size:
        position = np.arange(raw.size, dtype=np.int64) - np.repeat(offsets[:-1] - lo, lengths)
        powers = np.power(_BASE, position.astype(np.uint64))              # wraps mod 2**64
        terms = raw.astype(np.uint64) * powers + np.uint64(1)
        nonempty = lengths > 0
        starts = (offsets[:-1] - lo)[nonempty]
        out[nonempty] = np.add.reduceat(terms, starts)
    return out


def partition_ids(arr, n: int, step: int = 0) -> np.ndarray:
    """The owning worker (``0 .. n-1``) of each value of ``arr`` (int64 numpy). ``step``: the
    values are window starts, multiples of ``step`` (the slide)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    size = len(arr)
    if n <= 1 or size == 0 or pat.is_null(arr.type):
        return np.zeros(size, dtype=np.int64)
    if pat.is_dictionary(arr.type):
        inner = partition_ids(arr.dictionary, n, step)
        indices = arr.indices
        if indices.null_count:
            inner = np.append(inner, 0)                   # NULL: partition 0
            indices = indices.fill_null(len(arr.dictionary))
        return inner[np.asarray(indices)]
    t = arr.type
    valid = None if arr.null_count == 0 else np.asarray(arr.is_valid())
    if step and pat.is_integer(t):
        v = np.asarray(arr.cast(pa.int64()).fill_null(0))
        ids = (v // step) % n
    elif pat.is_integer(t) or pat.is_boolean(t) or pat.is_temporal(t):
        if pat.is_boolean(t):
            arr = arr.cast(pa.int8())
        elif pat.is_temporal(t):
            arr = arr.view(pa.int64() if t.bit_width == 64 else pa.int32())
        ids = _mix(np.asarray(arr.cast(pa.int64()).fill_null(0)).view(np.uint64), n)
    elif pat.is_floating(t):
        x = np.asarray(arr.cast(pa.float64()).fill_null(0.0)) + 0.0    # -0.0 + 0.0 == +0.0
        x[np.isnan(x)] = np.nan
        ids = _mix(x.view(np.uint64), n)
    elif pat.is_string(t) or pat.is_large_string(t) or pat.is_binary(t) or pat.is_large_binary(t):
        enc = pc.dictionary_encode(arr)
        inner = _mix(_text_hash(enc.dictionary), n)
        ids = inner[np.asarray(enc.indices.fill_null(0))] if len(inner) else np.zeros(size, dtype=np.int64)
    else:
        return partition_ids(arr.cast(pa.string()), n)
    if valid is not None:
        ids = np.where(valid, ids, 0)
    return ids.astype(np.int64, copy=False)


def partition_key(op) -> tuple[int, int]:
    """``(key position, step)``: the GROUP BY key of aggregate operator ``op`` that decides
    the owner, preferring the window key (its step is the slide), then an integer key, then
    the first key."""
    from ..exec.window import WindowKeyAggregateOperator
    if isinstance(op, WindowKeyAggregateOperator) and op.step > 0:
        return op.window_key, op.step
    for i in range(len(op.node.keys)):
        if pat.is_integer(op.schema.field(i).type):
            return i, 0
    return 0, 0
