"""The ``velaria`` command (also ``python -m velaria``).

Each subcommand lives in its own module with ``register(subparsers)``; its handler returns an
:class:`~velaria.cli.output.Output`. Every failure a user can cause prints a JSON error document
(or, with ``--format table|csv``, a message on stderr) and exits with 1, never a traceback;
``VELARIA_DEBUG=1`` adds the traceback on stderr for bug reports.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback

from .errors import CliStructuredError, CliUsageError, error_document
from .parsing import JsonArgumentParser, join_dash_values

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES", "CliStructuredError", "CliUsageError"]

#: modules exposing ``register(subparsers)``; one line per module
SUBCOMMAND_MODULES = [
    "velaria.cli.file_sql",
    "velaria.cli.vector_search",
    "velaria.cli.keyword_search",
    "velaria.cli.stream_once",
    "velaria.cli.run_cmd",
    "velaria.cli.artifacts_cmd",
    "velaria.cli.sql_cmd",
    "velaria.cli.probe_cmd",
    "velaria.cli.conformance_cmd",
]

EXAMPLES = """\
examples:
  velaria file-sql --input-path sales.csv --query "SELECT region, SUM(amount) AS total FROM input_table GROUP BY region"
  velaria sql "SELECT * FROM t ORDER BY v DESC LIMIT 5" --table t=data.parquet
  velaria vector-search --input-path docs.parquet --vector-column embedding --query-vector -0.2,0.5,0.1
  velaria run start --tag nightly -- file-sql --input-path sales.csv --query "SELECT COUNT(*) AS n FROM input_table"
  velaria run list --format table
  velaria <command> --help      for each command's flags and examples

Upstream commands (file-sql, vector-search, stream-sql-once, run, artifacts) print one JSON
document; --format table|csv prints a readable table instead. Errors exit with 1.
"""


def build_parser() -> JsonArgumentParser:
    """The full argument parser."""
    from .. import __version__
    parser = JsonArgumentParser(prog="velaria", description="Velaria for Python: a local dataflow engine.",
                                epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"velaria {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=JsonArgumentParser)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _requested_format(argv: list[str]) -> str:
    """The ``--format`` on the command line, for reporting errors before parsing succeeds."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--format="):
            return arg.split("=", 1)[1]
        if arg == "--format" and i + 1 < len(argv):
            return argv[i + 1]
    return "json"


def _reader_went_away() -> int:
    """stdout's reader closed the pipe (``velaria ... | head``): stop quietly with status 1,
    as Python's documentation recommends and as rich does when a table meets the pipe."""
    try:  # nothing more can be written; keep the interpreter's final flush from failing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    from .output import emit, emit_error
    argv = join_dash_values(list(sys.argv[1:] if argv is None else argv))
    fmt = _requested_format(argv)
    if argv[:1] == ["conformance"]:  # the suite parses its own flags (--list, --clause, ...)
        from .conformance_cmd import run_suite
        return run_suite(argv[1:])
    try:
        parser = build_parser()
        if not argv:
            parser.print_help(sys.stdout)
            return 2
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help(sys.stdout)
            return 2
        fmt = getattr(args, "format", fmt)
        out = args.handler(args)
        fmt = getattr(args, "format", fmt)  # run start may learn it from the action's flags
        emit(out, fmt)
        sys.stdout.flush()   # a closed pipe shows here, where it is handled, not at exit
        return out.exit_code
    except BrokenPipeError:
        return _reader_went_away()
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        sys.stderr.write("velaria: interrupted\n")
        return 130
    except BaseException as exc:  # every failure becomes an error document, never a traceback
        if os.environ.get("VELARIA_DEBUG"):
            traceback.print_exc()
        emit_error(error_document(exc), fmt if fmt in ("table", "csv") else "json")
        return 1


if __name__ == "__main__":
    sys.exit(main())
