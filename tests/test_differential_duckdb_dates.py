"""Differential test of the date types against DuckDB on hypothesis-generated tables and
date expressions (literals, casts, comparisons, arithmetic with INTERVAL, EXTRACT / date_part,
date_trunc, strftime, the native field functions).

Both engines read the same Arrow tables; answers must be equal row for row (as multisets).
An INTERVAL answer compares as its exact length (DuckDB hands Python a ``timedelta``), which
is what both engines mean by it when the interval has no months (``ts - ts`` never has).
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("duckdb", reason="duckdb is a test extra (pip install -e .[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from test_differential_duckdb import _duckdb_rows, _equal, _sort_key, _velaria_rows  # noqa: E402

SETTINGS = settings(max_examples=int(os.environ.get("VELARIA_DIFF_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

days = st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2100, 12, 31)),
                 st.sampled_from([date(2024, 2, 29), date(2023, 1, 31), date(1969, 12, 31), date(2000, 3, 31)]))
stamps = st.one_of(st.none(), st.datetimes(datetime(1900, 1, 1), datetime(2100, 12, 31)),
                   st.sampled_from([datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(2024, 2, 29, 12)]))


@st.composite
def tables(draw):
    n = draw(st.integers(0, 10))
    return pa.table({
        "d": pa.array(draw(st.lists(days, min_size=n, max_size=n)), pa.date32()),
        "ts": pa.array(draw(st.lists(stamps, min_size=n, max_size=n)), pa.timestamp("us")),
        "k": pa.array(draw(st.lists(st.one_of(st.none(), st.integers(-400, 400)), min_size=n, max_size=n)),
                      pa.int64()),
    })


_FIELDS = ["year", "quarter", "month", "day", "dow", "isodow", "doy", "week", "isoyear", "hour", "minute",
           "second", "millisecond", "microsecond", "epoch"]
_TRUNCS = ["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond"]
_INTERVALS = ["'1 day'", "'90' DAY", "'1 month'", "'13 months'", "'2 hours'", "'1 year 2 months 3 days'",
              "'36 hours'", "'-1 month'", "'45 minutes 30 seconds'"]
_DATES = ["DATE '2000-02-29'", "DATE '1970-01-01'", "DATE '2024-12-31'"]
_STAMPS = ["TIMESTAMP '2000-01-01 12:00:00'", "TIMESTAMP '1969-12-31 23:59:59.5'"]


@st.composite
def date_exprs(draw):
    x = draw(st.sampled_from(["d", "ts"]))
    kind = draw(st.sampled_from(["extract", "part", "trunc", "native", "interval", "days", "diff",
                                 "cast", "strftime", "literal"]))
    if kind == "extract":
        return f"EXTRACT({draw(st.sampled_from(_FIELDS))} FROM {x})"
    if kind == "part":
        return f"date_part('{draw(st.sampled_from(_FIELDS))}', {x})"
    if kind == "trunc":
        return f"date_trunc('{draw(st.sampled_from(_TRUNCS))}', {x})"
    if kind == "native":
        return f"{draw(st.sampled_from(['year', 'month', 'day', 'week', 'yearweek']))}({x})"
    if kind == "interval":
        return f"{x} {draw(st.sampled_from(['+', '-']))} INTERVAL {draw(st.sampled_from(_INTERVALS))}"
    if kind == "days":
        return f"d {draw(st.sampled_from(['+', '-']))} CAST(k AS INTEGER)"   # DuckDB 2 adds INTEGER days only
    if kind == "diff":
        other = draw(st.sampled_from(["d", "ts"] + _DATES + _STAMPS))
        if x == "d" and (other == "d" or other.startswith("DATE")):
            return f"d - {other}"
        return f"{x} - {other if other != 'd' else 'CAST(d AS TIMESTAMP)'}"
    if kind == "cast":
        return f"CAST({x} AS {draw(st.sampled_from(['DATE', 'TIMESTAMP']))})"
    if kind == "strftime":
        return f"strftime({x}, '{draw(st.sampled_from(['%Y-%m-%d', '%d/%m/%y %H:%M:%S', '%j %a %b %p %I']))}')"
    return draw(st.sampled_from(_DATES + _STAMPS + ["CAST('2024-01-02 03:04:05' AS TIMESTAMP)"]))


@st.composite
def date_predicates(draw):
    x = draw(st.sampled_from(["d", "ts"]))
    op = draw(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]))
    other = draw(st.sampled_from(["d", "ts"] + _DATES + _STAMPS + [f"{_DATES[0]} + INTERVAL '3 months'"]))
    return f"{x} {op} {other}"


def _plain(v):
    """An answer as Python compares it: intervals as their exact length."""
    if isinstance(v, pa.MonthDayNano):
        assert v.months == 0, "months never come out of these expressions"
        return timedelta(days=v.days, microseconds=v.nanoseconds // 1000)
    return v


def check(table, sql):
    want = _duckdb_rows({"t": table}, sql)
    got = [[_plain(v) for v in row] for row in _velaria_rows({"t": table}, sql)]
    want, got = sorted(want, key=_sort_key), sorted(got, key=_sort_key)
    msg = f"\nsql: {sql}\ndata: {table.to_pydict()}\nvelaria: {got}\nduckdb:  {want}"
    assert len(got) == len(want), msg
    for g, w in zip(got, want):
        assert all(_equal(a, b) for a, b in zip(g, w)), msg


@SETTINGS
@given(tables(), st.lists(date_exprs(), min_size=1, max_size=3), st.one_of(st.none(), date_predicates()))
def test_date_expressions_match_duckdb(table, exprs, pred):
    items = ", ".join(f"{e} AS c{i}" for i, e in enumerate(exprs))
    check(table, f"SELECT {items} FROM t" + (f" WHERE {pred}" if pred else ""))


@SETTINGS
@given(tables(), st.sampled_from(["d", "ts", "date_trunc('month', d)", "EXTRACT(year FROM ts)"]))
def test_date_group_by_and_aggregates_match_duckdb(table, key):
    check(table, f"SELECT {key} AS g, count(*) AS n, min(d) AS lo, max(ts) AS hi FROM t GROUP BY {key}")


# RANGE frames over a DATE / TIMESTAMP ORDER BY key with INTERVAL offsets (integers: days for a
# DATE). Ties in the window order do not matter: RANGE frames take whole peer groups.
_RANGE_OFFSETS = ["INTERVAL '1 month'", "INTERVAL '40 days'", "INTERVAL '2 years 1 day'", "INTERVAL '36 hours'",
                  "INTERVAL '0 days'"]


@SETTINGS
@given(tables(), st.sampled_from(["d", "ts"]), st.sampled_from(["", " DESC"]),
       st.sampled_from(_RANGE_OFFSETS + ["30", "0"]), st.sampled_from(_RANGE_OFFSETS + ["7"]),
       st.sampled_from(["PRECEDING AND CURRENT ROW", "PRECEDING AND {end} FOLLOWING",
                        "FOLLOWING AND {end} FOLLOWING", "PRECEDING AND {end} PRECEDING"]),
       st.sampled_from(["COUNT(*)", "SUM(k)", "MIN(k)", "COUNT(k)"]))
def test_date_range_frames_match_duckdb(table, key, direction, start, end, shape, agg):
    if key == "ts" and not start.startswith("INTERVAL"):
        start = f"INTERVAL '{start} days'"
    if key == "ts" and not end.startswith("INTERVAL"):
        end = f"INTERVAL '{end} days'"
    frame = f"RANGE BETWEEN {start} " + shape.format(end=end)
    check(table, f"SELECT k, {key}, {agg} OVER (ORDER BY {key}{direction} {frame}) AS w FROM t")
