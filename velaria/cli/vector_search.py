"""``velaria vector-search``: exact top-k search over a vector column of a file.

Prints upstream's JSON document (``metric``, ``top_k``, ``where_column``, ``where_op``,
``where_value``, ``score_threshold``, ``schema``, ``rows``, ``explain``). ``--where-*`` filters
are bound as values, never spliced into SQL, so any value (``O'Brien``) is safe.
"""
from __future__ import annotations

import math
from pathlib import Path

from .common import add_engine_option, add_input_path_option, make_session, progress_snapshot, step
from .errors import CliStructuredError, CliUsageError
from .inputs import check_input_path, open_input
from .output import Output
from .parsing import add_format_option, finite_float, positive_int

__all__ = ["register", "add_arguments", "execute", "input_paths", "parse_vector_text"]

_VIEW = "input_table"
_HYBRID_VIEW = "input_table_hybrid"

EXAMPLES = """\
examples:
  velaria vector-search --input-path docs.parquet --vector-column embedding --query-vector 0.1,-0.3,0.9
  velaria vector-search --input-path docs.csv --vector-column embedding --query-vector '[1 0 0]' \\
      --metric l2 --top-k 3 --where-column author --where-op = --where-value "O'Brien" --format table
  velaria vector-search --input-path docs.csv --vector-column embedding --query-vector -0.86,0.5,0 \\
      --score-threshold 0.2 --explain
"""


def parse_vector_text(text: str) -> list[float]:
    """``'1,0,0'``, ``'[1 0 0]'`` or ``' -0.5 , 2 '`` -> finite floats (``[]`` for empty text), with
    upstream's CLI error for a bad number."""
    from ..errors import VelariaValueError
    from ..vector import parse_vector_text as parse
    try:
        values = parse(text)
    except VelariaValueError:
        raise CliStructuredError("--query-vector contains invalid numeric value", phase="argument_parse",
                                 details={"query_vector": text}) from None
    if not all(math.isfinite(v) for v in values):
        raise CliStructuredError("--query-vector must contain only finite numbers", phase="argument_parse",
                                 details={"query_vector": text})
    return values


def add_arguments(p) -> None:
    """The flags of vector-search (also accepted by ``run start -- vector-search``)."""
    add_input_path_option(p, "csv", "input file: csv, parquet, arrow/feather, json or xlsx")
    p.add_argument("--vector-column", required=True)
    p.add_argument("--query-vector", required=True,
                   help="e.g. '1.0,0.0,0.0', '[1 0 0]' or -0.86,0.5 (negative values work)")
    p.add_argument("--metric", choices=["cosine", "cosin", "dot", "l2"], default="cosine")
    p.add_argument("--top-k", type=positive_int, default=5, help="rows to return (default 5)")
    p.add_argument("--where-column", help="filter column (all three --where-* go together)")
    p.add_argument("--where-op", help="one of = == != <> < <= > >=")
    p.add_argument("--where-value", help="value (NULL means IS NULL / IS NOT NULL)")
    p.add_argument("--score-threshold", type=finite_float, help="keep hits at least this good")
    add_engine_option(p)


def register(sub) -> None:
    p = sub.add_parser("vector-search", help="exact top-k vector search over a file", description=__doc__,
                       epilog=EXAMPLES)
    add_arguments(p)
    p.add_argument("--explain", action="store_true", help="print only the explain text")
    add_format_option(p)
    p.set_defaults(handler=_handle)


def input_paths(args) -> list[str]:
    """The files whose content the result depends on (for the result cache)."""
    return [args.csv]


def execute(args, *, output_path: Path | None = None, run_id: str | None = None) -> dict:
    """Search; ``{"payload", "artifacts", "table", "explain"}``."""
    from ..vector.search import METRIC_ALIASES
    from ..workspace.artifacts import table_artifact, text_artifact

    path = check_input_path(args.csv, "--input-path")
    session = make_session(args)
    progress_snapshot(run_id, "read_input", input_path=str(path))
    with step("failed to read csv input", "csv_read", {"csv": str(args.csv), "vector_column": args.vector_column},
              run_id):
        df = open_input(session, path)
    with step("failed to register temp view", "vector_register_view", run_id=run_id):
        session.create_temp_view(_VIEW, df)
    needle = parse_vector_text(args.query_vector)
    if not needle:
        raise CliUsageError("--query-vector must not be empty", details={"query_vector": args.query_vector})
    where = (args.where_column, args.where_op, args.where_value)
    if any(w is not None for w in where) and not all(w is not None for w in where):
        raise CliUsageError("--where-column, --where-op, and --where-value must be provided together")
    hybrid = args.where_column is not None or args.score_threshold is not None
    metric = METRIC_ALIASES.get(args.metric, args.metric)
    details = {"csv": str(args.csv), "vector_column": args.vector_column, "metric": metric, "top_k": args.top_k,
               "where_column": args.where_column, "where_op": args.where_op, "score_threshold": args.score_threshold}
    view = _VIEW
    if hybrid:
        base = df
        if args.where_column is not None:
            from .bound_filter import bound_filter
            with step("failed to apply hybrid search filter", "vector_filter", details, run_id):
                base = bound_filter(session, _VIEW, args.where_column, args.where_op, args.where_value)
        session.create_temp_view(_HYBRID_VIEW, base)
        view = _HYBRID_VIEW
    # the search kernels size their output by min(top_k, rows): a large --top-k costs nothing
    kwargs = dict(table=view, vector_column=args.vector_column, query_vector=needle,
                  top_k=args.top_k, metric=args.metric)
    kind = "hybrid" if hybrid else "vector"
    if hybrid:
        kwargs["score_threshold"] = args.score_threshold
    progress_snapshot(run_id, "search")
    with step(f"failed to execute {kind} search", f"{kind}_search", details, run_id):
        search = session.hybrid_search if hybrid else session.vector_search
        result = search(**kwargs).to_arrow()
    with step(f"failed to explain {kind} search", f"{kind}_explain", details, run_id):
        explain = (session.explain_hybrid_search if hybrid else session.explain_vector_search)(**kwargs)
    artifacts = []
    if output_path is not None:
        tag = "hybrid-search" if hybrid else "vector-search"
        with step("failed to write result artifact", "artifact_materialize", {"output_path": str(output_path)},
                  run_id):
            artifacts.append(table_artifact(result, output_path, ["result", tag]))
            artifacts.append(text_artifact(explain, Path(output_path).parent / "vector_explain.txt", ["explain", tag]))
    progress_snapshot(run_id, "finished", rows=result.num_rows)
    payload = {"metric": metric, "top_k": args.top_k, "where_column": args.where_column,
               "where_op": args.where_op, "where_value": args.where_value,
               "score_threshold": args.score_threshold, "schema": result.schema.names,
               "rows": result.to_pylist(), "explain": explain}
    return {"payload": payload, "artifacts": artifacts, "table": result, "explain": explain}


def _handle(args) -> Output:
    out = execute(args)
    if args.explain:  # byte for byte what explain_vector_search / explain_hybrid_search return
        return Output({"explain": out["explain"]}, text=out["explain"], text_always=True)
    return Output(out["payload"], table=out["table"])
