"""Keep every planned expression shallow, so deep SQL runs on recursive evaluators.

A statement may nest expressions up to :data:`~velaria.sql.depth.MAX_EXPRESSION_DEPTH`
levels (a generated 1000-term sum is 999 levels of ``+``). The expression evaluators walk
the IR recursively, a few Python frames per level, so such a tree would exhaust Python's
stack at run time. :func:`shallow_plan` rewrites the plan instead: while an expression of a
Filter, Project or Aggregate is taller than :data:`MAX_EVALUATED_HEIGHT`, the subtrees at that
height are computed first, as extra columns of a Project placed underneath, and the expression
reads those columns. Only existing plan nodes are used, and every value is computed by the
same evaluator in the same order, so answers do not change.

Subtrees under a ``CASE`` are never moved: a CASE branch runs only on the rows that reach it
(``CASE WHEN x <> 0 THEN 1 / x END``), and computing it first for every row could raise an
error the query does not have. The walks here are iterative.

:func:`deep_recursion` raises Python's recursion limit while a statement is planned: chains
of binary operators are lowered in a loop, but nested calls, CASE and the IR helpers the
planner uses (``walk``, ``render``) still recurse, and the depth check has already bounded
how deep that can go.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading

import pyarrow as pa

from ..plan import logical as L
from ..plan import types as T
from ..plan.expr import AggregateCall, Call, Case, Cast, Column, Expr, InList, Literal
from .depth import MAX_EXPRESSION_DEPTH, MAX_QUERY_DEPTH

__all__ = ["MAX_EVALUATED_HEIGHT", "shallow_plan", "deep_recursion", "height", "still_tall", "deep_plan"]

#: the tallest expression tree handed to an evaluator
MAX_EVALUATED_HEIGHT = 32

# Python frames the planner may use per level of SQL nesting (lowering, walks, rendering),
# and per nested query (planning a subquery, a WITH query or a view runs through many calls)
_FRAMES_PER_LEVEL = 8
_FRAMES_PER_QUERY = 64


_guard_lock = threading.Lock()
_guard_users = 0
_guard_saved = 0


@contextlib.contextmanager
def deep_recursion():
    """Allow the planner's recursive walks to reach the documented nesting limit.

    The limit is interpreter-wide, so concurrent users are counted: the first raises it, the
    last one out restores the value it found.
    """
    global _guard_users, _guard_saved
    with _guard_lock:
        if _guard_users == 0:
            _guard_saved = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_guard_saved, _FRAMES_PER_LEVEL * MAX_EXPRESSION_DEPTH
                                      + _FRAMES_PER_QUERY * MAX_QUERY_DEPTH + 2000))
        _guard_users += 1
    try:
        yield
    finally:
        with _guard_lock:
            _guard_users -= 1
            if _guard_users == 0:
                sys.setrecursionlimit(_guard_saved)


# ---------------------------------------------------------------------------- IR helpers

def _kids(e: Expr) -> list[Expr]:
    if isinstance(e, Call):
        return list(e.args)
    if isinstance(e, Case):
        out = [x for pair in e.whens for x in pair]
        return out + ([e.else_] if e.else_ is not None else [])
    if isinstance(e, Cast):
        return [e.arg]
    if isinstance(e, InList):
        return [e.arg, *e.items]
    if isinstance(e, AggregateCall) and e.arg is not None:
        return [e.arg]
    return []


def _rebuild(e: Expr, kids: list[Expr]) -> Expr:
    if isinstance(e, Call):
        return Call(type=e.type, name=e.name, args=tuple(kids))
    if isinstance(e, Case):
        n = 2 * len(e.whens)
        whens = tuple((kids[k], kids[k + 1]) for k in range(0, n, 2))
        return Case(type=e.type, whens=whens, else_=kids[n] if e.else_ is not None else None)
    if isinstance(e, Cast):
        return Cast(type=e.type, arg=kids[0], target=e.target)
    if isinstance(e, InList):
        return InList(type=e.type, arg=kids[0], items=tuple(kids[1:]), negated=e.negated)
    if isinstance(e, AggregateCall) and e.arg is not None:
        return dataclasses.replace(e, arg=kids[0])
    return e


def _postorder(root: Expr) -> list[Expr]:
    """Every node of ``root``, children before parents (iterative)."""
    out, stack = [], [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            out.append(node)
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in reversed(_kids(node)))
    return out


def height(root: Expr) -> int:
    """Levels below ``root`` on its longest path (a column or literal has height 0)."""
    h: dict[int, int] = {}
    for node in _postorder(root):
        kids = _kids(node)
        h[id(node)] = 1 + max(h[id(k)] for k in kids) if kids else 0
    return h[id(root)]


def _hoist(root: Expr, target: int, first_index: int, hoisted: list[Expr]) -> Expr:
    """``root`` with each movable subtree of height ``target`` replaced by a column reference
    (appended to ``hoisted``; column ``first_index + position``)."""
    heights: dict[int, int] = {}
    under_case: set[int] = set()
    stack = [root]
    while stack:  # mark everything below a CASE as not movable
        node = stack.pop()
        if isinstance(node, Case) or id(node) in under_case:
            under_case.update(id(k) for k in _kids(node))
        stack.extend(_kids(node))
    rebuilt: dict[int, Expr] = {}
    for node in _postorder(root):
        kids = _kids(node)
        heights[id(node)] = 1 + max(heights[id(k)] for k in kids) if kids else 0
        new = _rebuild(node, [rebuilt[id(k)] for k in kids]) if kids else node
        movable = (heights[id(node)] == target and id(node) not in under_case
                   and not isinstance(node, (Column, Literal, AggregateCall)))
        if movable:
            hoisted.append(new)
            new = Column(type=new.type, index=first_index + len(hoisted) - 1,
                         name=f"__deep_{first_index + len(hoisted) - 1}")
        rebuilt[id(node)] = new
    return rebuilt[id(root)]


def _layers(exprs: list[Expr], node: L.Node) -> tuple[L.Node, list[Expr]]:
    """Project layers under ``node``'s expressions until each is at most the evaluated height."""
    while any(height(e) > MAX_EVALUATED_HEIGHT for e in exprs):
        width = len(node.schema)
        hoisted: list[Expr] = []
        exprs = [_hoist(e, MAX_EVALUATED_HEIGHT, width, hoisted) for e in exprs]
        if not hoisted:  # only CASE branches are left deep
            break
        passthrough = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(node.schema)]
        fields = list(node.schema) + [pa.field(f"__deep_{width + k}", e.type if not T.is_null(e.type) else T.NULL)
                                      for k, e in enumerate(hoisted)]
        node = L.Project(schema=pa.schema(fields), input=node, exprs=passthrough + hoisted)
    return node, exprs


