"""SELECT planning: from a pglast ``SelectStmt`` to a typed plan tree.

Clause order follows SQL: FROM (scan / join) -> WHERE -> [HYBRID SEARCH] -> GROUP BY +
aggregates -> HAVING -> SELECT list -> DISTINCT -> ORDER BY -> OFFSET/LIMIT; UNION combines
planned branches. Every name is resolved and every expression typed here, so errors surface at
``Session.sql()`` time with a byte offset into the user's text.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import pyarrow as pa
from pglast import ast, enums

from ..errors import SQLSemanticError, SQLTableKindError, SQLUnsupportedError
from ..plan import logical as L
from ..plan import types as T
from ..plan.expr import AggregateCall, Call, Cast, Column, Expr, Subquery, WindowCall, render, walk
from .lower_expr import AGGREGATES, ExprLowerer, function_name
from .lower_window import window_definitions
from .depth import children, nested_query
from .scope import Scope, ScopeColumn
from .shallow import deep_recursion, shallow_plan
from .subquery import (Correlation, CorrelatingScope, OuterAwareScope, attach_subqueries, filter_with_subqueries,
                       lower_sublink, split_correlation)

__all__ = ["SelectPlanner", "cast_columns", "plan_select", "rename_columns"]

_V1 = "not supported in SQL v1: "


@dataclass
class _Item:
    """One SELECT-list item after lowering."""
    expr: Expr
    name: str
    node: object


def _sql_literal_int(node, what: str, offset) -> int | None:
    if node is None:
        return None
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
        return int(node.val.ival)
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Float) and node.val.fval.isdigit():
        return int(node.val.fval)  # past 2**31 the parser keeps the digits as a Float node
    if isinstance(node, ast.A_Const) and node.isnull:
        return None
    raise SQLSemanticError(f"{what} expects a numeric literal.", byte_offset=offset(node))


def _schema(names: list[str], exprs: list[Expr]) -> pa.Schema:
    return pa.schema([pa.field(n, e.type if not T.is_null(e.type) else T.NULL) for n, e in zip(names, exprs)])


def rename_columns(node: L.Node, names: list[str]) -> L.Node:
    """``node`` under a Project that renames its leading columns to ``names`` (at most as
    many as it has; the rest keep their names)."""
    names = list(names) + [f.name for f in node.schema][len(names):]
    exprs = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(node.schema)]
    return L.Project(schema=_schema(names, exprs), input=node, exprs=exprs)


def _cast_target(t: pa.DataType) -> str:
    """The CAST target name that produces type ``t``'s family."""
    f = T.family(t)
    if T.is_date(f) or T.is_timestamp(f) or T.is_interval(f):
        return T.type_name(f)          # DATE, TIMESTAMP, TIMESTAMPTZ, INTERVAL
    return {T.INT: "INT", T.FLOAT: "DOUBLE", T.STRING: "STRING", T.BOOL: "BOOL"}.get(f, "STRING")


def cast_columns_expr(e: Expr, t: pa.DataType) -> Expr:
    """``e`` cast to ``t`` (a wider type of the same family or its numeric widening)."""
    return Cast(type=t, arg=e, target=_cast_target(t))


def cast_columns(node: L.Node, types: list[pa.DataType]) -> L.Node:
    """Wrap ``node`` in a Project that casts its columns to ``types`` where they differ."""
    exprs, changed = [], False
    for i, (f, t) in enumerate(zip(node.schema, types)):
        col = Column(type=f.type, index=i, name=f.name)
        if f.type.equals(t) or T.is_null(t):
            exprs.append(col)
        else:
            changed = True
            exprs.append(Cast(type=t, arg=col, target=_cast_target(t)))
    if not changed:
        return node
    return L.Project(schema=pa.schema([pa.field(f.name, t) for f, t in zip(node.schema, types)]),
                     input=node, exprs=exprs)


def _same_time_type(la: Expr, rb: Expr) -> tuple[Expr, Expr]:
    """Join keys of a DATE and a TIMESTAMP (or timestamps of two units) cast to their common
    type, so that equal instants hash alike."""
    temporal = [T.is_date(e.type) or T.is_timestamp(e.type) for e in (la, rb)]
    if not all(temporal) or la.type.equals(rb.type):
        return la, rb
    t = T.common_type([la.type, rb.type], "JOIN keys")
    return tuple(e if e.type.equals(t) else cast_columns_expr(e, t) for e in (la, rb))


