"""``velaria sql`` and ``velaria explain``: SQL over any number of files, each registered as a
named table with ``--table NAME=PATH``.

``sql`` shows a readable table by default (``--format json`` gives ``{"schema", "rows",
"row_count"}``); ``explain`` prints ``Session.explain_sql`` text.
"""
from __future__ import annotations

from .common import add_engine_option, make_session
from .errors import CliUsageError
from .inputs import check_input_path, open_input
from .output import Output
from .parsing import add_format_option, positive_int
from .progress import activity

__all__ = ["register"]

SQL_EXAMPLES = """\
examples:
  velaria sql "SELECT k, SUM(v) AS total FROM t GROUP BY k" --table t=data.csv
  velaria sql "SELECT a.id, b.name FROM a JOIN b ON a.id = b.id" --table a=a.parquet --table b=b.xlsx
  velaria sql "SELECT * FROM t ORDER BY score DESC LIMIT 5" --table t=scores.json --format csv
"""
EXPLAIN_EXAMPLES = """\
examples:
  velaria explain "SELECT k, COUNT(*) AS n FROM t GROUP BY k" --table t=data.csv
  velaria explain "SELECT * FROM t WHERE v > 3" --table t=data.parquet --engine reference
"""


def _add_tables(p) -> None:
    p.add_argument("--table", action="append", default=[], metavar="NAME=PATH",
                   help="register PATH as NAME (csv, json, line files are probed; parquet, arrow, xlsx "
                        "by extension); repeatable")
    add_engine_option(p)


def register(sub) -> None:
    p = sub.add_parser("sql", help="run a SQL query over files (readable table)", description=__doc__,
                       epilog=SQL_EXAMPLES)
    p.add_argument("query", help="the SQL statement")
    _add_tables(p)
    p.add_argument("--max-rows", type=positive_int, default=50, help="rows shown by table/csv (default 50)")
    add_format_option(p, default="table")
    p.set_defaults(handler=_handle_sql)
    e = sub.add_parser("explain", help="explain a SQL query without running it", description=__doc__,
                       epilog=EXPLAIN_EXAMPLES)
    e.add_argument("query", help="the SELECT statement")
    _add_tables(e)
    add_format_option(e, default="table")
    e.set_defaults(handler=_handle_explain)


def _session_with_tables(args):
    session = make_session(args)
    for spec in args.table:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path:
            raise CliUsageError(f"--table expects NAME=PATH, got {spec!r} (example: --table sales=sales.csv)",
                                details={"table": spec})
        p = check_input_path(path, f"--table {name}")
        with activity(f"reading {p.name}"):
            session.create_temp_view(name.strip(), open_input(session, p))
    return session


def _handle_sql(args) -> Output:
    session = _session_with_tables(args)
    with activity("running query"):
        table = session.sql(args.query).to_arrow()
    shown = table if args.format == "json" else table.slice(0, args.max_rows)
    doc = {"schema": table.schema.names, "rows": table.to_pylist(), "row_count": table.num_rows}
    return Output(doc, table=shown, total_rows=table.num_rows)


def _handle_explain(args) -> Output:
    session = _session_with_tables(args)
    text = session.explain_sql(args.query)
    return Output({"query": args.query, "explain": text}, text=text)
