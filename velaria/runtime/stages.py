"""Cut a plan into stages at its exchange, run a partition's stage, merge the partials.

A plan is partitioned when its bottom is a *pipeline* -- a splittable Scan with Filters,
Projects and Joins above it -- reached from the root through single-input nodes and the left
input of joins. A Join inside the pipeline is a *broadcast join*: its right input runs first,
as one task, and its rows travel with every partition task, which joins its own slice of the
left input (the join emits left rows in input order, so the concatenated partitions keep the
order of one join). The node right above the pipeline is the *exchange*; it decides what
each partition task computes and how the partial results merge:

=================  ===============================  =====================================
exchange           per partition                    merge (on the client)
=================  ===============================  =====================================
(none)             the pipeline's rows              concatenate in partition order
Aggregate          partial aggregate state (Arrow)  merge the states, finish once
Sort with LIMIT    the partition's top N rows       the same top-N over the candidates
Limit              first offset+limit rows          the Limit over the concatenation
Distinct           the partition's distinct rows    Distinct over the concatenation
HybridSearch       the partition's top-k rows       the same search over the candidates
anything else      the pipeline's rows              the node runs over the concatenation
=================  ===============================  =====================================

The rest of the plan above the exchange runs once over the merged result (the final
stage). A plan that is not partitionable at all runs as one task, and that fallback is
recorded with its reason. Partitions are contiguous and in source order, so every merge
sees rows in the order a single scan would.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa

from ..io.base import ArrowTableSource
from ..plan import logical as L
from .partition import split_source

__all__ = ["Cut", "cut_plan", "PartitionTask", "PartitionWork", "run_task", "merge_partials", "replace_node",
           "memory_scan"]

_PIPELINE = (L.Filter, L.Project, L.Join)
#: join kinds whose output is decided per left row, so each left partition joins on its own
_LEFT_PRESERVING = ("inner", "left", "cross") + L.SUBQUERY_JOINS


@dataclass
class Cut:
    """Where a plan is cut: ``exchange`` (None: the pipeline is the root) over ``pipeline``
    whose scan splits into ``partitions``; or ``partitions is None`` and ``reason`` says why
    the plan runs as one task. ``broadcasts`` are the pipeline's joins, top first (their right
    inputs are broadcast)."""

    pipeline: L.Node | None
    exchange: L.Node | None
    scan: L.Scan | None
    partitions: list | None
    partitioning: str
    reason: str = ""
    broadcasts: list = dataclasses.field(default_factory=list)

    @property
    def kind(self) -> str:
        """The exchange's strategy name (recorded in the run record)."""
        prefix = "broadcast-join+" * len(self.broadcasts)
        return prefix + self._exchange_kind()

    def _exchange_kind(self) -> str:
        ex = self.exchange
        if ex is None:
            return "gather"
        if isinstance(ex, L.Aggregate):
            return "partial-aggregate+merge"
        if isinstance(ex, L.Sort) and ex.limit is not None:
            return "top-n+merge"
        if isinstance(ex, L.Limit) and ex.limit is not None:
            return "limit+merge"
        if isinstance(ex, L.Distinct):
            return "distinct+merge"
        if isinstance(ex, L.HybridSearch):
            return "vector-top-k+merge"
        return f"gather+{type(ex).__name__.lower()}"

    @property
    def decomposed(self) -> bool:
        """True when partitions run a part of the exchange itself (not only the pipeline)."""
        return not self._exchange_kind().startswith("gather")


