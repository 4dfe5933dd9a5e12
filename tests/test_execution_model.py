"""The execution model: operators with a lifecycle, a physical plan recording every decision,
explain rendered from that record, and the accelerated paths that really ran."""
from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from velaria import Session, accel
from velaria.errors import ExecutionError
from velaria.exec.driver import run_table, walk_operators
from velaria.exec.operators import AggregateOperator, ExecContext, Operator
from velaria.plan.optimize import prune
from velaria.plan.physical import build_physical

needs_accel = pytest.mark.skipif(not accel.batch_available(), reason="accelerated batch kernels unavailable")


def _session(engine="reference"):
    s = Session(engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({
        "k": [1, 2, 1, 3, 2, 1], "s": ["a", "b", "a", "c", "b", "a"], "v": [1, 2, 3, 4, 5, 6],
        "f": [0.5, 1.5, None, 2.0, 3.0, 1.0]})))
    return s


def _strategy(text: str) -> dict:
    lines = text.splitlines()
    out = {}
    for line in lines[lines.index("strategy") + 1:]:
        key, _, value = line.partition("=")
        out.setdefault(key, value)
    return out


# ----------------------------------------------------------------------- recorded paths

@needs_accel
@pytest.mark.parametrize("sql, planned, ran, impl", [
    ("SELECT k, SUM(v) FROM t GROUP BY k", ("dense-c", "dense-numpy"), ("dense-c", "dense-numpy"), "dense"),
    ("SELECT s, COUNT(*) FROM t GROUP BY s", ("arrow-hash",), ("arrow-hash",), "hash-ref"),
    ("SELECT k, s, MAX(f) FROM t GROUP BY k, s", ("packed-hash",), ("packed-hash",), "hash-packed"),
    ("SELECT SUM(v), AVG(f) FROM t", ("global",), ("global",), "hash-fixed"),
    # a DISTINCT aggregate beside a plain one keeps its value sets in the reference aggregator
    # (COUNT(DISTINCT v) alone becomes two plain aggregates: velaria.plan.distinct_agg)
    ("SELECT k, COUNT(DISTINCT v), SUM(v) FROM t GROUP BY k", ("reference",), ("reference",), "hash-ref"),
])
def test_accelerated_aggregate_records_the_path_that_ran(sql, planned, ran, impl):
    s = _session("accel")
    before = _strategy(s.explain_sql(sql))
    assert before["aggregate_path"] in planned
    assert before["selected_impl"] == impl
    df = s.sql(sql)
    df.to_arrow()
    step = next(st for st in df._physical_plan().steps if st.kind == "Aggregate")
    assert step.path in planned and step.ran_path in ran
    assert f"path={step.ran_path}" in df.explain()


@needs_accel
def test_integer_key_explain_says_dense_scalar_c_not_simd_hash():
    text = _session("accel").explain_sql("SELECT k, SUM(v) FROM t GROUP BY k")
    st = _strategy(text)
    assert st["selected_impl"] == "dense"
    assert st["simd_backend"] in ("scalar", "numpy")
    assert "dense lookup table" in st["reason"]
    assert "keys are hashed" not in text


@needs_accel
def test_a_silent_delegation_to_the_reference_would_be_seen(monkeypatch):
    """If the accelerated aggregate handed everything to its reference twin, the recorded path
    says so (and the path test above would fail): explain cannot claim a fast path that did
    not run."""
    from velaria.accel import aggregate as acc
    monkeypatch.setattr(acc, "_hashable", lambda t: False)
    s = _session("accel")
    df = s.sql("SELECT k, SUM(v) FROM t GROUP BY k")
    df.to_arrow()
    step = next(st for st in df._physical_plan().steps if st.kind == "Aggregate")
    assert step.ran_path == "reference"
    assert "path=reference" in df.explain()


