"""``velaria run``: execute an action as a recorded run, and inspect, compare and clean up runs.

Runs live under ``$VELARIA_HOME/runs/<run_id>/`` (default: the user's data directory); the index
of runs and artifacts is queryable with ``velaria run sql "SELECT ... FROM runs"``.
"""
from __future__ import annotations

import argparse

from .errors import CliStructuredError, CliUsageError
from .output import Output
from .parsing import add_format_option, milliseconds, non_negative_int, positive_int
from .run_start import start

__all__ = ["register", "lookup_run"]

EXAMPLES = """\
examples:
  velaria run start --run-name daily --tag sales -- file-sql --input-path sales.csv \\
      --query "SELECT region, SUM(amount) AS total FROM input_table GROUP BY region"
  velaria run start --cache --timeout-ms 60000 -- vector-search --input-path docs.parquet \\
      --vector-column embedding --query-vector 0.1,-0.2,0.3
  velaria run list --status succeeded --tag sales --format table
  velaria run show --run-id 20260101T120000Z_1a2b3c4d
  velaria run result --run-id 20260101T120000Z_1a2b3c4d --format table
  velaria run diff --run-id <left> --other-run-id <right>
  velaria run sql "SELECT action, COUNT(*) AS n, AVG(duration_ms) AS avg_ms FROM runs GROUP BY action"
  velaria run cleanup --keep-last 20 --delete-files
"""
_RUN_COLUMNS = ["run_id", "created_at", "status", "action", "run_name", "duration_ms", "artifact_count", "tags"]
_ARTIFACT_COLUMNS = ["artifact_id", "run_id", "created_at", "format", "row_count", "tags_json", "uri"]
_DIFF_FIELDS = ("status", "action", "run_name", "description", "tags", "artifact_count", "duration_ms", "error")
_CONTEXT_DIFF_FIELDS = ("engine", "backend", "executor_type", "python_version", "velaria_version", "code_version",
                        "git_commit", "git_dirty", "runtime_mode")


def register(sub) -> None:
    run = sub.add_parser("run", help="recorded runs: start, list, show, status, result, diff, cleanup, sql",
                         description=__doc__, epilog=EXAMPLES)
    rsub = run.add_subparsers(dest="run_command", metavar="RUN_COMMAND", required=True)

    p = rsub.add_parser("start", help="execute an action as a recorded run", epilog=EXAMPLES,
                        description="Execute file-sql, vector-search or stream-sql-once in a new run directory.")
    p.add_argument("--run-name")
    p.add_argument("--description", "--run-description", dest="description")
    p.add_argument("--tag", action="append", default=[], help="tag(s), comma-separated; repeatable")
    p.add_argument("--timeout-ms", type=milliseconds, help="stop the action after this many ms (status timed_out)")
    p.add_argument("--cache", action="store_true",
                   help="reuse the result of an earlier run with the same action, arguments, input content "
                        "and code version")
    add_format_option(p)
    p.add_argument("command_args", nargs=argparse.REMAINDER, metavar="-- ACTION ARGS",
                   help="file-sql | vector-search | stream-sql-once, with that command's flags")
    p.set_defaults(handler=start)

    p = rsub.add_parser("list", help="list runs, newest first")
    p.add_argument("--status")
    p.add_argument("--action")
    p.add_argument("--tag")
    p.add_argument("--query", help="case-insensitive text to find in id, action, name, description, error, tags")
    p.add_argument("--limit", type=positive_int, default=50)
    add_format_option(p)
    p.set_defaults(handler=_list)

    for name, handler, limit, what in (("show", _show, 50, "a run's record, context and artifacts"),
                                       ("status", _status, 20, "a run's status and latest progress"),
                                       ("result", _result, 50, "a preview of a run's result artifact")):
        p = rsub.add_parser(name, help=what)
        p.add_argument("--run-id", required=True)
        p.add_argument("--limit", type=positive_int, default=limit)
        add_format_option(p)
        p.set_defaults(handler=handler)

    p = rsub.add_parser("diff", help="compare two runs' metadata, execution contexts and results")
    p.add_argument("--run-id", required=True)
    p.add_argument("--other-run-id", required=True)
    p.add_argument("--limit", type=positive_int, default=50)
    add_format_option(p)
    p.set_defaults(handler=_diff)

    p = rsub.add_parser("cleanup", help="delete finished runs (never running ones, never files outside "
                                        "VELARIA_HOME)")
    p.add_argument("--keep-last", type=non_negative_int, help="keep the newest N finished runs")
    p.add_argument("--ttl-days", type=float, help="delete finished runs older than this")
    p.add_argument("--delete-files", action="store_true", help="also delete their run directories")
    add_format_option(p)
    p.set_defaults(handler=_cleanup)

    p = rsub.add_parser("sql", help="query the run index with SQL (views: runs, artifacts)")
    p.add_argument("query", help='e.g. "SELECT status, COUNT(*) AS n FROM runs GROUP BY status"')
    add_format_option(p, default="table")
    p.set_defaults(handler=_sql)


