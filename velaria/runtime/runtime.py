"""The runtime a Session runs its batch queries on: decide, record, run.

:meth:`Runtime.annotate` writes the plan's :class:`~velaria.plan.physical.RuntimeRecord`
(mode, placement, backend, parallelism, stage cut, partitions, fallbacks) before anything
runs, so explain shows it; :meth:`Runtime.run` runs the plan that way and overwrites the
counts with what really ran (tasks, workers, bytes of partial results moved).
"""
from __future__ import annotations

import pyarrow as pa

from ..exec.driver import run_table
from ..plan import logical as L
from ..plan.physical import PhysicalPlan, RuntimeRecord, build_physical
from .api_search import SearchMethods
from .broadcast_outer import run_broadcast_outer
from .join_above import merge_bucket_states, ordered_rows, plan_above
from .join_shuffle import find_shuffle_join, join_tasks, side_tasks
from .keyword_tasks import ORDINAL, best_candidates
from .modes import RuntimeConfig
from .record import join_record, plan_record, shuffle_buckets
from .shuffle_stages import BucketAggregateTask, ShuffleMapTask, ordered_aggregate, restore_order
from .stages import (PartitionTask, cut_plan, make_tasks, memory_scan, merge_partials, replace_node,
                     with_broadcasts)

__all__ = ["Runtime", "create_runtime"]


class Runtime(SearchMethods):
    """Runs physical plans in the Session's runtime mode (embedded: the batch driver here);
    the partitioned ``Session.vector_search`` / ``keyword_search`` come from
    :class:`~velaria.runtime.api_search.SearchMethods`."""

    def __init__(self, config: RuntimeConfig):
        self.config = config
        #: what the last partitioned ``Session.vector_search`` / ``keyword_search`` ran
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
            above = plan_above(physical.root, chosen.join)
            if chosen.strategy == "broadcast-outer":
                left, how = side_tasks(chosen.join.left, parts, 0, (None,) * 4)
                join_record(record, chosen, len(left), 0, how, above)
            else:
                maps, finals, described = join_tasks(chosen, parts, parts, (None,) * 4, above)
                join_record(record, chosen, len(maps), len(finals), described, above)
        else:
            cut = cut_plan(physical.root, parts)
            plan_record(record, cut, shuffle_buckets(cut, parts))
            if cut.partitions is not None and isinstance(cut.exchange, L.Aggregate):
                # partition tasks fold partial states apart from the Filter their pipeline ran
                physical.build_apart(cut.exchange)
        physical.runtime = record
        return physical

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
        """Run ``chosen.join`` as a shuffle of both inputs (or, for ``broadcast-outer``, its
        right input broadcast to the left partitions), with the part of the plan above it
        that splits in the tasks (:mod:`.join_above`), then the rest here."""
        above = plan_above(physical.root, chosen.join)
        if chosen.strategy == "broadcast-outer":
            results, workers, moved = run_broadcast_outer(self._backend, chosen.join, above, common,
                                                          record.parallelism, self.config.task_timeout)
            record.shuffle_bytes += moved
        else:
            buckets = record.parallelism
            maps, finals, _ = join_tasks(chosen, buckets, buckets, common, above)
            results, workers, moved = self._backend.run_shuffle(maps, finals, self.config.task_timeout)
            record.shuffle_bytes += moved + sum(t.nbytes for t in results)
        ex = above.exchange
        if isinstance(ex, L.Aggregate):
            merged = memory_scan(merge_bucket_states(ex, results, ctx), ex.schema, "merged join aggregates")
            final_root = replace_node(physical.root, ex, merged)
        else:
            top = above.top if ex is None else ex.input
            merged = memory_scan(ordered_rows(results, top.schema), top.schema, "joined rows")
            final_root = replace_node(physical.root, top, merged)
        if final_root is merged:
            return merged.source.table, workers
        return run_table(build_physical(final_root, ctx.kernels), ctx), workers

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


def create_runtime(config: RuntimeConfig) -> Runtime:
    """The Runtime for ``config`` (connects to the Dask scheduler now, in distributed mode)."""
    return Runtime(config)
