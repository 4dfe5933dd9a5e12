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


def _one_pass(cls, aggs, batches, types):
    """One aggregator fed every batch: its finished columns, normalised."""
    h = cls(aggs, 1)
    for rows in batches:
        if rows:
            _update(h, aggs, rows)
    return _norm(h.finish(types))


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

    def merged():
        m = cls(aggs, 1)
        for part in _partials(cls, aggs, batches, key_type):
            m.merge_state(part)
        return _norm(m.finish(types))

    assert _run(merged) == _run(lambda: _one_pass(cls, aggs, batches, types))


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
    merged = cls(aggs, 1)
    for part in _partials(cls, aggs, batches, I):
        merged.merge_state(part)
    _assert_statistics_equal(cls, aggs, batches, merged)


def _assert_statistics_equal(cls, aggs, batches, merged):
    """``merged`` finishes with the keys of one pass over ``batches`` and its statistics
    (sums of squares may round differently once merged: within 1e-12)."""
    one = cls(aggs, 1)
    for rows in batches:
        _update(one, aggs, rows)
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


# ------------------------------------------------------------- by group id (local workers)

def _by_id(cls, aggs, batches, key_type, senders=2, num_keys=1):
    """Batches dealt to ``senders`` aggregators in turn (as local workers take them), each
    handing out ``take_updated_partial`` after its batch, merged in batch order into one
    receiver (each sender's id map kept as the driver keeps it); the receiver."""
    workers = [cls(aggs, num_keys) for _ in range(senders)]
    known, maps = [0] * senders, [None] * senders
    receiver = cls(aggs, num_keys)
    for n, rows in enumerate(batches):
        w = n % senders
        if rows:
            _update(workers[w], aggs, rows)
        new_keys, partial = workers[w].take_updated_partial([key_type] * num_keys, known[w])
        known[w] += new_keys.num_rows
        maps[w] = receiver.merge_partial(new_keys, partial, maps[w])
    return receiver


def _counts_and_sums():
    """The usual stream aggregates (merged by the accelerated twin in one add per column)."""
    v = Column(type=I, index=1, name="v")
    return [AggregateCall(type=I, func="count"), AggregateCall(type=I, func="count", arg=v),
            AggregateCall(type=I, func="sum", arg=v), AggregateCall(type=F, func="avg", arg=v)]


@pytest.mark.parametrize("cls", TWINS)
@pytest.mark.parametrize("aggregates", [_exact_aggregates, _counts_and_sums])
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(_keyed, st.integers(1, 3))
def test_partials_by_id_from_several_senders_equal_one_pass(cls, aggregates, batches, senders):
    aggs = aggregates()
    key_type = rows_key_type(next((b for b in batches if b), []))
    types = _types(aggs, key_type)

    assert (_run(lambda: _norm(_by_id(cls, aggs, batches, key_type, senders).finish(types)))
            == _run(lambda: _one_pass(cls, aggs, batches, types)))


@pytest.mark.parametrize("cls", TWINS)
def test_a_partial_by_id_sends_each_key_once(cls):
    aggs = _exact_aggregates()
    h = cls(aggs, 1)
    _update(h, aggs, [("a", 1, 1.0), ("b", 2, 2.0), ("a", 3, -1.0)])
    new_keys, partial = h.take_updated_partial([S], 0)
    assert new_keys.column("k0").to_pylist() == ["a", "b"]
    assert partial.column_names[0] == "id" and "k0" not in partial.column_names
    assert partial.column("id").to_pylist() == [0, 1]
    assert partial.column("a0_count").to_pylist() == [2, 1]
    _update(h, aggs, [("c", 7, None), ("b", 5, 0.5)])
    new_keys, partial = h.take_updated_partial([S], 2)
    assert new_keys.column("k0").to_pylist() == ["c"]            # "b" was sent before
    assert partial.column("id").to_pylist() == [1, 2]
    assert partial.column("a0_count").to_pylist() == [1, 1]       # restarted: this batch only
    assert [int(x) for x in partial.column("a2_total").to_pylist()] == [5, 7]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(_keyed)
