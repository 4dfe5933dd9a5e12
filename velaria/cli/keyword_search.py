"""``velaria keyword-search``: BM25 keyword search over text columns of a file.

Prints one JSON document (``query``, ``text_columns``, ``top_k``, ``tokenizer``, ``schema``,
``rows``, ``explain``); ``--format table|csv`` prints the rows instead; with ``--explain`` it
prints only the explain text, byte for byte what ``Session.explain_keyword_search`` returns.
"""
from __future__ import annotations

from .common import add_engine_option, add_input_path_option, make_session, step
from .errors import CliUsageError
from .inputs import check_input_path, open_input, split_columns
from .output import Output
from .parsing import add_format_option, positive_int

__all__ = ["register", "execute"]

_VIEW = "input_table"

EXAMPLES = """\
examples:
  velaria keyword-search --input-path people.csv --text-columns name --query "bob smith"
  velaria keyword-search --input-path docs.parquet --text-columns title,body --query "arrow ipc" --top-k 3 --format table
  velaria keyword-search --input-path docs.csv --text-columns body --query "数据 引擎" --tokenizer fallback --explain
"""


def register(sub) -> None:
    p = sub.add_parser("keyword-search", help="BM25 keyword search over a file's text columns",
                       description=__doc__, epilog=EXAMPLES)
    add_input_path_option(p, "csv", "input file: csv, parquet, arrow/feather, json or xlsx")
    p.add_argument("--text-columns", required=True, help="comma-separated text column names, e.g. 'title,body'")
    p.add_argument("--query", required=True, help="the query text, e.g. 'bob smith'")
    p.add_argument("--top-k", type=positive_int, default=10, help="rows to return (default 10)")
    p.add_argument("--tokenizer", choices=["fallback", "jieba"], default=None,
                   help="default: $VELARIA_KEYWORD_TOKENIZER or fallback; jieba needs the jieba package")
    add_engine_option(p)
    p.add_argument("--explain", action="store_true", help="print only the explain text")
    add_format_option(p)
    p.set_defaults(handler=_handle)


def execute(args) -> dict:
    """Search; ``{"payload", "table", "explain"}``."""
    from ..vector.keyword import resolve_tokenizer

    path = check_input_path(args.csv, "--input-path")
    columns = split_columns(args.text_columns)
    if not columns:
        raise CliUsageError("--text-columns must name at least one column", details={"text_columns": args.text_columns})
    session = make_session(args)
    with step("failed to read input", "input_read", {"input_path": str(path)}):
        session.create_temp_view(_VIEW, open_input(session, path))
    # the BM25 kernel sizes its output by min(top_k, rows): a large --top-k costs nothing
    kwargs = dict(table=_VIEW, text_columns=columns, query_text=args.query,
                  top_k=args.top_k, tokenizer=args.tokenizer)
    details = {"text_columns": columns, "query": args.query, "top_k": args.top_k}
    with step("failed to execute keyword search", "keyword_search", details):
        result = session.keyword_search(**kwargs).to_arrow()
    with step("failed to explain keyword search", "keyword_explain", details):
        explain = session.explain_keyword_search(**kwargs)
    payload = {"query": args.query, "text_columns": columns, "top_k": args.top_k,
               "tokenizer": resolve_tokenizer(args.tokenizer), "schema": result.schema.names,
               "rows": result.to_pylist(), "explain": explain}
    return {"payload": payload, "table": result, "explain": explain}


def _handle(args) -> Output:
    out = execute(args)
    if args.explain:
        return Output({"explain": out["explain"]}, text=out["explain"], text_always=True)
    return Output(out["payload"], table=out["table"])
