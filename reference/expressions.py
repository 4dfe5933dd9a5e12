"""Reference expression evaluator: a column-at-a-time walk over the typed IR.

``evaluate(expr, columns, num_rows, context)`` returns one Python list of ``num_rows`` values
(None = NULL) whose values fit ``expr.type``:

* ``Column`` -> the input list itself (callers must not mutate it);
* ``Literal`` -> ``[value] * num_rows`` (an int literal of a float type becomes a float);
* ``Call`` -> the operator or builtin of ``reference.functions`` applied row by row, with the
  NULL rules of that module;
* ``Cast`` -> ``functions.cast_value`` per value;
* ``Case`` -> branches are evaluated **only on the rows that reach them**: a row takes the
  first branch whose condition is exactly TRUE (NULL counts as not true), so
  ``CASE WHEN x <> '' THEN CAST(x AS INT) END`` never casts the empty string;
* ``AND`` / ``OR`` -> Kleene logic, the right operand evaluated only on the rows the left one
  does not decide (AND: left not FALSE; OR: left not TRUE), so a guard such as
  ``x <> '' AND CAST(x AS INT) > 0`` never casts the empty string either;
* ``InList`` -> SQL rules: NULL operand gives NULL; a match gives TRUE; no match gives NULL
  when an item is NULL, else FALSE; ``NOT IN`` negates that (NULL stays NULL);
* ``AggregateCall`` -> ``ExecutionError`` (aggregates are computed by ``reference.aggregate``).

``context`` is a :class:`~reference.functions.EvalContext`; pass the same one for every batch
of a query so that NOW()/TODAY()/UNIX_TIMESTAMP() are evaluated once per query. When it is
None, one is created per ``evaluate`` call.

Cost: every node is evaluated once per batch in O(num_rows) (CASE: O(num_rows) per branch),
so the walk is linear in the size of the tree times the number of rows.
"""
from __future__ import annotations

from typing import Sequence

import pyarrow.types as pat

from velaria.errors import ExecutionError
from velaria.plan.expr import AggregateCall, Call, Case, Cast, Column, Expr, InList, Literal, walk
from velaria.plan.types import is_floating

from . import decimals
from .decimals import cast_to_decimal
from .functions import EvalContext, cast_value, compare_values, get_function, to_string
from .predicates import and3, or3

__all__ = ["evaluate"]


def evaluate(expr: Expr, columns: Sequence[list], num_rows: int,
             context: EvalContext | None = None) -> list:
    """Evaluate ``expr`` over one batch given as a list of input columns."""
    if context is None:
        context = EvalContext.current()
    return _eval(expr, columns, num_rows, context)


def _conform(values: list, expr_type) -> list:
    """Integers in a float-typed result become floats (CASE/literal branches of mixed types)."""
    if is_floating(expr_type):
        return [float(v) if type(v) is int else v for v in values]
    return values


def _eval(expr: Expr, columns: Sequence[list], num_rows: int, ctx: EvalContext) -> list:
    if isinstance(expr, Column):
        return columns[expr.index]
    if isinstance(expr, Literal):
        value = expr.value
        if type(value) is int and is_floating(expr.type):
            value = float(value)
        return [value] * num_rows
    if isinstance(expr, Call):
        if expr.name in _SHORT_CIRCUIT and len(expr.args) == 2:
            return _eval_logic(expr, columns, num_rows, ctx)
        return _eval_call(expr, columns, num_rows, ctx)
    if isinstance(expr, Cast):
        values = _eval(expr.arg, columns, num_rows, ctx)
        if expr.target == "DECIMAL":          # the precision and scale live in the type
            return [cast_to_decimal(v, expr.type) for v in values]
        source = expr.arg.type
        return [cast_value(v, expr.target, source) for v in values]
    if isinstance(expr, Case):
        return _eval_case(expr, columns, num_rows, ctx)
    if isinstance(expr, InList):
        return _eval_in(expr, columns, num_rows, ctx)
    if isinstance(expr, AggregateCall):
        raise ExecutionError(f"aggregate {expr.func.upper()} cannot be evaluated as a scalar "
                             "expression; it must be planned as an aggregation")
    raise ExecutionError(f"cannot evaluate expression node {type(expr).__name__}")


