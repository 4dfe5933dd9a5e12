"""Batch-operator kernels: reference and accelerated twins give the same answers.

* ``test_parity_*`` -- every accelerated batch kernel has its reference twin's name, signature
  and first docstring line, and really comes from its ``velaria.accel`` family module (STYLE.md
  habit 3).
* ``KernelContract`` -- the contract, written once over ``self.kernels`` and bound to the
  reference and to the accelerator in two lines each (habit 4). With
  ``VELARIA_REQUIRE_ACCEL=1`` an unavailable accelerator fails instead of skipping.
* ``test_property_*`` -- hypothesis feeds both kernels the same generated Arrow data (NULLs,
  NaN, -0.0, +-inf, extreme int64, empty input, ties) and requires identical results, errors
  included (habit 5: the reference *is* the oracle).
* ``test_sql_*`` -- SQL corpora under engine="reference" and the accelerated engine, at batch
  sizes 1, 2 and the default, give identical tables (habit 9).
"""
from __future__ import annotations

import inspect
import math
import os

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import accel
from velaria.errors import VelariaError
from velaria.kernels import REFERENCE_KERNELS, _load
from velaria.plan.expr import AggregateCall, Call, Case, Cast, Column, InList, Literal
from velaria.plan.types import common_type
from velaria.reference import batch as ref_batch
from velaria.reference.aggregate import aggregate_result_type
from velaria.reference.functions import (CAST_TARGETS, EvalContext, OPERATORS,
                                         SCALAR_FUNCTIONS, binary_result_type)

REQUIRE_ACCEL = os.environ.get("VELARIA_REQUIRE_ACCEL") == "1"
BATCH_KERNELS = ["evaluate", "filter_batch", "hash_aggregate", "sort_indices", "hash_join", "key_matches",
                 "key_set", "distinct_indices", "window_eval", "setop_indices"]
CTX = EvalContext.current()
NAN = float("nan")
INF = float("inf")


def _accel_kernels() -> dict:
    if not (accel.available() and all(k in accel.KERNELS for k in BATCH_KERNELS)):
        msg = f"batch accelerator unavailable: {accel.status()}"
        if REQUIRE_ACCEL:
            pytest.fail(msg)
        pytest.skip(msg)
    return {k: accel.KERNELS[k] for k in BATCH_KERNELS}


def _reference_kernels() -> dict:
    return {k: _load(REFERENCE_KERNELS[k]) for k in BATCH_KERNELS}


# ------------------------------------------------------------------------------ comparison

def canon(v):
    """A value under which NaN equals NaN and -0.0 differs from 0.0 (bit-level parity)."""
    if isinstance(v, float):
        return ("nan",) if v != v else ("f", v, math.copysign(1.0, v))
    if isinstance(v, (list, tuple)):
        return tuple(canon(x) for x in v)
    return v


def assert_same_array(got: pa.Array, want: pa.Array, what: str = ""):
    assert got.type.equals(want.type), f"{what}: type {got.type} != {want.type}"
    assert [canon(v) for v in got.to_pylist()] == [canon(v) for v in want.to_pylist()], what


def run_both(fn_ref, fn_acc):
    """Call both; they must both raise the same error or both return a value."""
    out = []
    for fn in (fn_ref, fn_acc):
        try:
            out.append(("ok", fn()))
        except VelariaError as exc:
            out.append(("error", type(exc).__name__, str(exc)))
    (r, a) = out
    if r[0] == "error" or a[0] == "error":
        assert r == a, f"reference {r[:3]} vs accel {a[:3]}"
        return None
    return r[1], a[1]


# ------------------------------------------------------------------------------ habit 3

#: accelerated kernel families: one module each, named as in velaria.reference
ACCEL_FAMILIES = ("expressions", "predicates", "aggregate", "sort", "join", "distinct", "window")


def test_parity_registry_covers_batch_kernels():
    kernels = _accel_kernels()
    assert set(kernels) == set(BATCH_KERNELS)
    assert "batch=numpy" in accel.status()


@pytest.mark.parametrize("name", BATCH_KERNELS)
def test_parity_names_signatures_docstrings(name):
    acc = _accel_kernels()[name]
    ref = _load(REFERENCE_KERNELS[name])
    assert acc.__name__ == ref.__name__
    family = acc.__module__.rsplit(".", 1)[-1]
    assert acc.__module__.startswith("velaria.accel.") and family in ACCEL_FAMILIES, acc.__module__
    assert acc is not ref
    first = lambda obj: (inspect.getdoc(obj) or "").splitlines()[0]  # noqa: E731
    assert first(acc) == first(ref)
    if inspect.isclass(ref):
        for method in ("__init__", "update", "finish"):
            assert inspect.signature(getattr(acc, method)) == inspect.signature(getattr(ref, method)), method
    else:
        assert inspect.signature(acc) == inspect.signature(ref)


def test_parity_batch_families_cover_reference_batch():
    import importlib
    ref_names = set(ref_batch.__all__) - {"to_arrow"}
    accel_names = set()
    for family in ACCEL_FAMILIES:
        accel_names |= set(importlib.import_module(f"velaria.accel.{family}").__all__)
    assert ref_names <= accel_names


def test_accel_kernel_without_reference_twin_is_an_error(monkeypatch):
    from velaria import kernels as registry
    monkeypatch.setitem(accel.KERNELS, "no_such_kernel", lambda: None)
    monkeypatch.setattr(registry, "_CACHE", {})
    with pytest.raises(RuntimeError, match="no reference twin"):
        registry.kernel_set("accel")


# ------------------------------------------------------------------------------ habit 4

