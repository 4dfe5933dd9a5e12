"""Scalar functions through ``Session.sql``: ROUND(x, n), GREATEST, REGEXP_MATCHES and
REGEXP_REPLACE on the reference and accelerated engines beside DuckDB and polars (lazy).

    .venv/bin/python -m pytest benchmarks/bench_functions.py --benchmark-only -p no:cacheprovider
    VELARIA_FUNC_BENCH_ROWS=1000000 ...     # default 1,000,000 rows
    VELARIA_BENCH_THREADS=2 ...             # pin DuckDB and polars to 2 threads

Data: float64 ``v`` uniform in [0, 1), int64 ``k`` with 1,000 distinct values and the string
``s = 'key' || k``. Every engine's answer is checked against a numpy / Python oracle before it
is timed; one library runs at a time with a pause between libraries. At the end a table of
medians and the ratios velaria-auto / peer is printed.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

from _peers import PeerRun

ROWS = int(os.environ.get("VELARIA_FUNC_BENCH_ROWS", "1000000"))

SQL = {
    "round": "SELECT ROUND(v, 2) AS r FROM t",
    "greatest": "SELECT GREATEST(v, 0.5) AS r FROM t",
    "regexp_matches": "SELECT REGEXP_MATCHES(s, 'y9[0-4]') AS r FROM t",
    "regexp_replace": "SELECT REGEXP_REPLACE(s, 'key', 'k') AS r FROM t",
}
WORKLOADS = list(SQL)
PEERS = PeerRun("scalar functions", WORKLOADS, ROWS)


@pytest.fixture(scope="module")
def table():
    import pyarrow as pa

    rng = np.random.default_rng(7)
    k = rng.integers(0, 1000, ROWS, dtype=np.int64)
    return pa.table({"k": pa.array(k), "v": pa.array(rng.random(ROWS)),
                     "s": pa.array(np.char.add("key", k.astype(str)).astype(object))})


def _oracle(workload: str, table, result) -> None:
    """The answer every engine must give before it is timed."""
    got = result.column(0).to_pylist()
    v = table.column("v").to_numpy()
    if workload == "round":
        scaled = v * 100.0
        want = (np.floor(scaled) + (scaled - np.floor(scaled) >= 0.5)) / 100.0
        assert np.allclose(np.array(got), want, rtol=0, atol=1e-12)
    elif workload == "greatest":
        assert np.array_equal(np.array(got), np.maximum(v, 0.5))
    elif workload == "regexp_matches":
        assert got == [re.search("y9[0-4]", s) is not None for s in table.column("s").to_pylist()]
    else:
        assert got == [s.replace("key", "k", 1) for s in table.column("s").to_pylist()]


def _run(benchmark, workload, engine, fn, table):
    PEERS.run(benchmark, workload, engine, fn, lambda result: _oracle(workload, table, result))


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_velaria(benchmark, table, workload, engine):
    s = PEERS.session(table, engine)
    if engine == "auto":  # the vectorised twin must really take this query
        from velaria.accel import expressions as batch_kernels, functions_extra
        assert s.kernels.origin("evaluate") == "accel", s.kernels.accel_status
        expr = s.sql(SQL[workload])._plan.exprs[0]
        batch = table.slice(0, 1000).to_batches()[0]
        arrays = [batch_kernels.evaluate(a, batch) for a in expr.args]
        assert functions_extra.CALLS[expr.name](expr, arrays, batch.num_rows) is not None
    _run(benchmark, workload, f"velaria-{engine}", lambda: s.sql(SQL[workload]).to_arrow(), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, table, workload):
    _run(benchmark, workload, "duckdb", PEERS.duckdb(table, SQL[workload]), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_polars_lazy(benchmark, table, workload):
    pl = pytest.importorskip("polars")
    df = pl.from_arrow(table)
    expr = {
        "round": pl.col("v").round(2),
        "greatest": pl.max_horizontal(pl.col("v"), pl.lit(0.5)),
        "regexp_matches": pl.col("s").str.contains("y9[0-4]"),
        "regexp_replace": pl.col("s").str.replace("key", "k"),
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: df.lazy().select(expr.alias("r")).collect().to_arrow(), table)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / peer ratios after the module ran."""
    yield
    PEERS.report(request)
