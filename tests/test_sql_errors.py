"""User-facing planner errors of ``Session.sql`` / ``explain_sql``: class, error_type, message,
hint and a byte_offset into the ORIGINAL text (STYLE.md habit 12: every message has a test).

The text layer (normalize / parser / validate) has its own tests in test_sql_frontend.py; here
the errors come from the planner, catalog and lowering, seen through the public API.
"""
from __future__ import annotations

import pyarrow as pa
import pytest

from velaria import Session
from velaria.errors import (CatalogNotFoundError, ColumnNotFoundError, SqlError, SQLNotAvailableError,
                            SQLSemanticError, SQLSyntaxError, SQLTableKindError, SQLUnsupportedError)


def byte_pos(sql: str, fragment: str, nth: int = 0) -> int:
    index = -1
    for _ in range(nth + 1):
        index = sql.index(fragment, index + 1)
    return len(sql[:index].encode("utf-8"))


@pytest.fixture
def s():
    sess = Session()
    sess.create_temp_view("trades", sess.create_dataframe_from_arrow(pa.table({
        "id": [1, 2], "symbol": ["a", "b"], "qty": [1, 2], "price": [1.0, 2.0], "ts": ["2024-01-01", "2024-01-02"]})))
    sess.create_temp_view("sectors", sess.create_dataframe_from_arrow(pa.table({
        "symbol": ["a"], "sector": ["tech"]})))
    return sess


def err(s, sql, cls=SqlError):
    with pytest.raises(cls) as info:
        s.sql(sql)
    e = info.value
    assert isinstance(e, RuntimeError)
    assert isinstance(e, SqlError)
    return e


def check_str_form(e: SqlError):
    text = str(e)
    assert text.startswith(f"error_type={e.error_type}; message={e.message}")
    if e.hint:
        assert f"; hint={e.hint}" in text
    if e.byte_offset is not None:
        assert text.endswith(f"; byte_offset={e.byte_offset}")
    assert e.args[0] == text


# ------------------------------------------------------------------------------- hierarchy
def test_error_classes_are_runtime_errors():
    for cls in (SqlError, SQLSyntaxError, SQLUnsupportedError, SQLNotAvailableError, SQLSemanticError,
                CatalogNotFoundError, ColumnNotFoundError):
        assert issubclass(cls, RuntimeError)


# ------------------------------------------------------------------------------- names
def test_column_not_found_docs_example(s):
    sql = "SELECT symbl FROM trades"
    e = err(s, sql, ColumnNotFoundError)
    assert str(e) == ("error_type=column_not_found; message=column not found: symbl; hint=Did you mean symbol? "
                      "Available columns: id, symbol, qty, price, ts.; byte_offset=7")
    check_str_form(e)


def test_column_not_found_in_where_group_order(s):
    for sql, frag in (("SELECT id FROM trades WHERE qtty > 1", "qtty"),
                      ("SELECT COUNT(*) FROM trades GROUP BY symbl", "symbl"),
                      ("SELECT id FROM trades ORDER BY pricee", "pricee"),
                      ("SELECT id FROM trades t WHERE t.nope = 1", "t.nope")):
        e = err(s, sql, ColumnNotFoundError)
        assert e.byte_offset == byte_pos(sql, frag), sql
        assert "column not found" in e.message


def test_byte_offset_is_into_original_text_after_multibyte_literal(s):
    sql = "SELECT 'héllo wörld ✓' AS x, nope FROM trades"
    e = err(s, sql, ColumnNotFoundError)
    assert e.byte_offset == byte_pos(sql, "nope")
    assert e.byte_offset != sql.index("nope")  # bytes, not characters
    assert sql.encode()[e.byte_offset:e.byte_offset + 4] == b"nope"


def test_byte_offset_after_velaria_extension_is_original(s):
    # HYBRID SEARCH is cut out before pglast sees the text; offsets after it are still original ones
    s.create_temp_view("v", s.create_dataframe_from_arrow(pa.table({
        "id": [1, 2], "emb": pa.array([[1, 0], [0, 1]], pa.list_(pa.float32(), 2))})))
    sql = "SELECT id, 'ü✓' AS u FROM v HYBRID SEARCH emb QUERY '[1 0]' TOP_K 2 ORDER BY nope"
    e = err(s, sql, ColumnNotFoundError)
    assert e.byte_offset == byte_pos(sql, "nope")
    sql = "SELECT id FROM v WHERE id = 'ü' HYBRID SEARCH emb QUERY '[1 0]'"
    e = err(s, sql, SQLSemanticError)
    assert e.byte_offset == byte_pos(sql, "= ")  # PostgreSQL locates an operator expression at the operator


