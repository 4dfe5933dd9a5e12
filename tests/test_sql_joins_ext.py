"""RIGHT / FULL / CROSS joins, USING and NATURAL, non-equality conditions: both engines."""
from __future__ import annotations

import pyarrow as pa
import pytest

from velaria import Session, accel
from velaria.errors import SQLSemanticError

ENGINES = ["reference"] + (["auto"] if accel.batch_available() else [])


@pytest.fixture(params=ENGINES)
def s(request):
    sess = Session(request.param)
    sess.create_temp_view("l", sess.create_dataframe_from_arrow(
        pa.table({"k": [1, 2, 2, None, 5], "lv": ["a", "b", "c", "d", "e"]})))
    sess.create_temp_view("r", sess.create_dataframe_from_arrow(
        pa.table({"k": [2, 3, None, 1], "rv": [20, 30, 40, 10]})))
    return sess


def rows(s, sql):
    return s.sql(sql).to_rows()["rows"]


def test_right_join_order_and_padding(s):
    assert rows(s, "SELECT lv, r.k, rv FROM l RIGHT JOIN r ON l.k = r.k") == \
        [["a", 1, 10], ["b", 2, 20], ["c", 2, 20], [None, 3, 30], [None, None, 40]]


def test_full_join(s):
    assert rows(s, "SELECT lv, rv FROM l FULL OUTER JOIN r ON l.k = r.k") == \
        [["a", 10], ["b", 20], ["c", 20], ["d", None], ["e", None], [None, 30], [None, 40]]


def test_cross_join_and_comma(s):
    assert len(rows(s, "SELECT * FROM l CROSS JOIN r")) == 20
    assert rows(s, "SELECT lv, rv FROM l, r WHERE l.k = r.k ORDER BY lv") == [["a", 10], ["b", 20], ["c", 20]]


def test_using_merges_the_key(s):
    df = s.sql("SELECT * FROM l FULL JOIN r USING (k)")
    assert df.to_arrow().column_names == ["k", "lv", "rv"]
    assert df.to_rows()["rows"] == [[1, "a", 10], [2, "b", 20], [2, "c", 20], [None, "d", None], [5, "e", None],
                                    [3, None, 30], [None, None, 40]]
    assert rows(s, "SELECT k, l.k, r.k FROM l RIGHT JOIN r USING (k)") == \
        [[1, 1, 1], [2, 2, 2], [2, 2, 2], [3, None, 3], [None, None, None]]
    assert rows(s, "SELECT l.* FROM l JOIN r USING (k)") == [[1, "a"], [2, "b"], [2, "c"]]


def test_natural_join(s):
    assert rows(s, "SELECT * FROM l NATURAL JOIN r") == [[1, "a", 10], [2, "b", 20], [2, "c", 20]]


def test_residual_conditions_in_outer_joins(s):
    # the ON condition decides matches; unmatched rows are padded, never dropped
    assert rows(s, "SELECT lv, rv FROM l LEFT JOIN r ON l.k = r.k AND rv > 15") == \
        [["a", None], ["b", 20], ["c", 20], ["d", None], ["e", None]]
    assert rows(s, "SELECT lv, rv FROM l FULL JOIN r ON l.k < r.k") == \
        [["a", 20], ["a", 30], ["b", 30], ["c", 30], ["d", None], ["e", None], [None, 40], [None, 10]]
    assert rows(s, "SELECT lv, rv FROM l RIGHT JOIN r ON l.k = 2 AND rv = 30") == \
        [["b", 30], ["c", 30], [None, 20], [None, 40], [None, 10]]


def test_explain_names_residual(s):
    text = s.sql("SELECT lv FROM l JOIN r ON l.k = r.k AND lv <> 'b'").explain()
    assert "how=inner" in text and "residual=" in text and "evaluate=" in text
    assert "Join kind=full keys=none" in s.explain_sql("SELECT lv FROM l FULL JOIN r ON l.k > r.k")


@pytest.mark.parametrize("sql, needle", [
    ("SELECT * FROM l JOIN r USING (nope)", "column not found"),
    ("SELECT * FROM l JOIN r USING (k, k)", "more than once"),
    ("SELECT * FROM l JOIN r ON l.lv", "must be boolean"),
    ("SELECT * FROM l JOIN r ON l.lv = r.rv", "JOIN keys"),
    ("SELECT k FROM l JOIN r ON l.k = r.k", "ambiguous"),
])
def test_errors(s, sql, needle):
    with pytest.raises(SQLSemanticError, match=needle):
        s.sql(sql)


def test_search_clauses_reject_every_join_kind(s):
    for sql in ("SELECT lv FROM l JOIN r USING (k) KEYWORD SEARCH(lv) QUERY 'a'",
                "SELECT lv FROM l CROSS JOIN r KEYWORD SEARCH(lv) QUERY 'a'"):
        with pytest.raises(RuntimeError, match="KEYWORD SEARCH does not support JOIN queries"):
            s.sql(sql)
