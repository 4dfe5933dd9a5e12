"""A deliberately broken target: ``velaria`` with three wrong behaviours the suite must catch.

* ``to_rows()`` returns rows as tuples, not lists (breaks ``api-to-rows-001``);
* ``COUNT(x)`` counts NULL cells too, as native does, but without the rest of native's
  behaviour; a query containing ``COUNT(x) AS cx`` gets 5 instead of 4, and the clause's
  native expectation (all three counts 5) does not match either (breaks ``sql-agg-002``);
* ``ORDER BY ... DESC`` is ignored for the first key (breaks ``sql-order-002`` and
  ``sql-order-005``).

    python -m velaria.conformance --target velaria.conformance.targets.broken
"""
from __future__ import annotations

import re

import velaria

__all__ = ["Session", "BROKEN_CLAUSES"]

#: the clauses this target must fail (checked by the suite's own tests)
BROKEN_CLAUSES = ("api-to-rows-001", "sql-agg-002", "sql-order-002", "sql-order-005")


class _Frame:
    def __init__(self, df, patch_count: bool = False):
        self._df = df
        self._patch_count = patch_count

    def to_rows(self):
        out = self._df.to_rows()
        rows = [tuple(r) for r in out["rows"]]
        if self._patch_count and out["schema"][:1] == ["cx"]:
            rows = [(r[0] + 1,) + r[1:] for r in rows]
        return {"schema": out["schema"], "rows": rows}

    def __getattr__(self, name):
        return getattr(self._df, name)


class Session(velaria.Session):
    def sql(self, text, /):
        patched = re.sub(r"ORDER BY (\w+) DESC", r"ORDER BY \1", text)
        return _Frame(super().sql(patched), patch_count="COUNT(x) AS cx" in text)
