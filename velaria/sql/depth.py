"""The expression nesting limit: deep or generated SQL fails with one clear error.

Velaria accepts expressions nested up to :data:`MAX_EXPRESSION_DEPTH` levels (1000, as SQLite
and DuckDB allow). Past it, planning stops with ``SQLUnsupportedError`` (error_type
``expression_too_deep``) instead of a bare ``RecursionError`` -- or worse, a crash inside the
PostgreSQL parser, whose C code recurses once per level and overflows its stack somewhere past
20,000 levels.

Two checks, both iterative:

* :func:`check_text_depth` runs on the tokens before the parser sees the text. It bounds what
  the parser could build: parenthesis nesting over the limit, or more than ten times the limit
  of operators in one run (between commas, ``AND`` and ``OR``, which never nest) or of
  ``UNION``/``INTERSECT``/``EXCEPT`` keywords.
* :func:`check_tree_depth` measures the parsed statement exactly: the number of nested
  expression nodes (operators, calls, casts, CASE, tests, subqueries) and set operations on
  the deepest path.

Queries nest too, and a nested query costs the planner far more than an operator: WITH
queries and views are planned again where they are read (a chain of views nests as deep as
it is long), which the text does not show. So the planner counts the queries it is planning
inside one another -- subqueries, derived tables, WITH queries, views -- and stops past
:data:`MAX_QUERY_DEPTH` (:func:`nested_query`) with the same kind of error.
"""
from __future__ import annotations

import contextlib
import threading

from pglast import ast
from pglast.enums import SetOperation

from ..errors import SQLUnsupportedError

__all__ = ["MAX_EXPRESSION_DEPTH", "MAX_QUERY_DEPTH", "too_deep", "check_text_depth", "check_tree_depth",
           "children", "nested_query"]

#: the deepest expression nesting a statement may use
MAX_EXPRESSION_DEPTH = 1000
#: the deepest nesting of queries (subqueries, derived tables, WITH queries, views) inside one another
MAX_QUERY_DEPTH = 100

# operators between commas / AND / OR that the text check lets the parser see
_RUN_GUARD = 10 * MAX_EXPRESSION_DEPTH

_NOT_OPERATORS = set(",();.[]:")
_RUN_BREAKS = ("AND", "OR", "SELECT", "WHERE", "FROM", "WHEN", "THEN", "ELSE", "CASE", "END")
_SET_WORDS = ("UNION", "INTERSECT", "EXCEPT")

_EXPRESSION_NODES = (ast.A_Expr, ast.BoolExpr, ast.FuncCall, ast.TypeCast, ast.CaseExpr,
                     ast.CoalesceExpr, ast.MinMaxExpr, ast.NullTest, ast.BooleanTest,
                     ast.SubLink, ast.A_Indirection, ast.RangeSubselect)


def too_deep(byte_offset: int | None) -> SQLUnsupportedError:
    """The error for a statement nested deeper than the limit."""
    return SQLUnsupportedError(
        f"expression too deep: nesting exceeds the limit of {MAX_EXPRESSION_DEPTH} levels",
        error_type="expression_too_deep", byte_offset=byte_offset,
        hint="Split the expression: compute parts in a WITH query or a temp view; "
             "use IN (...) instead of long OR chains and UNION ALL of fewer branches.")


def check_text_depth(tokens, byte_offset_of) -> None:
    """Raise :func:`too_deep` when the token stream alone shows nesting past the limit.

    ``byte_offset_of(char_index)`` maps a token start to a byte offset in the user's text.
    """
    run = set_ops = 0
    for tok in tokens:
        kind, text = tok.kind, tok.text
        if tok.depth > MAX_EXPRESSION_DEPTH:
            raise too_deep(byte_offset_of(tok.start))
        if kind == "symbol" and text not in _NOT_OPERATORS:
            run += 1
        elif kind == "symbol" and text == ",":
            run = 0
        elif kind == "word":
            upper = text.upper()
            if upper in _RUN_BREAKS:
                run = 0
            elif upper in _SET_WORDS:
                set_ops += 1
        if run > _RUN_GUARD or set_ops > _RUN_GUARD:
            raise too_deep(byte_offset_of(tok.start))


def children(node: ast.Node) -> list[ast.Node]:
    """The AST nodes directly below ``node`` (inside its attributes and their tuples)."""
    out: list[ast.Node] = []
    for name in type(node).__slots__:
        pending = [getattr(node, name, None)]
        while pending:
            value = pending.pop()
            if isinstance(value, ast.Node):
                out.append(value)
            elif isinstance(value, (tuple, list)):
                pending.extend(reversed(value))
    return out


def _counts(node: ast.Node) -> bool:
    if isinstance(node, _EXPRESSION_NODES):
        return True
    return isinstance(node, ast.SelectStmt) and node.op not in (None, SetOperation.SETOP_NONE)


def check_tree_depth(stmt: ast.Node, byte_offset_of) -> None:
    """Raise :func:`too_deep` when an expression path under ``stmt`` nests past the limit.

    ``byte_offset_of(node)`` gives a node's byte offset in the user's text (or None).
    """
    stack = [(stmt, 0, None)]
    while stack:
        node, depth, located = stack.pop()
        if _counts(node):
            depth += 1
        loc = getattr(node, "location", None)
        if isinstance(loc, int) and loc >= 0:
            located = node
        if depth > MAX_EXPRESSION_DEPTH:
            raise too_deep(byte_offset_of(located) if located is not None else None)
        stack.extend((child, depth, located) for child in children(node))


_planning = threading.local()       # per thread: how many queries are being planned inside one another


@contextlib.contextmanager
def nested_query():
    """Count one more query being planned inside the current one (per thread, across the
    planners of views); past :data:`MAX_QUERY_DEPTH` raise a clear error instead of letting the
    recursion run out."""
    depth = getattr(_planning, "depth", 0)
    if depth >= MAX_QUERY_DEPTH:
        raise SQLUnsupportedError(
            f"query nesting too deep: subqueries, derived tables, WITH queries and views nest more than "
            f"{MAX_QUERY_DEPTH} levels", error_type="expression_too_deep",
            hint="Flatten the query: join instead of nesting subqueries, or materialise an intermediate "
                 "result with CREATE TABLE ... AS SELECT.")
    _planning.depth = depth + 1
    try:
        yield
    finally:
        _planning.depth = depth
