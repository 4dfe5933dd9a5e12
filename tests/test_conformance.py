"""The contract suite against velaria, and the runner that makes it an oracle for any target.

* Our engine conforms under every configuration, through the isolated runner (its own
  interpreter lanes and a fresh child per clause) and through the command line with JSON and
  Markdown reports; every clause passes, the stream families included.
* The runner survives targets that abort (``os.abort()``) or hang, in fork and spawn isolation;
  it reaches a target named ``velaria`` that is not ours (``--target-path``) and runs another
  interpreter (``--python``).
* The classes are honest: ``diverges-by-design`` only for native's documented behaviour,
  ``extension`` only when the target rejects the feature, ``not-supported`` for missing API.
* Every docs/divergences.md row is named by a clause and every row a clause names exists.
* The deliberately broken target fails the clauses it breaks; the DuckDB target passes with
  its expected-failure list.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from velaria.conformance import Clause, all_clauses, render, runner, slt
from velaria.conformance.outcome import CRASHED, DIVERGES, EXTENSION, FAIL, NOT_SUPPORTED, PASS, TIMED_OUT, XPASS
from velaria.conformance.targets.broken import BROKEN_CLAUSES

ROOT = Path(__file__).resolve().parents[1]
STREAM = "stream-"


# a minimal target whose every query answers one row, id 42
_FORTYTWO_TARGET = textwrap.dedent('''
        import pyarrow as pa
        class DataFrame:
            def __init__(self, t): self._t = t
            def to_rows(self):
                return {"schema": list(self._t.column_names),
                        "rows": [list(r) for r in zip(*[c.to_pylist() for c in self._t.columns])]}
        class Session:
            def __init__(self, **kw): pass
            def create_dataframe_from_arrow(self, obj): return DataFrame(obj)
            def create_temp_view(self, name, df): pass
            def sql(self, text): return DataFrame(pa.table({"id": [42]}))
''')


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "velaria.conformance", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _assert_ours(report) -> None:
    """Our engine: every clause passes, the stream clauses included."""
    bad = [r for r in report.results if r.cls != PASS]
    assert not bad, report.format()
    assert any(r.clause.id.startswith(STREAM) for r in report.results)
    assert report.ok


# ------------------------------------------------------------------------------ against velaria

def test_velaria_conforms_cli_with_reports(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    proc = _cli("--target", "velaria", "--json", str(out_json), "--markdown", str(out_md))
    assert proc.returncode == 0 and "RESULT: OK" in proc.stdout, proc.stdout[-6000:] + proc.stderr[-2000:]
    data = json.loads(out_json.read_text())
    ids = [c.id for c in all_clauses()]
    assert [c["id"] for c in data["clauses"]] == ids
    assert data["ok"] is True and data["counts"] == {"pass": len(ids)}
    first = data["clauses"][0]
    assert set(first) >= {"id", "contract", "class", "detail", "repro", "divergence_row", "extension_row"}
    md = out_md.read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| `")]
    assert len(rows) == len(ids) and "| id | contract | class | detail |" in md


@pytest.mark.parametrize("kwargs", [{"engine": "reference"}, {"batch_rows": 1}, {"batch_rows": 2}],
                         ids=["engine=reference", "batch_rows=1", "batch_rows=2"])
def test_velaria_conforms_under_every_configuration(kwargs):
    """The answer must not depend on the engine or the batch size."""
    _assert_ours(runner.run("velaria", session_kwargs=kwargs))


def test_engine_shorthand_and_bad_arguments():
    proc = _cli("--engine", "accel", "--clause", "sql-agg-00")
    assert proc.returncode == 0 and "engine='accel'" in proc.stdout, proc.stdout + proc.stderr
    for args, needle in ((["--engine", "reference", "--target", "other"], "--engine selects our own engine"),
                         (["--timeout", "0"], "--timeout must be a positive number"),
                         (["--python", "/no/such/python"], "not an executable interpreter"),
                         (["--target-path", "/no/such/dir"], "is not a directory"),
                         (["--session-arg", "novalue"], "expects KEY=VALUE"),
                         # a typo must not run nothing and report OK
                         (["--clause", "no-such-clause"], "no clause id starts with 'no-such-clause'"),
                         (["--xfail", "/no/such/xfail.txt"], "--xfail /no/such/xfail.txt cannot be read"),
                         # checked before the run, not after it
                         (["--json", "/no/such/dir/r.json"], "--json /no/such/dir/r.json: the directory"),
                         (["--markdown", "/no/such/dir/r.md"], "--markdown /no/such/dir/r.md: the directory")):
        proc = _cli(*args)
        assert proc.returncode == 2 and needle in proc.stderr, (args, proc.stderr)
    proc = _cli("--target", "no_such_module_xyz")
    assert proc.returncode == 2 and "cannot import target 'no_such_module_xyz'" in proc.stderr


# ------------------------------------------------------------------------------ isolation

@pytest.mark.parametrize("isolation", ["fork", "spawn"])
def test_an_aborting_target_costs_one_clause_not_the_run(isolation):
    report = runner.run("velaria.conformance.targets.aborting", isolation=isolation, jobs=2,
                        clause_prefix=["sql-union-001", "sql-select-001", "stream-mode-001", "sql-union-002"])
    by_id = report.by_id()
    assert by_id["sql-select-001"].cls == PASS
    for cid in ("sql-union-001", "sql-union-002", "stream-mode-001"):
        r = by_id[cid]
        assert r.cls == CRASHED, report.format()
        assert "SIGABRT" in r.detail and "aborting-target:" in r.detail, r.detail  # the signal and the last output
    assert not report.ok


def test_a_hanging_target_times_out_and_the_run_goes_on():
    # The timeout leaves room for an ordinary clause on a loaded 2-core machine; the hanging
    # clause never returns, so it times out whatever the limit.
    proc = _cli("--target", "velaria.conformance.targets.hanging", "--clause", "sql-order-00", "--timeout", "8")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    classes = dict(re.findall(r"^(sql-order-\d+)\s.*?\s(pass|timed-out)\b", proc.stdout, re.M))
    assert classes["sql-order-008"] == TIMED_OUT and classes["sql-order-009"] == PASS, proc.stdout
    assert sum(c == PASS for c in classes.values()) == 8


def test_a_crash_or_hang_inside_a_group_reruns_the_rest_of_the_group():
    """Units are single clauses or a declared group; after a crash or a timeout the group's
    remaining clauses run on in a fresh child (driven here in-process through the worker)."""
    import time

    from velaria.conformance import _REGISTRY, Context, register, worker

    def ok(ctx):
        return None

    def abort(ctx):
        os.abort()

    def hang(ctx):
        time.sleep(60)

    clauses = [Clause("zz-group-001", "a", ok, group="g"), Clause("zz-alone-001", "b", ok),
               Clause("zz-group-002", "c", abort, group="g"), Clause("zz-group-003", "d", hang, group="g"),
               Clause("zz-group-004", "e", ok, group="g")]
    assert runner._units(clauses) == [["zz-group-001", "zz-group-002", "zz-group-003", "zz-group-004"],
                                      ["zz-alone-001"]]
    for c in clauses:
        register(c)
    try:
        got = []
        worker._run_unit([c.id for c in clauses if c.group], Context(types.ModuleType("t"), "t"),
                         {"timeout": 2.0}, got.append)
    finally:
        for c in clauses:
            _REGISTRY.pop(c.id, None)
    assert [(o.id, o.cls) for o in got] == [("zz-group-001", PASS), ("zz-group-002", CRASHED),
                                            ("zz-group-003", TIMED_OUT), ("zz-group-004", PASS)]
    assert "SIGABRT" in got[1].detail


def test_a_target_named_velaria_that_is_not_ours(tmp_path):
    """The suite reaches another package called ``velaria`` through --target-path: ours cannot
    shadow it (the suite runs under its own name)."""
    pkg = tmp_path / "velaria"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("OTHER_VELARIA = True\n" + _FORTYTWO_TARGET)
    report = runner.run("velaria", target_path=str(tmp_path), clause_prefix=["sql-filter-001", "api-count-001",
                                                                           "stream-mode-001"])
    assert Path(report.target_file).resolve() == (pkg / "__init__.py").resolve()
    by_id = report.by_id()
    repro = by_id["sql-filter-001"].repro
    assert by_id["sql-filter-001"].cls == FAIL and "import velaria as target" in repro
    assert "--target velaria --target-path %s --clause sql-filter-001" % tmp_path in repro
    assert by_id["api-count-001"].cls == NOT_SUPPORTED  # its DataFrame has no count()
    assert by_id["stream-mode-001"].cls == NOT_SUPPORTED


def test_another_interpreter_runs_the_target(tmp_path):
    """--python: the lanes run under the given interpreter (here a wrapper that leaves a mark)."""
    mark = tmp_path / "used"
    wrapper = tmp_path / "python"
    wrapper.write_text("#!/bin/sh\necho used >> '%s'\nexec '%s' \"$@\"\n" % (mark, sys.executable))
    wrapper.chmod(0o755)
    proc = _cli("--python", str(wrapper), "--clause", "sql-select-00")
    assert proc.returncode == 0 and "RESULT: OK" in proc.stdout, proc.stdout + proc.stderr
    assert mark.read_text().count("used") >= 1


# ------------------------------------------------------------------------------ classes

def _wrapping(name: str, rewrite) -> types.ModuleType:
    """A module whose Session is velaria's with ``sql`` results (or errors) changed by ``rewrite``."""
    import velaria

    class Session(velaria.Session):
        def sql(self, text, /):
            return rewrite(text, lambda: super(Session, self).sql(text))

    mod = types.ModuleType(name)
    mod.Session = Session
    return mod


