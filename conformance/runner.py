"""Run clauses against a target and report, clause by clause.

Outcomes (what the report prints in the ``result`` column):

``pass``                 the target conforms.
``FAIL``                 the target answers differently; a runnable repro is printed.
``error: API missing``   the target lacks an API the clause needs (``Session.sql``, ...).
``error: <Type>``        the clause crashed on an unexpected exception from the target.
``diverges-by-design``   a clause tagged ``diverges`` failed on native Velaria (``--native``):
                         the difference is one of our deliberate divergences (docs/divergences.md).
``xfail``                the clause failed and the xfail file expects that (with a reason).
``XPASS (stale xfail)``  the xfail file lists the clause but it passed: remove the entry.

FAIL, error and stale xfail entries (including ids that match no clause) make the run fail.
"""
from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import ApiMissing, Clause, ClauseFailure, Context, all_clauses

__all__ = ["Result", "Report", "run", "read_xfail", "detect_native", "FAILING"]

PASS, FAIL, DIVERGES, XFAIL, XPASS = "pass", "FAIL", "diverges-by-design", "xfail", "XPASS (stale xfail)"
FAILING = (FAIL, XPASS)


@dataclass
class Result:
    clause: Clause
    outcome: str
    detail: str = ""
    repro: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in FAILING or self.outcome.startswith("error")


@dataclass
class Report:
    target: str
    results: list[Result] = field(default_factory=list)
    unknown_xfails: list[str] = field(default_factory=list)
    native: bool = False

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.unknown_xfails

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            key = "error" if r.outcome.startswith("error") else r.outcome
            out[key] = out.get(key, 0) + 1
        return out

    def format(self, verbose: bool = False) -> str:
        lines = ["Velaria conformance: target=%s%s, %d clauses" % (
            self.target, " (native Velaria: divergences by design allowed)" if self.native else "", len(self.results))]
        w_id = max([len(r.clause.id) for r in self.results] + [2])
        w_t = min(max([len(r.clause.title) for r in self.results] + [5]), 70)
        lines.append("%-*s  %-*s  %s" % (w_id, "id", w_t, "title", "result"))
        lines.append("%s  %s  %s" % ("-" * w_id, "-" * w_t, "-" * 20))
        for r in self.results:
            title = r.clause.title if len(r.clause.title) <= w_t else r.clause.title[: w_t - 3] + "..."
            lines.append("%-*s  %-*s  %s" % (w_id, r.clause.id, w_t, title, r.outcome))
            if verbose and r.detail and not r.failed:
                lines.append("    " + r.detail.replace("\n", "\n    "))
        for entry in self.unknown_xfails:
            lines.append("stale xfail entry: %s" % entry)
        if self.failures:
            lines.append("")
            lines.append("=" * 30 + " failures " + "=" * 30)
            for r in self.failures:
                lines.append("--- %s  %s  [%s]  (%s)" % (r.clause.id, r.clause.title, r.outcome, r.clause.origin))
                if r.detail:
                    lines.append(r.detail)
                if r.repro:
                    lines.append("repro:")
                    lines.append(r.repro)
                lines.append("")
        c = self.counts()
        lines.append("summary: " + ", ".join("%d %s" % (n, k) for k, n in sorted(c.items()))
                     + (", %d unknown xfail entries" % len(self.unknown_xfails) if self.unknown_xfails else ""))
        lines.append("RESULT: %s" % ("OK" if self.ok else "FAILED"))
        return "\n".join(lines)


def read_xfail(path: str | Path) -> dict[str, str]:
    """Read an xfail file: one ``<clause id or glob>  [# reason]`` per line; ``#`` lines are comments."""
    out: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry, _, reason = line.partition("#")
        out[entry.strip()] = reason.strip()
    return out


def detect_native(module) -> bool:
    """True when ``module`` looks like native Velaria (it has the ``_velaria`` C extension)."""
    if hasattr(module, "_velaria"):
        return True
    name = getattr(module, "__name__", "")
    try:
        return importlib.util.find_spec(name + "._velaria") is not None
    except (ImportError, ValueError):
        return False


def _standalone_repro(c: Clause, ctx: Context) -> str:
    args = " ".join("--session-arg %s=%s" % kv for kv in ctx.session_kwargs.items())
    cmd = "python -m velaria.conformance --target %s --clause %s --verbose%s" % (
        ctx.target_name, c.id, " " + args if args else "")
    if c.repro:
        return c.repro.format(target=ctx.target_name, session=ctx.session_expr()) + "\n# or: " + cmd
    return cmd