I = pa.int64()
F = pa.float64()
S = pa.string()
B = pa.bool_()


def col(i, t, name=""):
    return Column(type=t, index=i, name=name or f"c{i}")


def lit(v, t):
    return Literal(type=t, value=v)


def call(name, *args):
    fn = OPERATORS.get(name) or SCALAR_FUNCTIONS[name]
    return Call(type=fn.result_type([a.type for a in args]), name=name, args=tuple(args))


class KernelContract:
    """The kernel contract with explicit expected values; ``kernels`` is bound by subclasses."""

    kernels: dict

    def ev(self, expr, batch):
        return self.kernels["evaluate"](expr, batch, CTX).to_pylist()

    def test_division_is_float_and_null_on_zero(self):
        b = pa.record_batch({"a": pa.array([7, 1, None, 0], I), "b": pa.array([2, 0, 1, 0], I)})
        assert self.ev(call("/", col(0, I), col(1, I)), b) == [3.5, None, None, None]

    def test_int_overflow_raises(self):
        b = pa.record_batch({"a": pa.array([2 ** 62, 1], I)})
        with pytest.raises(VelariaError, match="BIGINT overflow"):
            self.ev(call("+", col(0, I), col(0, I)), b)

    def test_modulo_sign_of_dividend(self):
        b = pa.record_batch({"a": pa.array([-7, 7, -2 ** 63, 5], I), "b": pa.array([2, -2, -1, 0], I)})
        assert self.ev(call("%", col(0, I), col(1, I)), b) == [-1, 1, 0, None]

    def test_kleene_logic(self):
        b = pa.record_batch({"p": pa.array([True, True, False, None, None], B),
                             "q": pa.array([None, False, None, None, True], B)})
        assert self.ev(call("and", col(0, B), col(1, B)), b) == [None, False, False, None, None]
        assert self.ev(call("or", col(0, B), col(1, B)), b) == [True, True, None, None, True]

    def test_nan_compares_equal_and_greatest(self):
        b = pa.record_batch({"x": pa.array([NAN, NAN, 1.0, INF], F), "y": pa.array([NAN, INF, NAN, 1.0], F)})
        assert self.ev(call("=", col(0, F), col(1, F)), b) == [True, False, False, False]
        assert self.ev(call(">", col(0, F), col(1, F)), b) == [False, True, False, True]

    def test_case_branches_see_only_their_rows(self):
        b = pa.record_batch({"s": pa.array(["12", "", None, "x"], S)})
        cond = call("and", call("!=", col(0, S), lit("", S)), call("!=", col(0, S), lit("x", S)))
        expr = Case(type=I, whens=((cond, Cast(type=I, arg=col(0, S), target="INT")),), else_=lit(-1, I))
        assert self.ev(expr, b) == [12, -1, -1, -1]

    def test_in_list_null_rules(self):
        b = pa.record_batch({"x": pa.array([1, 2, None], I)})
        expr = InList(type=B, arg=col(0, I), items=(lit(1, I), lit(None, pa.null())))
        assert self.ev(expr, b) == [True, None, None]

    def test_filter_drops_null_and_false(self):
        b = pa.record_batch({"x": pa.array([1.0, None, 3.0, NAN], F)})
        out = self.kernels["filter_batch"](call(">", col(0, F), lit(1.5, F)), b, CTX)
        assert [canon(v) for v in out.column(0).to_pylist()] == [canon(3.0), canon(NAN)]

    def test_aggregate_groups_first_appearance_null_and_zero_keys(self):
        agg = self.kernels["hash_aggregate"]
        aggs = [AggregateCall(type=I, func="count"), AggregateCall(type=F, func="sum", arg=col(1, F)),
                AggregateCall(type=F, func="min", arg=col(1, F)), AggregateCall(type=F, func="max", arg=col(1, F))]
        h = agg(aggs, 1)
        h.update([pa.array([0.0, None, -0.0], F)], [None, pa.array([1.0, 2.0, -0.0], F)] * 1 + [pa.array([1.0, 2.0, -0.0], F)] * 2, 3)
        h.update([pa.array([NAN, None, NAN], F)], [None] + [pa.array([None, NAN, 5.0], F)] * 3, 3)
        keys, count, total, mn, mx = (a.to_pylist() for a in h.finish([F, I, F, F, F]))
        assert [canon(k) for k in keys] == [canon(0.0), canon(None), canon(NAN)]
        assert count == [2, 2, 2]
        assert [canon(v) for v in total] == [canon(1.0), canon(NAN), canon(5.0)]
        assert [canon(v) for v in mn] == [canon(-0.0), canon(2.0), canon(5.0)]
        assert [canon(v) for v in mx] == [canon(1.0), canon(NAN), canon(5.0)]

    def test_global_aggregate_of_empty_input_is_one_row(self):
        h = self.kernels["hash_aggregate"]([AggregateCall(type=I, func="count"),
                                            AggregateCall(type=I, func="sum", arg=col(0, I))], 0)
        assert [a.to_pylist() for a in h.finish([I, I])] == [[0], [None]]

    def test_int_sum_overflow_raises_and_cancelling_totals_do_not(self):
        h = self.kernels["hash_aggregate"]([AggregateCall(type=I, func="sum", arg=col(0, I))], 0)
        h.update([], [pa.array([2 ** 63 - 1, 2 ** 63 - 1], I)], 2)
        h.update([], [pa.array([-(2 ** 63), -(2 ** 63) + 2], I)], 2)
        assert h.finish([I])[0].to_pylist() == [0]
        h.update([], [pa.array([2 ** 63 - 1], I)], 1)
        h.update([], [pa.array([1], I)], 1)
        with pytest.raises(VelariaError, match="SUM overflow"):
            h.finish([I])

    def test_sort_nan_above_numbers_nulls_per_key_stable(self):
        x = pa.array([1.0, NAN, None, -0.0, 0.0, INF, NAN], F)
        s = self.kernels["sort_indices"]
        assert s([x], [False], [False]).to_pylist() == [3, 4, 0, 5, 1, 6, 2]
        assert s([x], [True], [True]).to_pylist() == [2, 1, 6, 5, 0, 3, 4]
        assert s([x], [True], [False], 3).to_pylist() == [1, 6, 5]

    def test_join_order_and_null_keys(self):
        li, ri = self.kernels["hash_join"]([pa.array([1, None, 2, 1], I)], [pa.array([1.0, None, 1.0, 3.0], F)], "left")
        assert li.to_pylist() == [0, 0, 1, 2, 3, 3]
        assert ri.to_pylist() == [0, 2, None, None, 0, 2]

    def test_distinct_null_nan_negative_zero(self):
        d = self.kernels["distinct_indices"]([pa.array([0.0, -0.0, NAN, None, NAN, None, 1.0], F)])
        assert d.to_pylist() == [0, 2, 3, 6]


