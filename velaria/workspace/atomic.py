"""Crash-safe files: write to a temp file in the same directory, fsync, rename over the target.

A reader sees either the old file or the new one, never a torn write. ``locked`` serialises
read-modify-write cycles between processes with an advisory lock file.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["write_bytes_atomic", "write_json_atomic", "write_parquet_atomic", "append_line", "locked",
           "json_text"]


def _write_atomic(path: Path, write) -> None:
    """Create ``path``'s directory, then the io layer's fsync-and-rename write."""
    from ..io.writers import write_atomic
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(path), write)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    _write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def json_text(payload) -> str:
    """``payload`` as upstream writes JSON files: ``indent=2``, UTF-8 kept, trailing newline."""
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, payload) -> None:
    """Replace ``path`` with ``payload`` as JSON, atomically."""
    write_bytes_atomic(path, json_text(payload).encode("utf-8"))


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    """Replace ``path`` with ``table`` as Parquet, atomically (schema kept exactly)."""
    _write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def append_line(path: Path, text: str) -> None:
    """Append ``text`` plus one newline (one ``write`` call, so concurrent lines do not mix)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(text.rstrip("\n") + "\n")


@contextlib.contextmanager
def locked(lock_path: Path):
    """Hold an exclusive advisory lock on ``lock_path`` (created if missing) for the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as f:
        if os.name == "posix":
            import fcntl
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        else:  # Windows: lock the first byte, retrying until it is free
            import msvcrt
            import time
            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    time.sleep(0.01)
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
