"""``velaria file-sql``: register one file as a table and run one SQL query over it.

Prints upstream's JSON document ``{"table", "query", "input_type", "schema", "rows"}``;
``--format table`` prints a readable table instead.
"""
from __future__ import annotations

from pathlib import Path

from .common import add_engine_option, add_input_path_option, build_batch_explain, make_session, \
    parse_explain_sections, progress_snapshot, step
from .inputs import INPUT_TYPES, check_input_path, open_input
from .output import Output
from .parsing import add_format_option
from .progress import activity

__all__ = ["register", "add_arguments", "execute", "input_paths"]

EXAMPLES = """\
examples:
  velaria file-sql --input-path sales.csv --query "SELECT region, SUM(amount) AS total FROM input_table GROUP BY region"
  velaria file-sql --input-path events.parquet --table ev --query "SELECT COUNT(*) AS n FROM ev" --format table
  velaria file-sql --input-path app.log --input-type line --line-mode regex \\
      --regex-pattern '^(\\S+) (\\S+)$' --columns level,msg --query "SELECT * FROM input_table"
"""


def add_arguments(p) -> None:
    """The flags of file-sql (also accepted by ``run start -- file-sql``)."""
    add_input_path_option(p, "input_path", "input file: csv, line, json, parquet, arrow/feather or xlsx")
    p.add_argument("--table", default="input_table", help="table name used in --query (default: input_table)")
    p.add_argument("--input-type", choices=INPUT_TYPES, default="auto",
                   help="reader (default: auto: from the extension, text files are probed)")
    p.add_argument("--delimiter", default=",", help="csv / line split delimiter (default: ,)")
    p.add_argument("--line-mode", choices=["split", "regex"], default="split")
    p.add_argument("--regex-pattern", help="regex with capture groups (--line-mode regex)")
    p.add_argument("--mappings", help="line columns as NAME:INDEX pairs, e.g. 'uid:1,action:2'")
    p.add_argument("--columns", help="comma-separated column names (line and json inputs)")
    p.add_argument("--json-format", choices=["json_lines", "json_array"], default="json_lines")
    p.add_argument("--sheet", help="xlsx sheet name or 0-based index (default: the first)")
    p.add_argument("--query", required=True, help="the SQL query")
    add_engine_option(p)


def register(sub) -> None:
    p = sub.add_parser("file-sql", help="run a SQL query over one file", description=__doc__, epilog=EXAMPLES)
    add_arguments(p)
    add_format_option(p)
    p.set_defaults(handler=_handle)


def input_paths(args) -> list[str]:
    """The files whose content the result depends on (for the result cache)."""
    return [args.input_path]


def execute(args, *, output_path: Path | None = None, run_id: str | None = None) -> dict:
    """Run the query; ``{"payload", "artifacts", "table"}`` (an artifact only inside a run)."""
    from ..workspace.artifacts import table_artifact
    from ..workspace.run_store import write_explain

    path = check_input_path(args.input_path, "--input-path")
    where = {"input_path": str(args.input_path), "input_type": args.input_type, "table": args.table}
    session = make_session(args)
    progress_snapshot(run_id, "read_input", input_path=str(path))
    with activity(f"reading {path.name}"), step("failed to register sql input table", "sql_input_register",
                                                 where, run_id):
        df = open_input(session, path, args.input_type, delimiter=args.delimiter, line_mode=args.line_mode,
                        regex_pattern=args.regex_pattern, mappings=args.mappings, columns=args.columns,
                        json_format=args.json_format, sheet=args.sheet)
        session.create_temp_view(args.table, df)
    try:
        batch_explain = session.explain_sql(args.query)
    except Exception:  # explain covers SELECT only; the query itself reports real errors below
        batch_explain = ""
    progress_snapshot(run_id, "execute")
    with step("failed to execute sql query", "sql_execute", {**where, "query": args.query}, run_id):
        result_df = session.sql(args.query)
    logical = result_df.explain() if hasattr(result_df, "explain") else ""
    with activity("running query"), step("failed to materialize sql result", "result_materialize",
                                         {**where, "query": args.query}, run_id):
        result = result_df.to_arrow()
    artifacts = []
    if output_path is not None:
        with step("failed to write result artifact", "artifact_materialize", {"output_path": str(output_path)},
                  run_id):
            artifacts.append(table_artifact(result, output_path, ["result", "file-sql"]))
    if run_id is not None:
        write_explain(run_id, parse_explain_sections(batch_explain) if batch_explain
                      else build_batch_explain(logical, output_path))
    progress_snapshot(run_id, "finished", rows=result.num_rows)
    payload = {"table": args.table, "query": args.query, "input_type": args.input_type,
               "schema": result.schema.names, "rows": result.to_pylist()}
    return {"payload": payload, "artifacts": artifacts, "table": result}


def _handle(args) -> Output:
    out = execute(args)
    return Output(out["payload"], table=out["table"])
