"""Exact-scan vector search (``Session.vector_search`` / ``hybrid_search``, SQL ``HYBRID SEARCH``).

The kernel is ``vector_topk`` from the registry (``velaria.kernels``): the pure-Python reference
(``velaria.reference.topk``) or its C twin (``velaria.accel``). See docs/vector.md.
"""
from __future__ import annotations

from .column import VectorColumn, parse_vector_text, vector_column
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
    "normalize_metric", "parse_vector_text", "search_table", "vector_column",
]
