"""A sliding window's text key: stable dictionary encoding before the row copies, and the
accelerated aggregate's per-dictionary codes. Same rows, same order, same values as the text."""
from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import velaria.exec.window as window_mod
from velaria import Session
from velaria.accel import aggregate as accel_aggregate
from velaria.exec.window_keys import StableDictionary, packing_available
from velaria.plan.expr import AggregateCall, Column

from stream_fakes import collect

needs_packing = pytest.mark.skipif(not packing_available(), reason="the C accelerator is not built")

_TEXT = st.one_of(st.none(), st.text(max_size=3), st.sampled_from(["", "key-0001", "key-0002", "ä", "12345678"]))


@needs_packing
@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_TEXT, max_size=30), min_size=1, max_size=4))
def test_stable_dictionary_decodes_to_its_input_with_stable_indices(batches):
    encoder = StableDictionary()
    index_of: dict = {}
    for values in batches:
        arr = pa.array(values, pa.string())
        enc = encoder.encode(arr)
        assert enc.type == pa.dictionary(pa.int32(), pa.string())
        assert enc.cast(pa.string()).to_pylist() == values          # NULL decodes to NULL
        if encoder.packed:
            for v, i in zip(values, enc.indices.to_pylist()):
                assert index_of.setdefault(v, i) == i                # one index per value, for good


@needs_packing
def test_stable_dictionary_reuses_one_dictionary_until_a_value_is_new():
    encoder = StableDictionary()
    a = encoder.encode(pa.array(["x", "y", "x"]))
    b = encoder.encode(pa.array(["y", "y"]))
    assert a.dictionary.buffers()[2].address == b.dictionary.buffers()[2].address
    c = encoder.encode(pa.array(["z", "x"]))
    assert c.dictionary.to_pylist() == ["x", "y", "z"] and c.indices.to_pylist() == [2, 0]


@pytest.mark.parametrize("values", [["short", "a much longer key"], ["nul\0byte"]])
def test_stable_dictionary_leaves_the_packed_path_for_values_it_cannot_pack(values):
    encoder = StableDictionary()
    assert encoder.encode(pa.array(values)).cast(pa.string()).to_pylist() == values
    assert not encoder.packed
    assert encoder.encode(pa.array(["k"])).cast(pa.string()).to_pylist() == ["k"]


def test_stable_dictionary_without_packing_is_arrow_encoding():
    encoder = StableDictionary(packed=False)
    enc = encoder.encode(pa.array(["b", None, "b"]))
    assert not encoder.packed and enc.indices.to_pylist() == [0, None, 0]


def _aggregate():
    aggs = [AggregateCall(type=pa.int64(), func="count"),
            AggregateCall(type=pa.int64(), func="sum", arg=Column(type=pa.int64(), index=2, name="v"))]
    return accel_aggregate.HashAggregate(aggs, 2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 3), _TEXT, st.integers(-5, 5)), max_size=25),
                min_size=1, max_size=4))
def test_aggregate_over_stable_dictionaries_equals_over_text(batches):
    """The per-dictionary codes (cached while the dictionary stays the same) give the groups,
    their order and the values that the text keys give."""
    encoder = StableDictionary()
    plain, encoded = _aggregate(), _aggregate()
    for rows in batches:
        w = pa.array([r[0] for r in rows], pa.int64())
        k = pa.array([r[1] for r in rows], pa.string())
        v = pa.array([r[2] for r in rows], pa.int64())
        plain.update([w, k], [None, v], len(rows))
        encoded.update([w, encoder.encode(k)], [None, v], len(rows))
    types = [pa.int64(), pa.string(), pa.int64(), pa.int64()]
    assert [a.to_pylist() for a in encoded.finish(types)] == [a.to_pylist() for a in plain.finish(types)]


def test_aggregate_numbers_an_unchanged_dictionary_once(monkeypatch):
    calls = []
    real = accel_aggregate._codes
    monkeypatch.setattr(accel_aggregate, "_codes", lambda arr: calls.append(len(arr)) or real(arr))
    dictionary = pa.array(["a", "b", "c", "d", "e"])
    agg = _aggregate()
    for indices in ([0, 1, 2, 1], [2, 2, 0], [1]):
        key = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), dictionary)
        agg.update([pa.array([7] * len(indices)), key], [None, pa.array([1] * len(indices))], len(indices))
    assert calls.count(5) == 1                          # the dictionary, hashed for the first batch only
    out = agg.finish([pa.int64(), pa.string(), pa.int64(), pa.int64()])
    assert out[1].to_pylist() == ["a", "b", "c"] and out[2].to_pylist() == [2, 3, 3]


