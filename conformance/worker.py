"""The worker side of a conformance run: it lives in the *target's* interpreter.

The runner (:mod:`.runner`) never imports the target. It starts one or more *lanes*: processes
of the target's interpreter that run :func:`lane_main`. A lane imports the target and the suite
once, then, for every unit of clauses the runner sends (one clause, or a declared group),
starts a *child* that runs those clauses and reports one JSON line per clause. The lane watches
the child:

* a clause that does not report within the per-clause timeout is ``timed-out``: the child is
  killed;
* a child that dies before reporting (a signal such as SIGABRT or SIGSEGV, ``os._exit``, a
  fatal error in native code) makes that clause ``crashed``, with the signal and the last
  output the child wrote (``faulthandler`` adds the Python stack);

and the unit's remaining clauses go on in a new child. So state is fresh per unit, and one
crash or hang costs one clause, never the run.

Children are forked from the lane where ``os.fork`` exists (a fork after importing the target
and before any ``Session`` exists is a fresh process state at the cost of a few milliseconds);
elsewhere, or with ``isolation="spawn"``, each child is a new interpreter.

Before its first unit a lane *preloads code, never state*: a throw-away child runs one clause
of each clause file and reports the modules it imported (a SQL parser, kernel libraries, ...);
the lane imports those modules itself, so later children start with them loaded. Importing a
module is the same in every child, so this keeps each child fresh while sparing it the import
cost (from about 0.2 s to about 0.02 s per clause for our engine).

Protocol (JSON, one object per line): the runner writes the config, then ``{"unit": [ids]}``
lines; the lane answers ``{"event": "ready", ...}`` (or ``import-error``), then a
``{"event": "result", ...}`` per clause and ``{"event": "done"}`` per unit.
"""
from __future__ import annotations

import faulthandler
import importlib
import importlib.util
import io
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback

from . import Context, all_clauses
from .outcome import CRASHED, TIMED_OUT, Outcome, run_clause

__all__ = ["lane_main", "child_main", "detect_native", "SPAWN_IMPORT_GRACE_S"]

#: extra seconds a spawned child gets for its first clause (it imports the target first)
SPAWN_IMPORT_GRACE_S = 30.0
_TAIL_CHARS = 2000


def detect_native(module) -> bool:
    """True when ``module`` looks like native Velaria (it has the ``_velaria`` C extension)."""
    if hasattr(module, "_velaria"):
        return True
    try:
        return importlib.util.find_spec(module.__name__ + "._velaria") is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _import_target(config: dict):
    if config.get("target_path"):
        sys.path.insert(0, config["target_path"])
    return importlib.import_module(config["target"])


def _context(target, config: dict) -> Context:
    args = "".join(" --%s %s" % (flag, config[key]) for flag, key in (("python", "python"), ("target-path", "target_path"))
                   if config.get(key))
    return Context(target=target, target_name=config["target"], session_kwargs=dict(config.get("session_kwargs") or {}),
                   runner_args=args)


def _run_ids(ids: list[str], ctx: Context, out) -> None:
    """Run the clauses ``ids`` in order, writing one JSON outcome line each to ``out``."""
    by_id = {c.id: c for c in all_clauses()}
    for cid in ids:
        outcome = run_clause(by_id[cid], ctx)
        out.write(json.dumps(outcome.to_json()) + "\n")
        out.flush()


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _TAIL_CHARS))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "signal %d" % sig
        return "was killed by %s" % name
    return "exited with status %d before reporting" % (os.WEXITSTATUS(status) if os.WIFEXITED(status) else status)


class _Child:
    """One child running a unit of clauses: a pipe of JSON result lines and a captured output file."""

    def __init__(self, ids: list[str], ctx: Context, config: dict, spawn: bool):
        fd, self.out_path = tempfile.mkstemp(prefix="velaria-conf-", suffix=".out")
        rfd, wfd = os.pipe()
        self.rfd = rfd
        self.proc = None
        if spawn:
            cfg = dict(config, ids=ids, result_fd=wfd)
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "import %s.worker as w; w.child_main()" % __package__],
                stdin=subprocess.PIPE, stdout=fd, stderr=fd, pass_fds=(wfd,), cwd=os.getcwd())
            self.pid = self.proc.pid
            self.proc.stdin.write(json.dumps(cfg).encode() + b"\n")
            self.proc.stdin.close()
        else:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child: run, report, never return into the lane's loop
                code = 0
                try:
                    os.close(rfd)
                    null = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(null, 0)  # the lane's stdin carries the protocol: a clause must not read it
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
                    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
                    faulthandler.enable(sys.stderr)
                    with os.fdopen(wfd, "w") as out:
                        _run_ids(ids, ctx, out)
                except BaseException:  # noqa: BLE001 - report and leave; the lane classifies the exit
                    traceback.print_exc()
                    code = 70
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            self.pid = pid
        os.close(wfd)
        os.close(fd)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        """Reap the child; return its raw wait status."""
        if self.proc is not None:
            try:
                rc = self.proc.wait(timeout=SPAWN_IMPORT_GRACE_S)
            except subprocess.TimeoutExpired:  # reported everything but does not exit: stop it
                self.proc.kill()
                rc = self.proc.wait()
            return (-rc) if rc < 0 else (rc << 8)  # back to a wait status: signal in the low bits
        return os.waitpid(self.pid, 0)[1]

    def close(self) -> None:
        os.close(self.rfd)
        try:
            os.unlink(self.out_path)
        except OSError:
            pass


