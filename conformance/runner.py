"""Run the suite against a target, each target in its own interpreter, and report clause by clause.

    python -m velaria.conformance --target velaria
    python -m velaria.conformance --engine reference --json out.json --markdown out.md
    python -m velaria.conformance --python /other/venv/bin/python --target velaria
    python -m velaria.conformance --python /other/venv/bin/python --target-path /src/Velaria/python --target velaria

How a run works (the runner itself never imports the target):

1. The suite package is copied into a temporary directory under a name of its own
   (``_velaria_suite_<hash>``), so a target called ``velaria`` -- ours or native -- cannot
   shadow it and it cannot shadow the target. That directory (and ``--target-path``) is the
   only ``PYTHONPATH`` of the target's interpreter (``--python``, default: this one).
2. ``--jobs`` lanes of that interpreter import the target once; every unit of clauses (one
   clause, or a declared group) runs in a fresh child with a per-clause ``--timeout``. A crash or
   a hang becomes that clause's ``crashed`` / ``timed-out`` result and the run goes on (see
   :mod:`.worker`).
3. Results are classified (:mod:`.outcome`), expected failures applied (``--xfail``), and the
   report printed (and written with ``--json`` / ``--markdown``).

Exit status: 0 when no clause is ``fail``, ``crashed``, ``timed-out`` or a stale expected
failure; 1 otherwise; 2 when the target cannot be imported or the arguments are wrong.

A module *object* (not a name) passed to :func:`run` runs in this process without isolation:
that is for the suite's own tests and for stepping through a clause in a debugger.
"""
from __future__ import annotations

import ast
import fnmatch
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import Clause, Context, all_clauses
from .outcome import CRASHED, PASS, XFAIL, XPASS, Outcome, run_clause
from .report import Report, Result
from .worker import detect_native

__all__ = ["run", "main", "read_xfail", "TargetImportError", "SUITE_DIR", "DEFAULT_TIMEOUT_S"]

SUITE_DIR = Path(__file__).resolve().parent
DEFAULT_TIMEOUT_S = 60.0


class TargetImportError(RuntimeError):
    """The target module cannot be imported in the target's interpreter."""


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


# ------------------------------------------------------------------------------------ units

def _units(clauses: list[Clause]) -> list[list[str]]:
    """Clause ids cut into isolation units: every clause alone, except a declared group together."""
    groups: dict[str, list[str]] = {}
    units: list[list[str]] = []
    for c in clauses:
        if c.group:
            if c.group not in groups:
                groups[c.group] = []
                units.append(groups[c.group])
            groups[c.group].append(c.id)
        else:
            units.append([c.id])
    return units


