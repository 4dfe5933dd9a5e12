"""Subquery and DECIMAL benchmarks: velaria's accelerated engine beside DuckDB and polars.

    VELARIA_SUBQUERY_BENCH_ROWS=1000000 .venv/bin/python -m pytest benchmarks/bench_subquery.py --benchmark-only

Same Arrow tables for every engine: ``t`` (``id`` 0..n-1, int64 ``k`` with 2,000 distinct
values, ``x`` DECIMAL(12, 2)) and a 1,000-row dimension ``d`` (every second key, ``dv``).
Workloads: ``IN (SELECT ...)`` (a semi join), correlated ``NOT EXISTS`` (an anti join), a
correlated scalar ``MAX`` (an aggregate, then a single join) and an exact ``SUM`` of the
DECIMAL column per group. Every answer is checked against numpy before it is timed.
"""
from __future__ import annotations

import decimal
import os

import numpy as np
import pytest

from _peers import PeerRun

ROWS = int(os.environ.get("VELARIA_SUBQUERY_BENCH_ROWS", "1000000"))

SQL = {
    "in_semi": "SELECT id FROM t WHERE k IN (SELECT dk FROM d)",
    "not_exists": "SELECT id FROM t WHERE NOT EXISTS (SELECT 1 FROM d WHERE d.dk = t.k)",
    "scalar_max": "SELECT id, (SELECT MAX(dv) FROM d WHERE d.dk = t.k) AS w FROM t",
    "decimal_sum": "SELECT k % 10 AS g, SUM(x) AS w FROM t GROUP BY k % 10",
}
WORKLOADS = list(SQL)
PEERS = PeerRun("subquery / decimal", WORKLOADS, ROWS, ["velaria-auto", "duckdb", "polars-lazy"])


@pytest.fixture(scope="module")
def tables():
    import pyarrow as pa

    rng = np.random.default_rng(11)
    cents = rng.integers(-10 ** 6, 10 ** 6, ROWS)
    # decimal128 stores the unscaled integer in two little-endian int64 words: cents / 100
    words = np.stack([cents, np.where(cents < 0, -1, 0)], axis=1).astype(np.int64).ravel()
    x = pa.Array.from_buffers(pa.decimal128(12, 2), ROWS, [None, pa.py_buffer(words)])
    t = pa.table({"id": pa.array(np.arange(ROWS, dtype=np.int64)),
                  "k": pa.array(rng.integers(0, 2000, ROWS, dtype=np.int64)), "x": x})
    keys = np.arange(0, 2000, 2, dtype=np.int64)
    d = pa.table({"dk": pa.array(keys), "dv": pa.array(keys * 3)})
    return t, d, cents


def _check(workload, tables, result):
    t, d, cents = tables
    k = t.column("k").to_numpy()
    present = k % 2 == 0
    if workload == "in_semi":
        assert result.num_rows == int(present.sum())
    elif workload == "not_exists":
        assert result.num_rows == int((~present).sum())
    elif workload == "scalar_max":
        assert result.num_rows == len(k) and result.column(1).null_count == int((~present).sum())
        ids = result.column(0).to_numpy()
        w = result.column(1).to_numpy(zero_copy_only=False)
        assert np.array_equal(np.nan_to_num(w.astype(float), nan=-1), np.where(present, k * 3, -1)[ids])
    else:
        want = {g: decimal.Decimal(int(cents[k % 10 == g].sum())) / 100 for g in range(10)}
        got = dict(zip(result.column(0).to_pylist(), result.column(1).to_pylist()))
        assert got == want, workload


def _run(benchmark, workload, engine, fn, tables):
    PEERS.run(benchmark, workload, engine, fn, lambda result: _check(workload, tables, result))


@pytest.mark.parametrize("workload", WORKLOADS)
def test_velaria_auto(benchmark, tables, workload):
    s = PEERS.session(tables[0], "auto")
    s.create_temp_view("d", s.create_dataframe_from_arrow(tables[1]))
    _run(benchmark, workload, "velaria-auto", lambda: s.sql(SQL[workload]).to_arrow(), tables)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, tables, workload):
    fn = PEERS.duckdb(tables[0], SQL[workload], d=tables[1])
    _run(benchmark, workload, "duckdb", fn, tables)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_polars_lazy(benchmark, tables, workload):
    pl = pytest.importorskip("polars")
    t, d = pl.from_arrow(tables[0]).lazy(), pl.from_arrow(tables[1]).lazy()
    plan = {
        "in_semi": lambda: t.join(d, left_on="k", right_on="dk", how="semi").select("id"),
        "not_exists": lambda: t.join(d, left_on="k", right_on="dk", how="anti").select("id"),
        "scalar_max": lambda: t.join(d.group_by("dk").agg(pl.col("dv").max()), left_on="k", right_on="dk",
                                     how="left").select("id", pl.col("dv").alias("w")),
        "decimal_sum": lambda: t.group_by((pl.col("k") % 10).alias("g")).agg(pl.col("x").sum().alias("w")),
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: plan().collect().to_arrow(), tables)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / peer ratios after the module ran."""
    yield
    PEERS.report(request)
