"""Runtime modes without a cluster: validation of (mode, placement, address), environment
variables, the stage cut and its record, and single-node runs on local worker processes.

The Dask-backed ``distributed`` mode is tested in ``test_runtime_modes_dask.py``.
"""
from __future__ import annotations

import socket
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import velaria
from velaria.errors import VelariaError
from velaria.runtime import ADDRESS_ENV, MODE_ENV, PLACEMENTS, VALID_PAIRS, resolve_config
from velaria.runtime.modes import is_loopback

# ------------------------------------------------------------------------------ validation

INVALID_PAIRS = [(m, p) for m in VALID_PAIRS for p in PLACEMENTS if VALID_PAIRS[m] != p]


def test_the_three_valid_pairs_construct():
    assert resolve_config().mode == "embedded"
    assert resolve_config(environ={}).placement == "in_process"
    assert resolve_config("single-node", placement="local_workers", environ={}).placement == "local_workers"
    cfg = resolve_config("distributed", "tcp://10.0.0.5:8786", "remote_required", environ={})
    assert (cfg.mode, cfg.placement, cfg.address) == ("distributed", "remote_required", "tcp://10.0.0.5:8786")


@pytest.mark.parametrize("mode,placement", INVALID_PAIRS, ids=[f"{m}+{p}" for m, p in INVALID_PAIRS])
def test_invalid_pairs_fail_at_session(mode, placement):
    address = "tcp://127.0.0.1:1" if mode == "distributed" else None
    with pytest.raises(ValueError, match="invalid runtime pair") as info:
        velaria.Session(runtime_mode=mode, placement=placement, address=address)
    assert isinstance(info.value, VelariaError)
    if mode == "distributed":
        assert "cannot use local fallback" in str(info.value)


def test_distributed_without_address_says_how_to_start_a_cluster(monkeypatch):
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    with pytest.raises(ValueError, match="needs an explicit Dask scheduler address") as info:
        velaria.Session(runtime_mode="distributed")
    assert "dask scheduler" in str(info.value) and ADDRESS_ENV in str(info.value)


@pytest.mark.parametrize("kwargs,needle", [
    ({"runtime_mode": "local"}, "is not a runtime mode"),
    ({"runtime_mode": "single-node", "address": "tcp://10.1.2.3:8786"}, "names a remote Dask scheduler"),
    ({"runtime_mode": "embedded", "address": "tcp://127.0.0.1:8786"}, "takes no address"),
    ({"placement": "cluster"}, "is not a placement"),
    ({"parallelism": 0}, "parallelism must be > 0"),
    ({"connect_timeout": -1}, "connect_timeout must be > 0"),
])
def test_bad_values(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        velaria.Session(**kwargs)


@pytest.mark.parametrize("kwargs", [{"runtime_mode": 1}, {"address": 8786}, {"parallelism": "2"},
                                    {"parallelism": True}])
def test_bad_types(kwargs):
    with pytest.raises(TypeError):
        velaria.Session(**kwargs)


def test_environment_variables():
    assert resolve_config(environ={MODE_ENV: "single-node"}).mode == "single-node"
    # an address alone means a cluster, loopback or not: it never implies a local mode
    for address in ("tcp://127.0.0.1:8786", "tcp://10.0.0.7:8786", "localhost:8786"):
        cfg = resolve_config(environ={ADDRESS_ENV: address})
        assert (cfg.mode, cfg.placement, cfg.address) == ("distributed", "remote_required", address)
    with pytest.raises(ValueError, match=f"{MODE_ENV}='cluster' is not a runtime mode"):
        resolve_config(environ={MODE_ENV: "cluster"})
    with pytest.raises(ValueError, match=f"{ADDRESS_ENV}='tcp://10.0.0.7:8786' names a remote"):
        resolve_config(environ={MODE_ENV: "single-node", ADDRESS_ENV: "tcp://10.0.0.7:8786"})
    # arguments win over the environment
    assert resolve_config("embedded", environ={MODE_ENV: "distributed"}).mode == "embedded"


def test_loopback_detection():
    assert is_loopback("tcp://127.0.0.1:8786") and is_loopback("localhost:1") and is_loopback("tcp://[::1]:8786")
    assert not is_loopback("tcp://10.0.0.1:8786") and not is_loopback("scheduler.example.com:8786")


def test_unreachable_scheduler_fails_at_session_with_a_timeout():
    with socket.socket() as s:          # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} "
                                              r"within connect_timeout=1.0s") as info:
        velaria.Session(runtime_mode="distributed", address=f"tcp://127.0.0.1:{port}", connect_timeout=1)
    assert isinstance(info.value, VelariaError)
    assert time.monotonic() - started < 20


