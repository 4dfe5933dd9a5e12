"""The plan above a partitioned join, run inside the join's tasks.

A shuffle join's bucket task holds every joined row of its keys; a broadcast RIGHT / FULL
join's partition task holds every joined row of its left rows (:mod:`.broadcast_outer`).
The filters and projections right above the join therefore run there, on each task's rows.
So does the first node above them when it splits into partial steps:

=====================  ===================================  ==================================
node above the join    each bucket task returns             the client
=====================  ===================================  ==================================
(Filter / Project)     its rows after them                  orders the rows as one join would
GROUP BY / aggregates  the partial aggregate state          merges the states, finishes once
ORDER BY ... LIMIT n   its own top n                        the same top-n over the candidates
LIMIT n OFFSET m       its first n+m rows                   the LIMIT over the candidates
=====================  ===================================  ==================================

Anything else (a full ORDER BY, DISTINCT, window functions, another join) runs on the
client over the joined rows, and the run record lists it as a fallback.

Order. Embedded execution sees the joined rows in the join's order: by (left row, right
row), the padded right rows of a RIGHT / FULL join last. A bucket task first puts its rows
in that order, then numbers them (a hidden ``__velaria_bucket_row`` column that the
filters and projections pass through). What a bucket returns carries, per row or per group,
the left and right ordinals of its first joined row, found from that number:

* the top-n, LIMIT and row results are sorted by those ordinals on the client, so ties and
  "first rows" are those of one join;
* a group's first row is where it first appears in one join's output. The client ranks the
  groups' first rows across all buckets and merges the states with that rank as a hidden
  ``MIN`` aggregate (the same device the hash-shuffled aggregate uses), so the groups come
  out in the embedded order.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..plan import expr as E
from ..plan import logical as L
from .shuffle_stages import ordered_aggregate, restore_order
from .stages import memory_scan, replace_node

__all__ = ["AbovePlan", "plan_above", "bucket_plan", "bucket_result", "join_order", "merge_bucket_states",
           "LEFT_ORD", "RIGHT_ORD"]

LEFT_ORD = "__velaria_left_ordinal"       # a bucket's rows: their joined row's left and right rows
RIGHT_ORD = "__velaria_right_ordinal"
_ROW = "__velaria_bucket_row"             # a joined row's place in its bucket (join order)
_PIPELINE = (L.Filter, L.Project)


@dataclass
class AbovePlan:
    """What of the plan above ``join`` runs in its bucket tasks: the ``pipeline`` (Filters
    and Projects right above the join, bottom first), then ``exchange`` (an Aggregate, a
    Sort with LIMIT or a Limit; None when the node above the pipeline does not split, or
    there is none). ``fallback`` names a node above them that runs on the client over rows
    (empty when none)."""

    join: L.Join
    pipeline: list
    exchange: L.Node | None
    fallback: str = ""

    @property
    def top(self) -> L.Node:
        """The highest node the bucket tasks run (the join itself when nothing is pushed)."""
        if self.exchange is not None:
            return self.exchange
        return self.pipeline[-1] if self.pipeline else self.join

    @property
    def kind(self) -> str:
        """The exchange's name in the run record (empty: the buckets return rows)."""
        ex = self.exchange
        if isinstance(ex, L.Aggregate):
            return "partial-aggregate+merge"
        if isinstance(ex, L.Sort):
            return "top-n+merge"
        if isinstance(ex, L.Limit):
            return "limit+merge"
        return ""


def _splits(node: L.Node) -> bool:
    """True for a node whose per-bucket partial result merges into the whole one."""
    return isinstance(node, L.Aggregate) or (isinstance(node, L.Sort) and node.limit is not None) or \
        (isinstance(node, L.Limit) and node.limit is not None)


def plan_above(root: L.Node, join: L.Join) -> AbovePlan:
    """The part of the plan above ``join`` (on ``root``'s spine) that its buckets run."""
    path = []
    node = root
    while node is not join:
        path.append(node)
        node = node.left if isinstance(node, L.Join) else L.children(node)[0]
    pipeline = []
    while path and isinstance(path[-1], _PIPELINE):
        pipeline.append(path.pop())
    exchange = path.pop() if path and _splits(path[-1]) else None
    fallback = ""
    if path and exchange is None:
        fallback = (f"{type(path[-1]).__name__} above the partitioned join is not split into partial steps: it "
                    "runs once on the client over the joined rows")
    return AbovePlan(join, pipeline, exchange, fallback)


def _column(index: int) -> E.Column:
    return E.Column(type=pa.int64(), index=index, name=_ROW)


def _passing(node: L.Node, below: L.Node) -> L.Node:
    """``node`` over ``below``, passing ``below``'s last column (the bucket row) through."""
    schema = node.schema.append(pa.field(_ROW, pa.int64()))
    if isinstance(node, L.Project):
        exprs = list(node.exprs) + [_column(len(below.schema) - 1)]
        return dataclasses.replace(node, input=below, exprs=exprs, schema=schema)
    if isinstance(node, L.Limit):
        return dataclasses.replace(node, input=below, limit=node.limit + node.offset, offset=0, schema=schema)
    return dataclasses.replace(node, input=below, schema=schema)


