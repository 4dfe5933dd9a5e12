"""Vectorised twins of the newer scalar builtins: ROUND(x, n), GREATEST / LEAST, the
REGEXP_* functions and the bitwise operators of ``velaria.reference.functions``.

Each entry of :data:`CALLS` takes the ``Call`` node, its evaluated argument arrays and the row
count, and returns the result array -- or ``None`` when it cannot give *exactly* the
reference's answer cheaply, in which case the accelerated evaluator runs the reference on that
subtree (so a fallback costs speed, never a different answer):

================== ==========================================================================
``round``          numpy over float64: the reference's formula step by step (the powers of
                   ten come from the reference's own ``round_scale``, one per precision)
``greatest/least`` numpy over all-integer or all-float arguments (NULLs skipped, NaN largest,
                   the first of equal values wins); strings and mixed types: reference
``regexp_matches`` ``pyarrow.compute`` (RE2) for patterns in the subset where RE2 and Python's
``regexp_replace`` ``re`` agree: no anchors ``$``, no ``(?...)`` groups, no backreferences,
                   only the escapes listed in ``_SAFE_ESCAPES``; replace also needs a pattern
                   that cannot match the empty string; ``i`` only over ASCII text
``& | # ~ << >>``  numpy int64; shift counts outside 0..63 and ``<<`` overflow: reference
================== ==========================================================================
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.errors import ExecutionError
from velaria.plan.expr import Call, Literal
from velaria.reference import functions as F

from .arrow_util import _F64, _I64, _mask_of, _np_values, _valid

__all__ = ["CALLS", "round", "greatest", "least", "regexp_matches", "regexp_replace", "bitwise"]

def _mask(arrays: list[pa.Array]) -> np.ndarray | None:
    """NULL mask (True = NULL) of a row where any of ``arrays`` is NULL, or None."""
    mask = None
    for a in arrays:
        m = _mask_of(a)
        if m is not None:
            mask = m if mask is None else (mask | m)
    return mask


def _half_away(y: np.ndarray) -> np.ndarray:
    """Round half away from zero, as the reference's ``_round_half_away`` (a new array).

    ``|y| - floor(|y|)`` is exact, so the half test is exact; in-place steps keep it to two
    temporaries (fresh memory, not arithmetic, is what costs here). ``|y|`` is never -0.0, so
    neither is the rounded magnitude: only a negative y gives a negative (or -0.0) result.
    """
    ay = np.abs(y)
    r = np.floor(ay)
    np.subtract(ay, r, out=ay)
    r += ay >= 0.5
    return np.where(y < 0, -r, r)


# ------------------------------------------------------------------------------ ROUND

def _round_scaled(xs: np.ndarray, n: np.ndarray | int, scales: np.ndarray | float) -> np.ndarray:
    """The reference's ``_round_to`` over arrays (``n`` and ``scales`` scalars or per row)."""
    up = n >= 0
    with np.errstate(all="ignore"):
        if np.all(up):
            scaled = xs * scales
            out = _half_away(scaled)
            out /= scales
            return np.where(np.isfinite(scaled), out, xs)  # inf/NaN x, or too many digits: x
        if not np.any(up):
            out = _half_away(xs / scales)
            out *= scales
            out = np.where(np.isinf(scales), np.copysign(0.0, xs), out)
            return np.where(np.isfinite(xs), out, xs)
        return np.where(up, _round_scaled(xs, 0, np.where(up, scales, 1.0)),
                        _round_scaled(xs, -1, np.where(up, 10.0, scales)))


