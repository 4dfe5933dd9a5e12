"""``COUNT(DISTINCT x)`` as two plain aggregates (a rewrite that does not change results).

``SELECT k, COUNT(DISTINCT x) FROM t GROUP BY k`` counts, per group, the distinct non-NULL
values of ``x``. Grouping by ``k, x`` first leaves one row per distinct pair (a NULL ``x`` is
a group of its own); counting the non-NULL ``x`` of those rows per ``k`` is then the answer.
Both steps are ordinary GROUP BYs, which the accelerated aggregate runs on its vectorised
paths, where a DISTINCT aggregate keeps a set of values per group. Group keys and DISTINCT
use the same equality (``1`` equals ``1.0``, ``-0.0`` equals ``0.0``, NaN equals NaN), and the
groups come out in the same order: the first ``(k, x)`` pair of a key ``k`` is met on the
first row of ``k``.

Only an aggregate whose every call is ``COUNT(DISTINCT x)`` of one and the same ``x`` is
rewritten (a second argument, or a plain aggregate beside it, would need the rows the first
step merged). The rewrite serves bounded queries: a stream's running aggregate emits updated
groups, which a second aggregate must not count again, and stream plans are not optimised
here.
"""
from __future__ import annotations

import pyarrow as pa

from . import logical as L
from .expr import AggregateCall, Column, render
from .join_filters import _with_children

__all__ = ["split_count_distinct"]

#: name of the inner aggregate's DISTINCT argument column (never visible in a result)
ARG_NAME = "__distinct_arg"


def _distinct_arg(node: L.Aggregate):
    """The one argument of an aggregate made only of ``COUNT(DISTINCT arg)``, else None."""
    calls = node.aggregates
    if not calls or not all(isinstance(a, AggregateCall) and a.func == "count" and a.distinct
                            and a.arg is not None for a in calls):
        return None
    texts = {render(a.arg) for a in calls}
    return calls[0].arg if len(texts) == 1 else None


def _split(node: L.Aggregate) -> L.Node:
    arg = _distinct_arg(node)
    if arg is None:
        return node
    nkeys = len(node.keys)
    inner_schema = pa.schema([node.schema.field(i) for i in range(nkeys)] + [pa.field(ARG_NAME, arg.type)])
    inner = L.Aggregate(schema=inner_schema, input=node.input, keys=list(node.keys) + [arg], aggregates=[])
    keys = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(inner_schema) if i < nkeys]
    counted = Column(type=arg.type, index=nkeys, name=ARG_NAME)
    return L.Aggregate(schema=node.schema, input=inner, keys=keys,
                       aggregates=[AggregateCall(type=a.type, func="count", arg=counted, distinct=False)
                                   for a in node.aggregates])


def split_count_distinct(node: L.Node) -> L.Node:
    """An equivalent plan where each ``COUNT(DISTINCT x)``-only aggregate is two plain ones
    (a new tree; ``node`` is not changed)."""
    children = L.children(node)
    new = [split_count_distinct(c) for c in children]
    if children and not all(a is b for a, b in zip(new, children)):
        node = _with_children(node, new)
    return _split(node) if isinstance(node, L.Aggregate) else node
