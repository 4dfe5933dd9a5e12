"""SELECT semantics of the batch engine, end to end through ``Session.sql`` (docs/sql.md).

Every expected value is written out by hand from docs/sql.md and docs/divergences.md; the pure
reference kernels have their own unit tests, this file checks the planner + executor around
them.
"""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from velaria import Session
from velaria.errors import SqlError


def rows(s, sql):
    return s.sql(sql).to_rows()["rows"]


def names(s, sql):
    return s.sql(sql).to_rows()["schema"]


ENGINES = ["reference", "auto"]


@pytest.fixture(params=ENGINES)
def s(request):
    sess = Session(request.param)
    t = pa.table({
        "id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "sym": ["a", "b", "a", None, "c", "b"],
        "qty": pa.array([10, None, 30, 40, 50, 60], pa.int64()),
        "price": [1.5, 2.5, None, 4.0, 5.5, 2.5],
        "flag": [True, False, None, True, False, True],
        "lo": pa.array([1, 5, 3, None, 9, 6], pa.int64()),
    })
    sess.create_temp_view("t", sess.create_dataframe_from_arrow(t))
    return sess


# ------------------------------------------------------------------------------- projection
def test_star_and_order_of_columns(s):
    df = s.sql("SELECT * FROM t")
    assert df.to_rows()["schema"] == ["id", "sym", "qty", "price", "flag", "lo"]
    assert df.count() == 6


def test_star_with_other_items_and_qualified_star(s):
    assert names(s, "SELECT id AS k, * FROM t LIMIT 1") == ["k", "id", "sym", "qty", "price", "flag", "lo"]
    assert names(s, "SELECT x.* FROM t x LIMIT 1") == ["id", "sym", "qty", "price", "flag", "lo"]


def test_aliases_and_expressions(s):
    got = s.sql("SELECT id AS k, qty * 2 AS q2, sym FROM t WHERE id <= 2").to_rows()
    assert got == {"schema": ["k", "q2", "sym"], "rows": [[1, 20, "a"], [2, None, "b"]]}


def test_case_insensitive_column_resolution(s):
    assert rows(s, 'SELECT ID FROM t WHERE Id = 1') == [[1]]
    # docs/sql.md: a name differing only in case resolves when the match is unique (quoted too)
    assert rows(s, 'SELECT "ID" FROM t WHERE id = 2') == [[2]]


# ------------------------------------------------------------------------------- WHERE / 3VL
def test_where_null_comparisons_are_not_true(s):
    # qty is NULL for id 2: neither qty = NULL, qty <> 10 nor NOT (qty = 10) keep it.
    assert rows(s, "SELECT id FROM t WHERE qty = NULL") == []
    assert rows(s, "SELECT id FROM t WHERE NULL = NULL") == []
    assert rows(s, "SELECT id FROM t WHERE qty <> 10") == [[3], [4], [5], [6]]
    assert rows(s, "SELECT id FROM t WHERE NOT (qty = 10)") == [[3], [4], [5], [6]]
    assert rows(s, "SELECT id FROM t WHERE qty IS NULL") == [[2]]
    assert rows(s, "SELECT id FROM t WHERE qty IS NOT NULL AND id < 4") == [[1], [3]]


def test_where_and_or_with_null(s):
    # NULL OR TRUE is TRUE; NULL AND TRUE is NULL.
    assert rows(s, "SELECT id FROM t WHERE qty > 35 OR id = 2") == [[2], [4], [5], [6]]
    assert rows(s, "SELECT id FROM t WHERE flag OR id = 3") == [[1], [3], [4], [6]]
    assert rows(s, "SELECT id FROM t WHERE flag AND id > 0") == [[1], [4], [6]]
    assert rows(s, "SELECT id FROM t WHERE NOT flag") == [[2], [5]]
    assert rows(s, "SELECT id FROM t WHERE flag IS NOT TRUE") == [[2], [3], [5]]


