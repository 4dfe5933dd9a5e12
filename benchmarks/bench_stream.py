"""Stream SQL: windowed grouped aggregate over Arrow micro-batches, end to end.

    .venv/bin/python -m pytest benchmarks/bench_stream.py --benchmark-only -p no:cacheprovider
    VELARIA_STREAM_BENCH_ROWS=1000000 ...    # default 10,000,000 events
    VELARIA_BENCH_THREADS=1 ...              # pin DuckDB and polars threads

Data (the project's stream performance target): Arrow batches of 65,536 rows; int64 millisecond
timestamps over one hour (sorted); 1,000 string keys; int64 value. Query: GROUP BY window,
key with COUNT(*) and SUM(value), tumbling 60 s and sliding 60 s / 30 s. Time is end to end,
from the first batch in to the last result out.

Engines, side by side in one run: velaria single-process and local-workers (2 workers), each
through ``Session.stream_sql`` on ``create_stream_from_arrow`` with a counting sink; a plain
per-batch polars loop (window, group, merge into running state, emit closed windows, the
"no Python overhead beyond a micro-batch loop" bar); batch DuckDB and batch polars over the
whole table; and the Python stream engines a user would pick instead, each through its own
windowed aggregation API (see ``_stream_peers.py``): krishiv and bytewax in this process when
the ``stream-peers`` extra is installed, pathway in a child process of its own environment
when ``VELARIA_PATHWAY_PYTHON`` names one. Engines that are not installed are skipped.

    .venv/bin/python -m pip install -c constraints.txt -e '.[bench,stream-peers]'
    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install pathway==0.33.0
    VELARIA_PATHWAY_PYTHON=/tmp/pw/bin/python ...
    VELARIA_STREAM_BENCH_ROUNDS=1 ...        # default 3 timed rounds per engine

A third workload, ``heavy`` (velaria's two modes only), shows where local workers pay: the
tumbling query with more work per row and per group (a filter, MIN and MAX of expressions and a
SUM of squares beside COUNT and SUM). Each batch then costs more than what local workers add
per batch (copying it into shared memory, messages, merging partial states), which the plain
COUNT and SUM of the first two workloads do not.

Every engine's final (window, key) counts and sums are checked against numpy, before it is
timed (the Python stream engines, which take minutes at full size: on every timed round
instead), so an engine with a different answer fails rather than being reported.
"""
from __future__ import annotations

import os
import time

import pytest

import _stream_peers

ROWS = int(os.environ.get("VELARIA_STREAM_BENCH_ROWS", "10000000"))
BATCH = 65_536
THREADS = os.environ.get("VELARIA_BENCH_THREADS")
if THREADS:  # must be set before polars is imported
    os.environ.setdefault("POLARS_MAX_THREADS", THREADS)
WINDOW_MS = 60_000
SLIDES = {"tumbling": 60_000, "sliding": 30_000}
#: the ``heavy`` workload: tumbling, rows with ``value % 7 == 3`` filtered out, more aggregates
HEAVY_ENGINES = ["velaria-single", "velaria-workers"]
ROUNDS = int(os.environ.get("VELARIA_STREAM_BENCH_ROUNDS", "3"))
PEERS = ["krishiv", "bytewax", "pathway"]
ENGINES = ["velaria-single", "velaria-workers", "polars-loop", "duckdb-batch", "polars-batch", *PEERS]
RESULTS: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def events():
    import numpy as np
    import pyarrow as pa
    rng = np.random.default_rng(7)
    ts = np.sort(rng.integers(0, 3_600_000, ROWS, dtype=np.int64))
    keys = np.array([f"key-{i:04d}" for i in range(1000)], dtype=object)
    table = pa.table({"ts": ts, "key": pa.array(keys[rng.integers(0, 1000, ROWS)], pa.string()),
                      "value": rng.integers(0, 1000, ROWS, dtype=np.int64)})
    return table, table.to_batches(max_chunksize=BATCH)


