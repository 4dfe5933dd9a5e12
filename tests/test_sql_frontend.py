"""Tests for the SQL frontend text layer: normalisation, the pglast parse and validation.

Every user-facing message of upstream's SQL parser and analyser is checked by text and error_type, and
byte offsets are checked against the user's original text.
"""
from __future__ import annotations

import pytest
from pglast import ast

from velaria.errors import SQLSyntaxError, SQLUnsupportedError
from velaria.sql.normalize import (CreateExt, HybridSearchSpec, KeywordSearchSpec, WindowSpec,
                                   normalize, tokenize)
from velaria.sql.parser import ParsedStatement, node_offset, parse


def byte_pos(sql: str, fragment: str, nth: int = 0) -> int:
    """Byte offset of the ``nth`` occurrence of ``fragment`` in ``sql``."""
    index = -1
    for _ in range(nth + 1):
        index = sql.index(fragment, index + 1)
    return len(sql[:index].encode("utf-8"))


def syntax_error(sql: str) -> SQLSyntaxError:
    with pytest.raises(SQLSyntaxError) as info:
        parse(sql)
    return info.value


def unsupported(sql: str) -> SQLUnsupportedError:
    with pytest.raises(SQLUnsupportedError) as info:
        parse(sql)
    return info.value


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


class TestTokenizer:
    def kinds(self, sql):
        return [(t.kind, t.value) for t in tokenize(sql)]

    def test_strings_and_quoted_identifiers_unescape(self):
        assert self.kinds("'it''s' \"a\"\"b\"") == [("string", "it's"), ("ident", 'a"b')]

    def test_numbers_have_no_sign_or_exponent(self):
        assert self.kinds("1e-3") == [("number", "1"), ("word", "e"), ("symbol", "-"),
                                      ("number", "3")]
        assert self.kinds(".5 1.2.3") == [("number", ".5"), ("number", "1.2"),
                                          ("number", ".3")]

    def test_identifier_characters(self):
        assert self.kinds("_a$1 x.y") == [("word", "_a$1"), ("word", "x"), ("symbol", "."),
                                          ("word", "y")]

    def test_depth(self):
        toks = tokenize("f(a, (b)) c")
        assert [(t.text, t.depth) for t in toks] == [
            ("f", 0), ("(", 0), ("a", 1), (",", 1), ("(", 1), ("b", 2), (")", 1), (")", 0),
            ("c", 0)]

    def test_comments_are_skipped(self):
        assert self.kinds("a -- it's é\n/* 名 */ b") == [("word", "a"), ("word", "b")]

    def test_unterminated_string_runs_to_end(self):
        assert self.kinds("'abc") == [("string", "abc")]


# --------------------------------------------------------------------------------------------
# Step 1: non-ASCII check
# --------------------------------------------------------------------------------------------


class TestNonAscii:
    def test_unquoted_non_ascii_identifier(self):
        sql = "SELECT 名字 FROM t"
        err = syntax_error(sql)
        assert err.error_type == "parse_error"
        assert err.message == "invalid token byte 0xe5"
        assert err.hint == "Quote non-ASCII identifiers with double quotes."
        assert err.byte_offset == 7
        assert str(err) == ("error_type=parse_error; message=invalid token byte 0xe5; "
                            "hint=Quote non-ASCII identifiers with double quotes.; "
                            "byte_offset=7")

    def test_offset_is_of_the_first_non_ascii_byte(self):
        sql = "SELECT 'é', abç FROM t"
        err = syntax_error(sql)
        assert err.message == "invalid token byte 0xc3"
        assert err.byte_offset == byte_pos(sql, "ç")

    def test_quoted_identifiers_and_strings_may_be_non_ascii(self):
        parsed = parse("SELECT \"名字\" FROM t WHERE x = 'é'")
        assert parsed.stmt.targetList[0].val.fields[0].sval == "名字"


# --------------------------------------------------------------------------------------------
# Function renames
# --------------------------------------------------------------------------------------------


