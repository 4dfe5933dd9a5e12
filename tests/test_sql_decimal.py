"""DECIMAL columns (Arrow decimal128) and CAST(x AS DECIMAL(p, s)): exact arithmetic,
comparison and aggregates, checked against DuckDB; both engines; the accelerated twin's
decimal arithmetic against the reference's; errors for overflow and bad input."""
from __future__ import annotations

import decimal
import os

import pyarrow as pa
import pytest

from velaria import Session, accel
from velaria.errors import ExecutionError, SQLSemanticError

duckdb = pytest.importorskip("duckdb", reason="duckdb is a test extra (pip install -e .[test])")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

D = decimal.Decimal
ENGINES = ["reference"] + (["auto"] if accel.batch_available() else [])


def duck_table(sql: str) -> pa.Table:
    """A table DuckDB builds (its DECIMAL columns and SUM(int) results are Arrow decimal128)."""
    con = duckdb.connect()
    try:
        result = con.sql(sql).arrow()
        return result.read_all() if isinstance(result, pa.RecordBatchReader) else result   # DuckDB 2 streams
    finally:
        con.close()


T = duck_table("SELECT * FROM (VALUES (1, 'a', 1.25::DECIMAL(10,2), 0.5::DOUBLE), (2, 'b', -2.50, 1.5), "
               "(3, 'a', NULL, 2.5), (4, 'b', 10.05, NULL), (5, 'a', 0.01, -0.5)) v(i, g, d, f)")


def session(engine: str) -> Session:
    s = Session(engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(T))
    return s


@pytest.fixture(params=ENGINES)
def s(request):
    return session(request.param)


def rows(s, sql):
    return s.sql(sql).to_rows()["rows"]


def duck_rows(sql, tables):
    con = duckdb.connect()
    try:
        for name, t in tables.items():
            con.register(name, t)
        return [list(r) for r in con.sql(sql).fetchall()]
    finally:
        con.close()


