"""The ``velaria`` command. Subcommands live in their own modules and register themselves."""
from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "SUBCOMMAND_MODULES"]

#: modules exposing ``register(subparsers)`` and ``run(args) -> int``
SUBCOMMAND_MODULES = ["velaria.cli.sql_cmd", "velaria.cli.vector_search", "velaria.cli.keyword_search"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = argparse.ArgumentParser(prog="velaria", description="Velaria for Python: local dataflow engine")
    parser.add_argument("--version", action="version", version=f"velaria {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        mod = importlib.import_module(name)
        before = set(sub.choices)
        mod.register(sub)
        for command in set(sub.choices) - before:
            sub.choices[command].set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    run = getattr(args, "run", None) or args._module.run
    return int(run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
