"""GROUP BY above a join, pre-aggregated below it per join key (a rewrite that keeps results).

``SELECT d.name, SUM(t.v) FROM t JOIN d ON t.k = d.k GROUP BY d.name`` groups by columns of
one side (``d``, the *group side*) and aggregates columns of the other (``t``, the *fact
side*). Every fact row with one join key meets the same rows of ``d``, so the fact rows can
be aggregated per join key first and each of those partial rows joined instead:

    Aggregate(name; SUM(v))                        Aggregate(name; SUM(s))      final
      Join(t.k = d.k)                      ==>       Join(p.k = d.k)
        t          d                                   Aggregate(k; SUM(v) AS s)   partial
                                                         t                  d

A million fact rows with a thousand keys then join as a thousand rows. A group-side key with
several rows joins its partial row once per row, as each fact row did, so SUM and COUNT still
count every pair; a NULL or unmatched fact key forms a partial group that joins nothing, as
its rows did. Groups come out in the same order: the first pair of a group in the original
join is met on the first fact row of its key, whose partial row comes first among the
partial rows of that group's keys.

Only what the rewrite keeps exactly is rewritten:

* an inner equi-join without a residual condition, with join keys of integer, text, date,
  timestamp or boolean type (GROUP BY and the join agree on their equality; float keys, where
  the join and GROUP BY treat ``-0.0`` and NaN differently, are left alone);
* group keys that read only the group side (at least one key), aggregates that read only the
  fact side;
* ``COUNT(*)`` / ``COUNT(x)`` (the partial counts are summed), ``MIN`` / ``MAX`` of a
  non-float argument (float ones keep the first zero's sign and NaN rules of one pass), and
  ``SUM`` of a float64 argument. An integer ``SUM`` is left alone: its overflow is checked on
  the final total only, and a partial total could overflow where the final one does not.
  ``DISTINCT`` aggregates are left alone.

Float ``SUM`` order: the partial aggregate adds each join key's values left to right in input
order, and the final one adds those partial sums left to right in the partial rows' order (the
GROUP BY float SUM rule applied to each aggregate). Both engines run the rewritten plan, so
they agree bit for bit; against the plan without the rewrite only the rounding differs.

Explain shows both aggregates with ``rewrite=partial-below-join`` and
``rewrite=final-above-join``.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.types as pat

from . import logical as L
from .expr import AggregateCall, Column
from .join_filters import _with_children
from .optimize import column_refs, remap

__all__ = ["push_aggregate_below_join", "PARTIAL", "FINAL"]

PARTIAL = "partial-below-join"
FINAL = "final-above-join"


def _key_type_ok(t: pa.DataType) -> bool:
    return (pat.is_integer(t) or pat.is_string(t) or pat.is_large_string(t) or pat.is_date(t)
            or pat.is_timestamp(t) or pat.is_boolean(t))


def _partial_of(agg: AggregateCall) -> str | None:
    """The partial aggregate function of ``agg`` (the final one is SUM for counts, else the
    same function), or None when the rewrite would not keep its result."""
    if agg.distinct or agg.param is not None:
        return None
    if agg.func == "count":
        return "count"
    if agg.func in ("min", "max") and agg.arg is not None and not pat.is_floating(agg.arg.type) \
            and not pat.is_null(agg.arg.type):
        return agg.func
    if agg.func == "sum" and agg.arg is not None and pat.is_float64(agg.arg.type):
        return "sum"
    return None


def _sides(node: L.Aggregate, join: L.Join) -> tuple[str, str] | None:
    """("left" | "right" fact side, group side) when the keys read only one side and the
    aggregates only the other."""
    nl = len(join.left.schema)
    key_refs = column_refs(node.keys)
    arg_refs = column_refs([a.arg for a in node.aggregates])
    if not key_refs:
        return None
    if all(i >= nl for i in key_refs) and all(i < nl for i in arg_refs):
        return "left", "right"
    if all(i < nl for i in key_refs) and all(i >= nl for i in arg_refs):
        return "right", "left"
    return None


def _rewrite(node: L.Aggregate) -> L.Node:
    join = node.input
    if not (isinstance(join, L.Join) and join.how == "inner" and join.residual is None and join.left_keys
            and join.null_aware == 0 and join.output is None):
        return node
    if not node.keys or not node.aggregates or any(isinstance(k, AggregateCall) for k in node.keys):
        return node
    partial_funcs = [_partial_of(a) for a in node.aggregates]
    if any(f is None for f in partial_funcs):
        return node
    sides = _sides(node, join)
    if sides is None:
        return node
    fact_side, _ = sides
    fact_keys = join.left_keys if fact_side == "left" else join.right_keys
    if not all(_key_type_ok(k.type) for k in list(join.left_keys) + list(join.right_keys)):
        return node
    nl = len(join.left.schema)
    fact = join.left if fact_side == "left" else join.right
    # aggregate arguments, renumbered from the join's output to the fact side's own columns
    to_fact = {i: (i if fact_side == "left" else i - nl) for i in column_refs([a.arg for a in node.aggregates])}
    partial_calls = [AggregateCall(type=_partial_type(f, a), func=f,
                                   arg=None if a.arg is None else remap(a.arg, to_fact))
                     for f, a in zip(partial_funcs, node.aggregates)]
    nk = len(fact_keys)
    partial_fields = [pa.field(f"__join_key{j}", k.type) for j, k in enumerate(fact_keys)]
    partial_fields += [pa.field(f"__partial{i}", c.type) for i, c in enumerate(partial_calls)]
    partial = L.Aggregate(schema=pa.schema(partial_fields), input=fact, keys=list(fact_keys),
                          aggregates=partial_calls, rewrite=PARTIAL)
    new_keys = [Column(type=k.type, index=j, name=f"__join_key{j}") for j, k in enumerate(fact_keys)]
    if fact_side == "left":
        left, right, left_keys, right_keys = partial, join.right, new_keys, join.right_keys
    else:
        left, right, left_keys, right_keys = join.left, partial, join.left_keys, new_keys
    new_join = L.Join(schema=pa.schema(list(left.schema) + list(right.schema)), left=left, right=right,
                      left_keys=left_keys, right_keys=right_keys, how="inner")
    # group keys, renumbered from the old join output to the new one (only the group side moved
    # when the fact side is on the left; nothing moved when it is on the right)
    shift = len(partial.schema) - nl if fact_side == "left" else 0
    to_new = {i: i + shift for i in column_refs(node.keys)}
    base = len(left.schema) if fact_side == "right" else 0
    finals = []
    for i, (f, a) in enumerate(zip(partial_funcs, node.aggregates)):
        p = Column(type=partial_calls[i].type, index=base + nk + i, name=f"__partial{i}")
        finals.append(AggregateCall(type=a.type, func="sum" if f == "count" else f, arg=p))
    return L.Aggregate(schema=node.schema, input=new_join, keys=[remap(k, to_new) for k in node.keys],
                       aggregates=finals, rewrite=FINAL)


def _partial_type(func: str, agg: AggregateCall) -> pa.DataType:
    return agg.type if func != "count" else pa.int64()


def push_aggregate_below_join(node: L.Node) -> L.Node:
    """An equivalent plan where each GROUP BY over an inner join that groups by one side and
    aggregates the other is pre-aggregated per join key below the join (a new tree; ``node``
    is not changed)."""
    children = L.children(node)
    new = [push_aggregate_below_join(c) for c in children]
    if children and not all(a is b for a, b in zip(new, children)):
        node = _with_children(node, new)
    return _rewrite(node) if isinstance(node, L.Aggregate) else node
