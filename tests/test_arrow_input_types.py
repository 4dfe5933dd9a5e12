"""Arrow inputs whose physical types the engine computes as another type: dictionary-encoded
columns (what pandas categoricals become in Parquet) compute as their values, and timestamps
of any unit (pandas writes nanoseconds) compare as microsecond timestamps. Both engines must
give the answer the plain column gives."""
from datetime import datetime

import pyarrow as pa
import pytest

import velaria

ENGINES = ["auto", "reference"]
VALUES = ["a", "b", None, "a", "ccc", "b"]

QUERIES = [
    "SELECT v FROM d WHERE c = 'a' ORDER BY v",
    "SELECT v FROM d WHERE c <> 'a' ORDER BY v",
    "SELECT v FROM d WHERE c > 'a' ORDER BY v",
    "SELECT v FROM d WHERE c IN ('a', 'b') ORDER BY v",
    "SELECT v FROM d WHERE c BETWEEN 'a' AND 'b' ORDER BY v",
    "SELECT c = 'a' AS e FROM d ORDER BY v",
    "SELECT CASE WHEN c = 'b' THEN 1 ELSE 0 END AS e FROM d ORDER BY v",
    "SELECT coalesce(c, 'z') AS e FROM d ORDER BY v",
    "SELECT d.v, e.w FROM d JOIN e ON d.c = e.k ORDER BY d.v",
    "SELECT c AS e FROM d UNION ALL SELECT k FROM e ORDER BY e",
    "SELECT v FROM d WHERE i = 10 ORDER BY v",
    "SELECT i + 1 AS e FROM d ORDER BY v",
]


def _session(engine: str, encoded: bool) -> velaria.Session:
    s = velaria.Session(engine=engine)
    c = pa.array(VALUES)
    i = pa.array([10, 20, None, 10, 30, 20])
    if encoded:
        c, i = c.dictionary_encode(), i.dictionary_encode()
    s.create_temp_view("d", s.create_dataframe_from_arrow(pa.table({"c": c, "v": [1, 2, 3, 4, 5, 6], "i": i})))
    s.create_temp_view("e", s.create_dataframe_from_arrow(pa.table({"k": ["a", "ccc"], "w": [100, 200]})))
    return s


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sql", QUERIES)
def test_dictionary_column_computes_as_its_values(engine, sql):
    want = _session(engine, encoded=False).sql(sql).to_arrow().to_pylist()
    assert _session(engine, encoded=True).sql(sql).to_arrow().to_pylist() == want


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC"])
def test_timestamp_of_any_unit_compares_with_a_timestamp_literal(engine, unit, tz):
    s = velaria.Session(engine=engine)
    times = [datetime(2024, 1, 1), datetime(2023, 12, 31, 23, 59, 59), None, datetime(2024, 1, 1, 0, 0, 1)]
    s.create_temp_view("m", s.create_dataframe_from_arrow(
        pa.table({"t": pa.array(times, pa.timestamp(unit, tz=tz)), "v": [1, 2, 3, 4]})))
    lit = "TIMESTAMP '2024-01-01 00:00:00'"
    got = {op: s.sql(f"SELECT v FROM m WHERE t {op} {lit} ORDER BY v").to_arrow().column(0).to_pylist()
           for op in ("=", "<>", "<", "<=", ">", ">=")}
    assert got == {"=": [1], "<>": [2, 4], "<": [2], "<=": [1, 2], ">": [4], ">=": [1, 4]}
    both = s.sql(f"SELECT v FROM m WHERE t >= {lit} AND t < TIMESTAMP '2024-01-01 00:00:01'").to_arrow()
    assert both.column(0).to_pylist() == [1]