def cut_plan(root: L.Node, parts: int) -> Cut:
    """The stage cut of ``root`` for ``parts`` partitions (see the module table)."""
    chain = [root]
    while True:
        kids = L.children(chain[-1])
        if not kids:
            break
        node = chain[-1]
        if isinstance(node, L.Join) and getattr(node, "how", "inner") not in _LEFT_PRESERVING:
            return Cut(None, None, None, None, "none",
                       f"plan not partitionable ({node.how.upper()} JOIN pads right rows that match no left "
                       "row, which needs every left row in one place): ran as one task")
        if len(kids) > 1 and not isinstance(node, L.Join):
            return Cut(None, None, None, None, "none",
                       f"plan not partitionable ({type(node).__name__} has {len(kids)} inputs): "
                       "ran as one task")
        chain.append(kids[0])          # a join continues down its left (probe) input
    leaf = chain[-1]
    if not isinstance(leaf, L.Scan):
        return Cut(None, None, None, None, "none", "plan not partitionable (no table scan): ran as one task")
    top = len(chain) - 1
    while top > 0 and isinstance(chain[top - 1], _PIPELINE):
        top -= 1
    partitions, how = split_source(leaf.source, parts)
    if partitions is None:
        return Cut(None, None, leaf, None, "none", f"plan not partitionable ({how}): ran as one task")
    exchange = chain[top - 1] if top > 0 else None
    broadcasts = [n for n in chain[top:] if isinstance(n, L.Join)]
    return Cut(chain[top], exchange, leaf, partitions, how, broadcasts=broadcasts)


def replace_node(root: L.Node, old: L.Node, new: L.Node) -> L.Node:
    """A copy of the path from ``root`` to ``old`` with ``old`` replaced by ``new`` (other
    nodes are shared: plan nodes are never mutated)."""
    if root is old:
        return new
    if isinstance(root, L.Join):
        return dataclasses.replace(root, left=replace_node(root.left, old, new),
                                   right=replace_node(root.right, old, new))
    if isinstance(root, L.Union):
        return dataclasses.replace(root, inputs=[replace_node(c, old, new) for c in root.inputs])
    child = getattr(root, "input", None)
    if child is None:
        return root
    return dataclasses.replace(root, input=replace_node(child, old, new))


@dataclass
class PartitionTask:
    """What one partition task computes: ``plan`` (the pipeline over one partition, with
    the partial exchange on top when ``aggregate`` is False) or, when ``aggregate`` is set,
    the partial state of that Aggregate node over ``plan``'s rows."""

    index: int
    plan: L.Node
    aggregate: L.Aggregate | None
    engine: str
    batch_rows: int
    memory_whole_chunks: bool
    #: the client's clock reading: NOW() / TODAY() are one instant across all partitions
    eval_context: object = None


@dataclass
class PartitionWork:
    """A task that works on the rows of the partition task ``task`` (a shuffle's map task, a
    search over a partition); subclasses define ``run()``."""

    task: PartitionTask

    @property
    def index(self) -> int:
        return self.task.index

    def rows(self) -> tuple[pa.Table, object]:
        """``task``'s rows, run here, and this process's kernels for the task's engine."""
        t = self.task
        return run_task(t), task_context(t.engine, t.batch_rows, t.memory_whole_chunks).kernels

    def run(self) -> pa.Table:
        raise NotImplementedError


def partial_node(cut: Cut, partition_scan: L.Node) -> L.Node:
    """The plan one partition runs (without the aggregate, which runs as partial state)."""
    pipeline = replace_node(cut.pipeline, cut.scan, partition_scan)
    ex = cut.exchange
    if not cut.decomposed or isinstance(ex, L.Aggregate):
        return pipeline
    if isinstance(ex, L.Limit):
        return dataclasses.replace(ex, input=pipeline, limit=ex.limit + ex.offset, offset=0)
    return dataclasses.replace(ex, input=pipeline)


def with_broadcasts(cut: Cut, tables: list[pa.Table]) -> Cut:
    """``cut`` whose joins read the already computed right inputs ``tables`` (one per
    broadcast, in order) from memory."""
    pipeline = cut.pipeline
    for join, table in zip(cut.broadcasts, tables):   # top first: lower joins keep their identity
        right = memory_scan(table, join.right.schema, "broadcast")
        pipeline = replace_node(pipeline, join, dataclasses.replace(join, right=right))
    return dataclasses.replace(cut, pipeline=pipeline)


