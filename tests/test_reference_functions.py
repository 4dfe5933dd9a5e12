"""Pinned semantics of the reference scalar builtins, operators and the expression evaluator."""
from datetime import date, datetime, timezone

import pyarrow as pa
import pytest
from hypothesis import given, strategies as st

from velaria.errors import ExecutionError, SQLSemanticError, SQLSyntaxError
from velaria.plan.expr import AggregateCall, Call, Case, Cast, Column, InList, Literal
from velaria.reference import functions as F
from velaria.reference.expressions import evaluate
from velaria.reference.predicates import and3, not3, or3, selection

FN = F.SCALAR_FUNCTIONS
OP = F.OPERATORS
I64, F64, S, B = pa.int64(), pa.float64(), pa.string(), pa.bool_()


def col(i, t=I64):
    return Column(type=t, index=i, name=f"c{i}")


def lit(v, t=I64):
    return Literal(type=t, value=v)


# ---------------------------------------------------------------- registry, names, arity

def test_aliases_map_to_canonical_with_their_own_base_name():
    assert FN["len"].name == FN["char_length"].name == FN["character_length"].name == "length"
    assert FN["btrim"].name == "trim" and FN["substring"].name == "substr"
    assert FN["current_timestamp"].name == "now" and FN["current_timestamp"].base_name == "current_timestamp"
    assert FN["current_date"].name == "current_date" and FN["today"].name == "today"
    assert FN["iso_week"].name == "week" and FN["iso_week"].base_name == "iso_week"
    assert FN["week"].base_name == "week" and FN["lower"].base_name == "lower"


def test_resolve_function_name_rules_and_unknown_error():
    assert F.resolve_function("LOWER").name == "lower"
    assert F.resolve_function("velaria_upper").name == "upper"
    assert F.resolve_function("pg_catalog.length").name == "length"
    with pytest.raises(SQLSyntaxError) as info:
        F.resolve_function("stddev")
    assert info.value.error_type == "unsupported_function"
    assert info.value.message == "Unknown function: stddev"
    assert info.value.hint == "The supported functions are listed in docs/functions.md."
    with pytest.raises(SQLSyntaxError) as info:
        F.resolve_function("uper")
    assert info.value.hint.startswith("Did you mean UPPER? ")


def test_every_function_is_documented():
    """docs/functions.md, which unknown-function hints point to, lists every builtin."""
    import pathlib
    import re

    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "functions.md").read_text()
    documented = {m.lower() for m in re.findall(r"`([A-Z_]+)[(`]", doc)}
    missing = sorted(set(F.SCALAR_FUNCTIONS) - documented)
    assert not missing, f"add these functions to docs/functions.md: {missing}"


@pytest.mark.parametrize("name,n,message", [
    ("length", 2, "LENGTH expects 1 argument"),
    ("lower", 0, "LOWER expects 1 argument"),
    ("upper", 2, "UPPER expects 1 argument"),
    ("trim", 2, "TRIM expects 1 argument"),
    ("ltrim", 2, "LTRIM/RTRIM requires 1 argument"),
    ("rtrim", 0, "LTRIM/RTRIM requires 1 argument"),
    ("reverse", 2, "REVERSE expects 1 argument"),
    ("concat", 0, "CONCAT expects at least 1 argument"),
    ("concat_ws", 1, "CONCAT_WS requires at least 2 arguments"),
    ("left", 1, "LEFT requires 2 arguments"),
    ("right", 3, "RIGHT requires 2 arguments"),
    ("substr", 1, "SUBSTR expects 2 or 3 arguments"),
    ("substr", 4, "SUBSTR expects 2 or 3 arguments"),
    ("position", 1, "POSITION requires 2 arguments"),
    ("replace", 2, "REPLACE requires exactly 3 arguments"),
    ("abs", 2, "ABS expects 1 argument"),
    ("ceil", 2, "CEIL expects 1 argument"),
    ("floor", 2, "FLOOR expects 1 argument"),
    ("round", 3, "ROUND expects 1 or 2 arguments"),
    ("year", 2, "date scalar function expects 1 argument"),
    ("iso_week", 0, "date scalar function expects 1 argument"),
    ("yearweek", 2, "date scalar function expects 1 argument"),
    ("now", 1, "current time scalar function expects 0 arguments"),
    ("today", 1, "current time scalar function expects 0 arguments"),
    ("unix_timestamp", 2, "UNIX_TIMESTAMP expects 0 or 1 argument"),
])
def test_arity_messages(name, n, message):
    with pytest.raises(SQLSemanticError) as info:
        FN[name].result_type([S] * n)
    assert info.value.message == message