def _eval_call(expr: Call, columns, num_rows, ctx) -> list:
    fn = get_function(expr.name)
    arg_columns = []
    for position, arg in enumerate(expr.args):
        values = _eval(arg, columns, num_rows, ctx)
        # float32 values print with float32 precision; only the type knows they are float32
        if pat.is_float32(arg.type) and (fn.string_args or (fn.first_arg_text and position == 0)):
            values = [to_string(v, arg.type) for v in values]
        arg_columns.append(values)
    result = fn.apply_columns(arg_columns, num_rows, ctx)
    if pat.is_decimal(expr.type):
        return decimals.check_fits(result, expr.type)
    if expr.name in _PICKS_AN_ARGUMENT:
        return _conform(result, expr.type)      # GREATEST(1.5, 2**53 + 1) picks the BIGINT
    return result


#: functions whose value is one of their arguments, of the arguments' common type
_PICKS_AN_ARGUMENT = {"greatest", "least"}

#: AND / OR: the left operand's value that decides the row without the right one
_SHORT_CIRCUIT = {"and": False, "or": True}


def _eval_logic(expr: Call, columns, num_rows, ctx) -> list:
    """AND / OR in Kleene logic with the right operand evaluated only where it matters.

    A row whose left value decides the result (FALSE for AND, TRUE for OR) keeps it; the right
    operand runs on the other rows alone, so an error it would raise on a decided row (a
    failing CAST, an overflow) is never raised -- the rows a guard excludes stay excluded."""
    decided = _SHORT_CIRCUIT[expr.name]
    combine = and3 if expr.name == "and" else or3
    left = _eval(expr.args[0], columns, num_rows, ctx)
    open_rows = [i for i, v in enumerate(left) if v is not decided]
    if len(open_rows) == num_rows:
        right = _eval(expr.args[1], columns, num_rows, ctx)
        return [combine(a, b) for a, b in zip(left, right)]
    result = list(left)
    if open_rows:
        needed = {node.index for node in walk(expr.args[1]) if isinstance(node, Column)}
        right = _eval(expr.args[1], _take(columns, open_rows, needed), len(open_rows), ctx)
        for i, b in zip(open_rows, right):
            result[i] = combine(left[i], b)
    return result


def _take(columns: Sequence[list], rows: list[int], needed: set[int]) -> list:
    """The input columns restricted to ``rows`` (only the ``needed`` ones are gathered)."""
    return [[col[i] for i in rows] if j in needed else None for j, col in enumerate(columns)]


def _eval_case(expr: Case, columns, num_rows, ctx) -> list:
    needed = {node.index for node in walk(expr) if isinstance(node, Column)}
    result: list = [None] * num_rows
    remaining = list(range(num_rows))          # rows not yet claimed by a branch
    for condition, value in expr.whens:
        if not remaining:
            break
        subset = _take(columns, remaining, needed)
        mask = _eval(condition, subset, len(remaining), ctx)
        chosen = [r for r, m in zip(remaining, mask) if m is True]
        if chosen:
            values = _eval(value, _take(columns, chosen, needed), len(chosen), ctx)
            for r, v in zip(chosen, values):
                result[r] = v
        remaining = [r for r, m in zip(remaining, mask) if m is not True]
    if expr.else_ is not None and remaining:
        values = _eval(expr.else_, _take(columns, remaining, needed), len(remaining), ctx)
        for r, v in zip(remaining, values):
            result[r] = v
    return _conform(result, expr.type)


def _eval_in(expr: InList, columns, num_rows, ctx) -> list:
    operand = _eval(expr.arg, columns, num_rows, ctx)
    items = [_eval(item, columns, num_rows, ctx) for item in expr.items]
    result = []
    for i, value in enumerate(operand):
        if value is None:
            result.append(None)
            continue
        answer = False
        for item in items:
            candidate = item[i]
            if candidate is None:
                answer = None
            elif compare_values(value, candidate) == 0:
                answer = True
                break
        result.append(answer if answer is None or not expr.negated else not answer)
    return result