# ------------------------------------------------------------------------------ embedded record

def _table(n=1000):
    return pa.table({"k": [i % 7 for i in range(n)], "v": [float(i) for i in range(n)],
                     "s": [None if i % 11 == 0 else str(i % 13) for i in range(n)]})


def test_embedded_records_one_in_process_task_and_keeps_upstream_explain():
    s = velaria.Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(_table()))
    df = s.sql("SELECT k, COUNT(*) FROM t GROUP BY k")
    assert df.run_record()["runtime_mode"] == "embedded" and df.run_record()["ran"] is False
    df.to_arrow()
    rec = df.run_record()
    assert (rec["placement"], rec["backend"], rec["task_count"], rec["ran"]) == ("in_process", "in-process", 1, True)
    assert "runtime_mode=" not in s.explain_sql("SELECT k FROM t") and "runtime:" not in df.explain()


# ------------------------------------------------------------------------------ single-node

QUERIES = [
    ("SELECT k, SUM(v) AS total, COUNT(*) AS n, COUNT(s) AS ns, MIN(s) AS lo FROM t GROUP BY k ORDER BY k",
     "partial-aggregate+hash-shuffle"),
    ("SELECT s, k, COUNT(*) AS n, MAX(v) AS hi FROM t GROUP BY s, k", "partial-aggregate+hash-shuffle"),
    ("SELECT COUNT(DISTINCT s) AS d, AVG(v) AS a FROM t WHERE k > 2", "partial-aggregate+merge"),
    ("SELECT v, s FROM t WHERE s IS NOT NULL ORDER BY s DESC, v LIMIT 7", "top-n+merge"),
    ("SELECT k * 2 AS kk, s FROM t WHERE v < 20", "gather"),
    ("SELECT DISTINCT s FROM t ORDER BY s", "distinct+merge"),
    ("SELECT v FROM t LIMIT 5 OFFSET 3", "limit+merge"),
    ("SELECT v, k FROM t ORDER BY k DESC, v", "gather+sort"),
]


@pytest.fixture(scope="module")
def single_node():
    s = velaria.Session(runtime_mode="single-node", parallelism=3)
    s.create_temp_view("t", s.create_dataframe_from_arrow(_table()))
    yield s
    s.runtime.close()


@pytest.fixture(scope="module")
def embedded():
    s = velaria.Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(_table()))
    return s


@pytest.mark.parametrize("sql,exchange", QUERIES, ids=[q[1] + f"-{i}" for i, q in enumerate(QUERIES)])
def test_single_node_partitions_and_matches_embedded(single_node, embedded, sql, exchange):
    df = single_node.sql(sql)
    planned = df.explain()
    assert "runtime_mode=single-node" in planned and "status=planned" in planned and f"exchange={exchange}" in planned
    assert df.to_rows() == embedded.sql(sql).to_rows()
    rec = df.run_record()
    shuffled = exchange.endswith("hash-shuffle")    # 3 map tasks, then one final task per bucket
    assert rec["ran"] and rec["partitions"] == 3
    assert (rec["task_count"], rec["stage_count"]) == ((6, 3) if shuffled else (3, 2))
    assert rec["backend"] == "process-pool" and rec["placement"] == "local_workers"
    assert rec["workers"] and all(w.startswith("pid:") for w in rec["workers"])
    assert rec["shuffle_bytes"] > 0 and rec["exchange"] == exchange
    assert "status=ran" in df.explain()
    if exchange.startswith("gather+"):   # a barrier that is not split is a recorded fallback
        assert rec["fallbacks"] and "runs once on the client" in rec["fallbacks"][0]
    else:
        assert rec["fallbacks"] == []


