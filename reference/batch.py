"""The Arrow boundary of the reference kernels.

The executor moves ``pyarrow`` record batches and arrays; the reference kernels compute on
Python lists so that a reader can follow every rule. These functions are the registry entries
(``velaria.kernels.REFERENCE_KERNELS``): each converts the Arrow inputs it needs with
``to_pylist()``, calls the list-based kernel of the same family, and builds an Arrow result of
the type the planner decided. An accelerated twin (``velaria.accel``) has the same names and
signatures and must return equal results (``tests/test_kernel_parity.py``).

=================== ==========================================================
``evaluate``        expression -> ``pa.Array`` of ``expr.type`` (expressions.py)
``filter_batch``    rows where the predicate is TRUE (predicates.py)
``HashAggregate``   GROUP BY state over batches (aggregate.py)
``sort_indices``    stable multi-key order, optionally only the first ``limit`` (sort.py)
``hash_join``       equi-join row pairs (join.py)
``key_matches``     which left rows have a right row with equal keys (join.py)
``key_set``         one join side's keys, asked per batch which rows' keys it holds (join.py)
``distinct_indices`` first row of each distinct row (distinct.py)
``window_eval``     one window function over every row (window.py)
``setop_indices``   the left rows INTERSECT / EXCEPT [ALL] keeps (distinct.py)
=================== ==========================================================
"""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from velaria.errors import ExecutionError
from velaria.plan.expr import AggregateCall, Column, Expr, walk
from velaria.plan.types import is_null, type_name

from . import aggregate, decimals, distinct, expressions, join, predicates, sort, window

__all__ = ["to_arrow", "evaluate", "filter_batch", "HashAggregate", "sort_indices", "hash_join", "key_matches", "key_set",
           "distinct_indices", "window_eval", "setop_indices"]