def test_null_logic_in_projection(s):
    got = rows(s, "SELECT flag AND NULL, flag OR NULL, NOT flag FROM t WHERE id <= 3")
    assert got == [[None, True, False], [False, None, True], [None, None, None]]


def test_column_to_column_comparison(s):
    assert rows(s, "SELECT id FROM t WHERE lo > id") == [[2], [5]]
    assert rows(s, "SELECT id FROM t WHERE lo = id") == [[1], [3], [6]]
    assert rows(s, "SELECT id FROM t WHERE qty > price * 10") == [[6]]


def test_in_and_not_in_with_null(s):
    assert rows(s, "SELECT id FROM t WHERE id IN (1, 3, 99)") == [[1], [3]]
    assert rows(s, "SELECT id FROM t WHERE sym IN ('a', 'c')") == [[1], [3], [5]]
    assert rows(s, "SELECT id FROM t WHERE id NOT IN (1, 2, 3)") == [[4], [5], [6]]
    # x NOT IN (1, NULL) is never TRUE
    assert rows(s, "SELECT id FROM t WHERE id NOT IN (1, NULL)") == []
    assert rows(s, "SELECT id FROM t WHERE id IN (1, NULL)") == [[1]]


def test_between_and_like(s):
    assert rows(s, "SELECT id FROM t WHERE qty BETWEEN 30 AND 50") == [[3], [4], [5]]
    assert rows(s, "SELECT id FROM t WHERE qty NOT BETWEEN 30 AND 50") == [[1], [6]]
    assert rows(s, "SELECT id FROM t WHERE id BETWEEN lo AND 4") == [[1], [3]]
    s.create_temp_view("w", s.create_dataframe_from_arrow(pa.table({"w": ["apple", "Apricot", "banana", None, "a_b", "axb"]})))
    assert rows(s, "SELECT w FROM w WHERE w LIKE 'ap%'") == [["apple"]]
    assert rows(s, "SELECT w FROM w WHERE w ILIKE 'ap%'") == [["apple"], ["Apricot"]]
    assert rows(s, "SELECT w FROM w WHERE w NOT LIKE '%an%'") == [["apple"], ["Apricot"], ["a_b"], ["axb"]]
    assert rows(s, "SELECT w FROM w WHERE w LIKE 'a_b'") == [["a_b"], ["axb"]]


def test_case_cast_coalesce_nullif(s):
    got = rows(s, "SELECT CASE WHEN qty >= 40 THEN 'big' WHEN qty IS NULL THEN 'none' ELSE 'small' END, "
                  "CASE sym WHEN 'a' THEN 1 WHEN 'b' THEN 2 END FROM t ORDER BY id")
    assert got == [["small", 1], ["none", 2], ["small", 1], ["big", None], ["big", None], ["big", 2]]
    got = rows(s, "SELECT CAST(id AS STRING), CAST('7' AS INT), CAST(price AS INT), id::DOUBLE, "
                  "CAST(1 AS BOOLEAN) FROM t WHERE id = 1")
    assert got == [["1", 7, 1, 1.0, True]]
    got = rows(s, "SELECT COALESCE(qty, lo, -1), NULLIF(sym, 'a') FROM t ORDER BY id")
    assert got == [[10, None], [5, "b"], [30, None], [40, None], [50, "c"], [60, "b"]]


def test_cast_real_is_float32(s):
    df = s.sql("SELECT CAST(price AS REAL) AS r FROM t")
    assert df.to_arrow().schema.field("r").type == pa.float32()


def test_bad_cast_is_an_error(s):
    with pytest.raises(RuntimeError):
        s.sql("SELECT CAST(sym AS INT) FROM t").to_rows()


# ------------------------------------------------------------------------------- arithmetic
def test_arithmetic_types(s):
    df = s.sql("SELECT id + 1 AS a, id * price AS b, 7 / 2 AS c, id % 4 AS d, -id AS e, id - lo AS f FROM t WHERE id = 5")
    tbl = df.to_arrow()
    assert [f.type for f in tbl.schema] == [pa.int64(), pa.float64(), pa.float64(), pa.int64(), pa.int64(), pa.int64()]
    assert df.to_rows()["rows"] == [[6, 27.5, 3.5, 1, -5, -4]]


