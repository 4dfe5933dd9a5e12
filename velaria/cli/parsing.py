"""The argument parser: errors become :class:`CliUsageError` (a JSON document, not argparse's
text on stderr) and option values that start with ``-`` (``--query-vector -0.86,0.1``) work."""
from __future__ import annotations

import argparse
import math

from .errors import CliUsageError

__all__ = ["JsonArgumentParser", "HelpFormatter", "join_dash_values", "positive_int", "non_negative_int", "milliseconds",
           "finite_float", "add_format_option", "DASH_VALUE_OPTIONS", "MAX_TOP_K"]

#: options whose value may begin with "-" (a negative number, a vector)
DASH_VALUE_OPTIONS = ("--query-vector", "--where-value", "--score-threshold")
#: a top-k above this cannot be a real request; it would only allocate memory
MAX_TOP_K = 10_000_000


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in descriptions and epilogs exactly as written."""


class JsonArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise :class:`CliUsageError` instead of exiting with 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        if kwargs.get("description"):  # module docstrings double as help: drop their ``code`` marks
            kwargs["description"] = kwargs["description"].replace("``", "")
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise CliUsageError(f"{self.prog}: {message}", details={"hint": f"{self.prog} --help shows the flags and examples"})


def join_dash_values(argv: list[str]) -> list[str]:
    """Rewrite ``--opt VALUE`` as ``--opt=VALUE`` for :data:`DASH_VALUE_OPTIONS`, so that argparse
    does not read a value such as ``-0.86,0.1`` as an unknown option."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":  # everything after belongs to a sub-action: rewrite it too, but keep "--"
            out.append(arg)
        elif arg in DASH_VALUE_OPTIONS and i + 1 < len(argv):
            out.append(f"{arg}={argv[i + 1]}")
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


def _bounded_int(text: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"must be <= {high:,}, got {value:,}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1 and at most :data:`MAX_TOP_K` (a size: top-k, limits, timeouts)."""
    return _bounded_int(text, 1, MAX_TOP_K)


def milliseconds(text: str) -> int:
    """A duration in ms, >= 1 (no upper bound)."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """An int >= 0."""
    return _bounded_int(text, 0)


def finite_float(text: str) -> float:
    """A float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def add_format_option(parser: argparse.ArgumentParser, default: str = "json") -> None:
    """``--format json|table|csv``: JSON for scripts (the default for upstream's commands)."""
    parser.add_argument("--format", choices=["json", "table", "csv"], default=default,
                        help=f"output: json (one document, for scripts), table (readable) or csv "
                             f"(default: {default})")