class TestFunctionRenames:
    @pytest.mark.parametrize("name", ["LEFT", "left", "Right", "POSITION",
                                      "current_timestamp"])
    def test_renamed_when_called(self, name):
        n = normalize(f"SELECT {name}(a, 1) FROM t")
        assert n.text == f"SELECT VELARIA_{name}(a, 1) FROM t"
        func = parse(f"SELECT {name}(a, 1) FROM t").stmt.targetList[0].val
        assert func.funcname[-1].sval == f"velaria_{name.lower()}"

    def test_not_renamed_without_parenthesis(self):
        sql = "SELECT CURRENT_TIMESTAMP FROM a LEFT JOIN b ON a.x = b.x"
        assert normalize(sql).text == sql

    def test_quoted_name_is_not_renamed(self):
        assert normalize('SELECT "left"(a) FROM t').text == 'SELECT "left"(a) FROM t'

    def test_position_in_form_is_left_to_postgresql(self):
        sql = "SELECT POSITION(a IN name), POSITION(a, name) FROM t"
        assert normalize(sql).text == "SELECT POSITION(a IN name), VELARIA_POSITION(a, name) FROM t"
        assert isinstance(parse(sql).stmt, ast.SelectStmt)

    def test_offsets_after_a_rename_map_back(self):
        sql = "SELECT left(a, 1), b FROM t"
        parsed = parse(sql)
        b = parsed.stmt.targetList[1].val
        assert node_offset(parsed, b) == byte_pos(sql, "b FROM")
        assert node_offset(parsed, parsed.stmt.targetList[0].val) == byte_pos(sql, "left")


# --------------------------------------------------------------------------------------------
# CREATE extensions
# --------------------------------------------------------------------------------------------


