"""The worker pool of ``single-node`` mode: template-forked workers shared with the stream
runtime's start-up, results and exceptions through futures, a dead worker breaks the pool."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures.process import BrokenProcessPool

import pytest

from velaria import worker_launcher
from velaria.worker_pool import WorkerPool


def test_results_exceptions_and_parent():
    pool = WorkerPool(2, name="probe")
    try:
        assert [f.result(30) for f in [pool.submit(os.getppid) for _ in range(4)]] == \
            [worker_launcher.launcher_pid()] * 4                   # forks of the template
        with pytest.raises(FileNotFoundError):
            pool.submit(os.stat, "/no/such/file").result(30)       # the task's own exception type
        assert pool.submit(divmod, 7, 2).result(30) == (3, 1)
    finally:
        pids = pool.pids()
        pool.shutdown()
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)


def test_a_dead_worker_breaks_the_pool_naming_it():
    pool = WorkerPool(2, name="probe")
    try:
        victim = pool.pids()[0]
        os.kill(victim, signal.SIGKILL)
        futures = [pool.submit(os.getpid) for _ in range(6)]
        errors = [f.exception(30) for f in futures]
        assert any(isinstance(e, BrokenProcessPool) for e in errors)
        assert f"pid:{victim} (exit code {-signal.SIGKILL})" in pool.lost()
        with pytest.raises(BrokenProcessPool, match="died"):
            pool.submit(os.getpid).result(30)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def test_single_node_in_a_script_without_a_main_guard(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent("""
        import pyarrow as pa
        import velaria
        print("script body ran", flush=True)
        s = velaria.Session(runtime_mode="single-node", parallelism=2)
        s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"k": [1, 2, 1, 2], "v": [1, 2, 3, 4]})))
        df = s.sql("SELECT k, SUM(v) AS sv FROM t GROUP BY k ORDER BY k")
        print(df.to_rows(), df.run_record()["task_count"] > 1)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("script body ran") == 1
    assert "True" in out.stdout and "leaked" not in out.stderr
