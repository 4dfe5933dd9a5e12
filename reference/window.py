"""Reference window functions: ``f(...) OVER (PARTITION BY p ORDER BY o frame)``.

The executable specification of the ``window_eval`` kernel family. One call computes one
window function for every input row; the result is in input row order.

Partitions and order
--------------------
* Rows with equal PARTITION BY keys form one partition, with the equality of GROUP BY
  (``distinct.hash_key``: NULL equals NULL, ``-0.0`` equals ``0.0``, NaN equals NaN). No
  PARTITION BY: one partition of every row.
* Within a partition rows are ordered by the ORDER BY keys exactly as ``ORDER BY`` orders
  them (``sort.sort_indices``: stable, so ties keep input order; NULL placement per key).
* *Peers* are rows of one partition whose ORDER BY keys are all equal (hash_key equality;
  NULLs are peers of each other). Without ORDER BY every row of a partition is a peer of
  every other.

Ranking and offset functions (frames do not apply; PostgreSQL semantics)
------------------------------------------------------------------------
* ``ROW_NUMBER()``: 1, 2, ... in partition order.
* ``RANK()``: 1 + the number of rows before the row's first peer (gaps after ties);
  ``DENSE_RANK()``: the number of peer groups up to and including the row's (no gaps).
* ``NTILE(n)``: bucket 1..n by position; with N rows, the first ``N % n`` buckets hold
  ``N // n + 1`` rows and the rest ``N // n``.
* ``LAG(x, k = 1, default = NULL)`` / ``LEAD(...)``: ``x`` of the row ``k`` rows before /
  after in partition order, or ``default`` (evaluated on the current row) when there is none.

Frames (aggregates, FIRST_VALUE, LAST_VALUE)
--------------------------------------------
* The default frame is PostgreSQL's: ``RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW``,
  i.e. up to and including the row's last peer -- with no ORDER BY, the whole partition.
* ``ROWS``: bounds count rows from the current row (``k PRECEDING`` is k rows before).
* ``RANGE``: ``CURRENT ROW`` as a start is the row's first peer, as an end its last peer.
  ``k PRECEDING`` / ``k FOLLOWING`` need exactly one ORDER BY key and select the rows
  whose key lies within ``k`` of the current row's (in the ORDER BY direction: for DESC,
  PRECEDING means larger values). The key is a number and ``k`` a number, or the key is a
  DATE / TIMESTAMP and ``k`` an INTERVAL (for a DATE also an integer: days), the bound being
  ``key -/+ k`` as ``date + INTERVAL`` computes it (months first, the day clamped to the
  month's end; a DATE is midnight). When the current row's key is NULL or NaN the offset bounds
  behave as CURRENT ROW (its peers); a NULL or NaN key is never within an offset of a number.
* An empty frame (start after end) gives NULL (COUNT gives 0).
* The aggregates fold the frame's rows in partition order with the GROUP BY aggregate rules
  (``aggregate.py``): NULLs skipped, integer SUM exact with an overflow error, float SUM left
  to right, AVG float, MIN/MAX by ``sort_key`` keeping the first of equal values.
* ``FIRST_VALUE(x)`` / ``LAST_VALUE(x)``: ``x`` at the frame's first / last row (NULLs are
  values too).
"""
from __future__ import annotations

import datetime
import math

import pyarrow as pa

from velaria.errors import ExecutionError, SQLSemanticError, VelariaValueError
from velaria.plan.expr import AggregateCall, WindowCall
from velaria.plan.types import INT, common_type, is_null, is_numeric, type_name

from .aggregate import (AGGREGATE_FUNCTIONS, PARAMETRIC_FUNCTIONS, HashAggregator, _accumulate, _State,
                        aggregate_result_type)
from . import dates
from .distinct import hash_key
from .sort import sort_indices

__all__ = ["RANKING_FUNCTIONS", "WINDOW_FUNCTIONS", "window_result_type", "window_values",
           "partition_order", "frame_bounds", "check_range_offset"]

RANKING_FUNCTIONS = ("row_number", "rank", "dense_rank", "ntile", "lag", "lead", "first_value", "last_value")
#: every function allowed before OVER: ranking / offset functions and the aggregates (but those
#: with constant options, QUANTILE_CONT and STRING_AGG)
WINDOW_FUNCTIONS = RANKING_FUNCTIONS + tuple(f for f in AGGREGATE_FUNCTIONS if f not in PARAMETRIC_FUNCTIONS)
#: (min, max) argument counts of the ranking / offset functions
ARITY = {"row_number": (0, 0), "rank": (0, 0), "dense_rank": (0, 0), "ntile": (1, 1), "lag": (1, 3),
         "lead": (1, 3), "first_value": (1, 1), "last_value": (1, 1)}


