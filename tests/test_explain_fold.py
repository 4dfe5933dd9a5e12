"""explain names ``filter_fold`` exactly where the aggregate operator really folds its Filter.

The kernels line of explain comes from the plan record; the operators decide with the same
function (``filter_kernel``). A runtime-mode plan cut at a keyless aggregate builds the
partial aggregates apart from the Filter their partition tasks run, so nothing folds there.
"""
from __future__ import annotations

import pyarrow as pa
import pytest

import velaria
from velaria.plan import logical as L
from velaria.plan.physical import filter_kernel
from velaria.runtime.stages import cut_plan, make_tasks, run_task

from kernel_counting import counting_session

SQL = "SELECT SUM(a * b) AS x, COUNT(*) AS n, AVG(a) AS m FROM t WHERE k > 2"


def _table(n=1000):
    return pa.table({"k": [i % 7 for i in range(n)], "a": [float(i) for i in range(n)],
                     "b": [0.25 * (i % 4) for i in range(n)]})


def _kernels_line(df) -> str:
    return next(line for line in df.explain().splitlines() if line.startswith("kernels="))


def _expected():
    rows = [r for r in _table().to_pylist() if r["k"] > 2]
    return [[sum(r["a"] * r["b"] for r in rows), len(rows), sum(r["a"] for r in rows) / len(rows)]]


def test_fused_plan_names_filter_fold_and_the_fold_runs():
    s, called = counting_session("auto")
    s.create_temp_view("t", s.create_dataframe_from_arrow(_table()))
    df = s.sql(SQL)
    line = _kernels_line(df)
    assert "filter_fold=" in line and "evaluate=" not in line   # the fold multiplies a * b itself
    assert df.to_rows()["rows"][0] == pytest.approx(_expected()[0])
    assert "filter_fold" in called and "filter_batch" not in called and "evaluate" not in called


@pytest.fixture(scope="module")
def single_node():
    s = velaria.Session(runtime_mode="single-node", parallelism=2)
    s.create_temp_view("t", s.create_dataframe_from_arrow(_table()))
    yield s
    s.runtime.close()


def test_runtime_stage_built_apart_names_no_fold_and_result_is_unchanged(single_node):
    df = single_node.sql(SQL)
    line = _kernels_line(df)
    assert "filter_fold" not in line
    assert "filter_batch=" in line and "evaluate=" in line       # the product is evaluated per row
    assert "exchange=partial-aggregate+merge" in df.explain()
    assert df.to_rows()["rows"][0] == pytest.approx(_expected()[0])
    assert "filter_fold" not in _kernels_line(df)                 # still after the run


def test_partition_tasks_run_the_filter_and_do_not_fold(monkeypatch):
    """The partition task a worker runs, run here with counting kernels: the Filter
    compacts and the aggregate, built apart from it, never calls filter_fold."""
    s, called = counting_session("auto")
    import velaria.runtime.stages as stages
    monkeypatch.setattr(stages, "_kernels", lambda engine: s.kernels)
    s.create_temp_view("t", s.create_dataframe_from_arrow(_table()))
    cut = cut_plan(s.sql(SQL)._physical_plan().root, 2)
    assert isinstance(cut.exchange, L.Aggregate) and cut.partitions is not None
    for task in make_tasks(cut, "auto", 4096, False):
        assert filter_kernel(task.aggregate, None) == "filter_batch"
        run_task(task)
    assert "filter_batch" in called and "filter_fold" not in called


def test_grouped_aggregate_built_apart_names_no_selection(single_node):
    """The same decision for a GROUP BY: its Filter hands a selection only to an aggregate
    built over it; partition tasks compact instead, and explain says so."""
    sql = "SELECT k, SUM(a) AS s FROM t WHERE a > 10 GROUP BY k ORDER BY k"
    df = single_node.sql(sql)
    line = _kernels_line(df)
    assert "filter_select" not in line and "filter_batch=" in line
    embedded = velaria.Session()
    embedded.create_temp_view("t", embedded.create_dataframe_from_arrow(_table()))
    assert "filter_select=" in _kernels_line(embedded.sql(sql))
    assert df.to_rows() == embedded.sql(sql).to_rows()
