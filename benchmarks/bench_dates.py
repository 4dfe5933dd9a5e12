"""Date functions through ``Session.sql`` on the reference and accelerated engines beside DuckDB
and polars (lazy): MONTH over a DATE column and over ISO text, date_trunc('month') over a
TIMESTAMP column, strftime over a DATE column and a filter ``d >= DATE - INTERVAL``.

    .venv/bin/python -m pytest benchmarks/bench_dates.py --benchmark-only -p no:cacheprovider
    VELARIA_DATE_BENCH_ROWS=1000000 ...     # default 1,000,000 rows
    VELARIA_BENCH_THREADS=2 ...             # pin DuckDB and polars to 2 threads

Data: ``day`` date32 uniform over 1991..2024, ``txt`` the same days as ISO text, ``ts`` a
timestamp[us] with a random time of day. Every engine's answer is checked against a numpy /
pyarrow oracle before it is timed; the accelerated run must report ``expression_path=vectorised``
in explain (no per-row Python). At the end a table of medians and the ratios velaria-auto / peer.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from _peers import PeerRun

ROWS = int(os.environ.get("VELARIA_DATE_BENCH_ROWS", "1000000"))

SQL = {
    "month_date": "SELECT MONTH(day) AS r FROM t",
    "month_text": "SELECT MONTH(txt) AS r FROM t",
    "trunc_month": "SELECT date_trunc('month', ts) AS r FROM t",
    "strftime": "SELECT strftime(day, '%Y/%m/%d') AS r FROM t",
    "filter_interval": "SELECT count(*) AS r FROM t WHERE day >= DATE '2020-01-01' - INTERVAL '90' DAY",
}
#: DuckDB's spelling where it differs (its MONTH does not take text)
DUCKDB_SQL = {"month_text": "SELECT month(CAST(txt AS DATE)) AS r FROM t"}
WORKLOADS = list(SQL)
PEERS = PeerRun("date functions", WORKLOADS, ROWS)


@pytest.fixture(scope="module")
def table():
    import pyarrow as pa

    rng = np.random.default_rng(11)
    days = rng.integers(7670, 19723, ROWS).astype(np.int32)
    day = pa.array(days, pa.date32())
    micros = days.astype(np.int64) * 86_400_000_000 + rng.integers(0, 86_400_000_000, ROWS)
    return pa.table({"day": day, "txt": day.cast(pa.string()),
                     "ts": pa.array(micros, pa.int64()).cast(pa.timestamp("us"))})


def _oracle(workload: str, table, result) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    got = result.column(0)
    if workload in ("month_date", "month_text"):
        assert got.cast(pa.int64()).equals(pc.month(table.column("day")).cast(pa.int64()))
    elif workload == "trunc_month":
        want = pc.floor_temporal(table.column("ts"), unit="month")
        assert got.cast(pa.timestamp("us")).equals(want.cast(pa.timestamp("us")))
    elif workload == "strftime":
        want = pc.replace_substring(table.column("txt"), "-", "/")
        assert len(got) == len(want) and pc.all(pc.equal(got.cast(pa.string()), want)).as_py()
    else:
        cutoff = np.datetime64("2020-01-01") - np.timedelta64(90, "D")
        want = int((table.column("day").to_numpy() >= cutoff).sum())
        assert got.to_pylist()[0] == want


def _run(benchmark, workload, engine, fn, table):
    PEERS.run(benchmark, workload, engine, fn, lambda result: _oracle(workload, table, result))


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_velaria(benchmark, table, workload, engine):
    if engine == "reference" and ROWS > 200_000 and workload != "filter_interval":
        pytest.skip("the per-row reference takes seconds per round at this size")
    s = PEERS.session(table, engine)
    if engine == "auto":   # the vectorised twin must really take this query
        assert s.kernels.origin("evaluate") == "accel", s.kernels.accel_status
        assert "expression_path=vectorised\n" in s.sql(SQL[workload]).explain() + "\n"
    _run(benchmark, workload, f"velaria-{engine}", lambda: s.sql(SQL[workload]).to_arrow(), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, table, workload):
    _run(benchmark, workload, "duckdb", PEERS.duckdb(table, DUCKDB_SQL.get(workload, SQL[workload])), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_polars_lazy(benchmark, table, workload):
    pl = pytest.importorskip("polars")
    import datetime as dt

    df = pl.from_arrow(table)
    query = {
        "month_date": lambda: df.lazy().select(pl.col("day").dt.month().cast(pl.Int64).alias("r")),
        "month_text": lambda: df.lazy().select(pl.col("txt").str.to_date("%Y-%m-%d").dt.month()
                                               .cast(pl.Int64).alias("r")),
        "trunc_month": lambda: df.lazy().select(pl.col("ts").dt.truncate("1mo").alias("r")),
        "strftime": lambda: df.lazy().select(pl.col("day").dt.strftime("%Y/%m/%d").alias("r")),
        "filter_interval": lambda: df.lazy().filter(pl.col("day") >= dt.date(2020, 1, 1) - dt.timedelta(days=90))
                                            .select(pl.len().cast(pl.Int64).alias("r")),
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: query().collect().to_arrow(), table)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / peer ratios after the module ran."""
    yield
    PEERS.report(request)
