"""DECIMAL(p, s): exact decimal numbers (Arrow ``decimal128``), the reference rules.

Values are Python :class:`decimal.Decimal` in the reference kernels; every operation runs in
:data:`CONTEXT` (80 significant digits, far above decimal128's 38), so no operation here
rounds except where a rule says so.

Types (as DuckDB):

* ``CAST(x AS DECIMAL(p, s))`` / ``NUMERIC(p, s)``: 1 <= p <= 38, 0 <= s <= p;
  ``DECIMAL(p)`` is ``DECIMAL(p, 0)``; a bare ``DECIMAL`` is ``DECIMAL(18, 3)``.
* An integer operand counts as ``DECIMAL(19, 0)`` (int64's digits; narrower integers fewer).
* ``a + b``, ``a - b``: scale ``max(s1, s2)``, precision ``max(p1 - s1, p2 - s2) + scale + 1``;
  ``a * b``: scale ``s1 + s2``, precision ``p1 + p2``; ``a % b``: scale ``max(s1, s2)``,
  precision ``max(p1 - s1, p2 - s2) + scale``. Precision is capped at 38; a result that
  does not fit its type is an error (never a rounded or wrapped value).
* ``a / b`` and any operation with a DOUBLE operand compute in DOUBLE.
* ``SUM`` is ``DECIMAL(38, s)``, exact; ``AVG`` is DOUBLE (the exact sum divided by the
  count, then rounded once); ``MIN`` / ``MAX`` keep the type; the variances, standard
  deviations and ``MEDIAN`` compute in DOUBLE.

Casts to DECIMAL round half away from zero to the scale; a DOUBLE is taken by its shortest
decimal text (``CAST(2.675 AS DECIMAL(5, 2))`` is 2.68, as in DuckDB, although the double's
binary value is 2.67499...); text must be a decimal number;
a value with more integer digits than ``p - s`` is an error. DECIMAL to BIGINT rounds half
away from zero (DuckDB), to DOUBLE is the nearest double, to text is the plain digits with
the scale's decimals (``1.50``).
"""
from __future__ import annotations

import decimal
import math

import pyarrow as pa
import pyarrow.types as pat

from velaria.errors import ExecutionError, SQLSemanticError
from velaria.plan.types import type_name

__all__ = ["CONTEXT", "MAX_PRECISION", "DEFAULT_TYPE", "is_decimal", "decimal_of", "arithmetic_type",
           "declared_type", "cast_to_decimal", "decimal_to_int", "add", "sub", "mul", "mod", "average",
           "to_text"]

CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_UP, Emax=999999, Emin=-999999)
MAX_PRECISION = 38
DEFAULT_TYPE = pa.decimal128(18, 3)
_INT_DIGITS = {8: 3, 16: 5, 32: 10, 64: 19}


def is_decimal(t: pa.DataType) -> bool:
    return pat.is_decimal(t)


def decimal_of(t: pa.DataType) -> pa.DataType:
    """``t`` seen as a decimal type: integers as DECIMAL(digits, 0), decimals as they are."""
    if pat.is_decimal(t):
        return t
    if pat.is_integer(t):
        return pa.decimal128(_INT_DIGITS.get(t.bit_width, 19) + (1 if pat.is_uint64(t) else 0), 0)
    raise TypeError(f"{t} is not a decimal or an integer type")