class TestCreate:
    def test_using_and_options_without_columns(self):
        sql = "CREATE TABLE t USING csv OPTIONS(path: '/x.csv', delimiter: ',')"
        n = normalize(sql)
        assert n.create == CreateExt("regular", "csv", {"path": "/x.csv", "delimiter": ","},
                                     byte_pos(sql, "csv"), byte_pos(sql, "OPTIONS"))
        stmt = parse(sql).stmt
        assert isinstance(stmt, ast.CreateStmt)
        assert stmt.relation.relname == "t"
        assert not stmt.tableElts

    def test_sink_with_columns(self):
        sql = "CREATE SINK TABLE s (a INT, b TEXT) USING csv OPTIONS(path: '/o.csv')"
        n = normalize(sql)
        assert n.create.kind == "sink"
        assert n.create.provider == "csv"
        assert n.create.options == {"path": "/o.csv"}
        assert "SINK" not in n.text and "()" not in n.text
        stmt = parse(sql).stmt
        assert [c.colname for c in stmt.tableElts] == ["a", "b"]

    def test_source_kind(self):
        n = normalize("create source table src using memory")
        assert n.create.kind == "source"
        assert n.create.provider == "memory"
        assert isinstance(parse("create source table src using memory").stmt, ast.CreateStmt)

    def test_insertion_of_empty_column_list(self):
        assert normalize("CREATE TABLE t").text == "CREATE TABLE t ()"
        assert normalize("CREATE TABLE t;").text == "CREATE TABLE t ();"
        assert normalize("CREATE TABLE t (a INT)").text == "CREATE TABLE t (a INT)"
        assert normalize("CREATE TABLE t").create == CreateExt("regular")

    def test_column_list_after_using_is_kept(self):
        n = normalize("CREATE TABLE t USING csv (a INT)")
        assert "()" not in n.text
        assert [c.colname for c in parse("CREATE TABLE t USING csv (a INT)").stmt.tableElts] \
            == ["a"]

    def test_if_not_exists_and_qualified_names(self):
        stmt = parse("CREATE TABLE IF NOT EXISTS s.t USING csv").stmt
        assert stmt.if_not_exists and stmt.relation.relname == "t"

    def test_options_quoting_escapes_and_case(self):
        sql = ("CREATE TABLE t OPTIONS(Path: 'C:\\dir\\It''s.csv', \"Header\": true, "
               "'Skip': 2, limit: 1.5)")
        n = normalize(sql)
        assert n.create.options == {"path": "C:\\dir\\It's.csv", "header": "true",
                                    "skip": "2", "limit": "1.5"}
        assert n.create.provider is None

    def test_options_duplicate_key_last_wins(self):
        n = normalize("CREATE TABLE t OPTIONS(path: 'a', PATH: 'b', Path: 'c')")
        assert n.create.options == {"path": "c"}

    def test_empty_options(self):
        assert normalize("CREATE TABLE t OPTIONS()").create.options == {}

    def test_values_keep_case(self):
        assert normalize("CREATE TABLE t OPTIONS(mode: AppEnd)").create.options == \
            {"mode": "AppEnd"}

    def test_no_create(self):
        assert normalize("SELECT 1").create is None
        assert normalize("SELECT 'CREATE TABLE x'").create is None

    @pytest.mark.parametrize("sql, message, at", [
        ("CREATE TABLE", "CREATE TABLE requires a table name.", "TABLE"),
        ("CREATE SINK TABLE (a INT)", "CREATE TABLE requires a table name.", "TABLE"),
        ("CREATE TABLE t USING", "CREATE TABLE USING requires a provider.", "USING"),
        ("CREATE TABLE t OPTIONS path: 'x'", "OPTIONS must use OPTIONS(key: value, ...).",
         "OPTIONS"),
        ("CREATE TABLE t OPTIONS", "OPTIONS must use OPTIONS(key: value, ...).", "OPTIONS"),
        ("CREATE TABLE t OPTIONS(path 'x')", "OPTIONS entries must be key: value pairs.",
         "'x'"),
        ("CREATE TABLE t OPTIONS(path: 'x' mode: 'y')",
         "OPTIONS entries must be key: value pairs.", "mode"),
        ("CREATE TABLE t OPTIONS(path: 'x',)", "OPTIONS entries must be key: value pairs.",
         ")"),
        ("CREATE TABLE t OPTIONS(: 'x')", "OPTIONS entries must be key: value pairs.", ":"),
        ("CREATE TABLE t OPTIONS(path: 'x'", "OPTIONS clause must end with ')'.", "OPTIONS"),
        ("CREATE TABLE t OPTIONS(path:", "OPTIONS clause must end with ')'.", "OPTIONS"),
        ("CREATE TABLE t OPTIONS(", "OPTIONS clause must end with ')'.", "OPTIONS"),
    ])
    def test_errors(self, sql, message, at):
        err = syntax_error(sql)
        assert err.error_type == "parse_error"
        assert err.message == message
        assert err.byte_offset == byte_pos(sql, at)

    def test_error_offset_is_in_bytes(self):
        sql = "CREATE TABLE \"é\" OPTIONS(path 'x')"
        assert syntax_error(sql).byte_offset == byte_pos(sql, "'x'")


# --------------------------------------------------------------------------------------------
# WINDOW BY
# --------------------------------------------------------------------------------------------

WINDOW_HINT = "Use WINDOW BY time_col EVERY window_ms [SLIDE slide_ms] AS output_col."


