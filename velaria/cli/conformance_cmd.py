"""``velaria conformance [ARGS...]``: run the contract suite (same as ``python -m velaria.conformance``).

Its report is text; the exit code is 0 when every clause passes or is an expected failure.
"""
from __future__ import annotations

import argparse

from .output import Output

__all__ = ["register", "run_suite"]

EXAMPLES = """\
examples:
  velaria conformance                       run every clause against velaria
  velaria conformance --clause sql          only clauses whose id starts with "sql"
  velaria conformance --list                list clause ids
  velaria conformance --session-arg engine=reference
"""


def register(sub) -> None:
    p = sub.add_parser("conformance", help="run the contract conformance suite", description=__doc__,
                       epilog=EXAMPLES, add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the suite (see --help)")
    p.set_defaults(handler=_handle, format="text")


def run_suite(argv: list[str]) -> int:
    """Run the suite with ``argv`` (its own flags, passed through untouched); its exit code."""
    from ..conformance.runner import main as conformance_main
    rest = argv[1:] if argv[:1] == ["--"] else list(argv)
    try:
        return int(conformance_main(rest) or 0)
    except SystemExit as exc:  # its own --help and usage errors exit
        return exc.code if isinstance(exc.code, int) else 0


def _handle(args) -> Output:
    code = run_suite(list(args.args))
    return Output({"ok": code == 0}, text="", exit_code=code, text_always=True)
