"""Window functions through Session.sql on both engines: values, frames, names, errors, explain."""
from __future__ import annotations

import pyarrow as pa
import pytest

from velaria import Session, accel
from velaria.errors import SQLSemanticError, SQLUnsupportedError, VelariaError

ENGINES = ["reference"] + (["auto"] if accel.batch_available() else [])


@pytest.fixture(params=ENGINES)
def s(request):
    sess = Session(request.param)
    t = pa.table({"g": ["a", "a", "b", "a", "b", None], "o": [3, 1, 2, 1, None, 5],
                  "v": [1.5, 2.0, None, 4.0, 5.0, 6.0], "id": [0, 1, 2, 3, 4, 5]})
    sess.create_temp_view("t", sess.create_dataframe_from_arrow(t))
    return sess


def col(s, sql, name):
    return s.sql(sql).to_arrow().column(name).to_pylist()


def test_rankings(s):
    sql = ("SELECT id, ROW_NUMBER() OVER (PARTITION BY g ORDER BY o, id) AS rn, RANK() OVER (PARTITION BY g ORDER BY o) AS rk, "
           "DENSE_RANK() OVER (ORDER BY o) AS dr, NTILE(4) OVER (ORDER BY id) AS nt FROM t ORDER BY id")
    out = s.sql(sql).to_arrow().to_pydict()
    assert out["rn"] == [3, 1, 1, 2, 2, 1]
    assert out["rk"] == [3, 1, 1, 1, 2, 1]
    assert out["dr"] == [3, 1, 2, 1, 5, 4]          # NULL sorts last ascending
    assert out["nt"] == [1, 1, 2, 2, 3, 4]          # 6 rows in 4 buckets: 2, 2, 1, 1


def test_lag_lead_default_and_type(s):
    df = s.sql("SELECT id, LAG(o) OVER (ORDER BY id) AS a, LEAD(o, 2, 0.5) OVER (ORDER BY id) AS b FROM t ORDER BY id")
    out = df.to_arrow()
    assert out.schema.field("a").type == pa.int64() and out.schema.field("b").type == pa.float64()
    assert out.column("a").to_pylist() == [None, 3, 1, 2, 1, None]
    assert out.column("b").to_pylist() == [2.0, 1.0, None, 5.0, 0.5, 0.5]


def test_default_frame_includes_peers_and_whole_partition_without_order(s):
    out = s.sql("SELECT id, SUM(v) OVER (PARTITION BY g ORDER BY o) AS run, SUM(v) OVER (PARTITION BY g) AS tot, "
                "LAST_VALUE(id) OVER (PARTITION BY g ORDER BY o) AS lv FROM t ORDER BY id").to_arrow().to_pydict()
    assert out["run"] == [7.5, 6.0, None, 6.0, 5.0, 6.0]
    assert out["tot"] == [7.5, 7.5, 5.0, 7.5, 5.0, 6.0]
    assert out["lv"] == [0, 3, 2, 3, 4, 5]            # the last peer, not the current row


def test_rows_and_range_frames(s):
    out = s.sql("SELECT id, COUNT(*) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS c, "
                "SUM(id) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING) AS p, "
                "COUNT(*) OVER (ORDER BY o RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS r, "
                "MAX(id) OVER (ORDER BY o DESC RANGE BETWEEN CURRENT ROW AND 1 FOLLOWING) AS d "
                "FROM t ORDER BY id").to_arrow().to_pydict()
    assert out["c"] == [2, 3, 3, 3, 3, 2]
    assert out["p"] == [None, 0, 1, 3, 5, 7]
    assert out["r"] == [2, 3, 4, 3, 1, 1]             # o=NULL: its peers only
    assert out["d"] == [2, 3, 3, 3, 4, 5]             # DESC: FOLLOWING means smaller keys