def test_result_types():
    assert FN["length"].result_type([S]) == I64
    assert FN["lower"].result_type([I64]) == S          # LOWER(1) = '1'
    assert FN["abs"].result_type([I64]) == F64
    assert FN["year"].result_type([pa.timestamp("ms")]) == I64
    assert FN["now"].result_type([]) == S
    assert FN["substr"].result_type([S, I64, F64]) == S
    with pytest.raises(SQLSemanticError) as info:
        FN["abs"].result_type([S])
    assert info.value.message == "computed function argument must be numeric"
    with pytest.raises(SQLSemanticError):
        FN["left"].result_type([S, S])
    with pytest.raises(SQLSemanticError):
        FN["year"].result_type([B])


# ---------------------------------------------------------------- strings

def test_length_and_substr_count_characters():
    assert FN["length"].apply("héllo") == 5
    assert FN["length"].apply(None) is None
    assert FN["length"].apply(12.5) == 4                 # to_string first
    assert FN["reverse"].apply("héllo") == "olléh"
    assert FN["left"].apply("héllo", 2) == "hé"
    assert FN["right"].apply("héllo", 2) == "lo"
    assert FN["position"].apply("l", "héllo") == 3


@pytest.mark.parametrize("args,expected", [
    (("abcdef", 0, 2), "ab"),           # start < 1 clamps to 1 without shortening
    (("abcdef", -3), "abcdef"),
    (("abcdef", 2), "bcdef"),
    (("abcdef", 2, 3), "bcd"),
    (("abcdef", 7), ""),
    (("abcdef", 3, 0), ""),
    (("abcdef", 3, -1), ""),
    (("abcdef", 5, 100), "ef"),
    (("abcdef", 2.9, 2.9), "bc"),      # numbers truncate
    (("abcdef", None), None),
])
def test_substr_clamping(args, expected):
    assert FN["substr"].apply(*args) == expected


def test_left_right_edges():
    assert FN["left"].apply("abc", 0) == "" and FN["left"].apply("abc", -1) == ""
    assert FN["left"].apply("abc", 10) == "abc" and FN["right"].apply("abc", 10) == "abc"
    assert FN["right"].apply("abc", -2) == ""


def test_position_replace_trim_case():
    assert FN["position"].apply("", "abc") == 1
    assert FN["position"].apply("z", "abc") == 0
    assert FN["replace"].apply("aaa", "aa", "b") == "ba"
    assert FN["replace"].apply("abc", "", "x") == "abc"
    assert FN["trim"].apply(" \t\n\v\f\rx y \r\n") == "x y"
    assert FN["ltrim"].apply("  x  ") == "x  " and FN["rtrim"].apply("  x  ") == "  x"
    assert FN["upper"].apply("straße") == "STRASSE" and FN["lower"].apply("ÉA") == "éa"


def test_concat_and_concat_ws_null_rules():
    assert FN["concat"].apply("a", 1, True, 2.5) == "a1true2.5"
    assert FN["concat"].apply("a", None) is None
    assert FN["concat_ws"].apply("-", "a", "b") == "a-b"
    assert FN["concat_ws"].apply(None, "a", "b") is None     # separator NULL
    assert FN["concat_ws"].apply("-", "a", None) is None     # any NULL (upstream, not PostgreSQL)
    assert OP["concat_op"].apply("a", 1) == "a1"
    assert OP["concat_op"].apply("a", None) is None


