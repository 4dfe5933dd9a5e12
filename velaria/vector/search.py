"""Vector search over one Arrow table: argument rules, the kernel call, explain text.

The object that picks the kernel (:class:`VectorPlan`) also renders the explain lines, so
explain always names the kernel that really runs.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import VelariaError, VelariaValueError
from ..accel.threads import default_threads  # the accelerator's rule, kept in one place
from .column import VectorColumn, parse_vector_text, vector_column

__all__ = [
    "METRIC_ALIASES", "normalize_metric", "coerce_query", "coerce_top_k", "coerce_threshold",
    "VectorPlan", "plan_search", "search_table", "hybrid_search_table", "default_threads",
]

#: API / SQL metric name -> kernel metric name (case-sensitive, as upstream)
METRIC_ALIASES = {"cosine": "cosine", "cosin": "cosine", "dot": "dot", "l2": "l2"}
METRIC_ERROR = "metric must be one of: cosine/cosin, dot, l2"


def normalize_metric(metric) -> str:
    if not isinstance(metric, str) or metric not in METRIC_ALIASES:
        raise VelariaValueError(f"{METRIC_ERROR} (got {metric!r})")
    return METRIC_ALIASES[metric]


def coerce_top_k(top_k) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
        raise TypeError(f"top_k must be an int, got {type(top_k).__name__}")
    if top_k < 1:
        raise VelariaValueError(f"top_k must be >= 1 (got {top_k})")
    return int(top_k)


def coerce_threshold(score_threshold) -> float | None:
    if score_threshold is None:
        return None
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, numbers.Real):
        raise TypeError("score_threshold must be numeric")
    return float(score_threshold)


def _is_sequence(obj) -> bool:
    return isinstance(obj, (list, tuple, np.ndarray)) or (
        hasattr(obj, "__len__") and hasattr(obj, "__getitem__") and not isinstance(obj, (str, bytes, dict)))


def coerce_query(query_vector, *, allow_batch: bool) -> tuple[np.ndarray, bool]:
    """The query as float32 ``(n_queries, dim)`` and whether a batch (list of vectors) was given.

    A ``str`` is parsed as vector text (``"[1 0 0]"``). Raises ``TypeError`` for a non-sequence or
    a non-number, ``VelariaValueError`` for NaN / infinity.
    """
    if isinstance(query_vector, str):
        query_vector = parse_vector_text(query_vector)
    if isinstance(query_vector, np.ndarray) and query_vector.ndim == 2 and allow_batch:
        rows, batch = [list(r) for r in query_vector], True
    elif not _is_sequence(query_vector):
        raise TypeError("query_vector must be a sequence of floats")
    else:
        items = list(query_vector)
        batch = allow_batch and bool(items) and all(_is_sequence(v) and not isinstance(v, str) for v in items)
        rows = [list(v) for v in items] if batch else [items]
    for row in rows:
        for v in row:
            if isinstance(v, (bool, np.bool_)):
                continue
            if not isinstance(v, (numbers.Real, np.floating, np.integer)):
                raise TypeError("query_vector must contain only numbers")
    dims = {len(r) for r in rows}
    if len(dims) > 1:
        raise VelariaValueError(f"query vectors must all have the same dimension (got {sorted(dims)})")
    with np.errstate(over="ignore"):
        arr = np.asarray([[float(v) for v in r] for r in rows], dtype=np.float64)
        q32 = arr.astype(np.float32).reshape(len(rows), -1)
    if not np.isfinite(q32).all():
        bad = "NaN" if np.isnan(q32).any() else "infinity (or a value too large for float32)"
        raise VelariaValueError(f"query_vector must not contain NaN or infinity (found {bad})")
    return np.ascontiguousarray(q32), batch


def backend_name(kernels) -> str:
    """The backend that runs ``vector_topk``: the accelerator's live SIMD level, or ``python``."""
    if kernels.origin("vector_topk") != "accel":
        return "python"
    from .. import accel
    return accel.backend()


@dataclass
class VectorPlan:
    """One exact-scan search: what runs and how explain describes it."""

    column: VectorColumn
    metric: str              # canonical
    top_k: int | object      # as given (explain prints it verbatim)
    backend: str

    def explain_lines(self) -> list[str]:
        """The contract's vector explain lines, in native Velaria's order."""
        return [
            "mode=exact-scan",
            f"metric={self.metric}",
            f"dimension={self.column.dim}",
            f"top_k={self.top_k}",
            f"candidate_rows={self.column.candidate_rows}",
            "acceleration=flat-buffer+simd-topk",
            f"backend={self.backend}",
            "filter_pushdown=false",
        ]

    def explain_text(self) -> str:
        return "".join(line + "\n" for line in self.explain_lines())


def plan_search(table: pa.Table, column: str, metric, kernels, top_k) -> VectorPlan:
    return VectorPlan(column=vector_column(table, column), metric=normalize_metric(metric),
                      top_k=top_k, backend=backend_name(kernels))


def check_dimension(plan: VectorPlan, queries: np.ndarray, message: str) -> None:
    qdim = queries.shape[1]
    if plan.column.dim and qdim != plan.column.dim:
        raise VelariaValueError(f"{message}: query vector has {qdim} dimensions, "
                                f"the vector column has {plan.column.dim}")