def test_window_over_group_by_and_named_window(s):
    out = s.sql("SELECT g, SUM(v) AS total, RANK() OVER w AS r FROM t GROUP BY g WINDOW w AS (ORDER BY SUM(v) DESC) "
                "ORDER BY r").to_arrow().to_pydict()
    assert out == {"g": ["a", None, "b"], "total": [7.5, 6.0, 5.0], "r": [1, 2, 3]}


def test_output_names_and_explain(s):
    df = s.sql("SELECT row_number() OVER (ORDER BY id), lag(v) OVER (ORDER BY id) FROM t")
    assert df.to_arrow().column_names == ["row_number", "lag"]
    text = df.explain()
    assert "Window" in text and "row_number() OVER (ORDER BY id#" in text
    origin = "accel" if s.kernels.engine != "reference" else "reference"
    assert f"window_eval={origin}" in text
    assert "Window functions=2" in s.explain_sql("SELECT row_number() OVER (), lag(v) OVER () FROM t")


def test_empty_input(s):
    out = s.sql("SELECT ROW_NUMBER() OVER () AS n, SUM(v) OVER () AS t FROM t WHERE id > 100").to_arrow()
    assert out.num_rows == 0 and out.schema.field("t").type == pa.float64()


def test_integer_sum_overflow_is_an_error(s):
    s.create_temp_view("big", s.create_dataframe_from_arrow(pa.table({"x": [2 ** 62, 2 ** 62, 2 ** 62]})))
    with pytest.raises(VelariaError, match="SUM overflow"):
        s.sql("SELECT SUM(x) OVER (ORDER BY x ROWS UNBOUNDED PRECEDING) FROM big").to_arrow()


@pytest.mark.parametrize("sql, cls, needle", [
    ("SELECT id FROM t WHERE ROW_NUMBER() OVER () > 1", SQLSemanticError, "not allowed in WHERE"),
    ("SELECT g FROM t GROUP BY g HAVING RANK() OVER () > 1", SQLSemanticError, "not allowed in HAVING"),
    ("SELECT SUM(ROW_NUMBER() OVER ()) FROM t", SQLSemanticError, "not allowed"),
    ("SELECT LAG(ROW_NUMBER() OVER ()) OVER () FROM t", SQLSemanticError, "not allowed in window function"),
    ("SELECT UPPER(g) OVER () FROM t", SQLSemanticError, "not a window function"),
    ("SELECT NTILE(0) OVER () FROM t", SQLSemanticError, "greater than zero"),
    ("SELECT NTILE(id) OVER () FROM t", SQLUnsupportedError, "integer constant"),
    ("SELECT LAG(v, -1) OVER () FROM t", SQLSemanticError, "must not be negative"),
    ("SELECT COUNT(DISTINCT g) OVER () FROM t", SQLUnsupportedError, "DISTINCT"),
    ("SELECT SUM(v) OVER (ORDER BY g RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t", SQLSemanticError, "numeric"),
    ("SELECT SUM(v) OVER (ORDER BY o, id RANGE 1 PRECEDING) FROM t", SQLSemanticError, "exactly one ORDER BY"),
    ("SELECT SUM(v) OVER (ORDER BY o GROUPS 1 PRECEDING) FROM t", SQLUnsupportedError, "GROUPS"),
    ("SELECT SUM(v) OVER (ORDER BY o ROWS BETWEEN 1 PRECEDING AND CURRENT ROW EXCLUDE TIES) FROM t",
     SQLUnsupportedError, "EXCLUDE"),
    ("SELECT SUM(v) OVER w FROM t", SQLSemanticError, 'window "w" does not exist'),
    ("SELECT SUM(v) OVER (w PARTITION BY id) FROM t WINDOW w AS (ORDER BY id)", SQLSemanticError, "PARTITION BY"),
    ("SELECT SUM(g) OVER () FROM t", SQLSemanticError, "numeric"),
    ("SELECT ROW_NUMBER(id) OVER () FROM t", SQLSemanticError, "expects 0 arguments"),
])
def test_errors(s, sql, cls, needle):
    with pytest.raises(cls) as info:
        s.sql(sql)
    assert needle in str(info.value)
    assert info.value.byte_offset is not None
