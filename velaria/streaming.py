"""``StreamingDataFrame`` and ``StreamingQuery``: the Python face of the stream runtime.

A :class:`StreamingDataFrame` is a stream source plus a chain of transforms (each one a batch
plan node: Filter, Project, Aggregate, Limit, or a window assignment). ``write_stream_*``
returns a :class:`StreamingQuery` (not started); ``start()`` opens source and sink,
``await_termination()`` runs it. :class:`RealtimeStreamSource` / :class:`RealtimeStreamSink`
are queues between Python code and a running query.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from .api_types import CellValue, PathArg
from .errors import VelariaError, VelariaValueError
from .plan import logical as L
from .plan.expr import AggregateCall, Call, Cast, Column, Literal
from .plan.types import FLOAT, INT
from .stream.abi import StreamSink
from .stream.plan import StatelessAggregate, StreamPlan, StreamScanSource
from .stream.runtime import StreamRuntime
from .stream.sinks import ConsoleStreamSink, CsvFileStreamSink, QueueStreamSink
from .stream.sources import QueueStreamSource
from .stream.strategy import explain_text, parse_options

__all__ = ["StreamingDataFrame", "StreamingQuery", "RealtimeStreamSource", "RealtimeStreamSink", "SinkSpec"]

_FILTER_OPS = ("=", "==", "!=", "<", ">", "<=", ">=")


class SinkSpec:
    """A CREATE SINK TABLE: a CSV file with declared columns."""

    def __init__(self, path: str, delimiter: str, columns: list[str]):
        self.path, self.delimiter, self.columns = path, delimiter, list(columns)

    def make_sink(self) -> CsvFileStreamSink:
        return CsvFileStreamSink(self.path, self.delimiter, self.columns)


def _names(value, what: str) -> list[str]:
    if isinstance(value, str):
        return list(value)              # native quirk: a str is a sequence of 1-char names
    try:
        names = list(value)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of str, got {type(value).__name__}") from None
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"{what} must be a sequence of str")
    return names


def _column(node: L.Node, name: str) -> Column:
    idx = node.schema.get_field_index(name)
    if idx < 0:
        raise VelariaError(f"column not found: {name} (columns: {', '.join(node.schema.names)})")
    return Column(type=node.schema.field(idx).type, index=idx, name=name)


def _project(node: L.Node, exprs: list, names: list[str]) -> L.Project:
    return L.Project(schema=pa.schema([pa.field(n, e.type) for n, e in zip(names, exprs)]), input=node, exprs=exprs)


class StreamingDataFrame:
    """A stream: a source and the transforms applied to each of its batches."""

    def __init__(self, session, source, transforms=()):
        self._session = session
        self._source = source
        self._transforms = tuple(transforms)

    def _with(self, transform) -> "StreamingDataFrame":
        return StreamingDataFrame(self._session, self._source, self._transforms + (transform,))

    def _plan_over(self, schema: pa.Schema, name: str = "stream") -> L.Node:
        """The plan of this stream over a source with ``schema``."""
        node: L.Node = L.Scan(schema=schema, source=StreamScanSource(schema), table_name=name)
        for t in self._transforms:
            node = t(node)
        return node

    def __repr__(self) -> str:
        return f"StreamingDataFrame(source={self._source.describe()}, transforms={len(self._transforms)})"

    # ---------------------------------------------------------------- transforms
    def select(self, columns: Sequence[str], /) -> "StreamingDataFrame":
        """Keep ``columns`` (a sequence of names), in that order."""
        cols = _names(columns, "select columns")
        return self._with(lambda n: _project(n, [_column(n, c) for c in cols], cols))

    def filter(self, column: str, op: str, value: CellValue | Sequence[float], /) -> "StreamingDataFrame":
        """Keep rows where ``column <op> value``. ``value`` None matches NULL cells with
        ``=`` / ``!=`` only."""
        if not isinstance(column, str) or not isinstance(op, str):
            raise TypeError("filter(column, op, value): column and op must be str")
        if not (value is None or isinstance(value, (bool, int, float, str)) or
                (isinstance(value, (list, tuple)) and all(isinstance(x, (int, float)) for x in value))):
            raise VelariaError("value must be None, int, float, bool, or string")
        if op not in _FILTER_OPS:
            raise VelariaValueError(f"unsupported filter op: {op} (use one of {' '.join(_FILTER_OPS)})")

        def build(n):
            from .reference.functions import OPERATORS
            col = _column(n, column)
            if value is None:
                if op not in ("=", "==", "!="):
                    raise VelariaValueError(f"unsupported filter op: {op} with a None value (use = or !=)")
                pred = Call(type=pa.bool_(), name="is_not_null" if op == "!=" else "is_null", args=(col,))
            else:
                lit_type = {bool: pa.bool_(), int: INT, float: FLOAT, str: pa.string()}.get(type(value), pa.string())
                lit = Literal(type=lit_type, value=value)
                name = "=" if op == "==" else op
                pred = Call(type=OPERATORS[name].result_type([col.type, lit.type]), name=name, args=(col, lit))
            return L.Filter(schema=n.schema, input=n, predicate=pred)
        return self._with(build)

    def with_column(self, name: str, source: str, /) -> "StreamingDataFrame":
        """Append a copy of column ``source`` named ``name``."""
        if not isinstance(name, str) or not isinstance(source, str):
            raise TypeError("with_column(name, source): both must be str")
        return self._with(lambda n: _project(n, [_column(n, c) for c in n.schema.names] + [_column(n, source)],
                                             n.schema.names + [name]))

    def drop(self, column: str, /) -> "StreamingDataFrame":
        """Remove ``column``."""
        if not isinstance(column, str):
            raise TypeError("drop(column): column must be str")

        def build(n):
            _column(n, column)
            keep = [c for c in n.schema.names if c != column]
            return _project(n, [_column(n, c) for c in keep], keep)
        return self._with(build)

    def limit(self, n: int, /) -> "StreamingDataFrame":
        """At most ``n`` rows of each micro-batch."""
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError("limit(n): n must be an int")
        if n < 0:
            raise VelariaValueError(f"limit must be >= 0, got {n}")
        return self._with(lambda node: L.Limit(schema=node.schema, input=node, limit=n))

    def window(self, time_column: str, window_ms: int, output_column: str = "window_start",
               slide_ms: int = 0) -> "StreamingDataFrame":
        """Tumbling (``slide_ms`` 0) or sliding windows over ``time_column``; see
        :mod:`velaria.exec.window` for the rules."""
        from .exec.window import window_node
        for v, what in ((window_ms, "window_ms"), (slide_ms, "slide_ms")):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{what} must be an int")
        if window_ms <= 0:
            raise VelariaValueError(f"window size must be positive (got window_ms={window_ms})")
        if slide_ms > window_ms:
            raise VelariaValueError(f"window slide must be <= window size (got slide_ms={slide_ms}, window_ms={window_ms})")
        return self._with(lambda n: window_node(n, time_column, window_ms, slide_ms, output_column))

    def _group(self, keys, func: str, value_column, stateful, output_column, out_type):
        key_names = _names(keys, "keys")

        def build(n):
            key_cols = [_column(n, k) for k in key_names]
            arg = _column(n, value_column) if value_column is not None else None
            call = AggregateCall(type=INT if func == "count" else (arg.type if pa.types.is_floating(arg.type) else INT),
                                 func=func, arg=arg)
            schema = pa.schema([pa.field(k.name, k.type) for k in key_cols] + [pa.field("__agg_0", call.type)])
            cls = L.Aggregate if stateful else StatelessAggregate
            agg = cls(schema=schema, input=n, keys=key_cols, aggregates=[call])
            exprs = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(schema)]
            last = exprs[-1]
            exprs[-1] = last if last.type.equals(out_type) else Cast(type=out_type, arg=last,
                                                                      target="DOUBLE" if out_type == FLOAT else "BIGINT")
            return _project(agg, exprs, key_names + [output_column])
        return self._with(build)

    def group_sum(self, keys: Sequence[str], value_column: str, stateful: bool = False,
                  output_column: str = "sum") -> "StreamingDataFrame":
        """SUM(value_column) per key: over each batch, or (``stateful``) running totals emitted
        for the keys each batch touches. The value is a float."""
        return self._group(keys, "sum", value_column, bool(stateful), output_column, FLOAT)

    def group_count(self, keys: Sequence[str], stateful: bool = False,
                    output_column: str = "count") -> "StreamingDataFrame":
        """COUNT(*) per key, per batch or (``stateful``) running."""
        return self._group(keys, "count", None, bool(stateful), output_column, INT)

    # ---------------------------------------------------------------- sinks
    def _query(self, sink, sink_name=None, **options) -> "StreamingQuery":
        opts = parse_options(**options)
        session = self._session

        def planner(schema):
            return StreamPlan(self._plan_over(schema), source_name=self._source.describe(), sink_name=sink_name)
        return StreamingQuery(StreamRuntime(planner, self._source, sink, opts, session.kernels))

    def write_stream_csv(self, path: PathArg, delimiter: str = ",", trigger_interval_ms: int = 1000,
                         checkpoint_path: PathArg = "", durability_profile: str | None = None) -> "StreamingQuery":
        """Append each batch to the CSV file ``path`` (not started; call ``start()``)."""
        import os
        return self._query(CsvFileStreamSink(os.fspath(path), delimiter), trigger_interval_ms=trigger_interval_ms,
                           checkpoint_path=checkpoint_path, durability_profile=durability_profile)

    def write_stream_queue_sink(self, sink: "RealtimeStreamSink", trigger_interval_ms: int = 1000,
                                checkpoint_path: PathArg = "", checkpoint_delivery_mode: str = "at-least-once",
                                execution_mode: str = "single-process", local_workers: int = 1,
                                max_inflight_partitions: int = 0,
                                durability_profile: str | None = None) -> "StreamingQuery":
        """Emit each batch into a :class:`RealtimeStreamSink` (not started)."""
        if not isinstance(sink, RealtimeStreamSink):
            raise VelariaError("write_stream_queue_sink expects a RealtimeStreamSink")
        return self._query(sink._sink, trigger_interval_ms=trigger_interval_ms, checkpoint_path=checkpoint_path,
                           checkpoint_delivery_mode=checkpoint_delivery_mode, execution_mode=execution_mode,
                           local_workers=local_workers, max_inflight_partitions=max_inflight_partitions,
                           durability_profile=durability_profile)

    def write_stream_console(self, trigger_interval_ms: int = 1000, checkpoint_path: PathArg = "",
                             durability_profile: str | None = None) -> "StreamingQuery":
        """Print each batch to stdout (not started)."""
        return self._query(ConsoleStreamSink(), trigger_interval_ms=trigger_interval_ms,
                           checkpoint_path=checkpoint_path, durability_profile=durability_profile)

    def write_stream_sink(self, sink: StreamSink, **options: Any) -> "StreamingQuery":
        """Write into any :class:`velaria.stream.StreamSink` (your own included); not started."""
        if not isinstance(sink, StreamSink):
            raise TypeError(f"write_stream_sink expects a velaria.stream.StreamSink, got {type(sink).__name__}")
        return self._query(sink, **options)


class StreamingQuery:
    """A stream query: ``start()``, ``await_termination()``, ``stop()``, ``progress()``."""

    def __init__(self, runtime: StreamRuntime):
        self._rt = runtime

    def __repr__(self) -> str:
        p = self._rt.progress
        return f"StreamingQuery({p.query_id}, status={p.status}, batches_processed={p.batches_processed})"

    def start(self) -> "StreamingQuery":
        """Open source and sink; status ``running``. Returns self."""
        self._rt.start()
        return self

    def await_termination(self, max_batches: int = 0) -> int:
        """Run until the source ends (bounded), ``max_batches`` batches ran in this call
        (when > 0), or ``stop()``; returns the batches processed in this call. An error in a
        transform or the sink sets status ``failed`` and is raised here."""
        return self._rt.await_termination(max_batches)

    def stop(self) -> None:
        """Stop: status ``stopped``; source and sink closed."""
        self._rt.stop()

    def progress(self) -> dict:
        """The contract's progress fields (see docs/streaming.md)."""
        return self._rt.progress.as_dict()

    def snapshot_json(self) -> str:
        """``progress()`` as compact one-line JSON (same keys)."""
        return self._rt.progress.snapshot_json()

    def explain(self) -> str:
        """The three-section explain of this query, from its current decision record."""
        rt = self._rt
        if rt.plan is None:
            raise VelariaError("this query is planned on its first batch (its source's schema is not known yet)")
        return explain_text(rt.plan, rt.decisions, rt.delivery)

    @property
    def delivery(self) -> dict:
        """The end-to-end delivery guarantee of this query and why: ``source``, ``sink``,
        ``sink_guarantee`` (what the sink alone supports), ``checkpoint`` (``none`` or
        ``local-file:<checkpoint_delivery_mode>``), ``profile`` (the durability profile),
        ``source_offsets_in_sink_transaction`` (always False: offsets live in the checkpoint
        file), ``effective`` (the weakest link's guarantee, as ``progress()`` reports it),
        ``limited_by`` (the links that set it, comma-joined) and ``reasons`` (one per such
        link). See docs/delivery.md."""
        return self._rt.delivery.as_dict()