def test_single_node_records_a_plan_it_cannot_partition(single_node, embedded):
    sql = "SELECT v FROM t WHERE v < 5 UNION ALL SELECT v FROM t WHERE v > 996"
    df = single_node.sql(sql)
    assert df.to_rows() == embedded.sql(sql).to_rows()
    rec = df.run_record()
    assert rec["task_count"] == 1 and rec["fallbacks"] == ["plan not partitionable (Union has 2 inputs): ran as one task"]
    assert rec["workers"][0].startswith("pid:")        # the one task still ran on a worker
    assert "fallbacks=plan not partitionable" in single_node.explain_sql(sql)


@pytest.mark.parametrize("sql", [
    "SELECT a.v, b.s FROM t a JOIN t b ON a.v = b.v WHERE a.v < 40",
    "SELECT a.k, b.s FROM t a LEFT JOIN (SELECT k, s FROM t WHERE v < 3) b ON a.k = b.k WHERE a.v < 30",
    # SUM reads both sides, so the GROUP BY stays above the join (a GROUP BY of one side that
    # aggregates only the other is pre-aggregated below it: velaria/plan/join_group.py)
    "SELECT b.s, COUNT(*) AS n, SUM(a.v + b.k) AS sv FROM t a JOIN (SELECT DISTINCT k, s FROM t WHERE v < 20) b "
    "ON a.k = b.k GROUP BY b.s ORDER BY b.s",
])
def test_single_node_broadcast_join(single_node, embedded, sql):
    """The right input runs as one task; every partition joins its slice of the left input."""
    df = single_node.sql(sql)
    assert df.to_rows() == embedded.sql(sql).to_rows()
    rec = df.run_record()
    shuffled = rec["exchange"].endswith("hash-shuffle")   # the GROUP BY adds 3 bucket tasks and a stage
    assert rec["exchange"].startswith("broadcast-join+") and "broadcast join: right input ~" in rec["shuffle"]
    assert (rec["task_count"], rec["stage_count"]) == ((7, 4) if shuffled else (4, 3))


def test_single_node_partitions_files_and_row_groups(tmp_path, embedded):
    table = _table(3000)
    for i in range(3):
        pq.write_table(table.slice(i * 1000, 1000), tmp_path / f"part{i}.parquet")
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=500)
    s = velaria.Session(runtime_mode="single-node", parallelism=2)
    sql = "SELECT k, SUM(v) AS t, COUNT(*) AS n FROM x WHERE v >= 10 GROUP BY k ORDER BY k"
    want = None
    for path, how, tasks in ((str(tmp_path / "part*.parquet"), "3 files of", 3),
                             (str(tmp_path / "one.parquet"), "row-group ranges of", 2)):
        s.create_temp_view("x", s.read_parquet(path))
        df = s.sql(sql)
        got = df.to_rows()
        want = want or got
        assert got == want
        rec = df.run_record()
        assert rec["partitions"] == tasks and rec["partitioning"].startswith(how), rec
        assert rec["task_count"] == tasks + 2, rec         # + one final-aggregate task per bucket
    e = velaria.Session()
    e.create_temp_view("x", e.read_parquet(str(tmp_path / "one.parquet")))
    assert e.sql(sql).to_rows() == want


def test_single_node_engine_errors_propagate(single_node):
    # the worker's ExecutionError reaches the caller with its message
    with pytest.raises(VelariaError, match="cannot cast '12x' to INT"):
        single_node.sql("SELECT CAST(CONCAT(s, 'x') AS BIGINT) FROM t WHERE s = '12'").to_rows()


def test_in_memory_partitions_ship_only_their_rows():
    import pickle

    from velaria.io.base import ArrowTableSource
    from velaria.runtime.partition import split_source

    table = pa.table({"v": list(range(100_000))})
    parts, how = split_source(ArrowTableSource(table), 4)
    assert how.startswith("row chunks") and [p.table.num_rows for p in parts] == [25_000] * 4
    sizes = [len(pickle.dumps(p)) for p in parts]
    assert all(size < table.nbytes / 3 for size in sizes), sizes
    assert pa.concat_tables([pickle.loads(pickle.dumps(p)).table for p in parts]).equals(table)


