"""DECIMAL on the accelerated engine as scaled int64 (``accel/decimal_values.py``): SUM, AVG,
MIN and MAX in the aggregate, comparisons and CAST AS DOUBLE in ``evaluate``, each against
the reference's exact ``decimal.Decimal`` rules.

Generated data has NULLs, zero, negative values, values at the 18-digit edge, scales 0..6,
wide types (38 digits) whose values fit int64 and values that do not (the aggregate then
hands its state to the reference mid-stream), several batches, and exported / merged states
(streams, workers)."""
from __future__ import annotations

import decimal
import math

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from velaria.errors import VelariaError
from velaria.plan.expr import AggregateCall, Call, Cast, Column
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type
from velaria.reference.functions import EvalContext

acc_aggregate = pytest.importorskip("velaria.accel.aggregate")
from velaria.accel import expressions as acc_expressions  # noqa: E402
from engine_pair import on_both_engines  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
CTX = EvalContext.current()
OPS = ["=", "!=", "<", "<=", ">", ">="]
_WIDE = decimal.Context(prec=80)          # the default context rounds to 28 digits


@st.composite
def decimal_columns(draw, n):
    precision = draw(st.sampled_from([1, 5, 15, 18, 38]))
    scale = draw(st.integers(0, min(precision, 6)))
    limit = 10 ** precision - 1
    edge = min(limit, 10 ** 18 - 1)
    small = min(1000, limit)
    unscaled = st.one_of(st.none(), st.integers(-small, small), st.sampled_from([0, edge, -edge, limit, -limit]),
                         st.integers(-limit, limit))
    values = [None if u is None else decimal.Decimal(u).scaleb(-scale, _WIDE) for u in
              draw(st.lists(unscaled, min_size=n, max_size=n))]
    return pa.array(values, type=pa.decimal128(precision, scale))


@st.composite
def aggregate_cases(draw):
    n = draw(st.integers(0, 30))
    column = draw(decimal_columns(n))
    keys = pa.array(draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n)), pa.int64())
    funcs = draw(st.lists(st.sampled_from(["sum", "avg", "min", "max", "count"]), min_size=1, max_size=4))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    grouped = draw(st.booleans())
    return keys, column, funcs, cuts, grouped


def _aggs(funcs, t):
    arg = Column(type=t, index=1, name="x")
    return [AggregateCall(type=aggregate_result_type(f, t), func=f, arg=arg) for f in funcs]


