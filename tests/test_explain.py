"""``Session.explain_sql`` and ``DataFrame.explain()``: upstream's explain sections and line
shapes, engine and kernel naming, pushdown lines, and
that explain names exactly the kernels execution calls."""
from __future__ import annotations

import re

import pyarrow as pa
import pytest

from velaria import Session

from kernel_counting import counting_session


@pytest.fixture
def s():
    sess = Session("reference")
    sess.create_temp_view("t", sess.create_dataframe_from_arrow(pa.table({
        "id": [1, 2, 3, 4], "sym": ["a", "b", "a", None], "qty": [1, 2, 3, 4], "x": [0.5, 1.0, 2.0, None]})))
    sess.create_temp_view("u", sess.create_dataframe_from_arrow(pa.table({"sym": ["a", "b"], "sector": ["s1", "s2"]})))
    return sess


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line in ("frontend", "logical", "physical", "strategy"):
            current = line
            out[current] = []
        else:
            out[current].append(line)
    return out


def test_sections_in_order(s):
    text = s.explain_sql("SELECT id FROM t")
    lines = text.splitlines()
    heads = [l for l in lines if l in ("frontend", "logical", "physical", "strategy")]
    assert heads == ["frontend", "logical", "physical", "strategy"]
    assert lines[0] == "frontend"
    sec = sections(text)
    assert sec["frontend"] == ["name=pg_query", "dialect=velaria_sql_v1"]


def test_aggregate_query_logical_and_physical_lines(s):
    text = s.explain_sql("SELECT sym, SUM(qty) AS total FROM t WHERE id > 1 GROUP BY sym "
                         "HAVING total > 1 ORDER BY total DESC LIMIT 2")
    sec = sections(text)
    assert sec["logical"] == [
        "seed_columns=4",
        "1. Scan source=t",
        "2. Filter column=0 op=>",
        "3. Aggregate keys=1 aggs=1",
        sec["logical"][4],  # Having column=<name> op=>
        "5. Project columns=2",
        "6. OrderBy columns=1",
        "7. Limit value=2",
    ]
    assert re.fullmatch(r"4\. Having column=\S+ op=>", sec["logical"][4])
    assert sec["physical"] == [
        "1. SourceOnly barrier=true reason=source load",
        "2. FusedUnary barrier=false reason=single unary stage",
        "3. Aggregate barrier=true reason=aggregate barrier",
        "4. FusedUnary barrier=false reason=single unary stage",
        "5. FusedUnary barrier=false reason=fused in local chain",
        "6. FusedUnary barrier=true reason=single unary stage",
        "7. FusedUnary barrier=false reason=single unary stage",
    ]
    strat = sec["strategy"]
    assert strat[0] == "selected_impl=hash-ref"
    keys = [l.split("=", 1)[0] for l in strat]
    for k in ("simd_backend", "compiled_backends", "partial_layout", "runtime_shape", "key_count",
              "ordered_input", "partition_local", "fixed_width_keys", "packable_keys", "low_cardinality",
              "reason", "columnar_operator", "columnar_fallback_type", "columnar_reason",
              "columnar_input_row_count", "columnar_affected_columns", "engine", "backend", "kernels"):
        assert k in keys, k
    assert "key_count=1" in strat and "partial_layout=generic-table" in strat


def test_two_keys_layout_and_no_key_aggregate(s):
    strat = sections(s.explain_sql("SELECT sym, id, COUNT(*) FROM t GROUP BY sym, id"))["strategy"]
    assert "partial_layout=key-columnar" in strat
    strat = sections(s.explain_sql("SELECT COUNT(*) FROM t"))["strategy"]
    assert strat[0] == "selected_impl=hash-fixed"