# ---------------------------------------------------------------------------- plan rewrite

def _evaluated(n: L.Node) -> list[Expr]:
    """The expressions an evaluator runs for ``n``: a Filter's predicate, a Project's
    expressions, an Aggregate's keys then its aggregate arguments (others: none)."""
    if isinstance(n, L.Filter):
        return [n.predicate]
    if isinstance(n, L.Project):
        return list(n.exprs)
    if isinstance(n, L.Aggregate):
        return list(n.keys) + [a.arg for a in n.aggregates if a.arg is not None]
    return []


def _tall(n: L.Node) -> bool:
    return any(height(e) > MAX_EVALUATED_HEIGHT for e in _evaluated(n))


def shallow_plan(node: L.Node) -> L.Node:
    """``node`` with every Filter / Project / Aggregate expression at most
    :data:`MAX_EVALUATED_HEIGHT` tall (outside CASE branches); same schema, same answers.

    Nodes are never changed in place (a plan may share nodes with a registered view): a node
    whose inputs or expressions change is copied.
    """
    changes = {}
    for attr in ("input", "left", "right"):
        child = getattr(node, attr, None)
        if isinstance(child, L.Node):
            new_child = shallow_plan(child)
            if new_child is not child:
                changes[attr] = new_child
    if isinstance(node, (L.Union, L.SetOp)):
        inputs = [shallow_plan(c) for c in node.inputs]
        if any(a is not b for a, b in zip(inputs, node.inputs)):
            changes["inputs"] = inputs
    if changes:
        node = dataclasses.replace(node, **changes)
    if not _tall(node):
        return node
    if isinstance(node, L.Filter):
        below, (pred,) = _layers([node.predicate], node.input)
        filtered = L.Filter(schema=below.schema, input=below, predicate=pred, origin=node.origin)
        keep = [Column(type=f.type, index=i, name=f.name) for i, f in enumerate(node.schema)]
        return L.Project(schema=node.schema, input=filtered, exprs=keep)
    if isinstance(node, L.Project):
        below, exprs = _layers(list(node.exprs), node.input)
        return L.Project(schema=node.schema, input=below, exprs=exprs)
    # an Aggregate
    below, exprs = _layers(_evaluated(node), node.input)
    keys, rest = exprs[:len(node.keys)], iter(exprs[len(node.keys):])
    aggs = [a if a.arg is None else dataclasses.replace(a, arg=next(rest)) for a in node.aggregates]
    return dataclasses.replace(node, input=below, keys=keys, aggregates=aggs)


#: a plan deeper than this many nodes executes with :func:`deep_recursion` (the optimiser,
#: the physical planner and the executor walk the plan recursively)
DEEP_PLAN_HEIGHT = 200


def deep_plan(node: L.Node) -> bool:
    """True when the plan tree under ``node`` is more than :data:`DEEP_PLAN_HEIGHT` nodes
    deep (a long INTERSECT / EXCEPT chain, many nested subqueries); measured iteratively."""
    stack = [(node, 1)]
    while stack:
        n, depth = stack.pop()
        if depth > DEEP_PLAN_HEIGHT:
            return True
        stack.extend((c, depth + 1) for c in L.children(n))
    return False


def still_tall(node: L.Node) -> bool:
    """True when an expression in the plan is still taller than :data:`MAX_EVALUATED_HEIGHT`
    (deep nesting inside a CASE branch): executing it needs :func:`deep_recursion`."""
    stack = [node]
    while stack:
        n = stack.pop()
        if _tall(n):
            return True
        stack.extend(L.children(n))
    return False