class _Rows:
    def __init__(self, schema, rows):
        self._out = {"schema": schema, "rows": rows}

    def to_rows(self):
        return {"schema": list(self._out["schema"]), "rows": [list(r) for r in self._out["rows"]]}


def test_diverges_by_design_only_for_native_documented_behaviour():
    def native_count(text, run):  # native counts NULLs for COUNT(col)
        return _Rows(["cx", "cn", "cs"], [[5, 5, 5]]) if "COUNT(x) AS cx" in text else run()

    def other_count(text, run):  # neither the contract nor native
        return _Rows(["cx", "cn", "cs"], [[3, 3, 5]]) if "COUNT(x) AS cx" in text else run()

    r = runner.run(_wrapping("native_like", native_count), clause_prefix="sql-agg-002").results[0]
    assert r.cls == DIVERGES and "count-col" in r.detail, r.detail
    r = runner.run(_wrapping("other", other_count), clause_prefix="sql-agg-002").results[0]
    assert r.cls == FAIL and "native's documented behaviour does not match either" in r.detail, r.detail


def test_extension_only_when_the_target_rejects_the_feature():
    def rejects_offset(text, run):
        if "OFFSET" in text:
            raise RuntimeError("not supported in SQL v1: OFFSET")
        return run()

    def wrong_offset(text, run):
        return _Rows(["id"], [[99]]) if "OFFSET" in text else run()

    r = runner.run(_wrapping("no_offset", rejects_offset), clause_prefix="sql-order-010").results[0]
    assert r.cls == EXTENSION and "distinct-offset" in r.detail, r.detail
    r = runner.run(_wrapping("bad_offset", wrong_offset), clause_prefix="sql-order-010").results[0]
    assert r.cls == FAIL


