"""The C string gather (``accel/string_take.py``, ``accel/src/string_take.c``) against Arrow's
``take``: the same array byte for byte, for ``string`` and ``large_string``, sliced columns,
empty strings, long strings, every thread count; where it stands aside (NULLs, few rows, a bad
index); and that a join's text column goes through it."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria.exec import column_take

string_take = pytest.importorskip("velaria.accel.string_take")
needs_c = pytest.mark.skipif(string_take._lib is None, reason="the C string gather is not built")

TEXT = st.text(alphabet=st.sampled_from(["a", "b", "é", "\u4e2d", "\x00", " "]), max_size=40)


@needs_c
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXT, min_size=1, max_size=50), large=st.booleans(), cut=st.integers(0, 5),
       threads=st.sampled_from([1, 2, 3, 8]), seed=st.integers(0, 2 ** 32 - 1))
def test_c_gather_equals_arrow_take(monkeypatch, values, large, cut, threads, seed):
    """Random indices (repeats, every row or a few) over short, empty, multi-byte and long
    strings: the C gather returns exactly ``take``'s array."""
    monkeypatch.setattr(string_take, "MIN_ROWS", 0)
    col = pa.array(values, pa.large_string() if large else pa.string())
    col = col.slice(min(cut, len(col) - 1))                   # a sliced column's offsets
    idx = pa.array(np.random.default_rng(seed).integers(0, len(col), 3000), pa.int64())
    before = string_take.stats["c"]
    got = string_take.take_strings(col, idx, threads)
    assert string_take.stats["c"] == before + 1
    want = col.take(idx)
    assert got.type == want.type and got.equals(want)
    assert got.to_pylist() == want.to_pylist()


@needs_c
@pytest.mark.parametrize("threads", [1, 2, 5])
def test_many_rows_on_threads(threads):
    """Rows enough for several ranges, with strings longer than the 16-byte move."""
    col = pa.array([("x" * (i % 40)) + str(i) for i in range(5000)])
    idx = pa.array(np.random.default_rng(3).integers(0, 5000, 200_000))
    got = string_take.take_strings(col, idx, threads)
    assert got is not None and got.equals(col.take(idx))


@needs_c
def test_stands_aside_where_it_does_not_apply(monkeypatch):
    monkeypatch.setattr(string_take, "MIN_ROWS", 0)
    col = pa.array(["a", "bb", "ccc"])
    assert string_take.take_strings(pa.array(["a", None]), pa.array([0, 1])) is None      # NULL strings
    assert string_take.take_strings(col, pa.array([0, None])) is None                     # NULL index
    assert string_take.take_strings(col, pa.array([0, 3])) is None                        # out of range
    assert string_take.take_strings(col, pa.array([0, -1])) is None
    assert string_take.take_strings(pa.array([1, 2]), pa.array([0, 1])) is None           # not text
    monkeypatch.setattr(string_take, "MIN_ROWS", 10)
    assert string_take.take_strings(col, pa.array([0, 1])) is None                        # few rows
    # the caller's fallback is Arrow's take, which raises its own error for a bad index
    with pytest.raises(IndexError):
        column_take.take_columns([(col, pa.array([5]))], strings_in_c=True)


@needs_c
def test_a_join_gathers_its_text_column_in_c():
    """``SELECT d.name, t.v FROM t JOIN d``: a million-row-style join writes the dimension's
    names through the C gather, and the rows equal the reference engine's."""
    n = 3 * string_take.MIN_ROWS
    rng = np.random.default_rng(1)
    t = pa.table({"k": rng.integers(0, 50, n), "v": np.arange(n, dtype=np.float64)})
    d = pa.table({"k": np.arange(50), "name": [f"name{i % 7}" for i in range(50)]})
    out, ran = {}, {}
    for engine in ("auto", "reference"):
        s = velaria.Session(engine=engine)
        s.create_temp_view("t", s.create_dataframe_from_arrow(t))
        s.create_temp_view("d", s.create_dataframe_from_arrow(d))
        before = string_take.stats["c"]
        out[engine] = s.sql("SELECT d.name, t.v FROM t JOIN d ON t.k = d.k").to_arrow()
        ran[engine] = string_take.stats["c"] - before
    assert out["auto"].equals(out["reference"])
    assert ran == {"auto": 1, "reference": 0}         # the reference engine takes with Arrow
