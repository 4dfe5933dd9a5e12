"""The accelerated hash join's C path (``accel/join_hash.py``, ``accel/src/hash_join.c``) against
the reference join, in each of its table kinds (dense lookup table, hash table, hash table
behind a bitmap of present keys) and with either side built; the key forms (one integer key,
packed integer keys, factorised keys); explain naming the path that ran; and the plan rewrites
made for joins (join output pruning, constant date arithmetic folded so that a WHERE conjunct
moves below the join, GROUP BY on several keys through packed hash tables)."""
from __future__ import annotations

import datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria import accel
from velaria.plan import logical as L
from velaria.plan.kernel_paths import collecting
from velaria.plan.optimize import prune
from velaria.reference import batch as ref_batch

join_hash = pytest.importorskip("velaria.accel.join_hash")
accel_join = pytest.importorskip("velaria.accel.join")

needs_c = pytest.mark.skipif(not (accel.available() and join_hash.c_available()),
                             reason="the C hash join is not built")

I64 = pa.int64()
#: values that stress the key handling: extremes of int64, neighbours, repeats
INTS = [0, 1, -1, 2, 3, 7, 100, 2 ** 31, -(2 ** 31), 2 ** 62, 2 ** 63 - 1, -(2 ** 63)]
# (dense span per build row, bitmap limit) forcing one table kind; "dense" allows up to 64K
# slots per build row (at most ~2.6M slots, 10 MB, for 40 rows): a wider span, such as the
# extremes of int64 or +-2**31, falls back to the hash table instead of allocating gigabytes
TABLE_KINDS = {
    "dense": (1 << 16, 1 << 25),
    "hash": (0, 0),
    "hash+bitmap": (0, 1 << 40),
}


def _column(draw, n: int, pool: list, null_rate: bool) -> pa.Array:
    values = draw(st.lists(st.one_of(st.sampled_from(pool), st.none()) if null_rate else st.sampled_from(pool),
                           min_size=n, max_size=n))
    return pa.array(values, I64)


@st.composite
def join_case(draw):
    """(left keys, right keys, how): 1-3 int64 key columns, 0-40 rows a side, small or
    extreme values, with or without NULLs."""
    ncols = draw(st.integers(1, 3))
    pool = draw(st.sampled_from([list(range(6)), INTS, list(range(-3, 50, 4))]))
    nl, nr = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    nulls = draw(st.booleans())
    left = [_column(draw, nl, pool, nulls) for _ in range(ncols)]
    right = [_column(draw, nr, pool, nulls) for _ in range(ncols)]
    return left, right, draw(st.sampled_from(["inner", "left", "right", "full"]))


def _assert_same(left, right, how, path="c-hash"):
    """The accelerated join gives the reference's pairs, and ``path`` is what ran."""
    want = ref_batch.hash_join(left, right, how)
    with collecting({}) as paths:
        got = accel_join.hash_join(left, right, how)
    assert got[0].to_pylist() == want[0].to_pylist(), "left indices"
    assert got[1].to_pylist() == want[1].to_pylist(), "right indices"
    assert path in paths


