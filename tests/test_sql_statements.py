"""WITH, derived tables, catalog statements and bind parameters through ``Session.sql``
(docs/sql.md). Expected values are written out by hand."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from velaria import Session
from velaria.errors import (CatalogNotFoundError, SQLParameterError, SQLSemanticError,
                            SQLUnsupportedError, VelariaError)


@pytest.fixture(params=["reference", "auto"])
def s(request):
    sess = Session(request.param)
    sess.create_temp_view("t", sess.create_dataframe_from_arrow(pa.table({
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "g": ["x", "y", "x", None],
        "v": [1.5, 2.5, None, 4.0],
    })))
    return sess


def rows(s, sql, params=None):
    return s.sql(sql, params).to_rows()["rows"]


def names(s, sql, params=None):
    return s.sql(sql, params).columns


# ----------------------------------------------------------------------------------- WITH
def test_cte_referenced_twice(s):
    sql = ("WITH x AS (SELECT id, g FROM t WHERE id > 1), "
           "y AS (SELECT g, COUNT(*) AS n FROM x GROUP BY g) "
           "SELECT x.id, y.n FROM x JOIN y ON x.g = y.g ORDER BY x.id")
    assert rows(s, sql) == [[2, 1], [3, 1]]


def test_cte_self_join_and_union(s):
    sql = "WITH x AS (SELECT id FROM t) SELECT id FROM x UNION ALL SELECT id + 10 FROM x ORDER BY 1 DESC LIMIT 2"
    assert rows(s, sql) == [[14], [13]]


def test_cte_column_aliases_and_alias_of_reference(s):
    assert names(s, "WITH x(a, b) AS (SELECT id, g FROM t) SELECT * FROM x") == ["a", "b"]
    assert rows(s, "WITH x(a) AS (SELECT id, g FROM t) SELECT q.a, q.g FROM x AS q WHERE q.a = 2") == [[2, "y"]]


def test_cte_shadows_a_table_and_nested_with(s):
    assert rows(s, "WITH t AS (SELECT 7 AS id) SELECT id FROM t") == [[7]]
    sql = "WITH a AS (SELECT 1 AS k) SELECT * FROM (WITH a AS (SELECT 2 AS k) SELECT k FROM a) d"
    assert rows(s, sql) == [[2]]


def test_cte_errors(s):
    with pytest.raises(SQLSemanticError, match="WITH query name x specified more than once"):
        s.sql("WITH x AS (SELECT 1), x AS (SELECT 2) SELECT * FROM x")
    with pytest.raises(SQLSemanticError, match="WITH query x has 1 columns available but 2 columns specified"):
        s.sql("WITH x(a, b) AS (SELECT 1) SELECT * FROM x")
    with pytest.raises(CatalogNotFoundError, match="view not found: y"):
        s.sql("WITH x AS (SELECT * FROM y), y AS (SELECT 1) SELECT * FROM x")  # not recursive
    with pytest.raises(SQLUnsupportedError, match="WITH RECURSIVE"):
        s.sql("WITH RECURSIVE x AS (SELECT 1) SELECT * FROM x")


def test_cte_in_insert_select(s):
    s.sql("CREATE TABLE o (id BIGINT)")
    assert rows(s, "INSERT INTO o WITH x AS (SELECT id FROM t WHERE id < 3) SELECT id FROM x") == \
        [[1, "insert done", 2]]
    assert rows(s, "SELECT id FROM o") == [[1], [2]]
    rows(s, "WITH x AS (SELECT id FROM t WHERE id = 4) INSERT INTO o SELECT id FROM x")
    assert rows(s, "SELECT id FROM o") == [[1], [2], [4]]


# ----------------------------------------------------------------------------------- derived tables
def test_derived_table_with_aliases(s):
    assert rows(s, "SELECT c FROM (SELECT id * 2 AS b FROM t) AS d(c) WHERE c > 4") == [[6], [8]]
    assert rows(s, "SELECT d.n FROM (SELECT COUNT(*) AS n FROM t) d") == [[4]]


def test_derived_tables_joined(s):
    sql = ("SELECT l.g, l.n, r.m FROM (SELECT g, COUNT(*) AS n FROM t GROUP BY g) l "
           "JOIN (SELECT g, MAX(id) AS m FROM t GROUP BY g) r ON l.g = r.g ORDER BY l.g")
    assert rows(s, sql) == [["x", 2, 3], ["y", 1, 2]]


def test_derived_table_order_and_limit_apply_inside(s):
    assert rows(s, "SELECT id FROM (SELECT id FROM t ORDER BY id DESC LIMIT 2) d ORDER BY id") == [[3], [4]]


def test_derived_table_without_alias_and_too_many_names(s):
    assert rows(s, "SELECT id FROM (SELECT id FROM t WHERE id = 1)") == [[1]]
    with pytest.raises(SQLSemanticError, match="has 1 columns available but 2"):
        s.sql("SELECT * FROM (SELECT 1) AS d(a, b)")


# ----------------------------------------------------------------------------------- CREATE TABLE AS
def test_create_table_as(s):
    assert rows(s, "CREATE TABLE c AS SELECT g, COUNT(*) AS n FROM t GROUP BY g") == \
        [[1, "create table done", 3]]
    assert rows(s, "SELECT g, n FROM c") == [["x", 2], ["y", 1], [None, 1]]
    rows(s, "INSERT INTO c VALUES ('z', 9)")
    assert rows(s, "SELECT SUM(n) FROM c") == [[13]]


def test_create_table_as_renames_and_if_not_exists(s):
    rows(s, "CREATE TABLE c (a, b) AS SELECT id, g FROM t WHERE id = 1")
    assert names(s, "SELECT * FROM c") == ["a", "b"]
    assert rows(s, "CREATE TABLE IF NOT EXISTS c AS SELECT 1") == [[1, "create table skipped: already exists", 0]]
    with pytest.raises(VelariaError, match="table already exists: c"):
        s.sql("CREATE TABLE c AS SELECT 1")


def test_create_table_as_errors(s):
    with pytest.raises(SQLSemanticError, match="column id specified more than once"):
        s.sql("CREATE TABLE c AS SELECT id, id FROM t")
    with pytest.raises(SQLSemanticError, match="lists 3 column names but the query has 1 columns"):
        s.sql("CREATE TABLE c (a, b, c) AS SELECT 1")
    assert "c" not in s.tables()


def test_create_table_as_is_a_copy(s):
    rows(s, "CREATE TABLE c AS SELECT id FROM t")
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"id": [99]})))
    assert rows(s, "SELECT COUNT(*) FROM c") == [[4]]


# ----------------------------------------------------------------------------------- views
def test_view_follows_inserts(s):
    rows(s, "CREATE TABLE b AS SELECT id FROM t")
    assert rows(s, "CREATE VIEW big AS SELECT id FROM b WHERE id > 2") == [[1, "create view done", 0]]
    assert rows(s, "SELECT * FROM big") == [[3], [4]]
    rows(s, "INSERT INTO b VALUES (10)")
    assert rows(s, "SELECT * FROM big") == [[3], [4], [10]]


def test_view_column_names_and_replace(s):
    rows(s, "CREATE VIEW v (k) AS SELECT id FROM t WHERE id = 1")
    assert names(s, "SELECT * FROM v") == ["k"]
    rows(s, "CREATE OR REPLACE VIEW v AS SELECT g FROM t WHERE id = 2")
    assert rows(s, "SELECT * FROM v") == [["y"]]
    with pytest.raises(VelariaError, match="table already exists: v"):
        s.sql("CREATE VIEW v AS SELECT 1")
    with pytest.raises(VelariaError, match="cannot replace t with a view: it is a table"):
        s.sql("CREATE OR REPLACE VIEW t AS SELECT 1")


def test_view_errors(s):
    with pytest.raises(CatalogNotFoundError, match="view not found: nope"):
        s.sql("CREATE VIEW v AS SELECT * FROM nope")
    assert "v" not in s.tables()
    rows(s, "CREATE VIEW v AS SELECT id FROM t")
    with pytest.raises(SQLSemanticError, match="cannot INSERT INTO view v"):
        s.sql("INSERT INTO v VALUES (1)")


def test_view_of_a_dropped_table_fails_when_read(s):
    rows(s, "CREATE TABLE b AS SELECT id FROM t")
    rows(s, "CREATE VIEW v AS SELECT id FROM b")
    rows(s, "DROP TABLE b")
    with pytest.raises(CatalogNotFoundError, match="view not found: b"):
        s.sql("SELECT * FROM v")


# ----------------------------------------------------------------------------------- DROP
def test_drop_table_and_view(s):
    rows(s, "CREATE TABLE a AS SELECT 1 AS x")
    rows(s, "CREATE VIEW w AS SELECT 2 AS x")
    assert rows(s, "DROP TABLE a") == [[1, "drop table done", 0]]
    assert rows(s, "DROP VIEW w") == [[1, "drop view done", 0]]
    assert sorted(s.tables()) == ["t"]
    assert rows(s, "DROP TABLE IF EXISTS a, t") == [[1, "drop table done", 0]]  # t: a Python temp view
    assert s.tables() == []


def test_drop_errors(s):
    rows(s, "CREATE VIEW w AS SELECT 2 AS x")
    rows(s, "CREATE TABLE a AS SELECT 1 AS x")
    with pytest.raises(CatalogNotFoundError, match="table not found: nope") as info:
        s.sql("DROP TABLE a, nope")
    assert "DROP TABLE IF EXISTS" in info.value.hint
    assert "a" in s.tables()  # nothing is dropped when one name fails
    with pytest.raises(SQLSemanticError, match="w is not a table") as info:
        s.sql("DROP TABLE w")
    assert info.value.hint == "Use DROP VIEW w."
    with pytest.raises(SQLSemanticError, match="a is not a view"):
        s.sql("DROP VIEW a")


# ----------------------------------------------------------------------------------- DESCRIBE / SHOW / EXPLAIN
def test_describe_table_and_query(s):
    assert rows(s, "DESCRIBE t") == [["id", "BIGINT", "YES"], ["g", "VARCHAR", "YES"], ["v", "DOUBLE", "YES"]]
    assert names(s, "DESCRIBE t") == ["column_name", "column_type", "null"]
    assert rows(s, "describe SELECT id > 1 AS b, CAST(v AS REAL) AS f FROM t") == \
        [["b", "BOOLEAN", "YES"], ["f", "FLOAT", "YES"]]


def test_describe_other_types(s):
    s.create_temp_view("w", s.create_dataframe_from_arrow(pa.table({
        "i": pa.array([1], pa.int32()),
        "vec": pa.array([[1.0, 2.0]], pa.list_(pa.float32(), 2))})))
    assert rows(s, "DESCRIBE w") == [["i", "INTEGER", "YES"], ["vec", "FLOAT[2]", "YES"]]


def test_describe_unknown_table(s):
    with pytest.raises(CatalogNotFoundError, match="view not found: nope"):
        s.sql("DESCRIBE nope")


def test_show_tables(s):
    rows(s, "CREATE TABLE b AS SELECT 1 AS x")
    assert rows(s, "SHOW TABLES") == [["b"], ["t"]]
    assert names(s, "SHOW TABLES") == ["name"]


def test_explain_statement_matches_explain_sql(s):
    sql = "SELECT id FROM t WHERE id > 1"
    assert rows(s, "EXPLAIN " + sql) == [[s.explain_sql(sql)]]
    assert s.explain_sql("EXPLAIN " + sql) == s.explain_sql(sql)
    with pytest.raises(SQLUnsupportedError, match="EXPLAIN with options"):
        s.sql("EXPLAIN ANALYZE " + sql)


# ----------------------------------------------------------------------------------- parameters
def test_numbered_and_question_mark_parameters(s):
    assert rows(s, "SELECT id FROM t WHERE id > $1 AND g = $2", [1, "x"]) == [[3]]
    assert rows(s, "SELECT id FROM t WHERE id > ? AND g = ?", (1, "x")) == [[3]]
    assert rows(s, "SELECT id FROM t WHERE id = $1 OR id = $1 + 1", [2]) == [[2], [3]]


def test_params_may_be_passed_by_keyword(s):
    assert s.sql("SELECT id FROM t WHERE id = $1", params=[4]).to_rows()["rows"] == [[4]]
    assert "Filter" in s.explain_sql("SELECT id FROM t WHERE id = ?", params=(4,))


def test_parameter_values_keep_their_types(s):
    out = s.sql("SELECT $1 AS n, $2 AS b, $3 AS i, $4 AS f, $5 AS t, $6 AS big",
                [None, True, 7, -0.0, "it's", 2 ** 40]).to_arrow()
    assert out.schema.field("b").type == pa.bool_()
    assert out.schema.field("i").type == pa.int64() and out.schema.field("big").type == pa.int64()
    assert out.schema.field("f").type == pa.float64() and out.schema.field("t").type == pa.string()
    row = out.to_pylist()[0]
    assert row == {"n": None, "b": True, "i": 7, "f": 0.0, "t": "it's", "big": 2 ** 40}
    assert math.copysign(1.0, row["f"]) == -1.0
    assert math.isnan(rows(s, "SELECT $1", [float("nan")])[0][0])


def test_parameters_are_never_spliced(s):
    sneaky = "x' OR '1'='1"
    assert rows(s, "SELECT id FROM t WHERE g = $1", [sneaky]) == []
    assert rows(s, "SELECT $1 AS v", ["$2 -- ?"]) == [["$2 -- ?"]]


def test_parameters_in_limit_insert_and_explain(s):
    assert rows(s, "SELECT id FROM t ORDER BY id LIMIT $1 OFFSET $2", [2, 1]) == [[2], [3]]
    s.sql("CREATE TABLE o (id BIGINT, g TEXT)")
    assert rows(s, "INSERT INTO o VALUES ($1, $2), ($3, NULL)", [1, "a", 2]) == [[1, "insert done", 2]]
    assert rows(s, "SELECT * FROM o") == [[1, "a"], [2, None]]
    assert "Filter" in s.explain_sql("SELECT id FROM t WHERE id > $1", [2])


def test_parameter_count_mismatch(s):
    with pytest.raises(SQLParameterError) as info:
        s.sql("SELECT id FROM t WHERE id > $1 AND g = $2", [1])
    assert info.value.message == "the statement has 2 parameter placeholders but 1 value was given"
    assert info.value.byte_offset == len("SELECT id FROM t WHERE id > ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)
    with pytest.raises(SQLParameterError, match="has 0 parameter placeholders but 1 value was given"):
        s.sql("SELECT 1", [1])
    with pytest.raises(SQLParameterError, match="has 1 parameter placeholder but 0 values were given"):
        s.sql("SELECT ?")


def test_parameter_type_errors(s):
    with pytest.raises(TypeError, match=r"parameter \$1 has unsupported type object"):
        s.sql("SELECT $1", [object()])
    with pytest.raises(TypeError, match="params must be a list or tuple of values, not dict"):
        s.sql("SELECT $1", {"a": 1})
    with pytest.raises(SQLParameterError, match=r"parameter \$1 = 36893488147419103232 does not fit in BIGINT"):
        s.sql("SELECT $1", [2 ** 65])
    with pytest.raises(SQLSemanticError, match="cannot compare BIGINT with VARCHAR"):
        s.sql("SELECT id FROM t WHERE id > $1", ["2"])
