"""A pushed filter never loses a row the query keeps, NaN included.

The engine orders NaN above every number (``NaN > 10`` holds, ``NaN != 20`` holds), while
Arrow's comparisons are false for NaN and Parquet's min / max statistics leave NaN out (a row
group holding 1.0 and NaN claims that every value is 1.0). A file's query must return what the
same rows in memory return.
"""
from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria.io.base import PushedFilter
from velaria.io.pushdown import apply_filters, usable_filters

_VALUES = st.lists(st.sampled_from([1.0, 20.0, -0.0, 0.0, math.nan, None, 10.0, -math.inf, math.inf]),
                   min_size=1, max_size=12)
_WHERE = ["x > 10", "x >= 10", "x < 10", "x <= 1", "x = 20", "x != 20", "x <> 1", "x > -1",
          "x = CAST('NaN' AS DOUBLE)", "x >= CAST('NaN' AS DOUBLE)", "x < CAST('NaN' AS DOUBLE)"]


def _rows(session, view, where):
    return str(session.sql(f"SELECT x, y FROM {view} WHERE {where}").to_arrow().to_pylist())


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=_VALUES)
def test_file_queries_keep_what_memory_keeps(tmp_path_factory, fmt, values):
    table = pa.table({"x": pa.array(values, pa.float64()), "y": list(range(len(values)))})
    path = str(tmp_path_factory.mktemp("nan") / f"t.{fmt}")
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=2)      # small groups: their statistics prune
    else:
        feather.write_feather(table, path)
    s = velaria.Session()
    s.create_temp_view("m", s.create_dataframe_from_arrow(table))
    s.create_temp_view("f", s.read_parquet(path) if fmt == "parquet" else s.read_arrow(path))
    for where in _WHERE:
        assert _rows(s, "f", where) == _rows(s, "m", where), where


def test_greater_keeps_nan_rows_and_a_nan_constant_is_not_pushed():
    batch = pa.record_batch({"x": pa.array([1.0, math.nan, 20.0, None])})
    assert apply_filters(batch, [PushedFilter("x", ">", 10)]).column(0).to_pylist()[0] != 1.0
    kept = apply_filters(batch, [PushedFilter("x", ">=", 10)]).column(0).to_pylist()
    assert len(kept) == 2 and math.isnan(kept[0]) and kept[1] == 20.0
    assert usable_filters([PushedFilter("x", "=", math.nan)], batch.schema) == []
