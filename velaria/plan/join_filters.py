"""Push WHERE conjuncts below inner joins, and make WHERE equalities across an inner join its
hash keys (rewrites that do not change results).

``WHERE c_mktsegment = 'BUILDING' AND o_orderdate < DATE '1995-03-15'`` over ``customer JOIN
orders`` keeps exactly the joined pairs whose customer row and order row pass their own
conjunct, so each conjunct that reads one side only can filter that side before the join:
the join then hashes and probes only the rows that can survive. The conjunct is moved, the
Filter above keeps the rest (conjuncts over both sides, and any it does not move).

Only conjuncts that cannot raise move: comparisons, ``IN``, ``LIKE``, ``IS [NOT] NULL`` and
AND / OR / NOT of columns and constants (a text constant compared with a date is parsed, so
that one stays). An expression that can fail (a CAST, arithmetic that can overflow, a
function) stays above the join, where it sees only the joined rows as before. Only inner
joins: below an outer join a filter would change which rows are padded.

A conjunct ``left column = right column`` (both columns of one type) over an inner join is
exactly that key pair in ON, so it becomes a join key: ``FROM a, b WHERE a.k = b.k`` hashes on
``k`` instead of forming every pair and filtering them.
"""
from __future__ import annotations

import dataclasses

from . import logical as L
from .expr import Call, Column, Expr, InList, Literal
from .optimize import column_refs, remap
from .types import BOOL, is_date, is_string, is_timestamp

__all__ = ["push_below_joins"]

_SAFE_CALLS = {"=", "!=", "<", "<=", ">", ">=", "and", "or", "not", "is_null", "is_not_null", "like"}


def _leaf(e: Expr) -> bool:
    return isinstance(e, (Column, Literal))


def _parses_text(a: Expr, b: Expr) -> bool:
    """True when comparing ``a`` with ``b`` reads text as a date (which can fail)."""
    temporal = [is_date(x.type) or is_timestamp(x.type) for x in (a, b)]
    text = [is_string(x.type) for x in (a, b)]
    return (temporal[0] and text[1]) or (temporal[1] and text[0])


def _cannot_fail(e: Expr) -> bool:
    """True when evaluating ``e`` on any row cannot raise (see the module text)."""
    todo = [e]
    while todo:
        n = todo.pop()
        if _leaf(n):
            continue
        if isinstance(n, InList):
            if not (_leaf(n.arg) and all(_leaf(i) for i in n.items)):
                return False
            if any(_parses_text(n.arg, i) for i in n.items):
                return False
            continue
        if not (isinstance(n, Call) and n.name in _SAFE_CALLS):
            return False
        if n.name in ("and", "or", "not"):
            todo.extend(n.args)
            continue
        if not all(_leaf(a) for a in n.args):
            return False
        if len(n.args) == 2 and _parses_text(*n.args):
            return False
        if n.name == "like" and not isinstance(n.args[1], Literal):
            return False
    return True


def _conjuncts(pred: Expr) -> list[Expr]:
    out, todo = [], [pred]
    while todo:                                      # iterative: AND chains may be long
        e = todo.pop(0)
        if isinstance(e, Call) and e.name == "and":
            todo[:0] = list(e.args)
        else:
            out.append(e)
    return out


def _and(parts: list[Expr]) -> Expr:
    result = parts[0]
    for p in parts[1:]:
        result = Call(type=BOOL, name="and", args=(result, p))
    return result


def _filtered(node: L.Node, parts: list[Expr]) -> L.Node:
    if not parts:
        return node
    return L.Filter(schema=node.schema, input=node, predicate=_and(parts), origin="where")


def _key_pair(c: Expr, nl: int, join: L.Join) -> tuple[Column, Column] | None:
    """(left key, right key) when ``c`` is ``left column = right column`` of one type: the
    same condition as that key pair in ON, so an inner join may hash on it (``FROM a, b
    WHERE a.k = b.k`` becomes a hash join instead of a cross join and a filter)."""
    if not (isinstance(c, Call) and c.name == "=" and len(c.args) == 2 and join.null_aware == 0
            and all(isinstance(a, Column) for a in c.args)):
        return None
    a, b = sorted(c.args, key=lambda col: col.index)
    if not (a.index < nl <= b.index and a.type.equals(b.type)):
        return None
    return a, dataclasses.replace(b, index=b.index - nl)


def _split(node: L.Filter) -> L.Node:
    """``node`` (a WHERE over an inner join) with its one-sided conjuncts moved below and
    its column equalities across the sides made join keys."""
    join = node.input
    nl = len(join.left.schema)
    keep, left, right, keys = [], [], [], []
    for c in _conjuncts(node.predicate):
        refs = column_refs([c])
        pair = _key_pair(c, nl, join)
        if pair is not None:
            keys.append(pair)
        elif not refs or not _cannot_fail(c):
            keep.append(c)
        elif max(refs) < nl:
            left.append(c)
        elif min(refs) >= nl:
            right.append(remap(c, {i: i - nl for i in refs}))
        else:
            keep.append(c)
    if not left and not right and not keys:
        return node
    join = dataclasses.replace(join, left=_filtered(join.left, left), right=_filtered(join.right, right),
                               left_keys=list(join.left_keys) + [k for k, _ in keys],
                               right_keys=list(join.right_keys) + [k for _, k in keys])
    return _filtered(join, keep) if keep else join


def _with_children(node: L.Node, children: list[L.Node]) -> L.Node:
    if isinstance(node, L.Join):
        return dataclasses.replace(node, left=children[0], right=children[1])
    if hasattr(node, "inputs"):
        return dataclasses.replace(node, inputs=list(children))
    if hasattr(node, "input"):
        return dataclasses.replace(node, input=children[0])
    return node


def push_below_joins(node: L.Node) -> L.Node:
    """An equivalent plan where WHERE conjuncts over one side of an inner join filter that
    side before the join (a new tree; ``node`` is not changed)."""
    if isinstance(node, L.Filter) and node.origin == "where" and isinstance(node.input, L.Join) \
            and node.input.how == "inner":
        node = _split(node)
    return map_children(node, push_below_joins)


def map_children(node: L.Node, rewrite) -> L.Node:
    """``node`` with ``rewrite`` applied to each of its inputs: ``node`` itself when no input
    changed, else a copy."""
    children = L.children(node)
    new = [rewrite(c) for c in children]
    if all(a is b for a, b in zip(new, children)):
        return node
    return _with_children(node, new)
