"""The run workspace: execution-context Arrow round trips, the atomic run index under concurrent
processes, the result-cache key and safe cleanup."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria.workspace import context as ctxmod
from velaria.workspace import run_store
from velaria.workspace.cache import cache_key, content_hash
from velaria.workspace.context import EXECUTION_CONTEXT_SCHEMA, ExecutionContext, capture_context, \
    context_from_arrow, context_to_arrow, read_context, write_context
from velaria.workspace.index import ArtifactIndex, RunDeleteConflictError, register_index_views


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VELARIA_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _context(**overrides) -> ExecutionContext:
    base = dict(recorded_at=dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc),
                executor_type="local-subprocess", python_version="3.11.7", velaria_version="0.1.0",
                engine="auto", backend="avx512", runtime_mode="embedded", code_version="sha256:ab",
                run_id="20260102T030405Z_0123abcd", executor_info={"pid": "1", "timeout_ms": "none"},
                git_commit="f" * 40, git_dirty=True, git_untracked=False, git_source="package",
                extra_info={})
    base.update(overrides)
    return ExecutionContext(**base)


# ---------------------------------------------------------------------------- execution context
def test_context_parquet_round_trip_is_exact(tmp_path):
    ctx = _context()
    path = tmp_path / "ctx.parquet"
    write_context(path, ctx)
    stored = pq.read_table(path)
    assert stored.schema.equals(EXECUTION_CONTEXT_SCHEMA)
    assert pa.types.is_map(stored.schema.field("executor_info").type)
    assert pa.types.is_map(stored.schema.field("extra_info").type)  # empty {} keeps the declared type
    assert stored.schema.field("recorded_at").type == pa.timestamp("us", tz="UTC")
    back = read_context(path)
    assert back == ctx
    assert back.recorded_at.utcoffset() == dt.timedelta(0)
    assert back.extra_info == {} and back.executor_info == {"pid": "1", "timeout_ms": "none"}


_text = st.text(min_size=0, max_size=8)
_maps = st.dictionaries(_text, _text, max_size=4)


@settings(max_examples=60, deadline=None)
@given(info=_maps, extra=_maps, commit=st.none() | _text, dirty=st.none() | st.booleans(),
       micros=st.integers(0, 10**6 - 1), seconds=st.integers(0, 4_000_000_000))
def test_context_round_trip_property(tmp_path_factory, info, extra, commit, dirty, micros, seconds):
    when = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(microsecond=micros)
    ctx = _context(executor_info=info, extra_info=extra, git_commit=commit, git_dirty=dirty, recorded_at=when)
    path = tmp_path_factory.mktemp("ctx") / "c.parquet"
    write_context(path, ctx)
    assert pq.read_table(path).schema.equals(EXECUTION_CONTEXT_SCHEMA)
    assert read_context(path) == ctx


def test_context_from_arrow_rejects_other_schema():
    table = context_to_arrow([_context()]).drop_columns(["extra_info"])
    with pytest.raises(ValueError, match="declared schema"):
        context_from_arrow(table)


def test_capture_context_describes_this_process():
    ctx = capture_context(run_id="r", engine="reference", extra_info={"k": 1})
    assert ctx.engine == "reference" and ctx.backend == "python"
    assert ctx.python_version.count(".") == 2
    assert ctx.code_version.startswith("sha256:") and ctx.extra_info == {"k": "1"}
    assert ctx.executor_info["pid"] == str(os.getpid())
    # this checkout is a git work tree: the package's repository is found first
    assert ctx.git_source == "package" and len(ctx.git_commit) == 40


def test_git_info_falls_back_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(ctxmod, "_source_roots", lambda: [tmp_path / "not-a-repo"])
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    info = ctxmod.git_info(cwd=repo)
    assert info["git_source"] == "cwd" and info["git_dirty"] is False and info["git_untracked"] is False
    (repo / "new.txt").write_text("x")
    assert ctxmod.git_info(cwd=repo)["git_untracked"] is True
    assert ctxmod.git_info(cwd=tmp_path / "not-a-repo")["git_commit"] is None


def test_code_version_changes_with_any_source_edit(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text("ignored")
    v1 = ctxmod.code_version([tmp_path / "pkg"])
    (tmp_path / "pkg" / "notes.txt").write_text("still ignored")
    assert ctxmod.code_version([tmp_path / "pkg"]) == v1
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert ctxmod.code_version([tmp_path / "pkg"]) != v1


# ---------------------------------------------------------------------------- cache key
def test_cache_key_changes_with_input_content_and_code(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    args = {"query": "SELECT a FROM t", "output_path": "/x/1.parquet"}
    k1 = cache_key("file-sql", args, [str(data)], "sha256:code1")["cache_key"]
    assert cache_key("file-sql", {**args, "output_path": "/y.parquet"}, [str(data)], "sha256:code1")["cache_key"] == k1
    assert cache_key("file-sql", args, [str(data)], "sha256:code2")["cache_key"] != k1
    assert cache_key("file-sql", {**args, "query": "SELECT 1"}, [str(data)], "sha256:code1")["cache_key"] != k1
    data.write_text("a\n2\n")  # same size, same name, other bytes
    assert cache_key("file-sql", args, [str(data)], "sha256:code1")["cache_key"] != k1


def test_content_hash_of_directory_sees_names_and_bytes(tmp_path):
    (tmp_path / "a.csv").write_text("1")
    h = content_hash(tmp_path)
    (tmp_path / "a.csv").rename(tmp_path / "b.csv")
    assert content_hash(tmp_path) != h


# ---------------------------------------------------------------------------- index
def _new_run(status="succeeded", **kw):
    run_id, _ = run_store.create_run("file-sql", {"query": "q"}, "0.1.0", **kw)
    record = run_store.finalize_run(run_id, status) if status != "running" else run_store.read_run(run_id)
    return ArtifactIndex().upsert_run(record, _context(run_id=run_id))


def test_index_is_queryable_with_velaria_sql():
    import velaria
    _new_run(run_name="a", tags=["x", "y"])
    _new_run(status="failed")
    s = velaria.Session()
    register_index_views(s)
    rows = s.sql("SELECT status, COUNT(*) AS n FROM runs GROUP BY status ORDER BY status").to_rows()
    assert rows["rows"] == [["failed", 1], ["succeeded", 1]]
    schema = s.sql("SELECT * FROM runs").schema
    assert schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_map(schema.field("executor_info").type)
    assert s.sql("SELECT engine, backend FROM runs WHERE run_name = 'a'").to_rows()["rows"] == [["auto", "avx512"]]


def test_list_runs_filters():
    a = _new_run(run_name="Nightly sales", tags=["cn", "slow"])
    _new_run(status="failed")
    index = ArtifactIndex()
    assert [r["run_id"] for r in index.list_runs(tag="cn")] == [a["run_id"]]
    assert [r["run_id"] for r in index.list_runs(query="NIGHTLY")] == [a["run_id"]]
    assert len(index.list_runs(status="failed")) == 1 and len(index.list_runs(limit=1)) == 1


_WRITER = textwrap.dedent("""
    import sys
    from velaria.workspace.index import ArtifactIndex
    index = ArtifactIndex()
    for i in range(int(sys.argv[2])):
        index.upsert_run({"run_id": f"{sys.argv[1]}-{i}", "created_at": "2026-01-01T00:00:00Z",
                          "status": "succeeded", "action": "file-sql", "run_dir": "/nowhere"})
