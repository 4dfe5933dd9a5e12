"""Batch SQL benchmarks: velaria's reference engine beside DuckDB and polars (lazy), same Arrow data.

Workloads (the project's batch-operator performance targets): filter ``v > 0.5`` then sum; group by the
int64 key (1,000 distinct values) with sum, count and avg; sort by ``v``. Each benchmark first
checks its answer against a numpy oracle, so a fast wrong engine cannot win.
"""
from __future__ import annotations

import pytest

from conftest import record  # noqa: E402  (benchmarks/ is on sys.path through rootdir conftest)

from _oracle import check_result

SQL = {
    "filter_sum": "SELECT SUM(v) AS s FROM t WHERE v > 0.5",
    "groupby": "SELECT k, SUM(v) AS s, COUNT(*) AS c, AVG(v) AS a FROM t GROUP BY k",
    "sort": "SELECT k, v FROM t ORDER BY v",
}
WORKLOADS = list(SQL)


def _run(benchmark, workload, engine, fn, table):
    check_result(workload, table, fn())
    benchmark.pedantic(fn, rounds=5, warmup_rounds=1, iterations=1)
    record(benchmark, workload, engine)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_velaria_reference(benchmark, bench_table, workload, pause_between_libraries):
    import velaria

    s = velaria.Session(engine="reference")
    s.create_temp_view("t", s.create_dataframe_from_arrow(bench_table))
    benchmark.group = workload
    _run(benchmark, workload, "velaria-reference", lambda: s.sql(SQL[workload]).to_arrow(), bench_table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, bench_table, workload, pause_between_libraries):
    duckdb = pytest.importorskip("duckdb")
    from conftest import THREADS

    con = duckdb.connect()
    if THREADS:
        con.execute("SET threads = %d" % int(THREADS))
    con.register("t", bench_table)

    def fn():
        out = con.sql(SQL[workload]).arrow()
        return out.read_all() if hasattr(out, "read_all") else out

    benchmark.group = workload
    _run(benchmark, workload, "duckdb", fn, bench_table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_polars_lazy(benchmark, bench_table, workload, pause_between_libraries):
    pl = pytest.importorskip("polars")
    lf = pl.from_arrow(bench_table).lazy()
    plans = {
        "filter_sum": lambda: lf.filter(pl.col("v") > 0.5).select(pl.col("v").sum().alias("s")),
        "groupby": lambda: lf.group_by("k").agg(pl.col("v").sum().alias("s"), pl.len().alias("c"),
                                                pl.col("v").mean().alias("a")),
        "sort": lambda: lf.sort("v"),
    }
    benchmark.group = workload
    _run(benchmark, workload, "polars-lazy", lambda: plans[workload]().collect().to_arrow(), bench_table)
