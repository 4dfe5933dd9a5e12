"""Reference hash aggregation: GROUP BY keys with COUNT / SUM / AVG / MIN / MAX.

Groups
------
* Rows with equal keys form one group; key equality is the one of ``distinct.hash_key``:
  NULL keys form one group (NULL == NULL for grouping), ``-0.0`` and ``0.0`` are one group, all
  NaNs are one group. A key column has one type, so ``1`` and ``1.0`` never meet.
* Groups come out in **first-appearance order** (the order in which their first row was seen,
  across all ``update`` calls). Each output key is the value of the group's first row, with its
  type unchanged.
* A global aggregate (``num_keys == 0``) returns exactly one row, even for empty input
  (COUNT = 0, the others NULL) -- the SQL standard. Native Velaria returns zero rows there.

Aggregates
----------
* ``COUNT(*)`` counts rows; ``COUNT(x)`` counts non-NULL values; ``COUNT(DISTINCT x)`` counts
  distinct non-NULL values. Result int64, never NULL.
* ``SUM(x)`` skips NULLs; int64 for integer input (an out-of-range total raises
  ``ExecutionError`` that names the fix ``CAST(x AS DOUBLE)``), float64 for float input, added
  left to right in input order.
* ``AVG(x)`` is float64: sum / count of the non-NULL values (integer sums are exact first).
* ``MIN(x)`` / ``MAX(x)`` keep the input type and use the ORDER BY order of ``sort.sort_key``
  (NaN is the greatest value); on ties the first value seen is kept.
* SUM / AVG / MIN / MAX of no non-NULL value is NULL. ``DISTINCT`` variants first drop
  duplicate values (``hash_key`` equality), keeping the first of each.
"""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from velaria.errors import ExecutionError, SQLSemanticError, VelariaValueError
from velaria.plan.expr import AggregateCall
from velaria.plan.types import FLOAT, INT, is_floating, is_null, is_numeric, type_name

from .distinct import hash_key
from .sort import sort_key

__all__ = ["AGGREGATE_FUNCTIONS", "aggregate_result_type", "HashAggregator"]

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
AGGREGATE_FUNCTIONS = ("count", "sum", "avg", "min", "max")


def aggregate_result_type(func: str, arg_type: pa.DataType | None) -> pa.DataType:
    """The result type of ``func(arg)`` (``arg_type`` None for ``COUNT(*)``).

    COUNT -> int64; SUM -> int64 for integer input, float64 for float input; AVG -> float64;
    MIN/MAX -> the argument type. SUM/AVG of a non-numeric type is a ``SQLSemanticError``.
    """
    func = func.lower()
    if func not in AGGREGATE_FUNCTIONS:
        raise SQLSemanticError(f"unknown aggregate function: {func}")
    if func == "count":
        return INT
    if arg_type is None:
        raise SQLSemanticError(f"{func.upper()}(*) is not valid; only COUNT(*) takes *")
    if func in ("min", "max"):
        return arg_type
    if not (is_numeric(arg_type) or is_null(arg_type)):
        raise SQLSemanticError(f"{func.upper()} expects a numeric argument, got {type_name(arg_type)}",
                               hint="use CAST(x AS DOUBLE) or CAST(x AS BIGINT)")
    if func == "avg" or is_floating(arg_type):
        return FLOAT
    return INT


class _State:
    """The running value of one aggregate in one group."""

    __slots__ = ("count", "total", "best", "seen")

    def __init__(self, distinct: bool):
        self.count = 0          # rows (COUNT(*)) or non-NULL values
        self.total = 0          # SUM / AVG running sum (int stays int)
        self.best = None        # MIN / MAX so far
        self.seen = {} if distinct else None   # DISTINCT: hash_key -> first value


def _accumulate(func: str, state: _State, value) -> None:
    """Fold one non-NULL ``value`` into ``state``."""
    if state.seen is not None:          # DISTINCT: remember the first of each value
        state.seen.setdefault(hash_key(value), value)
        return
    state.count += 1
    if func in ("sum", "avg"):
        state.total = state.total + value
    elif func == "min":
        if state.best is None or sort_key(value) < sort_key(state.best):
            state.best = value
    elif func == "max":
        if state.best is None or sort_key(value) > sort_key(state.best):
            state.best = value


class HashAggregator:
    """Group rows by key and compute aggregates; ``update`` once per batch, then ``finish``."""

    def __init__(self, aggregates: Sequence[AggregateCall], num_keys: int):
        self.aggregates = list(aggregates)
        for agg in self.aggregates:
            if agg.func not in AGGREGATE_FUNCTIONS:
                raise VelariaValueError(f"unknown aggregate function: {agg.func}")
        self.num_keys = num_keys
        self._groups: dict[tuple, int] = {}     # normalised key -> group id
        self._keys: list[tuple] = []            # group id -> first key values
        self._states: list[list[_State]] = []   # group id -> one state per aggregate
        if num_keys == 0:
            self._group_id(())                 # a global aggregate always has its one group

    def _group_id(self, key_values: tuple) -> int:
        normal = tuple(hash_key(v) for v in key_values)
        gid = self._groups.get(normal)
        if gid is None:
            gid = len(self._keys)
            self._groups[normal] = gid
            self._keys.append(key_values)
            self._states.append([_State(a.distinct) for a in self.aggregates])
        return gid

    def update(self, key_columns: list[list], arg_columns: list[list | None],
               num_rows: int | None = None) -> None:
        """Add one batch. ``arg_columns`` has one column per aggregate (None for COUNT(*)).

        ``num_rows`` is needed only when no column is given (a global ``COUNT(*)``).
        """
        if len(key_columns) != self.num_keys or len(arg_columns) != len(self.aggregates):
            raise VelariaValueError("update() got a different number of key or argument columns "
                                    "than the aggregator was built for")
        if num_rows is None:
            present = [c for c in list(key_columns) + list(arg_columns) if c is not None]
            if not present:
                raise VelariaValueError("update() needs num_rows when no column is given")
            num_rows = len(present[0])
        if self.num_keys:
            group_ids = [self._group_id(key) for key in zip(*key_columns)]
        else:
            group_ids = [0] * num_rows
        for position, (agg, column) in enumerate(zip(self.aggregates, arg_columns)):
            states = [group[position] for group in self._states]
            if column is None:              # COUNT(*)
                for gid in group_ids:
                    states[gid].count += 1
                continue
            for gid, value in zip(group_ids, column):
                if value is not None:
                    _accumulate(agg.func, states[gid], value)

    @staticmethod
    def _result(agg: AggregateCall, state: _State):
        if state.seen is not None:          # DISTINCT: fold the distinct values in now
            folded = _State(distinct=False)
            for value in state.seen.values():
                _accumulate(agg.func, folded, value)
            state = folded
        func = agg.func
        if func == "count":
            return state.count
        if state.count == 0:
            return None
        if func == "sum":
            total = state.total
            if type(total) is int:
                if not INT64_MIN <= total <= INT64_MAX:
                    raise ExecutionError(f"SUM overflow: the total {total} does not fit in BIGINT "
                                         "(int64); use SUM(CAST(x AS DOUBLE))")
                if is_floating(agg.type):
                    total = float(total)
            return total
        if func == "avg":
            return state.total / state.count
        return state.best

    def finish(self) -> tuple[list[list], list[list]]:
        """Return ``(key columns, aggregate result columns)``, groups in first-appearance order."""
        key_columns = [[key[j] for key in self._keys] for j in range(self.num_keys)]
        results = [[self._result(agg, group[position]) for group in self._states]
                   for position, agg in enumerate(self.aggregates)]
        return key_columns, results
