"""Clauses on the shape of the Python API: Session catalog, ``to_rows``, ``count``, Arrow interop.

What they pin: native Velaria's Session and DataFrame methods, the ``to_rows`` shape and the
Arrow ingest/export rules. Clauses tagged ``diverges`` / ``extension`` name their
docs/divergences.md row.
"""
from __future__ import annotations

import contextlib
import io

from . import ClauseFailure, Context, clause, contract_or_native


def _pa():
    import pyarrow as pa

    return pa


def _view(ctx: Context, s, name: str, table):
    df = ctx.api(s, "create_dataframe_from_arrow")(table)
    ctx.api(s, "create_temp_view")(name, df)
    return df


def _sample(pa):
    return pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": pa.array(["alice", None, "carol"], pa.string()),
        "score": pa.array([1.5, None, 3.25], pa.float64()),
    })


def _expect(cond: bool, msg: str, repro: str | None = None):
    if not cond:
        raise ClauseFailure(msg, repro)


_SAMPLE_REPRO = """import pyarrow as pa
import {target} as target
s = {session}
df = s.create_dataframe_from_arrow(pa.table({{"id": pa.array([1, 2, 3], pa.int64()),
    "name": pa.array(["alice", None, "carol"]), "score": pa.array([1.5, None, 3.25])}}))
s.create_temp_view("t", df)
"""


# ------------------------------------------------------------------------------------ to_rows

@clause("api-to-rows-001", "to_rows() returns {'schema': [...], 'rows': [[...]]}: keys in order, lists not tuples",
        repro=_SAMPLE_REPRO + "print(s.sql('SELECT id, name FROM t').to_rows())")