def test_no_aggregate_strategy_block(s):
    strat = sections(s.explain_sql("SELECT id FROM t WHERE sym = 'a' OR id = 1"))["strategy"]
    assert strat[:7] == [
        "selected_impl=not-applicable",
        "reason=query does not contain GROUP BY aggregate planning",
        "columnar_operator=plan",
        "columnar_fallback_type=not-observed",
        "columnar_reason=query explain did not need a materialized aggregate input; runtime operators keep "
        "columnar cache when executed",
        "columnar_input_row_count=0",
        "columnar_affected_columns=all",
    ]


def test_predicate_filter_and_values_scan(s):
    log = sections(s.explain_sql("SELECT id FROM t WHERE sym = 'a' OR id = 1"))["logical"]
    assert "2. PredicateFilter" in log
    log = sections(s.explain_sql("SELECT 1, 'x'"))["logical"]
    assert log[:2] == ["seed_columns=1", "1. Scan source=__values__"]


def test_join_and_union_steps(s):
    text = s.explain_sql("SELECT t.id, u.sector FROM t JOIN u ON t.sym = u.sym")
    sec = sections(text)
    assert any(re.fullmatch(r"\d+\. Join left=sym right=sym", l) for l in sec["logical"])
    assert any(re.fullmatch(r"\d+\. Join barrier=true reason=first join chain", l) for l in sec["physical"])
    log = sections(s.explain_sql("SELECT id FROM t UNION SELECT qty FROM t"))["logical"]
    assert any(re.fullmatch(r"\d+\. Union distinct=true", l) for l in log)
    log = sections(s.explain_sql("SELECT id FROM t UNION ALL SELECT qty FROM t"))["logical"]
    assert any(re.fullmatch(r"\d+\. Union distinct=false", l) for l in log)


def test_engine_backend_kernels_lines(s):
    text = s.explain_sql("SELECT sym, COUNT(*) FROM t GROUP BY sym ORDER BY 2")
    lines = text.splitlines()
    assert "engine=reference" in lines
    assert "backend=python" in lines
    kern = [l for l in lines if l.startswith("kernels=")]
    assert len(kern) == 1
    assert "hash_aggregate=reference" in kern[0] and "sort_take=reference" in kern[0]


