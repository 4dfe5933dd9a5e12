"""Artifact records (files a run produced) and their previews, in upstream's shapes."""
from __future__ import annotations

import csv
import json
import secrets
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .atomic import write_bytes_atomic, write_parquet_atomic
from .run_store import iso_utc

__all__ = ["PREVIEW_LIMIT_ROWS", "PREVIEW_LIMIT_BYTES", "output_format", "write_table", "table_artifact",
           "text_artifact", "new_artifact_record", "build_preview", "relimit_preview", "read_artifact_preview",
           "artifact_path", "json_safe"]

PREVIEW_LIMIT_ROWS = 50
PREVIEW_LIMIT_BYTES = 204800
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow"}


def json_safe(value):
    """``value`` with NaN/±Infinity as None, bytes as hex, times as ISO text, so that the result
    is strict JSON (Python's ``json`` would print the invalid tokens ``NaN``/``Infinity``)."""
    import datetime as _dt
    import decimal
    import math
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (_dt.date, _dt.time, _dt.timedelta)):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def output_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``arrow`` from the extension; ValueError otherwise."""
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported output format for path: {path} (use .csv, .parquet, .pq, .arrow or .feather)")
    return fmt


def write_table(table: pa.Table, path: Path) -> str:
    """Write ``table`` to ``path`` atomically in the format its extension names; return the format."""
    fmt = output_format(path)
    if fmt == "parquet":
        write_parquet_atomic(path, table)
    elif fmt == "arrow":
        sink = pa.BufferOutputStream()
        feather.write_feather(table, sink)
        write_bytes_atomic(path, sink.getvalue().to_pybytes())
    else:
        from ..render import value_text
        import io
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(table.schema.names)
        for row in zip(*(c.to_pylist() for c in table.columns)) if table.num_columns else []:
            w.writerow(["" if v is None else value_text(v) for v in row])
        write_bytes_atomic(path, buf.getvalue().encode("utf-8"))
    return fmt


def build_preview(table: pa.Table, limit: int = PREVIEW_LIMIT_ROWS) -> dict:
    """``{schema, rows, row_count, truncated}``: at most ``limit`` rows and 200 KiB of JSON."""
    rows = json_safe(table.slice(0, limit).to_pylist())
    preview = {"schema": table.schema.names, "rows": rows, "row_count": table.num_rows,
               "truncated": table.num_rows > len(rows)}
    return _fit(preview)


def _fit(preview: dict) -> dict:
    while preview["rows"] and len(json.dumps(preview, ensure_ascii=False)) > PREVIEW_LIMIT_BYTES:
        preview["rows"].pop()
        preview["truncated"] = True
    if len(json.dumps(preview, ensure_ascii=False)) > PREVIEW_LIMIT_BYTES:
        preview["rows"] = []
        preview["message"] = "preview truncated to satisfy size limit"
    return preview


def relimit_preview(preview: dict, limit: int, row_count: int | None) -> dict:
    """A cached preview cut to ``limit`` rows, ``truncated`` recomputed."""
    rows = list(preview.get("rows") or [])
    kept = rows[:limit]
    total = row_count if row_count is not None else preview.get("row_count")
    out = {**preview, "rows": kept, "row_count": total}
    out["truncated"] = bool(preview.get("truncated")) or len(rows) > len(kept) or \
        (total is not None and total > len(kept))
    return out


def artifact_path(uri: str) -> Path:
    """The local path of a ``file://`` URI; ValueError for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ValueError(f"unsupported artifact uri: {uri}")
    return Path(url2pathname(parsed.path))  # undoes percent-encoding; Windows drive letters too


def read_artifact_preview(artifact: dict, limit: int) -> dict:
    """Read the artifact's file for a preview (csv values stay strings, as upstream)."""
    path = artifact_path(artifact["uri"])
    fmt = artifact.get("format")
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        preview = {"schema": list(reader.fieldnames or []), "rows": rows[:limit], "row_count": len(rows),
                   "truncated": len(rows) > limit}
        preview = _fit(preview)
    elif fmt == "parquet":
        preview = build_preview(pq.read_table(path), limit)
    elif fmt == "arrow":
        try:
            table = ipc.open_file(path).read_all()
        except pa.ArrowInvalid:
            table = ipc.open_stream(path).read_all()
        preview = build_preview(table, limit)
    else:
        raise ValueError(f"preview unsupported for format: {fmt}")
    if artifact.get("row_count") is not None:
        preview["row_count"] = artifact["row_count"]
        preview["truncated"] = preview["truncated"] or artifact["row_count"] > len(preview["rows"])
    return preview


def new_artifact_record(artifact: dict, run_id: str) -> dict:
    """The action's artifact dict plus ``artifact_id``, ``run_id`` and ``created_at``."""
    return {**artifact, "artifact_id": "artifact_" + secrets.token_hex(8), "run_id": run_id,
            "created_at": iso_utc()}


def table_artifact(table: pa.Table, path: Path, tags: list[str]) -> dict:
    """Write ``table`` to ``path`` and describe it as a table artifact."""
    path = Path(path).resolve()
    fmt = write_table(table, path)
    return {"type": "file", "uri": path.as_uri(), "format": fmt, "row_count": table.num_rows,
            "schema_json": table.schema.names, "preview_json": build_preview(table), "tags_json": tags}


def text_artifact(text: str, path: Path, tags: list[str]) -> dict:
    """Write ``text`` to ``path`` and describe it as a text artifact."""
    path = Path(path).resolve()
    write_bytes_atomic(path, text.encode("utf-8"))
    return {"type": "file", "uri": path.as_uri(), "format": "text", "row_count": None,
            "schema_json": None, "preview_json": None, "tags_json": tags}
