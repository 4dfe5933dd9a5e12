"""Every SELECT of the SQL conformance corpus: what explain names is exactly what ran.

For each query, on both engines: the kernels the execution called are exactly the kernels
explain names (same set, same origins), the aggregate path explain plans is the one the
physical plan recorded, and after the run the frame's explain shows the path the kernel
reported.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from velaria import accel
from velaria.conformance import slt
from kernel_counting import counting_session

SLT_DIR = Path(__file__).resolve().parent.parent / "conformance" / "slt"
ENGINES = ["reference"] + (["auto"] if accel.batch_available() else [])


def _cases():
    for path in sorted(SLT_DIR.glob("*.slt")):
        setup, clauses = slt.parse(path.read_text(encoding="utf-8"), path.name)
        for clause in clauses:
            yield pytest.param(setup + clause.records, id=f"{path.stem}:{clause.id}")


def _kernels_line(text: str) -> dict[str, str]:
    line = next(l for l in text.splitlines() if l.startswith("kernels="))[len("kernels="):]
    return {} if line == "none" else dict(tok.split("=") for tok in line.split(","))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("records", list(_cases()))
def test_explain_names_exactly_what_ran(engine, records):
    s, called = counting_session(engine)
    checked = 0
    for rec in records:
        if rec.kind == "arrow":
            s.create_temp_view(rec.table, s.create_dataframe_from_arrow(slt._arrow_table(rec)))
            continue
        try:
            df = s.sql(rec.sql)
            if rec.kind == "statement" or not _is_select(rec.sql):
                df.to_arrow()
                continue
            named = _kernels_line(df.explain())
            called.clear()
            df.to_arrow()
        except RuntimeError:
            continue                      # error clauses are about messages, not plans
        assert set(called) == set(named), (rec.sql, sorted(set(called)), named)
        for name, origin in named.items():
            assert origin == s.kernels.origin(name), (rec.sql, name)
        physical = df._physical_plan()
        for step in physical.steps:
            if step.kind == "Aggregate":
                assert step.ran_path is not None, rec.sql
                assert f"path={step.ran_path}" in df.explain(), rec.sql
        checked += 1
    assert checked or not any(r.kind == "query" and r.expect_error is None and _is_select(r.sql) for r in records)


def _is_select(sql: str) -> bool:
    return sql.lstrip().upper().startswith(("SELECT", "WITH"))