class TestWindowBy:
    def test_basic_and_slide_default(self):
        sql = "SELECT a FROM t WINDOW BY ts EVERY 60000 AS w GROUP BY w"
        n = normalize(sql)
        assert n.window == WindowSpec("ts", None, 60000, 60000, "w", byte_pos(sql, "WINDOW"))
        assert "WINDOW" not in n.text
        stmt = parse(sql).stmt
        assert isinstance(stmt, ast.SelectStmt)
        assert stmt.groupClause[0].fields[0].sval == "w"

    def test_slide_qualifier_and_case_folding(self):
        n = normalize('SELECT * FROM ev e WINDOW BY E.Ts EVERY 60000 SLIDE 30000 AS "Win"')
        assert n.window == WindowSpec("ts", "e", 60000, 30000, "Win", n.window.offset)

    def test_after_where_and_before_order_limit(self):
        sql = ("SELECT k, COUNT(*) FROM t WHERE v > 1 WINDOW BY ts EVERY 10 AS w "
               "GROUP BY w, k HAVING COUNT(*) > 1 ORDER BY k LIMIT 5")
        stmt = parse(sql).stmt
        assert stmt.whereClause is not None and stmt.limitCount is not None

    def test_clause_at_end_and_before_semicolon(self):
        assert normalize("SELECT * FROM t WINDOW BY ts EVERY 5 AS w").text == \
            "SELECT * FROM t "
        assert parse("SELECT * FROM t WINDOW BY ts EVERY 5 AS w;").ext.window.every_ms == 5

    def test_where_is_swallowed(self):
        sql = "SELECT * FROM t WINDOW BY ts EVERY 10 AS w WHERE v > 1"
        err = syntax_error(sql)
        assert err.error_type == "parse_error"
        assert err.message == "Unexpected token in WINDOW BY clause: WHERE"
        assert err.byte_offset == byte_pos(sql, "WHERE")

    @pytest.mark.parametrize("clause, message, at", [
        ("WINDOW BY ts EVERY 10", "Invalid WINDOW BY clause.", "WINDOW"),
        ("WINDOW BY ts", "Invalid WINDOW BY clause.", "WINDOW"),
        ("WINDOW BY ts EACH 10 AS w", "WINDOW BY clause requires EVERY window_ms.", "EACH"),
        ("WINDOW BY ts EVERY ten AS w", "WINDOW EVERY must be numeric.", "ten"),
        ("WINDOW BY ts EVERY 1.5 AS w", "WINDOW EVERY must be numeric.", "1.5"),
        ("WINDOW BY ts EVERY -10 AS w", "WINDOW EVERY must be numeric.", "-10"),
        ("WINDOW BY ts EVERY 10 SLIDE x AS w", "WINDOW SLIDE must be numeric.", "x AS"),
        ("WINDOW BY ts EVERY 10 SLIDE 5 w", "WINDOW BY clause requires AS output_col.", "w"),
        ("WINDOW BY ts EVERY 10 SLIDE 5 AS", "WINDOW BY clause requires AS output_col.",
         "AS"),
        ("WINDOW BY ts EVERY 10 AS w extra", "Unexpected token in WINDOW BY clause: extra",
         "extra"),
        ("WINDOW BY ts EVERY 10 AS w 'q'", "Unexpected token in WINDOW BY clause: q", "'q'"),
    ])
    def test_errors(self, clause, message, at):
        sql = f"SELECT 'é' FROM t {clause}"
        err = syntax_error(sql)
        assert err.error_type == "parse_error"
        assert err.message == message
        assert err.byte_offset == byte_pos(sql, at)
        if message == "Invalid WINDOW BY clause.":
            assert err.hint == WINDOW_HINT

    def test_every_message_is_rendered(self):
        err = syntax_error("SELECT * FROM t WINDOW BY ts EVERY x AS w")
        assert str(err) == ("error_type=parse_error; message=WINDOW EVERY must be numeric.; "
                            "byte_offset=35")

    def test_plain_postgres_window_clause_is_left_alone(self):
        n = normalize("SELECT a FROM t WINDOW w AS ()")
        assert n.window is None and n.text == "SELECT a FROM t WINDOW w AS ()"

    def test_nested_clause_is_not_an_extension(self):
        assert normalize("SELECT f(window by) FROM t").window is None


# --------------------------------------------------------------------------------------------
# KEYWORD SEARCH
# --------------------------------------------------------------------------------------------

KEYWORD_HINT = "Use KEYWORD SEARCH(col, ...) QUERY 'text' TOP_K n."