class SelectPlanner:
    """Plans one SELECT (possibly a UNION tree) against a Session catalog."""

    def __init__(self, catalog, parsed, offset):
        self.catalog = catalog
        self.parsed = parsed
        self.offset = offset  # pglast node -> byte offset in the original SQL (or None)
        # WITH queries in scope, innermost last: name -> (CommonTableExpr, the WITH queries
        # visible from its own body -- only those defined before it: WITH is not recursive)
        self._ctes: list[dict[str, tuple]] = []
        # the correlation of the subquery whose SELECT is planned next (taken by _plan_simple)
        self._pending_corr: Correlation | None = None
        self._subqueries = 0

    # ------------------------------------------------------------------ subqueries in expressions
    def next_subquery_id(self) -> int:
        self._subqueries += 1
        return self._subqueries

    def _lower_sublink(self, node, lowerer) -> Expr:
        return lower_sublink(self, node, lowerer)

    def plan_subquery(self, stmt: ast.SelectStmt, outer: Scope) -> tuple[L.Node, Correlation]:
        """Plan a subquery of an expression whose outer query's input is ``outer``: its
        value columns, then one column per correlation key (see :mod:`.subquery`)."""
        corr = Correlation(outer=outer)
        simple = stmt.op == enums.SetOperation.SETOP_NONE and stmt.withClause is None and not stmt.valuesLists
        if simple:
            self._pending_corr = corr
        try:
            plan = self.plan(stmt, top=False)
        finally:
            self._pending_corr = None
        return plan, corr

    # ------------------------------------------------------------------ top level
    def plan(self, stmt: ast.SelectStmt, top: bool = True) -> L.Node:
        """The plan of the query ``stmt`` (the statement's own, or one nested in it)."""
        with nested_query():
            return self._plan_query(stmt, top)

    def _plan_query(self, stmt: ast.SelectStmt, top: bool) -> L.Node:
        ext = self.parsed.ext
        if top and getattr(ext, "window", None) is not None:
            raise SQLUnsupportedError(_V1 + "WINDOW BY ... EVERY ... AS ... is only supported in stream SQL",
                                      error_type="unsupported_sql_feature",
                                      hint="Use Session.stream_sql / start_stream_sql for windowed queries.",
                                      byte_offset=getattr(ext.window, "offset", None))
        if stmt.withClause is not None:
            return self._with(stmt, top)
        if stmt.op != enums.SetOperation.SETOP_NONE:
            return self._plan_setop(stmt, top)
        if stmt.valuesLists:
            raise SQLUnsupportedError(_V1 + "VALUES lists are only supported in INSERT INTO ... VALUES",
                                      byte_offset=self.offset(stmt))
        return self._plan_simple(stmt, hybrid=ext.hybrid_search if top else None,
                                 keyword=getattr(ext, "keyword_search", None) if top else None)

    # ------------------------------------------------------------------ WITH
    def _with(self, stmt: ast.SelectStmt, top: bool) -> L.Node:
        """Plan ``WITH a AS (...), b AS (...) <body>``: each reference to ``a`` in the body
        (or in a later WITH query) is planned from ``a``'s query again, i.e. inlined."""
        scope: dict[str, tuple] = {}
        for cte in stmt.withClause.ctes:
            if cte.ctename in scope:
                raise SQLSemanticError(f"WITH query name {cte.ctename} specified more than once",
                                       hint="Give each WITH query its own name.", byte_offset=self.offset(cte))
            scope[cte.ctename] = (cte, self._ctes + [dict(scope)])
        body = copy.copy(stmt)
        body.withClause = None
        self._ctes.append(scope)
        try:
            return self._plan_query(body, top)        # the body is not one more nested query
        finally:
            self._ctes.pop()

    def _cte(self, name: str):
        """The (CommonTableExpr, visible scopes) that ``name`` refers to, or None."""
        for scope in reversed(self._ctes):
            if name in scope:
                return scope[name]
        return None

    def _plan_cte(self, rv: ast.RangeVar, found) -> tuple[L.Node, Scope]:
        cte, visible = found
        saved, self._ctes = self._ctes, visible
        try:
            node = self.plan(cte.ctequery, top=False)
        finally:
            self._ctes = saved
        node = self._rename(node, cte.aliascolnames, f"WITH query {cte.ctename}", cte)
        alias = rv.alias.aliasname if rv.alias is not None else cte.ctename
        return node, Scope.from_schema(node.schema, alias)

    def _rename(self, node: L.Node, names, what: str, where) -> L.Node:
        """``node`` with its leading columns renamed to ``names`` (``x(a, b)`` column aliases)."""
        if not names:
            return node
        names = [n.sval for n in names]
        if len(names) > len(node.schema):
            raise SQLSemanticError(f"{what} has {len(node.schema)} columns available but {len(names)} "
                                   "columns specified", byte_offset=self.offset(where))
        return rename_columns(node, names)

    def _derived(self, item: ast.RangeSubselect) -> tuple[L.Node, Scope]:
        """``(SELECT ...) AS alias(cols)`` in FROM, planned in place."""
        node = self.plan(item.subquery, top=False)
        alias = item.alias.aliasname if item.alias is not None else None
        names = item.alias.colnames if item.alias is not None else None
        node = self._rename(node, names, f"subquery {alias or ''}".rstrip(), item)
        return node, Scope.from_schema(node.schema, alias)

    # ------------------------------------------------------------------ UNION
    def _setop_branches(self, stmt: ast.SelectStmt) -> list[ast.SelectStmt]:
        """The branches of a chain ``a UNION b UNION c ...`` of one kind (ALL or distinct),
        collected without recursion so that a 1000-way UNION ALL plans as one node."""
        branches = []
        node = stmt
        while True:
            branches.append(node.rarg)
            left = node.larg
            if not (left.op == stmt.op and left.all == stmt.all and not left.sortClause
                    and left.limitCount is None and left.limitOffset is None and left.withClause is None):
                branches.append(left)
                break
            node = left
        branches.reverse()
        return branches

    def _plan_setop(self, stmt: ast.SelectStmt, top: bool) -> L.Node:
        S = enums.SetOperation
        op = {S.SETOP_UNION: "UNION", S.SETOP_INTERSECT: "INTERSECT", S.SETOP_EXCEPT: "EXCEPT"}[stmt.op]
        if top and self.parsed.ext.hybrid_search is not None:
            raise SQLUnsupportedError(_V1 + f"{op} does not support HYBRID SEARCH in branch query")
        if top and getattr(self.parsed.ext, "keyword_search", None) is not None:
            raise SQLUnsupportedError(_V1 + f"{op} does not support KEYWORD SEARCH in branch query")
        # INTERSECT / EXCEPT are binary (the parser already nested them by precedence)
        branches = self._setop_branches(stmt) if op == "UNION" else [stmt.larg, stmt.rarg]
        # branches are not nested queries: a long chain is bounded by the expression depth limit
        plans = [self._plan_query(b, False) for b in branches]
        first = plans[0]
        for b, p in zip(branches[1:], plans[1:]):
            if len(p.schema) != len(first.schema):
                raise SQLSemanticError(f"{op} requires the same number of projected columns",
                                       hint=f"left has {len(first.schema)}, right has {len(p.schema)}.",
                                       byte_offset=self.offset(b))
        types = []
        for i, lf in enumerate(first.schema):
            column = [p.schema.field(i).type for p in plans]
            try:
                t = T.common_type(column, f"{op} column {i + 1} ({lf.name})")
            except TypeError as exc:
                raise SQLSemanticError(str(exc), hint="CAST both sides to one type.", byte_offset=self.offset(stmt))
            t = t if not T.is_null(t) else T.NULL
            # Keep the original type where every branch has exactly it (no needless casts); a
            # narrower first type (int32, float32) with a wider other one widens to the family.
            if T.family(lf.type).equals(t) and all(c.equals(lf.type) or T.is_null(c) for c in column):
                t = lf.type
            types.append(t)
        inputs = [cast_columns(p, types) for p in plans]
        schema = pa.schema([pa.field(f.name, t) for f, t in zip(first.schema, types)])
        if op == "UNION":
            node: L.Node = L.Union(schema=schema, inputs=inputs, distinct=not stmt.all)
        else:
            node = L.SetOp(schema=schema, inputs=inputs, kind=op.lower(), all=bool(stmt.all))
        # ORDER BY / LIMIT written after a set operation apply to its whole result (PostgreSQL rules).
        if stmt.sortClause:
            scope = Scope.from_schema(schema)
            keys, desc, nf = self._order_keys(stmt.sortClause, scope, [f.name for f in schema], None)
            node = L.Sort(schema=schema, input=node, keys=keys, descending=desc, nulls_first=nf)
        return self._limit(stmt, node)

    # ------------------------------------------------------------------ FROM
    def _from(self, stmt) -> tuple[L.Node, Scope]:
        if not stmt.fromClause:
            return L.OneRow(schema=pa.schema([])), Scope([])
        node, scope = self._from_item(stmt.fromClause[0])
        for item in stmt.fromClause[1:]:          # FROM a, b: the cross join (WHERE filters it)
            right, rscope = self._from_item(item)
            node = L.Join(schema=pa.schema(list(node.schema) + list(right.schema)), left=node, right=right,
                          how="inner")
            scope = scope.concat(rscope)
        return node, scope

    def _from_item(self, item) -> tuple[L.Node, Scope]:
        if isinstance(item, ast.RangeVar):
            return self._table(item)
        if isinstance(item, ast.JoinExpr):
            return self._join(item)
        if isinstance(item, ast.RangeSubselect):
            return self._derived(item)
        if isinstance(item, ast.RangeFunction):
            # A table function such as read_csv('x.csv') is DuckDB's spelling; say how files get
            # into a query here instead of the generic subquery message.
            raise SQLUnsupportedError(
                "table function in FROM: functions such as read_csv('...') are not tables here.",
                error_type="unsupported_sql_feature",
                hint="Register the file first: CREATE TABLE t USING csv OPTIONS(path: 'data.csv') "
                     "(or parquet, json, line, arrow), or Session.read_csv(path) then "
                     "create_temp_view('t', frame); then SELECT ... FROM t.",
                byte_offset=self.offset(item))
        if isinstance(item, ast.RangeTableSample):
            raise SQLUnsupportedError("TABLESAMPLE is not supported", error_type="unsupported_sql_feature",
                                      hint="Filter the rows instead, e.g. WHERE id % 10 = 0.",
                                      byte_offset=self.offset(item))
        raise SQLUnsupportedError("subquery: Subquery in FROM not supported.", error_type="unsupported_sql_feature",
                                  hint="Materialize as a temp view, then query it.", byte_offset=self.offset(item))

    def _table(self, rv: ast.RangeVar) -> tuple[L.Node, Scope]:
        name = rv.relname
        found = self._cte(name) if rv.schemaname is None else None
        if found is not None:
            return self._plan_cte(rv, found)
        entry = self.catalog.lookup(name, byte_offset=self.offset(rv))
        if entry.kind == "sink":
            raise SQLTableKindError(f"table-kind constraint violation: SELECT from SINK table is not allowed: {name}",
                                    byte_offset=self.offset(rv))
        if entry.kind == "source" and entry.stream:
            raise SQLTableKindError(f"table-kind constraint violation: batch SQL cannot read stream SOURCE TABLE: {name}",
                                    hint="Query it with Session.stream_sql.", byte_offset=self.offset(rv))
        plan = entry.plan()
        alias = rv.alias.aliasname if rv.alias is not None else name
        return plan, Scope.from_schema(plan.schema, alias)

    _JOIN_KINDS = {enums.JoinType.JOIN_INNER: "inner", enums.JoinType.JOIN_LEFT: "left",
                   enums.JoinType.JOIN_RIGHT: "right", enums.JoinType.JOIN_FULL: "full"}

    def _join(self, j: ast.JoinExpr) -> tuple[L.Node, Scope]:
        """``a [INNER|LEFT|RIGHT|FULL|CROSS] JOIN b [ON cond | USING (cols)]``, NATURAL too.

        ``ON``'s conjuncts of the form ``left_expr = right_expr`` become hashed keys; every
        other conjunct is a residual predicate on the joined row. ``USING`` / NATURAL
        columns appear once, first (COALESCE of both sides for FULL), as in PostgreSQL.
        """
        how = self._JOIN_KINDS.get(j.jointype)
        if how is None:
            raise SQLUnsupportedError("Only INNER, LEFT, RIGHT, FULL and CROSS joins are supported.",
                                      error_type="unsupported_sql_feature", byte_offset=self.offset(j))
        left, lscope = self._from_item(j.larg)
        right, rscope = self._from_item(j.rarg)
        scope = lscope.concat(rscope)
        lkeys, rkeys, residual, with_subquery = [], [], [], []
        using = self._using_names(j, lscope, rscope)
        if using is not None:
            for name in using:
                lkeys.append(lscope.resolve([name], self.offset(j)))
                rkeys.append(rscope.resolve([name], self.offset(j)))
                self._check_key_types(lkeys[-1], rkeys[-1], j)
        elif j.quals is not None:
            for c in self._conjuncts(j.quals):
                if _has_sublink(c):
                    with_subquery.append(self._on_subquery_conjunct(c, scope, how))
                    continue
                pair = self._equi_key(c, lscope, rscope)
                if pair is None:
                    residual.append(ExprLowerer(scope, self.offset, clause="JOIN ON").lower(c))
                    if not (T.is_bool(residual[-1].type) or T.is_null(residual[-1].type)):
                        raise SQLSemanticError(f"JOIN ON condition must be boolean, got "
                                               f"{T.type_name(residual[-1].type)}", byte_offset=self.offset(c))
                else:
                    lkeys.append(pair[0])
                    rkeys.append(pair[1])
        elif how != "inner":               # pglast only lets CROSS JOIN through without ON
            raise SQLSemanticError(f"{how.upper()} JOIN needs an ON or USING condition",
                                   hint="Add ON a.k = b.k, or write CROSS JOIN.", byte_offset=self.offset(j))
        pred = None
        if residual:
            pred = residual[0] if len(residual) == 1 else \
                ExprLowerer(scope, self.offset)._balanced("and", residual, j)
        schema = pa.schema(list(left.schema) + list(right.schema))
        node: L.Node = L.Join(schema=schema, left=left, right=right, left_keys=lkeys, right_keys=rkeys, how=how,
                              residual=pred)
        if with_subquery:      # an inner join: those conjuncts filter the joined pairs, as in WHERE
            node = filter_with_subqueries(node, ExprLowerer(scope, self.offset)._balanced("and", with_subquery, j)
                                          if len(with_subquery) > 1 else with_subquery[0])
        if using is not None:
            return self._merge_using(node, scope, using, lkeys, rkeys, how, len(left.schema))
        return node, scope

    def _on_subquery_conjunct(self, c, scope: Scope, how: str) -> Expr:
        """A conjunct of an INNER JOIN's ON that holds a subquery, lowered over the joined row:
        it filters the pairs after the join, exactly as the same conjunct in WHERE would. An
        outer join pads the rows the whole condition rejects, so moving the conjunct would
        change the result: that is an error with the rewrite."""
        if how != "inner":
            raise SQLUnsupportedError(
                f"subquery: a subquery in the ON condition of a {how.upper()} JOIN is not supported",
                error_type="unsupported_sql_feature", byte_offset=self.offset(c),
                hint="Compute it in a derived table of one side, e.g. LEFT JOIN (SELECT u.*, u.k IN "
                     "(SELECT ...) AS m FROM u) u2 ON t.k = u2.k AND u2.m, or use an INNER JOIN.")
        e = ExprLowerer(scope, self.offset, clause="JOIN ON", subquery=self._lower_sublink).lower(c)
        if not (T.is_bool(e.type) or T.is_null(e.type)):
            raise SQLSemanticError(f"JOIN ON condition must be boolean, got {T.type_name(e.type)}",
                                   byte_offset=self.offset(c))
        return e

    @staticmethod
    def _conjuncts(node) -> list:
        out, todo = [], [node]
        while todo:                                   # iterative: long AND chains
            n = todo.pop()
            if isinstance(n, ast.BoolExpr) and n.boolop == enums.BoolExprType.AND_EXPR:
                todo.extend(reversed(n.args))
            else:
                out.append(n)
        return out

    def _check_key_types(self, la: Expr, rb: Expr, where) -> None:
        try:
            T.common_type([la.type, rb.type], "JOIN keys")
        except TypeError as exc:
            raise SQLSemanticError(str(exc), hint="CAST one side so both keys have one type.",
                                   byte_offset=self.offset(where))

    def _equi_key(self, c, lscope: Scope, rscope: Scope) -> tuple[Expr, Expr] | None:
        """(left key, right key) when conjunct ``c`` is ``left_expr = right_expr`` (either
        order), else None (the conjunct is a residual condition)."""
        if not (isinstance(c, ast.A_Expr) and c.kind == enums.A_Expr_Kind.AEXPR_OP and c.name[-1].sval == "="
                and c.lexpr is not None):
            return None
        for a, b in ((c.lexpr, c.rexpr), (c.rexpr, c.lexpr)):
            try:
                la = ExprLowerer(lscope, self.offset, clause="JOIN ON").lower(a)
                rb = ExprLowerer(rscope, self.offset, clause="JOIN ON").lower(b)
            except SQLSemanticError:
                continue
            if not any(isinstance(n, Column) for n in walk(la)) or not any(isinstance(n, Column) for n in walk(rb)):
                return None               # a constant side: a filter, not a key
            self._check_key_types(la, rb, c)
            return _same_time_type(la, rb)
        return None

    def _using_names(self, j: ast.JoinExpr, lscope: Scope, rscope: Scope) -> list[str] | None:
        if j.usingClause:
            names = [n.sval for n in j.usingClause]
            if len(set(names)) != len(names):
                raise SQLSemanticError("a column name is listed more than once in USING", byte_offset=self.offset(j))
            return names
        if j.isNatural:
            right = {c.name for c in rscope.columns}
            return [c.name for c in lscope.columns if c.name in right]
        return None

    def _merge_using(self, join: L.Join, scope: Scope, using, lkeys, rkeys, how, nl) -> tuple[L.Node, Scope]:
        """The USING columns once, first (left value; right for RIGHT; COALESCE for FULL), then
        every column of both sides. The sides' own copies stay reachable qualified
        (``a.k``); unqualified ``k`` and ``*`` see the merged column only."""
        from ..plan.expr import Case
        merged, cols = [], []
        for name, lk, rk in zip(using, lkeys, rkeys):
            rcol = Column(type=rk.type, index=rk.index + nl, name=rk.name)
            t = T.common_type([lk.type, rk.type], "USING column")
            if how == "full":
                e = Case(type=t, whens=((Call(type=T.BOOL, name="is_not_null", args=(lk,)), lk),), else_=rcol)
            else:
                e = rcol if how == "right" else lk
            if not e.type.equals(t):
                e = cast_columns_expr(e, t)
            merged.append(e)
            cols.append(ScopeColumn(None, name, t, len(merged) - 1))
        width = len(merged)
        keep = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(join.schema)]
        hidden = {lk.index for lk in lkeys} | {rk.index + nl for rk in rkeys}
        for c in scope.columns:
            cols.append(dataclasses.replace(c, index=c.index + width, hidden=c.index in hidden))
        exprs = merged + keep
        names = list(using) + [f.name for f in join.schema]
        return L.Project(schema=_schema(names, exprs), input=join, exprs=exprs), Scope(cols)

    # ------------------------------------------------------------------ one SELECT
    def _plan_simple(self, stmt: ast.SelectStmt, hybrid=None, keyword=None) -> L.Node:
        corr, self._pending_corr = self._pending_corr, None    # this SELECT's, not its FROM items'
        if stmt.intoClause is not None:
            raise SQLUnsupportedError(_V1 + "SELECT INTO", hint="Use CREATE TABLE t (...) and INSERT INTO t SELECT ...",
                                      byte_offset=self.offset(stmt))
        node, scope = self._from(stmt)
        if not stmt.fromClause and (stmt.whereClause is not None or stmt.groupClause or stmt.havingClause):
            raise SQLSemanticError("SELECT without FROM only supports literal and scalar projection",
                                   byte_offset=self.offset(stmt))
        where_scope = scope
        if corr is not None:       # a subquery: outer names resolve in WHERE, and only there
            where_scope = CorrelatingScope(scope.columns, corr.outer)
            scope = OuterAwareScope(scope.columns, corr.outer)
        # WHERE
        if stmt.whereClause is not None:
            pred = ExprLowerer(where_scope, self.offset, clause="WHERE",
                               subquery=self._lower_sublink).lower(stmt.whereClause)
            if not (T.is_bool(pred.type) or T.is_null(pred.type)):
                raise SQLSemanticError(f"WHERE condition must be boolean, got {T.type_name(pred.type)}",
                                       byte_offset=self.offset(stmt.whereClause))
            if corr is not None:
                pred = split_correlation(pred, corr, self.offset(stmt.whereClause))
            if pred is not None:
                node = filter_with_subqueries(node, pred)
        if corr is not None and corr.inner_keys and (stmt.limitCount is not None or stmt.limitOffset is not None):
            raise SQLUnsupportedError("subquery: LIMIT / OFFSET in a correlated subquery is not supported",
                                      error_type="unsupported_sql_feature",
                                      hint="Aggregate instead, e.g. (SELECT MAX(y) FROM s WHERE s.k = t.k).",
                                      byte_offset=self.offset(stmt.targetList[0]))
        # KEYWORD SEARCH, then HYBRID SEARCH, run after WHERE and before projection; their
        # scores are visible afterwards.
        if keyword is not None:
            node, scope = self._keyword(node, scope, keyword, stmt)
        if hybrid is not None:
            node, scope = self._hybrid(node, scope, hybrid, stmt)
        # SELECT list (lowered against the input scope; aggregates collected)
        targets = self._expand_targets(stmt, scope)
        agg_lowerer = ExprLowerer(scope, self.offset, allow_aggregates=True, clause="SELECT",
                                  windows=window_definitions(stmt, self.offset), subquery=self._lower_sublink)
        items: list[_Item] = []
        for pos, (rt, star_col) in enumerate(targets, start=1):
            if star_col is not None:
                items.append(_Item(star_col, star_col.name, rt))
                continue
            expr = agg_lowerer.lower(rt.val)
            items.append(_Item(expr, rt.name or self._default_name(rt.val, expr, pos), rt))
        names = [i.name for i in items]
        has_aggs = bool(agg_lowerer.aggregates)
        if keyword is not None and has_aggs:
            raise SQLUnsupportedError(_V1 + "KEYWORD SEARCH does not support aggregate queries",
                                      byte_offset=getattr(keyword, "offset", None))
        if hybrid is not None and has_aggs:
            raise SQLUnsupportedError(_V1 + "HYBRID SEARCH does not support aggregate queries",
                                      byte_offset=getattr(hybrid, "offset", None))
        having_aggs = []
        having = None
        if stmt.havingClause is not None:
            hl = ExprLowerer(self._alias_scope(scope, items), self.offset, allow_aggregates=True, clause="HAVING",
                             subquery=self._lower_sublink)
            having = hl.lower(stmt.havingClause)
            having_aggs = hl.aggregates
        grouped = bool(stmt.groupClause) or has_aggs or bool(having_aggs)
        if corr is not None and corr.inner_keys:
            self._correlated_outputs(stmt, corr, items, grouped, having is not None)
            names = [i.name for i in items]
        if grouped:
            return self._plan_aggregate(stmt, node, scope, items, having,
                                        extra_keys=corr.inner_keys if corr is not None else ())
        if stmt.havingClause is not None:
            raise SQLSemanticError("HAVING used without aggregate", byte_offset=self.offset(stmt.havingClause))
        # plain projection (+ hidden ORDER BY columns), window functions computed first
        node, exprs = self._plan_windows(node, [i.expr for i in items])
        node, exprs = attach_subqueries(node, exprs)
        return self._finish(stmt, node, scope, exprs, names, post_scope_builder=None)

    def _correlated_outputs(self, stmt, corr: Correlation, items: list[_Item], grouped: bool, having: bool) -> None:
        """A correlated subquery's SELECT also returns its correlation keys (after its own
        columns), so that the outer query can join on them."""
        if any(isinstance(n, WindowCall) for i in items for n in walk(i.expr)):
            raise SQLUnsupportedError("subquery: window functions in a correlated subquery are not supported",
                                      error_type="unsupported_sql_feature", byte_offset=self.offset(stmt))
        if grouped and not stmt.groupClause:
            corr.global_aggregate = [i.expr for i in items]
            corr.having = having
        for k, e in enumerate(corr.inner_keys):
            items.append(_Item(e, f"__correlation_{k}", None))

    # ------------------------------------------------------------------ window functions
    def _plan_windows(self, node: L.Node, exprs: list[Expr]) -> tuple[L.Node, list[Expr]]:
        """Move the window functions of ``exprs`` into one Window node over ``node``; return
        it with ``exprs`` re-expressed over its output (the input columns keep their
        positions; each distinct window function is one appended column)."""
        if not any(isinstance(n, WindowCall) for e in exprs for n in walk(e)):
            return node, exprs
        width = len(node.schema)
        calls: list[WindowCall] = []
        seen: dict[str, int] = {}

        def extract(e: Expr) -> Expr:
            if isinstance(e, WindowCall):
                k = seen.setdefault(render(e), len(calls))
                if k == len(calls):
                    calls.append(e)
                return Column(type=e.type, index=width + k, name=f"__window_{k}")
            return _rebuild(e, extract)
        new_exprs = [extract(e) for e in exprs]
        schema = pa.schema(list(node.schema) + [pa.field(f"__window_{k}", c.type) for k, c in enumerate(calls)])
        return L.Window(schema=schema, input=node, functions=calls), new_exprs

    def _expand_targets(self, stmt, scope: Scope):
        """[(ResTarget, Column-or-None)]: ``*`` / ``t.*`` expanded to Column items."""
        out = []
        for rt in stmt.targetList or ():
            val = rt.val
            if isinstance(val, ast.ColumnRef) and isinstance(val.fields[-1], ast.A_Star):
                # `SELECT *, expr` is allowed (PostgreSQL does; upstream rejects it).
                if len(val.fields) == 2:
                    q = val.fields[0].sval
                    cols = [c for c in scope.columns if c.qualifier and c.qualifier.lower() == q.lower()]
                    if not cols:
                        raise SQLSemanticError(f"unknown table or alias: {q}", byte_offset=self.offset(val))
                else:
                    if not stmt.fromClause:
                        raise SQLSemanticError("SELECT * requires a FROM clause", byte_offset=self.offset(val))
                    cols = [c for c in scope.columns if not c.hidden]   # USING: merged columns once
                for c in cols:
                    out.append((rt, Column(type=c.type, index=c.index, name=c.name)))
            else:
                out.append((rt, None))
        if not out:
            raise SQLSemanticError("SELECT list is empty", byte_offset=self.offset(stmt))
        return out

    def _alias_scope(self, scope: Scope, items: list[_Item]) -> Scope:
        """HAVING sees the input columns and, failing those, the SELECT aliases
        (upstream: ``HAVING total > 20`` where ``total`` is ``SUM(x) AS total``)."""
        return _AliasScope(scope.columns, {i.name: i.expr for i in items})

    def _default_name(self, node, expr: Expr, pos: int) -> str:
        """Default output name."""
        if isinstance(node, ast.ColumnRef):
            return node.fields[-1].sval
        if isinstance(node, ast.FuncCall):
            name, _ = function_name(node.funcname)
            args = node.args or ()
            if node.over is not None:
                return name                   # PostgreSQL: a window function is named after itself
            if name in AGGREGATES:
                if name == "count":
                    return "count"
                if args and isinstance(args[0], ast.ColumnRef):
                    return f"{name}_{args[0].fields[-1].sval}"
                return f"{name}_{pos}"
            from ..reference.functions import SCALAR_FUNCTIONS
            fn = SCALAR_FUNCTIONS.get(name)
            base = getattr(fn, "base_name", None) or name
            if args and isinstance(args[0], ast.ColumnRef):
                f = [x.sval for x in args[0].fields if isinstance(x, ast.String)]
                return f"{base}_{'_'.join(f[-2:])}"
            if args and isinstance(args[0], ast.A_Const) and isinstance(args[0].val, ast.String):
                return f"{base}_{args[0].val.sval}"
            return f"{base}_{pos}"
        if isinstance(node, ast.TypeCast) and isinstance(node.arg, ast.ColumnRef):
            return f"cast_{node.arg.fields[-1].sval}"
        if isinstance(node, ast.SQLValueFunction):
            return "today" if node.op == enums.SQLValueFunctionOp.SVFOP_CURRENT_DATE else "current_timestamp"
        return f"expr{pos}"

    # ------------------------------------------------------------------ aggregation
    def _plan_aggregate(self, stmt, node: L.Node, scope: Scope, items: list[_Item], having,
                        extra_keys=()) -> L.Node:
        # group keys: a column, an expression, an output alias, or a 1-based position
        keys: list[Expr] = []
        key_names: list[str] = []
        for g in stmt.groupClause or ():
            if isinstance(g, ast.A_Const) and isinstance(g.val, ast.Integer):
                p = g.val.ival
                if not 1 <= p <= len(items):
                    raise SQLSemanticError(f"GROUP BY position {p} is not in select list",
                                           byte_offset=self.offset(g))
                expr, kname = items[p - 1].expr, items[p - 1].name
            elif isinstance(g, ast.ColumnRef) and len(g.fields) == 1 and isinstance(g.fields[0], ast.String) \
                    and not scope.match(scope.columns, g.fields[0].sval) \
                    and any(i.name == g.fields[0].sval for i in items):
                item = next(i for i in items if i.name == g.fields[0].sval)
                expr, kname = item.expr, item.name
            else:
                if isinstance(g, (ast.GroupingSet,)):
                    raise SQLUnsupportedError(_V1 + "GROUPING SETS / ROLLUP / CUBE", byte_offset=self.offset(g))
                expr = ExprLowerer(scope, self.offset, clause="GROUP BY").lower(g)
                kname = expr.name if isinstance(expr, Column) else f"__group_expr_{len(keys) + 1}"
            if any(isinstance(n, AggregateCall) for n in walk(expr)):
                raise SQLSemanticError("aggregate functions are not allowed in GROUP BY", byte_offset=self.offset(g))
            if render(expr) not in [render(k) for k in keys]:
                keys.append(expr)
                key_names.append(kname)
        for k, expr in enumerate(extra_keys):      # a correlated subquery groups by its keys too
            if render(expr) not in [render(x) for x in keys]:
                keys.append(expr)
                key_names.append(f"__correlation_{k}")
        # aggregates from SELECT, HAVING and ORDER BY, deduplicated by their text
        aggs: list[AggregateCall] = []
        agg_index: dict[str, int] = {}

        def collect(e):
            for n in walk(e):
                if isinstance(n, AggregateCall) and render(n) not in agg_index:
                    agg_index[render(n)] = len(aggs)
                    aggs.append(n)
        for it in items:
            collect(it.expr)
        if having is not None:
            collect(having)
        # ORDER BY items that are aggregates not in SELECT
        order_exprs = []
        for sb in stmt.sortClause or ():
            if self._order_refers_output(sb.node, items) is None:
                e = ExprLowerer(scope, self.offset, allow_aggregates=True, clause="ORDER BY",
                                subquery=self._lower_sublink).lower(sb.node)
                collect(e)
                order_exprs.append(e)
            else:
                order_exprs.append(None)
        if not aggs and not keys:
            raise SQLSemanticError("aggregate query requires at least one aggregate function",
                                   byte_offset=self.offset(stmt))
        node = _attach_argument_subqueries(node, aggs)
        agg_schema = pa.schema([pa.field(n, k.type if not T.is_null(k.type) else T.NULL) for n, k in zip(key_names, keys)]
                               + [pa.field(f"__agg_{i}", a.type) for i, a in enumerate(aggs)])
        agg_node = L.Aggregate(schema=agg_schema, input=node, keys=keys, aggregates=aggs)
        key_text = {render(k): i for i, k in enumerate(keys)}
        nk = len(keys)

        def rewrite(e: Expr, where: str, src) -> Expr:
            """Re-express ``e`` over the Aggregate output (keys then aggregates)."""
            t = render(e)
            if t in key_text:
                i = key_text[t]
                return Column(type=agg_schema.field(i).type, index=i, name=key_names[i])
            if isinstance(e, AggregateCall):
                i = nk + agg_index[t]
                return Column(type=e.type, index=i, name=agg_schema.field(i).name)
            if isinstance(e, Column):
                msg = f"non-aggregate field must appear in GROUP BY: {e.name}" if where == "SELECT" else \
                    f"column {e.name} must appear in GROUP BY or be used in an aggregate function ({where})"
                raise SQLSemanticError(msg, hint=f"Add {e.name} to GROUP BY, or wrap it in an aggregate such as MIN({e.name}).",
                                       byte_offset=self.offset(src))
            return _rebuild(e, lambda c: rewrite(c, where, src))

        out_exprs = [rewrite(i.expr, "SELECT", i.node) for i in items]
        names = [i.name for i in items]
        result: L.Node = agg_node
        if having is not None:
            # HAVING may also name SELECT aliases (upstream: HAVING total > 20)
            pred = rewrite(having, "HAVING", stmt.havingClause)
            result = filter_with_subqueries(result, pred, origin="having")
        post_scope = Scope([ScopeColumn(None, f.name, f.type, i) for i, f in enumerate(agg_schema)])
        hidden = [rewrite(e, "ORDER BY", sb) if e is not None else None
                  for e, sb in zip(order_exprs, stmt.sortClause or ())]
        result, out_exprs = self._plan_windows(result, out_exprs)   # windows run after GROUP BY / HAVING
        result, out_exprs = attach_subqueries(result, out_exprs)
        return self._finish(stmt, result, post_scope, out_exprs, names, post_scope_builder=None,
                            presolved_order=hidden)

    # ------------------------------------------------------------------ projection, ORDER BY, LIMIT
    def _order_refers_output(self, node, items) -> int | None:
        """Index of the SELECT item an ORDER BY key names (alias, column name or position)."""
        if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
            p = node.val.ival
            if not 1 <= p <= len(items):
                raise SQLSemanticError(f"ORDER BY position {p} is not in select list", byte_offset=self.offset(node))
            return p - 1
        if isinstance(node, ast.ColumnRef) and len(node.fields) == 1 and isinstance(node.fields[0], ast.String):
            name = node.fields[0].sval
            matches = [i for i, it in enumerate(items) if it.name == name]
            if not matches:
                matches = [i for i, it in enumerate(items) if it.name.lower() == name.lower()]
            if matches:
                return matches[0]
        return None

    def _finish(self, stmt, node: L.Node, scope: Scope, exprs: list[Expr], names: list[str],
                post_scope_builder, presolved_order=None) -> L.Node:
        sort_keys, desc, nfirst = [], [], []
        hidden: list[Expr] = []
        for k, sb in enumerate(stmt.sortClause or ()):
            idx = self._order_refers_output(sb.node, [_Item(e, n, None) for e, n in zip(exprs, names)])
            if idx is None:
                if stmt.distinctClause is not None:
                    raise SQLSemanticError("for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                                           byte_offset=self.offset(sb))
                if presolved_order is not None and presolved_order[k] is not None:
                    e = presolved_order[k]
                else:
                    e = ExprLowerer(scope, self.offset, clause="ORDER BY", subquery=self._lower_sublink).lower(sb.node)
                hidden.append(e)
                idx = len(exprs) + len(hidden) - 1
            t = (exprs + hidden)[idx].type
            d, nf = self._direction(sb)
            sort_keys.append(Column(type=t, index=idx, name=(names + ["__order"] * len(hidden))[idx]))
            desc.append(d)
            nfirst.append(nf)
        # subqueries of the ORDER BY keys join onto the input (its columns keep their places)
        node, hidden = attach_subqueries(node, hidden)
        all_exprs = exprs + hidden
        all_names = names + [f"__order_{i}" for i in range(len(hidden))]
        proj = L.Project(schema=_schema(all_names, all_exprs), input=node, exprs=all_exprs)
        result: L.Node = proj
        if stmt.distinctClause is not None:
            if stmt.distinctClause != (None,) and any(d is not None for d in stmt.distinctClause):
                raise SQLUnsupportedError(_V1 + "SELECT DISTINCT ON", hint="Use GROUP BY.",
                                          byte_offset=self.offset(stmt))
            result = L.Distinct(schema=proj.schema, input=result)
        if sort_keys:
            result = L.Sort(schema=result.schema, input=result, keys=sort_keys, descending=desc, nulls_first=nfirst)
        result = self._limit(stmt, result)
        if hidden:
            keep = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(proj.schema) if i < len(exprs)]
            result = L.Project(schema=_schema(names, keep), input=result, exprs=keep)
        return result

    def _direction(self, sb: ast.SortBy) -> tuple[bool, bool]:
        SD, SN = enums.SortByDir, enums.SortByNulls
        if sb.sortby_dir == SD.SORTBY_USING:
            raise SQLUnsupportedError(_V1 + "ORDER BY ... USING", byte_offset=self.offset(sb))
        desc = sb.sortby_dir == SD.SORTBY_DESC
        if sb.sortby_nulls == SN.SORTBY_NULLS_FIRST:
            nf = True
        elif sb.sortby_nulls == SN.SORTBY_NULLS_LAST:
            nf = False
        else:
            nf = desc  # PostgreSQL default: NULLs are larger than every value
        return desc, nf

    def _order_keys(self, sort_clause, scope: Scope, names: list[str], _):
        keys, desc, nf = [], [], []
        items = [_Item(Column(type=c.type, index=c.index, name=c.name), c.name, None) for c in scope.columns]
        for sb in sort_clause:
            idx = self._order_refers_output(sb.node, items)
            if idx is None:
                e = ExprLowerer(scope, self.offset, clause="ORDER BY").lower(sb.node)
            else:
                e = items[idx].expr
            d, n = self._direction(sb)
            keys.append(e)
            desc.append(d)
            nf.append(n)
        return keys, desc, nf

    def _limit(self, stmt, node: L.Node) -> L.Node:
        if stmt.limitOption == enums.LimitOption.LIMIT_OPTION_WITH_TIES:
            raise SQLUnsupportedError(_V1 + "FETCH ... WITH TIES", byte_offset=self.offset(stmt))
        limit = _sql_literal_int(stmt.limitCount, "LIMIT", self.offset)
        offset = _sql_literal_int(stmt.limitOffset, "OFFSET", self.offset) or 0
        if limit is not None and limit < 0:
            raise SQLSemanticError("LIMIT must not be negative", byte_offset=self.offset(stmt.limitCount))
        if offset < 0:
            raise SQLSemanticError("OFFSET must not be negative", byte_offset=self.offset(stmt.limitOffset))
        if limit is None and offset == 0:
            return node
        if isinstance(node, L.Sort) and limit is not None:
            node.limit = limit + offset  # top-N: only the first limit+offset rows are ever needed
        return L.Limit(schema=node.schema, input=node, limit=limit, offset=offset)

    # ------------------------------------------------------------------ KEYWORD SEARCH
    def _keyword(self, node: L.Node, scope: Scope, spec, stmt) -> tuple[L.Node, Scope]:
        from ..vector import keyword as kw
        offset = getattr(spec, "offset", None)
        if _is_join(node):
            raise SQLUnsupportedError(_V1 + "KEYWORD SEARCH does not support JOIN queries", byte_offset=offset)
        if stmt.groupClause:
            raise SQLUnsupportedError(_V1 + "KEYWORD SEARCH does not support aggregate queries", byte_offset=offset)
        tokenizer = kw.validate_request(spec.query, spec.top_k)
        columns = tuple(scope.resolve([name], offset).name for name in spec.columns)
        if kw.SCORE_COLUMN in [f.name for f in node.schema]:
            raise SQLSemanticError(f"keywordSearch output column already exists: {kw.SCORE_COLUMN}",
                                   byte_offset=offset)
        schema = pa.schema(list(node.schema) + [pa.field(kw.SCORE_COLUMN, T.FLOAT)])
        ks = L.KeywordSearch(schema=schema, input=node, columns=columns, query=spec.query, top_k=spec.top_k,
                             tokenizer=tokenizer)
        new_scope = Scope(scope.columns + [ScopeColumn(None, kw.SCORE_COLUMN, T.FLOAT, len(node.schema))])
        return ks, new_scope

    # ------------------------------------------------------------------ HYBRID SEARCH
    def _hybrid(self, node: L.Node, scope: Scope, spec, stmt) -> tuple[L.Node, Scope]:
        if _is_join(node):
            raise SQLUnsupportedError(_V1 + "HYBRID SEARCH does not support JOIN queries",
                                      byte_offset=getattr(spec, "offset", None))
        if stmt.groupClause:
            raise SQLUnsupportedError(_V1 + "HYBRID SEARCH does not support aggregate queries",
                                      byte_offset=getattr(spec, "offset", None))
        metric = spec.metric.strip().lower()
        if metric not in ("cosine", "cosin", "dot", "l2"):
            raise SQLSemanticError(f"unsupported HYBRID SEARCH metric: {spec.metric}",
                                   hint="Use METRIC cosine, dot or l2.", byte_offset=getattr(spec, "offset", None))
        col = scope.resolve([spec.column], getattr(spec, "offset", None))
        if "vector_score" in [f.name for f in node.schema]:
            raise SQLSemanticError("hybridSearch output column already exists: vector_score")
        schema = pa.schema(list(node.schema) + [pa.field("vector_score", T.FLOAT)])
        hs = L.HybridSearch(schema=schema, input=node, column=col.name, query_text=spec.query_text,
                            metric=spec.metric, top_k=spec.top_k, score_threshold=spec.score_threshold)
        new_scope = Scope(scope.columns + [ScopeColumn(None, "vector_score", T.FLOAT, len(node.schema))])
        return hs, new_scope


