"""A small filtered input of a chain of inner joins semi-joins the inputs it is equi-joined to
before the chain runs (``velaria/plan/dimension_reduce.py``): the same rows in the same order
as without the rewrite (so float sums above agree to the bit), on both engines; and the cases
it must leave alone."""
from __future__ import annotations

import os
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria.plan import dimension_reduce

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))


def _session(engine: str, tables: dict) -> velaria.Session:
    s = velaria.Session(engine=engine)
    for name, t in tables.items():
        s.create_temp_view(name, s.create_dataframe_from_arrow(t))
    return s


def _run(monkeypatch, engine, tables, sql, on: bool):
    monkeypatch.setattr(dimension_reduce, "MAX_REDUCER_ROWS", 512 if on else -1)
    df = _session(engine, tables).sql(sql)
    return df.to_arrow(), df.explain()


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_tpch_q5_semi_joins_early_and_answers_the_same(monkeypatch, engine):
    """Q5: ``region`` (filtered, 5 rows) reduces ``nation``, which reduces ``customer`` and
    ``supplier``; the answer and its order are those of the plan as written."""
    import bench_tpch

    tables = bench_tpch.generate(0.01)
    sql = bench_tpch.SQL["q5"]
    plain, plain_plan = _run(monkeypatch, engine, tables, sql, on=False)
    reduced, plan = _run(monkeypatch, engine, tables, sql, on=True)
    assert "how=semi" not in plain_plan
    assert plan.count("how=semi") >= 3       # nation, customer, supplier (and more at this small scale)
    assert reduced.equals(plain) and reduced.num_rows == 5
    # the rows the aggregate sums, in their order
    rows_sql = sql.replace("SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue",
                           "SELECT n_name, l_orderkey, l_extendedprice, c_custkey, s_suppkey") \
                  .replace("GROUP BY n_name ORDER BY revenue DESC", "")
    assert _run(monkeypatch, engine, tables, rows_sql, on=True)[0].equals(
        _run(monkeypatch, engine, tables, rows_sql, on=False)[0])


@st.composite
def chain_tables(draw):
    """A fact table, a middle table and a tiny dimension, with repeated keys, NULL keys, keys
    that match nothing, and float values whose sum depends on the order they are added in."""
    n_fact, n_mid, n_dim = draw(st.integers(0, 60)), draw(st.integers(0, 25)), draw(st.integers(0, 8))
    key = st.one_of(st.integers(-2, 6), st.none())
    val = st.sampled_from([0.1, 1e16, -1e16, 3.3, -0.0, 2.5e-3, 7.0])
    fact = pa.table({"fk": pa.array(draw(st.lists(key, min_size=n_fact, max_size=n_fact)), pa.int64()),
                     "v": pa.array(draw(st.lists(val, min_size=n_fact, max_size=n_fact)), pa.float64())})
    mid = pa.table({"mk": pa.array(draw(st.lists(key, min_size=n_mid, max_size=n_mid)), pa.int64()),
                    "dk": pa.array(draw(st.lists(key, min_size=n_mid, max_size=n_mid)), pa.int64()),
                    "g": pa.array(draw(st.lists(st.sampled_from("abc"), min_size=n_mid, max_size=n_mid)))})
    dim = pa.table({"dk": pa.array(draw(st.lists(key, min_size=n_dim, max_size=n_dim)), pa.int64()),
                    "name": pa.array(draw(st.lists(st.sampled_from(["x", "y"]), min_size=n_dim, max_size=n_dim)))})
    return {"fact": fact, "mid": mid, "dim": dim}


CHAIN_SQL = [
    "SELECT g, sum(v) AS s, count(*) AS c FROM fact JOIN mid ON fk = mk JOIN dim ON mid.dk = dim.dk "
    "WHERE name = 'x' GROUP BY g",
    "SELECT fk, v, g, name FROM dim JOIN mid ON dim.dk = mid.dk JOIN fact ON mk = fk WHERE name = 'y'",
    "SELECT g, sum(v) AS s FROM fact JOIN mid ON fk = mk JOIN dim ON mid.dk = dim.dk AND mk = dim.dk "
    "WHERE name = 'x' GROUP BY g",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables=chain_tables(), which=st.integers(0, len(CHAIN_SQL) - 1))
def test_reduced_chain_gives_the_same_rows_in_the_same_order(monkeypatch, tables, which):
    sql = CHAIN_SQL[which]
    want = _run(monkeypatch, "reference", tables, sql, on=False)[0]
    for engine in ("reference", "auto"):
        got, plan = _run(monkeypatch, engine, tables, sql, on=True)
        assert "how=semi" in plan
        assert got.equals(want), (engine, got.to_pydict(), want.to_pydict())


@pytest.mark.parametrize("sql", [
    # an outer join in the chain: a dropped row would change which rows are padded
    "SELECT g, v FROM fact LEFT JOIN mid ON fk = mk JOIN dim ON mid.dk = dim.dk WHERE name = 'x'",
    # a residual ON condition that can raise (division) sees only the pairs it saw before
    "SELECT g, v FROM fact JOIN mid ON fk = mk AND 10 / (fk - 3) > 0 JOIN dim ON mid.dk = dim.dk WHERE name = 'x'",
    # the dimension has no filter
    "SELECT g, v FROM fact JOIN mid ON fk = mk JOIN dim ON mid.dk = dim.dk",
    # a key pair of two types (equality across them is not transitive in general)
    "SELECT g, v FROM fact JOIN mid ON fk = mk JOIN dim ON mid.g = dim.name WHERE dim.dk = 1",
])
def test_left_alone(monkeypatch, sql):
    tables = {"fact": pa.table({"fk": pa.array([1, 2, 3, 4], pa.int64()), "v": [1.0, 2.0, 3.0, 4.0]}),
              "mid": pa.table({"mk": pa.array([1, 2, 4], pa.int64()), "dk": pa.array([1, 2, 2], pa.int64()),
                               "g": ["x", "b", "c"]}),
              "dim": pa.table({"dk": pa.array([1, 2], pa.int64()), "name": ["x", "y"]})}
    for engine in ("reference", "auto"):
        got, plan = _run(monkeypatch, engine, tables, sql, on=True)
        assert "how=semi" not in plan
        assert got.equals(_run(monkeypatch, engine, tables, sql, on=False)[0])


def test_a_large_filtered_input_is_not_a_reducer(monkeypatch):
    """Only inputs of at most ``MAX_REDUCER_ROWS`` rows reduce others (a semi join costs a
    probe of the reduced input; a large reducer would not pay for it)."""
    rows = dimension_reduce.MAX_REDUCER_ROWS + 1
    tables = {"fact": pa.table({"fk": np.arange(10, dtype=np.int64)}),
              "mid": pa.table({"mk": np.arange(10, dtype=np.int64), "dk": np.arange(10, dtype=np.int64)}),
              "dim": pa.table({"dk": np.arange(rows, dtype=np.int64), "name": ["x"] * rows})}
    sql = "SELECT fk FROM fact JOIN mid ON fk = mk JOIN dim ON mid.dk = dim.dk WHERE name = 'x'"
    got, plan = _run(monkeypatch, "auto", tables, sql, on=True)
    assert "how=semi" not in plan and got.num_rows == 10
