"""Runtime modes side by side: embedded vs single-node vs distributed (Dask), with DuckDB.

    .venv/bin/python -m pytest benchmarks/bench_modes.py --benchmark-only -p no:cacheprovider
    VELARIA_MODES_BENCH_ROWS=2000000 VELARIA_MODES_BENCH_VECTORS=200000 ...   # smaller run
    VELARIA_BENCH_THREADS=2 ...                                               # DuckDB threads

Defaults: 10,000,000 fact rows in 8 Parquet files (int64 ``k`` with 100,000 distinct values,
float64 ``v``, int64 ``d`` with 1,000 distinct values), a 1,100-row dimension table in memory,
and 1,000,000 float32 vectors of 16 dimensions in memory. Workloads:

* ``groupby``  -- ``SELECT k, SUM(v), COUNT(*) FROM fact GROUP BY k`` (files read by workers,
  partial aggregate states hash-shuffled by ``k``, final aggregate per bucket on the workers);
* ``join``     -- fact JOIN dim (broadcast of dim) then GROUP BY the dimension's name;
* ``rightjoin`` -- fact RIGHT JOIN dim then GROUP BY the dimension's name (dim is small, so it
  is broadcast to the fact partitions, each joins and computes the partial aggregate state,
  the client pads the unmatched dimension rows and merges the states);
* ``topk``     -- ``HYBRID SEARCH`` cosine top-10 over the vectors (per-partition top-k + merge;
  the vectors are in memory, so they are shipped to the workers with each query).

Engines: ``embedded`` (one process), ``single-node`` (2 local worker processes),
``gather-merge`` (single-node with ``VELARIA_AGGREGATE_SHUFFLE=0``: the groupby's partial
states merged on the client instead of hash-shuffled; groupby only), ``shuffle-join``
(single-node with ``VELARIA_BROADCAST_LIMIT_BYTES=0``: the right join as a hash shuffle of
both inputs, one join and partial aggregate per bucket; rightjoin only),
``distributed`` (a Dask LocalCluster with 2 worker processes on 127.0.0.1, started here) and
``duckdb`` on the same files / tables as the single-machine reference. Every engine's answer
is checked against embedded's before it is timed. The table at the end gives medians, each
mode's overhead over embedded and the partitions / tasks / bytes moved between stages
(``shuffle_bytes``) that the run record reports.

Set ``VELARIA_MODES_BENCH_ROWS`` / ``VELARIA_MODES_BENCH_VECTORS`` to shrink the data for a
quick run.
"""
from __future__ import annotations

import math
import os
import time

import pytest

ROWS = int(os.environ.get("VELARIA_MODES_BENCH_ROWS", "10000000"))
VECTORS = int(os.environ.get("VELARIA_MODES_BENCH_VECTORS", "1000000"))
DIM = 16
FILES = 8
THREADS = os.environ.get("VELARIA_BENCH_THREADS")
WORKLOADS = ["groupby", "join", "rightjoin", "topk"]
ENGINES = ["embedded", "single-node", "distributed", "gather-merge", "shuffle-join", "duckdb"]
#: single-node variants that exchange data another way: the workload they apply to and the setting
VARIANTS = {"gather-merge": ("groupby", "VELARIA_AGGREGATE_SHUFFLE", "0"),
            "shuffle-join": ("rightjoin", "VELARIA_BROADCAST_LIMIT_BYTES", "0")}
QUERY_VECTOR = [1.0 if i % 3 == 0 else 0.5 for i in range(DIM)]
SQL = {
    "groupby": "SELECT k, SUM(v) AS s, COUNT(*) AS n FROM fact GROUP BY k",
    "join": "SELECT dim.name, SUM(fact.v) AS s, COUNT(*) AS n FROM fact JOIN dim ON fact.d = dim.d GROUP BY dim.name",
    "rightjoin": "SELECT dim.name, COUNT(fact.v) AS n FROM fact RIGHT JOIN dim ON fact.d = dim.d GROUP BY dim.name",
    "topk": "SELECT id, vector_score FROM vecs HYBRID SEARCH emb QUERY '[%s]' TOP_K 10"
            % " ".join(str(x) for x in QUERY_VECTOR),
}
DUCKDB_SQL = dict(SQL, topk="SELECT id, array_cosine_distance(emb, %s::FLOAT[%d]) AS vector_score FROM vecs "
                            "ORDER BY vector_score, id LIMIT 10" % (QUERY_VECTOR, DIM))