def test_missing_api_is_not_supported_and_a_missing_extension_api_is_extension():
    import pyarrow as pa

    class Frame:
        def __init__(self, t):
            self._t = t

        def to_rows(self):
            return {"schema": list(self._t.column_names),
                    "rows": [list(r) for r in zip(*[c.to_pylist() for c in self._t.columns])]}

    class Bare:  # no sql(), no __arrow_c_stream__ on its frames
        def __init__(self, **_kw):
            pass

        def create_dataframe_from_arrow(self, obj):
            return Frame(obj if isinstance(obj, pa.Table) else pa.table(obj))

        def create_temp_view(self, name, df):
            pass

    mod = types.ModuleType("bare_target")
    mod.Session = Bare
    report = runner.run(mod, clause_prefix=["sql-filter-001", "arrow-export-002", "stream-window-001"])
    by_id = report.by_id()
    assert by_id["sql-filter-001"].cls == NOT_SUPPORTED and "Bare.sql" in by_id["sql-filter-001"].detail
    assert by_id["arrow-export-002"].cls == EXTENSION
    assert by_id["stream-window-001"].cls == NOT_SUPPORTED
    assert report.ok  # not-supported and extension do not fail a run


def test_the_broken_target_fails_the_clauses_it_breaks():
    report = runner.run("velaria.conformance.targets.broken", clause_prefix=list(BROKEN_CLAUSES) + ["sql-select-001"])
    by_id = report.by_id()
    for cid in BROKEN_CLAUSES:
        assert by_id[cid].cls == FAIL, (cid, by_id[cid].cls, by_id[cid].detail)
        assert by_id[cid].repro, cid
    assert not report.ok


