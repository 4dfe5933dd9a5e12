"""A SQL query over ``CREATE TABLE ... USING csv`` types the file while it is planned; the
typing walk then also converts the columns the query names, so the query's scan reads them
from memory instead of walking the file a second time (velaria/io/column_hint.py)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import velaria
from velaria.io import column_hint
from velaria.io.typed_source import clear_typing_cache
from velaria.sql.column_refs import referenced_columns, scan_columns_hint
from velaria.sql.parser import parse

from test_io_csv_convert import _bench_like, _record_rereads

pytest.importorskip("velaria.accel.csv_typing")

QUERY = "SELECT cat, SUM(value) AS s, COUNT(*) AS c FROM t WHERE qty > 10 GROUP BY cat"


def _expected(path):
    table = pacsv.read_csv(str(path))
    table = table.filter(pa.compute.greater(table["qty"], 10))
    grouped = table.group_by("cat").aggregate([("value", "sum"), ("value", "count")])
    return {r["cat"]: (r["value_sum"], r["value_count"]) for r in grouped.to_pylist()}


def _ddl_session(path):
    session = velaria.Session()
    session.sql(f"CREATE TABLE t USING csv OPTIONS(path: '{path}')")
    return session


def _as_dict(rows):
    return {cat: (s, c) for cat, s, c in rows["rows"]}


def test_column_references_of_a_statement():
    stmt = parse("SELECT a, t.b, SUM(c) AS s FROM t WHERE d > 1 GROUP BY a ORDER BY s").stmt
    assert referenced_columns(stmt) >= {"a", "b", "c", "d", "t"}
    assert "SUM" not in referenced_columns(stmt)
    limited = parse("SELECT a FROM t LIMIT 5").stmt
    assert scan_columns_hint(limited) == set()   # a few rows: not worth converting the file


def test_the_hint_is_scoped_to_the_planning_block():
    assert column_hint.current() is None
    with column_hint.planning(["a", "b"]):
        assert column_hint.current() == {"a", "b"}
        with column_hint.planning([]):
            assert column_hint.current() is None
        assert column_hint.current() == {"a", "b"}
    assert column_hint.current() is None


def test_a_query_over_a_csv_table_walks_the_file_once(tmp_path, monkeypatch):
    path = tmp_path / "b.csv"
    _bench_like(path)
    clear_typing_cache()
    calls = _record_rereads(monkeypatch)
    session = _ddl_session(path)
    got = _as_dict(session.sql(QUERY).to_rows())
    source = session.context.catalog.lookup("t").source
    assert calls == [] and source.stats["typing_path"] == "scan"
    assert source.chunk_parsers == {"c": 0, "pyarrow": 0}
    monkeypatch.undo()
    want = _expected(path)
    assert got.keys() == want.keys()
    for cat, (s, c) in want.items():
        assert got[cat][1] == c and got[cat][0] == pytest.approx(s, rel=1e-12)
    clear_typing_cache()


def test_a_column_the_query_does_not_name_is_converted_by_the_scan(tmp_path):
    """``SELECT *`` names no column: the walk only types, the scan converts (as before)."""
    path = tmp_path / "b.csv"
    _bench_like(path)
    clear_typing_cache()
    session = _ddl_session(path)
    got = session.sql("SELECT * FROM t WHERE qty > 10").to_arrow()
    source = session.context.catalog.lookup("t").source
    table = pacsv.read_csv(str(path))
    want = table.filter(pa.compute.greater(table["qty"], 10))
    assert got.num_rows == want.num_rows and got.equals(want.cast(got.schema))
    assert source.chunk_parsers["c"] >= 1
    clear_typing_cache()


def test_a_named_column_that_turns_text_late_is_still_right(tmp_path):
    """The walk converts by the kinds seen so far; a column that later turns text is parsed
    again by the scan, so the hint never changes a result."""
    path = tmp_path / "late.csv"
    lines = [f"{i},{i % 7}" for i in range(200_000)] + ["x,007"]
    path.write_text("a,b\n" + "\n".join(lines) + "\n")
    clear_typing_cache()
    session = _ddl_session(path)
    rows = session.sql("SELECT a, b FROM t WHERE b = '007' OR a = '5'").to_rows()["rows"]
    assert sorted(map(tuple, rows)) == [("5", "5"), ("x", "007")]
    clear_typing_cache()
