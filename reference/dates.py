"""SQL DATE, TIMESTAMP, TIMESTAMPTZ and INTERVAL: the executable specification.

Values in the reference kernels
-------------------------------
* ``DATE`` (Arrow ``date32``) is a :class:`datetime.date`;
* ``TIMESTAMP`` (``timestamp[us]``) is a naive :class:`datetime.datetime` read as UTC;
* ``TIMESTAMPTZ`` (``timestamp[us, tz=UTC]``) is an aware ``datetime`` in UTC (the engine has
  no session time zone: every zoned value is shown and computed in UTC);
* ``INTERVAL`` (``month_day_nano_interval``) is a :class:`pyarrow.MonthDayNano` of three
  independent parts -- months, days and nanoseconds (always a whole number of microseconds) --
  because a month has no fixed number of days and a day around a time-zone change has no
  fixed number of hours. ``INTERVAL '36 hours'`` stays 36 hours; it is not 1 day 12 hours.

Rules (they follow DuckDB, so the differential tests can compare answers)
-----------------------------------------------------------------------
* Literals and casts from text: ``DATE 'YYYY-MM-DD'`` (a time part is accepted and dropped);
  ``TIMESTAMP 'YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|+HH[:MM]]'`` (an offset converts the
  value to UTC); ``INTERVAL '1 year 2 months 3 days 04:05:06.5'`` or ``INTERVAL '90' DAY``.
  Surrounding blanks are ignored; anything else is an error naming the text.
* Arithmetic: ``DATE + INTEGER`` and ``DATE - INTEGER`` are dates (whole days);
  ``DATE - DATE`` is the BIGINT number of days; ``DATE ± INTERVAL`` and ``TIMESTAMP ±
  INTERVAL`` are timestamps (zoned stays zoned). Adding an interval adds its months first
  (the day is clamped to the end of a shorter month: Jan 31 + 1 month = Feb 29 in 2024),
  then its days, then its time. ``TIMESTAMP - TIMESTAMP`` is an INTERVAL of whole days plus
  the remaining time (both parts carry the sign of the difference); a DATE there is midnight.
  ``INTERVAL ± INTERVAL`` adds part by part.
* Comparison: dates and timestamps compare as instants (a date is midnight UTC); text on the
  other side is read with the date-text rules of ``YEAR``; intervals compare by their length
  with a month counted as 30 days (so ``INTERVAL '30 days' = INTERVAL '1 month'``).
* ``date_part(field, x)`` / ``EXTRACT(field FROM x)``: BIGINT fields, ``epoch`` is DOUBLE
  seconds. ``date_trunc(part, x)``: TIMESTAMP (TIMESTAMPTZ for a zoned input). The native
  date functions (``YEAR``, ``MONTH``, ...) and these accept dates, timestamps, ISO text and
  epoch milliseconds alike (text and numbers with the native rules: milliseconds precision).
* ``strftime(x, format)`` formats with the codes of :data:`STRFTIME_CODES`; ``strptime(text,
  format)`` parses with Python's ``datetime.strptime`` and gives a TIMESTAMP; a value that
  does not match is an error naming the value and the format.
* ``current_date`` is today's UTC DATE, read once per query (``TODAY()`` stays text).
"""
from __future__ import annotations

import calendar
import copyreg
import re
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa

from velaria.errors import ExecutionError, SQLSemanticError
from velaria.plan.types import (DATE, FLOAT, INT, INTERVAL, STRING, TIMESTAMP, TIMESTAMPTZ,
                                family, is_date, is_interval, is_null, is_numeric, is_string,
                                is_timestamp, type_name)

__all__ = [
    "parse_date_text", "parse_timestamp_text", "parse_interval_text", "interval_field_unit",
    "epoch_us", "interval_us", "add_interval", "to_datetime", "date_part", "epoch_seconds",
    "date_trunc", "strftime", "strptime", "DATE_PARTS", "TRUNC_PARTS", "STRFTIME_CODES",
    "arith_type", "arith_value", "cast_type", "cast_temporal", "TEMPORAL_TARGETS",
    "normal_part", "strftime_tokens", "install",
]

