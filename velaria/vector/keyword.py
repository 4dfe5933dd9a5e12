"""Keyword (BM25) search over one Arrow table: argument rules, the kernel call, explain text.

Used by ``Session.keyword_search`` / ``explain_keyword_search``, SQL ``KEYWORD SEARCH(...)``
and ``velaria keyword-search``. The scoring itself is the ``keyword_topk`` kernel
(``velaria.reference.keyword``, or its vectorised twin in ``velaria.accel``).

The tokenizer is chosen explicitly: the ``tokenizer`` argument, else ``$VELARIA_KEYWORD_TOKENIZER``,
else ``fallback``. ``jieba`` needs the optional ``jieba`` package (``pip install velaria[cjk]``);
asking for it without the package is an error, never a silent switch. Explain names the one used.
"""
from __future__ import annotations

import numbers
import os

import pyarrow as pa

from ..errors import ColumnNotFoundError, VelariaError, VelariaValueError
from ..reference import keyword as bm25

__all__ = ["SCORE_COLUMN", "resolve_tokenizer", "validate_request", "keyword_search_table", "explain_keyword_lines"]

SCORE_COLUMN = "keyword_score"
TOKENIZER_ENV = "VELARIA_KEYWORD_TOKENIZER"


def resolve_tokenizer(tokenizer=None) -> str:
    """The tokenizer to use: the argument, else ``$VELARIA_KEYWORD_TOKENIZER``, else ``fallback``."""
    source = "tokenizer"
    if tokenizer is None:
        tokenizer = os.environ.get(TOKENIZER_ENV, "").strip().lower() or "fallback"
        source = TOKENIZER_ENV
    if not isinstance(tokenizer, str):
        raise TypeError(f"tokenizer must be a str, got {type(tokenizer).__name__}")
    if tokenizer not in bm25.TOKENIZERS:
        raise VelariaValueError(f"{source} must be one of: {', '.join(bm25.TOKENIZERS)} (got {tokenizer!r})")
    if tokenizer == "jieba" and not bm25.jieba_available():
        raise VelariaValueError(f"keyword tokenizer 'jieba' was requested ({source}) but the jieba package is "
                                "not installed: pip install jieba (or velaria[cjk]), or use 'fallback'")
    return tokenizer


def _columns(text_columns) -> list[str]:
    if isinstance(text_columns, str):
        text_columns = [text_columns]
    if not isinstance(text_columns, (list, tuple)):
        raise TypeError("text_columns must be a str or a list of str")
    for name in text_columns:
        if not isinstance(name, str):
            raise TypeError("text_columns must be a str or a list of str")
    if not text_columns:
        raise VelariaValueError("keywordSearch requires at least one text column")
    return list(text_columns)


def _top_k(top_k) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
        raise TypeError(f"top_k must be an int, got {type(top_k).__name__}")
    if top_k < 1:
        raise VelariaValueError("keywordSearch top_k must be positive")
    return int(top_k)


def validate_request(query_text, top_k, tokenizer=None) -> str:
    """Check top_k and the query in native Velaria's order; returns the tokenizer to use."""
    _top_k(top_k)
    if not isinstance(query_text, str):
        raise TypeError(f"query_text must be a str, got {type(query_text).__name__}")
    if not query_text:
        raise VelariaValueError("keywordSearch query text cannot be empty")
    tok = resolve_tokenizer(tokenizer)
    if not bm25.query_terms(query_text, tok):
        raise VelariaValueError("keywordSearch query must contain at least one token")
    return tok


def _check(table: pa.Table, text_columns, query_text, top_k, tokenizer):
    """Validate in native Velaria's order; returns (columns, k, tokenizer)."""
    columns = _columns(text_columns)
    tok = validate_request(query_text, top_k, tokenizer)
    k = int(top_k)
    if SCORE_COLUMN in table.column_names:
        raise VelariaError(f"keywordSearch output column already exists: {SCORE_COLUMN}")
    for name in columns:
        if name not in table.column_names:
            raise ColumnNotFoundError(f"column not found: {name}")
    return columns, k, tok


#: validation of a keyword search request, for callers that run the search themselves
check_request = _check


def _run(table: pa.Table, columns: list[str], query_text: str, k: int, tokenizer: str, kernels):
    arrays = [table.column(name) for name in columns]
    return kernels.keyword_topk(arrays, query_text, k, tokenizer)


def keyword_search_table(table: pa.Table, text_columns, query_text, top_k, kernels,
                         tokenizer: str | None = None) -> pa.Table:
    """The table's best-matching rows, best first, plus float64 ``keyword_score`` (only rows
    with a score above 0; equal scores by ascending row index)."""
    columns, k, tok = _check(table, text_columns, query_text, top_k, tokenizer)
    rows, scores = _run(table, columns, query_text, k, tok, kernels)
    out = table.take(pa.array(rows, pa.int64()))
    return out.append_column(SCORE_COLUMN, pa.array(scores, pa.float64()))


def backend_name(kernels) -> str:
    """What runs ``keyword_topk``: ``arrow-vectorized`` (the accelerated twin) or ``python``."""
    return "arrow-vectorized" if kernels.origin("keyword_topk") == "accel" else "python"


def explain_keyword_lines(table: pa.Table, text_columns, query_text, top_k, kernels,
                          tokenizer: str | None = None) -> list[str]:
    """``key=value`` lines describing one keyword search (runs it to count the returned rows)."""
    columns, k, tok = _check(table, text_columns, query_text, top_k, tokenizer)
    rows, _ = _run(table, columns, query_text, k, tok, kernels)
    return [
        "mode=bm25-keyword-search",
        f"columns={','.join(columns)}",
        f"top_k={top_k}",
        f"tokenizer={tok}",
        f"query_terms={len(bm25.query_terms(query_text, tok))}",
        f"k1={bm25.K1}",
        f"b={bm25.B}",
        f"input_rows={table.num_rows}",
        f"returned_rows={len(rows)}",
        f"backend={backend_name(kernels)}",
    ]
