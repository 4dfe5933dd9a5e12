"""``take_updated_state``: an aggregator hands out, call after call, the partial state of what
was folded in since the previous call (the groups touched, which then restart empty), on both
twins. Local workers fold micro-batches this way and the driver merges the partials in batch
order, so merging the successive partials must equal one pass over every row -- exactly, for
the aggregates whose merge is exact (COUNT, integer SUM / AVG, MIN / MAX with their NaN and
signed-zero rules).
"""
from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.plan.expr import AggregateCall, Column

from test_aggregate_state import I, F, S, TWINS, _ints, _floats, _norm, _run, _statistics, _types, _update, rows_key_type


def _exact_aggregates():
    v, f = Column(type=I, index=1, name="v"), Column(type=F, index=2, name="f")
    return [AggregateCall(type=I, func="count"), AggregateCall(type=I, func="count", arg=v),
            AggregateCall(type=I, func="sum", arg=v), AggregateCall(type=F, func="avg", arg=v),
            AggregateCall(type=I, func="min", arg=v), AggregateCall(type=I, func="max", arg=v),
            AggregateCall(type=F, func="max", arg=f), AggregateCall(type=F, func="min", arg=f),
            AggregateCall(type=I, func="count", arg=f)]


def _batches(key):
    return st.lists(st.lists(st.tuples(key, _ints, _floats), min_size=0, max_size=10), min_size=1, max_size=4)


_keyed = st.one_of(_batches(st.one_of(st.none(), st.integers(-3, 3))), _batches(st.sampled_from(["a", "b", "c", "d"])))


def _partials(cls, aggs, batches, key_type):
    """One aggregator fed ``batches``, its partial state taken after each."""
    h = cls(aggs, 1)
    out = []
    for rows in batches:
        if rows:
            _update(h, aggs, rows)
        out.append(h.take_updated_state([key_type]))
    return out


@pytest.mark.parametrize("cls", TWINS)
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(_keyed)
def test_merged_partials_equal_one_pass(cls, batches):
    aggs = _exact_aggregates()
    key_type = rows_key_type(next((b for b in batches if b), []))
    types = _types(aggs, key_type)

    def one_pass():
        h = cls(aggs, 1)
        for rows in batches:
            if rows:
                _update(h, aggs, rows)
        return _norm(h.finish(types))

    def merged():
        m = cls(aggs, 1)
        for part in _partials(cls, aggs, batches, key_type):
            m.merge_state(part)
        return _norm(m.finish(types))

    assert _run(merged) == _run(one_pass)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(_keyed)
def test_the_twins_hand_out_the_same_partials(batches):
    if len(TWINS) < 2:
        pytest.skip("accelerated batch kernels unavailable")
    aggs = _exact_aggregates()
    key_type = rows_key_type(next((b for b in batches if b), []))
    ref, fast = (_partials(t.values[0], aggs, batches, key_type) for t in TWINS)
    for r, a in zip(ref, fast):
        assert r.schema == a.schema
        assert _norm(r.columns) == _norm(a.columns)


@pytest.mark.parametrize("cls", TWINS)
def test_a_partial_holds_only_the_groups_touched_since_the_last_call(cls):
    aggs = _exact_aggregates()
    h = cls(aggs, 1)
    _update(h, aggs, [("a", 1, 1.0), ("b", 2, 2.0), ("a", 3, -1.0)])
    first = h.take_updated_state([S])
    assert first.column("k0").to_pylist() == ["a", "b"]
    assert first.column("a0_count").to_pylist() == [2, 1]
    assert [int(x) for x in first.column("a2_total").to_pylist()] == [4, 2]
    assert h.take_updated_state([S]).num_rows == 0               # nothing new
    _update(h, aggs, [("b", 5, 0.5), ("c", 7, None)])
    second = h.take_updated_state([S])
    assert second.column("k0").to_pylist() == ["b", "c"]         # b restarted: this batch only
    assert second.column("a0_count").to_pylist() == [1, 1]
    assert [int(x) for x in second.column("a2_total").to_pylist()] == [5, 7]
    assert second.column("a4_best").to_pylist() == [5, 7]        # MIN(v) of this batch
    assert second.column("a6_best").to_pylist() == [0.5, None]
    if cls is not TWINS[0].values[0]:
        assert h.path == "arrow-hash"                             # restarted in place, never delegated


@pytest.mark.parametrize("cls", TWINS)
def test_exact_integer_totals_beyond_int64_survive_the_partials(cls):
    aggs = _exact_aggregates()
    big = 2 ** 63 - 1
    batches = [[(1, big, 0.0), (1, big, 0.0)], [(1, big, 0.0)], [(1, -big, 0.0)]]
    merged = cls(aggs, 1)
    for part in _partials(cls, aggs, batches, I):
        merged.merge_state(part)
    total = merged.export_state([I]).column("a2_total")[0].as_py()
    assert int(total) == 2 * big


@pytest.mark.parametrize("cls", TWINS)
def test_value_list_aggregates_restart_through_the_reference(cls):
    """MEDIAN and the variances keep per-group value lists or moments: the accelerated twin
    hands them to the reference, whose partials merge like one pass."""
    aggs = _statistics()
    batches = [[(1, 3, 1.5), (2, 7, -1.0)], [(1, 10, 0.25), (3, 1, 9.0)], [(1, 4, 4.0)]]
    one = cls(aggs, 1)
    for rows in batches:
        _update(one, aggs, rows)
    merged = cls(aggs, 1)
    for part in _partials(cls, aggs, batches, I):
        merged.merge_state(part)
    want = [c.to_pylist() for c in one.finish(_types(aggs, I))]
    got = [c.to_pylist() for c in merged.finish(_types(aggs, I))]
    assert got[0] == want[0]
    for g_col, w_col in zip(got[1:], want[1:]):
        assert all((g is None and w is None) or g == pytest.approx(w, rel=1e-12) for g, w in zip(g_col, w_col))


@pytest.mark.parametrize("cls", TWINS)
def test_a_global_aggregate_hands_out_its_one_group(cls):
    """Without keys: a float SUM keeps lane sums, which restart too."""
    v, f = Column(type=I, index=1, name="v"), Column(type=F, index=2, name="f")
    aggs = [AggregateCall(type=I, func="count"), AggregateCall(type=F, func="sum", arg=f),
            AggregateCall(type=I, func="sum", arg=v)]
    h = cls(aggs, 0)
    parts = []
    for rows in ([(None, 1, 0.5), (None, 2, 0.25)], [], [(None, 5, 4.0)]):
        if rows:
            h.update([], [None, pa.array([r[2] for r in rows], F), pa.array([r[1] for r in rows], I)], len(rows))
        parts.append(h.take_updated_state([]))
    assert [p.num_rows for p in parts] == [1, 0, 1]
    assert parts[2].column("a0_count").to_pylist() == [1]
    assert parts[2].column("a1_total").to_pylist() == [4.0]
    assert int(parts[2].column("a2_total")[0].as_py()) == 5
