"""``key_set(...).indices(keys)``: the row numbers of the keys in a join key set, the join key
pre-filter's selection. The accelerated twin against the reference (NULLs, repeats, keys out
of the bitmap's range, extremes, empty input, several key types), the C pass answering
(``accel/src/key_select.c``), and the same rows for every thread count."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.accel import join as accel_join
from velaria.accel import join_hash, key_select
from velaria.plan.kernel_paths import collecting
from velaria.reference import batch as ref_batch

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
KEYS = st.one_of(st.none(), st.integers(-5, 40), st.sampled_from([-(2 ** 63), 2 ** 63 - 1, 0]))
TYPES = [pa.int64(), pa.int32(), pa.date32()]


def _array(values, t):
    """``values`` as type ``t``, extremes clamped to what ``t`` holds (dates to years 1..3000)."""
    if t == pa.int64():
        return pa.array(values, t)
    bound = 2 ** 31 - 1 if t == pa.int32() else 700_000
    clamped = [None if v is None else max(-bound, min(bound, v)) for v in values]
    return pa.array(clamped, pa.int32()).cast(t)


@SETTINGS
@given(st.lists(KEYS, max_size=20), st.lists(KEYS, max_size=40), st.sampled_from(TYPES), st.integers(0, 3))
def test_indices_equal_the_reference(build, probe, t, offset):
    build_arr, probe_arr = _array(build, t), _array(probe, t)
    probe_arr = probe_arr.slice(min(offset, len(probe_arr)))          # an array with an offset
    want = ref_batch.key_set([build_arr]).indices(probe_arr)
    got = accel_join.key_set([build_arr]).indices(probe_arr)
    assert got.type == pa.int64() and got.to_pylist() == want.to_pylist()
    hits = ref_batch.key_set([build_arr]).contains([probe_arr]).to_pylist()
    assert want.to_pylist() == [i for i, h in enumerate(hits) if h]


def test_the_c_pass_answers_a_bitmap_key_set():
    if not join_hash.c_available() or not key_select.c_available():
        pytest.skip("no C module")
    s = accel_join.key_set([pa.array([1, 5, None, 7, 5], pa.int64())])
    paths: dict = {}
    with collecting(paths):
        got = s.indices(pa.array([1, 2, None, 7, 5, -9, 8, 2 ** 63 - 1, -(2 ** 63)], pa.int64()))
    assert got.to_pylist() == [0, 3, 4]
    assert "c-key-set" in paths


def test_a_wide_key_range_is_answered_from_the_hash_table():
    """Keys too far apart for a bitmap: the C pass does not apply, the answer is the same."""
    build = pa.array([-(2 ** 62), 2 ** 62], pa.int64())
    probe = pa.array([-(2 ** 62), 0, 2 ** 62, None], pa.int64())
    assert accel_join.key_set([build]).indices(probe).to_pylist() == [0, 2]


@pytest.mark.parametrize("threads", ["1", "2", "3", "8"])
def test_every_thread_count_gives_the_same_rows(monkeypatch, threads):
    if not key_select.c_available():
        pytest.skip("no C module")
    monkeypatch.setenv("VELARIA_THREADS", threads)
    rng = np.random.default_rng(7)
    n = 700_000                                   # several ranges of at least 65,536 rows
    probe = rng.integers(-100, 300_000, n)
    valid = rng.random(n) < 0.9
    build = np.unique(rng.integers(0, 250_000, 20_000))
    s = accel_join.key_set([pa.array(build)])
    got = s.indices(pa.array(probe, mask=~valid)).to_numpy()
    want = np.flatnonzero(np.isin(probe, build) & valid)
    assert np.array_equal(got, want)
