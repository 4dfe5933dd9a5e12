"""The aggregate state contract (streams, checkpoints, worker processes), on both twins.

``update(a); update(b)`` must equal ``merge_state(export(a)); merge_state(export(b))`` and
``import_state(export(a)); update(b)``; ``emit_updated`` returns exactly the groups touched
since the previous call, with their current values, and changes nothing.
"""
from __future__ import annotations

import math

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import accel
from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch

I, F, S = pa.int64(), pa.float64(), pa.string()

TWINS = [pytest.param(ref_batch.HashAggregate, id="reference")]
if accel.batch_available():
    from velaria.accel.aggregate import HashAggregate as AccelHashAggregate
    TWINS.append(pytest.param(AccelHashAggregate, id="accel"))


def _aggregates(distinct: bool):
    v, f = Column(type=I, index=1, name="v"), Column(type=F, index=2, name="f")
    aggs = [AggregateCall(type=I, func="count"), AggregateCall(type=I, func="count", arg=v),
            AggregateCall(type=I, func="sum", arg=v), AggregateCall(type=F, func="avg", arg=v),
            AggregateCall(type=F, func="sum", arg=f), AggregateCall(type=F, func="avg", arg=f),
            AggregateCall(type=I, func="min", arg=v), AggregateCall(type=F, func="max", arg=f),
            AggregateCall(type=F, func="min", arg=f)]
    if distinct:
        aggs.append(AggregateCall(type=I, func="count", arg=v, distinct=True))
    return aggs


def _statistics():
    """The variances and MEDIAN (the accelerated twin runs them through the reference)."""
    v, f = Column(type=I, index=1, name="v"), Column(type=F, index=2, name="f")
    return [AggregateCall(type=F, func=fn, arg=a) for fn in ("var_samp", "var_pop", "stddev_samp", "stddev_pop",
                                                               "median") for a in (v, f)]


def _types(aggs, key_type):
    return [key_type] + [a.type for a in aggs]


def _update(h, aggs, rows):
    keys = pa.array([r[0] for r in rows], type=rows_key_type(rows))
    v = pa.array([r[1] for r in rows], type=I)
    f = pa.array([r[2] for r in rows], type=F)
    args = [None if a.arg is None else (v if a.arg.index == 1 else f) for a in aggs]
    h.update([keys], args, len(rows))


def rows_key_type(rows):
    return S if rows and isinstance(rows[0][0], str) else I


def _norm(arrays):
    """Comparable Python values: NaN equal to NaN, -0.0 distinct from 0.0."""
    out = []
    for a in arrays:
        col = []
        for x in a.to_pylist():
            if isinstance(x, float):
                col.append(("nan",) if math.isnan(x) else (x, math.copysign(1, x)))
            else:
                col.append(x)
        out.append(col)
    return out


_floats = st.one_of(st.none(), st.sampled_from([0.0, -0.0, math.nan, math.inf, -1.5, 2.25, 1e150, -1e-300]),
                    st.floats(-1e6, 1e6))
_ints = st.one_of(st.none(), st.integers(-10, 10), st.sampled_from([2 ** 62, -(2 ** 62), 2 ** 63 - 1]))


def _rows(key):
    return st.lists(st.tuples(key, _ints, _floats), min_size=0, max_size=12)


_keyed = st.one_of(st.tuples(_rows(st.one_of(st.none(), st.integers(-3, 3))), _rows(st.one_of(st.none(), st.integers(-3, 3)))),
                   st.tuples(_rows(st.sampled_from(["a", "b", "c"])), _rows(st.sampled_from(["a", "b", "d"]))))


def _run(fn):
    """(result, None) or (None, error type and text)."""
    try:
        return fn(), None
    except RuntimeError as exc:
        return None, (type(exc).__name__, str(exc))


@pytest.mark.parametrize("cls", TWINS)
@pytest.mark.parametrize("distinct", [False, True])
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(_keyed)
def test_merge_and_restore_equal_one_pass(cls, distinct, parts):
    a, b = parts
    if not a or not b:
        return
    aggs = _aggregates(distinct)
    key_type = rows_key_type(a)
    types = _types(aggs, key_type)

    def one_pass():
        h = cls(aggs, 1)
        _update(h, aggs, a)
        _update(h, aggs, b)
        return _norm(h.finish(types))

    def merged():
        parts_ = []
        for rows in (a, b):
            h = cls(aggs, 1)
            _update(h, aggs, rows)
            parts_.append(h.export_state([key_type]))
        m = cls(aggs, 1)
        for p in parts_:
            m.merge_state(p)
        return _norm(m.finish(types))

    def restored():
        h = cls(aggs, 1)
        _update(h, aggs, a)
        state = h.export_state([key_type])
        r = cls(aggs, 1)
        r.import_state(state)
        _update(r, aggs, b)
        return _norm(r.finish(types))

    want = _run(one_pass)
    assert _run(restored) == want
    got = _run(merged)
    if want[1] is None and got[1] is None:
        # float SUM/AVG add partial totals in a different order: equal up to rounding
        for col_w, col_g, t in zip(want[0], got[0], types):
            if pa.types.is_floating(t):
                for x, y in zip(col_w, col_g):
                    if isinstance(x, tuple) and isinstance(y, tuple) and len(x) == 2 and len(y) == 2:
                        assert x[0] == pytest.approx(y[0], rel=1e-9, abs=1e-6)
                    else:
                        assert x == y
            else:
                assert col_w == col_g
    else:
        assert got[1] == want[1]


