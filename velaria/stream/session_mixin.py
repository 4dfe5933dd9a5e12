"""The stream methods of :class:`~velaria.Session` (a mixin, next to the stream runtime)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..api_types import ArrowData, PathArg
from ..catalog import CatalogEntry
from ..errors import SQLSemanticError, SQLUnsupportedError, VelariaError
from ..io.base import ArrowTableSource
from .delivery import delivery_view
from .sources import ArrowStreamSource, CsvDirectorySource, batches_of
from .strategy import StreamDecisions, explain_text, parse_options

if TYPE_CHECKING:  # pragma: no cover
    from ..streaming import RealtimeStreamSink, RealtimeStreamSource, StreamingDataFrame, StreamingQuery
    from .abi import StreamSource

__all__ = ["StreamMethods"]


def _sql_frame(session, stmt):
    from ..streaming import StreamingDataFrame

    class SqlStreamingDataFrame(StreamingDataFrame):
        def _plan_over(self, schema, name="stream"):
            node = stmt.planner(schema).root
            for t in self._transforms:
                node = t(node)
            return node

    return SqlStreamingDataFrame(session, stmt.source_entry.frame._source)


def _planning_schema(source):
    """The schema a stream query is planned over: the source's, or, before any data has
    arrived (an empty directory, an unfed queue), its declared column names with the null
    type, so that planning errors (unknown columns, a bad WINDOW) surface before it runs."""
    schema = source.schema()
    if schema is None and getattr(source, "columns", None):
        import pyarrow as pa
        schema = pa.schema([pa.field(n, pa.null()) for n in source.columns])
    return schema


class StreamMethods:
    """Stream sources, stream views, stream SQL."""

    # ---------------------------------------------------------------- sources
    def create_stream_from_arrow(self, arrow_obj: ArrowData, /) -> "StreamingDataFrame":
        """A bounded stream over Arrow data; each record batch is one micro-batch (a
        RecordBatchReader's batch boundaries are kept). Offset: batches pulled so far."""
        from ..streaming import StreamingDataFrame
        return StreamingDataFrame(self, ArrowStreamSource(batches_of(arrow_obj)))

    def read_stream_csv_dir(self, path: PathArg, delimiter: str = ",") -> "StreamingDataFrame":
        """An unbounded stream over a directory: each CSV file is one batch, in file-name order;
        files appearing later are picked up. Write files elsewhere (or as ``.name`` /
        ``name.tmp``) and rename them into place: such names are never read."""
        from ..io.readers_api import check_delimiter
        from ..streaming import StreamingDataFrame
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"read_stream_csv_dir path must be a str or os.PathLike, got {type(path).__name__}")
        return StreamingDataFrame(self, CsvDirectorySource(os.fspath(path), check_delimiter(delimiter)))

    def create_realtime_stream_source(self, columns: Sequence[str], /) -> "RealtimeStreamSource":
        """A push queue with these column names (see :class:`velaria.streaming.RealtimeStreamSource`)."""
        from ..streaming import RealtimeStreamSource
        return RealtimeStreamSource(columns)

    def read_realtime_stream_source(self, source: "RealtimeStreamSource", /) -> "StreamingDataFrame":
        """A stream over a realtime source."""
        from ..streaming import RealtimeStreamSource, StreamingDataFrame
        if not isinstance(source, RealtimeStreamSource):
            raise VelariaError("read_realtime_stream_source expects a RealtimeStreamSource")
        return StreamingDataFrame(self, source._source)

    def create_realtime_stream_sink(self) -> "RealtimeStreamSink":
        """A queue sink polled with ``poll_arrow()``."""
        from ..streaming import RealtimeStreamSink
        return RealtimeStreamSink()

    def create_stream_from_source(self, source: "StreamSource", /) -> "StreamingDataFrame":
        """A stream over your own :class:`velaria.stream.StreamSource`."""
        from ..streaming import StreamingDataFrame
        from .abi import StreamSource
        if not isinstance(source, StreamSource):
            raise TypeError(f"create_stream_from_source expects a velaria.stream.StreamSource, got {type(source).__name__}")
        return StreamingDataFrame(self, source)

    def _register_stream(self, name: str, stream_df) -> None:
        """Register a stream view; any existing name (batch, stream or sink) is an error."""
        self.context.catalog.register(CatalogEntry(name=name, kind="source", frame=stream_df, stream=True),
                               replace_batch=False)

    def _create_stream_table(self, name: str, kind: str, provider, options: dict, columns: list[str]) -> None:
        """CREATE SOURCE TABLE (a CSV directory stream) / CREATE SINK TABLE (a CSV file sink)."""
        from ..streaming import SinkSpec, StreamingDataFrame
        if provider is not None and provider.strip().lower() != "csv":
            raise SQLUnsupportedError(f"not supported in SQL v1: CREATE {kind.upper()} TABLE only supports csv")
        from ..io.ddl import check_option_keys
        check_option_keys(f"CREATE {kind.upper()} TABLE", f"{kind} tables", ("path", "delimiter"), options)
        delimiter = options.get("delimiter", ",")
        if len(delimiter) != 1:
            raise SQLSemanticError(f"CREATE {kind.upper()} TABLE delimiter must be one character, got {delimiter!r}")
        if not columns:
            raise SQLSemanticError("CREATE TABLE requires at least one column")
        path = options["path"]
        if kind == "sink":
            entry = CatalogEntry(name=name, kind="sink", frame=SinkSpec(path, delimiter, columns), stream=True)
            self.context.catalog.register(entry, replace_batch=False)
            return
        self._register_stream(name, StreamingDataFrame(self, CsvDirectorySource(path, delimiter, columns)))

    # ---------------------------------------------------------------- stream SQL
    def _stream_statement(self, sql, entry_point):
        from .sql_plan import prepare_stream_statement
        stmt = prepare_stream_statement(self, sql, entry_point)
        if stmt.source_entry.frame is None:      # CREATE SOURCE TABLE without a path: its rows
            from ..streaming import StreamingDataFrame
            src = stmt.source_entry.source
            table = src.table if isinstance(src, ArrowTableSource) else None
            stmt.source_entry = CatalogEntry(name=stmt.source_name, kind="source", stream=True,
                                             frame=StreamingDataFrame(self, ArrowStreamSource(batches_of(table))))
        return stmt

    def stream_sql(self, sql: str, /) -> "StreamingDataFrame":
        """A StreamingDataFrame for a stream SELECT (write it with ``write_stream_*``)."""
        stmt = self._stream_statement(sql, "stream_sql")
        frame = _sql_frame(self, stmt)
        schema = _planning_schema(frame._source)
        if schema is not None:
            frame._plan_over(schema)             # planning errors surface now
        return frame

    def explain_stream_sql(self, sql: str, trigger_interval_ms: int = 1000,
                           checkpoint_path: str = "",
                           checkpoint_delivery_mode: str = "at-least-once",
                           execution_mode: str = "single-process", local_workers: int = 1,
                           max_inflight_partitions: int = 0, **options: Any) -> str:
        """Explain a stream SELECT or INSERT INTO ... SELECT: sections ``logical``,
        ``physical``, ``strategy``. Nothing runs. The options are ``start_stream_sql``'s."""
        opts = parse_options(**_upstream_options(locals(), options))
        stmt = self._stream_statement(sql, "explain_stream_sql")
        source = stmt.source_entry.frame._source
        schema = _planning_schema(source)
        if schema is None:
            import pyarrow as pa
            schema = pa.schema([])
        plan = stmt.planner(schema)
        if plan.has_order_by and not source.bounded():
            raise VelariaError("stream ORDER BY requires a bounded source")
        spec = stmt.sink_entry.frame if stmt.sink_entry is not None else None
        sink = spec.make_sink() if hasattr(spec, "make_sink") else None      # not opened: nothing is written
        sink_label = "file_append" if stmt.sink_entry is not None else None
        decisions = StreamDecisions.decide(plan, opts, sink_label, source.bounded(), self.kernels)
        return explain_text(plan, decisions, delivery_view(source, sink, opts))

    def start_stream_sql(self, sql: str, trigger_interval_ms: int = 1000,
                         checkpoint_path: str = "",
                         checkpoint_delivery_mode: str = "at-least-once",
                         execution_mode: str = "single-process", local_workers: int = 1,
                         max_inflight_partitions: int = 0, **options: Any) -> "StreamingQuery":
        """Start ``INSERT INTO sink SELECT ...``; returns the running StreamingQuery. The six
        named options are native Velaria's, in its order (so they may be passed by position);
        the other stream options (``max_inflight_batches``, backpressure watermarks, ...) are
        keyword-only."""
        from ..stream.runtime import StreamRuntime
        from ..streaming import StreamingQuery
        opts = parse_options(**_upstream_options(locals(), options))
        stmt = self._stream_statement(sql, "start_stream_sql")
        spec = stmt.sink_entry.frame
        if spec is None or not hasattr(spec, "make_sink"):
            raise VelariaError(f"stream sink {stmt.sink_name} has no file behind it; create it with "
                               "CREATE SINK TABLE name (cols...) USING csv OPTIONS(path: '<file>')")
        source = stmt.source_entry.frame._source
        runtime = StreamRuntime(stmt.planner, source, spec.make_sink(), opts, self.kernels)
        query = StreamingQuery(runtime)
        query.start()
        return query


#: native Velaria's stream SQL options, in the order its methods take them
UPSTREAM_STREAM_OPTIONS = ("trigger_interval_ms", "checkpoint_path", "checkpoint_delivery_mode",
                           "execution_mode", "local_workers", "max_inflight_partitions")


def _upstream_options(arguments: dict, options: dict) -> dict:
    """The named options of a stream SQL method's ``arguments`` (its ``locals()``) together
    with the keyword-only ``options``."""
    return {**{name: arguments[name] for name in UPSTREAM_STREAM_OPTIONS}, **options}