def test_now_is_one_instant_across_partitions(single_node):
    df = single_node.sql("SELECT COUNT(DISTINCT CAST(NOW() AS STRING)) AS n, COUNT(*) AS c FROM t")
    assert df.to_rows()["rows"] == [[1, 1000]] and df.run_record()["task_count"] == 3


def test_single_node_partitions_a_csv_glob_by_file(tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}.csv").write_text(f"a,b\n{i},x{i}\n1{i},y\n")
    sql = "SELECT b, SUM(a) AS s FROM c GROUP BY b ORDER BY b"
    answers = []
    for kwargs in ({}, {"runtime_mode": "single-node", "parallelism": 2}):
        s = velaria.Session(**kwargs)
        s.create_temp_view("c", s.read_csv(str(tmp_path / "*.csv")))
        df = s.sql(sql)
        answers.append(df.to_rows())
    assert answers[0] == answers[1] == {"schema": ["b", "s"], "rows": [["x0", 0], ["x1", 1], ["x2", 2], ["y", 33]]}
    assert df.run_record()["partitions"] == 3 and df.run_record()["partitioning"].startswith("3 files of")
    assert df.run_record()["task_count"] == 5            # 3 map tasks + 2 bucket tasks


@pytest.mark.parametrize("how,split", [("inner", True), ("left", True), ("cross", True), ("right", False),
                                       ("full", False)])
def test_only_left_preserving_joins_are_broadcast(how, split):
    """A RIGHT / FULL join pads unmatched right rows, which one left partition cannot know."""
    import dataclasses

    from velaria.io.base import ArrowTableSource
    from velaria.plan import logical as L
    from velaria.runtime.stages import cut_plan

    table = pa.table({"a": list(range(10))})
    scan = L.Scan(schema=table.schema, source=ArrowTableSource(table), table_name="t")
    join = L.Join(schema=pa.schema([("a", pa.int64()), ("b", pa.int64())]), left=scan, right=scan)
    cut = cut_plan(dataclasses.replace(join, how=how), 2)
    if split:
        assert cut.kind == "broadcast-join+gather" and len(cut.partitions) == 2
    else:
        assert cut.partitions is None and f"{how.upper()} JOIN pads right rows" in cut.reason


def test_single_node_worker_killed_during_the_shuffle_names_it():
    """A local worker killed mid-shuffle fails the query with an error naming its pid (never
    a partial answer); the next query gets a fresh pool and the right answer."""
    import os
    import signal
    import threading

    table = pa.table({"k": [i % 40_000 for i in range(240_000)], "v": list(range(240_000))})
    s = velaria.Session(runtime_mode="single-node", parallelism=2, engine="reference")
    s.create_temp_view("t", s.create_dataframe_from_arrow(table))
    sql = "SELECT k, SUM(v) AS sv FROM t GROUP BY k"
    warm = s.sql("SELECT COUNT(*) FROM t")              # the pool's workers are running now
    warm.to_rows()
    workers = [int(w.split(":")[1]) for w in warm.run_record()["workers"]]
    outcome = {}

    def query():
        try:
            outcome["rows"] = s.sql(sql).to_rows()
        except Exception as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc
    thread = threading.Thread(target=query)
    thread.start()
    time.sleep(0.3)                                    # the map tasks are folding their chunks
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    thread.join(120)
    err = outcome.get("error")
    assert isinstance(err, velaria.errors.ExecutionError), outcome.keys()
    assert f"local worker process pid:{victim} (exit code {-signal.SIGKILL}) died" in str(err)
    assert "no partial answer" in str(err)
    e = velaria.Session()
    e.create_temp_view("t", e.create_dataframe_from_arrow(table))
    df = s.sql(sql)
    assert df.to_rows() == e.sql(sql).to_rows() and df.run_record()["task_count"] == 4
