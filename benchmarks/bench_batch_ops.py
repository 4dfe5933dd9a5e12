"""Batch operators through ``Session.sql``: reference vs accelerated kernels, DuckDB and polars lazy.

    .venv/bin/python -m pytest benchmarks -k bench_batch_ops --benchmark-only -p no:cacheprovider
    VELARIA_BATCH_BENCH_ROWS=1000000 ...     # default 10,000,000 rows (the batch-operator targets)
    VELARIA_BENCH_THREADS=2 ...              # pin DuckDB and polars to 2 threads
    VELARIA_BATCH_BENCH_SKIP_REFERENCE=1 ... # skip the pure-Python engine (slow at 10M rows)

Data: int64 ``k`` with 1,000 distinct values and float64 ``v`` uniform in [0, 1), the same
Arrow table for every engine. Workloads (the project's batch-operator performance targets): filter
``v > 0.5`` then sum, group by ``k`` with sum/count/avg, sort by ``v``, projection
``v * 2 + k``, and a multi-term WHERE ``v > 0.25 AND v < 0.75 AND k < 500`` keeping the
matching rows (fused into one numexpr pass on the accelerated engine). Every engine's answer is checked against numpy before it is timed; one library
runs at a time with a pause between libraries. At the end a table of medians and the ratios
velaria-auto / peer is printed.
"""
from __future__ import annotations

import os

import pytest

from _oracle import check_result
from _peers import PeerRun

ROWS = int(os.environ.get("VELARIA_BATCH_BENCH_ROWS", "10000000"))
SKIP_REFERENCE = os.environ.get("VELARIA_BATCH_BENCH_SKIP_REFERENCE") == "1"

SQL = {
    "filter_sum": "SELECT SUM(v) AS s FROM t WHERE v > 0.5",
    "groupby": "SELECT k, SUM(v) AS s, COUNT(*) AS c, AVG(v) AS a FROM t GROUP BY k",
    "sort": "SELECT k, v FROM t ORDER BY v",
    "projection": "SELECT v * 2 + k AS p FROM t",
    "multi_where": "SELECT k, v FROM t WHERE v > 0.25 AND v < 0.75 AND k < 500",
}
WORKLOADS = list(SQL)
PEERS = PeerRun("batch operators", WORKLOADS, ROWS)


@pytest.fixture(scope="module")
def table():
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(42)
    return pa.table({"k": pa.array(rng.integers(0, 1000, ROWS, dtype=np.int64)),
                     "v": pa.array(rng.random(ROWS))})


def _run(benchmark, workload, engine, fn, table):
    PEERS.run(benchmark, workload, engine, fn, lambda result: check_result(workload, table, result))


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_velaria(benchmark, table, workload, engine):
    if engine == "reference" and SKIP_REFERENCE:
        pytest.skip("VELARIA_BATCH_BENCH_SKIP_REFERENCE=1")
    s = PEERS.session(table, engine)
    if engine == "auto":
        assert s.kernels.origin("hash_aggregate") == "accel", s.kernels.accel_status
    _run(benchmark, workload, f"velaria-{engine}", lambda: s.sql(SQL[workload]).to_arrow(), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, table, workload):
    _run(benchmark, workload, "duckdb", PEERS.duckdb(table, SQL[workload]), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_polars_lazy(benchmark, table, workload):
    pl = pytest.importorskip("polars")
    df = pl.from_arrow(table)
    lazy = {
        "filter_sum": lambda: df.lazy().filter(pl.col("v") > 0.5).select(pl.col("v").sum().alias("s")),
        "groupby": lambda: df.lazy().group_by("k").agg(pl.col("v").sum().alias("s"), pl.len().alias("c"),
                                                       pl.col("v").mean().alias("a")),
        "sort": lambda: df.lazy().select("k", "v").sort("v", maintain_order=True),
        "projection": lambda: df.lazy().select((pl.col("v") * 2 + pl.col("k")).alias("p")),
        "multi_where": lambda: df.lazy().select("k", "v").filter((pl.col("v") > 0.25) & (pl.col("v") < 0.75)
                                                                 & (pl.col("k") < 500)),
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: lazy().collect().to_arrow(), table)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / peer ratios after the module ran."""
    yield
    PEERS.report(request)
