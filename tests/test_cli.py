"""The ``velaria`` command, run through its real entry points in subprocesses."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SCRIPT = shutil.which("velaria", path=str(Path(sys.executable).parent))


def _strict_json(text: str):
    def reject(token):
        raise AssertionError(f"invalid JSON token {token}")
    return json.loads(text, parse_constant=reject)


class Cli:
    def __init__(self, home: Path, cwd: Path):
        self.home, self.cwd = home, cwd

    def __call__(self, *args, module: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "velaria", *args] if module else [SCRIPT, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=self.cwd, timeout=120,
                           env={**os.environ, "VELARIA_HOME": str(self.home), "COLUMNS": "120", **(env or {})})
        assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
        return r

    def json(self, *args, code: int = 0, **kw) -> dict:
        r = self(*args, **kw)
        assert r.returncode == code, r.stdout + r.stderr
        return _strict_json(r.stdout)


@pytest.fixture
def cli(tmp_path) -> Cli:
    (tmp_path / "work").mkdir()
    return Cli(tmp_path / "home", tmp_path / "work")


@pytest.fixture
def sales(cli) -> Path:
    p = cli.cwd / "sales.csv"
    p.write_text("region,amount,name\neu,10,O'Brien\nus,5,x\neu,7,y\n")
    return p


@pytest.fixture
def docs(cli) -> Path:
    p = cli.cwd / "docs.parquet"
    vectors = [[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]
    pq.write_table(pa.table({
        "id": [1, 2, 3, 4],
        "author": ["O'Brien", "x", "O'Brien", "nosuchcat"],
        "v": pa.FixedSizeListArray.from_arrays(pa.array(sum(vectors, []), pa.float32()), 3)}), p)
    return p


# ---------------------------------------------------------------------------- help and entry points
def test_help_exits_zero_with_examples_and_no_markup(cli):
    r = cli("--help")
    assert r.returncode == 0 and r.stderr == ""
    assert "examples:" in r.stdout and "file-sql" in r.stdout and "``" not in r.stdout
    for cmd in (["file-sql"], ["vector-search"], ["stream-sql-once"], ["run"], ["run", "start"], ["artifacts"],
                ["sql"], ["explain"], ["probe"]):
        r = cli(*cmd, "--help")
        assert r.returncode == 0, cmd
        assert "``" not in r.stdout and "usage: velaria" in r.stdout


def test_console_script_and_module_agree(cli, sales):
    args = ("file-sql", "--input-path", str(sales), "--query", "SELECT COUNT(*) AS n FROM input_table")
    assert cli.json(*args, module=False) == cli.json(*args) == {
        "table": "input_table", "query": "SELECT COUNT(*) AS n FROM input_table", "input_type": "auto",
        "schema": ["n"], "rows": [{"n": 3}]}


def test_usage_errors_are_json(cli):
    doc = cli.json("file-sql", "--query", "SELECT 1", code=1)
    assert doc["error_type"] == "usage_error" and doc["phase"] == "argument_parse"
    assert "--csv/--input-path" in doc["error"]
    doc = cli.json("no-such-command", code=1)
    assert doc["error_type"] == "usage_error"


# ---------------------------------------------------------------------------- file-sql and sql
def test_file_sql_formats(cli, sales):
    q = "SELECT region, SUM(amount) AS total FROM input_table GROUP BY region"
    assert cli.json("file-sql", "--csv", str(sales), "--query", q)["rows"] == [
        {"region": "eu", "total": 17}, {"region": "us", "total": 5}]
    r = cli("file-sql", "--input-path", str(sales), "--query", q, "--format", "csv")
    assert r.stdout == "region,total\neu,17\nus,5\n"
    r = cli("file-sql", "--input-path", str(sales), "--query", q, "--format", "table")
    assert "region" in r.stdout and "17" in r.stdout and r.stdout.rstrip().endswith("2 rows")


def test_file_sql_errors_name_input_and_type(cli, sales):
    doc = cli.json("file-sql", "--input-path", "missing.csv", "--query", "SELECT 1", code=1)
    assert doc["error_type"] == "file_not_found" and doc["phase"] == "filesystem"
    assert doc["details"] == {"path": "missing.csv"} and "missing.csv" in doc["error"]
    doc = cli.json("file-sql", "--input-path", str(sales), "--query", "SELECT nope FROM input_table", code=1)
    assert (doc["error"], doc["error_type"], doc["phase"]) == ("failed to execute sql query", "column_not_found",
                                                               "sql_execute")
    assert doc["details"]["cause"] == "column not found: nope" and "region" in doc["details"]["hint"]
    doc = cli.json("file-sql", "--input-path", str(sales), "--query", "SELEC 1", code=1)
    assert doc["error_type"] == "parse_error"
    (cli.cwd / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    doc = cli.json("file-sql", "--input-path", "old.xls", "--query", "SELECT 1", code=1)
    assert ".xlsx" in doc["error"] and doc["error_type"] == "usage_error"


def test_file_sql_reads_xlsx_parquet_and_quoted_paths(cli, sales):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.append(["k", "v"])
    wb.active.append(["a", 2])
    wb.save(cli.cwd / "book.xlsx")
    assert cli.json("file-sql", "--input-path", "book.xlsx", "--query", "SELECT v FROM input_table")["rows"] == [
        {"v": 2}]
    odd = cli.cwd / "it's here.csv"
    shutil.copy(sales, odd)
    assert cli.json("file-sql", "--input-path", str(odd), "--query",
                    "SELECT COUNT(*) AS n FROM input_table")["rows"] == [{"n": 3}]


def test_non_finite_values_print_as_strict_json(cli):
    pq.write_table(pa.table({"x": [1.0, math.nan, math.inf]}), cli.cwd / "f.parquet")
    doc = cli.json("file-sql", "--input-path", "f.parquet", "--query", "SELECT x FROM input_table")
    assert doc["rows"] == [{"x": 1.0}, {"x": None}, {"x": None}]


def test_sql_command_table_json_and_errors(cli, sales):
    r = cli("sql", "SELECT name FROM t WHERE amount > 6 ORDER BY name", "--table", f"t={sales}")
    assert r.returncode == 0 and "O'Brien" in r.stdout and "2 rows" in r.stdout
    doc = cli.json("sql", "SELECT COUNT(*) AS n FROM t", "--table", f"t={sales}", "--format", "json")
    assert doc == {"schema": ["n"], "rows": [{"n": 3}], "row_count": 1}
    r = cli("sql", "SELECT 1", "--table", "t=nowhere.csv")  # table format: a message on stderr
    assert r.returncode == 1 and r.stdout == "" and "input file not found: nowhere.csv" in r.stderr
    r = cli("sql", "SELECT nope FROM t", "--table", f"t={sales}", "--format", "table")
    assert r.returncode == 1 and r.stdout == ""
    assert "column not found: nope" in r.stderr and "column_not_found" in r.stderr
    doc = cli.json("sql", "SELECT 1", "--table", "broken", "--format", "json", code=1)
    assert "NAME=PATH" in doc["error"]


def test_explain_probe_and_conformance(cli, sales):
    r = cli("explain", "SELECT region FROM t WHERE amount > 1", "--table", f"t={sales}")
    assert r.returncode == 0 and "logical" in r.stdout and "physical" in r.stdout and "engine=" in r.stdout
    doc = cli.json("probe", str(sales))
    assert doc["ok"] is True and doc["probe"]["kind"] == "csv"
    r = cli("conformance", "--list")
    assert r.returncode == 0 and "vector-search-001" in r.stdout


# ---------------------------------------------------------------------------- vector-search
def _search(cli, docs, *extra, code=0):
    return cli.json("vector-search", "--input-path", str(docs), "--vector-column", "v", *extra, code=code)


def test_vector_search_negative_query_vector_as_separate_argument(cli, docs):
    doc = _search(cli, docs, "--query-vector", "-1,0,0", "--top-k", "1")
    assert doc["rows"] == [{"row_id": 3, "score": 0.0}]
    assert doc["metric"] == "cosine" and doc["top_k"] == 1 and "explain" in doc


def test_vector_search_filters_bind_values(cli, docs):
    base = ("--query-vector", "1,0,0", "--top-k", "10", "--where-column", "author", "--where-op", "=")
    doc = _search(cli, docs, *base, "--where-value", "O'Brien")
    assert sorted(r["id"] for r in doc["rows"]) == [1, 3] and doc["where_value"] == "O'Brien"
    # classic injections are plain strings that match nothing
    for attack in ("nosuchcat' OR 1=1 --", "nosuchcat\\' OR 1=1 --", "x'; DROP TABLE input_table; --"):
        assert _search(cli, docs, *base, "--where-value", attack)["rows"] == [], attack
    assert [r["id"] for r in _search(cli, docs, *base, "--where-value", "nosuchcat")["rows"]] == [4]
    # operators and columns are never pasted into SQL
    doc = _search(cli, docs, "--query-vector", "1,0,0", "--where-column", "author", "--where-op",
                  "= 'x' OR 1=1 OR author =", "--where-value", "x", code=1)
    assert doc["error_type"] == "usage_error" and "--where-op" in doc["error"]
    doc = _search(cli, docs, "--query-vector", "1,0,0", "--where-column", "author = author OR id",
                  "--where-op", "=", "--where-value", "1", code=1)
    assert doc["error_type"] == "usage_error" and "not a column" in doc["error"]
    doc = _search(cli, docs, "--query-vector", "1,0,0", "--where-column", "id", "--where-op", ">=",
                  "--where-value", "3 OR 1=1", code=1)
    assert "not a number" in doc["error"]
    assert [r["id"] for r in _search(cli, docs, "--query-vector", "1,0,0", "--where-column", "id", "--where-op",
                                     ">=", "--where-value", "3")["rows"]] == [3, 4]


def test_vector_search_sizes_and_thresholds(cli, docs):
    assert len(_search(cli, docs, "--query-vector", "1,0,0", "--top-k", "1000000")["rows"]) == 4
    doc = _search(cli, docs, "--query-vector", "1,0,0", "--top-k", "99999999999", code=1)
    assert doc["error_type"] == "usage_error" and "--top-k" in doc["error"]
    doc = _search(cli, docs, "--query-vector", "1,0,0", "--top-k", "0", code=1)
    assert doc["error_type"] == "usage_error"
    for bad in ("nan", "inf"):
        doc = _search(cli, docs, "--query-vector", "1,0,0", "--score-threshold", bad, code=1)
        assert "finite" in doc["error"]
    doc = _search(cli, docs, "--query-vector", "1,abc,0", code=1)
    assert doc["error"] == "--query-vector contains invalid numeric value"


def test_vector_table_abbreviates_vectors(cli):
    dim = 64
    pq.write_table(pa.table({"v": pa.FixedSizeListArray.from_arrays(
        pa.array([0.123456789] * dim * 2, pa.float32()), dim)}), cli.cwd / "wide.parquet")
    r = cli("vector-search", "--input-path", "wide.parquet", "--vector-column", "v", "--query-vector",
            ",".join(["-0.5"] * dim), "--metric", "dot", "--score-threshold", "-100", "--format", "table")
    assert r.returncode == 0, r.stdout
    assert "(64 values)" in r.stdout and max(len(line) for line in r.stdout.splitlines()) < 200


def test_table_tells_null_from_the_text_null_and_keeps_one_line_per_row(cli):
    (cli.cwd / "n.csv").write_text('k,s\n1,\n2,null\n3,"two\nlines"\n')
    r = cli("sql", "SELECT k, s FROM n ORDER BY k", "--table", "n=n.csv")
    assert r.returncode == 0, r.stdout + r.stderr
    body = [line for line in r.stdout.splitlines() if line[:1] in "│|"]
    assert len(body) == 3, r.stdout   # a line break in a cell does not start a new table line
    assert "NULL" in body[0] and "'null'" in body[1] and "two\\nlines" in body[2], r.stdout
    out = cli("sql", "SELECT k, s FROM n ORDER BY k", "--table", "n=n.csv", "--format", "csv")
    assert out.stdout == 'k,s\n1,\n2,null\n3,"two\nlines"\n'


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_a_reader_that_stops_early_is_not_an_error(cli, fmt):
    # `velaria sql ... | head -2`: the closed pipe ends the command quietly with status 1 (no
    # "Broken pipe" error on stderr), in every output format
    # more output than a pipe holds (up to 1 MiB), so a write meets the closed pipe
    pad = "x" * 60
    (cli.cwd / "big.csv").write_text("k,v\n" + "".join(f"{i},{pad}\n" for i in range(40000)))
    proc = subprocess.Popen([sys.executable, "-m", "velaria", "sql", "SELECT * FROM b", "--table",
                             "b=big.csv", "--max-rows", "40000", "--format", fmt],
                            cwd=cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            # unbuffered, a write the closed pipe cuts short is not an error
                            env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
                                 "VELARIA_HOME": str(cli.home)})
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and err == "", err


# ---------------------------------------------------------------------------- stream-sql-once
def test_stream_sql_once_reports_a_missing_runtime_or_runs(cli, sales):
    src = cli.cwd / "in"
    src.mkdir()
    shutil.copy(sales, src / "a.csv")
    r = cli("stream-sql-once", "--source-csv-dir", str(src), "--sink-schema", "region STRING, amount INT",
            "--query", "INSERT INTO output_sink SELECT region, amount FROM input_stream")
    doc = _strict_json(r.stdout)
    if r.returncode == 1:
        assert doc["error_type"] == "not_available"
        assert doc["error"].startswith("stream runtime not available in this build")
    else:
        assert len(doc["rows"]) == 3 and "progress" in doc
    doc = cli.json("stream-sql-once", "--source-csv-dir", str(src), "--sink-schema", "a INT", "--query",
                   "SELECT 1", code=1)
    assert doc["error"] == "--query for stream-sql-once must start with INSERT INTO"


# ---------------------------------------------------------------------------- runs
def _start(cli, *args, code=0):
    return cli.json("run", "start", *args, code=code)


def test_run_start_records_everything(cli, sales):
    doc = _start(cli, "--run-name", "daily", "--tag", " cn , slow-query , cn , ", "--tag", "analytics", "--tag",
                 "slow-query", "--", "file-sql", "--input-path", str(sales), "--query",
                 "SELECT region, SUM(amount) AS total FROM input_table GROUP BY region")
    assert doc["ok"] and doc["status"] == "succeeded" and doc["tags"] == ["cn", "slow-query", "analytics"]
    run_dir = Path(doc["run_dir"])
    assert run_dir.parent == cli.home.resolve() / "runs"
    assert doc["result"]["rows"] == [{"region": "eu", "total": 17}, {"region": "us", "total": 5}]
    [art] = doc["artifacts"]
    assert art["artifact_id"].startswith("artifact_") and art["format"] == "parquet" and art["row_count"] == 2
    assert art["tags_json"] == ["result", "file-sql"] and art["created_at"].endswith("Z")
    assert pq.read_table(run_dir / "artifacts" / "result.parquet").num_rows == 2
    explain = json.loads((run_dir / "explain.json").read_text())
    assert set(explain) == {"logical", "physical", "strategy"} and "Scan" in explain["logical"]
    progress = [json.loads(x) for x in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert progress[-1]["phase"] == "finished" and len(progress) >= 2
    ctx = pq.read_table(run_dir / "execution_context.parquet")
    assert pa.types.is_map(ctx.schema.field("executor_info").type)
    assert ctx.column("executor_type")[0].as_py() == "local-subprocess"
    inputs = json.loads((run_dir / "inputs.json").read_text())
    assert inputs["action"] == "file-sql" and inputs["run_name"] == "daily"

    run_id = doc["run_id"]
    show = cli.json("run", "show", "--run-id", run_id)
    assert show["run"]["status"] == "succeeded" and show["run"]["artifact_count"] == 1
    assert show["run"]["execution_context"]["python_version"].count(".") == 2
    status = cli.json("run", "status", "--run-id", run_id)
    assert status["latest_progress"]["phase"] == "finished" and status["artifact_count"] == 1
    result = cli.json("run", "result", "--run-id", run_id, "--limit", "1")
    assert result["preview"]["rows"] == [{"region": "eu", "total": 17}] and result["preview"]["truncated"] is True
    listed = cli.json("run", "list", "--tag", "analytics")["runs"]
    assert [r["run_id"] for r in listed] == [run_id] and listed[0]["duration_ms"] >= 0
    assert cli.json("run", "list", "--query", "DAILY")["runs"][0]["run_id"] == run_id
    arts = cli.json("artifacts", "list", "--run-id", run_id)["artifacts"]
    assert [a["artifact_id"] for a in arts] == [art["artifact_id"]]
    preview = cli.json("artifacts", "preview", "--artifact-id", art["artifact_id"])
    assert preview["preview"]["row_count"] == 2
    r = cli("run", "sql", "SELECT run_name, status, engine FROM runs")
    assert "daily" in r.stdout and "succeeded" in r.stdout


def test_run_failures_and_lookups(cli, sales):
    doc = _start(cli, "--", "file-sql", "--input-path", str(sales), "--query", "SELECT nope FROM input_table", code=1)
    assert doc["status"] == "failed" and doc["phase"] == "sql_execute" and doc["error_type"] == "column_not_found"
    record = json.loads((Path(doc["run_dir"]) / "run.json").read_text())
    assert record["status"] == "failed" and record["details"]["phase"] == "sql_execute"
    assert "Traceback" in (Path(doc["run_dir"]) / "stderr.log").read_text()  # kept for the record, not printed
    doc = _start(cli, "--timeout-ms", "1", "--", "file-sql", "--input-path", str(sales), "--query",
                 "SELECT 1 AS x", code=1)
    assert doc["status"] == "timed_out" and doc["error_type"] == "timeout" and doc["phase"] == "run_timeout"
    assert cli.json("run", "list", "--status", "timed_out")["runs"][0]["run_id"] == doc["run_id"]
    doc = cli.json("run", "show", "--run-id", "20990101T000000Z_00000000", code=1)
    assert (doc["error"], doc["error_type"], doc["phase"]) == ("run not found: 20990101T000000Z_00000000",
                                                               "file_not_found", "run_lookup")
    assert cli.json("run", "show", "--run-id", "../../etc", code=1)["phase"] == "run_lookup"
    doc = _start(cli, code=1)
    assert doc["error"] == "run start requires an action after '--' (example: velaria run start -- file-sql " \
                           "--input-path data.csv --query 'SELECT ...')"
    assert _start(cli, "--", "explode", code=1)["phase"] == "run_action_parse"
    doc = cli.json("artifacts", "preview", "--artifact-id", "artifact_nope", code=1)
    assert doc["phase"] == "artifact_lookup" and doc["error_type"] == "file_not_found"


def test_run_vector_search_and_diff(cli, docs, sales):
    a = _start(cli, "--", "vector-search", "--input-path", str(docs), "--vector-column", "v", "--query-vector",
               "-1,0,0", "--top-k", "2")
    b = _start(cli, "--", "vector-search", "--input-path", str(docs), "--vector-column", "v", "--query-vector",
               "1,0,0", "--top-k", "3", "--engine", "reference")
    assert [x["tags_json"] for x in a["artifacts"]] == [["result", "vector-search"], ["explain", "vector-search"]]
    show = cli.json("run", "show", "--run-id", a["run_id"])
    assert show["run"]["details"]["explain_artifact_id"] == a["artifacts"][1]["artifact_id"]
    diff = cli.json("run", "diff", "--run-id", a["run_id"], "--other-run-id", b["run_id"])
    comparison = diff["result_diff"]["comparison"]
    assert comparison["row_count"] == {"left": 2, "right": 3, "delta": 1}
    assert comparison["schema"]["equal"] is True and comparison["format"] is None
    assert comparison["rows_equal"] is False
    assert diff["context_diff"]["engine"] == {"left": "auto", "right": "reference"}
    assert diff["metadata_diff"] == {} or set(diff["metadata_diff"]) <= {"duration_ms"}
    hybrid = _start(cli, "--", "vector-search", "--input-path", str(docs), "--vector-column", "v",
                    "--query-vector", "-1,0,0", "--where-column", "author", "--where-op", "=", "--where-value",
                    "O'Brien", "--format", "json")
    assert sorted(r["id"] for r in hybrid["result"]["rows"]) == [1, 3]
    assert hybrid["artifacts"][0]["tags_json"] == ["result", "hybrid-search"]
    doc = cli.json("run", "diff", "--run-id", "20990101T000000Z_00000000", "--other-run-id", "x", code=1)
    assert doc["run_id"] == "20990101T000000Z_00000000"


def test_result_cache_never_returns_a_stale_result(cli, sales):
    args = ("--cache", "--", "file-sql", "--input-path", str(sales), "--query",
            "SELECT SUM(amount) AS total FROM input_table")
    first = _start(cli, *args)
    second = _start(cli, *args)
    assert first["cache"]["hit"] is False and second["cache"]["hit"] is True
    assert second["cache"]["from_run_id"] == first["run_id"] and second["result"] == first["result"]
    assert Path(second["artifacts"][0]["uri"][len("file://"):]).parent == Path(second["run_dir"]) / "artifacts"
    sales.write_text(sales.read_text().replace("eu,10", "eu,11"))
    third = _start(cli, *args)
    assert third["cache"]["hit"] is False and third["result"]["rows"] == [{"total": 23}]
    changed_query = _start(cli, "--cache", "--", "file-sql", "--input-path", str(sales), "--query",
                           "SELECT MAX(amount) AS m FROM input_table")
    assert changed_query["cache"]["hit"] is False


def test_concurrent_run_starts_all_land_in_the_index(cli, sales):
    env = {**os.environ, "VELARIA_HOME": str(cli.home)}
    cmd = [sys.executable, "-m", "velaria", "run", "start", "--", "file-sql", "--input-path", str(sales),
           "--query", "SELECT COUNT(*) AS n FROM input_table"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    outs = [p.communicate(timeout=180) for p in procs]
    ids = {json.loads(o)["run_id"] for o, _ in outs}
    assert len(ids) == 4
    runs = cli.json("run", "list")["runs"]
    assert {r["run_id"] for r in runs} == ids and all(r["status"] == "succeeded" for r in runs)
    assert all(r["artifact_count"] == 1 for r in runs)


def test_cleanup_removes_only_what_it_reports(cli, sales, tmp_path):
    outside = tmp_path / "mine.parquet"
    kept = _start(cli, "--", "file-sql", "--input-path", str(sales), "--query", "SELECT 1 AS x",
                  "--output-path", str(outside))
    newest = _start(cli, "--", "file-sql", "--input-path", str(sales), "--query", "SELECT 2 AS x")
    doc = cli.json("run", "cleanup", "--keep-last", "1", "--delete-files")
    assert doc == {"deleted_run_ids": [kept["run_id"]], "deleted_run_dirs": [kept["run_dir"]], "backend": "parquet",
                   "ok": True}
    assert outside.exists() and sales.exists()  # files outside VELARIA_HOME are never touched
    assert not Path(kept["run_dir"]).exists() and Path(newest["run_dir"]).exists()
    assert [r["run_id"] for r in cli.json("run", "list")["runs"]] == [newest["run_id"]]
    assert cli.json("run", "cleanup")["deleted_run_ids"] == []


def test_progress_shows_only_on_a_terminal(cli, sales):
    args = [sys.executable, "-m", "velaria", "run", "start", "--", "file-sql", "--input-path", str(sales),
            "--query", "SELECT COUNT(*) AS n FROM input_table"]
    env = {**os.environ, "VELARIA_HOME": str(cli.home)}
    piped = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert piped.returncode == 0 and piped.stderr == ""  # scripts see no progress output
    pty = pytest.importorskip("pty")
    import select
    master, slave = pty.openpty()
    seen = b""
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, text=True, env=env)
        os.close(slave)
        while True:  # drain the terminal while the command runs, so it never blocks on a full buffer
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal is closed once the command is gone
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    assert proc.returncode == 0 and json.loads(out)["status"] == "succeeded"
    assert b"run 20" in seen  # the spinner line names the run and its elapsed time


def test_result_cache_misses_after_a_code_change(cli, sales, tmp_path):
    import velaria
    copy = tmp_path / "pkg"
    shutil.copytree(Path(velaria.__file__).parent, copy / "velaria", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(copy)}
    args = ("run", "start", "--cache", "--", "file-sql", "--input-path", str(sales), "--query",
            "SELECT COUNT(*) AS n FROM input_table")
    first = cli.json(*args, env=env)
    assert cli.json(*args, env=env)["cache"]["hit"] is True
    with open(copy / "velaria" / "render.py", "a") as f:  # any source edit is a new code version
        f.write("\n# edited\n")
    after = cli.json(*args, env=env)
    assert after["cache"]["hit"] is False and after["cache"]["cache_key"] != first["cache"]["cache_key"]
    versions = {cli.json("run", "show", "--run-id", r["run_id"], env=env)["run"]["execution_context"]["code_version"]
                for r in (first, after)}
    assert len(versions) == 2