class TestKeywordSearch:
    def test_basic_with_default_top_k(self):
        sql = "SELECT * FROM docs KEYWORD SEARCH(title, Body, \"Tag\") QUERY 'it''s here'"
        n = normalize(sql)
        assert n.keyword_search == KeywordSearchSpec(("title", "body", "Tag"), "it's here", 10,
                                                     byte_pos(sql, "KEYWORD"))
        assert n.text == "SELECT * FROM docs "
        assert isinstance(parse(sql).stmt, ast.SelectStmt)

    def test_top_k_and_limit(self):
        sql = "SELECT * FROM docs WHERE x = 1 KEYWORD SEARCH(body) QUERY 'q' top_k 3 LIMIT 2"
        parsed = parse(sql)
        assert parsed.ext.keyword_search.top_k == 3
        assert parsed.stmt.limitCount.val.ival == 2

    @pytest.mark.parametrize("clause, message, at", [
        ("KEYWORD SEARCH body QUERY 'x'", "Invalid KEYWORD SEARCH clause.", "KEYWORD"),
        ("KEYWORD SEARCH", "Invalid KEYWORD SEARCH clause.", "KEYWORD"),
        ("KEYWORD SEARCH() QUERY 'x'", "Invalid KEYWORD SEARCH clause.", "KEYWORD"),
        ("KEYWORD SEARCH(a,) QUERY 'x'", "Invalid KEYWORD SEARCH clause.", "KEYWORD"),
        ("KEYWORD SEARCH(a) 'x'", "Invalid KEYWORD SEARCH clause.", "'x'"),
        ("KEYWORD SEARCH(a, b QUERY 'x'", "KEYWORD SEARCH column list must end with ')'.",
         "("),
        ("KEYWORD SEARCH(a) QUERY x", "KEYWORD SEARCH QUERY must be a quoted string literal.",
         "x"),
        ("KEYWORD SEARCH(a) QUERY", "KEYWORD SEARCH QUERY must be a quoted string literal.",
         "QUERY"),
        ("KEYWORD SEARCH(a) QUERY 'x' TOP_K many", "KEYWORD SEARCH TOP_K must be numeric.",
         "many"),
        ("KEYWORD SEARCH(a) QUERY 'x' TOP_K", "KEYWORD SEARCH TOP_K must be numeric.",
         "TOP_K"),
        ("KEYWORD SEARCH(a) QUERY 'x' TOP_K 3 WHERE", "Unexpected token in KEYWORD SEARCH "
         "clause: WHERE", "WHERE"),
    ])
    def test_errors(self, clause, message, at):
        sql = f"SELECT 'ü' FROM t {clause}"
        err = syntax_error(sql)
        assert err.error_type == "parse_error"
        assert err.message == message
        assert err.byte_offset == byte_pos(sql, at)
        if message == "Invalid KEYWORD SEARCH clause.":
            assert err.hint == KEYWORD_HINT


# --------------------------------------------------------------------------------------------
# HYBRID SEARCH
# --------------------------------------------------------------------------------------------

HYBRID_HINT = "Use HYBRID SEARCH col QUERY 'vector' [METRIC m] [TOP_K n]."