def _expected(table, slide, heavy=False):
    """(#groups, total count, total sum) of the windowed aggregate, by numpy (``heavy``: of the
    rows the heavy workload's filter keeps)."""
    import numpy as np
    ts = table.column("ts").to_numpy()
    value = table.column("value").to_numpy()
    key = table.column("key").to_numpy(zero_copy_only=False)
    if heavy:
        kept = value % 7 != 3
        ts, value, key = ts[kept], value[kept], key[kept]
    codes = np.unique(key, return_inverse=True)[1].astype(np.int64)
    groups, count, total = [], 0, 0
    last = ts // slide * slide
    for i in range(WINDOW_MS // slide):
        start = last - i * slide
        keep = (start <= ts) & (ts < start + WINDOW_MS)
        groups.append(np.unique((start[keep] // slide) * 1_000_003 + codes[keep]))
        count += int(keep.sum())
        total += int(value[keep].sum())
    return len(np.unique(np.concatenate(groups))), count, total


_EXPECTED: dict = {}


def _expected_for(table, slide, heavy=False):
    """The oracle's triple for ``slide``, computed once per run."""
    if (slide, heavy) not in _EXPECTED:
        _EXPECTED[slide, heavy] = _expected(table, slide, heavy)
    return _EXPECTED[slide, heavy]


def _check(table, slide, got, heavy=False):
    expected = _expected_for(table, slide, heavy)
    assert got == expected, f"(groups, count, sum) {got} differs from numpy's {expected}"


def _sql(slide, heavy=False):
    clause = f"EVERY {WINDOW_MS}" + (f" SLIDE {slide}" if slide != WINDOW_MS else "")
    if heavy:
        return (f"SELECT window_start, key, COUNT(*) AS c, SUM(value) AS s, MIN(value * 3 - 1) AS lo, "
                f"MAX(value % 97) AS hi, SUM(value * value + 7) AS q FROM ev WHERE value % 7 <> 3 "
                f"WINDOW BY ts {clause} AS window_start GROUP BY window_start, key")
    return (f"SELECT window_start, key, COUNT(*) AS c, SUM(value) AS s FROM ev WINDOW BY ts {clause} "
            "AS window_start GROUP BY window_start, key")


def _velaria(batches, slide, heavy=False, **opts):
    """Run the stream query; returns (#groups, total count, total sum) of the final values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    import velaria
    from velaria.stream import StreamSink

    class LastValues(StreamSink):
        """Keeps the emitted updates (the running values) to check the final answer."""

        def __init__(self):
            super().__init__()
            self.parts = []

        def _do_write(self, batch):
            if batch.num_rows:
                self.parts.append(batch)

    s = velaria.Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(batches))
    sink = LastValues()
    q = s.stream_sql(_sql(slide, heavy)).write_stream_sink(sink, trigger_interval_ms=0, **opts)
    q.start()
    q.await_termination()
    if opts.get("execution_mode") == "local-workers":
        assert q.progress()["used_actor_runtime"], q.progress()
    emitted = pa.Table.from_batches(sink.parts)
    # the final value of a group is its last update: keep the max count per group
    final = emitted.group_by(["window_start", "key"]).aggregate([("c", "max"), ("s", "max")])
    return final.num_rows, pc.sum(final["c_max"]).as_py(), pc.sum(final["s_max"]).as_py()


def _polars_loop(batches, slide):
    """A per-batch polars loop: window, group, merge into running state, emit closed windows."""
    import polars as pl
    state = None
    emitted = []
    n_windows = WINDOW_MS // slide
    for b in batches:
        df = pl.from_arrow(b)
        last = (pl.col("ts") // slide) * slide
        parts = [df.select((last - i * slide).alias("w"), "ts", "key", "value") for i in range(n_windows)]
        rows = pl.concat(parts).filter((pl.col("w") <= pl.col("ts")) & (pl.col("ts") < pl.col("w") + WINDOW_MS))
        part = rows.group_by("w", "key").agg(pl.len().alias("c"), pl.col("value").sum().alias("s"))
        state = part if state is None else pl.concat([state, part]).group_by("w", "key").agg(
            pl.col("c").sum(), pl.col("s").sum())
        watermark = df["ts"].max()
        closed = state.filter(pl.col("w") + WINDOW_MS <= watermark)
        if closed.height:
            emitted.append(closed)
            state = state.filter(pl.col("w") + WINDOW_MS > watermark)
    final = pl.concat(emitted + [state])
    return final.height, int(final["c"].sum()), int(final["s"].sum())


def _duckdb(table, slide):
    import duckdb
    con = duckdb.connect()
    if THREADS:
        con.execute(f"SET threads TO {int(THREADS)}")
    con.register("t", table)
    shifted = " UNION ALL ".join(
        f"SELECT (ts // {slide}) * {slide} - {i * slide} AS w, ts, key, value FROM t" for i in range(WINDOW_MS // slide))
    out = con.sql(f"SELECT COUNT(*), SUM(c), SUM(s) FROM (SELECT w, key, COUNT(*) AS c, SUM(value) AS s "
                  f"FROM ({shifted}) WHERE w <= ts AND ts < w + {WINDOW_MS} GROUP BY w, key)").fetchall()[0]
    return int(out[0]), int(out[1]), int(out[2])


def _polars_batch(table, slide):
    import polars as pl
    df = pl.from_arrow(table).lazy()
    last = (pl.col("ts") // slide) * slide
    rows = pl.concat([df.select((last - i * slide).alias("w"), "ts", "key", "value")
                      for i in range(WINDOW_MS // slide)])
    out = (rows.filter((pl.col("w") <= pl.col("ts")) & (pl.col("ts") < pl.col("w") + WINDOW_MS))
           .group_by("w", "key").agg(pl.len().alias("c"), pl.col("value").sum().alias("s")).collect())
    return out.height, int(out["c"].sum()), int(out["s"].sum())


_last: list[str] = []


@pytest.fixture(scope="module")
def events_ipc(events, tmp_path_factory):
    """The batches as an Arrow IPC stream file, for an engine that runs in another process."""
    import pyarrow as pa
    table, batches = events
    path = tmp_path_factory.mktemp("stream") / "events.arrows"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        for b in batches:
            writer.write_batch(b)
    return str(path)


def _peer(engine, request, batches, slide, child_seconds):
    """The run function of a Python stream engine, or a skip when it is not installed."""
    if engine == "pathway":
        why = _stream_peers.pathway_available()
        if why:
            pytest.skip(why)
        ipc = request.getfixturevalue("events_ipc")
        return lambda: _stream_peers.pathway(ipc, WINDOW_MS, slide, child_seconds)
    # import before timing, so the first timed round does not pay for it
    pytest.importorskip("krishiv" if engine == "krishiv" else "bytewax.operators.windowing")
    adapter = getattr(_stream_peers, engine)
    return lambda: adapter(batches, WINDOW_MS, slide)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("workload", list(SLIDES))
def test_stream(benchmark, request, events, workload, engine):
    table, batches = events
    slide = SLIDES[workload]
    child_seconds: list[float] = []
    if engine in PEERS:
        fn = _peer(engine, request, batches, slide, child_seconds)
    else:
        fn = {
            "velaria-single": lambda: _velaria(batches, slide),
            "velaria-workers": lambda: _velaria(batches, slide, execution_mode="local-workers", local_workers=2),
            "polars-loop": lambda: _polars_loop(batches, slide),
            "duckdb-batch": lambda: _duckdb(table, slide),
            "polars-batch": lambda: _polars_batch(table, slide),
        }[engine]
    if engine.startswith(("polars", "duckdb")):
        pytest.importorskip(engine.split("-")[0])
    if _last and _last[-1] != engine:
        time.sleep(1.0)      # spinning thread pools of one library slow the next
    _last.append(engine)
    if engine in PEERS:      # minutes per run at full size: check every timed round instead
        _expected_for(table, slide)  # the oracle runs untimed

        def timed():
            _check(table, slide, fn())
    else:
        _check(table, slide, fn())
        timed = fn
    benchmark.group = workload
    benchmark.extra_info.update({"workload": workload, "engine": engine, "rows": ROWS})
    benchmark.pedantic(timed, rounds=ROUNDS, warmup_rounds=0, iterations=1)
    if child_seconds:        # pathway: its own time, without interpreter start and import
        benchmark.extra_info["child_seconds"] = child_seconds
        RESULTS[(workload, engine)] = sorted(child_seconds)[len(child_seconds) // 2]
        return
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        RESULTS[(workload, engine)] = stats.stats.median


@pytest.mark.parametrize("engine", HEAVY_ENGINES)
def test_stream_heavy(benchmark, events, engine):
    """The ``heavy`` workload: velaria single-process against local workers."""
    table, batches = events
    slide = SLIDES["tumbling"]
    opts = {"execution_mode": "local-workers", "local_workers": 2} if engine == "velaria-workers" else {}
    _check(table, slide, _velaria(batches, slide, heavy=True, **opts), heavy=True)
    benchmark.group = "heavy"
    benchmark.extra_info.update({"workload": "heavy", "engine": engine, "rows": ROWS})
    benchmark.pedantic(lambda: _velaria(batches, slide, heavy=True, **opts), rounds=ROUNDS, warmup_rounds=0,
                       iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        RESULTS[("heavy", engine)] = stats.stats.median


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print rows/s per engine and ratios after the module ran."""
    yield
    if not RESULTS:
        return
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    write = tr.write_line if tr is not None else print
    if capture is not None:
        with capture.global_and_fixture_disabled():
            _print_table(write)
    else:
        _print_table(write)


def _rate(rows_per_s: float) -> str:
    """Millions of rows per second, with three decimals below 1M (the Python stream engines)."""
    return ("%.2fM rows/s" if rows_per_s >= 1e6 else "%.3fM rows/s") % (rows_per_s / 1e6)


def _print_table(write) -> None:
    write("")
    write(f"stream windowed aggregate: {ROWS} events, batches of {BATCH}; rows/s (median of {ROUNDS}), "
          "and time ratio velaria-single / peer (<1 is faster)")
    write("%-10s" % "workload" + "".join("%17s" % e for e in ENGINES) + "".join("%18s" % ("/" + e) for e in ENGINES[1:]))
    for w in [*SLIDES, "heavy"]:
        line = "%-10s" % w
        for e in ENGINES:
            m = RESULTS.get((w, e))
            line += "%17s" % (_rate(ROWS / m) if m else "-")
        base = RESULTS.get((w, "velaria-single"))
        for e in ENGINES[1:]:
            m = RESULTS.get((w, e))
            line += "%18s" % ("%.2fx" % (base / m) if base and m else "-")
        write(line)
