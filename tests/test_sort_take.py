"""The sort that moves its payload (``sort_rows_take``, the ``sort_take`` kernel) and the LIMIT
pass's vectorised bar test: the C kernel against its numpy twin and the reference, on
generated keys and payloads with NULLs, NaN, -0.0, +-inf, integer extremes and ties; and
checks that the fused and the bar paths really run.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

sort_rows = pytest.importorskip("velaria.accel.sort_rows")
from velaria.accel import sort as accel_sort  # noqa: E402
from velaria.reference import batch as ref_batch  # noqa: E402

needs_c = pytest.mark.skipif(not sort_rows.available(), reason=f"C sort not built: {sort_rows.import_error}")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
SortColumn = sort_rows.SortColumn

SPECIAL_F = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, -1e300, 1.0, 2.5]
SPECIAL_I = [-(2 ** 63), 2 ** 63 - 1, -(2 ** 63) + 1, 0, -1, 1, 7]
PAYLOAD_DTYPES = [np.int64, np.float64, np.int32, np.float32, np.int16, np.uint8]


def _pool_column(draw, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n values drawn (with many ties) from a small pool that holds the special values."""
    if kind == "f":
        pool = np.array(draw(st.lists(st.sampled_from(SPECIAL_F) | st.floats(), min_size=1, max_size=12)))
    else:
        pool = np.array(draw(st.lists(st.sampled_from(SPECIAL_I) | st.integers(-(2 ** 63), 2 ** 63 - 1),
                                      min_size=1, max_size=12)), dtype=np.int64)
    return pool[rng.integers(0, len(pool), n)]


