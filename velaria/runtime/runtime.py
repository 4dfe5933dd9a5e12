"""The runtime a Session runs its batch queries on: decide, record, run.

:meth:`Runtime.annotate` writes the plan's :class:`~velaria.plan.physical.RuntimeRecord`
(mode, placement, backend, parallelism, stage cut, partitions, fallbacks) before anything
runs, so explain shows it; :meth:`Runtime.run` runs the plan that way and overwrites the
counts with what really ran (tasks, workers, bytes of partial results moved).
"""
from __future__ import annotations

import pyarrow as pa

from ..exec.driver import run_table
from ..io.base import DEFAULT_BATCH_ROWS
from ..plan import logical as L
from ..plan.physical import PhysicalPlan, RuntimeRecord, build_physical
from .join_shuffle import broadcast_note, find_shuffle_join, join_tasks, restore_join_order
from .keyword_tasks import ORDINAL, KeywordStatsTask, KeywordTopkTask, best_candidates, sum_stats
from .modes import RuntimeConfig
from .partition import split_source
from .search_tasks import VectorSearchTask, merge_vector_candidates
from .shuffle_stages import BucketAggregateTask, ShuffleMapTask, ordered_aggregate, restore_order
from .stages import (PartitionTask, cut_plan, make_tasks, memory_scan, merge_partials, replace_node,
                     with_broadcasts)

__all__ = ["Runtime", "create_runtime"]


