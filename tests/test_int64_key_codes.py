"""GROUP BY several keys where a key column is int64 (a stream's window starts): its values
are numbered by a persistent hash table (``accel/aggregate.py``, ``_int64_codes``) instead of
a dictionary encoding and a lookup in every value seen so far. Checked against the reference
aggregate over several batches mixing plain and dictionary-encoded columns, NULLs (the column
then leaves the table for the dictionary path with the same numbering), extremes and ties;
and through partials by id, whose receiver numbers only the new keys."""
from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type

acc_aggregate = pytest.importorskip("velaria.accel.aggregate")
from velaria.accel import group_hash  # noqa: E402

I64 = st.sampled_from([0, 1, -1, 60_000, 2**63 - 1, -2**63, 7])


def _aggs():
    v = Column(type=pa.int64(), index=2, name="v")
    return [AggregateCall(type=aggregate_result_type("sum", v.type), func="sum", arg=v),
            AggregateCall(type=aggregate_result_type("count", None), func="count", arg=None)]


def _types():
    return [pa.int64(), pa.string()] + [a.type for a in _aggs()]


def _run(cls, batches):
    h = cls(_aggs(), 2)
    for b in batches:
        h.update([b.column(0), b.column(1)], [b.column(2), None], b.num_rows)
    return h, h.finish(_types())


@st.composite
def batch_lists(draw):
    out = []
    for _ in range(draw(st.integers(1, 5))):
        n = draw(st.integers(0, 20))
        nulls = draw(st.booleans()) and draw(st.booleans())       # now and then a NULL batch
        a = draw(st.lists(st.one_of(st.none(), I64) if nulls else I64, min_size=n, max_size=n))
        b = draw(st.lists(st.sampled_from(["x", "y", "zz"]), min_size=n, max_size=n))
        v = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
        column = pa.array(a, pa.int64())
        if draw(st.booleans()):
            column = column.dictionary_encode()
        out.append(pa.record_batch([column, pa.array(b, pa.string()), pa.array(v, pa.int64())],
                                   names=["a", "b", "v"]))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch_lists())
def test_int64_keys_match_the_reference(batches):
    _, want = _run(ref_batch.HashAggregate, batches)
    _, got = _run(acc_aggregate.HashAggregate, batches)
    assert [g.to_pylist() for g in got] == [w.to_pylist() for w in want]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch_lists(), st.integers(1, 3))
def test_partials_by_id_with_int64_keys_equal_one_pass(batches, senders):
    plain = [b for b in batches if b.column(0).type == pa.int64()]
    _, want = _run(ref_batch.HashAggregate, plain)
    workers = [acc_aggregate.HashAggregate(_aggs(), 2) for _ in range(senders)]
    known, maps = [0] * senders, [None] * senders
    receiver = acc_aggregate.HashAggregate(_aggs(), 2)
    for i, b in enumerate(plain):
        w = i % senders
        workers[w].update([b.column(0), b.column(1)], [b.column(2), None], b.num_rows)
        new_keys, partial = workers[w].take_updated_partial(_types()[:2], known[w])
        known[w] += new_keys.num_rows
        maps[w] = receiver.merge_partial(new_keys, partial, maps[w])
    got = receiver.finish(_types())
    assert [g.to_pylist() for g in got] == [w.to_pylist() for w in want]


@pytest.mark.skipif(not group_hash.c_available(), reason="C kernels not built")
def test_int64_keys_take_the_table_and_leave_it_on_a_null():
    def batch(a):
        return pa.record_batch([pa.array(a, pa.int64()), pa.array(["x"] * len(a)), pa.array([1] * len(a), pa.int64())],
                               names=["a", "b", "v"])
    first = batch([5, 3, 5])
    h = acc_aggregate.HashAggregate(_aggs(), 2)
    h.update([first.column(0), first.column(1)], [first.column(2), None], 3)
    assert isinstance(h._int_tables[0], group_hash.Int64GroupTable)
    assert h._column_uniques[0].to_pylist() == [5, 3]
    with_null = batch([None, 9, 5])
    h.update([with_null.column(0), with_null.column(1)], [with_null.column(2), None], 3)
    assert h._int_tables[0] is False                       # NULL and 9 came in the other way
    assert h._column_uniques[0].to_pylist() == [5, 3, None, 9]
    result = h.finish(_types())
    assert result[0].to_pylist() == [5, 3, None, 9] and result[3].to_pylist() == [3, 1, 1, 1]
