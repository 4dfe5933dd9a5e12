"""Keyword (BM25) search over partitions, exact: global statistics first, then top-k.

A BM25 score depends on the whole corpus: the row count ``N``, the average document length
and each query term's document frequency. A partition searched on its own would score with
its own statistics and rank differently. So the search runs in two stages:

1. one *statistics* task per partition computes ``(N, total doc_len, [df per term])`` of its
   rows (the ``keyword_stats`` kernel); these add up across disjoint partitions, and the
   client sums them into the corpus statistics;
2. one *top-k* task per partition scores its rows with the corpus statistics
   (``keyword_topk(..., corpus=...)``), so each row scores exactly as in one search over all
   rows, and returns its best k rows with their scores and their place in the input.

The client keeps the k best candidates by (score descending, place ascending): the order of
one search, whose ties go to the lower row index. Each partition's rows are produced twice
(once per stage); that costs a second scan but moves only the statistics and the candidates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .stages import PartitionWork

__all__ = ["KeywordStatsTask", "KeywordTopkTask", "sum_stats", "best_candidates", "ORDINAL"]

#: each candidate's place in the input (the tie-breaker of the merge)
ORDINAL = "__velaria_keyword_ordinal"
SCORE = "keyword_score"


def _text_columns(rows: pa.Table, columns: list[str]) -> list:
    return [rows.column(c) for c in columns]


@dataclass
class KeywordStatsTask(PartitionWork):
    """The BM25 statistics of the rows ``task`` produces."""

    columns: list
    query: str
    tokenizer: str

    def run(self) -> pa.Table:
        rows, kernels = self.rows()
        n, total, dfs = kernels.keyword_stats(_text_columns(rows, self.columns), self.query, self.tokenizer)
        return pa.table({"n": pa.array([n], pa.int64()), "total": pa.array([total], pa.int64()),
                         "df": pa.array([dfs], pa.list_(pa.int64()))})


def sum_stats(parts: list[pa.Table]) -> tuple[int, int, list[int]]:
    """The corpus statistics: the partitions' statistics added up."""
    n = sum(t.column("n")[0].as_py() for t in parts)
    total = sum(t.column("total")[0].as_py() for t in parts)
    dfs = np.sum([t.column("df")[0].as_py() for t in parts], axis=0).astype(np.int64).tolist()
    return n, total, dfs


@dataclass
class KeywordTopkTask(PartitionWork):
    """The best ``top_k`` rows of ``task`` scored with the ``corpus`` statistics: the rows,
    ``keyword_score`` and the ordinal ``base + row``."""

    columns: list
    query: str
    top_k: int
    tokenizer: str
    corpus: tuple
    base: int

    def run(self) -> pa.Table:
        rows, kernels = self.rows()
        ids, scores = kernels.keyword_topk(_text_columns(rows, self.columns), self.query, self.top_k, self.tokenizer,
                                           corpus=self.corpus)
        ids = np.asarray(ids, dtype=np.int64)
        out = rows.take(pa.array(ids, pa.int64()))
        out = out.append_column(SCORE, pa.array(scores, pa.float64()))
        return out.append_column(ORDINAL, pa.array(ids + np.int64(self.base), pa.int64()))


def best_candidates(candidates: list[pa.Table], top_k: int, schema: pa.Schema) -> pa.Table:
    """The ``top_k`` best of the partitions' candidates, best first, ties by input place;
    ``schema``: the candidates' columns without the ordinal (which is kept last)."""
    parts = [t for t in candidates if t.num_rows]
    if not parts:
        return schema.append(pa.field(ORDINAL, pa.int64())).empty_table()
    table = pa.concat_tables(parts)
    order = pc.sort_indices(table, [(SCORE, "descending"), (ORDINAL, "ascending")])
    return table.take(order[:top_k])
