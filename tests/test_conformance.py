"""The contract suite against velaria, and the mechanics of the harness itself.

* ``test_velaria_conforms`` runs every clause in-process against ``velaria`` and requires zero
  failures; ``test_velaria_conforms_cli`` does the same through ``python -m velaria.conformance``.
* The other tests run the harness against small fake targets: a deliberately broken one (a wrong
  answer, a missing API, a stale xfail entry) and a DuckDB-backed one.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from velaria.conformance import all_clauses, render, runner, slt

ROOT = Path(__file__).resolve().parents[1]


def _env(extra_path: Path | None = None) -> dict:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return env


# ------------------------------------------------------------------------------ against velaria

def test_velaria_conforms():
    report = runner.run("velaria", native=False)
    assert len(report.results) >= 100
    assert report.ok, report.format()


@pytest.mark.parametrize("kwargs", [{"engine": "reference"}, {"batch_rows": 1}, {"batch_rows": 2}],
                         ids=["engine=reference", "batch_rows=1", "batch_rows=2"])
def test_velaria_conforms_under_every_configuration(kwargs):
    """The answer must not depend on the engine or the batch size (STYLE.md, habit 9)."""
    report = runner.run("velaria", native=False, session_kwargs=kwargs)
    assert report.ok, report.format()


def test_velaria_conforms_cli():
    proc = subprocess.run([sys.executable, "-m", "velaria.conformance", "--target", "velaria"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "RESULT: OK" in proc.stdout, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0


def test_clause_ids_unique_and_well_formed():
    clauses = all_clauses()
    ids = [c.id for c in clauses]
    assert len(ids) == len(set(ids))
    for c in clauses:
        assert c.title, c.id
        assert c.id.count("-") >= 2 and c.id.split("-")[-1].isdigit(), c.id
    prefixes = {c.id.rsplit("-", 1)[0] for c in clauses}
    for family in ("api-to-rows", "arrow-roundtrip", "error-text", "sql-filter", "sql-agg", "sql-order",
                   "sql-join", "sql-union", "sql-dml", "sql-func", "sql-arith", "sql-select"):
        assert family in prefixes, family


# ------------------------------------------------------------------------------ render

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


def test_render_sort_modes():
    rows = [[2, "b"], [1, None], [10, "a"]]
    assert render.render_rows(rows, "nosort") == ["2 b", "1 NULL", "10 a"]
    assert render.render_rows(rows, "rowsort") == ["1 NULL", "10 a", "2 b"]
    assert render.render_rows(rows, "valuesort") == ["1", "10", "2", "NULL", "a", "b"]
    with pytest.raises(ValueError):
        render.render_rows(rows, "bogus")


def test_render_type_letters():
    assert render.check_type("I", 3) and not render.check_type("I", True) and not render.check_type("I", 3.0)
    assert render.check_type("R", 3.0) and not render.check_type("R", 3)
    assert render.check_type("B", False) and render.check_type("T", "x") and render.check_type("?", object())
    assert all(render.check_type(t, None) for t in "IRTBV?")


def test_slt_parse_errors_are_reported_with_line():
    with pytest.raises(slt.SltSyntaxError, match=r"x.slt:2: unknown record"):
        slt.parse("# clause: a-b-001 t\nbogus\n", "x.slt")
    with pytest.raises(slt.SltSyntaxError, match="----"):
        slt.parse("# clause: a-b-001 t\nquery I\nSELECT 1\n", "x.slt")


# ------------------------------------------------------------------------------ broken fake target

class _FakeFrame:
    def __init__(self, table):
        self._t = table

    def to_rows(self):
        cols = [c.to_pylist() for c in self._t.columns]
        # broken on purpose: rows are tuples
        return {"schema": list(self._t.column_names), "rows": [tuple(r) for r in zip(*cols)]}

    def to_arrow(self):
        return self._t


class _FakeSession:  # has no sql(), explain_sql() or count()
    def __init__(self, **kwargs):
        pass

    def create_dataframe_from_arrow(self, obj):
        import pyarrow as pa

        return _FakeFrame(obj if isinstance(obj, pa.Table) else pa.table(obj))

    def create_temp_view(self, name, df):
        pass


def _broken_module():
    mod = types.ModuleType("broken_target")
    mod.Session = _FakeSession
    return mod


def test_harness_reports_failures_missing_api_and_stale_xfail():
    xfail = {"api-to-rows-004": "expected to fail", "arrow-roundtrip-001": "stale on purpose",
             "no-such-clause-001": "unknown id"}
    report = runner.run(_broken_module(), xfail=xfail, native=False)
    by_id = {r.clause.id: r for r in report.results}
    # a missing API fails its own clause and the run goes on
    assert by_id["sql-filter-001"].outcome == "error: API missing (_FakeSession.sql)"
    assert by_id["api-count-001"].outcome.startswith("error: API missing")
    # wrong answers are FAIL with a repro
    assert by_id["api-to-rows-003"].outcome == "FAIL"
    assert "to_rows" in by_id["api-to-rows-003"].repro or "--clause" in by_id["api-to-rows-003"].repro
    # expected failure listed in the xfail data
    assert by_id["api-to-rows-004"].outcome == "xfail"
    # an xfail entry for a clause that passes is stale
    assert by_id["arrow-roundtrip-001"].outcome == runner.XPASS
    assert report.unknown_xfails == ["no-such-clause-001"]
    assert not report.ok
    text = report.format()
    assert "stale xfail entry: no-such-clause-001" in text
    assert "RESULT: FAILED" in text
    # diverges-by-design only when the target is native Velaria
    native = runner.run(_broken_module(), clause_prefix="api-session-001", native=True)
    assert [r.outcome for r in native.results] == ["diverges-by-design"]


def test_harness_reports_wrong_result_with_runnable_repro(tmp_path):
    # a target whose SQL always answers one row [[42]]: slt clauses fail with a repro script
    code = textwrap.dedent('''
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
    (tmp_path / "fortytwo.py").write_text(code)
    xfail = tmp_path / "fortytwo.xfail"
    xfail.write_text("# data, not code\nsql-filter-002   # known\nsql-nothing-*  # stale glob\n")
    proc = subprocess.run([sys.executable, "-m", "velaria.conformance", "--target", "fortytwo",
                           "--clause", "sql-filter-00", "--xfail", str(xfail)],
                          cwd=ROOT, capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "sql-filter-001" in out and "FAIL" in out
    assert "sql-filter-002" in out and "xfail" in out
    assert "stale xfail entry: sql-nothing-*" in out
    assert "import fortytwo as target" in out and "# expected (rowsort)" in out and "#   42" in out
    # the printed repro is runnable as is
    repro = out.split("repro:\n", 1)[1].split("\n\n", 1)[0]
    run = subprocess.run([sys.executable, "-c", repro], capture_output=True, text=True, env=_env(tmp_path),
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "42" in run.stdout


def test_cli_bad_target_exits_2():
    proc = subprocess.run([sys.executable, "-m", "velaria.conformance", "--target", "no_such_module_xyz"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "cannot import target" in proc.stderr


# ------------------------------------------------------------------------------ DuckDB target

def test_duckdb_target_passes_with_its_xfail_list():
    pytest.importorskip("duckdb")
    xfail = runner.read_xfail(ROOT / "conformance" / "xfail" / "duckdb.txt")
    report = runner.run("velaria.conformance.duckdb_target", xfail=xfail, native=False)
    # DuckDB's GROUP BY output order is hash order, not deterministic: an xfail entry whose
    # reason is that order can pass by chance, so such a stale entry is tolerated -- a FAIL is not.
    order_dependent = {cid for cid, why in xfail.items() if "order" in (why or "")}
    bad = [r for r in report.results
           if r.outcome == runner.FAIL or (r.outcome == runner.XPASS and r.clause.id not in order_dependent)]
    assert not bad and not report.unknown_xfails, report.format()
