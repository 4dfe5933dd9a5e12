"""The joins subqueries are planned as: semi, anti, mark and single.

Each keeps the left rows in their input order and runs on the Session's kernels (the
accelerated twins where it has them): semi, anti and mark ask ``key_matches`` which left rows
have a right row with equal keys (no pairs are formed, so repeated right keys cost nothing);
single takes the pairs of ``hash_join``:

* ``semi``: the left rows with at least one matching right row (``WHERE EXISTS`` / ``IN``);
* ``anti``: the left rows whose mark is FALSE (``WHERE NOT EXISTS`` / ``NOT IN``);
* ``mark``: every left row plus a boolean column, the value of ``EXISTS`` / ``IN`` for that
  row (used where the subquery stands inside a larger expression);
* ``single``: a left join that fails when a left row matches more than one right row
  (a scalar subquery); a left row without a match gets NULLs.

The mark of a left row follows SQL: with ``k`` correlation keys and, for ``IN``, the
``null_aware`` operand pair last, the *group* of a left row is the right rows whose
correlation keys equal its own. EXISTS is TRUE when the group is not empty. ``x IN`` is TRUE
when a row of the group has the value ``x``; else NULL when the group is not empty and ``x``
or a value in the group is NULL; else FALSE. So ``NOT IN`` over a subquery that returns a
NULL keeps no row, and ``NOT IN`` over an empty subquery keeps every row, NULL ``x`` too.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ExecutionError

__all__ = ["subquery_join", "mark_values"]

TOO_MANY_ROWS = "more than one row returned by a subquery used as an expression"


def _hits(kernels, lkeys: list[pa.Array], rkeys: list[pa.Array], nl: int, nr: int) -> np.ndarray:
    """For each left row: does some right row have equal (non-NULL) keys? No keys: is
    there any right row at all."""
    if not lkeys:
        return np.full(nl, nr > 0, dtype=bool)
    return kernels.key_matches(lkeys, rkeys).to_numpy(zero_copy_only=False)


def mark_values(kernels, lkeys: list[pa.Array], rkeys: list[pa.Array], null_aware: int,
                nl: int, nr: int) -> pa.Array:
    """The EXISTS / IN value of every left row (see the module text), a boolean array."""
    nk = len(lkeys) - null_aware
    group = _hits(kernels, lkeys[:nk], rkeys[:nk], nl, nr)
    if not null_aware:
        return pa.array(group, type=pa.bool_())
    match = _hits(kernels, lkeys, rkeys, nl, nr)
    # the value side: a NULL left operand, or a NULL among the group's values
    left_null = np.zeros(nl, dtype=bool)
    for k in lkeys[nk:]:
        left_null |= k.is_null().to_numpy(zero_copy_only=False)
    right_null = np.zeros(nr, dtype=bool)
    for k in rkeys[nk:]:
        right_null |= k.is_null().to_numpy(zero_copy_only=False)
    if right_null.any():
        keep = pa.array(right_null)
        group_null = _hits(kernels, lkeys[:nk], [k.filter(keep) for k in rkeys[:nk]], nl, int(right_null.sum()))
    else:
        group_null = np.zeros(nl, dtype=bool)
    unknown = ~match & group & (left_null | group_null)
    return pa.array(match, type=pa.bool_(), mask=unknown if unknown.any() else None)


def subquery_join(kernels, how: str, lb: pa.RecordBatch, rb: pa.RecordBatch, lkeys: list[pa.Array],
                  rkeys: list[pa.Array], null_aware: int, schema: pa.Schema) -> pa.RecordBatch:
    """The output batch of a ``how`` in semi | anti | mark | single join of ``lb`` and ``rb``.
    ``lb`` may carry one placeholder column more than ``schema`` has left columns (the one
    row of a SELECT without FROM); it is dropped."""
    nl, nr = lb.num_rows, rb.num_rows
    width = len(schema) - (len(rb.schema) if how == "single" else 1 if how == "mark" else 0)
    lb = lb.select(list(range(width))) if lb.num_columns > width else lb
    if how == "single":
        return _single(kernels, lb, rb, lkeys, rkeys, schema)
    mark = mark_values(kernels, lkeys, rkeys, null_aware, nl, nr)
    if how == "mark":
        return pa.RecordBatch.from_arrays(list(lb.columns) + [mark], schema=schema)
    keep = pc.fill_null(mark if how == "semi" else pc.invert(mark), False)
    return pa.RecordBatch.from_arrays(list(lb.filter(keep).columns), schema=schema)


def _single(kernels, lb, rb, lkeys, rkeys, schema) -> pa.RecordBatch:
    """Left join where no left row may match twice (a scalar subquery's value per row)."""
    nl, nr = lb.num_rows, rb.num_rows
    if not lkeys:          # uncorrelated: the subquery's rows are every row's candidates (no kernel)
        if nr > 1:
            raise ExecutionError(f"{TOO_MANY_ROWS} (it returned {nr} rows); add a WHERE, an "
                                 "aggregate such as MAX(...), or LIMIT 1 to the subquery")
        ri = pa.array(np.zeros(nl, dtype=np.int64), mask=np.full(nl, nr == 0) if nr == 0 else None)
    else:
        li, ri = kernels.hash_join(lkeys, rkeys, "left")
        if len(li) > nl:      # a left row came back more than once: its key matched twice
            counts = np.bincount(li.to_numpy(zero_copy_only=False).astype(np.int64), minlength=nl)
            row = int(np.argmax(counts))
            raise ExecutionError(f"{TOO_MANY_ROWS} (for outer row {row} the correlated subquery "
                                 f"returned {int(counts[row])} rows); aggregate them (MAX(...), "
                                 "COUNT(*)) or make the correlation select one row")
        if not np.array_equal(li.to_numpy(zero_copy_only=False), np.arange(nl)):
            order = np.argsort(li.to_numpy(zero_copy_only=False), kind="stable")
            ri = ri.take(pa.array(order))
    right = [c.take(ri) for c in rb.columns]
    return pa.RecordBatch.from_arrays(list(lb.columns) + right, schema=schema)