def make_tasks(cut: Cut, engine: str, batch_rows: int, memory_whole_chunks: bool,
               eval_context=None) -> list[PartitionTask]:
    """One task per partition of ``cut`` (after :func:`with_broadcasts`)."""
    tasks = []
    for i, source in enumerate(cut.partitions):
        scan = dataclasses.replace(cut.scan, source=source)
        aggregate = cut.exchange if isinstance(cut.exchange, L.Aggregate) else None
        if aggregate is not None:
            aggregate = dataclasses.replace(aggregate, input=None)  # the input is ``plan``
        tasks.append(PartitionTask(i, partial_node(cut, scan), aggregate, engine, batch_rows,
                                   memory_whole_chunks, eval_context))
    return tasks


@lru_cache(maxsize=4)
def _kernels(engine: str):
    from ..kernels import kernel_set
    return kernel_set(engine)


def task_context(engine: str, batch_rows: int, memory_whole_chunks: bool):
    """An execution context for a task in this process (kernels loaded once per process)."""
    from ..exec.operators import ExecContext
    return ExecContext(_kernels(engine), batch_rows, memory_whole_chunks=memory_whole_chunks)


def run_task(task) -> pa.Table:
    """Run one partition task in this process (a worker): its rows, or for an aggregate
    exchange its partial state as Arrow (the aggregate kernel's exported state). Any other
    task object (a search over a partition) runs its own ``run()``."""
    from ..exec.driver import call_operator, run, run_table
    from ..exec.operators import AggregateOperator
    from ..plan.physical import build_physical

    if not isinstance(task, PartitionTask):
        return task.run()
    ctx = task_context(task.engine, task.batch_rows, task.memory_whole_chunks)
    if task.eval_context is not None:
        ctx.eval_context = task.eval_context
    physical = build_physical(task.plan, ctx.kernels)
    if task.aggregate is None:
        return run_table(physical, ctx)
    op = AggregateOperator(task.aggregate, [], mode="final")
    op.open(ctx)
    try:
        for batch in run(physical, ctx):
            call_operator(op, op.push, batch, 0)
        return call_operator(op, op.snapshot)
    finally:
        op.close()


def merge_partials(cut: Cut, partials: list[pa.Table], ctx, physical) -> L.Node:
    """The exchange's merged result as a Scan node the final stage runs over (the plan from
    the exchange up keeps its shape; the part below is replaced by this result)."""
    from ..exec.driver import call_operator, run_table
    from ..exec.operators import AggregateOperator
    from ..plan.physical import build_physical

    ex = cut.exchange
    if isinstance(ex, L.Aggregate):
        op = AggregateOperator(ex, [], mode="final")
        op.open(ctx)
        try:
            for state in partials:
                call_operator(op, op.merge, state)
            batches = call_operator(op, op.finish)
            physical.record_run([op])
        finally:
            op.close()
        merged = pa.Table.from_batches(batches, schema=ex.schema)
        return memory_scan(merged, ex.schema, "merged aggregate states")
    in_schema = ex.input.schema if ex is not None else cut.pipeline.schema
    if cut.decomposed and isinstance(ex, L.HybridSearch):
        # the candidates carry the score column; the merge searches their input columns again
        partials = [t.select(list(range(len(in_schema)))) for t in partials]
    rows = _concat(partials, in_schema)
    if ex is None:
        return memory_scan(rows, in_schema, "gathered partitions")
    final = dataclasses.replace(ex, input=memory_scan(rows, in_schema, "partials"))
    merged = run_table(build_physical(final, ctx.kernels), ctx)
    return memory_scan(merged, ex.schema, f"merged {cut.kind}")


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    parts = [t if t.schema.equals(schema) else pa.Table.from_arrays(t.columns, schema=schema) for t in tables
             if t.num_rows]
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts).combine_chunks()


def memory_scan(table: pa.Table, schema: pa.Schema, name: str) -> L.Scan:
    """A Scan node over the in-memory ``table`` (named ``name`` in explain)."""
    return L.Scan(schema=schema, source=ArrowTableSource(table), table_name=name)