def arithmetic_type(op: str, a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The result type of decimal ``a op b`` (``op`` in ``+ - * %``)."""
    a, b = decimal_of(a), decimal_of(b)
    if op == "*":
        scale, precision = a.scale + b.scale, a.precision + b.precision
        if scale > MAX_PRECISION:
            raise SQLSemanticError(f"DECIMAL multiplication scale {scale} exceeds {MAX_PRECISION}",
                                   hint="CAST one operand to a DECIMAL with a smaller scale, or to DOUBLE")
    else:
        scale = max(a.scale, b.scale)
        precision = max(a.precision - a.scale, b.precision - b.scale) + scale + (0 if op == "%" else 1)
    return pa.decimal128(min(precision, MAX_PRECISION), scale)


def declared_type(mods: list[int], written: str) -> pa.DataType:
    """The type of ``DECIMAL[(p[, s])]`` with the integer modifiers ``mods``."""
    if not mods:
        return DEFAULT_TYPE
    if len(mods) > 2:
        raise SQLSemanticError(f"{written} takes at most a precision and a scale",
                               hint="write DECIMAL(p, s), e.g. DECIMAL(12, 2)")
    p, s = mods[0], (mods[1] if len(mods) == 2 else 0)
    if not 1 <= p <= MAX_PRECISION:
        raise SQLSemanticError(f"{written} precision {p} is out of range",
                               hint=f"the precision must be between 1 and {MAX_PRECISION}")
    if not 0 <= s <= p:
        raise SQLSemanticError(f"{written} scale {s} is out of range",
                               hint=f"the scale must be between 0 and the precision ({p})")
    return pa.decimal128(p, s)


def _fit(value: decimal.Decimal, t: pa.DataType, what: str) -> decimal.Decimal:
    """``value`` rounded half away from zero to ``t``'s scale; an error if it has too many digits."""
    limit = t.precision - t.scale
    # a value already too large is refused before quantize, which cannot even represent it
    # when its digits outnumber the context's precision (a double such as 1e308)
    too_large = value != 0 and value.adjusted() >= limit
    q = None if too_large else value.quantize(decimal.Decimal(1).scaleb(-t.scale), context=CONTEXT)
    if too_large or (q != 0 and q.adjusted() >= limit):
        raise ExecutionError(f"{what} is out of range for DECIMAL({t.precision}, {t.scale}): it needs more "
                             f"than {t.precision - t.scale} digits before the decimal point; CAST to a "
                             "DECIMAL with a larger precision, or to DOUBLE")
    return q


def overflow_error(t: pa.DataType) -> ExecutionError:
    """The error for a computed value with more digits than ``t`` (a DECIMAL type) holds."""
    return ExecutionError(f"DECIMAL overflow: a computed value does not fit {type_name(t)} (at most "
                          f"{t.precision - t.scale} digits before the decimal point); CAST the operands "
                          "to DOUBLE, or to a DECIMAL with fewer decimals")


def check_fits(values: list, t: pa.DataType) -> list:
    """``values`` (one computed DECIMAL column) unchanged, or the overflow error when one of
    them has more digits before the point than ``t`` allows: each arithmetic step must fit
    its result type, as in DuckDB, even when a later NULL operand would hide the value."""
    limit = t.precision - t.scale
    for v in values:
        if v is not None and v != 0 and v.adjusted() >= limit:
            raise overflow_error(t)
    return values


def cast_to_decimal(value, t: pa.DataType):
    """``CAST(value AS DECIMAL(p, s))`` for one value (NULL stays NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        d = decimal.Decimal(int(value))
    elif isinstance(value, (int, decimal.Decimal)):
        d = decimal.Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ExecutionError(f"cannot cast {value!r} to DECIMAL({t.precision}, {t.scale})")
        d = decimal.Decimal(repr(value))   # the double's shortest text: 2.675 is 2.675, as DuckDB
    elif isinstance(value, str):
        try:
            d = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            d = None
        if d is None or not d.is_finite():
            raise ExecutionError(f"cannot cast {value!r} to DECIMAL({t.precision}, {t.scale})")
    else:
        raise ExecutionError(f"cannot cast {type(value).__name__} value {value!r} to DECIMAL")
    return _fit(d, t, f"value {value}")


def decimal_to_int(value: decimal.Decimal) -> int:
    """DECIMAL to BIGINT: rounded half away from zero."""
    return int(value.to_integral_value(rounding=decimal.ROUND_HALF_UP, context=CONTEXT))


def add(a, b):
    return CONTEXT.add(decimal.Decimal(a), decimal.Decimal(b))


def sub(a, b):
    return CONTEXT.subtract(decimal.Decimal(a), decimal.Decimal(b))


def mul(a, b):
    return CONTEXT.multiply(decimal.Decimal(a), decimal.Decimal(b))


def mod(a, b):
    """``a % b`` with the sign of ``a`` (SQL); zero divisor gives NULL like the other types."""
    if b == 0:
        return None
    return CONTEXT.remainder(decimal.Decimal(a), decimal.Decimal(b))


def average(total: decimal.Decimal, count: int) -> float:
    """AVG of decimals: the exact total over the count, rounded once to a double."""
    return float(CONTEXT.divide(total, count))


def to_text(value: decimal.Decimal) -> str:
    """Plain digits, never exponent notation (``1.50``, ``-0.001``, ``100``)."""
    return format(value, "f")
