"""CREATE TABLE and INSERT (docs/sql.md "Statements"): result rows, types, coercion, errors."""
from __future__ import annotations

import pyarrow as pa
import pytest

from velaria import Session
from velaria.errors import SqlError, SQLSemanticError, VelariaError


def result(df):
    return df.to_rows()


@pytest.fixture
def s():
    return Session()


def test_create_table_result_row_and_types(s):
    got = result(s.sql("CREATE TABLE t (a INT, b TEXT, c DOUBLE, d REAL, e BOOLEAN, f BIGINT, g VARCHAR, "
                       "h FLOAT4, i SMALLINT, j NUMERIC, k BOOL, l STRING, m FLOAT8, n INT8)"))
    assert got == {"schema": ["ok", "message", "affected_rows"], "rows": [[1, "create table done", 0]]}
    schema = s.sql("SELECT * FROM t").to_arrow().schema
    assert [f.type for f in schema] == [pa.int64(), pa.string(), pa.float64(), pa.float32(), pa.bool_(),
                                        pa.int64(), pa.string(), pa.float32(), pa.int64(), pa.float64(),
                                        pa.bool_(), pa.string(), pa.float64(), pa.int64()]
    assert s.sql("SELECT * FROM t").count() == 0
    assert "t" in s.tables()


def test_insert_values_and_result_row(s):
    s.sql("CREATE TABLE t (a INT, b TEXT, c DOUBLE)")
    got = result(s.sql("INSERT INTO t VALUES (1, 'x', 1.5), (2, NULL, 2)"))
    assert got == {"schema": ["ok", "message", "affected_rows"], "rows": [[1, "insert done", 2]]}
    s.sql("INSERT INTO t VALUES (3, 'z', -1e3)")
    assert s.sql("SELECT * FROM t").to_rows()["rows"] == [[1, "x", 1.5], [2, None, 2.0], [3, "z", -1000.0]]
    tbl = s.sql("SELECT * FROM t").to_arrow()
    assert tbl.schema.field("c").type == pa.float64()


def test_insert_with_column_list_fills_nulls(s):
    s.sql("CREATE TABLE t (a INT, b TEXT, c DOUBLE)")
    s.sql("INSERT INTO t (c, a) VALUES (0.5, 7)")
    assert s.sql("SELECT * FROM t").to_rows()["rows"] == [[7, None, 0.5]]


def test_insert_expressions_in_values(s):
    s.sql("CREATE TABLE t (a INT, b TEXT)")
    s.sql("INSERT INTO t VALUES (1 + 2, UPPER('q') || 'r')")
    assert s.sql("SELECT * FROM t").to_rows()["rows"] == [[3, "Qr"]]


