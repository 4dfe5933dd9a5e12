"""Exact-scan vector search (``Session.vector_search`` / ``hybrid_search``, SQL ``HYBRID SEARCH``)
and BM25 keyword search (``Session.keyword_search``, SQL ``KEYWORD SEARCH``, module ``keyword``).

The kernels are ``vector_topk`` and ``keyword_topk`` from the registry (``velaria.kernels``):
the pure-Python references (``velaria.reference.topk`` / ``.keyword``) or their accelerated twins
(``velaria.accel``). See docs/vector.md.
"""
from __future__ import annotations

from .column import VectorColumn, parse_vector_text, vector_column
from .keyword import keyword_search_table
from .search import (
    METRIC_ALIASES,
    VectorPlan,
    explain_hybrid_lines,
    hybrid_search_table,
    normalize_metric,
    search_table,
)

__all__ = [
    "METRIC_ALIASES", "VectorColumn", "VectorPlan", "explain_hybrid_lines", "hybrid_search_table",
    "keyword_search_table", "normalize_metric", "parse_vector_text", "search_table", "vector_column",
]
