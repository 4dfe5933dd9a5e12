"""Subqueries inside expressions: lowering, correlation, and planning them as joins.

A subquery in WHERE, HAVING, the SELECT list, ORDER BY, an aggregate's argument or FILTER, or
an inner join's ON is lowered to a :class:`~velaria.plan.expr.Subquery` expression holding the
subquery's plan; before the clause's own node is built the planner replaces each one by a join
over the clause's input (:func:`attach_subqueries`, :func:`filter_with_subqueries`):

============================ ===================================================
``WHERE [NOT] EXISTS (...)``  semi join (anti join for NOT)
``WHERE x [NOT] IN (...)``    semi join (null-aware anti join for NOT IN)
EXISTS / IN elsewhere         mark join: a boolean column, TRUE / FALSE / NULL
scalar ``(SELECT ...)``       single join: the subquery's value per row, NULL when
                              it returns no row, an error when it returns two
============================ ===================================================

A *correlated* subquery refers to the outer query's columns. Supported: conjuncts
``inner_expr = outer_expr`` ANDed at the top of the subquery's WHERE. They become the
join's keys: the subquery is planned without them, exposing ``inner_expr`` as extra output
columns (as extra GROUP BY keys when it aggregates), and each outer row meets only the inner
rows whose keys equal its own. Every other use of an outer column is rejected with an error.
A correlated scalar aggregate without GROUP BY has a value over no rows (``COUNT`` gives 0,
the others NULL): that value is used where no inner row matches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
from pglast import ast, enums

from ..errors import SQLSemanticError, SQLUnsupportedError
from ..plan import logical as L
from ..plan import types as T
from ..plan.expr import AggregateCall, Call, Case, Column, Expr, Literal, OuterColumn, Subquery, conjuncts, walk
from .scope import Scope

__all__ = ["Correlation", "CorrelatingScope", "OuterAwareScope", "lower_sublink", "split_correlation",
           "attach_subqueries", "filter_with_subqueries", "empty_aggregate_value"]

_HINT_FORMS = ("Supported: scalar (SELECT ...), x [NOT] IN (SELECT ...), [NOT] EXISTS (SELECT ...); "
               "a correlated subquery may refer to the outer query only in inner = outer equalities "
               "ANDed in its WHERE.")


@dataclass
class Correlation:
    """What planning a (possibly correlated) subquery's SELECT learns, for the join."""
    outer: Scope                                    # the enclosing query's input columns
    inner_keys: list = field(default_factory=list)  # inner side of each correlation equality
    outer_keys: list = field(default_factory=list)  # outer side (Columns over ``outer``)
    global_aggregate: list | None = None            # output expressions of an aggregate without GROUP BY
    having: bool = False


class _WithOuter(Scope):
    """A subquery's own columns first; a name only the outer query has goes to
    :meth:`_outer_column`."""

    def __init__(self, columns, outer: Scope):
        super().__init__(columns)
        self.outer = outer

    def resolve(self, parts, offset=None):
        try:
            return super().resolve(parts, offset)
        except SQLSemanticError as inner:
            try:
                c = self.outer.resolve(parts, offset)
            except SQLSemanticError:
                raise inner from None
            return self._outer_column(c, parts, offset)

    def _outer_column(self, c: Column, parts, offset) -> Expr:
        raise NotImplementedError


class OuterAwareScope(_WithOuter):
    """Outside a subquery's WHERE an outer column is a clear error (outer columns may be
    used only in the correlation equalities of WHERE)."""

    def _outer_column(self, c, parts, offset):
        raise SQLUnsupportedError(
            f"subquery: correlated reference to {'.'.join(parts)} outside the subquery's WHERE "
            "is not supported", error_type="unsupported_sql_feature", hint=_HINT_FORMS, byte_offset=offset)


class CorrelatingScope(_WithOuter):
    """A subquery WHERE's scope: the outer query's columns resolve to :class:`OuterColumn`."""

    def _outer_column(self, c, parts, offset):
        return OuterColumn(type=c.type, index=c.index, name=c.name)


def _and(exprs: list[Expr]) -> Expr | None:
    result = None
    for e in exprs:
        result = e if result is None else Call(type=T.BOOL, name="and", args=(result, e))
    return result


def _has(e: Expr, cls) -> bool:
    return any(isinstance(n, cls) for n in walk(e))


def _outer_to_column(e: Expr) -> Expr:
    from .planner import _rebuild
    if isinstance(e, OuterColumn):
        return Column(type=e.type, index=e.index, name=e.name)
    return _rebuild(e, _outer_to_column)