class Runtime:
    """Runs physical plans in the Session's runtime mode (embedded: the batch driver here)."""

    def __init__(self, config: RuntimeConfig):
        self.config = config
        #: what the last partitioned ``Session.vector_search`` ran (None before one)
        self.last_search_record: RuntimeRecord | None = None
        self._backend = None
        if config.mode == "distributed":
            from .dask_backend import DaskBackend
            self._backend = DaskBackend(config.address, config.connect_timeout)
        elif config.mode == "single-node":
            from .local_pool import LocalPoolBackend
            self._backend = LocalPoolBackend(config.parallelism)

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def placement(self) -> str:
        return self.config.placement

    def close(self) -> None:
        """Release this Session's runtime resources (idempotent): its use of the shared Dask
        client, which disconnects with the last Session using it. Shared clients and the
        local worker pool otherwise stop at interpreter exit."""
        if self._backend is not None:
            self._backend.close()

    def __repr__(self) -> str:
        where = f", address={self.config.address!r}" if self.config.address else ""
        return f"Runtime(mode={self.mode!r}, placement={self.placement!r}{where})"

    # ------------------------------------------------------------------ planning
    def _parts(self) -> int:
        return self.config.parallelism or self._backend.slots()

    def annotate(self, physical: PhysicalPlan) -> PhysicalPlan:
        """Write the planned runtime record into ``physical`` (returned)."""
        cfg = self.config
        if self._backend is None:
            physical.runtime = RuntimeRecord()
            return physical
        parts = self._parts()
        record = RuntimeRecord(runtime_mode=cfg.mode, placement=cfg.placement, backend=self._backend.name,
                               parallelism=parts)
        chosen = find_shuffle_join(physical.root) if parts >= 2 else None
        if chosen is not None:
            maps, finals, described = join_tasks(chosen, parts, parts, (None,) * 4)
            _join_record(record, chosen, len(maps), len(finals), described)
        else:
            cut = cut_plan(physical.root, parts)
            _plan_record(record, cut, shuffle_buckets(cut, parts))
        physical.runtime = record
        return physical

    # ------------------------------------------------------------------ API searches
    def vector_search(self, view: pa.Table, column: str, query_vector, top_k, metric, kernels) -> pa.Table | None:
        """``Session.vector_search`` over partitions of ``view`` on the workers (see
        :mod:`.search_tasks`), or None in embedded mode or for a view too small to split (the
        caller then searches in this process). ``last_search_record`` says what ran."""
        from ..io.base import ArrowTableSource
        from ..vector.search import coerce_query, coerce_top_k, normalize_metric

        if self._backend is None:
            return None
        k = coerce_top_k(top_k)
        metric_name = normalize_metric(metric)
        queries, batch = coerce_query(query_vector, allow_batch=True)
        parts = self._parts()
        partitions, how = split_source(ArrowTableSource(view.select([column])), parts)
        if partitions is None or queries.shape[1] == 0:
            return None
        rows, bases = self._table_tasks(partitions, kernels)
        tasks = [VectorSearchTask(t, column, queries, k, metric_name, base) for t, base in zip(rows, bases)]
        record = self._search_record(parts, len(tasks), how, "vector-top-k+merge", 2, len(tasks))
        record.shuffle = "gather of per-partition top-k to the client"
        record.final_stage = "client: the same search over the candidates"
        results, workers = self._backend.run(tasks, self.config.task_timeout)
        record.shuffle_bytes = sum(t.nbytes for t in results)
        record.workers, record.ran = workers, True
        self.last_search_record = record
        return merge_vector_candidates(view, column, queries, batch, k, metric_name, kernels, results)

    # ------------------------------------------------------------------ running
    def run(self, physical: PhysicalPlan, ctx, local_run=run_table) -> pa.Table:
        """Run ``physical`` to completion in this runtime; its record then says what ran.
        ``local_run`` is the in-process driver an embedded runtime uses."""
        if self._backend is None:
            table = local_run(physical, ctx)
            physical.runtime = physical.runtime or RuntimeRecord()
            physical.runtime.ran = True
            return table
        self.annotate(physical)
        record = physical.runtime
        cut = cut_plan(physical.root, record.parallelism)
        common = (ctx.kernels.engine, ctx.batch_rows, ctx.memory_whole_chunks, ctx.eval_context)
        chosen = find_shuffle_join(physical.root) if record.parallelism >= 2 else None
        if chosen is not None:
            table, workers = self._shuffle_join(physical, chosen, common, ctx, record)
        elif cut.partitions is None:
            results, workers = self._backend.run([PartitionTask(0, physical.root, None, *common)],
                                                 self.config.task_timeout)
            record.shuffle_bytes = results[0].nbytes
            table = results[0]
        else:
            workers = []
            if cut.broadcasts:     # the right inputs of broadcast joins: one task each, first
                sides, workers = self._backend.run([PartitionTask(i, join.right, None, *common)
                                                    for i, join in enumerate(cut.broadcasts)], self.config.task_timeout)
                record.shuffle_bytes += sum(t.nbytes for t in sides) * (len(cut.partitions) + 1)
                cut = with_broadcasts(cut, sides)
            tasks = make_tasks(cut, *common)
            buckets = shuffle_buckets(cut, record.parallelism)
            if isinstance(cut.exchange, L.KeywordSearch):
                merged, ran_on = self._keyword_exchange(cut.exchange, tasks, record)
            elif buckets:
                merged, ran_on = self._hash_shuffle(cut, tasks, buckets, common, record)
            else:
                results, ran_on = self._backend.run(tasks, self.config.task_timeout)
                record.shuffle_bytes += sum(t.nbytes for t in results)
                merged = merge_partials(cut, results, ctx, physical)
            workers += [w for w in ran_on if w not in workers]
            top = cut.exchange if cut.exchange is not None else cut.pipeline
            final_root = replace_node(physical.root, top, merged)
            if final_root is merged:
                table = merged.source.table
            else:
                table = run_table(build_physical(final_root, ctx.kernels), ctx)
        record.workers = workers
        record.ran = True
        schema = physical.root.schema
        if not table.schema.equals(schema):
            table = pa.Table.from_arrays(table.columns, schema=schema)
        return table.combine_chunks()

    def _hash_shuffle(self, cut, tasks: list[PartitionTask], buckets: int, common: tuple, record: RuntimeRecord):
        """Run a grouped aggregate as map tasks (partial states split by key hash) and one
        final-aggregate task per bucket; the merged groups as a Scan, and the workers."""
        ex = cut.exchange
        ordered = ordered_aggregate(ex)
        maps = [ShuffleMapTask(t, len(ex.keys), buckets) for t in tasks]
        finals = [BucketAggregateTask(b, ordered, *common[:3]) for b in range(buckets)]
        results, ran_on, moved = self._backend.run_shuffle(maps, finals, self.config.task_timeout)
        record.shuffle_bytes += moved + sum(t.nbytes for t in results)
        merged = restore_order(results, ex.schema)
        return memory_scan(merged, ex.schema, "hash-shuffled aggregate"), ran_on

    def _shuffle_join(self, physical: PhysicalPlan, chosen, common: tuple, ctx, record: RuntimeRecord):
        """Run ``chosen.join`` as a shuffle of both inputs, then the plan above it here."""
        buckets = record.parallelism
        maps, finals, _ = join_tasks(chosen, buckets, buckets, common)
        results, workers, moved = self._backend.run_shuffle(maps, finals, self.config.task_timeout)
        record.shuffle_bytes += moved + sum(t.nbytes for t in results)
        joined = memory_scan(restore_join_order(results, chosen.join.schema), chosen.join.schema, "shuffle join")
        final_root = replace_node(physical.root, chosen.join, joined)
        if final_root is joined:
            return joined.source.table, workers
        return run_table(build_physical(final_root, ctx.kernels), ctx), workers

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

    def _keyword_exchange(self, node, tasks: list[PartitionTask], record: RuntimeRecord):
        """SQL ``KEYWORD SEARCH`` over partitions: the merged top-k as a Scan, and the workers."""
        from ..vector import keyword

        tokenizer = keyword.validate_request(node.query, node.top_k, node.tokenizer)
        bases = [t.index << 40 for t in tasks]      # partition, then row: the input order
        found, workers, moved = self._keyword_search(tasks, list(node.columns), node.query, node.top_k, tokenizer,
                                                     bases)
        record.shuffle_bytes += moved
        best = best_candidates(found, node.top_k, node.schema).drop_columns([ORDINAL])
        best = pa.Table.from_arrays(best.columns, schema=node.schema)
        return memory_scan(best, node.schema, "merged keyword top-k"), workers

    def keyword_search(self, view: pa.Table, text_columns, query_text, top_k, kernels,
                       tokenizer=None) -> pa.Table | None:
        """``Session.keyword_search`` over partitions of ``view`` on the workers, or None in
        embedded mode or for a view too small to split; ``last_search_record`` says what ran."""
        from ..io.base import ArrowTableSource
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


