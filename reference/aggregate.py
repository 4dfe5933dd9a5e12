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
  ``ExecutionError`` that names the fix ``CAST(x AS DOUBLE)``; integer sums are exact), float64
  for float input, added in the float SUM order below.
* ``AVG(x)`` is float64: sum / count of the non-NULL values (integer sums are exact first).
* ``MIN(x)`` / ``MAX(x)`` keep the input type and use the ORDER BY order of ``sort.sort_key``
  (NaN is the greatest value); on ties the first value seen is kept.
* ``VAR_SAMP`` / ``VAR_POP`` (``VARIANCE`` = ``VAR_SAMP``) and ``STDDEV_SAMP`` /
  ``STDDEV_POP`` (``STDDEV`` = ``STDDEV_SAMP``) are float64 over the non-NULL values, folded
  with Welford's update in input order (``n += 1; d = x - mean; mean += d / n;
  m2 += d * (x - mean)``); the sample forms divide ``m2`` by ``n - 1`` (NULL below two values),
  the population forms by ``n`` (0.0 for a single value, even an infinite one); STDDEV is the
  square root.
* ``MEDIAN(x)`` is float64: the middle of the non-NULL values in ``sort_key`` order, or for an
  even count ``lo + (hi - lo) * 0.5`` of the two middle values (PERCENTILE_CONT(0.5);
  ``lo * 0.5 + hi * 0.5`` when one of them is infinite).
* ``QUANTILE_CONT(x, q)`` (``0 <= q <= 1``, a constant) is float64, interpolated as
  PERCENTILE_CONT: over the ``n`` non-NULL values in ``sort_key`` order, ``r = q * (n - 1)``;
  the value at ``floor(r)`` plus ``(r - floor(r))`` times the step to the value at ``ceil(r)``
  (MEDIAN is ``q = 0.5``).
* ``STRING_AGG(x, sep)`` is text: the non-NULL values joined with ``sep`` between them, in
  input order, or sorted by ``sort_key`` (stable) when the call carries ``ORDER BY`` on its
  argument.
* SUM / AVG / MIN / MAX / the variances / MEDIAN / QUANTILE_CONT / STRING_AGG of no non-NULL
  value are NULL. ``DISTINCT`` variants first drop duplicate values (``hash_key`` equality),
  keeping the first of each.

Float SUM order
---------------
Floating-point addition is not associative, so the order is part of the result. A float
SUM / AVG **without GROUP BY** adds its non-NULL values in ``SUM_LANES`` (16) interleaved
lanes: the k-th value (k = 0, 1, ... counting non-NULL values in input order, across all
``update`` calls) goes to lane ``k mod 16``; each lane starts at ``+0.0`` and adds its values
left to right; at the end the lanes are combined pairwise in a fixed tree
(``combine_lanes``: lanes (0+1), (2+3), ..., then those sums pairwise again, down to one).
This is the order a SIMD loop follows naturally (two 8-wide AVX-512 or four 4-wide AVX2
registers are exactly 16 lanes), so the accelerated twin computes it with vector adds and
gets the same bits on every dispatch level. Batch boundaries do not matter: the lane of a
value depends only on how many values came before it. (A sum of only ``-0.0`` values is
``+0.0``, as lanes start at ``+0.0``; NaN and infinities propagate as IEEE addition says.)
**Grouped** float sums (GROUP BY) keep the plain order: each group's values are added left to
right from ``+0.0`` in input order. A window SUM is a running sum, also left to right.

State (for streams, checkpoints and worker processes)
-----------------------------------------------------
* ``emit_updated()`` returns the current results of the groups that ``update``/``merge_state``
  touched since the previous ``emit_updated`` call, in group order, without changing any
  state: a stream emits these after every micro-batch.
* ``export_state(key_types)`` is the whole state as an Arrow table, one row per group in
  group order: the key columns ``k0, k1, ...`` (first values), then per aggregate ``i``:
  ``a{i}_count`` (int64: rows for COUNT(*), non-NULL values otherwise), ``a{i}_total`` for
  SUM/AVG (float64 for floating input, decimal128(38, 0) for integer input so no integer
  total is ever rounded; a float SUM / AVG without GROUP BY also has ``a{i}_lanes``, its 16
  lane sums, and its total is the lanes combined), ``a{i}_best`` for MIN/MAX (the argument type), ``a{i}_mean`` and
  ``a{i}_m2`` (float64) for the variances, ``a{i}_values`` (list of the argument type, input
  order) for MEDIAN, QUANTILE_CONT and STRING_AGG, and for DISTINCT variants only ``a{i}_seen`` (list of the distinct
  values, first-seen order).
