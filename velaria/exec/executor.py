"""Batch executor: one generator per plan node, Arrow record batches flowing between them.

Unary streaming operators (Filter, Project, Limit) handle one batch at a time, and the hash
aggregate folds batches into its state, so a scan of a file larger than memory aggregates in
bounded memory. Sort, Distinct, Union-distinct and the build side of a Join are barriers that
collect their input first. Every operator calls its kernel through the Session's
:class:`~velaria.kernels.KernelSet`, never a module directly, so the registry decides whether
the reference or the accelerated implementation runs.
"""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from ..errors import ExecutionError
from ..io.base import ArrowTableSource
from ..kernels import KernelSet
from ..plan import logical as L
from ..plan.expr import Column, Expr

__all__ = ["execute", "execute_table", "ExecContext"]


class ExecContext:
    """What one query execution shares: kernels, a fixed clock for NOW()/TODAY(), batch size."""

    def __init__(self, kernels: KernelSet, batch_rows: int = 65536, memory_whole_chunks: bool = False):
        self.kernels = kernels
        self.batch_rows = batch_rows
        # in-memory sources (kind "memory") handed out in their own chunks, not batch_rows
        self.memory_whole_chunks = memory_whole_chunks
        # NOW() / TODAY() see one clock reading per query.
        from ..reference.functions import EvalContext
        self.eval_context = EvalContext.current()


def _eval(ctx: ExecContext, e: Expr, batch: pa.RecordBatch) -> pa.Array:
    """``e`` over ``batch`` through the registry's ``evaluate`` kernel. A bare column reference
    is the batch's own array (no kernel call; explain's kernel list counts on this)."""
    if isinstance(e, Column):
        arr = batch.column(e.index)
        return arr if arr.type.equals(e.type) else arr.cast(e.type)
    return ctx.kernels.evaluate(e, batch, ctx.eval_context)


