"""ROUND(x, n), GREATEST / LEAST, REGEXP_MATCHES / REGEXP_REPLACE, LIKE ... ESCAPE and the
bitwise operators: reference semantics with explicit values, and the vectorised twins of
``accel/functions_extra.py`` against the reference on generated data (NULLs, NaN, -0.0,
infinities, extremes, empty input), with a check that the fast path really ran."""
from __future__ import annotations

import inspect
import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria import Session
from velaria.accel import functions_extra as X
from velaria.errors import ExecutionError, SQLSemanticError
from velaria.plan.expr import Call, Column, Literal
from velaria.reference import batch as ref_batch
from velaria.reference.functions import OPERATORS, SCALAR_FUNCTIONS, EvalContext

CTX = EvalContext.current()
I, F, S = pa.int64(), pa.float64(), pa.string()


def call(name, *args):
    fn = OPERATORS.get(name) or SCALAR_FUNCTIONS[name]
    return Call(type=fn.result_type([a.type for a in args]), name=name, args=tuple(args))


def col(i, t):
    return Column(type=t, index=i, name=f"c{i}")


def lit(v, t):
    return Literal(type=t, value=v)


def fn(name):
    return SCALAR_FUNCTIONS[name].apply


def canon(v):
    if isinstance(v, float):
        return ("nan",) if v != v else ("f", v, math.copysign(1.0, v))
    return v


def reference(expr, batch):
    return ref_batch.evaluate(expr, batch, CTX)


def twin(expr, batch):
    """The accelerated twin on the evaluated arguments (None: it hands over to the reference)."""
    arrays = [reference(a, batch) for a in expr.args]
    return X.CALLS[expr.name](expr, arrays, batch.num_rows)


def assert_twin_agrees(expr, batch, must_run=True):
    want = reference(expr, batch)
    got = twin(expr, batch)
    if got is None:
        assert not must_run, f"fast path did not run for {expr.name}"
        return
    assert got.type.equals(want.type)
    assert [canon(v) for v in got.to_pylist()] == [canon(v) for v in want.to_pylist()]


# ------------------------------------------------------------------------------ reference values

def test_round_to_digits():
    r = fn("round")
    assert r(2.345, 2) == 2.35 and r(0.285, 2) == 0.28     # as DuckDB (the double 2.345 * 100)
    assert r(-2.5, 0) == -3.0 and r(2.5) == 3.0
    assert r(1234.5, -2) == 1200.0 and r(-1250, -2) == -1300.0
    assert r(1.5, 400) == 1.5                              # nothing left to round
    assert math.copysign(1.0, r(-1.5, -400)) == -1.0 and r(-1.5, -400) == 0.0
    assert math.isnan(r(math.nan, 2)) and r(math.inf, -3) == math.inf
    assert r(1.0, None) is None and r(None, 2) is None
    assert math.copysign(1.0, r(-0.001, 2)) == -1.0


def test_round_type_rules():
    assert SCALAR_FUNCTIONS["round"].result_type([I, I]) == F
    with pytest.raises(SQLSemanticError, match="ROUND precision must be an integer"):
        SCALAR_FUNCTIONS["round"].result_type([F, F])
    with pytest.raises(SQLSemanticError, match="ROUND expects 1 or 2 arguments"):
        SCALAR_FUNCTIONS["round"].result_type([F, I, I])


def test_greatest_least_skip_nulls():
    g, lst = fn("greatest"), fn("least")
    assert g(1, None, 3) == 3 and lst(None, 2, 1.5) == 1.5
    assert g(None, None) is None
    assert math.isnan(g(1.0, math.nan)) and lst(1.0, math.nan) == 1.0
    assert g("a", "b") == "b"
    assert math.copysign(1.0, g(-0.0, 0.0)) == -1.0        # equal values: the first wins
    with pytest.raises(SQLSemanticError, match="GREATEST arguments have incompatible types"):
        SCALAR_FUNCTIONS["greatest"].result_type([I, S])


