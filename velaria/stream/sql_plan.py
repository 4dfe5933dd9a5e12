"""Stream SQL: statement checks, source/sink resolution and planning.

A stream SELECT is planned by the batch :class:`~velaria.sql.planner.SelectPlanner` over the
stream's schema (so expressions, types, GROUP BY/HAVING resolution and default names are
exactly batch SQL's); this module adds what is specific to streams: the statement kinds each
entry point accepts, the table-kind rules (read SOURCE tables, write SINK tables), native
Velaria's stream shape restrictions with its messages, and the ``WINDOW BY`` node.
"""
from __future__ import annotations

import dataclasses

import pyarrow as pa
from pglast import ast, enums

from ..catalog import CatalogEntry
from ..errors import (CatalogNotFoundError, SQLSemanticError, SQLTableKindError, SQLUnsupportedError,
                      VelariaError)
from ..exec.window import window_node
from ..sql.lower_expr import AGGREGATES
from .plan import StreamPlan

__all__ = ["StreamStatement", "prepare_stream_statement"]

_V1 = "not supported in SQL v1: "
_AGGS = {"sum", "count", "avg", "min", "max"}


@dataclasses.dataclass
class StreamStatement:
    """A checked stream statement: what it reads, where it writes, and how to plan it."""

    source_name: str
    source_entry: CatalogEntry
    sink_name: str | None
    sink_entry: CatalogEntry | None
    planner: object          # schema -> StreamPlan
    has_order_by: bool


def _unsupported(msg: str, offset=None, hint=None) -> SQLUnsupportedError:
    return SQLUnsupportedError(_V1 + msg, hint=hint, byte_offset=offset)


def _func_name(node) -> str:
    return ".".join(s.sval for s in node.funcname).lower() if isinstance(node, ast.FuncCall) else ""


def _contains_aggregate(node) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.FuncCall) and _func_name(node) in _AGGS:
        return True
    if isinstance(node, ast.Node):
        return any(_contains_aggregate(getattr(node, a)) for a in node.__slots__ if not a.startswith("_"))
    if isinstance(node, (list, tuple)):
        return any(_contains_aggregate(x) for x in node)
    return False


def _is_star(target: ast.ResTarget) -> bool:
    v = target.val
    return isinstance(v, ast.ColumnRef) and any(isinstance(f, ast.A_Star) for f in v.fields)


def _resolve_source(catalog, name: str, offset) -> CatalogEntry:
    entry = catalog.find(name)
    if entry is None:
        raise CatalogNotFoundError(f"stream view not found: {name}", byte_offset=offset,
                                   hint="Register a stream with create_temp_view(name, stream_df) or "
                                        "CREATE SOURCE TABLE ... USING csv OPTIONS(path: '<dir>').")
    if entry.kind == "sink":
        raise SQLTableKindError(f"table-kind constraint violation: stream SQL source table cannot be SINK TABLE: {name}",
                                byte_offset=offset)
    if entry.kind != "source":
        raise SQLTableKindError(f"table-kind constraint violation: stream SQL source must be created with "
                                f"CREATE SOURCE TABLE: {name}", byte_offset=offset,
                                hint="Batch views are queried with Session.sql; register a stream with "
                                     "create_temp_view(name, stream_df).")
    return entry


def _resolve_sink(catalog, name: str, offset) -> CatalogEntry:
    entry = catalog.find(name)
    if entry is None:
        raise CatalogNotFoundError(f"stream sink not found: {name}", byte_offset=offset,
                                   hint="CREATE SINK TABLE name (cols...) USING csv OPTIONS(path: '<file>').")
    if entry.kind == "source":
        raise SQLTableKindError(f"table-kind constraint violation: stream SQL sink cannot be SOURCE TABLE: {name}",
                                byte_offset=offset)
    if entry.kind != "sink":
        raise SQLTableKindError(f"table-kind constraint violation: stream SQL sink must be created with "
                                f"CREATE SINK TABLE: {name}", byte_offset=offset)
    return entry


