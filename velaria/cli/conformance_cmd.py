"""``velaria conformance [ARGS...]``: run the contract suite (same as ``python -m velaria.conformance``).

Its report is text; the exit code is 0 when every clause passes or is an expected failure.
"""
from __future__ import annotations

import argparse

from .output import Output

__all__ = ["register"]

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


def _handle(args) -> Output:
    from ..conformance.runner import main as conformance_main
    rest = list(args.args)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    try:
        code = conformance_main(rest)
    except SystemExit as exc:  # its own --help exits
        code = exc.code if isinstance(exc.code, int) else 0
    return Output({"ok": code == 0}, text="", exit_code=int(code or 0), text_always=True)