def test_qualified_column_errors(s):
    sql = "SELECT t.symbl FROM trades t"
    e = err(s, sql, ColumnNotFoundError)
    assert e.message == "column not found in t: symbl"
    assert "Did you mean symbol?" in e.hint
    sql = "SELECT x.id FROM trades t"
    e = err(s, sql, SQLSemanticError)
    assert e.message == "unknown table or alias: x"
    assert e.hint == "Tables in this query: t."


def test_ambiguous_column(s):
    sql = "SELECT symbol FROM trades t JOIN sectors s ON t.symbol = s.symbol"
    e = err(s, sql, SQLSemanticError)
    assert e.message == "ambiguous column: symbol"
    assert "t.symbol" in e.hint and "s.symbol" in e.hint
    assert e.byte_offset == 7


def test_view_not_found_with_did_you_mean(s):
    sql = "SELECT id FROM trade"
    e = err(s, sql, CatalogNotFoundError)
    assert e.message == "view not found: trade"
    assert e.hint == "Did you mean trades? Tables in this session: sectors, trades."
    assert e.byte_offset == byte_pos(sql, "trade")
    assert isinstance(e, LookupError)
    check_str_form(e)


def test_view_not_found_in_join_and_empty_catalog(s):
    sql = "SELECT 1 FROM trades t JOIN sector x ON t.symbol = x.symbol"
    e = err(s, sql, CatalogNotFoundError)
    assert e.message == "view not found: sector"
    assert e.byte_offset == byte_pos(sql, "sector ")
    e = err(Session(), "SELECT * FROM nothing", CatalogNotFoundError)
    assert e.hint == "Tables in this session: (none)."


def test_unknown_function(s):
    sql = "SELECT frobnicate(id) FROM trades"
    e = err(s, sql, SQLSyntaxError)
    assert e.error_type == "unsupported_function"
    assert e.message == "Unknown function: frobnicate"
    assert e.byte_offset == byte_pos(sql, "frobnicate")


def test_function_arity(s):
    e = err(s, "SELECT UPPER(symbol, symbol) FROM trades", SQLSemanticError)
    assert "UPPER" in e.message.upper()


# ------------------------------------------------------------------------------- types
def test_text_vs_number_names_both_types_and_suggests_cast(s):
    sql = "SELECT id FROM trades WHERE symbol > 3"
    e = err(s, sql, SQLSemanticError)
    text = (e.message + " " + (e.hint or "")).lower()
    assert "cast" in text
    assert "varchar" in text and "bigint" in text


def test_where_must_be_boolean(s):
    e = err(s, "SELECT id FROM trades WHERE qty", SQLSemanticError)
    assert e.message.startswith("WHERE condition must be boolean, got ")


def test_union_errors(s):
    e = err(s, "SELECT id, qty FROM trades UNION SELECT id FROM trades", SQLSemanticError)
    assert e.message == "UNION requires the same number of projected columns"
    e = err(s, "SELECT id FROM trades UNION SELECT symbol FROM trades", SQLSemanticError)
    assert "CAST" in e.hint


# ------------------------------------------------------------------------------- aggregates
def test_aggregate_rules(s):
    sql = "SELECT id FROM trades WHERE SUM(qty) > 1"
    e = err(s, sql, SQLSemanticError)
    assert e.message == "WHERE does not support aggregate expressions"
    assert e.hint == "Filter aggregates with HAVING."
    assert e.byte_offset == byte_pos(sql, "SUM")
    e = err(s, "SELECT symbol, qty, COUNT(*) FROM trades GROUP BY symbol", SQLSemanticError)
    assert "qty" in e.message
    assert e.hint.startswith("Add qty to GROUP BY")
    e = err(s, "SELECT id FROM trades HAVING id > 1", SQLSemanticError)
    assert e.message == "HAVING used without aggregate"
    e = err(s, "SELECT COUNT(*) FROM trades GROUP BY COUNT(*)", SQLSemanticError)
    assert e.message == "aggregate functions are not allowed in GROUP BY"