def _is_join(node: L.Node) -> bool:
    """A FROM clause that joins (a JOIN ... USING is a Project over the Join)."""
    return isinstance(node, L.Join) or (isinstance(node, L.Project) and isinstance(node.input, L.Join))


class _AliasScope(Scope):
    def __init__(self, columns, aliases: dict):
        super().__init__(columns)
        self.aliases = aliases

    def resolve(self, parts, offset=None):
        try:
            return super().resolve(parts, offset)
        except SQLSemanticError:
            if len(parts) == 1 and parts[0] in self.aliases:
                return self.aliases[parts[0]]
            raise


def _rebuild(e: Expr, f) -> Expr:
    """``e`` with ``f`` applied to each direct child expression."""
    from ..plan.expr import Case, InList
    if isinstance(e, Call):
        return Call(type=e.type, name=e.name, args=tuple(f(a) for a in e.args))
    if isinstance(e, Case):
        return Case(type=e.type, whens=tuple((f(c), f(v)) for c, v in e.whens),
                    else_=f(e.else_) if e.else_ is not None else None)
    if isinstance(e, Cast):
        return Cast(type=e.type, arg=f(e.arg), target=e.target)
    if isinstance(e, InList):
        return InList(type=e.type, arg=f(e.arg), items=tuple(f(i) for i in e.items), negated=e.negated)
    if isinstance(e, WindowCall):
        return dataclasses.replace(e, args=tuple(f(a) for a in e.args), partition=tuple(f(p) for p in e.partition),
                                   order=tuple(f(o) for o in e.order))
    if isinstance(e, Subquery):
        return dataclasses.replace(e, arg=f(e.arg) if e.arg is not None else None,
                                   outer_keys=tuple(f(k) for k in e.outer_keys))
    return e