@pytest.mark.parametrize("value,expected", [
    (0.1, "0.1"), (3.0, "3.0"), (-0.0, "-0.0"), (1e20, "1e+20"), (1e-7, "1e-07"),
    (float("nan"), "nan"), (float("inf"), "inf"), (True, "true"), (False, "false"), (42, "42"),
    ([0.9, 0.1, 0.0], "[0.9,0.1,0.0]"), (date(2024, 1, 2), "2024-01-02"),
    (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
    (datetime(2024, 1, 2, 3, 4, 5, 123000), "2024-01-02T03:04:05.123"),
    (None, None),
])
def test_to_string(value, expected):
    assert F.to_string(value) == expected


def test_to_string_float32_shortest():
    assert F.to_string(F.cast_value(0.1, "FLOAT"), pa.float32()) == "0.1"


@pytest.mark.parametrize("s,pattern,expected", [
    ("abc", "a%", True), ("abc", "%c", True), ("abc", "a_c", True), ("abc", "a_", False),
    ("abc", "ABC", False), ("a.c", "a.c", True), ("abc", "a.c", False), ("", "%", True),
    ("a\nb", "a%b", True), ("100%", "100%", True), ("x", None, None), (None, "%", None),
])
def test_like(s, pattern, expected):
    assert OP["like"].apply(s, pattern) is expected


# ---------------------------------------------------------------- numbers and operators

@pytest.mark.parametrize("x,expected", [
    (2.5, 3.0), (-2.5, -3.0), (0.5, 1.0), (-0.5, -1.0), (1.4999, 1.0), (0.49999999999999994, 0.0),
    (7, 7.0), (1e300, 1e300),
])
def test_round_half_away_from_zero(x, expected):
    assert FN["round"].apply(x) == expected
    assert type(FN["round"].apply(x)) is float


def test_abs_ceil_floor_return_double():
    assert FN["abs"].apply(-3) == 3.0 and type(FN["abs"].apply(-3)) is float
    assert FN["ceil"].apply(1.2) == 2.0 and FN["floor"].apply(-1.2) == -2.0
    assert FN["ceil"].apply(float("inf")) == float("inf")
    assert FN["abs"].apply(True) == 1.0


def test_arithmetic_types_and_nulls():
    assert F.binary_result_type("+", I64, pa.int32()) == I64
    assert F.binary_result_type("*", I64, F64) == F64
    assert F.binary_result_type("/", I64, I64) == F64
    assert F.binary_result_type("%", I64, I64) == I64
    assert F.binary_result_type("+", pa.null(), I64) == I64
    assert OP["/"].apply(7, 2) == 3.5
    assert OP["/"].apply(1, 0) is None and OP["/"].apply(1.0, 0.0) is None
    assert OP["%"].apply(7, 0) is None
    assert OP["%"].apply(-7, 3) == -1 and OP["%"].apply(7, -3) == 1
    assert OP["%"].apply(-7.5, 2) == -1.5
    assert OP["+"].apply(1, None) is None
    assert OP["neg"].apply(5) == -5


def test_arithmetic_type_errors():
    with pytest.raises(SQLSemanticError) as info:
        F.binary_result_type("+", S, I64)
    assert "VARCHAR" in info.value.message and "CAST" in info.value.hint
    with pytest.raises(SQLSemanticError):
        F.binary_result_type("-", B, I64)


@pytest.mark.parametrize("op,a,b", [("+", 2 ** 63 - 1, 1), ("-", -2 ** 63, 1), ("*", 2 ** 62, 2)])
def test_int64_overflow(op, a, b):
    with pytest.raises(ExecutionError, match="BIGINT overflow.*CAST\\(x AS DOUBLE\\)"):
        OP[op].apply(a, b)


def test_neg_overflow():
    with pytest.raises(ExecutionError, match="BIGINT overflow"):
        OP["neg"].apply(-2 ** 63)


# ---------------------------------------------------------------- comparisons and 3VL

def test_comparisons():
    assert OP["="].apply(1, 1.0) is True
    assert OP["<"].apply(1, 1.5) is True
    assert OP["="].apply(-0.0, 0.0) is True
    assert OP["="].apply(float("nan"), float("nan")) is True
    assert OP[">"].apply(float("nan"), float("inf")) is True
    assert OP["<"].apply("Bob", "alice") is True            # code point order
    assert OP["<"].apply(False, True) is True
    assert OP["="].apply(None, None) is None
    assert OP["!="].apply(1, None) is None
    assert OP["<"].apply([1.0], [0.0, 0.0]) is True          # vectors: length first
    assert OP["<"].apply(datetime(2024, 1, 1, 12), "2024-01-02") is True
    assert OP["="].apply(date(2024, 1, 1), datetime(2024, 1, 1)) is True


def test_incompatible_comparison_is_plan_error():
    with pytest.raises(SQLSemanticError) as info:
        F.binary_result_type("=", S, I64)
    assert "VARCHAR" in info.value.message and "BIGINT" in info.value.message
    assert "CAST" in info.value.hint
    with pytest.raises(SQLSemanticError):
        F.binary_result_type("<", B, I64)
    assert F.binary_result_type("<", pa.timestamp("us"), S) == B
    assert F.binary_result_type("=", pa.int32(), F64) == B


V = [True, False, None]


@pytest.mark.parametrize("a", V)
@pytest.mark.parametrize("b", V)
def test_kleene_truth_tables(a, b):
    def to3(x):
        return {True: 1, None: 0.5, False: 0}[x]

    def back(x):
        return {1: True, 0.5: None, 0: False}[x]

    assert and3(a, b) is back(min(to3(a), to3(b)))
    assert or3(a, b) is back(max(to3(a), to3(b)))
    assert OP["and"].apply(a, b) is and3(a, b)
    assert OP["or"].apply(a, b) is or3(a, b)
    assert not3(a) is (None if a is None else not a)


def test_logic_operands_must_be_boolean_and_is_null():
    with pytest.raises(SQLSemanticError, match="AND expects BOOLEAN"):
        F.binary_result_type("and", I64, B)
    assert OP["is_null"].apply(None) is True and OP["is_not_null"].apply(None) is False
    assert selection([True, None, False, True]) == [0, 3]
    assert selection([]) == []


# ---------------------------------------------------------------- dates

@pytest.mark.parametrize("value,iso_year,week,yearweek", [
    ("2024-12-30", 2025, 1, 202501),
    ("2021-01-03", 2020, 53, 202053),
    (date(2024, 12, 30), 2025, 1, 202501),
    (datetime(2021, 1, 3, 23, 59), 2020, 53, 202053),
])
def test_iso_week(value, iso_year, week, yearweek):
    assert FN["iso_year"].apply(value) == iso_year
    assert FN["week"].apply(value) == week and FN["iso_week"].apply(value) == week
    assert FN["yearweek"].apply(value) == yearweek


def test_date_fields_and_parsing():
    assert FN["year"].apply("2024-03-05T10:11:12") == 2024
    assert FN["month"].apply("2024-03-05 10:11:12") == 3
    assert FN["day"].apply("2024-03-05") == 5
    assert FN["day"].apply("2024-03-05T09:00:01.700Z") == 5
    assert FN["year"].apply(0) == 1970 and FN["year"].apply("") == 1970
    assert FN["day"].apply("86400000") == 2                   # digits are epoch ms
    assert FN["year"].apply(-1) == 1969
    assert FN["year"].apply(None) is None
    with pytest.raises(ExecutionError, match="unsupported timestamp format: soon"):
        FN["year"].apply("soon")
    with pytest.raises(ExecutionError, match="unsupported timestamp format: 2024-13-01"):
        FN["year"].apply("2024-13-01")
    assert F.to_epoch_ms("1970-01-01T00:00:01.700") == 1700
    assert F.to_epoch_ms(datetime(1970, 1, 1, 1, tzinfo=timezone.utc)) == 3_600_000


def test_clock_functions_use_the_context():
    ctx = F.EvalContext(now=datetime(2024, 5, 6, 7, 8, 9, 10_000, tzinfo=timezone.utc))
    assert FN["now"].apply_columns([], 3, ctx) == ["2024-05-06T07:08:09.010"] * 3
    assert FN["today"].apply(context=ctx) == "2024-05-06"
    ctx0 = F.EvalContext(now=datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc))
    assert FN["now"].apply(context=ctx0) == "2024-05-06T07:08:09"
    assert FN["unix_timestamp"].apply(context=ctx0) == 1714979289
    assert FN["unix_timestamp"].apply(1999, context=ctx) == 1        # numbers are ms
    assert FN["unix_timestamp"].apply(-1999, context=ctx) == -1      # truncates toward zero
    assert FN["unix_timestamp"].apply(None, context=ctx) is None
    assert not FN["now"].deterministic and FN["lower"].deterministic


