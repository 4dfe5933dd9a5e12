"""Checkpoint files: atomic, self-checking, and refused when corrupt, truncated or foreign.

Format (UTF-8 text, one ``key=value`` per line)::

    velaria_stream_checkpoint=1
    query_fingerprint=<sha256 of the query's plan text>
    batches_pulled=... (native Velaria's counters and decisions, in its order)
    ...
    checkpoint_delivery_mode=at-least-once
    state_0=<base64 Arrow IPC stream of operator 0's state, or empty>
    checksum=<sha256 hex of every byte above this line>

Writing: ``<path>.tmp`` is written and fsynced, renamed over ``<path>`` (atomic on POSIX), and
the directory is fsynced, so after a crash the file is either the previous checkpoint or the
new one, never a mix. Reading checks the magic line (foreign file), the checksum line (a
truncated or edited file) and the fingerprint (a checkpoint of another query), and raises
:class:`CheckpointError` naming the file; nothing is loaded from a file that fails a check.
"""
from __future__ import annotations

import base64
import hashlib
import os

import pyarrow as pa

from ..errors import VelariaError

__all__ = ["CheckpointError", "CheckpointData", "write_checkpoint", "read_checkpoint", "COUNTER_KEYS"]

MAGIC = "velaria_stream_checkpoint=1"

#: native Velaria's checkpoint keys, in its order
COUNTER_KEYS = ("batches_pulled", "batches_processed", "blocked_count", "max_backlog_batches",
                "last_source_offset", "requested_execution_mode", "execution_mode", "execution_reason",
                "transport_mode", "aggregate_impl", "aggregate_reason", "estimated_state_size_bytes",
                "estimated_batch_cost", "backpressure_max_queue_batches", "backpressure_high_watermark",
                "backpressure_low_watermark", "checkpoint_delivery_mode")


class CheckpointError(VelariaError):
    """A checkpoint file cannot be written, or is corrupt / truncated / foreign."""


class CheckpointData:
    """What a checkpoint holds: progress fields (``values``) and operator states."""

    def __init__(self, fingerprint: str, values: dict, states: list[pa.Table | None]):
        self.fingerprint = fingerprint
        self.values = values
        self.states = states


def _ipc(table: pa.Table | None) -> str:
    if table is None:
        return ""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def _from_ipc(text: str) -> pa.Table | None:
    if not text:
        return None
    return pa.ipc.open_stream(base64.b64decode(text.encode("ascii"), validate=True)).read_all()


def _clean(v) -> str:
    text = v if isinstance(v, str) else str(v)
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _unclean(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append("\n" if text[i + 1] == "n" else text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def write_checkpoint(path: str, data: CheckpointData) -> None:
    """Atomically replace ``path`` with ``data`` (tmp + fsync + rename + directory fsync)."""
    lines = [MAGIC, f"query_fingerprint={data.fingerprint}"]
    lines += [f"{k}={_clean(data.values.get(k, ''))}" for k in COUNTER_KEYS]
    lines += [f"state_{i}={_ipc(s)}" for i, s in enumerate(data.states)]
    body = ("\n".join(lines) + "\n").encode("utf-8")
    payload = body + f"checksum={hashlib.sha256(body).hexdigest()}\n".encode("ascii")
    directory = os.path.dirname(os.path.abspath(path))
    tmp = path + ".tmp"
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint: {path} ({exc.strerror or exc})") from exc
    try:
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CheckpointError(f"cannot replace checkpoint: {path} ({exc.strerror or exc})") from exc
    try:                                 # the rename itself is durable only with its directory
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise CheckpointError(f"cannot finish checkpoint write: {path} ({exc.strerror or exc})") from exc


def read_checkpoint(path: str, fingerprint: str | None) -> CheckpointData | None:
    """The checkpoint at ``path`` (None if there is no file). Raises :class:`CheckpointError`
    for a corrupt, truncated or foreign file, or one written by a different query (checked
    unless ``fingerprint`` is None: the file's integrity alone, before the query's plan exists)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint: {path} ({exc.strerror or exc})") from exc
    fix = "delete it to start the query from scratch, or point checkpoint_path elsewhere"
    if not raw.startswith(MAGIC.encode() + b"\n"):
        raise CheckpointError(f"checkpoint file {path} is not a Velaria stream checkpoint "
                              f"(first line is not {MAGIC!r}); {fix}")
    end = raw.rfind(b"\nchecksum=")
    if end < 0 or not raw.endswith(b"\n"):
        raise CheckpointError(f"checkpoint file {path} is truncated (no checksum line); {fix}")
    body, tail = raw[:end + 1], raw[end + 1:]
    expected = tail[len(b"checksum="):].strip().decode("ascii", "replace")
    if hashlib.sha256(body).hexdigest() != expected:
        raise CheckpointError(f"checkpoint file {path} is corrupt (checksum mismatch); {fix}")
    values: dict[str, str] = {}
    states: dict[int, pa.Table | None] = {}
    try:
        for line in body.decode("utf-8").splitlines()[1:]:
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"line without '=': {line[:40]!r}")
            if key.startswith("state_"):
                states[int(key[6:])] = _from_ipc(value)
            else:
                values[key] = _unclean(value)
    except (ValueError, UnicodeDecodeError, pa.ArrowInvalid) as exc:
        raise CheckpointError(f"checkpoint file {path} is corrupt ({exc}); {fix}") from exc
    if fingerprint is not None and values.get("query_fingerprint") != fingerprint:
        raise CheckpointError(f"checkpoint file {path} was written by a different query (plan fingerprint "
                              f"{values.get('query_fingerprint', '?')[:12]}..., this query's is {fingerprint[:12]}...); {fix}")
    return CheckpointData(values.get("query_fingerprint", ""), values, [states[i] for i in sorted(states)])
