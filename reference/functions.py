"""Scalar builtins and operators: the executable specification of every ``Call`` in the IR.

Each function is a :class:`ScalarFunction` with its arity (and the exact upstream arity
message), a plan-time type rule (``result_type``) and a per-row implementation (``apply``).

Registries
----------
* :data:`SCALAR_FUNCTIONS` -- the SQL builtins of Velaria SQL, keyed by lower-case
  name, aliases included (``len``, ``char_length``, ``character_length`` -> ``length``;
  ``btrim`` -> ``trim``; ``substring`` -> ``substr``; ``current_timestamp`` -> ``now``;
  ``current_date`` -> ``today``; ``iso_week`` -> ``week``). An alias entry has the canonical
  ``name`` (what the planner puts in ``Call.name``) and its own ``base_name`` (the default
  output column name base, e.g. ``iso_week_1``). :func:`resolve_function` applies the upstream
  name resolution (lower-case, strip ``schema.`` and ``velaria_``).
* :data:`OPERATORS` -- ``+ - * / %``, ``neg``, ``= != < <= > >=``, ``and or not``,
  ``is_null is_not_null``, ``like``, ``concat_op`` (``||``). Not callable by name from SQL.

NULL rule
---------
Unless noted, any NULL argument gives NULL. Exceptions: ``and``/``or``/``not`` use Kleene
logic (see ``predicates``), ``is_null``/``is_not_null`` never return NULL, and
``CONCAT_WS`` follows upstream: a NULL anywhere, separator included, gives NULL.

Types
-----
* Arithmetic: integer op integer -> int64 (overflow of int64 raises ``ExecutionError``);
  any float -> float64; ``/`` always returns float64 (DuckDB semantics). Division or ``%`` by
  zero gives NULL. ``%`` takes the sign of the dividend (truncated, as in C and DuckDB).
* Comparisons: numbers compare by value across int/float; strings by code point; ``false <
  true``; dates/timestamps chronologically (a string compared with a timestamp is parsed with
  the date-text rules of :func:`_parse_timestamp_ms`); vectors by length, then element-wise.
  NaN equals NaN and is greater than
  every number (the ORDER BY order). Comparing other families is a plan-time
  ``SQLSemanticError`` naming both types.
* String builtins convert non-string arguments with :func:`to_string`; ABS/CEIL/FLOOR/ROUND
  return float64; LENGTH, POSITION and the date fields return int64; NOW/TODAY return strings.

Choices that differ from native Velaria (see docs/divergences.md)
------------------------------------------------------------------
* LENGTH, SUBSTR, LEFT, RIGHT, POSITION and REVERSE count Unicode characters (code points),
  not UTF-8 bytes; LOWER/UPPER are Unicode-aware (Python ``str.lower``/``str.upper``).
* ``to_string`` of a double is Python ``repr`` (shortest round-trip: ``0.1`` -> ``'0.1'``,
  ``3.0`` -> ``'3.0'``, ``-0.0`` -> ``'-0.0'``, ``1e+20``), not ``%.17g``; float32 values and
  vector elements use the shortest text that round-trips through float32.
* A string argument where a number is required (ABS, ROUND, the length of LEFT, ...) is a
  plan-time ``SQLSemanticError`` (``computed function argument must be numeric``) instead of
  a run-time ``stod``/``stoll`` error; use ``CAST``.
* ``CAST('abc' AS INT)`` raises ``ExecutionError("cannot cast 'abc' to INT")`` (upstream:
  ``stoll``). A decimal text such as ``'3.7'`` truncates toward zero to 3, as upstream does;
  other trailing text is an error. ``CAST(TRUE AS INT)`` is 1.
* Comparisons follow SQL three-valued logic on every path (NULL op x is NULL).
* Strings parsed as timestamps keep fractional seconds (``.700`` -> 700 ms); upstream drops
  them. It does not change any date builtin's result; it only matters for comparisons.
"""
from __future__ import annotations

import functools
import math
import re
import struct
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

import pyarrow as pa
import pyarrow.types as pat

from velaria.errors import ExecutionError, SQLSemanticError, SQLSyntaxError
from velaria.plan.types import (BOOL, FLOAT, INT, STRING, common_type, family, is_bool,
                                is_floating, is_integer, is_null, is_numeric, is_string,
                                is_temporal, is_vector, type_name)

from . import decimals
from . import dates as _dates
from .predicates import and3, not3, or3
from .sort import sort_key

__all__ = [
    "EvalContext", "ScalarFunction", "SCALAR_FUNCTIONS", "OPERATORS", "CAST_TARGETS",
    "resolve_function", "get_function", "binary_result_type", "cast_result_type",
    "cast_value", "to_string", "to_epoch_ms", "compare_values", "INT64_MIN", "INT64_MAX",
    "round_scale", "regex", "replacement_template",
]

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_C_WHITESPACE = " \t\n\v\f\r"


