"""Read + aggregate a generated CSV with Velaria, DuckDB ``read_csv`` and polars ``scan_csv``
side by side (pytest-benchmark). Size: ``VELARIA_BENCH_CSV_MB`` (default 100; 1000 for the
1 GB run). ``VELARIA_BENCH_CSV_PATH``: the generated file's path, kept after the run (a
file already there is used as it is, so two source trees can be measured on one file).
Peers that are not installed are skipped.

    .venv/bin/python -m pytest benchmarks/bench_csv.py --benchmark-only -q
    VELARIA_BENCH_CSV_MB=1000 .venv/bin/python -m pytest benchmarks/bench_csv.py --benchmark-only

Query: ``SELECT cat, SUM(value), COUNT(*) FROM t WHERE qty > 10 GROUP BY cat``.
``velaria_io_cold`` includes the whole-file typing pass (a new file each round would pay it);
``velaria_io`` is the steady state (typing cached for an unchanged file, as on a re-read);
``velaria_sql`` runs the query through ``Session.sql`` over ``Session.read_csv`` (cold);
``velaria_sql_ddl`` runs it over ``CREATE TABLE t USING csv`` (cold).
Ratios against the fastest peer are printed at the end of the module, by wall time and by
CPU time (the process's user + system seconds over all its threads: the steadier measure on
a loaded machine, where wall time mostly says who got the cores), with each reader's peak
resident memory (measured once per reader in a fresh child process, so one reader's
allocations do not hide another's).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from velaria.io.base import PushedFilter
from velaria.io.csv_source import CsvSource
from velaria.io.typed_source import clear_typing_cache

SIZE_MB = float(os.environ.get("VELARIA_BENCH_CSV_MB", "100"))
RESULTS: dict[str, float] = {}
CPU: dict[str, list[float]] = {}


def _cpu_timed(name: str, fn):
    """``fn`` recording the CPU seconds of each call under ``name``."""
    def run():
        start = time.process_time()
        try:
            return fn()
        finally:
            CPU.setdefault(name, []).append(time.process_time() - start)
    return run


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    given = os.environ.get("VELARIA_BENCH_CSV_PATH")
    if given and os.path.exists(given):  # a file generated earlier (one file for two trees)
        return given
    path = given or tmp_path_factory.mktemp("bench") / "bench.csv"
    rng = np.random.default_rng(7)
    rows_per_chunk = 500_000
    written = 0
    first = True
    start = 0
    with open(path, "wb") as handle:
        while written < SIZE_MB * 1e6:
            n = rows_per_chunk
            table = pa.table({
                "id": np.arange(start, start + n),
                "cat": pa.array(np.array(["alpha", "beta", "gamma", "delta", "eps"])[
                    rng.integers(0, 5, n)]),
                "value": np.round(rng.random(n) * 1000, 3),
                "qty": rng.integers(0, 100, n),
                "name": pa.array([f"user_{i}" for i in range(start, start + n)]),
                "flag": rng.random(n) < 0.5,
            })
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=first,
                                                            quoting_style="none"))
            data = sink.getvalue().to_pybytes()
            handle.write(data)
            written += len(data)
            start += n
            first = False
    return str(path)


def _velaria_io(path: str):
    """Stream the two referenced columns (+ the pushed filter column) and aggregate."""
    source = CsvSource(path)
    partial = []
    for batch in source.scan(["cat", "value"], [PushedFilter("qty", ">", 10)]):
        partial.append(pa.Table.from_batches([batch]).group_by("cat").aggregate(
            [("value", "sum"), ("value", "count")]))
    merged = pa.concat_tables(partial).group_by("cat").aggregate(
        [("value_sum", "sum"), ("value_count", "sum")])
    return sorted(merged.to_pylist(), key=lambda r: r["cat"])


def _record(name, benchmark):
    RESULTS[name] = benchmark.stats.stats.median


def test_velaria_io_cold(benchmark, csv_path):
    def run():
        clear_typing_cache()
        return _velaria_io(csv_path)
    result = benchmark.pedantic(_cpu_timed("velaria_io_cold", run), rounds=3, iterations=1)
    assert len(result) == 5
    _record("velaria_io_cold", benchmark)


def test_velaria_io(benchmark, csv_path):
    _velaria_io(csv_path)
    result = benchmark.pedantic(_cpu_timed("velaria_io", lambda: _velaria_io(csv_path)),
                                rounds=3, iterations=1)
    assert len(result) == 5
    _record("velaria_io", benchmark)


def test_velaria_sql(benchmark, csv_path):
    velaria = pytest.importorskip("velaria")
    try:
        session = velaria.Session()
        session.create_temp_view("t", session.read_csv(csv_path))
        query = "SELECT cat, SUM(value) AS s, COUNT(*) AS c FROM t WHERE qty > 10 GROUP BY cat"
        session.sql(query).to_rows()
    except Exception as exc:  # the SQL layer may still be in progress
        pytest.skip(f"Session SQL not available: {exc}")

    def run():
        clear_typing_cache()
        s = velaria.Session()
        s.create_temp_view("t", s.read_csv(csv_path))
        return s.sql(query).to_rows()
    benchmark.pedantic(_cpu_timed("velaria_sql", run), rounds=3, iterations=1)
    _record("velaria_sql", benchmark)


def test_velaria_sql_ddl(benchmark, csv_path):
    """The same query over ``CREATE TABLE t USING csv``: the file is typed while the query is
    planned, so the typing walk also converts the query's columns (one walk, not two)."""
    velaria = pytest.importorskip("velaria")
    query = "SELECT cat, SUM(value) AS s, COUNT(*) AS c FROM t WHERE qty > 10 GROUP BY cat"

    def run():
        clear_typing_cache()
        s = velaria.Session()
        s.sql(f"CREATE TABLE t USING csv OPTIONS(path: '{csv_path}')")
        return s.sql(query).to_rows()
    try:
        run()
    except Exception as exc:  # an older tree without CREATE TABLE ... USING csv
        pytest.skip(f"CREATE TABLE ... USING csv not available: {exc}")
    benchmark.pedantic(_cpu_timed("velaria_sql_ddl", run), rounds=3, iterations=1)
    _record("velaria_sql_ddl", benchmark)


