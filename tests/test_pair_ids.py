"""Pair numbering of the several-key aggregate: the direct-indexed table numbers pairs exactly
as the hash table over the packed pairs does, before, during and after leaving it."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from velaria.accel import aggregate as accel_aggregate
from velaria.accel.group_hash import Int64GroupTable, blocked_ids
from velaria.accel.pair_ids import PairTable, c_available
from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type

CODE = st.one_of(st.integers(0, 5), st.integers(0, 3000), st.sampled_from([0, 15, 16, 1023, 1024, 2 ** 31 - 1]))
BATCHES = st.lists(st.lists(st.tuples(CODE, CODE), max_size=40), max_size=6)


def _oracle(batches):
    """First-appearance numbering of the packed pairs in the hash table (the path the direct
    table stands in for): (ids, new positions) per batch."""
    table = Int64GroupTable()
    out = []
    for b in batches:
        a = np.array([p[0] for p in b], dtype=np.int64)
        c = np.array([p[1] for p in b], dtype=np.int64)
        ids, new = blocked_ids(table, (a << 31) | c)
        out.append((ids.tolist(), new.tolist()))
    return out


USE_C = [False, pytest.param(True, marks=pytest.mark.skipif(
    not c_available(), reason="C accelerator not built: only the numpy twin can run"))]


def _as_indices(codes: list[int], form: str, rng: np.random.Generator):
    """``codes`` in one of the forms ``PairTable.ids`` takes: the codes themselves (int64 or
    int32), or indices into a table of codes (a dictionary's positions, shuffled)."""
    if form == "int64":
        return np.array(codes, dtype=np.int64), None
    if form == "int32":
        return np.array(codes, dtype=np.int32), None
    distinct = sorted(set(codes)) + [5, 7]             # positions no row uses are fine
    rng.shuffle(distinct)
    position = {c: i for i, c in enumerate(distinct)}
    return np.array([position[c] for c in codes], dtype=np.int32), np.array(distinct, dtype=np.int64)


@pytest.mark.parametrize("use_c", USE_C)
@pytest.mark.parametrize("small", [1 << 20, 64])
@settings(max_examples=150, deadline=None)
@given(batches=BATCHES, forms=st.tuples(*[st.sampled_from(["int64", "int32", "mapped"])] * 2),
       seed=st.integers(0, 9))
def test_pair_table_numbers_like_the_hash_table(use_c, small, batches, forms, seed):
    """Same ids and new rows as the hash table, whether the direct table holds, grows, or
    (``small`` = 64 slots) leaves for the hash table in the middle; codes given directly or
    as indices into per-position codes; the C kernel and its numpy twin alike."""
    rng = np.random.default_rng(seed)
    table = PairTable(use_c=use_c)
    assert table.use_c == use_c
    table._SMALL = small
    for (want_ids, want_new), b in zip(_oracle(batches), batches):
        a, a_codes = _as_indices([p[0] for p in b], forms[0], rng)
        c, c_codes = _as_indices([p[1] for p in b], forms[1], rng)
        ids, new = table.ids(a, c, a_codes, c_codes)
        assert ids.tolist() == want_ids
        assert new.tolist() == want_new
    assert len(table) == len({p for b in batches for p in b})


@pytest.mark.parametrize("use_c", USE_C)
def test_an_index_outside_its_codes_is_an_error_and_numbers_nothing(use_c):
    table = PairTable(use_c=use_c)
    table.ids(np.array([0, 1], dtype=np.int32), np.array([3, 3]), np.array([4, 9]))
    with pytest.raises(IndexError):
        table.ids(np.array([0, 2], dtype=np.int32), np.array([3, 5]), np.array([4, 9]))
    assert len(table) == 2 and table.direct


def test_dense_pairs_stay_direct_and_sparse_pairs_leave():
    rng = np.random.default_rng(5)
    table = PairTable()
    for w in range(50):                      # windows x 1,000 keys: dense, stays direct
        keys = rng.permutation(np.tile(np.arange(1000, dtype=np.int64), 3))
        table.ids(np.full(keys.size, w, dtype=np.int64), keys)
    assert table.direct and len(table) == 50_000
    before = len(table)
    # a key code far out: 50 x 2**21 slots would be mostly empty -> the hash table takes over
    ids, new = table.ids(np.array([3, 3, 60], dtype=np.int64), np.array([7, 2 ** 21, 7], dtype=np.int64))
    assert not table.direct
    assert new.tolist() == [1, 2] and ids[1:].tolist() == [before, before + 1]
    again, _ = table.ids(np.array([3], dtype=np.int64), np.array([7], dtype=np.int64))
    assert again[0] == ids[0]                # the ids numbered directly are kept


def test_windowed_two_key_aggregate_numbers_pairs_directly():
    """A GROUP BY window, key stream (few windows per batch, few keys) runs the direct table,
    and its results equal the reference twin's."""
    rng = np.random.default_rng(9)
    aggs = [AggregateCall(type=aggregate_result_type("count", None), func="count", arg=None),
            AggregateCall(type=aggregate_result_type("sum", pa.int64()), func="sum",
                          arg=Column(type=pa.int64(), index=2, name="value"))]
    fast = accel_aggregate.HashAggregate(aggs, 2)
    ref = ref_batch.HashAggregate(aggs, 2)
    for step in range(6):
        window = pa.array(rng.integers(step, step + 3, 500) * 60_000, pa.int64())
        key = pa.array([f"k{i}" for i in rng.integers(0, 40, 500)], pa.string())
        value = pa.array(rng.integers(-5, 5, 500), pa.int64())
        for h in (fast, ref):
            h.update([window, key], [None, value], 500)
    assert fast.path == "packed-hash" and all(t.direct for t in fast._pairs)
    types = [pa.int64(), pa.string()] + [a.type for a in aggs]
    got = pa.table([*fast.finish(types)], names=["w", "k", "c", "s"]).sort_by([("w", "ascending"), ("k", "ascending")])
    want = pa.table([*ref.finish(types)], names=["w", "k", "c", "s"]).sort_by([("w", "ascending"), ("k", "ascending")])
    assert got.num_rows > 100 and got.equals(want)