class RealtimeStreamSource:
    """A queue source: push Arrow data or rows while a query runs; ``close()`` ends it."""

    def __init__(self, columns):
        self._source = QueueStreamSource(_names(columns, "columns"))

    @property
    def columns(self) -> list[str]:
        return list(self._source.columns)

    def push_arrow(self, arrow_obj, /) -> None:
        """Queue each batch of ``arrow_obj`` (column names must equal the source's)."""
        from .stream.sources import batches_of
        for b in batches_of(arrow_obj):
            self._source.push(b)

    def push_rows(self, rows, /) -> None:
        """Queue ``rows`` (dicts keyed by column, or sequences as wide as the columns) as one batch."""
        cols = self._source.columns
        data = {c: [] for c in cols}
        for row in rows:
            if isinstance(row, dict):
                for c in cols:
                    data[c].append(row.get(c))
            elif isinstance(row, (list, tuple)):
                if len(row) != len(cols):
                    raise VelariaError("row width does not match realtime source schema")
                for c, v in zip(cols, row):
                    data[c].append(v)
            else:
                raise VelariaError("rows must contain dicts or sequences")
        try:
            # typed by their values, then cast to the source's types by push(): Arrow's
            # conversion straight to a type would truncate 1.5 into an integer column silently
            batch = pa.RecordBatch.from_pydict(data)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise VelariaError(f"realtime rows do not fit the source's column types: {exc}") from exc
        self._source.push(batch)

    def close(self) -> None:
        """No more input: the source becomes bounded and the query ends once it drained."""
        self._source.close_input()


class RealtimeStreamSink:
    """Batches emitted by a running query, polled from Python."""

    def __init__(self):
        self._sink = QueueStreamSink()

    def poll_arrow(self):
        """The oldest emitted batch as a ``pa.Table``, or None (never blocks)."""
        return self._sink.poll()

    def closed(self) -> bool:
        """True once the query finished or was stopped."""
        return self._sink.finished
