"""``velaria keyword-search``: BM25 keyword search over text columns of a CSV / Parquet / Arrow file.

Prints one JSON document (``query``, ``text_columns``, ``top_k``, ``tokenizer``, ``schema``,
``rows``, ``explain``); with ``--explain`` it prints only the explain text, byte for byte what
``Session.explain_keyword_search`` returns. Errors print ``{"ok": false, "error": ...,
"error_type": ...}`` and exit with 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "run"]

_VIEW = "input_table"


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("keyword-search", help="BM25 keyword search over a file's text columns",
                              description=__doc__.splitlines()[0])
    p.add_argument("--csv", "--input-path", dest="csv", required=True,
                   help="input file: .csv, .parquet, or .arrow/.feather/.ipc")
    p.add_argument("--text-columns", required=True,
                   help="comma-separated text column names, e.g. 'title,body'")
    p.add_argument("--query", required=True, help="the query text, e.g. 'bob smith'")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--tokenizer", choices=["fallback", "jieba"], default=None,
                   help="default: $VELARIA_KEYWORD_TOKENIZER or fallback; jieba needs the jieba package")
    p.add_argument("--engine", choices=["auto", "reference", "accel"], default=None,
                   help="kernels to use (default: $VELARIA_ENGINE or auto)")
    p.add_argument("--explain", action="store_true", help="print only the explain text")
    p.set_defaults(run=run)
    return p


def _execute(args) -> tuple[dict, str]:
    from ..session import Session
    from ..vector.keyword import resolve_tokenizer
    from .vector_search import _load

    session = Session(engine=args.engine) if args.engine else Session()
    if not Path(args.csv).exists():
        raise FileNotFoundError(args.csv)
    session.create_temp_view(_VIEW, _load(session, str(args.csv)))
    columns = [c.strip() for c in args.text_columns.split(",") if c.strip()]
    kwargs = dict(table=_VIEW, text_columns=columns, query_text=args.query, top_k=args.top_k,
                  tokenizer=args.tokenizer)
    result = session.keyword_search(**kwargs).to_arrow()
    explain = session.explain_keyword_search(**kwargs)
    request = {"query": args.query, "text_columns": columns, "top_k": args.top_k,
               "tokenizer": resolve_tokenizer(args.tokenizer)}
    return {**request, "schema": result.schema.names, "rows": result.to_pylist(), "explain": explain}, explain


def _error_document(exc: Exception) -> dict:
    """The JSON the CLI prints for a failure: the message and a coarse error type."""
    if isinstance(exc, FileNotFoundError):
        kind = "file_not_found"
    elif isinstance(exc, (ValueError, TypeError)) or getattr(exc, "error_type", None):
        kind = getattr(exc, "error_type", None) or "value_error"
    else:
        kind = "internal_error"
    return {"ok": False, "error": str(exc), "error_type": kind}


def run(args) -> int:
    try:
        payload, explain = _execute(args)
    except Exception as exc:  # the CLI reports every failure as one JSON document
        print(json.dumps(_error_document(exc), indent=2, ensure_ascii=False))
        return 1
    sys.stdout.write(explain if args.explain else json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    return 0
