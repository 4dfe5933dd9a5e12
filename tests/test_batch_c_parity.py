"""The C batch kernels (accel/src/batch_ops.c) against their numpy twins (accel/batch_c.py)
and, through the accelerated kernels that use them, against the reference kernels.

The dense GROUP BY lookup table is exercised with NULLs, NaN, -0.0, +-inf, int64 extremes and
key ranges that grow or become too wide between batches (the table is then handed to the
hashing path); the single-key sort (the C radix sort of ``accel/sort_rows.py`` and its twin,
tested in depth by ``tests/test_sort_rows.py``) with descending order, NULL placement and
LIMIT."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import accel
from velaria.plan.expr import AggregateCall, Column
from velaria.reference import batch as ref_batch

batch_c = pytest.importorskip("velaria.accel.batch_c")
pytest.importorskip("velaria.accel.aggregate")
from types import SimpleNamespace  # noqa: E402

from velaria.accel import aggregate as _acc_aggregate, predicates as _acc_predicates, sort as _acc_sort  # noqa: E402
from velaria.accel import sort_rows  # noqa: E402

bk = SimpleNamespace(HashAggregate=_acc_aggregate.HashAggregate, sort_indices=_acc_sort.sort_indices,
                     filter_batch=_acc_predicates.filter_batch)

needs_c = pytest.mark.skipif(not batch_c.available(), reason=f"C batch kernels not built: {batch_c.import_error}")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, math.nan, 1.0, -1.0]))
INTS = st.one_of(st.integers(-5, 5), st.integers(-(2 ** 63), 2 ** 63 - 1),
                 st.sampled_from([-(2 ** 63), 2 ** 63 - 1, 2 ** 53 + 1]))


def both(fn, module=batch_c):
    """fn() with ``module``'s C kernels (when built), then with its numpy twins."""
    saved = module._use_c
    try:
        module._use_c = module._lib is not None
        c = fn()
        module._use_c = False
        py = fn()
    finally:
        module._use_c = saved
    return c, py


def same_floats(a, b):
    return np.array_equal(np.asarray(a, dtype=np.float64).view(np.int64), np.asarray(b, dtype=np.float64).view(np.int64))


@needs_c
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 4), FLOATS, st.booleans()), max_size=60), st.booleans())
def test_group_sum_f64_c_matches_twin(rows, grouped):
    g = 5
    gids = np.array([r[0] for r in rows], dtype=np.int64) if grouped else None
    x = np.array([r[1] for r in rows], dtype=np.float64)
    valid = np.array([r[2] for r in rows], dtype=bool)

    def run():
        totals = np.array([0.0, 2.0, 1.5, math.inf, 0.0][:g if grouped else 1])
        counts = np.zeros(totals.size, dtype=np.int64)
        batch_c.group_sum_f64(gids, x, valid, totals, counts)
        return totals, counts
    (tc, cc), (tp, cp) = both(run)
    assert same_floats(tc, tp) and np.array_equal(cc, cp)
    # and the plain left-to-right Python sum (the reference's rule)
    want = [0.0, 2.0, 1.5, math.inf, 0.0][:tc.size]
    for gi, xi, vi in zip(gids if grouped else [0] * len(rows), x, valid):
        if vi:
            want[gi] = want[gi] + float(xi)
    assert same_floats(tc, want)


@needs_c
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=60))
def test_group_count_c_matches_twin(rows):
    gids = np.array([r[0] for r in rows], dtype=np.int64)
    valid = np.array([r[1] for r in rows], dtype=bool)

    def run():
        a, b = np.zeros(4, dtype=np.int64), np.ones(4, dtype=np.int64)
        batch_c.group_count(gids, None, a)
        batch_c.group_count(gids, valid, b)
        return np.concatenate([a, b])
    c, py = both(run)
    assert np.array_equal(c, py)


@needs_c
@SETTINGS
@given(st.lists(st.lists(st.one_of(st.none(), st.integers(-20, 20)), max_size=30), max_size=4))
def test_dense_group_ids_c_matches_twin(batches):
    def run():
        lut = np.full(42, -1, dtype=np.int64)
        nxt, out = 0, []
        for b in batches:
            keys = np.array([0 if v is None else v for v in b], dtype=np.int64)
            valid = np.array([v is not None for v in b], dtype=bool)
            gids, new_rows, nxt = batch_c.dense_group_ids(keys, valid, -20, lut, 41, nxt)
            out.append((gids.tolist(), new_rows.tolist(), nxt))
        return out, lut.tolist()
    c, py = both(run)
    assert c == py