def test_failure_has_a_runnable_repro_and_xfail_data_is_checked(tmp_path):
    (tmp_path / "fortytwo.py").write_text(_FORTYTWO_TARGET)
    xfail = tmp_path / "fortytwo.xfail"
    xfail.write_text("# data, not code\nsql-filter-002   # known\nsql-nothing-*  # stale glob\n"
                     "sql-filter-001-nope # unknown id\n")
    proc = _cli("--target", "fortytwo", "--target-path", str(tmp_path), "--clause", "sql-filter-00",
                "--xfail", str(xfail))
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert re.search(r"^sql-filter-001 .* fail$", out, re.M) and re.search(r"^sql-filter-002 .* xfail", out, re.M)
    assert "stale xfail entry: sql-nothing-*" in out and "stale xfail entry: sql-filter-001-nope" in out
    assert "import fortytwo as target" in out and "# expected (rowsort)" in out and "#   42" in out
    repro = out.split("repro:\n", 1)[1].split("\n\n", 1)[0]
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    ran = subprocess.run([sys.executable, "-c", repro], capture_output=True, text=True, env=env, timeout=60)
    assert ran.returncode == 0 and "42" in ran.stdout, ran.stderr


def test_xfail_entry_of_a_passing_clause_is_xpass():
    report = runner.run("velaria", clause_prefix="sql-select-001", xfail={"sql-select-001": "stale on purpose"})
    assert [r.cls for r in report.results] == [XPASS] and not report.ok


# ------------------------------------------------------------------------------ divergence rows

