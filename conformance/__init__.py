"""The Velaria contract suite: clauses that any implementation of the Python API can be run against.

    python -m velaria.conformance --target velaria
    python -m velaria.conformance --target some_other_module --clause sql-join --verbose

A *clause* is one checkable promise of the contract with a stable id (``sql-filter-001``), a
title, and code that checks it against a target module (any module exposing ``Session``).
Clauses come from two places, both discovered automatically:

* Python modules named ``clauses_*.py`` in this package, which register functions with the
  :func:`clause` decorator (API shapes, Arrow interop, error types, ...);
* sqllogictest-style files ``slt/*.slt`` whose ``# clause: <id> <title>`` headers split them
  into clauses (SQL semantics); see :mod:`velaria.conformance.slt`.

A later issue adds its clauses by dropping a new ``clauses_<area>.py`` module or ``.slt`` file
here; nothing else needs to change. A clause that relies on one of our deliberate divergences
from native Velaria (docs/divergences.md) carries ``diverges=<reason>`` (or
``# diverges: <reason>`` in an ``.slt`` file); run against native Velaria it reports
"diverges-by-design" instead of failing.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = [
    "Clause", "ClauseFailure", "ApiMissing", "Context", "clause", "register", "all_clauses",
    "load_all", "SLT_DIR",
]

SLT_DIR = Path(__file__).resolve().parent / "slt"


class ClauseFailure(AssertionError):
    """The target behaves differently from what the clause requires.

    ``repro`` is an optional runnable Python snippet that shows the difference.
    """

    def __init__(self, message: str, repro: str | None = None):
        super().__init__(message)
        self.repro = repro


class ApiMissing(Exception):
    """The target lacks an API the clause needs (reported as that clause's failure)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@dataclass
class Clause:
    """One contract clause. ``run(ctx)`` returns normally when the target conforms."""

    id: str
    title: str
    run: Callable[["Context"], None]
    diverges: str | None = None
    origin: str = ""
    repro: str | None = None  # a snippet with {target} / {session_args} placeholders


@dataclass
class Context:
    """What a clause gets: the target module and helpers that report missing API cleanly."""

    target: object
    target_name: str
    session_kwargs: dict = field(default_factory=dict)

    def api(self, obj, name: str):
        """``getattr(obj, name)``, raising :class:`ApiMissing` (``Type.name``) when absent."""
        try:
            return getattr(obj, name)
        except AttributeError:
            owner = obj.__name__ if isinstance(obj, type) or hasattr(obj, "__file__") else type(obj).__name__
            raise ApiMissing("%s.%s" % (owner, name)) from None

    def session(self):
        """A fresh ``Session`` of the target (with the runner's ``--session-arg`` options)."""
        return self.api(self.target, "Session")(**self.session_kwargs)

    def session_expr(self) -> str:
        """The Python expression a repro uses to build the same Session."""
        args = ", ".join("%s=%r" % kv for kv in self.session_kwargs.items())
        return "target.Session(%s)" % args


_REGISTRY: dict[str, Clause] = {}
_LOADED = False


def register(c: Clause) -> Clause:
    if c.id in _REGISTRY:
        raise ValueError("duplicate conformance clause id %r (%s and %s)" % (c.id, _REGISTRY[c.id].origin, c.origin))
    _REGISTRY[c.id] = c
    return c


def clause(id: str, title: str, *, diverges: str | None = None, repro: str | None = None):
    """Decorator: register ``fn(ctx)`` as clause ``id``."""

    def deco(fn):
        origin = "%s:%s" % (fn.__module__, fn.__code__.co_firstlineno)
        register(Clause(id=id, title=title, run=fn, diverges=diverges, origin=origin, repro=repro))
        return fn

    return deco


def load_all() -> None:
    """Import every ``clauses_*`` module and load every ``slt/*.slt`` file (once)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("clauses_"):
            importlib.import_module("%s.%s" % (__name__, info.name))
    from . import slt

    for path in sorted(SLT_DIR.glob("*.slt")):
        for c in slt.load_file(path):
            register(c)


def all_clauses(prefix: str | None = None) -> list[Clause]:
    """Registered clauses sorted by id, optionally only those whose id starts with ``prefix``."""
    load_all()
    out = [c for c in _REGISTRY.values() if not prefix or c.id.startswith(prefix)]
    return sorted(out, key=lambda c: c.id)
