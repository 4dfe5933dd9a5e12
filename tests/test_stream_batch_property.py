"""Stream equals batch, on drawn data: small tables with NULL keys, values and times, negative
and repeated times, NaN / -0.0 / infinite floats, cut into micro-batches of drawn sizes (empty
ones included). The last value a stream emits for each group equals batch SQL over the same
rows, for GROUP BY with SUM / COUNT / AVG / MIN / MAX, WHERE, HAVING, a global aggregate, and
tumbling and sliding windows. The batch side of a windowed query reads a table whose window
column was computed here in plain Python from the documented rule, not by the stream's operator.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from velaria import Session

from stream_fakes import collect

KEYS = st.sampled_from(["a", "b", "c", None])
INTS = st.one_of(st.none(), st.integers(-1_000, 1_000), st.sampled_from([-(2 ** 40), 2 ** 40]))
FLOATS = st.one_of(st.none(), st.sampled_from([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e300]),
                   st.floats(-1e6, 1e6, allow_nan=False, width=64))
TIMES = st.one_of(st.none(), st.sampled_from([0, -1, 59_999, 60_000, -60_000]),
                  st.integers(-200_000, 400_000))


@st.composite
def tables(draw):
    """(table, batch sizes): sizes sum to the row count; a size of 0 is an empty micro-batch."""
    n = draw(st.integers(0, 14))
    table = pa.table({
        "ts": pa.array(draw(st.lists(TIMES, min_size=n, max_size=n)), pa.int64()),
        "key": pa.array(draw(st.lists(KEYS, min_size=n, max_size=n)), pa.string()),
        "g": pa.array(draw(st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=n, max_size=n)), pa.int64()),
        "v": pa.array(draw(st.lists(INTS, min_size=n, max_size=n)), pa.int64()),
        "f": pa.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), pa.float64()),
    })
    sizes, left = [], n
    while left or not sizes:
        size = draw(st.integers(0, max(left, 1)))
        size = min(size, left)
        sizes.append(size)
        left -= size
    return table, sizes


def _micro_batches(table: pa.Table, sizes: list[int]) -> list[pa.RecordBatch]:
    out, at = [], 0
    for size in sizes:
        out.append(table.slice(at, size).combine_chunks().to_batches()[0] if size else
                   pa.RecordBatch.from_pylist([], schema=table.schema))
        at += size
    return out


def _canon(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return v


def _last_per_group(rows: list[dict], nkeys: int) -> dict:
    last = {}
    for r in rows:
        values = tuple(_canon(v) for v in r.values())
        last[values[:nkeys]] = values
    return last


# ---------------------------------------------------------------- the window rule, in Python
def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def _window_text(start_ms: int) -> str:
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=start_ms)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    return text + f".{start_ms % 1000:03d}" if start_ms % 1000 else text


def _window_starts(ts: int | None, every: int, slide: int) -> list[int | None]:
    """docs/streaming.md: tumbling start = trunc(ts / window) * window; sliding: every start
    last - i*slide (last = trunc(ts / slide) * slide) with start <= ts < start + window,
    ascending; a NULL time: one copy with a NULL window."""
    if ts is None:
        return [None]
    if every == slide:
        return [_trunc_div(ts, every) * every]
    last = _trunc_div(ts, slide) * slide
    per_row = -(-every // slide)
    starts = [last - i * slide for i in range(per_row - 1, -1, -1)]
    return [s for s in starts if s <= ts < s + every] or [None]


def _with_windows(table: pa.Table, every: int, slide: int) -> pa.Table:
    rows = []
    for r in table.to_pylist():
        for start in _window_starts(r["ts"], every, slide):
            rows.append({**r, "window_start": None if start is None else _window_text(start)})
    schema = table.schema.append(pa.field("window_start", pa.string()))
    return pa.Table.from_pylist(rows, schema=schema)


# ---------------------------------------------------------------- queries
GROUPED = [
    ("SELECT key, COUNT(*) AS c, SUM(v) AS s, AVG(v) AS a, MIN(v) AS lo, MAX(v) AS hi FROM ev GROUP BY key", 1),
    ("SELECT key, SUM(f) AS s, AVG(f) AS a, MIN(f) AS lo, MAX(f) AS hi FROM ev GROUP BY key", 1),
    ("SELECT g, key, COUNT(*) AS c, SUM(v) AS s FROM ev WHERE v > 0 GROUP BY g, key", 2),
    ("SELECT g, MIN(f) AS lo, MAX(ts) AS t FROM ev WHERE f >= 0 GROUP BY g", 1),
    ("SELECT key, COUNT(*) AS c, SUM(v) AS s FROM ev GROUP BY key HAVING c >= 2", 1),
    ("SELECT COUNT(*) AS c, SUM(v) AS s, AVG(f) AS a, MAX(key) AS mk FROM ev", 0),
]
WINDOWED = [
    ("SELECT window_start, key, COUNT(*) AS c, SUM(v) AS s, MIN(f) AS lo FROM ev "
     "WINDOW BY ts EVERY 60000 AS window_start GROUP BY window_start, key", 2, 60000, 60000),
    ("SELECT window_start, g, COUNT(*) AS c, MAX(v) AS hi, AVG(f) AS a FROM ev "
     "WINDOW BY ts EVERY 60000 SLIDE 20000 AS window_start GROUP BY window_start, g", 2, 60000, 20000),
    ("SELECT window_start, COUNT(*) AS c, SUM(v) AS s FROM ev "
     "WINDOW BY ts EVERY 50000 SLIDE 20000 AS window_start GROUP BY window_start", 1, 50000, 20000),
]

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _stream(engine: str, table: pa.Table, sizes: list[int], sql: str) -> list[dict]:
    s = Session(engine)
    s.create_temp_view("ev", s.create_stream_from_arrow(_micro_batches(table, sizes)))
    return collect(s, s.stream_sql(sql))[1]


def _batch(engine: str, table: pa.Table, sql: str) -> list[dict]:
    s = Session(engine)
    s.create_temp_view("ev", s.create_dataframe_from_arrow(table))
    return s.sql(sql).to_arrow().to_pylist()


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("sql, nkeys", GROUPED)
@PROPERTY
@given(data=tables())
def test_grouped_stream_equals_batch(engine, sql, nkeys, data):
    table, sizes = data
    expected = _last_per_group(_batch(engine, table, sql), nkeys)
    got = _last_per_group(_stream(engine, table, sizes, sql), nkeys)
    if nkeys == 0 and not table.num_rows:
        assert got == {}           # a global aggregate emits one row per non-empty batch
        return
    assert got == expected


@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("sql, nkeys, every, slide", WINDOWED)
@PROPERTY
@given(data=tables())
def test_windowed_stream_equals_batch_over_python_windows(engine, sql, nkeys, every, slide, data):
    table, sizes = data
    clause = f" WINDOW BY ts EVERY {every}" + (f" SLIDE {slide}" if slide != every else "") + " AS window_start"
    expected = _last_per_group(_batch(engine, _with_windows(table, every, slide), sql.replace(clause, "")), nkeys)
    got = _last_per_group(_stream(engine, table, sizes, sql), nkeys)
    assert got == expected


@pytest.mark.parametrize("sql, nkeys", [GROUPED[0], GROUPED[1], (WINDOWED[1][0], 2)])
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=tables())
def test_local_workers_stream_equals_single_process(sql, nkeys, data):
    table, sizes = data
    single = _last_per_group(_stream("auto", table, sizes, sql), nkeys)
    s = Session("auto")
    s.create_temp_view("ev", s.create_stream_from_arrow(_micro_batches(table, sizes)))
    workers = collect(s, s.stream_sql(sql), execution_mode="local-workers", local_workers=2)[1]
    assert _last_per_group(workers, nkeys) == single