def split_correlation(pred: Expr, corr: Correlation, offset) -> Expr | None:
    """Move the ``inner = outer`` conjuncts of a subquery's WHERE ``pred`` into ``corr``;
    return what is left of ``pred`` (None when nothing is)."""
    rest = []
    for c in conjuncts(pred):
        if not _has(c, OuterColumn):
            rest.append(c)
            continue
        if isinstance(c, Call) and c.name == "=":
            a, b = c.args
            for inner, outer in ((a, b), (b, a)):
                if not _has(inner, OuterColumn) and _has(outer, OuterColumn) and not _has(outer, Column):
                    try:
                        T.common_type([inner.type, outer.type], "correlated keys")
                    except TypeError as exc:
                        raise SQLSemanticError(str(exc), hint="CAST one side so both have one type.",
                                               byte_offset=offset) from None
                    corr.inner_keys.append(inner)
                    corr.outer_keys.append(_outer_to_column(outer))
                    break
            else:
                inner = None
            if inner is not None:
                continue
        raise SQLUnsupportedError("subquery: a correlated condition must be an equality between the "
                                  "subquery's columns and the outer query's, ANDed at the top of its WHERE",
                                  error_type="unsupported_sql_feature", hint=_HINT_FORMS, byte_offset=offset)
    return _and(rest)


def empty_aggregate_value(e: Expr) -> Expr:
    """``e`` (an aggregate query's output expression) evaluated over no input rows, as an
    expression of constants: COUNT gives 0, every other aggregate NULL."""
    from .planner import _rebuild
    if isinstance(e, AggregateCall):
        return Literal(type=e.type, value=0 if e.func == "count" else None)
    return _rebuild(e, empty_aggregate_value)


# ---------------------------------------------------------------------------- lowering

def lower_sublink(planner, node: ast.SubLink, lowerer) -> Expr:
    """The :class:`Subquery` expression of a parsed ``SubLink`` seen by ``lowerer``."""
    SL = enums.SubLinkType
    offset = planner.offset(node)
    kind = {SL.EXISTS_SUBLINK: "exists", SL.EXPR_SUBLINK: "scalar", SL.ANY_SUBLINK: "in"}.get(node.subLinkType)
    if kind is None:
        raise SQLUnsupportedError(f"subquery: {_sublink_name(node)} subqueries are not supported",
                                  error_type="unsupported_sql_feature",
                                  hint="Compare with a scalar subquery, e.g. x > (SELECT MAX(y) FROM t).",
                                  byte_offset=offset)
    arg = None
    if kind == "in":
        op = node.operName[-1].sval if node.operName else "="
        if op != "=":
            raise SQLUnsupportedError(f"subquery: x {op} ANY (SELECT ...) is not supported",
                                      error_type="unsupported_sql_feature",
                                      hint="Compare with a scalar subquery, e.g. x > (SELECT MIN(y) FROM t).",
                                      byte_offset=offset)
        if isinstance(node.testexpr, ast.RowExpr):
            raise SQLUnsupportedError("subquery: a row (a, b) IN (SELECT ...) is not supported",
                                      error_type="unsupported_sql_feature",
                                      hint="Write EXISTS (SELECT ... WHERE s.a = t.a AND s.b = t.b).",
                                      byte_offset=offset)
        arg = lowerer.lower(node.testexpr)
    plan, corr = planner.plan_subquery(node.subselect, Scope(list(lowerer.scope.columns)))
    nvis = len(plan.schema) - len(corr.inner_keys)
    if kind != "exists" and nvis != 1:
        raise SQLSemanticError(f"subquery must return only one column (it returns {nvis})",
                               hint="Select a single column in the subquery.", byte_offset=offset)
    if kind == "in":
        try:
            T.common_type([arg.type, plan.schema.field(0).type], "IN subquery values")
        except TypeError as exc:
            raise SQLSemanticError(str(exc), hint="CAST the values to one type.", byte_offset=offset) from None
    default = None
    if corr.global_aggregate is not None and corr.outer_keys:
        if kind != "scalar" or corr.having:
            raise SQLUnsupportedError("subquery: a correlated aggregate without GROUP BY is only supported "
                                      "as a scalar subquery without HAVING", error_type="unsupported_sql_feature",
                                      hint="Compare with a scalar subquery: x = (SELECT MAX(y) FROM s WHERE s.k = t.k).",
                                      byte_offset=offset)
        default = empty_aggregate_value(corr.global_aggregate[0])
    vtype = plan.schema.field(0).type if kind == "scalar" else T.BOOL
    return Subquery(type=vtype, kind=kind, plan=plan, arg=arg, outer_keys=tuple(corr.outer_keys),
                    default=default, text=f"#{planner.next_subquery_id()}")