def round(expr: Call, arrays: list[pa.Array], num_rows: int) -> pa.Array | None:
    """ROUND(x) / ROUND(x, n) half away from zero; ``ROUND(x)`` is ``ROUND(x, 0)``."""
    x = arrays[0]
    if pat.is_null(x.type) or (len(arrays) > 1 and pat.is_null(arrays[1].type)):
        return pa.nulls(num_rows, _F64)
    if not (pat.is_integer(x.type) or pat.is_floating(x.type) or pat.is_boolean(x.type)) or pat.is_uint64(x.type):
        return None
    xs = _np_values(x, _F64, 0.0)
    digits = expr.args[1] if len(expr.args) > 1 else Literal(type=pa.int64(), value=0)
    if isinstance(digits, Literal):
        if digits.value is None:
            return pa.nulls(num_rows, _F64)
        n = int(digits.value)
        result = _round_scaled(xs, n, F.round_scale(n))
    else:
        if not pat.is_integer(arrays[1].type) or pat.is_uint64(arrays[1].type):
            return None
        ns = pc.fill_null(arrays[1], 0).to_numpy(zero_copy_only=False).astype(np.int64)
        lo, hi = (int(ns.min()), int(ns.max())) if num_rows else (0, 0)
        if hi - lo > 4096:
            return None  # precisions spread this far apart: the reference is fine
        table = np.array([F.round_scale(k) for k in range(lo, hi + 1)], dtype=np.float64)
        result = _round_scaled(xs, ns, table[ns - lo])
    return pa.array(result, type=_F64, mask=_mask(arrays))


# ------------------------------------------------------------------------------ GREATEST / LEAST

def _extreme(arrays: list[pa.Array], result_type, num_rows: int, greatest: bool) -> pa.Array | None:
    kinds = {("int" if pat.is_integer(a.type) and not pat.is_uint64(a.type) else
              "float" if pat.is_floating(a.type) else
              "null" if pat.is_null(a.type) else "other") for a in arrays}
    kinds.discard("null")
    if len(kinds) != 1 or kinds == {"other"}:
        return None
    is_float = kinds == {"float"}
    dtype = np.float64 if is_float else np.int64
    best = np.zeros(num_rows, dtype=dtype)
    have = np.zeros(num_rows, dtype=bool)
    target = pa.from_numpy_dtype(dtype)
    for a in arrays:
        if pat.is_null(a.type):
            continue
        v = _np_values(a, target, 0)
        valid = _valid(a)
        if valid is None:
            valid = True
        if is_float:
            if greatest:
                better = (v > best) | (np.isnan(v) & ~np.isnan(best))
            else:
                better = (v < best) | (np.isnan(best) & ~np.isnan(v))
        else:
            better = v > best if greatest else v < best
        take = (~have | better) if valid is True else valid & (~have | better)
        best = np.where(take, v, best)
        have |= valid
    out = pa.array(best, mask=None if have.all() else ~have)
    return out.cast(result_type) if not out.type.equals(result_type) else out


def greatest(expr: Call, arrays: list[pa.Array], num_rows: int) -> pa.Array | None:
    """GREATEST: the largest non-NULL argument (NaN largest; the first of equal values)."""
    return _extreme(arrays, expr.type, num_rows, greatest=True)


def least(expr: Call, arrays: list[pa.Array], num_rows: int) -> pa.Array | None:
    """LEAST: the smallest non-NULL argument (NaN largest; the first of equal values)."""
    return _extreme(arrays, expr.type, num_rows, greatest=False)


# ------------------------------------------------------------------------------ REGEXP_*

# escapes that mean the same in RE2 and in Python's re with re.ASCII (\s differs: \v)
_SAFE_ESCAPES = set("dDwW.\\*+?()[]{}|^-/nt")


def _re2_agrees(pattern: str) -> bool:
    """True when RE2 and Python's ``re`` read ``pattern`` the same way (a conservative test)."""
    if "$" in pattern or "(?" in pattern or "[:" in pattern:
        return False
    k = 0
    while k < len(pattern):
        if pattern[k] == "\\":
            if k + 1 >= len(pattern) or pattern[k + 1] not in _SAFE_ESCAPES:
                return False
            k += 2
        else:
            k += 1
    return True


def _constant_text(e) -> str | None:
    """The value of a non-NULL string literal argument, else None."""
    if isinstance(e, Literal) and isinstance(e.value, str):
        return e.value
    return None


