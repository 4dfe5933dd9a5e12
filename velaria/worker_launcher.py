"""Worker processes started fast, as fresh interpreters that never re-import the user's script.

A worker needs an interpreter with pyarrow, numpy and velaria imported: about 0.4 s of CPU to
start from nothing, as long as a whole query over millions of rows. So the first worker of a
process starts a *template*: one fresh interpreter (``python -m velaria.worker_launcher``,
unlike ``multiprocessing``'s spawn and forkserver it never imports the user's ``__main__``, so a
script without an ``if __name__ == "__main__"`` guard works) that imports those modules once and
then only forks. Each worker is a fork of the template, ready in milliseconds, running
``module:function(conn, *args)`` over its own socket to the caller.

Lifetimes:

* the template lives as long as the process that started it: it exits when that process's
  end of its control socket closes (at exit, or :func:`shutdown_launcher`), and it never runs
  a query itself (no threads, nothing but imports, so forking it is safe);
* a worker lives as long as its owner wants (a stream query: until the query ends, fails or
  is stopped): :meth:`WorkerProcess.stop` asks, then terminates, then kills, and waits until the
  template has reaped it, so no worker is left behind even as a zombie; a worker whose
  owner's socket closes exits by itself.

The template reaps its children and keeps their exit codes, so the owner of a worker that
died can report how (``exit code -9``: killed by SIGKILL).
"""
from __future__ import annotations

import atexit
import importlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection

__all__ = ["WorkerProcess", "MappedBlock", "start_worker", "shutdown_launcher", "launcher_pid"]

#: what the template imports before it forks (the modules every worker needs)
#: (the accelerated kernels too: imported in every worker, they cost each one about 0.07 s of CPU)
PRELOAD = ("numpy", "pyarrow", "pyarrow.compute", "pyarrow.ipc", "velaria", "velaria.kernels",
           "velaria.stream.workers", "velaria.stream.operators", "velaria.exec.window", "velaria.worker_pool",
           "velaria.runtime.local_pool", "accel", "accel.aggregate", "accel.pair_ids", "accel.group_hash",
           "accel.window", "numpy.ma", "velaria.stream.key_partition")
_HEADER = struct.Struct("!I")


def _send_msg(sock: socket.socket, obj, fds=()) -> None:
    data = pickle.dumps(obj)
    payload = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [payload], list(fds))
    else:
        sock.sendall(payload)


def _recv_exact(sock: socket.socket, n: int, first: bytes = b"") -> bytes:
    buf = bytearray(first)
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the other end closed the socket")
        buf += chunk
    return bytes(buf)


def _recv_msg(sock: socket.socket, with_fds: bool = False):
    """One message (and the file descriptors sent with it when ``with_fds``)."""
    fds: list[int] = []
    if with_fds:
        data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 4)
        if not data:
            raise EOFError("the other end closed the socket")
    else:
        data = b""
    head = _recv_exact(sock, _HEADER.size, data[:_HEADER.size])
    (size,) = _HEADER.unpack(head)
    body = _recv_exact(sock, size, data[_HEADER.size:])
    return pickle.loads(body), fds


# ------------------------------------------------------------------------------ the template