def test_regexp_functions():
    m, rep = fn("regexp_matches"), fn("regexp_replace")
    assert m("abc", "b") is True and m("abc", "^b") is False and m("ABC", "b", "i") is True
    assert m("a\nb", "a.b") is False and m("٣", "\\d") is False    # ASCII classes, as RE2
    assert rep("aaa", "a", "b") == "baa" and rep("aaa", "a", "b", "g") == "bbb"
    assert rep("abc", "(b)", "[\\1]") == "a[b]c" and rep("abc", "b", "\\0\\0") == "abbc"
    assert rep("abc", "b", "\\\\") == "a\\c"
    assert rep("abxd", "x*", "-", "g") == "-a-b-d-"        # RE2's empty-match rule
    assert m(None, "a") is None and rep("a", "a", None) is None


def test_regexp_errors():
    with pytest.raises(ExecutionError, match="invalid regular expression"):
        fn("regexp_matches")("a", "(")
    with pytest.raises(ExecutionError, match="unrecognized regex option 'q'"):
        fn("regexp_replace")("a", "a", "b", "q")
    with pytest.raises(ExecutionError, match="invalid escape in REGEXP_REPLACE replacement"):
        fn("regexp_replace")("a", "a", "\\x")
    with pytest.raises(ExecutionError, match="refers to group 2"):
        fn("regexp_replace")("a", "(a)", "\\2")


def test_like_escape_and_bitwise_operators():
    like = OPERATORS["like_escape"].apply
    assert like("50%", "50!%", "!") is True and like("500", "50!%", "!") is False
    assert like("a!", "a!!", "!") is True and like("a_", "a\\_", "\\") is True
    assert OPERATORS["#"].apply(5, 3) == 6 and OPERATORS["bitnot"].apply(0) == -1
    assert OPERATORS[">>"].apply(-8, 1) == -4 and OPERATORS["<<"].apply(1, 62) == 2 ** 62
    with pytest.raises(ExecutionError, match="BIGINT overflow"):
        OPERATORS["<<"].apply(1, 63)
    with pytest.raises(ExecutionError, match="shift count out of range: >> -1"):
        OPERATORS[">>"].apply(1, -1)


# ------------------------------------------------------------------------------ twins: shape

def test_twins_are_registered_in_the_accelerated_evaluator():
    from velaria.accel import expressions
    for name in X.CALLS:
        assert name in expressions._CALLS and (name in SCALAR_FUNCTIONS or name in OPERATORS), name
        assert X.CALLS[name].__module__ == "velaria.accel.functions_extra"
        assert list(inspect.signature(X.CALLS[name]).parameters) == ["expr", "arrays", "num_rows"]


def test_twins_hand_over_what_they_cannot_do_exactly():
    b = pa.record_batch({"s": pa.array(["é", "A"], S), "x": pa.array([1, 2], I), "y": pa.array([0.5, 1.0], F)})
    assert twin(call("regexp_matches", col(0, S), lit("a$", S)), b) is None          # anchor
    assert twin(call("regexp_matches", col(0, S), col(0, S)), b) is None             # not a literal
    assert twin(call("regexp_matches", col(0, S), lit("a", S), lit("i", S)), b) is None  # non-ASCII + i
    assert twin(call("regexp_replace", col(0, S), lit("x*", S), lit("-", S)), b) is None  # empty match
    assert twin(call("greatest", col(1, I), col(2, F)), b) is None                   # mixed types
    assert twin(call("greatest", col(0, S), lit("b", S)), b) is None                 # strings


# ------------------------------------------------------------------------------ twins: properties

floats = st.one_of(st.floats(), st.sampled_from([-0.0, 0.0, math.nan, math.inf, -math.inf, 5e-324,
                                                  2.5, -2.5, 0.285, 1e308, 2 ** 53 + 0.0]))
float_columns = st.lists(st.one_of(st.none(), floats), max_size=30)


@settings(max_examples=150, deadline=None)
@given(float_columns, st.one_of(st.none(), st.integers(-400, 400)), st.data())
def test_round_twin_matches_reference(xs, n, data):
    ns = data.draw(st.lists(st.one_of(st.none(), st.integers(-20, 20)), min_size=len(xs), max_size=len(xs)))
    b = pa.record_batch({"x": pa.array(xs, F), "n": pa.array(ns, I)})
    assert_twin_agrees(call("round", col(0, F)), b)
    assert_twin_agrees(call("round", col(0, F), lit(n, I if n is not None else pa.null())), b)
    assert_twin_agrees(call("round", col(0, F), col(1, I)), b)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 4), st.booleans(), st.data())