def _regex_setup(expr: Call, arrays: list[pa.Array], option_index: int):
    """(pattern, options, compiled) when the RE2 path gives the reference's answer, else None."""
    text = arrays[0]
    if not (pat.is_string(text.type) or pat.is_large_string(text.type)):
        return None
    pattern = _constant_text(expr.args[1])
    options = _constant_text(expr.args[option_index]) if len(expr.args) > option_index else ""
    if pattern is None or options is None or not _re2_agrees(pattern):
        return None
    try:
        compiled = F.regex(pattern, options)
    except ExecutionError:
        return None  # the reference raises the error
    if _ignore_case(options) and pc.all(pc.string_is_ascii(text)).as_py() is False:
        return None  # case folding beyond ASCII: RE2 and re differ
    return pattern, options, compiled


def _ignore_case(options: str) -> bool:
    return "i" in options and options.rfind("i") > options.rfind("c")


def regexp_matches(expr: Call, arrays: list[pa.Array], num_rows: int) -> pa.Array | None:
    """REGEXP_MATCHES(s, pattern[, options]) with RE2 over the whole column."""
    setup = _regex_setup(expr, arrays, 2)
    if setup is None:
        return None
    pattern, options, _ = setup
    return pc.match_substring_regex(arrays[0], pattern=pattern, ignore_case=_ignore_case(options))


def regexp_replace(expr: Call, arrays: list[pa.Array], num_rows: int) -> pa.Array | None:
    """REGEXP_REPLACE(s, pattern, replacement[, options]) with RE2 over the whole column."""
    setup = _regex_setup(expr, arrays, 3)
    replacement = _constant_text(expr.args[2])
    if setup is None or replacement is None:
        return None
    pattern, options, compiled = setup
    if _ignore_case(options) or compiled.fullmatch("") is not None:
        return None  # empty matches: leave the skipping rule to the reference
    try:
        groups = [p for p in F.replacement_template(replacement) if type(p) is int]
    except ExecutionError:
        return None
    if groups and max(groups) > compiled.groups:
        return None
    return pc.replace_substring_regex(arrays[0], pattern=pattern, replacement=replacement,
                                      max_replacements=None if "g" in options else 1)


# ------------------------------------------------------------------------------ bitwise

def _int64s(arrays: list[pa.Array]) -> list[np.ndarray] | None:
    if not all(pat.is_integer(a.type) and not pat.is_uint64(a.type) for a in arrays):
        return None
    return [_np_values(a, _I64, 0) for a in arrays]


def bitwise(expr: Call, arrays: list[pa.Array], num_rows: int) -> pa.Array | None:
    """``& | #`` (xor), ``~`` and the shifts ``<< >>`` on int64; a shift count outside 0..63
    or a ``<<`` that overflows is left to the reference, which raises."""
    if any(pat.is_null(a.type) for a in arrays):
        return pa.nulls(num_rows, pa.int64())
    values = _int64s(arrays)
    if values is None:
        return None
    mask = _mask(arrays)
    valid = np.ones(num_rows, dtype=bool) if mask is None else ~mask
    if expr.name == "bitnot":
        return pa.array(~values[0], mask=mask)
    a, b = values
    if expr.name in ("<<", ">>"):
        if np.any(valid & ((b < 0) | (b > 63))):
            return None
        b = np.where(valid, b, 0)
        if expr.name == ">>":
            return pa.array(a >> b, mask=mask)
        out = a << b
        if np.any(valid & ((out >> b) != a)):
            return None  # the result does not fit in int64
        return pa.array(out, mask=mask)
    out = {"&": np.bitwise_and, "|": np.bitwise_or, "#": np.bitwise_xor}[expr.name](a, b)
    return pa.array(out, mask=mask)


#: Call name -> vectorised twin (registered into the accelerated evaluator)
CALLS = {"round": round, "greatest": greatest, "least": least,
         "regexp_matches": regexp_matches, "regexp_replace": regexp_replace,
         "&": bitwise, "|": bitwise, "#": bitwise, "<<": bitwise, ">>": bitwise, "bitnot": bitwise}
