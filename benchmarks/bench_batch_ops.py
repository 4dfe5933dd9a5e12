"""Batch operators through ``Session.sql``: reference vs accelerated kernels, DuckDB and polars lazy.

    .venv/bin/python -m pytest benchmarks -k bench_batch_ops --benchmark-only -p no:cacheprovider
    VELARIA_BATCH_BENCH_ROWS=1000000 ...     # default 10,000,000 rows (spec/perf-targets.md)
    VELARIA_BENCH_THREADS=2 ...              # pin DuckDB and polars to 2 threads
    VELARIA_BATCH_BENCH_SKIP_REFERENCE=1 ... # skip the pure-Python engine (slow at 10M rows)

Data: int64 ``k`` with 1,000 distinct values and float64 ``v`` uniform in [0, 1), the same
Arrow table for every engine. Workloads (spec/perf-targets.md "Batch operators"): filter
``v > 0.5`` then sum, group by ``k`` with sum/count/avg, sort by ``v``, projection
``v * 2 + k``. Every engine's answer is checked against numpy before it is timed; one library
runs at a time with a pause between libraries. At the end a table of medians and the ratios
velaria-auto / peer is printed.
"""
from __future__ import annotations

import os
import time

import pytest

from _oracle import check_result

ROWS = int(os.environ.get("VELARIA_BATCH_BENCH_ROWS", "10000000"))
THREADS = os.environ.get("VELARIA_BENCH_THREADS")
if THREADS:  # must be set before polars is imported
    os.environ.setdefault("POLARS_MAX_THREADS", THREADS)
SKIP_REFERENCE = os.environ.get("VELARIA_BATCH_BENCH_SKIP_REFERENCE") == "1"

SQL = {
    "filter_sum": "SELECT SUM(v) AS s FROM t WHERE v > 0.5",
    "groupby": "SELECT k, SUM(v) AS s, COUNT(*) AS c, AVG(v) AS a FROM t GROUP BY k",
    "sort": "SELECT k, v FROM t ORDER BY v",
    "projection": "SELECT v * 2 + k AS p FROM t",
}
WORKLOADS = list(SQL)
ENGINES = ["velaria-reference", "velaria-auto", "duckdb", "polars-lazy"]
RESULTS: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def table():
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(42)
    return pa.table({"k": pa.array(rng.integers(0, 1000, ROWS, dtype=np.int64)),
                     "v": pa.array(rng.random(ROWS))})


_last: list[str] = []


def _run(benchmark, workload, engine, fn, table):
    if _last and _last[-1] != engine:
        time.sleep(1.0)     # spinning thread pools of one library slow the next
    _last.append(engine)
    check_result(workload, table, fn())
    benchmark.group = workload
    benchmark.extra_info.update({"workload": workload, "engine": engine, "rows": ROWS,
                                 "threads": THREADS or "default"})
    benchmark.pedantic(fn, rounds=5, warmup_rounds=1, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        RESULTS[(workload, engine)] = stats.stats.median


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_velaria(benchmark, table, workload, engine):
    if engine == "reference" and SKIP_REFERENCE:
        pytest.skip("VELARIA_BATCH_BENCH_SKIP_REFERENCE=1")
    import velaria

    s = velaria.Session(engine=engine)
    if engine == "auto":
        assert s.kernels.origin("hash_aggregate") == "accel", s.kernels.accel_status
    s.create_temp_view("t", s.create_dataframe_from_arrow(table))
    _run(benchmark, workload, f"velaria-{engine}", lambda: s.sql(SQL[workload]).to_arrow(), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, table, workload):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    if THREADS:
        con.execute(f"SET threads TO {int(THREADS)}")
    con.register("t", table)

    def fn():
        out = con.sql(SQL[workload]).arrow()
        return out.read_all() if hasattr(out, "read_all") else out

    _run(benchmark, workload, "duckdb", fn, table)


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
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: lazy().collect().to_arrow(), table)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians and velaria-auto / peer ratios after the module ran."""
    yield
    if not RESULTS:
        return
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            _print_table(tr.write_line if tr is not None else print)
    else:
        _print_table(tr.write_line if tr is not None else print)


def _print_table(write) -> None:
    engines = [e for e in ENGINES if any(en == e for _, en in RESULTS)]
    peers = [e for e in engines if e != "velaria-auto"]
    write("")
    write("batch operators: %d rows, threads=%s; medians and ratios velaria-auto / peer (<1 is faster)"
          % (ROWS, THREADS or "default"))
    write("%-12s" % "workload" + "".join("%19s" % e for e in engines) + "".join("%16s" % ("/" + p) for p in peers))
    for w in WORKLOADS:
        line = "%-12s" % w
        for e in engines:
            m = RESULTS.get((w, e))
            line += "%19s" % ("%.1f ms" % (m * 1e3) if m is not None else "-")
        base = RESULTS.get((w, "velaria-auto"))
        for p in peers:
            m = RESULTS.get((w, p))
            line += "%16s" % ("%.2fx" % (base / m) if base and m else "-")
        write(line)