def test_position_errors(s):
    e = err(s, "SELECT id FROM trades GROUP BY 3", SQLSemanticError)
    assert e.message == "GROUP BY position 3 is not in select list"
    e = err(s, "SELECT id FROM trades ORDER BY 2", SQLSemanticError)
    assert e.message == "ORDER BY position 2 is not in select list"
    e = err(s, "SELECT DISTINCT symbol FROM trades ORDER BY qty", SQLSemanticError)
    assert e.message == "for SELECT DISTINCT, ORDER BY expressions must appear in select list"


def test_limit_errors(s):
    e = err(s, "SELECT id FROM trades LIMIT -1", SQLSemanticError)
    assert e.message == "LIMIT must not be negative"
    e = err(s, "SELECT id FROM trades LIMIT 1 OFFSET -2", SQLSemanticError)
    assert e.message == "OFFSET must not be negative"


def test_star_without_from(s):
    e = err(s, "SELECT *", SQLSemanticError)
    assert e.message == "SELECT * requires a FROM clause"


# ------------------------------------------------------------------------------- unsupported
@pytest.mark.parametrize("sql, needle", [
    ("SELECT id FROM trades, LATERAL (SELECT id FROM trades) x", "LATERAL"),
    ("SELECT id FROM trades WHERE id > ALL (SELECT id FROM trades)", "ubquer"),
    ("WITH RECURSIVE x AS (SELECT 1) SELECT * FROM x", "WITH RECURSIVE"),
    ("UPDATE trades SET qty = 1", "not supported"),
    ("DELETE FROM trades", "not supported"),
    ("DROP SCHEMA trades", "not supported"),
    ("SELECT 1; SELECT 2", "Multiple SQL statements"),
])
def test_unsupported_constructs_say_so(s, sql, needle):
    e = err(s, sql, SQLUnsupportedError)
    assert needle in e.message, e.message
    check_str_form(e)


def test_table_function_in_from_says_how_to_register_the_file(s):
    e = err(s, "SELECT * FROM read_csv('x.csv')", SQLUnsupportedError)
    assert "table function in FROM" in e.message and "Subquery" not in e.message
    assert "CREATE TABLE t USING csv" in e.hint
    check_str_form(e)


def test_parse_error_is_syntax_error_with_offset(s):
    sql = "SELECT id FROM trades WHERE ((("
    e = err(s, sql, SQLSyntaxError)
    assert e.error_type == "parse_error"
    assert e.byte_offset is not None and 0 <= e.byte_offset <= len(sql.encode())


# ------------------------------------------------------------------------------- not available yet
def test_keyword_search_runs_and_reports_bad_values(s):
    sql = "SELECT id FROM trades KEYWORD SEARCH(symbol) QUERY 'a b' TOP_K 3"
    assert s.sql(sql).to_arrow().column_names == ["id"]
    assert "KeywordSearch columns=1 top_k=3" in s.explain_sql(sql)
    with pytest.raises(RuntimeError, match="^keywordSearch top_k must be positive$"):
        s.sql("SELECT id FROM trades KEYWORD SEARCH(symbol) QUERY 'a' TOP_K 0")


def test_window_by_in_batch_sql_says_stream_only(s):
    sql = "SELECT id FROM trades WINDOW BY ts EVERY 1000 AS w"
    e = err(s, sql, SQLUnsupportedError)
    assert "stream" in e.message


def test_source_table_with_a_path_registers_a_stream(s, tmp_path):
    s.sql(f"CREATE SOURCE TABLE src (a INT) USING csv OPTIONS(path: '{tmp_path}')")
    with pytest.raises(SQLTableKindError):
        s.sql("SELECT * FROM src")


@pytest.mark.parametrize("method, message", [
    ("stream_sql", "stream SQL requires FROM"),
    ("explain_stream_sql", "stream SQL requires FROM"),
    ("start_stream_sql", "not supported in SQL v1: startStreamSql only supports INSERT INTO ... SELECT"),
])
def test_stream_entry_points_check_the_statement(s, method, message):
    with pytest.raises(SQLUnsupportedError) as info:
        getattr(s, method)("SELECT 1")
    assert info.value.message == message
    assert isinstance(info.value, RuntimeError)


def test_explain_sql_rejects_non_select(s):
    with pytest.raises(SQLUnsupportedError) as info:
        s.explain_sql("CREATE TABLE z (a INT)")
    assert "explainSql only supports SELECT" in info.value.message
    assert s.tables() == ["trades", "sectors"]  # nothing was created


def test_errors_surface_at_sql_time_not_later(s):
    # planning errors come from sql(), before any materialisation
    with pytest.raises(ColumnNotFoundError):
        s.sql("SELECT nope FROM trades")
