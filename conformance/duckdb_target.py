"""A DuckDB-backed target exposing the batch part of the Velaria Python API.

It exists to show (and test) that the suite runs against *any* implementation, and to check
the expected results written in ``slt/`` against an independent engine:

    python -m velaria.conformance --target velaria.conformance.duckdb_target \\
        --xfail conformance/xfail/duckdb.txt

Where DuckDB's semantics differ from the contract (division by zero, GROUP BY output order,
error texts, ...) the clause fails; ``xfail/duckdb.txt`` lists those with reasons.
"""
from __future__ import annotations

import contextlib
import re

import duckdb  # imported with the module, so an isolated run's lanes load it once

__all__ = ["Session", "DataFrame", "SqlError"]


class SqlError(RuntimeError):
    def __init__(self, message: str, error_type: str = "sql_error", hint: str | None = None,
                 byte_offset: int | None = None):
        self.error_type, self.message, self.hint, self.byte_offset = error_type, message, hint, byte_offset
        parts = ["error_type=%s" % error_type, "message=%s" % message]
        if hint:
            parts.append("hint=%s" % hint)
        if byte_offset is not None:
            parts.append("byte_offset=%d" % byte_offset)
        super().__init__("; ".join(parts))


def _translate(exc: Exception) -> SqlError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = re.search(r"Table with name (\S+) does not exist", text)
    if m:
        return SqlError("view not found: %s" % m.group(1), "catalog_not_found")
    m = re.search(r'Referenced column "([^"]+)" not found', text)
    if m:
        return SqlError("column not found: %s" % m.group(1), "column_not_found")
    kind = type(exc).__name__
    if "Parser" in kind:
        return SqlError(text, "parse_error")
    if "NotImplemented" in kind:
        return SqlError("not supported in SQL v1: " + text, "unsupported_sql_feature")
    return SqlError(text, "semantic_error")


def _normalise(table):
    """DuckDB returns DECIMAL for literals like 2.5 and HUGEINT/DECIMAL(38,0) for SUM(int64):
    map them to the contract's int64 / float64 so that the comparison is about values."""
    import pyarrow as pa

    cols = []
    for col in table.columns:
        if pa.types.is_decimal(col.type):
            col = col.cast(pa.int64() if col.type.scale == 0 else pa.float64())
        cols.append(col)
    return pa.table(cols, names=table.column_names)


class DataFrame:
    def __init__(self, table):
        self._t = table

    def to_arrow(self):
        return self._t

    def __arrow_c_stream__(self, requested_schema=None):
        return self._t.__arrow_c_stream__(requested_schema)

    def to_rows(self):
        cols = [c.to_pylist() for c in self._t.columns]
        return {"schema": list(self._t.column_names), "rows": [list(r) for r in zip(*cols)] if cols else []}

    def count(self):
        return self._t.num_rows

    def explain(self):
        return "Source\n  source=memory"

    def show(self, max_rows: int = 20):
        rows = self.to_rows()
        print("\t".join(rows["schema"]))
        for r in rows["rows"][:max_rows]:
            print("\t".join("null" if v is None else str(v) for v in r))


class Session:
    def __init__(self, **_options):
        self._duckdb = duckdb
        self._con = duckdb.connect()
        self._con.execute("SET default_null_order = 'nulls_last_on_asc_first_on_desc'")
        self._views: dict = {}

    def create_dataframe_from_arrow(self, obj):
        import pyarrow as pa

        if isinstance(obj, pa.Table):
            return DataFrame(obj)
        if isinstance(obj, pa.RecordBatch):
            return DataFrame(pa.Table.from_batches([obj]))
        if hasattr(obj, "__arrow_c_stream__"):
            return DataFrame(pa.RecordBatchReader.from_stream(obj).read_all())
        if hasattr(obj, "__arrow_c_array__"):
            return DataFrame(pa.Table.from_batches([pa.record_batch(obj)]))
        return DataFrame(pa.table(obj))

    def create_temp_view(self, name, df):
        if not isinstance(df, DataFrame):
            raise TypeError("create_temp_view expects a DataFrame or StreamingDataFrame")
        self._views[name] = df._t
        with contextlib.suppress(Exception):
            self._con.unregister(name)
        self._con.register(name, df._t)

    def sql(self, text, params=None):
        import pyarrow as pa

        try:
            rel = self._con.sql(text, params=params)
            if rel is None:
                return DataFrame(pa.table({"ok": [1], "message": ["done"], "affected_rows": [0]}))
            out = rel.arrow()
            return DataFrame(_normalise(out.read_all() if hasattr(out, "read_all") else out))
        except self._duckdb.Error as exc:
            raise _translate(exc) from None

    def explain_sql(self, text):
        try:
            plan = self._con.sql("EXPLAIN " + text).fetchall()
        except self._duckdb.Error as exc:
            raise _translate(exc) from None
        return "frontend\nname=duckdb\nlogical\n%s\nphysical\n%s\nstrategy\nselected_impl=duckdb\n" % (
            text, "\n".join(str(r[1]) for r in plan))
