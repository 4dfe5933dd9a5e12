"""``velaria stream-sql-once``: run one stream INSERT INTO query over a CSV directory for a bounded
number of batches, then print the sink's rows and the query's progress.

It needs the stream runtime. In a build without it the command fails cleanly with
``error_type`` ``not_available`` and says so.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .common import add_engine_option, make_session, parse_explain_sections, step
from .errors import CliStructuredError, CliUsageError
from .output import Output
from .parsing import add_format_option, non_negative_int, positive_int

__all__ = ["register", "add_arguments", "execute", "input_paths"]

EXAMPLES = """\
examples:
  velaria stream-sql-once --source-csv-dir in/ --sink-schema "k STRING, n INT" \\
      --query "INSERT INTO output_sink SELECT k, COUNT(*) AS n FROM input_stream GROUP BY k" --max-batches 2
"""


def add_arguments(p) -> None:
    """The flags of stream-sql-once (also accepted by ``run start -- stream-sql-once``)."""
    p.add_argument("--source-csv-dir", required=True, help="directory of CSV files to stream")
    p.add_argument("--source-table", default="input_stream")
    p.add_argument("--source-delimiter", default=",")
    p.add_argument("--sink-table", default="output_sink")
    p.add_argument("--sink-schema", required=True, help="sink columns, e.g. 'k STRING, n INT'")
    p.add_argument("--sink-path", help="sink CSV file (default: a temporary file, or the run's artifacts)")
    p.add_argument("--sink-delimiter", default=",")
    p.add_argument("--query", required=True, help="an INSERT INTO <sink> SELECT ... statement")
    p.add_argument("--trigger-interval-ms", type=non_negative_int, default=0)
    p.add_argument("--checkpoint-delivery-mode", default="at-least-once")
    p.add_argument("--execution-mode", default="single-process")
    p.add_argument("--local-workers", type=positive_int, default=1)
    p.add_argument("--max-inflight-partitions", type=non_negative_int, default=0)
    p.add_argument("--max-batches", type=non_negative_int, default=1)
    add_engine_option(p)


def register(sub) -> None:
    p = sub.add_parser("stream-sql-once", help="run a stream query for a bounded number of batches",
                       description=__doc__, epilog=EXAMPLES)
    add_arguments(p)
    add_format_option(p)
    p.set_defaults(handler=_handle)


def input_paths(args) -> list[str]:
    """The directory whose content the result depends on (for the result cache)."""
    return [args.source_csv_dir]


class _NotAvailable(CliStructuredError):
    def __init__(self, phase: str, cause: Exception, run_id: str | None):
        super().__init__("stream runtime not available in this build; stream-sql-once needs it "
                         "(batch SQL works: use file-sql)", error_type="not_available", phase=phase,
                         details={"cause": str(cause)}, run_id=run_id)


def _call(phase: str, message: str, run_id, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; a missing stream runtime becomes ``not_available``."""
    from ..errors import SQLNotAvailableError
    if fn is None:
        raise _NotAvailable(phase, AttributeError("this Session has no stream source readers"), run_id)
    try:
        return fn(*args, **kwargs)
    except SQLNotAvailableError as exc:
        raise _NotAvailable(phase, exc, run_id) from exc
    except CliStructuredError:
        raise
    except Exception as exc:
        raise CliStructuredError(message, phase=phase, run_id=run_id) from exc


def execute(args, *, output_path: Path | None = None, run_id: str | None = None) -> dict:
    """Run the stream query; ``{"payload", "artifacts", "table"}``."""
    from ..workspace.artifacts import table_artifact
    from ..workspace.run_store import write_explain

    if not args.query.lstrip().upper().startswith("INSERT INTO"):
        raise CliUsageError("--query for stream-sql-once must start with INSERT INTO", run_id=run_id)
    source_dir = Path(args.source_csv_dir).expanduser()
    if not source_dir.is_dir():
        raise CliStructuredError(f"source directory not found: {args.source_csv_dir} (--source-csv-dir takes a "
                                 "directory of CSV files)", error_type="file_not_found", phase="filesystem",
                                 details={"path": str(args.source_csv_dir)}, run_id=run_id)
    if args.sink_path:
        sink_path = Path(args.sink_path).expanduser().resolve()
    elif output_path is not None:
        sink_path = Path(output_path).with_name("stream_result.csv").resolve()
    else:
        sink_path = Path(tempfile.mkdtemp(prefix="velaria-stream-")) / "stream_result.csv"
    max_batches = args.max_batches if args.max_batches > 0 else 1
    session = make_session(args)
    options = dict(trigger_interval_ms=args.trigger_interval_ms, checkpoint_delivery_mode=args.checkpoint_delivery_mode,
                   execution_mode=args.execution_mode, local_workers=args.local_workers,
                   max_inflight_partitions=args.max_inflight_partitions)
    sdf = _call("stream_source_read", "failed to read stream csv directory", run_id,
                getattr(session, "read_stream_csv_dir", None), str(source_dir), delimiter=args.source_delimiter)
    _call("stream_register_view", "failed to register stream temp view", run_id,
          session.create_temp_view, args.source_table, sdf)
    sink_sql = _sink_statement(args.sink_table, args.sink_schema, sink_path, args.sink_delimiter)
    _call("stream_setup", "failed to create sink table", run_id, session.sql, sink_sql)
    explain = _call("stream_explain", "failed to explain stream sql", run_id, session.explain_stream_sql,
                    args.query, **options)
    if run_id is not None:
        write_explain(run_id, parse_explain_sections(explain))
    query = _call("stream_execute", "failed to start stream sql", run_id, session.start_stream_sql,
                  args.query, **options)
    start = getattr(query, "start", None)
    if start is not None:
        _call("stream_start", "failed to start stream execution", run_id, start)
    progress_snapshot_json(run_id, query)
    processed = _call("stream_wait", "failed while waiting for stream execution", run_id,
                      query.await_termination, max_batches=max_batches)
    progress_snapshot_json(run_id, query)
    with step("failed to read stream sink result", "result_materialize", run_id=run_id):
        result = session.read_csv(str(sink_path), delimiter=args.sink_delimiter).to_arrow()
    artifacts = []
    if run_id is not None:
        artifacts.append(table_artifact(result, sink_path, ["result", "stream-sql-once"]))
    payload = {"processed_batches": processed, "schema": result.schema.names, "rows": result.to_pylist(),
               "progress": query.progress()}
    return {"payload": payload, "artifacts": artifacts, "table": result}


def _sink_statement(table: str, schema: str, path: Path, delimiter: str) -> str:
    """The CREATE SINK TABLE statement. The path and delimiter are SQL string literals with
    quotes doubled (the only escape SQL has), so any path works."""
    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"
    if not table.replace("_", "").isalnum():
        raise CliUsageError(f"--sink-table {table!r} must be a plain name (letters, digits, _)")
    return (f"CREATE SINK TABLE {table} ({schema}) USING csv "
            f"OPTIONS(path: {literal(str(path))}, delimiter: {literal(delimiter)})")


def progress_snapshot_json(run_id: str | None, query) -> None:
    """Append the query's ``snapshot_json()`` (or its progress) to the run's progress.jsonl."""
    if run_id is None:
        return
    from ..workspace.run_store import append_progress_snapshot
    snap = getattr(query, "snapshot_json", None)
    if callable(snap):
        append_progress_snapshot(run_id, snap())
    else:
        import json
        append_progress_snapshot(run_id, json.dumps(query.progress(), default=str))


def _handle(args) -> Output:
    out = execute(args)
    return Output(out["payload"], table=out["table"])