# ---------------------------------------------------------------- CAST

@pytest.mark.parametrize("value,target,expected", [
    ("12", "INT", 12), (" -5 ", "INT", -5), ("3.7", "INT", 3), (-3.7, "INT", -3), (True, "INT", 1),
    ("1e3", "DOUBLE", 1000.0), (5, "DOUBLE", 5.0), ("nan", "DOUBLE", float("inf") * 0),
    ("yes", "BOOL", False), ("TRUE", "BOOL", True), ("1", "BOOL", True), (0, "BOOL", False),
    (2.5, "BOOL", True), (1.5, "STRING", "1.5"), (None, "INT", None), (7, "TEXT", "7"),
    (0.1, "FLOAT", 0.10000000149011612), (1e300, "REAL", float("inf")),
])
def test_cast(value, target, expected):
    result = F.cast_value(value, target)
    if expected != expected:  # NaN
        assert result != result
    else:
        assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("value,target", [("abc", "INT"), ("12abc", "INT"), ("", "INT"),
                                          ("abc", "DOUBLE"), ("1_000", "DOUBLE"),
                                          (float("nan"), "INT"), (2.0 ** 63, "INT")])
def test_cast_errors(value, target):
    with pytest.raises(ExecutionError):
        F.cast_value(value, target)


