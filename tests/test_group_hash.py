"""The persistent int64 group table: C kernel and numpy twin number keys identically."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from velaria.accel.group_hash import Int64GroupTable, c_available

I64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
BATCH = st.lists(st.one_of(I64, st.integers(-3, 3), st.sampled_from([0, -1, 2 ** 31, 1 << 62])),
                 max_size=60)


def _oracle(batches):
    """First-appearance numbering with a dict: (ids per batch, new positions per batch)."""
    seen: dict[int, int] = {}
    out = []
    for b in batches:
        ids, new = [], []
        for i, k in enumerate(b):
            if k not in seen:
                seen[k] = len(seen)
                new.append(i)
            ids.append(seen[k])
        out.append((ids, new))
    return out


@pytest.mark.parametrize("use_c", [False, pytest.param(True, marks=pytest.mark.skipif(
    not c_available(), reason="C accelerator not built: only the numpy twin can run"))])
@settings(max_examples=150, deadline=None)
@given(batches=st.lists(BATCH, max_size=6))
def test_table_numbers_keys_in_first_appearance_order(use_c, batches):
    table = Int64GroupTable(use_c=use_c)
    assert table.use_c == use_c
    for (want_ids, want_new), b in zip(_oracle(batches), batches):
        ids, new = table.ids(np.array(b, dtype=np.int64))
        assert ids.tolist() == want_ids
        assert new.tolist() == want_new
    flat = [k for b in batches for k in b]
    assert table.keys.tolist() == list(dict.fromkeys(flat))


@pytest.mark.skipif(not c_available(), reason="C accelerator not built: only the numpy twin can run")
def test_c_table_grows_and_keeps_ids():
    """Many batches of partly new keys force several rehashes; ids never change."""
    rng = np.random.default_rng(3)
    c, twin = Int64GroupTable(use_c=True), Int64GroupTable(use_c=False)
    for step in range(40):
        keys = rng.integers(0, 5_000 * (step + 1), 3_000, dtype=np.int64) << 20
        a, b = c.ids(keys), twin.ids(keys)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(c.keys, twin.keys)
    assert len(c) == len(twin) > 50_000


KEYS = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "", "é", "a "])), min_size=1, max_size=30)
FLOATS = st.lists(st.one_of(st.none(), st.sampled_from([0.0, -0.0, float("nan"), 1.5, -1.5])),
                  min_size=1, max_size=30)


@settings(max_examples=80, deadline=None)
@given(batches=st.lists(st.tuples(KEYS, st.integers(0, 3), st.booleans()), min_size=1, max_size=4),
       fkeys=FLOATS)
def test_dictionary_encoded_keys_group_like_their_values(batches, fkeys):
    """A dictionary-encoded key (what a sliding window hands a two-key GROUP BY) gives the
    groups, order and totals of the plain key: NULL indices, NULL / duplicate / -0.0 / NaN
    dictionary entries included."""
    import pyarrow as pa
    from velaria.accel.aggregate import HashAggregate
    from velaria.plan.expr import AggregateCall, Column
    aggs = [AggregateCall(type=pa.int64(), func="count"),
            AggregateCall(type=pa.int64(), func="sum", arg=Column(type=pa.int64(), index=2, name="v"))]
    types = [pa.string(), pa.int64(), pa.int64(), pa.int64()]
    plain, encoded = HashAggregate(aggs, 2), HashAggregate(aggs, 2)
    for keys, w, dup in batches:
        k = pa.array(keys, pa.string())
        enc = k.dictionary_encode()
        if dup:      # a dictionary with a duplicate entry and a NULL entry, never referenced
            d = pa.concat_arrays([enc.dictionary, enc.dictionary, pa.nulls(1, pa.string())])
            enc = pa.DictionaryArray.from_arrays(enc.indices, d)
        ws = pa.array([w] * len(keys), pa.int64())
        v = pa.array(range(len(keys)), pa.int64())
        plain.update([k, ws], [None, v], len(keys))
        encoded.update([enc, ws], [None, v], len(keys))
        assert encoded.emit_updated(types) == plain.emit_updated(types)
    assert encoded.finish(types) == plain.finish(types)
    # float dictionaries: -0.0 and 0.0 are one group, every NaN one group
    f = pa.array(fkeys, pa.float64())
    ftypes = [pa.float64(), pa.int64(), pa.int64(), pa.int64()]
    a, b = HashAggregate(aggs, 2), HashAggregate(aggs, 2)
    ones = pa.array([1] * len(fkeys), pa.int64())
    a.update([f, ones], [None, ones], len(fkeys))
    b.update([f.dictionary_encode(), ones], [None, ones], len(fkeys))
    ra, rb = a.finish(ftypes), b.finish(ftypes)
    assert [x.to_pylist() for x in ra[1:]] == [x.to_pylist() for x in rb[1:]]
    assert ra[0].is_null().to_pylist() == rb[0].is_null().to_pylist()
