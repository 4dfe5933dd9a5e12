"""Shared data, engines and the peer-ratio report for the SQL benchmarks.

    python3 dev.py bench                                   # 1M rows
    VELARIA_BENCH_ROWS=100000 .venv/bin/python -m pytest benchmarks --benchmark-only
    VELARIA_BENCH_THREADS=2 ...                            # pin DuckDB and polars to 2 threads

Every engine gets the same Arrow table (int64 key ``k`` with 1,000 distinct values, float64
``v`` uniform in [0, 1)); each library's benchmarks run together, one library at a time, with
a short pause between libraries (their spinning thread pools slow the next one).
At the end a table of medians and ratios (velaria / peer) is printed.
"""
from __future__ import annotations

import os
import time

import pytest

ROWS = int(os.environ.get("VELARIA_BENCH_ROWS", "1000000"))
THREADS = os.environ.get("VELARIA_BENCH_THREADS")
if THREADS:  # must be set before polars is imported
    os.environ.setdefault("POLARS_MAX_THREADS", THREADS)

# (workload, engine) -> median seconds
RESULTS: dict[tuple[str, str], float] = {}
ENGINE_ORDER = ["velaria-reference", "duckdb", "polars-lazy"]


def pytest_collect_file(parent, file_path):
    """Collect ``bench_*.py`` (pytest only collects ``test_*.py`` by default)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        if parent.session.isinitpath(file_path):
            return None  # named on the command line: pytest's own collector takes it
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def bench_table():
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(42)
    return pa.table({
        "k": pa.array(rng.integers(0, 1000, ROWS, dtype=np.int64)),
        "v": pa.array(rng.random(ROWS)),
    })


_last_engine: list[str] = []


@pytest.fixture
def pause_between_libraries(request):
    """Sleep a moment when the benchmarked library changes."""
    engine = request.node.callspec.params.get("engine", request.node.originalname) \
        if hasattr(request.node, "callspec") else request.node.originalname
    if _last_engine and _last_engine[-1] != engine:
        time.sleep(1.0)
    _last_engine.append(engine)


def record(benchmark, workload: str, engine: str) -> None:
    benchmark.extra_info.update({"workload": workload, "engine": engine, "rows": ROWS,
                                 "threads": THREADS or "default"})
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        RESULTS[(workload, engine)] = stats.stats.median


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not RESULTS:
        return
    tr = terminalreporter
    workloads = sorted({w for w, _ in RESULTS})
    engines = [e for e in ENGINE_ORDER if any(e == en for _, en in RESULTS)]
    tr.write_sep("=", "SQL benchmark medians (%d rows, threads=%s) and ratios velaria/peer" % (ROWS, THREADS or "default"))
    head = "%-12s" % "workload" + "".join("%20s" % e for e in engines) + "".join(
        "%22s" % ("velaria/" + e) for e in engines[1:])
    tr.write_line(head)
    for w in workloads:
        line = "%-12s" % w
        for e in engines:
            m = RESULTS.get((w, e))
            line += "%20s" % ("%.2f ms" % (m * 1e3) if m is not None else "-")
        base = RESULTS.get((w, engines[0]))
        for e in engines[1:]:
            m = RESULTS.get((w, e))
            line += "%22s" % ("%.1fx" % (base / m) if base and m else "-")
        tr.write_line(line)
