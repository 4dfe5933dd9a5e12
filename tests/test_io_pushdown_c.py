"""Pushed filters applied with the C kernels (``velaria.io.pushdown_c``) keep exactly the rows,
columns and values pyarrow's comparison and ``filter`` keep: int64 and float64 columns with
NULLs, NaN, -0.0, infinities and the extremes of their range, constants on and beyond the
exact range, empty and sliced batches, several filters, text and number payloads with and
without NULLs (NaN is above every number on both paths, as the engine orders it). Filters
whose C answer could differ are left to pyarrow; a CSV scan's
filter really runs in C."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.accel import string_take
from velaria.io import pushdown, pushdown_c
from velaria.io.base import PushedFilter
from velaria.io.csv_source import CsvSource
from velaria.io.typed_source import clear_typing_cache

pytestmark = pytest.mark.skipif(pushdown_c._kernels() is None, reason="no compiled accelerator")

_OPS = sorted(pushdown._OPS)
_INTS = st.one_of(st.integers(-20, 20),
                  st.sampled_from([2 ** 63 - 1, -(2 ** 63), 2 ** 53, 2 ** 53 + 1, -(2 ** 53) - 1]))
_FLOATS = st.one_of(st.floats(-20, 20), st.sampled_from(
    [float("nan"), -0.0, 0.0, float("inf"), float("-inf"), 1.7e308, 5e-324, 2.0 ** 53]))
_CONSTANTS = st.one_of(_INTS, _FLOATS, st.booleans(), st.sampled_from([0, 10, -0.0, 2.5]))


def _pyarrow_filtered(batch, filters, kept):
    """What ``apply_filters`` keeps without the C kernels."""
    mask = pushdown._filter_mask(batch, filters)
    return kept if mask is None else kept.filter(mask)


def _comparable(batch):
    """``batch`` with its float columns as text, so that NaN equals NaN (and -0.0 stays
    apart from 0.0) when batches are compared."""
    return pa.record_batch([pc.cast(c, pa.string()) if pa.types.is_floating(c.type) else c
                            for c in batch.columns], names=batch.schema.names)


@st.composite
def _batches(draw):
    rows = draw(st.integers(0, 40))
    ints = draw(st.lists(st.one_of(st.none(), _INTS), min_size=rows, max_size=rows))
    floats = draw(st.lists(st.one_of(st.none(), _FLOATS), min_size=rows, max_size=rows))
    plain = draw(st.lists(_FLOATS, min_size=rows, max_size=rows))
    text = st.text("ab\u00e9\U0001f600", max_size=12)
    texts = draw(st.lists(st.one_of(text, st.none()) if draw(st.booleans()) else text,
                          min_size=rows, max_size=rows))
    flags = draw(st.lists(st.one_of(st.none(), st.booleans()), min_size=rows, max_size=rows))
    batch = pa.record_batch({"i": pa.array(ints, pa.int64()), "f": pa.array(floats, pa.float64()),
                             "p": pa.array(plain, pa.float64()), "t": pa.array(texts, pa.string()),
                             "b": pa.array(flags, pa.bool_())})
    start = draw(st.integers(0, rows))        # a slice: the columns have an offset
    return batch.slice(start, draw(st.integers(0, rows - start)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=_batches(), data=st.data(), gather_texts=st.booleans())
def test_c_filters_keep_what_pyarrow_keeps(batch, data, gather_texts):
    filters = data.draw(st.lists(st.builds(PushedFilter, st.sampled_from(["i", "f"]),
                                           st.sampled_from(_OPS), _CONSTANTS),
                                 min_size=1, max_size=3))
    kept = batch.select(data.draw(st.lists(st.sampled_from(batch.schema.names), unique=True)))
    with pytest.MonkeyPatch.context() as patch:
        if gather_texts:   # text columns of any size gathered in C
            patch.setattr(string_take, "MIN_ROWS", 1)
        got = pushdown_c.filter_in_c(batch, filters, kept)
    exact = all(not isinstance(f.value, bool) and (
        (f.column == "i" and type(f.value) is int and -(2 ** 63) <= f.value < 2 ** 63) or
        (f.column == "f" and f.value == f.value
         and (type(f.value) is float or abs(f.value) <= 2 ** 53))) for f in filters)
    assert (got is not None) == exact
    if got is not None:
        want = _pyarrow_filtered(batch, filters, kept)
        assert got.schema == want.schema and got.num_rows == want.num_rows
        assert _comparable(got).equals(_comparable(want)), (got.to_pydict(), want.to_pydict())


def test_apply_filters_uses_c_and_gathers_texts_in_c():
    n = 100_000
    batch = pa.record_batch({"q": pa.array([i % 100 for i in range(n)], pa.int64()),
                             "cat": pa.array([f"c{i % 7}" for i in range(n)]),
                             "v": pa.array([i * 0.5 for i in range(n)])})
    flts = [PushedFilter("q", ">", 10)]
    before, texts = pushdown_c.stats["c"], string_take.stats["c"]
    got = pushdown.apply_filters(batch, flts, ["cat", "v"])
    assert pushdown_c.stats["c"] == before + 1 and string_take.stats["c"] == texts + 1
    assert got.equals(_pyarrow_filtered(batch, flts, batch.select(["cat", "v"])))
    # a float column with '>': NaN above every number, on both paths
    nan = pa.record_batch({"v": pa.array([float("nan"), 0.5, 2.0, None])})
    for flt in [PushedFilter("v", ">", 1.0), PushedFilter("v", ">=", 1.0), PushedFilter("v", "<", 1.0)]:
        got = pushdown_c.filter_in_c(nan, [flt], nan)
        assert got is not None and _comparable(got).equals(_comparable(_pyarrow_filtered(nan, [flt], nan)))
    assert str(pushdown_c.filter_in_c(nan, [PushedFilter("v", ">", 1.0)], nan).column(0).to_pylist()) == "[nan, 2.0]"


def test_a_csv_scan_filters_in_c(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("qty,cat,value\n" + "".join(f"{i % 100},c{i % 5},{i}.5\n"
                                                for i in range(50_000)))
    clear_typing_cache()
    before = pushdown_c.stats["c"]
    got = pa.Table.from_batches(list(CsvSource(str(path)).scan(
        ["cat", "value"], [PushedFilter("qty", ">", 10)])))
    assert pushdown_c.stats["c"] > before
    assert got.column("value").to_pylist() == [i + 0.5 for i in range(50_000) if i % 100 > 10]
    assert got.column("cat").to_pylist() == [f"c{i % 5}" for i in range(50_000) if i % 100 > 10]
