"""Lowering of the aggregates that take constant options besides their argument:
``QUANTILE_CONT(x, q)``, PostgreSQL's ``PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x)`` (the
same aggregate) and ``STRING_AGG(x[, sep] [ORDER BY x [ASC|DESC]])``.

The options must be constants (after folding, so a bind parameter counts): they are kept on
the :class:`~velaria.plan.expr.AggregateCall` (``param``), not evaluated per row.
"""
from __future__ import annotations

from pglast import ast, enums

from ..errors import SQLSemanticError, SQLUnsupportedError
from ..plan import types as T
from ..plan.expr import AggregateCall, Cast, Expr, Literal, render
from ..reference import decimals as D
from ..reference import functions as F
from ..reference.aggregate import aggregate_result_type
from .lower_decimal import decimal_aggregate_arg

__all__ = ["PARAMETRIC_AGGREGATES", "lower_parametric_aggregate"]

#: the SQL names lowered here (PERCENTILE_CONT becomes QUANTILE_CONT)
PARAMETRIC_AGGREGATES = ("quantile_cont", "percentile_cont", "string_agg")


def lower_parametric_aggregate(lowerer, name: str, node: ast.FuncCall) -> AggregateCall:
    """``node`` (a call of one of :data:`PARAMETRIC_AGGREGATES`) as an AggregateCall;
    ``lowerer`` is the ExprLowerer of the clause it stands in."""
    def err(cls, message, at=node, hint=None):
        offset = lowerer.offset(at)
        return cls(message, hint=hint, byte_offset=lowerer.offset(node) if offset is None else offset)

    args = list(node.args or ())
    if node.agg_star:
        raise err(SQLSemanticError, f"{name.upper()}(*) is not valid; only COUNT(*) is")
    if name == "string_agg":
        return _string_agg(lowerer, node, args, err)
    if name == "percentile_cont":
        if not node.agg_within_group or len(args) != 1 or len(node.agg_order or ()) != 1:
            raise err(SQLSemanticError, "PERCENTILE_CONT is written PERCENTILE_CONT(fraction) WITHIN GROUP "
                                        "(ORDER BY x)", hint="or QUANTILE_CONT(x, fraction)")
        sort = node.agg_order[0]
        value_node, fraction_node = sort.node, args[0]
        descending = sort.sortby_dir == enums.SortByDir.SORTBY_DESC
    else:
        if node.agg_order or node.agg_within_group:
            raise err(SQLUnsupportedError, "not supported: ORDER BY inside QUANTILE_CONT",
                      hint="the values are sorted anyway; drop the ORDER BY")
        if len(args) != 2:
            raise err(SQLSemanticError, "QUANTILE_CONT expects 2 arguments: QUANTILE_CONT(x, fraction)")
        value_node, fraction_node = args
        descending = False
    arg = decimal_aggregate_arg("quantile_cont", lowerer.aggregate_argument("quantile_cont", value_node, node))
    try:
        rtype = aggregate_result_type("quantile_cont", arg.type)
    except SQLSemanticError as exc:
        raise exc.with_offset(lowerer.offset(node))
    fraction = _constant(lowerer, fraction_node, node)
    if not (T.is_numeric(fraction.type) and not D.is_decimal(fraction.type)) or fraction.value is None \
            or not 0.0 <= float(fraction.value) <= 1.0:
        raise err(SQLSemanticError, f"the fraction of {name.upper()} must be a number between 0 and 1, "
                                    f"got {render(fraction)}", at=fraction_node)
    q = float(fraction.value)
    # the q-th value in descending order is the (1 - q)-th in ascending order
    return AggregateCall(type=rtype, func="quantile_cont", arg=arg, distinct=bool(node.agg_distinct),
                         param=1.0 - q if descending else q)


def _string_agg(lowerer, node: ast.FuncCall, args: list, err) -> AggregateCall:
    if not 1 <= len(args) <= 2:
        raise err(SQLSemanticError, "STRING_AGG expects 1 or 2 arguments: STRING_AGG(x[, separator])")
    arg = _as_text(lowerer.aggregate_argument("string_agg", args[0], node), err)
    separator = ","                         # DuckDB's default for the one-argument form
    if len(args) == 2:
        sep = _constant(lowerer, args[1], node)
        if not T.is_string(sep.type) or sep.value is None:
            raise err(SQLSemanticError, f"the separator of STRING_AGG must be a text constant, got {render(sep)}",
                      at=args[1])
        separator = sep.value
    order = None
    if node.agg_order:
        sort = node.agg_order[0]
        key = lowerer.aggregate_argument("string_agg", sort.node, node)
        if len(node.agg_order) != 1 or render(_as_text(key, err)) != render(arg):
            raise err(SQLUnsupportedError, "STRING_AGG ... ORDER BY must sort by the aggregated value itself",
                      at=sort, hint="write STRING_AGG(x, sep ORDER BY x [DESC]); without ORDER BY the values "
                                    "are joined in input order")
        if sort.sortby_dir == enums.SortByDir.SORTBY_USING:
            raise err(SQLUnsupportedError, "ORDER BY ... USING is not supported", at=sort)
        order = "desc" if sort.sortby_dir == enums.SortByDir.SORTBY_DESC else "asc"
    return AggregateCall(type=T.STRING, func="string_agg", arg=arg, distinct=bool(node.agg_distinct),
                         param=(separator, order))


def _as_text(arg: Expr, err) -> Expr:
    """The STRING_AGG argument as text: other types are converted as ``CAST(x AS VARCHAR)``."""
    if T.is_string(arg.type) or T.is_null(arg.type):
        return arg
    try:
        return Cast(type=F.cast_result_type(arg.type, "STRING"), arg=arg, target="STRING")
    except SQLSemanticError:
        raise err(SQLSemanticError, f"STRING_AGG expects a text argument, got {T.type_name(arg.type)}",
                  hint="convert it to text first") from None


def _constant(lowerer, at, call) -> Literal:
    """The option ``at`` lowered; it must be a constant."""
    e = lowerer.aggregate_argument("option", at, call)
    if not isinstance(e, Literal):
        offset = lowerer.offset(at)
        raise SQLSemanticError("an aggregate option (the fraction, the separator) must be a constant",
                               byte_offset=lowerer.offset(call) if offset is None else offset)
    return e