def window_result_type(func: str, arg_types: list[pa.DataType]) -> pa.DataType:
    """The type of ``func(args) OVER (...)``: BIGINT for the rankings, the value's type for
    LAG / LEAD (unified with the default's), FIRST_VALUE and LAST_VALUE, and the aggregate
    rules for SUM / COUNT / AVG / MIN / MAX."""
    if func in ("row_number", "rank", "dense_rank", "ntile"):
        return INT
    if func in ("lag", "lead"):
        types = [arg_types[0]] + ([arg_types[2]] if len(arg_types) > 2 else [])
        try:
            return common_type(types, f"{func.upper()} value and default")
        except TypeError as exc:
            raise SQLSemanticError(str(exc), hint="CAST the default to the value's type.")
    if func in ("first_value", "last_value"):
        return arg_types[0]
    return aggregate_result_type(func, arg_types[0] if arg_types else None)


# ---------------------------------------------------------------------------- partitions

def partition_order(partition: list[list], order: list[list], descending, nulls_first,
                    num_rows: int) -> list[list[int]]:
    """The partitions as lists of row indices in window order (partitions in order of first
    appearance)."""
    groups: dict[tuple, list[int]] = {}
    for i in range(num_rows):
        key = tuple(hash_key(col[i]) for col in partition)
        groups.setdefault(key, []).append(i)
    out = []
    for rows in groups.values():
        if order:
            sub = sort_indices([[col[i] for i in rows] for col in order], list(descending), list(nulls_first))
            rows = [rows[j] for j in sub]
        out.append(rows)
    return out


def _peer_key(order: list[list], i: int) -> tuple:
    return tuple(hash_key(col[i]) for col in order)


def _peer_bounds(rows: list[int], order: list[list]) -> tuple[list[int], list[int]]:
    """For each position in ``rows``: the positions of its first and last peer."""
    n = len(rows)
    first, last = [0] * n, [0] * n
    start = 0
    for p in range(1, n + 1):
        if p == n or _peer_key(order, rows[p]) != _peer_key(order, rows[start]):
            for q in range(start, p):
                first[q], last[q] = start, p - 1
            start = p
    return first, last


