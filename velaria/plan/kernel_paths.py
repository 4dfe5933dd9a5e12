"""Kernel paths reported while an operator runs (the physical plan's ``ran_path``).

A kernel that picks an implementation per call (the accelerated ``evaluate`` fusing a tree
with numexpr, ``filter_batch`` compacting in C, a subtree handed to the reference evaluator)
calls :func:`report`; the operator that called it collects the names with :func:`collecting`
and the physical plan records them after the run, so explain names the path that really ran.
Outside a collecting operator (a kernel called directly) a report is dropped.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["report", "collecting"]

_sink: ContextVar[dict | None] = ContextVar("velaria_kernel_paths", default=None)


def report(path: str) -> None:
    """Note that ``path`` ran inside the current operator (first-use order is kept)."""
    sink = _sink.get()
    if sink is not None:
        sink.setdefault(path, None)


@contextmanager
def collecting(into: dict):
    """Collect the paths reported inside the block into ``into`` (an insertion-ordered dict)."""
    token = _sink.set(into)
    try:
        yield into
    finally:
        _sink.reset(token)