def test_division_and_modulo_by_zero_are_null(s):
    assert rows(s, "SELECT id / 0, id % 0, price / 0, id / (lo - lo) FROM t WHERE id = 1") == [[None, None, None, None]]


def test_integer_overflow_is_an_error(s):
    with pytest.raises(RuntimeError):
        rows(s, "SELECT id * 9223372036854775807 FROM t")


def test_string_concat_operator(s):
    assert rows(s, "SELECT sym || '-' || id FROM t WHERE id = 1") == [["a-1"]]


# ------------------------------------------------------------------------------- GROUP BY
def test_group_by_first_appearance_order_and_null_group(s):
    got = rows(s, "SELECT sym, COUNT(*), SUM(qty) FROM t GROUP BY sym")
    assert got == [["a", 2, 40], ["b", 2, 60], [None, 1, 40], ["c", 1, 50]]


def test_group_by_key_types_preserved(s):
    tbl = s.sql("SELECT flag, id, COUNT(*) AS n FROM t GROUP BY flag, id").to_arrow()
    assert tbl.schema.field("flag").type == pa.bool_()
    assert tbl.schema.field("id").type == pa.int64()
    s.create_temp_view("i32", s.create_dataframe_from_arrow(pa.table({"k": pa.array([2, 1, 2], pa.int32())})))
    tbl = s.sql("SELECT k, COUNT(*) AS n FROM i32 GROUP BY k").to_arrow()
    assert tbl.schema.field("k").type == pa.int32()
    assert tbl.column("k").to_pylist() == [2, 1]


def test_group_by_expression_alias_and_position(s):
    want = [[1, 3], [0, 3]]
    assert rows(s, "SELECT id % 2 AS odd, COUNT(*) FROM t GROUP BY id % 2") == want
    assert rows(s, "SELECT id % 2 AS odd, COUNT(*) FROM t GROUP BY odd") == want
    assert rows(s, "SELECT id % 2 AS odd, COUNT(*) FROM t GROUP BY 1") == want
    # a key expression used inside a bigger select expression
    assert rows(s, "SELECT (id % 2) * 10, COUNT(*) FROM t GROUP BY id % 2") == [[10, 3], [0, 3]]


def test_group_by_key_not_selected(s):
    assert rows(s, "SELECT COUNT(*) FROM t GROUP BY sym") == [[2], [2], [1], [1]]


def test_aggregates_all_kinds(s):
    df = s.sql("SELECT COUNT(*) AS c, COUNT(qty) AS cq, SUM(qty) AS sq, AVG(qty) AS aq, MIN(qty) AS mi, "
               "MAX(qty) AS ma, SUM(price) AS sp, MIN(sym) AS ms, MAX(sym) AS xs FROM t")
    tbl = df.to_arrow()
    assert tbl.schema.field("sq").type == pa.int64()
    assert tbl.schema.field("aq").type == pa.float64()
    assert tbl.schema.field("sp").type == pa.float64()
    assert tbl.schema.field("c").type == pa.int64()
    assert df.to_rows()["rows"] == [[6, 5, 190, 38.0, 10, 60, 16.0, "a", "c"]]


def test_distinct_aggregates(s):
    got = rows(s, "SELECT COUNT(DISTINCT sym), SUM(DISTINCT price), AVG(DISTINCT price), "
                  "COUNT(DISTINCT price), MIN(DISTINCT qty) FROM t")
    assert got == [[3, 13.5, 3.375, 4, 10]]
    assert rows(s, "SELECT sym, COUNT(DISTINCT price) FROM t GROUP BY sym ORDER BY sym") == \
        [["a", 1], ["b", 1], ["c", 1], [None, 1]]


