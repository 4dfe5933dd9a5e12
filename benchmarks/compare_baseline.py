"""Batch SQL on this checkout vs a baseline commit, side by side in one run.

    .venv/bin/python benchmarks/compare_baseline.py [--ref COMMIT] [--rows N] [--rounds R]

Installs the baseline commit (default: ``HEAD~1``) into a temporary directory (a git
worktree plus ``pip install --target``, so it has its own compiled accelerator), then times
the same queries on the same generated data in alternating subprocesses -- baseline,
current, baseline, current, ... -- and prints the medians and the ratio current / baseline.
A ratio above 1 is a slowdown. Used to show that a refactor of the executor costs no speed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SQL = {
    "filter_sum": "SELECT SUM(v) AS s FROM t WHERE v > 0.5",
    "groupby": "SELECT k, SUM(v) AS s, COUNT(*) AS c, AVG(v) AS a FROM t GROUP BY k",
    "sort": "SELECT k, v FROM t ORDER BY v",
    "projection": "SELECT v * 2 + k AS p FROM t",
    "limit": "SELECT k, v FROM t WHERE k > 10 LIMIT 1000",
    "join": "SELECT t.k, d.name FROM t JOIN d ON t.k = d.k WHERE t.v > 0.99",
}

CHILD = r"""
import json, sys, time
import numpy as np, pyarrow as pa
import velaria
rows, rounds, sql = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(42)
t = pa.table({"k": rng.integers(0, 1000, rows, dtype=np.int64), "v": rng.random(rows)})
d = pa.table({"k": np.arange(1000, dtype=np.int64), "name": [f"n{i}" for i in range(1000)]})
s = velaria.Session()
s.create_temp_view("t", s.create_dataframe_from_arrow(t))
s.create_temp_view("d", s.create_dataframe_from_arrow(d))
s.sql(sql).to_arrow()                          # warm-up
times = []
for _ in range(rounds):
    start = time.perf_counter()
    s.sql(sql).to_arrow()
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "file": velaria.__file__}))
"""


def _install_baseline(ref: str, where: Path) -> Path:
    src, site = where / "src", where / "site"
    subprocess.check_call(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(src), ref])
    try:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                               "--target", str(site), str(src)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        subprocess.call(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(src)])
    return site


def _time(pythonpath: str | None, rows: int, rounds: int, sql: str) -> list[float]:
    env = None
    if pythonpath is not None:
        import os
        env = dict(os.environ, PYTHONPATH=pythonpath)
    out = subprocess.check_output([sys.executable, "-c", CHILD, str(rows), str(rounds), sql], env=env, cwd="/")
    return json.loads(out)["times"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="HEAD~1", help="baseline commit (default HEAD~1)")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=3, help="alternating baseline/current subprocess pairs")
    ap.add_argument("--only", nargs="*", choices=list(SQL), help="run only these queries")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"installing baseline {args.ref} ...", file=sys.stderr)
        site = str(_install_baseline(args.ref, Path(tmp)))
        print(f"{'query':<12} {'baseline':>10} {'current':>10} {'ratio':>7}")
        for name, sql in SQL.items():
            if args.only and name not in args.only:
                continue
            base: list[float] = []
            cur: list[float] = []
            for _ in range(args.pairs):
                base += _time(site, args.rows, args.rounds, sql)
                cur += _time(None, args.rows, args.rounds, sql)
            b, c = statistics.median(base), statistics.median(cur)
            print(f"{name:<12} {b * 1e3:>8.1f}ms {c * 1e3:>8.1f}ms {c / b:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
