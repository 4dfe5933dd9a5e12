"""Bind parameters: ``Session.sql("... WHERE a = $1 AND b = ?", [4, "x"])``.

Placeholders are ``$1, $2, ...`` (numbered, reusable) or ``?`` (numbered in order of
appearance by the normaliser); one statement uses one style. Values are bound into the parsed
statement as typed constants -- the SQL text is never edited -- so a string value is always a
string (``"x' OR '1'='1"`` stays one harmless literal), and a value's Python type gives its SQL
type:

=================== ============================================================
Python value        SQL constant
=================== ============================================================
``None``            NULL
``bool``            BOOLEAN
``int``             BIGINT (must fit in int64)
``float``           DOUBLE (NaN and infinities included)
``str``             VARCHAR
``datetime.date``   DATE
``datetime``        TIMESTAMP (naive), TIMESTAMPTZ (with a tzinfo: the UTC instant)
``timedelta``       INTERVAL (days, seconds and microseconds)
``Decimal``         DECIMAL(p, s) of its own digits (``Decimal("1.50")``: DECIMAL(3, 2))
=================== ============================================================

Dates, timestamps, intervals and decimals are bound as ``CAST('text' AS type)`` of their exact
text (a parse-tree node, not text spliced into the statement).

Errors: ``params`` that is not a list or tuple, or a value of another type, raises
``TypeError``; a count that does not match the placeholders raises
:class:`~velaria.errors.SQLParameterError` (also a ``ValueError``); a value whose type does
not fit where its placeholder stands fails like the same literal would (for example
``cannot compare BIGINT with VARCHAR``).
"""
from __future__ import annotations

import datetime
import decimal

from pglast import ast

from ..errors import SQLParameterError
from .depth import children

__all__ = ["bind"]

_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _constant(value, number: int) -> ast.A_Const | ast.TypeCast:
    """The parse-tree constant for one parameter value."""
    if value is None:
        return ast.A_Const(isnull=True)
    if isinstance(value, bool):
        return ast.A_Const(val=ast.Boolean(boolval=value))
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise SQLParameterError(f"parameter ${number} = {value} does not fit in BIGINT (int64)",
                                    hint="Pass it as a float or a str and CAST it in SQL.")
        if -(2 ** 31) <= value < 2 ** 31:
            return ast.A_Const(val=ast.Integer(ival=value))
        return ast.A_Const(val=ast.Float(fval=str(value)))
    if isinstance(value, float):
        # repr round-trips exactly (NaN, infinities and -0.0 included) and always holds a '.',
        # an 'e' or a letter, so the lowerer reads it back as a DOUBLE
        return ast.A_Const(val=ast.Float(fval=repr(value)))
    if isinstance(value, str):
        return ast.A_Const(val=ast.String(sval=value))
    typed = _typed_text(value, number)
    if typed is not None:
        return typed
    raise TypeError(f"parameter ${number} has unsupported type {type(value).__name__}; use None, bool, int, "
                    "float, str, datetime.date, datetime.datetime, datetime.timedelta or decimal.Decimal")


def _cast(text: str, type_name: str, *mods: int) -> ast.TypeCast:
    return ast.TypeCast(arg=ast.A_Const(val=ast.String(sval=text)),
                        typeName=ast.TypeName(names=(ast.String(sval=type_name),), typemod=-1,
                                              typmods=tuple(ast.A_Const(val=ast.Integer(ival=m)) for m in mods)
                                              or None))


def _typed_text(value, number: int) -> ast.TypeCast | None:
    """``CAST('text' AS type)`` for a date, datetime, timedelta or Decimal value, else None."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            utc = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return _cast(utc.isoformat(sep=" "), "timestamptz")
        return _cast(value.replace(tzinfo=None).isoformat(sep=" "), "timestamp")
    if isinstance(value, datetime.date):
        return _cast(value.isoformat(), "date")
    if isinstance(value, datetime.timedelta):
        return _cast(f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds", "interval")
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise SQLParameterError(f"parameter ${number} = {value} is not a finite decimal",
                                    hint="Pass None for NULL, or a float for NaN and infinities.")
        sign, digits, exponent = value.as_tuple()
        scale = max(0, -exponent)
        precision = max(len(digits) + max(0, exponent), scale, 1)
        if precision > 38:
            raise SQLParameterError(f"parameter ${number} = {value} has {precision} digits; DECIMAL holds at most 38",
                                    hint="Pass it as a float, or round it first.")
        return _cast(format(value, "f"), "numeric", precision, scale)
    return None


def _param_refs(stmt: ast.Node) -> list[ast.ParamRef]:
    refs, stack = [], [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.ParamRef):
            refs.append(node)
        stack.extend(children(node))
    return refs


def _replace(stmt: ast.Node, constants: dict[int, ast.A_Const]) -> None:
    """Swap every ParamRef under ``stmt`` for the constant of its number (in place)."""
    def swap(value):
        if isinstance(value, ast.ParamRef):
            const = constants[value.number]
            if isinstance(const, ast.TypeCast):        # a fresh node per placeholder
                return ast.TypeCast(arg=ast.A_Const(val=const.arg.val), typeName=const.typeName)
            return ast.A_Const(isnull=const.isnull, val=const.val)
        if isinstance(value, tuple):
            return tuple(swap(v) for v in value)
        return value

    stack = [stmt]
    while stack:
        node = stack.pop()
        for name in type(node).__slots__:
            value = getattr(node, name, None)
            if isinstance(value, (ast.ParamRef, tuple)):
                new = swap(value)
                if new is not value:
                    setattr(node, name, new)
        stack.extend(children(node))


def bind(stmt: ast.Node, params, byte_offset_of) -> None:
    """Replace the placeholders of ``stmt`` with ``params`` (a list or tuple, or None).

    ``byte_offset_of(node)`` locates a placeholder in the user's text for error messages.
    """
    if params is not None and not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list or tuple of values, not {type(params).__name__}")
    values = list(params or ())
    refs = _param_refs(stmt)
    needed = max((r.number for r in refs), default=0)
    if needed != len(values):
        first = min(refs, key=lambda r: r.location or 0) if refs else None
        raise SQLParameterError(
            f"the statement has {needed} parameter placeholder{'s' if needed != 1 else ''} "
            f"but {len(values)} value{'s were' if len(values) != 1 else ' was'} given",
            hint="Pass one value per placeholder: $1..$n in order, or one per ?.",
            byte_offset=byte_offset_of(first) if first is not None else None)
    if not refs:
        return
    constants = {k: _constant(v, k) for k, v in enumerate(values, start=1)}
    _replace(stmt, constants)
