"""Window-function and join benchmarks: velaria's accelerated engine beside DuckDB and polars.

    VELARIA_WINDOW_BENCH_ROWS=1000000 .venv/bin/python -m pytest benchmarks/bench_window.py --benchmark-only

Same Arrow table for every engine (``id`` 0..n-1, int64 ``k`` with 1,000 distinct values,
float64 ``v`` in [0, 1)). Workloads: a running SUM per partition (``ROWS UNBOUNDED
PRECEDING``), RANK per partition ordered by ``v``, LAG per partition, and a FULL OUTER JOIN of
the table with a 1,000-row dimension missing every tenth key. Every answer is checked against
numpy before it is timed, so a fast wrong engine cannot win; one library runs at a time.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from _peers import PeerRun

ROWS = int(os.environ.get("VELARIA_WINDOW_BENCH_ROWS", "1000000"))

SQL = {
    "running_sum": "SELECT id, SUM(v) OVER (PARTITION BY k ORDER BY id ROWS UNBOUNDED PRECEDING) AS w FROM t",
    "rank": "SELECT id, RANK() OVER (PARTITION BY k ORDER BY v) AS w FROM t",
    "lag": "SELECT id, LAG(v) OVER (PARTITION BY k ORDER BY id) AS w FROM t",
    "full_join": "SELECT id, name AS w FROM t FULL JOIN d ON t.k = d.dk",
}
WORKLOADS = list(SQL)
PEERS = PeerRun("window / join", WORKLOADS, ROWS, ["velaria-auto", "duckdb", "polars-lazy"])


@pytest.fixture(scope="module")
def tables():
    import pyarrow as pa

    rng = np.random.default_rng(7)
    t = pa.table({"id": pa.array(np.arange(ROWS, dtype=np.int64)),
                  "k": pa.array(rng.integers(0, 1000, ROWS, dtype=np.int64)),
                  "v": pa.array(rng.random(ROWS))})
    keys = np.array([k for k in range(1000) if k % 10 != 3] + [5000], dtype=np.int64)
    d = pa.table({"dk": pa.array(keys), "name": pa.array([f"n{k}" for k in keys])})
    return t, d


def _oracle(workload, t, d):
    """(ids, values) the answer must have, sorted by id (NaN for NULL; join: name present)."""
    k, v = t.column("k").to_numpy(), t.column("v").to_numpy()
    n = len(k)
    order = np.lexsort((np.arange(n), k)) if workload != "rank" else np.lexsort((v, k))
    ks = k[order]
    starts = np.r_[True, ks[1:] != ks[:-1]]
    seg = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)[seg]
    out = np.empty(n)
    if workload == "running_sum":
        cs = np.cumsum(v[order])
        out[order] = cs - np.r_[0.0, cs][first]
    elif workload == "rank":
        out[order] = np.arange(n) - first + 1
    elif workload == "lag":
        prev = np.r_[np.nan, v[order][:-1]]
        out[order] = np.where(starts, np.nan, prev)
    else:
        present = np.isin(k, d.column("dk").to_numpy())
        return n + 1, int(present.sum())          # rows (the unmatched 5000 key adds one), named rows
    return out


def _check(workload, tables, result):
    t, d = tables
    want = _oracle(workload, t, d)
    ids = np.asarray(result.column(0).to_pylist(), dtype=object)
    vals = result.column(1)
    if workload == "full_join":
        assert (result.num_rows, result.num_rows - vals.null_count - 1) == want, workload
        return
    order = np.argsort(ids.astype(np.int64))
    got = np.asarray(vals.cast("double").fill_null(np.nan).to_numpy(zero_copy_only=False))[order]
    assert np.allclose(got, want, rtol=1e-9, equal_nan=True), workload


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
        "running_sum": lambda: t.select("id", pl.col("v").cum_sum().over("k").alias("w")),
        "rank": lambda: t.select("id", pl.col("v").rank("min").over("k").alias("w")),
        "lag": lambda: t.select("id", pl.col("v").shift(1).over("k").alias("w")),
        "full_join": lambda: t.join(d, left_on="k", right_on="dk", how="full").select("id", pl.col("name").alias("w")),
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: plan().collect().to_arrow(), tables)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / peer ratios after the module ran."""
    yield
    PEERS.report(request)
