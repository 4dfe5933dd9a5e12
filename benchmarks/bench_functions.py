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
import time

import numpy as np
import pytest

ROWS = int(os.environ.get("VELARIA_FUNC_BENCH_ROWS", "1000000"))
THREADS = os.environ.get("VELARIA_BENCH_THREADS")
if THREADS:  # must be set before polars is imported
    os.environ.setdefault("POLARS_MAX_THREADS", THREADS)

SQL = {
    "round": "SELECT ROUND(v, 2) AS r FROM t",
    "greatest": "SELECT GREATEST(v, 0.5) AS r FROM t",
    "regexp_matches": "SELECT REGEXP_MATCHES(s, 'y9[0-4]') AS r FROM t",
    "regexp_replace": "SELECT REGEXP_REPLACE(s, 'key', 'k') AS r FROM t",
}
WORKLOADS = list(SQL)
ENGINES = ["velaria-reference", "velaria-auto", "duckdb", "polars-lazy"]
RESULTS: dict[tuple[str, str], float] = {}


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


_last: list[str] = []


def _run(benchmark, workload, engine, fn, table):
    if _last and _last[-1] != engine:
        time.sleep(1.0)     # spinning thread pools of one library slow the next
    _last.append(engine)
    _oracle(workload, table, fn())
    benchmark.group = "functions-" + workload
    benchmark.extra_info.update({"workload": workload, "engine": engine, "rows": ROWS,
                                 "threads": THREADS or "default"})
    benchmark.pedantic(fn, rounds=5, warmup_rounds=1, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        RESULTS[(workload, engine)] = stats.stats.median


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_velaria(benchmark, table, workload, engine):
    import velaria
    from velaria.accel import functions_extra

    s = velaria.Session(engine=engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(table))
    if engine == "auto":  # the vectorised twin must really take this query
        from velaria.accel import expressions as batch_kernels
        assert s.kernels.origin("evaluate") == "accel", s.kernels.accel_status
        expr = s.sql(SQL[workload])._plan.exprs[0]
        batch = table.slice(0, 1000).to_batches()[0]
        arrays = [batch_kernels.evaluate(a, batch) for a in expr.args]
        assert functions_extra.CALLS[expr.name](expr, arrays, batch.num_rows) is not None
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
    if not RESULTS:
        return
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    write = tr.write_line if tr is not None else print
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    engines = [e for e in ENGINES if any(en == e for _, en in RESULTS)]
    peers = [e for e in engines if e != "velaria-auto"]
    lines = ["", "scalar functions: %d rows, threads=%s; medians and ratios velaria-auto / peer (<1 is faster)"
             % (ROWS, THREADS or "default"),
             "%-16s" % "workload" + "".join("%19s" % e for e in engines) + "".join("%16s" % ("/" + p) for p in peers)]
    for w in WORKLOADS:
        line = "%-16s" % w + "".join("%19s" % ("%.1f ms" % (RESULTS[(w, e)] * 1e3) if (w, e) in RESULTS else "-")
                                     for e in engines)
        base = RESULTS.get((w, "velaria-auto"))
        line += "".join("%16s" % ("%.2fx" % (base / RESULTS[(w, p)]) if base and (w, p) in RESULTS else "-")
                        for p in peers)
        lines.append(line)
    if capture is not None:
        with capture.global_and_fixture_disabled():
            for line in lines:
                write(line)
    else:
        for line in lines:
            write(line)
