"""Lowering of ``f(...) OVER (...)`` to a typed :class:`~velaria.plan.expr.WindowCall`.

The SELECT list may call window functions; the planner then moves every WindowCall into a
Window plan node (``SelectPlanner._plan_windows``). Here: the OVER clause (inline, a named
``WINDOW w AS (...)``, or ``OVER (w ORDER BY ...)`` refining a named one), PostgreSQL's
default frame, the frame bounds and the argument rules, each with PostgreSQL's error text.
"""
from __future__ import annotations

import pyarrow as pa
from pglast import ast, enums

from ..errors import SQLSemanticError, SQLUnsupportedError
from ..plan import types as T
from ..plan.expr import Literal, WindowCall, WindowFrame
from ..reference import window as W
from ..reference.aggregate import AGGREGATE_ALIASES
from .lower_parametric import PARAMETRIC_AGGREGATES

__all__ = ["lower_window_call", "window_definitions"]

_F = enums  # FRAMEOPTION_* bit flags live in pglast.enums


def window_definitions(stmt: ast.SelectStmt, offset) -> dict[str, ast.WindowDef]:
    """``WINDOW w AS (...)`` definitions of a SELECT by name."""
    out: dict[str, ast.WindowDef] = {}
    for wd in stmt.windowClause or ():
        if wd.name in out:
            raise SQLSemanticError(f"window \"{wd.name}\" is already defined", byte_offset=offset(wd))
        out[wd.name] = wd
    return out


def _resolve(over: ast.WindowDef, defs: dict, offset) -> tuple:
    """(partition nodes, order nodes, frameOptions, startOffset, endOffset) of an OVER clause."""
    ref = over.refname or (over.name if not over.partitionClause and not over.orderClause else None)
    if ref is None:
        return over.partitionClause, over.orderClause, over.frameOptions, over.startOffset, over.endOffset
    base = defs.get(ref)
    if base is None:
        raise SQLSemanticError(f"window \"{ref}\" does not exist", hint="Define it with WINDOW name AS (...).",
                               byte_offset=offset(over))
    if over.partitionClause:
        raise SQLSemanticError(f"cannot override PARTITION BY clause of window \"{ref}\"", byte_offset=offset(over))
    if over.orderClause and base.orderClause:
        raise SQLSemanticError(f"cannot override ORDER BY clause of window \"{ref}\"", byte_offset=offset(over))
    if over.refname and base.frameOptions & _F.FRAMEOPTION_NONDEFAULT:
        raise SQLSemanticError(f"cannot copy window \"{ref}\" because it has a frame clause",
                               byte_offset=offset(over))
    use_own_frame = over.refname is not None and over.frameOptions & _F.FRAMEOPTION_NONDEFAULT
    frame_src = over if use_own_frame else base
    return (base.partitionClause, over.orderClause or base.orderClause, frame_src.frameOptions,
            frame_src.startOffset, frame_src.endOffset)


def _offset_value(lowerer, node, mode: str, what: str, frame_node):
    """A frame offset: a non-negative integer (ROWS) or number (RANGE) constant, or (RANGE over
    a date or timestamp) a non-negative INTERVAL constant."""
    e = lowerer.lower(node)
    at = lowerer.offset(node)
    at = lowerer.offset(frame_node) if at is None else at
    if mode == "range" and isinstance(e, Literal) and pa.types.is_interval(e.type) and e.value is not None:
        if any(part < 0 for part in e.value):
            raise SQLSemanticError(f"frame {what} offset must not be negative", byte_offset=at)
        return e.value
    if not isinstance(e, Literal) or e.value is None or not T.is_numeric(e.type):
        raise SQLSemanticError(f"frame {what} offset must be a constant number", byte_offset=at)
    if mode == "rows" and not T.is_integer(e.type):
        raise SQLSemanticError(f"ROWS frame {what} offset must be an integer", byte_offset=at)
    if e.value < 0 or e.value != e.value:
        raise SQLSemanticError(f"frame {what} offset must not be negative", byte_offset=at)
    return e.value


