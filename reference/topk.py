"""Exact top-k vector search: the readable specification (pure Python).

This module is the truth for ``vector_topk``; ``velaria.accel`` provides a C twin with the same
signature (``velaria.accel.KERNELS["vector_topk"]``). The scores and the order below are the
specification, not an approximation of it: every backend (the C scalar code and each SIMD
level, on any number of threads) must return exactly these row ids and exactly these float64
scores, and the tests compare them for equality, never within a tolerance.

The shared signature::

    topk(flat, dim, n_rows, valid, queries, k, metric, inv_norms=None, threads=1)
        -> list[tuple[list[int], list[float]]]       # one (row_ids, scores) per query, best first

* ``flat`` -- the vector column as one row-major float32 buffer of ``n_rows * dim`` values
  (anything exposing the buffer protocol: a numpy ``float32`` array, a ``memoryview``, an Arrow
  buffer). Row ``i`` is ``flat[i*dim:(i+1)*dim]``.
* ``valid`` -- ``None`` (every row has a vector) or a byte buffer of ``n_rows`` entries, non-zero
  where the row has a vector. NULL rows are skipped; row ids stay the input positions.
* ``queries`` -- the query vectors as one float32 buffer of ``n_queries * dim`` values.
* ``k`` -- at least 1 (the API layer rejects ``top_k < 1``).
* ``metric`` -- ``"cosine"``, ``"dot"`` or ``"l2"`` (aliases are resolved by the API layer).
* ``inv_norms`` -- a float64 buffer with :func:`inv_norm` of every row (``1/sqrt(dot(row, row))``
  as a sequential float64 sum, 0.0 when that sum is not positive). Cosine scores with it; the
  accelerated twin also uses it to bound its error for dot. ``None`` computes it.
* ``threads`` -- a hint for the accelerated twin; the reference always runs serially.

Scoring (every sum is a sequential float64 sum of float32 values widened to float64, the
definition native Velaria's scalar backend uses):

* ``cosine``: the cosine *distance* ``1 - clamp(dot(row, q) * inv_norm(row) * inv_norm(q), -1, 1)``;
  ``1.0`` when either norm is zero. Smaller is better.
* ``dot``: ``dot(row, q)``. Larger is better.
* ``l2``: the Euclidean distance ``sqrt(sum((row - q)**2))``. Smaller is better; ranking uses
  the squared distance, the square root is taken only for the output.

Ranking: "sort ``(badness, row_id)`` and keep the first k", where badness is the cosine
distance, ``-dot`` or the squared l2 distance (Python's float comparison: ``-0.0 == 0.0``).
Equal scores are therefore ordered by ascending ``row_id``. A row whose badness is NaN (a NaN
in the stored vector, or infinities that cancel) is skipped like a NULL row; an infinite
badness is ranked like any other value. For cosine, a row holding NaN or an infinity has an
inverse norm of 0.0 and therefore the distance 1.0. The result has ``min(k, rows with a
score)`` entries, so a huge ``k`` costs nothing.
"""
from __future__ import annotations

import heapq
import math

__all__ = ["METRICS", "topk", "inv_norm"]

#: the canonical metric names the kernels accept
METRICS = ("cosine", "dot", "l2")


def _floats(buf) -> memoryview:
    """A flat memoryview of float32 values over ``buf`` (no copy)."""
    mv = memoryview(buf)
    if mv.format != "f" or mv.ndim != 1:
        mv = mv.cast("B").cast("f")
    return mv


def _dot(a, b) -> float:
    acc = 0.0
    for x, y in zip(a, b):
        acc += x * y
    return acc


def _squared_l2(a, b) -> float:
    acc = 0.0
    for x, y in zip(a, b):
        d = x - y
        acc += d * d
    return acc


def inv_norm(vector) -> float:
    """``1 / sqrt(dot(v, v))`` in float64, or 0.0 for a zero vector."""
    squared = _dot(vector, vector)
    return 1.0 / math.sqrt(squared) if squared > 0.0 else 0.0


def _cosine_distance(dot: float, inv_row: float, inv_query: float) -> float:
    if inv_row == 0.0 or inv_query == 0.0:
        return 1.0
    sim = dot * inv_row * inv_query
    if sim > 1.0:
        sim = 1.0
    elif sim < -1.0:
        sim = -1.0
    return 1.0 - sim


def _badness(metric: str, row, query, inv_row: float, inv_query: float) -> float:
    """The value ranked ascending: cosine distance, ``-dot``, or squared l2 distance."""
    if metric == "cosine":
        return _cosine_distance(_dot(row, query), inv_row, inv_query)
    if metric == "dot":
        return -_dot(row, query)
    if metric == "l2":
        return _squared_l2(row, query)
    raise ValueError(f"metric must be one of: {', '.join(METRICS)}")


def _score(metric: str, badness: float) -> float:
    """The user-visible score for a badness value."""
    if metric == "dot":
        return -badness
    if metric == "l2":
        return math.sqrt(badness)
    return badness


def topk(flat, dim, n_rows, valid, queries, k, metric, inv_norms=None, threads=1):
    """Exact top-k rows per query vector, best first, ties by ascending row id."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of: {', '.join(METRICS)}")
    if k < 1:
        raise ValueError("top_k must be >= 1")
    data = _floats(flat)
    qdata = _floats(queries)
    if dim < 1 or len(data) < n_rows * dim or len(qdata) % dim:
        raise ValueError("vector buffers do not match dim / n_rows")
    mask = None if valid is None else memoryview(valid).cast("B")
    if metric == "cosine" and inv_norms is None:
        inv_norms = [inv_norm(data[i * dim:(i + 1) * dim]) for i in range(n_rows)]
    elif inv_norms is not None:
        inv_norms = memoryview(inv_norms).cast("B").cast("d") if not isinstance(inv_norms, list) else inv_norms

    results = []
    for qi in range(len(qdata) // dim):
        query = qdata[qi * dim:(qi + 1) * dim]
        inv_query = inv_norm(query) if metric == "cosine" else 0.0
        # A bounded max-heap of the k best so far, keyed on (-badness, -row_id): its top is the
        # worst survivor, replaced only by a strictly better (badness, row_id).
        heap: list[tuple[float, int]] = []
        for row_id in range(n_rows):
            if mask is not None and not mask[row_id]:
                continue
            inv_row = inv_norms[row_id] if metric == "cosine" else 0.0
            bad = _badness(metric, data[row_id * dim:(row_id + 1) * dim], query, inv_row, inv_query)
            if math.isnan(bad):
                continue
            item = (-bad, -row_id)
            if len(heap) < k:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        best = sorted((-nb, -nr) for nb, nr in heap)
        results.append(([row_id for _, row_id in best], [_score(metric, bad) for bad, _ in best]))
    return results