def run_search(plan: VectorPlan, queries: np.ndarray, k: int, kernels, threads: int | None = None):
    """``[(row_ids, scores), ...]`` per query; empty results when the column has no vectors."""
    vc = plan.column
    if vc.dim == 0 or vc.candidate_rows == 0:
        return [([], []) for _ in range(queries.shape[0])]
    # cosine scores with the inverse norms; the accelerated dot kernel bounds its error with them
    inv = vc.inv_norms() if plan.metric in ("cosine", "dot") else None
    return kernels.vector_topk(vc.flat, vc.dim, vc.n_rows, vc.valid, queries.reshape(-1), k, plan.metric,
                               inv, default_threads() if threads is None else threads)


def search_table(table: pa.Table, column: str, query_vector, top_k, metric, kernels,
                 mismatch: str = "fixed vector length mismatch in vectorQuery") -> pa.Table:
    """``vector_search`` on an Arrow table: ``row_id``, ``score`` (plus ``query_index`` for a
    batch). ``mismatch`` starts the error for a query of the wrong dimension."""
    k = coerce_top_k(top_k)
    plan = plan_search(table, column, metric, kernels, top_k)
    queries, batch = coerce_query(query_vector, allow_batch=True)
    if queries.shape[1] == 0:
        raise VelariaValueError("query vector cannot be empty")
    check_dimension(plan, queries, mismatch)
    results = run_search(plan, queries, k, kernels)
    if not batch:
        ids, scores = results[0]
        return pa.table({"row_id": pa.array(ids, pa.int64()), "score": pa.array(scores, pa.float64())})
    qidx, all_ids, all_scores = [], [], []
    for qi, (ids, scores) in enumerate(results):
        qidx.extend([qi] * len(ids))
        all_ids.extend(ids)
        all_scores.extend(scores)
    return pa.table({"query_index": pa.array(qidx, pa.int64()), "row_id": pa.array(all_ids, pa.int64()),
                     "score": pa.array(all_scores, pa.float64())})


def explain_search(table: pa.Table, column: str, query_vector, top_k, metric, kernels) -> str:
    """``explain_vector_search`` text (an empty query is accepted, as upstream)."""
    coerce_top_k(top_k)
    plan = plan_search(table, column, metric, kernels, top_k)
    queries, _ = coerce_query(query_vector, allow_batch=True)
    if queries.shape[1]:
        check_dimension(plan, queries, "query vector dimension mismatch in explainVectorQuery")
    return plan.explain_text()


# ---- hybrid search -------------------------------------------------------------------------

SCORE_COLUMN = "vector_score"


HYBRID_MISMATCH = "fixed vector length mismatch in hybridSearch"


def threshold_passes(metric: str, scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """Which ``scores`` pass the hybrid threshold (``>=`` for dot, ``<=`` for cosine and l2)."""
    if threshold is None:
        return np.ones(len(scores), dtype=bool)
    return scores >= threshold if metric == "dot" else scores <= threshold


def _hybrid(table, column, query_vector, metric, top_k, score_threshold, kernels, who):
    k = coerce_top_k(top_k)
    threshold = coerce_threshold(score_threshold)
    if SCORE_COLUMN in table.column_names:
        raise VelariaError(f"hybridSearch output column already exists: {SCORE_COLUMN}")
    plan = plan_search(table, column, metric, kernels, top_k)
    queries, _ = coerce_query(query_vector, allow_batch=False)
    if queries.shape[1] == 0:
        raise VelariaValueError("query vector cannot be empty")
    check_dimension(plan, queries, who)
    ids, scores = run_search(plan, queries, k, kernels)[0]
    passes = threshold_passes(plan.metric, np.asarray(scores, dtype=np.float64), threshold)
    keep = [(i, s) for i, s, ok in zip(ids, scores, passes) if ok]
    return plan, threshold, keep


def hybrid_search_table(table: pa.Table, column: str, query_text, metric: str, top_k: int,
                        score_threshold: float | None, kernels) -> pa.Table:
    """The table's rows for the best hits, best first, plus float64 ``vector_score``.

    ``query_text`` is vector text (``'[1 0 0]'``) or a sequence of numbers. The threshold is
    applied after top-k (``>=`` for dot, ``<=`` for cosine and l2), so fewer than k rows may
    come back.
    """
    _, _, keep = _hybrid(table, column, query_text, metric, top_k, score_threshold, kernels, HYBRID_MISMATCH)
    rows = table.take(pa.array([i for i, _ in keep], pa.int64()))
    return rows.append_column(SCORE_COLUMN, pa.array([s for _, s in keep], pa.float64()))


def explain_hybrid_lines(table: pa.Table, column: str, query_vector, metric, top_k, score_threshold,
                         kernels, column_filter_execution: str = "none") -> list[str]:
    """The hybrid explain lines (``input_rows`` is the table's row count after filters)."""
    plan, threshold, keep = _hybrid(table, column, query_vector, metric, top_k, score_threshold, kernels,
                                    "query vector dimension mismatch in explainHybridSearch")
    return [
        "mode=exact-scan-hybrid-search",
        f"metric={plan.metric}",
        f"top_k={top_k}",
        f"score_threshold={'none' if threshold is None else repr(threshold)}",
        f"score_threshold_compare={'>=' if plan.metric == 'dot' else '<='}",
        f"input_rows={table.num_rows}",
        f"candidate_rows={plan.column.candidate_rows}",
        f"returned_rows={len(keep)}",
        "column_filter_stage=before-vector",
        f"column_filter_execution={column_filter_execution}",
        "acceleration=flat-buffer+simd-topk",
        f"backend={plan.backend}",
    ]
