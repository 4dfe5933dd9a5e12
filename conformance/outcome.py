"""Run one clause in the current process and classify what happened.

This is the only place that turns a clause's exception into a result class; the worker calls
it inside a fresh process per clause (or per declared group), the runner never does.

=======================  ==================================================================
class                    when
=======================  ==================================================================
``pass``                 the clause returned normally
``fail``                 the target answered differently (or raised where it must not)
``diverges-by-design``   a ``diverges`` clause saw exactly native's documented behaviour
``extension``            an ``extension`` clause: the target rejected the feature
``not-supported``        the target lacks the API, or says it is not available
=======================  ==================================================================

``crashed`` and ``timed-out`` are decided outside the process (see :mod:`.worker`).
"""
from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from . import Clause, ClauseFailure, Context, NativeBehaviour, NotSupported

__all__ = ["PASS", "FAIL", "DIVERGES", "EXTENSION", "NOT_SUPPORTED", "CRASHED", "TIMED_OUT", "XFAIL", "XPASS",
           "CLASSES", "FAILING", "Outcome", "run_clause", "standalone_command"]

PASS, FAIL, DIVERGES, EXTENSION = "pass", "fail", "diverges-by-design", "extension"
NOT_SUPPORTED, CRASHED, TIMED_OUT = "not-supported", "crashed", "timed-out"
XFAIL, XPASS = "xfail", "xpass"
CLASSES = (PASS, FAIL, DIVERGES, EXTENSION, NOT_SUPPORTED, CRASHED, TIMED_OUT, XFAIL, XPASS)
#: classes that make a run fail (``xpass``: an expected-failure entry that no longer fails)
FAILING = (FAIL, CRASHED, TIMED_OUT, XPASS)

_SUITE_DIR = Path(__file__).resolve().parent


@dataclass
class Outcome:
    """What one clause did: its class, a detail text and (for failures) a runnable repro."""

    id: str
    cls: str
    detail: str = ""
    repro: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def standalone_command(c: Clause, ctx: Context) -> str:
    """The command line that reruns only this clause against the same target."""
    args = "".join(" --session-arg %s=%s" % kv for kv in ctx.session_kwargs.items())
    return "python -m velaria.conformance --target %s%s --clause %s --verbose%s" % (
        ctx.target_name, ctx.runner_args, c.id, args)


def _repro(c: Clause, ctx: Context, own: str | None) -> str:
    cmd = standalone_command(c, ctx)
    if own:
        return own + "\n# or: " + cmd
    if c.repro:
        return c.repro.format(target=ctx.target_name, session=ctx.session_expr()) + "\n# or: " + cmd
    return cmd


def _missing_attribute(exc: AttributeError, ctx: Context) -> str | None:
    """``Type.name`` when the lookup failed in the suite's own code on a target object, else None
    (an AttributeError raised inside the target is the target's bug, not a missing API)."""
    owner = getattr(exc, "obj", None)
    tb = traceback.extract_tb(exc.__traceback__)
    if owner is None or not tb or Path(tb[-1].filename).resolve().parent != _SUITE_DIR:
        return None
    return "%s.%s" % (ctx.target_name if owner is ctx.target else type(owner).__name__, exc.name)


def run_clause(c: Clause, ctx: Context) -> Outcome:
    """Run clause ``c`` against ``ctx.target`` and classify the result (see the module docstring)."""
    try:
        c.run(ctx)
    except NotSupported as exc:
        if c.extension:
            return Outcome(c.id, EXTENSION, "the target lacks %s (%s)" % (exc.name, exc.why))
        return Outcome(c.id, NOT_SUPPORTED, exc.why)
    except NativeBehaviour as exc:
        if c.diverges:
            return Outcome(c.id, DIVERGES, "%s [row %s]" % (exc.detail, c.diverges), exc.repro or "")
        return Outcome(c.id, FAIL, "clause without a divergence row reported native behaviour: %s" % exc.detail,
                       _repro(c, ctx, exc.repro))
    except ClauseFailure as exc:
        if c.extension and exc.raised:
            return Outcome(c.id, EXTENSION, "%s [row %s]" % (exc, c.extension))
        return Outcome(c.id, FAIL, str(exc), _repro(c, ctx, exc.repro))
    except AssertionError as exc:
        return Outcome(c.id, FAIL, str(exc) or traceback.format_exc(limit=3), _repro(c, ctx, None))
    except AttributeError as exc:
        name = _missing_attribute(exc, ctx)
        if name is not None:
            if c.extension:
                return Outcome(c.id, EXTENSION, "the target lacks %s [row %s]" % (name, c.extension))
            return Outcome(c.id, NOT_SUPPORTED, "the target has no %s" % name)
        return Outcome(c.id, FAIL, "AttributeError: %s\n%s" % (exc, traceback.format_exc(limit=-3)),
                       _repro(c, ctx, None))
    except Exception as exc:  # noqa: BLE001 - anything the target raises is this clause's result
        text = "%s: %s" % (type(exc).__name__, exc)
        if c.extension:
            return Outcome(c.id, EXTENSION, "the target rejected it: %s [row %s]" % (text, c.extension))
        return Outcome(c.id, FAIL, "unexpected %s\n%s" % (text, traceback.format_exc(limit=-3)), _repro(c, ctx, None))
    return Outcome(c.id, PASS)