class TestReferenceContract(KernelContract):
    @pytest.fixture(autouse=True)
    def _bind(self):
        self.kernels = _reference_kernels()


class TestAccelContract(KernelContract):
    @pytest.fixture(autouse=True)
    def _bind(self):
        self.kernels = _accel_kernels()


# ------------------------------------------------------------------------------ habit 5: properties

INT_VALUES = [0, 1, -1, 2, 3, 7, -7, 2 ** 31, 2 ** 53, 2 ** 53 + 1, -(2 ** 53) - 1, 2 ** 62,
              2 ** 63 - 1, -(2 ** 63)]
FLOAT_VALUES = [0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 2.5, 3.0, NAN, INF, -INF, 1e300, -1e300, 5e-324,
                2.0 ** 53, 0.49999999999999994, 7.0]
STR_VALUES = ["", "a", "A", "ab", "b", "é", "É", " a ", "\ta\n", "%", "a_b", "12", "-3", "true",
              "TRUE", "1", "x.y", "日本"]

SCHEMA = [("i", I), ("f", F), ("s", S), ("b", B), ("j", pa.int32()), ("g", pa.float32())]


def values_for(t):
    if t.equals(I) or t.equals(pa.int32()):
        vals = INT_VALUES if t.equals(I) else [0, 1, -1, 2, 3, -(2 ** 31), 2 ** 31 - 1]
        return st.one_of(st.sampled_from(vals), st.integers(-5, 5))
    if t.equals(F) or t.equals(pa.float32()):
        vals = FLOAT_VALUES if t.equals(F) else [0.0, -0.0, 0.5, -1.5, NAN, INF, 3.0]
        return st.sampled_from(vals)
    if t.equals(S):
        return st.sampled_from(STR_VALUES)
    return st.booleans()


def column_of(t, n):
    return st.lists(st.one_of(st.none(), values_for(t)), min_size=n, max_size=n).map(lambda v: pa.array(v, type=t))


@st.composite
def batches(draw, max_rows=12):
    n = draw(st.integers(0, max_rows))
    return pa.record_batch([draw(column_of(t, n)) for _, t in SCHEMA], names=[name for name, _ in SCHEMA])


def _numeric_leaf():
    return st.one_of(
        st.sampled_from([col(0, I), col(1, F), col(4, pa.int32()), col(5, pa.float32())]),
        st.sampled_from(INT_VALUES + [None]).map(lambda v: lit(v, I) if v is not None else lit(None, pa.null())),
        st.sampled_from(FLOAT_VALUES).map(lambda v: lit(v, F)))


def _extend_numeric(children):
    def binary(op):
        return st.tuples(children, children).map(lambda ab: call(op, *ab))
    return st.one_of(
        *[binary(op) for op in ("+", "-", "*", "/", "%")],
        children.map(lambda a: call("neg", a)),
        st.tuples(st.sampled_from(["abs", "ceil", "floor", "round"]), children).map(lambda p: call(p[0], p[1])),
        st.tuples(st.sampled_from(["INT", "DOUBLE", "FLOAT"]), children).map(
            lambda p: Cast(type=CAST_TARGETS[p[0]], arg=p[1], target=p[0])),
        st.tuples(_bool_leaf(), children, children).map(
            lambda p: Case(type=common_type([p[1].type, p[2].type]), whens=((p[0], p[1]),), else_=p[2])),
        st.just(call("length", col(2, S))),
    )


def numeric_exprs():
    return st.recursive(_numeric_leaf(), _extend_numeric, max_leaves=5)


def _bool_leaf():
    return st.one_of(
        st.just(col(3, B)),
        st.sampled_from([True, False]).map(lambda v: lit(v, B)),
        st.tuples(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
                  st.sampled_from([col(0, I), col(1, F), col(4, pa.int32()), col(5, pa.float32()), lit(2 ** 53 + 1, I)]),
                  st.sampled_from([col(0, I), col(1, F), lit(0.0, F), lit(NAN, F), lit(-1, I)])).map(
            lambda p: call(p[0], p[1], p[2])),
        st.tuples(st.sampled_from(["=", "<", ">="]), st.sampled_from([col(2, S), lit("a", S)]),
                  st.sampled_from([col(2, S), lit("b", S), lit("É", S)])).map(lambda p: call(p[0], p[1], p[2])),
        st.sampled_from(["a%", "%a%", "_", "a_b", "%.%", "", "%", "日%"]).map(lambda p: call("like", col(2, S), lit(p, S))),
        st.sampled_from([col(0, I), col(1, F), col(2, S)]).map(lambda c: call("is_null", c)),
        st.tuples(st.booleans(), st.lists(st.sampled_from([lit(1, I), lit(0.0, F), lit(NAN, F), lit(None, pa.null())]),
                                          min_size=1, max_size=3)).map(
            lambda p: InList(type=B, arg=col(1, F), items=tuple(p[1]), negated=p[0])),
        st.sampled_from([col(0, I), col(1, F), col(2, S)]).map(lambda c: Cast(type=B, arg=c, target="BOOL")),
    )