* ``merge_state(table)`` folds an exported state in, as if its groups' rows had been
  ``update``-d here: counts and totals add (float totals add the partial totals, so a merged
  float SUM equals the single-pass SUM exactly only when no rounding occurs; lane sums add lane
  by lane, the incoming lane j onto lane ``(count + j) mod 16`` where ``count`` is the values
  already here, so each lane still holds the values whose position is that lane, and a merge
  into an empty aggregator restores the lanes exactly), MIN/MAX keep
  the better value (the current one on ties), variances combine with Chan's formula
  (``d = mean_b - mean_a; mean = mean_a + d * n_b / n; m2 = m2_a + m2_b + d * d * n_a * n_b / n``,
  so a merged variance equals the single pass up to rounding), value lists (MEDIAN,
  QUANTILE_CONT, STRING_AGG) concatenate, DISTINCT sets unite. New groups are appended in
  the table's row order. ``import_state(table)`` is ``merge_state`` into an empty aggregator
  (restoring a checkpoint), so ``update(a); update(b)`` equals ``merge_state(export(a));
  merge_state(export(b))`` and equals ``import_state(export(a)); update(b)``.
"""
from __future__ import annotations

import decimal
import math

from typing import Sequence

import pyarrow as pa

from velaria.errors import ExecutionError, SQLSemanticError, VelariaValueError
from velaria.plan.expr import AggregateCall
from velaria.plan.types import FLOAT, INT, is_floating, is_null, is_numeric, type_name

from . import decimals
from .decimals import is_decimal
from .distinct import hash_key
from .sort import sort_key

__all__ = ["AGGREGATE_FUNCTIONS", "AGGREGATE_ALIASES", "VARIANCE_FUNCTIONS", "VALUE_LIST_FUNCTIONS",
           "PARAMETRIC_FUNCTIONS", "aggregate_result_type", "quantile",
           "HashAggregator", "state_schema", "SUM_LANES", "lane_summed", "combine_lanes", "float_sum"]

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
VARIANCE_FUNCTIONS = ("var_samp", "var_pop", "stddev_samp", "stddev_pop")
#: the aggregates that keep every value until the end (their state is a list of values)
VALUE_LIST_FUNCTIONS = ("median", "quantile_cont", "string_agg")
#: the aggregates that take constant options (``AggregateCall.param``); not window functions
PARAMETRIC_FUNCTIONS = ("quantile_cont", "string_agg")
AGGREGATE_FUNCTIONS = ("count", "sum", "avg", "min", "max") + VARIANCE_FUNCTIONS + VALUE_LIST_FUNCTIONS
#: other spellings of the aggregates above
AGGREGATE_ALIASES = {"variance": "var_samp", "stddev": "stddev_samp", "listagg": "string_agg"}


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
    if func == "string_agg":
        if not (pa.types.is_string(arg_type) or pa.types.is_large_string(arg_type) or is_null(arg_type)):
            raise SQLSemanticError(f"STRING_AGG expects a text argument, got {type_name(arg_type)}",
                                   hint="use STRING_AGG(CAST(x AS VARCHAR), sep)")
        return pa.string()
    if func == "sum" and is_decimal(arg_type):        # exact, with the argument's scale
        return pa.decimal128(decimals.MAX_PRECISION, arg_type.scale)
    if not (is_numeric(arg_type) or is_null(arg_type)):
        raise SQLSemanticError(f"{func.upper()} expects a numeric argument, got {type_name(arg_type)}",
                               hint="use CAST(x AS DOUBLE) or CAST(x AS BIGINT)")
    if func != "sum" or is_floating(arg_type):
        return FLOAT
    return INT


SUM_LANES = 16


def lane_summed(agg: AggregateCall, num_keys: int) -> bool:
    """True when ``agg`` adds in the lane order (a float SUM / AVG without GROUP BY)."""
    return (num_keys == 0 and agg.func in ("sum", "avg") and agg.arg is not None
            and is_floating(agg.arg.type) and not is_decimal(agg.arg.type))    # decimals add exactly


def combine_lanes(lanes: Sequence[float]) -> float:
    """The lane sums combined pairwise: (0+1), (2+3), ... then again, down to one value."""
    t = [float(x) for x in lanes]
    while len(t) > 1:
        t = [t[2 * j] + t[2 * j + 1] for j in range(len(t) // 2)]
    return t[0]


def float_sum(values: Sequence[float]) -> float:
    """The float SUM of ``values`` (non-NULL, input order) in the specified lane order."""
    lanes = [0.0] * SUM_LANES
    for k, x in enumerate(values):
        lanes[k % SUM_LANES] += x
    return combine_lanes(lanes)


def state_schema(aggregates: Sequence[AggregateCall], key_types: Sequence[pa.DataType]) -> pa.Schema:
    """The Arrow schema of ``export_state`` for these aggregates and key types."""
    fields = [pa.field(f"k{j}", t) for j, t in enumerate(key_types)]
    for i, agg in enumerate(aggregates):
        arg_type = agg.arg.type if agg.arg is not None else None
        fields.append(pa.field(f"a{i}_count", pa.int64()))
        if agg.distinct and arg_type is not None:
            fields.append(pa.field(f"a{i}_seen", pa.list_(arg_type)))
        elif agg.func in ("sum", "avg"):
            total = FLOAT if arg_type is None or is_floating(arg_type) or is_null(arg_type) else _TOTAL_INT
            if arg_type is not None and is_decimal(arg_type):     # an exact decimal total
                total = pa.decimal128(decimals.MAX_PRECISION, arg_type.scale)
            fields.append(pa.field(f"a{i}_total", total))
            if lane_summed(agg, len(key_types)):
                fields.append(pa.field(f"a{i}_lanes", pa.list_(FLOAT)))
        elif agg.func in ("min", "max"):
            fields.append(pa.field(f"a{i}_best", arg_type))
        elif agg.func in VARIANCE_FUNCTIONS:
            fields += [pa.field(f"a{i}_mean", FLOAT), pa.field(f"a{i}_m2", FLOAT)]
        elif agg.func in VALUE_LIST_FUNCTIONS:
            fields.append(pa.field(f"a{i}_values", pa.list_(arg_type if arg_type is not None else FLOAT)))
    return pa.schema(fields)


_TOTAL_INT = pa.decimal128(38, 0)   # any int64 total of up to 2**63 rows fits exactly


class _State:
    """The running value of one aggregate in one group."""

    __slots__ = ("count", "total", "best", "seen", "mean", "m2", "values", "lanes")

    def __init__(self, distinct: bool, lanes: bool = False):
        self.count = 0          # rows (COUNT(*)) or non-NULL values
        self.total = 0          # SUM / AVG running sum (int stays int)
        self.lanes = [0.0] * SUM_LANES if lanes else None   # float SUM / AVG without GROUP BY
        self.best = None        # MIN / MAX so far
        self.seen = {} if distinct else None   # DISTINCT: hash_key -> first value
        self.mean = 0.0         # variances: Welford's running mean and sum of squared deviations
        self.m2 = 0.0
        self.values = []        # MEDIAN / QUANTILE_CONT / STRING_AGG: every value, input order


def _plus(total, value):
    """``total + value``; decimals add exactly (Python's default context keeps 28 digits)."""
    if isinstance(value, decimal.Decimal) or isinstance(total, decimal.Decimal):
        return decimals.add(total, value)
    return total + value


def _is_decimal_arg(agg: AggregateCall) -> bool:
    return agg.arg is not None and is_decimal(agg.arg.type)


def _accumulate(func: str, state: _State, value) -> None:
    """Fold one non-NULL ``value`` into ``state``."""
    if state.seen is not None:          # DISTINCT: remember the first of each value
        state.seen.setdefault(hash_key(value), value)
        return
    state.count += 1
    if func in VARIANCE_FUNCTIONS:
        delta = value - state.mean
        state.mean += delta / state.count
        state.m2 += delta * (value - state.mean)
    elif func in VALUE_LIST_FUNCTIONS:
        state.values.append(value)
    elif func in ("sum", "avg"):
        if state.lanes is not None:         # the float SUM order: value k goes to lane k mod 16
            state.lanes[(state.count - 1) % SUM_LANES] += value
        else:
            state.total = _plus(state.total, value)
    elif func == "min":
        if state.best is None or sort_key(value) < sort_key(state.best):
            state.best = value
    elif func == "max":
        if state.best is None or sort_key(value) > sort_key(state.best):
            state.best = value


def _variance(func: str, state: _State):
    n = state.count
    if func.endswith("_samp"):
        if n < 2:
            return None
        var = state.m2 / (n - 1)
    elif n == 1:
        var = 0.0           # one value does not vary, even an infinite one (m2 would be NaN)
    else:
        var = state.m2 / n
    return math.sqrt(var) if func.startswith("stddev") else var


def _median(values: list):
    """PERCENTILE_CONT(0.5) of ``values`` (non-empty) in ``sort_key`` order, as float."""
    ordered = sorted(values, key=sort_key)
    mid, odd = divmod(len(ordered), 2)
    if odd:
        return float(ordered[mid])
    lo, hi = float(ordered[mid - 1]), float(ordered[mid])
    if math.isinf(lo) or math.isinf(hi):
        return lo * 0.5 + hi * 0.5      # -inf and 0 give -inf (hi - lo would be inf - inf)
    return lo + (hi - lo) * 0.5


def quantile(values: list, q: float):
    """PERCENTILE_CONT(q) of ``values`` (non-empty) in ``sort_key`` order, as float: at rank
    ``r = q * (n - 1)``, the value at ``floor(r)`` plus the fraction ``r - floor(r)`` of the step
    to the next value. ``q = 0.5`` is :func:`_median`'s rule, which it calls (bit for bit)."""
    if q == 0.5:
        return _median(values)
    ordered = sorted(values, key=sort_key)
    rank = q * (len(ordered) - 1)
    below = math.floor(rank)
    frac = rank - below
    lo = float(ordered[below])
    if frac == 0.0:
        return lo
    hi = float(ordered[below + 1])
    if math.isinf(lo) or math.isinf(hi):
        return lo * (1.0 - frac) + hi * frac    # keeps inf - inf out of the step
    return lo + (hi - lo) * frac


def _string_agg(values: list, param) -> str:
    """The values joined by the separator; sorted first when the call carries an ORDER BY."""
    separator, order = param
    if order is not None:
        values = sorted(values, key=sort_key, reverse=order == "desc")
    return separator.join(values)


def _merge_variance(state: _State, n_b: int, mean_b: float, m2_b: float) -> None:
    """Fold another partial variance state (Chan et al.) into ``state`` (before its count grows)."""
    n_a = state.count
    if n_a == 0:
        state.mean, state.m2 = mean_b, m2_b
        return
    n = n_a + n_b
    delta = mean_b - state.mean
    state.mean = state.mean + delta * n_b / n
    state.m2 = state.m2 + m2_b + delta * delta * n_a * n_b / n


def _merge_lanes(state: _State, lanes: list | None, total: float) -> None:
    """Add another partial's lane sums (before ``state.count`` grows): its lane j lands on lane
    ``(count + j) mod 16``. A partial without lanes adds its total to the next value's lane."""
    if lanes is None:
        lanes = [float(total)] + [0.0] * (SUM_LANES - 1)
    if state.count == 0:
        state.lanes = [float(x) for x in lanes]
        return
    for j, x in enumerate(lanes):
        state.lanes[(state.count + j) % SUM_LANES] += x


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
        self._touched: set[int] = set()          # group ids updated since emit_updated()
        if num_keys == 0:
            self._group_id(())                 # a global aggregate always has its one group

    def _group_id(self, key_values: tuple) -> int:
        normal = tuple(hash_key(v) for v in key_values)
        gid = self._groups.get(normal)
        if gid is None:
            gid = len(self._keys)
            self._groups[normal] = gid
            self._keys.append(key_values)
            self._states.append([_State(a.distinct, lane_summed(a, self.num_keys)) for a in self.aggregates])
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
        self._touched.update(group_ids)
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
            folded = _State(distinct=False, lanes=state.lanes is not None)
            for value in state.seen.values():
                _accumulate(agg.func, folded, value)
            state = folded
        func = agg.func
        if func == "count":
            return state.count
        if state.count == 0:
            return None
        if state.lanes is not None:
            total = combine_lanes(state.lanes)
            return total if func == "sum" else total / state.count
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
            if isinstance(state.total, decimal.Decimal):
                return decimals.average(state.total, state.count)
            return state.total / state.count
        if func in VARIANCE_FUNCTIONS:
            return _variance(func, state)
        if func == "median":
            return _median(state.values)
        if func == "quantile_cont":
            return quantile(state.values, agg.param)
        if func == "string_agg":
            return _string_agg(state.values, agg.param)
        return state.best

    def finish(self) -> tuple[list[list], list[list]]:
        """Return ``(key columns, aggregate result columns)``, groups in first-appearance order."""
        key_columns = [[key[j] for key in self._keys] for j in range(self.num_keys)]
        results = [[self._result(agg, group[position]) for group in self._states]
                   for position, agg in enumerate(self.aggregates)]
        return key_columns, results

    def emit_updated(self) -> tuple[list[list], list[list]]:
        """``finish()``'s columns restricted to the groups touched since the previous call."""
        touched = sorted(self._touched)
        self._touched = set()
        key_columns = [[self._keys[g][j] for g in touched] for j in range(self.num_keys)]
        results = [[self._result(agg, self._states[g][position]) for g in touched]
                   for position, agg in enumerate(self.aggregates)]
        return key_columns, results

    def export_state(self, key_types: Sequence[pa.DataType]) -> pa.Table:
        """The whole state as an Arrow table (see the module docstring for the layout)."""
        return self._export(key_types, range(len(self._keys)))

    def take_updated_state(self, key_types: Sequence[pa.DataType]) -> pa.Table:
        """The state of the groups touched since the previous call (or ``emit_updated``), in
        ``export_state``'s layout, and those groups restart empty: each call returns the
        partial state of what was folded in since the one before, so merging the successive
        results equals the whole state. The groups keep their ids."""
        touched = sorted(self._touched)
        self._touched = set()
        table = self._export(key_types, touched)
        for gid in touched:
            self._states[gid] = [_State(a.distinct, lane_summed(a, self.num_keys)) for a in self.aggregates]
        return table

    def take_updated_partial(self, key_types: Sequence[pa.DataType], known: int) -> tuple[pa.Table, pa.Table]:
        """``take_updated_state`` by group id: ``(new keys, partial)``. ``new keys``: the key
        columns of the groups numbered from id ``known`` on (the receiver has the keys of the
        ids below); ``partial``: an ``id`` column (int64, the ids of the groups touched since
        the previous call, ascending), then their states in ``export_state``'s layout without
        the key columns. Those groups restart empty; ids never change, so a receiver maps each
        id once (``merge_partial``)."""
        schema = state_schema(self.aggregates, key_types)
        new = range(min(known, len(self._keys)), len(self._keys))
        new_keys = pa.table([pa.array([self._keys[g][j] for g in new], type=schema.field(j).type)
                             for j in range(self.num_keys)], schema=pa.schema(list(schema)[:self.num_keys]))
        touched = sorted(self._touched)
        table = self.take_updated_state(key_types)
        partial = table.select(table.column_names[self.num_keys:])
        return new_keys, partial.add_column(0, "id", pa.array(touched, type=pa.int64()))

    def merge_partial(self, new_keys: pa.Table, partial: pa.Table, id_map) -> list[int]:
        """Fold in a partial that another aggregator's ``take_updated_partial`` handed out, as
        ``merge_state`` would with its keys. ``id_map`` (None at first): the group id here of
        each sender id whose keys came before; ``new_keys`` continue it. Returns the map
        extended by ``new_keys`` (known keys keep their ids, others are numbered here)."""
        id_map = [] if id_map is None else [int(g) for g in id_map]
        columns = [new_keys.column(j).to_pylist() for j in range(self.num_keys)]
        if self.num_keys:
            id_map.extend(self._group_id(key) for key in zip(*columns))
        else:
            id_map = [0]                      # the global group
        gids = [id_map[i] for i in partial.column("id").to_pylist()]
        keys = [pa.array([self._keys[g][j] for g in gids], type=new_keys.schema.field(j).type)
                for j in range(self.num_keys)]
        state = partial.drop_columns(["id"])
        self.merge_state(pa.table(keys + state.columns, names=list(new_keys.column_names) + state.column_names))
        return id_map

    def _export(self, key_types: Sequence[pa.DataType], gids: Sequence[int]) -> pa.Table:
        """The state of groups ``gids`` as an Arrow table."""
        schema = state_schema(self.aggregates, key_types)
        columns: dict[str, list] = {f"k{j}": [self._keys[g][j] for g in gids] for j in range(self.num_keys)}
        for position in range(len(self.aggregates)):
            states = [self._states[g][position] for g in gids]
            prefix = f"a{position}_"
            columns[prefix + "count"] = [st.count for st in states]
            if prefix + "seen" in schema.names:
                columns[prefix + "seen"] = [list(st.seen.values()) for st in states]
            elif prefix + "total" in schema.names:
                exact = pa.types.is_decimal(schema.field(prefix + "total").type)
                if prefix + "lanes" in schema.names:
                    columns[prefix + "total"] = [combine_lanes(st.lanes) for st in states]
                    columns[prefix + "lanes"] = [list(st.lanes) for st in states]
                else:
                    columns[prefix + "total"] = [decimal.Decimal(st.total) if exact else float(st.total)
                                                 for st in states]
            elif prefix + "best" in schema.names:
                columns[prefix + "best"] = [st.best for st in states]
            elif prefix + "m2" in schema.names:
                columns[prefix + "mean"] = [float(st.mean) for st in states]
                columns[prefix + "m2"] = [float(st.m2) for st in states]
            elif prefix + "values" in schema.names:
                columns[prefix + "values"] = [list(st.values) for st in states]
        columns = [columns[name] for name in schema.names]
        return pa.table(columns, schema=schema)

    def merge_state(self, table: pa.Table) -> None:
        """Fold an exported state in (see the module docstring)."""
        names = table.column_names
        expected = [f"k{j}" for j in range(self.num_keys)]
        if names[:self.num_keys] != expected or any(not n.startswith("a") for n in names[self.num_keys:]):
            raise VelariaValueError(f"merge_state(): the state table's columns {names} do not match "
                                    f"an aggregator with {self.num_keys} keys and {len(self.aggregates)} aggregates")
        data = {n: table.column(n).to_pylist() for n in names}
        keys = list(zip(*[data[n] for n in expected])) if self.num_keys else [()] * table.num_rows
        for row, key in enumerate(keys):
            gid = self._group_id(key)
            self._touched.add(gid)
            for position, agg in enumerate(self.aggregates):
                st = self._states[gid][position]
                prefix = f"a{position}_"
                if prefix + "seen" in data:
                    for value in data[prefix + "seen"][row] or []:
                        st.seen.setdefault(hash_key(value), value)
                    st.count += data[prefix + "count"][row]
                    continue
                count = data[prefix + "count"][row]
                if st.lanes is not None and prefix + "total" in data and count:
                    _merge_lanes(st, data.get(prefix + "lanes", [None] * (row + 1))[row],
                                 data[prefix + "total"][row])
                elif prefix + "total" in data and count:
                    total = data[prefix + "total"][row]
                    if isinstance(total, decimal.Decimal) and not _is_decimal_arg(agg):
                        total = int(total)        # an integer total travels as DECIMAL(38, 0)
                    st.total = total if st.count == 0 else _plus(st.total, total)
                elif prefix + "best" in data and count:
                    _accumulate(agg.func, st, data[prefix + "best"][row])
                    st.count -= 1             # _accumulate counted the best value as one row
                elif prefix + "m2" in data and count:
                    _merge_variance(st, count, data[prefix + "mean"][row], data[prefix + "m2"][row])
                elif prefix + "values" in data:
                    st.values.extend(data[prefix + "values"][row] or [])
                st.count += count

    def import_state(self, table: pa.Table, updated: Sequence[int] | None = None) -> None:
        """Restore an exported state into this empty aggregator. ``updated``: the rows of
        ``table`` whose groups count as touched since the last emit (a state handed over
        mid-stream); None: a restored state is not news."""
        fresh = (not self._keys) if self.num_keys else all(
            st.count == 0 and not st.seen for st in self._states[0])
        if not fresh:
            raise VelariaValueError("import_state() needs an empty aggregator; use merge_state() to combine")
        self.merge_state(table)
        # a restored state is not news: nothing to emit yet (row i is group i: keys are unique)
        self._touched = set() if updated is None else {int(i) for i in updated}
