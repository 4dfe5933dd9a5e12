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

from ..errors import ExecutionError, VelariaError
from ..kernels import KernelSet
from ..plan import logical as L
from ..plan import types as T
from ..plan.expr import Column, Expr, walk

__all__ = ["execute", "execute_table", "ExecContext"]


class ExecContext:
    """What one query execution shares: kernels, a fixed clock for NOW()/TODAY(), batch size."""

    def __init__(self, kernels: KernelSet, batch_rows: int = 65536):
        self.kernels = kernels
        self.batch_rows = batch_rows
        # NOW() / TODAY() see one clock reading per query.
        from ..reference.functions import EvalContext
        self.eval_context = EvalContext.current()


def _to_arrow(values: list, t: pa.DataType) -> pa.Array:
    if T.is_null(t):
        return pa.nulls(len(values))
    try:
        return pa.array(values, type=t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ExecutionError(f"cannot build a {T.type_name(t)} column from the computed values: {exc}") from exc


def _eval_columns(batch: pa.RecordBatch, exprs) -> list:
    """Python lists for the columns ``exprs`` reference (None for the others)."""
    cols: list = [None] * batch.num_columns
    for e in exprs:
        for n in walk(e):
            if isinstance(n, Column) and cols[n.index] is None:
                cols[n.index] = batch.column(n.index).to_pylist()
    return cols


def _evaluate(ctx: ExecContext, e: Expr, batch: pa.RecordBatch, cols=None) -> list:
    if cols is None:
        cols = _eval_columns(batch, [e])
    return ctx.kernels.evaluate(e, cols, batch.num_rows, ctx.eval_context)


def _evaluate_arrow(ctx: ExecContext, e: Expr, batch: pa.RecordBatch, cols) -> pa.Array:
    if isinstance(e, Column):  # pass-through keeps the column's own Arrow type (int32, large_string, ...)
        arr = batch.column(e.index)
        return arr if arr.type.equals(e.type) else arr.cast(e.type)
    return _to_arrow(ctx.kernels.evaluate(e, cols, batch.num_rows, ctx.eval_context), e.type)


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

def _scan(node: L.Scan, ctx):
    for b in node.source.scan(node.columns, node.filters, ctx.batch_rows):
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
        mask = _evaluate(ctx, node.predicate, b)
        keep = ctx.kernels.selection(mask)
        if len(keep) == b.num_rows:
            yield b
        elif keep:
            yield b.take(pa.array(keep, type=pa.int64()))


def _project(node: L.Project, ctx):
    produced = False
    for b in execute(node.input, ctx):
        if b.num_rows == 0 and produced:
            continue
        cols = _eval_columns(b, node.exprs)
        arrays = [_evaluate_arrow(ctx, e, b, cols) for e in node.exprs]
        produced = True
        yield _batch(node.schema, arrays)
    if not produced:
        yield _empty(node.schema)


def _aggregate(node: L.Aggregate, ctx):
    agg = ctx.kernels.hash_aggregate(node.aggregates, len(node.keys))
    exprs = list(node.keys) + [a.arg for a in node.aggregates if a.arg is not None]
    for b in execute(node.input, ctx):
        if b.num_rows == 0:
            continue
        cols = _eval_columns(b, exprs)
        keys = [ctx.kernels.evaluate(k, cols, b.num_rows, ctx.eval_context) for k in node.keys]
        args = [ctx.kernels.evaluate(a.arg, cols, b.num_rows, ctx.eval_context) if a.arg is not None else None
                for a in node.aggregates]
        agg.update(keys, args, b.num_rows)
    key_cols, agg_cols = agg.finish()
    arrays = [_to_arrow(v, f.type) for v, f in zip(list(key_cols) + list(agg_cols), node.schema)]
    yield _batch(node.schema, arrays)


def _sort(node: L.Sort, ctx):
    table = _collect(ctx, node.input)
    if table.num_rows == 0:
        yield _empty(node.schema)
        return
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else _empty(node.schema)
    cols = _eval_columns(batch, node.keys)
    keys = [ctx.kernels.evaluate(k, cols, batch.num_rows, ctx.eval_context) for k in node.keys]
    if node.limit is not None:
        order = ctx.kernels.top_n_indices(keys, node.descending, node.nulls_first, node.limit)
    else:
        order = ctx.kernels.sort_indices(keys, node.descending, node.nulls_first)
    yield batch.take(pa.array(order, type=pa.int64()))


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
    left = _collect(ctx, node.left).combine_chunks()
    right = _collect(ctx, node.right).combine_chunks()
    lb = left.to_batches()[0] if left.num_rows else _empty(node.left.schema)
    rb = right.to_batches()[0] if right.num_rows else _empty(node.right.schema)
    lcols = _eval_columns(lb, node.left_keys)
    rcols = _eval_columns(rb, node.right_keys)
    lkeys = [ctx.kernels.evaluate(k, lcols, lb.num_rows, ctx.eval_context) for k in node.left_keys]
    rkeys = [ctx.kernels.evaluate(k, rcols, rb.num_rows, ctx.eval_context) for k in node.right_keys]
    li, ri = ctx.kernels.hash_join(lkeys, rkeys, node.how)
    left_part = lb.take(pa.array(li, type=pa.int64()))
    right_part = rb.take(pa.array(ri, type=pa.int64()))  # None -> NULL row (LEFT JOIN padding)
    yield _batch(node.schema, list(left_part.columns) + list(right_part.columns))


def _union(node: L.Union, ctx):
    if not node.distinct:
        for child in node.inputs:
            for b in execute(child, ctx):
                yield _batch(node.schema, list(b.columns))
        return
    parts = [_collect(ctx, c) for c in node.inputs]
    table = pa.concat_tables([pa.Table.from_batches(p.to_batches(), schema=node.schema) if p.num_rows else
                              pa.Table.from_batches([], schema=node.schema) for p in parts]).combine_chunks()
    yield from _distinct_table(table, node.schema, ctx)


def _distinct_table(table: pa.Table, schema: pa.Schema, ctx):
    if table.num_rows == 0:
        yield _empty(schema)
        return
    batch = table.to_batches()[0]
    cols = [c.to_pylist() for c in batch.columns]
    keep = ctx.kernels.distinct_indices(cols)
    yield batch.take(pa.array(keep, type=pa.int64()))


def _distinct(node: L.Distinct, ctx):
    yield from _distinct_table(_collect(ctx, node.input).combine_chunks(), node.schema, ctx)


def _hybrid(node: L.HybridSearch, ctx):
    from .. import vector
    table = _collect(ctx, node.input).combine_chunks()
    result = vector.hybrid_search_table(table, node.column, node.query_text, node.metric, node.top_k,
                                        node.score_threshold, ctx.kernels)
    for b in result.to_batches():
        yield _batch(node.schema, list(b.columns))
    if result.num_rows == 0:
        yield _empty(node.schema)


_DISPATCH = {
    L.Scan: _scan, L.OneRow: _one_row, L.Filter: _filter, L.Project: _project, L.Aggregate: _aggregate,
    L.Sort: _sort, L.Limit: _limit, L.Join: _join, L.Union: _union, L.Distinct: _distinct,
    L.HybridSearch: _hybrid,
}