def _join_record(record: RuntimeRecord, chosen, maps: int, buckets: int, described: str) -> None:
    """Fill ``record`` for a plan whose join ``chosen`` is shuffled."""
    record.partitions = maps
    record.partitioning = described
    record.exchange = "hash-shuffle-join"
    record.shuffle = (f"hash shuffle of both join inputs by join key into {buckets} buckets, one join per bucket "
                      f"on the workers ({chosen.reason})")
    record.task_count = maps + buckets
    record.stage_count = 3
    record.final_stage = "client: order the joined rows as one join would, then the plan above the join"
    record.fallbacks = []


def shuffle_buckets(cut, parallelism: int) -> int:
    """Buckets of the hash shuffle for ``cut`` (0: no shuffle). A grouped aggregate over
    several partitions is shuffled into ``parallelism`` buckets; an aggregate without keys
    has one group, which the client merges (nothing to spread)."""
    if cut.partitions is None or len(cut.partitions) < 2 or parallelism < 2:
        return 0
    if not isinstance(cut.exchange, L.Aggregate) or not cut.exchange.keys:
        return 0
    return parallelism


def _plan_record(record: RuntimeRecord, cut, buckets: int = 0) -> None:
    """Fill the stage facts of ``record`` from the plan's stage ``cut``."""
    if cut.partitions is None:
        record.stage_count = record.task_count = record.partitions = 1
        record.partitioning = "not split"
        record.exchange = "none"
        record.shuffle = "result to the client"
        record.final_stage = "none"
        record.fallbacks = [cut.reason]
        return
    record.partitions = len(cut.partitions)
    record.task_count = record.partitions + len(cut.broadcasts)
    record.partitioning = cut.partitioning
    record.exchange = cut.kind
    record.shuffle = ("gather-merge of partial aggregate states to the client"
                      if cut.kind.startswith("partial-aggregate") else "gather of partition results to the client")
    record.stage_count = 2 + (1 if cut.broadcasts else 0)
    if cut.broadcasts:
        record.shuffle += "; " + "; ".join(broadcast_note(j) for j in cut.broadcasts)
    above = cut.exchange is not None
    record.final_stage = ("client: merge, then the plan above the exchange" if above
                          else "client: concatenate partitions")
    if buckets:
        record.exchange = record.exchange.replace("partial-aggregate+merge", "partial-aggregate+hash-shuffle")
        record.shuffle = (f"hash shuffle of partial aggregate states by group key into {buckets} buckets; "
                          "final aggregate per bucket on the workers")
        record.task_count += buckets
        record.stage_count += 1
        record.final_stage = "client: concatenate buckets in first-appearance order, then the plan above the exchange"
    record.fallbacks = []
    if isinstance(cut.exchange, L.KeywordSearch):
        record.exchange = record.exchange.replace("gather+keywordsearch", "keyword-top-k+merge")
        record.shuffle = ("corpus statistics summed on the client, then each partition's top-k gathered to the "
                          "client")
        record.task_count += len(cut.partitions)
        record.stage_count += 1
        return
    if above and not cut.decomposed:
        record.fallbacks.append(f"{type(cut.exchange).__name__} is not split into partial steps: it runs once on "
                                "the client over the gathered partition rows")


def create_runtime(config: RuntimeConfig) -> Runtime:
    """The Runtime for ``config`` (connects to the Dask scheduler now, in distributed mode)."""
    return Runtime(config)