def test_aggregates_on_empty_input(s):
    got = rows(s, "SELECT COUNT(*), COUNT(qty), SUM(qty), AVG(qty), MIN(qty), MAX(sym) FROM t WHERE id > 100")
    assert got == [[0, 0, None, None, None, None]]
    assert rows(s, "SELECT sym, COUNT(*) FROM t WHERE id > 100 GROUP BY sym") == []


def test_aggregates_over_all_null_input(s):
    assert rows(s, "SELECT SUM(qty), AVG(qty), COUNT(qty) FROM t WHERE id = 2") == [[None, None, 0]]


def test_expression_over_aggregates_and_over_expression(s):
    assert rows(s, "SELECT SUM(qty) / COUNT(*) FROM t") == [[190 / 6]]
    assert rows(s, "SELECT sym, SUM(qty * 2) + 1 FROM t WHERE sym = 'a' GROUP BY sym") == [["a", 81]]


def test_sum_overflow_is_error(s):
    big = pa.table({"x": pa.array([2**62, 2**62, 2**62], pa.int64())})
    s.create_temp_view("big", s.create_dataframe_from_arrow(big))
    with pytest.raises(RuntimeError) as info:
        rows(s, "SELECT SUM(x) FROM big")
    assert "CAST" in str(info.value)
    assert rows(s, "SELECT SUM(CAST(x AS DOUBLE)) FROM big") == [[3.0 * 2**62]]


def test_having_on_aggregate_and_alias(s):
    assert rows(s, "SELECT sym, COUNT(*) AS n FROM t GROUP BY sym HAVING COUNT(*) >= 2") == [["a", 2], ["b", 2]]
    assert rows(s, "SELECT sym, COUNT(*) AS n FROM t GROUP BY sym HAVING n >= 2") == [["a", 2], ["b", 2]]
    assert rows(s, "SELECT sym, SUM(qty) AS total FROM t GROUP BY sym HAVING MAX(qty) > 45 ORDER BY total") == \
        [["c", 50], ["b", 60]]
    assert rows(s, "SELECT sym FROM t GROUP BY sym HAVING sym IS NOT NULL AND SUM(qty) > 45") == [["b"], ["c"]]


def test_docs_example_having_order(s):
    s.create_temp_view("trades", s.create_dataframe_from_arrow(pa.table(
        {"symbol": ["x", "y", "x", "y", "z", "y"], "qty": [1, 2, 3, 4, 5, 6]})))
    got = s.sql("SELECT symbol, COUNT(*) AS n, SUM(qty) AS total FROM trades GROUP BY symbol "
                "HAVING n >= 2 ORDER BY total DESC").to_rows()
    assert got == {"schema": ["symbol", "n", "total"], "rows": [["y", 3, 12], ["x", 2, 4]]}


# ------------------------------------------------------------------------------- ORDER BY
def test_order_by_asc_desc_nulls(s):
    assert rows(s, "SELECT id FROM t ORDER BY qty") == [[1], [3], [4], [5], [6], [2]]
    assert rows(s, "SELECT id FROM t ORDER BY qty DESC") == [[2], [6], [5], [4], [3], [1]]
    assert rows(s, "SELECT id FROM t ORDER BY qty NULLS FIRST") == [[2], [1], [3], [4], [5], [6]]
    assert rows(s, "SELECT id FROM t ORDER BY qty DESC NULLS LAST") == [[6], [5], [4], [3], [1], [2]]


def test_order_by_alias_position_and_hidden_expression(s):
    assert rows(s, "SELECT id, qty AS q FROM t ORDER BY q DESC LIMIT 2") == [[2, None], [6, 60]]
    assert rows(s, "SELECT id, qty FROM t ORDER BY 2 LIMIT 2") == [[1, 10], [3, 30]]
    # expression over columns not in the SELECT list; output keeps only the select items
    got = s.sql("SELECT sym FROM t ORDER BY price * -1, id").to_rows()
    assert got["schema"] == ["sym"]
    assert got["rows"] == [["c"], [None], ["b"], ["b"], ["a"], ["a"]]