def test_the_twins_hand_out_the_same_partials_by_id(batches):
    if len(TWINS) < 2:
        pytest.skip("accelerated batch kernels unavailable")
    aggs = _exact_aggregates()
    key_type = rows_key_type(next((b for b in batches if b), []))
    out = []
    for t in TWINS:
        h, known, parts = t.values[0](aggs, 1), 0, []
        for rows in batches:
            if rows:
                _update(h, aggs, rows)
            new_keys, partial = h.take_updated_partial([key_type], known)
            known += new_keys.num_rows
            parts.append((new_keys, partial))
        out.append(parts)
    for (rk, rp), (ak, ap) in zip(*out):
        assert rk.schema == ak.schema and rp.schema == ap.schema
        assert _norm(rk.columns) == _norm(ak.columns)
        assert _norm(rp.columns) == _norm(ap.columns)


@pytest.mark.parametrize("cls", TWINS)
def test_merge_partial_maps_ids_to_the_receivers_groups(cls):
    aggs = _exact_aggregates()
    one, two, r = cls(aggs, 1), cls(aggs, 1), cls(aggs, 1)
    _update(one, aggs, [("x", 1, 1.0)])
    m1 = r.merge_partial(*one.take_updated_partial([S], 0), None)
    _update(two, aggs, [("y", 2, 2.0), ("x", 3, 3.0)])             # "x" is id 1 in the sender
    m2 = r.merge_partial(*two.take_updated_partial([S], 0), None)
    assert list(m1) == [0] and list(m2) == [1, 0]
    _update(two, aggs, [("x", 4, 4.0)])
    keys, partial = two.take_updated_partial([S], 2)
    assert keys.num_rows == 0
    m2 = r.merge_partial(keys, partial, m2)
    out = r.finish(_types(aggs, S))
    assert out[0].to_pylist() == ["x", "y"]
    assert out[1].to_pylist() == [3, 1]
    assert out[3].to_pylist() == [8, 2]


@pytest.mark.parametrize("cls", TWINS)
@pytest.mark.parametrize("aggregates", [_exact_aggregates, _counts_and_sums])
def test_exact_integer_totals_beyond_int64_survive_the_partials_by_id(cls, aggregates):
    aggs = aggregates()
    big = 2 ** 63 - 1
    batches = [[(1, big, 0.0), (1, big, 0.0)], [(1, big, 0.0)], [(1, -big, 0.0)], [(1, big, 0.0)]]
    merged = _by_id(cls, aggs, batches, I)
    assert int(merged.export_state([I]).column("a2_total")[0].as_py()) == 3 * big
    # a partial total beyond int64 (two values near 2**63 in one batch) also merges exactly
    merged = _by_id(cls, aggs, [[(1, big, 0.0), (1, big, 0.0)], [(1, 5, 0.0)], [(1, big, 0.0), (1, big, 0.0)]], I)
    assert int(merged.export_state([I]).column("a2_total")[0].as_py()) == 4 * big + 5


@pytest.mark.parametrize("cls", TWINS)
def test_value_list_aggregates_merge_by_id_through_the_reference(cls):
    aggs = _statistics()
    batches = [[(1, 3, 1.5), (2, 7, -1.0)], [(1, 10, 0.25), (3, 1, 9.0)], [(1, 4, 4.0)], [(2, 5, 0.5)]]
    _assert_statistics_equal(cls, aggs, batches, _by_id(cls, aggs, batches, I))


@pytest.mark.parametrize("cls", TWINS)
def test_a_global_aggregate_merges_by_id(cls):
    v = Column(type=I, index=1, name="v")
    aggs = [AggregateCall(type=I, func="count"), AggregateCall(type=I, func="sum", arg=v),
            AggregateCall(type=I, func="max", arg=v)]
    senders, r, maps = [cls(aggs, 0), cls(aggs, 0)], cls(aggs, 0), [None, None]
    for n, rows in enumerate(([1, 2], [], [5], [-3, 4])):
        h = senders[n % 2]
        if rows:
            h.update([], [None, pa.array(rows, I), pa.array(rows, I)], len(rows))
        maps[n % 2] = r.merge_partial(*h.take_updated_partial([], 0), maps[n % 2])
    out = r.finish([I, I, I])
    assert [c.to_pylist() for c in out] == [[5], [9], [5]]
