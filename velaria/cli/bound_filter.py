"""A ``WHERE column op value`` filter built as a syntax tree, never as spliced text.

The column name becomes a quoted identifier node, the value a typed constant node, and the
operator must be one of :data:`OPERATORS`; the tree is then planned like any query. Nothing the
user types is ever parsed as SQL, so ``nosuchcat' OR 1=1 --`` is just a string that matches no
row and ``O'Brien`` is just a name.
"""
from __future__ import annotations

import pyarrow as pa
from pglast import ast, enums
from pglast.stream import RawStream

from .errors import CliUsageError

__all__ = ["OPERATORS", "bound_filter", "parse_scalar_text"]

#: allowed ``--where-op`` values (``==`` is accepted as ``=``)
OPERATORS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def parse_scalar_text(text: str):
    """Upstream's reading of ``--where-value``: NULL/TRUE/FALSE, a number, or the stripped text."""
    t = text.strip()
    if t.upper() == "NULL":
        return None
    if t.upper() in ("TRUE", "FALSE"):
        return t.upper() == "TRUE"
    try:
        return float(t) if any(c in t for c in ".eE") else int(t)
    except ValueError:
        return t


def _constant(value_text: str, column: str, dtype: pa.DataType) -> ast.A_Const:
    """A constant node of the column's kind (string columns compare with the text as typed)."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return ast.A_Const(val=ast.String(sval=value_text.strip()))
    value = parse_scalar_text(value_text)
    if pa.types.is_boolean(dtype):
        if not isinstance(value, bool):
            raise CliUsageError(f"--where-value {value_text!r} is not true/false, but column {column!r} is boolean",
                                details={"where_column": column, "where_value": value_text})
        return ast.A_Const(val=ast.Boolean(boolval=value))
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CliUsageError(f"--where-value {value_text!r} is not a number, but column {column!r} is {dtype}",
                                details={"where_column": column, "where_value": value_text})
        if isinstance(value, int) and -(1 << 31) <= value < (1 << 31):  # the parser's Integer node is 32-bit
            return ast.A_Const(val=ast.Integer(ival=value))
        return ast.A_Const(val=ast.Float(fval=repr(float(value)) if isinstance(value, float) else str(value)))
    return ast.A_Const(val=ast.String(sval=value_text.strip()))


def bound_filter(session, view: str, column: str, op: str, value_text: str):
    """A DataFrame of the rows of ``view`` where ``column op value`` holds.

    ``NULL`` as the value means ``IS NULL`` (with ``=``) or ``IS NOT NULL`` (with ``!=``/``<>``),
    since a comparison with NULL is never true. Unknown columns and operators are usage errors.
    """
    from ..dataframe import DataFrame
    from ..sql import parser
    from ..sql.planner import SelectPlanner

    if op not in OPERATORS:
        raise CliUsageError(f"--where-op {op!r} is not allowed; use one of {', '.join(OPERATORS)}",
                            details={"where_op": op})
    schema = session.context.catalog.lookup(view).frame.schema
    if column not in schema.names:
        raise CliUsageError(f"--where-column {column!r} is not a column of the input; columns: "
                            f"{', '.join(schema.names)}", details={"where_column": column})
    # a fixed template supplies the statement's frame; its WHERE node is then replaced
    parsed = parser.parse(f"SELECT * FROM {view} WHERE placeholder = 0")
    ref = ast.ColumnRef(fields=(ast.String(sval=column),))
    sql_op = OPERATORS[op]
    if value_text.strip().upper() == "NULL":
        if sql_op not in ("=", "<>"):
            raise CliUsageError(f"--where-value NULL only works with = or != (got {op!r})",
                                details={"where_op": op})
        kind = enums.NullTestType.IS_NULL if sql_op == "=" else enums.NullTestType.IS_NOT_NULL
        where = ast.NullTest(arg=ref, nulltesttype=kind)
    else:
        const = _constant(value_text, column, schema.field(column).type)
        where = ast.A_Expr(kind=enums.A_Expr_Kind.AEXPR_OP, name=(ast.String(sval=sql_op),), lexpr=ref, rexpr=const)
    parsed.stmt.whereClause = where
    plan = SelectPlanner(session.context.catalog, parsed, lambda node: None).plan(parsed.stmt)
    return DataFrame(session, plan, sql=RawStream()(parsed.stmt))
