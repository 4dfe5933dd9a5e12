"""The run and artifact index: two Parquet files with declared schemas, queryable with SQL.

``index/runs.parquet`` holds one row per run (its latest state plus its execution context) and
``index/artifacts.parquet`` one row per artifact. Every change is a read-modify-write under an
exclusive lock, written to a temp file and renamed into place, so concurrent ``velaria run``
processes never tear the file or lose each other's rows, and readers never need the lock.
:func:`register_index_views` exposes both as the views ``runs`` and ``artifacts`` of a Session.
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .atomic import locked, write_parquet_atomic
from .context import ExecutionContext
from .paths import ensure_dirs, get_runs_dir, is_inside
from .run_store import RUN_ID_PATTERN, TERMINAL_STATUSES, duration_ms, iso_utc, parse_iso_utc

__all__ = ["RUN_INDEX_SCHEMA", "ARTIFACT_INDEX_SCHEMA", "ArtifactIndex", "RunDeleteConflictError",
           "register_index_views"]

_UTC_TS = pa.timestamp("us", tz="UTC")
_STR_MAP = pa.map_(pa.string(), pa.string())

RUN_INDEX_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("created_at", _UTC_TS), ("finished_at", _UTC_TS), ("status", pa.string()),
    ("action", pa.string()), ("run_name", pa.string()), ("description", pa.string()),
    ("tags", pa.list_(pa.string())), ("error", pa.string()), ("details", pa.string()),
    ("cli_args", pa.string()), ("velaria_version", pa.string()), ("run_dir", pa.string()),
    ("artifact_count", pa.int64()), ("duration_ms", pa.int64()), ("cache_key", pa.string()),
    ("cached_from", pa.string()), ("executor_type", pa.string()), ("executor_info", _STR_MAP),
    ("python_version", pa.string()), ("engine", pa.string()), ("backend", pa.string()),
    ("runtime_mode", pa.string()), ("code_version", pa.string()), ("git_commit", pa.string()),
    ("git_dirty", pa.bool_()), ("extra_info", _STR_MAP),
])

ARTIFACT_INDEX_SCHEMA = pa.schema([
    ("artifact_id", pa.string()), ("run_id", pa.string()), ("created_at", _UTC_TS), ("type", pa.string()),
    ("uri", pa.string()), ("format", pa.string()), ("row_count", pa.int64()), ("schema_json", pa.string()),
    ("preview_json", pa.string()), ("tags", pa.list_(pa.string())),
])

_CONTEXT_COLUMNS = ("executor_type", "executor_info", "python_version", "engine", "backend",
                    "runtime_mode", "code_version", "git_commit", "git_dirty", "extra_info")
_JSON_COLUMNS = ("details", "cli_args")


class RunDeleteConflictError(RuntimeError):
    """A run that is still running (not succeeded, failed or timed out) cannot be deleted."""


class _ParquetTable:
    """A small keyed table in one Parquet file; ``upsert``/``delete`` hold the index lock."""

    def __init__(self, path: Path, schema: pa.Schema, key: str):
        self.path, self.schema, self.key = path, schema, key

    def read(self) -> pa.Table:
        if not self.path.exists():
            return self.schema.empty_table()
        return pq.read_table(self.path, schema=self.schema)

    def rows(self, table: pa.Table | None = None) -> list[dict]:
        """The rows as dicts, map columns as dicts (``to_pylist`` gives them as pairs)."""
        rows = (self.read() if table is None else table).to_pylist()
        for r in rows:
            for f in self.schema:
                if pa.types.is_map(f.type) and r[f.name] is not None:
                    r[f.name] = dict(r[f.name])
        return rows

    def _to_table(self, rows: list[dict]) -> pa.Table:
        cols = {}
        for f in self.schema:
            values = [r.get(f.name) for r in rows]
            if pa.types.is_map(f.type):
                values = [None if v is None else sorted(v.items()) for v in values]
            cols[f.name] = pa.array(values, type=f.type)
        return pa.table(cols, schema=self.schema)

    def positions(self, table: pa.Table, keys) -> list[int]:
        """Row numbers of ``table`` whose key is in ``keys``."""
        mask = pc.is_in(table[self.key], value_set=pa.array(list(keys), pa.string()))
        return pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()

    def get(self, key: str) -> dict | None:
        """The row whose key is ``key``, or None (found in Arrow; only that row becomes a dict)."""
        table = self.read()
        found = self.positions(table, [key])
        return self.rows(table.slice(found[0], 1))[0] if found else None

    def upsert(self, row: dict, merge: bool = True) -> dict:
        """Insert ``row``, or update the row with the same key in place (keeping the columns
        ``row`` lacks when ``merge``). Only the changed row goes through Python objects."""
        with locked(self.path.parent / ".index.lock"):
            table = self.read()
            found = self.positions(table, [row[self.key]])
            if found:
                i = found[0]
                old = self.rows(table.slice(i, 1))[0]
                row = {**old, **row} if merge else {f.name: row.get(f.name) for f in self.schema}
                table = pa.concat_tables([table.slice(0, i), self._to_table([row]), table.slice(i + 1)])
            else:
                row = {f.name: row.get(f.name) for f in self.schema}
                table = pa.concat_tables([table, self._to_table([row])])
            write_parquet_atomic(self.path, table.combine_chunks())
        return row

    def delete(self, keys: set[str]) -> None:
        """Remove the rows whose key is in ``keys``."""
        with locked(self.path.parent / ".index.lock"):
            table = self.read()
            mask = pc.is_in(table[self.key], value_set=pa.array(sorted(keys), pa.string()))
            write_parquet_atomic(self.path, table.filter(pc.invert(pc.fill_null(mask, False))))

    def count(self, column: str, value: str) -> int:
        """How many rows have ``column == value``."""
        table = self.read()
        return int(pc.sum(pc.equal(table[column], value)).as_py() or 0)


def _run_row(run_meta: dict, context: ExecutionContext | None) -> dict:
    row = {f.name: run_meta.get(f.name) for f in RUN_INDEX_SCHEMA if f.name in run_meta}
    for name in ("created_at", "finished_at"):
        if name in run_meta:
            row[name] = parse_iso_utc(run_meta[name])
    for name in _JSON_COLUMNS:
        if name in run_meta:
            row[name] = json.dumps(run_meta[name], ensure_ascii=False, sort_keys=True)
    row["duration_ms"] = duration_ms(run_meta)
    details = run_meta.get("details") or {}
    row["cached_from"] = details.get("cached_from")
    if context is not None:
        row.update({name: getattr(context, name) for name in _CONTEXT_COLUMNS})
    return row


def _run_dict(row: dict) -> dict:
    """An index row as upstream's run dict (ISO times, decoded JSON), plus the context fields."""
    out = dict(row)
    for name in ("created_at", "finished_at"):
        out[name] = iso_utc(row[name]) if row[name] is not None else None
    for name in _JSON_COLUMNS:
        out[name] = json.loads(row[name]) if row[name] else ({} if name == "details" else None)
    out["tags"] = list(row["tags"] or [])
    return out


