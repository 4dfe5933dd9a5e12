"""``DataFrame``: a lazy, immutable query result.

A DataFrame holds a plan. Planning errors surface when it is created (``Session.sql``);
execution happens on the first materialisation (``to_rows``, ``to_arrow``, ``count``, Arrow
export, ``show``) and the result table is cached on the frame, so later calls are free.
"""
from __future__ import annotations

import sys

import pyarrow as pa

from .api_types import PathArg
from .exec.driver import run_table
from .exec.operators import ExecContext
from .io.base import ArrowTableSource
from .plan import logical as L
from .plan.optimize import prune
from .plan.physical import PhysicalPlan, build_physical

__all__ = ["DataFrame"]

#: rows shown by ``repr`` and in notebooks
_REPR_ROWS = 10


def _out_path(path) -> str:
    from .io.paths import as_path_str

    return as_path_str(path)


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
            self._physical = self._session.runtime.annotate(build_physical(prune(self._plan), kernels))
        return self._physical

    def _materialize(self) -> pa.Table:
        if self._table is None:
            ctx = ExecContext(self._session.kernels, self._session.context.batch_rows,
                              memory_whole_chunks=self._session.context.memory_whole_chunks)
            # embedded runs the batch driver here; other modes partition the plan
            self._table = self._session.runtime.run(self._physical_plan(), ctx, run_table)
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
        from .render import python_values
        t = self._materialize()
        cols = [python_values(c, n) for c, n in zip(t.columns, t.schema.names)]
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

    def run_record(self) -> dict:
        """Where and how this frame runs: runtime mode, placement, backend, parallelism,
        stage and task counts, partitions, shuffle bytes and fallbacks (``ran`` is True once
        it has run, and the counts are then the real ones)."""
        return self._physical_plan().runtime.as_dict()

    def show(self, max_rows: int = 20) -> None:
        """Print the first ``max_rows`` rows as a readable table on ``sys.stdout``."""
        if not isinstance(max_rows, int) or isinstance(max_rows, bool):
            raise TypeError("max_rows must be an int")
        print(self._format(max_rows), file=sys.stdout)

    # ------------------------------------------------------------------ writers
    def write_csv(self, path: PathArg, *, delimiter: str = ",", header: bool = True) -> int:
        """Write the result to a CSV file (header row unless ``header=False``; NULL is an
        empty cell), atomically: a temporary file renamed over ``path``. Returns the rows
        written."""
        from .io.readers_api import check_delimiter
        from .io.writers import write_table

        check_delimiter(delimiter)
        if not isinstance(header, bool):
            raise TypeError("header must be a bool")
        return write_table(self._materialize(), _out_path(path), "csv", delimiter=delimiter,
                           header=header)

    def write_parquet(self, path: PathArg, *, compression: str = "zstd") -> int:
        """Write the result to a Parquet file (types as they are), atomically. Returns the
        rows written."""
        from .io.writers import write_table

        if not isinstance(compression, str):
            raise TypeError("compression must be a str")
        return write_table(self._materialize(), _out_path(path), "parquet",
                           compression=compression)

    def write_json(self, path: PathArg) -> int:
        """Write the result as JSON lines (one object per row), atomically. Returns the rows
        written."""
        from .io.writers import write_table

        return write_table(self._materialize(), _out_path(path), "json")

    def __arrow_c_stream__(self, requested_schema=None):
        """Arrow PyCapsule stream export (pyarrow, polars and duckdb read it without copies)."""
        return self._materialize().__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self):
        return self._plan.schema.__arrow_c_schema__()

    def __arrow_c_array__(self, requested_schema=None):
        """Arrow PyCapsule export of every result row as one struct array (upstream
        compatibility). Chunks are concatenated first: exporting only the first chunk would
        silently drop the rest of the rows."""
        t = self._materialize().combine_chunks()
        batches = t.to_batches()
        batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=t.schema)
        return batch.__arrow_c_array__(requested_schema)

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        """The schema and a preview of the first rows. An executed frame shows its rows; an
        unexecuted one runs the query with a LIMIT (so a large result is not computed just
        to be printed) and keeps nothing."""
        schema = ", ".join(f"{f.name}: {f.type}" for f in self._plan.schema)
        try:
            return f"DataFrame[{schema}]\n{self._preview(_REPR_ROWS, html=False)}"
        except Exception as exc:  # noqa: BLE001 - repr must never raise; show why instead
            return f"DataFrame[{schema}] (execution failed: {exc})"

    def _repr_html_(self) -> str:
        """Notebook display: an HTML table of the first rows (a LIMIT query when the frame
        has not been executed yet)."""
        try:
            return self._preview(_REPR_ROWS, html=True)
        except Exception as exc:  # noqa: BLE001 - display must never raise
            import html

            return f"<pre>DataFrame (execution failed: {html.escape(str(exc))})</pre>"

    # ------------------------------------------------------------------ text rendering
    def _preview(self, rows: int, html: bool) -> str:
        from .render import format_html, format_table

        render = format_html if html else format_table
        if self._table is not None:
            return render(self._table, rows)
        limited = L.Limit(schema=self._plan.schema, input=self._plan, limit=rows + 1)
        head = DataFrame(self._session, limited)._materialize()
        return render(head, rows, total=-1 if head.num_rows > rows else None)

    def _format(self, max_rows: int) -> str:
        from .render import format_table
        t = self._materialize()
        return format_table(t, max_rows)