def lookup_run(run_id: str) -> dict:
    """``run.json`` of ``run_id`` plus ``artifact_count`` and ``duration_ms``; upstream's
    ``run not found`` error otherwise (also for text that is not a run id)."""
    from ..workspace.index import ArtifactIndex
    from ..workspace.run_store import duration_ms, read_run
    try:
        record = read_run(run_id)
    except (FileNotFoundError, ValueError):
        raise CliStructuredError(f"run not found: {run_id}", error_type="file_not_found", phase="run_lookup",
                                 details={"run_id": run_id}, run_id=run_id) from None
    record["artifact_count"] = len(ArtifactIndex().list_artifacts(limit=1 << 62, run_id=run_id))
    record["duration_ms"] = duration_ms(record)
    return record


def _context(run_id: str) -> dict | None:
    from ..workspace.context import read_context
    from ..workspace.run_store import run_dir
    path = run_dir(run_id) / "execution_context.parquet"
    return read_context(path).to_json() if path.exists() else None


# ---------------------------------------------------------------------------- inspect
def _list(args) -> Output:
    from ..workspace.index import ArtifactIndex
    runs = ArtifactIndex().list_runs(limit=args.limit, status=args.status, action=args.action, tag=args.tag,
                                     query=args.query)
    return Output({"ok": True, "runs": runs}, columns=_RUN_COLUMNS)


def _show(args) -> Output:
    from ..workspace.index import ArtifactIndex
    run = lookup_run(args.run_id)
    run["execution_context"] = _context(args.run_id)
    artifacts = ArtifactIndex().list_artifacts(limit=args.limit, run_id=args.run_id)
    return Output({"ok": True, "run": run, "artifacts": artifacts}, key_values=_flat(run))


def _status(args) -> Output:
    from ..workspace.index import ArtifactIndex
    from ..workspace.run_store import read_progress
    run = lookup_run(args.run_id)
    artifacts = ArtifactIndex().list_artifacts(limit=args.limit, run_id=args.run_id)
    doc = {"ok": True, "run_id": run["run_id"], "status": run["status"], "action": run["action"],
           "artifacts": artifacts, "artifact_count": run["artifact_count"], "duration_ms": run["duration_ms"]}
    progress = read_progress(args.run_id)
    if progress:
        doc["latest_progress"] = progress[-1]
    return Output(doc, key_values={k: v for k, v in doc.items() if k != "artifacts"})


def _result_artifact(index, run_id: str) -> dict | None:
    found = [a for a in index.list_artifacts(limit=1 << 62, run_id=run_id) if "result" in a["tags_json"]]
    return found[0] if found else None


def _preview(index, artifact: dict, limit: int) -> dict:
    from ..workspace.artifacts import read_artifact_preview, relimit_preview
    if artifact.get("preview_json") is not None:
        return relimit_preview(artifact["preview_json"], limit, artifact.get("row_count"))
    try:
        preview = read_artifact_preview(artifact, limit)
    except FileNotFoundError:
        raise CliStructuredError(f"artifact file is missing: {artifact['uri']}", error_type="file_not_found",
                                 phase="artifact_preview", details={"artifact_id": artifact["artifact_id"]}) from None
    except ValueError as exc:
        raise CliStructuredError(str(exc), phase="artifact_preview",
                                 details={"artifact_id": artifact["artifact_id"]}) from None
    index.update_artifact_preview(artifact["artifact_id"], preview)
    return preview


def _result(args) -> Output:
    from ..workspace.index import ArtifactIndex
    run = lookup_run(args.run_id)
    index = ArtifactIndex()
    artifact = _result_artifact(index, args.run_id)
    if artifact is None:
        raise CliStructuredError(f"result artifact not found for run: {args.run_id}", error_type="file_not_found",
                                 phase="run_result", run_id=args.run_id)
    preview = _preview(index, artifact, args.limit)
    return Output({"ok": True, "run": run, "artifact_id": artifact["artifact_id"], "artifact": artifact,
                   "preview": preview})


