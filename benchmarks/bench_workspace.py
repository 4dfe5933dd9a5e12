"""The run index: one run upsert and one query over an index of ``VELARIA_BENCH_RUNS`` runs
(default 1000), with velaria's Parquet index beside a SQLite table of the same rows (the backend
native Velaria uses), pytest-benchmark side by side.

    .venv/bin/python -m pytest benchmarks/bench_workspace.py --benchmark-only -q

A Parquet upsert rewrites the whole file (atomically, under the lock), so its cost grows with the
index; SQLite updates in place. The query column shows what reading the index costs.
"""
from __future__ import annotations

import json
import os
import sqlite3

import pytest

RUNS = int(os.environ.get("VELARIA_BENCH_RUNS", "1000"))


def _meta(i: int) -> dict:
    return {"run_id": f"20260101T000000Z_{i:08x}", "created_at": "2026-01-01T00:00:00Z", "status": "succeeded",
            "action": "file-sql", "run_dir": f"/runs/{i}", "finished_at": "2026-01-01T00:00:01Z",
            "tags": ["bench"], "details": {}, "cli_args": {"query": "SELECT 1"}}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("VELARIA_HOME")
    os.environ["VELARIA_HOME"] = str(home)
    from velaria.workspace.index import ArtifactIndex
    from velaria.workspace.atomic import write_parquet_atomic
    from velaria.workspace.index import _run_row
    idx = ArtifactIndex()
    table = idx.runs._to_table([{f.name: r.get(f.name) for f in idx.runs.schema}
                                for r in (_run_row(_meta(i), None) for i in range(RUNS))])
    write_parquet_atomic(idx.runs.path, table)  # the starting index, written in one go
    yield idx
    if old is None:
        os.environ.pop("VELARIA_HOME", None)
    else:
        os.environ["VELARIA_HOME"] = old


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    con = sqlite3.connect(tmp_path_factory.mktemp("sqlite") / "runs.sqlite")
    con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at TEXT, finished_at TEXT, status TEXT, "
                "action TEXT, run_dir TEXT, tags TEXT, details TEXT, cli_args TEXT)")
    con.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                    [(m["run_id"], m["created_at"], m["finished_at"], m["status"], m["action"], m["run_dir"],
                      json.dumps(m["tags"]), json.dumps(m["details"]), json.dumps(m["cli_args"]))
                     for m in map(_meta, range(RUNS))])
    con.commit()
    yield con
    con.close()


def test_upsert_velaria_parquet(benchmark, index):
    benchmark.group = "run index upsert"
    benchmark(index.upsert_run, {**_meta(RUNS // 2), "status": "failed"})


def test_upsert_sqlite(benchmark, sqlite_db):
    benchmark.group = "run index upsert"
    m = _meta(RUNS // 2)

    def upsert():
        sqlite_db.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                          (m["run_id"], m["created_at"], m["finished_at"], "failed", m["action"], m["run_dir"],
                           json.dumps(m["tags"]), json.dumps(m["details"]), json.dumps(m["cli_args"])))
        sqlite_db.commit()
    benchmark(upsert)


def test_query_velaria_sql(benchmark, index):
    benchmark.group = "run index query"
    import velaria
    from velaria.workspace.index import register_index_views

    def query():
        s = velaria.Session()
        register_index_views(s)
        return s.sql("SELECT status, COUNT(*) AS n FROM runs GROUP BY status").to_arrow()
    assert benchmark(query).num_rows >= 1


def test_query_sqlite(benchmark, sqlite_db):
    benchmark.group = "run index query"
    assert benchmark(lambda: sqlite_db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
