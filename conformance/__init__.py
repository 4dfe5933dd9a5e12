"""The Velaria contract suite: clauses that any implementation of the Python API can be run against.

    python -m velaria.conformance --target velaria
    python -m velaria.conformance --python /other/venv/bin/python --target velaria
    python -m velaria.conformance --engine reference --json report.json --markdown report.md

A *clause* is one checkable promise of the contract with a stable id (``sql-filter-001``), a
title, and code that checks it against a target module (any module exposing ``Session``).
Clauses come from two places, both discovered automatically:

* Python modules named ``clauses_*.py`` in this package, which register functions with the
  :func:`clause` decorator (API shapes, Arrow interop, error types, streams, ...);
* sqllogictest-style files ``slt/*.slt`` whose ``# clause: <id> <title>`` headers split them
  into clauses (SQL semantics); see :mod:`.slt`.

A clause that relies on one of our deliberate divergences from native Velaria names its row in
docs/divergences.md (``diverges=<row id>``) and also carries native's documented behaviour: a
target showing exactly that behaviour reports ``diverges-by-design``, anything else fails. A
clause that checks a capability native Velaria lacks names its row with ``extension=<row id>``:
a target that rejects the feature reports ``extension``, a wrong answer still fails.

The suite imports nothing but the standard library, pyarrow and the target, and refers to its
own modules relatively, so the runner can place it on another interpreter's path under a name
of its own (see :mod:`.runner`).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

__all__ = [
    "Clause", "ClauseFailure", "ApiMissing", "NotSupported", "NativeBehaviour", "Context", "clause", "register",
    "all_clauses", "load_all", "SLT_DIR", "is_not_available", "contract_or_native",
]

SLT_DIR = Path(__file__).resolve().parent / "slt"


class ClauseFailure(AssertionError):
    """The target behaves differently from what the clause requires.

    ``repro`` is an optional runnable Python snippet that shows the difference. ``raised`` is
    True when the difference is that the target raised an error where the clause expected an
    answer: for an extension clause that means the target lacks the capability.
    """

    def __init__(self, message: str, repro: str | None = None, *, raised: bool = False):
        super().__init__(message)
        self.repro = repro
        self.raised = raised


class NotSupported(Exception):
    """The target lacks an API the clause needs, or says the API is not available."""

    def __init__(self, name: str, why: str = ""):
        super().__init__(name)
        self.name = name
        self.why = why or "the target has no %s" % name


#: The name earlier clause modules use; missing API and unavailable API are one class.
ApiMissing = NotSupported


class NativeBehaviour(Exception):
    """The target differs from the clause exactly the way native Velaria is documented to.

    Raised only by clauses that carry ``diverges=<row id>``; the runner reports it as
    ``diverges-by-design``. ``detail`` says what was observed.
    """

    def __init__(self, detail: str, repro: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.repro = repro


def contract_or_native(contract: Callable[[], None], native: Callable[[], str | None]) -> None:
    """Check the contract; if it fails, ask ``native`` whether the target shows native Velaria's
    documented behaviour instead (``native`` returns a description of what it saw, or None).

    Raises :class:`NativeBehaviour` in the second case and the contract's failure otherwise;
    clauses tagged ``diverges`` use it so both expectations live side by side.
    """
    try:
        contract()
    except ClauseFailure as failure:
        try:
            seen = native()
        except Exception:  # noqa: BLE001 - not native's behaviour either: report the contract failure
            seen = None
        if seen:
            raise NativeBehaviour(seen, failure.repro) from failure
        raise


def is_not_available(exc: BaseException) -> bool:
    """True when ``exc`` is a target's way of saying "this API exists but is not available yet".

    Recognised: ``NotImplementedError``, an error whose ``error_type`` is ``not_available``, and
    a ``RuntimeError`` whose text says "not available" or "not implemented".
    """
    if isinstance(exc, NotImplementedError):
        return True
    if getattr(exc, "error_type", None) == "not_available":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("not available" in text or "not implemented" in text)


@dataclass
class Clause:
    """One contract clause. ``run(ctx)`` returns normally when the target conforms."""

    id: str
    title: str
    run: Callable[["Context"], None]
    diverges: str | None = None   # docs/divergences.md row id: native differs on purpose
    extension: str | None = None  # docs/divergences.md row id: a capability native lacks
    origin: str = ""
    repro: str | None = None  # a snippet with {target} / {session} placeholders
    group: str | None = None  # clauses of one group may share a worker process

    @property
    def rows(self) -> list[str]:
        """The docs/divergences.md row ids this clause names (``diverges`` or ``extension``)."""
        return [r.strip() for r in (self.diverges or self.extension or "").split(",") if r.strip()]


@dataclass
class Context:
    """What a clause gets: the target module and helpers that report missing API cleanly."""

    target: object
    target_name: str
    session_kwargs: dict = field(default_factory=dict)
    runner_args: str = ""  # e.g. " --python P --target-path D": how a repro command reaches the target

    def api(self, obj, name: str):
        """``getattr(obj, name)``, raising :class:`NotSupported` (``Type.name``) when absent."""
        try:
            return getattr(obj, name)
        except AttributeError:
            owner = obj.__name__ if isinstance(obj, type) or hasattr(obj, "__file__") else type(obj).__name__
            raise NotSupported("%s.%s" % (owner, name)) from None

    def call(self, obj, name: str, *args, **kwargs):
        """Call API ``obj.name(*args, **kwargs)``; missing or "not available" becomes :class:`NotSupported`.

        Use it for capabilities a target may not have yet (the stream API): any other error
        from the target propagates and fails the clause.
        """
        fn = self.api(obj, name)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised unless "not available"
            if is_not_available(exc):
                owner = type(obj).__name__ if not hasattr(obj, "__file__") else obj.__name__
                raise NotSupported("%s.%s" % (owner, name), "%s.%s is not available: %s: %s"
                                   % (owner, name, type(exc).__name__, exc)) from exc
            raise

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


def clause(id: str, title: str, *, diverges: str | None = None, extension: str | None = None,
           repro: str | None = None, group: str | None = None):
    """Decorator: register ``fn(ctx)`` as clause ``id``.

    ``diverges`` / ``extension`` name a docs/divergences.md row (see the module docstring);
    ``group`` lets clauses that share no state run in one worker process.
    """
    if diverges and extension:
        raise ValueError("clause %s: a clause is either a divergence or an extension, not both" % id)

    def deco(fn):
        origin = "%s:%s" % (fn.__module__.rsplit(".", 1)[-1], fn.__code__.co_firstlineno)
        register(Clause(id=id, title=title, run=fn, diverges=diverges, extension=extension, origin=origin,
                        repro=repro, group=group))
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