def _check_shape(parsed, stmt: ast.SelectStmt, offset) -> None:
    """Native Velaria's stream shape restrictions, in its order."""
    ext = parsed.ext
    if stmt.op != enums.SetOperation.SETOP_NONE:
        raise _unsupported("stream SQL does not support UNION", offset(stmt))
    if ext.keyword_search is not None:
        raise _unsupported("stream SQL does not support KEYWORD SEARCH", ext.keyword_search.offset)
    if not stmt.fromClause:
        raise SQLUnsupportedError("stream SQL requires FROM", byte_offset=offset(stmt))
    if len(stmt.fromClause) > 1 or isinstance(stmt.fromClause[0], ast.JoinExpr):
        raise _unsupported("stream SQL does not support JOIN", offset(stmt.fromClause[0]))
    if not isinstance(stmt.fromClause[0], ast.RangeVar):
        raise _unsupported("stream SQL FROM must name one stream view", offset(stmt.fromClause[0]))
    targets = stmt.targetList or ()
    if any(isinstance(t.val, ast.A_Const) for t in targets):
        raise _unsupported("stream SQL does not support literal projection", offset(targets[0]))
    if ext.hybrid_search is not None:
        raise _unsupported("stream SQL does not support HYBRID SEARCH", ext.hybrid_search.offset)
    if any(_is_star(t) for t in targets) and len(targets) > 1:
        raise _unsupported("stream SQL SELECT * cannot be mixed with other projections", offset(targets[0]))
    if stmt.distinctClause is not None:
        raise _unsupported("stream SQL does not support SELECT DISTINCT", offset(stmt))
    where = stmt.whereClause
    if isinstance(where, ast.BoolExpr):
        raise _unsupported("stream SQL WHERE does not support AND/OR", offset(where),
                           hint="Stream WHERE takes one comparison; chain a view per condition.")
    if where is not None and _contains_aggregate(where):
        raise SQLSemanticError("WHERE does not support aggregate expressions", byte_offset=offset(where))
    for node in _func_calls([t.val for t in targets] + [stmt.havingClause, where]):
        name = _func_name(node)
        if name not in _AGGS and name in AGGREGATES:
            # batch SQL has it; a stream keeps only these running states
            raise SQLUnsupportedError(
                f"stream SQL does not support the aggregate {name.upper()}",
                byte_offset=offset(node),
                hint="Stream SQL aggregates are SUM, COUNT(*), AVG, MIN and MAX; compute "
                     f"{name.upper()} with batch SQL over the stream's sink output.")
    aggregate_query = bool(stmt.groupClause) or stmt.havingClause is not None or \
        any(_contains_aggregate(t.val) for t in targets)
    if not aggregate_query:
        return
    if stmt.havingClause is not None and not stmt.groupClause:
        raise SQLSemanticError("GROUP BY required for HAVING", byte_offset=offset(stmt.havingClause))
    if any(_is_star(t) for t in targets):
        raise _unsupported("stream SQL aggregate query does not support star projection", offset(targets[0]))
    for node in _func_calls([t.val for t in targets] + [stmt.havingClause]):
        name = _func_name(node)
        if name == "count" and not node.agg_star:
            raise SQLUnsupportedError("stream SQL only supports COUNT(*)", byte_offset=offset(node),
                                      hint="Use COUNT(*), or SUM(CASE WHEN x IS NOT NULL THEN 1 ELSE 0 END).")
        if name in _AGGS and node.agg_distinct:
            raise _unsupported("stream SQL does not support DISTINCT aggregates", offset(node))
    if not any(_contains_aggregate(t.val) for t in targets) and not _contains_aggregate(stmt.havingClause):
        raise SQLSemanticError("stream SQL aggregate query requires at least one aggregate output",
                               byte_offset=offset(stmt))
    if isinstance(stmt.havingClause, ast.BoolExpr):
        raise _unsupported("stream SQL HAVING does not support AND/OR", offset(stmt.havingClause))


def _func_calls(nodes):
    for node in nodes:
        if node is None:
            continue
        if isinstance(node, ast.FuncCall):
            yield node
        if isinstance(node, ast.Node):
            yield from _func_calls(getattr(node, a) for a in node.__slots__ if not a.startswith("_"))
        elif isinstance(node, (list, tuple)):
            yield from _func_calls(node)


