"""COUNT(*) FILTER (WHERE ...), STDDEV / VARIANCE (sample and population) and MEDIAN via SQL."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from velaria import Session, accel
from velaria.errors import SQLSemanticError, SQLUnsupportedError

ENGINES = ["reference"] + (["auto"] if accel.batch_available() else [])


@pytest.fixture(params=ENGINES)
def s(request):
    sess = Session(request.param)
    sess.create_temp_view("t", sess.create_dataframe_from_arrow(pa.table(
        {"g": ["a", "a", "b", "a", "b"], "v": [1, None, 3, 4, 10], "f": [1.5, 2.5, None, 4.0, -1.0]})))
    return sess


def test_filter_clause(s):
    rows = s.sql("SELECT g, COUNT(*) FILTER (WHERE f > 2) AS n, SUM(v) FILTER (WHERE f IS NOT NULL) AS sv, "
                 "COUNT(DISTINCT g) FILTER (WHERE v > 100) AS none FROM t GROUP BY g ORDER BY g").to_rows()["rows"]
    assert rows == [["a", 2, 5, 0], ["b", 0, 10, 0]]


def test_variance_stddev_median(s):
    row = s.sql("SELECT VARIANCE(v), VAR_POP(v), STDDEV(v), STDDEV_POP(v), STDDEV_SAMP(f), VAR_SAMP(f), "
                "MEDIAN(v), MEDIAN(f) FROM t").to_rows()["rows"][0]
    v, f = [1, 3, 4, 10], [1.5, 2.5, 4.0, -1.0]
    mean = sum(v) / 4
    var_samp = sum((x - mean) ** 2 for x in v) / 3
    assert math.isclose(row[0], var_samp) and math.isclose(row[1], var_samp * 3 / 4)
    assert math.isclose(row[2], math.sqrt(var_samp)) and math.isclose(row[3], math.sqrt(var_samp * 3 / 4))
    fm = sum(f) / 4
    assert math.isclose(row[5], sum((x - fm) ** 2 for x in f) / 3) and math.isclose(row[4], math.sqrt(row[5]))
    assert row[6] == 3.5 and row[7] == 2.0


def test_small_groups_and_types(s):
    df = s.sql("SELECT g, VAR_SAMP(v) AS vs, VAR_POP(v) AS vp, MEDIAN(v) AS m FROM t WHERE v <> 4 GROUP BY g ORDER BY g")
    assert df.to_arrow().schema.field("m").type == pa.float64()
    assert df.to_rows()["rows"] == [["a", None, 0.0, 1.0], ["b", 24.5, 12.25, 6.5]]


def test_statistics_as_window_functions(s):
    out = s.sql("SELECT v, MEDIAN(v) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) AS m FROM t WHERE v IS NOT NULL "
                "ORDER BY v").to_rows()["rows"]
    assert out == [[1, 1.0], [3, 2.0], [4, 3.0], [10, 3.5]]


@pytest.mark.parametrize("sql, cls, needle", [
    ("SELECT STDDEV(g) FROM t", SQLSemanticError, "numeric"),
    ("SELECT COUNT(*) FILTER (WHERE v) FROM t", SQLSemanticError, "FILTER condition must be boolean"),
    ("SELECT SUM(v ORDER BY f) FROM t", SQLUnsupportedError, "ORDER BY inside an aggregate"),
])
def test_errors(s, sql, cls, needle):
    with pytest.raises(cls, match=needle):
        s.sql(sql)
