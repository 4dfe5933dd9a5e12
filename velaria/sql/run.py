"""Run one SQL statement for a Session: parse, bind parameters, then plan or execute.

``SELECT`` (and ``WITH ... SELECT``) returns a lazy DataFrame; every other statement runs at
once and returns a small result table:

================================ ============================================================
statement                        result
================================ ============================================================
CREATE [SOURCE|SINK] TABLE, AS   ``ok, message, affected_rows``
INSERT, CREATE VIEW, DROP        ``ok, message, affected_rows``
DESCRIBE t / DESCRIBE SELECT     ``column_name, column_type, null``
SHOW TABLES                      ``name``
EXPLAIN SELECT                   ``explain``: one row, the text of ``Session.explain_sql``
================================ ============================================================
"""
from __future__ import annotations

import pyarrow as pa
from pglast import ast

from ..dataframe import DataFrame
from ..errors import SQLUnsupportedError
from ..io import column_hint
from . import parser
from .column_refs import scan_columns_hint
from .params import bind
from .planner import plan_select
from .shallow import deep_plan, deep_recursion, still_tall

__all__ = ["run_sql", "explain_select", "frame_for"]


class _DeepFrame(DataFrame):
    """A DataFrame whose plan keeps a deep expression inside a CASE branch (which cannot be
    split without changing which rows it runs on), or whose plan tree itself is deep: it
    executes with room for deep recursion."""

    def _materialize(self):
        with deep_recursion():
            return super()._materialize()

    def explain(self) -> str:
        with deep_recursion():
            return super().explain()


def frame_for(session, plan, sql: str | None = None) -> DataFrame:
    """The DataFrame that executes ``plan`` (a planned statement's query)."""
    return (_DeepFrame if still_tall(plan) or deep_plan(plan) else DataFrame)(session, plan, sql=sql)


def _prepare(sql: str, params):
    parsed = parser.parse(sql)
    offset = (lambda node: parser.node_offset(parsed, node))
    bind(parsed.stmt, params, offset)
    return parsed, offset


def run_sql(session, sql: str, params=None):
    """``Session.sql``: the statement's DataFrame (see the module table)."""
    from . import catalog_statements as C
    from .statements import execute_copy, execute_create, execute_insert

    parsed, offset = _prepare(sql, params)
    stmt = parsed.stmt
    if isinstance(stmt, ast.SelectStmt):
        # a file typed while the query is planned converts the query's columns on the way
        with column_hint.planning(() if parsed.ext.describe else scan_columns_hint(stmt)):
            plan = plan_select(session.context.catalog, parsed, offset, stmt)
        if parsed.ext.describe:
            return session.context.frame_from_table(C.describe_table(plan))
        return frame_for(session, plan, sql=sql)
    if isinstance(stmt, ast.CreateStmt):
        table = execute_create(session, parsed, offset)
    elif isinstance(stmt, ast.InsertStmt):
        table = execute_insert(session, parsed, offset)
    elif isinstance(stmt, ast.CopyStmt):
        table = execute_copy(session, parsed, offset)
    elif isinstance(stmt, ast.CreateTableAsStmt):
        table = C.execute_create_table_as(session, parsed, offset)
    elif isinstance(stmt, ast.ViewStmt):
        table = C.execute_create_view(session, parsed, offset)
    elif isinstance(stmt, ast.DropStmt):
        table = C.execute_drop(session, parsed, offset)
    elif isinstance(stmt, ast.VariableShowStmt):
        table = C.show_tables(session)
    elif isinstance(stmt, ast.ExplainStmt):
        table = pa.table({"explain": [_explain(session, parsed, offset, stmt.query)]})
    else:
        raise SQLUnsupportedError("not supported in SQL v1: unsupported SQL statement.",
                                  error_type="unsupported_statement",
                                  hint="Use SELECT, CREATE TABLE, INSERT INTO or COPY ... TO.")
    return session.context.frame_from_table(table)


def _explain(session, parsed, offset, stmt: ast.SelectStmt) -> str:
    from ..plan.explain import explain_batch
    from ..plan.optimize import prune
    from ..plan.physical import build_physical

    plan = plan_select(session.context.catalog, parsed, offset, stmt)
    with deep_recursion():
        # the session's runtime writes its record (mode, stages, tasks) into the plan; an
        # embedded session's record renders nothing, so its text stays upstream's
        return explain_batch(session.runtime.annotate(build_physical(prune(plan), session.kernels)))


def explain_select(session, sql: str, params=None) -> str:
    """``Session.explain_sql``: explain a SELECT (or ``EXPLAIN SELECT``) without running it."""
    parsed, offset = _prepare(sql, params)
    stmt = parsed.stmt
    if isinstance(stmt, ast.ExplainStmt):
        stmt = stmt.query
    if not isinstance(stmt, ast.SelectStmt) or parsed.ext.describe:
        raise SQLUnsupportedError("not supported in SQL v1: explainSql only supports SELECT",
                                  error_type="unsupported_statement")
    return _explain(session, parsed, offset, stmt)