class _StreamCatalog:
    """The Session catalog with the FROM name bound to the stream's plan (for the planner)."""

    def __init__(self, catalog, name: str, node):
        self._catalog = catalog
        self._name = name
        self._entry = _PlannedEntry(name, node)

    def find(self, name):
        return self._entry if name.lower() == self._name.lower() else self._catalog.find(name)

    def lookup(self, name, byte_offset=None):
        return self._entry if name.lower() == self._name.lower() else self._catalog.lookup(name, byte_offset)

    def names(self):
        return self._catalog.names()


class _PlannedEntry:
    kind = "batch"
    stream = False

    def __init__(self, name, node):
        self.name = name
        self._node = node

    def plan(self):
        return self._node

    @property
    def schema(self):
        return self._node.schema


def prepare_stream_statement(session, sql: str, entry_point: str) -> StreamStatement:
    """Check ``sql`` for ``entry_point`` (``stream_sql``, ``start_stream_sql`` or
    ``explain_stream_sql``) and return how to plan it."""
    from ..sql import parser
    from ..sql.planner import SelectPlanner

    parsed = parser.parse(sql)

    def offset(node):
        return parser.node_offset(parsed, node)
    stmt = parsed.stmt
    sink_name = sink_entry = None
    if isinstance(stmt, ast.InsertStmt):
        if entry_point == "stream_sql":
            raise _unsupported("streamSql only supports SELECT", offset(stmt))
        select = stmt.selectStmt
        if not isinstance(select, ast.SelectStmt) or select.valuesLists:
            raise _unsupported("startStreamSql only supports INSERT INTO ... SELECT", offset(stmt))
        if stmt.cols:
            raise _unsupported("stream SQL does not support INSERT column list", offset(stmt.cols[0]))
        sink_name = stmt.relation.relname
        sink_entry = _resolve_sink(session.context.catalog, sink_name, offset(stmt.relation))
    elif isinstance(stmt, ast.SelectStmt):
        if entry_point == "start_stream_sql":
            raise _unsupported("startStreamSql only supports INSERT INTO ... SELECT", offset(stmt))
        select = stmt
    else:
        msg = {"stream_sql": "streamSql only supports SELECT",
               "start_stream_sql": "startStreamSql only supports INSERT INTO ... SELECT"}.get(
            entry_point, "explainStreamSql only supports SELECT or INSERT INTO ... SELECT")
        raise _unsupported(msg, offset(stmt))
    # source validation runs before the shape checks (native order)
    source_entry = None
    if select.op == enums.SetOperation.SETOP_NONE and select.fromClause and \
            isinstance(select.fromClause[0], ast.RangeVar) and len(select.fromClause) == 1:
        rv = select.fromClause[0]
        source_entry = _resolve_source(session.context.catalog, rv.relname, offset(rv))
    _check_shape(parsed, select, offset)
    rv = select.fromClause[0]
    source_name = rv.relname
    window = parsed.ext.window
    if window is not None and window.qualifier is not None and \
            window.qualifier not in (source_name, rv.alias.aliasname if rv.alias else None):
        raise SQLSemanticError(f"stream SQL qualifier does not match source: {window.qualifier}",
                               byte_offset=window.offset)
    plain = dataclasses.replace(parsed, ext=dataclasses.replace(parsed.ext, window=None))
    stream_df = source_entry.frame

    def planner(schema: pa.Schema) -> StreamPlan:
        node = stream_df._plan_over(schema, source_name)
        if window is not None:
            node = window_node(node, window.time_column, window.every_ms, window.slide_ms, window.output, sql=True)
        root = SelectPlanner(_StreamCatalog(session.context.catalog, source_name, node), plain, offset).plan(select)
        if sink_entry is not None:
            declared = sink_entry.frame.columns
            if declared and len(declared) != len(root.schema):
                raise SQLSemanticError(f"INSERT INTO {sink_name} SELECT produces {len(root.schema)} columns "
                                       f"{root.schema.names}, the sink declares {len(declared)} {declared}",
                                       hint="INSERT maps columns by position: select exactly the sink's columns.")
        return StreamPlan(root, source_name=source_name, sink_name=sink_name)

    if stream_df is None:
        raise VelariaError(f"stream view {source_name} has no stream behind it")
    return StreamStatement(source_name, source_entry, sink_name, sink_entry, planner,
                           has_order_by=bool(select.sortClause))
