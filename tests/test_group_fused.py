"""GROUP BY shortcuts without a group id per row (``accel/group_fused.py``,
``accel/group_shortcuts.py``): the C kernels against their numpy twins, the aggregate on these
paths against the reference (same groups, same order, the same bits of every float sum), the
hand-over to the general paths mid-query, and checks that the shortcuts really ran.

Generated data has NULL keys and values, NaN, -0.0, +-inf, extreme magnitudes, ties, empty
batches, sliced arrays and key ranges that grow from one batch to the next."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type

group_fused = pytest.importorskip("velaria.accel.group_fused")
from velaria.accel import aggregate as acc_aggregate  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, math.nan, 1e308, -1e308, 5e-324, 0.1]))
needs_c = pytest.mark.skipif(not group_fused.c_available(), reason="C kernels not built")


def _bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64).tolist()


# --------------------------------------------------------------------------- the kernels

@st.composite
def packed_batches(draw):
    ncols = draw(st.integers(1, 3))
    lows = [draw(st.sampled_from([0, -3, 2**40])) for _ in range(ncols)]
    radixes = [draw(st.integers(2, 6)) for _ in range(ncols)]
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, 40))
        cols, valids = [], []
        for lo, radix in zip(lows, radixes):
            cols.append(np.array(draw(st.lists(st.integers(lo, lo + radix - 2), min_size=n, max_size=n)),
                                 dtype=np.int64))
            valids.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
                          if draw(st.booleans()) else None)
        batches.append((cols, valids))
    return lows, radixes, batches


@needs_c
@SETTINGS
@given(packed_batches())
def test_bitmap_first_rows_c_equals_numpy_across_batches(case):
    lows, radixes, batches = case
    bits = int(np.prod(radixes))
    maps = {True: np.zeros((bits + 7) // 8, dtype=np.uint8), False: np.zeros((bits + 7) // 8, dtype=np.uint8)}
    seen = set()
    for cols, valids in batches:
        got = {c: group_fused.bitmap_first_rows(cols, valids, lows, radixes, maps[c], use_c=c) for c in (True, False)}
        assert got[True].tolist() == got[False].tolist()
        assert np.array_equal(maps[True], maps[False])
        # the first row of every combination never seen before (NULL equal to NULL)
        want = []
        for i in range(cols[0].size if cols else 0):
            key = tuple(None if v is not None and not v[i] else int(c[i]) for c, v in zip(cols, valids))
            if key not in seen:
                seen.add(key)
                want.append(i)
        assert got[True].tolist() == want


@st.composite
def dense_batches(draw):
    lo = draw(st.sampled_from([0, -5, 2**40]))
    span = draw(st.integers(1, 12))
    batches = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 30))
        keys = np.array(draw(st.lists(st.integers(0, span - 1), min_size=n, max_size=n)), dtype=np.int64)
        valid = None
        if draw(st.booleans()):
            valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        xs = [np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=np.float64)
              for _ in range(draw(st.integers(1, 3)))]
        batches.append((keys + lo, valid, xs))
    return lo, span, batches


def _dense_run(case, use_c):
    lo, span, batches = case
    lut = np.full(span + 1, -1, dtype=np.int64)
    k = len(batches[0][2])
    cap = 2 * (span + 1)
    totals = [np.full(cap, -0.0) for _ in range(k)]
    count = np.zeros(cap, dtype=np.int64)
    nxt, opened = 0, []
    for keys, valid, xs in batches:
        xs = (xs + [np.zeros(keys.size)] * k)[:k]
        rows, nxt = group_fused.dense_group_sum_f64(keys, valid, lo, lut, span, nxt, xs, totals, count, use_c=use_c)
        opened.append(rows.tolist())
    return nxt, opened, [_bits(t[:nxt]) for t in totals], count[:nxt].tolist(), lut.tolist()


@needs_c
@SETTINGS
@given(dense_batches())
def test_dense_group_sum_c_equals_numpy_and_row_order(case):
    got, want = _dense_run(case, True), _dense_run(case, False)
    assert got == want
    nxt, _, totals, count, lut = got
    # each group's total is the left-to-right sum of its values from -0.0
    lo, span, batches = case
    k = len(batches[0][2])
    ref = [[-0.0] * nxt for _ in range(k)]
    for keys, valid, xs in batches:
        xs = (xs + [np.zeros(keys.size)] * k)[:k]
        for i in range(keys.size):
            slot = span if valid is not None and not valid[i] else int(keys[i] - lo)
            for j in range(k):
                ref[j][lut[slot]] += float(xs[j][i])
    assert totals == [_bits(r) for r in ref]
    assert sum(count) == sum(keys.size for keys, _, _ in batches)


# --------------------------------------------------------------------------- the aggregate

def _finish(h, key_types, aggs):
    out = h.finish(list(key_types) + [a.type for a in aggs])
    return [[repr(x) for x in col.to_pylist()] for col in out]


def _both(aggs, nkeys, batches, key_types):
    """(accelerated aggregate, its output, the reference's output) over the same batches."""
    outs = []
    for cls in (acc_aggregate.HashAggregate, ref_batch.HashAggregate):
        h = cls(aggs, nkeys)
        for keys, args in batches:
            h.update(keys, args, len(keys[0]))
        outs.append((h, _finish(h, key_types, aggs)))
    return outs[0][0], outs[0][1], outs[1][1]


INT_TYPES = [pa.int64(), pa.int32(), pa.int8(), pa.uint16()]


@st.composite
def int_key_batches(draw):
    nkeys = draw(st.integers(2, 3))
    types = [draw(st.sampled_from(INT_TYPES)) for _ in range(nkeys)]
    batches = []
    for b in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 30))
        offset = draw(st.integers(0, 2))
        cols = []
        for t in types:
            lo, hi = (0, 6) if b == 0 or draw(st.booleans()) else (-3, 100)   # later batches may not fit
            if pa.types.is_unsigned_integer(t) or t == pa.int8():
                lo, hi = max(lo, 0), min(hi, 100)
            values = draw(st.lists(st.one_of(st.none(), st.integers(lo, hi)), min_size=n, max_size=n))
            cols.append(pa.array([0] * offset + values, t).slice(offset))
        batches.append((cols, []))
    return types, batches