""")


def test_concurrent_processes_never_lose_an_index_entry(home):
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, f"p{w}", "8"], env={**os.environ})
             for w in range(6)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    ids = {r["run_id"] for r in ArtifactIndex().list_runs(limit=1000)}
    assert ids == {f"p{w}-{i}" for w in range(6) for i in range(8)}
    assert pq.read_table(home / "index" / "runs.parquet").num_rows == 48
    assert not [p for p in (home / "index").iterdir() if p.name.endswith(".tmp")]


def test_delete_refuses_running_runs_and_cleanup_keeps_newest():
    running = _new_run(status="running")
    done = [_new_run() for _ in range(3)]
    index = ArtifactIndex()
    with pytest.raises(RunDeleteConflictError):
        index.delete_run(running["run_id"])
    out = index.cleanup_runs(keep_last_n=1, delete_files=True)
    newest = done[-1]      # runs created in the same second keep their creation order
    kept = {r["run_id"] for r in index.list_runs()}
    assert newest["run_id"] in kept and running["run_id"] in kept and len(kept) == 2
    assert len(out["deleted_run_ids"]) == 2 and len(out["deleted_run_dirs"]) == 2
    assert all(not os.path.exists(d) for d in out["deleted_run_dirs"])
    assert os.path.isdir(running["run_dir"])
    assert index.cleanup_runs() == {"deleted_run_ids": [], "deleted_run_dirs": [], "backend": "parquet"}


def test_cleanup_never_follows_a_link_out_of_home(tmp_path, home):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    run = _new_run()
    import shutil
    shutil.rmtree(run["run_dir"])
    os.symlink(outside, run["run_dir"])  # a run directory replaced by a link to elsewhere
    out = ArtifactIndex().cleanup_runs(keep_last_n=0, delete_files=True)
    assert out["deleted_run_ids"] == [run["run_id"]]
    assert (outside / "keep.txt").read_text() == "keep"
    assert not os.path.lexists(run["run_dir"])


def test_run_store_rejects_path_like_run_ids():
    for bad in ("../../etc", "x", "20260101T000000Z_zzzzzzzz/.."):
        with pytest.raises(ValueError, match="not a run id"):
            run_store.run_dir(bad)


def test_run_json_is_upstream_shaped():
    run_id, run_dir = run_store.create_run("file-sql", {"a": 1}, "0.1.0", "n", "d", ["t"])
    record = json.loads((run_dir / "run.json").read_text())
    assert set(record) == {"run_id", "created_at", "action", "cli_args", "velaria_version", "run_dir", "status",
                           "finished_at", "run_name", "description", "tags", "error", "details"}
    assert record["status"] == "running" and record["created_at"].endswith("Z")
    assert sorted(p.name for p in run_dir.iterdir()) == ["artifacts", "progress.jsonl", "run.json", "stderr.log",
                                                         "stdout.log"]
    run_store.append_progress_snapshot(run_id, '{"a": 1}\n\n')
    assert (run_dir / "progress.jsonl").read_text() == '{"a": 1}\n'
    assert run_store.update_run(run_id, run_name=None, description="e")["run_name"] == "n"
