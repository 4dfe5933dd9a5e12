"""The run workspace: run directories, the run and artifact index, execution contexts and the
result cache, all under ``VELARIA_HOME``.

Layout (one directory per run, as native Velaria lays it out)::

    $VELARIA_HOME/
      runs/<run_id>/run.json, inputs.json, explain.json, result.json,
                    execution_context.parquet, progress.jsonl, stdout.log, stderr.log,
                    artifacts/...
      index/runs.parquet, index/artifacts.parquet   (queryable with velaria SQL)
"""
from __future__ import annotations

from .context import EXECUTION_CONTEXT_SCHEMA, ExecutionContext, capture_context, read_context, write_context
from .index import ArtifactIndex, RunDeleteConflictError, register_index_views
from .paths import ensure_dirs, get_index_dir, get_runs_dir, get_velaria_home
from .run_store import (append_progress_snapshot, append_stderr, append_stdout, create_run, finalize_run,
                        read_run, update_run, write_explain, write_inputs)

__all__ = ["get_velaria_home", "get_runs_dir", "get_index_dir", "ensure_dirs", "create_run", "read_run",
           "update_run", "finalize_run", "write_inputs", "write_explain", "append_progress_snapshot",
           "append_stdout", "append_stderr", "ArtifactIndex", "RunDeleteConflictError", "register_index_views",
           "EXECUTION_CONTEXT_SCHEMA", "ExecutionContext", "capture_context", "read_context", "write_context"]