_EPOCH = datetime(1970, 1, 1)
_US_PER_DAY = 86_400_000_000
_NS_PER_US = 1000


def _month_day_nano(months: int, days: int, nanoseconds: int) -> pa.MonthDayNano:
    return pa.MonthDayNano([months, days, nanoseconds])


# pyarrow's MonthDayNano cannot be pickled by name; plans holding an INTERVAL constant travel
# to worker processes (single-node and distributed runtime modes), so pickle it by its parts
copyreg.pickle(pa.MonthDayNano, lambda v: (_month_day_nano, tuple(v)))


# --------------------------------------------------------------------------------------------
# Text -> values
# --------------------------------------------------------------------------------------------

_TS_TEXT = re.compile(
    r"\s*(-?\d{4,})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*")


def _timestamp_parts(text: str, what: str) -> datetime:
    m = _TS_TEXT.fullmatch(text)
    if m is None:
        raise ExecutionError(f"cannot convert {text!r} to {what}: expected 'YYYY-MM-DD' with an optional "
                             "' HH:MM:SS[.ffffff]' time and '+HH:MM' offset")
    y, mo, d, hh, mi, ss, frac, offset = m.groups()
    try:
        value = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0),
                         int((frac or "0")[:6].ljust(6, "0")))
    except ValueError as exc:
        raise ExecutionError(f"cannot convert {text!r} to {what}: {exc}") from None
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        try:
            value -= sign * shift
        except OverflowError:
            raise ExecutionError(f"cannot convert {text!r} to {what}: out of range") from None
    return value


def parse_date_text(text: str) -> date:
    """``CAST(text AS DATE)``: the date of an ISO date or timestamp text."""
    return _timestamp_parts(text, "DATE").date()


def parse_timestamp_text(text: str) -> datetime:
    """``CAST(text AS TIMESTAMP)``: a naive UTC datetime (an offset is applied, then dropped)."""
    return _timestamp_parts(text, "TIMESTAMP")


#: interval unit word -> (months, days, microseconds) per unit
_INTERVAL_UNITS = {}
for _words, _value in (
        (("year", "years", "y", "yr", "yrs"), (12, 0, 0)),
        (("month", "months", "mon", "mons"), (1, 0, 0)),
        (("week", "weeks", "w"), (0, 7, 0)),
        (("day", "days", "d"), (0, 1, 0)),
        (("hour", "hours", "h", "hr", "hrs"), (0, 0, 3_600_000_000)),
        (("minute", "minutes", "min", "mins", "m"), (0, 0, 60_000_000)),
        (("second", "seconds", "sec", "secs", "s"), (0, 0, 1_000_000)),
        (("millisecond", "milliseconds", "ms", "msec", "msecs"), (0, 0, 1000)),
        (("microsecond", "microseconds", "us", "usec", "usecs"), (0, 0, 1))):
    for _w in _words:
        _INTERVAL_UNITS[_w] = _value

_INTERVAL_TOKEN = re.compile(
    r"\s*(?:(?P<clock>[+-]?\d+:\d{1,2}(?::\d{1,2}(?:\.\d{1,6})?)?)"
    r"|(?P<num>[+-]?\d+(?:\.\d*)?)\s*(?P<unit>[a-zA-Z]+))\s*")

#: PostgreSQL's typmod bits of ``INTERVAL 'n' <field>`` -> unit word
_INTERVAL_FIELDS = {4: "year", 2: "month", 8: "day", 1024: "hour", 2048: "minute", 4096: "second"}


def interval_field_unit(mask: int) -> str | None:
    """The unit of ``INTERVAL 'n' YEAR|MONTH|DAY|HOUR|MINUTE|SECOND`` from its typmod bits."""
    return _INTERVAL_FIELDS.get(mask)