def to_arrow(values: list, t: pa.DataType) -> pa.Array:
    """An Arrow array of type ``t`` holding ``values`` (a NULL-typed result is all NULL)."""
    if is_null(t):
        return pa.nulls(len(values))
    try:
        return pa.array(values, type=t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        if pa.types.is_decimal(t):
            raise decimals.overflow_error(t) from exc
        raise ExecutionError(f"cannot build a {type_name(t)} column from the computed values: {exc}") from exc


def _lists(batch: pa.RecordBatch, exprs: Sequence[Expr]) -> list:
    """Python lists of the columns ``exprs`` reference (None for the others, never converted)."""
    cols: list = [None] * batch.num_columns
    for e in exprs:
        for n in walk(e):
            if isinstance(n, Column) and cols[n.index] is None:
                cols[n.index] = batch.column(n.index).to_pylist()
    return cols


def evaluate(expr: Expr, batch: pa.RecordBatch, context=None) -> pa.Array:
    """``expr`` over ``batch`` as an Arrow array of ``expr.type``.

    A bare column reference returns the batch's own array (its Arrow type as ingested).
    """
    if isinstance(expr, Column):
        arr = batch.column(expr.index)
        return arr if arr.type.equals(expr.type) else arr.cast(expr.type)
    values = expressions.evaluate(expr, _lists(batch, [expr]), batch.num_rows, context)
    return to_arrow(values, expr.type)


def filter_batch(predicate: Expr, batch: pa.RecordBatch, context=None) -> pa.RecordBatch:
    """The rows of ``batch`` for which ``predicate`` is TRUE (NULL and FALSE drop the row)."""
    mask = expressions.evaluate(predicate, _lists(batch, [predicate]), batch.num_rows, context)
    keep = predicates.selection(mask)
    if len(keep) == batch.num_rows:
        return batch
    return batch.take(pa.array(keep, type=pa.int64()))


def _bools(selection) -> list[bool]:
    """A selection (numpy or Arrow bool array, no NULLs) as a list of bools."""
    return selection.to_pylist() if isinstance(selection, pa.Array) else [bool(s) for s in selection]


def filter_select(predicate: Expr, batch: pa.RecordBatch, context=None,
                  min_share: float = 0.75) -> tuple[pa.RecordBatch, pa.BooleanArray | None]:
    """``filter_batch`` for a consumer that can skip rows itself: ``(batch, mask)`` -- the
    batch unchanged and a bool array, True where ``predicate`` is TRUE -- when at least
    ``min_share`` of the rows but not all are kept, else ``(filter_batch's rows, None)``."""
    mask = expressions.evaluate(predicate, _lists(batch, [predicate]), batch.num_rows, context)
    keep = predicates.selection(mask)
    n = batch.num_rows
    if n > len(keep) >= min_share * n:
        selected = [False] * n
        for i in keep:
            selected[i] = True
        return batch, pa.array(selected, type=pa.bool_())
    if len(keep) == n:
        return batch, None
    return batch.take(pa.array(keep, type=pa.int64())), None


def filter_fold(predicate: Expr, batch: pa.RecordBatch, aggregator, args: Sequence[Expr | None],
                context=None) -> int:
    """Fold into ``aggregator`` (a ``HashAggregate`` without keys) the rows of ``batch`` where
    ``predicate`` is TRUE: ``filter_batch``, then ``update`` with argument ``j`` the expression
    ``args[j]`` evaluated on the kept rows (None: ``COUNT(*)``). Returns how many rows were kept."""
    kept = filter_batch(predicate, batch, context)
    if kept.num_rows:
        aggregator.update([], [None if a is None else evaluate(a, kept, context) for a in args], kept.num_rows)
    return kept.num_rows


class HashAggregate:
    """GROUP BY over Arrow batches: ``update(keys, args, num_rows)`` per batch, then
    ``finish(types)`` -> one Arrow array per key then per aggregate."""

    def __init__(self, aggregates: Sequence[AggregateCall], num_keys: int):
        self._inner = aggregate.HashAggregator(aggregates, num_keys)

    def update(self, key_arrays: list[pa.Array], arg_arrays: list[pa.Array | None], num_rows: int,
               selection=None) -> None:
        """Fold a batch in; with ``selection`` (a bool array per row, numpy or Arrow), only the
        rows where it is True."""
        if selection is not None:
            keep = pa.array([i for i, s in enumerate(_bools(selection)) if s], type=pa.int64())
            key_arrays = [k.take(keep) for k in key_arrays]
            arg_arrays = [None if a is None else a.take(keep) for a in arg_arrays]
            num_rows = len(keep)
        self._inner.update([k.to_pylist() for k in key_arrays],
                           [a.to_pylist() if a is not None else None for a in arg_arrays], num_rows)

    def finish(self, types: list[pa.DataType]) -> list[pa.Array]:
        keys, results = self._inner.finish()
        return [to_arrow(v, t) for v, t in zip(list(keys) + list(results), types)]

    def emit_updated(self, types: list[pa.DataType]) -> list[pa.Array]:
        """``finish`` restricted to the groups touched since the previous call (non-destructive)."""
        keys, results = self._inner.emit_updated()
        return [to_arrow(v, t) for v, t in zip(list(keys) + list(results), types)]

    def export_state(self, key_types: list[pa.DataType]) -> pa.Table:
        """The whole state as Arrow (layout: ``velaria.reference.aggregate``)."""
        return self._inner.export_state(key_types)

    def take_updated_state(self, key_types: list[pa.DataType]) -> pa.Table:
        """The partial state folded in since the previous call (the groups touched, which
        then restart empty); merging the successive results equals the whole state."""
        return self._inner.take_updated_state(key_types)

    def merge_state(self, table: pa.Table) -> None:
        """Fold an exported state in, as if its groups' rows had been updated here."""
        self._inner.merge_state(table)

    def take_updated_partial(self, key_types: list[pa.DataType], known: int) -> tuple[pa.Table, pa.Table]:
        """``take_updated_state`` by group id: (keys of the groups numbered from ``known`` on,
        an ``id`` column then the touched groups' partial states); see ``merge_partial``."""
        return self._inner.take_updated_partial(key_types, known)

    def merge_partial(self, new_keys: pa.Table, partial: pa.Table, id_map):
        """Fold in another aggregator's ``take_updated_partial`` (``id_map``: its ids mapped
        to ids here so far, None at first); returns the map extended by ``new_keys``."""
        return self._inner.merge_partial(new_keys, partial, id_map)

    def import_state(self, table: pa.Table, updated=None) -> None:
        """Restore an exported state into this empty aggregator (``updated``: the rows of
        ``table`` whose groups count as touched, for a handover; None: none)."""
        self._inner.import_state(table, updated)

    #: the implementation path that runs (recorded in the physical plan's decisions)
    path = "reference"

    @staticmethod
    def plan_path(aggregates: Sequence[AggregateCall], key_types: Sequence[pa.DataType]) -> str:
        """The path planning expects for these aggregates and key types: always ``reference``."""
        return "reference"


def sort_indices(key_arrays: list[pa.Array], descending: list[bool], nulls_first: list[bool],
                 limit: int | None = None) -> pa.Array:
    """Row order as int64 indices: stable, multi-key; only the first ``limit`` when given."""
    keys = [k.to_pylist() for k in key_arrays]
    if limit is None:
        order = sort.sort_indices(keys, descending, nulls_first)
    else:
        order = sort.top_n_indices(keys, descending, nulls_first, limit)
    return pa.array(order, type=pa.int64())


def sort_take(batch: pa.RecordBatch, key_arrays: list[pa.Array], descending: list[bool],
              nulls_first: list[bool], limit: int | None = None) -> list[pa.RecordBatch]:
    """The rows of ``batch`` in the order of :func:`sort_indices` (only the first ``limit``),
    as consecutive batches (here one)."""
    return [batch.take(sort_indices(key_arrays, descending, nulls_first, limit))]


def hash_join(left_keys: list[pa.Array], right_keys: list[pa.Array], how: str) -> tuple[pa.Array, pa.Array]:
    """(left row indices, right row indices) of an equi-join; a NULL index pads an unmatched row."""
    li, ri = join.hash_join_indices([k.to_pylist() for k in left_keys], [k.to_pylist() for k in right_keys], how)
    return pa.array(li, type=pa.int64()), pa.array(ri, type=pa.int64())



def key_matches(left_keys: list[pa.Array], right_keys: list[pa.Array]) -> pa.Array:
    """A boolean per left row: some right row has equal keys (NULL keys never match)."""
    return pa.array(join.key_matches([k.to_pylist() for k in left_keys], [k.to_pylist() for k in right_keys]),
                    type=pa.bool_())


class KeySet:
    """``join.KeySet`` at the Arrow boundary: built from key arrays, answers a boolean array."""

    def __init__(self, keys: list[pa.Array]):
        self._set = join.KeySet([k.to_pylist() for k in keys])

    def contains(self, keys: list[pa.Array]) -> pa.Array:
        """A boolean per row of ``keys``: the key is in the set (NULL keys never are)."""
        return pa.array(self._set.contains([k.to_pylist() for k in keys]), type=pa.bool_())

    def select(self, batch: pa.RecordBatch, column: int) -> pa.RecordBatch:
        """The rows of ``batch`` whose key (column ``column``) is in the set, in order."""
        return batch.filter(self.contains([batch.column(column)]))

    def indices(self, keys: pa.Array) -> pa.Array:
        """The row numbers (int64, ascending) of the keys in the set."""
        found = self._set.contains([keys.to_pylist()])
        return pa.array([i for i, hit in enumerate(found) if hit], type=pa.int64())


def key_set(keys: list[pa.Array]) -> KeySet:
    """The distinct keys of one join side, for membership tests of the other side's rows.

    ``key_set(keys).contains(probe)`` equals ``key_matches(probe, keys)``."""
    return KeySet(keys)


def distinct_indices(arrays: list[pa.Array]) -> pa.Array:
    """Indices of the first occurrence of each distinct row, in input order."""
    return pa.array(distinct.distinct_indices([a.to_pylist() for a in arrays]), type=pa.int64())


def window_eval(call, args: list[pa.Array], partition: list[pa.Array], order: list[pa.Array],
                num_rows: int) -> pa.Array:
    """One window function over every row (``window.window_values``), as an Arrow array of
    ``call.type`` in input row order."""
    values = window.window_values(call, [a.to_pylist() for a in args], [p.to_pylist() for p in partition],
                                  [o.to_pylist() for o in order], num_rows)
    return to_arrow(values, call.type)


def setop_indices(left: list[pa.Array], right: list[pa.Array], kind: str, keep_all: bool) -> pa.Array:
    """Indices of the left rows that INTERSECT / EXCEPT [ALL] keeps, in left input order."""
    return pa.array(distinct.setop_indices([a.to_pylist() for a in left], [a.to_pylist() for a in right],
                                           kind, keep_all), type=pa.int64())