@needs_c
@pytest.mark.parametrize("kind", list(TABLE_KINDS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=join_case())
def test_c_join_matches_reference_in_every_table_kind(monkeypatch, kind, case):
    dense, bitmap = TABLE_KINDS[kind]
    monkeypatch.setattr(join_hash._BuildTable, "DENSE_SPAN_PER_ROW", dense)
    monkeypatch.setattr(join_hash._BuildTable, "BITMAP_MAX", bitmap)
    _assert_same(*case)


@needs_c
@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
def test_both_build_sides_keep_the_reference_order(how):
    """The smaller side is built: a small left side (probed by the right rows, which scatter
    behind their left rows) and a small right side give the reference's left-major order."""
    small = [pa.array([5, None, 3, 5, 9], I64)]
    big = [pa.array([3, 5, 5, None, 4, 3, 9, 9, 5, 7, 1, 3], I64)]
    _assert_same(small, big, how)
    _assert_same(big, small, how)


@needs_c
def test_sizes_past_the_dense_limit_and_sparse_keys():
    """A sparse key range (hash table, bitmap in front) and a dense one, many rows."""
    import numpy as np

    rng = np.random.default_rng(3)
    for span in (50, 10 ** 6, 10 ** 15):
        left = [pa.array(rng.integers(0, span, 3000), I64)]
        right = [pa.array(rng.integers(0, span, 7000), I64, mask=rng.random(7000) < 0.05)]
        for how in ("inner", "full"):
            _assert_same(left, right, how)


def test_numpy_path_without_the_c_module(monkeypatch):
    """Without the compiled join the numpy path answers the same."""
    monkeypatch.setattr(join_hash, "_lib", None)
    left = [pa.array([1, 2, None, 2, 7], I64), pa.array(["a", "b", "c", "b", None])]
    right = [pa.array([2, 2, 1, None], I64), pa.array(["b", "b", "a", "c"])]
    for how in ("inner", "left", "right", "full"):
        _assert_same(left, right, how, path="numpy-sort")


@pytest.mark.parametrize("use_c", [True, False])
def test_key_matches_with_and_without_the_c_table(monkeypatch, use_c):
    """Semi / anti / mark joins' ``key_matches``: the C lookup and the numpy set lookup agree
    with the reference (NULL keys never match, several key columns)."""
    if use_c and not join_hash.c_available():
        pytest.skip("the C hash join is not built")
    if not use_c:
        monkeypatch.setattr(join_hash, "_lib", None)
    left = [pa.array([1, 2, None, 2, 7, 3], I64), pa.array(["a", "b", "c", "x", None, "c"])]
    right = [pa.array([2, 2, 1, None, 3], I64), pa.array(["b", "b", "a", "c", "c"])]
    for keys in ([left[0]], left):
        n = len(keys)
        want = ref_batch.key_matches(keys, right[:n])
        assert accel_join.key_matches(keys, right[:n]).to_pylist() == want.to_pylist()


def test_date_keys_and_packed_overflow_fall_back_to_factorising():
    d = pa.array([datetime.date(2024, 1, 1), None, datetime.date(1970, 1, 2)], pa.date32())
    _assert_same([d], [d.take(pa.array([2, 0, 0]))], "inner")
    # two columns whose ranges multiply past 2**62: factorised instead of packed
    wide = [pa.array([2 ** 63 - 1, -(2 ** 63), 0], I64), pa.array([2 ** 63 - 1, 0, -(2 ** 63)], I64)]
    _assert_same(wide, [w.take(pa.array([1, 0, 0, 2])) for w in wide], "full")


# ------------------------------------------------------------------------------- through SQL

def _session(engine="auto"):
    s = velaria.Session(engine=engine)
    s.create_temp_view("f", s.create_dataframe_from_arrow(pa.table({
        "k": [1, 2, 2, 3, None, 5], "k2": [1, 1, 2, 2, 1, 1], "s": ["a", "b", "b", "c", "a", "z"],
        "d": pa.array([datetime.date(1994, 1, 1 + i) for i in range(6)], pa.date32()),
        "v": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})))
    s.create_temp_view("g", s.create_dataframe_from_arrow(pa.table({
        "k": [2, 3, 4, 1], "k2": [2, 2, 1, 1], "s": ["b", "c", "x", "a"], "name": ["two", "three", "four", "one"]})))
    return s


def _join_path(df) -> str:
    df.to_arrow()
    lines = [line.strip() for line in df.explain().splitlines()]
    return next(line for line in lines[lines.index("Join"):] if line.startswith("path="))


@needs_c
@pytest.mark.parametrize("on, path", [
    # g's keys are distinct (its k, its (k, k2) pairs, its s): the unique-build pass pairs the rows
    ("f.k = g.k", "path=int-key+c-hash+unique-build"),
    ("f.k = g.k AND f.k2 = g.k2", "path=packed-int-keys+c-hash+unique-build"),
    ("f.s = g.s", "path=factorised-keys+c-hash+unique-build"),
    ("f.k2 = g.k2", "path=int-key+c-hash"),
])
def test_explain_names_the_join_path_that_ran(on, path):
    df = _session().sql(f"SELECT f.v, g.name FROM f JOIN g ON {on} ORDER BY f.v")
    assert _join_path(df) == path


def test_join_emits_only_the_columns_read_above():
    s = _session()
    df = s.sql("SELECT g.name, SUM(f.v) AS t FROM f JOIN g ON f.k = g.k GROUP BY g.name ORDER BY g.name")
    assert df.to_arrow().to_pylist() == [{"name": "one", "t": 1.0}, {"name": "three", "t": 4.0},
                                         {"name": "two", "t": 5.0}]
    join = next(n for n in _nodes(prune(df._plan)) if isinstance(n, L.Join))
    # the SUM is pre-aggregated per join key below the join (velaria/plan/join_group.py): the
    # join reads the partial sums and the names, and the keys are not gathered
    assert [f.name for f in join.schema] == ["__partial0", "name"]


def test_join_with_residual_and_pruned_output():
    """A residual reads columns the output drops."""
    s = _session()
    df = s.sql("SELECT g.name FROM f LEFT JOIN g ON f.k = g.k AND f.s <> g.name AND f.v > 1.5 ORDER BY f.v")
    assert [r["name"] for r in df.to_arrow().to_pylist()] == [None, "two", "two", "three", None, None]


def test_constant_date_arithmetic_is_folded_and_moves_below_the_join():
    s = _session()
    df = s.sql("SELECT f.v, g.name FROM f JOIN g ON f.k = g.k "
               "WHERE f.d < DATE '1993-12-31' + INTERVAL '2' DAY ORDER BY f.v")
    assert df.to_arrow().to_pylist() == [{"v": 1.0, "name": "one"}]
    moved = [n for n in _nodes(prune(df._plan)) if isinstance(n, L.Filter)]
    assert len(moved) == 1 and isinstance(moved[0].input, L.Scan)        # below the join
    assert "TIMESTAMP '1994-01-02" in df.explain()


def test_a_constant_that_fails_is_not_folded_and_still_fails_at_run_time():
    s = _session()
    df = s.sql("SELECT v FROM f WHERE d < DATE '9999-12-31' + INTERVAL '1' YEAR")
    assert "INTERVAL" in df.explain()
    with pytest.raises(velaria.errors.VelariaError):
        df.to_arrow()


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_group_by_three_keys(engine):
    s = _session(engine)
    df = s.sql("SELECT k2, s, d, COUNT(*) AS n, SUM(v) AS t FROM f GROUP BY k2, s, d ORDER BY t")
    assert len(df.to_arrow()) == 6
    df = s.sql("SELECT k2, s, k2 + 1 AS k3, COUNT(*) AS n FROM f GROUP BY k2, s, k2 + 1 ORDER BY k2, s")
    assert df.to_arrow().to_pylist() == [
        {"k2": 1, "s": "a", "k3": 2, "n": 2}, {"k2": 1, "s": "b", "k3": 2, "n": 1}, {"k2": 1, "s": "z", "k3": 2, "n": 1},
        {"k2": 2, "s": "b", "k3": 3, "n": 1}, {"k2": 2, "s": "c", "k3": 3, "n": 1}]
    if engine == "auto" and accel.available():
        assert "path=packed-hash" in df.explain()


def _nodes(node):
    yield node
    for c in L.children(node):
        yield from _nodes(c)


# ------------------------------------------------------------------ COUNT(DISTINCT) split in two

NAN = float("nan")


@pytest.mark.parametrize("engine", ["reference", "auto"])
@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from([1, 2, 3, None]),
                               st.sampled_from([0.0, -0.0, 1.0, 2.5, NAN, None])), max_size=30))
