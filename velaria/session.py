"""``Session``: the entry point. Owns a catalog and a kernel set; everything else delegates.

File readers come from :class:`velaria.io.readers_api.ReaderMethods` and vector search from
:class:`velaria.vector.session_api.VectorMethods` (mixins), so each capability lives next to
its implementation.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from . import arrow_interop
from .api_types import ArrowData
from .catalog import Catalog, CatalogEntry
from .dataframe import DataFrame
from .errors import SQLUnsupportedError, VelariaError, VelariaValueError
from .io.base import DEFAULT_BATCH_ROWS, ArrowTableSource, TableSource
from .kernels import kernel_set
from .plan.physical import linearize
from .session_context import SessionContext

if TYPE_CHECKING:  # pragma: no cover
    from .streaming import StreamingDataFrame

__all__ = ["Session"]

from .io.readers_api import ReaderMethods
from .vector.session_api import VectorMethods
from .stream.session_mixin import StreamMethods


class Session(ReaderMethods, VectorMethods, StreamMethods):
    """A local Velaria session.

    ``engine`` picks the kernels: ``"auto"`` (default: the C accelerator where available),
    ``"reference"`` (pure Python, the executable specification) or ``"accel"`` (fail if the
    accelerator is unavailable). ``None`` reads ``$VELARIA_ENGINE``.

    Each Session has its own catalog of temp views and tables.

    ``enable_external_access=False`` forbids SQL statements that read or write files
    (``CREATE TABLE ... OPTIONS(path: ...)``, ``COPY ... TO``), for applications that pass
    user-written SQL through; the Python readers (``read_csv`` ...) are unaffected.

    ``runtime_mode`` says where batch queries run: ``"embedded"`` (default, this process),
    ``"single-node"`` (local worker processes) or ``"distributed"`` (a Dask cluster at
    ``address``, e.g. ``tcp://host:8786``, reached within ``connect_timeout`` seconds).
    ``None`` reads ``$VELARIA_RUNTIME_MODE`` / ``$VELARIA_DASK_ADDRESS``. ``placement``, when
    given, must be the mode's own (``in_process``, ``local_workers``, ``remote_required``);
    ``parallelism`` is the partitions per scan (default: the worker count); ``task_timeout``
    bounds how long a query waits for its tasks. See docs/scale-out.md.
    """

    def __init__(self, engine: str | None = None, *, batch_rows: int | None = None,
                 enable_external_access: bool = True, runtime_mode: str | None = None,
                 address: str | None = None, placement: str | None = None,
                 parallelism: int | None = None, connect_timeout: float = 10.0,
                 task_timeout: float | None = None):
        # batch_rows=None: 65,536-row batches, except that the accelerated engine scans
        # in-memory Arrow tables in their own chunks (no per-batch overhead on data that is
        # already in memory). An explicit value applies to every source.
        if batch_rows is not None:
            if not isinstance(batch_rows, int) or isinstance(batch_rows, bool):
                raise TypeError("batch_rows must be an int")
            if batch_rows < 1:
                raise VelariaValueError(f"batch_rows must be >= 1, got {batch_rows}")
        if not isinstance(enable_external_access, bool):
            raise TypeError("enable_external_access must be a bool")
        # False: SQL text may not name files (for applications that run user-written SQL);
        # the Python readers stay available to the application itself
        self._external_access = enable_external_access
        self.kernels = kernel_set(engine)
        from .runtime import create_runtime, resolve_config
        self.runtime = create_runtime(resolve_config(runtime_mode, address, placement, parallelism,
                                                     connect_timeout, task_timeout))
        self._catalog = Catalog()
        #: what statements, readers and mixins use of this Session (nothing else is theirs)
        self.context = SessionContext(self)
        self._batch_rows = DEFAULT_BATCH_ROWS if batch_rows is None else batch_rows
        # whole chunks only pay off when the accelerated (columnar) kernels run
        self._memory_whole_chunks = batch_rows is None and self.kernels.origin("evaluate") == "accel"

    @property
    def engine(self) -> str:
        """The engine in use: ``auto``, ``reference`` or ``accel``."""
        return self.kernels.engine

    def __repr__(self) -> str:
        return (f"Session(engine={self.engine!r}, backend={self.kernels.backend!r}, "
                f"runtime_mode={self.runtime.mode!r}, tables={self._catalog.names()})")

    # ------------------------------------------------------------------ data in
    def create_dataframe_from_arrow(self, arrow_obj: ArrowData) -> DataFrame:
        """A DataFrame over Arrow data: ``pa.Table``, ``RecordBatch``, ``RecordBatchReader``, any
        ``__arrow_c_stream__`` / ``__arrow_c_array__`` exporter, a list of those, or a dict of lists."""
        table = arrow_interop.to_table(arrow_obj)
        return self._frame_from_source(ArrowTableSource(table), cached=table)

    def create_temp_view(self, name: str, df: "DataFrame | StreamingDataFrame") -> None:
        """Register ``df`` under ``name`` for SQL. An existing batch view of that name is replaced."""
        if not isinstance(name, str):
            raise TypeError(f"create_temp_view name must be a str, got {type(name).__name__}")
        if not name:
            raise ValueError("create_temp_view name cannot be empty")
        from .streaming import StreamingDataFrame
        if isinstance(df, StreamingDataFrame):
            return self._register_stream(name, df)
        if not isinstance(df, DataFrame):
            raise TypeError("create_temp_view expects a DataFrame or StreamingDataFrame")
        self._catalog.register(CatalogEntry(name=name, kind="batch", frame=df))

    def tables(self) -> list[str]:
        """Names registered in this Session's catalog."""
        return self._catalog.names()

    # ------------------------------------------------------------------ SQL
    def sql(self, sql: str, /, params: Sequence[Any] | None = None) -> DataFrame:
        """Run one SQL statement. SELECT returns a lazy DataFrame (planned now, executed on first
        use); other statements run now: CREATE TABLE [AS], INSERT, COPY ... TO, CREATE VIEW and
        DROP return ``ok, message, affected_rows``; DESCRIBE, SHOW TABLES and EXPLAIN return their rows.

        ``params`` (a list or tuple) binds ``$1, $2, ...`` or ``?`` placeholders as typed
        constants (None, bool, int, float, str); the text is never edited.
        """
        from .sql.run import run_sql
        return run_sql(self, sql, params)

    def explain_sql(self, sql: str, /, params: Sequence[Any] | None = None) -> str:
        """Explain a SELECT without running it: sections ``frontend``, ``logical``, ``physical``
        and ``strategy`` rendered from the physical plan's decision record (engine, kernels, paths,
        pushdowns), plus a ``runtime`` section outside embedded mode."""
        from .sql.run import explain_select
        return explain_select(self, sql, params)

    # ------------------------------------------------------------------ for mixins and internals
    def _frame_from_source(self, source: TableSource, cached: pa.Table | None = None) -> DataFrame:
        """A lazy DataFrame that scans ``source``."""
        from .plan import logical as L
        df = DataFrame(self, L.Scan(schema=source.schema, source=source, table_name=source.kind))
        if cached is not None:
            df._table = cached
        return df

    def _frame_from_table(self, table: pa.Table) -> DataFrame:
        return self._frame_from_source(ArrowTableSource(table), cached=table)

    def _hybrid_filter_execution(self, name: str) -> str:
        """How filters of view ``name`` run before a hybrid search, read from the physical
        plan's record: ``none`` (no filter), ``source-pushdown`` (the file source really receives
        filters) or ``post-load-filter`` (filters run after loading)."""
        from .plan import logical as L
        from .plan.optimize import prune
        from .plan.physical import build_physical
        entry = self._catalog.lookup(name)
        node = entry.frame._plan if entry.frame is not None else entry.plan()  # the plan, even if cached
        if not any(isinstance(n, L.Filter) for n in linearize(node)):
            return "none"
        physical = build_physical(prune(node), self.kernels)
        if any(step.pushed_filters and step.node.source.kind in ("csv", "line", "json")
               for step in physical.steps if step.kind == "Scan"):
            return "source-pushdown"
        return "post-load-filter"

    def _check_hybrid_view(self, name: str) -> None:
        """Hybrid search needs a single-source view: no UNION, JOIN or aggregate."""
        from .plan import logical as L
        entry = self._catalog.lookup(name)
        if entry.kind == "sink":
            raise SQLUnsupportedError("hybridSearch only supports single-source DataFrame plans without "
                                      "JOIN, AGGREGATE, or SINK", error_type="unsupported_sql_feature")
        node = entry.frame._plan if entry.frame is not None else entry.plan()
        kinds = {type(n) for n in linearize(node)}
        if kinds & {L.Union, L.SetOp}:
            raise SQLUnsupportedError("hybridSearch only supports single-source DataFrame plans without UNION",
                                      error_type="unsupported_sql_feature",
                                      hint="Materialize the union first: create_dataframe_from_arrow(df.to_arrow()).")
        if kinds & {L.Join, L.Aggregate}:
            raise SQLUnsupportedError("hybridSearch only supports single-source DataFrame plans without "
                                      "JOIN, AGGREGATE, or SINK", error_type="unsupported_sql_feature",
                                      hint="Materialize the result first: create_dataframe_from_arrow(df.to_arrow()).")

    def _materialized_table(self, name: str) -> pa.Table:
        """The rows of catalog table ``name`` as one ``pa.Table`` (raises ``view not found``)."""
        entry = self._catalog.lookup(name)
        if entry.kind != "batch":
            raise VelariaError(f"view not found: {name} (it is a stream {entry.kind} table)")
        if entry.frame is not None:
            return entry.frame.to_arrow()
        if isinstance(entry.source, ArrowTableSource):
            return entry.source.table
        df = DataFrame(self, entry.plan())
        return df.to_arrow()
