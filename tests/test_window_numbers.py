"""The window operator's numbering shortcuts equal the plain per-row arithmetic."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria.exec.window import _copy_numbers, _kept, _trunc_div, _tumbling_numbers

_MS = st.lists(st.integers(min_value=-10**12, max_value=10**12), max_size=50)


@settings(max_examples=200, deadline=None)
@given(_MS, st.sampled_from([1, 7, 1000, 60000]), st.booleans())
def test_tumbling_numbers_equal_truncating_division(ms, w, narrow):
    ms = np.array(ms, dtype=np.int64)
    if narrow and ms.size:                    # a batch inside one window: the shortcut runs
        ms = ms[0] - ms[0] % w + np.abs(ms) % w if ms[0] >= 0 else ms
    assert np.array_equal(_tumbling_numbers(ms, w, None), _trunc_div(ms, w))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=-10**6, max_value=10**6), max_size=40), st.integers(1, 4))
def test_copy_numbers_count_down_to_each_rows_latest_window(latest, per_row):
    latest = np.array(latest, dtype=np.int64)
    expected = [x - per_row + 1 + j for x in latest.tolist() for j in range(per_row)]
    assert _copy_numbers(latest, per_row).tolist() == expected
    assert _copy_numbers(latest.astype(np.int32), per_row).dtype == np.int32


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=30).filter(any), st.booleans())
def test_kept_rows_equal_a_filter(mine, with_valid):
    mine = np.array(mine)
    n = mine.size
    batch = pa.record_batch({"x": pa.array([f"v{i}" for i in range(n)]), "y": pa.array(range(n), pa.int64())})
    number = np.arange(n, dtype=np.int64) * 3
    valid = (np.arange(n) % 3 != 1) if with_valid else None
    kept, kept_number, kept_valid = _kept(batch, number, valid, mine)
    assert kept.to_pylist() == batch.filter(pa.array(mine)).to_pylist()
    assert kept_number.tolist() == number[mine].tolist()
    assert (kept_valid is None) == (valid is None)
    if valid is not None:
        assert kept_valid.tolist() == valid[mine].tolist()


def test_a_single_run_of_kept_rows_is_a_slice():
    batch = pa.record_batch({"y": pa.array(range(10), pa.int64())})
    mine = np.zeros(10, dtype=bool)
    mine[3:7] = True
    kept, _, _ = _kept(batch, np.arange(10, dtype=np.int64), None, mine)
    column = kept.column(0)                   # the same buffer, from row 3 on: nothing copied
    assert column.offset == 3 and column.buffers()[1].address == batch.column(0).buffers()[1].address


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=-10**9, max_value=10**9), max_size=40), st.integers(2, 6), st.data())
def test_owned_copy_is_the_workers_one_window_of_each_row(latest, n, data):
    from velaria.exec.window import _owned_copy
    i = data.draw(st.integers(0, n - 1))
    latest = np.array(latest, dtype=np.int64)
    got = _owned_copy(latest.copy(), n, i)
    for x, g in zip(latest.tolist(), got.tolist()):
        assert x - n < g <= x and g % n == i
