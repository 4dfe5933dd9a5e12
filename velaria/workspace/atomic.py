"""Crash-safe files: write to a temp file in the same directory, fsync, rename over the target.

A reader sees either the old file or the new one, never a torn write. ``locked`` serialises
read-modify-write cycles between processes with an advisory lock file.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["write_bytes_atomic", "write_json_atomic", "write_parquet_atomic", "append_line", "locked",
           "json_text"]


def _fsync_dir(directory: Path) -> None:
    # the rename is durable only once the directory entry is on disk (POSIX only)
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_target(path: Path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with _atomic_target(path) as tmp:
        tmp.write_bytes(data)


def json_text(payload) -> str:
    """``payload`` as upstream writes JSON files: ``indent=2``, UTF-8 kept, trailing newline."""
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def write_json_atomic(path: Path, payload) -> None:
    """Replace ``path`` with ``payload`` as JSON, atomically."""
    write_bytes_atomic(path, json_text(payload).encode("utf-8"))


def write_parquet_atomic(path: Path, table: pa.Table) -> None:
    """Replace ``path`` with ``table`` as Parquet, atomically (schema kept exactly)."""
    with _atomic_target(path) as tmp:
        pq.write_table(table, tmp)


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
