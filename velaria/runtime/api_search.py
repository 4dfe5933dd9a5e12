"""The Session's search methods in the partitioned modes: ``vector_search``,
``hybrid_search`` and ``keyword_search`` split over the rows of a view (see :mod:`.search_tasks` and
:mod:`.keyword_tasks` for why the merged answers are the embedded ones)."""
from __future__ import annotations

import pyarrow as pa

from ..io.base import DEFAULT_BATCH_ROWS, ArrowTableSource
from ..plan import logical as L
from ..plan.physical import RuntimeRecord
from .keyword_tasks import ORDINAL, KeywordStatsTask, KeywordTopkTask, best_candidates, sum_stats
from .partition import split_source
from .search_tasks import VectorSearchTask, merge_vector_candidates
from .stages import PartitionTask

__all__ = ["SearchMethods"]


class SearchMethods:
    """Mixed into :class:`~velaria.runtime.Runtime` (which provides ``config``, ``_backend``,
    ``_parts()``); ``last_search_record`` is the record of the last search that ran here."""

    last_search_record: RuntimeRecord | None = None

    def vector_search(self, view: pa.Table, column: str, query_vector, top_k, metric, kernels) -> pa.Table | None:
        """``Session.vector_search`` over partitions of ``view`` on the workers (see
        :mod:`.search_tasks`), or None in embedded mode or for a view too small to split (the
        caller then searches in this process). ``last_search_record`` says what ran."""
        from ..vector.search import coerce_query, coerce_top_k, normalize_metric

        if self._backend is None:
            return None
        k = coerce_top_k(top_k)
        metric_name = normalize_metric(metric)
        queries, batch = coerce_query(query_vector, allow_batch=True)
        if queries.shape[1] == 0:
            return None
        results = self._vector_candidates(view, column, queries, k, metric_name, kernels,
                                          "client: the same search over the candidates")
        if results is None:
            return None
        return merge_vector_candidates(view, column, queries, batch, k, metric_name, kernels, results)

    def hybrid_search(self, view: pa.Table, column: str, query_vector, top_k, metric, score_threshold,
                      kernels) -> pa.Table | None:
        """``Session.hybrid_search`` over partitions of ``view``: each partition's top-k, the
        same search over the candidates on the client, then the score threshold (which the
        embedded search also applies after the top-k). None in embedded mode or for a view
        too small to split (``last_search_record`` then names the fallback)."""
        from ..vector import search

        if self._backend is None:
            return None
        # every argument check of the embedded search, in its order, on no rows (cheap)
        search.hybrid_search_table(view.slice(0, 0), column, query_vector, metric, top_k, score_threshold, kernels)
        k = search.coerce_top_k(top_k)
        threshold = search.coerce_threshold(score_threshold)
        metric_name = search.normalize_metric(metric)
        queries, _ = search.coerce_query(query_vector, allow_batch=False)
        results = self._vector_candidates(view, column, queries, k, metric_name, kernels,
                                          "client: the same search over the candidates, then the score threshold",
                                          search.HYBRID_MISMATCH)
        if results is None:
            return None
        found = merge_vector_candidates(view, column, queries, False, k, metric_name, kernels, results)
        scores = found.column("score").to_numpy()
        keep = search.threshold_passes(metric_name, scores, threshold)
        rows = view.take(found.column("row_id").filter(pa.array(keep)))
        return rows.append_column(search.SCORE_COLUMN, pa.array(scores[keep], pa.float64()))

    def _vector_candidates(self, view: pa.Table, column: str, queries, k: int, metric: str, kernels,
                           final_stage: str, mismatch: str | None = None) -> list[pa.Table] | None:
        """Each partition's top-k candidates (``query_index``, ``row_id``, ``score``), run on the
        workers and recorded in ``last_search_record``; None (with the fallback recorded) when
        ``view`` cannot be split."""
        parts = self._parts()
        partitions, how = split_source(ArrowTableSource(view.select([column])), parts)
        if partitions is None:
            record = self._search_record(parts, 1, how, "none", 1, 1)
            record.final_stage = "none"
            record.fallbacks = [f"search not partitionable ({how}): ran in this process"]
            record.ran, self.last_search_record = True, record
            return None
        rows, bases = self._table_tasks(partitions, kernels)
        extra = {} if mismatch is None else {"mismatch": mismatch}
        tasks = [VectorSearchTask(t, column, queries, k, metric, base, **extra) for t, base in zip(rows, bases)]
        record = self._search_record(parts, len(tasks), how, "vector-top-k+merge", 2, len(tasks))
        record.shuffle = "gather of per-partition top-k to the client"
        record.final_stage = final_stage
        results, workers = self._backend.run(tasks, self.config.task_timeout)
        record.shuffle_bytes = sum(t.nbytes for t in results)
        record.workers, record.ran = workers, True
        self.last_search_record = record
        return results

    def _keyword_search(self, tasks: list[PartitionTask], columns: list[str], query: str, top_k: int,
                        tokenizer: str, bases: list[int]):
        """BM25 over the rows of ``tasks`` (see :mod:`.keyword_tasks`): the candidates, the
        workers and the bytes moved."""
        stats, workers = self._backend.run([KeywordStatsTask(t, columns, query, tokenizer) for t in tasks],
                                           self.config.task_timeout)
        corpus = sum_stats(stats)
        found, ran_on = self._backend.run([KeywordTopkTask(t, columns, query, top_k, tokenizer, corpus, base)
                                           for t, base in zip(tasks, bases)], self.config.task_timeout)
        workers += [w for w in ran_on if w not in workers]
        return found, workers, sum(t.nbytes for t in stats + found)

    def keyword_search(self, view: pa.Table, text_columns, query_text, top_k, kernels,
                       tokenizer=None) -> pa.Table | None:
        """``Session.keyword_search`` over partitions of ``view`` on the workers, or None in
        embedded mode or for a view too small to split; ``last_search_record`` says what ran."""
        from ..vector import keyword

        if self._backend is None:
            return None
        columns, k, tok = keyword.check_request(view, text_columns, query_text, top_k, tokenizer)
        names = list(dict.fromkeys(columns))
        parts = self._parts()
        partitions, how = split_source(ArrowTableSource(view.select(names)), parts)
        if partitions is None:
            return None
        tasks, bases = self._table_tasks(partitions, kernels)
        record = self._search_record(parts, len(tasks), how, "keyword-top-k+merge", 3, 2 * len(tasks))
        record.shuffle = "corpus statistics summed on the client, then each partition's top-k gathered to the client"
        found, record.workers, record.shuffle_bytes = self._keyword_search(tasks, columns, query_text, k, tok, bases)
        record.ran = True
        self.last_search_record = record
        best = best_candidates(found, k, partitions[0].schema.append(pa.field(keyword.SCORE_COLUMN, pa.float64())))
        out = view.take(best.column(ORDINAL))
        return out.append_column(keyword.SCORE_COLUMN, best.column(keyword.SCORE_COLUMN))

    def _table_tasks(self, partitions: list, kernels) -> tuple[list[PartitionTask], list[int]]:
        """One task per in-memory partition (its rows), and each one's first row in the view."""
        common = (kernels.engine, DEFAULT_BATCH_ROWS, True, None)
        tasks, bases, base = [], [], 0
        for i, source in enumerate(partitions):
            scan = L.Scan(schema=source.schema, source=source, table_name=f"partition {i}")
            tasks.append(PartitionTask(i, scan, None, *common))
            bases.append(base)
            base += source.table.num_rows
        return tasks, bases

    def _search_record(self, parts: int, partitions: int, how: str, exchange: str, stages: int,
                       tasks: int) -> RuntimeRecord:
        return RuntimeRecord(runtime_mode=self.config.mode, placement=self.config.placement,
                             backend=self._backend.name, parallelism=parts, stage_count=stages, task_count=tasks,
                             partitions=partitions, partitioning=how, exchange=exchange,
                             final_stage="client: merge the candidates")
