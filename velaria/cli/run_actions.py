"""The actions ``run start`` can execute, and the child process that executes one.

The parent (``run start``) writes ``inputs.json`` and starts ``python -m velaria.cli.run_actions
<run_dir>``; this child reads the action from it, runs it with the run's output paths, and
writes ``_action_result.json``: ``{"payload", "artifacts"}`` or an error document with the
traceback. Its stdout and stderr are the run's ``stdout.log`` and ``stderr.log``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path

from .errors import CliStructuredError, CliUsageError, error_document
from .parsing import JsonArgumentParser

__all__ = ["ACTIONS", "parse_action", "action_module", "main"]

#: action name -> module with ``add_arguments``, ``execute`` and ``input_paths``
ACTIONS = {"file-sql": "velaria.cli.file_sql", "vector-search": "velaria.cli.vector_search",
           "stream-sql-once": "velaria.cli.stream_once"}
_DEFAULT_OUTPUT = {"file-sql": "result.parquet", "vector-search": "result.parquet",
                   "stream-sql-once": "stream_result.csv"}


def action_module(action: str):
    """The module implementing ``action``; ``unsupported run action`` otherwise."""
    if action not in ACTIONS:
        raise CliStructuredError(f"unsupported run action: {action} (choose one of {', '.join(ACTIONS)})",
                                 phase="run_action_parse", details={"action": action})
    return importlib.import_module(ACTIONS[action])


def parse_action(command_args: list[str]) -> tuple[str, argparse.Namespace]:
    """``[action, flags...]`` (after ``--``) -> ``(action, namespace)``."""
    args = list(command_args)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        raise CliUsageError("run start requires an action after '--' (example: velaria run start -- file-sql "
                            "--input-path data.csv --query 'SELECT ...')")
    action, rest = args[0], args[1:]
    module = action_module(action)
    parser = JsonArgumentParser(prog=f"velaria run start -- {action}")
    module.add_arguments(parser)
    parser.add_argument("--output-path", help="where the result is written (default: the run's artifacts/)")
    parser.add_argument("--format", choices=["json", "table", "csv"], default=None,
                        help="how run start prints (same as run start --format)")
    return action, parser.parse_args(rest)


def default_output_path(action: str, run_dir: Path, args: argparse.Namespace) -> Path:
    """``--output-path`` if given, else ``<run_dir>/artifacts/<default name>``."""
    if getattr(args, "output_path", None):
        return Path(args.output_path).expanduser().resolve()
    return run_dir / "artifacts" / _DEFAULT_OUTPUT[action]


def _run(run_dir: Path) -> dict:
    inputs = json.loads((run_dir / "inputs.json").read_text(encoding="utf-8"))
    action = inputs["action"]
    module = action_module(action)
    ns = argparse.Namespace(**inputs["action_args"])
    out = module.execute(ns, output_path=default_output_path(action, run_dir, ns), run_id=run_dir.name)
    return {"payload": out["payload"], "artifacts": out["artifacts"]}


def main(argv: list[str] | None = None) -> int:
    """Child entry point: run the action of the run directory ``argv[0]``."""
    from ..workspace.atomic import write_json_atomic
    from ..workspace.artifacts import json_safe
    run_dir = Path((argv or sys.argv[1:])[0])
    try:
        result = _run(run_dir)
    except BaseException as exc:  # the parent reports every failure from this file
        result = error_document(exc)
        result["traceback"] = traceback.format_exc()
        if isinstance(exc, KeyboardInterrupt):
            raise
    write_json_atomic(run_dir / "_action_result.json", json_safe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