# ------------------------------------------------------------------ through the kernels

def _aggs():
    from velaria.plan import types as T
    v = Column(index=1, type=pa.float64(), name="v")
    i = Column(index=2, type=pa.int64(), name="i")
    return [AggregateCall(func="sum", arg=v, type=pa.float64()), AggregateCall(func="count", arg=None, type=pa.int64()),
            AggregateCall(func="avg", arg=v, type=pa.float64()), AggregateCall(func="sum", arg=i, type=pa.int64()),
            AggregateCall(func="min", arg=v, type=pa.float64()), AggregateCall(func="count", arg=v, type=pa.int64())]


def _run_agg(cls, key_batches, vals, types):
    agg = cls(_aggs(), 1)
    for keys, (v, i) in zip(key_batches, vals):
        agg.update([keys], [v, None, v, i, v, v], len(keys))
    return agg.finish(types)


KEYS = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([-(2 ** 63), 2 ** 63 - 1, 10 ** 7, 5000]))


@SETTINGS
@given(st.lists(st.lists(st.tuples(KEYS, st.one_of(st.none(), FLOATS), st.one_of(st.none(), st.integers(-9, 9))),
                         min_size=1, max_size=12), min_size=1, max_size=5),
       st.sampled_from([pa.int64(), pa.int32(), pa.int16()]))
def test_dense_group_by_matches_reference(batches, key_type):
    if key_type != pa.int64():
        batches = [[(k if k is None or abs(k) < 2 ** 15 else 77, v, i) for k, v, i in b] for b in batches]
    key_batches = [pa.array([r[0] for r in b], type=key_type) for b in batches]
    vals = [(pa.array([r[1] for r in b], type=pa.float64()), pa.array([r[2] for r in b], type=pa.int64()))
            for b in batches]
    types = [key_type, pa.float64(), pa.int64(), pa.float64(), pa.int64(), pa.float64(), pa.int64()]
    want = _run_agg(ref_batch.HashAggregate, key_batches, vals, types)
    c, py = both(lambda: _run_agg(bk.HashAggregate, key_batches, vals, types))
    for got in (c, py):
        for g, w in zip(got, want):
            assert g.type == w.type
            gl, wl = g.to_pylist(), w.to_pylist()
            assert len(gl) == len(wl)
            for a, b in zip(gl, wl):
                if isinstance(b, float):
                    assert isinstance(a, float)
                    assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
                else:
                    assert a == b


@SETTINGS
@given(st.one_of(st.lists(st.one_of(st.none(), FLOATS), max_size=40),
                 st.lists(st.one_of(st.none(), INTS), max_size=40)),
       st.booleans(), st.booleans(), st.one_of(st.none(), st.integers(0, 45)))
def test_single_key_sort_matches_reference(values, desc, nulls_first, limit):
    is_float = any(isinstance(v, float) for v in values)
    arr = pa.array(values, type=pa.float64() if is_float else pa.int64())
    want = ref_batch.sort_indices([arr], [desc], [nulls_first], limit)
    c, py = both(lambda: bk.sort_indices([arr], [desc], [nulls_first], limit), sort_rows)
    assert c.to_pylist() == want.to_pylist() and py.to_pylist() == want.to_pylist()


def test_shared_sum_avg_argument_mirrors_only_while_shared():
    v = Column(index=0, type=pa.float64(), name="v")
    aggs = [AggregateCall(func="sum", arg=v, type=pa.float64()), AggregateCall(func="avg", arg=v, type=pa.float64())]
    same = pa.array([0.1, 0.2, 0.3])
    a2, b2 = pa.array([1e16, 1.0, -1e16]), pa.array([5.0, 6.0, 7.0])
    results = []
    for cls in (ref_batch.HashAggregate, bk.HashAggregate):
        agg = cls(aggs, 0)
        agg.update([], [same, same], 3)
        agg.update([], [a2, b2], 3)          # no longer the same array: each sums its own
        agg.update([], [b2, b2], 3)
        results.append([x.to_pylist() for x in agg.finish([pa.float64(), pa.float64()])])
    assert results[0] == results[1]


CMP_OPS = ["=", "!=", "<", "<=", ">", ">="]


