"""Type families over Arrow types, used by type inference in the planner and the kernels.

Columns keep the Arrow type they were ingested with (int32 stays int32 in ``to_arrow``), but
expressions compute in a few families: integers widen to int64, floats to float64, strings are
``pa.string()``, and vectors are ``FixedSizeList<float32>``.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.types as pat

__all__ = ["INT", "FLOAT", "BOOL", "STRING", "NULL", "DATE", "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL",
           "is_date", "is_timestamp", "is_interval", "is_integer", "is_floating", "is_numeric",
           "is_string", "is_bool", "is_null", "is_vector", "is_temporal", "family", "common_type",
           "type_name"]

INT = pa.int64()
FLOAT = pa.float64()
BOOL = pa.bool_()
STRING = pa.string()
NULL = pa.null()
#: SQL DATE, TIMESTAMP, TIMESTAMPTZ (always UTC) and INTERVAL
DATE = pa.date32()
TIMESTAMP = pa.timestamp("us")
TIMESTAMPTZ = pa.timestamp("us", tz="UTC")
INTERVAL = pa.month_day_nano_interval()


def is_integer(t: pa.DataType) -> bool:
    return pat.is_integer(t)


def is_floating(t: pa.DataType) -> bool:
    return pat.is_floating(t) or pat.is_decimal(t)


def is_numeric(t: pa.DataType) -> bool:
    return is_integer(t) or is_floating(t)


def is_string(t: pa.DataType) -> bool:
    return pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t)


def is_bool(t: pa.DataType) -> bool:
    return pat.is_boolean(t)


def is_null(t: pa.DataType) -> bool:
    return pat.is_null(t)


def is_vector(t: pa.DataType) -> bool:
    return pat.is_fixed_size_list(t) or pat.is_list(t) or pat.is_large_list(t)


def is_temporal(t: pa.DataType) -> bool:
    return pat.is_temporal(t)


def is_date(t: pa.DataType) -> bool:
    return pat.is_date(t)


def is_timestamp(t: pa.DataType) -> bool:
    return pat.is_timestamp(t)


def is_interval(t: pa.DataType) -> bool:
    return pat.is_interval(t)


def family(t: pa.DataType) -> pa.DataType:
    """The computation type of ``t``: int64, float64, bool, string, null, or ``t`` itself."""
    if pat.is_dictionary(t):       # a dictionary-encoded column computes as its values
        return family(t.value_type)
    if is_integer(t):
        return INT
    if is_floating(t):
        return FLOAT
    if is_string(t):
        return STRING
    if is_date(t):
        return DATE
    if is_timestamp(t):            # any unit computes in microseconds; a zone means UTC
        return TIMESTAMP if t.tz is None else TIMESTAMPTZ
    if is_interval(t):
        return INTERVAL
    return t


def common_type(types, what: str = "values") -> pa.DataType:
    """The type that values of all ``types`` share (for CASE branches, UNION columns, IN lists).

    NULL joins anything; int and float give float64; equal families give that family.
    Raises ``TypeError`` when there is no common type (the planner turns it into a SQL error).
    """
    result = NULL
    for t in types:
        f = family(t)
        if is_null(f):
            continue
        if is_null(result):
            result = f
        elif result.equals(f):
            continue
        elif is_numeric(result) and is_numeric(f):
            result = FLOAT
        elif (is_date(result) or is_timestamp(result)) and (is_date(f) or is_timestamp(f)):
            # DATE with TIMESTAMP is TIMESTAMP (midnight); a zone on either side wins
            zoned = TIMESTAMPTZ in (result, f)
            result = TIMESTAMPTZ if zoned else TIMESTAMP
        else:
            raise TypeError(f"{what} have incompatible types {type_name(result)} and {type_name(f)}")
    return result


def type_name(t: pa.DataType) -> str:
    """A short SQL-ish name for messages: BIGINT, DOUBLE, BOOLEAN, VARCHAR, ..."""
    if is_integer(t):
        return "BIGINT"
    if pat.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if is_floating(t):
        return "DOUBLE" if not pat.is_float32(t) else "REAL"
    if is_string(t):
        return "VARCHAR"
    if is_bool(t):
        return "BOOLEAN"
    if is_null(t):
        return "NULL"
    if is_date(t):
        return "DATE"
    if is_timestamp(t):
        return "TIMESTAMP" if t.tz is None else "TIMESTAMPTZ"
    if is_interval(t):
        return "INTERVAL"
    if pat.is_fixed_size_list(t):
        return f"VECTOR[{t.list_size}]"
    return str(t)
