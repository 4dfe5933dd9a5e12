"""``velaria run start``: execute an action as a recorded run.

The run directory and index entry are created first (status ``running``), the execution context
is captured, then the action runs in a child process (``python -m velaria.cli.run_actions``) with
an optional timeout, or, with ``--cache``, an earlier identical run's result is reused. The run
is finalized as ``succeeded``, ``failed`` or ``timed_out`` and the index updated.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from .output import Output
from .progress import activity

__all__ = ["start", "normalize_tags"]


def normalize_tags(values: list[str]) -> list[str]:
    """Split each value on commas, strip, drop blanks and duplicates (first seen order)."""
    out: list[str] = []
    for value in values:
        for tag in value.split(","):
            tag = tag.strip()
            if tag and tag not in out:
                out.append(tag)
    return out


def start(args) -> Output:
    """``run start``: create the run, capture its context, answer from the cache or run the action."""
    from .. import __version__
    from ..workspace import run_store
    from ..workspace.cache import cache_key, find_cached_run
    from ..workspace.context import capture_context, write_context
    from ..workspace.index import ArtifactIndex
    from .run_actions import action_module, parse_action

    tags = normalize_tags(args.tag)
    action, ns = parse_action(args.command_args)
    if ns.format is not None:  # "--format" written after the action still means the output
        args.format = ns.format
    del ns.format
    action_args = vars(ns)
    run_id, run_dir = run_store.create_run(action, action_args, __version__, args.run_name, args.description, tags)
    run_store.write_inputs(run_id, {"action": action, "action_args": action_args, "run_name": args.run_name,
                                    "description": args.description, "tags": tags, "timeout_ms": args.timeout_ms})
    context = capture_context(run_id=run_id, engine=ns.engine, executor_type="local-subprocess",
                              executor_info={"python_executable": sys.executable,
                                             "timeout_ms": args.timeout_ms or "none"},
                              extra_info={"cache": "on" if args.cache else "off"})
    write_context(run_dir / "execution_context.parquet", context)
    index = ArtifactIndex()
    key = None
    if args.cache:
        try:
            key = cache_key(action, action_args, action_module(action).input_paths(ns), context.code_version)
        except OSError:  # a missing input: no key, and the action itself reports the missing file
            key = None
        if key:
            run_store.update_run(run_id, cache_key=key["cache_key"])
    index.upsert_run(run_store.read_run(run_id), context)
    hit = find_cached_run(index, key["cache_key"]) if key else None
    if hit is not None:
        result = _replay(index, hit["run_id"], run_dir)
    else:
        result = _run_child(run_id, run_dir, args.timeout_ms)

    if "error" in result and "payload" not in result:
        status = "timed_out" if result.get("timed_out") else "failed"
        error_type = result.get("error_type") or ("timeout" if status == "timed_out" else "value_error")
        record = run_store.finalize_run(run_id, status, error=result["error"],
                                        details={"error_type": error_type, "phase": result.get("phase"),
                                                 "error_details": result.get("details") or {}})
        run_store.append_stderr(run_id, result["error"] + "\n" + result.get("traceback", ""))
        index.upsert_run(record, context)
        doc = {"ok": False, "run_id": run_id, "run_dir": str(run_dir), "status": status, "error": result["error"],
               "error_type": error_type, "phase": result.get("phase"), "details": result.get("details") or {}}
        return Output(doc, exit_code=1)

    from ..workspace.artifacts import new_artifact_record
    records = [index.insert_artifact(new_artifact_record(a, run_id)) for a in result["artifacts"]]
    run_store.write_result(run_id, result["payload"])
    details = {}
    for a in records:
        if "explain" in a["tags_json"]:
            details.update(explain_artifact_id=a["artifact_id"], explain_artifact_uri=a["uri"])
    if hit is not None:
        details["cached_from"] = hit["run_id"]
    record = run_store.finalize_run(run_id, "succeeded", details=details)
    index.upsert_run(record, context)
    doc = {"ok": True, "run_id": run_id, "run_dir": str(run_dir), "status": "succeeded", "action": action,
           "tags": tags, "result": result["payload"], "artifacts": records}
    if args.cache:
        doc["cache"] = {"hit": hit is not None, "cache_key": key["cache_key"] if key else None,
                        "from_run_id": hit["run_id"] if hit else None}
    return Output(doc)


def _run_child(run_id: str, run_dir: Path, timeout_ms: int | None) -> dict:
    """Run the action in a child process; its result dict, or a timeout / exit-code error."""
    import json
    with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err, \
            activity(f"run {run_id}") as update:
        proc = subprocess.Popen([sys.executable, "-m", "velaria.cli.run_actions", str(run_dir)],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        started = time.monotonic()
        try:
            while proc.poll() is None:
                elapsed = time.monotonic() - started
                if timeout_ms is not None and elapsed * 1000 >= timeout_ms:
                    _stop(proc)
                    return {"timed_out": True, "error": f"run timed out after {timeout_ms} ms",
                            "error_type": "timeout", "phase": "run_timeout", "details": {"timeout_ms": timeout_ms},
                            "run_id": run_id}
                update(f"run {run_id}: {elapsed:.1f}s")
                time.sleep(0.05)
        except KeyboardInterrupt:  # Ctrl-C: stop the child and record the run as failed, not running
            _stop(proc)
            return {"error": "run interrupted", "error_type": "interrupted", "phase": "run_subprocess"}
    path = run_dir / "_action_result.json"
    if not path.exists():
        return {"timed_out": False, "error": f"action process exited with code {proc.returncode}",
                "error_type": "internal_error", "phase": "run_subprocess", "details": {"exit_code": proc.returncode}}
    return json.loads(path.read_text(encoding="utf-8"))


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the child, killing it if it does not exit within 5 s."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _replay(index, source_run_id: str, run_dir: Path) -> dict:
    """A cache hit: copy the earlier run's artifacts and explain into this run; its payload."""
    from ..workspace.artifacts import artifact_path
    from ..workspace.run_store import read_result, run_dir as dir_of
    artifacts = []
    for a in reversed(index.list_artifacts(limit=1 << 62, run_id=source_run_id)):
        src = artifact_path(a["uri"])
        dst = run_dir / "artifacts" / src.name
        shutil.copy2(src, dst)
        artifacts.append({k: a[k] for k in ("type", "format", "row_count", "schema_json", "preview_json",
                                            "tags_json")} | {"uri": dst.as_uri()})
    explain = dir_of(source_run_id) / "explain.json"
    if explain.exists():
        shutil.copy2(explain, run_dir / "explain.json")
    return {"payload": read_result(source_run_id), "artifacts": artifacts}