def bool_exprs():
    return st.recursive(_bool_leaf(), lambda ch: st.one_of(
        st.tuples(ch, ch).map(lambda ab: call("and", *ab)),
        st.tuples(ch, ch).map(lambda ab: call("or", *ab)),
        ch.map(lambda a: call("not", a))), max_leaves=4)


def string_exprs():
    leaf = st.one_of(st.just(col(2, S)), st.sampled_from(STR_VALUES).map(lambda v: lit(v, S)),
                     st.sampled_from([col(0, I), col(3, B), col(1, F)]).map(lambda c: Cast(type=S, arg=c, target="STRING")))
    return st.recursive(leaf, lambda ch: st.one_of(
        st.tuples(ch, ch).map(lambda ab: call("concat_op", *ab)),
        st.tuples(st.sampled_from(["lower", "upper", "trim", "ltrim", "rtrim"]), ch).map(lambda p: call(p[0], p[1])),
    ), max_leaves=3)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_evaluate(kernels, expr, batch):
    ref = _reference_kernels()
    pair = run_both(lambda: ref["evaluate"](expr, batch, CTX), lambda: kernels["evaluate"](expr, batch, CTX))
    if pair is not None:
        assert_same_array(pair[1], pair[0], repr(expr))


@pytest.fixture(scope="module")
def acc():
    return _accel_kernels()


@PROPERTY
@given(expr=st.one_of(numeric_exprs(), bool_exprs(), string_exprs()), batch=batches())
def test_property_evaluate(acc, expr, batch):
    _check_evaluate(acc, expr, batch)


@PROPERTY
@given(pred=bool_exprs(), batch=batches())
def test_property_filter_batch(acc, pred, batch):
    ref = _reference_kernels()
    pair = run_both(lambda: ref["filter_batch"](pred, batch, CTX), lambda: acc["filter_batch"](pred, batch, CTX))
    if pair is not None:
        r, a = pair
        assert r.num_rows == a.num_rows
        for j in range(r.num_columns):
            assert_same_array(a.column(j), r.column(j))


AGG_FUNCS = ["count", "sum", "avg", "min", "max", "var_samp", "var_pop", "stddev_samp", "stddev_pop", "median"]
NUMERIC_ONLY = ("sum", "avg", "var_samp", "var_pop", "stddev_samp", "stddev_pop", "median")


@st.composite
def aggregate_cases(draw):
    batch = draw(batches(max_rows=20))
    key_cols = draw(st.lists(st.sampled_from([0, 1, 2, 3, 5]), max_size=2))
    aggs = []
    for _ in range(draw(st.integers(1, 4))):
        func = draw(st.sampled_from(AGG_FUNCS))
        choices = [0, 1, 4, 5] if func in NUMERIC_ONLY else [0, 1, 3, 4, 5] if func in ("min", "max") else [None, 0, 1, 2]
        j = draw(st.sampled_from(choices))
        arg = None if j is None else col(j, SCHEMA[j][1])
        distinct = arg is not None and draw(st.booleans()) and draw(st.booleans())
        aggs.append(AggregateCall(type=aggregate_result_type(func, None if arg is None else arg.type),
                                  func=func, arg=arg, distinct=distinct))
    cuts = sorted(draw(st.lists(st.integers(0, batch.num_rows), max_size=3)))
    return batch, key_cols, aggs, cuts


def _run_aggregate(cls, batch, key_cols, aggs, cuts):
    h = cls(aggs, len(key_cols))
    bounds = [0] + cuts + [batch.num_rows]
    for lo, hi in zip(bounds, bounds[1:]):
        if hi <= lo:
            continue
        part = batch.slice(lo, hi - lo)
        h.update([part.column(j) for j in key_cols],
                 [part.column(a.arg.index) if a.arg is not None else None for a in aggs], hi - lo)
    types = [SCHEMA[j][1] for j in key_cols] + [a.type for a in aggs]
    return h.finish(types)


@PROPERTY
@given(case=aggregate_cases())
def test_property_hash_aggregate(acc, case):
    ref = _reference_kernels()
    pair = run_both(lambda: _run_aggregate(ref["hash_aggregate"], *case),
                    lambda: _run_aggregate(acc["hash_aggregate"], *case))
    if pair is not None:
        assert len(pair[0]) == len(pair[1])
        for r, a in zip(*pair):
            assert_same_array(a, r)


@PROPERTY
@given(batch=batches(max_rows=25), data=st.data())
def test_property_sort_indices(acc, batch, data):
    ref = _reference_kernels()
    keys = data.draw(st.lists(st.sampled_from(range(len(SCHEMA))), min_size=1, max_size=3))
    desc = data.draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)))
    nf = data.draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)))
    limit = data.draw(st.one_of(st.none(), st.integers(0, 30)))
    arrays = [batch.column(j) for j in keys]
    assert_same_array(acc["sort_indices"](arrays, desc, nf, limit), ref["sort_indices"](arrays, desc, nf, limit))


