"""Vectorised twins of ``strftime`` and ``strptime`` (``velaria.reference.dates``).

``strftime`` writes formats whose every code has one width (``%Y-%m-%d %H:%M:%S.%f``, short
names) straight into a byte matrix, a row per value, from digit tables; other formats (full
day and month names) join per-code text columns. ``strptime`` runs Arrow's parser for
``%Y %m %d %H %M %S`` formats once every text has the shape Python's parser accepts, and only
when the parsed value prints back to the same text (Arrow rolls Feb 30 over to Mar 1 where
Python raises). Anything else raises :class:`~velaria.accel.dates.Unsupported` and the
reference runs.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.errors import ExecutionError
from velaria.plan.expr import Call, Literal
from velaria.reference import dates as D

from .arrow_util import _I64, _is_str, _mask_of, _nulls
from .dates import Unsupported, _i64, _time_array, _with_time

__all__ = ["strftime", "strptime"]


_DAYS = pa.array(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])
_MONTHS = pa.array(["January", "February", "March", "April", "May", "June", "July", "August",
                    "September", "October", "November", "December"])


def _pad(a: pa.Array, width: int) -> pa.Array:
    return pc.utf8_lpad(a.cast(pa.string()), width=width, padding="0")


def _names(names: pa.Array, index: pa.Array, short: bool) -> pa.Array:
    out = names.take(index)
    return pc.utf8_slice_codeunits(out, 0, 3) if short else out


def _code_text(code: str, a: pa.Array) -> pa.Array:
    """The text of one strftime code over a timestamp array (the reference's STRFTIME_CODES)."""
    if code == "Y":
        return _pad(pc.year(a), 4)
    if code in "yI":
        a_np = (pc.year(a) if code == "y" else pc.hour(a)).cast(_I64).fill_null(0).to_numpy(zero_copy_only=False)
        value = a_np % 100 if code == "y" else (a_np + 11) % 12 + 1
        return _pad(pa.array(value, mask=_mask_of(a)), 2)
    if code in "mdHMSj":
        fn = {"m": pc.month, "d": pc.day, "H": pc.hour, "M": pc.minute, "S": pc.second,
              "j": pc.day_of_year}[code]
        return _pad(fn(a), 3 if code == "j" else 2)
    if code == "f":
        return _pad(pc.add(pc.multiply(_i64(pc.millisecond(a)), 1000), _i64(pc.microsecond(a))), 6)
    if code == "p":
        return pc.if_else(pc.less(pc.hour(a), 12), "AM", "PM")
    if code in "aA":
        return _names(_DAYS, pc.day_of_week(a, count_from_zero=True, week_start=1), code == "a")
    if code in "bB":
        return _names(_MONTHS, pc.subtract(_i64(pc.month(a)), 1), code == "b")
    if code == "w":
        return pc.day_of_week(a, count_from_zero=True, week_start=7).cast(pa.string())
    if code == "u":
        return pc.day_of_week(a, count_from_zero=False, week_start=1).cast(pa.string())
    raise Unsupported


def strftime(expr: Call, args, n):
    """``strftime(x, format)`` over a whole column (the reference's codes and names)."""
    fmt = expr.args[1]
    if not isinstance(fmt, Literal) or not isinstance(fmt.value, str):
        raise Unsupported
    if pat.is_null(args[0].type):
        return _nulls(n, expr.type)
    try:
        tokens = D.strftime_tokens(fmt.value)
    except ExecutionError:
        raise Unsupported from None
    a = _with_time(_time_array(args[0]))
    fixed = _fixed_width_text(tokens, a)
    if fixed is not None:
        return fixed
    pieces = [pa.scalar(t) if isinstance(t, str) else _code_text(t[1], a) for t in tokens]
    arrays = [p for p in pieces if isinstance(p, pa.Array)]
    if not arrays:                        # a format without codes: the same text on every row
        text = "".join(p.as_py() for p in pieces)
        return pc.if_else(pc.is_valid(a), pa.scalar(text), pa.scalar(None, pa.string()))
    if len(pieces) == 1:
        return arrays[0]
    return pc.binary_join_element_wise(*pieces, "")


#: strftime code -> (width, numbers of a timestamp array) for codes of one width on every row
_NUMERIC_CODES = {
    "Y": (4, pc.year), "y": (2, lambda a: pc.year(a)), "m": (2, pc.month), "d": (2, pc.day),
    "H": (2, pc.hour), "I": (2, pc.hour), "M": (2, pc.minute), "S": (2, pc.second),
    "j": (3, pc.day_of_year), "w": (1, lambda a: pc.day_of_week(a, count_from_zero=True, week_start=7)),
    "u": (1, lambda a: pc.day_of_week(a, count_from_zero=False, week_start=1)),
    "f": (6, lambda a: pc.add(pc.multiply(_i64(pc.millisecond(a)), 1000), _i64(pc.microsecond(a)))),
}
_SHORT_NAMES = {"a": np.frombuffer(b"MonTueWedThuFriSatSun", np.uint8).reshape(7, 3),
                "b": np.frombuffer(b"JanFebMarAprMayJunJulAugSepOctNovDec", np.uint8).reshape(12, 3),
                "p": np.frombuffer(b"AMPM", np.uint8).reshape(2, 2)}


#: width -> a table whose row v is the zero-padded decimal digits of v (ASCII)
_DIGITS = {w: (np.arange(10 ** w)[:, None] // 10 ** np.arange(w - 1, -1, -1) % 10 + 48).astype(np.uint8)
           for w in (1, 2, 3, 4)}


def _fixed_width_text(tokens: list, a: pa.Array) -> pa.Array | None:
    """strftime for formats whose every code has one width (``%Y-%m-%d %H:%M:%S``): the digits
    are written straight into one byte matrix, a row per value (numpy, no per-row text)."""
    parts, width = [], 0
    for t in tokens:
        if isinstance(t, str):
            raw = np.frombuffer(t.encode(), np.uint8)
            parts.append((width, raw, None))
            width += len(raw)
            continue
        code = t[1]
        if code in _NUMERIC_CODES:
            w = _NUMERIC_CODES[code][0]
        elif code in _SHORT_NAMES:
            w = _SHORT_NAMES[code].shape[1]
        else:
            return None                       # %A, %B: names of several lengths
        parts.append((width, None, code))
        width += w
    n = len(a)
    out = np.empty((n, width), np.uint8)
    for pos, raw, code in parts:
        if raw is not None:
            out[:, pos:pos + len(raw)] = raw
            continue
        if code in _SHORT_NAMES:
            if code == "a":
                index = pc.day_of_week(a, count_from_zero=True, week_start=1)
            elif code == "b":
                index = pc.subtract(_i64(pc.month(a)), 1)
            else:
                index = pc.greater_equal(pc.hour(a), 12).cast(_I64)
            idx = index.cast(_I64).fill_null(0).to_numpy(zero_copy_only=False)
            table = _SHORT_NAMES[code]
            out[:, pos:pos + table.shape[1]] = table[idx]
            continue
        w, fn = _NUMERIC_CODES[code]
        v = fn(a).cast(_I64).fill_null(0).to_numpy(zero_copy_only=False)
        if code == "y":
            v = v % 100
        elif code == "I":
            v = (v + 11) % 12 + 1
        if w == 6:                             # microseconds: two 3-digit halves
            out[:, pos:pos + 3] = _DIGITS[3][v // 1000]
            out[:, pos + 3:pos + 6] = _DIGITS[3][v % 1000]
        else:
            out[:, pos:pos + w] = _DIGITS[w][v]
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32) if n else np.zeros(1, np.int32)
    validity = None if a.null_count == 0 else pc.is_valid(a).buffers()[1]
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())],
                                 null_count=a.null_count)