def test_duckdb(benchmark, csv_path):
    duckdb = pytest.importorskip("duckdb")
    query = (f"SELECT cat, SUM(value), COUNT(*) FROM read_csv('{csv_path}') "
             f"WHERE qty > 10 GROUP BY cat")
    benchmark.pedantic(_cpu_timed("duckdb", lambda: duckdb.sql(query).fetchall()), rounds=3,
                       iterations=1)
    _record("duckdb", benchmark)


def test_polars(benchmark, csv_path):
    pl = pytest.importorskip("polars")
    benchmark.pedantic(_cpu_timed("polars", lambda: pl.scan_csv(csv_path)
                                  .filter(pl.col("qty") > 10).group_by("cat")
                                  .agg(pl.col("value").sum(), pl.len()).collect()),
                       rounds=3, iterations=1)
    _record("polars", benchmark)


_PEAK_CODE = {
    "velaria_io_cold": "import velaria; s = velaria.Session(); s.create_temp_view('t', "
                       "s.read_csv(P)); s.sql('SELECT cat, SUM(value) AS s, COUNT(*) AS c "
                       "FROM t WHERE qty > 10 GROUP BY cat').to_rows()",
    "velaria_sql_ddl": "import velaria; s = velaria.Session(); s.sql(f\"CREATE TABLE t USING "
                       "csv OPTIONS(path: '{P}')\"); s.sql('SELECT cat, SUM(value) AS s, "
                       "COUNT(*) AS c FROM t WHERE qty > 10 GROUP BY cat').to_rows()",
    "duckdb": "import duckdb; duckdb.sql(f\"SELECT cat, SUM(value), COUNT(*) FROM "
              "read_csv('{P}') WHERE qty > 10 GROUP BY cat\").fetchall()",
    "polars": "import polars as pl; pl.scan_csv(P).filter(pl.col('qty') > 10)"
              ".group_by('cat').agg(pl.col('value').sum(), pl.len()).collect()",
}


_HWM = ("\nfor _line in open('/proc/self/status'):\n"
        "    if _line.startswith('VmHWM:'): print(int(_line.split()[1]) // 1024)")


def _peak_rss_mb(code: str, path: str) -> int | None:
    """Peak resident set size (MB) of a fresh Python process running ``code`` (with ``P``
    the CSV path): the process's own VmHWM (per address space, so unlike ``ru_maxrss`` it
    does not inherit the benchmark process's peak across fork and exec). Linux only."""
    if not os.path.exists("/proc/self/status"):
        return None
    done = subprocess.run([sys.executable, "-c", f"P = {path!r}\n{code}{_HWM}"],
                          capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return int(done.stdout.split()[-1])


@pytest.fixture(scope="module", autouse=True)
def report_ratios(request, csv_path):
    """After the module: medians and ratios against the fastest peer (printed even with
    ``--benchmark-only``, which skips plain tests)."""
    yield
    peers = {k: v for k, v in RESULTS.items() if k in ("duckdb", "polars")}
    if not peers or not any(k.startswith("velaria") for k in RESULTS):
        return
    best_name, best = min(peers.items(), key=lambda kv: kv[1])
    size = os.path.getsize(csv_path) / 1e6
    cpu = {name: statistics.median(values) for name, values in CPU.items()}
    cpu_best = min((cpu[k] for k in peers if k in cpu), default=None)
    lines = [f"CSV {size:.0f} MB; fastest peer {best_name} {best:.3f}s (median); CPU ratios "
             f"against the peer with the least CPU time"]
    for name, value in sorted(RESULTS.items()):
        line = f"  {name:16s} {value:8.3f}s  ratio vs {best_name}: {value / best:5.2f}x"
        if cpu_best and name in cpu:
            line += f"   cpu {cpu[name]:7.3f}s  cpu ratio: {cpu[name] / cpu_best:5.2f}x"
        lines.append(line)
    lines.append("peak resident memory, one fresh process per reader:")
    for name, code in _PEAK_CODE.items():
        peak = _peak_rss_mb(code, csv_path)
        lines.append(f"  {name:16s} {'n/a' if peak is None else f'{peak:8.0f} MB'}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\n" + "\n".join(lines))
    else:
        print("\n" + "\n".join(lines))
