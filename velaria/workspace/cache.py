"""The result cache: a run's result may be reused only when nothing it depends on changed.

The key hashes the action, its arguments (minus where the output goes), the *content* of every
input file and the code version (a hash of the velaria sources). A changed input byte or a
changed source line gives a new key, so a stale result is never returned.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .artifacts import artifact_path

__all__ = ["content_hash", "cache_key", "find_cached_run"]

_NOT_PART_OF_KEY = {"output_path", "sink_path", "run_id"}


def content_hash(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes, or of a directory's files (relative names and bytes)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def cache_key(action: str, args: dict, input_paths: list[str], code_version: str) -> dict:
    """``{"cache_key", "input_hashes"}`` for an action run over ``input_paths``."""
    hashes = {str(Path(p).expanduser().resolve()): content_hash(Path(p).expanduser()) for p in input_paths}
    material = {"action": action, "args": {k: v for k, v in sorted(args.items()) if k not in _NOT_PART_OF_KEY},
                "inputs": sorted(hashes.values()), "code_version": code_version}
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
    return {"cache_key": "sha256:" + digest, "input_hashes": hashes}


def find_cached_run(index, key: str) -> dict | None:
    """The newest succeeded run with ``key`` whose artifacts are all still on disk, or None."""
    for run in index.list_runs(limit=1 << 62, status="succeeded"):
        if run.get("cache_key") != key:
            continue
        artifacts = index.list_artifacts(limit=1 << 62, run_id=run["run_id"])
        if artifacts and all(os.path.exists(artifact_path(a["uri"])) for a in artifacts):
            return run
    return None
