"""``velaria vector-search``: exact top-k over a vector column of a CSV / Parquet / Arrow file.

Prints one JSON document (``metric``, ``top_k``, ``schema``, ``rows``, ``explain``, ...) as
upstream does; with ``--explain`` it prints only the explain text, byte for byte what
``Session.explain_vector_search`` / ``explain_hybrid_search`` return. Errors print
``{"ok": false, "error": ..., "error_type": ...}`` and exit with 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run"]

_VIEW = "input_table"
_HYBRID_VIEW = "input_table_hybrid"


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("vector-search", help="exact top-k vector search over a file",
                              description=__doc__.splitlines()[0])
    p.add_argument("--csv", "--input-path", dest="csv", required=True,
                   help="input file: .csv, .parquet, or .arrow/.feather/.ipc")
    p.add_argument("--vector-column", required=True)
    p.add_argument("--query-vector", required=True, help="e.g. '1.0,0.0,0.0' or '[1 0 0]'")
    p.add_argument("--metric", choices=["cosine", "cosin", "dot", "l2"], default="cosine")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--where-column")
    p.add_argument("--where-op")
    p.add_argument("--where-value")
    p.add_argument("--score-threshold", type=float)
    p.add_argument("--engine", choices=["auto", "reference", "accel"], default=None,
                   help="kernels to use (default: $VELARIA_ENGINE or auto)")
    p.add_argument("--explain", action="store_true", help="print only the explain text")
    p.set_defaults(run=run)
    return p


class _CliError(ValueError):
    def __init__(self, message: str, phase: str, error_type: str = "value_error"):
        super().__init__(message)
        self.phase = phase
        self.error_type = error_type


def _sql_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parse_scalar(text: str):
    t = text.strip()
    if t.upper() == "NULL":
        return None
    if t.upper() in ("TRUE", "FALSE"):
        return t.upper() == "TRUE"
    try:
        return float(t) if any(c in t for c in ".eE") else int(t)
    except ValueError:
        return t


def _load(session, path: str):
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq
        return session.create_dataframe_from_arrow(pq.read_table(path))
    if suffix in (".arrow", ".feather", ".ipc"):
        import pyarrow.feather as feather
        return session.create_dataframe_from_arrow(feather.read_table(path))
    return session.read_csv(path)


def _execute(args) -> tuple[dict, str]:
    from ..session import Session
    from ..vector import parse_vector_text
    from ..vector.search import METRIC_ALIASES

    session = Session(engine=args.engine) if args.engine else Session()
    if not Path(args.csv).exists():
        raise FileNotFoundError(args.csv)
    try:
        df = _load(session, str(args.csv))
    except Exception as exc:
        raise _CliError(f"failed to read input: {exc}", "csv_read") from exc
    session.create_temp_view(_VIEW, df)
    try:
        needle = parse_vector_text(args.query_vector)
    except Exception as exc:
        raise _CliError("--query-vector contains invalid numeric value", "argument_parse") from exc
    if not needle:
        raise _CliError("--query-vector must not be empty", "argument_parse")
    where = (args.where_column, args.where_op, args.where_value)
    if any(w is not None for w in where) and not all(w is not None for w in where):
        raise _CliError("--where-column, --where-op, and --where-value must be provided together",
                        "argument_parse")
    hybrid = args.where_column is not None or args.score_threshold is not None
    kwargs = dict(vector_column=args.vector_column, query_vector=needle, top_k=args.top_k, metric=args.metric)
    if hybrid:
        base = df
        if args.where_column is not None:
            sql = (f"SELECT * FROM {_VIEW} WHERE {args.where_column} {args.where_op} "
                   f"{_sql_literal(_parse_scalar(args.where_value))}")
            base = session.sql(sql)
        session.create_temp_view(_HYBRID_VIEW, base)
        kwargs.update(table=_HYBRID_VIEW, score_threshold=args.score_threshold)
        result = session.hybrid_search(**kwargs).to_arrow()
        explain = session.explain_hybrid_search(**kwargs)
    else:
        kwargs.update(table=_VIEW)
        result = session.vector_search(**kwargs).to_arrow()
        explain = session.explain_vector_search(**kwargs)
    payload = {
        "metric": METRIC_ALIASES.get(args.metric, args.metric),
        "top_k": args.top_k,
        "where_column": args.where_column,
        "where_op": args.where_op,
        "where_value": args.where_value,
        "score_threshold": args.score_threshold,
        "schema": result.schema.names,
        "rows": result.to_pylist(),
        "explain": explain,
    }
    return payload, explain


def run(args) -> int:
    try:
        payload, explain = _execute(args)
    except Exception as exc:  # the CLI reports every failure as one JSON document
        if isinstance(exc, _CliError):
            error_type, phase = exc.error_type, exc.phase
        elif isinstance(exc, FileNotFoundError):
            error_type, phase = "file_not_found", "filesystem"
        elif isinstance(exc, ValueError):
            error_type, phase = "value_error", None
        else:
            error_type, phase = "internal_error", None
        doc = {"ok": False, "error": str(exc), "error_type": error_type}
        if phase:
            doc["phase"] = phase
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 1
    if args.explain:
        sys.stdout.write(explain)
    else:
        print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    return 0