JOIN_TYPES = [(I, I), (I, F), (F, F), (S, S), (B, B), (pa.int32(), I), (pa.float32(), F)]


def _join_sides(data) -> tuple[list, list]:
    """Left and right key columns (1-2 key pairs of joinable types, 0-12 rows a side)."""
    pairs = data.draw(st.lists(st.sampled_from(JOIN_TYPES), min_size=1, max_size=2))
    nl, nr = data.draw(st.integers(0, 12)), data.draw(st.integers(0, 12))
    return [data.draw(column_of(lt, nl)) for lt, _ in pairs], [data.draw(column_of(rt, nr)) for _, rt in pairs]


@PROPERTY
@given(data=st.data())
def test_property_hash_join(acc, data):
    ref = _reference_kernels()
    left, right = _join_sides(data)
    how = data.draw(st.sampled_from(["inner", "left", "right", "full"]))
    (rl, rr), (al, ar) = ref["hash_join"](left, right, how), acc["hash_join"](left, right, how)
    assert_same_array(al, rl, "left indices")
    assert_same_array(ar, rr, "right indices")


@PROPERTY
@given(data=st.data())
def test_property_key_matches(acc, data):
    """Which left rows have an equal right row: the same answer as the inner join's pairs."""
    ref = _reference_kernels()
    left, right = _join_sides(data)
    nl = len(left[0])
    want = ref["key_matches"](left, right)
    assert_same_array(acc["key_matches"](left, right), want)
    li, _ = ref["hash_join"](left, right, "inner")
    assert want.to_pylist() == [i in set(li.to_pylist()) for i in range(nl)]


KEY_SET_TYPES = JOIN_TYPES + [(pa.int16(), pa.int64()), (pa.date32(), pa.date32()),
                              (pa.timestamp("us"), pa.timestamp("us"))]
_STORAGE = {pa.int16(): pa.int16(), pa.date32(): pa.int32(), pa.timestamp("us"): I}


def _key_column(t, n):
    """``column_of`` for the join types, and small integers stored as int16 / date / timestamp."""
    if t not in _STORAGE:
        return column_of(t, n)
    return st.lists(st.one_of(st.none(), st.integers(-3, 6)), min_size=n, max_size=n).map(
        lambda v: pa.array(v, type=_STORAGE[t]).cast(t))


@PROPERTY
@given(data=st.data())
def test_property_key_set(acc, data):
    """One side's key set asked about the other side's rows, batch after batch: the same
    answer as ``key_matches`` and as the reference twin, and ``select`` keeps those rows."""
    ref = _reference_kernels()
    pairs = data.draw(st.lists(st.sampled_from(KEY_SET_TYPES), min_size=1, max_size=2))
    build = [data.draw(_key_column(bt, data.draw(st.integers(0, 12)))) for bt, _ in pairs]
    build = [c.slice(0, min(len(c) for c in build)) for c in build]
    ref_set, acc_set = ref["key_set"](build), acc["key_set"](build)
    for _ in range(data.draw(st.integers(1, 3))):           # one set, several probe batches
        n = data.draw(st.integers(0, 12))
        probe = [data.draw(_key_column(pt, n)) for _, pt in pairs]
        want = ref["key_matches"](probe, build)
        assert_same_array(ref_set.contains(probe), want, "reference")
        assert_same_array(acc_set.contains(probe), want, "accelerated")
        if len(probe) == 1:
            batch = pa.record_batch([pa.array(range(n), I), probe[0]], names=["row", "key"])
            # column by column, NaN-aware (a kept NaN key makes RecordBatch.equals false)
            acc_kept, ref_kept = acc_set.select(batch, 1), ref_set.select(batch, 1)
            assert acc_kept.schema.equals(ref_kept.schema)
            for got, want_column in zip(acc_kept.columns, ref_kept.columns):
                assert_same_array(got, want_column, "select")
            assert ref_set.select(batch, 1).column(0).to_pylist() == [i for i, hit in enumerate(want.to_pylist()) if hit]


@pytest.mark.parametrize("keys,probe", [
    ([1, 5, None, 7, 5], [1, 2, None, 7, 5, -9, 8]),            # NULLs, repeats, outside the range
    ([-(2 ** 62), 2 ** 62], [-(2 ** 62), 0, 2 ** 62, 2 ** 63 - 1]),   # a range past the bitmap: the hash table
    ([None, None], [None, 0]),                                   # only NULL keys: an empty set
    ([], [3]),
])
def test_key_set_fast_path_runs(monkeypatch, keys, probe):
    """The accelerated key set answers integer keys from its C table (bitmap or hash), never
    through ``key_matches``, with NULL, repeated and extreme keys."""
    from velaria.accel import join as accel_join
    from velaria.accel import join_hash
    if not join_hash.c_available():
        pytest.skip("no C module")
    want = ref_batch.key_set([pa.array(keys, I)]).contains([pa.array(probe, I)])

    def boom(*a, **k):
        raise AssertionError("answered by key_matches")
    monkeypatch.setattr(accel_join, "key_matches", boom)
    s = accel_join.key_set([pa.array(keys, I)])
    assert s.contains([pa.array(probe, pa.int32() if max(map(abs, filter(None, probe)), default=0) < 2 ** 31 else I)]) == want
    batch = pa.record_batch([pa.array(probe, I)], names=["k"])
    assert s.select(batch, 0).column(0).to_pylist() == [v for v, hit in zip(probe, want.to_pylist()) if hit]


