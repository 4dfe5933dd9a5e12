"""Lowering of the date and time syntax: typed literals (``DATE '2024-01-02'``,
``TIMESTAMP '...'``, ``INTERVAL '1 day'``, ``INTERVAL '90' DAY``), ``EXTRACT(field FROM x)``,
``date_part`` and ``date_trunc``.

A cast of a text constant to a date type is folded into a typed constant here, so a bad
literal is an error at ``Session.sql()`` that points at it, and the kernels see a plain
constant. The field of ``EXTRACT`` / ``date_part`` / ``date_trunc`` must be a text constant:
it decides the result type (``epoch`` is DOUBLE), so it is checked and normalised at plan time.
"""
from __future__ import annotations

from pglast import ast

from ..errors import ExecutionError, SQLSemanticError
from ..plan import types as T
from ..plan.expr import Call, Cast, Expr, Literal
from ..reference import dates as D
from ..reference import functions as F

__all__ = ["temporal_target", "lower_temporal_cast", "DATE_FUNCTIONS", "lower_date_function"]

#: declared type names (after the planner's aliases) that are temporal cast targets
_TARGETS = {"DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "DATETIME": "TIMESTAMP",
            "TIMESTAMPTZ": "TIMESTAMPTZ", "INTERVAL": "INTERVAL"}


def temporal_target(target: str) -> str | None:
    """``DATE``, ``TIMESTAMP``, ``TIMESTAMPTZ`` or ``INTERVAL`` for a temporal type name."""
    return _TARGETS.get(target.upper())


def _interval_unit(lowerer, node: ast.TypeCast) -> str | None:
    mods = node.typeName.typmods
    if not mods:
        return None
    first = mods[0]
    mask = first.val.ival if isinstance(first, ast.A_Const) and isinstance(first.val, ast.Integer) else None
    unit = D.interval_field_unit(mask) if mask is not None else None
    if unit is None:
        raise lowerer._err(SQLSemanticError, "only INTERVAL 'n' YEAR|MONTH|DAY|HOUR|MINUTE|SECOND is supported",
                           node, hint="write the whole interval as text: INTERVAL '1 year 2 months'")
    return unit


def lower_temporal_cast(lowerer, node: ast.TypeCast, arg: Expr, target: str) -> Expr:
    """``CAST(arg AS DATE|TIMESTAMP|TIMESTAMPTZ|INTERVAL)``; a text constant becomes a typed
    constant now."""
    if lowerer.offset(node) is None:      # DATE '...' has no position of its own: its type name has
        node = ast.TypeCast(arg=node.arg, typeName=node.typeName, location=node.typeName.location)
    try:
        rtype = D.cast_type(arg.type, target)
    except SQLSemanticError as exc:
        raise exc.with_offset(lowerer.offset(node))
    unit = _interval_unit(lowerer, node) if target == "INTERVAL" else None
    if isinstance(arg, Literal) and (arg.value is None or isinstance(arg.value, str)):
        if arg.value is None:
            return Literal(type=rtype, value=None)
        try:
            value = (D.parse_interval_text(arg.value, unit) if target == "INTERVAL"
                     else D.cast_temporal(arg.value, target))
        except ExecutionError as exc:
            raise lowerer._err(SQLSemanticError, str(exc), node,
                               hint="dates are 'YYYY-MM-DD', timestamps 'YYYY-MM-DD HH:MM:SS[.ffffff]', "
                                    "intervals '1 day' or '2 hours 30 minutes'")
        return Literal(type=rtype, value=value)
    if unit is not None:
        raise lowerer._err(SQLSemanticError, f"INTERVAL ... {unit.upper()} needs a constant", node,
                           hint="multiply instead: x * INTERVAL '1 day' is not supported; build the text")
    return Cast(type=rtype, arg=arg, target=target)


#: SQL names -> canonical function of the field-first date functions
DATE_FUNCTIONS = {"extract": "date_part", "date_part": "date_part", "datepart": "date_part",
                  "date_trunc": "date_trunc", "datetrunc": "date_trunc"}


def lower_date_function(lowerer, name: str, node: ast.FuncCall) -> Expr:
    """``EXTRACT(field FROM x)``, ``date_part('field', x)``, ``date_trunc('part', x)``."""
    canonical = DATE_FUNCTIONS[name]
    args = list(node.args or ())
    if len(args) != 2:
        raise lowerer._err(SQLSemanticError, f"{name} expects 2 arguments", node,
                           hint=f"{name}('month', x)" if name != "extract" else "EXTRACT(month FROM x)")
    field = lowerer.lower(args[0])
    if not (isinstance(field, Literal) and isinstance(field.value, str)):
        raise lowerer._err(SQLSemanticError, f"the field of {name} must be a text constant such as 'month'",
                           args[0])
    value = lowerer.lower(args[1])
    allowed = D.TRUNC_PARTS if canonical == "date_trunc" else set(D.DATE_PARTS) | {"epoch"}
    try:
        part = D.normal_part(field.value, allowed, name)
        if part == "epoch":
            return lowerer._call("epoch", [value], node)
        rtype = F.SCALAR_FUNCTIONS[canonical].result_type([T.STRING, value.type])
    except SQLSemanticError as exc:
        raise exc.with_offset(lowerer.offset(node))
    return Call(type=rtype, name=canonical, args=(Literal(type=T.STRING, value=part), value))