@pytest.fixture
def csv_session(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,sym,qty,px\n1,a,1,0.5\n2,b,2,1.0\n3,a,3,2.0\n4,,4,\n")
    sess = Session(engine="reference")
    sess.sql(f"CREATE TABLE f USING csv OPTIONS(path: '{path}')")
    return sess


def test_pushdown_lines_name_only_what_the_source_receives(s, csv_session):
    # a file source receives the conjuncts it can use
    text = csv_session.explain_sql("SELECT sym FROM f WHERE id > 1 AND qty <= 3")
    scan = [l for l in text.splitlines() if l.startswith("scan ")]
    assert scan == ["scan source=f kind=csv projected_columns=id,sym,qty pushed_filters=id>1,qty<=3"]
    tree = csv_session.sql("SELECT sym FROM f WHERE id > 1").explain()
    assert "columns=id,sym" in tree and "pushed_filters=id>1" in tree
    # OR is not pushed
    text = csv_session.explain_sql("SELECT sym FROM f WHERE id > 1 OR qty = 2")
    assert "pushed_filters=none" in text
    # an in-memory table takes no filters: explain does not claim a pushdown that never happens
    text = s.explain_sql("SELECT sym FROM t WHERE id > 1 AND qty <= 3")
    scan = [l for l in text.splitlines() if l.startswith("scan ")]
    assert scan == ["scan source=t kind=memory projected_columns=id,sym,qty pushed_filters=none"]


def test_explain_is_repeatable_and_does_not_change_the_plan(csv_session):
    s = csv_session
    df = s.sql("SELECT * FROM f WHERE id > 1")
    first = df.explain()
    assert df.explain() == first
    assert df.to_rows()["rows"] == [[2, "b", 2, 1.0], [3, "a", 3, 2.0], [4, None, 4, None]]
    assert df.explain() == first
    assert first.count("id>1") == 1
    sql = "SELECT * FROM f WHERE id > 1"
    assert s.explain_sql(sql) == s.explain_sql(sql)


def test_dataframe_explain_tree_shape(s):
    tree = s.sql("SELECT sym, COUNT(*) AS n FROM t WHERE id > 1 GROUP BY sym ORDER BY n LIMIT 1").explain()
    lines = tree.splitlines()
    heads = [l.strip() for l in lines if l.strip() in ("Limit", "OrderBy", "Select", "Aggregate", "Filter", "Source")]
    assert heads[0] == "Limit" and heads[-1] == "Source"
    assert heads.index("Aggregate") < heads.index("Filter")
    # indentation grows by 2 per level down the chain
    depth = {l.strip(): (len(l) - len(l.lstrip())) for l in lines if l.strip() in heads}
    assert depth["Limit"] == 0 and depth["Source"] > depth["Aggregate"] > depth["Limit"]
    assert any(l.strip() == "top_n=1" or l.strip().startswith("n=1") for l in lines)
    assert "engine=reference" in lines and any(l.startswith("kernels=") for l in lines)


def test_fresh_frame_explain(s):
    tree = s.create_dataframe_from_arrow(pa.table({"a": [1]})).explain()
    assert tree.splitlines()[:2] == ["Source", "  source=memory"]
    assert "kernels=none" in tree


# ------------------------------------------------------------------------------- explain == execution
CORPUS = [
    "SELECT * FROM t",
    "SELECT id, sym FROM t",
    "SELECT id FROM t WHERE qty > 1",
    "SELECT id + 1 FROM t",
    "SELECT sym, COUNT(*) FROM t GROUP BY sym",
    "SELECT COUNT(*) FROM t",
    "SELECT SUM(qty) FROM t",
    "SELECT id FROM t ORDER BY qty DESC LIMIT 2",
    "SELECT DISTINCT sym FROM t",
    "SELECT id FROM t UNION SELECT qty FROM t",
    "SELECT id FROM t UNION ALL SELECT qty FROM t",
    "SELECT t.id, u.sector FROM t LEFT JOIN u ON t.sym = u.sym",
    "SELECT sym, SUM(qty) AS s FROM t GROUP BY sym HAVING s > 1 ORDER BY s",
    "SELECT 1",
]


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("sql", CORPUS)
def test_explain_names_exactly_the_kernels_execution_calls(sql, engine):
    sess, called = counting_session(engine)
    sess.create_temp_view("t", sess.create_dataframe_from_arrow(pa.table({
        "id": [1, 2, 3, 4], "sym": ["a", "b", "a", None], "qty": [1, 2, 3, 4]})))
    sess.create_temp_view("u", sess.create_dataframe_from_arrow(pa.table({"sym": ["a", "b"], "sector": ["s1", "s2"]})))
    text = sess.explain_sql(sql)
    kline = [l for l in text.splitlines() if l.startswith("kernels=")][0][len("kernels="):]
    named = set() if kline == "none" else {tok.split("=")[0] for tok in kline.split(",")}
    df = sess.sql(sql)
    tree_kline = [l for l in df.explain().splitlines() if l.startswith("kernels=")][0][len("kernels="):]
    assert tree_kline == kline
    called.clear()
    df.to_arrow()
    assert set(called) == named, (sql, sorted(set(called)), sorted(named))
    for tok in ([] if kline == "none" else kline.split(",")):
        name, origin = tok.split("=")
        assert origin == sess.kernels.origin(name)


def test_replacing_a_kernel_in_the_set_is_what_runs(s):
    calls = []
    real = s.kernels.sort_take

    def fake(*a, **k):
        calls.append(1)
        return real(*a, **k)
    s.kernels = s.kernels.replace("sort_take", fake, "accel")
    assert "sort_take=accel" in s.explain_sql("SELECT id FROM t ORDER BY id")
    assert s.sql("SELECT id FROM t ORDER BY id DESC").to_rows()["rows"] == [[4], [3], [2], [1]]
    assert calls == [1]
