"""GROUP BY one side of an inner join, aggregating the other, pre-aggregated per join key below
the join (``velaria/plan/join_group.py``).

The rewritten plan against the plan without the rewrite (same groups in the same order, the
same counts, minima and maxima; float sums equal up to rounding), the accelerated engine
against the reference on the rewritten plan (bit for bit), with NULL and duplicate join keys on
both sides, unmatched keys, either side on the left; the shapes left alone; explain naming
both aggregates; and the single-node runtime."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria.plan import join_group

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
FLOATS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1e308, -1e308, 0.1]))
AGGS = ["COUNT(*)", "COUNT(f.v)", "SUM(f.v)", "MIN(f.i)", "MAX(f.i)", "MAX(f.s)"]


def _session(engine, tables):
    s = velaria.Session(engine=engine)
    for name, table in tables.items():
        s.create_temp_view(name, s.create_dataframe_from_arrow(table))
    return s


def _rows(engine, tables, sql):
    return _session(engine, tables).sql(sql).to_arrow().to_pylist()


@st.composite
def join_tables(draw):
    n = draw(st.integers(0, 25))
    keys = st.one_of(st.none(), st.integers(0, 5))
    fact = pa.table({"k": pa.array(draw(st.lists(keys, min_size=n, max_size=n)), pa.int64()),
                     "v": pa.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), pa.float64()),
                     "i": pa.array(draw(st.lists(st.one_of(st.none(), st.integers(-9, 9)), min_size=n, max_size=n)),
                                   pa.int32()),
                     "s": pa.array(draw(st.lists(st.one_of(st.none(), st.sampled_from(["x", "y", ""])),
                                                 min_size=n, max_size=n)), pa.string())})
    m = draw(st.integers(0, 8))
    dim = pa.table({"k": pa.array(draw(st.lists(keys, min_size=m, max_size=m)), pa.int64()),    # duplicates too
                    "name": pa.array(draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
                                                   min_size=m, max_size=m)), pa.string())})
    return {"f": fact, "g": dim}


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
            return (math.isnan(a) and math.isnan(b)) or a == b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-300)
    return a == b and type(a) is type(b)


def _sum_slack(tables) -> float | None:
    """How far SUM(f.v) of one group may differ between two orders of adding its terms (the
    rewrite adds per join key first): twice the usual bound n * eps * sum(|term|), where a fact
    row is a term once per dimension row with its key. None when partial sums may overflow
    (1e308 + 1e308 is inf in one order, 1e308 - 1e308 + 1e308 finite in another): then no
    order is more right than another."""
    keys = [k for k in tables["g"].column("k").to_pylist() if k is not None]
    dup = max((keys.count(k) for k in keys), default=0)
    finite = [abs(v) for v in tables["f"].column("v").to_pylist() if v is not None and math.isfinite(v)]
    total = dup * sum(finite)                      # inf when it overflows
    if not total < 1e300:
        return None
    return 2 * dup * len(finite) * 2.0 ** -52 * total


def _bits(rows):
    return [{k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]


@SETTINGS
@given(join_tables(), st.lists(st.sampled_from(AGGS), min_size=1, max_size=3, unique=True), st.booleans())
def test_rewrite_keeps_the_result_and_both_engines_agree(tables, aggs, fact_left):
    calls = ", ".join(f"{a} AS a{i}" for i, a in enumerate(aggs))
    joined = "f JOIN g ON f.k = g.k" if fact_left else "g JOIN f ON g.k = f.k"
    sql = f"SELECT g.name, {calls} FROM {joined} GROUP BY g.name"
    rewritten = _rows("reference", tables, sql)
    assert _bits(_rows("auto", tables, sql)) == _bits(rewritten)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(join_group, "push_aggregate_below_join", lambda node: node)
        plain = _rows("reference", tables, sql)
    assert [r["name"] for r in rewritten] == [r["name"] for r in plain]       # same groups, same order
    sums = {f"a{i}" for i, a in enumerate(aggs) if a == "SUM(f.v)"}
    slack = _sum_slack(tables)
    for got, want in zip(rewritten, plain):
        assert all(_same(got[c], want[c]) for c in want if c not in sums), (got, want)
        for c in sums:
            assert (got[c] is None) == (want[c] is None), (got, want)
            if slack is not None and want[c] is not None:
                if not (math.isfinite(got[c]) and math.isfinite(want[c])):
                    assert _same(got[c], want[c]), (got, want)
                else:
                    assert abs(got[c] - want[c]) <= slack, (got, want, slack)
    if "SUM(f.v)" not in aggs:                                                # exact aggregates only
        assert _bits(rewritten) == _bits(plain)


def _explain(sql):
    rng_tables = {"f": pa.table({"k": [1, 2, 2, None], "v": [1.0, 2.0, -0.0, 4.0], "i": [1, 2, 3, 4],
                                 "s": ["x", "y", None, "x"], "w": [0.5, 1.5, 2.5, 3.5]}),
                  "g": pa.table({"k": [2, 1, 2], "name": ["a", "b", "c"], "kf": [2.0, 1.0, 2.0]})}
    s = _session("auto", rng_tables)
    df = s.sql(sql)
    df.to_arrow()
    return df.explain()


def test_explain_names_the_partial_and_final_aggregates():
    text = _explain("SELECT g.name, SUM(f.v) AS s, COUNT(*) AS c FROM f JOIN g ON f.k = g.k GROUP BY g.name")
    assert "rewrite=partial-below-join" in text and "rewrite=final-above-join" in text


@pytest.mark.parametrize("sql", [
    "SELECT g.name, SUM(f.i) FROM f JOIN g ON f.k = g.k GROUP BY g.name",              # integer SUM: overflow
    "SELECT g.name, MIN(f.v) FROM f JOIN g ON f.k = g.k GROUP BY g.name",              # float MIN: zero's sign
    "SELECT g.name, AVG(f.v) FROM f JOIN g ON f.k = g.k GROUP BY g.name",
    "SELECT g.name, COUNT(DISTINCT f.i) FROM f JOIN g ON f.k = g.k GROUP BY g.name",
    "SELECT g.name, SUM(f.v) FROM f LEFT JOIN g ON f.k = g.k GROUP BY g.name",
    "SELECT g.name, SUM(f.v) FROM f JOIN g ON f.k = g.k AND f.i > 1 GROUP BY g.name",   # residual
    "SELECT g.name, f.s, SUM(f.v) FROM f JOIN g ON f.k = g.k GROUP BY g.name, f.s",     # keys of both sides
    "SELECT g.name, SUM(f.v + g.k) FROM f JOIN g ON f.k = g.k GROUP BY g.name",         # argument of both
    "SELECT g.name, SUM(f.v) FROM f JOIN g ON f.w = g.kf GROUP BY g.name",              # float join key
    "SELECT SUM(f.v) FROM f JOIN g ON f.k = g.k",                                       # no GROUP BY
])
def test_shapes_the_rewrite_does_not_keep_exactly_are_left_alone(sql):
    assert "rewrite=" not in _explain(sql)


def test_the_single_node_runtime_runs_the_rewritten_plan():
    tables = {"f": pa.table({"k": [i % 7 for i in range(3000)], "v": [float(i) for i in range(3000)]}),
              "g": pa.table({"k": list(range(6)), "name": ["n%d" % (i % 4) for i in range(6)]})}
    sql = "SELECT g.name, SUM(f.v) AS s, COUNT(*) AS c FROM f JOIN g ON f.k = g.k GROUP BY g.name ORDER BY g.name"
    embedded = _session("auto", tables).sql(sql).to_rows()
    s = velaria.Session(runtime_mode="single-node", parallelism=2)
    for name, table in tables.items():
        s.create_temp_view(name, s.create_dataframe_from_arrow(table))
    assert s.sql(sql).to_rows() == embedded