def _divergence_rows() -> set[str]:
    text = (ROOT / "docs" / "divergences.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M))


def test_divergence_rows_and_clauses_name_each_other():
    rows = _divergence_rows()
    named: dict[str, list[str]] = {}
    for c in all_clauses():
        for row in c.rows:
            named.setdefault(row, []).append(c.id)
    assert not set(named) - rows, "clauses name rows missing from docs/divergences.md: %s" % {
        r: named[r] for r in set(named) - rows}
    assert not rows - set(named), "docs/divergences.md rows no clause names: %s" % sorted(rows - set(named))


def test_divergence_and_extension_tags_are_where_they_belong():
    ids = {c.id: c for c in all_clauses()}
    for cid in ("sql-agg-002", "sql-agg-003", "sql-order-002", "sql-join-006", "api-session-001", "io-path-001",
                "vector-ties-001", "vector-error-001", "error-format-001"):
        assert ids[cid].diverges and not ids[cid].extension, cid
    for cid in ("sql-filter-015", "sql-join-005", "sql-join-009", "sql-agg-018", "sql-order-004", "sql-order-010",
                "arrow-export-002"):
        assert ids[cid].extension and not ids[cid].diverges, cid
    # clauses that used to mix a contract promise with an extension now keep to the promise
    for cid in ("sql-agg-007", "sql-agg-011", "sql-agg-016", "sql-order-003", "sql-order-007", "sql-filter-011",
                "sql-join-001", "sql-dml-007"):
        assert not ids[cid].rows, cid


# ------------------------------------------------------------------------------ ids, render, slt

def test_clause_ids_unique_and_well_formed():
    clauses = all_clauses()
    ids = [c.id for c in clauses]
    assert len(ids) == len(set(ids))
    for c in clauses:
        assert c.title, c.id
        assert c.id.count("-") >= 2 and c.id.split("-")[-1].isdigit(), c.id
    prefixes = {c.id.rsplit("-", 1)[0] for c in clauses}
    for family in ("api-to-rows", "arrow-roundtrip", "error-text", "sql-filter", "sql-agg", "sql-order",
                   "sql-join", "sql-union", "sql-dml", "sql-func", "sql-arith", "sql-select", "stream-progress",
                   "stream-snapshot", "stream-explain", "stream-window", "stream-mode", "stream-checkpoint",
                   "stream-lifecycle"):
        assert family in prefixes, family


def test_render_canonical_values():
    rv = render.render_value
    assert rv(None) == "NULL"
    assert rv(True) == "true" and rv(False) == "false"
    assert rv(-12) == "-12"
    assert rv(1.0) == "1.0"
    assert rv(0.1 + 0.2) == "0.3"
    assert rv(float("nan")) == "NaN"
    assert rv(float("inf")) == "Infinity" and rv(float("-inf")) == "-Infinity"
    assert rv(-0.0) == "-0.0" and rv(0.0) == "0.0"
    assert rv(1 / 3) == "0.333333333333"
    assert rv(1e20) == "1e+20"
    assert rv("") == "(empty)"
    assert rv([1.0, 0.5]) == "[1.0,0.5]"


def test_render_sort_modes_and_type_letters():
    rows = [[2, "b"], [1, None], [10, "a"]]
    assert render.render_rows(rows, "nosort") == ["2 b", "1 NULL", "10 a"]
    assert render.render_rows(rows, "rowsort") == ["1 NULL", "10 a", "2 b"]
    assert render.render_rows(rows, "valuesort") == ["1", "10", "2", "NULL", "a", "b"]
    with pytest.raises(ValueError):
        render.render_rows(rows, "bogus")
    assert render.check_type("I", 3) and not render.check_type("I", True) and not render.check_type("I", 3.0)
    assert render.check_type("R", 3.0) and not render.check_type("R", 3)
    assert all(render.check_type(t, None) for t in "IRTBV?")


def test_slt_syntax_errors_name_file_line_and_fix():
    cases = [
        ("# clause: a-b-001 t\nbogus\n", r"x.slt:2: unknown record"),
        ("# clause: a-b-001 t\nquery I\nSELECT 1\n", "----"),
        ("# clause: a-b-001 t\n# diverges: count-col\nquery I\nSELECT 1\n----\n1\n", "no '---- native' block"),
        ("# clause: a-b-001 t\nquery I\nSELECT 1\n----\n1\n---- native I\n2\n", "no '# diverges:' row"),
        ("# clause: a-b-001 t\n# diverges: Native does X\nquery I\nSELECT 1\n----\n1\n", "row ids"),
        ("# clause: a-b-001 t\n# diverges: r\nquery I\nSELECT 1\n----\n1\n---- native Q\n1\n", "type letter"),
    ]
    for text, needle in cases:
        with pytest.raises(slt.SltSyntaxError, match=needle):
            slt.parse(text, "x.slt")
    _setup, clauses = slt.parse("# clause: a-b-001 t\n# diverges: r\nquery error boom\nSELECT 1\n"
                                "---- native error\n", "x.slt")
    assert clauses[0].records[0].native.error == ""


# ------------------------------------------------------------------------------ DuckDB target

def test_duckdb_target_passes_with_its_xfail_list():
    pytest.importorskip("duckdb")
    xfail = runner.read_xfail(ROOT / "conformance" / "xfail" / "duckdb.txt")
    # the families it implements (it has no file readers, vector search or streams)
    report = runner.run("velaria.conformance.duckdb_target", xfail=xfail,
                        clause_prefix=["sql-", "error-", "api-", "arrow-"])
    # DuckDB's GROUP BY output order is hash order, not deterministic: an xfail entry whose
    # reason is that order can pass by chance, so such a stale entry is tolerated -- a fail is not.
    order_dependent = {cid for cid, why in xfail.items() if "order" in (why or "")}
    bad = [r for r in report.results
           if r.cls in (FAIL, CRASHED, TIMED_OUT) or (r.cls == XPASS and r.clause.id not in order_dependent)]
    assert not bad and not report.unknown_xfails, report.format()
    assert sum(r.cls == PASS for r in report.results) >= 90