def bucket_plan(above: AbovePlan) -> tuple[L.Node | None, L.Aggregate | None]:
    """``(plan, aggregate)`` a bucket task runs over its joined rows: the pipeline (and a
    Sort / Limit exchange) over a stand-in Scan that the task replaces with its rows, and the
    Aggregate whose partial state it returns (with a trailing ``MIN`` of the bucket row);
    ``(None, None)`` when nothing runs above the join."""
    if not above.pipeline and above.exchange is None:
        return None, None
    schema = above.join.schema.append(pa.field(_ROW, pa.int64()))
    plan: L.Node = L.Scan(schema=schema, source=None, table_name="bucket rows")
    for node in above.pipeline:
        plan = _passing(node, plan)
    ex = above.exchange
    if isinstance(ex, L.Aggregate):
        first = E.AggregateCall(type=pa.int64(), func="min", arg=_column(len(plan.schema) - 1))
        aggregate = dataclasses.replace(ex, input=None, aggregates=list(ex.aggregates) + [first],
                                        schema=ex.schema.append(pa.field(_ROW, pa.int64())))
        return plan, aggregate
    if ex is not None:
        plan = _passing(ex, plan)
    return plan, None


def join_order(left: pa.ChunkedArray | pa.Array, right: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The indices that put rows with these left / right ordinals in one join's order
    (padded sides, whose ordinal is NULL, after every row)."""
    last = np.iinfo(np.int64).max
    keys = pa.table({"l": pc.fill_null(left, last), "r": pc.fill_null(right, last)})
    return pc.sort_indices(keys, [("l", "ascending"), ("r", "ascending")])


def _in_join_order(left: pa.ChunkedArray, right: pa.ChunkedArray) -> bool:
    """True when the rows already are in one join's order. The join kernel emits its pairs by
    left row, then right row, and a task's inputs arrive in ordinal order, so this is the usual
    case: checking costs one pass instead of a sort and a take of every column."""
    last = np.iinfo(np.int64).max
    lo = pc.fill_null(left, last).to_numpy()
    ro = pc.fill_null(right, last).to_numpy()
    if len(lo) < 2:
        return True
    step = np.diff(lo)
    return bool(np.all((step > 0) | ((step == 0) & (ro[1:] >= ro[:-1]))))


def bucket_result(plan: L.Node | None, aggregate: L.Aggregate | None, joined: pa.Table, run) -> pa.Table:
    """Run ``bucket_plan``'s ``plan`` / ``aggregate`` over a bucket's ``joined`` rows (with
    LEFT_ORD / RIGHT_ORD last) through ``run(plan, aggregate)`` (a partition task run
    here); the result, with LEFT_ORD / RIGHT_ORD of each row's or group's first joined row."""
    if plan is None:
        return joined
    if not _in_join_order(joined.column(LEFT_ORD), joined.column(RIGHT_ORD)):
        joined = joined.take(join_order(joined.column(LEFT_ORD), joined.column(RIGHT_ORD)))
    ords = joined.select([LEFT_ORD, RIGHT_ORD]).combine_chunks()
    rows = joined.drop_columns([LEFT_ORD, RIGHT_ORD])
    rows = rows.append_column(_ROW, pa.array(np.arange(rows.num_rows, dtype=np.int64)))
    scan = _leaf(plan)
    out = run(replace_node(plan, scan, memory_scan(rows, scan.schema, scan.table_name)), aggregate)
    if aggregate is not None:
        prefix = f"a{len(aggregate.aggregates) - 1}_"
        first = out.column(prefix + "best")
        out = out.drop_columns([n for n in out.column_names if n.startswith(prefix)])
    else:
        first = out.column(_ROW)
        out = out.drop_columns([_ROW])
    out = out.append_column(LEFT_ORD, ords.column(LEFT_ORD).take(first))
    return out.append_column(RIGHT_ORD, ords.column(RIGHT_ORD).take(first))


def _leaf(plan: L.Node) -> L.Scan:
    while not isinstance(plan, L.Scan):
        plan = plan.input
    return plan


def ordered_rows(buckets: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """The buckets' rows in one join's order, without the ordinals, as ``schema``."""
    parts = [t for t in buckets if t.num_rows]
    if not parts:
        return schema.empty_table()
    table = pa.concat_tables(parts)
    table = table.take(join_order(table.column(LEFT_ORD), table.column(RIGHT_ORD)))
    table = table.drop_columns([LEFT_ORD, RIGHT_ORD])
    return pa.Table.from_arrays(table.columns, schema=schema).combine_chunks()


def merge_bucket_states(aggregate: L.Aggregate, states: list[pa.Table], ctx) -> pa.Table:
    """The finished groups of ``aggregate`` from the buckets' partial ``states`` (each with
    its groups' first-row ordinals), in the order the groups first appear in one join."""
    from ..exec.driver import call_operator
    from ..exec.operators import AggregateOperator

    sizes = [t.num_rows for t in states]
    if sum(sizes):
        every = pa.concat_tables([t.select([LEFT_ORD, RIGHT_ORD]) for t in states])
        order = join_order(every.column(LEFT_ORD), every.column(RIGHT_ORD)).to_numpy()
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
    else:
        rank = np.zeros(0, dtype=np.int64)
    ordered = ordered_aggregate(aggregate)
    position = len(aggregate.aggregates)
    op = AggregateOperator(ordered, [], mode="final")
    op.open(ctx)
    try:
        start = 0
        for state, n in zip(states, sizes):
            state = state.drop_columns([LEFT_ORD, RIGHT_ORD])
            state = state.append_column(f"a{position}_count", pa.array(np.ones(n, dtype=np.int64)))
            state = state.append_column(f"a{position}_best", pa.array(rank[start:start + n]))
            start += n
            if n:
                call_operator(op, op.merge, state)
        batches = call_operator(op, op.finish)
    finally:
        op.close()
    return restore_order([pa.Table.from_batches(batches, schema=ordered.schema)], aggregate.schema)