def _stage_suite(tmp: Path) -> str:
    """Copy the suite package into ``tmp`` under a name no target uses; return that name."""
    h = hashlib.sha256()
    for p in sorted(SUITE_DIR.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(SUITE_DIR)).encode())
            h.update(p.read_bytes())
    name = "_velaria_suite_%s" % h.hexdigest()[:10]
    shutil.copytree(SUITE_DIR, tmp / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return name


class _Lane:
    """One lane process in the target's interpreter (see :mod:`.worker`)."""

    def __init__(self, python: str, suite: str, tmp: Path, env: dict, config: dict):
        self.err_path = tmp / ("lane-%d.err" % id(self))
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([python, "-c", "import %s.worker as w; w.lane_main()" % suite],
                                         cwd=tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, bufsize=1)
        self.proc.stdin.write(json.dumps(config) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise TargetImportError("the target interpreter %s exited at start: %s" % (python, self.stderr_tail()))
        self.hello = json.loads(line)
        if self.hello["event"] == "import-error":
            self.close()
            raise TargetImportError("cannot import target %r: %s" % (config["target"], self.hello["error"]))

    def stderr_tail(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")[-2000:].strip() or "(no output)"
        except OSError:
            return "(no output)"

    def run_unit(self, ids: list[str], watchdog_s: float) -> tuple[list[Outcome], bool]:
        """Send a unit; return its outcomes and whether the lane is still alive."""
        timer = threading.Timer(watchdog_s, self.proc.kill)
        timer.start()
        outcomes: list[Outcome] = []
        try:
            self.proc.stdin.write(json.dumps({"unit": ids}) + "\n")
            self.proc.stdin.flush()
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    return outcomes, False
                event = json.loads(line)
                if event.pop("event") == "done":
                    return outcomes, True
                outcomes.append(Outcome(**event))
        except (BrokenPipeError, OSError):
            return outcomes, False
        finally:
            timer.cancel()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _run_isolated(python: str, config: dict, clauses: list[Clause], jobs: int, timeout: float) -> tuple[dict, dict]:
    """Run ``clauses`` in lanes of ``python``; return (outcomes by id, the first lane's hello)."""
    units = _units(clauses)
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="velaria-conformance-") as tmp_s:
        tmp = Path(tmp_s)
        suite = _stage_suite(tmp)
        paths = [str(tmp)] + ([config["target_path"]] if config.get("target_path") else [])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        first = _Lane(python, suite, tmp, env, config)
        hello = first.hello
        work: queue.Queue = queue.Queue()
        for u in units:
            work.put(u)
        lock = threading.Lock()

        def lane_loop(lane: _Lane | None) -> None:
            while True:
                try:
                    ids = work.get_nowait()
                except queue.Empty:
                    break
                if lane is None:
                    try:
                        lane = _Lane(python, suite, tmp, env, config)
                    except TargetImportError as exc:
                        got, alive = [], False
                        why = str(exc)
                    else:
                        why = ""
                if lane is not None:
                    got, alive = lane.run_unit(ids, timeout * (len(ids) + 1) + 60)
                    why = "" if alive else lane.stderr_tail()
                with lock:
                    for o in got:
                        outcomes[o.id] = o
                    for cid in ids[len(got):]:  # the lane itself died: the rest of the unit crashed
                        outcomes[cid] = Outcome(cid, CRASHED, "the worker lane died: %s" % why)
                if not alive and lane is not None:
                    lane.close()
                    lane = None
            if lane is not None:
                lane.close()

        threads = [threading.Thread(target=lane_loop, args=(first if k == 0 else None,), daemon=True)
                   for k in range(max(1, min(jobs, len(units))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return outcomes, hello


def _run_in_process(module, clauses: list[Clause], session_kwargs: dict) -> dict:
    ctx = Context(target=module, target_name=getattr(module, "__name__", repr(module)),
                  session_kwargs=dict(session_kwargs))
    return {c.id: run_clause(c, ctx) for c in clauses}


# ------------------------------------------------------------------------------------ xfail

def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _apply_xfail(report: Report, xfail: dict[str, str], every_id: list[str]) -> None:
    """Expected failures: a listed failing clause is ``xfail``; a listed exact id that passes is
    ``xpass`` (stale); a glob is stale when every clause it matches passes; an entry that
    matches no clause at all is a stale entry."""
    failed_by_glob: set[str] = set()
    seen: set[str] = set()
    for r in report.results:
        entry = r.clause.id if r.clause.id in xfail else next(
            (p for p in xfail if _is_glob(p) and fnmatch.fnmatchcase(r.clause.id, p)), None)
        if entry is None:
            continue
        seen.add(entry)
        reason = xfail[entry] or "no reason given"
        if r.failed:
            failed_by_glob.add(entry)
            r.cls, r.detail = XFAIL, "%s\n(expected failure: %s)" % (r.detail, reason)
        elif _is_glob(entry):
            continue
        elif r.cls == PASS:
            r.cls, r.detail = XPASS, "listed as an expected failure (%s) but passes: remove the entry" % reason
        else:
            report.unknown_xfails.append("%s (does not fail: %s)" % (entry, r.cls))
    for pattern in xfail:
        if not any(pattern == i or fnmatch.fnmatchcase(i, pattern) for i in every_id):
            report.unknown_xfails.append(pattern)
        elif _is_glob(pattern) and pattern in seen and pattern not in failed_by_glob:
            report.unknown_xfails.append("%s (no clause it matches fails)" % pattern)


# ------------------------------------------------------------------------------------ run

def _select(clause_prefix) -> list[Clause]:
    """The clauses whose id starts with the prefix (or any of the prefixes); all when None."""
    if clause_prefix is None:
        return all_clauses()
    prefixes = [clause_prefix] if isinstance(clause_prefix, str) else list(clause_prefix)
    return [c for c in all_clauses() if any(c.id.startswith(p) for p in prefixes)]


def run(target="velaria", *, clause_prefix: str | list[str] | None = None, xfail: dict[str, str] | None = None,
        session_kwargs: dict | None = None, python: str | None = None, target_path: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S, jobs: int | None = None, isolation: str = "auto",
        native: bool | None = None) -> Report:
    """Run the (selected) clauses against ``target`` and return the :class:`Report`.

    ``target`` is a module name (run isolated in ``python``'s interpreter, see the module
    docstring) or a module object (run in this process, no isolation). ``isolation`` is
    ``auto`` (fork where possible), ``fork`` or ``spawn`` (a new interpreter per unit).
    ``native`` is accepted from callers written for the earlier runner and has no effect: a
    clause reports ``diverges-by-design`` only when the target shows native's documented
    behaviour, whatever the target claims to be.
    """
    if isolation not in ("auto", "fork", "spawn"):
        raise ValueError("isolation must be auto, fork or spawn, got %r" % (isolation,))
    session_kwargs = dict(session_kwargs or {})
    selected = _select(clause_prefix)
    started = time.monotonic()
    if isinstance(target, str):
        python = python or sys.executable
        config = {"target": target, "target_path": target_path, "session_kwargs": session_kwargs,
                  "timeout": timeout, "isolation": isolation,
                  "python": python if python != sys.executable else None}
        outcomes, hello = _run_isolated(python, config, selected, jobs or min(2, os.cpu_count() or 1), timeout)
        report = Report(target=target, python=hello.get("version", ""), target_file=hello.get("file"),
                        native=bool(hello.get("native")), session_kwargs=session_kwargs)
    else:
        outcomes = _run_in_process(target, selected, session_kwargs)
        report = Report(target=getattr(target, "__name__", repr(target)), python=sys.version.split()[0],
                        target_file=getattr(target, "__file__", None), native=detect_native(target),
                        session_kwargs=session_kwargs)
    for c in selected:
        o = outcomes.get(c.id) or Outcome(c.id, CRASHED, "no result was reported for this clause")
        report.results.append(Result(c, o.cls, o.detail, o.repro))
    _apply_xfail(report, dict(xfail or {}), [c.id for c in all_clauses()])
    report.seconds = time.monotonic() - started
    return report


def _parse_session_args(pairs: list[str], parser) -> dict:
    kwargs = {}
    for kv in pairs:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            parser.error("--session-arg expects KEY=VALUE, got %r" % kv)
        try:  # numbers and booleans as Python values (batch_rows=2), anything else as text
            kwargs[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            kwargs[k] = v
    return kwargs


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m velaria.conformance",
                                description="Run the Velaria contract suite against a target, each clause isolated.")
    p.add_argument("--target", default=None, help="importable module exposing Session (default: velaria)")
    p.add_argument("--target-path", default=None, metavar="DIR",
                   help="directory put first on the target interpreter's path (where --target is found)")
    p.add_argument("--python", default=None, metavar="PATH",
                   help="interpreter of the target's environment (default: this interpreter)")
    p.add_argument("--engine", choices=("reference", "accel"), default=None,
                   help="shorthand: our own engine, --target velaria --session-arg engine=ENGINE")
    p.add_argument("--clause", action="append", default=None, metavar="PREFIX",
                   help="run only clauses whose id starts with PREFIX (repeatable)")
    p.add_argument("--xfail", action="append", default=[], help="file of expected failures (repeatable)")
    p.add_argument("--session-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for Session(), e.g. batch_rows=2 (repeatable)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help="per-clause time limit (default %(default)s)")
    p.add_argument("--jobs", type=int, default=None, help="worker lanes run in parallel (default: 2 or the CPU count)")
    p.add_argument("--isolation", choices=("auto", "fork", "spawn"), default="auto",
                   help="fresh child per unit by fork (default where available) or a new interpreter (spawn)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON")
    p.add_argument("--markdown", default=None, metavar="FILE", help="also write the report as a Markdown table")
    p.add_argument("--list", action="store_true", help="list clause ids, titles and divergence rows; run nothing")
    p.add_argument("--verbose", "-v", action="store_true", help="print details of non-failing clauses too")
    a = p.parse_args(argv)
    for prefix in a.clause or ():
        if not _select(prefix):
            p.error("no clause id starts with %r (python -m velaria.conformance --list shows them)" % prefix)
    if a.list:
        for c in _select(a.clause):
            tag = "  [diverges: %s]" % c.diverges if c.diverges else ("  [extension: %s]" % c.extension if c.extension else "")
            print("%-24s %s%s" % (c.id, c.title, tag))
        return 0
    kwargs = _parse_session_args(a.session_arg, p)
    target = a.target or "velaria"
    if a.engine:
        if a.target not in (None, "velaria"):
            p.error("--engine selects our own engine; it cannot be combined with --target %s" % a.target)
        kwargs["engine"] = a.engine
    if a.timeout <= 0:
        p.error("--timeout must be a positive number of seconds, got %s" % a.timeout)
    if a.jobs is not None and a.jobs < 1:
        p.error("--jobs must be at least 1, got %d" % a.jobs)
    if a.python and not shutil.which(a.python) and not os.access(a.python, os.X_OK):
        p.error("--python %s is not an executable interpreter" % a.python)
    if a.target_path and not Path(a.target_path).is_dir():
        p.error("--target-path %s is not a directory" % a.target_path)
    for flag, out in (("--json", a.json), ("--markdown", a.markdown)):
        if out and not Path(out).resolve().parent.is_dir():
            p.error("%s %s: the directory %s does not exist" % (flag, out, Path(out).resolve().parent))
    xfail: dict[str, str] = {}
    for f in a.xfail:
        try:
            xfail.update(read_xfail(f))
        except (OSError, UnicodeDecodeError) as exc:
            p.error("--xfail %s cannot be read: %s" % (f, exc.strerror if isinstance(exc, OSError) else exc))
    try:
        report = run(target, clause_prefix=a.clause, xfail=xfail, session_kwargs=kwargs, python=a.python,
                     target_path=str(Path(a.target_path).resolve()) if a.target_path else None,
                     timeout=a.timeout, jobs=a.jobs, isolation=a.isolation)
    except TargetImportError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(report.format(verbose=a.verbose))
    if a.json:
        report.write_json(a.json)
    if a.markdown:
        report.write_markdown(a.markdown)
    return 0 if report.ok else 1