def test_count_distinct_as_two_aggregates(engine, rows):
    """Groups in first-appearance order, NULL not counted, -0.0 equal to 0.0, NaN to NaN."""
    from velaria.reference.distinct import hash_key

    want: dict = {}
    for k, x in rows:
        seen = want.setdefault(hash_key(k) if k is not None else None, set())
        if x is not None:
            seen.add(hash_key(x))
    s = velaria.Session(engine=engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({
        "k": pa.array([r[0] for r in rows], I64), "x": pa.array([r[1] for r in rows], pa.float64())})))
    got = s.sql("SELECT k, COUNT(DISTINCT x) AS n, COUNT(DISTINCT x) AS m FROM t GROUP BY k").to_arrow().to_pylist()
    assert [(r["k"], r["n"], r["m"]) for r in got] == [(k, len(v), len(v)) for k, v in want.items()]
    total = s.sql("SELECT COUNT(DISTINCT x) AS n FROM t").to_arrow().to_pylist()
    assert total == [{"n": len({hash_key(x) for _, x in rows if x is not None})}]


def test_count_distinct_split_runs_two_plain_aggregates_and_only_when_it_can():
    s = _session()
    df = s.sql("SELECT k2, COUNT(DISTINCT s) AS n FROM f GROUP BY k2 ORDER BY k2")
    assert df.to_arrow().to_pylist() == [{"k2": 1, "n": 3}, {"k2": 2, "n": 2}]
    aggs = [n for n in _nodes(prune(df._plan)) if isinstance(n, L.Aggregate)]
    assert len(aggs) == 2 and not any(a.distinct for n in aggs for a in n.aggregates)
    for sql in ("SELECT COUNT(DISTINCT s), COUNT(DISTINCT k) FROM f",      # two arguments
                "SELECT COUNT(DISTINCT s), SUM(v) FROM f",                   # a plain aggregate beside
                "SELECT SUM(DISTINCT v) FROM f"):
        df = s.sql(sql)
        assert len([n for n in _nodes(prune(df._plan)) if isinstance(n, L.Aggregate)]) == 1, sql
    assert s.sql("SELECT COUNT(DISTINCT s) AS a, COUNT(DISTINCT k) AS b FROM f").to_arrow().to_pylist() == \
        [{"a": 4, "b": 4}]


