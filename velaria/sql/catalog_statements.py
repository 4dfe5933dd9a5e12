"""Statements about the catalog: CREATE TABLE ... AS, CREATE VIEW, DROP, DESCRIBE, SHOW TABLES.

* ``CREATE TABLE t [(names)] AS SELECT ...`` runs the query now and stores the result as an
  in-memory table (later INSERTs append to it); ``IF NOT EXISTS`` makes an existing name a
  no-op. Returns ``ok, message, affected_rows`` with the rows stored.
* ``CREATE [OR REPLACE] VIEW v [(names)] AS SELECT ...`` stores the query. A view is planned
  again each time a statement reads it, so it sees rows inserted later.
* ``DROP TABLE|VIEW [IF EXISTS] a, b`` removes names from the Session. DROP TABLE does not
  drop a CREATE VIEW view nor DROP VIEW a table (as in PostgreSQL); a temp view registered
  from Python (``create_temp_view``), which INSERT can append to, is dropped by either.
* ``DESCRIBE t`` / ``DESCRIBE SELECT ...`` returns one row per output column:
  ``column_name, column_type, null`` (as DuckDB names them); nothing is executed.
* ``SHOW TABLES`` returns the Session's names, sorted, in column ``name``.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.types as pat
from pglast import ast
from pglast.enums import ObjectType

from ..catalog import CatalogEntry
from ..dataframe import DataFrame
from ..errors import CatalogNotFoundError, SQLSemanticError, VelariaError
from ..io.base import ArrowTableSource
from ..plan import logical as L
from ..plan import types as T
from .planner import plan_select, rename_columns
from .run import frame_for
from .statements import result_table

__all__ = ["execute_create_table_as", "execute_create_view", "execute_drop", "describe_table",
           "show_tables", "sql_type_name", "SqlView", "is_sql_view"]


def _renamed(plan: L.Node, names: list[str], what: str) -> L.Node:
    """``plan`` with its columns renamed to ``names`` (a column list after the new name)."""
    if not names:
        return plan
    if len(names) > len(plan.schema):
        raise SQLSemanticError(f"{what} lists {len(names)} column names but the query has "
                               f"{len(plan.schema)} columns", hint="Name at most one column per query column.")
    return rename_columns(plan, names)


def _unique_names(schema: pa.Schema, what: str) -> None:
    seen = set()
    for name in schema.names:
        if name in seen:
            raise SQLSemanticError(f"{what}: column {name} specified more than once",
                                   hint="Give the repeated column an alias with AS.")
        seen.add(name)


def execute_create_table_as(session, parsed, offset) -> pa.Table:
    """``CREATE TABLE name AS SELECT ...``: materialise the query into an in-memory table."""
    stmt: ast.CreateTableAsStmt = parsed.stmt
    into = stmt.into
    name = into.rel.relname
    if session.context.catalog.find(name) is not None:
        if stmt.if_not_exists:
            return result_table("create table skipped: already exists", 0)
        raise VelariaError(f"table already exists: {name}")
    plan = plan_select(session.context.catalog, parsed, offset, stmt.query)
    plan = _renamed(plan, [c.sval for c in into.colNames or ()], f"CREATE TABLE {name}")
    _unique_names(plan.schema, f"CREATE TABLE {name}")
    table = frame_for(session, plan).to_arrow()
    session.context.catalog.register(CatalogEntry(name=name, kind="batch", source=ArrowTableSource(table)),
                              replace_batch=False)
    return result_table("create table done", table.num_rows)


class SqlView(DataFrame):
    """A view made by ``CREATE VIEW``: a DataFrame whose plan is made again from the stored
    query whenever it is read, so it follows the tables it reads (rows inserted later, tables
    replaced)."""

    def __init__(self, session, name: str, parsed, offset, query: ast.SelectStmt, names: list[str]):
        self._session = session
        self._sql = parsed.original
        self._table = None
        self._name = name
        self._parsed, self._offset, self._query, self._names = parsed, offset, query, names
        self._planning = False

    @property
    def _plan(self) -> L.Node:
        if self._planning:
            raise SQLSemanticError(f"view {self._name} refers to itself",
                                   hint="A view cannot read its own name; use another name.")
        self._planning = True
        try:
            plan = plan_select(self._session.context.catalog, self._parsed, self._offset, self._query)
        finally:
            self._planning = False
        return _renamed(plan, self._names, f"view {self._name}")


def execute_create_view(session, parsed, offset) -> pa.Table:
    """``CREATE [OR REPLACE] VIEW name AS SELECT ...``: store the query under ``name``."""
    stmt: ast.ViewStmt = parsed.stmt
    name = stmt.view.relname
    old = session.context.catalog.find(name)
    if old is not None and not (stmt.replace and is_sql_view(old)):
        raise VelariaError(f"table already exists: {name}" if not stmt.replace else
                           f"cannot replace {name} with a view: it is a table")
    view = SqlView(session, name, parsed, offset, stmt.query, [a.sval for a in stmt.aliases or ()])
    _unique_names(view.schema, f"CREATE VIEW {name}")  # plans once now: errors surface here
    if old is not None:
        session.context.catalog.drop(old.name)
    session.context.catalog.register(CatalogEntry(name=name, kind="batch", frame=view))
    return result_table("create view done", 0)


def is_sql_view(entry: CatalogEntry) -> bool:
    """True for a view made by CREATE VIEW."""
    return isinstance(entry.frame, SqlView)


def _droppable(entry: CatalogEntry, want_view: bool) -> bool:
    """DROP VIEW takes views, DROP TABLE tables; a temp view registered from Python (which
    INSERT can append to) is taken by either."""
    if entry.frame is not None and not is_sql_view(entry):
        return True
    return is_sql_view(entry) == want_view


def execute_drop(session, parsed, offset) -> pa.Table:
    """``DROP TABLE|VIEW [IF EXISTS] name, ...``."""
    stmt: ast.DropStmt = parsed.stmt
    want_view = stmt.removeType == ObjectType.OBJECT_VIEW
    what = "view" if want_view else "table"
    names = [".".join(part.sval for part in obj) for obj in stmt.objects]
    at = parsed.ext.to_original_offset(parsed.stmt_location)  # DROP nodes carry no location
    entries = []
    for name in names:  # check every name before dropping any
        entry = session.context.catalog.find(name.rsplit(".", 1)[-1])
        if entry is None:
            if stmt.missing_ok:
                continue
            raise CatalogNotFoundError(f"{what} not found: {name}",
                                       hint=f"Tables in this session: {', '.join(sorted(session.tables())) or '(none)'}. "
                                            f"Write DROP {what.upper()} IF EXISTS to ignore a missing name.",
                                       byte_offset=at)
        if not _droppable(entry, want_view):
            other = "VIEW" if want_view is False else "TABLE"
            raise SQLSemanticError(f"{name} is not a {what}", hint=f"Use DROP {other} {name}.",
                                   byte_offset=at)
        entries.append(entry)
    for entry in entries:
        session.context.catalog.drop(entry.name)
    return result_table(f"drop {what} done", 0)


_SQL_TYPE_NAMES = [(pat.is_int64, "BIGINT"), (pat.is_int32, "INTEGER"), (pat.is_int16, "SMALLINT"),
                   (pat.is_int8, "TINYINT"), (pat.is_float32, "FLOAT"), (pat.is_float64, "DOUBLE"),
                   (pat.is_date, "DATE")]


def sql_type_name(t: pa.DataType) -> str:
    """The SQL name DESCRIBE shows for an Arrow type (DuckDB's names)."""
    for test, name in _SQL_TYPE_NAMES:
        if test(t):
            return name
    if pat.is_timestamp(t):
        return "TIMESTAMP" if t.tz is None else "TIMESTAMP WITH TIME ZONE"
    if T.is_vector(t):
        size = f"{t.list_size}" if pat.is_fixed_size_list(t) else ""
        return f"{sql_type_name(t.value_type)}[{size}]"
    return T.type_name(t)


def describe_table(plan: L.Node) -> pa.Table:
    """One row per output column of ``plan``: name, SQL type and nullability (always YES)."""
    return pa.table({"column_name": pa.array(plan.schema.names, pa.string()),
                     "column_type": pa.array([sql_type_name(f.type) for f in plan.schema], pa.string()),
                     "null": pa.array(["YES"] * len(plan.schema), pa.string())})


def show_tables(session) -> pa.Table:
    """``SHOW TABLES``: the Session's table and view names, sorted."""
    return pa.table({"name": pa.array(sorted(session.tables()), pa.string())})
