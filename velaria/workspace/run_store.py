"""One directory per run: ``run.json`` (status and metadata) and the files a run writes.

Every JSON file is replaced atomically; logs and ``progress.jsonl`` are append-only.
Timestamps are UTC ISO-8601 strings with a ``Z`` suffix and no microseconds, as upstream.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import secrets
from pathlib import Path

from .atomic import append_line, write_json_atomic
from .paths import ensure_dirs, get_runs_dir

__all__ = ["RUN_ID_PATTERN", "TERMINAL_STATUSES", "iso_utc", "parse_iso_utc", "create_run", "run_dir",
           "read_run", "update_run", "finalize_run", "write_inputs", "write_explain", "write_result",
           "read_result", "append_progress_snapshot", "append_stdout", "append_stderr", "read_progress",
           "duration_ms"]

RUN_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z_[0-9a-f]{8}$")
TERMINAL_STATUSES = ("succeeded", "failed", "timed_out")


def iso_utc(when: _dt.datetime | None = None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for ``when`` (default now)."""
    when = when or _dt.datetime.now(_dt.timezone.utc)
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_utc(text: str | None) -> _dt.datetime | None:
    """The aware UTC datetime of an :func:`iso_utc` string (None stays None)."""
    if not text:
        return None
    return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)


def duration_ms(record: dict) -> int | None:
    """``finished_at - created_at`` in ms, floored at 0; None if either is missing."""
    start, end = parse_iso_utc(record.get("created_at")), parse_iso_utc(record.get("finished_at"))
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds() * 1000))


def run_dir(run_id: str) -> Path:
    """The directory of ``run_id``; ValueError for text that is not a run id (no path tricks)."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise ValueError(f"not a run id: {run_id!r} (expected YYYYMMDDTHHMMSSZ_<8 hex digits>)")
    return get_runs_dir() / run_id


def create_run(action: str, args: dict, velaria_version: str, run_name: str | None = None,
               description: str | None = None, tags: list[str] | None = None) -> tuple[str, Path]:
    """Create ``runs/<id>/`` with ``artifacts/``, empty logs and ``run.json`` (status running)."""
    ensure_dirs()
    now = _dt.datetime.now(_dt.timezone.utc)
    while True:
        run_id = now.strftime("%Y%m%dT%H%M%SZ") + "_" + secrets.token_hex(4)
        directory = get_runs_dir() / run_id
        try:
            directory.mkdir()
            break
        except FileExistsError:  # 1 in 4 billion within the same second; pick another suffix
            continue
    (directory / "artifacts").mkdir()
    for name in ("stdout.log", "stderr.log", "progress.jsonl"):
        (directory / name).touch()
    record = {"run_id": run_id, "created_at": iso_utc(now), "action": action, "cli_args": args,
              "velaria_version": velaria_version, "run_dir": str(directory), "status": "running",
              "finished_at": None, "run_name": run_name, "description": description,
              "tags": list(tags or []), "error": None, "details": {}}
    write_json_atomic(directory / "run.json", record)
    return run_id, directory


def read_run(run_id: str) -> dict:
    """``run.json`` of ``run_id``; FileNotFoundError if there is no such run."""
    path = run_dir(run_id) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"run not found: {run_id}")
    return json.loads(path.read_text(encoding="utf-8"))


def update_run(run_id: str, **updates) -> dict:
    """Set the keys of ``updates`` whose value is not None; return the new record."""
    record = read_run(run_id)
    record.update({k: v for k, v in updates.items() if v is not None})
    write_json_atomic(run_dir(run_id) / "run.json", record)
    return record


def finalize_run(run_id: str, status: str, finished_at: str | None = None, error: str | None = None,
                 details: dict | None = None) -> dict:
    """Mark the run ``status`` and finished (now, unless given); set error/details when given."""
    record = read_run(run_id)
    record["status"] = status
    record["finished_at"] = finished_at or iso_utc()
    if error is not None:
        record["error"] = error
    if details:
        record["details"] = {**record.get("details", {}), **details}
    write_json_atomic(run_dir(run_id) / "run.json", record)
    return record


def write_inputs(run_id: str, payload: dict) -> None:
    """``inputs.json``: the action, its arguments and the run options."""
    write_json_atomic(run_dir(run_id) / "inputs.json", payload)


def write_explain(run_id: str, payload: dict) -> None:
    """``explain.json``: ``{"logical","physical","strategy"}`` of the run's query."""
    write_json_atomic(run_dir(run_id) / "explain.json", payload)


def write_result(run_id: str, payload: dict) -> None:
    """``result.json``: the action's JSON payload (kept so a cached run can be answered)."""
    write_json_atomic(run_dir(run_id) / "result.json", payload)


def read_result(run_id: str) -> dict | None:
    """The payload stored by :func:`write_result`, or None."""
    path = run_dir(run_id) / "result.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def append_progress_snapshot(run_id: str, snapshot_json: str) -> None:
    """Append one JSON progress snapshot line to ``progress.jsonl``."""
    append_line(run_dir(run_id) / "progress.jsonl", snapshot_json)


def read_progress(run_id: str) -> list[dict]:
    """Every parseable line of ``progress.jsonl``, in order."""
    path = run_dir(run_id) / "progress.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut short by a killed process: skip it, keep the rest
            continue
    return out


def append_stdout(run_id: str, message: str) -> None:
    """Append ``message`` to the run's ``stdout.log``."""
    append_line(run_dir(run_id) / "stdout.log", message)


def append_stderr(run_id: str, message: str) -> None:
    """Append ``message`` to the run's ``stderr.log``."""
    append_line(run_dir(run_id) / "stderr.log", message)
