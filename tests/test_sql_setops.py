"""INTERSECT / EXCEPT [ALL] through Session.sql on both engines."""
from __future__ import annotations

import pyarrow as pa
import pytest

from velaria import Session, accel
from velaria.errors import SQLSemanticError

ENGINES = ["reference"] + (["auto"] if accel.batch_available() else [])


@pytest.fixture(params=ENGINES)
def s(request):
    sess = Session(request.param)
    sess.create_temp_view("a", sess.create_dataframe_from_arrow(pa.table({"x": [1, 1, 1, 2, None, None, 3]})))
    sess.create_temp_view("b", sess.create_dataframe_from_arrow(pa.table({"x": [1, None, 3, 3, 4]})))
    return sess


def col(s, sql):
    return s.sql(sql).to_arrow().column(0).to_pylist()


@pytest.mark.parametrize("op, want", [
    ("INTERSECT", [1, None, 3]),
    ("INTERSECT ALL", [1, None, 3]),
    ("EXCEPT", [2]),
    ("EXCEPT ALL", [1, 1, 2, None]),
])
def test_multiset_counts_in_left_order(s, op, want):
    assert col(s, f"SELECT x FROM a {op} SELECT x FROM b") == want


def test_precedence_order_limit_and_explain(s):
    assert col(s, "SELECT x FROM b UNION ALL SELECT x FROM a EXCEPT SELECT x FROM b ORDER BY x LIMIT 1") == [2]
    assert col(s, "SELECT x FROM a EXCEPT ALL SELECT x FROM b INTERSECT SELECT x FROM a") == [1, 1, 2, None]
    text = s.sql("SELECT x FROM a INTERSECT ALL SELECT x FROM b").explain()
    assert "SetOp" in text and "kind=intersect, all=true" in text and "setop_indices=" in text


def test_types_unify_and_errors(s):
    df = s.sql("SELECT x FROM a INTERSECT SELECT CAST(x AS DOUBLE) FROM b")
    assert df.to_arrow().schema.field(0).type == pa.float64()
    with pytest.raises(SQLSemanticError, match="EXCEPT requires the same number"):
        s.sql("SELECT x, x FROM a EXCEPT SELECT x FROM b")
    with pytest.raises(SQLSemanticError, match="INTERSECT column 1"):
        s.sql("SELECT x FROM a INTERSECT SELECT 'text'")
