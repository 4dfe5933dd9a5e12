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

from .paths import ensure_dirs, get_index_dir, get_runs_dir, get_velaria_home

__all__ = ["get_velaria_home", "get_runs_dir", "get_index_dir", "ensure_dirs"]
