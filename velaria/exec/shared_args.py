"""Aggregate arguments that contain another argument, evaluated from its values.

TPC-H Q1 sums ``price * (1 - disc)`` and ``price * (1 - disc) * (1 + tax)``: the second is the
first times ``(1 + tax)``. Evaluated separately, the second reads ``price`` and ``disc`` again
and repeats two operations on every row. :func:`plan_reuse` finds, for each argument, the
largest earlier argument that occurs in it as a subtree of plain arithmetic (``+ - * /`` over
columns, constants and casts: deterministic, so one evaluation stands for both) and rewrites
it to read that argument's values as one more input column. Every value is computed by the
same operations on the same operands, so the result is bit-identical; an error the subtree
raises is raised once, when the earlier argument is evaluated, as before.
"""
from __future__ import annotations

import dataclasses

from ..plan.expr import Call, Cast, Column, Expr, Literal

__all__ = ["Reuse", "plan_reuse"]

_ARITHMETIC = frozenset({"+", "-", "*", "/"})


@dataclasses.dataclass(frozen=True)
class Reuse:
    """Argument ``expr`` rewritten to read the values of argument ``source`` as input column
    ``column`` (the batch's width: it is appended to the batch)."""

    expr: Expr
    source: int
    column: int


def _plain(e: Expr) -> bool:
    """True for arithmetic over columns, constants and casts (deterministic, no other calls)."""
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, Call):
            if x.name not in _ARITHMETIC:
                return False
            stack.extend(x.args)
        elif isinstance(x, Cast):
            stack.append(x.arg)
        elif not isinstance(x, (Column, Literal)):
            return False
    return True


def _size(e: Expr) -> int:
    return 1 + sum(_size(a) for a in e.args) if isinstance(e, Call) else 1


def _replace(e: Expr, target: str, by: Column) -> Expr | None:
    """``e`` with every subtree whose repr is ``target`` replaced by ``by`` (through Call
    arguments only), or None when there is none."""
    if repr(e) == target:
        return by
    if not isinstance(e, Call):
        return None
    args, hit = [], False
    for a in e.args:
        r = _replace(a, target, by)
        hit |= r is not None
        args.append(a if r is None else r)
    return dataclasses.replace(e, args=tuple(args)) if hit else None


def plan_reuse(args: list[Expr | None], width: int) -> list[Reuse | None]:
    """For each argument expression (None: ``COUNT(*)``) over a batch of ``width`` columns,
    how to evaluate it from the largest earlier argument it strictly contains, or None."""
    out: list[Reuse | None] = []
    for j, e in enumerate(args):
        best = None
        if isinstance(e, Call) and _plain(e):
            for i in range(j):
                a = args[i]
                if not isinstance(a, Call) or not _plain(a) or repr(a) == repr(e):
                    continue
                if best is not None and _size(a) <= _size(args[best]):
                    continue
                if _replace(e, repr(a), Column(type=a.type, index=width, name=f"arg{i}")) is not None:
                    best = i
        if best is None:
            out.append(None)
        else:
            a = args[best]
            out.append(Reuse(_replace(e, repr(a), Column(type=a.type, index=width, name=f"arg{best}")), best, width))
    return out
