"""The float SUM order (16 interleaved lanes, combined pairwise) in both twins.

The oracle is the definition itself (``reference.aggregate.float_sum``). The accelerated
aggregate must give the same bits on every SIMD level the machine has and with the numpy twin
of the C kernel, for any split into batches, with NULLs, NaN, +-inf, -0.0 and extreme values;
the exported state carries the lanes so a restored checkpoint continues exactly.
"""
from __future__ import annotations

import math
import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import accel
from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import SUM_LANES, combine_lanes, float_sum

pytestmark = pytest.mark.skipif(not accel.batch_available(), reason="accelerated batch kernels unavailable")

F = pa.float64()
V = Column(type=F, index=0, name="v")
AGGS = [AggregateCall(type=F, func="sum", arg=V), AggregateCall(type=F, func="avg", arg=V),
        AggregateCall(type=pa.int64(), func="count", arg=V)]
EDGES = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 1e16, -1e16, 0.1, 3.0]
VALUES = st.lists(st.one_of(st.none(), st.sampled_from(EDGES), st.floats(allow_nan=False, allow_infinity=False)),
                  max_size=80)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def bits(x):
    return None if x is None else struct.pack("<d", x) if not math.isnan(x) else "nan"


def _levels():
    from velaria.accel import batch_c
    levels = [("numpy", None)]
    if batch_c.available():
        levels += [("c", b) for b in accel.available_backends()]
    return levels


@pytest.fixture(params=_levels(), ids=lambda p: p[1] or p[0])
def level(request, monkeypatch):
    """Each way the accelerated sum can run: every SIMD level of the C kernel, and its numpy twin."""
    from velaria.accel import batch_c
    kind, backend = request.param
    if kind == "numpy":
        monkeypatch.setattr(batch_c, "_use_c", False)
        yield kind
        return
    with accel.forced_backend(backend):
        yield backend


def _cuts(values, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(values)), max_size=4)))
    bounds = [0] + cuts + [len(values)]
    return [values[a:b] for a, b in zip(bounds, bounds[1:])]


def _run(cls, parts):
    h = cls(AGGS, 0)
    for part in parts:
        arr = pa.array(part, type=F)
        h.update([], [arr, arr, arr], len(part))
    return [a.to_pylist()[0] for a in h.finish([F, F, pa.int64()])]


@PROPERTY
@given(values=VALUES, data=st.data())
def test_accelerated_global_sum_is_the_specified_order_bit_for_bit(level, values, data):
    from velaria.accel.aggregate import HashAggregate
    parts = _cuts(values, data)
    got = _run(HashAggregate, parts)
    want = _run(ref_batch.HashAggregate, parts)
    present = [x for x in values if x is not None]
    oracle = float_sum(present) if present else None
    assert bits(want[0]) == bits(oracle)
    assert [bits(x) for x in got[:2]] == [bits(x) for x in want[:2]]
    assert got[2] == want[2] == len(present)


@PROPERTY
@given(values=st.lists(st.one_of(st.sampled_from(EDGES), st.floats()), max_size=100),
       start=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=SUM_LANES, max_size=SUM_LANES),
       pos=st.integers(0, 40), with_valid=st.booleans(), data=st.data())
def test_sum_lanes_kernel_continues_lanes_as_defined(level, values, start, pos, with_valid, data):
    """The kernel adds value k to lane (pos + k) mod 16 from any starting lanes / position."""
    from velaria.accel import batch_c
    x = np.array(values, dtype=np.float64)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))), dtype=bool) \
        if with_valid else None
    lanes = np.array(start, dtype=np.float64)
    want = list(start)
    kept = [v for i, v in enumerate(values) if valid is None or valid[i]]
    for k, v in enumerate(kept):
        want[(pos + k) % SUM_LANES] += v
    assert batch_c.sum_lanes_f64(x, valid, lanes, pos) == len(kept)
    assert [bits(a) for a in lanes.tolist()] == [bits(b) for b in want]
    assert bits(batch_c.combine_lanes_f64(lanes)) == bits(combine_lanes(want))


