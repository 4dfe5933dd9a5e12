"""RIGHT and FULL joins with a small right input: broadcast it, pad its unmatched rows once.

A RIGHT JOIN pads the right rows that match no left row, which no single left partition can
decide alone. Shuffling both inputs solves that but moves every left row. When the right
input is small (within the broadcast limit) it is cheaper to:

1. compute the right input first, as one task;
2. send it to every partition of the left input. Each partition task joins its own left
   rows with it as an INNER join (a LEFT join for FULL: a left row's padding is decided by
   that row alone), runs the plan above the join that splits (:mod:`.join_above`), and
   reports which right rows it matched, as a bitmap in its result's schema metadata;
3. on the client, OR the bitmaps, build the padded rows of the right rows nobody matched,
   run the same part of the plan over them, and merge them last (one join emits its padded
   right rows after every matched pair).

Left rows carry the ordinal ``partition << 40 | row`` and right rows their index in the right
input, exactly as in the shuffle join, so the merge gives one join's order.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..plan import logical as L
from .join_above import LEFT_ORD, RIGHT_ORD, AbovePlan, bucket_plan, bucket_result
from .stages import PartitionTask, PartitionWork, run_task, task_context

__all__ = ["BroadcastOuterTask", "run_broadcast_outer", "matched_rows", "padded_rows"]

_MATCHED = b"velaria.matched_right_rows"     # schema metadata: np.packbits of the matched mask
_ROW_BITS = 40


@dataclass
class BroadcastOuterTask(PartitionWork):
    """Join the left rows of ``task`` (ordinals from ``base``) with the broadcast ``right``
    rows by ``join`` (INNER for a RIGHT join, LEFT for a FULL one), then ``plan`` /
    ``aggregate`` above it; the right rows matched travel in the schema metadata."""

    join: L.Join
    right: pa.Table
    base: int
    plan: L.Node | None = None
    aggregate: L.Aggregate | None = None

    def run(self) -> pa.Table:
        from .join_shuffle import join_rows

        rows, _ = self.rows()
        t = self.task
        ctx = task_context(t.engine, t.batch_rows, t.memory_whole_chunks)
        if t.eval_context is not None:
            ctx.eval_context = t.eval_context
        if rows.num_rows >= 1 << _ROW_BITS:
            raise ValueError(f"a join input partition has {rows.num_rows} rows; ordinals hold at most {1 << _ROW_BITS}")
        out, li, ri = join_rows(self.join, rows, self.right, ctx)
        out = out.append_column(LEFT_ORD, pc.add(pc.cast(li, pa.int64()), pa.scalar(self.base, pa.int64())))
        out = out.append_column(RIGHT_ORD, pc.cast(ri, pa.int64()))
        matched = np.zeros(self.right.num_rows, dtype=bool)
        hit = pc.drop_null(pc.cast(ri, pa.int64())).to_numpy()
        matched[hit] = True
        result = bucket_result(self.plan, self.aggregate, out, self._run_above)
        return result.replace_schema_metadata({_MATCHED: np.packbits(matched).tobytes()})

    def _run_above(self, plan: L.Node, aggregate: L.Aggregate | None) -> pa.Table:
        t = self.task
        return run_task(PartitionTask(t.index, plan, aggregate, t.engine, t.batch_rows, t.memory_whole_chunks,
                                      t.eval_context))


def matched_rows(results: list[pa.Table], right_rows: int) -> np.ndarray:
    """The right rows some partition matched (the OR of the tasks' bitmaps)."""
    matched = np.zeros(right_rows, dtype=bool)
    for table in results:
        bits = np.frombuffer(table.schema.metadata[_MATCHED], dtype=np.uint8)
        matched |= np.unpackbits(bits, count=right_rows).astype(bool)
    return matched


def padded_rows(join: L.Join, right: pa.Table, matched: np.ndarray) -> pa.Table:
    """The joined rows of the right rows no left row matched (NULL left columns), with their
    ordinals (LEFT_ORD NULL, RIGHT_ORD the right row), in right-input order."""
    unmatched = pa.array(np.flatnonzero(~matched).astype(np.int64))
    n = len(unmatched)
    columns = [pa.chunked_array([pa.nulls(n, f.type)]) for f in join.left.schema] + right.take(unmatched).columns
    if join.output is not None:          # the join emits only the columns the plan above reads
        columns = [columns[i] for i in join.output]
    out = pa.Table.from_arrays(columns, schema=join.schema)
    out = out.append_column(LEFT_ORD, pa.nulls(n, pa.int64()))
    return out.append_column(RIGHT_ORD, unmatched)


def run_broadcast_outer(backend, join: L.Join, above: AbovePlan, common: tuple, parallelism: int,
                        timeout: float | None):
    """Run ``join`` (RIGHT / FULL) on ``backend``: its right input as one task, then one task
    per partition of its left input, then the padded unmatched right rows (and the plan
    ``above`` that splits) here. ``(results, workers, moved)``: the partial results, the
    padded rows' last (one join's order), the workers, and the bytes moved between stages."""
    from .join_shuffle import side_tasks

    sides, workers = backend.run([PartitionTask(0, join.right, None, *common)], timeout)
    right = sides[0]
    left, _ = side_tasks(join.left, parallelism, 0, common)
    plan, aggregate = bucket_plan(above)
    probe = dataclasses.replace(join, how="left" if join.how == "full" else "inner",
                                left=L.OneRow(schema=join.left.schema), right=L.OneRow(schema=join.right.schema))
    tasks = [BroadcastOuterTask(t, probe, right, i << _ROW_BITS, plan, aggregate) for i, t in enumerate(left)]
    results, ran_on = backend.run(tasks, timeout)
    workers += [w for w in ran_on if w not in workers]
    moved = right.nbytes * (len(tasks) + 1) + sum(t.nbytes for t in results)
    padded = padded_rows(join, right, matched_rows(results, right.num_rows))
    last = bucket_result(plan, aggregate, padded, lambda node, agg: run_task(PartitionTask(0, node, agg, *common)))
    return results + [last], workers, moved