def _artifact_dict(row: dict) -> dict:
    out = {k: row[k] for k in ("artifact_id", "run_id", "type", "uri", "format", "row_count")}
    out["created_at"] = iso_utc(row["created_at"]) if row["created_at"] else None
    out["schema_json"] = json.loads(row["schema_json"]) if row["schema_json"] else None
    out["preview_json"] = json.loads(row["preview_json"]) if row["preview_json"] else None
    out["tags_json"] = list(row["tags"] or [])
    return out


class ArtifactIndex:
    """The run and artifact index under ``<home>/index`` (backend ``parquet``)."""

    backend = "parquet"

    def __init__(self):
        index_dir = ensure_dirs()["index"]
        self.runs = _ParquetTable(index_dir / "runs.parquet", RUN_INDEX_SCHEMA, "run_id")
        self.artifacts = _ParquetTable(index_dir / "artifacts.parquet", ARTIFACT_INDEX_SCHEMA, "artifact_id")

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its files."""

    # ------------------------------------------------------------------ runs
    def upsert_run(self, run_meta: dict, context: ExecutionContext | None = None) -> dict:
        """Insert or update one run from its ``run.json`` dict (and, once known, its context)."""
        for key in ("run_id", "created_at", "status", "action", "run_dir"):
            if key not in run_meta:
                raise ValueError(f"upsert_run needs {key!r} in the run record")
        row = _run_row(run_meta, context)
        row["artifact_count"] = self.artifacts.count("run_id", run_meta["run_id"])
        return _run_dict(self.runs.upsert(row))

    def get_run(self, run_id: str) -> dict | None:
        """The indexed run, or None."""
        row = self.runs.get(run_id)
        return None if row is None else _run_dict(row)

    def list_runs(self, limit: int = 50, status: str | None = None, action: str | None = None,
                  tag: str | None = None, query: str | None = None) -> list[dict]:
        """Runs newest first, filtered by exact status/action/tag and a case-insensitive
        substring ``query`` over id, action, name, description, error and tags."""
        rows = [_run_dict(r) for r in self.runs.rows()]
        # created_at has whole seconds (upstream's format): runs started in the same second
        # keep their order in the index, which is the order they were created in
        order = sorted(range(len(rows)), key=lambda i: (rows[i]["created_at"] or "", i), reverse=True)
        runs = [rows[i] for i in order]
        out = []
        for r in runs:
            if status and r["status"] != status or action and r["action"] != action:
                continue
            if tag and tag not in r["tags"]:
                continue
            if query:
                hay = " ".join(str(r.get(k) or "") for k in ("run_id", "action", "run_name", "description", "error"))
                if query.lower() not in (hay + " " + " ".join(r["tags"])).lower():
                    continue
            out.append(r)
        return out[:limit]

    # ------------------------------------------------------------------ artifacts
    def insert_artifact(self, meta: dict) -> dict:
        """Insert or replace an artifact record (lists and dicts are stored as JSON)."""
        row = {k: meta.get(k) for k in ("artifact_id", "run_id", "type", "uri", "format", "row_count")}
        row["created_at"] = parse_iso_utc(meta.get("created_at")) or _dt.datetime.now(_dt.timezone.utc)
        for name in ("schema_json", "preview_json"):
            row[name] = None if meta.get(name) is None else json.dumps(meta[name], ensure_ascii=False)
        row["tags"] = list(meta.get("tags_json") or [])
        return _artifact_dict(self.artifacts.upsert(row, merge=False))

    def update_artifact_preview(self, artifact_id: str, preview: dict) -> None:
        """Store a computed preview on an artifact."""
        self.artifacts.upsert({"artifact_id": artifact_id, "preview_json": json.dumps(preview, ensure_ascii=False)})

    def list_artifacts(self, limit: int = 50, run_id: str | None = None, since: str | None = None,
                       tag: str | None = None) -> list[dict]:
        """Artifacts newest first; as upstream, the tag filter applies after the limit."""
        rows = [(i, r) for i, r in enumerate(self.artifacts.rows())
                if (run_id is None or r["run_id"] == run_id)
                and (since is None or (r["created_at"] and iso_utc(r["created_at"]) >= since))]
        rows.sort(key=lambda p: (p[1]["created_at"], p[0]), reverse=True)
        out = [_artifact_dict(r) for _, r in rows[:limit]]
        return [a for a in out if tag is None or tag in a["tags_json"]]

    def get_artifact(self, artifact_id: str) -> dict | None:
        """The artifact record, or None."""
        row = self.artifacts.get(artifact_id)
        return None if row is None else _artifact_dict(row)

    # ------------------------------------------------------------------ deletion
    def delete_run(self, run_id: str, *, delete_files: bool = False) -> str | None:
        """Remove a finished run (and its artifacts) from the index; with ``delete_files`` also
        its run directory, which must lie inside ``<home>/runs``. Returns the directory deleted."""
        run = self.get_run(run_id)
        if run is None:
            raise FileNotFoundError(f"run not found: {run_id}")
        if run["status"] not in TERMINAL_STATUSES:
            raise RunDeleteConflictError(f"run {run_id} is {run['status']}; only succeeded, failed or "
                                         "timed_out runs can be deleted")
        self.artifacts.delete({a["artifact_id"] for a in self.artifacts.rows() if a["run_id"] == run_id})
        self.runs.delete({run_id})
        if delete_files:
            return _remove_run_dir(run_id)
        return None

    def cleanup_runs(self, keep_last_n: int | None = None, ttl_days: float | None = None,
                     delete_files: bool = False) -> dict:
        """Delete finished runs beyond the newest ``keep_last_n`` and/or older than ``ttl_days``
        (with neither, nothing). Running runs are never deleted."""
        finished = [r for r in self.list_runs(limit=1 << 62) if r["status"] in TERMINAL_STATUSES]
        doomed = []
        cutoff = None
        if ttl_days is not None:
            cutoff = iso_utc(_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=ttl_days))
        for pos, r in enumerate(finished):
            too_many = keep_last_n is not None and pos >= keep_last_n
            too_old = cutoff is not None and (r["created_at"] or "") < cutoff
            if too_many or too_old:
                doomed.append(r["run_id"])
        dirs = []
        for run_id in doomed:
            removed = self.delete_run(run_id, delete_files=delete_files)
            if removed:
                dirs.append(removed)
        return {"deleted_run_ids": doomed, "deleted_run_dirs": dirs, "backend": self.backend}


def _remove_run_dir(run_id: str) -> str | None:
    """Remove ``<home>/runs/<run_id>`` if it is a real directory inside the runs directory;
    a symlink there is removed as a link, never followed."""
    if not RUN_ID_PATTERN.match(run_id):
        return None
    runs = get_runs_dir()
    path = runs / run_id
    if path.is_symlink():
        path.unlink()
        return str(path)
    if not path.is_dir() or not is_inside(path, runs):
        return None
    shutil.rmtree(path)
    return str(path)


def register_index_views(session) -> None:
    """Register the index as the views ``runs`` and ``artifacts`` of ``session``."""
    index = ArtifactIndex()
    session.create_temp_view("runs", session.create_dataframe_from_arrow(index.runs.read()))
    session.create_temp_view("artifacts", session.create_dataframe_from_arrow(index.artifacts.read()))