def _reap(codes: dict[int, int]) -> None:
    """Collect every child that exited, keeping its exit code (negative: killed by a signal)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        codes[pid] = os.waitstatus_to_exitcode(status)


def _run_child(target: str, fd: int, args: tuple) -> None:
    """In the forked child: run ``target(conn, *args)`` and exit (1 on an exception)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    code = 0
    try:
        module, _, name = target.partition(":")
        getattr(importlib.import_module(module), name)(Connection(fd), *args)
    except BaseException:  # noqa: BLE001 - a worker reports its own errors; this is the last resort
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _template_main(control: socket.socket) -> None:
    """The template's loop: fork workers on request, reap them, report exit codes."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    codes: dict[int, int] = {}
    children: set[int] = set()
    _send_msg(control, ("ready", os.getpid()))
    while True:
        ready, _, _ = select.select([control], [], [], 0.05)
        _reap(codes)
        if not ready:
            continue
        try:
            msg, fds = _recv_msg(control, with_fds=True)
        except (EOFError, OSError):
            break                                  # the owning process went away
        kind = msg[0]
        if kind == "fork":
            _, target, args = msg
            pid = os.fork()
            if pid == 0:
                control.close()
                _run_child(target, fds[0], args)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            _send_msg(control, ("pid", pid))
        elif kind == "wait":                       # the exit code of a child, waiting up to timeout
            _, pid, timeout = msg
            deadline = time.monotonic() + timeout
            while pid not in codes and time.monotonic() < deadline:
                _reap(codes)
                if pid not in codes:
                    time.sleep(0.002)
            children.discard(pid) if pid in codes else None
            _send_msg(control, ("code", codes.pop(pid, None)))
        elif kind == "stop":
            break
    for pid in children:                           # nothing outlives the template's owner
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap(codes)


class MappedBlock:
    """A worker's read-only view of a shared-memory block its owner created (``buf``). Opened
    directly, not through ``SharedMemory``: before Python 3.13 attaching registers the block
    with a resource tracker, which costs a tracker process per worker and would unlink the
    owner's block when the worker exits. The owner unlinks its blocks."""

    def __init__(self, name: str):
        import mmap

        import _posixshmem
        fd = _posixshmem.shm_open("/" + name.lstrip("/"), os.O_RDONLY, mode=0o600)
        try:
            self._map = mmap.mmap(fd, os.fstat(fd).st_size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        self.buf = memoryview(self._map)

    def close(self) -> None:
        self.buf.release()
        self._map.close()


# ------------------------------------------------------------------------------ the owner's side

class _Launcher:
    """The owner's handle on its template interpreter (one per process)."""

    def __init__(self):
        parent, child = socket.socketpair()
        env = dict(os.environ)
        # the template imports velaria from wherever this process did
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "velaria.worker_launcher", str(child.fileno())],
                                         pass_fds=(child.fileno(),), env=env)
        finally:
            child.close()
        self.sock = parent
        self.lock = threading.Lock()
        try:
            msg, _ = _recv_msg(self.sock)
        except (EOFError, OSError) as exc:
            self.close()
            from .errors import ExecutionError
            raise ExecutionError(f"the worker template interpreter (pid {self.proc.pid}) exited while starting "
                                 f"(exit code {self.proc.poll()}); see its error output above") from exc
        self.pid = msg[1]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, msg, fds=()):
        with self.lock:
            _send_msg(self.sock, msg, fds)
            reply, _ = _recv_msg(self.sock)
            return reply

    def close(self) -> None:
        try:
            _send_msg(self.sock, ("stop",))
        except OSError:
            pass
        self.sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_LAUNCHER: _Launcher | None = None
_LOCK = threading.Lock()


def _launcher() -> _Launcher:
    global _LAUNCHER
    with _LOCK:
        if _LAUNCHER is None or not _LAUNCHER.alive():
            _LAUNCHER = _Launcher()
        return _LAUNCHER


def launcher_pid() -> int | None:
    """The template interpreter's pid, None when it is not running."""
    return _LAUNCHER.pid if _LAUNCHER is not None and _LAUNCHER.alive() else None


def shutdown_launcher() -> None:
    """Stop the template interpreter (its workers are killed); a later worker starts a new one."""
    global _LAUNCHER
    with _LOCK:
        if _LAUNCHER is not None:
            _LAUNCHER.close()
            _LAUNCHER = None


atexit.register(shutdown_launcher)


class WorkerProcess:
    """One worker forked from the template: ``pid``, ``conn`` (the owner's end of its socket)."""

    def __init__(self, name: str, target: str, args: tuple = ()):
        launcher = _launcher()
        mine, theirs = socket.socketpair()
        try:
            reply = launcher.request(("fork", target, args), fds=[theirs.fileno()])
        finally:
            theirs.close()
        self.name = name
        self.pid = reply[1]
        self.conn = Connection(mine.detach())
        self._launcher = launcher
        self._code: int | None = None
        self._asked = False

    def exit_code(self, wait_s: float = 0.0) -> int | None:
        """The worker's exit code once it exited (waiting up to ``wait_s``), else None."""
        if self._code is None and self._launcher.alive():
            try:
                self._code = self._launcher.request(("wait", self.pid, wait_s))[1]
            except (EOFError, OSError):
                pass
        return self._code

    def ask_to_stop(self) -> None:
        """Tell the worker to exit after what it is doing (no wait; once)."""
        if self._asked:
            return
        self._asked = True
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """Ask, wait, terminate, kill: return once the worker is gone (and reaped)."""
        self.ask_to_stop()
        for sig, wait_s in ((None, 2.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass
            if self.exit_code(wait_s) is not None or not self._launcher.alive():
                break
        self.conn.close()


def start_worker(name: str, target: str, *args) -> WorkerProcess:
    """A new worker running ``target`` (``"module:function"``) as ``function(conn, *args)``."""
    return WorkerProcess(name, target, args)


if __name__ == "__main__":          # the template: python -m velaria.worker_launcher <fd>
    _template_main(socket.socket(fileno=int(sys.argv[1])))
