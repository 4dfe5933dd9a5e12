"""Lowering of pglast expression nodes to the typed IR (:mod:`velaria.plan.expr`).

Types are decided here, at plan time, through the reference function table
(``velaria.reference.functions``), so every query knows its output schema before running.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field, replace
from typing import Callable

from pglast import ast, enums

from ..errors import SQLSemanticError, SQLSyntaxError, SQLUnsupportedError
from ..plan import types as T
from ..plan.expr import AggregateCall, Call, Case, Cast, Expr, InList, Literal
from ..reference import functions as F
from ..reference.aggregate import AGGREGATE_ALIASES, AGGREGATE_FUNCTIONS, aggregate_result_type
from .lower_decimal import (decimal_aggregate_arg, decimal_branches, decimal_call, decimal_cast_type,
                            decimal_in_list, is_decimal_name)
from .lower_parametric import PARAMETRIC_AGGREGATES, lower_parametric_aggregate
from .lower_dates import DATE_FUNCTIONS, lower_date_function, lower_temporal_cast, temporal_target
from .fold import fold_temporal
from .scope import Scope

__all__ = ["ExprLowerer", "AGGREGATES", "normalize_type_name", "function_name"]

AGGREGATES = set(AGGREGATE_FUNCTIONS) | set(AGGREGATE_ALIASES) | set(PARAMETRIC_AGGREGATES)


_TYPE_ALIASES = {
    "FLOAT4": "FLOAT", "REAL": "FLOAT",
    "FLOAT8": "DOUBLE", "DOUBLE PRECISION": "DOUBLE", "NUMERIC": "DOUBLE", "DECIMAL": "DOUBLE",
    "INT2": "INT", "INT4": "INT", "INT8": "INT", "INTEGER": "INT", "INT64": "INT", "BIGINT": "INT",
    "SMALLINT": "INT",
    "BOOLEAN": "BOOL",
    "TEXT": "STRING", "VARCHAR": "STRING", "BPCHAR": "STRING", "CHAR": "STRING",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "DATETIME": "TIMESTAMP",
}

_COMPARISONS = {"=": "=", "<>": "!=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ARITH = {"+", "-", "*", "/", "%"}
_BITWISE = {"&", "|", "#", "<<", ">>"}


def _is_binary_operator(node) -> bool:
    """A binary ``a <op> b`` A_Expr (not a prefix operator, IN, LIKE, BETWEEN, ...)."""
    return (isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP
            and node.lexpr is not None and bool(node.name))


def normalize_type_name(type_name: ast.TypeName) -> str:
    """Upper-cased declared type with the schema prefix stripped and aliases folded."""
    names = [n.sval for n in type_name.names]
    raw = names[-1].upper()
    # an array type keeps its brackets, so no scalar type's rules apply to it by mistake
    return _TYPE_ALIASES.get(raw, raw) + ("[]" if type_name.arrayBounds else "")


def function_name(funcname) -> tuple[str, str]:
    """(canonical lower-case name, the name as written dot-joined) of a FuncCall."""
    written = ".".join(n.sval for n in funcname)
    name = funcname[-1].sval.lower()
    if name.startswith("velaria_"):
        name = name[len("velaria_"):]
    return name, written


@dataclass
class ExprLowerer:
    """Lowers expressions against ``scope``. ``offset`` maps a pglast location to a byte
    offset in the user's text (for error messages)."""

    scope: Scope
    offset: Callable[[object], int | None]
    allow_aggregates: bool = False
    clause: str = "SELECT"
    aggregates: list = field(default_factory=list)
    #: WINDOW definitions by name where window functions may appear (the SELECT list), else None
    windows: dict | None = None
    #: plans a subquery (``(node, lowerer) -> Subquery``) where subqueries may appear
    #: (WHERE, HAVING, the SELECT list, ORDER BY, aggregate arguments, an inner join's ON), else None
    subquery: Callable | None = None

    # ---------------------------------------------------------------- entry
    def lower(self, node) -> Expr:
        method = getattr(self, "_lower_" + type(node).__name__, None)
        if method is None:
            raise SQLUnsupportedError(f"not supported in SQL v1: expression {type(node).__name__} in {self.clause}",
                                      error_type="unsupported_sql_feature",
                                      hint="Use columns, literals, operators, CASE, CAST, scalar functions or aggregates.",
                                      byte_offset=self.offset(node))
        return method(node)

    def _err(self, cls, msg, node, hint=None, **kw):
        return cls(msg, hint=hint, byte_offset=self.offset(node), **kw)

    # ---------------------------------------------------------------- leaves
    def _lower_ColumnRef(self, node: ast.ColumnRef) -> Expr:
        parts = []
        for f in node.fields:
            if isinstance(f, ast.A_Star):
                raise self._err(SQLSemanticError, "* is only allowed as a whole SELECT item or in COUNT(*)", node)
            parts.append(f.sval)
        if len(parts) > 2:
            parts = parts[:2]
        return self.scope.resolve(parts, self.offset(node))

    def _lower_A_Const(self, node: ast.A_Const) -> Expr:
        if node.isnull:
            return Literal(type=T.NULL, value=None)
        v = node.val
        if isinstance(v, ast.Integer):
            return Literal(type=T.INT, value=int(v.ival))
        if isinstance(v, ast.Float):
            text = v.fval
            if text.lstrip("-").isdigit():
                iv = int(text)
                if -(2 ** 63) <= iv < 2 ** 63:
                    return Literal(type=T.INT, value=iv)
                # beyond BIGINT: DOUBLE only when that keeps the exact value
                if iv != int(float(iv)):
                    raise self._err(
                        SQLSemanticError, f"integer literal {text} does not fit BIGINT, and as "
                        f"a DOUBLE it would lose digits", node,
                        hint=f"Write it as text ('{text}') to keep every digit, or as a DOUBLE "
                             f"literal ({text}.0) if an approximation is fine.")
                return Literal(type=T.FLOAT, value=float(iv))
            value = float(text)
            if math.isinf(value):
                raise self._err(SQLSemanticError,
                                f"numeric literal {text} is out of range for DOUBLE", node,
                                hint="DOUBLE holds magnitudes up to about 1.8e308.")
            return Literal(type=T.FLOAT, value=value)
        if isinstance(v, ast.String):
            return Literal(type=T.STRING, value=v.sval)
        if isinstance(v, ast.Boolean):
            return Literal(type=T.BOOL, value=bool(v.boolval))
        raise self._err(SQLUnsupportedError, f"not supported in SQL v1: literal {type(v).__name__}", node)

    def _lower_TypeCast(self, node: ast.TypeCast) -> Expr:
        arg = self.lower(node.arg)
        if node.typeName.arrayBounds:       # INT[] would otherwise read as INT
            raise self._err(SQLUnsupportedError, "CAST to an array type is not supported", node,
                            hint="Cast to a scalar type such as BIGINT, DOUBLE or VARCHAR.")
        if is_decimal_name(node.typeName):
            try:
                rtype = decimal_cast_type(node.typeName)
            except SQLSemanticError as exc:
                raise exc.with_offset(self.offset(node))
            if not (T.is_numeric(arg.type) or T.is_string(arg.type) or T.is_bool(arg.type) or T.is_null(arg.type)):
                raise self._err(SQLSemanticError, f"cannot CAST {T.type_name(arg.type)} to DECIMAL", node,
                                hint="only numbers, text and booleans convert to DECIMAL")
            return Cast(type=rtype, arg=arg, target="DECIMAL")
        target = normalize_type_name(node.typeName)
        if temporal_target(target):
            return lower_temporal_cast(self, node, arg, temporal_target(target))
        try:
            rtype = F.cast_result_type(arg.type, target)
        except SQLSemanticError as exc:
            raise exc.with_offset(self.offset(node))
        return Cast(type=rtype, arg=arg, target=target)

    # ---------------------------------------------------------------- operators
    def _call(self, name: str, args: list[Expr], node) -> Call:
        try:
            done, args = decimal_call(name, args)   # DECIMAL operands: exact rules or a CAST
        except SQLSemanticError as exc:
            raise exc.with_offset(self.offset(node))
        if done is not None:
            return done
        try:  # operators and builtins carry their own type rules in the reference table
            fn = F.OPERATORS.get(name) or F.SCALAR_FUNCTIONS[name]
            rtype = fn.result_type([a.type for a in args])
        except SQLSemanticError as exc:
            raise exc.with_offset(self.offset(node))
        return fold_temporal(fn, rtype, args) or Call(type=rtype, name=name, args=tuple(args))

    def _lower_A_Expr(self, node: ast.A_Expr) -> Expr:
        kind = node.kind
        op = node.name[-1].sval if node.name else ""
        K = enums.A_Expr_Kind
        if kind == K.AEXPR_OP:
            if node.lexpr is None:  # prefix operator
                arg = self.lower(node.rexpr)
                if op == "-":
                    if isinstance(arg, Literal) and arg.value is not None and T.is_numeric(arg.type):
                        return Literal(type=arg.type, value=-arg.value)
                    return self._call("neg", [arg], node)
                if op == "+":
                    return arg
                if op == "~":
                    return self._call("bitnot", [arg], node)
                raise self._err(SQLUnsupportedError, f"not supported in SQL v1: prefix operator {op}", node)
            return self._binary_chain(node)
        if kind == K.AEXPR_IN:
            arg = self.lower(node.lexpr)
            items = [self.lower(i) for i in node.rexpr]
            arg, items = decimal_in_list(arg, items)
            try:
                T.common_type([arg.type] + [i.type for i in items], "IN list values")
            except TypeError as exc:
                raise self._err(SQLSemanticError, str(exc), node, hint="CAST the values to one type.")
            return InList(type=T.BOOL, arg=arg, items=tuple(items), negated=(op == "<>"))
        if kind in (K.AEXPR_LIKE, K.AEXPR_ILIKE):
            left = self.lower(node.lexpr)
            pattern, escape = node.rexpr, None
            if isinstance(pattern, ast.FuncCall) and function_name(pattern.funcname)[0] == "like_escape":
                pattern, escape = pattern.args  # x LIKE p ESCAPE e arrives as like_escape(p, e)
            right = self.lower(pattern)
            if kind == K.AEXPR_ILIKE:
                left = self._call("lower", [left], node)
                right = self._call("lower", [right], node)
            if escape is not None:
                like = self._call("like_escape", [left, right, self.lower(escape)], node)
            else:
                like = self._call("like", [left, right], node)
            return self._call("not", [like], node) if op.startswith("!") else like
        if kind in (K.AEXPR_BETWEEN, K.AEXPR_NOT_BETWEEN):
            arg = self.lower(node.lexpr)
            lo, hi = (self.lower(x) for x in node.rexpr)
            between = self._call("and", [self._call(">=", [arg, lo], node), self._call("<=", [arg, hi], node)], node)
            return self._call("not", [between], node) if kind == K.AEXPR_NOT_BETWEEN else between
        if kind == K.AEXPR_NULLIF:
            left, right = self.lower(node.lexpr), self.lower(node.rexpr)
            eq = self._call("=", [left, right], node)
            return Case(type=left.type, whens=((eq, Literal(type=T.NULL, value=None)),), else_=left)
        if kind == K.AEXPR_DISTINCT or kind == K.AEXPR_NOT_DISTINCT:
            raise self._err(SQLUnsupportedError, "not supported in SQL v1: IS [NOT] DISTINCT FROM", node,
                            hint="Use = / != together with IS NULL.")
        raise self._err(SQLUnsupportedError, "Unsupported WHERE operator.", node,
                        hint="Use =, !=, <, <=, >, or >=.")

    def _binary_chain(self, node: ast.A_Expr) -> Expr:
        """``a op b op c ...``: the left-deep chain of binary operators is lowered in a loop,
        bottom-up, so a generated 1000-term sum costs no recursion (right operands recurse)."""
        chain = []
        while _is_binary_operator(node):
            chain.append(node)
            node = node.lexpr
        result = self.lower(node)
        for link in reversed(chain):
            result = self._binary(link, result, self.lower(link.rexpr))
        return result

    def _binary(self, node: ast.A_Expr, left: Expr, right: Expr) -> Expr:
        op = node.name[-1].sval
        if op in _COMPARISONS:
            return self._call(_COMPARISONS[op], [left, right], node)
        if op in _ARITH or op in _BITWISE:
            return self._call(op, [left, right], node)
        if op == "||":
            return self._call("concat_op", [left, right], node)
        raise self._err(SQLUnsupportedError, f"Unsupported WHERE operator: {op}", node,
                        hint="Use =, !=, <, <=, >, >=, + - * / %, ||, & | # << >>, LIKE, IN or BETWEEN.")

    def _lower_BoolExpr(self, node: ast.BoolExpr) -> Expr:
        args = [self.lower(a) for a in node.args]
        B = enums.BoolExprType
        if node.boolop == B.NOT_EXPR:
            return self._call("not", args, node)
        name = "and" if node.boolop == B.AND_EXPR else "or"
        return self._balanced(name, args, node)

    def _balanced(self, name: str, args: list[Expr], node) -> Expr:
        """``a AND b AND c ...`` as a balanced tree of binary calls.

        Kleene AND / OR are associative and every operand is evaluated anyway, so the shape
        does not change any answer; a balanced tree keeps 10,000 ANDed predicates 14 levels
        deep instead of 10,000.
        """
        level = list(args)
        while len(level) > 1:
            paired = [self._call(name, [level[k], level[k + 1]], node)
                      for k in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                paired.append(level[-1])
            level = paired
        return level[0]

    def _lower_NullTest(self, node: ast.NullTest) -> Expr:
        arg = self.lower(node.arg)
        name = "is_null" if node.nulltesttype == enums.NullTestType.IS_NULL else "is_not_null"
        return self._call(name, [arg], node)

    def _lower_BooleanTest(self, node: ast.BooleanTest) -> Expr:
        arg = self.lower(node.arg)
        BT = enums.BoolTestType
        t = node.booltesttype
        truth = Literal(type=T.BOOL, value=t in (BT.IS_TRUE, BT.IS_NOT_TRUE))
        if t in (BT.IS_UNKNOWN, BT.IS_NOT_UNKNOWN):
            return self._call("is_null" if t == BT.IS_UNKNOWN else "is_not_null", [arg], node)
        # x IS TRUE  ==  coalesce(x = TRUE, FALSE)
        eq = self._call("=", [arg, truth], node)
        res = Case(type=T.BOOL, whens=((self._call("is_null", [arg], node), Literal(type=T.BOOL, value=False)),),
                   else_=eq)
        return self._call("not", [res], node) if t in (BT.IS_NOT_TRUE, BT.IS_NOT_FALSE) else res

    def _lower_CaseExpr(self, node: ast.CaseExpr) -> Expr:
        subject = self.lower(node.arg) if node.arg is not None else None
        whens = []
        for w in node.args:
            cond = self.lower(w.expr)
            if subject is not None:
                cond = self._call("=", [subject, cond], w)
            elif not (T.is_bool(cond.type) or T.is_null(cond.type)):
                raise self._err(SQLSemanticError, "CASE WHEN condition must be boolean", w)
            whens.append((cond, self.lower(w.result)))
        else_ = self.lower(node.defresult) if node.defresult is not None else None
        branch_types = [v.type for _, v in whens] + ([else_.type] if else_ is not None else [])
        try:
            rtype = T.common_type(branch_types, "CASE branches")
        except TypeError as exc:
            raise self._err(SQLSemanticError, str(exc), node, hint="CAST the branches to one type.")
        values = [v for _, v in whens] + ([else_] if else_ is not None else [])
        try:
            rtype, values = decimal_branches(values, rtype)
        except SQLSemanticError as exc:
            raise exc.with_offset(self.offset(node))
        whens = [(c, v) for (c, _), v in zip(whens, values)]
        else_ = values[-1] if else_ is not None else None
        return Case(type=rtype, whens=tuple(whens), else_=else_)

    def _lower_CoalesceExpr(self, node: ast.CoalesceExpr) -> Expr:
        args = [self.lower(a) for a in node.args]
        try:
            rtype = T.common_type([a.type for a in args], "COALESCE arguments")
        except TypeError as exc:
            raise self._err(SQLSemanticError, str(exc), node, hint="CAST the arguments to one type.")
        try:
            rtype, args = decimal_branches(args, rtype)
        except SQLSemanticError as exc:
            raise exc.with_offset(self.offset(node))
        whens = tuple((self._call("is_not_null", [a], node), a) for a in args[:-1])
        return Case(type=rtype, whens=whens, else_=args[-1])

    def _lower_MinMaxExpr(self, node: ast.MinMaxExpr) -> Expr:
        name = "greatest" if node.op == enums.MinMaxOp.IS_GREATEST else "least"
        return self._call(name, [self.lower(a) for a in node.args], node)

    def _lower_SQLValueFunction(self, node: ast.SQLValueFunction) -> Expr:
        op = node.op
        S = enums.SQLValueFunctionOp
        if op == S.SVFOP_CURRENT_DATE:
            return self._call("current_date", [], node)
        if op in (S.SVFOP_CURRENT_TIMESTAMP, S.SVFOP_CURRENT_TIMESTAMP_N, S.SVFOP_LOCALTIMESTAMP,
                  S.SVFOP_LOCALTIMESTAMP_N):
            return self._call("now", [], node)
        raise self._err(SQLUnsupportedError, "Unsupported SQL value function.", node)

    def _lower_SubLink(self, node: ast.SubLink) -> Expr:
        if self.subquery is None:
            raise self._err(SQLUnsupportedError, f"subquery: subqueries are not supported in {self.clause}", node,
                            error_type="unsupported_sql_feature",
                            hint="Use subqueries in WHERE, HAVING or the SELECT list, or join a derived table.")
        return self.subquery(node, self)

    def _lower_FuncCall(self, node: ast.FuncCall) -> Expr:
        name, written = function_name(node.funcname)
        if node.over is not None:
            from .lower_window import lower_window_call
            return lower_window_call(self, node, name)
        if name in AGGREGATES:
            return self._aggregate(name, node)
        self._no_aggregate_clauses(name, written, node)
        if name in DATE_FUNCTIONS:
            return lower_date_function(self, name, node)
        fn = F.SCALAR_FUNCTIONS.get(name)
        if fn is None:
            raise SQLSyntaxError(f"Unknown function: {written}", error_type="unsupported_function",
                                 hint=F.unknown_function_hint(name),
                                 byte_offset=self.offset(node))
        args = [self.lower(a) for a in (node.args or ())]
        if name == "position" and node.funcformat == enums.CoercionForm.COERCE_SQL_SYNTAX:
            args.reverse()  # POSITION(needle IN haystack) arrives as position(haystack, needle)
        if not (fn.min_args <= len(args) <= (fn.max_args if fn.max_args is not None else len(args))):
            raise self._err(SQLSemanticError, fn.arity_message, node)
        return self._call(fn.name, args, node)

    def _no_aggregate_clauses(self, name: str, written: str, node: ast.FuncCall) -> None:
        """A scalar function written with an aggregate's DISTINCT, ORDER BY, WITHIN GROUP or
        FILTER is an error (PostgreSQL's), never a call that silently ignores the clause."""
        clause = ("DISTINCT" if node.agg_distinct else "WITHIN GROUP" if node.agg_within_group
                  else "ORDER BY" if node.agg_order else "FILTER" if node.agg_filter is not None
                  else f"{written}(*)" if node.agg_star else None)
        if clause is not None:
            raise self._err(SQLSemanticError, f"{clause} specified, but {written} is not an aggregate function",
                            node, hint=f"Remove {'*' if node.agg_star else clause} from the call, or use an aggregate function.")

    def _aggregate(self, name: str, node: ast.FuncCall) -> Expr:
        name = AGGREGATE_ALIASES.get(name, name)
        if not self.allow_aggregates:
            where = "WHERE does not support aggregate expressions" if self.clause == "WHERE" else \
                f"aggregate functions are not allowed in {self.clause}"
            raise self._err(SQLSemanticError, where, node,
                            hint="Filter aggregates with HAVING." if self.clause == "WHERE" else None)
        if name in PARAMETRIC_AGGREGATES:
            agg = lower_parametric_aggregate(self, name, node)
        elif node.agg_star or (name == "count" and not node.args):
            if name != "count":
                raise self._err(SQLSemanticError, f"{name.upper()}(*) is not valid; only COUNT(*) is", node)
            agg = AggregateCall(type=T.INT, func="count", arg=None, distinct=False)
        else:
            if len(node.args) != 1:
                raise self._err(SQLSemanticError, f"{name.upper()} expects 1 argument", node)
            arg = decimal_aggregate_arg(name, self.aggregate_argument(name, node.args[0], node))
            try:
                rtype = aggregate_result_type(name, arg.type)
            except SQLSemanticError as exc:
                raise exc.with_offset(self.offset(node))
            agg = AggregateCall(type=rtype, func=name, arg=arg, distinct=bool(node.agg_distinct))
        if node.agg_order and name not in PARAMETRIC_AGGREGATES:
            raise self._err(SQLUnsupportedError, "not supported: ORDER BY inside an aggregate", node,
                            hint="Aggregates here do not depend on input order; drop the ORDER BY.")
        if node.agg_filter is not None:
            agg = self._filtered(agg, node)
        self.aggregates.append(agg)
        return agg

    def aggregate_argument(self, name: str, arg: ast.Node, call: ast.FuncCall) -> Expr:
        """``arg`` of the aggregate ``call`` lowered (columns of the input, no aggregate inside)."""
        inner = ExprLowerer(self.scope, self.offset, allow_aggregates=False, clause=f"{name.upper()}()",
                            subquery=self.subquery)
        try:
            return inner.lower(arg)
        except SQLSemanticError as exc:
            if "aggregate functions are not allowed" in exc.message:
                raise self._err(SQLSemanticError, "aggregate function calls cannot be nested", call)
            raise

    def _filtered(self, agg: AggregateCall, node: ast.FuncCall) -> AggregateCall:
        """``agg FILTER (WHERE c)`` as the same aggregate over ``CASE WHEN c THEN arg END``:
        every aggregate skips NULLs, so only the rows where ``c`` is TRUE count
        (``COUNT(*)`` becomes ``COUNT(CASE WHEN c THEN 1 END)``)."""
        inner = ExprLowerer(self.scope, self.offset, clause="FILTER", subquery=self.subquery)
        cond = inner.lower(node.agg_filter)
        if not (T.is_bool(cond.type) or T.is_null(cond.type)):
            raise self._err(SQLSemanticError, f"FILTER condition must be boolean, got {T.type_name(cond.type)}",
                            node.agg_filter)
        value = agg.arg if agg.arg is not None else Literal(type=T.INT, value=1)
        arg = Case(type=value.type, whens=((cond, value),), else_=None)
        return replace(agg, arg=arg)