#: Python strptime's regular expression for each code this path accepts
_PY_STRPTIME = {"Y": r"\d\d\d\d", "m": r"(?:1[0-2]|0[1-9]|[1-9])",
                "d": r"(?:3[01]|[12]\d|0[1-9]|[1-9]| [1-9])", "H": r"(?:2[0-3]|[0-1]\d|\d)",
                "M": r"(?:[0-5]\d|\d)", "S": r"(?:6[0-1]|[0-5]\d|\d)"}


def _strptime_regex(fmt: str) -> str | None:
    out, k = ["^"], 0
    while k < len(fmt):
        ch = fmt[k]
        if ch == "%":
            code = fmt[k + 1] if k + 1 < len(fmt) else ""
            if code not in _PY_STRPTIME:
                return None
            out.append(_PY_STRPTIME[code])
            k += 2
        elif ch.isspace() or ch.isalpha():
            return None                   # Python folds blanks and letter case: reference
        else:
            out.append(re.escape(ch))
            k += 1
    return "".join(out) + "$"


def strptime(expr: Call, args, n):
    """``strptime(text, format)`` by Arrow when the texts have the shape Python accepts."""
    fmt = expr.args[1]
    if not isinstance(fmt, Literal) or not isinstance(fmt.value, str):
        raise Unsupported
    text = args[0]
    if pat.is_null(text.type):
        return _nulls(n, expr.type)
    pattern = _strptime_regex(fmt.value)
    if pattern is None or not _is_str(text.type):
        raise Unsupported
    if text.null_count < len(text) and not pc.all(pc.match_substring_regex(text, pattern)).as_py():
        raise Unsupported                  # the reference raises the mismatch error
    out = pc.strptime(text, format=fmt.value, unit="us", error_is_null=True)
    if out.null_count != text.null_count:
        raise Unsupported                  # the reference raises the mismatch error
    # Arrow rolls Feb 30 over to Mar 1 where Python raises; short fields ('1' for %m) print
    # back differently: either way the text does not round-trip and the reference decides
    back = pc.strftime(out.cast(pa.timestamp("s")), format=fmt.value)
    if not pc.all(pc.equal(back, text)).as_py() in (True, None):
        raise Unsupported
    return out
