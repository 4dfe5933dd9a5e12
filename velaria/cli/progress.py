"""A progress indicator on stderr while a read or run takes time, only when stderr is a terminal
(scripts and pipes see nothing)."""
from __future__ import annotations

import contextlib
import sys

__all__ = ["activity"]


@contextlib.contextmanager
def activity(message: str):
    """Show a spinner with ``message`` during the block; yields ``update(text)``."""
    if not sys.stderr.isatty():
        yield lambda text: None
        return
    try:
        from rich.console import Console
    except ImportError:
        sys.stderr.write(message + " …\n")
        yield lambda text: None
        return
    with Console(stderr=True).status(message) as status:
        yield lambda text: status.update(text)