def test_key_matches_fast_path_runs(monkeypatch):
    """The accelerated twin answers int and string keys itself, repeated right keys included."""
    from velaria.accel import join as accel_join

    def boom(*a, **k):
        raise AssertionError("delegated to the reference")
    monkeypatch.setattr(accel_join._ref, "key_matches", boom)
    left = [pa.array([1, 2, None, 4, 1], I), pa.array(["a", "b", "c", None, "a"], S)]
    right = [pa.array([1, 1, 1, 4, None], I), pa.array(["a", "a", "a", None, "c"], S)]
    assert accel_join.key_matches(left, right).to_pylist() == [True, False, False, False, True]


@PROPERTY
@given(batch=batches(max_rows=25), data=st.data())
def test_property_distinct_indices(acc, batch, data):
    ref = _reference_kernels()
    cols = data.draw(st.lists(st.sampled_from(range(len(SCHEMA))), min_size=1, max_size=3))
    arrays = [batch.column(j) for j in cols]
    assert_same_array(acc["distinct_indices"](arrays), ref["distinct_indices"](arrays))


def test_property_larger_batches_hit_chunk_paths(acc):
    """Sizes past the small-sum fast path (values > 2**32) and many groups."""
    import numpy as np
    rng = np.random.default_rng(7)
    n = 50_000
    k = pa.array(rng.integers(0, 3000, n))
    v = pa.array(rng.integers(-(2 ** 62), 2 ** 62, n) // 2 ** 14)
    f = pa.array(rng.standard_normal(n))
    aggs = [AggregateCall(type=I, func="sum", arg=col(1, I)), AggregateCall(type=F, func="avg", arg=col(1, I)),
            AggregateCall(type=F, func="sum", arg=col(2, F)), AggregateCall(type=I, func="min", arg=col(1, I))]
    batch = pa.record_batch([k, v, f], names=["k", "v", "f"])
    schema_types = [I, I, F]
    out = []
    for cls in (_reference_kernels()["hash_aggregate"], acc["hash_aggregate"]):
        h = cls(aggs, 1)
        for lo in range(0, n, 9000):
            part = batch.slice(lo, 9000)
            h.update([part.column(0)], [part.column(1), part.column(1), part.column(2), part.column(1)], part.num_rows)
        out.append(h.finish([schema_types[0]] + [a.type for a in aggs]))
    for r, a in zip(*out):
        assert_same_array(a, r)
    order = [acc["sort_indices"]([f], [d], [False]) for d in (False, True)]
    assert order[0].to_pylist() == ref_batch.sort_indices([f], [False], [False]).to_pylist()
    assert order[1].to_pylist() == ref_batch.sort_indices([f], [True], [False]).to_pylist()


# ------------------------------------------------------------------------------ habit 9: SQL

SQL_CORPUS = [
    "SELECT * FROM t",
    "SELECT k, v * 2 + k AS p, v / k AS q, k % 3 AS m, -k AS n FROM t",
    "SELECT SUM(v) AS s FROM t WHERE v > 0.5",
    "SELECT k, SUM(v) AS s, COUNT(*) AS c, AVG(v) AS a, MIN(v) AS mn, MAX(v) AS mx FROM t GROUP BY k",
    "SELECT s, COUNT(DISTINCT k) AS d, SUM(DISTINCT v) AS sv FROM t GROUP BY s",
    "SELECT k, s, COUNT(x) AS c, SUM(x) AS sx FROM t GROUP BY k, s ORDER BY k, s",
    "SELECT k, v FROM t ORDER BY v",
    "SELECT k, v FROM t ORDER BY v DESC, k NULLS FIRST",
    "SELECT k, v FROM t ORDER BY v DESC LIMIT 4",
    "SELECT DISTINCT v FROM t",
    "SELECT DISTINCT k, s FROM t",
    "SELECT k FROM t UNION SELECT x FROM t",
    "SELECT a.k, b.v FROM t AS a JOIN t AS b ON a.k = b.x",
    "SELECT a.k, b.v FROM t AS a LEFT JOIN t AS b ON a.v = b.v",
    "SELECT k, CASE WHEN v > 0 THEN 'pos' WHEN v < 0 THEN 'neg' ELSE 'zero/null' END AS c FROM t",
    "SELECT k FROM t WHERE k IN (1, 3, NULL) OR s LIKE 'a%'",
    "SELECT k FROM t WHERE NOT (v BETWEEN -1 AND 1)",
    "SELECT UPPER(s) AS u, LENGTH(s) AS n, TRIM(s) AS t2, s || '!' AS e FROM t",
    "SELECT CAST(v AS INT) AS i FROM t WHERE v = v AND v < 1e18 AND v > -1e18",
    "SELECT ROUND(v) AS r, CEIL(v) AS c, FLOOR(v) AS f, ABS(v) AS a FROM t",
    "SELECT COUNT(*) AS c, SUM(x) AS sx, MIN(s) AS ms FROM t WHERE k > 100",
    "SELECT k, COUNT(*) AS c FROM t GROUP BY k HAVING COUNT(*) > 1 ORDER BY c DESC, k",
    "SELECT ROUND(v, 1) AS r, ROUND(v * 100, -1) AS r2, GREATEST(k, x) AS g, LEAST(v, 0.5, NULL) AS l FROM t",
    "SELECT k & 1 AS a, k | x AS o, k # 2 AS xo, k << 2 AS sl, x >> 1 AS sr, ~k AS n FROM t",
    "SELECT REGEXP_MATCHES(s, 'a') AS m, REGEXP_REPLACE(s, 'a', '<\\0>', 'g') AS r FROM t",
    "WITH w AS (SELECT k, v FROM t WHERE k > 1) SELECT a.k, b.v FROM w AS a JOIN w AS b ON a.k = b.k",
]


def _sql_table():
    return pa.table({
        "k": pa.array([3, 1, None, 3, 2, 1, 0, None, 2, 5], I),
        "v": pa.array([0.5, -0.0, NAN, 0.0, None, 2.5, -1.5, NAN, 7.0, 0.75], F),
        "s": pa.array(["a", "b", None, "a", "ab", "É", "", " a ", "b", None], S),
        "x": pa.array([1, None, 3, 2 ** 40, 5, 1, None, 0, 2, 3], I),
    })


def _session(**kwargs):
    import velaria
    s = velaria.Session(**kwargs)
    s.create_temp_view("t", s.create_dataframe_from_arrow(_sql_table()))
    return s


def _result(s, sql):
    try:
        t = s.sql(sql).to_arrow()
    except VelariaError as exc:
        return ("error", type(exc).__name__, str(exc))
    return t.schema, [[canon(v) for v in c.to_pylist()] for c in t.columns]


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 65536])
def test_sql_corpus_reference_vs_accelerated(batch_rows):
    _accel_kernels()
    ref = _session(engine="reference", batch_rows=batch_rows) if _accepts_batch_rows() else _session(engine="reference")
    acc = _session(engine="auto", batch_rows=batch_rows) if _accepts_batch_rows() else _session(engine="auto")
    assert all(acc.kernels.origin(k) == "accel" for k in BATCH_KERNELS)
    for sql in SQL_CORPUS:
        assert _result(acc, sql) == _result(ref, sql), sql