def _interval_error(text: str, problem: str) -> ExecutionError:
    return ExecutionError(f"cannot convert {text!r} to INTERVAL: {problem}; write for example "
                          "'1 day', '2 hours 30 minutes', '1 year 2 months' or '3 days 04:05:06'")


def parse_interval_text(text: str, unit: str | None = None) -> pa.MonthDayNano:
    """``INTERVAL 'text'``: a sum of ``<number> <unit>`` terms and an optional ``HH:MM[:SS]``
    clock. ``unit`` (from ``INTERVAL '90' DAY``) applies to a bare number. Fractions are
    allowed down from days (``1.5 days`` is 1 day 12 hours); years and months must be whole."""
    body = text.strip()
    if unit is not None and re.fullmatch(r"[+-]?\d+(?:\.\d*)?", body):
        body = f"{body} {unit}"
    if not body:
        raise _interval_error(text, "it is empty")
    months = days = micros = 0
    pos = 0
    while pos < len(body):
        m = _INTERVAL_TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise _interval_error(text, f"unexpected text at {body[pos:]!r}")
        pos = m.end()
        if m.group("clock"):
            clock = m.group("clock")
            sign = -1 if clock.startswith("-") else 1
            parts = clock.lstrip("+-").split(":")
            seconds = float(parts[2]) if len(parts) > 2 else 0.0
            micros += sign * ((int(parts[0]) * 3600 + int(parts[1]) * 60) * 1_000_000
                              + round(seconds * 1_000_000))
            continue
        per = _INTERVAL_UNITS.get(m.group("unit").lower())
        if per is None:
            raise _interval_error(text, f"unknown unit {m.group('unit')!r}")
        number = m.group("num")
        if "." in number:
            if per[0]:
                raise _interval_error(text, "years and months must be whole numbers")
            per_us = per[1] * _US_PER_DAY + per[2]
            micros += round(float(number) * per_us)
            continue
        n = int(number)
        months += n * per[0]
        days += n * per[1]
        micros += n * per[2]
    if not (-2 ** 31 <= months < 2 ** 31 and -2 ** 31 <= days < 2 ** 31
            and -2 ** 63 <= micros * _NS_PER_US < 2 ** 63):
        raise _interval_error(text, "it is out of range")
    return pa.MonthDayNano([months, days, micros * _NS_PER_US])


# --------------------------------------------------------------------------------------------
# Values -> instants
# --------------------------------------------------------------------------------------------

def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def to_datetime(value) -> datetime:
    """A naive UTC datetime for a date-function argument: a timestamp itself (microseconds
    kept), a date at midnight, text and numbers with the native date-text rules (epoch
    milliseconds, ISO text at millisecond precision)."""
    if isinstance(value, datetime):
        return _naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    from .functions import to_epoch_ms
    ms = to_epoch_ms(value)
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ExecutionError(f"timestamp out of range: {ms} ms") from None


def epoch_us(value) -> int:
    """Microseconds since 1970-01-01 UTC of a date, timestamp, date text or epoch-ms number."""
    if isinstance(value, datetime):
        return (_naive_utc(value) - _EPOCH) // timedelta(microseconds=1)
    if isinstance(value, date):
        return (value - date(1970, 1, 1)).days * _US_PER_DAY
    from .functions import to_epoch_ms
    return to_epoch_ms(value) * 1000


def interval_us(value: pa.MonthDayNano) -> int:
    """The length of an interval used to compare intervals: a month is 30 days."""
    months, days, nanos = value
    return (months * 30 + days) * _US_PER_DAY + nanos // _NS_PER_US


# --------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------

def _out_of_range(what: str) -> ExecutionError:
    return ExecutionError(f"{what} is out of the supported date range (years 1 to 9999)")


