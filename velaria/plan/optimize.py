"""Plan rewrites that do not change results: projection and filter pushdown into scans
(and, first, WHERE conjuncts below inner joins).

``prune(plan)`` walks the tree top-down carrying the set of column positions the parent
needs, narrows every :class:`~velaria.plan.logical.Scan` to the columns some operator above it
really references, and renumbers column references on the way back up. A Filter directly
above a Scan hands its ``column <op> literal`` conjuncts to the source as well (the Filter
stays: pushdown is an optimisation, not a semantic).
"""
from __future__ import annotations

import dataclasses

import pyarrow as pa

from . import logical as L
from ..io.base import PushedFilter
from .expr import AggregateCall, Call, Case, Cast, Column, Expr, InList, Literal, walk

__all__ = ["prune", "column_refs", "remap", "pushable_filters"]


def column_refs(exprs) -> set[int]:
    """Input positions referenced by ``exprs``."""
    out: set[int] = set()
    for e in exprs:
        if e is None:
            continue
        for n in walk(e):
            if isinstance(n, Column):
                out.add(n.index)
    return out


def remap(e: Expr, mapping: dict[int, int]) -> Expr:
    """``e`` with every Column index translated through ``mapping``."""
    if isinstance(e, Column):
        return Column(type=e.type, index=mapping[e.index], name=e.name)
    if isinstance(e, Call):
        return Call(type=e.type, name=e.name, args=tuple(remap(a, mapping) for a in e.args))
    if isinstance(e, Case):
        return Case(type=e.type, whens=tuple((remap(c, mapping), remap(v, mapping)) for c, v in e.whens),
                    else_=remap(e.else_, mapping) if e.else_ is not None else None)
    if isinstance(e, Cast):
        return Cast(type=e.type, arg=remap(e.arg, mapping), target=e.target)
    if isinstance(e, InList):
        return InList(type=e.type, arg=remap(e.arg, mapping), items=tuple(remap(i, mapping) for i in e.items),
                      negated=e.negated)
    if isinstance(e, AggregateCall):
        return dataclasses.replace(e, arg=remap(e.arg, mapping) if e.arg is not None else None)
    return e


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}


def pushable_filters(pred: Expr, schema: pa.Schema) -> list[PushedFilter]:
    """The ``column <op> literal`` conjuncts of ``pred`` that a source may use to skip rows
    (an IR rule: only top-level AND branches; OR, NOT and anything else stay in the Filter)."""
    out: list[PushedFilter] = []
    todo = [pred]
    while todo:                                      # iterative: AND chains may be long
        e = todo.pop(0)
        if isinstance(e, Call) and e.name == "and":
            todo[:0] = list(e.args)                  # keep the conjuncts in source order
        elif isinstance(e, Call) and e.name in _FLIP and len(e.args) == 2:
            a, b = e.args
            if isinstance(a, Column) and isinstance(b, Literal) and b.value is not None:
                out.append(PushedFilter(schema.field(a.index).name, e.name, b.value))
            elif isinstance(b, Column) and isinstance(a, Literal) and a.value is not None:
                out.append(PushedFilter(schema.field(b.index).name, _FLIP[e.name], a.value))
    return out


def _identity(n: int) -> dict[int, int]:
    return {i: i for i in range(n)}


def _join_output(join: L.Join, need: set[int], mapping: dict[int, int]) -> tuple[L.Join, dict[int, int]]:
    """``join`` emitting only the columns ``need`` names (its keys and residual read the
    inputs, not its output): a column no operator above reads is never gathered."""
    keep = sorted({mapping[i] for i in need}) or [0]     # one column at least: it carries the row count
    if len(keep) >= len(join.schema):
        return join, mapping
    position = {full: out for out, full in enumerate(keep)}
    schema = pa.schema([join.schema.field(i) for i in keep])
    pruned = dataclasses.replace(join, schema=schema, output=tuple(keep))
    return pruned, {old: position[new] for old, new in mapping.items() if new in position}


def prune(node: L.Node, required: set[int] | None = None) -> L.Node:
    """Return an equivalent plan whose scans read only referenced columns (after moving WHERE
    conjuncts over one side of an inner join below it: :mod:`velaria.plan.join_filters`,
    semi-joining a chain of inner joins' inputs with a small filtered input they are
    equi-joined to: :mod:`velaria.plan.dimension_reduce`, pre-aggregating a GROUP BY over a
    join per join key below it: :mod:`velaria.plan.join_group`, and splitting
    ``COUNT(DISTINCT x)`` into two plain aggregates: :mod:`velaria.plan.distinct_agg`)."""
    from .determined_keys import fetch_determined_keys_late
    from .dimension_reduce import reduce_by_small_dimensions
    from .distinct_agg import split_count_distinct
    from .join_group import push_aggregate_below_join
    from .join_filters import push_below_joins
    node = fetch_determined_keys_late(reduce_by_small_dimensions(push_below_joins(node)))
    return _prune(split_count_distinct(push_aggregate_below_join(node)), required)[0]