@needs_c
@SETTINGS
@given(st.one_of(st.lists(st.tuples(FLOATS, st.booleans()), max_size=60),
                 st.lists(st.tuples(INTS, st.booleans()), max_size=60)),
       st.sampled_from(CMP_OPS), st.one_of(FLOATS.filter(lambda f: f == f), INTS), st.booleans(),
       st.booleans(), st.booleans())
def test_select_cmp_c_matches_twin(rows, op, c, with_valid, want_idx, want_vals):
    is_float = bool(rows) and isinstance(rows[0][0], float)
    if not is_float and isinstance(c, float):
        c = max(-(2 ** 63), min(2 ** 63 - 1, int(c))) if math.isfinite(c) else 0
    if not want_idx and not want_vals:
        want_vals = True
    x = np.array([r[0] for r in rows], dtype=np.float64 if is_float else np.int64)
    valid = np.array([r[1] for r in rows], dtype=bool) if with_valid else None
    (ic, vc), (ip, vp) = both(lambda: batch_c.select_cmp(x, valid, op, c, want_idx, want_vals))
    # the reference rule: NaN above every number, NULL never kept
    keep = []
    for i, (v, ok) in enumerate(rows):
        if with_valid and not ok:
            continue
        v = float(v) if is_float else int(v)
        if is_float and v != v:
            hit = op in ("!=", ">", ">=")
        else:
            hit = {"=": v == c, "!=": v != c, "<": v < c, "<=": v <= c, ">": v > c, ">=": v >= c}[op]
        if hit:
            keep.append(i)
    for idx, vals in ((ic, vc), (ip, vp)):
        if want_idx:
            assert idx.tolist() == keep
        else:
            assert idx is None
        if want_vals:
            assert vals.dtype == x.dtype
            assert np.array_equal(vals.view(np.int64), x[keep].view(np.int64))
        else:
            assert vals is None


@needs_c
@SETTINGS
@given(st.lists(INTS, min_size=1, max_size=40), st.data())
def test_gather_u64_c_matches_twin(values, data):
    src = np.array(values, dtype=np.int64)
    idx = np.array(data.draw(st.lists(st.integers(0, len(values) - 1), max_size=40)), dtype=np.int64)
    c, py = both(lambda: batch_c.gather_u64(src.view(np.float64), idx))
    assert c.dtype == np.float64 and np.array_equal(c.view(np.int64), src[idx])
    assert np.array_equal(py.view(np.int64), src[idx])


@SETTINGS
@given(st.lists(st.tuples(st.one_of(st.none(), FLOATS), st.one_of(st.none(), INTS), st.booleans()),
                min_size=1, max_size=30),
       st.sampled_from(CMP_OPS), st.sampled_from(["v", "k"]), st.booleans(),
       st.one_of(st.floats(allow_nan=False), st.integers(-3, 3), st.sampled_from([0.0, -0.0, 2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1])),
       st.integers(0, 3))
def test_filter_compare_constant_matches_reference(rows, op, col, flipped, value, offset):
    from velaria.plan.expr import Call, Literal
    batch = pa.record_batch({"v": pa.array([r[0] for r in rows], type=pa.float64()),
                             "k": pa.array([r[1] for r in rows], type=pa.int64()),
                             "s": pa.array([None if r[2] else str(r[0]) for r in rows], type=pa.string())})
    batch = batch.slice(min(offset, len(rows) - 1))       # a non-zero array offset
    index = 0 if col == "v" else 1
    column = Column(index=index, type=batch.schema.field(index).type, name=col)
    # an int literal may be typed DOUBLE (then it is the float it rounds to, 2**53 + 1 included)
    lit_type = pa.float64() if isinstance(value, float) or (flipped and offset == 1) else pa.int64()
    lit = Literal(value=value, type=lit_type)
    pred = Call(name=op, args=(lit, column) if flipped else (column, lit), type=pa.bool_())
    want = ref_batch.filter_batch(pred, batch)
    c, py = both(lambda: bk.filter_batch(pred, batch))
    for got in (c, py):
        assert got.schema.equals(want.schema)
        assert got.num_rows == want.num_rows
        for g, w in zip(got.columns, want.columns):
            assert g.type == w.type
            gl, wl = g.to_pylist(), w.to_pylist()
            for a, b in zip(gl, wl):
                if isinstance(b, float):
                    assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
                else:
                    assert a == b