def _accepts_batch_rows() -> bool:
    import velaria
    return "batch_rows" in inspect.signature(velaria.Session).parameters


@pytest.mark.parametrize("kwargs", [{"engine": "accel"}, {"engine": "accel", "batch_rows": 1},
                                    {"engine": "accel", "batch_rows": 2}],
                         ids=["accel", "accel-batch_rows=1", "accel-batch_rows=2"])
def test_sql_conformance_corpus_on_accelerated_engine(kwargs):
    """The .slt SQL corpus (sql-* clauses) passes on the accelerated kernels at every batch size."""
    _accel_kernels()
    from velaria.conformance import runner
    report = runner.run("velaria", clause_prefix="sql-", native=False, session_kwargs=kwargs)
    assert report.results and report.ok, report.format()


# ---------------------------------------------------------------------------- fused float arithmetic

def _arith_tree(depth):
    """+ - * trees over float64 v, int64 k, int32 j and numeric literals (the accelerated
    evaluate fuses a float64 tree over NULL-free columns into one blocked numpy pass)."""
    leaf = st.one_of(
        st.just(Column(index=0, type=pa.float64(), name="v")),
        st.just(Column(index=1, type=pa.int64(), name="k")),
        st.just(Column(index=2, type=pa.int32(), name="j")),
        st.floats().map(lambda x: Literal(value=x, type=pa.float64())),
        st.integers(-(2 ** 63), 2 ** 63 - 1).map(lambda x: Literal(value=x, type=pa.int64())),
        st.integers(-3, 3).map(lambda x: Literal(value=x, type=pa.float64())))
    if depth == 0:
        return leaf

    def node(args):
        op, a, b = args
        t = common_type([a.type, b.type])
        return Call(name=op, args=(a, b), type=pa.float64() if pa.types.is_floating(t) else pa.int64())
    return st.one_of(leaf, st.tuples(st.sampled_from(["+", "-", "*"]), _arith_tree(depth - 1),
                                     _arith_tree(depth - 1)).map(node))


@pytest.mark.skipif(not accel.batch_available(), reason="accelerated batch kernels unavailable")
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.one_of(st.floats(), st.sampled_from([-0.0, math.nan, math.inf, 5e-324])),
                          st.one_of(st.integers(-(2 ** 63), 2 ** 63 - 1), st.sampled_from([2 ** 53 + 1, -(2 ** 63)])),
                          st.integers(-(2 ** 31), 2 ** 31 - 1)), min_size=1, max_size=20),
       _arith_tree(3), st.integers(0, 2))
def test_fused_float_arithmetic_matches_reference(rows, expr, offset):
    from velaria.accel import expressions as bk
    batch = pa.record_batch({"v": pa.array([r[0] for r in rows], type=pa.float64()),
                             "k": pa.array([r[1] for r in rows], type=pa.int64()),
                             "j": pa.array([r[2] for r in rows], type=pa.int32())})
    batch = batch.slice(min(offset, len(rows) - 1))
    ctx = EvalContext.current()
    try:
        want = ref_batch.evaluate(expr, batch, ctx)
    except VelariaError as exc:
        with pytest.raises(type(exc), match=re_escape(str(exc))):
            bk.evaluate(expr, batch, ctx)
        return
    got = bk.evaluate(expr, batch, ctx)
    assert got.type == want.type
    for a, b in zip(got.to_pylist(), want.to_pylist()):
        if isinstance(b, float):
            assert isinstance(a, float)
            assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
        else:
            assert a == b


def re_escape(text):
    import re
    return re.escape(text)


# ------------------------------------------------------------------------------ window_eval