def _prune(node: L.Node, required: set[int] | None) -> tuple[L.Node, dict[int, int]]:
    width = len(node.schema)
    need = set(range(width)) if required is None else set(required)

    if isinstance(node, L.Scan):
        keep = sorted(need)
        names = [node.schema.field(i).name for i in keep]
        if len(keep) == width:
            return node, _identity(width)
        schema = pa.schema([node.schema.field(i) for i in keep])
        new = L.Scan(schema=schema, source=node.source, table_name=node.table_name, columns=names,
                     filters=list(node.filters))
        return new, {old: new_i for new_i, old in enumerate(keep)}

    if isinstance(node, L.OneRow):
        return node, {}

    if isinstance(node, L.Filter):
        child, m = _prune(node.input, need | column_refs([node.predicate]))
        pred = remap(node.predicate, m)
        if isinstance(child, L.Scan) and node.origin == "where":
            # a fresh Scan: the un-pruned child may be the caller's own node, which must not change
            child = L.Scan(schema=child.schema, source=child.source, table_name=child.table_name,
                           columns=child.columns, filters=list(child.filters) + pushable_filters(pred, child.schema))
        return L.Filter(schema=child.schema, input=child, predicate=pred, origin=node.origin), m

    if isinstance(node, L.Project):
        child, m = _prune(node.input, column_refs(node.exprs))
        return L.Project(schema=node.schema, input=child, exprs=[remap(e, m) for e in node.exprs]), _identity(width)

    if isinstance(node, L.Aggregate):
        child, m = _prune(node.input, column_refs(node.keys) | column_refs(node.aggregates))
        return L.Aggregate(schema=node.schema, input=child, keys=[remap(k, m) for k in node.keys],
                           aggregates=[remap(a, m) for a in node.aggregates], rewrite=node.rewrite), _identity(width)

    if isinstance(node, L.Sort):
        child, m = _prune(node.input, need | column_refs(node.keys))
        return L.Sort(schema=child.schema, input=child, keys=[remap(k, m) for k in node.keys],
                      descending=node.descending, nulls_first=node.nulls_first, limit=node.limit), m

    if isinstance(node, L.Limit):
        child, m = _prune(node.input, need)
        return L.Limit(schema=child.schema, input=child, limit=node.limit, offset=node.offset), m

    if isinstance(node, L.Join):
        nl = len(node.left.schema)
        resid = column_refs([node.residual])
        lneed = {i for i in need | resid if i < nl} | column_refs(node.left_keys)
        rneed = {i - nl for i in need | resid if i >= nl} | column_refs(node.right_keys)
        if node.how in ("semi", "anti", "mark"):
            lneed = {i for i in lneed if i < nl}
            rneed = column_refs(node.right_keys)
        left, lm = _prune(node.left, lneed)
        right, rm = _prune(node.right, rneed)
        mapping = dict(lm)
        nl2 = len(left.schema)
        if node.how in ("semi", "anti", "mark"):     # the left rows (mark: one boolean after them)
            mapping.update({nl: nl2} if node.how == "mark" else {})
            schema = pa.schema(list(left.schema) + [node.schema.field(nl)] if node.how == "mark" else list(left.schema))
        else:
            mapping.update({old + nl: new + nl2 for old, new in rm.items()})
            schema = pa.schema(list(left.schema) + list(right.schema))
        join = L.Join(schema=schema, left=left, right=right, left_keys=[remap(k, lm) for k in node.left_keys],
                      right_keys=[remap(k, rm) for k in node.right_keys], how=node.how,
                      residual=remap(node.residual, mapping) if node.residual is not None else None,
                      null_aware=node.null_aware)
        if node.how in L.SUBQUERY_JOINS or required is None:
            return join, mapping
        return _join_output(join, need, mapping)

    if isinstance(node, L.Union):
        inputs = [_prune(c, None)[0] for c in node.inputs]
        return L.Union(schema=node.schema, inputs=inputs, distinct=node.distinct), _identity(width)

    if isinstance(node, L.Window):
        nin = len(node.input.schema)
        child, m = _prune(node.input, {i for i in need if i < nin}
                          | column_refs([e for f in node.functions for e in f.children()]))
        functions = [dataclasses.replace(f, args=tuple(remap(a, m) for a in f.args),
                                         partition=tuple(remap(p, m) for p in f.partition),
                                         order=tuple(remap(o, m) for o in f.order)) for f in node.functions]
        mapping = dict(m)
        nin2 = len(child.schema)
        mapping.update({nin + k: nin2 + k for k in range(len(node.functions))})
        schema = pa.schema(list(child.schema) + [node.schema.field(nin + k) for k in range(len(node.functions))])
        return L.Window(schema=schema, input=child, functions=functions), mapping

    if isinstance(node, L.SetOp):             # whole rows compare: every column is needed
        return dataclasses.replace(node, inputs=[_prune(c, None)[0] for c in node.inputs]), _identity(width)

    if isinstance(node, L.Distinct):
        child, _ = _prune(node.input, None)
        return L.Distinct(schema=node.schema, input=child), _identity(width)

    if isinstance(node, (L.HybridSearch, L.KeywordSearch)):  # they read every input column
        child, _ = _prune(node.input, None)
        # a copy: the caller's plan must not change (explaining twice must print the same)
        return dataclasses.replace(node, input=child), _identity(width)

    raise TypeError(f"prune: unknown node {type(node).__name__}")
