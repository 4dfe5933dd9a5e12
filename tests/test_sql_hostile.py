"""The SQL frontend under hostile or generated SQL (found by fuzzing).

NUL characters, text inside PostgreSQL's other literal forms, nesting at and past the
documented limit of 1000 levels, and valid SQL that used to be rejected.
"""
from __future__ import annotations

import pyarrow as pa
import pytest

from velaria import Session
from velaria.errors import ExecutionError, SQLSemanticError, SQLSyntaxError, SQLUnsupportedError
from velaria.sql.depth import MAX_EXPRESSION_DEPTH
from velaria.sql.normalize import normalize, tokenize
from velaria.sql.shallow import MAX_EVALUATED_HEIGHT, height, shallow_plan
from velaria.plan import logical as L


@pytest.fixture(params=["reference", "auto"])
def s(request):
    sess = Session(request.param)
    sess.create_temp_view("t", sess.create_dataframe_from_arrow(pa.table({
        "a": pa.array([1, 2, 3, 4], pa.int64()), "s": ["ab", "a%c", "xbx", None]})))
    return sess


def rows(s, sql, params=None):
    return s.sql(sql, params).to_rows()["rows"]


# ----------------------------------------------------------------------------------- NUL
def test_nul_character_is_a_syntax_error_at_its_offset(s):
    sql = "SELECT a FROM t\x00 WHERE a = 4"
    with pytest.raises(SQLSyntaxError) as info:
        s.sql(sql)
    assert info.value.message == "NUL character (0x00) in SQL text"
    assert info.value.byte_offset == sql.index("\x00")
    assert "Remove the NUL" in info.value.hint


def test_nul_inside_a_literal_is_rejected_too(s):
    with pytest.raises(SQLSyntaxError, match="NUL character"):
        s.sql("SELECT 'a\x00b'")


# ----------------------------------------------------------------------------------- literals
def test_dollar_quoted_text_is_never_rewritten(s):
    assert rows(s, "SELECT $$ left( $$") == [[" left( "]]
    assert rows(s, "SELECT $tag$ POSITION( $$ $tag$") == [[" POSITION( $$ "]]


def test_extension_words_inside_escape_and_dollar_strings_are_text(s):
    assert rows(s, "SELECT E'it\\'s HYBRID SEARCH x QUERY' AS v") == [["it's HYBRID SEARCH x QUERY"]]
    assert rows(s, "SELECT $$HYBRID SEARCH v QUERY '[1]'$$ AS v") == [["HYBRID SEARCH v QUERY '[1]'"]]
    assert rows(s, "SELECT $q$WINDOW BY ts EVERY 10 AS w$q$ AS v") == [["WINDOW BY ts EVERY 10 AS w"]]


def test_tokenizer_kinds_for_literal_forms():
    kinds = [(t.kind, t.value) for t in tokenize("E'a\\nb' $$x$$ $1 a$b e'q'")]
    assert kinds == [("string", "a\nb"), ("string", "x"), ("param", "$1"), ("word", "a$b"),
                     ("string", "q")]


def test_word_ending_in_e_is_not_a_string_prefix():
    assert [t.kind for t in tokenize("SELECT name'x'")] == ["word", "word", "string"]


# ----------------------------------------------------------------------------------- depth
def test_250_anded_predicates_run(s):
    sql = "SELECT a FROM t WHERE " + " AND ".join(["a > 1"] * 250)
    assert rows(s, sql) == [[2], [3], [4]]


def test_10000_ored_predicates_run(s):
    sql = "SELECT a FROM t WHERE " + " OR ".join(f"a = {i}" for i in range(3, 10003))
    assert rows(s, sql) == [[3], [4]]


def test_sum_at_the_depth_limit_runs(s):
    terms = MAX_EXPRESSION_DEPTH  # 1000 terms: 999 nested additions
    assert rows(s, "SELECT " + "+".join(["a"] * terms) + " FROM t WHERE a = 2") == [[2 * terms]]


def test_nested_calls_at_the_limit_run(s):
    sql = "SELECT " + "abs(" * 999 + "-a" + ")" * 999 + " FROM t WHERE a = 3"
    assert rows(s, sql) == [[3.0]]


@pytest.mark.parametrize("sql", [
    "SELECT " + "+".join(["a"] * (MAX_EXPRESSION_DEPTH + 2)) + " FROM t",
    "SELECT " + "abs(" * (MAX_EXPRESSION_DEPTH + 1) + "a" + ")" * (MAX_EXPRESSION_DEPTH + 1) + " FROM t",
    "SELECT " + "(" * 20000 + "1" + ")" * 20000,
    "SELECT " + "+".join(["a"] * 100_000) + " FROM t",     # would crash the C parser
    " UNION ALL ".join(["SELECT 1"] * 20_000),
])
def test_past_the_limit_is_expression_too_deep(s, sql):
    with pytest.raises(SQLUnsupportedError) as info:
        s.sql(sql)
    assert info.value.error_type == "expression_too_deep"
    assert info.value.message == "expression too deep: nesting exceeds the limit of 1000 levels"
    assert info.value.byte_offset is not None
    assert "WITH" in info.value.hint


def test_recursion_limit_is_restored_after_planning(s):
    import sys
    before = sys.getrecursionlimit()
    rows(s, "SELECT " + "+".join(["a"] * 900) + " FROM t")
    with pytest.raises(SQLUnsupportedError):
        s.sql("SELECT " + "+".join(["a"] * 1100) + " FROM t")
    assert sys.getrecursionlimit() == before