@pytest.mark.parametrize("n", [1, 7, 11, 15, 16, 17, 97, 1536, 100_003])
def test_every_simd_level_gives_the_same_bits(n):
    """Lengths that hit the head, vector tails and block edges, on every level the machine has."""
    from velaria.accel import batch_c
    if not batch_c.available():
        pytest.skip("C batch kernels not built")
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-5, 15, n)
    results = {}
    for backend in accel.available_backends():
        with accel.forced_backend(backend):
            for pos in (0, 5):
                lanes = np.zeros(SUM_LANES)
                batch_c.sum_lanes_f64(x, None, lanes, pos)
                results[(backend, pos)] = lanes.tobytes()
    for pos in (0, 5):
        assert len({v for (b, p), v in results.items() if p == pos}) == 1, results.keys()
    assert bits(float_sum(x.tolist())) == bits(_global_sum(x))


def _global_sum(x):
    from velaria.accel.aggregate import HashAggregate
    h = HashAggregate(AGGS[:1], 0)
    h.update([], [pa.array(x)], len(x))
    return h.finish([F])[0].to_pylist()[0]


@PROPERTY
@given(a=VALUES, b=VALUES)
def test_restored_state_continues_the_lanes_exactly(a, b):
    """import_state(export(a)); update(b) is update(a); update(b) bit for bit, in both twins,
    and a merge (lane j onto lane count + j) gives the same bits in both twins."""
    from velaria.accel.aggregate import HashAggregate
    for cls in (ref_batch.HashAggregate, HashAggregate):
        whole = _run(cls, [a, b])
        first = cls(AGGS, 0)
        arr = pa.array(a, type=F)
        first.update([], [arr, arr, arr], len(a))
        resumed = cls(AGGS, 0)
        resumed.import_state(first.export_state([]))
        arr = pa.array(b, type=F)
        resumed.update([], [arr, arr, arr], len(b))
        assert [bits(x) for x in resumed.finish([F, F, pa.int64()])[0].to_pylist()] == [bits(whole[0])]
    merged = []
    for cls in (ref_batch.HashAggregate, HashAggregate):
        states = []
        for part in (a, b):
            h = cls(AGGS, 0)
            arr = pa.array(part, type=F)
            h.update([], [arr, arr, arr], len(part))
            states.append(h.export_state([]))
        m = cls(AGGS, 0)
        for state in states:
            m.merge_state(state)
        merged.append([bits(x.to_pylist()[0]) for x in m.finish([F, F, pa.int64()])])
    assert merged[0] == merged[1]


def test_exported_state_has_the_lanes():
    from velaria.accel.aggregate import HashAggregate
    for cls in (ref_batch.HashAggregate, HashAggregate):
        h = cls(AGGS, 0)
        h.update([], [pa.array([1.0, 2.0, 0.5])] * 3, 3)
        state = h.export_state([])
        assert state.column("a0_lanes").to_pylist() == [[1.0, 2.0, 0.5] + [0.0] * 13]
        assert state.column("a0_total").to_pylist() == [3.5]


def test_grouped_sums_keep_row_order():
    """GROUP BY sums are plain left-to-right sums (documented): 0.1 * 10 in one group."""
    from velaria.accel.aggregate import HashAggregate
    for cls in (ref_batch.HashAggregate, HashAggregate):
        h = cls(AGGS[:1], 1)
        h.update([pa.array([1] * 10)], [pa.array([0.1] * 10)], 10)
        assert h.finish([pa.int64(), F])[1].to_pylist() == [sum([0.1] * 10)]
    assert float_sum([0.1] * 10) == 1.0 != sum([0.1] * 10)


def test_numpy_lane_sums_keep_a_negative_zero_lane(monkeypatch):
    """-0.0 + -0.0 is -0.0: the numpy twin adds whole rows of lanes without starting from +0.0."""
    from velaria.accel import batch_c
    monkeypatch.setattr(batch_c, "_use_c", False)
    lanes = np.full(SUM_LANES, -0.0)
    assert batch_c.sum_lanes_f64(np.full(2 * SUM_LANES, -0.0), None, lanes, 0) == 2 * SUM_LANES
    assert all(np.signbit(lanes))