class TestHybridSearch:
    def test_defaults(self):
        sql = "SELECT * FROM v HYBRID SEARCH Emb QUERY '[1, 2, 3]'"
        n = normalize(sql)
        assert n.hybrid_search == HybridSearchSpec("emb", "[1, 2, 3]", "cosine", 10, None,
                                                   byte_pos(sql, "HYBRID"))
        assert isinstance(parse(sql).stmt, ast.SelectStmt)

    @pytest.mark.parametrize("tail", [
        "METRIC l2 TOP_K 3 SCORE_THRESHOLD 0.5",
        "SCORE_THRESHOLD 0.5 TOP_K 3 METRIC l2",
        "TOP_K 7 METRIC dot SCORE_THRESHOLD 9 METRIC l2 TOP_K 3 SCORE_THRESHOLD .5",
    ])
    def test_options_in_any_order_last_wins(self, tail):
        n = normalize(f"SELECT * FROM v HYBRID SEARCH e QUERY '1,2' {tail} LIMIT 4")
        spec = n.hybrid_search
        assert (spec.metric, spec.top_k, spec.score_threshold) == ("l2", 3, 0.5)
        assert n.text.endswith(" LIMIT 4")

    @pytest.mark.parametrize("literal, value", [
        ("-0.5", -0.5), ("1e-3", 1e-3), ("+2.5E+4", 2.5e4), ("-1E0", -1.0), (".5", 0.5), ("7e2", 700.0),
    ])
    def test_signed_and_exponent_thresholds(self, literal, value):
        # the Python API takes any float threshold (dot thresholds are often negative); SQL too
        n = normalize(f"SELECT * FROM v HYBRID SEARCH e QUERY '1,2' SCORE_THRESHOLD {literal} TOP_K 2")
        assert (n.hybrid_search.score_threshold, n.hybrid_search.top_k) == (value, 2)

    @pytest.mark.parametrize("literal", ["1e", "-", "- 0.5", "1e-3x", "--1", "1.2.3"])
    def test_malformed_thresholds(self, literal):
        err = syntax_error(f"SELECT * FROM v HYBRID SEARCH e QUERY '1' SCORE_THRESHOLD {literal}")
        assert err.message == "HYBRID SEARCH SCORE_THRESHOLD must be numeric."

    def test_metric_as_string(self):
        assert normalize("SELECT * FROM v HYBRID SEARCH e QUERY '1' METRIC 'Cosine'") \
            .hybrid_search.metric == "Cosine"

    @pytest.mark.parametrize("clause, message, at", [
        ("HYBRID SEARCH e QUERY", "Invalid HYBRID SEARCH clause.", "HYBRID"),
        ("HYBRID SEARCH e '[1]' QUERY", "Invalid HYBRID SEARCH clause.", "HYBRID"),
        ("HYBRID SEARCH t.e QUERY '[1]'", "Invalid HYBRID SEARCH clause.", "HYBRID"),
        ("HYBRID SEARCH e QUERY '[1]' METRIC", "Invalid HYBRID SEARCH clause.", "METRIC"),
        ("HYBRID SEARCH e QUERY [1, 2]", "HYBRID SEARCH QUERY must be a quoted vector literal.",
         "["),
        ("HYBRID SEARCH e QUERY '[1]' TOP_K x", "HYBRID SEARCH TOP_K must be numeric.", "x"),
        ("HYBRID SEARCH e QUERY '[1]' TOP_K 2.5", "HYBRID SEARCH TOP_K must be numeric.",
         "2.5"),
        ("HYBRID SEARCH e QUERY '[1]' SCORE_THRESHOLD -x",
         "HYBRID SEARCH SCORE_THRESHOLD must be numeric.", "-x"),
        ("HYBRID SEARCH e QUERY '[1]' SCORE_THRESHOLD 'x'",
         "HYBRID SEARCH SCORE_THRESHOLD must be numeric.", "'x'"),
        ("HYBRID SEARCH e QUERY '[1]' SCORE_THRESHOLD " + "9" * 400,
         "Invalid HYBRID SEARCH SCORE_THRESHOLD: " + "9" * 400, "999"),
        ("HYBRID SEARCH e QUERY '[1]' WHERE x = 1",
         "Unexpected token in HYBRID SEARCH clause: WHERE", "WHERE"),
    ])
    def test_errors(self, clause, message, at):
        sql = f"SELECT '€' FROM t {clause}"
        err = syntax_error(sql)
        assert err.error_type == "parse_error"
        assert err.message == message
        assert err.byte_offset == byte_pos(sql, at)
        if message == "Invalid HYBRID SEARCH clause.":
            assert err.hint == HYBRID_HINT


class TestClauseCombinations:
    def test_clauses_in_either_order(self):
        a = normalize("SELECT * FROM t KEYWORD SEARCH(b) QUERY 'x' HYBRID SEARCH e QUERY '[1]'")
        b = normalize("SELECT * FROM t HYBRID SEARCH e QUERY '[1]' KEYWORD SEARCH(b) QUERY 'x'")
        for n in (a, b):
            assert n.keyword_search.columns == ("b",)
            assert n.hybrid_search.column == "e"
            assert n.text.strip() == "SELECT * FROM t"

    def test_clause_after_limit(self):
        sql = "SELECT * FROM t LIMIT 3 HYBRID SEARCH e QUERY '[1]' TOP_K 2"
        parsed = parse(sql)
        assert parsed.ext.hybrid_search.top_k == 2
        assert parsed.stmt.limitCount.val.ival == 3

    def test_insert_select_with_window(self):
        sql = ("INSERT INTO out SELECT w, COUNT(*) AS c FROM ev "
               "WINDOW BY ts EVERY 1000 AS w GROUP BY w")
        parsed = parse(sql)
        assert isinstance(parsed.stmt, ast.InsertStmt)
        assert parsed.ext.window.output == "w"

    def test_offsets_after_a_removed_clause(self):
        sql = "SELECT 'é' FROM t WINDOW BY ts EVERY 10 AS w GROUP BY w ORDER BY = 1"
        err = syntax_error(sql)
        assert err.message == 'syntax error at or near "="'
        assert err.byte_offset == byte_pos(sql, "=")