def test_order_by_is_stable_and_multi_key(s):
    assert rows(s, "SELECT id FROM t ORDER BY sym DESC, id DESC") == [[4], [5], [6], [2], [3], [1]]
    assert rows(s, "SELECT id FROM t ORDER BY price") == [[1], [2], [6], [4], [5], [3]]


def test_order_by_nan_sorts_above_numbers(s):
    s.create_temp_view("f", s.create_dataframe_from_arrow(pa.table({"x": [1.0, float("nan"), None, -1.0]})))
    got = rows(s, "SELECT x FROM f ORDER BY x")
    assert got[0] == [-1.0] and got[1] == [1.0] and math.isnan(got[2][0]) and got[3] == [None]


def test_limit_offset(s):
    assert rows(s, "SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 3") == [[4], [5]]
    assert rows(s, "SELECT id FROM t ORDER BY id OFFSET 4") == [[5], [6]]
    assert rows(s, "SELECT id FROM t LIMIT 0") == []
    assert rows(s, "SELECT id FROM t ORDER BY id LIMIT 100") == [[1], [2], [3], [4], [5], [6]]
    assert rows(s, "SELECT id FROM t ORDER BY id LIMIT 3 OFFSET 10") == []


def test_top_n_equals_full_sort():
    import random
    rnd = random.Random(7)
    n = 3000
    t = pa.table({"k": [rnd.choice([None, *range(50)]) for _ in range(n)],
                  "f": [rnd.choice([None, float("nan"), *[x / 4 for x in range(40)]]) for _ in range(n)],
                  "i": list(range(n))})
    for batch_rows in (7, 65536):
        s = Session(batch_rows=batch_rows)
        s.create_temp_view("r", s.create_dataframe_from_arrow(t))
        for order in ("k, i", "k DESC, f", "f DESC NULLS LAST, k NULLS FIRST", "f, k DESC"):
            full = rows(s, f"SELECT i FROM r ORDER BY {order}")
            for lim, off in ((1, 0), (10, 0), (37, 5), (2999, 0), (5000, 2)):
                got = rows(s, f"SELECT i FROM r ORDER BY {order} LIMIT {lim} OFFSET {off}")
                assert got == full[off:off + lim], (order, lim, off)


# ------------------------------------------------------------------------------- joins
@pytest.fixture(params=ENGINES)
def j(request):
    sess = Session(request.param)
    sess.create_temp_view("l", sess.create_dataframe_from_arrow(pa.table({
        "id": [1, 2, 3, 4, None], "k2": ["x", "y", "x", "y", "x"], "v": ["l1", "l2", "l3", "l4", "l5"]})))
    sess.create_temp_view("r", sess.create_dataframe_from_arrow(pa.table({
        "id": [2, 3, 3, None, 5], "k2": ["y", "x", "z", "x", "x"], "w": [20, 30, 31, 99, 50]})))
    return sess


def test_inner_join_one_key_with_duplicates_and_null(j):
    got = j.sql("SELECT l.v, r.w FROM l JOIN r ON l.id = r.id ORDER BY v, w").to_rows()
    assert got == {"schema": ["v", "w"], "rows": [["l2", 20], ["l3", 30], ["l3", 31]]}


def test_left_join_one_key_pads_nulls(j):
    got = rows(j, "SELECT l.v, r.w FROM l LEFT JOIN r ON l.id = r.id ORDER BY v, w")
    assert got == [["l1", None], ["l2", 20], ["l3", 30], ["l3", 31], ["l4", None], ["l5", None]]


def test_join_two_keys(j):
    assert rows(j, "SELECT l.v, r.w FROM l INNER JOIN r ON l.id = r.id AND l.k2 = r.k2 ORDER BY v") == \
        [["l2", 20], ["l3", 30]]
    assert rows(j, "SELECT a.v, b.w FROM l a LEFT JOIN r b ON b.k2 = a.k2 AND a.id = b.id ORDER BY v") == \
        [["l1", None], ["l2", 20], ["l3", 30], ["l4", None], ["l5", None]]


