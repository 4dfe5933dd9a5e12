"""Typing of DECIMAL operands at plan time (the rules are in ``velaria.reference.decimals``).

Exact where the rules say so (``+ - * %``, negation, ``ABS``, comparisons, SUM / MIN / MAX,
CASE / COALESCE over decimals); everything else sees the decimal through an explicit CAST
the planner inserts, so the executor never meets a decimal it has no rule for: DOUBLE for
``/``, for an operation with a DOUBLE operand and for numeric functions; text for string
functions.
"""
from __future__ import annotations

import pyarrow as pa
from pglast import ast

from ..errors import SQLSemanticError
from ..plan import types as T
from ..plan.expr import Call, Cast, Expr
from ..reference import decimals as D
from ..reference import functions as F

__all__ = ["decimal_call", "decimal_in_list", "decimal_branches", "decimal_aggregate_arg", "decimal_cast_type", "is_decimal_name"]

_EXACT_ARITH = ("+", "-", "*", "%")
_SAME_TYPE = ("neg", "abs")
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_PASS = ("is_null", "is_not_null", "and", "or", "not")
_DECIMAL_NAMES = ("DECIMAL", "NUMERIC", "DEC")


def _has_decimal(types) -> bool:
    return any(D.is_decimal(t) for t in types)


def _to(e: Expr, target: str) -> Expr:
    """``e`` cast to DOUBLE / STRING when it is a decimal, else unchanged."""
    if not D.is_decimal(e.type):
        return e
    return Cast(type=T.FLOAT if target == "DOUBLE" else T.STRING, arg=e, target=target)


def _is_float(t: pa.DataType) -> bool:
    return T.is_floating(t) and not D.is_decimal(t)


def decimal_call(name: str, args: list[Expr]) -> tuple[Call | None, list[Expr]]:
    """For an operator or function ``name`` over ``args`` with a DECIMAL among them: the
    finished call when a decimal rule types it, else (None, the arguments to type with the
    ordinary rules -- decimals cast to DOUBLE or text)."""
    types = [a.type for a in args]
    if not _has_decimal(types):
        return None, args
    if name in _PASS:
        return None, args
    if name in _SAME_TYPE and len(args) == 1:
        return Call(type=args[0].type, name=name, args=tuple(args)), args
    exact_operands = all(D.is_decimal(t) or T.is_integer(t) or T.is_null(t) for t in types)
    if name in _EXACT_ARITH and len(args) == 2 and exact_operands:
        a, b = (t if not T.is_null(t) else other for t, other in zip(types, reversed(types)))
        return Call(type=D.arithmetic_type(name, a, b), name=name, args=tuple(args)), args
    if name in _COMPARISONS and not any(_is_float(t) for t in types):
        return None, args                  # decimals compare exactly with decimals and integers
    fn = F.OPERATORS.get(name) or F.SCALAR_FUNCTIONS.get(name)
    if fn is not None and (fn.string_args or fn.first_arg_text):
        first = [_to(args[0], "STRING")] if fn.first_arg_text else []
        rest = args[1:] if fn.first_arg_text else args
        return None, first + [_to(a, "STRING" if fn.string_args else "DOUBLE") for a in rest]
    return None, [_to(a, "DOUBLE") for a in args]


def decimal_in_list(arg: Expr, items: list[Expr]) -> tuple[Expr, list[Expr]]:
    """``x IN (...)`` mixing DECIMAL and DOUBLE compares as DOUBLE (as ``=`` does); decimals
    and integers compare exactly."""
    types = [arg.type] + [i.type for i in items]
    if _has_decimal(types) and any(_is_float(t) for t in types):
        return _to(arg, "DOUBLE"), [_to(i, "DOUBLE") for i in items]
    return arg, items


def decimal_branches(values: list[Expr], rtype: pa.DataType) -> tuple[pa.DataType, list[Expr]]:
    """CASE / COALESCE branches over decimals: all decimals or integers give a decimal wide
    enough for each (integer digits and scale of the widest); with a DOUBLE among them the
    decimals are cast to DOUBLE."""
    types = [v.type for v in values if not T.is_null(v.type)]
    if not _has_decimal(types):
        return rtype, values
    if all(D.is_decimal(t) or T.is_integer(t) for t in types):
        ds = [D.decimal_of(t) for t in types]
        scale = max(d.scale for d in ds)
        digits = max(d.precision - d.scale for d in ds)
        if digits + scale > D.MAX_PRECISION:
            raise SQLSemanticError(f"no DECIMAL holds every branch (needs {digits + scale} digits)",
                                   hint="CAST the branches to one DECIMAL(p, s) or to DOUBLE")
        t = pa.decimal128(digits + scale, scale)
        return t, [v if v.type.equals(t) or T.is_null(v.type) else Cast(type=t, arg=v, target="DECIMAL")
                   for v in values]
    return rtype, [_to(v, "DOUBLE") for v in values]


def decimal_aggregate_arg(func: str, arg: Expr) -> Expr:
    """The argument an aggregate sees: SUM, AVG, MIN, MAX and COUNT take decimals as they
    are; the variances and MEDIAN compute in DOUBLE."""
    if D.is_decimal(arg.type) and func not in ("count", "sum", "avg", "min", "max"):
        return _to(arg, "DOUBLE")
    return arg


def is_decimal_name(type_name: ast.TypeName) -> bool:
    return type_name.names[-1].sval.upper() in _DECIMAL_NAMES


def decimal_cast_type(type_name: ast.TypeName) -> pa.DataType:
    """The Arrow type of ``DECIMAL[(p[, s])]`` / ``NUMERIC[(p[, s])]`` as written."""
    mods = []
    for m in type_name.typmods or ():
        if not (isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)):
            raise SQLSemanticError("DECIMAL precision and scale must be integer constants",
                                   hint="write DECIMAL(p, s), e.g. DECIMAL(12, 2)")
        mods.append(int(m.val.ival))
    return D.declared_type(mods, type_name.names[-1].sval.upper())
