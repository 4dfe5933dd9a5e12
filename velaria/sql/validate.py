"""Reject SQL that parses but that Velaria SQL v1 does not support.

Three groups of checks run on the pglast AST of one statement, in this order:

0. *Depth*: expressions nested past the documented limit fail with ``expression_too_deep``
   (:mod:`.depth`).
1. *Feature checks* (upstream ``sql_feature_validator.cc`` with the ``cliDefault`` policy),
   error_type ``unsupported_sql_feature``, message ``<feature>: <msg>`` (recursive or
   data-modifying CTEs, LATERAL). When a statement uses
   several features the first reported is, by priority, CTE, then subquery; within one
   feature, the first node in the tree's field order. Window functions are supported (the
   planner checks where they may appear).
2. *Statement checks* (upstream's lowerer), error_type ``unsupported_statement``: SELECT,
   INSERT, CREATE TABLE [AS], CREATE VIEW, DROP TABLE|VIEW, EXPLAIN SELECT and SHOW TABLES
   are accepted.

Every error carries the byte offset (into the user's original text) of the offending node.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from pglast import ast
from pglast.enums import ObjectType

from ..errors import SQLUnsupportedError
from .depth import check_tree_depth, children
from .normalize import SYMBOL, Normalized, tokenize

__all__ = ["validate", "multi_statement_error", "iter_nodes", "first_location"]


def multi_statement_error(count: int, byte_offset: int | None) -> SQLUnsupportedError:
    """The error for a text holding ``count`` (> 1) statements."""
    return SQLUnsupportedError(
        f"multi_statement: Multiple SQL statements detected ({count}).",
        hint="Execute each statement separately.", byte_offset=byte_offset)


# --------------------------------------------------------------------------------------------
# Tree walking
# --------------------------------------------------------------------------------------------


def iter_nodes(node: ast.Node) -> Iterator[ast.Node]:
    """Every node of the tree under ``node`` (itself included), in pre-order.

    Iterative (an explicit stack), so generated SQL of any depth cannot overflow Python's stack.
    """
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def _location(node: ast.Node) -> int | None:
    """A node's own ``location`` (a character index into the normalised text), if known."""
    loc = getattr(node, "location", None)
    return loc if isinstance(loc, int) and loc >= 0 else None


def first_location(node: ast.Node) -> int | None:
    """The smallest known location in the tree under ``node``, or None."""
    locations = [loc for n in iter_nodes(node) if (loc := _location(n)) is not None]
    return min(locations) if locations else None


# --------------------------------------------------------------------------------------------
# Feature checks
# --------------------------------------------------------------------------------------------

def _feature_problem(node: ast.Node) -> tuple[str, tuple[str, str]] | None:
    """(category, (message, hint)) when ``node`` itself uses an unsupported feature.

    Plain ``WITH`` and derived tables in FROM are supported (planned by inlining); recursive
    CTEs, data-modifying CTEs and LATERAL are not (the planner checks which subqueries in
    expressions it supports).
    """
    if isinstance(node, ast.WithClause) and node.recursive:
        return "cte", ("cte: WITH RECURSIVE is not supported.",
                       "Only non-recursive WITH queries are supported.")
    if isinstance(node, ast.CommonTableExpr) and not isinstance(node.ctequery, ast.SelectStmt):
        return "cte", ("cte: a WITH query must be a SELECT.",
                       "Run INSERT / CREATE statements on their own, then query the table.")
    if isinstance(node, ast.RangeSubselect) and node.lateral:
        return "subquery", ("subquery: LATERAL subquery in FROM not supported.",
                            "Join a derived table on a key instead.")
    return None


_FEATURE_PRIORITY = ("cte", "subquery")


def _check_features(stmt: ast.Node, normalized: Normalized) -> None:
    first: dict[str, tuple[ast.Node, tuple[str, str]]] = {}
    for node in iter_nodes(stmt):
        problem = _feature_problem(node)
        if problem is not None and problem[0] not in first:
            first[problem[0]] = (node, problem[1])
    for category in _FEATURE_PRIORITY:
        if category in first:
            node, (message, hint) = first[category]
            raise SQLUnsupportedError(message, hint=hint,
                                      byte_offset=_node_byte_offset(node, normalized))


def _node_byte_offset(node: ast.Node, normalized: Normalized) -> int | None:
    """Byte offset (original text) of a node; a FROM subquery points at its ``(``."""
    loc = _location(node)
    if loc is None and isinstance(node, ast.RangeSubselect):
        loc = _open_paren_before(normalized.text, first_location(node))
    if loc is None:
        loc = first_location(node)
    return None if loc is None else normalized.to_original_offset(loc)


def _open_paren_before(text: str, loc: int | None) -> int | None:
    """Index of the last ``(`` token that starts before ``loc`` in ``text``."""
    if loc is None:
        return None
    parens = [t.start for t in tokenize(text) if t.kind == SYMBOL and t.text == "("
              and t.start < loc]
    return parens[-1] if parens else loc


# --------------------------------------------------------------------------------------------
# Statement checks
# --------------------------------------------------------------------------------------------

_DEFAULT_HINT = ("Velaria runs SELECT, INSERT, CREATE [SOURCE|SINK] TABLE, CREATE TABLE AS, CREATE "
                 "VIEW, DROP TABLE|VIEW, DESCRIBE, SHOW TABLES and EXPLAIN SELECT statements.")