def _parts(n, cuts):
    bounds = [0] + cuts + [n]
    return [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def _run(cls, case, via_state=False):
    keys, column, funcs, cuts, grouped = case
    aggs = _aggs(funcs, column.type)
    nk = 1 if grouped else 0
    h = cls(aggs, nk)
    for lo, hi in _parts(len(column), cuts):
        if via_state:             # each batch folded in a fresh aggregator, its state merged here
            part = cls(aggs, nk)
            part.update([keys.slice(lo, hi - lo)] if grouped else [], [column.slice(lo, hi - lo)] * len(aggs), hi - lo)
            h.merge_state(part.export_state([pa.int64()] if grouped else []))
        else:
            h.update([keys.slice(lo, hi - lo)] if grouped else [], [column.slice(lo, hi - lo)] * len(aggs), hi - lo)
    types = ([pa.int64()] if grouped else []) + [a.type for a in aggs]
    return h.finish(types)


def _canon(v):
    if isinstance(v, float):
        return ("nan",) if v != v else ("f", v, math.copysign(1.0, v))
    return v


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.type.equals(w.type), (g.type, w.type)
        assert [_canon(v) for v in g.to_pylist()] == [_canon(v) for v in w.to_pylist()]


@SETTINGS
@given(aggregate_cases(), st.booleans())
def test_decimal_aggregates_match_the_reference(case, via_state):
    outcomes = []
    for cls, state in ((ref_batch.HashAggregate, False), (acc_aggregate.HashAggregate, via_state)):
        try:
            outcomes.append(("ok", _run(cls, case, state)))
        except (VelariaError, pa.ArrowInvalid) as exc:   # a total beyond DECIMAL(38)
            outcomes.append(("error", type(exc).__name__, str(exc)))
    want, got = outcomes
    if via_state:
        # a partial state holds its total as DECIMAL(38, s): a total beyond that cannot be
        # exported, on either engine (the direct runs above compare every such case)
        assume(got[0] == "ok")
    if want[0] == "error" or got[0] == "error":
        assert got == want
        return
    _same(got[1], want[1])


def test_decimal_sum_runs_on_the_fast_path_and_hands_over_on_a_wide_value():
    t = pa.decimal128(38, 2)
    aggs = _aggs(["sum", "avg", "max"], t)
    h = acc_aggregate.HashAggregate(aggs, 0)
    first = pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.10")], type=t)
    h.update([], [first] * 3, 3)
    assert h.path == "global"                        # scaled int64, no reference delegation
    wide = pa.array([decimal.Decimal(10 ** 30)], type=t)
    h.update([], [wide] * 3, 1)
    assert h.path == "reference"                     # beyond int64: the reference from here on
    ref = ref_batch.HashAggregate(aggs, 0)
    ref.update([], [first] * 3, 3)
    ref.update([], [wide] * 3, 1)
    types = [a.type for a in aggs]
    _same(h.finish(types), ref.finish(types))


@st.composite
def operand_pairs(draw):
    """A decimal column and a second operand column: a decimal or an int64 with extremes."""
    n = draw(st.integers(1, 20))
    a = draw(decimal_columns(n))
    if draw(st.booleans()):
        return a, draw(decimal_columns(n))
    ints = st.one_of(st.none(), st.integers(-10 ** 6, 10 ** 6), st.sampled_from([2 ** 63 - 1, -(2 ** 63), 0]))
    return a, pa.array(draw(st.lists(ints, min_size=n, max_size=n)), pa.int64())


@st.composite
def comparison_cases(draw):
    a, b = draw(operand_pairs())
    return a, b, draw(st.sampled_from(OPS))


@SETTINGS
@given(comparison_cases())
def test_decimal_comparisons_match_the_reference(case):
    a, b, op = case
    batch = pa.record_batch([a, b], names=["a", "b"])
    expr = Call(type=pa.bool_(), name=op, args=(Column(type=a.type, index=0, name="a"),
                                                 Column(type=b.type, index=1, name="b")))
    want = ref_batch.evaluate(expr, batch, CTX)
    got = acc_expressions.evaluate(expr, batch, CTX)
    assert got.to_pylist() == want.to_pylist()


@SETTINGS
@given(st.integers(1, 20).flatmap(decimal_columns))
def test_decimal_cast_to_double_matches_the_reference(column):
    batch = pa.record_batch([column], names=["a"])
    expr = Cast(type=pa.float64(), arg=Column(type=column.type, index=0, name="a"), target="DOUBLE")
    want = ref_batch.evaluate(expr, batch, CTX)
    got = acc_expressions.evaluate(expr, batch, CTX)
    assert [_canon(v) for v in got.to_pylist()] == [_canon(v) for v in want.to_pylist()]


def test_tpch_q1_and_q6_on_decimal_columns_match_the_reference_and_run_fast():
    import numpy as np

    rng = np.random.default_rng(4)
    n = 5000
    money = lambda x: pa.array([decimal.Decimal(int(v)).scaleb(-2) for v in x], pa.decimal128(15, 2))  # noqa: E731
    table = pa.table({
        "l_quantity": money(rng.integers(1, 51, n) * 100), "l_extendedprice": money(rng.integers(90000, 200000, n)),
        "l_discount": money(rng.integers(0, 11, n)), "l_tax": money(rng.integers(0, 9, n)),
        "l_returnflag": pa.array(rng.choice(["A", "N", "R"], n)), "l_linestatus": pa.array(rng.choice(["F", "O"], n)),
        "l_shipdate": pa.array(rng.integers(8000, 10600, n).astype(np.int32), pa.date32())})
    q1 = """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS base,
              sum(l_extendedprice * (1 - l_discount)) AS disc_price,
              sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS charge, avg(l_quantity) AS avg_qty,
              avg(l_discount) AS avg_disc, min(l_tax) AS min_tax, max(l_extendedprice) AS max_price,
              count(*) AS n
            FROM t WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY
            GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"""
    q6 = """SELECT sum(l_extendedprice * l_discount) AS revenue FROM t
            WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
              AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24"""
    for sql in (q1, q6):
        frames = on_both_engines(table, sql)
        out = {engine: df.to_arrow() for engine, df in frames.items()}
        text = frames["auto"].explain()
        assert "path=reference" not in text, text
        assert out["auto"].equals(out["reference"])


@st.composite
def arithmetic_cases(draw):
    a, b = draw(operand_pairs())
    op = draw(st.sampled_from(["+", "-", "*"]))
    literal = draw(st.sampled_from([None, 1, -7, 10 ** 15]))
    return a, b, op, literal


@SETTINGS
@given(arithmetic_cases())
def test_decimal_arithmetic_matches_the_reference(case):
    from velaria.plan.expr import Literal
    from velaria.reference.decimals import arithmetic_type

    a, b, op, literal = case
    batch = pa.record_batch([a, b], names=["a", "b"])
    left = Column(type=a.type, index=0, name="a")
    right = Literal(type=pa.int64(), value=literal) if literal is not None else Column(type=b.type, index=1, name="b")
    expr = Call(type=arithmetic_type(op, left.type, right.type), name=op, args=(left, right))
    outcomes = []
    for fn in (ref_batch.evaluate, acc_expressions.evaluate):
        try:
            outcomes.append(("ok", fn(expr, batch, CTX).to_pylist()))
        except VelariaError as exc:                   # DECIMAL overflow: the same error
            outcomes.append(("error", type(exc).__name__, str(exc)))
    assert outcomes[1] == outcomes[0]


@st.composite
def arithmetic_trees(draw):
    a, b = draw(operand_pairs())
    ops = draw(st.lists(st.sampled_from(["+", "-", "*"]), min_size=2, max_size=4))
    literals = draw(st.lists(st.sampled_from([1, -7, 0, 10 ** 15]), min_size=len(ops), max_size=len(ops)))
    shapes = draw(st.lists(st.sampled_from(["a", "b", "lit"]), min_size=len(ops), max_size=len(ops)))
    return a, b, ops, literals, shapes


@SETTINGS
@given(arithmetic_trees())
def test_a_decimal_arithmetic_tree_matches_node_by_node_and_the_reference(case):
    # price * (1 - discount) * (1 + tax) shapes: each node's rule on int64, one array at the
    # root; a node that might overflow sends the tree node by node (same result or error)
    from unittest import mock

    from velaria.accel import decimal_values
    from velaria.plan.expr import Literal
    from velaria.reference.decimals import arithmetic_type

    a, b, ops, literals, shapes = case
    batch = pa.record_batch([a, b], names=["a", "b"])
    cols = {"a": Column(type=a.type, index=0, name="a"), "b": Column(type=b.type, index=1, name="b")}
    expr = cols["a"]
    for op, lit, shape in zip(ops, literals, shapes):
        other = Literal(type=pa.int64(), value=lit) if shape == "lit" else cols[shape]
        # alternate sides so the tree grows on the left and on the right
        left, right = (expr, other) if op != "-" else (other, expr)
        try:
            t = arithmetic_type(op, left.type, right.type)
        except VelariaError:
            break                                       # beyond 38 digits: planning refuses it
        expr = Call(type=t, name=op, args=(left, right))
    assume(isinstance(expr, Call))

    def outcome(fn):
        try:
            return "ok", fn(expr, batch, CTX).to_pylist()
        except VelariaError as exc:
            return "error", type(exc).__name__, str(exc)

    tree = outcome(acc_expressions.evaluate)
    with mock.patch.object(decimal_values, "arith_tree", lambda *a: None):
        node_by_node = outcome(acc_expressions.evaluate)
    assert tree == node_by_node
    # the reference checks every node's result against its type too: an overflow inside the
    # tree is an error even when a NULL operand further up would hide the value
    reference = outcome(ref_batch.evaluate)
    assert tree[:2] == reference[:2]


def test_the_unscaled_values_read_back_are_the_ones_written():
    from velaria.accel import decimal_values

    import numpy as np
    t = pa.decimal128(38, 4)
    values = np.array([1, -2, 10 ** 17, -(10 ** 17)], dtype=np.int64)
    arr = decimal_values.from_unscaled(values, None, t)
    values[0] = 99                               # the caller's array changes afterwards
    back = decimal_values.unscaled_i64(arr)
    assert back.tolist() == [1, -2, 10 ** 17, -(10 ** 17)] and not back.flags.writeable
    assert [decimal.Decimal(x).scaleb(-4) for x in back.tolist()] == arr.to_pylist()
    assert decimal_values.unscaled_i64(arr.slice(1, 2)).tolist() == [-2, 10 ** 17]


def test_an_overflow_inside_a_tree_is_an_error_on_both_engines_even_under_a_null():
    import decimal

    import velaria

    table = pa.table({"a": pa.array([decimal.Decimal(10 ** 38 - 1)], pa.decimal128(38, 0)),
                      "b": pa.array([None], pa.decimal128(38, 0))})
    for engine in ("reference", "auto"):
        session = velaria.Session(engine=engine)
        session.create_temp_view("t", session.create_dataframe_from_arrow(table))
        with pytest.raises(VelariaError, match="DECIMAL overflow"):
            session.sql("SELECT (a + 1) + b AS x FROM t").to_rows()
        assert session.sql("SELECT a + b AS x FROM t").to_rows()["rows"] == [[None]]