def test_cast_error_text_and_targets():
    with pytest.raises(ExecutionError) as info:
        F.cast_value("abc", "INT")
    assert str(info.value) == "cannot cast 'abc' to INT"
    with pytest.raises(SQLSemanticError) as info:
        F.cast_result_type(S, "MONEY")
    assert info.value.message == "CAST target type is not supported: MONEY"
    assert F.cast_result_type(S, "DATE") == pa.date32()
    assert F.cast_result_type(S, "FLOAT") == pa.float32()
    assert F.cast_result_type(pa.list_(pa.float32(), 3), "STRING") == S
    with pytest.raises(SQLSemanticError):
        F.cast_result_type(pa.list_(pa.float32(), 3), "INT")


# ---------------------------------------------------------------- the evaluator

def test_evaluate_nodes():
    columns = [[1, 2, None, 4], ["a", "b", "c", None]]
    assert evaluate(lit(7), columns, 4) == [7, 7, 7, 7]
    assert evaluate(lit(7, F64), columns, 2) == [7.0, 7.0]
    assert evaluate(col(1, S), columns, 4) == ["a", "b", "c", None]
    plus = Call(type=I64, name="+", args=(col(0), lit(10)))
    assert evaluate(plus, columns, 4) == [11, 12, None, 14]
    up = Call(type=S, name="upper", args=(col(1, S),))
    assert evaluate(up, columns, 4) == ["A", "B", "C", None]
    cast = Cast(type=S, arg=col(0), target="STRING")
    assert evaluate(cast, columns, 4) == ["1", "2", None, "4"]
    assert evaluate(plus, [[], []], 0) == []


def test_evaluate_case_is_lazy_and_null_condition_is_not_true():
    s = col(0, S)
    nonempty = Call(type=B, name="!=", args=(s, lit("", S)))
    case = Case(type=I64, whens=((nonempty, Cast(type=I64, arg=s, target="INT")),), else_=lit(-1))
    assert evaluate(case, [["5", "", None, "7"]], 4) == [5, -1, -1, 7]
    mixed = Case(type=F64, whens=((Call(type=B, name=">", args=(col(0), lit(1))), lit(1)),),
                 else_=lit(0.5, F64))
    assert evaluate(mixed, [[0, 2, None]], 3) == [0.5, 1.0, 0.5]
    no_else = Case(type=I64, whens=((Call(type=B, name=">", args=(col(0), lit(1))), col(0)),))
    assert evaluate(no_else, [[0, 2, None]], 3) == [None, 2, None]


def test_evaluate_in_list_null_rules():
    items = (lit(1), lit(None, pa.null()))
    assert evaluate(InList(type=B, arg=col(0), items=items), [[1, 2, None]], 3) == [True, None, None]
    assert evaluate(InList(type=B, arg=col(0), items=items, negated=True), [[1, 2, None]], 3) == [False, None, None]
    assert evaluate(InList(type=B, arg=col(0), items=(lit(1), lit(3))), [[1, 2]], 2) == [True, False]
    assert evaluate(InList(type=B, arg=col(0), items=(lit(1), lit(3)), negated=True), [[1, 2]], 2) == [False, True]


def test_evaluate_now_is_one_value_per_context_and_aggregate_is_error():
    ctx = F.EvalContext(now=datetime(2024, 1, 1, tzinfo=timezone.utc))
    now = Call(type=S, name="now", args=())
    assert evaluate(now, [], 2, ctx) == ["2024-01-01T00:00:00"] * 2
    with pytest.raises(ExecutionError, match="aggregate"):
        evaluate(AggregateCall(type=I64, func="sum", arg=col(0)), [[1]], 1)


def test_evaluate_float32_text():
    f32 = pa.float32()
    values = [F.cast_value(0.1, "FLOAT"), None]
    up = Call(type=S, name="concat", args=(Column(type=f32, index=0), lit("!", S)))
    assert evaluate(up, [values], 2) == ["0.1!", None]
    assert evaluate(Cast(type=S, arg=Column(type=f32, index=0), target="STRING"), [values], 2) == ["0.1", None]


@given(st.lists(st.one_of(st.none(), st.integers(-2 ** 40, 2 ** 40)), max_size=30),
       st.lists(st.one_of(st.none(), st.integers(-2 ** 40, 2 ** 40)), max_size=30))
def test_property_arithmetic_matches_python(xs, ys):
    n = min(len(xs), len(ys))
    xs, ys = xs[:n], ys[:n]
    got = evaluate(Call(type=I64, name="-", args=(col(0), col(1))), [xs, ys], n)
    assert got == [None if a is None or b is None else a - b for a, b in zip(xs, ys)]
    got = evaluate(Call(type=B, name="<=", args=(col(0), col(1))), [xs, ys], n)
    assert got == [None if a is None or b is None else a <= b for a, b in zip(xs, ys)]
