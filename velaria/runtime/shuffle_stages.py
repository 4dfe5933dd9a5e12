"""The hash-shuffled grouped aggregate: map tasks, bucket tasks, and the client's last step.

Every shuffle in this package has the same shape, which both backends run
(``run_shuffle``): map tasks whose ``run()`` returns one piece per bucket, then one bucket
task per bucket whose ``run(pieces)`` takes that bucket's piece of every map task, in map
order. The grouped aggregate is one such shuffle; the shuffle join
(:mod:`.join_shuffle`) is another.

Stage 1 (one *map* task per partition) computes the partition's partial aggregate state,
exactly as the gather-merge does, then splits the state's rows into buckets by a hash of the
group keys (:mod:`.shuffle`). Stage 2 (one *bucket* task per bucket) merges the pieces of
its bucket, taken from every map task in partition order, and finishes the aggregate for
those groups. Every group lives in exactly one bucket, so the buckets' outputs together are
the whole answer; the client only concatenates them.

Group order. Embedded execution emits groups in the order they first appear. To give the
same order, each map task tags every state row with its *first-appearance ordinal*,
``partition << 32 | row`` (a state lists its groups in first-appearance order), carried as
one more aggregate, ``MIN(ordinal)``, in the state. Merging keeps the smallest, which is the
group's global first appearance; the client sorts the concatenated buckets by it and drops
it. Nothing else about the merge changes: the bucket task runs the same aggregate operator
and ``merge_state`` as the gather-merge.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..plan import expr as E
from ..plan import logical as L
from .shuffle import split_by_bucket
from .stages import PartitionWork, run_task, task_context

__all__ = ["ShuffleMapTask", "BucketAggregateTask", "ORDINAL", "ordered_aggregate", "run_map", "run_bucket",
           "restore_order"]

#: the hidden column that carries a group's first-appearance ordinal through the shuffle
ORDINAL = "__velaria_first_seen"
_ROW_BITS = 32


def ordered_aggregate(node: L.Aggregate) -> L.Aggregate:
    """``node`` (with no input) plus a trailing ``MIN(ordinal)`` aggregate whose state the map
    tasks fill in (it never reads an input column: only its type matters)."""
    arg = E.Column(type=pa.int64(), index=len(node.schema), name=ORDINAL)
    call = E.AggregateCall(type=pa.int64(), func="min", arg=arg)
    schema = node.schema.append(pa.field(ORDINAL, pa.int64()))
    return dataclasses.replace(node, input=None, aggregates=list(node.aggregates) + [call], schema=schema)


@dataclass
class ShuffleMapTask(PartitionWork):
    """Partition ``task``'s partial aggregate state, split into ``buckets`` by its ``keys``
    (the state's key columns) and tagged with first-appearance ordinals."""

    keys: int
    buckets: int

    def run(self) -> list[pa.Table]:
        """The partition's partial state in ``buckets`` pieces (bucket order)."""
        state = run_task(self.task)
        n = state.num_rows
        if n >= 1 << _ROW_BITS:
            raise ValueError(f"a partition has {n} groups; the shuffle's ordinals hold at most {1 << _ROW_BITS}")
        position = len(self.task.aggregate.aggregates)
        ordinal = (np.int64(self.index) << np.int64(_ROW_BITS)) + np.arange(n, dtype=np.int64)
        state = state.append_column(f"a{position}_count", pa.array(np.ones(n, dtype=np.int64)))
        state = state.append_column(f"a{position}_best", pa.array(ordinal))
        return split_by_bucket(state, [f"k{j}" for j in range(self.keys)], self.buckets)


@dataclass
class BucketAggregateTask:
    """Merge one bucket's pieces into ``aggregate`` (an :func:`ordered_aggregate`) and finish."""

    index: int
    aggregate: L.Aggregate
    engine: str
    batch_rows: int
    memory_whole_chunks: bool

    def run(self, pieces: list[pa.Table]) -> pa.Table:
        """The finished groups of this bucket (with the ordinal column last)."""
        from ..exec.driver import call_operator
        from ..exec.operators import AggregateOperator

        ctx = task_context(self.engine, self.batch_rows, self.memory_whole_chunks)
        op = AggregateOperator(self.aggregate, [], mode="final")
        op.open(ctx)
        try:
            for piece in pieces:
                if piece.num_rows:
                    call_operator(op, op.merge, piece)
            batches = call_operator(op, op.finish)
        finally:
            op.close()
        return pa.Table.from_batches(batches, schema=self.aggregate.schema)


def run_map(task) -> list[pa.Table]:
    """Run a shuffle's map task (``task.run()``): its output split into bucket pieces."""
    return task.run()


def run_bucket(task, pieces: list[pa.Table]) -> pa.Table:
    """Run a shuffle's bucket task over its pieces, taken from every map task in order."""
    return task.run(pieces)


def restore_order(buckets: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """The buckets' groups as one table in first-appearance order, without the ordinal."""
    parts = [t for t in buckets if t.num_rows]
    if not parts:
        return schema.empty_table()
    table = pa.concat_tables(parts)
    order = pc.sort_indices(table, [(ORDINAL, "ascending")])
    table = table.take(order).drop_columns([ORDINAL])
    return pa.Table.from_arrays(table.columns, schema=schema).combine_chunks()
