"""Parse one SQL statement: normalise Velaria extensions, run pglast, validate.

pglast facts this module relies on (pglast 8.x, libpg_query / PostgreSQL 18):

* ``pglast.parser.ParseError.args == (message, index)`` where ``index`` is a **0-based
  character** index into the parsed text (pglast subtracts 1 from PostgreSQL's 1-based cursor
  position, which PostgreSQL counts in characters), or ``None`` when the error is at the end of
  the input.
* Node ``location`` attributes are likewise 0-based character indices (pglast converts them from
  byte offsets); ``-1`` or ``None`` means unknown.
"""
from __future__ import annotations

from dataclasses import dataclass

import pglast
from pglast import ast
from pglast.parser import ParseError

from ..errors import SQLSyntaxError
from . import validate as _validate
from .normalize import Normalized, normalize

__all__ = ["ParsedStatement", "parse", "node_offset"]


@dataclass(frozen=True)
class ParsedStatement:
    """One validated statement: the user's text, its normalisation and its pglast node.

    ``stmt_location`` is the statement's start as a character index into ``ext.text``.
    """

    original: str
    ext: Normalized
    stmt: ast.Node
    stmt_location: int


def parse(sql: str) -> ParsedStatement:
    """Parse and validate exactly one Velaria SQL statement.

    Raises ``TypeError`` for a non-``str`` argument, :class:`~velaria.errors.SQLSyntaxError`
    for text that does not parse (error_type ``parse_error``, or ``empty_query`` when there is
    no statement) and :class:`~velaria.errors.SQLUnsupportedError` for SQL outside the v1
    subset. Every error's ``byte_offset`` points into ``sql``.
    """
    if not isinstance(sql, str):
        raise TypeError(f"sql must be str, not {type(sql).__name__}")
    normalized = normalize(sql)
    raw_statements = _parse_text(normalized)
    if not raw_statements:
        raise SQLSyntaxError("No statements in query.", error_type="empty_query")
    if len(raw_statements) > 1:
        second = raw_statements[1].stmt_location or 0
        raise _validate.multi_statement_error(len(raw_statements),
                                              normalized.to_original_offset(second))
    raw = raw_statements[0]
    location = raw.stmt_location or 0
    _validate.validate(raw.stmt, normalized, location)
    return ParsedStatement(sql, normalized, raw.stmt, location)


def _parse_text(normalized: Normalized) -> tuple:
    """Run pglast on the normalised text, mapping its errors onto the original text."""
    try:
        return pglast.parse_sql(normalized.text)
    except ParseError as exc:
        message = exc.args[0] if exc.args else str(exc)
        index = exc.args[1] if len(exc.args) > 1 else None
        if index is None:  # pglast: the error is at the end of the input
            index = len(normalized.text)
        raise SQLSyntaxError(message, byte_offset=normalized.to_original_offset(index)) from None


def node_offset(parsed: ParsedStatement, node: ast.Node | None) -> int | None:
    """Byte offset in ``parsed.original`` of a pglast node's ``location``; None when the node
    has no known location."""
    loc = getattr(node, "location", None) if node is not None else None
    if not isinstance(loc, int) or loc < 0:
        return None
    return parsed.ext.to_original_offset(loc)