def plan_select(catalog, parsed, offset, stmt: ast.SelectStmt) -> L.Node:
    """Plan a statement's top-level SELECT: the planner runs with room for the documented
    nesting limit, and the result keeps every expression shallow (:mod:`.shallow`)."""
    with deep_recursion():
        plan = SelectPlanner(catalog, parsed, offset).plan(stmt, top=True)
        return shallow_plan(plan)       # recursive over the plan: a deep set-operation chain


def _has_sublink(node: ast.Node) -> bool:
    """True when a subquery appears anywhere under the parse-tree node ``node``."""
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, ast.SubLink):
            return True
        todo.extend(children(n))
    return False


def _attach_argument_subqueries(node: L.Node, aggs: list[AggregateCall]) -> L.Node:
    """Join the subqueries in aggregate arguments (``FILTER (WHERE x IN (SELECT ...))``
    included: it is part of the argument) onto the aggregate's input ``node``; the aggregates
    in ``aggs`` are replaced, in place, by ones that read the joined columns. ``node``'s own
    columns keep their positions, so the group keys stay valid."""
    with_subquery = [k for k, a in enumerate(aggs)
                     if a.arg is not None and any(isinstance(n, Subquery) for n in walk(a.arg))]
    if not with_subquery:
        return node
    node, args = attach_subqueries(node, [aggs[k].arg for k in with_subquery])
    for k, arg in zip(with_subquery, args):
        aggs[k] = dataclasses.replace(aggs[k], arg=arg)
    return node
