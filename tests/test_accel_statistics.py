"""Accelerated VAR_SAMP / VAR_POP / STDDEV_SAMP / STDDEV_POP / MEDIAN against the reference.

Hypothesis feeds both aggregates the same groups, split into random batches, with NULLs, NaN,
+-inf, -0.0 and int64 extremes; results must be the same bits (the C Welford fold and its
numpy twin both). The state contract holds across the twins, and the fast path really runs
(the recorded aggregate path is not ``reference``).
"""
from __future__ import annotations

import math
import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import Session, accel
from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch

pytestmark = pytest.mark.skipif(not accel.batch_available(), reason="accelerated batch kernels unavailable")

I, F = pa.int64(), pa.float64()
FUNCS = ["var_samp", "var_pop", "stddev_samp", "stddev_pop", "median"]
AGGS = [AggregateCall(type=F, func=fn, arg=Column(type=t, index=j, name=f"c{j}"))
        for fn in FUNCS for j, t in ((1, I), (2, F))]
INTS = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([2 ** 63 - 1, -(2 ** 63), 2 ** 53 + 1, 10 ** 12]))
FLOATS = st.one_of(st.none(), st.floats(-1e6, 1e6),
                   st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 1e300, -1e300, 5e-324]))
ROWS = st.lists(st.tuples(st.integers(0, 3), INTS, FLOATS), max_size=40)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def bits(x):
    if x is None:
        return None
    return "nan" if math.isnan(x) else struct.pack("<d", x)


@pytest.fixture(params=["c", "numpy"])
def fold(request, monkeypatch):
    """The C Welford fold, and its numpy twin (what runs without the C build)."""
    from velaria.accel import batch_c
    if request.param == "numpy":
        monkeypatch.setattr(batch_c, "_use_c", False)
    elif not batch_c.available():
        pytest.skip("C batch kernels not built")
    return request.param


def _batch(rows):
    return (pa.array([r[0] for r in rows], type=I), pa.array([r[1] for r in rows], type=I),
            pa.array([r[2] for r in rows], type=F))


def _update(h, rows, keyed=True):
    k, i, f = _batch(rows)
    h.update([k] if keyed else [], [i if a.arg.index == 1 else f for a in AGGS], len(rows))


def _cuts(rows, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=3)))
    bounds = [0] + cuts + [len(rows)]
    return [rows[a:b] for a, b in zip(bounds, bounds[1:])]


def _finish(h, keyed=True):
    types = ([I] if keyed else []) + [F] * len(AGGS)
    return [[bits(x) if isinstance(x, float) or x is None else x for x in col.to_pylist()] for col in h.finish(types)]


@PROPERTY
@given(rows=ROWS, keyed=st.booleans(), data=st.data())
def test_statistics_equal_the_reference_bit_for_bit(fold, rows, keyed, data):
    from velaria.accel.aggregate import HashAggregate
    parts = _cuts(rows, data)
    acc, ref = HashAggregate(AGGS, int(keyed)), ref_batch.HashAggregate(AGGS, int(keyed))
    for part in parts:
        _update(acc, part, keyed)
        _update(ref, part, keyed)
    assert _finish(acc, keyed) == _finish(ref, keyed)
    if rows:
        assert acc.path != "reference"


@PROPERTY
@given(a=ROWS, b=ROWS)
def test_state_contract_across_twins(fold, a, b):
    """A restored state continues bit for bit; merged partials equal the reference's merge."""
    from velaria.accel.aggregate import HashAggregate
    for cls in (HashAggregate, ref_batch.HashAggregate):
        whole = cls(AGGS, 1)
        _update(whole, a)
        _update(whole, b)
        first = cls(AGGS, 1)
        _update(first, a)
        resumed = cls(AGGS, 1)
        resumed.import_state(first.export_state([I]))
        _update(resumed, b)
        assert _finish(resumed) == _finish(whole)
    merged = []
    for cls in (HashAggregate, ref_batch.HashAggregate):
        m = cls(AGGS, 1)
        for part in (a, b):
            h = cls(AGGS, 1)
            _update(h, part)
            m.merge_state(h.export_state([I]))
        merged.append(_finish(m))
    assert merged[0] == merged[1]


def test_emit_updated_gives_the_touched_groups_statistics():
    from velaria.accel.aggregate import HashAggregate
    rows1 = [(0, 1, 1.0), (1, 2, 2.0), (0, 3, 4.0)]
    rows2 = [(1, 5, -0.0), (1, 7, 8.0)]
    types = [I] + [F] * len(AGGS)
    out = []
    for cls in (HashAggregate, ref_batch.HashAggregate):
        h = cls(AGGS, 1)
        _update(h, rows1)
        h.emit_updated(types)
        _update(h, rows2)
        out.append([[bits(x) if not isinstance(x, int) else x for x in c.to_pylist()] for c in h.emit_updated(types)])
    assert out[0] == out[1]
    assert out[0][0] == [1]


@pytest.mark.parametrize("sql", [
    "SELECT k, VAR_SAMP(v), STDDEV_POP(v), MEDIAN(v) FROM t GROUP BY k",
    "SELECT STDDEV(v), VARIANCE(k), MEDIAN(k) FROM t",
])
def test_sql_statistics_run_the_fast_path(sql):
    rng = np.random.default_rng(5)
    n = 20000
    table = pa.table({"k": rng.integers(0, 50, n), "v": rng.standard_normal(n)})
    results = {}
    for engine in ("reference", "auto"):
        s = Session(engine=engine)
        s.create_temp_view("t", s.create_dataframe_from_arrow(table))
        df = s.sql(sql)
        results[engine] = df.to_arrow()
        if engine == "auto":
            step = next(st for st in df._physical_plan().steps if st.kind == "Aggregate")
            assert step.ran_path not in (None, "reference")
            assert f"path={step.ran_path}" in df.explain()
    assert results["auto"].equals(results["reference"])
