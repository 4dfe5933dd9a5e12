"""Constant date arithmetic folded at plan time.

``DATE '1994-01-01' + INTERVAL '1' YEAR`` is the same instant for every row, so the planner
computes it once with the reference function and keeps a typed constant. Beyond saving the
per-batch work, this turns ``o_orderdate < DATE '1994-01-01' + INTERVAL '1' YEAR`` into a plain
``column < constant`` comparison: a conjunct that cannot fail, which the optimiser may then
move below a join and hand to a source (it leaves arithmetic, which could fail, above the
join). Only deterministic operators on constants whose result is a date, timestamp or interval
are folded; a computation that raises is left in the plan, so the error still surfaces where
and when the query would have raised it.
"""
from __future__ import annotations

from ..plan import types as T
from ..plan.expr import Expr, Literal

__all__ = ["fold_temporal"]


def fold_temporal(fn, rtype, args: list[Expr]) -> Literal | None:
    """The constant result of ``fn(*args)`` when every argument is a constant, ``fn`` is a
    deterministic operator that needs no clock, and the result is temporal; else None."""
    if not (args and all(isinstance(a, Literal) for a in args) and fn.deterministic and not fn.needs_context):
        return None
    if not (T.is_date(rtype) or T.is_timestamp(rtype) or T.is_interval(rtype)):
        return None
    try:
        value = fn.apply(*(a.value for a in args))
    except Exception:   # noqa: BLE001 - the same error is raised again when the query runs
        return None
    return Literal(type=rtype, value=value)