def test_reference_engine_records_reference_paths():
    s = _session("reference")
    df = s.sql("SELECT k, SUM(v) FROM t GROUP BY k")
    df.to_arrow()
    step = next(st for st in df._physical_plan().steps if st.kind == "Aggregate")
    assert step.path == step.ran_path == "reference"
    assert _strategy(s.explain_sql("SELECT k, SUM(v) FROM t GROUP BY k"))["selected_impl"] == "hash-ref"


# ----------------------------------------------------------------------- explain defects

def test_hybrid_explain_is_repeatable(tmp_path):
    s = Session("reference")
    s.create_temp_view("d", s.create_dataframe_from_arrow(pa.table({
        "id": [1, 2, 3], "emb": pa.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], type=pa.list_(pa.float32(), 2))})))
    sql = "SELECT id FROM d WHERE id > 1 HYBRID SEARCH emb QUERY '[1 0]' TOP_K 2"
    texts = [s.explain_sql(sql) for _ in range(3)]
    assert texts[0] == texts[1] == texts[2]
    df = s.sql(sql)
    trees = [df.explain() for _ in range(3)]
    assert trees[0] == trees[1] == trees[2]
    assert df.to_rows()["schema"][0] == "id"


def test_hybrid_filter_execution_names_what_really_happened(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,name,emb\n1,a,"[1 0]"\n2,b,"[0 1]"\n3,c,"[1 1]"\n')
    s = Session("reference")
    s.sql(f"CREATE TABLE raw USING csv OPTIONS(path: '{path}')")
    s.create_temp_view("pushed", s.sql("SELECT * FROM raw WHERE id > 1"))
    s.create_temp_view("not_pushed", s.sql("SELECT * FROM raw WHERE name LIKE 'b%'"))
    assert s._hybrid_filter_execution("pushed") == "source-pushdown"
    assert s._hybrid_filter_execution("not_pushed") == "post-load-filter"


# ----------------------------------------------------------------------- lifecycle

class _Recorder(Operator):
    """A pass-through that records its lifecycle calls and can fail on demand."""

    def __init__(self, inner: Operator, log: list, fail_on: str | None = None):
        super().__init__(inner.node, [inner])
        self.log, self.fail_on = log, fail_on

    def open(self, ctx):
        super().open(ctx)
        self.log.append("open")

    def push(self, batch, port=0):
        self.log.append("push")
        if self.fail_on == "push":
            raise ExecutionError("boom in push")
        return [batch]

    def finish(self):
        self.log.append("finish")
        return []

    def close(self):
        self.log.append("close")


def _drive_with_recorder(fail_on):
    from velaria.exec import driver
    s = _session()
    physical = build_physical(prune(s.sql("SELECT k, v FROM t")._plan), s.kernels)
    log: list = []
    real = physical.instantiate
    physical.instantiate = lambda **kw: _Recorder(real(**kw), log, fail_on)
    ctx = ExecContext(s.kernels, 2)
    try:
        return driver.run_table(physical, ctx), log
    except ExecutionError as exc:
        return exc, log


def test_lifecycle_order_open_push_finish_close():
    table, log = _drive_with_recorder(None)
    assert table.num_rows == 6
    assert log[0] == "open" and log[-2:] == ["finish", "close"] and set(log[1:-2]) == {"push"}


def test_close_is_called_on_failure_and_the_error_names_the_operator():
    exc, log = _drive_with_recorder("push")
    assert isinstance(exc, ExecutionError) and "boom in push" in str(exc)
    assert log[-1] == "close" and "finish" not in log
    assert any("operator _Recorder" in note for note in getattr(exc, "__notes__", []))


def test_one_operator_per_plan_node_in_execution_order():
    s = _session()
    df = s.sql("SELECT k FROM t")
    physical = df._physical_plan()
    ops = walk_operators(physical.instantiate())
    assert [op.name for op in ops] == ["Scan", "Project"]


@pytest.mark.parametrize("engine", ["reference", pytest.param("accel", marks=needs_accel)])
def test_running_aggregate_emits_updated_groups_and_snapshots(engine):
    s = _session(engine)
    physical = build_physical(prune(s.sql("SELECT s, SUM(v) AS total FROM t GROUP BY s")._plan), s.kernels)
    agg_node = next(st.node for st in physical.steps if st.kind == "Aggregate")
    op = AggregateOperator(agg_node, mode="running")
    ctx = ExecContext(s.kernels)
    op.open(ctx)
    # the aggregate's input is (s, v) after pruning: feed it two micro-batches
    schema = agg_node.input.schema
    first = pa.RecordBatch.from_arrays([pa.array(["a", "b"]), pa.array([1, 2])], schema=schema)
    second = pa.RecordBatch.from_arrays([pa.array(["b", "c"]), pa.array([10, 20])], schema=schema)
    out1 = op.push(first)
    assert [list(r.values()) for r in pa.Table.from_batches(out1).to_pylist()] == [["a", 1], ["b", 2]]
    state = op.snapshot()
    op.close()
    restored = AggregateOperator(agg_node, mode="running")
    restored.open(ctx)
    restored.restore(state)
    out2 = restored.push(second)
    assert [list(r.values()) for r in pa.Table.from_batches(out2).to_pylist()] == [["b", 12], ["c", 20]]
    assert restored.finish() == []


def test_stateless_operator_refuses_a_snapshot():
    s = _session()
    physical = s.sql("SELECT k FROM t")._physical_plan()
    op = physical.instantiate()
    with pytest.raises(ValueError, match="stateless"):
        op.restore(pa.table({"x": [1]}))


def test_scan_operator_resumes_at_an_offset():
    s = _session()
    physical = s.sql("SELECT k FROM t")._physical_plan()
    scan = walk_operators(physical.instantiate())[0]
    scan.open(ExecContext(s.kernels, 4))
    scan.restore_offset(4)
    first = scan.next_batch()
    assert first.column(0).to_pylist() == [2, 1]
    assert scan.checkpoint() == 6 and scan.next_batch() is None
    scan.close()


def test_a_plan_runs_twice_unchanged():
    s = _session()
    df = s.sql("SELECT s, SUM(v) FROM t WHERE v > 1 GROUP BY s ORDER BY s")
    physical = df._physical_plan()
    ctx = ExecContext(s.kernels)
    a = run_table(physical, ctx)
    b = run_table(physical, ctx)
    assert a.equals(b)


# ----------------------------------------------------------------------- threads

def test_session_is_safe_for_concurrent_views_and_queries():
    s = _session()
    errors: list = []
    stop = threading.Event()
    frame = s.create_dataframe_from_arrow(pa.table({"x": [1, 2, 3]}))

    def writer(prefix):
        i = 0
        while not stop.is_set():
            try:
                s.create_temp_view(f"{prefix}{i % 50}", frame)
            except Exception as exc:  # noqa: BLE001 - any error is a failure here
                errors.append(exc)
            i += 1

    def reader():
        while not stop.is_set():
            try:
                assert s.sql("SELECT COUNT(*) FROM t").to_rows()["rows"] == [[6]]
                s.tables()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "ab"] + \
              [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    stop.wait(1.5)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


@needs_accel
def test_dense_path_that_leaves_for_hashing_is_reported():
    s = Session("accel")
    s.create_temp_view("w", s.create_dataframe_from_arrow(pa.table({"k": [1, 2, 10 ** 12], "v": [1, 2, 3]})))
    df = s.sql("SELECT k, SUM(v) FROM w GROUP BY k")
    assert df.to_rows()["rows"] == [[1, 1], [2, 2], [10 ** 12, 3]]
    step = next(st for st in df._physical_plan().steps if st.kind == "Aggregate")
    assert step.path in ("dense-c", "dense-numpy") and step.ran_path == "arrow-hash"
    assert "path=arrow-hash" in df.explain()


def test_concurrent_queries_leave_the_recursion_limit_as_it_was():
    import sys
    before = sys.getrecursionlimit()
    s = _session()

    def query():
        for _ in range(30):
            s.sql("SELECT k + 1 FROM t WHERE v > 1").to_arrow()
    threads = [threading.Thread(target=query) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.getrecursionlimit() == before