@st.composite
def sort_cases(draw, max_rows=3000):
    """(key columns, payload arrays, limit, threads); sizes span the fused full sort, the
    LIMIT pass and the all-equal case."""
    n = draw(st.sampled_from([0, 1, 7, 200, max_rows]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    cols = []
    for kind in draw(st.lists(st.sampled_from("fi"), min_size=1, max_size=3)):
        values = _pool_column(draw, kind, n, rng)
        valid = None if draw(st.booleans()) else rng.random(n) < draw(st.sampled_from([0.0, 0.5, 0.95]))
        cols.append(SortColumn(values, valid, draw(st.booleans()), draw(st.booleans())))
    payload = [rng.integers(-100, 100, n).astype(dt) for dt in draw(st.lists(st.sampled_from(PAYLOAD_DTYPES),
                                                                              max_size=3))]
    limit = draw(st.one_of(st.none(), st.sampled_from([0, 1, 3, 100, n // 2, n + 1])))
    return cols, payload, limit, draw(st.integers(1, 4))


@needs_c
@SETTINGS
@given(sort_cases(), st.booleans())
def test_sort_rows_take_matches_twin(case, rows):
    cols, payload, limit, threads = case
    n = len(cols[0].values)
    want = sort_rows._sort_rows_numpy(cols, n if limit is None else min(limit, n))
    got_rows, got = sort_rows.sort_rows_take(cols, payload, limit, threads, rows=rows)
    if rows:
        assert np.array_equal(got_rows, want)
    else:
        assert got_rows is None
    for p, g in zip(payload, got):
        assert g.dtype == p.dtype and np.array_equal(g, p[want])


@needs_c
def test_big_fused_sort_matches_twin():
    # large enough for threaded first passes, skewed buckets and all-tied stretches
    rng = np.random.default_rng(5)
    n = 300_000
    v = rng.random(n)
    v[rng.random(n) < 0.3] = -0.0
    v[rng.random(n) < 0.05] = math.nan
    payload = [np.arange(n, dtype=np.int64), v.copy(), rng.integers(0, 9, n).astype(np.int32)]
    for cols in ([SortColumn(v, None, False, False)], [SortColumn(v, None, True, True)],
                 [SortColumn(np.zeros(n), None, False, False)],
                 [SortColumn(rng.integers(0, 3, n), rng.random(n) < 0.9, False, True)]):
        want = sort_rows._sort_rows_numpy(cols, n)
        for threads in (1, 2, 3):
            for limit in (None, n // 3):
                got_rows, got = sort_rows.sort_rows_take(cols, payload, limit, threads)
                m = n if limit is None else limit
                assert np.array_equal(got_rows, want[:m])
                for p, g in zip(payload, got):
                    assert np.array_equal(g, p[want[:m]], equal_nan=g.dtype.kind == "f")


@needs_c
@SETTINGS
@given(st.sampled_from("fi"), st.lists(st.sampled_from(SPECIAL_F + [3.0, -2.0]) | st.floats(), min_size=1, max_size=8),
       st.lists(st.sampled_from(SPECIAL_I) | st.integers(-(2 ** 63), 2 ** 63 - 1), min_size=1, max_size=8),
       st.booleans(), st.sampled_from([1, 2, 5, 100]), st.integers(1, 3), st.integers(0, 2 ** 32 - 1))
def test_top_n_bar_test_matches_twin(kind, fpool, ipool, descending, limit, threads, seed):
    # 20k rows: the candidates fill up and the bar is set, so most blocks take the bar test
    rng = np.random.default_rng(seed)
    pool = np.array(fpool) if kind == "f" else np.array(ipool, dtype=np.int64)
    values = pool[rng.integers(0, len(pool), 20_000)]
    cols = [SortColumn(values, None, descending, False)]
    assert np.array_equal(sort_rows.sort_rows(cols, limit, threads), sort_rows._sort_rows_numpy(cols, limit))


@needs_c
def test_top_n_bar_test_runs_and_keeps_nan_and_zero_ties():
    n = 200_000
    v = np.random.default_rng(3).random(n)
    v[[10, 150_000]] = math.nan
    v[[20, 199_999]] = -0.0
    v[[30, 120_000]] = 0.0
    for desc in (False, True):
        before = sort_rows.bar_skips()
        cols = [SortColumn(v, None, desc, False)]
        for limit in (1, 4, 100):
            assert sort_rows.sort_rows(cols, limit, 2).tolist() == sort_rows._sort_rows_numpy(cols, limit).tolist()
        assert sort_rows.bar_skips() - before > n // 256      # most blocks were skipped whole
    k = np.arange(n, dtype=np.int64) - 2 ** 62        # the first rows are the smallest: later blocks skip
    before = sort_rows.bar_skips()
    assert sort_rows.sort_rows([SortColumn(k, None, False, False)], 3, 1).tolist() == [0, 1, 2]
    assert sort_rows.bar_skips() > before


def test_payload_checks():
    col = [SortColumn(np.zeros(3), None, False, False)]
    with pytest.raises(TypeError, match="fixed-width"):
        sort_rows.sort_rows_take(col, [np.array(["a", "b", "c"], dtype=object)])
    with pytest.raises(ValueError, match="differs in length"):
        sort_rows.sort_rows_take(col, [np.zeros(2)])


# ---- the sort_take kernel

VALUES = {
    "i": (pa.int64(), st.one_of(st.none(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.sampled_from([0, 1, -1])),),
    "f": (pa.float64(), st.one_of(st.none(), st.floats(), st.sampled_from(SPECIAL_F)),),
    "s": (pa.string(), st.one_of(st.none(), st.text(max_size=3), st.sampled_from(["", "a", "é"])),),
    "d": (pa.date32(), st.one_of(st.none(), st.integers(-1000, 1000)),),
    "b": (pa.int8(), st.one_of(st.none(), st.integers(-128, 127)),),
}


@SETTINGS
@given(st.integers(0, 60).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.sampled_from("ifsdb"), min_size=1, max_size=4),
    st.data())), st.one_of(st.none(), st.integers(0, 70)))
def test_sort_take_matches_reference(case, limit):
    n, kinds, data = case
    arrays = {}
    for j, kind in enumerate(kinds):
        t, values = VALUES[kind]
        vals = data.draw(st.lists(values, min_size=n, max_size=n))
        if data.draw(st.booleans()):
            vals = [0 if x is None else x for x in vals] if kind != "s" else ["" if x is None else x for x in vals]
        arrays[f"c{j}"] = pa.array(vals, type=t)
    batch = pa.record_batch(arrays)
    keys = data.draw(st.lists(st.integers(0, len(kinds) - 1), min_size=1, max_size=3))
    desc = [data.draw(st.booleans()) for _ in keys]
    nf = [data.draw(st.booleans()) for _ in keys]
    args = (batch, [batch.column(k) for k in keys], desc, nf, limit)
    got = pa.Table.from_batches(accel_sort.sort_take(*args), schema=batch.schema)
    want = pa.Table.from_batches(ref_batch.sort_take(*args), schema=batch.schema)
    assert repr(got.to_pydict()) == repr(want.to_pydict())          # NaN- and -0.0-aware
