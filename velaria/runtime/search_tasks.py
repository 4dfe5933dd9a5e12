"""``Session.vector_search`` over partitions: per-partition top-k, then an exact merge.

Each partition task searches its contiguous slice of the view's rows with the same kernel as
embedded execution and returns its top-k candidates per query, with row ids counted from the
view's first row. The client then runs the same search once more over each query's
candidates only (at most partitions x k rows), in ascending row-id order, and maps the
result back to the view's row ids.

Why the answer is the embedded one: a row's score depends on that row and the query alone
(the kernel rescores every candidate exactly), so every row scores the same in its
partition as in the whole view; a row in the global top-k is in its own partition's top-k;
and ties, broken by ascending row id, keep their order because each partition's ids and
the candidates are in view order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .stages import PartitionWork

__all__ = ["VectorSearchTask", "merge_vector_candidates"]


@dataclass
class VectorSearchTask(PartitionWork):
    """Search the rows ``task`` produces (one partition, first row ``base`` in the view)."""

    column: str
    queries: np.ndarray          # float32 (queries, dim)
    top_k: int
    metric: str
    base: int
    #: how a query of the wrong dimension is reported (the calling API's wording)
    mismatch: str = "fixed vector length mismatch in vectorQuery"

    def run(self) -> pa.Table:
        """``query_index``, ``row_id`` (in the view), ``score`` of the partition's top-k."""
        from ..vector.search import search_table

        rows, kernels = self.rows()
        out = search_table(rows, self.column, self.queries, self.top_k, self.metric, kernels, self.mismatch)
        ids = pc.add(out.column("row_id"), pa.scalar(self.base, pa.int64()))
        return out.set_column(out.schema.get_field_index("row_id"), "row_id", ids)


def merge_vector_candidates(view: pa.Table, column: str, queries: np.ndarray, batch: bool, top_k: int,
                            metric: str, kernels, partials: list[pa.Table]) -> pa.Table:
    """The view's top-k per query from the partitions' candidates (``vector_search``'s
    result shape: ``row_id``, ``score``; ``query_index`` first for a batch)."""
    from ..vector.search import search_table

    candidates = pa.concat_tables(partials) if partials else None
    qidx, row_ids, scores = [], [], []
    for qi in range(queries.shape[0]):
        mine = candidates.filter(pc.equal(candidates.column("query_index"), qi)) if candidates else None
        ids = np.unique(mine.column("row_id").to_numpy()) if mine is not None and mine.num_rows else \
            np.zeros(0, dtype=np.int64)
        sub = view.select([column]).take(pa.array(ids, pa.int64()))
        found = search_table(sub, column, queries[qi:qi + 1], top_k, metric, kernels)
        local = found.column("row_id").to_numpy()
        qidx.append(np.full(len(local), qi, dtype=np.int64))
        row_ids.append(ids[local] if len(local) else np.zeros(0, dtype=np.int64))
        scores.append(found.column("score").to_numpy())
    rid = pa.array(np.concatenate(row_ids) if row_ids else [], pa.int64())
    sc = pa.array(np.concatenate(scores) if scores else [], pa.float64())
    if not batch:
        return pa.table({"row_id": rid, "score": sc})
    return pa.table({"query_index": pa.array(np.concatenate(qidx) if qidx else [], pa.int64()), "row_id": rid,
                     "score": sc})