def test_join_star_and_where_on_both_sides(j):
    got = j.sql("SELECT * FROM l JOIN r ON l.id = r.id WHERE r.w > 25 AND r.k2 = 'x'").to_rows()
    assert got["rows"] == [[3, "x", "l3", 3, "x", 30]]
    assert len(got["schema"]) == 6
    assert rows(j, "SELECT l.id, COUNT(*) FROM l LEFT JOIN r ON l.id = r.id GROUP BY l.id ORDER BY 1") == \
        [[1, 1], [2, 1], [3, 2], [4, 1], [None, 1]]


def test_join_view_of_itself_with_aliases(j):
    got = rows(j, "SELECT a.v, b.v FROM l a JOIN l b ON a.id = b.id WHERE a.id <= 2 ORDER BY 1")
    assert got == [["l1", "l1"], ["l2", "l2"]]


# ------------------------------------------------------------------------------- UNION / DISTINCT
def test_union_and_union_all(j):
    assert rows(j, "SELECT id FROM l UNION ALL SELECT id FROM r") == [[1], [2], [3], [4], [None], [2], [3], [3], [None], [5]]
    got = rows(j, "SELECT id FROM l UNION SELECT id FROM r ORDER BY id")
    assert got == [[1], [2], [3], [4], [5], [None]]


def test_union_type_widening_int_float(s):
    df = s.sql("SELECT id FROM t WHERE id <= 2 UNION ALL SELECT price FROM t WHERE id = 1")
    assert df.to_arrow().schema.field(0).type == pa.float64()
    assert df.to_rows()["rows"] == [[1.0], [2.0], [1.5]]
    assert df.to_rows()["schema"] == ["id"]


def test_union_order_limit_apply_to_whole(j):
    assert rows(j, "SELECT id FROM l UNION SELECT id FROM r ORDER BY id DESC LIMIT 3") == [[None], [5], [4]]
    assert rows(j, "SELECT v AS x FROM l UNION ALL SELECT k2 FROM r ORDER BY 1 LIMIT 2 OFFSET 1") == [["l2"], ["l3"]]


def test_union_three_branches(j):
    assert rows(j, "SELECT 1 UNION SELECT 2 UNION ALL SELECT 1") == [[1], [2], [1]]


def test_select_distinct(s):
    assert rows(s, "SELECT DISTINCT sym FROM t") == [["a"], ["b"], [None], ["c"]]
    assert rows(s, "SELECT DISTINCT sym, price FROM t ORDER BY sym, price") == \
        [["a", 1.5], ["a", None], ["b", 2.5], ["c", 5.5], [None, 4.0]]
    assert rows(s, "SELECT DISTINCT price FROM t ORDER BY price DESC") == [[None], [5.5], [4.0], [2.5], [1.5]]


# ------------------------------------------------------------------------------- no FROM, builtins
def test_select_without_from():
    s = Session()
    got = s.sql("SELECT 1, 2.5 AS f, 'x', TRUE, NULL, 1 + 2 * 3 AS e, UPPER('ab')").to_rows()
    assert got["rows"] == [[1, 2.5, "x", True, None, 7, "AB"]]
    assert got["schema"][1] == "f" and got["schema"][5] == "e"


def test_scalar_builtins_nested_in_projection_where_group_by(s):
    assert rows(s, "SELECT UPPER(CONCAT(sym, '_', LOWER('X'))) FROM t WHERE id = 1") == [["A_X"]]
    assert rows(s, "SELECT id FROM t WHERE LENGTH(UPPER(sym)) = 1 AND ABS(-id) > 4") == [[5], [6]]
    assert rows(s, "SELECT UPPER(sym) AS u, COUNT(*) FROM t WHERE sym IS NOT NULL GROUP BY UPPER(sym)") == \
        [["A", 2], ["B", 2], ["C", 1]]
    assert rows(s, "SELECT ROUND(price), CEIL(price), FLOOR(-price) FROM t WHERE id = 1") == [[2.0, 2.0, -2.0]]
    assert rows(s, "SELECT SUBSTR('héllo', 2, 3), LENGTH('héllo'), REVERSE('ab'), TRIM('  a ')") == \
        [["éll", 5, "ba", "a"]]


