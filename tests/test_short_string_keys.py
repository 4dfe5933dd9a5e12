"""GROUP BY two keys where a string key's values fit 8 bytes: each value is packed into one
int64 and numbered by a persistent table (``accel/aggregate.py``, ``_short_string_codes``).
Checked against the reference aggregate over several batches, with NULLs, empty strings,
multi-byte characters, a longer value arriving mid-stream (the column continues on the
dictionary path with the same numbering) and more rows than one table block."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type

acc_aggregate = pytest.importorskip("velaria.accel.aggregate")
from velaria.accel import group_hash, select_terms  # noqa: E402

SHORT = st.one_of(st.none(), st.sampled_from(["", "A", "N", "R", "O", "F", "é", "abcdefg", "key-0042"]), st.text(max_size=3))
LONG = st.one_of(SHORT, st.text(min_size=9, max_size=10), st.just("a\x00"))


def _aggs():
    v = Column(type=pa.float64(), index=2, name="v")
    return [AggregateCall(type=aggregate_result_type("sum", v.type), func="sum", arg=v),
            AggregateCall(type=aggregate_result_type("count", None), func="count", arg=None),
            AggregateCall(type=aggregate_result_type("max", v.type), func="max", arg=v)]


def _run(cls, batches):
    h = cls(_aggs(), 2)
    for b in batches:
        h.update([b.column(0), b.column(1)], [b.column(2), None, b.column(2)], b.num_rows)
    types = [pa.string(), pa.string()] + [a.type for a in _aggs()]
    return h, h.finish(types)


@st.composite
def batch_lists(draw):
    out = []
    for i in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, 25))
        strings = LONG if i and draw(st.booleans()) else SHORT
        a = draw(st.lists(strings, min_size=n, max_size=n))
        b = draw(st.lists(SHORT, min_size=n, max_size=n))
        v = draw(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=n, max_size=n))
        out.append(pa.record_batch([pa.array(a, pa.string()), pa.array(b, pa.string()), pa.array(v, pa.float64())],
                                   names=["a", "b", "v"]))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch_lists())
def test_two_string_keys_match_the_reference(batches):
    _, want = _run(ref_batch.HashAggregate, batches)
    h, got = _run(acc_aggregate.HashAggregate, batches)
    for g, w in zip(got, want):
        assert g.to_pylist() == w.to_pylist()


@pytest.mark.skipif(not select_terms.c_available(), reason="C kernels not built")
def test_short_strings_take_the_packed_path_across_table_blocks(monkeypatch):
    monkeypatch.setattr(group_hash, "_BLOCK", 64)
    rng = np.random.default_rng(5)
    n = 1000
    # two-byte values: one-byte pairs take the direct-indexed table instead (tests/test_byte_keys.py)
    flags = np.array(["AA", "N", "R", ""], dtype=object)[rng.integers(0, 4, n)]
    status = np.array(["F", "O", None], dtype=object)[rng.integers(0, 3, n)]
    batch = pa.record_batch([pa.array(flags, pa.string()), pa.array(status, pa.string()), pa.array(rng.random(n))],
                            names=["a", "b", "v"])
    batches = [batch.slice(0, 300), batch.slice(300)]
    h, got = _run(acc_aggregate.HashAggregate, batches)
    _, want = _run(ref_batch.HashAggregate, batches)
    assert [g.to_pylist() for g in got] == [w.to_pylist() for w in want]
    assert h.path == "packed-hash" and all(isinstance(t, group_hash.Int64GroupTable) for t in h._short_strings)


@pytest.mark.parametrize("use_c", [False, pytest.param(True, marks=pytest.mark.skipif(
    not group_hash.c_available(), reason="C accelerator not built"))])
def test_blocked_ids_equal_one_call(monkeypatch, use_c):
    monkeypatch.setattr(group_hash, "_BLOCK", 100)
    keys = np.random.default_rng(3).integers(-50, 50, 1234)
    one, one_new = group_hash.Int64GroupTable(use_c=use_c).ids(keys)
    blocked, blocked_new = group_hash.blocked_ids(group_hash.Int64GroupTable(use_c=use_c), keys)
    assert np.array_equal(one, blocked) and np.array_equal(one_new, blocked_new)
