"""``DataFrame``: a lazy, immutable query result.

A DataFrame holds a plan. Planning errors surface when it is created (``Session.sql``);
execution happens on the first materialisation (``to_rows``, ``to_arrow``, ``count``, Arrow
export, ``show``) and the result table is cached on the frame, so later calls are free.
"""
from __future__ import annotations

import sys

import pyarrow as pa

from .exec.driver import run_table
from .exec.operators import ExecContext
from .io.base import ArrowTableSource
from .plan import logical as L
from .plan.optimize import prune
from .plan.physical import PhysicalPlan, build_physical

__all__ = ["DataFrame"]


class DataFrame:
    """A batch query result. Obtain one from a :class:`~velaria.Session` method."""

    def __init__(self, session, plan: L.Node, sql: str | None = None):
        self._session = session
        self._plan = plan
        self._sql = sql
        self._table: pa.Table | None = None
        self._physical: PhysicalPlan | None = None

    # ------------------------------------------------------------------ internals
    def _physical_plan(self) -> PhysicalPlan:
        """The physical plan, decided once: explain renders it, execution runs it."""
        kernels = self._session.kernels
        if self._physical is None or self._physical.kernels is not kernels:
            self._physical = build_physical(prune(self._plan), kernels)
        return self._physical

    def _materialize(self) -> pa.Table:
        if self._table is None:
            ctx = ExecContext(self._session.kernels, self._session._batch_rows,
                              memory_whole_chunks=self._session._memory_whole_chunks)
            self._table = run_table(self._physical_plan(), ctx)
        return self._table

    def _view_plan(self) -> L.Node:
        """The plan a view over this frame contributes to a query that reads it."""
        if self._table is not None:
            return L.Scan(schema=self._table.schema, source=ArrowTableSource(self._table), table_name="memory")
        return self._plan

    # ------------------------------------------------------------------ public API
    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the result (known without executing)."""
        return self._plan.schema

    @property
    def columns(self) -> list[str]:
        """The output column names."""
        return list(self._plan.schema.names)

    def to_arrow(self) -> pa.Table:
        """The result as a single-chunk ``pyarrow.Table``."""
        return self._materialize()

    def to_rows(self) -> dict:
        """``{"schema": [names...], "rows": [[v, ...], ...]}`` with Python values."""
        t = self._materialize()
        cols = [c.to_pylist() for c in t.columns]
        rows = [list(r) for r in zip(*cols)] if cols else []
        return {"schema": list(t.schema.names), "rows": rows}

    def count(self) -> int:
        """The number of result rows (executes the plan)."""
        return self._materialize().num_rows

    def explain(self) -> str:
        """The plan as an indented tree, plus the engine and kernels used (after a run: the
        paths the kernels reported)."""
        from .plan.explain import render_tree
        return render_tree(self._physical_plan())

    def show(self, max_rows: int = 20) -> None:
        """Print the first ``max_rows`` rows as a readable table on ``sys.stdout``."""
        if not isinstance(max_rows, int) or isinstance(max_rows, bool):
            raise TypeError("max_rows must be an int")
        print(self._format(max_rows), file=sys.stdout)

    def __arrow_c_stream__(self, requested_schema=None):
        """Arrow PyCapsule stream export (pyarrow, polars and duckdb read it without copies)."""
        return self._materialize().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self):
        return self._plan.schema.__arrow_c_schema__()

    def __arrow_c_array__(self, requested_schema=None):
        """Arrow PyCapsule export of the result as one struct array (upstream compatibility)."""
        t = self._materialize()
        batch = t.to_batches()[0] if t.num_rows else pa.RecordBatch.from_pylist([], schema=t.schema)
        return batch.__arrow_c_array__(requested_schema)

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        schema = ", ".join(f"{f.name}: {f.type}" for f in self._plan.schema)
        if self._table is None:
            try:
                self._materialize()
            except Exception as exc:  # repr must never raise; show why instead
                return f"DataFrame[{schema}] (execution failed: {exc})"
        return f"DataFrame[{schema}]\n{self._format(10)}"

    # ------------------------------------------------------------------ text rendering
    def _format(self, max_rows: int) -> str:
        from .render import format_table
        t = self._materialize()
        return format_table(t, max_rows)
