"""Name resolution: which input column a (possibly qualified) SQL name refers to."""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

import pyarrow as pa

from ..errors import ColumnNotFoundError, SQLSemanticError
from ..plan.expr import Column

__all__ = ["ScopeColumn", "Scope"]


@dataclass(frozen=True)
class ScopeColumn:
    qualifier: str | None   # table name or alias the column belongs to
    name: str
    type: pa.DataType
    index: int              # position in the node's output
    hidden: bool = False    # reachable only qualified, not by a bare name or * (JOIN USING)


class Scope:
    """The columns visible to expressions over one plan node's output."""

    def __init__(self, columns: list[ScopeColumn]):
        self.columns = columns

    @classmethod
    def from_schema(cls, schema: pa.Schema, qualifier: str | None = None) -> "Scope":
        return cls([ScopeColumn(qualifier, f.name, f.type, i) for i, f in enumerate(schema)])

    def concat(self, other: "Scope") -> "Scope":
        n = len(self.columns)
        return Scope(self.columns + [dataclasses.replace(c, index=c.index + n) for c in other.columns])

    @property
    def qualifiers(self) -> list[str]:
        seen: list[str] = []
        for c in self.columns:
            if c.qualifier and c.qualifier not in seen:
                seen.append(c.qualifier)
        return seen

    def match(self, candidates: list[ScopeColumn], name: str) -> list[ScopeColumn]:
        exact = [c for c in candidates if c.name == name]
        if exact:
            return exact
        # Unquoted identifiers arrive lower-cased from the parser; let them match a column
        # whose name differs only in case (an Arrow or CSV header "Name") when that is unique.
        folded = [c for c in candidates if c.name.lower() == name.lower()]
        return folded

    def resolve(self, parts: list[str], offset: int | None = None) -> Column:
        """Resolve ``[name]`` or ``[qualifier, name]`` to a :class:`Column`."""
        if len(parts) >= 2:
            qualifier, name = parts[-2], parts[-1]
            in_table = [c for c in self.columns if c.qualifier is not None
                        and c.qualifier.lower() == qualifier.lower()]
            if not in_table:
                known = ", ".join(self.qualifiers) or "(none)"
                raise SQLSemanticError(f"unknown table or alias: {qualifier}",
                                       hint=f"Tables in this query: {known}.", byte_offset=offset)
            found = self.match(in_table, name)
            if not found:
                raise ColumnNotFoundError(f"column not found in {qualifier}: {name}",
                                          hint=self._suggest(name, in_table), byte_offset=offset)
        else:
            name = parts[-1]
            found = self.match([c for c in self.columns if not c.hidden], name)
            if not found:
                raise ColumnNotFoundError(f"column not found: {name}", hint=self._suggest(name, self.columns),
                                          byte_offset=offset)
        if len(found) > 1:
            owners = [f"{c.qualifier}.{c.name}" for c in found if c.qualifier]
            hint = "Qualify it with a table name or alias: " + (" or ".join(owners) or name) + "."
            raise SQLSemanticError(f"ambiguous column: {name}", hint=hint, byte_offset=offset)
        c = found[0]
        return Column(type=c.type, index=c.index, name=c.name)

    @staticmethod
    def _suggest(name: str, columns: list[ScopeColumn]) -> str:
        names = [c.name for c in columns]
        close = difflib.get_close_matches(name, names, n=1)
        listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        if close:
            return f"Did you mean {close[0]}? Available columns: {listed}."
        return f"Available columns: {listed or '(none)'}."
