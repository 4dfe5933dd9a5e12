"""``velaria sql``: run one SQL query over files or Arrow IPC/Parquet data and print the result.

    velaria sql "SELECT k, SUM(v) FROM t GROUP BY k" --table t=data.csv [--explain] [--engine reference]
"""
from __future__ import annotations

import argparse
import os
import sys

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("sql", help="run a SQL query over files", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", help="the SQL statement")
    p.add_argument("--table", action="append", default=[], metavar="NAME=PATH",
                   help="register PATH (.csv/.json/.jsonl/.parquet/.arrow/.feather, or probed) as NAME")
    p.add_argument("--explain", action="store_true", help="print explain_sql instead of running")
    p.add_argument("--engine", choices=["auto", "reference", "accel"], default=None)
    p.add_argument("--max-rows", type=int, default=50)
    p.set_defaults(run=run)


def _load(session, path: str):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".parquet":
        import pyarrow.parquet as pq
        return session.create_dataframe_from_arrow(pq.read_table(path))
    if ext in (".arrow", ".feather", ".ipc"):
        import pyarrow.feather as feather
        return session.create_dataframe_from_arrow(feather.read_table(path))
    if ext == ".csv" and hasattr(session, "read_csv"):
        return session.read_csv(path)
    if hasattr(session, "read"):
        return session.read(path)
    raise SystemExit(f"velaria sql: cannot read {path}: file sources are not available in this build")


def run(args) -> int:
    import velaria
    session = velaria.Session(engine=args.engine)
    for spec in args.table:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            print(f"velaria sql: --table expects NAME=PATH, got {spec!r}", file=sys.stderr)
            return 2
        session.create_temp_view(name, _load(session, path))
    try:
        if args.explain:
            print(session.explain_sql(args.query))
        else:
            session.sql(args.query).show(args.max_rows)
    except velaria.VelariaError as exc:
        print(f"velaria sql: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