def _diff(args) -> Output:
    from ..workspace.index import ArtifactIndex
    left, right = lookup_run(args.run_id), lookup_run(args.other_run_id)  # left first: its error wins
    index = ArtifactIndex()
    metadata = {f: {"left": left.get(f), "right": right.get(f)} for f in _DIFF_FIELDS if left.get(f) != right.get(f)}
    lctx, rctx = _context(args.run_id) or {}, _context(args.other_run_id) or {}
    context = {f: {"left": lctx.get(f), "right": rctx.get(f)} for f in _CONTEXT_DIFF_FIELDS
               if lctx.get(f) != rctx.get(f)}
    la, ra = _result_artifact(index, args.run_id), _result_artifact(index, args.other_run_id)
    lp = _preview(index, la, args.limit) if la else None
    rp = _preview(index, ra, args.limit) if ra else None
    lfmt, rfmt = (la or {}).get("format"), (ra or {}).get("format")
    lrows, rrows = (la or {}).get("row_count"), (ra or {}).get("row_count")
    lschema, rschema = (la or {}).get("schema_json"), (ra or {}).get("schema_json")
    comparison = {
        "format": None if lfmt == rfmt else {"left": lfmt, "right": rfmt},
        "row_count": {"left": lrows, "right": rrows,
                      "delta": rrows - lrows if lrows is not None and rrows is not None else None},
        "schema": {"left": lschema, "right": rschema, "equal": lschema == rschema},
        "preview": {"left": lp, "right": rp},
        "rows_equal": _rows_equal(la, ra),
    }
    doc = {"ok": True, "left_run": left, "right_run": right, "metadata_diff": metadata, "context_diff": context,
           "result_diff": {"left_artifact": la, "right_artifact": ra, "comparison": comparison}}
    from .output import cell_text
    summary = {**{f"metadata.{k}": f"{cell_text(v['left'])} -> {cell_text(v['right'])}" for k, v in metadata.items()},
               **{f"context.{k}": f"{cell_text(v['left'])} -> {cell_text(v['right'])}" for k, v in context.items()},
               "result.row_count": f"{lrows} -> {rrows}", "result.schema_equal": lschema == rschema,
               "result.rows_equal": comparison["rows_equal"]}
    return Output(doc, key_values=summary)


def _rows_equal(la: dict | None, ra: dict | None) -> bool | None:
    """Whether two table artifacts hold the same rows in the same order (None if unreadable)."""
    from ..workspace.artifacts import artifact_path
    if not la or not ra or la.get("format") not in ("parquet", "arrow", "csv") or la.get("format") != ra.get("format"):
        return None
    try:
        lp, rp = artifact_path(la["uri"]), artifact_path(ra["uri"])
        if la["format"] == "csv":
            return lp.read_bytes() == rp.read_bytes()
        import pyarrow.feather as feather
        import pyarrow.parquet as pq
        read = pq.read_table if la["format"] == "parquet" else feather.read_table
        return read(lp).equals(read(rp))
    except (OSError, ValueError):
        return None


def _cleanup(args) -> Output:
    from ..workspace.index import ArtifactIndex
    if args.ttl_days is not None and args.ttl_days < 0:
        raise CliUsageError(f"--ttl-days must be >= 0, got {args.ttl_days}")
    out = ArtifactIndex().cleanup_runs(keep_last_n=args.keep_last, ttl_days=args.ttl_days,
                                       delete_files=args.delete_files)
    doc = {**out, "ok": True}
    return Output(doc, key_values={"deleted_runs": len(out["deleted_run_ids"]),
                                   "deleted_dirs": len(out["deleted_run_dirs"]), "backend": out["backend"]})


def _sql(args) -> Output:
    from ..session import Session
    from ..workspace.index import register_index_views
    session = Session()
    register_index_views(session)
    table = session.sql(args.query).to_arrow()
    return Output({"schema": table.schema.names, "rows": table.to_pylist(), "row_count": table.num_rows},
                  table=table)


def _flat(run: dict) -> dict:
    """A run record for a field/value table: the context's fields appear as ``context.<name>``."""
    out = {k: v for k, v in run.items() if k != "execution_context"}
    for k, v in (run.get("execution_context") or {}).items():
        out[f"context.{k}"] = v
    return out
