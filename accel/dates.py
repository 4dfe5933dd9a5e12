"""Vectorised twins of the date builtins, the temporal operators and the temporal casts of
``velaria.reference.dates`` and ``velaria.reference.functions`` (pyarrow.compute and numpy,
no per-row Python).

Every handler returns the reference's exact answer or raises :class:`Unsupported`, and the
accelerated evaluator then runs the reference on that subtree (same values, same errors):

=============================== =============================================================
``year month day iso_year``     Arrow temporal kernels straight on ``date32`` / ``timestamp``
``week yearweek date_part``     columns; ISO text is first cast to ``timestamp[us]`` when every
``epoch date_trunc strftime``   value has the strict form ``YYYY-MM-DD[( |T)HH:MM:SS[.f]]``
                                (then floored to milliseconds, the native text precision);
                                epoch-millisecond numbers inside years 1..9999
``= != < <= > >=``              instants as int64 microseconds (a date is midnight, a text
                                constant parsed once with the reference's rules)
``+ -``                         ``DATE ± n``, ``DATE - DATE``, ``x ± INTERVAL constant``
                                (months by numpy calendar months, day clamped), ``ts - ts``
``strftime`` ``strptime``       in ``accel/date_text.py``
``CAST``                        strict ISO text to DATE / TIMESTAMP, between date types,
                                DATE to text
=============================== =============================================================

Intervals held in columns, interval comparisons and anything outside these shapes run the
reference.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.errors import ExecutionError
from velaria.plan import types as T
from velaria.plan.expr import Call, Cast, Column, Literal, walk
from velaria.reference import batch as ref_batch
from velaria.reference import dates as D
from velaria.reference.functions import get_function

from .arrow_util import _I64, _is_float, _is_int, _is_str, _nulls

__all__ = ["Unsupported", "calls", "cast", "literal", "VECTORISED"]

_US = pa.timestamp("us")
_US_PER_DAY = 86_400_000_000
_MIN_US = -62_135_596_800_000_000          # 0001-01-01
_MAX_US = 253_402_300_799_999_999          # 9999-12-31 23:59:59.999999
_ISO_TEXT = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)?$"
_CAST_TEXT = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$"


class Unsupported(Exception):
    """This node is left to the reference evaluator."""


def _temporal(t) -> bool:
    return pat.is_date(t) or pat.is_timestamp(t) or pat.is_interval(t)


# --------------------------------------------------------------------------- conversions

def _check_range(us: np.ndarray, valid: np.ndarray | None) -> None:
    vals = us if valid is None else us[valid]
    if vals.size and (vals.min() < _MIN_US or vals.max() > _MAX_US):
        raise Unsupported        # outside Python's datetime: the reference raises


def _time_array(arr: pa.Array) -> pa.Array:
    """``arr`` as a ``date32`` or ``timestamp`` array the Arrow temporal kernels read with
    the reference's meaning (dates, timestamps, strict ISO text, epoch milliseconds)."""
    t = arr.type
    if pat.is_date32(t):
        return arr
    if pat.is_timestamp(t):
        if t.tz not in (None, "UTC", "+00:00") or t.unit == "ns":
            raise Unsupported
        return arr if t.unit == "us" else arr.cast(pa.timestamp("us", tz=t.tz))
    if _is_str(t):
        if len(arr) and arr.null_count < len(arr):
            ok = pc.match_substring_regex(arr, _ISO_TEXT)
            if not pc.all(ok).as_py():
                raise Unsupported
        ts = arr.cast(_US)                                  # ArrowInvalid: bad day -> reference
        return pc.floor_temporal(ts, unit="millisecond")    # the native text rule keeps ms
    if _is_int(t) or _is_float(t):
        if _is_float(t):
            if pc.any(pc.invert(pc.is_finite(arr))).as_py():
                raise Unsupported
            arr = pc.trunc(arr)
        ms = arr.cast(_I64)
        mm = pc.min_max(ms)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is not None and (lo < _MIN_US // 1000 or hi > _MAX_US // 1000):
            raise Unsupported
        return pc.multiply(ms, 1000).cast(_US)
    raise Unsupported


def _micros(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """``(int64 microseconds since the epoch, validity or None)`` of a time array."""
    a = _time_array(arr)
    valid = None if a.null_count == 0 else pc.is_valid(a).to_numpy(zero_copy_only=False)
    if pat.is_date32(a.type):
        days = a.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return days * _US_PER_DAY, valid
    us = a.cast(pa.timestamp("us", tz=a.type.tz)).cast(_I64).fill_null(0).to_numpy(zero_copy_only=False)
    return us, valid


def _timestamps(us: np.ndarray, valid: np.ndarray | None, t) -> pa.Array:
    """A ``timestamp[us]`` array (zoned when ``t`` is) from microseconds."""
    _check_range(us, valid)
    mask = None if valid is None else ~valid
    return pa.array(us, type=_I64, mask=mask).cast(t if pat.is_timestamp(t) else _US)


def literal(expr: Literal, n: int) -> pa.Array:
    """A DATE / TIMESTAMP / INTERVAL constant repeated ``n`` times."""
    return pa.repeat(pa.scalar(expr.value, type=expr.type), n)


_ONE_ROW = pa.record_batch([pa.nulls(1)], names=["_"])


def _constant(e):
    """``(True, value)`` for a subtree without column references or clock reads (``DATE
    '2024-01-01' - INTERVAL '90' DAY``), evaluated once by the reference; else ``(False,
    None)``."""
    if isinstance(e, Literal):
        return True, e.value
    for node in walk(e):
        if isinstance(node, Column) or (isinstance(node, Call) and not get_function(node.name).deterministic):
            return False, None
        if not isinstance(node, (Literal, Call, Cast)):
            return False, None
    try:
        return True, ref_batch.evaluate(e, _ONE_ROW, None)[0].as_py()
    except ExecutionError:
        raise Unsupported from None       # the reference raises it again, per row


def _constant_us(e) -> tuple[bool, int | None]:
    """``(True, microseconds or None for NULL)`` of a constant date, timestamp or text
    subtree (reference rules), else ``(False, None)``."""
    if pat.is_interval(e.type) or not (_temporal(e.type) or _is_str(e.type) or pat.is_null(e.type)):
        return False, None
    known, value = _constant(e)
    if not known:
        return False, None
    if value is None:
        return True, None
    try:
        return True, D.epoch_us(value)
    except ExecutionError:
        raise Unsupported from None      # the reference raises the parse error


# --------------------------------------------------------------------------- fields

def _i64(a: pa.Array) -> pa.Array:
    return a.cast(_I64)


def _with_time(a: pa.Array) -> pa.Array:
    return a.cast(_US) if pat.is_date32(a.type) else a


_FIELDS = {
    "year": lambda a: _i64(pc.year(a)),
    "quarter": lambda a: _i64(pc.quarter(a)),
    "month": lambda a: _i64(pc.month(a)),
    "day": lambda a: _i64(pc.day(a)),
    "dayofweek": lambda a: _i64(pc.day_of_week(a, count_from_zero=True, week_start=7)),
    "isodow": lambda a: _i64(pc.day_of_week(a, count_from_zero=False, week_start=1)),
    "dayofyear": lambda a: _i64(pc.day_of_year(a)),
    "week": lambda a: _i64(pc.iso_week(a)),
    "isoyear": lambda a: _i64(pc.iso_year(a)),
    "hour": lambda a: _i64(pc.hour(_with_time(a))),
    "minute": lambda a: _i64(pc.minute(_with_time(a))),
    "second": lambda a: _i64(pc.second(_with_time(a))),
    "millisecond": lambda a: pc.add(pc.multiply(_i64(pc.second(_with_time(a))), 1000),
                                    _i64(pc.millisecond(_with_time(a)))),
    "microsecond": lambda a: pc.add(pc.add(pc.multiply(_i64(pc.second(_with_time(a))), 1_000_000),
                                           pc.multiply(_i64(pc.millisecond(_with_time(a))), 1000)),
                                    _i64(pc.microsecond(_with_time(a)))),
}


def _field(name: str):
    def handler(expr: Call, args, n):
        (a,) = args
        if pat.is_null(a.type):
            return _nulls(n, expr.type)
        return _FIELDS[name](_time_array(a))
    return handler


def _yearweek(expr, args, n):
    (a,) = args
    if pat.is_null(a.type):
        return _nulls(n, expr.type)
    t = _time_array(a)
    return pc.add(pc.multiply(_i64(pc.iso_year(t)), 100), _i64(pc.iso_week(t)))


def _date_part(expr: Call, args, n):
    part = expr.args[0]
    if not isinstance(part, Literal) or part.value not in _FIELDS:
        raise Unsupported
    if pat.is_null(args[1].type):
        return _nulls(n, expr.type)
    return _FIELDS[part.value](_time_array(args[1]))


def _epoch(expr, args, n):
    (a,) = args
    if pat.is_null(a.type):
        return _nulls(n, expr.type)
    us, valid = _micros(a)
    if us.size and np.abs(us).max() > 2 ** 53:
        raise Unsupported        # int -> double would round before the division
    return pa.array(us.astype(np.float64) / 1_000_000, mask=None if valid is None else ~valid)


_TRUNC_UNITS = {"year": "year", "quarter": "quarter", "month": "month", "week": "week",
                "day": "day", "hour": "hour", "minute": "minute", "second": "second",
                "millisecond": "millisecond", "microsecond": "microsecond"}


def _date_trunc(expr: Call, args, n):
    part = expr.args[0]
    if not isinstance(part, Literal) or part.value not in _TRUNC_UNITS:
        raise Unsupported
    if pat.is_null(args[1].type):
        return _nulls(n, expr.type)
    a = _with_time(_time_array(args[1]))
    return pc.floor_temporal(a, unit=_TRUNC_UNITS[part.value], week_starts_monday=True)


# --------------------------------------------------------------------------- operators

def _days(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    valid = None if arr.null_count == 0 else pc.is_valid(arr).to_numpy(zero_copy_only=False)
    return arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), valid


def _both(va, vb):
    if va is None:
        return vb
    return va if vb is None else (va & vb)


def _add_months(us: np.ndarray, months: int) -> np.ndarray:
    """``us + months`` calendar months, the day clamped to the month's end (numpy)."""
    day_us = np.floor_divide(us, _US_PER_DAY)
    time_of_day = us - day_us * _US_PER_DAY
    days = day_us.astype("datetime64[D]")
    month_start = days.astype("datetime64[M]")
    day_index = (days - month_start.astype("datetime64[D]")).astype(np.int64)
    target = month_start + np.timedelta64(months, "M")
    last = ((target + np.timedelta64(1, "M")).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    new_days = target.astype("datetime64[D]").astype(np.int64) + np.minimum(day_index, last - 1)
    return new_days * _US_PER_DAY + time_of_day


def _plus_interval(expr: Call, left, interval: Literal, sign: int, batch_eval):
    months, days, nanos = interval.value
    a = batch_eval(left)
    if pat.is_null(a.type):
        return _nulls(len(a), expr.type)
    us, valid = _micros(a)
    _check_range(us, valid)
    if months:
        us = _add_months(us, sign * months)
        # the months step's own result must be in range too, as in the reference (9999-12-31
        # + 1 month is an error even when the days and time then bring it back)
        _check_range(us, valid)
    us = us + sign * (days * _US_PER_DAY + nanos // 1000)
    return _timestamps(us, valid, expr.type)


def _arith(expr: Call, batch_eval, n):
    """``+ -`` with a DATE, TIMESTAMP or INTERVAL operand (see the module table)."""
    op = expr.name
    a_expr, b_expr = expr.args
    ta, tb = T.family(a_expr.type), T.family(b_expr.type)
    if op == "+" and (T.is_interval(ta) or (ta == T.INT and T.is_date(tb))):
        a_expr, b_expr, ta, tb = b_expr, a_expr, tb, ta
    sign = 1 if op == "+" else -1
    if T.is_interval(tb) and not T.is_interval(ta):
        if not isinstance(b_expr, Literal) or b_expr.value is None:
            raise Unsupported
        return _plus_interval(expr, a_expr, b_expr, sign, batch_eval)
    a, b = batch_eval(a_expr), batch_eval(b_expr)
    if pat.is_null(a.type) or pat.is_null(b.type):
        return _nulls(n, expr.type)
    if T.is_date(ta) and tb == T.INT:
        days, va = _days(a)
        k = b.cast(_I64).fill_null(0).to_numpy(zero_copy_only=False)
        valid = _both(va, None if b.null_count == 0 else pc.is_valid(b).to_numpy(zero_copy_only=False))
        if np.abs(k).max(initial=0) > 4_000_000:
            raise Unsupported
        out = days + sign * k
        _check_range(out * _US_PER_DAY, valid)
        return pa.array(out.astype(np.int32), mask=None if valid is None else ~valid).cast(pa.date32())
    if T.is_date(ta) and T.is_date(tb):
        (da, va), (db, vb) = _days(a), _days(b)
        valid = _both(va, vb)
        return pa.array(da - db, type=_I64, mask=None if valid is None else ~valid)
    if op == "-" and not (T.is_interval(ta) or T.is_interval(tb)):
        (ua, va), (ub, vb) = _micros(a), _micros(b)
        valid = _both(va, vb)
        diff = ua - ub
        days = np.sign(diff) * (np.abs(diff) // _US_PER_DAY)      # truncated toward zero
        rest = (diff - days * _US_PER_DAY) * 1000
        return _intervals(np.zeros(len(diff), np.int32), days.astype(np.int32), rest, valid)
    raise Unsupported


_MDN = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanos", "<i8")])


def _intervals(months, days, nanos, valid) -> pa.Array:
    """A ``month_day_nano_interval`` array built from its three parts (numpy, no rows)."""
    n = len(months)
    packed = np.empty(n, dtype=_MDN)
    packed["months"], packed["days"], packed["nanos"] = months, days, nanos
    validity = None
    if valid is not None:
        validity = pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(T.INTERVAL, n, [validity, pa.py_buffer(packed.tobytes())],
                                 null_count=-1 if valid is not None else 0)


_CMP = {"=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
        ">=": np.greater_equal}


_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_PC_CMP = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater,
           ">=": pc.greater_equal}


def _date_vs_constant(op: str, days: pa.Array, c: int) -> pa.Array:
    """``date op instant`` on the date32 day numbers: ``d * DAY op c`` rewritten as ``d op' k``
    so the column is compared as it is, without widening."""
    floor_k, exact = divmod(c, _US_PER_DAY)
    ceil_k = floor_k + (exact != 0)
    ints = days.view(pa.int32()) if days.type == pa.date32() else days.cast(pa.int32())
    if op in ("=", "!="):
        if exact:                                    # no date is at that instant
            out = pc.is_valid(ints)
            return pc.if_else(out, pa.scalar(op == "!="), pa.scalar(None, pa.bool_()))
        return _PC_CMP[op](ints, pa.scalar(floor_k, pa.int64()))
    k = ceil_k if op in ("<", ">=") else floor_k
    if not -2 ** 31 <= k < 2 ** 31:
        raise Unsupported
    return _PC_CMP[op](ints, pa.scalar(k, pa.int32()))


def _compare(expr: Call, batch_eval, n):
    """A comparison with a DATE or TIMESTAMP operand: instants in microseconds."""
    if any(pat.is_interval(e.type) for e in expr.args):
        raise Unsupported
    consts = [_constant_us(e) for e in expr.args]
    if any(known and value is None for known, value in consts):
        return _nulls(n, T.BOOL)
    for side, (known, value) in enumerate(consts):
        other = expr.args[1 - side]
        if known and not consts[1 - side][0] and pat.is_date32(other.type):
            op = expr.name if side == 1 else _FLIPPED[expr.name]
            arr = batch_eval(other)
            if pat.is_date32(arr.type):
                return _date_vs_constant(op, arr, value)
    sides = []
    for e, (known, value) in zip(expr.args, consts):
        if known:
            sides.append((value, None))
            continue
        arr = batch_eval(e)
        if pat.is_null(arr.type):
            return _nulls(n, T.BOOL)
        if _is_str(arr.type):
            raise Unsupported             # text column vs date: parsed by the reference
        sides.append(_micros(arr))
    (a, va), (b, vb) = sides
    valid = _both(va, vb)
    out = _CMP[expr.name](a, b)
    if np.ndim(out) == 0:
        out = np.full(n, bool(out))
    return pa.array(out, type=pa.bool_(), mask=None if valid is None else ~valid)


# --------------------------------------------------------------------------- CAST

def cast(expr: Cast, a: pa.Array, n: int) -> pa.Array:
    """``CAST`` to or from a date type over an evaluated argument."""
    target, src = expr.target.upper(), a.type
    if pat.is_null(src):
        return _nulls(n, expr.type)
    if target in ("DATE", "TIMESTAMP", "TIMESTAMPTZ"):
        if _is_str(src):
            if a.null_count < len(a) and not pc.all(pc.match_substring_regex(a, _CAST_TEXT)).as_py():
                raise Unsupported
            a = a.cast(_US)
        elif not (pat.is_date32(src) or pat.is_timestamp(src)):
            raise Unsupported
        us, valid = _micros(a)
        if target == "DATE":
            days = np.floor_divide(us, _US_PER_DAY)
            _check_range(days * _US_PER_DAY, valid)
            return pa.array(days.astype(np.int32), mask=None if valid is None else ~valid).cast(pa.date32())
        return _timestamps(us, valid, expr.type)
    if target == "STRING" and pat.is_date32(src):
        return a.cast(pa.string())
    raise Unsupported


# --------------------------------------------------------------------------- registry

_FIELD_FUNCTIONS = {"year": "year", "month": "month", "day": "day", "iso_year": "isoyear",
                    "week": "week"}

#: builtins this module evaluates (explain names them as vectorised)
VECTORISED = set(_FIELD_FUNCTIONS) | {"yearweek", "date_part", "epoch", "date_trunc", "strftime",
                                      "strptime"}


def calls(existing: dict, evaluate_child) -> dict:
    """Handlers for the accelerated evaluator's table. ``existing`` holds its numeric
    handlers (used when no operand is temporal); ``evaluate_child(expr, batch, ctx)``
    evaluates an argument subtree. Handlers raise :class:`Unsupported` to fall back."""
    def with_args(fn):
        def handler(expr, batch, ctx):
            return fn(expr, [evaluate_child(x, batch, ctx) for x in expr.args], batch.num_rows)
        return handler

    def temporal_or(existing_handler, fn):
        def handler(expr, batch, ctx):
            if not any(_temporal(a.type) for a in expr.args):
                return existing_handler(expr, batch, ctx)
            return fn(expr, lambda e: evaluate_child(e, batch, ctx), batch.num_rows)
        return handler

    table = {name: with_args(_field(field)) for name, field in _FIELD_FUNCTIONS.items()}
    from . import date_text      # it imports this module's conversions
    table.update({"yearweek": with_args(_yearweek), "date_part": with_args(_date_part),
                  "epoch": with_args(_epoch), "date_trunc": with_args(_date_trunc),
                  "strftime": with_args(date_text.strftime), "strptime": with_args(date_text.strptime)})
    for op in ("+", "-"):
        table[op] = temporal_or(existing[op], _arith)
    for op in ("=", "!=", "<", "<=", ">", ">="):
        table[op] = temporal_or(existing[op], _compare)
    return table