def test_barrier_input_rejoins_consecutive_slices_without_copying():
    """A barrier's input made of consecutive slices of one table is that table's slice (no
    copy); other batches are concatenated. Both give the same rows."""
    from velaria.exec.operators import _single_batch

    t = pa.table({"a": pa.array([1, None, 3, 4, 5], I64), "s": ["x", "yy", None, "zzz", "w"],
                  "b": [True, False, None, True, True]})
    whole = _single_batch(t.to_batches(max_chunksize=2), t.schema)
    assert whole.to_pydict() == t.to_pydict()
    assert whole.column(0).buffers()[1].address == t.column(0).chunks[0].buffers()[1].address
    tail = _single_batch([t.slice(1, 2).to_batches()[0], t.slice(3, 2).to_batches()[0]], t.schema)
    assert tail.to_pydict() == t.slice(1).to_pydict()
    gap = _single_batch([t.slice(0, 2).to_batches()[0], t.slice(3, 2).to_batches()[0]], t.schema)
    assert gap.to_pydict()["a"] == [1, None, 4, 5]


@needs_c
@pytest.mark.parametrize("kind", sorted(TABLE_KINDS))
@pytest.mark.parametrize("left_smaller", [True, False])
def test_threaded_probe_gives_the_single_thread_pairs(monkeypatch, kind, left_smaller):
    """The probe splits its rows among threads (each row's answer is its own; the per-key
    counts of a built left side are added atomically): the pairs do not depend on the thread
    count, in every table kind and with either side built."""
    import numpy as np

    dense, bitmap = TABLE_KINDS[kind]
    monkeypatch.setattr(join_hash._BuildTable, "DENSE_SPAN_PER_ROW", dense)
    monkeypatch.setattr(join_hash._BuildTable, "BITMAP_MAX", bitmap)
    rng = np.random.default_rng(7)
    big = rng.integers(0, 600_000, 400_000)             # several probe ranges of 2**16 rows
    small = rng.integers(0, 600_000, 30_000)
    lk, rk = (small, big) if left_smaller else (big, small)
    lvalid = rng.random(lk.size) > 0.05
    results = []
    for threads in ("1", "4"):
        monkeypatch.setenv("VELARIA_THREADS", threads)
        results.append(join_hash.join_pairs(lk, lvalid, rk, None, "full"))
    for one, many in zip(*results):
        assert np.array_equal(one, many)
    left, _, right = results[0]
    assert (right >= 0).sum() > 10_000                    # the join really matched rows