_APPEND_ONLY_HINT = ("Velaria tables are append-only: write the rows you want to a new table "
                     "with CREATE TABLE and INSERT INTO ... SELECT.")

# statement class name -> (what, hint)
_STATEMENT_NAMES: dict[str, tuple[str, str]] = {
    "UpdateStmt": ("UPDATE", _APPEND_ONLY_HINT),
    "DeleteStmt": ("DELETE", _APPEND_ONLY_HINT),
    "MergeStmt": ("MERGE", _APPEND_ONLY_HINT),
    "TruncateStmt": ("TRUNCATE", _APPEND_ONLY_HINT),
    "DropStmt": ("DROP", "Only DROP TABLE and DROP VIEW are supported."),
    "AlterTableStmt": ("ALTER TABLE",
                       "Create a new table with the columns you want and INSERT INTO ... "
                       "SELECT into it."),
    "ExplainStmt": ("EXPLAIN with options",
                    "Write EXPLAIN SELECT ... without options, or call Session.explain_sql()."),
    "CreateTableAsStmt": ("CREATE MATERIALIZED VIEW",
                          "Use CREATE TABLE name AS SELECT ... (an in-memory copy)."),
    "CopyStmt": ("COPY ... FROM", "Read files with CREATE TABLE ... USING csv OPTIONS(path: "
                                  "'...') or Session.read_csv(); COPY ... TO writes files."),
    "TransactionStmt": ("transaction control",
                        "Each statement runs on its own; there are no transactions."),
    "VariableSetStmt": ("SET", _DEFAULT_HINT),
    "VariableShowStmt": ("SHOW", "Only SHOW TABLES is supported."),
    "IndexStmt": ("CREATE INDEX", _DEFAULT_HINT),
}

_DROP_OBJECTS = {ObjectType.OBJECT_TABLE: "DROP TABLE", ObjectType.OBJECT_VIEW: "DROP VIEW"}


def _statement_name(stmt: ast.Node) -> tuple[str, str]:
    """(what, hint) naming an unsupported statement kind for the error message."""
    cls = type(stmt).__name__
    what, hint = _STATEMENT_NAMES.get(cls, (None, _DEFAULT_HINT))
    if isinstance(stmt, ast.DropStmt):
        what = _DROP_OBJECTS.get(stmt.removeType, what)
    if what is None:  # CreateSchemaStmt -> CREATE SCHEMA
        what = " ".join(re.findall(r"[A-Z][a-z]*", cls.removesuffix("Stmt"))).upper()
    return what, hint


def _unsupported_statement(what: str, hint: str, byte_offset: int | None) -> SQLUnsupportedError:
    return SQLUnsupportedError(f"not supported in SQL v1: {what} is not supported",
                               error_type="unsupported_statement", hint=hint,
                               byte_offset=byte_offset)


def _check_statement(stmt: ast.Node, normalized: Normalized, stmt_location: int) -> None:
    offset = normalized.to_original_offset(stmt_location)
    if isinstance(stmt, ast.SelectStmt):
        if getattr(stmt, "intoClause", None) is not None:
            raise _unsupported_statement("SELECT INTO",
                                         "Use CREATE TABLE, then INSERT INTO ... SELECT.", offset)
    elif isinstance(stmt, ast.InsertStmt):
        if getattr(stmt, "onConflictClause", None) is not None:
            raise _unsupported_statement("INSERT ... ON CONFLICT", _APPEND_ONLY_HINT, offset)
        # PostgreSQL 18 (pglast 8) renamed returningList to returningClause.
        if getattr(stmt, "returningClause", None) or getattr(stmt, "returningList", None):
            raise _unsupported_statement("INSERT ... RETURNING",
                                         "Query the table after inserting.", offset)
    elif isinstance(stmt, ast.CopyStmt):
        if stmt.is_from or stmt.is_program or not stmt.filename:
            raise _unsupported_statement(*_statement_name(stmt), offset)
    elif not isinstance(stmt, ast.CreateStmt) and not _accepted_statement(stmt):
        raise _unsupported_statement(*_statement_name(stmt), offset)


def _accepted_statement(stmt: ast.Node) -> bool:
    """CREATE VIEW, CREATE TABLE AS, DROP TABLE|VIEW, EXPLAIN SELECT and SHOW TABLES.

    (``DESCRIBE`` arrives here as a SELECT: the normaliser rewrites it.)
    """
    if isinstance(stmt, ast.ViewStmt):
        return True
    if isinstance(stmt, ast.CreateTableAsStmt):
        return stmt.objtype == ObjectType.OBJECT_TABLE
    if isinstance(stmt, ast.DropStmt):
        return stmt.removeType in _DROP_OBJECTS
    if isinstance(stmt, ast.ExplainStmt):
        return isinstance(stmt.query, ast.SelectStmt) and not stmt.options
    if isinstance(stmt, ast.VariableShowStmt):
        return stmt.name.lower() == "tables"
    return False


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def validate(stmt: ast.Node, normalized: Normalized, stmt_location: int = 0) -> None:
    """Raise :class:`~velaria.errors.SQLUnsupportedError` when ``stmt`` (one pglast statement
    node parsed from ``normalized.text``, starting at character ``stmt_location``) uses SQL
    that Velaria SQL v1 does not support; return None otherwise."""
    check_tree_depth(stmt, lambda node: _node_byte_offset(node, normalized))
    _check_features(stmt, normalized)
    _check_statement(stmt, normalized, stmt_location)