SLIDING = ("SELECT window_start, key, COUNT(*) AS c, SUM(v) AS s FROM ev WINDOW BY ts EVERY 60000 SLIDE 30000 "
           "AS window_start GROUP BY window_start, key")


def _events():
    rng = np.random.default_rng(3)
    batches = []
    for b in range(4):
        ts = np.sort(rng.integers(b * 50_000, (b + 1) * 50_000, 40))
        keys = [None if i % 9 == 4 else f"key-{int(x):04d}" for i, x in enumerate(rng.integers(0, 6, 40))]
        batches.append(pa.record_batch({"ts": pa.array(ts, pa.int64()), "key": pa.array(keys, pa.string()),
                                        "v": pa.array(rng.integers(0, 100, 40), pa.int64())}))
    return batches


def _run(engine, monkeypatch, late=True, **opts):
    with monkeypatch.context() as m:
        if not late:
            import velaria.stream.operators as ops
            m.setattr(ops, "late_window_key", lambda window, aggregate: None)
        s = Session(engine=engine)
        s.create_temp_view("ev", s.create_stream_from_arrow(_events()))
        q, rows = collect(s, s.stream_sql(SLIDING), **opts)
    return q, rows


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_sliding_text_key_takes_the_stable_encoding_and_keeps_the_rows(engine, monkeypatch):
    q, rows = _run(engine, monkeypatch)
    _, text_rows = _run(engine, monkeypatch, late=False)
    assert rows == text_rows                                     # same rows, same order
    window_ops = [op for op in q._rt.operators if isinstance(op, window_mod.WindowAssignOperator)]
    assert window_ops and window_ops[0].encode
    packed = [d.packed for d in window_ops[0]._dictionaries.values()]
    assert packed == [engine != "reference" and packing_available()]


def test_sliding_text_key_in_local_workers_equals_single_process(monkeypatch):
    _, single = _run("auto", monkeypatch)
    _, workers = _run("auto", monkeypatch, execution_mode="local-workers", local_workers=2)
    assert sorted(map(repr, workers)) == sorted(map(repr, single))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), max_size=6), min_size=1, max_size=5), st.data())
def test_take_from_parts_equals_a_take_over_their_concatenation(sizes, data):
    parts = [pa.array([f"p{i}-{v}" for v in part], pa.string()) for i, part in enumerate(sizes)]
    total = sum(len(p) for p in parts)
    idx = np.array(sorted(data.draw(st.sets(st.integers(0, max(total - 1, 0)), max_size=total))) if total else [],
                   dtype=np.int64)
    got = accel_aggregate._take_from_parts(parts, idx)
    assert got.type == pa.string()
    assert got.to_pylist() == pa.concat_arrays(parts).take(pa.array(idx, pa.int64())).to_pylist()


@pytest.mark.parametrize("sql, unread", [
    (SLIDING, {0}),                                            # ts only windows the rows
    (SLIDING.replace("SUM(v) AS s", "MAX(ts) AS s"), {2}),     # ts read by an aggregate, v by none
    (SLIDING.replace("SUM(v) AS s", "MIN(v + ts) AS s"), set()),
])
@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_sliding_copies_leave_out_the_columns_nothing_reads(sql, unread, engine, monkeypatch):
    """The copies of a column the aggregate above never reads are NULL placeholders; the rows
    equal those of the text-window path, which copies every column."""
    monkeypatch.setattr(sys.modules[__name__], "SLIDING", sql)
    q, rows = _run(engine, monkeypatch)
    _, text_rows = _run(engine, monkeypatch, late=False)
    assert rows == text_rows and len(rows) > 20
    window_ops = [op for op in q._rt.operators if isinstance(op, window_mod.WindowAssignOperator)]
    assert set(window_ops[0].unread) == unread
    if unread:                        # the placeholder really stood in for the copies
        batch = window_ops[0].push(_events()[0])[0]
        assert batch.num_rows == 80
        assert all(batch.column(i).null_count == 80 for i in unread)