@pytest.mark.parametrize("cls", TWINS)
def test_emit_updated_returns_touched_groups_without_changing_state(cls):
    aggs = _aggregates(False)
    types = _types(aggs, S)
    h = cls(aggs, 1)
    _update(h, aggs, [("a", 1, 1.0), ("b", 2, 2.0)])
    first = h.emit_updated(types)
    assert first[0].to_pylist() == ["a", "b"]
    assert h.emit_updated(types)[0].to_pylist() == []
    _update(h, aggs, [("b", 5, 0.5), ("c", 1, 1.0)])
    second = h.emit_updated(types)
    assert second[0].to_pylist() == ["b", "c"]
    assert second[3].to_pylist() == [7, 1]                    # running SUM(v) of b, c
    assert h.finish(types)[0].to_pylist() == ["a", "b", "c"]  # emit changed nothing


@pytest.mark.parametrize("cls", TWINS)
def test_state_export_schema_and_exact_integer_totals(cls):
    aggs = _aggregates(False)
    h = cls(aggs, 1)
    _update(h, aggs, [(1, 2 ** 63 - 1, 0.5), (1, 2 ** 63 - 1, 0.25)])
    state = h.export_state([I])
    assert state.schema.field("a2_total").type == pa.decimal128(38, 0)
    assert int(state.column("a2_total")[0].as_py()) == 2 * (2 ** 63 - 1)   # beyond int64, exact
    r = cls(aggs, 1)
    r.import_state(state)
    with pytest.raises(RuntimeError, match="SUM overflow"):
        r.finish(_types(aggs, I))


@pytest.mark.parametrize("cls", TWINS)
def test_import_state_refuses_a_used_aggregator(cls):
    aggs = _aggregates(False)
    h = cls(aggs, 1)
    _update(h, aggs, [(1, 1, 1.0)])
    with pytest.raises(ValueError, match="empty aggregator"):
        h.import_state(h.export_state([I]))


def test_accel_aggregate_records_the_path_that_ran():
    if not accel.batch_available():
        pytest.skip("accelerated batch kernels unavailable")
    aggs = _aggregates(False)
    dense = AccelHashAggregate(aggs, 1)
    _update(dense, aggs, [(1, 1, 1.0), (2, 2, 2.0)])
    assert dense.path in ("dense-c", "dense-numpy")
    hashed = AccelHashAggregate(aggs, 1)
    _update(hashed, aggs, [("a", 1, 1.0)])
    assert hashed.path == "arrow-hash"
    delegated = AccelHashAggregate(_aggregates(True), 1)
    _update(delegated, _aggregates(True), [(1, 1, 1.0)])
    assert delegated.path == "reference"



@pytest.mark.parametrize("twin", TWINS)
def test_statistics_state_merges_like_a_single_pass(twin):
    """Variances merge with Chan's formula (equal up to rounding), MEDIAN exactly."""
    aggs = _statistics()
    a = [(1, 3, 1.5), (1, None, 2.5), (2, 7, -1.0), (1, 4, 4.0)]
    b = [(1, 10, 0.25), (2, 8, None), (3, 1, 9.0)]
    one = twin(aggs, 1)
    _update(one, aggs, a + b)
    merged = twin(aggs, 1)
    for part in (a, b):
        h = twin(aggs, 1)
        _update(h, aggs, part)
        merged.merge_state(h.export_state([I]))
    restored = twin(aggs, 1)
    first = twin(aggs, 1)
    _update(first, aggs, a)
    restored.import_state(first.export_state([I]))
    _update(restored, aggs, b)
    want = [c.to_pylist() for c in one.finish(_types(aggs, I))]
    for other in (merged, restored):
        got = [c.to_pylist() for c in other.finish(_types(aggs, I))]
        assert got[0] == want[0]
        for g_col, w_col in zip(got[1:], want[1:]):
            assert all((g is None and w is None) or math.isclose(g, w, rel_tol=1e-12) for g, w in zip(g_col, w_col))
    values = dict(zip(want[0], zip(*want[1:])))
    assert values[1][8] == 4.0 and values[1][9] == 2.0      # MEDIAN of v (3, 4, 10), f (1.5, 2.5, 4.0, 0.25)
    assert values[3][0] is None and values[3][2] == 0.0      # one value: VAR_SAMP NULL, VAR_POP 0