def _warm_up_ids() -> list[str]:
    """One clause per clause file (slt file or clauses module): the warm-up sample."""
    seen: dict[str, str] = {}
    for c in all_clauses():
        seen.setdefault(c.origin.split(":", 1)[0], c.id)
    return list(seen.values())


def _preload_modules(ctx: Context, config: dict) -> int:
    """Import in the lane every module a warm-up child imported while running the sample.

    The child reports new module names after each clause, so a crash or a hang in the sample
    only shortens the list. Returns the number of modules imported.
    """
    if not hasattr(os, "fork") or config.get("isolation") == "spawn":
        return 0
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            null = os.open(os.devnull, os.O_RDWR)
            for target_fd in (0, 1, 2):
                os.dup2(null, target_fd)
            by_id = {c.id: c for c in all_clauses()}
            with os.fdopen(wfd, "w") as out:
                before = set(sys.modules)
                for cid in _warm_up_ids():
                    run_clause(by_id[cid], ctx)
                    out.write(json.dumps(sorted(set(sys.modules) - before)) + "\n")
                    out.flush()
        finally:
            os._exit(0)
    os.close(wfd)
    names: set[str] = set()
    buf = b""
    deadline = time.monotonic() + float(config.get("timeout", 30.0))
    with os.fdopen(rfd, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([pipe], [], [], max(0.0, left))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            data = os.read(pipe.fileno(), 65536)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                names.update(json.loads(line))
    os.waitpid(pid, 0)
    loaded = 0
    for name in sorted(names):
        if name.startswith(__package__ + ".") or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
            loaded += 1
        except Exception:  # noqa: BLE001 - a module that only imports in some context: the child will import it
            pass
    return loaded


def _run_unit(ids: list[str], ctx: Context, config: dict, emit) -> None:
    """Run one unit in children, restarting after a crash or a timeout, emitting every outcome."""
    pending = list(ids)
    timeout = float(config.get("timeout", 30.0))
    spawn = config.get("isolation") == "spawn" or not hasattr(os, "fork")
    while pending:
        child = _Child(pending, ctx, config, spawn)
        buf = b""
        first = True
        try:
            while pending:
                limit = timeout + (SPAWN_IMPORT_GRACE_S if (spawn and first) else 0.0)
                ready, _, _ = select.select([child.rfd], [], [], limit)
                if not ready:
                    child.kill()
                    child.wait()
                    emit(Outcome(pending.pop(0), TIMED_OUT,
                                 "no result within %.1f s; the worker was killed. Last output:\n%s"
                                 % (timeout, _tail(child.out_path) or "(none)")))
                    break
                data = os.read(child.rfd, 65536)
                if not data:  # the child is gone; a clause still pending has crashed
                    status = child.wait()
                    if pending:
                        emit(Outcome(pending.pop(0), CRASHED, "the worker %s. Last output:\n%s"
                                     % (_describe_exit(status), _tail(child.out_path) or "(none)")))
                    break
                buf += data
                while b"\n" in buf and pending:
                    line, buf = buf.split(b"\n", 1)
                    got = json.loads(line)
                    if got.get("id") != pending[0]:
                        raise RuntimeError("worker reported %r while %r was running" % (got.get("id"), pending[0]))
                    pending.pop(0)
                    first = False
                    emit(Outcome(**got))
            else:
                child.wait()
        finally:
            child.close()


def lane_main() -> None:
    """Entry point of a lane process (see the module docstring)."""
    out = sys.stdout

    def send(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    config = json.loads(sys.stdin.readline())
    try:
        target = _import_target(config)
        all_clauses()
    except BaseException as exc:  # noqa: BLE001 - the runner reports it and exits 2
        send({"event": "import-error", "error": "%s: %s" % (type(exc).__name__, exc)})
        return
    send({"event": "ready", "native": detect_native(target), "file": getattr(target, "__file__", None),
          "python": sys.executable, "version": sys.version.split()[0]})
    ctx = _context(target, config)
    _preload_modules(ctx, config)
    for line in sys.stdin:
        if not line.strip():
            continue
        ids = json.loads(line)["unit"]
        _run_unit(ids, ctx, config, lambda o: send(dict(o.to_json(), event="result")))
        send({"event": "done"})


def child_main() -> None:
    """Entry point of a spawned child: import the target, run the given clauses, report on a pipe."""
    faulthandler.enable()
    config = json.loads(sys.stdin.readline())
    target = _import_target(config)
    with os.fdopen(config["result_fd"], "w") as out:
        _run_ids(config["ids"], _context(target, config), out)
