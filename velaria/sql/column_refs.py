"""The column names a SQL statement refers to (every ``ColumnRef``, qualified or not)."""
from __future__ import annotations

from pglast import ast
from pglast.visitors import Visitor

__all__ = ["referenced_columns", "scan_columns_hint"]


class _ColumnNames(Visitor):
    """Collects the name parts of every column reference (``t.x`` gives ``t`` and ``x``)."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def visit_ColumnRef(self, ancestors, node):  # noqa: N802 - pglast's visitor naming
        for part in node.fields or ():
            if isinstance(part, ast.String):
                self.names.add(part.sval)


def referenced_columns(stmt: ast.Node) -> set[str]:
    """Every name part of the column references in ``stmt`` (an over-approximation of the
    columns it reads: table qualifiers and output aliases come along)."""
    collector = _ColumnNames()
    collector(stmt)
    return collector.names


def scan_columns_hint(stmt: ast.SelectStmt) -> set[str]:
    """The names a file typed while ``stmt`` is planned should convert on the way (see
    :mod:`velaria.io.column_hint`): its column references, or none for a query with a LIMIT
    (it may read a few rows, not the whole file's columns)."""
    if stmt.limitCount is not None:
        return set()
    return referenced_columns(stmt)
