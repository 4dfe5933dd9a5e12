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
=================== ============================================================

Errors: ``params`` that is not a list or tuple, or a value of another type, raises
``TypeError``; a count that does not match the placeholders raises
:class:`~velaria.errors.SQLParameterError` (also a ``ValueError``); a value whose type does
not fit where its placeholder stands fails like the same literal would (for example
``cannot compare BIGINT with VARCHAR``).
"""
from __future__ import annotations

from pglast import ast

from ..errors import SQLParameterError
from .depth import children

__all__ = ["bind"]

_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _constant(value, number: int) -> ast.A_Const:
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
    raise TypeError(f"parameter ${number} has unsupported type {type(value).__name__}; "
                    "use None, bool, int, float or str")


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
