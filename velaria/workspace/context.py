"""The execution context every run records, with a schema declared in code.

Following orcapod's lesson, the Arrow schema is never inferred from values: an empty
``executor_info`` must still be a ``map<string,string>``. Maps are real Arrow ``map`` columns and
times are ``timestamp[us, tz=UTC]``; :func:`context_to_arrow` and :func:`context_from_arrow`
convert both ways explicitly (``to_pylist`` of a map gives ``(key, value)`` pairs, not a dict),
so a write / read round trip returns equal values and an identical schema.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import write_parquet_atomic

__all__ = ["EXECUTION_CONTEXT_SCHEMA", "SCHEMA_VERSION", "ExecutionContext", "capture_context",
           "context_to_arrow", "context_from_arrow", "write_context", "read_context", "code_version",
           "git_info", "utc_now"]

SCHEMA_VERSION = 1
_STR_MAP = pa.map_(pa.string(), pa.string())
_UTC_TS = pa.timestamp("us", tz="UTC")

EXECUTION_CONTEXT_SCHEMA = pa.schema([
    pa.field("schema_version", pa.int32(), nullable=False),
    pa.field("run_id", pa.string()),
    pa.field("recorded_at", _UTC_TS, nullable=False),
    pa.field("executor_type", pa.string(), nullable=False),
    pa.field("executor_info", _STR_MAP, nullable=False),
    pa.field("python_version", pa.string(), nullable=False),
    pa.field("velaria_version", pa.string(), nullable=False),
    pa.field("engine", pa.string(), nullable=False),
    pa.field("backend", pa.string(), nullable=False),
    pa.field("runtime_mode", pa.string(), nullable=False),
    pa.field("code_version", pa.string(), nullable=False),
    pa.field("git_commit", pa.string()),
    pa.field("git_dirty", pa.bool_()),
    pa.field("git_untracked", pa.bool_()),
    pa.field("git_source", pa.string()),
    pa.field("extra_info", _STR_MAP, nullable=False),
])


def utc_now() -> _dt.datetime:
    """Now, timezone-aware UTC, truncated to microseconds (what Arrow stores)."""
    return _dt.datetime.now(_dt.timezone.utc)


@dataclass
class ExecutionContext:
    """Where and how a run executed (see :data:`EXECUTION_CONTEXT_SCHEMA`).

    ``code_version`` is a content hash of the installed velaria sources, so it changes with any
    code edit, committed or not; the ``git_*`` fields are provenance (``git_source`` says whether
    they describe the repository holding the package or, failing that, the working directory).
    """

    recorded_at: _dt.datetime
    executor_type: str
    python_version: str
    velaria_version: str
    engine: str
    backend: str
    runtime_mode: str
    code_version: str
    run_id: str | None = None
    executor_info: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_untracked: bool | None = None
    git_source: str | None = None
    extra_info: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        """A JSON-ready dict (timestamp as ISO-8601 UTC with ``Z``)."""
        d = asdict(self)
        d["recorded_at"] = self.recorded_at.astimezone(_dt.timezone.utc).isoformat().replace("+00:00", "Z")
        return d


def context_to_arrow(contexts: list[ExecutionContext]) -> pa.Table:
    """A table with exactly :data:`EXECUTION_CONTEXT_SCHEMA`, one row per context."""
    columns = {}
    for f in EXECUTION_CONTEXT_SCHEMA:
        values = [getattr(c, f.name) for c in contexts]
        if pa.types.is_map(f.type):
            values = [None if v is None else sorted((str(k), str(x)) for k, x in v.items()) for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=EXECUTION_CONTEXT_SCHEMA)


def context_from_arrow(table: pa.Table) -> list[ExecutionContext]:
    """The contexts stored in ``table``; raises ValueError if its schema is not the declared one."""
    if not table.schema.equals(EXECUTION_CONTEXT_SCHEMA):
        raise ValueError("execution context table does not have the declared schema "
                         f"(schema_version {SCHEMA_VERSION}); got {table.schema}")
    names = {f.name for f in fields(ExecutionContext)}
    out = []
    for row in table.to_pylist():
        for f in EXECUTION_CONTEXT_SCHEMA:
            if pa.types.is_map(f.type) and row[f.name] is not None:
                row[f.name] = dict(row[f.name])
        ts = row["recorded_at"]
        row["recorded_at"] = ts.astimezone(_dt.timezone.utc)
        out.append(ExecutionContext(**{k: v for k, v in row.items() if k in names}))
    return out


def write_context(path: Path, context: ExecutionContext) -> None:
    """Store one context as Parquet, atomically."""
    write_parquet_atomic(path, context_to_arrow([context]))


def read_context(path: Path) -> ExecutionContext:
    """Read the context stored by :func:`write_context`."""
    return context_from_arrow(pq.read_table(path))[0]


# ---------------------------------------------------------------------------- capture
_CODE_VERSION: str | None = None


def _source_roots() -> list[Path]:
    import velaria
    roots = [Path(velaria.__file__).parent]
    for name in ("velaria.reference", "velaria.accel", "velaria.conformance"):
        try:
            mod = __import__(name, fromlist=["__file__"])
            roots.append(Path(mod.__file__).parent)
        except Exception:  # an optional part that fails to import still has no say in the hash
            continue
    return roots


def code_version(roots: list[Path] | None = None) -> str:
    """``sha256:<hex>`` over the relative paths and bytes of every ``.py``/``.c``/``.h`` file under
    ``roots`` (default: the installed velaria packages). Any source edit changes it."""
    global _CODE_VERSION
    if roots is None and _CODE_VERSION is not None:
        return _CODE_VERSION
    h = hashlib.sha256()
    for root in roots or _source_roots():
        files = sorted(p for p in Path(root).rglob("*")
                       if p.suffix in (".py", ".c", ".h") and "__pycache__" not in p.parts and p.is_file())
        for p in files:
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(p.read_bytes())
            h.update(b"\0")
    value = "sha256:" + h.hexdigest()
    if roots is None:
        _CODE_VERSION = value
    return value


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_info(cwd: Path | None = None) -> dict:
    """``git_commit``, ``git_dirty``, ``git_untracked``, ``git_source`` for the repository that holds
    the velaria package, falling back to the working directory (``git_source="cwd"``); all None
    outside git or without a ``git`` executable."""
    candidates = [("package", _source_roots()[0]), ("cwd", Path(cwd or os.getcwd()))]
    for source, where in candidates:
        commit = _git(where, "rev-parse", "HEAD")
        if commit:
            status = _git(where, "status", "--porcelain") or ""
            lines = [ln for ln in status.splitlines() if ln.strip()]
            return {"git_commit": commit.strip(), "git_source": source,
                    "git_dirty": any(not ln.startswith("??") for ln in lines),
                    "git_untracked": any(ln.startswith("??") for ln in lines)}
    return {"git_commit": None, "git_dirty": None, "git_untracked": None, "git_source": None}


def capture_context(*, run_id: str | None = None, engine: str | None = None,
                    executor_type: str = "local-process", executor_info: dict | None = None,
                    extra_info: dict | None = None) -> ExecutionContext:
    """The context of this process: versions, engine and SIMD backend, code version, git."""
    import velaria
    from ..kernels import kernel_set
    try:
        kernels = kernel_set(engine)
        engine_name, backend = kernels.engine, kernels.backend
    except Exception as exc:  # record why instead of failing the run record
        engine_name, backend = engine or "auto", f"unavailable: {exc}"
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": str(os.cpu_count() or 0), "pid": str(os.getpid())}
    info.update({k: str(v) for k, v in (executor_info or {}).items()})
    return ExecutionContext(
        run_id=run_id, recorded_at=utc_now(), executor_type=executor_type, executor_info=info,
        python_version=platform.python_version(), velaria_version=velaria.__version__,
        engine=engine_name, backend=str(backend), runtime_mode="embedded", code_version=code_version(),
        extra_info={k: str(v) for k, v in (extra_info or {}).items()}, **git_info())
