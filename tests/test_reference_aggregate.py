"""Pinned semantics of the reference hash aggregator."""
import math

import pyarrow as pa
import pytest
from hypothesis import given, strategies as st

from velaria.errors import ExecutionError, SQLSemanticError
from velaria.plan.expr import AggregateCall, Column
from velaria.reference.aggregate import HashAggregator, aggregate_result_type

I64, F64 = pa.int64(), pa.float64()


def agg(func, t=I64, distinct=False, star=False, result=None):
    arg = None if star else Column(type=t, index=0, name="x")
    rtype = result or aggregate_result_type(func, None if star else t)
    return AggregateCall(type=rtype, func=func, arg=arg, distinct=distinct)


def run(aggs, keys, args, batches=1):
    """Feed the rows in ``batches`` slices; return finish()."""
    h = HashAggregator(aggs, len(keys))
    n = len(keys[0]) if keys else len(next(a for a in args if a is not None))
    step = max(1, -(-n // batches)) if n else 1
    for lo in range(0, max(n, 1), step):
        hi = min(n, lo + step)
        h.update([k[lo:hi] for k in keys], [None if a is None else a[lo:hi] for a in args],
                 num_rows=hi - lo)
    return h.finish()


def test_result_types():
    assert aggregate_result_type("count", None) == I64
    assert aggregate_result_type("sum", pa.int32()) == I64
    assert aggregate_result_type("sum", F64) == F64
    assert aggregate_result_type("avg", I64) == F64
    assert aggregate_result_type("min", pa.string()) == pa.string()
    with pytest.raises(SQLSemanticError, match="SUM expects a numeric argument, got VARCHAR"):
        aggregate_result_type("sum", pa.string())


def test_count_sum_avg_min_max_with_nulls():
    xs = [3, None, 1, None, 2]
    aggs = [agg("count", star=True), agg("count"), agg("sum"), agg("avg"), agg("min"), agg("max")]
    keys, out = run(aggs, [], [None, xs, xs, xs, xs, xs])
    assert keys == []
    assert out == [[5], [3], [6], [2.0], [1], [3]]
    assert type(out[2][0]) is int and type(out[3][0]) is float


def test_all_null_and_empty_global_aggregate():
    aggs = [agg("count", star=True), agg("count"), agg("sum"), agg("avg"), agg("min"), agg("max")]
    _, out = run(aggs, [], [None] + [[None, None]] * 5)
    assert out == [[2], [0], [None], [None], [None], [None]]
    h = HashAggregator(aggs, 0)
    assert h.finish() == ([], [[0], [0], [None], [None], [None], [None]])   # one row, SQL standard
    h = HashAggregator(aggs, 1)
    assert h.finish() == ([[]], [[], [], [], [], [], []])


def test_groups_first_appearance_order_null_key_and_batches():
    keys = [["b", None, "a", "b", None, "c"]]
    xs = [1, 2, 3, 4, None, 6]
    for batches in (1, 2, 6):
        k, out = run([agg("sum"), agg("count")], keys, [xs, xs], batches)
        assert k == [["b", None, "a", "c"]]
        assert out == [[5, 2, 3, 6], [2, 1, 1, 1]]


def test_float_keys_negative_zero_and_nan():
    nan = float("nan")
    k, out = run([agg("count", star=True)], [[0.0, -0.0, nan, 1.5, nan]], [None])
    assert len(k[0]) == 3 and k[0][0] == 0.0 and math.isnan(k[0][1]) and k[0][2] == 1.5
    assert out == [[2, 2, 1]]


def test_multi_key_and_types_preserved():
    k, out = run([agg("max")], [[1, 1, 2, 1], [True, False, True, True]], [[5, 6, 7, 8]])
    assert k == [[1, 1, 2], [True, False, True]]
    assert out == [[8, 6, 7]]


def test_distinct_variants():
    xs = [1, 1, 2, None, 2, 3]
    aggs = [agg("count", distinct=True), agg("sum", distinct=True), agg("avg", distinct=True),
            agg("min", distinct=True), agg("max", distinct=True), agg("count")]
    _, out = run(aggs, [], [xs] * 6)
    assert out == [[3], [6], [2.0], [1], [3], [5]]
    _, out = run([agg("count", F64, distinct=True)], [], [[0.0, -0.0, float("nan"), float("nan")]])
    assert out == [[2]]


def test_float_sum_and_min_max_with_nan():
    nan = float("nan")
    xs = [1.5, nan, -2.0]
    _, out = run([agg("sum", F64), agg("min", F64), agg("max", F64)], [], [xs] * 3)
    assert math.isnan(out[0][0]) and out[1] == [-2.0] and math.isnan(out[2][0])
    _, out = run([agg("sum", F64)], [], [[0.5, 0.25]])
    assert out == [[0.75]]


def test_min_max_strings_and_ties():
    _, out = run([agg("min", pa.string()), agg("max", pa.string())], [], [["b", "B", "a"]] * 2)
    assert out == [["B"], ["b"]]


def test_sum_overflow_message():
    big = 2 ** 63 - 1
    with pytest.raises(ExecutionError) as info:
        run([agg("sum")], [], [[big, 1]])
    assert "BIGINT" in str(info.value) and "CAST(x AS DOUBLE)" in str(info.value)
    _, out = run([agg("sum")], [], [[big, 1, -1]])          # only the final total must fit
    assert out == [[big]]


keys_st = st.lists(st.one_of(st.none(), st.integers(-3, 3)), max_size=40)


@given(keys_st, st.data())
def test_property_against_oracle(keys, data):
    xs = data.draw(st.lists(st.one_of(st.none(), st.integers(-100, 100)),
                            min_size=len(keys), max_size=len(keys)))
    batches = data.draw(st.integers(1, 4))
    aggs = [agg("count", star=True), agg("count"), agg("sum"), agg("min"), agg("max")]
    k, out = run(aggs, [keys], [None, xs, xs, xs, xs], batches) if keys else (None, None)
    if not keys:
        return
    order = list(dict.fromkeys(keys))
    assert k == [order]
    for gi, key in enumerate(order):
        vals = [x for kk, x in zip(keys, xs) if kk == key]
        nn = [v for v in vals if v is not None]
        assert out[0][gi] == len(vals)
        assert out[1][gi] == len(nn)
        assert out[2][gi] == (sum(nn) if nn else None)
        assert out[3][gi] == (min(nn) if nn else None)
        assert out[4][gi] == (max(nn) if nn else None)
