"""The fused filter kernels: threaded column compaction by a mask (``accel/compact_rows.py``),
the one-pass AND-of-terms filter (``select_terms.and_compact``) and the WHERE + float SUM pass
(``select_terms.sum_lanes_where``, ``accel/filtered_sums.py``): C on every SIMD level and
thread count against the numpy twins and the reference, bit for bit, and the queries that
take them naming the path in explain.

Generated data has NULLs, NaN, -0.0, +-inf, int extremes, empty inputs and ties (constants
equal to column values), from ``test_select_terms``'s generators."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from velaria.accel import _loader, batch_c, compact_rows, filter_terms
from velaria.plan.expr import Call, Column, Literal
from velaria.plan.kernel_paths import collecting
from velaria.reference import batch as ref_batch

from engine_pair import on_both_engines
from test_select_terms import CTX, F_EDGES, SETTINGS, _expected, select_terms, term_sets

needs_c = pytest.mark.skipif(not (select_terms.c_available() and compact_rows.c_available()),
                             reason="C kernels not built")
LEVELS = _loader.available_backends()


def _bits(a) -> bytes:
    return np.ascontiguousarray(a).view(np.uint8).tobytes()


@st.composite
def masked_columns(draw):
    n = draw(st.one_of(st.integers(0, 140), st.sampled_from([511, 512, 1023, 1024, 1025, 4097])))
    share = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    mask = rng.random(n) < share
    floats = rng.choice(np.array(F_EDGES + [2.0, -7.25]), n)
    ints = rng.integers(-(2 ** 63), 2 ** 63 - 1, n, dtype=np.int64, endpoint=True)
    return mask, [floats.view(np.uint64), ints.view(np.uint64)]


@needs_c
@SETTINGS
@given(masked_columns(), st.sampled_from(["1", "2", "5"]))
def test_compact_columns_c_matches_twin_on_every_level_and_thread_count(case, threads):
    mask, columns = case
    kept = int(mask.sum())
    want = [_bits(c[mask]) for c in columns]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VELARIA_THREADS", threads)
        mp.setattr(select_terms, "_ROWS_PER_THREAD", 64)       # threads even on small inputs
        for level in LEVELS:
            with _loader.forced_backend(level):
                got = compact_rows.compact_columns(columns, mask, kept, use_c=True)
            assert [_bits(g) for g in got] == want, level
    assert [_bits(g) for g in compact_rows.compact_columns(columns, mask, kept, use_c=False)] == want


@needs_c
def test_compact_columns_refuses_a_wrong_count_without_writing_past_its_output():
    mask = np.array([True, False, True, True])
    col = np.arange(4, dtype=np.uint64)
    with pytest.raises(ValueError, match="keeps more than 2 rows"):
        compact_rows.compact_columns([col], mask, 2, use_c=True)
    with pytest.raises(ValueError, match="one per mask byte"):
        compact_rows.compact_columns([col[:3]], mask, 3, use_c=True)


def _plain_terms(terms):
    """The terms without validity (the one-pass filter reads NULL-free columns only)."""
    return [select_terms.Term(t.values, None, t.op, t.constant) for t in terms]


@needs_c
@SETTINGS
@given(term_sets(), st.sampled_from(["1", "2", "5"]))
def test_and_compact_matches_the_row_rules_on_every_level_and_thread_count(case, threads):
    n, terms = case
    terms = _plain_terms(terms)
    want = _expected(n, terms)
    columns = [t.values.astype(np.int64).view(np.uint64) if t.values.dtype == np.int32 else t.values.view(np.uint64)
               for t in terms]
    expected = [_bits(c[want]) for c in columns]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VELARIA_THREADS", threads)
        mp.setattr(select_terms, "_ROWS_PER_THREAD", 4)
        for level in LEVELS:
            with _loader.forced_backend(level):
                bufs, kept = select_terms.and_compact(terms, columns, n, use_c=True)
            assert kept == int(want.sum()), level
            assert [bytes(b)[:8 * kept] for b in bufs] == expected, level
    bufs, kept = select_terms.and_compact(terms, columns, n, use_c=False)
    assert kept == int(want.sum()) and [bytes(b) for b in bufs] == expected


@needs_c
@pytest.mark.parametrize("threads", ["1", "2", "5"])
def test_and_compact_large_batch_with_ragged_ranges(monkeypatch, threads):
    monkeypatch.setenv("VELARIA_THREADS", threads)
    monkeypatch.setattr(select_terms, "_ROWS_PER_THREAD", 1000)
    rng = np.random.default_rng(11)
    n = 100_003
    v = rng.random(n)
    v[rng.integers(0, n, 300)] = math.nan
    v[rng.integers(0, n, 300)] = -0.0
    k = rng.integers(0, 1000, n)
    terms = [select_terms.Term(v, None, ">", 0.25), select_terms.Term(v, None, "<", 0.75),
             select_terms.Term(k, None, "<", 500)]
    want = (v > 0.25) & (v < 0.75) & (k < 500)
    bufs, kept = select_terms.and_compact(terms, [v.view(np.uint64), k.view(np.uint64)], n)
    assert kept == int(want.sum())
    assert np.frombuffer(bufs[0], np.float64).tobytes() == v[want].tobytes()
    assert np.array_equal(np.frombuffer(bufs[1], np.int64), k[want])


def _lanes_of(x: np.ndarray, pos: int) -> bytes:
    """The lane sums the specification gives for the values ``x`` starting at lane ``pos``."""
    lanes = np.zeros(batch_c.SUM_LANES)
    with np.errstate(all="ignore"):
        batch_c._sum_lanes_numpy(np.asarray(x, dtype=np.float64), lanes, pos)
    return lanes.tobytes()


@needs_c
@SETTINGS
@given(term_sets(), st.integers(0, 40), st.data())
def test_sum_lanes_where_is_the_lane_sum_of_the_filtered_column(case, pos, data):
    n, terms = case
    x = np.array(data.draw(st.lists(st.one_of(st.sampled_from(F_EDGES), st.floats()), min_size=n, max_size=n)),
                 dtype=np.float64)
    valid = None
    if data.draw(st.booleans()):
        valid = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.uint8)
    rows = _expected(n, terms)
    keep = rows if valid is None else rows & valid.astype(bool)
    want = _lanes_of(x[keep], pos)
    for use_c, levels in ((True, LEVELS), (False, LEVELS[:1])):
        for level in levels:
            lanes = np.zeros(batch_c.SUM_LANES)
            with _loader.forced_backend(level):
                added, kept = select_terms.sum_lanes_where(terms, x, valid, lanes, pos, use_c=use_c)
            assert (added, kept) == (int(keep.sum()), int(rows.sum())), (use_c, level)
            assert lanes.tobytes() == want, (use_c, level)


@needs_c
@SETTINGS
@given(term_sets(), st.integers(0, 40), st.data())
def test_sum_lanes_where_of_a_product_is_the_lane_sum_of_the_filtered_products(case, pos, data):
    """With a second factor, the lanes get the products of the kept rows (both factors not
    NULL), in row order: the bits of multiplying the filtered columns, then summing."""
    n, terms = case
    floats = st.one_of(st.sampled_from(F_EDGES), st.floats())
    x = np.array(data.draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64)
    y = np.array(data.draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64)
    valids = [None if data.draw(st.booleans()) else
              np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=np.uint8) for _ in range(2)]
    rows = _expected(n, terms)
    keep = rows.copy()
    for v in valids:
        if v is not None:
            keep &= v.astype(bool)
    with np.errstate(all="ignore"):
        want = _lanes_of(x[keep] * y[keep], pos)
    for use_c, levels in ((True, LEVELS), (False, LEVELS[:1])):
        for level in levels:
            lanes = np.zeros(batch_c.SUM_LANES)
            with _loader.forced_backend(level):
                added, kept = select_terms.sum_lanes_where(terms, x, valids[0], lanes, pos, use_c=use_c,
                                                           y=y, y_valid=valids[1])
            assert (added, kept) == (int(keep.sum()), int(rows.sum())), (use_c, level)
            assert lanes.tobytes() == want, (use_c, level)


@needs_c
@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("share", [0.01, 0.5, 0.97])
def test_sum_lanes_where_of_a_product_threads_and_shares_give_the_same_bits(monkeypatch, threads, share):
    """Few kept rows (found a mask word at a time) and many (listed branch-free), on several
    threads with their ring buffers wrapping: the same bits as multiplying then summing."""
    monkeypatch.setenv("VELARIA_THREADS", threads)
    monkeypatch.setattr(select_terms, "_ROWS_PER_THREAD", 1000)
    rng = np.random.default_rng(int(threads) + int(share * 100))
    n = 600_011
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-150, 150, n)
    y = rng.standard_normal(n) * 10.0 ** rng.integers(-150, 150, n)
    y[rng.integers(0, n, 500)] = -0.0
    y[rng.integers(0, n, 50)] = math.nan
    u = rng.random(n)
    y_valid = (rng.random(n) > 0.03).astype(np.uint8)
    terms = [select_terms.Term(u, None, "<", share)]
    rows = u < share
    keep = rows & y_valid.astype(bool)
    want = _lanes_of(x[keep] * y[keep], 7)
    for level in LEVELS:
        lanes = np.zeros(batch_c.SUM_LANES)
        with _loader.forced_backend(level):
            added, kept = select_terms.sum_lanes_where(terms, x, None, lanes, 7, use_c=True, y=y, y_valid=y_valid)
        assert (added, kept) == (int(keep.sum()), int(rows.sum()))
        assert lanes.tobytes() == want, level


@needs_c
@pytest.mark.parametrize("n", [1, 15, 16, 17, 1023, 1024, 1025, 2047, 2049, 100_003])
def test_masked_lane_sum_matches_the_compacted_sum_on_every_level(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    x[rng.integers(0, n, max(1, n // 50))] = -0.0
    valid = (rng.random(n) < 0.6).astype(np.uint8)
    for pos in (0, 5, 15):
        want = _lanes_of(x[valid.astype(bool)], pos)
        for level in LEVELS:
            lanes = np.zeros(batch_c.SUM_LANES)
            with _loader.forced_backend(level):
                assert batch_c.sum_lanes_f64(x, valid, lanes, pos) == int(valid.sum())
            assert lanes.tobytes() == want, (level, pos)


# ------------------------------------------------------------------------ through SQL


def _table(n=70_000, seed=5):
    rng = np.random.default_rng(seed)
    v = rng.random(n)
    v[rng.integers(0, n, 200)] = math.nan
    v[rng.integers(0, n, 200)] = -0.0
    w = pa.array(rng.standard_normal(n), mask=rng.random(n) < 0.05)          # NULLs
    return pa.table({"k": rng.integers(0, 1000, n), "v": v, "w": w, "i": rng.integers(-50, 50, n),
                     "s": pa.array(np.array(["a", "b", None], dtype=object)[rng.integers(0, 3, n)])})


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, floats compared bit for bit (NaN equal to NaN)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for x, y in zip(a.columns, b.columns):
        if pa.types.is_floating(x.type):
            if x.null_count != y.null_count or _bits(x.to_numpy(zero_copy_only=False)) != _bits(y.to_numpy(zero_copy_only=False)):
                return False
        elif not x.equals(y):
            return False
    return True


@pytest.mark.parametrize("sql, path", [
    ("SELECT SUM(v) AS s FROM t WHERE v > 0.5", "and-cmp+sum-where"),
    ("SELECT SUM(w) AS s, AVG(w) AS a, COUNT(*) AS c, SUM(v) AS sv FROM t WHERE v > 0.25 AND k < 500",
     "and-cmp+sum-where"),
    ("SELECT COUNT(*) AS c FROM t WHERE k BETWEEN 100 AND 200", "and-cmp+sum-where"),
    ("SELECT SUM(v) AS s FROM t WHERE v > 2.0", "and-cmp+sum-where"),              # nothing kept
    ("SELECT SUM(v) AS s FROM t WHERE v > 0.5 OR k < 3", None),                   # another shape
    ("SELECT SUM(i) AS s, COUNT(*) AS c FROM t WHERE v > 0.5", None),             # an integer sum
    ("SELECT SUM(v) AS s FROM t WHERE s = 'a'", None),                            # a string term
    ("SELECT SUM(v * w) AS s, AVG(w * v) AS a, COUNT(*) AS c FROM t WHERE v > 0.25 AND k < 500",
     "and-cmp+sum-where"),                                                          # products, NULLs
    ("SELECT SUM(v * w) AS s, SUM(v) AS sv FROM t WHERE k >= 998", "and-cmp+sum-where"),
    ("SELECT SUM(v * i) AS s FROM t WHERE k < 500", None),                        # an integer factor
    ("SELECT SUM(v * w + 1) AS s FROM t WHERE k < 500", None),                    # not a bare product
])
def test_where_and_global_sums_match_the_reference(sql, path):
    frames = on_both_engines(_table(), sql)
    out = {engine: df.to_arrow() for engine, df in frames.items()}
    assert _same(out["auto"], out["reference"]), (out["auto"], out["reference"])
    if path and select_terms.c_available():
        steps = {st.kind: st for st in frames["auto"]._physical_plan().steps}
        assert steps["Filter"].ran_path == path
        assert f"path={path}" in frames["auto"].explain()


def test_fused_where_counts_the_rows_the_filter_keeps():
    import velaria
    table = _table()
    s = velaria.Session(engine="auto")
    s.create_temp_view("t", s.create_dataframe_from_arrow(table))
    df = s.sql("SELECT SUM(v) AS s, COUNT(*) AS c FROM t WHERE v > 0.5 AND k < 500")
    got = df.to_arrow()
    v, k = table["v"].to_numpy(), table["k"].to_numpy()
    kept = int(np.count_nonzero(~(v <= 0.5) & (k < 500)))
    assert got["c"].to_pylist() == [kept]
    assert math.isnan(got["s"][0].as_py())          # NaN is above 0.5, so some NaN is summed


@needs_c
def test_filter_batch_takes_the_one_pass_filter_for_plain_columns(monkeypatch):
    calls = []
    real = filter_terms.and_compact
    monkeypatch.setattr(filter_terms, "and_compact", lambda *a, **k: calls.append(1) or real(*a, **k))
    table = _table(5000)
    batch = pa.record_batch([table["k"].combine_chunks(), table["v"].combine_chunks()], names=["k", "v"])
    k, v = Column(type=pa.int64(), index=0, name="k"), Column(type=pa.float64(), index=1, name="v")
    b = lambda name, *a: Call(type=pa.bool_(), name=name, args=a)  # noqa: E731
    pred = b("and", b(">", v, Literal(type=pa.float64(), value=0.25)),
             b("and", b("<", v, Literal(type=pa.float64(), value=0.75)), b("<", k, Literal(type=pa.int64(), value=500))))
    from velaria.accel import predicates
    paths: dict = {}
    with collecting(paths):
        got = predicates.filter_batch(pred, batch, CTX)
    assert calls and list(paths) == ["and-cmp"]
    want = ref_batch.filter_batch(pred, batch, CTX)
    assert got.num_rows == want.num_rows and got.column(0).equals(want.column(0))
    assert _bits(got.column(1).to_numpy()) == _bits(want.column(1).to_numpy())


@needs_c
@pytest.mark.parametrize("threads", ["1", "2", "3", "5"])
def test_sum_lanes_where_threads_give_the_same_bits(monkeypatch, threads):
    # 64K-row chunks dealt round-robin: 1.1M rows make 17, so each helper's ring of four
    # buffers wraps; every value is still added by one thread in row order
    monkeypatch.setenv("VELARIA_THREADS", threads)
    monkeypatch.setattr(select_terms, "_ROWS_PER_THREAD", 1000)
    rng = np.random.default_rng(int(threads))
    n = 1_100_003
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-200, 200, n)
    x[rng.integers(0, n, 1000)] = -0.0
    k = rng.integers(0, 1000, n)
    valid = (rng.random(n) > 0.02).astype(np.uint8)
    terms = [select_terms.Term(x, None, ">", -0.5), select_terms.Term(k, valid, "<", 900)]
    rows = ~(x <= -0.5) & (k < 900) & valid.astype(bool)
    for pos in (0, 9):
        want = _lanes_of(x[rows], pos)
        for level in LEVELS:
            lanes = np.zeros(batch_c.SUM_LANES)
            with _loader.forced_backend(level):
                added, kept = select_terms.sum_lanes_where(terms, x, None, lanes, pos, use_c=True)
            assert (added, kept) == (int(rows.sum()), int(rows.sum()))
            assert lanes.tobytes() == want, (level, pos)