RESULTS: dict[tuple[str, str], float] = {}
TASKS: dict[tuple[str, str], str] = {}
EXPECTED: dict[str, list] = {}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    # dim has ids 0..1099 while fact.d is 0..999: the right join pads 100 dimension rows
    root = tmp_path_factory.mktemp("modes")
    per = ROWS // FILES
    for i in range(FILES):
        n = per if i < FILES - 1 else ROWS - per * (FILES - 1)
        pq.write_table(pa.table({"k": rng.integers(0, 100_000, n, dtype=np.int64), "v": rng.random(n),
                                 "d": rng.integers(0, 1000, n, dtype=np.int64)}), root / f"fact{i}.parquet")
    dim = pa.table({"d": np.arange(1100, dtype=np.int64), "name": [f"n{i % 37}" for i in range(1100)]})
    flat = rng.standard_normal(VECTORS * DIM).astype(np.float32)
    vecs = pa.table({"id": np.arange(VECTORS, dtype=np.int64),
                     "emb": pa.FixedSizeListArray.from_arrays(pa.array(flat), DIM)})
    return {"glob": str(root / "fact*.parquet"), "dim": dim, "vecs": vecs}


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1", silence_logs=50)
    yield cl
    from velaria.runtime.dask_backend import close_clients
    close_clients()
    cl.close()


def _canonical(rows):
    out = sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows)
    return [tuple(0.0 if isinstance(v, float) and math.isnan(v) else v for v in r) for r in out]


def _run(benchmark, workload, engine, fn, record=None):
    time.sleep(0.5)                    # let the previous engine's pools settle
    rows = fn()
    got = _canonical(rows)
    if engine == "embedded":
        EXPECTED[workload] = got
    elif workload in EXPECTED:
        assert got == EXPECTED[workload], f"{engine} {workload} differs from embedded"
    benchmark.group = workload
    benchmark.extra_info.update({"workload": workload, "engine": engine, "rows": ROWS, "vectors": VECTORS})
    benchmark.pedantic(fn, rounds=3, warmup_rounds=0, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        RESULTS[(workload, engine)] = stats.stats.median
    if record is not None:
        TASKS[(workload, engine)] = record()


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("engine", ["embedded", "single-node", "distributed", "gather-merge", "shuffle-join"])
def test_velaria(benchmark, data, cluster, workload, engine, monkeypatch):
    import velaria

    if engine in VARIANTS:             # single-node with another exchange
        applies, name, value = VARIANTS[engine]
        if workload != applies:
            pytest.skip(f"{engine} is compared on {applies} only")
        monkeypatch.setenv(name, value)
    local = {"runtime_mode": "single-node", "parallelism": 2}
    kwargs = {"embedded": {}, "distributed": {"runtime_mode": "distributed", "address": cluster.scheduler_address}}
    kwargs = kwargs.get(engine, local)
    s = velaria.Session(**kwargs)
    s.create_temp_view("fact", s.read_parquet(data["glob"]))
    s.create_temp_view("dim", s.create_dataframe_from_arrow(data["dim"]))
    s.create_temp_view("vecs", s.create_dataframe_from_arrow(data["vecs"]))
    last = {}

    def fn():
        df = s.sql(SQL[workload])
        last["df"] = df
        return df.to_rows()["rows"]

    def record():
        rec = last["df"].run_record()
        return f"{rec['partitions']}p/{rec['task_count']}t/{rec['shuffle_bytes'] / 1e6:.1f}MB"
    _run(benchmark, workload, engine, fn, record)
    s.runtime.close()


@pytest.mark.parametrize("workload", WORKLOADS)
def test_duckdb(benchmark, data, workload):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    if THREADS:
        con.execute(f"SET threads TO {int(THREADS)}")
    con.execute(f"CREATE VIEW fact AS SELECT * FROM read_parquet('{data['glob']}')")
    con.register("dim", data["dim"])
    con.register("vecs_arrow", data["vecs"])
    con.execute(f"CREATE TEMP TABLE vecs AS SELECT id, emb::FLOAT[{DIM}] AS emb FROM vecs_arrow")

    def fn():
        return [list(r) for r in con.sql(DUCKDB_SQL[workload]).fetchall()]
    # DuckDB's cosine distance is computed in float32: compare top-k ids, not the scores
    rows = fn()
    if workload == "topk" and workload in EXPECTED:
        assert [r[0] for r in rows] == [r[0] for r in sorted(EXPECTED[workload], key=lambda r: (r[1], r[0]))]
        EXPECTED.pop(workload)
    _run(benchmark, workload, "duckdb", fn)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print medians, overhead over embedded, and partitions/tasks after the module ran."""
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if RESULTS and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            _print_table(reporter.write_line)


def _print_table(write) -> None:
    write("")
    write(f"runtime modes: {ROWS} rows in {FILES} files, {VECTORS} vectors x {DIM}; medians "
          "(partitions/tasks/bytes moved) and time / embedded")
    write("%-9s" % "workload" + "".join("%34s" % e for e in ENGINES))
    for w in WORKLOADS:
        base = RESULTS.get((w, "embedded"))
        line = "%-9s" % w
        for e in ENGINES:
            m = RESULTS.get((w, e))
            if m is None:
                line += "%34s" % "-"
                continue
            ratio = f" x{m / base:.2f}" if base else ""
            line += "%34s" % (f"{m * 1e3:.0f} ms ({TASKS.get((w, e), '-')}){ratio}")
        write(line)