# --------------------------------------------------------------------------------------------
# The pglast parse and offsets
# --------------------------------------------------------------------------------------------


class TestParse:
    def test_returns_parsed_statement(self):
        parsed = parse("SELECT a FROM t")
        assert isinstance(parsed, ParsedStatement)
        assert parsed.original == "SELECT a FROM t"
        assert isinstance(parsed.stmt, ast.SelectStmt)
        assert parsed.stmt_location == 0

    def test_type_error(self):
        with pytest.raises(TypeError):
            parse(b"SELECT 1")

    def test_postgres_error_offset_in_original_bytes(self):
        sql = "SELECT 'é' FROM t WHERE x = = 1"
        err = syntax_error(sql)
        assert err.error_type == "parse_error"
        assert err.message == 'syntax error at or near "="'
        assert err.byte_offset == byte_pos(sql, "=", nth=1) == 29

    def test_error_after_insertions(self):
        sql = "SELECT left(a, 1), right(b, 1) FROM t WHERE 'ü' = = 1"
        err = syntax_error(sql)
        assert err.byte_offset == byte_pos(sql, "=", nth=1)

    def test_error_at_end_of_input(self):
        sql = "SELECT 'é' FROM"
        err = syntax_error(sql)
        assert err.message == "syntax error at end of input"
        assert err.byte_offset == len(sql.encode())

    @pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment"])
    def test_empty_query(self, sql):
        err = syntax_error(sql)
        assert err.error_type == "empty_query"
        assert err.message == "No statements in query."

    def test_multi_statement(self):
        sql = "SELECT 1; SELECT 2; SELECT 3"
        err = unsupported(sql)
        assert err.error_type == "unsupported_sql_feature"
        assert err.message == "multi_statement: Multiple SQL statements detected (3)."
        assert err.hint == "Execute each statement separately."
        assert err.byte_offset == byte_pos(sql, "SELECT 2")

    def test_trailing_semicolon_is_one_statement(self):
        assert isinstance(parse("SELECT 1;").stmt, ast.SelectStmt)

    def test_node_offset(self):
        sql = "SELECT 'é', x FROM t"
        parsed = parse(sql)
        assert node_offset(parsed, parsed.stmt.targetList[1].val) == byte_pos(sql, "x FROM")
        assert node_offset(parsed, parsed.stmt) is None  # SelectStmt has no location
        assert node_offset(parsed, None) is None

    def test_to_original_offset_inside_insertions(self):
        sql = "CREATE TABLE t USING csv"
        n = normalize(sql)
        assert n.text.startswith("CREATE TABLE t ()")
        assert n.to_original_offset(n.text.index("()")) == byte_pos(sql, " USING")
        assert n.to_original_offset(len(n.text)) == len(sql)
        with pytest.raises(ValueError):
            n.to_original_offset(-1)

    def test_to_original_offset_identity_without_edits(self):
        sql = "SELECT 'ä', b FROM t"
        n = normalize(sql)
        assert n.text == sql
        assert n.to_original_offset(sql.index("b")) == byte_pos(sql, "b")

    def test_literal_node_classes(self):
        stmt = parse("SELECT -5, 3000000000, 1e3, 'x', TRUE, NULL FROM t").stmt
        vals = [t.val for t in stmt.targetList]
        assert all(isinstance(v, ast.A_Const) for v in vals)
        assert isinstance(vals[0].val, ast.Integer) and vals[0].val.ival == -5
        assert isinstance(vals[1].val, ast.Float) and vals[1].val.fval == "3000000000"
        assert isinstance(vals[3].val, ast.String)
        assert isinstance(vals[4].val, ast.Boolean)
        assert vals[5].isnull


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


