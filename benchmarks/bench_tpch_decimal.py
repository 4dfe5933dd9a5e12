"""TPC-H queries 1 and 6 over DECIMAL(15, 2) money columns (as dbgen and DuckDB type them),
through ``Session.sql`` beside DuckDB (polars' SQL is left out: it computes these sums in
floating point).

    .venv/bin/python -m pytest benchmarks/bench_tpch_decimal.py --benchmark-only -p no:cacheprovider
    VELARIA_TPCH_SF=1 ...                    # scale factor (default 0.1)
    VELARIA_BENCH_THREADS=2 ...              # pin DuckDB to 2 threads

The lineitem table is ``bench_tpch.generate``'s with ``l_quantity``, ``l_extendedprice``,
``l_discount`` and ``l_tax`` cast to DECIMAL(15, 2) (exact: the generated values have two
decimals). The answers are exact decimals (SUM is DECIMAL(38, s)), compared with DuckDB's
before timing (decimals for equality, doubles to 1e-9). Velaria runs them on the accelerated engine's scaled-int64
decimal path; the per-row reference would take minutes at SF1.
"""
from __future__ import annotations

import pytest

from _peers import PeerRun
from bench_tpch import SF, SQL, _check, generate

WORKLOADS = ["q1", "q6"]
PEERS = PeerRun(f"TPC-H SF{SF:g}, DECIMAL(15, 2) columns", WORKLOADS, int(6_000_000 * SF),
                engines=["velaria-auto", "duckdb"])
_MONEY = ("l_quantity", "l_extendedprice", "l_discount", "l_tax")


@pytest.fixture(scope="module")
def lineitem():
    import pyarrow as pa

    t = generate(SF)["lineitem"]
    cols = [t.column(n).cast(pa.decimal128(15, 2)) if n in _MONEY else t.column(n) for n in t.column_names]
    return pa.table(cols, names=t.column_names)


@pytest.fixture(scope="module")
def expected(lineitem):
    import duckdb

    con = duckdb.connect()
    con.register("lineitem", lineitem)
    return {w: [tuple(r) for r in con.sql(SQL[w]).fetchall()] for w in WORKLOADS}


@pytest.mark.parametrize("workload", WORKLOADS)
def test_velaria(benchmark, lineitem, expected, workload):
    import velaria

    s = velaria.Session(engine="auto")
    s.create_temp_view("lineitem", s.create_dataframe_from_arrow(lineitem))
    PEERS.run(benchmark, workload, "velaria-auto", lambda: s.sql(SQL[workload]).to_arrow(),
              lambda r: _check(workload, expected, r))


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, lineitem, expected, workload):
    fn = PEERS.duckdb(lineitem, SQL[workload].replace("FROM lineitem", "FROM t"))
    PEERS.run(benchmark, workload, "duckdb", fn, lambda r: _check(workload, expected, r))


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / DuckDB ratios after the module ran."""
    yield
    PEERS.report(request)
