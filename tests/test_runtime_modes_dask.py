"""Same answers in every runtime mode, on a real Dask cluster the tests start themselves.

A Dask scheduler and two worker processes on 127.0.0.1 (module-scoped), each started as its own
OS process, run the SQL conformance corpus, a DuckDB differential slice and partitioned file /
vector queries in ``distributed`` mode; ``single-node`` and ``embedded`` run the same. One test kills a worker
in the middle of a query: the answer is the right one (Dask reran the lost tasks) or an
error that names the worker, never a partial one.
"""
from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import velaria
from velaria.conformance import Context, slt
from velaria.conformance.runner import run_clause
from velaria.runtime.dask_backend import close_clients

distributed = pytest.importorskip("distributed")
duckdb = pytest.importorskip("duckdb")

SLT_DIR = Path(slt.__file__).resolve().parent / "slt"


class _Cluster:
    """A Dask scheduler and two single-threaded worker processes on 127.0.0.1, each its own
    OS process (``dask scheduler`` / ``dask worker`` as a user would start them), so no Dask
    event loop runs inside the test process beyond the clients' own."""

    def __init__(self, tmp: Path):
        import subprocess
        import sys
        self.scheduler_file = tmp / "scheduler.json"
        common = ["--no-dashboard", "--host", "127.0.0.1"]
        self._procs = [subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
             "--scheduler-file", str(self.scheduler_file), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            deadline = time.monotonic() + 120
            while not self.scheduler_file.exists():
                if time.monotonic() > deadline or self._procs[0].poll() is not None:
                    raise RuntimeError("the test's Dask scheduler did not start")
                time.sleep(0.1)
            self._procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(self.scheduler_file),
                 "--nworkers", "2", "--nthreads", "1", *common],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.client = distributed.Client(scheduler_file=str(self.scheduler_file), set_as_default=False)
            self.client.wait_for_workers(2, timeout=120)
            self.scheduler_address = self.client.scheduler.address
        except BaseException:
            self.close()
            raise

    @property
    def allowed_failures(self) -> int:
        return self.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)

    @allowed_failures.setter
    def allowed_failures(self, value: int) -> None:
        self.client.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", value))

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        for proc in reversed(self._procs):      # workers first (their nanny stops its workers)
            proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(30)
            except Exception:  # noqa: BLE001 - a stuck process is killed
                proc.kill()
                proc.wait(30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cl = _Cluster(tmp_path_factory.mktemp("dask"))
    try:
        yield cl
    finally:
        close_clients()            # Sessions share one client per address; disconnect first
        cl.close()


@pytest.fixture(scope="module")
def modes(cluster):
    """Session keyword arguments per mode."""
    return {"embedded": {}, "single-node": {"runtime_mode": "single-node", "parallelism": 2},
            "distributed": {"runtime_mode": "distributed", "address": cluster.scheduler_address}}


# ------------------------------------------------------------------------------ the corpus

def _slt_clauses():
    out = []
    for path in sorted(SLT_DIR.glob("*.slt")):
        out.extend(slt.load_file(path))
    return out


@pytest.mark.parametrize("mode", ["single-node", "distributed"])
def test_conformance_corpus_passes_in_every_mode(modes, mode):
    """Every clause's expected answer (the same text for every mode) is met."""
    ctx = Context(target=velaria, target_name="velaria", session_kwargs=modes[mode])
    clauses = _slt_clauses()
    assert len(clauses) > 100
    bad = []
    for c in clauses:
        outcome = run_clause(c, ctx)
        if outcome.cls not in ("pass", "diverges-by-design"):
            bad.append(f"{c.id}: {outcome.cls}: {outcome.detail[:500]}")
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------------------ differential

def _data(seed: int, n: int = 400) -> pa.Table:
    rnd = random.Random(seed)
    return pa.table({
        "id": list(range(n)),
        "g": [rnd.choice([None, 1, 2, 3, 4, 5]) for _ in range(n)],
        "x": [rnd.choice([None, rnd.randint(-50, 50)]) for _ in range(n)],
        "f": [rnd.choice([None, -0.0, 0.5, rnd.uniform(-10, 10)]) for _ in range(n)],
        "s": [rnd.choice([None, "a", "b", "c", "dd"]) for _ in range(n)],
    })


DIFF_QUERIES = [
    ("SELECT g, COUNT(*), COUNT(x), SUM(x), MIN(f), MAX(s) FROM t GROUP BY g", False),
    ("SELECT g, s, AVG(x), SUM(f) FROM t WHERE x > -20 GROUP BY g, s", False),
    ("SELECT COUNT(DISTINCT s), SUM(x), COUNT(*) FROM t WHERE f IS NOT NULL", False),
    ("SELECT id, x FROM t WHERE x IS NOT NULL ORDER BY x DESC, id LIMIT 9", True),
    ("SELECT id, s FROM t WHERE s = 'dd' OR x < -45", False),
    ("SELECT DISTINCT g, s FROM t", False),
    ("SELECT s, COUNT(*) AS n FROM t GROUP BY s HAVING COUNT(*) > 10", False),
]


def _norm_row(row):
    return tuple(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in row)


def _key(row):
    return tuple((v is None, "" if v is None else str(v)) for v in _norm_row(row))


def _same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        # partial sums in another order may round differently (see docs/scale-out.md)
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _assert_rows(got, want, ordered, what):
    if not ordered:
        got, want = sorted(got, key=_key), sorted(want, key=_key)
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert all(_same_value(*_norm_row(p)) for p in zip(g, w)), f"{what}: {g} != {w}"


@pytest.mark.parametrize("seed", [1, 2])
def test_differential_slice_against_duckdb_in_every_mode(modes, seed):
    table = _data(seed)
    con = duckdb.connect()
    con.register("t", table)
    sessions = {}
    for mode, kwargs in modes.items():
        sessions[mode] = velaria.Session(**kwargs)
        sessions[mode].create_temp_view("t", sessions[mode].create_dataframe_from_arrow(table))
    try:
        for sql, ordered in DIFF_QUERIES:
            want = [list(r) for r in con.sql(sql).fetchall()]
            for mode, s in sessions.items():
                df = s.sql(sql)
                _assert_rows(df.to_rows()["rows"], want, ordered, f"{mode}: {sql}")
                if mode != "embedded":
                    assert df.run_record()["task_count"] > 1, (mode, sql, df.run_record())
    finally:
        con.close()
        for s in sessions.values():
            s.runtime.close()


# ------------------------------------------------------------------------------ distributed

def test_distributed_reads_files_where_they_sit_and_records_the_run(cluster, tmp_path):
    table = _data(3, 3000)
    for i in range(4):
        pq.write_table(table.slice(i * 750, 750), tmp_path / f"p{i}.parquet")
    s = velaria.Session(runtime_mode="distributed", address=cluster.scheduler_address)
    e = velaria.Session()
    sql = "SELECT g, COUNT(*) AS n, SUM(x) AS sx FROM p WHERE id % 3 = 0 GROUP BY g ORDER BY g"
    for sess in (s, e):
        sess.create_temp_view("p", sess.read_parquet(str(tmp_path / "p*.parquet")))
    df = s.sql(sql)
    assert "status=planned" in df.explain() and "task_count=6" in df.explain()   # 4 maps + 2 buckets
    assert df.to_rows() == e.sql(sql).to_rows()
    rec = df.run_record()
    assert (rec["runtime_mode"], rec["placement"], rec["backend"]) == ("distributed", "remote_required", "dask")
    assert rec["task_count"] == 6 and rec["partitions"] == 4 and rec["partitioning"].startswith("4 files of")
    assert rec["exchange"] == "partial-aggregate+hash-shuffle" and rec["stage_count"] == 3
    assert rec["shuffle_bytes"] > 0 and rec["fallbacks"] == []
    assert rec["workers"] and all(w.startswith("tcp://127.0.0.1:") for w in rec["workers"])
    text = s.explain_sql(sql)
    assert "runtime_mode=distributed" in text and "backend=dask" in text
    # a plan that cannot be cut runs as one task on a worker, and says so
    union = "SELECT g FROM p WHERE id < 3 UNION SELECT g FROM p WHERE id > 2990"
    one = s.sql(union)
    assert one.to_rows() == e.sql(union).to_rows()
    assert one.run_record()["task_count"] == 1 and one.run_record()["workers"]
    assert one.run_record()["fallbacks"] == ["plan not partitionable (Union has 2 inputs): ran as one task"]
    join = "SELECT a.id, b.s FROM p a JOIN p b ON a.id = b.id WHERE a.x > 40"
    df = s.sql(join)
    assert df.to_rows() == e.sql(join).to_rows()
    assert df.run_record()["exchange"] == "broadcast-join+gather" and df.run_record()["task_count"] == 5
    s.runtime.close()


def test_distributed_vector_top_k_per_partition(cluster):
    rnd = random.Random(7)
    n = 500
    vecs = [[rnd.choice([0.0, 1.0, rnd.uniform(-1, 1)]) for _ in range(4)] for _ in range(n)]
    table = pa.table({"id": list(range(n)), "emb": pa.array(vecs, type=pa.list_(pa.float32(), 4))})
    sql = "SELECT id, vector_score FROM v WHERE id % 2 = 0 HYBRID SEARCH emb QUERY '[1 0 0.5 0]' TOP_K 7"
    answers = []
    for kwargs in ({}, {"runtime_mode": "distributed", "address": cluster.scheduler_address}):
        s = velaria.Session(**kwargs)
        s.create_temp_view("v", s.create_dataframe_from_arrow(table))
        df = s.sql(sql)
        answers.append(df.to_rows())
        s.runtime.close()
    assert answers[0] == answers[1] and len(answers[0]["rows"]) == 7
    rec = df.run_record()
    assert rec["exchange"] == "vector-top-k+merge" and rec["task_count"] == 2


@pytest.mark.parametrize("limit", [None, "0"], ids=["small-right-broadcast", "shuffle-both"])
def test_distributed_shuffles_aggregates_and_outer_joins_between_workers(cluster, tmp_path, monkeypatch, limit):
    """Grouped aggregates run as map tasks plus one task per bucket on the workers; RIGHT /
    FULL joins broadcast their small right input to the left partitions, or (broadcast limit
    0) shuffle both inputs; the answer and its order are embedded's."""
    from velaria.runtime.join_shuffle import BROADCAST_LIMIT_ENV

    if limit is not None:
        monkeypatch.setenv(BROADCAST_LIMIT_ENV, limit)
    rnd = random.Random(5)
    n = 4000
    facts = pa.table({"k": [rnd.choice([None, -0.0, 0.0, 1.5, math.nan, 7.0]) for _ in range(n)],
                      "i": [rnd.choice([None, 1, 2, 3, 5]) for _ in range(n)], "v": list(range(n))})
    dims = pa.table({"i": [rnd.choice([None, 1.0, 2.0, 5.0, 9.0]) for _ in range(50)], "w": list(range(50))})
    for j in range(4):
        pq.write_table(facts.slice(j * 1000, 1000), tmp_path / f"f{j}.parquet")
    queries = {"SELECT k, i, COUNT(*) AS n, SUM(v) AS sv FROM f GROUP BY k, i": "partial-aggregate+hash-shuffle",
               "SELECT f.v, d.w FROM f FULL JOIN d ON f.i = d.i": "{join}",
               "SELECT d.w, COUNT(f.v) AS n FROM f RIGHT JOIN d ON f.i = d.i GROUP BY d.w":
                   "{join}+partial-aggregate+merge",
               "SELECT f.v, d.w FROM f FULL JOIN d ON f.i = d.i ORDER BY d.w DESC LIMIT 9": "{join}+top-n+merge"}
    join = "hash-shuffle-join" if limit == "0" else "broadcast-outer-join"
    answers = {}
    for mode, kwargs in (("embedded", {}), ("distributed", {"runtime_mode": "distributed",
                                                            "address": cluster.scheduler_address})):
        s = velaria.Session(**kwargs)
        s.create_temp_view("f", s.read_parquet(str(tmp_path / "f*.parquet")))
        s.create_temp_view("d", s.create_dataframe_from_arrow(dims))
        for sql, exchange in queries.items():
            df = s.sql(sql)
            answers[mode, sql] = repr(df.to_rows())
            if mode == "distributed":
                rec = df.run_record()
                assert rec["stage_count"] == 3 and rec["task_count"] > rec["partitions"] > 1, rec
                assert rec["exchange"] == exchange.format(join=join), rec
                assert rec["shuffle_bytes"] > 0 and all(w.startswith("tcp://") for w in rec["workers"])
        s.runtime.close()
    for sql in queries:
        assert answers["distributed", sql] == answers["embedded", sql], sql


def test_distributed_searches_per_partition(cluster):
    """Session.vector_search, hybrid_search, keyword_search and SQL KEYWORD SEARCH run per partition
    on the Dask workers (keyword: corpus statistics first) and give the embedded answers."""
    rnd = random.Random(9)
    n = 400
    words = ["alpha", "beta", "gamma", "delta", "x1"]
    table = pa.table({"id": list(range(n)),
                      "t": [None if i % 17 == 0 else " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 5)))
                            for i in range(n)],
                      "emb": pa.array([[rnd.choice([0.0, 1.0, rnd.uniform(-1, 1)]) for _ in range(4)] for _ in range(n)],
                                      type=pa.list_(pa.float32(), 4))})
    sql = "SELECT id, keyword_score FROM v WHERE id % 2 = 0 KEYWORD SEARCH(t) QUERY 'alpha beta' TOP_K 9"
    answers = {}
    for mode, kwargs in (("embedded", {}), ("distributed", {"runtime_mode": "distributed",
                                                            "address": cluster.scheduler_address})):
        s = velaria.Session(**kwargs)
        s.create_temp_view("v", s.create_dataframe_from_arrow(table))
        answers[mode] = [repr(s.vector_search("v", "emb", [[1, 0, 0.5, 0], [0, 1, 0, 0]], 6, "l2").to_rows()),
                         repr(s.hybrid_search("v", "emb", [1, 0, 0.5, 0], 8, "dot", 0.1).to_rows())]
        if mode == "distributed":
            rec = s.runtime.last_search_record
            assert rec.exchange == "vector-top-k+merge" and rec.task_count == 2 and rec.workers
        answers[mode].append(repr(s.keyword_search("v", "t", "gamma delta", 12).to_rows()))
        if mode == "distributed":
            rec = s.runtime.last_search_record
            assert rec.exchange == "keyword-top-k+merge" and rec.task_count == 4 and rec.workers
        df = s.sql(sql)
        answers[mode].append(repr(df.to_rows()))
        if mode == "distributed":
            assert df.run_record()["exchange"] == "keyword-top-k+merge" and df.run_record()["task_count"] == 4
        s.runtime.close()
    assert answers["distributed"] == answers["embedded"]


@pytest.mark.parametrize("phase", ["velaria-shuffle-map", "velaria-shuffle-bucket"], ids=["map", "bucket"])
@pytest.mark.parametrize("allowed_failures", [None, 0], ids=["dask-retries", "no-retries"])
def test_worker_killed_during_a_shuffle_gives_the_answer_or_names_the_worker(cluster, tmp_path, allowed_failures,
                                                                           phase):
    """A worker process is killed while it runs a map task, or a bucket task (its map
    results, which other buckets need, die with it). With Dask's default retries the lost
    tasks rerun and the answer is right; with no retries allowed the query fails with an
    error naming the lost worker."""
    table = pa.table({"k": [i % 60_000 for i in range(240_000)], "v": list(range(240_000))})
    for i in range(8):
        pq.write_table(table.slice(i * 30_000, 30_000), tmp_path / f"w{i:02d}.parquet")
    sql = "SELECT k, SUM(v) AS sv, COUNT(*) AS n FROM w GROUP BY k"
    e = velaria.Session()
    e.create_temp_view("w", e.read_parquet(str(tmp_path / "w*.parquet")))
    want = e.sql(sql).to_rows()
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    # the reference kernels keep the bucket tasks busy long enough to be caught running
    s = velaria.Session(runtime_mode="distributed", address=cluster.scheduler_address, parallelism=8,
                        engine="reference")
    s.create_temp_view("w", s.read_parquet(str(tmp_path / "w*.parquet")))
    outcome = {}

    def query():
        try:
            df = s.sql(sql)
            outcome["rows"] = df.to_rows()
            outcome["record"] = df.run_record()
        except Exception as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc
    default_failures = cluster.allowed_failures
    if allowed_failures is not None:
        cluster.allowed_failures = allowed_failures
    try:
        pids = client.run(os.getpid)
        worker = threading.Thread(target=query)
        worker.start()
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and worker.is_alive() and time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if any(str(k).startswith(phase) for k in keys)]
            if busy:
                killed = busy[0]
                os.kill(pids[killed], signal.SIGKILL)   # the worker process, mid-task
            time.sleep(0.002)
        worker.join(180)
        assert not worker.is_alive()
        assert killed is not None, "the query finished before a worker could be killed"
        if allowed_failures == 0:
            err = outcome.get("error")
            assert isinstance(err, ConnectionError) and isinstance(err, velaria.errors.VelariaError), outcome
            assert f"Dask worker {killed} died" in str(err) and "no partial answer" in str(err)
        elif "error" in outcome:
            assert killed in str(outcome["error"]), outcome["error"]
        else:
            assert outcome["rows"] == want
            assert outcome["record"]["exchange"] == "partial-aggregate+hash-shuffle"
        client.wait_for_workers(2, timeout=240)      # the nanny restarts the worker (slow on a loaded machine)
    finally:
        cluster.allowed_failures = default_failures
        s.runtime.close()
        client.close()


def test_task_timeout_bounds_a_hung_query(cluster):
    """A query whose tasks cannot finish in time fails with the timeout, not a hang."""
    table = pa.table({"k": [i % 100 for i in range(200_000)], "v": list(range(200_000))})
    s = velaria.Session(runtime_mode="distributed", address=cluster.scheduler_address, task_timeout=0.001,
                        parallelism=8, engine="reference")
    s.create_temp_view("t", s.create_dataframe_from_arrow(table))
    with pytest.raises(velaria.errors.ExecutionError, match=r"did not finish within task_timeout=0.001s"):
        s.sql("SELECT k, SUM(v) FROM t GROUP BY k").to_rows()
    s.runtime.close()
