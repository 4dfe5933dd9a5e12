"""A side-by-side benchmark run: velaria's engines and their peers on the same workloads.

One :class:`PeerRun` per benchmark module holds the medians. :meth:`PeerRun.run` checks an
engine's answer before it is timed (so a fast wrong engine cannot win) and sleeps a moment when
the library changes (spinning thread pools of one library slow the next);
:meth:`PeerRun.report` prints the medians and the ratios velaria-auto / peer.
"""
from __future__ import annotations

import os
import time

THREADS = os.environ.get("VELARIA_BENCH_THREADS")
if THREADS:  # must be set before polars is imported
    os.environ.setdefault("POLARS_MAX_THREADS", THREADS)


ENGINES = ["velaria-reference", "velaria-auto", "duckdb", "polars-lazy"]


class PeerRun:
    """Medians of (workload, engine) pairs, for one benchmark module."""

    def __init__(self, title: str, workloads: list[str], rows: int, engines: list[str] = ENGINES):
        self.title, self.workloads, self.engines, self.rows = title, workloads, engines, rows
        self.results: dict[tuple[str, str], float] = {}
        self._last: list[str] = []

    def run(self, benchmark, workload: str, engine: str, fn, check) -> None:
        """Check ``fn()`` with ``check(result)``, then time it (5 rounds after a warm-up)."""
        if self._last and self._last[-1] != engine:
            time.sleep(1.0)
        self._last.append(engine)
        check(fn())
        benchmark.group = workload
        benchmark.extra_info.update({"workload": workload, "engine": engine, "rows": self.rows,
                                     "threads": THREADS or "default"})
        benchmark.pedantic(fn, rounds=5, warmup_rounds=1, iterations=1)
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            self.results[(workload, engine)] = stats.stats.median

    @staticmethod
    def session(table, engine: str):
        """A velaria Session on ``engine`` with ``table`` registered as ``t``."""
        import velaria

        s = velaria.Session(engine=engine)
        s.create_temp_view("t", s.create_dataframe_from_arrow(table))
        return s

    def duckdb(self, table, sql: str, **views):
        """A function running ``sql`` on DuckDB over ``table`` (registered as ``t``) and
        ``views`` (each registered under its keyword)."""
        import pytest
        duckdb = pytest.importorskip("duckdb")
        con = duckdb.connect()
        if THREADS:
            con.execute(f"SET threads TO {int(THREADS)}")
        con.register("t", table)
        for name, view in views.items():
            con.register(name, view)

        def fn():
            out = con.sql(sql).arrow()
            return out.read_all() if hasattr(out, "read_all") else out
        return fn

    def report(self, request) -> None:
        """Print the medians and velaria-auto / peer ratios (call after the module ran)."""
        if not self.results:
            return
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        write = tr.write_line if tr is not None else print
        if capture is not None:
            with capture.global_and_fixture_disabled():
                self._table(write)
        else:
            self._table(write)

    def _table(self, write) -> None:
        engines = [e for e in self.engines if any(en == e for _, en in self.results)]
        peers = [e for e in engines if e != "velaria-auto"]
        write("")
        write("%s: %d rows, threads=%s; medians and ratios velaria-auto / peer (<1 is faster)"
              % (self.title, self.rows, THREADS or "default"))
        write("%-16s" % "workload" + "".join("%19s" % e for e in engines) + "".join("%16s" % ("/" + p) for p in peers))
        for w in self.workloads:
            line = "%-16s" % w
            for e in engines:
                m = self.results.get((w, e))
                line += "%19s" % ("%.1f ms" % (m * 1e3) if m is not None else "-")
            base = self.results.get((w, "velaria-auto"))
            for p in peers:
                m = self.results.get((w, p))
                line += "%16s" % ("%.2fx" % (base / m) if base and m else "-")
            write(line)