def test_greatest_least_twins_match_reference(k, as_float, data):
    n = data.draw(st.integers(0, 20))
    values = floats if as_float else st.one_of(st.integers(-(2 ** 63), 2 ** 63 - 1), st.integers(-3, 3))
    t = F if as_float else I
    cols = {f"c{i}": pa.array(data.draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n)), t)
            for i in range(k)}
    b = pa.record_batch(cols)
    args = [col(i, t) for i in range(k)]
    assert_twin_agrees(call("greatest", *args), b)
    assert_twin_agrees(call("least", *args), b)
    assert_twin_agrees(call("greatest", *args, lit(None, pa.null())), b)


texts = st.lists(st.one_of(st.none(), st.text(alphabet="abxAB_.\n 1", max_size=8)), max_size=25)
patterns = st.sampled_from(["a", "b+", "a.b", "[ab]x", "x|B", "(a)(b)", "\\d", "\\w+", "\\.", "^a",
                            "a{2}", "[^a]", "A", "_"])


@settings(max_examples=150, deadline=None)
@given(texts, patterns, st.sampled_from(["", "c", "i", "ci", "ic", "g"]))
def test_regexp_matches_twin_matches_reference(xs, pattern, options):
    b = pa.record_batch({"s": pa.array(xs, S)})
    assert_twin_agrees(call("regexp_matches", col(0, S), lit(pattern, S), lit(options, S)), b)
    assert_twin_agrees(call("regexp_matches", col(0, S), lit(pattern, S)), b)


@settings(max_examples=150, deadline=None)
@given(texts, patterns, st.sampled_from(["", "g"]), st.data())
def test_regexp_replace_twin_matches_reference(xs, pattern, options, data):
    replacements = ["-", "[\\0]", "\\\\", ""] + (["<\\1>"] if "(" in pattern else [])
    replacement = data.draw(st.sampled_from(replacements))
    b = pa.record_batch({"s": pa.array(xs, S)})
    expr = call("regexp_replace", col(0, S), lit(pattern, S), lit(replacement, S), lit(options, S))
    assert_twin_agrees(expr, b)


int64s = st.lists(st.one_of(st.none(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.integers(-70, 70)), max_size=25)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["&", "|", "#", "<<", ">>"]), int64s, st.data())
def test_bitwise_twins_match_reference(op, xs, data):
    ys = data.draw(st.lists(st.one_of(st.none(), st.integers(-2, 65), st.integers(-(2 ** 63), 2 ** 63 - 1)),
                            min_size=len(xs), max_size=len(xs)))
    b = pa.record_batch({"x": pa.array(xs, I), "y": pa.array(ys, I)})
    expr = call(op, col(0, I), col(1, I))
    try:
        want = reference(expr, b)
    except ExecutionError:
        assert twin(expr, b) is None  # the reference raises; the twin hands it back
        return
    assert_twin_agrees(expr, b)
    assert_twin_agrees(call("bitnot", col(0, I)), b)
    assert want.type == I


# ------------------------------------------------------------------------------ through SQL

@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_functions_through_sql(engine):
    s = Session(engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({
        "x": [2.345, -2.5, None, 0.285], "n": [1, 2, 3, None], "s": ["ab", "xbx", None, "AB"]})))
    got = s.sql("SELECT ROUND(x, 2) AS r, GREATEST(n, 2) AS g, LEAST(x, n) AS l, "
                "REGEXP_MATCHES(s, 'b') AS m, REGEXP_REPLACE(s, 'b', '[\\0]', 'g') AS p FROM t").to_rows()
    assert got["rows"] == [[2.35, 2, 1.0, True, "a[b]"], [-2.5, 2, -2.5, True, "x[b]x"],
                           [None, 3, 3.0, None, None], [0.28, 2, 0.285, False, "AB"]]