class TestFeatureValidation:
    @pytest.mark.parametrize("sql, message, hint, at", [
        ("SELECT 'é' FROM t, LATERAL (SELECT a FROM t) s",
         "subquery: LATERAL subquery in FROM not supported.",
         "Join a derived table on a key instead.", "(SELECT"),
        ("WITH RECURSIVE x AS (SELECT 1) SELECT * FROM x",
         "cte: WITH RECURSIVE is not supported.",
         "Only non-recursive WITH queries are supported.", "WITH"),
        ("WITH x AS (INSERT INTO t VALUES (1)) SELECT * FROM x",
         "cte: a WITH query must be a SELECT.",
         "Run INSERT / CREATE statements on their own, then query the table.", "x AS"),
    ])
    def test_features(self, sql, message, hint, at):
        err = unsupported(sql)
        assert err.error_type == "unsupported_sql_feature"
        assert err.message == message
        assert err.hint == hint
        assert err.byte_offset == byte_pos(sql, at)

    def test_cte_wins_over_subquery_and_window(self):
        err = unsupported("WITH RECURSIVE x AS (SELECT 1) SELECT b FROM x, LATERAL (SELECT 2) s")
        assert err.message.startswith("cte:")

    @pytest.mark.parametrize("sql", [
        "SELECT 'é', (SELECT 1) FROM t",
        "SELECT a FROM t WHERE a IN (SELECT b FROM u)",
        "SELECT a FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.b = t.a)",
        "INSERT INTO o SELECT * FROM t WHERE a IN (SELECT 1)",
    ])
    def test_subqueries_in_expressions_pass_validation(self, sql):
        parse(sql)          # the planner decides which subqueries it supports

    @pytest.mark.parametrize("sql", [
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "WITH x AS (SELECT 1), y AS (SELECT * FROM x) SELECT * FROM x JOIN y ON TRUE",
        "SELECT * FROM (SELECT a FROM t) s",
        "INSERT INTO o SELECT * FROM (SELECT 1) s",
    ])
    def test_plain_ctes_and_derived_tables_pass(self, sql):
        parse(sql)


class TestStatementValidation:
    @pytest.mark.parametrize("sql, what", [
        ("UPDATE t SET a = 1", "UPDATE"),
        ("DELETE FROM t", "DELETE"),
        ("DROP SCHEMA s", "DROP"),
        ("CREATE MATERIALIZED VIEW m AS SELECT 1", "CREATE MATERIALIZED VIEW"),
        ("SHOW search_path", "SHOW"),
        ("ALTER TABLE t ADD COLUMN b INT", "ALTER TABLE"),
        ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN with options"),
        ("TRUNCATE t", "TRUNCATE"),
        ("CREATE SCHEMA s", "CREATE SCHEMA"),
        ("SELECT * INTO x FROM t", "SELECT INTO"),
        ("BEGIN", "transaction control"),
    ])
    def test_unsupported_statements(self, sql, what):
        err = unsupported(sql)
        assert err.error_type == "unsupported_statement"
        assert err.message == f"not supported in SQL v1: {what} is not supported"
        assert err.hint
        assert err.byte_offset == 0

    def test_statement_offset_skips_leading_space(self):
        assert unsupported("  DELETE FROM t").byte_offset == 2

    @pytest.mark.parametrize("sql", [
        "SELECT a FROM t UNION ALL SELECT a FROM u UNION SELECT b FROM v",
        "SELECT a FROM t INTERSECT SELECT a FROM u EXCEPT ALL SELECT a FROM v",
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO t (a, b) SELECT a, b FROM u",
        "CREATE TABLE t (a INT, b TEXT)",
        "SELECT a.x, b.y FROM a LEFT JOIN b ON a.id = b.id WHERE a.x > 1 ORDER BY x LIMIT 3",
    ])
    def test_supported_statements_pass(self, sql):
        parse(sql)