def test_insert_select_by_position_and_self_append(s):
    s.sql("CREATE TABLE t (a INT, b TEXT)")
    s.sql("INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    s.create_temp_view("src", s.create_dataframe_from_arrow(pa.table({"p": ["q"], "n": [10]})))
    got = result(s.sql("INSERT INTO t SELECT n, p FROM src"))
    assert got["rows"] == [[1, "insert done", 1]]
    got = result(s.sql("INSERT INTO t SELECT a + 100, b FROM t WHERE a < 10"))
    assert got["rows"] == [[1, "insert done", 2]]
    assert s.sql("SELECT a, b FROM t ORDER BY a").to_rows()["rows"] == \
        [[1, "x"], [2, "y"], [10, "q"], [101, "x"], [102, "y"]]


def test_insert_select_with_column_list(s):
    s.sql("CREATE TABLE t (a INT, b TEXT)")
    s.sql("INSERT INTO t (b) SELECT 'only'")
    assert s.sql("SELECT * FROM t").to_rows()["rows"] == [[None, "only"]]


def test_insert_empty_select_is_ignored(s):
    s.sql("CREATE TABLE t (a INT)")
    got = result(s.sql("INSERT INTO t SELECT a FROM t"))
    assert got["rows"] == [[1, "insert ignored: empty input", 0]]


def test_insert_int_into_double_and_real(s):
    s.sql("CREATE TABLE t (c DOUBLE, r REAL)")
    s.sql("INSERT INTO t VALUES (1, 2)")
    tbl = s.sql("SELECT * FROM t").to_arrow()
    assert tbl.schema.field("c").type == pa.float64() and tbl.schema.field("r").type == pa.float32()
    assert tbl.to_pylist() == [{"c": 1.0, "r": 2.0}]


def test_insert_text_into_number_column_names_column_and_suggests_cast(s):
    s.sql("CREATE TABLE t (a INT, b TEXT)")
    with pytest.raises(SqlError) as info:
        s.sql("INSERT INTO t VALUES ('nope', 'x')")
    err = info.value
    assert isinstance(err, RuntimeError)
    assert "column a" in err.message
    assert "CAST" in (err.hint or "")
    assert s.sql("SELECT * FROM t").count() == 0  # nothing appended


def test_insert_number_into_text_column_is_an_error(s):
    s.sql("CREATE TABLE t (b TEXT)")
    with pytest.raises(SqlError) as info:
        s.sql("INSERT INTO t VALUES (5)")
    assert "column b" in info.value.message


def test_insert_fractional_into_int_column_is_an_error(s):
    s.sql("CREATE TABLE t (a INT)")
    with pytest.raises(RuntimeError) as info:
        s.sql("INSERT INTO t VALUES (2.5)")
    assert "a" in str(info.value)


def test_insert_cast_makes_it_work(s):
    s.sql("CREATE TABLE t (a INT)")
    s.sql("INSERT INTO t VALUES (CAST('12' AS INT))")
    assert s.sql("SELECT a FROM t").to_rows()["rows"] == [[12]]


def test_insert_values_count_mismatch(s):
    s.sql("CREATE TABLE t (a INT, b TEXT)")
    with pytest.raises(SQLSemanticError) as info:
        s.sql("INSERT INTO t VALUES (1)")
    assert info.value.message == "INSERT VALUES column count mismatch"
    with pytest.raises(SQLSemanticError) as info:
        s.sql("INSERT INTO t SELECT 1")
    assert info.value.message == "INSERT SELECT column count mismatch"


def test_insert_unknown_and_duplicate_columns(s):
    sql = "INSERT INTO t (a, zz) VALUES (1, 2)"
    s.sql("CREATE TABLE t (a INT, b TEXT)")
    with pytest.raises(SQLSemanticError) as info:
        s.sql(sql)
    assert info.value.message == "column not found: zz"
    assert "a, b" in info.value.hint
    assert info.value.byte_offset == sql.index("zz")
    with pytest.raises(SQLSemanticError) as info:
        s.sql("INSERT INTO t (a, a) VALUES (1, 2)")
    assert info.value.message == "duplicate insert column: a"


def test_insert_into_unknown_table(s):
    sql = "INSERT INTO missing VALUES (1)"
    with pytest.raises(SqlError) as info:
        s.sql(sql)
    assert info.value.message == "view not found: missing"
    assert info.value.byte_offset == sql.index("missing")


def test_create_existing_table_is_an_error(s):
    s.sql("CREATE TABLE t (a INT)")
    with pytest.raises(VelariaError) as info:
        s.sql("CREATE TABLE t (b INT)")
    assert "table already exists: t" in str(info.value)


def test_create_table_bad_type_and_duplicate_column(s):
    with pytest.raises(SQLSemanticError) as info:
        s.sql("CREATE TABLE t (a DATE)")
    assert "unsupported column type" in info.value.message and "a" in info.value.message
    with pytest.raises(SQLSemanticError) as info:
        s.sql("CREATE TABLE t (a INT, a TEXT)")
    assert info.value.message == "duplicate column: a"


def test_table_is_per_session():
    a, b = Session(), Session()
    a.sql("CREATE TABLE t (x INT)")
    b.sql("CREATE TABLE t (y TEXT)")
    a.sql("INSERT INTO t VALUES (1)")
    assert b.sql("SELECT * FROM t").count() == 0
    assert a.sql("SELECT * FROM t").to_rows() == {"schema": ["x"], "rows": [[1]]}


def test_earlier_select_frame_is_a_snapshot_after_materialisation(s):
    s.sql("CREATE TABLE t (x INT)")
    s.sql("INSERT INTO t VALUES (1)")
    before = s.sql("SELECT x FROM t")
    assert before.count() == 1
    s.sql("INSERT INTO t VALUES (2)")
    assert before.count() == 1  # cached result
    assert s.sql("SELECT x FROM t").count() == 2


def test_insert_into_temp_view_appends(s):
    s.create_temp_view("v", s.create_dataframe_from_arrow(pa.table({"x": [1, 2]})))
    s.sql("INSERT INTO v VALUES (3)")
    assert s.sql("SELECT SUM(x) FROM v").to_rows()["rows"] == [[6]]


def test_unsupported_statements(s):
    s.sql("CREATE TABLE t (a INT)")
    for sql in ("UPDATE t SET a = 1", "DELETE FROM t", "DROP INDEX t", "ALTER TABLE t ADD COLUMN b INT"):
        with pytest.raises(SqlError) as info:
            s.sql(sql)
        assert info.value.error_type in ("unsupported_statement", "unsupported_sql_feature"), sql
        assert "not supported" in info.value.message.lower() or "unsupported" in info.value.message.lower(), sql