def add_interval(value: datetime, interval: pa.MonthDayNano, sign: int = 1) -> datetime:
    """``value + sign * interval``: months (day clamped to the month's end), then days, then
    time."""
    months, days, nanos = interval
    months, days, micros = sign * months, sign * days, sign * (nanos // _NS_PER_US)
    try:
        if months:
            index = value.year * 12 + value.month - 1 + months
            year, month = divmod(index, 12)
            day = min(value.day, calendar.monthrange(year, month + 1)[1])
            value = value.replace(year=year, month=month + 1, day=day)
        return value + timedelta(days=days, microseconds=micros)
    except (ValueError, OverflowError):
        raise _out_of_range(f"{value} + INTERVAL") from None


def _sub_timestamps(a: datetime, b: datetime) -> pa.MonthDayNano:
    diff = (_naive_utc(a) - _naive_utc(b)) // timedelta(microseconds=1)
    days = abs(diff) // _US_PER_DAY * (1 if diff >= 0 else -1)   # truncated toward zero
    return pa.MonthDayNano([0, days, (diff - days * _US_PER_DAY) * _NS_PER_US])


def _as_timestamp(value):
    return datetime(value.year, value.month, value.day) if type(value) is date else value


def _add_days(value: date, n: int) -> date:
    try:
        return value + timedelta(days=n)
    except OverflowError:
        raise _out_of_range(f"{value} + {n} days") from None


def arith_type(op: str, types: list) -> pa.DataType | None:
    """The result type of ``+ - neg`` when an operand is a DATE, TIMESTAMP or INTERVAL; None
    when no operand is (the numeric rules apply). Raises ``SQLSemanticError`` for the
    combinations that have no meaning (``DATE + DATE``)."""
    fams = [family(t) for t in types]
    if not any(is_date(f) or is_timestamp(f) or is_interval(f) for f in fams):
        return None
    if op == "neg":
        if is_interval(fams[0]):
            return INTERVAL
        raise SQLSemanticError(f"unary - is not defined for {type_name(fams[0])}")
    a, b = fams
    if is_null(a) or is_null(b):
        return _null_partner(a, b)
    if is_interval(a) and is_interval(b):
        return INTERVAL
    if op == "+" and is_interval(a):
        a, b = b, a                       # INTERVAL + x is x + INTERVAL
    if op == "+" and _is_int_family(a) and is_date(b):
        a, b = b, a
    if is_date(a) and _is_int_family(b):
        return DATE
    if is_date(a) and is_date(b) and op == "-":
        return INT
    if (is_date(a) or is_timestamp(a)) and is_interval(b):
        return TIMESTAMPTZ if a == TIMESTAMPTZ else TIMESTAMP
    if op == "-" and (is_date(a) or is_timestamp(a)) and (is_date(b) or is_timestamp(b)):
        return INTERVAL
    raise SQLSemanticError(
        f"operator {op} is not defined for {type_name(a)} and {type_name(b)}",
        hint="dates and timestamps take + or - an INTERVAL (d + INTERVAL '1 day'), a date also "
             "+ or - whole days; subtract two dates for days, two timestamps for an INTERVAL")


def _is_int_family(t: pa.DataType) -> bool:
    return t == INT


def _null_partner(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type of ``x op NULL`` (or ``NULL op x``) for a temporal x: x's own type."""
    other = b if is_null(a) else a
    if is_interval(other):
        return INTERVAL
    if is_date(other):
        return DATE                         # d + NULL: an unknown number of days
    return other


def arith_value(op: str, a, b=None):
    """One row of a temporal ``+``, ``-`` or ``neg`` (no NULL arguments)."""
    if op == "neg":
        return pa.MonthDayNano([-a[0], -a[1], -a[2]])
    iv_a, iv_b = isinstance(a, pa.MonthDayNano), isinstance(b, pa.MonthDayNano)
    if iv_a and iv_b:
        s = 1 if op == "+" else -1
        return pa.MonthDayNano([a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]])
    if op == "+" and iv_a:
        a, b, iv_b = b, a, True
    if op == "+" and isinstance(a, int):
        a, b = b, a
    if iv_b:
        return add_interval(_as_timestamp(a), b, 1 if op == "+" else -1)
    if isinstance(b, int) and not isinstance(b, bool):
        return _add_days(a, b if op == "+" else -b)
    if type(a) is date and type(b) is date:
        return (a - b).days
    return _sub_timestamps(_as_timestamp(a), _as_timestamp(b))


# --------------------------------------------------------------------------------------------
# date_part / EXTRACT, date_trunc
# --------------------------------------------------------------------------------------------

def _dow(v: datetime) -> int:
    return v.isoweekday() % 7


#: canonical field -> value of a naive datetime (BIGINT); ``epoch`` is separate (DOUBLE)
DATE_PARTS = {
    "year": lambda v: v.year,
    "quarter": lambda v: (v.month - 1) // 3 + 1,
    "month": lambda v: v.month,
    "day": lambda v: v.day,
    "dayofweek": _dow,
    "isodow": lambda v: v.isoweekday(),
    "dayofyear": lambda v: v.timetuple().tm_yday,
    "week": lambda v: v.isocalendar()[1],
    "isoyear": lambda v: v.isocalendar()[0],
    "hour": lambda v: v.hour,
    "minute": lambda v: v.minute,
    "second": lambda v: v.second,
    "millisecond": lambda v: v.second * 1000 + v.microsecond // 1000,
    "microsecond": lambda v: v.second * 1_000_000 + v.microsecond,
}

_PART_ALIASES = {
    "years": "year", "y": "year", "yr": "year", "yrs": "year", "quarters": "quarter",
    "months": "month", "mon": "month", "mons": "month", "days": "day", "dayofmonth": "day",
    "d": "day", "dow": "dayofweek", "weekday": "dayofweek", "doy": "dayofyear",
    "weeks": "week", "weekofyear": "week", "w": "week", "hours": "hour", "h": "hour",
    "minutes": "minute", "min": "minute", "m": "minute", "seconds": "second", "s": "second",
    "sec": "second", "milliseconds": "millisecond", "ms": "millisecond",
    "microseconds": "microsecond", "us": "microsecond",
}

#: date_trunc part -> how a naive datetime is truncated
TRUNC_PARTS = {
    "year": lambda v: v.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
    "quarter": lambda v: v.replace(month=(v.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0,
                                   second=0, microsecond=0),
    "month": lambda v: v.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    "week": lambda v: (v - timedelta(days=v.weekday())).replace(hour=0, minute=0, second=0,
                                                                 microsecond=0),
    "day": lambda v: v.replace(hour=0, minute=0, second=0, microsecond=0),
    "hour": lambda v: v.replace(minute=0, second=0, microsecond=0),
    "minute": lambda v: v.replace(second=0, microsecond=0),
    "second": lambda v: v.replace(microsecond=0),
    "millisecond": lambda v: v.replace(microsecond=v.microsecond // 1000 * 1000),
    "microsecond": lambda v: v,
}


def normal_part(name: str, allowed, what: str) -> str:
    """The canonical field name of ``name`` (case-insensitive, aliases folded), or a
    ``SQLSemanticError`` that lists the allowed names."""
    key = _PART_ALIASES.get(name.lower(), name.lower())
    if key not in allowed:
        names = ", ".join(sorted(allowed))
        raise SQLSemanticError(f"{what} does not know the field {name!r}", hint=f"use one of: {names}")
    return key


def date_part(field: str, value) -> int:
    """``date_part(field, value)`` for a BIGINT field."""
    return DATE_PARTS[normal_part(field, DATE_PARTS, "date_part")](to_datetime(value))


def epoch_seconds(value) -> float:
    """``date_part('epoch', value)``: seconds since 1970-01-01 UTC, with the fraction."""
    return epoch_us(to_datetime(value)) / 1_000_000


def date_trunc(part: str, value):
    """``date_trunc(part, value)``: the start of the ``part`` containing ``value`` (an aware
    value stays aware, in UTC)."""
    result = TRUNC_PARTS[normal_part(part, TRUNC_PARTS, "date_trunc")](to_datetime(value))
    if isinstance(value, datetime) and value.tzinfo is not None:
        return result.replace(tzinfo=timezone.utc)
    return result


# --------------------------------------------------------------------------------------------
# strftime / strptime
# --------------------------------------------------------------------------------------------

_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December"]

#: strftime code -> text of a naive datetime (fixed English names, independent of locale)
STRFTIME_CODES = {
    "Y": lambda v: f"{v.year:04d}",
    "y": lambda v: f"{v.year % 100:02d}",
    "m": lambda v: f"{v.month:02d}",
    "d": lambda v: f"{v.day:02d}",
    "H": lambda v: f"{v.hour:02d}",
    "I": lambda v: f"{(v.hour + 11) % 12 + 1:02d}",
    "M": lambda v: f"{v.minute:02d}",
    "S": lambda v: f"{v.second:02d}",
    "f": lambda v: f"{v.microsecond:06d}",
    "j": lambda v: f"{v.timetuple().tm_yday:03d}",
    "p": lambda v: "AM" if v.hour < 12 else "PM",
    "a": lambda v: _DAY_NAMES[v.weekday()][:3],
    "A": lambda v: _DAY_NAMES[v.weekday()],
    "b": lambda v: _MONTH_NAMES[v.month - 1][:3],
    "B": lambda v: _MONTH_NAMES[v.month - 1],
    "w": lambda v: str(_dow(v)),
    "u": lambda v: str(v.isoweekday()),
    "%": lambda v: "%",
}


def strftime_tokens(fmt: str) -> list:
    """The format as a list of literal texts and one-letter codes (``('code', 'Y')``)."""
    tokens, text, k = [], [], 0
    while k < len(fmt):
        ch = fmt[k]
        if ch != "%":
            text.append(ch)
            k += 1
            continue
        code = fmt[k + 1] if k + 1 < len(fmt) else ""
        if code not in STRFTIME_CODES:
            raise ExecutionError(f"strftime format {fmt!r} uses an unsupported code %{code}; "
                                 f"supported: {' '.join('%' + c for c in STRFTIME_CODES)}")
        if code == "%":
            text.append("%")
        else:
            if text:
                tokens.append("".join(text))
                text = []
            tokens.append(("code", code))
        k += 2
    if text:
        tokens.append("".join(text))
    return tokens


def strftime(value, fmt: str) -> str:
    """``strftime(value, format)``: the date or timestamp as text."""
    v = to_datetime(value)
    return "".join(t if isinstance(t, str) else STRFTIME_CODES[t[1]](v)
                   for t in strftime_tokens(fmt))


def strptime(text: str, fmt: str) -> datetime:
    """``strptime(text, format)``: a TIMESTAMP parsed with Python's ``datetime.strptime``."""
    try:
        return datetime.strptime(text, fmt)
    except ValueError as exc:
        raise ExecutionError(f"strptime: {text!r} does not match the format {fmt!r} ({exc}); "
                             "check the format codes (%Y-%m-%d %H:%M:%S) against the text") from None


# --------------------------------------------------------------------------------------------
# CAST
# --------------------------------------------------------------------------------------------

#: SQL type names of CAST targets -> result type
TEMPORAL_TARGETS = {"DATE": DATE, "TIMESTAMP": TIMESTAMP, "TIMESTAMPTZ": TIMESTAMPTZ,
                    "INTERVAL": INTERVAL}
TEMPORAL_ALIASES = {"DATETIME": "TIMESTAMP", "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
                    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP"}


def cast_type(source: pa.DataType, target: str) -> pa.DataType:
    """The result type of ``CAST(<source> AS target)`` for a temporal target."""
    src = family(source)
    ok = is_null(src) or is_string(src) or (
        target == "INTERVAL" and is_interval(src)) or (
        target != "INTERVAL" and (is_date(src) or is_timestamp(src)))
    if not ok:
        raise SQLSemanticError(f"cannot CAST {type_name(source)} to {target}",
                               hint="cast text in ISO form ('2024-01-02', '2024-01-02 03:04:05', "
                                    "'1 day'), or another date or timestamp")
    return TEMPORAL_TARGETS[target]


def cast_temporal(value, target: str):
    """``CAST(value AS DATE|TIMESTAMP|TIMESTAMPTZ|INTERVAL)`` of one non-NULL value."""
    if target == "INTERVAL":
        return value if isinstance(value, pa.MonthDayNano) else parse_interval_text(value)
    if isinstance(value, str):
        value = _timestamp_parts(value, target)
    elif type(value) is date:
        value = datetime(value.year, value.month, value.day)
    value = _naive_utc(value)
    if target == "DATE":
        return value.date()
    if target == "TIMESTAMPTZ":
        return value.replace(tzinfo=timezone.utc)
    return value


# --------------------------------------------------------------------------------------------
# Registration into the function table
# --------------------------------------------------------------------------------------------

def _time_arg_rule(fn: str, result, first_is_field: bool = False):
    def rule(types):
        args = types[1:] if first_is_field else types[:1]
        if first_is_field and not (is_string(types[0]) or is_null(types[0])):
            raise SQLSemanticError(f"{fn} expects the field name as text first, got {type_name(types[0])}")
        for t in args:
            f = family(t)
            if not (is_string(f) or is_numeric(f) or is_date(f) or is_timestamp(f) or is_null(f)):
                raise SQLSemanticError(f"{fn} expects a date, timestamp, ISO text or epoch-millisecond "
                                       f"argument, got {type_name(t)}",
                                       hint="CAST the value to DATE or TIMESTAMP")
        for t in types[2 if first_is_field else 1:]:
            if not (is_string(t) or is_null(t)):
                raise SQLSemanticError(f"{fn} expects a text format, got {type_name(t)}")
        return result(types) if callable(result) else result
    return rule


def _trunc_result(types) -> pa.DataType:
    return TIMESTAMPTZ if family(types[1]) == TIMESTAMPTZ else TIMESTAMP


def _strptime_rule(types):
    for t in types:
        if not (is_string(t) or is_null(t)):
            raise SQLSemanticError(f"strptime expects text arguments, got {type_name(t)}",
                                   hint="strptime(text, format); use strftime to format a date")
    return TIMESTAMP


def _current_date(ctx) -> date:
    return ctx.now.astimezone(timezone.utc).date()


def install(fn_factory, scalar_functions: dict, operators: dict) -> None:
    """Add the date builtins and the temporal ``+ - neg`` to the function tables."""
    from dataclasses import replace

    scalar_functions.update({
        "date_part": fn_factory("date_part", 2, 2, "date_part expects 2 arguments",
                                _time_arg_rule("date_part", INT, True), date_part),
        "epoch": fn_factory("epoch", 1, 1, "epoch expects 1 argument",
                            _time_arg_rule("epoch", FLOAT), epoch_seconds),
        "date_trunc": fn_factory("date_trunc", 2, 2, "date_trunc expects 2 arguments",
                                 _time_arg_rule("date_trunc", _trunc_result, True), date_trunc),
        "strftime": fn_factory("strftime", 2, 2, "strftime expects 2 arguments",
                               _time_arg_rule("strftime", STRING), strftime),
        "strptime": fn_factory("strptime", 2, 2, "strptime expects 2 arguments", _strptime_rule,
                               strptime),
        "current_date": fn_factory("current_date", 0, 0,
                                   "current time scalar function expects 0 arguments",
                                   lambda types: DATE, _current_date, deterministic=False,
                                   needs_context=True),
    })
    for op in ("+", "-", "neg"):
        numeric = operators[op]

        def rule(types, numeric=numeric, op=op):
            temporal = arith_type(op, types)
            return numeric.type_rule(types) if temporal is None else temporal

        def impl(*values, numeric=numeric, op=op):
            if any(isinstance(v, (date, pa.MonthDayNano)) for v in values):
                return arith_value(op, *values)
            return numeric.impl(*values)

        operators[op] = replace(numeric, type_rule=rule, impl=impl)