def test_date_functions_in_group_by():
    s = Session()
    s.create_temp_view("d", s.create_dataframe_from_arrow(pa.table({
        "ts": ["2024-01-01 10:00:00", "2024-01-02", "2024-12-30", None], "v": [1, 2, 3, 4]})))
    got = rows(s, "SELECT YEAR(ts) AS y, MONTH(ts), SUM(v) FROM d GROUP BY YEAR(ts), MONTH(ts)")
    assert got == [[2024, 1, 3], [2024, 12, 3], [None, None, 4]]
    assert rows(s, "SELECT YEARWEEK(ts), ISO_YEAR(ts) FROM d WHERE v = 3") == [[202501, 2025]]


def test_now_is_one_reading_per_query():
    s = Session(batch_rows=1)
    s.create_temp_view("n", s.create_dataframe_from_arrow(pa.table({"i": list(range(50))})))
    got = rows(s, "SELECT NOW() FROM n")
    assert len({r[0] for r in got}) == 1


def test_text_number_comparison_is_a_planning_error(s):
    with pytest.raises(SqlError) as info:
        s.sql("SELECT id FROM t WHERE sym = 1")
    assert "CAST" in (info.value.hint or "") + info.value.message


# ------------------------------------------------------------------------------- default names
def test_default_output_names_verified_example():
    s = Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"id": [1], "name": ["Ab"]})))
    got = names(s, "SELECT ABS(-2.5), UPPER('x'), LENGTH(UPPER(name)), LOWER(t.name), ROUND(id) FROM t")
    assert got == ["abs_1", "upper_x", "length_3", "lower_t_name", "round_id"]


def test_default_output_names_aggregates_and_expressions(s):
    assert names(s, "SELECT sym, COUNT(*), COUNT(qty), SUM(qty), AVG(t.price), MIN(id), MAX(id) FROM t GROUP BY sym") == \
        ["sym", "count", "count", "sum_qty", "avg_price", "min_id", "max_id"]
    assert names(s, "SELECT id, id + 1, 5 FROM t") == ["id", "expr2", "expr3"]
    assert names(s, "SELECT t.id FROM t") == ["id"]


# ------------------------------------------------------------------------------- more corners
def test_order_by_aggregate_not_in_select_and_having_on_hidden_aggregate(s):
    assert rows(s, "SELECT sym FROM t GROUP BY sym ORDER BY COUNT(*) DESC, sym") == [["a"], ["b"], ["c"], [None]]
    assert rows(s, "SELECT sym, MAX(qty) FROM t GROUP BY sym HAVING MIN(price) > 2 ORDER BY 1") == \
        [["b", 60], ["c", 50], [None, 40]]


def test_order_by_alias_shadowing_a_column_uses_the_alias(s):
    assert rows(s, "SELECT id AS qty FROM t ORDER BY qty DESC LIMIT 2") == [[6], [5]]


def test_in_with_mixed_numeric_items_and_between_null_bounds(s):
    assert rows(s, "SELECT id FROM t WHERE id IN (1, 2.0, 3.5)") == [[1], [2]]
    assert rows(s, "SELECT id FROM t WHERE id BETWEEN 2 AND NULL") == []
    # 1 BETWEEN 2 AND NULL is FALSE (1 >= 2 is FALSE), so its negation keeps row 1 only
    assert rows(s, "SELECT id FROM t WHERE NOT (id BETWEEN 2 AND NULL)") == [[1]]