def _is_number(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _moved(cur, offset, sign: int):
    """``cur + sign * offset``: numbers add; a date or timestamp moves by an INTERVAL (as
    ``date + INTERVAL`` does, a DATE counting as midnight). None when that leaves the
    supported years: the bound is then beyond every value."""
    if isinstance(cur, datetime.date) and not isinstance(offset, pa.MonthDayNano):
        offset = pa.MonthDayNano([0, offset, 0])        # DATE keys: an integer offset counts days
    if not isinstance(offset, pa.MonthDayNano):
        return cur + sign * offset
    try:
        return dates.add_interval(dates.to_datetime(cur), offset, sign)
    except ExecutionError:
        return None


def _key(v):
    """``v`` comparable with a moved bound (a DATE as its midnight)."""
    return dates.to_datetime(v) if isinstance(v, datetime.date) else v


def _at_least(v, cur, offset, sign: int) -> bool:
    """``v >= cur + sign * offset``."""
    bound = _moved(cur, offset, sign)
    return sign < 0 if bound is None else _key(v) >= bound


def _at_most(v, cur, offset, sign: int) -> bool:
    """``v <= cur + sign * offset``."""
    bound = _moved(cur, offset, sign)
    return sign > 0 if bound is None else _key(v) <= bound


def _in_range(v, cur, offset, side: str, desc: bool) -> bool:
    """Whether key ``v`` is within the RANGE bound ``offset`` ``side`` of ``cur``."""
    if not _is_number(v):
        return False
    if desc:     # PRECEDING rows have larger keys in a descending order
        return _at_most(v, cur, offset, 1 if side == "preceding" else -1)
    return _at_least(v, cur, offset, -1 if side == "preceding" else 1)


def frame_bounds(call: WindowCall, rows: list[int], order: list[list]) -> list[tuple[int, int]]:
    """For each position in the partition ``rows``: the (first, last) positions of its frame;
    first > last means an empty frame."""
    n = len(rows)
    frame = call.frame
    first_peer, last_peer = _peer_bounds(rows, order)
    out = []
    for p in range(n):
        if frame.mode == "rows":
            s = _rows_bound(frame.start, p, n, "start")
            e = _rows_bound(frame.end, p, n, "end")
        else:
            s = _range_start(frame.start, p, rows, order, call, first_peer)
            e = _range_end(frame.end, p, rows, order, call, last_peer)
        out.append((max(s, 0), min(e, n - 1)))
    return out


def _rows_bound(bound, p: int, n: int, side: str) -> int:
    kind, k = bound
    if kind == "unbounded":
        return 0 if side == "start" else n - 1
    if kind == "current":
        return p
    return p - k if kind == "preceding" else p + k


def _range_start(bound, p, rows, order, call, first_peer) -> int:
    kind, k = bound
    if kind == "unbounded":
        return 0
    cur = order[0][rows[p]] if order else None
    if kind == "current" or not _is_number(cur):
        return first_peer[p]
    # first position whose key is within range (the keys are sorted, so it is contiguous)
    col, desc = order[0], call.descending[0]
    hits = [q for q in range(len(rows)) if _in_range(col[rows[q]], cur, k, kind, desc)]
    return hits[0] if hits else len(rows)


def _range_end(bound, p, rows, order, call, last_peer) -> int:
    kind, k = bound
    if kind == "unbounded":
        return len(rows) - 1
    cur = order[0][rows[p]] if order else None
    if kind == "current" or not _is_number(cur):
        return last_peer[p]
    col, desc = order[0], call.descending[0]
    # the end bound keeps rows up to the offset: v <= cur + k (ASC) for FOLLOWING, ...
    hits = [q for q in range(len(rows)) if _within_end(col[rows[q]], cur, k, kind, desc)]
    return hits[-1] if hits else -1


def _within_end(v, cur, offset, side: str, desc: bool) -> bool:
    """Whether key ``v`` is at or before the RANGE end bound ``offset`` ``side`` of ``cur``."""
    if not _is_number(v):
        return False
    if desc:
        return _at_least(v, cur, offset, 1 if side == "preceding" else -1)
    return _at_most(v, cur, offset, -1 if side == "preceding" else 1)


# ---------------------------------------------------------------------------- evaluation

def window_values(call: WindowCall, args: list[list], partition: list[list], order: list[list],
                  num_rows: int) -> list:
    """``call`` over the rows: one value per input row, in input row order.

    ``args`` are the argument columns (LAG / LEAD: value, then the default column if given;
    none for COUNT(*) and the rankings), ``partition`` and ``order`` the key columns.
    """
    if call.func not in WINDOW_FUNCTIONS:
        raise VelariaValueError(f"unknown window function: {call.func}")
    out: list = [None] * num_rows
    for rows in partition_order(partition, order, call.descending, call.nulls_first, num_rows):
        values = _partition_values(call, rows, args, order)
        for i, v in zip(rows, values):
            out[i] = v
    return out


def _partition_values(call: WindowCall, rows: list[int], args: list[list], order: list[list]) -> list:
    func, n = call.func, len(rows)
    if func == "row_number":
        return list(range(1, n + 1))
    if func in ("rank", "dense_rank"):
        first, _ = _peer_bounds(rows, order)
        if func == "rank":
            return [f + 1 for f in first]
        dense, out = 0, []
        for p in range(n):
            dense += first[p] == p
            out.append(dense)
        return out
    if func == "ntile":
        buckets = call.param
        size, extra = divmod(n, buckets)
        out = []
        for p in range(n):
            # the first `extra` buckets hold size + 1 rows
            if p < extra * (size + 1):
                out.append(p // (size + 1) + 1)
            else:
                out.append(extra + (p - extra * (size + 1)) // size + 1)
        return out
    if func in ("lag", "lead"):
        k = call.param if func == "lead" else -call.param
        value, default = args[0], (args[1] if len(args) > 1 else None)
        return [value[rows[p + k]] if 0 <= p + k < n else (default[rows[p]] if default is not None else None)
                for p in range(n)]
    bounds = frame_bounds(call, rows, order)
    if func in ("first_value", "last_value"):
        value = args[0]
        return [None if s > e else value[rows[s if func == "first_value" else e]] for s, e in bounds]
    agg = AggregateCall(type=call.type, func=func, arg=args[0] if args else None)
    column = args[0] if args else None
    out = []
    for s, e in bounds:
        state = _State(distinct=False)
        for p in range(s, e + 1):
            if column is None:
                state.count += 1            # COUNT(*)
            elif column[rows[p]] is not None:
                _accumulate(func, state, column[rows[p]])
        out.append(HashAggregator._result(agg, state))
    return out


def check_range_offset(order_types: list[pa.DataType], what: str, offsets=()) -> None:
    """RANGE with an offset needs exactly one ORDER BY key: a number with numeric offsets, or a
    DATE / TIMESTAMP with INTERVAL offsets (``offsets``: the frame's offsets, None for bounds
    without one)."""
    if len(order_types) != 1:
        raise SQLSemanticError(f"RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column ({what})",
                               hint="Use ROWS, or order by a single numeric column.")
    key = order_types[0]
    intervals = [isinstance(o, pa.MonthDayNano) for o in offsets if o is not None]
    if pa.types.is_date(key) or pa.types.is_timestamp(key):
        days = [pa.types.is_date(key) and isinstance(o, int) for o in offsets if o is not None]
        if not all(i or d for i, d in zip(intervals, days)):
            raise SQLSemanticError(f"RANGE offsets over a {type_name(key)} ORDER BY column must be intervals"
                                   + (" or whole days" if pa.types.is_date(key) else ""),
                                   hint="write e.g. RANGE BETWEEN INTERVAL '7 days' PRECEDING AND CURRENT ROW")
        return
    if not (is_numeric(key) or is_null(key)):
        raise SQLSemanticError(f"RANGE with offset PRECEDING/FOLLOWING needs a numeric, DATE or TIMESTAMP "
                               f"ORDER BY column, got {type_name(key)}", hint="Use ROWS, or order by a number.")
    if any(intervals):
        raise SQLSemanticError(f"an INTERVAL RANGE offset needs a DATE or TIMESTAMP ORDER BY column, "
                               f"got {type_name(key)}", hint="Use a numeric offset.")

