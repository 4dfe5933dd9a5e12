"""Progress bars for long reads: the typing pass and materialisation of big files.

A bar (rich, which the command line already uses for its tables and spinner) is shown only
when stderr is a terminal and the file is at least ``VELARIA_PROGRESS_MB`` (default 64) MB;
otherwise, and when rich is not installed, nothing is printed. ``VELARIA_PROGRESS=0`` turns
bars off, ``=1`` on for any size (still only on a terminal). Readers report bytes read with
:func:`advance`; the bar that is active in the current context (a context variable, so
sources hold no per-query state) counts them. The bar disappears when the read ends.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from typing import Iterator

__all__ = ["bar", "advance"]

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("velaria_progress", default=None)


def _wanted(total: int) -> bool:
    """Whether a read of ``total`` bytes gets a bar (see the module docstring)."""
    setting = os.environ.get("VELARIA_PROGRESS", "")
    if setting == "0" or not (getattr(sys.stderr, "isatty", None) and sys.stderr.isatty()):
        return False
    threshold = 0 if setting == "1" else float(os.environ.get("VELARIA_PROGRESS_MB", "64")) * (1 << 20)
    return total >= threshold


@contextlib.contextmanager
def bar(total: int, description: str) -> Iterator[None]:
    """Show a byte-count bar of ``total`` while the block runs (see the module docstring).
    A bar inside another bar's block reports to the outer one."""
    if _ACTIVE.get() is not None or not _wanted(total):
        yield
        return
    try:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                   TimeRemainingColumn)
    except ImportError:
        yield
        return
    # the console writes to whatever sys.stderr is now (a test may have replaced it)
    console = Console(file=sys.stderr, force_terminal=True)
    meter = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                     TimeRemainingColumn(), console=console, transient=True)
    task = meter.add_task(description, total=total)
    token = _ACTIVE.set((meter, task))
    meter.start()
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        meter.stop()


def advance(nbytes: int) -> None:
    """Count ``nbytes`` more read on the active bar, if any."""
    active = _ACTIVE.get()
    if active is not None and nbytes > 0:
        meter, task = active
        meter.advance(task, nbytes)
