"""Arrow interop at ingest: view layouts and exporters that take no requested schema."""
from __future__ import annotations

import pyarrow as pa
import pytest

import velaria


class NoArgStream:
    """An exporter whose ``__arrow_c_stream__`` takes no argument (as native Velaria's)."""

    def __init__(self, table):
        self.table = table

    def __arrow_c_stream__(self):
        return self.table.__arrow_c_stream__()


class NoArgArray:
    def __init__(self, batch):
        self.batch = batch

    def __arrow_c_array__(self):
        return self.batch.__arrow_c_array__()


def test_stream_exporter_without_argument():
    t = pa.table({"a": [1, 2, 3]})
    df = velaria.Session().create_dataframe_from_arrow(NoArgStream(t))
    assert df.to_rows()["rows"] == [[1], [2], [3]]


def test_array_exporter_without_argument():
    b = pa.record_batch({"a": [1, 2], "b": ["x", "y"]})
    df = velaria.Session().create_dataframe_from_arrow(NoArgArray(b))
    assert df.to_rows()["rows"] == [[1, "x"], [2, "y"]]


def test_array_exporter_of_non_struct_is_a_type_error():
    with pytest.raises(TypeError, match="struct array"):
        velaria.Session().create_dataframe_from_arrow(NoArgArray(pa.array([1, 2])))


def test_velaria_frame_round_trips_through_itself():
    s = velaria.Session()
    first = s.create_dataframe_from_arrow(pa.table({"a": [1, 2]}))
    again = s.create_dataframe_from_arrow(first)
    assert again.to_rows()["rows"] == [[1], [2]]


def view_table():
    return pa.table({
        "s": pa.array(["b", "a", None, "a"], pa.string_view()),
        "bin": pa.array([b"x", b"y", b"z", None], pa.binary_view()),
        "n": [1, 2, 3, 4],
        "lst": pa.array([[1], [2, 3], None, []], pa.list_view(pa.int64())),
    })


@pytest.mark.parametrize("sql, rows", [
    ("SELECT n FROM t WHERE s = 'a' ORDER BY n", [[2], [4]]),
    ("SELECT s FROM t WHERE s IS NOT NULL ORDER BY s, n", [["a"], ["a"], ["b"]]),
    ("SELECT DISTINCT s FROM t WHERE s IS NOT NULL ORDER BY s", [["a"], ["b"]]),
    ("SELECT a.n, b.n FROM t a JOIN t b ON a.s = b.s WHERE a.s = 'b'", [[1, 1]]),
])
def test_view_layouts_work_in_sql(sql, rows):
    s = velaria.Session()
    s.create_temp_view("t", s.create_dataframe_from_arrow(view_table()))
    assert s.sql(sql).to_rows()["rows"] == rows


def test_view_layouts_become_classic_layouts_with_same_values():
    df = velaria.Session().create_dataframe_from_arrow(view_table())
    types = {f.name: f.type for f in df.schema}
    assert types["s"] == pa.string() and types["bin"] == pa.binary()
    assert types["lst"] == pa.list_(pa.int64())
    assert df.to_rows()["rows"][1] == ["a", b"y", 2, [2, 3]]


def test_polars_frame_in_where_order_distinct_join():
    pl = pytest.importorskip("polars")
    s = velaria.Session()
    s.create_temp_view("p", s.create_dataframe_from_arrow(
        pl.DataFrame({"k": ["x", "y", "x"], "v": [1, 2, 3]})))
    assert s.sql("SELECT v FROM p WHERE k = 'x' ORDER BY v").to_rows()["rows"] == [[1], [3]]
    assert s.sql("SELECT DISTINCT k FROM p ORDER BY k").to_rows()["rows"] == [["x"], ["y"]]
    joined = s.sql("SELECT a.v FROM p a JOIN p b ON a.k = b.k WHERE b.v = 2")
    assert joined.to_rows()["rows"] == [[2]]


def _stream_rows(session, source, sql):
    from stream_fakes import collect
    session.create_temp_view("ev", session.create_stream_from_arrow(source))
    _, rows = collect(session, session.stream_sql(sql))
    return sorted(rows, key=repr)


def test_stream_source_from_exporter_without_argument():
    s = velaria.Session()
    rows = _stream_rows(s, NoArgStream(pa.table({"k": ["a", "b", "a"], "v": [1, 2, 3]})),
                        "SELECT k, SUM(v) AS total FROM ev GROUP BY k")
    assert rows == [{"k": "a", "total": 4}, {"k": "b", "total": 2}]


def test_stream_source_of_view_layouts_works_in_stream_sql():
    s = velaria.Session()
    rows = _stream_rows(s, view_table().select(["s", "n"]),
                        "SELECT s, SUM(n) AS total FROM ev WHERE s = 'a' GROUP BY s")
    assert rows == [{"s": "a", "total": 6}]
