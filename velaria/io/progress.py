"""Progress bars for long reads: the typing pass and materialisation of big files.

A bar (tqdm) is shown only when stderr is a terminal and the file is at least
``VELARIA_PROGRESS_MB`` (default 64) MB; otherwise, and when tqdm is not installed, nothing
is printed. ``VELARIA_PROGRESS=0`` turns bars off, ``=1`` on for any size (still only on a
terminal). Readers report bytes read with :func:`advance`; the bar that is active in the
current context (a context variable, so sources hold no per-query state) counts them.
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
    setting = os.environ.get("VELARIA_PROGRESS", "")
    if setting == "0" or not (getattr(sys.stderr, "isatty", None) and sys.stderr.isatty()):
        return False
    threshold = 0 if setting == "1" else float(os.environ.get("VELARIA_PROGRESS_MB", "64")) * (1 << 20)
    return total >= threshold


@contextlib.contextmanager
def bar(total: int, description: str) -> Iterator[None]:
    """Show a byte-count bar of ``total`` while the block runs (see the module docstring)."""
    if _ACTIVE.get() is not None or not _wanted(total):
        yield
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield
        return
    meter = tqdm(total=total, desc=description, unit="B", unit_scale=True, leave=False,
                 file=sys.stderr)
    token = _ACTIVE.set(meter)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        meter.close()


def advance(nbytes: int) -> None:
    """Count ``nbytes`` more read on the active bar, if any."""
    meter = _ACTIVE.get()
    if meter is not None and nbytes > 0:
        meter.update(nbytes)