def _sublink_name(node: ast.SubLink) -> str:
    SL = enums.SubLinkType
    return {SL.ALL_SUBLINK: "ALL (...)", SL.ARRAY_SUBLINK: "ARRAY (...)", SL.ROWCOMPARE_SUBLINK: "row comparison",
            SL.MULTIEXPR_SUBLINK: "multiple-assignment", SL.CTE_SUBLINK: "CTE"}.get(node.subLinkType, "these")


# ---------------------------------------------------------------------------- planning as joins

def _join(node: L.Node, s: Subquery, how: str, arg: Expr | None, outer_keys: list[Expr]) -> L.Join:
    """``node`` joined with the plan of ``s``: semi / anti keep ``node``'s schema, mark adds
    one boolean column, single adds the subquery's columns."""
    plan = s.plan
    nvis = len(plan.schema) - len(outer_keys)
    rkeys = [Column(type=plan.schema.field(nvis + i).type, index=nvis + i, name=plan.schema.field(nvis + i).name)
             for i in range(len(outer_keys))]
    lkeys = list(outer_keys)
    null_aware = 0
    if s.kind == "in":
        lkeys.append(arg)
        rkeys.append(Column(type=plan.schema.field(0).type, index=0, name=plan.schema.field(0).name))
        null_aware = 1
    if how in ("semi", "anti"):
        schema = node.schema
    elif how == "mark":
        schema = pa.schema(list(node.schema) + [pa.field(f"__subquery_{s.text[1:]}", T.BOOL)])
    else:
        schema = pa.schema(list(node.schema) + list(plan.schema))
    return L.Join(schema=schema, left=node, right=plan, left_keys=lkeys, right_keys=rkeys, how=how,
                  null_aware=null_aware)


def attach_subqueries(node: L.Node, exprs: list[Expr]) -> tuple[L.Node, list[Expr]]:
    """Join every subquery of ``exprs`` onto ``node`` (mark joins for EXISTS / IN, single
    joins for scalars); return the new node and ``exprs`` over it. ``node``'s columns keep
    their positions; each join appends its columns."""
    from .planner import _rebuild
    if not any(isinstance(n, Subquery) for e in exprs for n in walk(e)):
        return node, exprs
    current = [node]

    def extract(e: Expr) -> Expr:
        if not isinstance(e, Subquery):
            return _rebuild(e, extract)
        arg = extract(e.arg) if e.arg is not None else None
        keys = [extract(k) for k in e.outer_keys]
        width = len(current[0].schema)
        if e.kind == "scalar":
            current[0] = _join(current[0], e, "single", arg, keys)
            value = Column(type=e.type, index=width, name=f"__subquery_{e.text[1:]}")
            if e.default is None:
                return value
            key = current[0].schema.field(width + len(e.plan.schema) - len(keys))
            matched = Call(type=T.BOOL, name="is_not_null",
                           args=(Column(type=key.type, index=width + len(e.plan.schema) - len(keys), name=key.name),))
            return Case(type=e.type, whens=((matched, value),), else_=e.default)
        current[0] = _join(current[0], e, "mark", arg, keys)
        return Column(type=T.BOOL, index=width, name=f"__subquery_{e.text[1:]}")

    out = [extract(e) for e in exprs]
    return current[0], out


def filter_with_subqueries(node: L.Node, pred: Expr, origin: str = "where") -> L.Node:
    """``Filter(node, pred)`` where ``pred`` may hold subqueries: a top-level conjunct
    ``[NOT] EXISTS`` / ``[NOT] IN`` becomes a semi / anti join, the others are joined as
    mark / single joins, filtered, and projected back to ``node``'s columns."""
    if not _has(pred, Subquery):
        return L.Filter(schema=node.schema, input=node, predicate=pred, origin=origin)
    joins, rest = [], []
    for c in conjuncts(pred):
        negated = isinstance(c, Call) and c.name == "not"
        s = c.args[0] if negated else c
        if isinstance(s, Subquery) and s.kind in ("exists", "in") \
                and not any(_has(k, Subquery) for k in s.children()):
            joins.append(("anti" if negated else "semi", s))
        else:
            rest.append(c)
    result = node
    if rest:
        width = len(node.schema)
        result, (p,) = attach_subqueries(node, [_and(rest)])
        result = L.Filter(schema=result.schema, input=result, predicate=p, origin=origin)
        if len(result.schema) != width:
            keep = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(node.schema)]
            result = L.Project(schema=node.schema, input=result, exprs=keep)
    for how, s in joins:
        result = _join(result, s, how, s.arg, list(s.outer_keys))
    return result