def _single_batch(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """``table`` as one record batch (barrier operators work on their whole input)."""
    if table.num_rows == 0:
        return _empty(schema)
    return table.combine_chunks().to_batches()[0]  # one chunk per column -> one batch


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def _batch(schema: pa.Schema, arrays: list[pa.Array]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _collect(ctx: ExecContext, node: L.Node) -> pa.Table:
    batches = [b for b in execute(node, ctx) if b.num_rows]
    if not batches:
        return pa.Table.from_batches([], schema=node.schema)
    return pa.Table.from_batches(batches, schema=node.schema)


def execute_table(node: L.Node, ctx: ExecContext) -> pa.Table:
    """Run ``node`` to completion and return one ``pa.Table`` (single chunk)."""
    return _collect(ctx, node).combine_chunks()


def execute(node: L.Node, ctx: ExecContext) -> Iterator[pa.RecordBatch]:
    """Yield the record batches ``node`` produces."""
    fn = _DISPATCH[type(node)]
    yield from fn(node, ctx)


# ---------------------------------------------------------------------------- operators

def _scan_rows(node: L.Scan, ctx) -> int:
    """Batch size for ``node``'s source: the Session's ``batch_rows``, or for an in-memory
    source (data already materialised; nothing to bound) its whole chunks when allowed."""
    if ctx.memory_whole_chunks and isinstance(node.source, ArrowTableSource):
        hint = node.source.num_rows_hint()
        if hint:
            return max(ctx.batch_rows, hint)
    return ctx.batch_rows


def _scan(node: L.Scan, ctx):
    for b in node.source.scan(node.columns, node.filters, _scan_rows(node, ctx)):
        if not b.schema.equals(node.schema):
            b = b.rename_columns(node.schema.names) if b.num_columns == len(node.schema) else b
            if not b.schema.equals(node.schema):
                try:
                    b = b.cast(node.schema)
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                    raise ExecutionError(f"source {node.table_name} yielded a batch with schema {b.schema}, "
                                         f"expected {node.schema}: {exc}") from exc
        yield b


def _one_row(node: L.OneRow, ctx):
    # One row and no real columns: the projection above computes only literals / functions.
    yield pa.record_batch([pa.nulls(1)], names=["__one"])


def _filter(node: L.Filter, ctx):
    for b in execute(node.input, ctx):
        if b.num_rows == 0:
            continue
        kept = ctx.kernels.filter_batch(node.predicate, b, ctx.eval_context)
        if kept.num_rows:
            yield kept


def _project(node: L.Project, ctx):
    produced = False
    for b in execute(node.input, ctx):
        if b.num_rows == 0 and produced:
            continue
        produced = True
        yield _batch(node.schema, [_eval(ctx, e, b) for e in node.exprs])
    if not produced:
        yield _empty(node.schema)


def _aggregate(node: L.Aggregate, ctx):
    agg = ctx.kernels.hash_aggregate(node.aggregates, len(node.keys))
    for b in execute(node.input, ctx):
        if b.num_rows == 0:
            continue
        keys = [_eval(ctx, k, b) for k in node.keys]
        # an argument shared by several aggregates (SUM(v), AVG(v)) is evaluated once and
        # handed over as the same array object
        seen: dict = {}
        args = []
        for a in node.aggregates:
            if a.arg is None:
                args.append(None)
                continue
            key = repr(a.arg)           # structural: expressions compare by identity
            hit = seen.get(key)
            if hit is None:
                hit = seen[key] = _eval(ctx, a.arg, b)
            args.append(hit)
        agg.update(keys, args, b.num_rows)
    yield _batch(node.schema, agg.finish([f.type for f in node.schema]))


def _sort(node: L.Sort, ctx):
    batch = _single_batch(_collect(ctx, node.input), node.schema)
    if batch.num_rows == 0:
        yield batch
        return
    keys = [_eval(ctx, k, batch) for k in node.keys]
    order = ctx.kernels.sort_indices(keys, node.descending, node.nulls_first, node.limit)
    yield batch.take(order)


def _limit(node: L.Limit, ctx):
    skip = node.offset
    left = node.limit
    if left == 0:
        yield _empty(node.schema)
        return
    for b in execute(node.input, ctx):
        if skip:
            if b.num_rows <= skip:
                skip -= b.num_rows
                continue
            b = b.slice(skip)
            skip = 0
        if left is not None:
            if b.num_rows >= left:
                yield b.slice(0, left)
                return
            left -= b.num_rows
        yield b
    yield _empty(node.schema)


def _join(node: L.Join, ctx):
    lb = _single_batch(_collect(ctx, node.left), node.left.schema)
    rb = _single_batch(_collect(ctx, node.right), node.right.schema)
    lkeys = [_eval(ctx, k, lb) for k in node.left_keys]
    rkeys = [_eval(ctx, k, rb) for k in node.right_keys]
    li, ri = ctx.kernels.hash_join(lkeys, rkeys, node.how)
    right_part = rb.take(ri)  # a NULL index gives a NULL row (LEFT JOIN padding)
    yield _batch(node.schema, list(lb.take(li).columns) + list(right_part.columns))


def _union(node: L.Union, ctx):
    if not node.distinct:
        for child in node.inputs:
            for b in execute(child, ctx):
                yield _batch(node.schema, list(b.columns))
        return
    parts = [pa.Table.from_batches([_batch(node.schema, list(b.columns)) for b in execute(c, ctx)],
                                   schema=node.schema) for c in node.inputs]
    yield from _distinct_batch(_single_batch(pa.concat_tables(parts), node.schema), ctx)


def _distinct_batch(batch: pa.RecordBatch, ctx):
    if batch.num_rows == 0:
        yield batch
        return
    yield batch.take(ctx.kernels.distinct_indices(list(batch.columns)))


def _distinct(node: L.Distinct, ctx):
    yield from _distinct_batch(_single_batch(_collect(ctx, node.input), node.schema), ctx)


def _hybrid(node: L.HybridSearch, ctx):
    from .. import vector
    table = _collect(ctx, node.input).combine_chunks()
    result = vector.hybrid_search_table(table, node.column, node.query_text, node.metric, node.top_k,
                                        node.score_threshold, ctx.kernels)
    for b in result.to_batches():
        yield _batch(node.schema, list(b.columns))
    if result.num_rows == 0:
        yield _empty(node.schema)


def _keyword(node: L.KeywordSearch, ctx):
    from ..vector import keyword
    table = _collect(ctx, node.input).combine_chunks()
    result = keyword.keyword_search_table(table, list(node.columns), node.query, node.top_k, ctx.kernels,
                                          node.tokenizer)
    for b in result.to_batches():
        yield _batch(node.schema, list(b.columns))
    if result.num_rows == 0:
        yield _empty(node.schema)


_DISPATCH = {
    L.Scan: _scan, L.OneRow: _one_row, L.Filter: _filter, L.Project: _project, L.Aggregate: _aggregate,
    L.Sort: _sort, L.Limit: _limit, L.Join: _join, L.Union: _union, L.Distinct: _distinct,
    L.HybridSearch: _hybrid, L.KeywordSearch: _keyword,
}
