"""``Session`` search methods (a mixin): ``vector_search``, ``hybrid_search``, ``keyword_search``
and their explains.

The host class provides ``_materialized_table(name) -> pa.Table`` (raising ``view not found``),
``kernels`` (a :class:`velaria.kernels.KernelSet`) and ``create_dataframe_from_arrow(table)``.
It may provide ``runtime`` (a :class:`velaria.runtime.Runtime`: outside embedded mode, vector,
hybrid and keyword search run per partition on its workers) and ``_hybrid_filter_execution(name) -> str`` (``none`` | ``post-load-filter`` |
``source-pushdown``) for the hybrid explain; without it explain says ``none``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import keyword, search

if TYPE_CHECKING:  # pragma: no cover
    from ..dataframe import DataFrame

__all__ = ["VectorMethods"]


def _check_names(table, vector_column) -> None:
    if not isinstance(table, str):
        raise TypeError("table must be a str")
    if not isinstance(vector_column, str):
        raise TypeError("vector_column must be a str")


class VectorMethods:
    """Exact-scan vector search and BM25 keyword search over a batch view."""

    def vector_search(self, table: str, vector_column: str, query_vector: Sequence[float],
                      top_k: int = 10, metric: str = "cosine") -> "DataFrame":
        """Top-k rows of ``table`` by ``metric``: a DataFrame with ``row_id``, ``score``.

        ``query_vector`` may also be a list of vectors; the result then has ``query_index``,
        ``row_id``, ``score``. Scores: cosine distance (ascending), dot (descending), l2
        distance (ascending); ties by ascending ``row_id``.
        """
        _check_names(table, vector_column)
        arrow = self.context.materialized_table(table)
        runtime = getattr(self, "runtime", None)     # single-node / distributed: per-partition top-k
        out = runtime.vector_search(arrow, vector_column, query_vector, top_k, metric, self.kernels) \
            if runtime is not None else None
        if out is None:
            out = search.search_table(arrow, vector_column, query_vector, top_k, metric, self.kernels)
        return self.create_dataframe_from_arrow(out)

    def explain_vector_search(self, table: str, vector_column: str, query_vector: Sequence[float],
                              top_k: int = 10, metric: str = "cosine") -> str:
        """The contract's vector explain text (8 ``key=value`` lines)."""
        _check_names(table, vector_column)
        arrow = self.context.materialized_table(table)
        return search.explain_search(arrow, vector_column, query_vector, top_k, metric, self.kernels)

    def hybrid_search(self, table: str, vector_column: str, query_vector: Sequence[float],
                      top_k: int = 10, metric: str = "cosine",
                      score_threshold: float | None = None) -> "DataFrame":
        """The view's rows for the top-k hits, best first, plus ``vector_score``; the threshold
        is applied after top-k (``>=`` for dot, ``<=`` for cosine and l2)."""
        _check_names(table, vector_column)
        check = getattr(self, "_check_hybrid_view", None)
        if callable(check):
            check(table)
        arrow = self.context.materialized_table(table)
        runtime = getattr(self, "runtime", None)     # single-node / distributed: per-partition top-k
        out = runtime.hybrid_search(arrow, vector_column, query_vector, top_k, metric, score_threshold,
                                    self.kernels) if runtime is not None else None
        if out is None:
            out = search.hybrid_search_table(arrow, vector_column, query_vector, metric, top_k,
                                             score_threshold, self.kernels)
        return self.create_dataframe_from_arrow(out)

    def explain_hybrid_search(self, table: str, vector_column: str, query_vector: Sequence[float],
                              top_k: int = 10, metric: str = "cosine",
                              score_threshold: float | None = None) -> str:
        """The hybrid explain text."""
        _check_names(table, vector_column)
        check = getattr(self, "_check_hybrid_view", None)
        if callable(check):
            check(table)
        arrow = self.context.materialized_table(table)
        hook = getattr(self, "_hybrid_filter_execution", None)
        execution = hook(table) if callable(hook) else "none"
        lines = search.explain_hybrid_lines(arrow, vector_column, query_vector, metric, top_k,
                                            score_threshold, self.kernels, execution)
        return "".join(line + "\n" for line in lines)

    def keyword_search(self, table: str, text_columns: str | Sequence[str], query_text: str,
                       top_k: int = 10, tokenizer: str | None = None) -> "DataFrame":
        """BM25 keyword search: the view's rows with a score above 0, best first, plus float64
        ``keyword_score``; equal scores by ascending row index.

        ``text_columns`` is a column name or a list of them (NULL cells add nothing; other
        types are read as their text). ``tokenizer`` is ``"fallback"`` (ASCII words and CJK
        n-grams) or ``"jieba"`` (needs the jieba package); ``None`` reads
        ``$VELARIA_KEYWORD_TOKENIZER``, default ``fallback``.
        """
        if not isinstance(table, str):
            raise TypeError("table must be a str")
        arrow = self.context.materialized_table(table)
        runtime = getattr(self, "runtime", None)     # single-node / distributed: corpus statistics, then top-k
        out = runtime.keyword_search(arrow, text_columns, query_text, top_k, self.kernels, tokenizer) \
            if runtime is not None else None
        if out is None:
            out = keyword.keyword_search_table(arrow, text_columns, query_text, top_k, self.kernels, tokenizer)
        return self.create_dataframe_from_arrow(out)

    def explain_keyword_search(self, table: str, text_columns: str | Sequence[str], query_text: str,
                               top_k: int = 10, tokenizer: str | None = None) -> str:
        """The keyword-search explain text (``key=value`` lines: mode, columns, tokenizer, ...)."""
        if not isinstance(table, str):
            raise TypeError("table must be a str")
        arrow = self.context.materialized_table(table)
        lines = keyword.explain_keyword_lines(arrow, text_columns, query_text, top_k, self.kernels, tokenizer)
        return "".join(line + "\n" for line in lines)