def test_null_propagation_in_string_functions_and_literals(s):
    assert rows(s, "SELECT 'a' || NULL, CONCAT('a', NULL, 'b'), CONCAT_WS('-', 'a', NULL, 'b')") == \
        [[None, None, None]]  # upstream's rule: any NULL argument gives NULL
    assert rows(s, "SELECT TRUE AND NULL, FALSE AND NULL, TRUE OR NULL, NOT NULL") == [[None, False, True, None]]
    assert rows(s, "SELECT NULL IS NULL, 1 IS NULL, NULL = NULL, NULL <> 1") == [[True, False, None, None]]


def test_round_half_away_from_zero_and_literal_types(s):
    assert rows(s, "SELECT ROUND(2.5), ROUND(-2.5), CEIL(-0.5), FLOOR(2)") == [[3.0, -3.0, -0.0, 2.0]]
    df = s.sql("SELECT 3000000000, 1e3, .5, -5, -7 % 3, 7.5 % 2")
    assert df.to_rows()["rows"] == [[3000000000, 1000.0, 0.5, -5, -1, 1.5]]
    assert [f.type for f in df.to_arrow().schema] == [pa.int64(), pa.float64(), pa.float64(), pa.int64(),
                                                      pa.int64(), pa.float64()]


def test_default_names_without_from_and_on_aggregate_path(s):
    assert names(s, "SELECT ABS(-1), UPPER('x'), ROUND(2.5), LOWER(UPPER('q'))") == \
        ["abs_1", "upper_x", "round_3", "lower_4"]
    got = names(s, "SELECT sym, ABS(SUM(qty)), UPPER(sym), COUNT(*) FROM t GROUP BY sym")
    assert got[0] == "sym" and got[1].startswith("abs_") and got[2:] == ["upper_sym", "count"]
    assert names(s, "SELECT id, ABS(id), UPPER(sym), ROUND(price), LENGTH('ab') FROM t") == \
        ["id", "abs_id", "upper_sym", "round_price", "length_ab"]


def test_left_join_where_right_is_null_anti_join(j):
    assert rows(j, "SELECT l.v FROM l LEFT JOIN r ON l.id = r.id WHERE r.id IS NULL ORDER BY 1") == \
        [["l1"], ["l4"], ["l5"]]


def test_join_keys_of_different_integer_widths():
    s = Session()
    s.create_temp_view("a", s.create_dataframe_from_arrow(pa.table({"id": pa.array([1, 2, 3], pa.int64())})))
    s.create_temp_view("b", s.create_dataframe_from_arrow(pa.table({"id": pa.array([2, 3, 9], pa.int32()),
                                                                     "z": ["q", "r", "s"]})))
    assert rows(s, "SELECT a.id, b.z FROM a JOIN b ON a.id = b.id") == [[2, "q"], [3, "r"]]


@pytest.mark.parametrize("engine", ENGINES)
def test_union_widens_narrow_left_types(engine):
    # regression: a narrow left type (int32 / float32) was kept although the right branch is wider
    s = Session(engine)
    s.create_temp_view("a", s.create_dataframe_from_arrow(pa.table({"id": [2**40], "f": [0.1]})))
    s.create_temp_view("n", s.create_dataframe_from_arrow(pa.table({
        "id": pa.array([7], pa.int32()), "f": pa.array([1.5], pa.float32())})))
    tbl = s.sql("SELECT id, f FROM n UNION ALL SELECT id, f FROM a").to_arrow()
    assert tbl.schema.types == [pa.int64(), pa.float64()]
    assert tbl.to_pylist() == [{"id": 7, "f": 1.5}, {"id": 2**40, "f": 0.1}]
    # equal narrow types (or a NULL branch) keep the type
    assert s.sql("SELECT id FROM n UNION ALL SELECT id FROM n").to_arrow().schema.types == [pa.int32()]
    assert s.sql("SELECT f FROM n UNION ALL SELECT NULL").to_arrow().schema.types == [pa.float32()]