@st.composite
def window_frames(draw, order_types):
    """A valid frame; RANGE offsets only over one numeric ORDER BY key."""
    from velaria.plan.expr import WindowFrame
    numeric_key = len(order_types) == 1 and pa.types.is_integer(order_types[0]) or \
        len(order_types) == 1 and pa.types.is_floating(order_types[0])
    mode = draw(st.sampled_from(["rows", "range"]))
    offsets = mode == "rows" or numeric_key
    kinds = ["unbounded", "current"] + (["preceding", "following"] if offsets else [])
    rank = {"unbounded": 0, "preceding": 1, "current": 2, "following": 3}
    start = draw(st.sampled_from(kinds))
    end = draw(st.sampled_from([k for k in kinds if k == "unbounded" or rank[k] >= rank[start]
                                or (start == "preceding" and k == "preceding")]))
    if start == "following" and end == "preceding":
        end = "following"

    def offset():
        return draw(st.integers(0, 3)) if mode == "rows" else draw(st.sampled_from([0, 1, 2, 0.5]))
    return WindowFrame(mode=mode, start=(start, offset() if start in ("preceding", "following") else None),
                       end=(end, offset() if end in ("preceding", "following") else None))


@PROPERTY
@given(batch=batches(max_rows=14), data=st.data())
def test_property_window_eval(acc, batch, data):
    from velaria.plan.expr import WindowCall
    from velaria.reference.window import WINDOW_FUNCTIONS, window_result_type
    ref = _reference_kernels()
    func = data.draw(st.sampled_from(WINDOW_FUNCTIONS))
    numeric = [j for j, (_, t) in enumerate(SCHEMA) if pa.types.is_integer(t) or pa.types.is_floating(t)]
    pick = data.draw(st.sampled_from(numeric if func in NUMERIC_ONLY else range(len(SCHEMA))))
    args = [] if func in ("row_number", "rank", "dense_rank", "ntile") else [batch.column(pick)]
    if func == "count" and data.draw(st.booleans()):
        args = []                                            # COUNT(*)
    if func in ("lag", "lead") and data.draw(st.booleans()):
        args.append(batch.column(pick).take(pa.array(list(range(batch.num_rows))[::-1], type=pa.int64())))
    part = data.draw(st.lists(st.sampled_from(range(len(SCHEMA))), max_size=2))
    order = data.draw(st.lists(st.sampled_from(range(len(SCHEMA))), max_size=2))
    desc = tuple(data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order))))
    nf = tuple(data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order))))
    frame = data.draw(window_frames([SCHEMA[j][1] for j in order]))
    param = data.draw(st.integers(1, 4)) if func == "ntile" else data.draw(st.integers(0, 3)) \
        if func in ("lag", "lead") else None
    types = [a.type for a in args]
    rtype = window_result_type(func, [types[0], None] + types[1:] if func in ("lag", "lead") else types)
    call = WindowCall(type=rtype, func=func, args=(), descending=desc, nulls_first=nf, frame=frame, param=param)
    parts, orders = [batch.column(j) for j in part], [batch.column(j) for j in order]
    pair = run_both(lambda: ref["window_eval"](call, args, parts, orders, batch.num_rows),
                    lambda: acc["window_eval"](call, args, parts, orders, batch.num_rows))
    if pair is not None:
        assert_same_array(pair[1], pair[0], f"{func} {frame}")


def test_window_eval_fast_path_runs(monkeypatch):
    """The accelerated twin answers running sums, rankings and LAG itself (no delegation)."""
    import numpy as np
    from velaria.accel import window as accel_window
    from velaria.plan.expr import WindowCall, WindowFrame

    def boom(*a, **k):
        raise AssertionError("delegated to the reference")
    monkeypatch.setattr(accel_window._ref, "window_eval", boom)
    rng = np.random.default_rng(3)
    g = pa.array(rng.integers(0, 50, 5000))
    v = pa.array(rng.normal(size=5000))
    for func, frame in [("sum", WindowFrame()), ("rank", WindowFrame()), ("min", WindowFrame()),
                        ("avg", WindowFrame(mode="rows", start=("unbounded", None), end=("following", 2)))]:
        call = WindowCall(type=F if func != "rank" else I, func=func, order=(None,), descending=(False,),
                          nulls_first=(False,), frame=frame)
        got = accel_window.window_eval(call, [] if func == "rank" else [v], [g], [v], 5000)
        assert len(got) == 5000
    lag = WindowCall(type=F, func="lag", param=1, descending=(True,), nulls_first=(True,))
    assert accel_window.window_eval(lag, [v], [g], [v], 5000).null_count == 50


@PROPERTY
@given(left=batches(max_rows=14), right=batches(max_rows=14), data=st.data())
def test_property_setop_indices(acc, left, right, data):
    ref = _reference_kernels()
    cols = data.draw(st.lists(st.sampled_from(range(len(SCHEMA))), min_size=1, max_size=3))
    kind = data.draw(st.sampled_from(["intersect", "except"]))
    keep_all = data.draw(st.booleans())
    la, ra = [left.column(j) for j in cols], [right.column(j) for j in cols]
    assert_same_array(acc["setop_indices"](la, ra, kind, keep_all), ref["setop_indices"](la, ra, kind, keep_all))


def test_window_integer_sum_overflow_with_int64_min_is_detected(acc):
    """-2**63 has no positive int64 magnitude (numpy's abs wraps it): the accelerated twin
    must still see that the total may leave int64 and let the reference raise the overflow."""
    from velaria.plan.expr import WindowCall, WindowFrame
    call = WindowCall(type=pa.int64(), func="sum", args=(), descending=(), nulls_first=(),
                      frame=WindowFrame(mode="rows", start=("unbounded", None), end=("unbounded", None)))
    values = pa.array([None, -1, -2**63], pa.int64())
    for kernels in (_reference_kernels(), acc):
        with pytest.raises(VelariaError, match="SUM overflow: the total -9223372036854775809 does not fit"):
            kernels["window_eval"](call, [values], [], [], 3)
