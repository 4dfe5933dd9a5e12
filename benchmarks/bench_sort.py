"""ORDER BY through ``Session.sql``: velaria's accelerated engine, DuckDB and polars lazy.

    VELARIA_BENCH_THREADS=2 .venv/bin/python -m pytest benchmarks/bench_sort.py --benchmark-only -p no:cacheprovider
    VELARIA_SORT_BENCH_ROWS=1000000 ...      # default 10,000,000 rows

Data (one Arrow table for every engine): int64 ``k`` with 1,000 distinct values, float64 ``v``
uniform in [0, 1), and string ``s``: one of 100,000 decimal numbers as text (so its order is
not the numbers' order). Workloads: ORDER BY a float, an int with many ties, a string, two
keys (``k, v``), and a descending top-100 (``ORDER BY v DESC LIMIT 100``). polars sorts with
``maintain_order=True`` (stable, as velaria is); DuckDB's order among ties is its own. Each
answer is checked (row count, keys in order) before it is timed. The report prints wall
medians, the ratios velaria-auto / peer, and the median process CPU time of each run (all
threads), which tells a loaded machine's waiting apart from work.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from _peers import PeerRun

ROWS = int(os.environ.get("VELARIA_SORT_BENCH_ROWS", "10000000"))
LIMIT = 100

SQL = {
    "sort_f64": "SELECT k, v FROM t ORDER BY v",
    "sort_i64": "SELECT k, v FROM t ORDER BY k",
    "sort_str": "SELECT s, v FROM t ORDER BY s",
    "sort_k_v": "SELECT k, v FROM t ORDER BY k, v",
    "top100_desc": f"SELECT k, v FROM t ORDER BY v DESC LIMIT {LIMIT}",
}
WORKLOADS = list(SQL)
PEERS = PeerRun("ORDER BY", WORKLOADS, ROWS, engines=["velaria-auto", "duckdb", "polars-lazy"])
CPU: dict[tuple[str, str], list[float]] = {}


@pytest.fixture(scope="module")
def table():
    import pyarrow as pa

    rng = np.random.default_rng(42)
    return pa.table({"k": pa.array(rng.integers(0, 1000, ROWS, dtype=np.int64)),
                     "v": pa.array(rng.random(ROWS)),
                     "s": pa.array(rng.integers(0, 100_000, ROWS, dtype=np.int64)).cast(pa.string())})


def _check(workload: str, table, result) -> None:
    """Row count and key order of ``result`` (a fast wrong engine must not win)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    result = result if isinstance(result, pa.Table) else pa.table(result)
    want_rows = min(LIMIT, table.num_rows) if workload == "top100_desc" else table.num_rows
    assert result.num_rows == want_rows, (workload, result.num_rows)
    if workload == "sort_str":
        s = result.column("s").combine_chunks()
        assert pc.all(pc.less_equal(s[:-1], s[1:])).as_py() in (True, None)
        return
    v = result.column("v").to_numpy()
    if workload == "sort_f64":
        assert np.all(v[:-1] <= v[1:])
    elif workload == "top100_desc":
        assert np.array_equal(v, np.sort(table.column("v").to_numpy())[::-1][:LIMIT])
    else:
        k = result.column("k").to_numpy()
        assert np.all(k[:-1] <= k[1:])
        if workload == "sort_k_v":
            same = k[:-1] == k[1:]
            assert np.all(v[:-1][same] <= v[1:][same])


def _run(benchmark, workload, engine, fn, table):
    cpu = CPU.setdefault((workload, engine), [])

    def timed():
        c0 = time.process_time()
        out = fn()
        cpu.append(time.process_time() - c0)
        return out
    PEERS.run(benchmark, workload, engine, timed, lambda result: _check(workload, table, result))


@pytest.mark.parametrize("workload", WORKLOADS)
def test_velaria(benchmark, table, workload):
    s = PEERS.session(table, "auto")
    assert s.kernels.origin("sort_take") == "accel", s.kernels.accel_status
    _run(benchmark, workload, "velaria-auto", lambda: s.sql(SQL[workload]).to_arrow(), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, table, workload):
    _run(benchmark, workload, "duckdb", PEERS.duckdb(table, SQL[workload]), table)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_polars_lazy(benchmark, table, workload):
    pl = pytest.importorskip("polars")
    df = pl.from_arrow(table)
    lazy = {
        "sort_f64": lambda: df.lazy().select("k", "v").sort("v", maintain_order=True),
        "sort_i64": lambda: df.lazy().select("k", "v").sort("k", maintain_order=True),
        "sort_str": lambda: df.lazy().select("s", "v").sort("s", maintain_order=True),
        "sort_k_v": lambda: df.lazy().select("k", "v").sort(["k", "v"], maintain_order=True),
        "top100_desc": lambda: df.lazy().select("k", "v").sort("v", descending=True, maintain_order=True)
                                                          .head(LIMIT),
    }[workload]
    _run(benchmark, workload, "polars-lazy", lambda: lazy().collect().to_arrow(), table)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians, velaria-auto / peer ratios and the median CPU times after the module ran."""
    yield
    PEERS.report(request)
    if CPU:
        lines = ["median process CPU time per run (all threads), ms:"]
        for w in WORKLOADS:
            cells = [f"{e}={1e3 * float(np.median(CPU[(w, e)])):.0f}" for e in PEERS.engines if CPU.get((w, e))]
            lines.append(f"  {w:12s} " + "  ".join(cells))
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        write = tr.write_line if tr is not None else print
        if capture is not None:
            with capture.global_and_fixture_disabled():
                for line in lines:
                    write(line)
        else:
            for line in lines:
                write(line)