@needs_c
@SETTINGS
@given(int_key_batches())
def test_keys_only_group_by_matches_the_reference(case):
    types, batches = case
    h, got, want = _both([], len(types), batches, types)
    assert got == want
    if h._ngroups and h.path != "key-bitmap":
        assert h.path == "packed-hash"          # a batch beyond the first one's ranges


def _sum_aggs():
    v = Column(type=pa.float64(), index=1, name="v")
    return [AggregateCall(type=aggregate_result_type("sum", v.type), func="sum", arg=v),
            AggregateCall(type=aggregate_result_type("count", None), func="count", arg=None),
            AggregateCall(type=aggregate_result_type("avg", v.type), func="avg", arg=v)]


@needs_c
@SETTINGS
@given(st.lists(st.tuples(st.lists(st.one_of(st.none(), st.integers(-3, 8)), max_size=30),
                          st.lists(FLOATS, max_size=30), st.booleans()), min_size=1, max_size=4))
def test_dense_sums_match_the_reference_bit_for_bit(data):
    batches = []
    for keys, values, with_null in data:
        n = min(len(keys), len(values))
        v = pa.array([None if with_null and i % 3 == 0 else x for i, x in enumerate(values[:n])], pa.float64())
        arr = pa.array(keys[:n], pa.int64())
        batches.append(([arr], [v, None, v]))
    _, got, want = _both(_sum_aggs(), 1, batches, [pa.int64()])
    assert got == want


# --------------------------------------------------------------------------- the shortcuts ran

@needs_c
def test_the_key_bitmap_hands_its_groups_to_the_packed_hash_path():
    h = acc_aggregate.HashAggregate([], 2)
    h.update([pa.array([1, 2, None, 1]), pa.array([3, 3, 4, 3], pa.int32())], [], 4)
    assert h.path == "key-bitmap" and h._ngroups == 3
    h.update([pa.array([1, 200, 2]), pa.array([3, 5, None], pa.int32())], [], 3)      # 200: out of range
    assert h.path == "packed-hash"
    keys = [c.to_pylist() for c in h.finish([pa.int64(), pa.int32()])]
    assert keys == [[1, 2, None, 200, 2], [3, 3, 4, 5, None]]


def test_count_distinct_per_group_runs_on_the_key_bitmap():
    from engine_pair import on_both_engines

    rng = np.random.default_rng(3)
    n = 20_000
    u = pa.array(rng.integers(0, 500, n), mask=rng.random(n) < 0.05)
    table = pa.table({"k": rng.integers(-20, 80, n), "u": u})
    frames = on_both_engines(table, "SELECT k, COUNT(DISTINCT u) AS n FROM t GROUP BY k")
    out = {engine: df.to_arrow() for engine, df in frames.items()}
    assert out["auto"].equals(out["reference"])
    if group_fused.c_available():
        assert "path=key-bitmap" in frames["auto"].explain()


def test_grouped_sum_count_avg_runs_in_one_pass(monkeypatch):
    from engine_pair import on_both_engines

    calls = []
    real = group_fused.dense_group_sum_f64
    monkeypatch.setattr(group_fused, "dense_group_sum_f64", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(5)
    n = 30_000
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    values[::97] = -0.0
    values[::1001] = np.nan
    table = pa.table({"k": rng.integers(0, 300, n), "v": values})
    frames = on_both_engines(table, "SELECT k, SUM(v) AS s, COUNT(*) AS c, AVG(v) AS a FROM t GROUP BY k")
    out = {engine: df.to_arrow() for engine, df in frames.items()}
    for name in out["auto"].column_names:
        a, r = (out[e].column(name).to_numpy() for e in ("auto", "reference"))
        assert a.tobytes() == r.tobytes(), name
    assert calls if group_fused.c_available() else not calls
    assert "path=dense-c" in frames["auto"].explain()
