"""Joins and COUNT(DISTINCT) through ``Session.sql`` (accelerated engine) beside DuckDB and polars.

    .venv/bin/python -m pytest benchmarks/bench_joins.py --benchmark-only -p no:cacheprovider
    VELARIA_JOIN_BENCH_ROWS=10000000 ...     # fact rows (default 1,000,000)
    VELARIA_BENCH_THREADS=2 ...              # pin DuckDB and polars to 2 threads

Data: a fact table ``t`` (int64 ``k`` with 1,000 distinct values, a unique int64 ``id`` in
random order, int64 ``u`` with 50,000 distinct values, float64 ``v``), a dimension ``d``
(1,000 keys ``k``, 37 distinct names) and a table ``w`` holding half of the ids in another
order with a float64 ``w``. Workloads:

* ``join_dim``   -- every fact row with its dimension name (``t JOIN d``: a small build side);
* ``join_group`` -- the same join, then SUM per name;
* ``join_big``   -- ``t JOIN w ON id`` (both sides large, half the fact rows match);
* ``count_distinct``       -- ``COUNT(DISTINCT u)`` over the whole table;
* ``count_distinct_group`` -- ``COUNT(DISTINCT u)`` per ``k``.

Every engine's answer is checked against numpy before it is timed (row counts, sums, distinct
counts); one library runs at a time. At the end a table of medians and velaria-auto / peer
ratios is printed.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from _peers import PeerRun

ROWS = int(os.environ.get("VELARIA_JOIN_BENCH_ROWS", "1000000"))

SQL = {
    "join_dim": "SELECT d.name, t.v FROM t JOIN d ON t.k = d.k",
    "join_group": "SELECT d.name, SUM(t.v) AS s FROM t JOIN d ON t.k = d.k GROUP BY d.name",
    "join_big": "SELECT t.id, w.w FROM t JOIN w ON t.id = w.id",
    "count_distinct": "SELECT COUNT(DISTINCT u) AS n FROM t",
    "count_distinct_group": "SELECT k, COUNT(DISTINCT u) AS n FROM t GROUP BY k",
}
WORKLOADS = list(SQL)
PEERS = PeerRun(f"joins and COUNT(DISTINCT), {ROWS:,} fact rows", WORKLOADS, ROWS,
                engines=["velaria-auto", "duckdb", "polars-lazy"])


@pytest.fixture(scope="module")
def tables():
    import pyarrow as pa

    rng = np.random.default_rng(7)
    t = pa.table({"k": rng.integers(0, 1000, ROWS, dtype=np.int64), "id": rng.permutation(ROWS).astype(np.int64),
                  "u": rng.integers(0, 50_000, ROWS, dtype=np.int64), "v": rng.random(ROWS)})
    d = pa.table({"k": np.arange(1000, dtype=np.int64), "name": [f"name{i % 37}" for i in range(1000)]})
    w = pa.table({"id": rng.permutation(ROWS)[:ROWS // 2].astype(np.int64), "w": rng.random(ROWS // 2)})
    return {"t": t, "d": d, "w": w}


def _check(workload: str, tables, result) -> None:
    """The answer against numpy (order-free: engines may emit rows in any order)."""
    import pyarrow as pa

    result = result if isinstance(result, pa.Table) else pa.table(result)
    t = tables["t"]
    v, u, k = (t.column(c).to_numpy() for c in ("v", "u", "k"))
    if workload == "join_dim":
        assert result.num_rows == t.num_rows
        assert np.isclose(result.column("v").to_numpy().sum(), v.sum())
    elif workload == "join_group":
        assert result.num_rows == 37
        assert np.isclose(np.sum(result.column("s").to_numpy()), v.sum())
    elif workload == "join_big":
        assert result.num_rows == tables["w"].num_rows
        assert int(result.column("id").to_numpy().sum()) == int(tables["w"].column("id").to_numpy().sum())
    elif workload == "count_distinct":
        assert result.column("n").to_pylist() == [len(np.unique(u))]
    elif workload == "count_distinct_group":
        pairs = np.unique(k * 100_000 + u)
        want = np.bincount(pairs // 100_000, minlength=1000)
        got = dict(zip(result.column("k").to_pylist(), result.column("n").to_pylist()))
        assert len(got) == 1000 and all(got[i] == want[i] for i in range(1000))
    else:
        raise ValueError(f"unknown workload {workload!r}")


def _run(benchmark, workload, engine, fn, tables):
    PEERS.run(benchmark, workload, engine, fn, lambda result: _check(workload, tables, result))


@pytest.mark.parametrize("workload", WORKLOADS)
def test_velaria(benchmark, tables, workload):
    import velaria

    s = velaria.Session(engine="auto")
    assert s.kernels.origin("hash_join") == "accel", s.kernels.accel_status
    for name, table in tables.items():
        s.create_temp_view(name, s.create_dataframe_from_arrow(table))
    _run(benchmark, workload, "velaria-auto", lambda: s.sql(SQL[workload]).to_arrow(), tables)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, tables, workload):
    fn = PEERS.duckdb(tables["t"], SQL[workload], d=tables["d"], w=tables["w"])
    _run(benchmark, workload, "duckdb", fn, tables)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_polars_lazy(benchmark, tables, workload):
    pl = pytest.importorskip("polars")
    t, d, w = (pl.from_arrow(tables[n]).lazy() for n in ("t", "d", "w"))
    lazy = {
        "join_dim": lambda: t.join(d, on="k").select("name", "v"),
        "join_group": lambda: t.join(d, on="k").group_by("name").agg(pl.col("v").sum().alias("s")),
        "join_big": lambda: t.join(w, on="id").select("id", "w"),
        "count_distinct": lambda: t.select(pl.col("u").drop_nulls().n_unique().alias("n")),
        "count_distinct_group": lambda: t.group_by("k").agg(pl.col("u").drop_nulls().n_unique().alias("n")),
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: lazy().collect().to_arrow(), tables)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / peer ratios after the module ran."""
    yield
    PEERS.report(request)