def _frame(lowerer, options: int, start_node, end_node, node) -> WindowFrame:
    """The frame from pglast's ``frameOptions`` bits (PostgreSQL's default when not given)."""
    if not options & _F.FRAMEOPTION_NONDEFAULT:
        return WindowFrame()
    if options & _F.FRAMEOPTION_GROUPS:
        raise SQLUnsupportedError("window frames in GROUPS mode are not supported", hint="Use ROWS or RANGE.",
                                  byte_offset=lowerer.offset(node))
    if options & (_F.FRAMEOPTION_EXCLUDE_CURRENT_ROW | _F.FRAMEOPTION_EXCLUDE_GROUP | _F.FRAMEOPTION_EXCLUDE_TIES):
        raise SQLUnsupportedError("window frame EXCLUDE is not supported", byte_offset=lowerer.offset(node))
    mode = "rows" if options & _F.FRAMEOPTION_ROWS else "range"

    def bound(side: str):
        o = options
        if o & getattr(_F, f"FRAMEOPTION_{side}_UNBOUNDED_PRECEDING"):
            if side == "END":
                raise SQLSemanticError("frame end cannot be UNBOUNDED PRECEDING", byte_offset=lowerer.offset(node))
            return ("unbounded", None)
        if o & getattr(_F, f"FRAMEOPTION_{side}_UNBOUNDED_FOLLOWING"):
            if side == "START":
                raise SQLSemanticError("frame start cannot be UNBOUNDED FOLLOWING", byte_offset=lowerer.offset(node))
            return ("unbounded", None)
        if o & getattr(_F, f"FRAMEOPTION_{side}_CURRENT_ROW"):
            return ("current", None)
        value_node = start_node if side == "START" else end_node
        kind = "preceding" if o & getattr(_F, f"FRAMEOPTION_{side}_OFFSET_PRECEDING") else "following"
        return (kind, _offset_value(lowerer, value_node, mode, "starting" if side == "START" else "ending",
                                     node))
    start, end = bound("START"), bound("END")
    problem = None
    if start[0] == "current" and end[0] == "preceding":
        problem = "frame starting from current row cannot have preceding rows"
    elif start[0] == "following" and end[0] == "preceding":
        problem = "frame starting from following row cannot have preceding rows"
    elif start[0] == "following" and end[0] == "current":
        problem = "frame starting from following row cannot end with current row"
    if problem:
        raise SQLSemanticError(problem, byte_offset=lowerer.offset(node))
    return WindowFrame(mode=mode, start=start, end=end)