def run_clause(c: Clause, ctx: Context, native: bool, xfail_reason: str | None) -> Result:
    try:
        c.run(ctx)
    except ApiMissing as exc:
        outcome, detail, repro = "error: API missing (%s)" % exc.name, "the target has no %s" % exc.name, ""
    except ClauseFailure as exc:
        outcome, detail, repro = FAIL, str(exc), exc.repro or _standalone_repro(c, ctx)
    except AssertionError as exc:
        outcome, detail, repro = FAIL, str(exc) or traceback.format_exc(limit=3), _standalone_repro(c, ctx)
    except AttributeError as exc:
        owner = getattr(exc, "obj", None)
        tb = traceback.extract_tb(exc.__traceback__)
        # Missing API = the attribute lookup failed in the clause's own code, on a target object
        # (an AttributeError raised inside the target is the target's bug, reported as an error).
        in_clause = bool(tb) and Path(tb[-1].filename).resolve().parent == Path(__file__).resolve().parent
        if owner is not None and in_clause:
            name = "%s.%s" % (type(owner).__name__ if owner is not ctx.target else ctx.target_name, exc.name)
            outcome, detail, repro = "error: API missing (%s)" % name, "the target has no %s" % name, ""
        else:
            outcome, detail, repro = ("error: AttributeError", traceback.format_exc(limit=-3),
                                      _standalone_repro(c, ctx))
    except Exception as exc:  # noqa: BLE001 - anything the target raises is reported, never crashes the run
        outcome = "error: %s" % type(exc).__name__
        detail, repro = "%s: %s\n%s" % (type(exc).__name__, exc, traceback.format_exc(limit=-3)), _standalone_repro(c, ctx)
    else:
        if xfail_reason is not None:
            return Result(c, XPASS, "listed in the xfail file (%s) but passes: remove the entry" % (xfail_reason or "no reason"))
        return Result(c, PASS)
    if c.diverges and native:
        return Result(c, DIVERGES, "%s\n(diverges by design: %s)" % (detail, c.diverges), repro)
    if xfail_reason is not None:
        return Result(c, XFAIL, "%s\n(xfail: %s)" % (detail, xfail_reason or "no reason given"), repro)
    return Result(c, outcome, detail, repro)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def run(target, *, clause_prefix: str | None = None, xfail: dict[str, str] | None = None,
        session_kwargs: dict | None = None, native: bool | None = None) -> Report:
    """Run the (selected) clauses against ``target`` (a module object or an importable name)."""
    if isinstance(target, str):
        name = target
        target = importlib.import_module(target)
    else:
        name = getattr(target, "__name__", repr(target))
    if native is None:
        native = detect_native(target)
    ctx = Context(target=target, target_name=name, session_kwargs=dict(session_kwargs or {}))
    xfail = dict(xfail or {})
    selected = all_clauses(clause_prefix)
    report = Report(target=name, native=native)
    failed_by_glob: set[str] = set()
    seen: set[str] = set()
    for c in selected:
        entry = None
        if c.id in xfail:
            entry = c.id
        else:
            entry = next((p for p in xfail if _is_glob(p) and fnmatch.fnmatchcase(c.id, p)), None)
        if entry is None:
            report.results.append(run_clause(c, ctx, native, None))
            continue
        seen.add(entry)
        if _is_glob(entry):
            # A glob marks a family: its clauses may fail; it is stale only if none of them fails.
            r = run_clause(c, ctx, native, xfail[entry])
            if r.outcome == XPASS:
                r = Result(c, PASS)
            else:
                failed_by_glob.add(entry)
            report.results.append(r)
        else:
            report.results.append(run_clause(c, ctx, native, xfail[entry]))
    every = [c.id for c in all_clauses()]
    for pattern in xfail:
        if not any(pattern == i or fnmatch.fnmatchcase(i, pattern) for i in every):
            report.unknown_xfails.append(pattern)
        elif _is_glob(pattern) and pattern in seen and pattern not in failed_by_glob:
            report.unknown_xfails.append("%s (every clause it matches passes)" % pattern)
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m velaria.conformance",
                                description="Run the Velaria contract suite against a target module.")
    p.add_argument("--target", default="velaria", help="importable module exposing Session (default: velaria)")
    p.add_argument("--clause", default=None, help="run only clauses whose id starts with this prefix")
    p.add_argument("--xfail", action="append", default=[], help="file of expected failures (repeatable)")
    p.add_argument("--session-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for Session(), e.g. engine=reference (repeatable)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--native", dest="native", action="store_true", default=None,
                   help="the target is native Velaria: clauses tagged 'diverges' report diverges-by-design")
    g.add_argument("--no-native", dest="native", action="store_false")
    p.add_argument("--list", action="store_true", help="list clause ids and titles, run nothing")
    p.add_argument("--verbose", "-v", action="store_true", help="print details of passing clauses too")
    a = p.parse_args(argv)
    if a.list:
        for c in all_clauses(a.clause):
            print("%-24s %s%s" % (c.id, c.title, "  [diverges: %s]" % c.diverges if c.diverges else ""))
        return 0
    xfail: dict[str, str] = {}
    for f in a.xfail:
        xfail.update(read_xfail(f))
    kwargs = {}
    for kv in a.session_arg:
        k, sep, v = kv.partition("=")
        if not sep:
            p.error("--session-arg expects KEY=VALUE, got %r" % kv)
        try:  # numbers and booleans as Python values (batch_rows=2), anything else as text
            kwargs[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            kwargs[k] = v
    try:
        target = importlib.import_module(a.target)
    except Exception as exc:  # noqa: BLE001
        print("cannot import target %r: %s: %s" % (a.target, type(exc).__name__, exc), file=sys.stderr)
        return 2
    report = run(target, clause_prefix=a.clause, xfail=xfail, session_kwargs=kwargs, native=a.native)
    if a.target != getattr(target, "__name__", a.target):
        report.target = a.target
    print(report.format(verbose=a.verbose))
    return 0 if report.ok else 1
