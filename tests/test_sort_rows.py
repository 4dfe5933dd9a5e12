"""The ORDER BY radix sort (``velaria.accel.sort_rows``): the C kernel against its numpy twin
and the reference sort, on generated key columns with NULLs, NaN, -0.0, +-inf, integer
extremes and ties, for several thread counts and LIMITs; and that ``sort_indices`` and
``ORDER BY`` really run it.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

sort_rows = pytest.importorskip("velaria.accel.sort_rows")
from velaria.accel import sort as accel_sort  # noqa: E402
from velaria.reference import batch as ref_batch, sort as ref_sort  # noqa: E402

needs_c = pytest.mark.skipif(not sort_rows.available(), reason=f"C sort not built: {sort_rows.import_error}")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
SortColumn = sort_rows.SortColumn

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, -1e300, 1.0]))
INTS = st.one_of(st.integers(-3, 3), st.integers(-(2 ** 63), 2 ** 63 - 1),
                 st.sampled_from([-(2 ** 63), 2 ** 63 - 1, -(2 ** 63) + 1, 0]))
UINTS = st.one_of(st.integers(0, 3), st.integers(0, 2 ** 64 - 1), st.sampled_from([0, 2 ** 64 - 1, 2 ** 63]))
DTYPES = {"f": (np.float64, FLOATS), "i": (np.int64, INTS), "u": (np.uint64, UINTS)}


@st.composite
def key_columns(draw, max_rows=40):
    """(columns as SortColumn, the same as Python lists with None for NULL)."""
    n = draw(st.integers(0, max_rows))
    cols, lists = [], []
    for kind in draw(st.lists(st.sampled_from("fiu"), min_size=1, max_size=4)):
        dtype, values = DTYPES[kind]
        vals = draw(st.lists(values, min_size=n, max_size=n))
        nulls = draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
        x = np.array(vals, dtype=dtype) if n else np.zeros(0, dtype=dtype)
        valid = None if nulls is None else ~np.array(nulls, dtype=bool).reshape(n)
        cols.append(SortColumn(x, valid, draw(st.booleans()), draw(st.booleans())))
        lists.append([None if valid is not None and not valid[i] else vals[i] for i in range(n)])
    return cols, lists


def _twin(cols, limit):
    n = len(cols[0].values)
    return sort_rows._sort_rows_numpy(cols, n if limit is None else min(limit, n))


def _reference(cols, lists, limit):
    order = ref_sort.sort_indices(lists, [c.descending for c in cols], [c.nulls_first for c in cols])
    return order if limit is None else order[:limit]


@needs_c
@SETTINGS
@given(key_columns(), st.one_of(st.none(), st.integers(0, 45)), st.integers(1, 4))
def test_c_matches_twin_and_reference(case, limit, threads):
    cols, lists = case
    got = sort_rows.sort_rows(cols, limit, threads=threads)
    assert got.dtype == np.int64
    assert got.tolist() == _twin(cols, limit).tolist() == _reference(cols, lists, limit)


@SETTINGS
@given(key_columns(max_rows=25), st.one_of(st.none(), st.integers(0, 30)))
def test_twin_matches_reference(case, limit):
    cols, lists = case
    assert _twin(cols, limit).tolist() == _reference(cols, lists, limit)


def _large_columns(rng, n):
    """Key columns big enough for several threads and the top-N selection passes."""
    makers = [
        lambda: rng.random(n),                                        # 62-bit float keys
        lambda: rng.integers(-5, 5, n),                               # heavy ties
        lambda: rng.integers(-(2 ** 63), 2 ** 63 - 1, n, dtype=np.int64),
        lambda: rng.integers(0, 2 ** 64 - 1, n, dtype=np.uint64),
        lambda: rng.choice(np.array([math.nan, -0.0, 0.0, math.inf, -math.inf, 1.5, -2.5, 1e300]), n),
        lambda: np.full(n, 7, dtype=np.int64),                        # constant: no pass
    ]
    cols = []
    for _ in range(int(rng.integers(1, 4))):
        x = makers[int(rng.integers(len(makers)))]()
        valid = None if rng.random() < 0.5 else rng.random(n) < rng.choice([0.0, 0.5, 0.95, 1.0])
        cols.append(SortColumn(x, valid, bool(rng.random() < 0.5), bool(rng.random() < 0.5)))
    return cols


@needs_c
@pytest.mark.parametrize("seed", range(12))
def test_large_inputs_any_thread_count(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20_000, 70_000))
    cols = _large_columns(rng, n)
    for limit in (None, 0, 1, 17, 1000, n // 9, n // 2, n + 5):
        want = _twin(cols, limit)
        for threads in (1, 2, 3, 8):
            got = sort_rows.sort_rows(cols, limit, threads=threads)
            assert np.array_equal(got, want), (seed, limit, threads)


@needs_c
def test_big_skewed_segments_take_nested_threaded_passes():
    # 300k rows: segments above 65,536 rows get threaded digit passes of their own; floats in
    # [0, 1) put half the rows under one leading digit, the int keys cluster in a narrow band
    rng = np.random.default_rng(99)
    n = 300_000
    wide = rng.integers(0, 2 ** 40, n, dtype=np.int64)
    wide[rng.random(n) < 0.7] = 12345                                  # one huge tie
    for cols in ([SortColumn(rng.random(n), None, False, False)],
                 [SortColumn(wide, rng.random(n) < 0.9, True, True)],
                 [SortColumn(rng.integers(0, 3, n), None, False, False), SortColumn(rng.random(n), None, True, False)]):
        want = _twin(cols, None)
        for threads in (1, 2, 3):
            assert np.array_equal(sort_rows.sort_rows(cols, threads=threads), want), threads


@needs_c
def test_top_n_among_ties_keeps_row_order():
    n = 100_000
    tied = np.zeros(n)
    tied[[5, 70_000, 99_999]] = -1.0                 # three smaller keys spread over the threads
    want = [5, 70_000, 99_999] + [i for i in range(n) if tied[i] == 0]
    for limit in (1, 3, 10, 5000):
        for threads in (1, 2, 4):
            got = sort_rows.sort_rows([SortColumn(tied, None, False, False)], limit, threads=threads)
            assert got.tolist() == want[:limit], (limit, threads)


def test_rejects_bad_columns():
    with pytest.raises(TypeError, match="uint64, int64 or float64"):
        sort_rows.sort_rows([SortColumn(np.zeros(3, dtype=np.int32), None, False, False)])
    with pytest.raises(ValueError, match="differ in length"):
        sort_rows.sort_rows([SortColumn(np.zeros(3), None, False, False), SortColumn(np.zeros(2), None, False, False)])


# ---- the sort_indices kernel and ORDER BY run it

STRINGS = st.one_of(st.none(), st.text(max_size=4), st.sampled_from(["", "a", "b", "ab", "é", "\U0001f600", "Z"]))


@SETTINGS
@given(st.lists(st.tuples(STRINGS, st.one_of(st.none(), INTS), st.one_of(st.none(), st.booleans())), max_size=40),
       st.lists(st.booleans(), min_size=3, max_size=3), st.lists(st.booleans(), min_size=3, max_size=3),
       st.one_of(st.none(), st.integers(0, 45)))
def test_sort_indices_strings_bools_ints_match_reference(rows, desc, nf, limit):
    arrays = [pa.array([r[0] for r in rows], type=pa.string()), pa.array([r[1] for r in rows], type=pa.int64()),
              pa.array([r[2] for r in rows], type=pa.bool_())]
    for keys in ([0], [0, 1], [2, 0, 1], [1, 2]):
        args = ([arrays[k] for k in keys], [desc[k] for k in keys], [nf[k] for k in keys], limit)
        assert accel_sort.sort_indices(*args).to_pylist() == ref_batch.sort_indices(*args).to_pylist()


def test_sort_indices_dates_timestamps_uint64_large_string():
    import datetime as dt
    day = dt.date(2024, 2, 29)
    arrays = [pa.array([day, None, dt.date(1970, 1, 1), day, dt.date(1, 1, 1)], type=pa.date32()),
              pa.array([5, 0, 2 ** 64 - 1, None, 2 ** 63], type=pa.uint64()),
              pa.array([dt.datetime(2020, 1, 1), None, dt.datetime(1900, 5, 5), dt.datetime(2020, 1, 1), None],
                       type=pa.timestamp("us", tz="UTC")),
              pa.array(["b", "a", None, "é", "a"], type=pa.large_string()),
              pa.array([1.5, None, -0.0, 0.0, math.nan], type=pa.float32()),
              pa.array([None] * 5, type=pa.null())]
    for j in range(len(arrays)):
        for desc in (False, True):
            for nf in (False, True):
                args = ([arrays[j], arrays[(j + 1) % len(arrays)]], [desc, not desc], [nf, nf], None)
                assert accel_sort.sort_indices(*args).to_pylist() == ref_batch.sort_indices(*args).to_pylist()


@needs_c
def test_order_by_runs_the_c_sort(monkeypatch):
    import velaria

    calls = []
    lib = sort_rows._lib

    class Counting:
        def __getattr__(self, name):
            return getattr(lib, name)

        @staticmethod
        def velaria_sort_rows(*args):
            calls.append((args[6], 0))                # (n, payload columns)
            return lib.velaria_sort_rows(*args)

        @staticmethod
        def velaria_sort_rows_take(*args):
            calls.append((args[6], args[10]))
            return lib.velaria_sort_rows_take(*args)

    monkeypatch.setattr(sort_rows, "_lib", Counting())
    s = velaria.Session(engine="accel")
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({
        "k": pa.array([3, 1, None, 2] * 5000, type=pa.int64()),
        "s": pa.array(["x", "b", "a", None] * 5000),
        "v": pa.array([0.5, -0.0, math.nan, 0.0] * 5000),
        "d": pa.array(list(range(20000)), type=pa.date32())})))
    # the payload the sort moves itself: the fixed-width columns without NULLs (v, d) of its
    # input (which holds the ORDER BY columns the SELECT list then drops), and the dictionary
    # codes of a string column that is a key
    for sql, moved in (("SELECT k, v FROM t ORDER BY v", 1), ("SELECT k FROM t ORDER BY k DESC NULLS LAST, v", 1),
                       ("SELECT s FROM t ORDER BY s LIMIT 7", 1), ("SELECT k, v FROM t ORDER BY v DESC LIMIT 3", 1),
                       ("SELECT v, d FROM t ORDER BY k", 2), ("SELECT d, s, v FROM t ORDER BY s, v DESC", 3),
                       ("SELECT s, k FROM t ORDER BY k", 0)):
        calls.clear()
        got = s.sql(sql).to_arrow()
        assert calls == [(20000, moved)], sql
        want = velaria.Session(engine="reference")
        want.create_temp_view("t", want.create_dataframe_from_arrow(s.sql("SELECT * FROM t").to_arrow()))
        assert repr(got.to_pylist()) == repr(want.sql(sql).to_arrow().to_pylist()), sql   # NaN-aware
