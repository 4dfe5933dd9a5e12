"""``velaria probe PATH``: guess a text file's format and columns (``Session.probe``)."""
from __future__ import annotations

from .common import make_session
from .inputs import check_input_path
from .output import Output
from .parsing import add_format_option

__all__ = ["register"]

EXAMPLES = """\
examples:
  velaria probe data.csv
  velaria probe server.log --format table
"""


def register(sub) -> None:
    p = sub.add_parser("probe", help="guess a file's format and columns", description=__doc__, epilog=EXAMPLES)
    p.add_argument("path", help="the file to probe")
    add_format_option(p)
    p.set_defaults(handler=_handle)


def _handle(args) -> Output:
    path = check_input_path(args.path, "probe")
    result = make_session(args).probe(str(path))
    return Output({"ok": True, "path": str(path), "probe": result}, key_values=result)