def test_a_side_emitted_whole_and_in_order_is_not_gathered():
    """A fact table joined to a dimension on its key emits every fact row once, in order: its
    columns are kept as they are. Dropped, repeated, padded or reordered rows are gathered."""
    from velaria.exec.operators import _every_row_in_order

    assert _every_row_in_order(pa.array([0, 1, 2, 3], I64), 4)
    assert _every_row_in_order(pa.array([], I64), 0)
    assert not _every_row_in_order(pa.array([0, 1, 1, 3], I64), 4)
    assert not _every_row_in_order(pa.array([0, 2, 1, 3], I64), 4)
    assert not _every_row_in_order(pa.array([0, 1, None, 3], I64), 4)
    assert not _every_row_in_order(pa.array([0, 1, 2], I64), 4)
    fact = pa.table({"k": [3, 1, 2, 1, 3], "v": [10.0, 11.0, 12.0, 13.0, 14.0], "s": list("abcde")})
    dim = pa.table({"k": [1, 2, 3], "name": ["one", "two", "three"]})
    partial = pa.table({"k": [1, 3], "name": ["one", "three"]})
    out = {}
    for engine in ("reference", "auto"):
        s = velaria.Session(engine=engine)
        s.create_temp_view("f", s.create_dataframe_from_arrow(fact))
        s.create_temp_view("d", s.create_dataframe_from_arrow(dim))
        s.create_temp_view("p", s.create_dataframe_from_arrow(partial))
        out[engine] = [s.sql(q).to_arrow() for q in (
            "SELECT v, s, name FROM f JOIN d ON f.k = d.k",          # every fact row once
            "SELECT v, s, name FROM f JOIN p ON f.k = p.k",          # rows dropped
            "SELECT v, s, name FROM f LEFT JOIN p ON f.k = p.k")]    # rows padded
    for ref, acc in zip(out["reference"], out["auto"]):
        assert acc.equals(ref)
    assert out["auto"][0].column("s").to_pylist() == list("abcde")


@st.composite
def unique_build_case(draw):
    """(left keys, right keys, how): one int64 key column, the right side's non-NULL keys
    distinct (a dimension's key) and it no larger than the left, so the right side is built
    and paired by the unique-build pass; NULLs on either side, extremes, empty sides."""
    pool = draw(st.sampled_from([list(range(8)), INTS, list(range(-3, 80, 4))]))
    right = draw(st.lists(st.sampled_from(pool), unique=True, max_size=len(pool)))
    if draw(st.booleans()):     # NULL keys in the built side: numbers no longer follow the rows
        for at in draw(st.lists(st.integers(0, len(right)), max_size=3)):
            right.insert(at, None)
    nl = draw(st.integers(len(right), len(right) + 40))
    left = draw(st.lists(st.one_of(st.sampled_from(pool), st.none()), min_size=nl, max_size=nl))
    return [pa.array(left, I64)], [pa.array(right, I64)], draw(st.sampled_from(["inner", "left", "right", "full"]))


@needs_c
@pytest.mark.parametrize("kind", list(TABLE_KINDS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=unique_build_case())
def test_unique_build_side_pairs_match_the_reference(monkeypatch, kind, case):
    """A right side with distinct keys skips the buckets: one C pass writes each left row with
    its one match (or its padding), and the right rows no left row found come last."""
    dense, bitmap = TABLE_KINDS[kind]
    monkeypatch.setattr(join_hash._BuildTable, "DENSE_SPAN_PER_ROW", dense)
    monkeypatch.setattr(join_hash._BuildTable, "BITMAP_MAX", bitmap)
    _assert_same(*case, path="unique-build")


@needs_c
def test_repeated_build_keys_do_not_take_the_unique_pass():
    with collecting({}) as paths:
        got = accel_join.hash_join([pa.array([1, 2, 3, 2], I64)], [pa.array([2, 2, 1], I64)], "inner")
    assert "c-hash" in paths and "unique-build" not in paths
    assert got[0].to_pylist() == [0, 1, 1, 3, 3] and got[1].to_pylist() == [2, 0, 1, 0, 1]