def to_rows_shape(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    out = ctx.api(ctx.api(s, "sql")("SELECT id, name FROM t"), "to_rows")()
    _expect(isinstance(out, dict), "to_rows() returned %s, expected dict" % type(out).__name__)
    _expect(list(out.keys()) == ["schema", "rows"], "to_rows() keys are %r, expected ['schema', 'rows']" % list(out))
    _expect(type(out["schema"]) is list and all(type(c) is str for c in out["schema"]),
            "schema must be a list of str, got %r" % (out["schema"],))
    _expect(out["schema"] == ["id", "name"], "schema is %r, expected ['id', 'name']" % (out["schema"],))
    _expect(type(out["rows"]) is list, "rows must be a list, got %s" % type(out["rows"]).__name__)
    _expect(all(type(r) is list for r in out["rows"]), "each row must be a list (not a tuple): %r" % (out["rows"],))
    _expect(out["rows"] == [[1, "alice"], [2, None], [3, "carol"]], "rows are %r" % (out["rows"],))


@clause("api-to-rows-002", "to_rows() returns a fresh dict and fresh lists on every call",
        repro=_SAMPLE_REPRO + "df = s.sql('SELECT * FROM t')\na = df.to_rows(); a['rows'][0][0] = 99; a['schema'].append('x')\nprint(df.to_rows())")
def to_rows_fresh(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    df = ctx.api(s, "sql")("SELECT * FROM t")
    a = df.to_rows()
    a["rows"][0][0] = 99
    a["schema"].append("x")
    a["rows"].append([0])
    b = df.to_rows()
    _expect(b["schema"] == ["id", "name", "score"] and len(b["rows"]) == 3 and b["rows"][0][0] == 1,
            "mutating one to_rows() result changed the next: %r" % (b,))


@clause("api-to-rows-003", "to_rows() values are None/bool/int/float/str/list[float], typed per Arrow column",
        repro="""import pyarrow as pa
import {target} as target
s = {session}
df = s.create_dataframe_from_arrow(pa.table({{"b": pa.array([True, None]), "i32": pa.array([7, None], pa.int32()),
    "f32": pa.array([0.5, None], pa.float32()), "s": pa.array(["x", None], pa.large_string()),
    "v": pa.array([[1, 2], None], pa.list_(pa.float32(), 2))}}))
print(df.to_rows())""")
def to_rows_types(ctx: Context):
    pa = _pa()
    s = ctx.session()
    t = pa.table({
        "b": pa.array([True, None], pa.bool_()),
        "i32": pa.array([7, None], pa.int32()),
        "f32": pa.array([0.5, None], pa.float32()),
        "s": pa.array(["x", None], pa.large_string()),
        "v": pa.array([[1.0, 2.0], None], pa.list_(pa.float32(), 2)),
    })
    out = ctx.api(ctx.api(s, "create_dataframe_from_arrow")(t), "to_rows")()
    _expect(out["schema"] == ["b", "i32", "f32", "s", "v"], "schema %r" % (out["schema"],))
    row, nulls = out["rows"][0], out["rows"][1]
    _expect(row[0] is True, "bool cell came back as %r" % (row[0],))
    _expect(type(row[1]) is int and row[1] == 7, "int32 cell came back as %r (expected int 7)" % (row[1],))
    _expect(type(row[2]) is float and row[2] == 0.5, "float32 cell came back as %r (expected float 0.5)" % (row[2],))
    _expect(row[3] == "x" and type(row[3]) is str, "large_string cell came back as %r" % (row[3],))
    _expect(type(row[4]) is list and row[4] == [1.0, 2.0] and all(type(e) is float for e in row[4]),
            "fixed_size_list<float32,2> cell came back as %r (expected [1.0, 2.0])" % (row[4],))
    _expect(nulls == [None] * 5, "NULL cells came back as %r" % (nulls,))


@clause("api-to-rows-004", "create_dataframe_from_arrow accepts a dict of lists",
        repro="""import {target} as target
s = {session}
print(s.create_dataframe_from_arrow({{"flag": [True, False, None], "name": ["alice", None, "carol"], "score": [1, 2, 3]}}).to_rows())""")
def to_rows_dict_input(ctx: Context):
    s = ctx.session()
    df = ctx.api(s, "create_dataframe_from_arrow")(
        {"flag": [True, False, None], "name": ["alice", None, "carol"], "score": [1, 2, 3]})
    out = df.to_rows()
    _expect(out == {"schema": ["flag", "name", "score"],
                    "rows": [[True, "alice", 1], [False, None, 2], [None, "carol", 3]]}, "got %r" % (out,))


@clause("api-count-001", "DataFrame.count() returns the row count as int",
        repro=_SAMPLE_REPRO + "print(s.sql('SELECT * FROM t WHERE id > 1').count())")
def count_rows(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    n = ctx.api(ctx.api(s, "sql")("SELECT * FROM t WHERE id > 1"), "count")()
    _expect(type(n) is int and n == 2, "count() returned %r, expected int 2" % (n,))


# ------------------------------------------------------------------------------------ session

@clause("api-session-001", "each Session() has its own catalog", diverges="session-state",
        repro="""import pyarrow as pa
import {target} as target
a, b = {session}, {session}
a.create_temp_view("only_in_a", a.create_dataframe_from_arrow(pa.table({{"x": [1]}})))
b.sql("SELECT * FROM only_in_a")  # expected: view not found""")
def session_catalog(ctx: Context):
    pa = _pa()
    a, b = ctx.session(), ctx.session()
    _view(ctx, a, "only_in_a", pa.table({"x": [1]}))

    def contract():
        try:
            ctx.api(b, "sql")("SELECT * FROM only_in_a").to_rows()
        except RuntimeError as exc:
            _expect("view not found: only_in_a" in str(exc), "unexpected error text: %s" % exc)
            return
        raise ClauseFailure("a view registered in one Session is visible from another Session")

    def native():  # one process-wide catalog: the other Session sees the view and its rows
        rows = ctx.api(b, "sql")("SELECT * FROM only_in_a").to_rows()["rows"]
        return "a view registered in one Session is visible from another (one shared catalog)" if rows == [[1]] else None

    contract_or_native(contract, native)


@clause("api-session-002", "create_temp_view replaces an existing batch view of the same name")
def session_replace_view(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", pa.table({"x": [1]}))
    _view(ctx, s, "t", pa.table({"x": [2, 3]}))
    out = ctx.api(s, "sql")("SELECT x FROM t").to_rows()
    _expect(out["rows"] == [[2], [3]], "after replacing view t, SELECT x FROM t gave %r" % (out["rows"],))


@clause("api-session-003", "create_temp_view with a non-DataFrame raises TypeError")
def session_view_type(ctx: Context):
    s = ctx.session()
    try:
        ctx.api(s, "create_temp_view")("t", {"x": [1]})
    except TypeError:
        return
    except Exception as exc:  # noqa: BLE001
        raise ClauseFailure("expected TypeError, got %s: %s" % (type(exc).__name__, exc))
    raise ClauseFailure("create_temp_view('t', dict) succeeded; expected TypeError")


@clause("api-sql-params-001", "sql(text, params) binds $n and ? placeholders as typed values, never as text",
        extension="bind-parameters",
        repro=_SAMPLE_REPRO + "print(s.sql('SELECT id, $2 AS v FROM t WHERE name = $1', [\"x' OR 'a'='a\", 2.5]).to_rows())")
def sql_params_bound(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    sql = ctx.api(s, "sql")
    rows = sql("SELECT id, $2 AS v FROM t WHERE name = $1", ["carol", 2.5]).to_rows()["rows"]
    _expect(rows == [[3, 2.5]], "rows are %r, expected [[3, 2.5]]" % (rows,))
    rows = sql("SELECT id FROM t WHERE id > ? AND name = ?", [1, "x' OR 'a'='a"]).to_rows()["rows"]
    _expect(rows == [], "a string parameter must stay one string value; got rows %r" % (rows,))
    rows = sql("SELECT ? AS n, ? AS b", [None, True]).to_rows()["rows"]
    _expect(rows == [[None, True]], "None and True bind as NULL and a boolean; got %r" % (rows,))


@clause("api-sql-params-002", "a parameter count mismatch raises a RuntimeError that is also a ValueError",
        extension="bind-parameters",
        repro=_SAMPLE_REPRO + "s.sql('SELECT id FROM t WHERE id > $1 AND name = $2', [1])")
def sql_params_count(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    try:
        ctx.api(s, "sql")("SELECT id FROM t WHERE id > $1 AND name = $2", [1])
    except RuntimeError as exc:
        _expect(isinstance(exc, ValueError), "%s is not a ValueError" % type(exc).__name__)
        return
    except Exception as exc:  # noqa: BLE001
        raise ClauseFailure("expected a RuntimeError, got %s: %s" % (type(exc).__name__, exc))
    raise ClauseFailure("two placeholders with one value succeeded; expected an error")


@clause("api-explain-001", "explain_sql has the sections frontend/logical/physical/strategy; DataFrame.explain() is text")
def explain_sections(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    text = ctx.api(s, "explain_sql")("SELECT id FROM t WHERE id > 1")
    _expect(isinstance(text, str), "explain_sql returned %s" % type(text).__name__)
    lines = [ln.strip() for ln in text.splitlines()]
    for section in ("logical", "physical", "strategy"):
        _expect(section in lines, "explain_sql output has no %r section line:\n%s" % (section, text))
    plan = ctx.api(ctx.api(s, "sql")("SELECT id FROM t WHERE id > 1"), "explain")()
    _expect(isinstance(plan, str) and plan.strip() != "", "DataFrame.explain() returned %r" % (plan,))


@clause("api-show-001", "DataFrame.show() prints the header and rows to Python's sys.stdout",
        diverges="show-stdout")
def show_stdout(ctx: Context):
    pa = _pa()
    s = ctx.session()
    df = ctx.api(s, "create_dataframe_from_arrow")(_sample(pa))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ret = ctx.api(df, "show")()
    text = buf.getvalue()

    def contract():
        _expect(ret is None, "show() returned %r, expected None" % (ret,))
        for word in ("id", "name", "score", "alice", "carol"):
            _expect(word in text, "show() output lacks %r:\n%s" % (word, text))

    def native():  # native prints through C++ stdout, which redirect_stdout cannot see
        return "show() returned None and printed nothing to Python's sys.stdout" if ret is None and not text else None

    contract_or_native(contract, native)


# ------------------------------------------------------------------------------------ Arrow

_ROUNDTRIP_REPRO = """import pyarrow as pa
import {target} as target
s = {session}
t = pa.table({{"b": pa.array([True, False, None]), "i32": pa.array([1, None, -3], pa.int32()),
    "f32": pa.array([0.5, None, -1.25], pa.float32()), "s": pa.array(["a", None, "c"], pa.large_string()),
    "v": pa.array([[1, 2, 3], None, [0, 0, 1]], pa.list_(pa.float32(), 3))}})
out = s.create_dataframe_from_arrow(t).to_arrow()
print(out.schema); print(out.equals(t))"""


@clause("arrow-roundtrip-001",
        "create_dataframe_from_arrow -> to_arrow keeps bool/int32/float32/large_string/fixed_size_list<float32,3> and values",
        repro=_ROUNDTRIP_REPRO)
def arrow_roundtrip_types(ctx: Context):
    pa = _pa()
    s = ctx.session()
    t = pa.table({
        "b": pa.array([True, False, None], pa.bool_()),
        "i32": pa.array([1, None, -3], pa.int32()),
        "f32": pa.array([0.5, None, -1.25], pa.float32()),
        "s": pa.array(["a", None, "c"], pa.large_string()),
        "v": pa.array([[1, 2, 3], None, [0, 0, 1]], pa.list_(pa.float32(), 3)),
    })
    out = ctx.api(ctx.api(s, "create_dataframe_from_arrow")(t), "to_arrow")()
    _expect(isinstance(out, pa.Table), "to_arrow() returned %s, expected pyarrow.Table" % type(out).__name__)
    _expect(out.column_names == t.column_names, "column names %r" % (out.column_names,))
    for name in t.column_names:
        _expect(out.schema.field(name).type == t.schema.field(name).type,
                "column %s: type %s came back as %s" % (name, t.schema.field(name).type, out.schema.field(name).type))
        _expect(out.column(name).to_pylist() == t.column(name).to_pylist(),
                "column %s: values %r came back as %r" % (name, t.column(name).to_pylist(), out.column(name).to_pylist()))


@clause("arrow-roundtrip-002", "int64/float64/string columns with NULLs, NaN, -0.0 and infinities round-trip exactly")
def arrow_roundtrip_values(ctx: Context):
    pa = _pa()
    s = ctx.session()
    t = pa.table({
        "i": pa.array([0, None, -(2 ** 63), 2 ** 63 - 1], pa.int64()),
        "f": pa.array([float("nan"), -0.0, float("inf"), None], pa.float64()),
        "s": pa.array(["", None, "héllo", "x y"], pa.string()),
    })
    out = ctx.api(ctx.api(s, "create_dataframe_from_arrow")(t), "to_arrow")()
    for name in t.column_names:
        _expect(out.schema.field(name).type == t.schema.field(name).type,
                "column %s: %s came back as %s" % (name, t.schema.field(name).type, out.schema.field(name).type))
    _expect(out.column("i").to_pylist() == t.column("i").to_pylist(), "int64 values %r" % out.column("i").to_pylist())
    _expect(out.column("s").to_pylist() == t.column("s").to_pylist(), "string values %r" % out.column("s").to_pylist())
    f = out.column("f").to_pylist()
    import math

    _expect(math.isnan(f[0]) and f[1] == 0.0 and math.copysign(1, f[1]) < 0 and f[2] == float("inf") and f[3] is None,
            "float64 values NaN, -0.0, inf, NULL came back as %r" % (f,))


class _StreamOnly:
    """An object that only exports the Arrow C stream interface (like a polars or duckdb result)."""

    def __init__(self, table):
        self._t = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._t.__arrow_c_stream__(requested_schema)


class _ArrayOnly:
    """An object that only exports the Arrow C array interface (one struct array)."""

    def __init__(self, batch):
        self._b = batch

    def __arrow_c_array__(self, requested_schema=None):
        return self._b.__arrow_c_array__(requested_schema)


@clause("arrow-ingest-001",
        "create_dataframe_from_arrow accepts Table, RecordBatch, RecordBatchReader, __arrow_c_stream__ and __arrow_c_array__ objects")
def arrow_ingest_kinds(ctx: Context):
    pa = _pa()
    s = ctx.session()
    create = ctx.api(s, "create_dataframe_from_arrow")
    t = pa.table({"x": pa.array([1, 2], pa.int64()), "y": pa.array(["a", None])})
    batch = t.to_batches()[0]
    inputs = {
        "pa.Table": lambda: t,
        "pa.RecordBatch": lambda: batch,
        "pa.RecordBatchReader": lambda: pa.RecordBatchReader.from_batches(t.schema, t.to_batches()),
        "__arrow_c_stream__ object": lambda: _StreamOnly(t),
        "__arrow_c_array__ object": lambda: _ArrayOnly(batch),
    }
    for label, make in inputs.items():
        try:
            out = create(make()).to_rows()
        except Exception as exc:  # noqa: BLE001
            raise ClauseFailure("%s input: %s: %s" % (label, type(exc).__name__, exc)) from exc
        _expect(out == {"schema": ["x", "y"], "rows": [[1, "a"], [2, None]]}, "%s input gave %r" % (label, out))


@clause("arrow-ingest-002", "a multi-batch input is concatenated in order")
def arrow_ingest_batches(ctx: Context):
    pa = _pa()
    s = ctx.session()
    t = pa.Table.from_batches([pa.record_batch({"x": pa.array([i, i + 1], pa.int64())}) for i in (0, 2, 4)])
    out = ctx.api(s, "create_dataframe_from_arrow")(t).to_rows()
    _expect(out["rows"] == [[0], [1], [2], [3], [4], [5]], "rows %r" % (out["rows"],))


@clause("arrow-export-001", "pyarrow reads a DataFrame directly: pa.table(df) equals df.to_arrow()")
def arrow_export_pa_table(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    df = ctx.api(s, "sql")("SELECT id, name FROM t WHERE id >= 2")
    got = pa.table(df)
    _expect(got.to_pylist() == [{"id": 2, "name": None}, {"id": 3, "name": "carol"}], "pa.table(df) gave %r" % got.to_pylist())
    _expect(got.equals(ctx.api(df, "to_arrow")()), "pa.table(df) differs from df.to_arrow()")


@clause("arrow-export-002", "DataFrame exports __arrow_c_stream__ (pa.RecordBatchReader.from_stream reads it)",
        extension="arrow-export")
def arrow_export_stream(ctx: Context):
    pa = _pa()
    s = ctx.session()
    df = ctx.api(s, "create_dataframe_from_arrow")(_sample(pa))
    ctx.api(df, "__arrow_c_stream__")
    got = pa.RecordBatchReader.from_stream(df).read_all()
    _expect(got.column_names == ["id", "name", "score"] and got.num_rows == 3, "stream gave %r" % got.to_pylist())
    _expect(got.column("score").to_pylist() == [1.5, None, 3.25], "values %r" % got.to_pylist())


@clause("arrow-export-003", "SQL result Arrow types: SUM(int64) int64, COUNT int64, AVG float64, MIN/MAX keep type",
        diverges="sum-type")
def arrow_export_agg_types(ctx: Context):
    pa = _pa()
    s = ctx.session()
    _view(ctx, s, "t", _sample(pa))
    got = ctx.api(s, "sql")(
        "SELECT SUM(id) AS s, COUNT(*) AS c, AVG(id) AS a, MIN(id) AS mn, MAX(score) AS mx, SUM(score) AS fs FROM t"
    ).to_arrow()

    def check(sum_int: pa.DataType, s_value):
        want = {"s": sum_int, "c": pa.int64(), "a": pa.float64(), "mn": pa.int64(), "mx": pa.float64(),
                "fs": pa.float64()}
        for name, typ in want.items():
            _expect(got.schema.field(name).type == typ,
                    "column %s is %s, expected %s" % (name, got.schema.field(name).type, typ))
        rows = got.to_pylist()
        _expect(rows == [{"s": s_value, "c": 3, "a": 2.0, "mn": 1, "mx": 3.25, "fs": 4.75}]
                and type(rows[0]["s"]) is type(s_value), "values %r" % rows)

    def native():  # SUM is always a double
        check(pa.float64(), 6.0)
        return "SUM of an int64 column is float64 (6.0)"

    contract_or_native(lambda: check(pa.int64(), 6), native)