# --------------------------------------------------------------------------------------------
# The registry entry and the per-query context
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalContext:
    """Per-execution values. ``now`` (an aware UTC datetime) is one clock reading.

    What NOW(), TODAY() and UNIX_TIMESTAMP() mean: a batch query reads the clock once, so
    every row of every batch sees the same instant. A long-running stream query reads it once
    per micro-batch (the stream driver takes a new reading before each batch), so every row
    of one micro-batch sees the same instant and later batches see later instants -- the
    value a row gets is the time its batch was processed, not the time the query started.
    """

    now: datetime

    @classmethod
    def current(cls) -> "EvalContext":
        """A context whose ``now`` is the current UTC time, truncated to milliseconds."""
        now = datetime.now(timezone.utc)
        return cls(now=now.replace(microsecond=now.microsecond // 1000 * 1000))


@dataclass(frozen=True)
class ScalarFunction:
    """One scalar builtin or operator.

    ``impl`` receives the argument values of one row (plus the :class:`EvalContext` first when
    ``needs_context``). With ``null_propagating`` (the default) it is never called with a NULL:
    :meth:`apply` returns NULL instead. With ``string_args`` every argument is converted with
    :func:`to_string` before ``impl`` sees it.
    """

    name: str
    min_args: int
    max_args: int | None           # None: no upper bound
    arity_message: str
    type_rule: Callable[[list], pa.DataType]
    impl: Callable[..., Any]
    base_name: str = ""
    deterministic: bool = True
    needs_context: bool = False
    null_propagating: bool = True
    string_args: bool = False       # every argument is text (converted with to_string)
    first_arg_text: bool = False    # only the first argument is text (LEFT, RIGHT, SUBSTR)

    def __post_init__(self):
        if not self.base_name:
            object.__setattr__(self, "base_name", self.name)

    def check_arity(self, n: int) -> None:
        """Raise ``SQLSemanticError(arity_message)`` unless ``n`` arguments are accepted."""
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            raise SQLSemanticError(self.arity_message)

    def result_type(self, arg_types: list) -> pa.DataType:
        """The Arrow type of the result for ``arg_types`` (checks arity and argument types)."""
        self.check_arity(len(arg_types))
        return self.type_rule(list(arg_types))

    def apply(self, *values, context: EvalContext | None = None):
        """Evaluate one row."""
        if self.string_args:
            values = tuple(to_string(v) for v in values)
        if self.null_propagating and any(v is None for v in values):
            return None
        if self.needs_context:
            return self.impl(context or EvalContext.current(), *values)
        return self.impl(*values)

    def apply_columns(self, columns: list[list], num_rows: int,
                      context: EvalContext | None = None) -> list:
        """Evaluate a whole batch: ``columns`` holds one list per argument."""
        impl = self.impl
        if self.needs_context:
            ctx = context or EvalContext.current()
            impl = functools.partial(self.impl, ctx)
        if not columns:
            return [impl()] * num_rows  # NOW(), TODAY(): one value for the whole query
        if self.string_args:
            columns = [[to_string(v) for v in col] if any(type(v) is not str and v is not None
                                                        for v in col) else col
                       for col in columns]
        if not self.null_propagating:
            return [impl(*row) for row in zip(*columns)]
        if len(columns) == 1:
            return [None if v is None else impl(v) for v in columns[0]]
        if len(columns) == 2:
            return [None if a is None or b is None else impl(a, b)
                    for a, b in zip(columns[0], columns[1])]
        return [None if None in row else impl(*row) for row in zip(*columns)]


# --------------------------------------------------------------------------------------------
# Value conversions: text, numbers, timestamps
# --------------------------------------------------------------------------------------------

def _float32_text(x: float) -> str:
    """Shortest text that reads back as the same float32 value, in Python ``repr`` style."""
    if math.isnan(x) or math.isinf(x):
        return repr(x)
    for digits in range(1, 10):
        text = f"{x:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == x:
            return repr(float(text))
    return repr(x)


def _format_timestamp(dt: datetime) -> str:
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    us = dt.microsecond
    if us % 1000:
        return f"{text}.{us:06d}"
    return f"{text}.{us // 1000:03d}" if us else text


def _format_interval(value) -> str:
    """``1 year 2 months 3 days 04:05:06.5`` (DuckDB's text of an interval)."""
    months, days, nanos = value
    parts = []
    years, months = int(months / 12), months - int(months / 12) * 12
    for n, unit in ((years, "year"), (months, "month"), (days, "day")):
        if n:
            parts.append(f"{n} {unit}{'' if abs(n) == 1 else 's'}")
    micros = nanos // 1000
    if micros or not parts:
        sign = "-" if micros < 0 else ""
        seconds, us = divmod(abs(micros), 1_000_000)
        clock = f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        parts.append(clock + (f".{us:06d}".rstrip("0") if us else ""))
    return " ".join(parts)


def to_string(value, type: pa.DataType | None = None) -> str | None:
    """The text of a value, used by string builtins, ``||`` and ``CAST(x AS STRING)``.

    NULL stays NULL; booleans are ``true``/``false``; integers decimal; doubles Python ``repr``
    (``float32`` values -- pass ``type`` -- and vector elements: shortest float32 text);
    vectors ``[0.9,0.1,0.0]``; dates ``YYYY-MM-DD``; timestamps ``YYYY-MM-DDTHH:MM:SS`` plus
    ``.mmm`` when the milliseconds are non-zero (``.ffffff`` when the microseconds are),
    zoned ones in UTC; intervals ``1 year 2 months 3 days 04:05:06.5``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimals.to_text(value)
    if isinstance(value, float):
        if type is not None and pat.is_float32(type):
            return _float32_text(value)
        return repr(value)
    if isinstance(value, pa.MonthDayNano):
        return _format_interval(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join("null" if v is None else _float32_text(float(v)) for v in value) + "]"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return _format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?)?")


def _parse_timestamp_ms(text: str) -> int:
    """Date text: empty -> 0; all digits -> epoch ms; else ``Y-m-d[(T| )H:M:S[.fff]]`` in UTC,
    trailing text ignored; otherwise ``ExecutionError('unsupported timestamp format: ...')``."""
    if text == "":
        return 0
    if text.isascii() and text.isdigit():
        return int(text)
    m = _TIMESTAMP_RE.match(text)
    if m is None:
        raise ExecutionError(f"unsupported timestamp format: {text}")
    y, mo, d, hh, mm, ss, frac = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0),
                      tzinfo=timezone.utc)
    except ValueError:
        raise ExecutionError(f"unsupported timestamp format: {text}") from None
    ms = int((frac or "0").ljust(3, "0")[:3])
    return (dt - _EPOCH) // timedelta(milliseconds=1) + ms


def to_epoch_ms(value) -> int | None:
    """Epoch milliseconds of a date-function argument; NULL stays NULL.

    Numbers are milliseconds (floats truncate toward zero); strings are parsed; ``date`` is
    midnight UTC; a naive ``datetime`` is read as UTC.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ExecutionError(f"unsupported timestamp format: {to_string(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExecutionError(f"unsupported timestamp format: {to_string(value)}")
        return int(value)
    if isinstance(value, str):
        return _parse_timestamp_ms(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, date):
        return (value - date(1970, 1, 1)).days * 86_400_000
    raise ExecutionError(f"unsupported timestamp format: {value!r}")


def _datetime_of(value) -> datetime:
    ms = to_epoch_ms(value)
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ExecutionError(f"timestamp out of range: {ms} ms") from None


def _check_int64(result: int, what: str) -> int:
    if INT64_MIN <= result <= INT64_MAX:
        return result
    raise ExecutionError(f"BIGINT overflow: {what} does not fit in int64; "
                         "use CAST(x AS DOUBLE) to compute in floating point")


def _as_integer(value, what: str) -> int:
    """An integer argument (lengths and positions): numbers truncate toward zero."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExecutionError(f"{what}: {value!r} is not a valid integer")
        return int(value)
    return int(value)


# --------------------------------------------------------------------------------------------
# Plan-time type rules
# --------------------------------------------------------------------------------------------

def _numeric_error(fn: str, t: pa.DataType) -> SQLSemanticError:
    return SQLSemanticError("computed function argument must be numeric",
                            hint=f"{fn} got {type_name(t)}; use CAST(x AS DOUBLE) or CAST(x AS BIGINT)")


def _returns(result: pa.DataType) -> Callable[[list], pa.DataType]:
    """Any argument types (string builtins convert with to_string)."""
    return lambda types: result


def _string_then_integers(fn: str) -> Callable[[list], pa.DataType]:
    """First argument converted to text, the others must be numbers (LEFT, RIGHT, SUBSTR)."""
    def rule(types):
        for t in types[1:]:
            if not (is_numeric(t) or is_null(t)):
                raise _numeric_error(fn, t)
        return STRING
    return rule


def _numeric_to_double(fn: str) -> Callable[[list], pa.DataType]:
    def rule(types):
        t = types[0]
        if not (is_numeric(t) or is_bool(t) or is_null(t)):
            raise _numeric_error(fn, t)
        return FLOAT
    return rule


def _date_rule(result: pa.DataType, fn: str) -> Callable[[list], pa.DataType]:
    def rule(types):
        for t in types:
            if not (is_string(t) or is_numeric(t) or is_null(t)
                    or (is_temporal(t) and not pat.is_interval(t))):
                raise SQLSemanticError(f"{fn} expects a timestamp, date, string or epoch-millisecond "
                                       f"argument, got {type_name(t)}",
                                       hint="use CAST(x AS VARCHAR) with a 'YYYY-MM-DD HH:MM:SS' text")
        return result
    return rule


def _arith_rule(op: str) -> Callable[[list], pa.DataType]:
    def rule(types):
        fams = [family(t) for t in types]
        for f in fams:
            if not (is_numeric(f) or is_null(f)):
                names = " and ".join(type_name(x) for x in fams)
                raise SQLSemanticError(f"operator {op} is not defined for {names}",
                                       hint="arithmetic needs numbers; use CAST(x AS BIGINT) or CAST(x AS DOUBLE)")
        if op == "/" or any(is_floating(f) for f in fams):
            return FLOAT
        return INT
    return rule


def _round_rule(types):
    _numeric_to_double("ROUND")(types)
    if len(types) > 1 and not (is_integer(types[1]) or is_null(types[1])):
        raise SQLSemanticError("ROUND precision must be an integer",
                               hint=f"ROUND(x, n) got n of type {type_name(types[1])}; write a whole number such as 2")
    return FLOAT


def _bitwise_rule(op: str) -> Callable[[list], pa.DataType]:
    def rule(types):
        for t in types:
            if not (is_integer(t) or is_null(t)):
                names = " and ".join(type_name(family(x)) for x in types)
                raise SQLSemanticError(f"operator {op} is not defined for {names}",
                                       hint="bitwise operators need integers; use CAST(x AS BIGINT)")
        return INT
    return rule


def _common_rule(fn: str) -> Callable[[list], pa.DataType]:
    """GREATEST / LEAST: the arguments' common type (int and float give DOUBLE)."""
    def rule(types):
        try:
            result = common_type(types, f"{fn} arguments")
        except TypeError as exc:
            raise SQLSemanticError(str(exc), hint="CAST the arguments to one type") from None
        if is_vector(result):
            raise SQLSemanticError(f"{fn} does not accept vectors")
        return result
    return rule


def _comparable(a: pa.DataType, b: pa.DataType) -> bool:
    if is_null(a) or is_null(b):
        return True
    if is_numeric(a) and is_numeric(b):
        return True
    if (is_string(a) and is_string(b)) or (is_bool(a) and is_bool(b)):
        return True
    if is_vector(a) and is_vector(b):
        return True
    if pat.is_interval(a) or pat.is_interval(b):
        return pat.is_interval(a) and pat.is_interval(b)
    if is_temporal(a) and (is_temporal(b) or is_string(b)):
        return True
    return is_string(a) and is_temporal(b)


def _comparison_rule(op: str) -> Callable[[list], pa.DataType]:
    def rule(types):
        a, b = family(types[0]), family(types[1])
        if not _comparable(a, b):
            raise SQLSemanticError(f"cannot compare {type_name(a)} with {type_name(b)} ({op})",
                                   hint="compare values of one type; use CAST(x AS VARCHAR), "
                                        "CAST(x AS BIGINT) or CAST(x AS DOUBLE) on one side")
        return BOOL
    return rule


def _logic_rule(op: str) -> Callable[[list], pa.DataType]:
    def rule(types):
        for t in types:
            if not (is_bool(t) or is_null(t)):
                raise SQLSemanticError(f"{op.upper()} expects BOOLEAN operands, got {type_name(t)}",
                                       hint="write a comparison, e.g. x <> 0")
        return BOOL
    return rule


# --------------------------------------------------------------------------------------------
# Implementations: strings
# --------------------------------------------------------------------------------------------

def _substr(s: str, start, length=None) -> str:
    start = max(_as_integer(start, "SUBSTR start"), 1)
    if start > len(s):
        return ""
    if length is None:
        return s[start - 1:]
    length = _as_integer(length, "SUBSTR length")
    if length <= 0:
        return ""
    return s[start - 1:start - 1 + length]


def _left(s: str, n) -> str:
    n = _as_integer(n, "LEFT length")
    return s[:n] if n > 0 else ""


def _right(s: str, n) -> str:
    n = _as_integer(n, "RIGHT length")
    return s[-n:] if n > 0 else ""


def _replace(s: str, old: str, new: str) -> str:
    return s if old == "" else s.replace(old, new)


def _like(s: str, pattern: str) -> bool:
    """``s LIKE pattern``: LIKE ... ESCAPE with escaping off."""
    return _like_escape_regex(pattern, "").fullmatch(s) is not None


# --------------------------------------------------------------------------------------------
# Implementations: numbers
# --------------------------------------------------------------------------------------------

def _round_half_away(x: float) -> float:
    """ROUND: half away from zero (2.5 -> 3.0, -2.5 -> -3.0); NaN and infinities unchanged."""
    x = float(x)
    if not math.isfinite(x):
        return x
    if x < 0:
        return -_round_half_away(-x)
    r = math.floor(x)
    return float(r + 1 if x - r >= 0.5 else r)


def _ceil(x) -> float:
    x = float(x)
    return x if not math.isfinite(x) else float(math.ceil(x))


def _floor(x) -> float:
    x = float(x)
    return x if not math.isfinite(x) else float(math.floor(x))


def _add(a, b):
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return decimals.add(a, b)
    r = a + b
    return _check_int64(r, f"{a} + {b}") if type(r) is int else r


def _sub(a, b):
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return decimals.sub(a, b)
    r = a - b
    return _check_int64(r, f"{a} - {b}") if type(r) is int else r


def _mul(a, b):
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return decimals.mul(a, b)
    r = a * b
    return _check_int64(r, f"{a} * {b}") if type(r) is int else r


def _div(a, b):
    return None if b == 0 else float(a) / float(b)


def _mod(a, b):
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return decimals.mod(a, b)
    if b == 0:
        return None
    if type(a) is int and type(b) is int:
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    try:
        return math.fmod(a, b)
    except ValueError:  # fmod(inf, y)
        return math.nan


def _neg(a):
    return _check_int64(-a, f"-({a})") if type(a) is int else -a


# --------------------------------------------------------------------------------------------
# Implementations: comparisons
# --------------------------------------------------------------------------------------------

def compare_values(a, b) -> int:
    """-1, 0 or 1 for two non-NULL values of comparable types (the ORDER BY order).

    Dates and timestamps (and a string compared with one) compare as epoch microseconds;
    intervals by their length with a month of 30 days.
    """
    if isinstance(a, date) or isinstance(b, date):
        a, b = _dates.epoch_us(a), _dates.epoch_us(b)
    elif isinstance(a, pa.MonthDayNano):
        a, b = _dates.interval_us(a), _dates.interval_us(b)
    ka, kb = sort_key(a), sort_key(b)
    return (ka > kb) - (ka < kb)


# --------------------------------------------------------------------------------------------
# Implementations: dates and the clock
# --------------------------------------------------------------------------------------------

def _now(ctx: EvalContext) -> str:
    return _format_timestamp(ctx.now.astimezone(timezone.utc))


def _today(ctx: EvalContext) -> str:
    return ctx.now.astimezone(timezone.utc).strftime("%Y-%m-%d")


def _unix_timestamp(ctx: EvalContext, value=None) -> int:
    ms = to_epoch_ms(ctx.now) if value is None else to_epoch_ms(value)
    return -(-ms // 1000) if ms < 0 else ms // 1000  # truncate toward zero, as C++ does


def _unix_timestamp_apply(ctx: EvalContext, *values):
    if values and values[0] is None:
        return None
    return _unix_timestamp(ctx, *values)


def _yearweek(value) -> int:
    y, w, _ = _datetime_of(value).isocalendar()
    return y * 100 + w


# --------------------------------------------------------------------------------------------
# Implementations: ROUND(x, n), bitwise operators, GREATEST / LEAST, LIKE ... ESCAPE, regexps
# --------------------------------------------------------------------------------------------

def round_scale(n: int) -> float:
    """``10.0 ** abs(n)`` as ROUND(x, n) uses it; ``inf`` when it overflows a double."""
    try:
        return 10.0 ** abs(n)
    except OverflowError:
        return math.inf


def _round_to(x, n) -> float:
    """ROUND(x, n): half away from zero at ``n`` decimal places (``n < 0``: tens, hundreds...).

    Computed in doubles, as DuckDB does: ``round(x * 10^n) / 10^n`` for ``n >= 0`` (when
    ``x * 10^n`` is not finite, ``x`` has no digits to drop and is returned unchanged) and
    ``round(x / 10^-n) * 10^-n`` for ``n < 0`` (``0.0`` with x's sign once ``10^-n``
    overflows). NaN and infinities are returned unchanged.
    """
    x = float(x)
    n = _as_integer(n, "ROUND precision")
    if not math.isfinite(x):
        return x
    scale = round_scale(n)
    if n >= 0:
        scaled = x * scale
        return x if not math.isfinite(scaled) else _round_half_away(scaled) / scale
    if math.isinf(scale):
        return math.copysign(0.0, x)
    return _round_half_away(x / scale) * scale


def _round(x, n=None) -> float:
    return _round_half_away(x) if n is None else _round_to(x, n)


def _shift_count(n: int, op: str) -> int:
    if not 0 <= n <= 63:
        raise ExecutionError(f"shift count out of range: {op} {n}; use a count from 0 to 63")
    return n


def _shift_left(a: int, n: int) -> int:
    """``a << n`` on int64; a result that does not fit is an overflow error (as DuckDB)."""
    return _check_int64(a << _shift_count(n, "<<"), f"{a} << {n}")


def _shift_right(a: int, n: int) -> int:
    """``a >> n``: arithmetic shift (the sign is kept), so -8 >> 1 is -4."""
    return a >> _shift_count(n, ">>")


def _extreme(pick: int) -> Callable:
    """GREATEST (pick=1) / LEAST (pick=-1): the extreme non-NULL argument, NULL if all are.

    NULL arguments are skipped (as in PostgreSQL and DuckDB); NaN is greater than every
    number; the first of equal values wins.
    """
    def impl(*values):
        best = None
        for v in values:
            if v is not None and (best is None or compare_values(v, best) == pick):
                best = v
        return best
    return impl


@functools.lru_cache(maxsize=256)
def _like_escape_regex(pattern: str, escape: str) -> re.Pattern:
    if len(escape) > 1:
        raise ExecutionError(f"LIKE ESCAPE must be one character, got {escape!r}")
    parts = []
    chars = iter(pattern)
    for ch in chars:
        if escape and ch == escape:
            nxt = next(chars, None)
            if nxt is None:
                raise ExecutionError(f"LIKE pattern {pattern!r} ends with the escape character {escape!r}")
            parts.append(re.escape(nxt))
        else:
            parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _like_escape(s: str, pattern: str, escape: str) -> bool:
    """``s LIKE pattern ESCAPE escape``: the escape character makes the next ``%``, ``_`` or
    itself literal; an empty escape turns escaping off."""
    return _like_escape_regex(pattern, escape).fullmatch(s) is not None


_REGEX_OPTIONS = {"c": 0, "i": re.IGNORECASE, "g": 0}


@functools.lru_cache(maxsize=256)
def regex(pattern: str, options: str = "") -> re.Pattern:
    """Compile a REGEXP_* pattern: Python ``re`` syntax with ASCII classes (``\\d``, ``\\w``,
    ``\\s``, like RE2); ``.`` does not match a newline. Options: ``i`` ignore case, ``c``
    case-sensitive (default), ``g`` replace every match (REGEXP_REPLACE)."""
    flags = re.ASCII
    for opt in options:
        if opt not in _REGEX_OPTIONS:
            raise ExecutionError(f"unrecognized regex option {opt!r} in {options!r}; use i, c or g")
        flags = flags & ~re.IGNORECASE if opt == "c" else flags | _REGEX_OPTIONS[opt]
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ExecutionError(f"invalid regular expression {pattern!r}: {exc}") from None


def _regexp_matches(s: str, pattern: str, options: str = "") -> bool:
    """REGEXP_MATCHES(s, pattern[, options]): TRUE when the pattern matches anywhere in s."""
    return regex(pattern, options).search(s) is not None


@functools.lru_cache(maxsize=256)
def replacement_template(template: str) -> tuple:
    """Parse a REGEXP_REPLACE replacement: ``\\N`` is group N (``\\0`` the whole match),
    ``\\\\`` a backslash; any other backslash is an error. Returns literal texts and group
    numbers."""
    parts: list = []
    k = 0
    while k < len(template):
        ch = template[k]
        if ch != "\\":
            parts.append(ch)
            k += 1
            continue
        nxt = template[k + 1] if k + 1 < len(template) else ""
        if nxt.isascii() and nxt.isdigit():
            parts.append(int(nxt))
        elif nxt == "\\":
            parts.append("\\")
        else:
            raise ExecutionError(f"invalid escape in REGEXP_REPLACE replacement {template!r}; "
                                 "use \\1..\\9 for groups and \\\\ for a backslash")
        k += 2
    return tuple(parts)


def _regexp_replace(s: str, pattern: str, replacement: str, options: str = "") -> str:
    """REGEXP_REPLACE(s, pattern, replacement[, options]): the first match (every match with
    option ``g``) replaced. An empty match right after the previous match is skipped (RE2's
    rule, which DuckDB follows: ``x*`` over ``abxd`` gives ``-a-b-d-``)."""
    compiled = regex(pattern, options)
    template = replacement_template(replacement)
    groups = [p for p in template if type(p) is int]
    if groups and max(groups) > compiled.groups:
        raise ExecutionError(f"REGEXP_REPLACE replacement refers to group {max(groups)} but "
                             f"{pattern!r} has {compiled.groups}")
    out, pos, last_end = [], 0, -1
    for m in compiled.finditer(s):
        if m.start() == m.end() == last_end:
            continue
        out.append(s[pos:m.start()])
        out.extend(p if type(p) is str else (m.group(p) or "") for p in template)
        pos = last_end = m.end()
        if "g" not in options:
            break
    out.append(s[pos:])
    return "".join(out)


# --------------------------------------------------------------------------------------------
# CAST
# --------------------------------------------------------------------------------------------

#: normalised CAST target -> result type
CAST_TARGETS: dict[str, pa.DataType] = {
    "STRING": STRING, "INT": INT, "DOUBLE": FLOAT, "FLOAT": pa.float32(), "BOOL": BOOL,
}
_CAST_ALIASES = {"TEXT": "STRING", "VARCHAR": "STRING", "INTEGER": "INT", "INT64": "INT",
                 "BIGINT": "INT", "REAL": "FLOAT", "BOOLEAN": "BOOL"}
_INT_TEXT = re.compile(r"\s*([+-]?\d+)(\.\d*)?\s*")
_FLOAT_TEXT = re.compile(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)\s*",
                         re.IGNORECASE)


def _normal_target(target: str) -> str:
    t = target.upper()
    t = _CAST_ALIASES.get(t, t)
    t = _dates.TEMPORAL_ALIASES.get(t, t)
    if t not in CAST_TARGETS and t not in _dates.TEMPORAL_TARGETS:
        raise SQLSemanticError(f"CAST target type is not supported: {target}")
    return t


def cast_result_type(source: pa.DataType, target: str) -> pa.DataType:
    """The result type of ``CAST(<source> AS target)``; plan-time errors for impossible casts."""
    t = _normal_target(target)
    if t in _dates.TEMPORAL_TARGETS:
        return _dates.cast_type(source, t)
    if t != "STRING" and (is_vector(source) or is_temporal(source)):
        raise SQLSemanticError(f"cannot CAST {type_name(source)} to {t}",
                               hint="only CAST(x AS VARCHAR) is supported for this type")
    return CAST_TARGETS[t]


def _to_float32(x: float) -> float:
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def cast_value(value, target: str, source: pa.DataType | None = None):
    """``CAST(value AS target)`` for one value (NULL stays NULL)."""
    if value is None:
        return None
    t = _normal_target(target)
    if t in _dates.TEMPORAL_TARGETS:
        return _dates.cast_temporal(value, t)
    if t == "STRING":
        return to_string(value, source)
    if t == "BOOL":
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)
    if t == "INT":
        if isinstance(value, str):
            m = _INT_TEXT.fullmatch(value)
            if m is None:
                raise ExecutionError(f"cannot cast {value!r} to INT")
            result = int(m.group(1))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ExecutionError(f"cannot cast {value!r} to INT")
            result = int(value)
        elif isinstance(value, Decimal):
            result = decimals.decimal_to_int(value)
        else:
            result = int(value)
        return _check_int64(result, f"CAST({to_string(value)} AS INT)")
    # DOUBLE / FLOAT
    if isinstance(value, str):
        if _FLOAT_TEXT.fullmatch(value) is None:
            raise ExecutionError(f"cannot cast {value!r} to {t}")
        result = float(value)
    else:
        result = float(value)
    return _to_float32(result) if t == "FLOAT" else result


# --------------------------------------------------------------------------------------------
# The registries
# --------------------------------------------------------------------------------------------

def _fn(name, min_args, max_args, message, rule, impl, **kw) -> ScalarFunction:
    return ScalarFunction(name=name, min_args=min_args, max_args=max_args, arity_message=message,
                          type_rule=rule, impl=impl, **kw)


def _date_fn(name, impl) -> ScalarFunction:
    return _fn(name, 1, 1, "date scalar function expects 1 argument", _date_rule(INT, name.upper()),
               impl)


_CLOCK_MESSAGE = "current time scalar function expects 0 arguments"

_BUILTINS = [
    _fn("length", 1, 1, "LENGTH expects 1 argument", _returns(INT), len, string_args=True),
    _fn("lower", 1, 1, "LOWER expects 1 argument", _returns(STRING), str.lower, string_args=True),
    _fn("upper", 1, 1, "UPPER expects 1 argument", _returns(STRING), str.upper, string_args=True),
    _fn("trim", 1, 1, "TRIM expects 1 argument", _returns(STRING),
        lambda s: s.strip(_C_WHITESPACE), string_args=True),
    _fn("ltrim", 1, 1, "LTRIM/RTRIM requires 1 argument", _returns(STRING),
        lambda s: s.lstrip(_C_WHITESPACE), string_args=True),
    _fn("rtrim", 1, 1, "LTRIM/RTRIM requires 1 argument", _returns(STRING),
        lambda s: s.rstrip(_C_WHITESPACE), string_args=True),
    _fn("reverse", 1, 1, "REVERSE expects 1 argument", _returns(STRING), lambda s: s[::-1],
        string_args=True),
    _fn("concat", 1, None, "CONCAT expects at least 1 argument", _returns(STRING),
        lambda *parts: "".join(parts), string_args=True),
    _fn("concat_ws", 2, None, "CONCAT_WS requires at least 2 arguments", _returns(STRING),
        lambda sep, *parts: sep.join(parts), string_args=True),
    _fn("left", 2, 2, "LEFT requires 2 arguments", _string_then_integers("LEFT"),
        lambda s, n: _left(to_string(s), n), first_arg_text=True),
    _fn("right", 2, 2, "RIGHT requires 2 arguments", _string_then_integers("RIGHT"),
        lambda s, n: _right(to_string(s), n), first_arg_text=True),
    _fn("substr", 2, 3, "SUBSTR expects 2 or 3 arguments", _string_then_integers("SUBSTR"),
        lambda s, *rest: _substr(to_string(s), *rest), first_arg_text=True),
    _fn("position", 2, 2, "POSITION requires 2 arguments", _returns(INT),
        lambda needle, hay: hay.find(needle) + 1, string_args=True),
    _fn("replace", 3, 3, "REPLACE requires exactly 3 arguments", _returns(STRING), _replace,
        string_args=True),
    _fn("abs", 1, 1, "ABS expects 1 argument", _numeric_to_double("ABS"),
        lambda x: abs(x) if isinstance(x, Decimal) else abs(float(x))),   # DECIMAL stays exact
    _fn("ceil", 1, 1, "CEIL expects 1 argument", _numeric_to_double("CEIL"), _ceil),
    _fn("floor", 1, 1, "FLOOR expects 1 argument", _numeric_to_double("FLOOR"), _floor),
    _fn("round", 1, 2, "ROUND expects 1 or 2 arguments", _round_rule, _round),
    _fn("greatest", 1, None, "GREATEST expects at least 1 argument", _common_rule("GREATEST"),
        _extreme(1), null_propagating=False),
    _fn("least", 1, None, "LEAST expects at least 1 argument", _common_rule("LEAST"),
        _extreme(-1), null_propagating=False),
    _fn("regexp_matches", 2, 3, "REGEXP_MATCHES expects 2 or 3 arguments", _returns(BOOL),
        _regexp_matches, string_args=True),
    _fn("regexp_replace", 3, 4, "REGEXP_REPLACE expects 3 or 4 arguments", _returns(STRING),
        _regexp_replace, string_args=True),
    _date_fn("year", lambda v: _datetime_of(v).year),
    _date_fn("month", lambda v: _datetime_of(v).month),
    _date_fn("day", lambda v: _datetime_of(v).day),
    _date_fn("iso_year", lambda v: _datetime_of(v).isocalendar()[0]),
    _date_fn("week", lambda v: _datetime_of(v).isocalendar()[1]),
    _date_fn("yearweek", _yearweek),
    _fn("now", 0, 0, _CLOCK_MESSAGE, _returns(STRING), _now, deterministic=False, needs_context=True),
    _fn("today", 0, 0, _CLOCK_MESSAGE, _returns(STRING), _today, deterministic=False,
        needs_context=True),
    _fn("unix_timestamp", 0, 1, "UNIX_TIMESTAMP expects 0 or 1 argument",
        _date_rule(INT, "UNIX_TIMESTAMP"), _unix_timestamp_apply, deterministic=False,
        needs_context=True, null_propagating=False),
]

#: alias -> (canonical name, default-column-name base)
_ALIASES = {
    "len": ("length", "length"),
    "char_length": ("length", "length"),
    "character_length": ("length", "length"),
    "btrim": ("trim", "trim"),
    "substring": ("substr", "substr"),
    "current_timestamp": ("now", "current_timestamp"),
    "iso_week": ("week", "iso_week"),
}

SCALAR_FUNCTIONS: dict[str, ScalarFunction] = {f.name: f for f in _BUILTINS}
for _alias, (_canonical, _base) in _ALIASES.items():
    SCALAR_FUNCTIONS[_alias] = replace(SCALAR_FUNCTIONS[_canonical], base_name=_base)


def _comparison(op: str, test: Callable[[int], bool]) -> ScalarFunction:
    return _fn(op, 2, 2, f"{op} expects 2 operands", _comparison_rule(op),
               lambda a, b: test(compare_values(a, b)))


OPERATORS: dict[str, ScalarFunction] = {f.name: f for f in [
    _fn("+", 2, 2, "+ expects 2 operands", _arith_rule("+"), _add),
    _fn("-", 2, 2, "- expects 2 operands", _arith_rule("-"), _sub),
    _fn("*", 2, 2, "* expects 2 operands", _arith_rule("*"), _mul),
    _fn("/", 2, 2, "/ expects 2 operands", _arith_rule("/"), _div),
    _fn("%", 2, 2, "% expects 2 operands", _arith_rule("%"), _mod),
    _fn("neg", 1, 1, "unary - expects 1 operand", _arith_rule("-"), _neg),
    _comparison("=", lambda c: c == 0),
    _comparison("!=", lambda c: c != 0),
    _comparison("<", lambda c: c < 0),
    _comparison("<=", lambda c: c <= 0),
    _comparison(">", lambda c: c > 0),
    _comparison(">=", lambda c: c >= 0),
    _fn("and", 2, 2, "AND expects 2 operands", _logic_rule("and"), and3, null_propagating=False),
    _fn("or", 2, 2, "OR expects 2 operands", _logic_rule("or"), or3, null_propagating=False),
    _fn("not", 1, 1, "NOT expects 1 operand", _logic_rule("not"), not3, null_propagating=False),
    _fn("is_null", 1, 1, "IS NULL expects 1 operand", _returns(BOOL), lambda v: v is None,
        null_propagating=False),
    _fn("is_not_null", 1, 1, "IS NOT NULL expects 1 operand", _returns(BOOL),
        lambda v: v is not None, null_propagating=False),
    _fn("like", 2, 2, "LIKE expects 2 operands", _returns(BOOL), _like, string_args=True),
    _fn("like_escape", 3, 3, "LIKE ESCAPE expects 3 operands", _returns(BOOL), _like_escape,
        string_args=True),
    _fn("&", 2, 2, "& expects 2 operands", _bitwise_rule("&"), lambda a, b: a & b),
    _fn("|", 2, 2, "| expects 2 operands", _bitwise_rule("|"), lambda a, b: a | b),
    _fn("#", 2, 2, "# expects 2 operands", _bitwise_rule("#"), lambda a, b: a ^ b),
    _fn("<<", 2, 2, "<< expects 2 operands", _bitwise_rule("<<"), _shift_left),
    _fn(">>", 2, 2, ">> expects 2 operands", _bitwise_rule(">>"), _shift_right),
    _fn("bitnot", 1, 1, "~ expects 1 operand", _bitwise_rule("~"), lambda a: ~a),
    _fn("concat_op", 2, 2, "|| expects 2 operands", _returns(STRING), lambda a, b: a + b,
        string_args=True),
]}
_dates.install(_fn, SCALAR_FUNCTIONS, OPERATORS)   # DATE / TIMESTAMP / INTERVAL builtins and + -
SCALAR_FUNCTIONS["datepart"] = replace(SCALAR_FUNCTIONS["date_part"], base_name="datepart")
SCALAR_FUNCTIONS["datetrunc"] = replace(SCALAR_FUNCTIONS["date_trunc"], base_name="datetrunc")


def resolve_function(name: str) -> ScalarFunction:
    """Look up a builtin by the name the user wrote (upstream name resolution).

    The name is lower-cased, a ``schema.`` prefix and a ``velaria_`` prefix are stripped.
    Unknown names raise ``SQLSyntaxError`` with error_type ``unsupported_function``.
    """
    key = name.lower().rsplit(".", 1)[-1]
    if key.startswith("velaria_"):
        key = key[len("velaria_"):]
    try:
        return SCALAR_FUNCTIONS[key]
    except KeyError:
        raise SQLSyntaxError(f"Unknown function: {name}", error_type="unsupported_function",
                             hint=unknown_function_hint(key)) from None


#: the aggregate functions (planned separately from the scalar builtins)
AGGREGATE_NAMES = ("count", "sum", "avg", "min", "max")


def unknown_function_hint(name: str) -> str:
    """The hint of an unknown-function error: the closest known name, if any, and where the
    supported functions are listed."""
    import difflib

    known = sorted(set(SCALAR_FUNCTIONS) | set(AGGREGATE_NAMES))
    close = difflib.get_close_matches(name.lower(), known, n=1)
    guess = f"Did you mean {close[0].upper()}? " if close else ""
    return guess + "The supported functions are listed in docs/functions.md."


def get_function(name: str) -> ScalarFunction:
    """The operator or builtin a ``Call`` node names (canonical name, as the planner wrote it)."""
    fn = OPERATORS.get(name) or SCALAR_FUNCTIONS.get(name)
    if fn is None:
        raise ExecutionError(f"no scalar function or operator named {name!r}")
    return fn


def binary_result_type(op: str, left: pa.DataType, right: pa.DataType) -> pa.DataType:
    """The result type of binary operator ``op`` (raises ``SQLSemanticError`` if undefined)."""
    return OPERATORS[op].result_type([left, right])