def test_500_way_union_all_is_one_union_node(s):
    sql = " UNION ALL ".join(f"SELECT a + {i} AS v FROM t WHERE a = 1" for i in range(500))
    df = s.sql(sql)
    assert isinstance(df._plan, L.Union) and len(df._plan.inputs) == 500
    assert [r[0] for r in df.to_rows()["rows"]] == list(range(1, 501))


def test_mixed_union_kinds_keep_their_grouping(s):
    # (a UNION b) UNION ALL c: only the first two are deduplicated
    sql = "SELECT 1 AS v UNION SELECT 1 UNION ALL SELECT 1"
    assert rows(s, sql) == [[1], [1]]


def test_deep_expressions_are_split_into_projections(s):
    sql = "SELECT " + "+".join(["a"] * 600) + " AS v FROM t"
    plan = shallow_plan(s.sql(sql)._plan)
    stack, tallest = [plan], 0
    while stack:
        node = stack.pop()
        if isinstance(node, L.Project):
            tallest = max([tallest] + [height(e) for e in node.exprs])
        stack.extend(L.children(node))
    assert tallest <= MAX_EVALUATED_HEIGHT


def test_deep_where_and_aggregate_arguments(s):
    deep = "+".join(["a"] * 700)
    assert rows(s, f"SELECT a FROM t WHERE {deep} > 1400") == [[3], [4]]
    assert rows(s, f"SELECT SUM({deep}) AS total FROM t") == [[7000]]


def test_deep_case_branch_only_runs_on_its_rows(s):
    # the deep branch is not computed ahead: 1 / (a - 1) would be NULL, CAST('x') would fail
    deep = "+".join(["CAST(s AS INT)"] * 400)
    sql = f"SELECT CASE WHEN a = 5 THEN {deep} ELSE a END AS v FROM t"
    assert rows(s, sql) == [[1], [2], [3], [4]]
    assert "Select" in s.sql(sql).explain()  # deep CASE: explained with room for recursion


def test_deep_case_branch_in_copy_and_create_table_as(s, tmp_path):
    # COPY and CREATE TABLE AS run the query like SELECT does, with room for the deep branch
    deep = "+".join(["a"] * 900)
    query = f"SELECT CASE WHEN a > 0 THEN {deep} END AS v FROM t"
    assert rows(s, f"COPY ({query}) TO '{tmp_path / 'o.csv'}'") == [[True, "copy done", 4]]
    assert (tmp_path / "o.csv").read_text().split() == ['"v"', "900", "1800", "2700", "3600"]
    assert rows(s, f"CREATE TABLE c AS {query}") == [[True, "create table done", 4]]


# ----------------------------------------------------------------------------------- valid SQL
def test_limit_past_int32(s):
    assert rows(s, "SELECT a FROM t LIMIT 2147483648") == [[1], [2], [3], [4]]
    assert rows(s, "SELECT a FROM t LIMIT 9223372036854775807 OFFSET 3") == [[4]]


def test_position_in_syntax(s):
    assert rows(s, "SELECT POSITION('b' IN s), POSITION('b', s) FROM t") == \
        [[2, 2], [0, 0], [2, 2], [None, None]]


def test_like_escape(s):
    assert rows(s, "SELECT a FROM t WHERE s LIKE 'a!%c' ESCAPE '!'") == [[2]]
    assert rows(s, "SELECT a FROM t WHERE s LIKE 'a!%%' ESCAPE '!'") == [[2]]
    assert rows(s, "SELECT a FROM t WHERE s NOT LIKE '%!%%' ESCAPE '!'") == [[1], [3]]
    assert rows(s, "SELECT a FROM t WHERE s ILIKE 'A#%C' ESCAPE '#'") == [[2]]
    assert rows(s, "SELECT 'a_' LIKE 'a__' ESCAPE '_', 'a%' LIKE 'a%' ESCAPE ''") == [[True, True]]


def test_like_escape_errors(s):
    with pytest.raises(ExecutionError, match="ESCAPE must be one character"):
        rows(s, "SELECT s LIKE 'a' ESCAPE '!!' FROM t")
    with pytest.raises(ExecutionError, match="ends with the escape character"):
        rows(s, "SELECT s LIKE 'a!' ESCAPE '!' FROM t")


def test_bitwise_operators(s):
    sql = "SELECT a & 6, a | 8, a # 3, a << 2, -a >> 1, ~a FROM t WHERE a IN (1, 4)"
    assert rows(s, sql) == [[0, 9, 2, 4, -1, -2], [4, 12, 7, 16, -2, -5]]
    assert rows(s, "SELECT NULL & 1, 1 << NULL") == [[None, None]]


def test_bitwise_errors(s):
    with pytest.raises(SQLSemanticError, match=r"operator & is not defined for BIGINT and DOUBLE"):
        s.sql("SELECT a & 1.5 FROM t")
    with pytest.raises(SQLSemanticError, match=r"operator # is not defined for VARCHAR and BIGINT"):
        s.sql("SELECT s # 1 FROM t")
    with pytest.raises(ExecutionError, match="shift count out of range: << 64"):
        rows(s, "SELECT a << 64 FROM t")
    with pytest.raises(ExecutionError, match="BIGINT overflow"):
        rows(s, "SELECT 3 << 62")


def test_create_table_as_select_literal(s):
    assert rows(s, "CREATE TABLE f AS SELECT 1") == [[1, "create table done", 1]]
    assert rows(s, "SELECT * FROM f") == [[1]]


def test_question_mark_placeholders_are_numbered_in_the_text():
    assert normalize("SELECT ?, 'x?', ?").text == "SELECT $1, 'x?', $2"


def test_mixed_placeholder_styles_are_rejected(s):
    with pytest.raises(SQLSyntaxError, match="cannot mix"):
        s.sql("SELECT $1, ?", [1, 2])
