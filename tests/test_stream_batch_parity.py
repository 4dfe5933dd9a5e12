"""Stream equals batch: for every query of a corpus over a bounded source, the stream's final
output equals batch SQL over the same rows -- at several micro-batch sizes, on both engines,
and (for the aggregates local workers can take) in local-workers mode.

* Row queries (filter / project): the concatenated stream output equals the batch result.
* Aggregates: the stream emits running values of the groups each batch touched; the last
  value emitted for each group equals the batch GROUP BY result (HAVING conditions here only
  grow true as rows arrive, so the final set of groups agrees as well).
* Windowed aggregates: batch SQL has no WINDOW BY, so the batch side reads a table whose
  window column was assigned in one pass over all rows.
"""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from velaria import Session
from velaria.exec.window import WindowAssignOperator, window_node
from velaria.plan import logical as L
from velaria.stream.plan import StreamScanSource

from stream_fakes import collect

N = 23
DATA = pa.table({
    "ts": pa.array([i * 17_000 - 40_000 for i in range(N)], pa.int64()),
    "key": pa.array([["a", "b", None, "c", "a"][i % 5] for i in range(N)]),
    "g": pa.array([i % 3 for i in range(N)], pa.int64()),
    "v": pa.array([None if i % 7 == 3 else (i * 5) % 11 for i in range(N)], pa.int64()),
    "f": pa.array([None if i % 6 == 2 else [0.5, -0.0, 2.25, float("nan"), 1e300, -3.5][i % 6] for i in range(N)]),
})

# (sql, number of leading group-key columns or None for a row query)
CORPUS = [
    ("SELECT * FROM ev", None),
    ("SELECT key, v * 2 AS v2, UPPER(key) AS uk, f FROM ev WHERE v > 3", None),
    ("SELECT ts, ABS(f) AS af FROM ev WHERE key != 'a'", None),
    ("SELECT key, SUM(v) AS s FROM ev GROUP BY key", 1),
    ("SELECT key, COUNT(*) AS c, SUM(v) AS s, AVG(v) AS a, MIN(f) AS lo, MAX(f) AS hi FROM ev GROUP BY key", 1),
    ("SELECT g, key, COUNT(*) AS c, AVG(f) AS af FROM ev GROUP BY g, key", 2),
    ("SELECT COUNT(*) AS c, SUM(v) AS s, MAX(key) AS mk FROM ev", 0),
    ("SELECT LOWER(key), SUM(v) FROM ev GROUP BY LOWER(key) HAVING SUM(v) > 3", 1),
    ("SELECT key, COUNT(*) AS c FROM ev WHERE g = 1 GROUP BY key HAVING c >= 2", 1),
    ("SELECT c, key FROM (SELECT key, COUNT(*) AS c FROM ev GROUP BY key) t", "subquery"),
]
WINDOWED = [
    ("SELECT window_start, key, COUNT(*) AS c, SUM(v) AS s FROM ev WINDOW BY ts EVERY 60000 AS window_start "
     "GROUP BY window_start, key", 2, 60000, 60000),
    ("SELECT window_start, g, COUNT(*) AS c, MIN(f) AS lo FROM ev WINDOW BY ts EVERY 60000 SLIDE 20000 "
     "AS window_start GROUP BY window_start, g", 2, 60000, 20000),
]
LOCAL_WORKER_CASES = [CORPUS[3], CORPUS[5], (WINDOWED[1][0], 2)]


def canon(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return v


def rows_of(table: pa.Table) -> list[tuple]:
    return [tuple(canon(v) for v in r.values()) for r in table.to_pylist()]


def stream_rows(session: Session, source: pa.Table, sql: str, batch_rows: int, **opts) -> list[tuple]:
    session.create_temp_view("ev", session.create_stream_from_arrow(source.to_batches(max_chunksize=batch_rows)))
    _, rows = collect(session, session.stream_sql(sql), **opts)
    return [tuple(canon(v) for v in r.values()) for r in rows]


def final_values(rows: list[tuple], nkeys: int) -> dict:
    last = {}
    for r in rows:
        last[r[:nkeys]] = r
    return last


def batch_rows(session: Session, table: pa.Table, sql: str) -> list[tuple]:
    session.create_temp_view("ev", session.create_dataframe_from_arrow(table))
    return rows_of(session.sql(sql).to_arrow())


def with_window(table: pa.Table, every: int, slide: int) -> pa.Table:
    batch = table.combine_chunks().to_batches()[0]
    scan = L.Scan(schema=batch.schema, source=StreamScanSource(batch.schema), table_name="ev")
    out = WindowAssignOperator(window_node(scan, "ts", every, slide, "window_start")).push(batch)[0]
    return pa.Table.from_batches([out])


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("size", [1, 4, 64])
@pytest.mark.parametrize("sql, nkeys", [c for c in CORPUS if c[1] != "subquery"])
def test_stream_equals_batch(engine, size, sql, nkeys):
    expected = batch_rows(Session(engine), DATA, sql)
    got = stream_rows(Session(engine), DATA, sql, size)
    if nkeys is None:
        assert got == expected
    else:
        assert final_values(got, nkeys) == final_values(expected, nkeys)
        assert len(final_values(expected, nkeys)) == len(expected)


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("size", [1, 5, 64])
@pytest.mark.parametrize("sql, nkeys, every, slide", WINDOWED)
def test_windowed_stream_equals_batch_over_assigned_windows(engine, size, sql, nkeys, every, slide):
    batch_sql = sql.replace(f" WINDOW BY ts EVERY {every} SLIDE {slide} AS window_start", "").replace(
        f" WINDOW BY ts EVERY {every} AS window_start", "")
    expected = batch_rows(Session(engine), with_window(DATA, every, slide), batch_sql)
    got = stream_rows(Session(engine), DATA, sql, size)
    assert final_values(got, nkeys) == final_values(expected, nkeys)


def test_subqueries_are_not_stream_sql():
    from velaria.errors import SqlError
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(DATA))
    with pytest.raises(SqlError):
        s.stream_sql(CORPUS[-1][0])


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("sql, nkeys", LOCAL_WORKER_CASES)
def test_local_workers_equal_single_process(engine, sql, nkeys):
    single = stream_rows(Session(engine), DATA, sql, 6)
    s = Session(engine)
    workers = stream_rows(s, DATA, sql, 6, execution_mode="local-workers", local_workers=2)
    assert final_values(workers, nkeys) == final_values(single, nkeys)
