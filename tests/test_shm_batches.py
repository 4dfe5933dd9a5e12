"""A batch laid out raw in a buffer (``velaria/stream/shm_batches.py``: the driver's shared
block for a local worker) reads back equal, over every flat column type, sliced batches,
NULLs, empty strings and batches; other columns are refused (the caller writes IPC)."""
from __future__ import annotations

import decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.stream import shm_batches

TYPES = {
    "i64": (pa.int64(), st.integers(-2**63, 2**63 - 1)),
    "i8": (pa.int8(), st.integers(-128, 127)),
    "f64": (pa.float64(), st.floats(allow_nan=True)),
    "f32": (pa.float32(), st.floats(width=32, allow_nan=True)),
    "ts": (pa.timestamp("ms"), st.integers(-2**40, 2**40)),
    "date": (pa.date32(), st.integers(-100_000, 100_000)),
    "dec": (pa.decimal128(20, 2), st.decimals(-10**17, 10**17, places=2, allow_nan=False, allow_infinity=False)),
    "str": (pa.string(), st.text(max_size=6)),
    "lstr": (pa.large_string(), st.text(max_size=6)),
    "bin": (pa.binary(), st.binary(max_size=6)),
}


def _roundtrip(batch: pa.RecordBatch) -> pa.RecordBatch:
    size = shm_batches.raw_size(batch)
    buf = bytearray(size)
    layout = shm_batches.write_raw(memoryview(buf), batch, batch.schema.serialize().to_pybytes())
    return shm_batches.read_raw(pa.py_buffer(bytes(buf)), layout)


@st.composite
def batches(draw):
    names = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=4, unique=True))
    n = draw(st.integers(0, 40))
    columns = []
    for name in names:
        t, values = TYPES[name]
        nulls = draw(st.booleans())
        column = draw(st.lists(st.one_of(st.none(), values) if nulls else values, min_size=n, max_size=n))
        if name == "dec":
            column = [None if v is None else decimal.Decimal(v) for v in column]
        columns.append(pa.array(column, type=t))
    batch = pa.record_batch(columns, names=names)
    start = 8 * draw(st.integers(0, n // 8))           # a NULL bitmap sliced at a whole byte
    return batch.slice(start, draw(st.integers(0, n - start)))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches())
def test_a_raw_batch_reads_back_equal(batch):
    got = _roundtrip(batch)
    assert got.schema.equals(batch.schema) and got.num_rows == batch.num_rows
    for g, w in zip(got.columns, batch.columns):
        assert g.null_count == w.null_count
        # NaN != NaN: compare the values' bits where valid
        if pa.types.is_floating(w.type):
            assert np.array_equal(g.to_numpy(zero_copy_only=False), w.to_numpy(zero_copy_only=False), equal_nan=True)
        else:
            assert g.to_pylist() == w.to_pylist()


def test_string_offsets_start_at_zero_in_the_block():
    batch = pa.record_batch([pa.array(["aa", "bbb", "c", "dddd"])], names=["s"]).slice(1, 2)
    got = _roundtrip(batch)
    assert got.column(0).to_pylist() == ["bbb", "c"]
    assert np.frombuffer(got.column(0).buffers()[1], dtype=np.int32)[:3].tolist() == [0, 3, 4]


@pytest.mark.parametrize("column", [
    pa.array([True, False]),                                  # bit-packed values
    pa.array(["a", "b"]).dictionary_encode(),
    pa.array([[1], [2]]),
    pa.array([1, None, 3] * 4).slice(3),                      # NULL bitmap starting mid-byte
], ids=["bool", "dictionary", "list", "bitmap-mid-byte"])
def test_other_columns_are_refused(column):
    assert shm_batches.raw_size(pa.record_batch([column], names=["c"])) is None


def test_a_sliced_column_without_nulls_takes_the_raw_path():
    batch = pa.record_batch([pa.array(range(100)).slice(3, 50)], names=["c"])
    assert shm_batches.raw_size(batch) == 448         # 400 bytes, 64-byte aligned
    assert _roundtrip(batch).column(0).to_pylist() == list(range(3, 53))