def same(a, b) -> bool:
    """Exact: a Decimal equals a Decimal of the same value; a double matches to 1e-12."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, D) or isinstance(b, D):
        return isinstance(a, D) and isinstance(b, D) and a == b
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))
    return a == b


def check(s, sql, tables=None, ordered=True):
    tables = tables or {"t": T}
    got, want = rows(s, sql), duck_rows(sql, tables)
    if not ordered:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert len(got) == len(want), (sql, got, want)
    for g, w in zip(got, want):
        assert all(same(x, y) for x, y in zip(g, w)), (sql, got, want)


def test_the_column_is_decimal128():
    assert pa.types.is_decimal(T.schema.field("d").type)


@pytest.mark.parametrize("sql", [
    "SELECT i, d + 1, d - i, d * d, d * 3, -d, ABS(d), d % 1 FROM t ORDER BY i",
    "SELECT i, d / 4, d + f, d * f FROM t ORDER BY i",            # / and DOUBLE operands: DOUBLE
    "SELECT i FROM t WHERE d > 1 ORDER BY i",
    "SELECT i FROM t WHERE d = 1.25 OR d BETWEEN -3 AND 0 ORDER BY i",
    "SELECT i FROM t WHERE d IN (1.25, 10.05, 7) ORDER BY i",
    "SELECT SUM(d), AVG(d), MIN(d), MAX(d), COUNT(d), COUNT(*) FROM t",
    "SELECT g, SUM(d), AVG(d), MIN(d), MAX(d) FROM t GROUP BY g ORDER BY g",
    "SELECT SUM(DISTINCT d), COUNT(DISTINCT d) FROM t",
    "SELECT i, CAST(d AS BIGINT), CAST(d AS DOUBLE), CAST(d AS VARCHAR), CAST(d AS DECIMAL(4, 1)) FROM t ORDER BY i",
    "SELECT i, CAST(i AS DECIMAL(6, 2)) * d, CAST(f AS NUMERIC(8, 3)), CAST('12.345' AS DECIMAL(5, 2)) FROM t ORDER BY i",
    "SELECT i, CASE WHEN i > 2 THEN d ELSE i END, COALESCE(d, 0) FROM t ORDER BY i",
    "SELECT d FROM t ORDER BY d DESC NULLS LAST",
    "SELECT g, SUM(d * 2) FROM t GROUP BY g HAVING SUM(d) > 0 ORDER BY g",
    "SELECT i, SUM(d) OVER (PARTITION BY g ORDER BY i) FROM t ORDER BY i",
])
def test_against_duckdb(s, sql):
    check(s, sql)


def test_duckdb_sum_of_integers_is_decimal_and_works(s):
    big = duck_table("SELECT g, SUM(i) AS total FROM (VALUES ('x', 9223372036854775807), ('x', 9223372036854775807), "
                     "('y', 1)) v(g, i) GROUP BY g ORDER BY g")
    assert big.schema.field("total").type == pa.decimal128(38, 0)
    s.create_temp_view("big", s.create_dataframe_from_arrow(big))
    check(s, "SELECT g, total + 1, total * 2, SUM(total) OVER (), total > 5 FROM big ORDER BY g", {"big": big})
    check(s, "SELECT SUM(total), AVG(total), MAX(total) FROM big", {"big": big})


def test_types(s):
    schema = s.sql("SELECT d + 1 AS a, d * d AS m, SUM(d) OVER () AS w, d / 2 AS q, CAST(i AS NUMERIC(5, 1)) AS c, "
                   "CAST(i AS DECIMAL) AS dflt FROM t").to_arrow().schema
    assert schema.field("a").type == pa.decimal128(22, 2)        # integer operands count as DECIMAL(19, 0)
    assert schema.field("m").type == pa.decimal128(20, 4)
    assert schema.field("w").type == pa.decimal128(38, 2)
    assert schema.field("q").type == pa.float64()
    assert schema.field("c").type == pa.decimal128(5, 1)
    assert schema.field("dflt").type == pa.decimal128(18, 3)
    agg = s.sql("SELECT SUM(d) AS s, AVG(d) AS a, MAX(d) AS m, STDDEV(d) AS sd FROM t").to_arrow().schema
    assert [f.type for f in agg] == [pa.decimal128(38, 2), pa.float64(), pa.decimal128(10, 2), pa.float64()]


def test_exact_where_double_is_not(s):
    s.create_temp_view("tiny", s.create_dataframe_from_arrow(
        pa.table({"x": pa.array([D("0.1"), D("0.2"), D("-0.3")], pa.decimal128(5, 1))})))
    assert rows(s, "SELECT SUM(x) FROM tiny") == [[D("0.0")]]
    assert rows(s, "SELECT SUM(CAST(x AS DOUBLE)) = 0 FROM tiny") == [[False]]   # (0.1 + 0.2) - 0.3 in doubles
    wide = pa.table({"w": pa.array([D("12345678901234567890123456789.123456789")] * 2, pa.decimal128(38, 9))})
    s.create_temp_view("wide", s.create_dataframe_from_arrow(wide))
    # beyond Python's default 28-digit decimal context: still exact
    assert rows(s, "SELECT SUM(w), w - w FROM wide GROUP BY w") == [
        [D("24691357802469135780246913578.246913578"), D("0E-9")]]


def test_rounding_half_away_from_zero(s):
    assert rows(s, "SELECT CAST(2.675 AS DECIMAL(5, 2)), CAST(-2.5 AS DECIMAL(3, 0)), CAST('-0.005' AS DECIMAL(4, 2)), "
                   "CAST(CAST('2.5' AS DECIMAL(2, 1)) AS BIGINT), CAST(CAST('-2.5' AS DECIMAL(2, 1)) AS BIGINT)") == [
        [D("2.68"), D("-3"), D("-0.01"), 3, -3]]


@pytest.mark.parametrize("sql, error, fragment", [
    ("SELECT CAST(1000 AS DECIMAL(4, 1))", ExecutionError, "out of range for DECIMAL(4, 1)"),
    ("SELECT CAST('1.2.3' AS DECIMAL(4, 1))", ExecutionError, "cannot cast '1.2.3' to DECIMAL(4, 1)"),
    ("SELECT CAST('nan' AS DECIMAL(4, 1))", ExecutionError, "cannot cast 'nan' to DECIMAL"),
    ("SELECT CAST(1 AS DECIMAL(40, 2))", SQLSemanticError, "precision 40 is out of range"),
    ("SELECT CAST(1 AS DECIMAL(4, 5))", SQLSemanticError, "scale 5 is out of range"),
    ("SELECT SUM(d) FROM t WHERE CAST(d AS DECIMAL(38, 37)) > 0", ExecutionError, "out of range for DECIMAL(38, 37)"),
])
def test_errors_name_the_value_and_the_fix(s, sql, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        rows(s, sql)


def test_overflow_is_an_error_not_a_rounded_value(s):
    wide = pa.table({"w": pa.array([D("9" * 38)], pa.decimal128(38, 0))})
    s.create_temp_view("w", s.create_dataframe_from_arrow(wide))
    for sql in ("SELECT w + w FROM w", "SELECT SUM(w) FROM (SELECT w FROM w UNION ALL SELECT w FROM w)"):
        with pytest.raises(ExecutionError, match="DECIMAL overflow.*CAST the operands to DOUBLE"):
            rows(s, sql)
    assert rows(s, "SELECT CAST(w AS DOUBLE) * 2 FROM w") == [[2e38]]


def test_decimal_in_text_functions_is_plain_text(s):
    assert rows(s, "SELECT d || '!', LENGTH(d), CAST(CAST('0.0001' AS DECIMAL(10, 6)) AS VARCHAR) FROM t WHERE i = 2") == [
        ["-2.50!", 5, "0.000100"]]


# ------------------------------------------------------------------------------ generated

decimals = st.one_of(st.none(), st.decimals(min_value=-10 ** 6, max_value=10 ** 6, places=2, allow_nan=False,
                                            allow_infinity=False))
EXPRS = ["a + b", "a - b", "a * b", "a * 7 - b", "-a + 3", "a % 3", "a / 3", "ABS(b)", "a > b", "a = b",
         "CAST(a AS DECIMAL(12, 1))", "CAST(a AS BIGINT)", "CASE WHEN a > 0 THEN a ELSE b END",
         "a * CAST(0.5 AS DOUBLE)", "a * CAST('0.5' AS DECIMAL(3, 1))"]


@settings(max_examples=int(os.environ.get("VELARIA_DIFF_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(decimals, decimals, st.sampled_from(["x", "y"])), max_size=10),
       st.lists(st.sampled_from(EXPRS), min_size=1, max_size=3), st.sampled_from(ENGINES))
def test_generated_against_duckdb(data, exprs, engine):
    t = pa.table({"a": pa.array([r[0] for r in data], pa.decimal128(12, 2)),
                  "b": pa.array([r[1] for r in data], pa.decimal128(12, 2)),
                  "g": pa.array([r[2] for r in data], pa.string())})
    s = Session(engine)
    s.create_temp_view("t", s.create_dataframe_from_arrow(t))
    items = ", ".join(exprs)
    check(s, f"SELECT {items} FROM t", {"t": t}, ordered=False)
    check(s, "SELECT g, SUM(a), SUM(a * b), MIN(b), MAX(a - b), AVG(a), COUNT(b) FROM t GROUP BY g", {"t": t},
          ordered=False)


@pytest.mark.skipif(not accel.batch_available(), reason="accelerated batch kernels unavailable")
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(decimals, st.one_of(st.none(), st.integers(-10 ** 9, 10 ** 9))), min_size=1, max_size=20),
       st.sampled_from(["+", "-", "*"]), st.sampled_from([pa.decimal128(12, 2), pa.decimal128(38, 2)]))
def test_accelerated_decimal_arithmetic_matches_reference(pairs, op, dtype):
    from velaria.accel import expressions as bk
    from velaria.plan.expr import Call, Column
    from velaria.reference import batch as ref
    from velaria.reference.decimals import arithmetic_type
    batch = pa.record_batch({"a": pa.array([p[0] for p in pairs], dtype), "k": pa.array([p[1] for p in pairs], pa.int64())})
    a, k = Column(type=dtype, index=0, name="a"), Column(type=pa.int64(), index=1, name="k")
    for x, y in ((a, a), (a, k), (k, a)):
        e = Call(type=arithmetic_type(op, x.type, y.type), name=op, args=(x, y))
        try:
            want = ref.evaluate(e, batch)
        except ExecutionError as exc:
            with pytest.raises(ExecutionError, match="DECIMAL overflow"):
                bk.evaluate(e, batch)
            assert "DECIMAL overflow" in str(exc)
            continue
        got = bk.evaluate(e, batch)
        assert got.type == want.type and got.to_pylist() == want.to_pylist()


@pytest.mark.skipif(not accel.batch_available(), reason="accelerated batch kernels unavailable")
def test_accelerated_decimal_arithmetic_runs_without_the_reference(monkeypatch):
    from velaria.accel import expressions as bk
    from velaria.plan.expr import Call, Column

    def boom(*a, **k):
        raise AssertionError("delegated to the reference")
    monkeypatch.setattr(bk, "_reference", boom)
    t = pa.decimal128(10, 2)
    batch = pa.record_batch({"a": pa.array([D("1.25"), None, D("-3.10")], t)})
    a = Column(type=t, index=0, name="a")
    e = Call(type=pa.decimal128(21, 4), name="*", args=(a, a))
    assert bk.evaluate(e, batch).to_pylist() == [D("1.5625"), None, D("9.6100")]