def lower_window_call(lowerer, node: ast.FuncCall, name: str) -> WindowCall:
    """``node`` (a FuncCall with OVER) as a WindowCall; ``lowerer`` is the ExprLowerer of the
    SELECT list (its ``windows`` holds the WINDOW definitions)."""
    from .lower_expr import ExprLowerer
    off = lowerer.offset
    if lowerer.windows is None:
        raise SQLSemanticError(f"window functions are not allowed in {lowerer.clause}", byte_offset=off(node),
                               hint="Compute the window function in a derived table or WITH query, then "
                                    "filter or group its result.")
    name = AGGREGATE_ALIASES.get(name, name)
    if name in PARAMETRIC_AGGREGATES:
        raise SQLUnsupportedError(f"{name.upper()} is not supported as a window function", byte_offset=off(node),
                                  hint="compute it with GROUP BY in a derived table or WITH query and join that")
    if name not in W.WINDOW_FUNCTIONS:
        raise SQLSemanticError(f"OVER specified, but {name} is not a window function nor an aggregate function",
                               hint="Window functions: " + ", ".join(W.WINDOW_FUNCTIONS) + ".", byte_offset=off(node))
    if node.agg_distinct:
        raise SQLUnsupportedError("DISTINCT is not implemented for window functions", byte_offset=off(node))
    if node.agg_order or node.agg_filter is not None:
        raise SQLUnsupportedError("aggregate ORDER BY / FILTER in a window function is not supported",
                                  byte_offset=off(node))
    # arguments and keys: aggregates allowed where the SELECT list allows them (grouped
    # queries), window functions never (they cannot nest)
    inner = ExprLowerer(lowerer.scope, off, allow_aggregates=lowerer.allow_aggregates,
                        clause="window function", aggregates=lowerer.aggregates)
    raw_args = list(node.args or ())
    if name in W.ARITY:
        lo, hi = W.ARITY[name]
        if not lo <= len(raw_args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise SQLSemanticError(f"{name.upper()} expects {want} argument{'s' if hi != 1 else ''}",
                                   byte_offset=off(node))
    elif node.agg_star or (name == "count" and not raw_args):
        if name != "count":
            raise SQLSemanticError(f"{name.upper()}(*) is not valid; only COUNT(*) is", byte_offset=off(node))
        raw_args = []
    elif len(raw_args) != 1:
        raise SQLSemanticError(f"{name.upper()} expects 1 argument", byte_offset=off(node))
    param = None
    if name == "ntile":
        param = _constant_int(inner, raw_args.pop(0), "argument of ntile", True, node)
    elif name in ("lag", "lead"):
        param = _constant_int(inner, raw_args.pop(1), f"offset of {name}", False, node) if len(raw_args) > 1 else 1
    args = [inner.lower(a) for a in raw_args]
    partition_nodes, order_nodes, options, start_node, end_node = _resolve(node.over, lowerer.windows, off)
    partition = [inner.lower(p) for p in partition_nodes or ()]
    order, desc, nulls_first = [], [], []
    for sb in order_nodes or ():
        if sb.sortby_dir == enums.SortByDir.SORTBY_USING:
            raise SQLUnsupportedError("ORDER BY ... USING is not supported", byte_offset=off(sb))
        d = sb.sortby_dir == enums.SortByDir.SORTBY_DESC
        nf = {enums.SortByNulls.SORTBY_NULLS_FIRST: True, enums.SortByNulls.SORTBY_NULLS_LAST: False}.get(
            sb.sortby_nulls, d)
        order.append(inner.lower(sb.node))
        desc.append(d)
        nulls_first.append(nf)
    frame = _frame(inner, options, start_node, end_node, node.over)
    offsets = {frame.start[0], frame.end[0]} & {"preceding", "following"}
    if frame.mode == "range" and offsets:
        try:
            W.check_range_offset([o.type for o in order], name, [frame.start[1], frame.end[1]])
        except SQLSemanticError as exc:
            raise exc.with_offset(off(node.over))
    try:
        rtype = W.window_result_type(name, [a.type for a in args] if name not in ("lag", "lead")
                                     else [args[0].type, None] + [a.type for a in args[1:]])
    except SQLSemanticError as exc:
        raise exc.with_offset(off(node))
    return WindowCall(type=rtype if not T.is_null(rtype) else T.NULL, func=name, args=tuple(args),
                      partition=tuple(partition), order=tuple(order), descending=tuple(desc),
                      nulls_first=tuple(nulls_first), frame=frame, param=param)


def _constant_int(lowerer, node, what: str, positive: bool, call) -> int:
    e = lowerer.lower(node)
    at = lowerer.offset(node)
    at = lowerer.offset(call) if at is None else at       # a folded -1 has no location of its own
    if not isinstance(e, Literal) or not T.is_integer(e.type) or e.value is None:
        raise SQLUnsupportedError(f"{what} must be an integer constant", byte_offset=at)
    if positive and e.value <= 0:
        raise SQLSemanticError(f"{what} must be greater than zero", byte_offset=at)
    if e.value < 0:
        raise SQLSemanticError(f"{what} must not be negative", byte_offset=at)
    return int(e.value)
