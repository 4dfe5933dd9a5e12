"""Vectorised batch-operator kernels: the accelerated twins of ``velaria.reference.batch``.

Same names, signatures and results as the reference kernels (``tests/test_kernel_parity.py``
proves it on generated data); they compute with ``pyarrow.compute`` and numpy on whole
columns instead of Python lists, so they need no C compiler. Whatever a kernel cannot do with
*exactly* the reference semantics it hands to its reference twin -- per expression subtree for
``evaluate``, per call for the others -- so a fallback costs speed, never a different answer.

======================= ===================================================================
``evaluate``            IR subtrees -> pyarrow.compute calls (checked int64 arithmetic, ``/``
                        in float64 with NULL on a zero divisor, NaN-aware comparisons, Kleene
                        logic, IN, CASE on the rows that reach each branch, numeric CAST,
                        LIKE as an anchored RE2 regex, ASCII LOWER/UPPER, TRIM, LENGTH);
                        any other node (dates, float->text, Unicode case mapping, an error
                        path) runs the reference evaluator on that subtree only
``filter_batch``        ``evaluate`` then ``RecordBatch.filter`` (NULL drops the row)
``HashAggregate``       per-batch factorisation (dictionary_encode of normalised keys) merged
                        into first-appearance global groups; COUNT/SUM/AVG/MIN/MAX with numpy
                        ``bincount`` / ``ufunc.at`` (float sums added in input order, exact
                        int64 sums as 32-bit halves); DISTINCT aggregates and non-numeric
                        MIN/MAX or key types it cannot hash run the reference aggregator
``sort_indices``        stable ``pc.sort_indices`` over derived keys (NULL rank, NaN flag,
                        value with -0.0 folded into 0.0); vectors run the reference
``hash_join``           keys factorised over both sides, matches expanded with numpy in the
                        reference output order
``distinct_indices``    first row of each combined factorised key
======================= ===================================================================
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.errors import ExecutionError
from velaria.plan.expr import AggregateCall, Call, Case, Cast, Column, Expr, InList, Literal, walk
from velaria.reference import batch as _ref
from velaria.reference.distinct import hash_key
from velaria.reference.functions import EvalContext
from velaria.reference.join import JOIN_KINDS

from . import batch_c, functions_extra

__all__ = ["KERNELS", "evaluate", "filter_batch", "HashAggregate", "sort_indices", "hash_join",
           "distinct_indices"]

_F64 = pa.float64()
_I64 = pa.int64()
_BOOL = pa.bool_()
_TWO53 = 2 ** 53
_C_WHITESPACE = " \t\n\v\f\r"


# ============================================================================ type helpers

def _is_int(t) -> bool:
    """Integers that widen to int64 without loss (uint64 may not: it is left to the reference)."""
    return pat.is_integer(t) and not pat.is_uint64(t)


def _is_float(t) -> bool:
    return pat.is_float32(t) or pat.is_float64(t)


def _is_num(t) -> bool:
    return _is_int(t) or _is_float(t)


def _is_str(t) -> bool:
    return pat.is_string(t) or pat.is_large_string(t)


def _nulls(n: int, t) -> pa.Array:
    return pa.nulls(n, type=t)


def _np_values(arr: pa.Array, t, fill) -> np.ndarray:
    """``arr`` cast to ``t`` as a numpy array, NULL slots replaced by ``fill``."""
    a = arr.cast(t, safe=False) if not arr.type.equals(t) else arr
    if a.null_count:
        a = pc.fill_null(a, pa.scalar(fill, type=t))
    return a.to_numpy(zero_copy_only=False)


def _valid(arr: pa.Array) -> np.ndarray | None:
    """Boolean numpy mask of non-NULL slots (None when there is no NULL)."""
    if arr.null_count == 0:
        return None
    if pat.is_null(arr.type):
        return np.zeros(len(arr), dtype=bool)
    return pc.is_valid(arr).to_numpy(zero_copy_only=False)


# ============================================================================ evaluate

class _Unsupported(Exception):
    """Internal: this node is left to the reference evaluator."""


def evaluate(expr: Expr, batch: pa.RecordBatch, context=None) -> pa.Array:
    """``expr`` over ``batch`` as an Arrow array of ``expr.type``.

    A bare column reference returns the batch's own array (its Arrow type as ingested).
    """
    if isinstance(expr, Column):
        arr = batch.column(expr.index)
        return arr if arr.type.equals(expr.type) else arr.cast(expr.type)
    if context is None:
        context = EvalContext.current()
    return _conform(_ev(expr, batch, context), expr.type, batch.num_rows)


def _conform(arr: pa.Array, t, n: int) -> pa.Array:
    """``arr`` as type ``t`` (int -> float widening, NULL-typed -> all NULL)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type.equals(t):
        return arr
    if pat.is_null(arr.type) or pat.is_null(t):
        return _nulls(n, t)
    return arr.cast(t, safe=False) if (_is_float(t) and _is_num(arr.type)) else arr.cast(t)


def _reference(expr: Expr, batch: pa.RecordBatch, ctx) -> pa.Array:
    """The reference evaluator on this subtree (same values, same errors)."""
    return _ref.evaluate(expr, batch, ctx)


def _ev(expr: Expr, batch: pa.RecordBatch, ctx) -> pa.Array:
    try:
        if isinstance(expr, Column):
            arr = batch.column(expr.index)
            return arr if arr.type.equals(expr.type) else arr.cast(expr.type)
        if isinstance(expr, Literal):
            return _literal(expr, batch.num_rows)
        if isinstance(expr, Call):
            handler = _CALLS.get(expr.name)
            if handler is not None:
                return handler(expr, batch, ctx)
        elif isinstance(expr, Cast):
            return _cast(expr, batch, ctx)
        elif isinstance(expr, Case):
            return _case(expr, batch, ctx)
        elif isinstance(expr, InList):
            return _in_list(expr, batch, ctx)
    except _Unsupported:
        pass
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError):
        # an overflow or a value the fast path cannot represent: the reference computes the
        # node again and raises (or answers) exactly as the specification says
        pass
    return _reference(expr, batch, ctx)


def _literal(expr: Literal, n: int) -> pa.Array:
    t = expr.type
    if expr.value is None or pat.is_null(t):
        return _nulls(n, t)
    if not (_is_num(t) or _is_str(t) or pat.is_boolean(t)):
        raise _Unsupported
    value = expr.value
    if type(value) is int and _is_float(t):
        value = float(value)
    return pa.repeat(pa.scalar(value, type=t), n)


def _args(expr: Call, batch, ctx) -> list[pa.Array]:
    return [_ev(a, batch, ctx) for a in expr.args]


def _all_null_result(expr, args, n):
    """NULL-typed operand of a NULL-propagating operator: the result is all NULL."""
    if any(pat.is_null(a.type) for a in args):
        return _nulls(n, expr.type)
    return None


# --------------------------------------------------------------------------- arithmetic

_CHECKED = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}
_UNCHECKED = {"+": pc.add, "-": pc.subtract, "*": pc.multiply}


def _scalar_operand(e: Expr, other: Expr):
    """A non-NULL numeric literal operand of ``+ - *`` as an Arrow scalar (no repeated array),
    unless the other operand is a literal too (the result must stay an array)."""
    if not isinstance(e, Literal) or isinstance(other, Literal) or e.value is None:
        return None
    value = e.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _is_num(e.type):
        return None
    if type(value) is int and _is_float(e.type):
        value = float(value)
    return pa.scalar(value, type=e.type)


_NP_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply}
_FUSE_BLOCK = 1 << 16


def _float_kind(e: Expr, batch) -> str | None:
    """For fusing float ``+ - *`` trees: ``"float"`` / ``"int"`` for an operand the tree can
    read (a NULL-free float64 or integer column, a float64 or integer literal, a fusable float
    ``+ - *``), else None."""
    if isinstance(e, Call):
        if e.name in _NP_ARITH and len(e.args) == 2 and pat.is_float64(e.type):
            kinds = [_float_kind(a, batch) for a in e.args]
            if None not in kinds and "float" in kinds:   # int op int is checked int64 arithmetic
                return "float"
        return None
    if isinstance(e, Literal):
        v = e.value
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        if pat.is_float64(e.type):
            return "float"
        if _is_int(e.type) and type(v) is int and -(2 ** 63) <= v < 2 ** 63:
            return "int"
        return None
    if isinstance(e, Column):
        arr = batch.column(e.index)
        if isinstance(arr, pa.ChunkedArray) or arr.null_count or not arr.type.equals(e.type):
            return None
        if pat.is_float64(arr.type):
            return "float"
        return "int" if _is_int(arr.type) else None
    return None


def _fused_float(expr: Call, batch: pa.RecordBatch) -> pa.Array:
    """A float64 ``+ - *`` tree over NULL-free columns in one blocked pass: each node is the
    same IEEE operation the per-node path performs (integer operands widened to float64 as
    ``cast(float64)`` does), on 65,536-row blocks, so the intermediates stay in cache."""
    n = batch.num_rows
    cols: dict[int, np.ndarray] = {}

    def leaf(e):
        if isinstance(e, Literal):
            return float(e.value)
        if e.index not in cols:
            cols[e.index] = batch.column(e.index).to_numpy(zero_copy_only=False)
        return cols[e.index]

    scratch: dict[int, np.ndarray] = {}     # one block-sized buffer per node (no per-block malloc)

    def tmp(e, size):
        buf = scratch.get(id(e))
        if buf is None:
            buf = scratch[id(e)] = np.empty(_FUSE_BLOCK, dtype=np.float64)
        return buf[:size]

    def ev(e, lo, hi, out=None):
        if isinstance(e, Call):
            a, b = (ev(x, lo, hi) for x in e.args)
            return _NP_ARITH[e.name](a, b, out=out if out is not None else tmp(e, hi - lo))
        x = leaf(e)
        if isinstance(x, float):
            return x
        x = x[lo:hi]
        if x.dtype == np.float64:
            return x
        t = tmp(e, hi - lo)
        np.copyto(t, x, casting="unsafe")
        return t

    out = batch_c._pool_empty(n, np.float64)
    with np.errstate(all="ignore"):        # inf - inf etc. are values here, not warnings
        for lo in range(0, n, _FUSE_BLOCK):
            hi = min(n, lo + _FUSE_BLOCK)
            ev(expr, lo, hi, out[lo:hi])
    return pa.Array.from_buffers(_F64, n, [None, pa.py_buffer(out)])


def _arith(expr: Call, batch, ctx):
    if expr.name in _NP_ARITH and batch.num_rows and _float_kind(expr, batch) == "float":
        return _fused_float(expr, batch)
    if expr.name in _CHECKED:
        a0, a1 = expr.args
        args = [_scalar_operand(a0, a1), _scalar_operand(a1, a0)]
        args = [x if x is not None else _ev(e, batch, ctx) for x, e in zip(args, expr.args)]
    else:
        args = _args(expr, batch, ctx)
    n = batch.num_rows
    done = _all_null_result(expr, args, n)
    if done is not None:
        return done
    a, b = args
    if not (_is_num(a.type) and _is_num(b.type)):
        raise _Unsupported
    op = expr.name
    if op == "/":
        fa, fb = a.cast(_F64, safe=False), b.cast(_F64, safe=False)
        quotient = pc.divide(fa, fb)
        return pc.if_else(pc.equal(fb, 0.0), pa.scalar(None, _F64), quotient)
    if op == "%":
        return _mod(a, b)
    if _is_int(a.type) and _is_int(b.type):
        return _CHECKED[op](a.cast(_I64), b.cast(_I64))  # ArrowInvalid on overflow -> reference
    return _UNCHECKED[op](a.cast(_F64, safe=False), b.cast(_F64, safe=False))


def _mod(a: pa.Array, b: pa.Array) -> pa.Array:
    """``%``: truncated remainder (sign of the dividend); NULL where the divisor is 0."""
    valid = pc.and_(pc.is_valid(a), pc.is_valid(b)).to_numpy(zero_copy_only=False)
    if _is_int(a.type) and _is_int(b.type):
        x, y = _np_values(a, _I64, 0), _np_values(b, _I64, 1)
        zero = y == 0
        safe_y = np.where(zero | (y == -1), 1, y)        # x % -1 == 0; avoids INT64_MIN / -1
        r = np.where(y == -1, 0, np.fmod(x, safe_y))
        return pa.array(r, type=_I64, mask=~valid | zero)
    x, y = _np_values(a, _F64, 0.0), _np_values(b, _F64, 1.0)
    zero = y == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.fmod(x, np.where(zero, 1.0, y))
    return pa.array(r, type=_F64, mask=~valid | zero)


def _neg(expr: Call, batch, ctx):
    (a,) = _args(expr, batch, ctx)
    if pat.is_null(a.type):
        return _nulls(batch.num_rows, expr.type)
    if _is_int(a.type):
        return pc.negate_checked(a.cast(_I64))
    if _is_float(a.type):
        return pc.negate(a.cast(_F64))
    raise _Unsupported


# --------------------------------------------------------------------------- comparisons

_CMP = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater,
        ">=": pc.greater_equal}
_CMP_NP = {"=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
           ">=": np.greater_equal}


def _int_fits_double(a: pa.Array) -> bool:
    """True when every integer of ``a`` converts to float64 exactly (|x| <= 2**53)."""
    mm = pc.min_max(a)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    return lo is None or (-_TWO53 <= lo and hi <= _TWO53)


def _compare(op: str, a: pa.Array, b: pa.Array, n: int) -> pa.Array:
    """``a op b`` with the reference order (NaN equals NaN and is above every number)."""
    if pat.is_null(a.type) or pat.is_null(b.type):
        return _nulls(n, _BOOL)
    fn = _CMP[op]
    if _is_int(a.type) and _is_int(b.type):
        return fn(a.cast(_I64), b.cast(_I64))
    if _is_num(a.type) and _is_num(b.type):
        for side in (a, b):  # int vs float compares exactly in Python; float64 only when exact
            if _is_int(side.type) and not _int_fits_double(side):
                raise _Unsupported
        fa, fb = a.cast(_F64, safe=False), b.cast(_F64, safe=False)
        base = fn(fa, fb)
        na, nb = pc.is_nan(fa), pc.is_nan(fb)
        any_nan = pc.or_(na, nb)
        if not pc.any(any_nan).as_py():
            return base
        ia = pc.fill_null(na, False).to_numpy(zero_copy_only=False).astype(np.int8)
        ib = pc.fill_null(nb, False).to_numpy(zero_copy_only=False).astype(np.int8)
        fixed = pa.array(_CMP_NP[op](ia - ib, 0))   # NaN rows: NaN vs NaN is 0, NaN vs x is 1
        return pc.if_else(any_nan, fixed, base)
    if _is_str(a.type) and _is_str(b.type):
        if not a.type.equals(b.type):
            a, b = a.cast(pa.large_string()), b.cast(pa.large_string())
        return fn(a, b)                       # UTF-8 byte order == code point order
    if pat.is_boolean(a.type) and pat.is_boolean(b.type):
        return fn(a, b)
    raise _Unsupported


_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _compare_literal(op: str, col: pa.Array, value) -> pa.Array | None:
    """``col op value`` for a numeric column and a non-NULL, non-NaN numeric literal, compared
    against an Arrow scalar (no repeated array); None when the general path must decide."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    t = col.type
    if _is_int(t) and type(value) is int:
        if not -(2 ** 63) <= value < 2 ** 63:
            return None
        return _CMP[op](col.cast(_I64), pa.scalar(value, type=_I64))
    if not _is_float(t) or value != value or (type(value) is int and abs(value) > _TWO53):
        return None
    col = col.cast(_F64)
    base = _CMP[op](col, pa.scalar(float(value), type=_F64))
    if col.null_count == len(col):
        return base
    nan = pc.is_nan(col)
    if not pc.any(nan).as_py():
        return base
    # NaN is above every number: NaN rows compare like 1 against 0
    return pc.if_else(nan, pa.scalar(bool(_CMP_NP[op](1, 0))), base)


def _comparison(expr: Call, batch, ctx):
    left, right = expr.args
    for col_expr, lit, op in ((left, right, expr.name), (right, left, _FLIP[expr.name])):
        if isinstance(lit, Literal) and lit.value is not None and not isinstance(col_expr, Literal):
            col = _ev(col_expr, batch, ctx)
            value = lit.value
            if type(value) is int and _is_float(lit.type):  # as the reference evaluates the literal
                value = float(value)
            out = _compare_literal(op, col, value)
            if out is not None:
                return out
            other = _ev(lit, batch, ctx)
            a, b = (col, other) if col_expr is left else (other, col)
            return _compare(expr.name, a, b, batch.num_rows)
    a, b = _args(expr, batch, ctx)
    return _compare(expr.name, a, b, batch.num_rows)


# --------------------------------------------------------------------------- logic

def _as_bool(a: pa.Array, n: int) -> pa.Array:
    if pat.is_null(a.type):
        return _nulls(n, _BOOL)
    if not pat.is_boolean(a.type):
        raise _Unsupported
    return a


def _and(expr, batch, ctx):
    a, b = (_as_bool(x, batch.num_rows) for x in _args(expr, batch, ctx))
    return pc.and_kleene(a, b)


def _or(expr, batch, ctx):
    a, b = (_as_bool(x, batch.num_rows) for x in _args(expr, batch, ctx))
    return pc.or_kleene(a, b)


def _not(expr, batch, ctx):
    (a,) = _args(expr, batch, ctx)
    return pc.invert(_as_bool(a, batch.num_rows))


def _is_null(expr, batch, ctx):
    (a,) = _args(expr, batch, ctx)
    return pc.is_null(a)          # NaN is a value, not NULL (nan_is_null=False)


def _is_not_null(expr, batch, ctx):
    (a,) = _args(expr, batch, ctx)
    return pc.is_valid(a)


# --------------------------------------------------------------------------- strings

_RE2_SPECIAL = set("\\.^$|?*+()[]{}")


def _like_regex(pattern: str) -> str:
    """The reference LIKE (``%`` any run, ``_`` one code point, no escape) as an anchored RE2
    pattern where ``.`` also matches a newline (Python's ``re.DOTALL`` fullmatch)."""
    parts = []
    for ch in pattern:
        if ch == "%":
            parts.append(".*")
        elif ch == "_":
            parts.append(".")
        elif ch in _RE2_SPECIAL:
            parts.append("\\" + ch)
        else:
            parts.append(ch)
    return "(?s)\\A" + "".join(parts) + "\\z"


def _like(expr, batch, ctx):
    subject, pattern = expr.args
    if not isinstance(pattern, Literal):
        raise _Unsupported
    s = _ev(subject, batch, ctx)
    if pattern.value is None or pat.is_null(s.type):
        return _nulls(batch.num_rows, _BOOL)
    if not (_is_str(s.type) and isinstance(pattern.value, str)):
        raise _Unsupported
    return pc.match_substring_regex(s, _like_regex(pattern.value))


def _string_args(expr, batch, ctx) -> list[pa.Array]:
    args = _args(expr, batch, ctx)
    if not all(_is_str(a.type) for a in args):
        raise _Unsupported          # numbers, float32, dates: the reference's to_string rules
    return args


def _concat_op(expr, batch, ctx):
    args = _args(expr, batch, ctx)
    if any(pat.is_null(a.type) for a in args):
        return _nulls(batch.num_rows, expr.type)
    if not all(_is_str(a.type) for a in args):
        raise _Unsupported
    a, b = (x.cast(pa.large_string()) for x in args)
    return pc.binary_join_element_wise(a, b, "").cast(pa.string())


def _length(expr, batch, ctx):
    (a,) = _string_args(expr, batch, ctx)
    return pc.utf8_length(a).cast(_I64)      # code points, as Python len()


def _ascii_case(fn):
    def handler(expr, batch, ctx):
        (a,) = _string_args(expr, batch, ctx)
        if pc.all(pc.string_is_ascii(a)).as_py() is False:
            raise _Unsupported      # Unicode case mapping: Python's str.lower/upper rules
        return fn(a)
    return handler


def _trim(fn):
    def handler(expr, batch, ctx):
        (a,) = _string_args(expr, batch, ctx)
        return fn(a, characters=_C_WHITESPACE)
    return handler


# --------------------------------------------------------------------------- numbers

def _float_arg(expr, batch, ctx) -> pa.Array | None:
    (a,) = _args(expr, batch, ctx)
    if pat.is_null(a.type):
        return None
    if not (_is_num(a.type) or pat.is_boolean(a.type)):
        raise _Unsupported
    return a.cast(_F64, safe=False)


def _abs(expr, batch, ctx):
    a = _float_arg(expr, batch, ctx)
    return _nulls(batch.num_rows, _F64) if a is None else pc.abs(a)


def _rounding(np_fn):
    """CEIL / FLOOR: integral floats; ``+ 0.0`` because Python's ``float(math.ceil(x))`` is
    never -0.0 (``math.ceil(-0.5)`` is the int 0)."""
    def handler(expr, batch, ctx):
        a = _float_arg(expr, batch, ctx)
        if a is None:
            return _nulls(batch.num_rows, _F64)
        x = _np_values(a, _F64, 0.0)
        with np.errstate(invalid="ignore"):
            r = np.where(np.isfinite(x), np_fn(x) + 0.0, x)
        return pa.array(r, type=_F64, mask=_mask_of(a))
    return handler


def _mask_of(a: pa.Array):
    v = _valid(a)
    return None if v is None else ~v


def _round(expr, batch, ctx):
    """ROUND half away from zero, exactly as ``_round_half_away`` (``-0.3`` -> ``-0.0``)."""
    a = _float_arg(expr, batch, ctx)
    if a is None:
        return _nulls(batch.num_rows, _F64)
    x = _np_values(a, _F64, 0.0)
    with np.errstate(invalid="ignore"):
        ax = np.abs(x)
        r = np.floor(ax)
        up = (r + (ax - r >= 0.5)) + 0.0
        res = np.where(x < 0, -up, up)
        res = np.where(np.isfinite(x), res, x)
    return pa.array(res, type=_F64, mask=_mask_of(a))


# --------------------------------------------------------------------------- CAST

def _cast(expr: Cast, batch, ctx):
    a = _ev(expr.arg, batch, ctx)
    n = batch.num_rows
    t = expr.type
    if pat.is_null(a.type):
        return _nulls(n, t)
    target = expr.target.upper()
    src = a.type
    if target == "STRING":
        if _is_str(src) or _is_int(src) or pat.is_boolean(src):
            return a.cast(pa.string())      # decimal ints, 'true'/'false' as to_string
        raise _Unsupported                  # floats print as Python repr
    if target == "BOOL":
        if pat.is_boolean(src):
            return a
        if _is_num(src):
            return pc.not_equal(a, pa.scalar(0, type=src))      # bool(NaN) is True
        if _is_str(src):
            low = pc.ascii_lower(a)         # only ASCII text lowers to 'true' or '1'
            return pc.or_(pc.equal(low, "true"), pc.equal(low, "1"))
        raise _Unsupported
    if target == "INT":
        if _is_int(src) or pat.is_boolean(src):
            return a.cast(_I64)
        if _is_float(src):
            x = a.cast(_F64)
            mm = pc.min_max(x)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if pc.any(pc.is_nan(x)).as_py() or (lo is not None and not (-2.0 ** 63 <= lo and hi < 2.0 ** 63)):
                raise _Unsupported          # the reference raises the cast / overflow error
            return pc.cast(x, options=pc.CastOptions(_I64, allow_float_truncate=True))
        raise _Unsupported
    if target in ("DOUBLE", "FLOAT"):
        if _is_num(src) or pat.is_boolean(src):
            d = a.cast(_F64, safe=False)
            return d if target == "DOUBLE" else d.cast(pa.float32(), safe=False)
        raise _Unsupported
    raise _Unsupported


# --------------------------------------------------------------------------- CASE / IN

def _needed_batch(batch: pa.RecordBatch, needed: set[int]) -> pa.RecordBatch:
    """``batch`` with the columns no branch reads replaced by NULL columns (cheap to take)."""
    if len(needed) == batch.num_columns:
        return batch
    cols = [batch.column(j) if j in needed else _nulls(batch.num_rows, pa.null())
            for j in range(batch.num_columns)]
    return pa.RecordBatch.from_arrays(cols, names=[f"c{j}" for j in range(batch.num_columns)])


def _case(expr: Case, batch, ctx):
    """Each branch sees only the rows that reach it (the reference's evaluation rule)."""
    n = batch.num_rows
    t = expr.type
    needed = {node.index for node in walk(expr) if isinstance(node, Column)}
    base = _needed_batch(batch, needed)
    remaining = np.arange(n, dtype=np.int64)
    positions: list[np.ndarray] = []
    values: list[pa.Array] = []

    def subset(rows):
        return base if len(rows) == n else base.take(pa.array(rows, type=_I64))

    for condition, value in expr.whens:
        if remaining.size == 0:
            break
        mask = _as_bool(_ev(condition, subset(remaining), ctx), remaining.size)
        m = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        chosen = remaining[m]
        if chosen.size:
            positions.append(chosen)
            values.append(_conform(_ev(value, subset(chosen), ctx), t, chosen.size))
        remaining = remaining[~m]
    if expr.else_ is not None and remaining.size:
        positions.append(remaining)
        values.append(_conform(_ev(expr.else_, subset(remaining), ctx), t, remaining.size))
        remaining = remaining[:0]
    if remaining.size:
        positions.append(remaining)
        values.append(_nulls(remaining.size, t))
    if not positions:
        return _nulls(n, t)
    if len(positions) == 1:
        return values[0]
    order = np.argsort(np.concatenate(positions), kind="stable")
    return pa.concat_arrays(values).take(pa.array(order, type=_I64))


def _in_list(expr: InList, batch, ctx):
    n = batch.num_rows
    if not expr.items:
        raise _Unsupported
    operand = _ev(expr.arg, batch, ctx)
    result = None
    for item in expr.items:
        eq = _compare("=", operand, _ev(item, batch, ctx), n)
        result = eq if result is None else pc.or_kleene(result, eq)
    return pc.invert(result) if expr.negated else result


_CALLS = {
    "+": _arith, "-": _arith, "*": _arith, "/": _arith, "%": _arith, "neg": _neg,
    "=": _comparison, "!=": _comparison, "<": _comparison, "<=": _comparison,
    ">": _comparison, ">=": _comparison,
    "and": _and, "or": _or, "not": _not, "is_null": _is_null, "is_not_null": _is_not_null,
    "like": _like, "concat_op": _concat_op, "length": _length,
    "lower": _ascii_case(pc.ascii_lower), "upper": _ascii_case(pc.ascii_upper),
    "trim": _trim(pc.utf8_trim), "ltrim": _trim(pc.utf8_ltrim), "rtrim": _trim(pc.utf8_rtrim),
    "abs": _abs, "ceil": _rounding(np.ceil), "floor": _rounding(np.floor), "round": _round,
}


def _twin(fn):
    """Adapt a ``functions_extra`` twin (None: not exactly computable there) to a handler."""
    def handler(expr, batch, ctx):
        out = fn(expr, _args(expr, batch, ctx), batch.num_rows)
        if out is None:
            raise _Unsupported
        return out
    return handler


_CALLS.update({name: _twin(fn) for name, fn in functions_extra.CALLS.items()})


def filter_batch(predicate: Expr, batch: pa.RecordBatch, context=None) -> pa.RecordBatch:
    """The rows of ``batch`` for which ``predicate`` is TRUE (NULL and FALSE drop the row)."""
    if context is None:
        context = EvalContext.current()
    if not (pat.is_boolean(predicate.type) or pat.is_null(predicate.type)):
        return _ref.filter_batch(predicate, batch, context)
    if batch.num_rows and batch_c.available():
        kept = _filter_compare_constant(predicate, batch)
        if kept is not None:
            return kept
    mask = evaluate(predicate, batch, context)
    if pat.is_null(mask.type):
        mask = _nulls(batch.num_rows, _BOOL)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    if mask.true_count == batch.num_rows:
        return batch
    return batch.filter(mask, null_selection_behavior="drop")


def _raw_values(arr: pa.Array, dtype) -> np.ndarray:
    """The data buffer of a fixed-width ``arr`` as numpy (NULL slots hold arbitrary values)."""
    off = arr.offset
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=off + len(arr))[off:]


def _filter_compare_constant(predicate: Expr, batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """``filter_batch`` for ``column op constant`` on a float64 / int64 column in one C pass
    (compare and compact together, ``batch_c.select_cmp``): the compared column comes out
    compacted, 8-byte columns without NULLs are gathered in C, the rest by ``take``. None when
    the predicate has another shape (the general path decides)."""
    if not (isinstance(predicate, Call) and predicate.name in batch_c.CMP_OPS and len(predicate.args) == 2):
        return None
    left, right = predicate.args
    if isinstance(left, Column) and isinstance(right, Literal):
        col_expr, lit, op = left, right, predicate.name
    elif isinstance(right, Column) and isinstance(left, Literal):
        col_expr, lit, op = right, left, _FLIP[predicate.name]
    else:
        return None
    value = lit.value
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if type(value) is int and _is_float(lit.type):     # as the reference evaluates the literal
        value = float(value)
    col = batch.column(col_expr.index)
    if isinstance(col, pa.ChunkedArray) or not col.type.equals(col_expr.type):
        return None
    if pat.is_float64(col.type):
        if value != value or (type(value) is int and abs(value) > _TWO53):
            return None
        value, dtype = float(value), np.float64
    elif pat.is_int64(col.type):
        if type(value) is not int or not -(2 ** 63) <= value < 2 ** 63:
            return None
        dtype = np.int64
    else:
        return None
    n = batch.num_rows
    if col.null_count == n:
        return batch.slice(0, 0)
    valid = _valid(col)
    others = [i for i in range(batch.num_columns) if i != col_expr.index]
    idx, vals = batch_c.select_cmp(_raw_values(col, dtype), valid, op, value, want_idx=bool(others))
    k = vals.size
    if k == n:
        return batch
    if k == 0:
        return batch.slice(0, 0)
    arrays: list = [None] * batch.num_columns
    arrays[col_expr.index] = pa.Array.from_buffers(col.type, k, [None, pa.py_buffer(vals)])
    take_idx = None
    for i in others:
        a = batch.column(i)
        t = a.type
        if a.null_count == 0 and pat.is_primitive(t) and not pat.is_boolean(t) and t.bit_width == 64:
            out = batch_c.gather_u64(_raw_values(a, np.uint64), idx)
            arrays[i] = pa.Array.from_buffers(t, k, [None, pa.py_buffer(out)])
        else:
            if take_idx is None:
                take_idx = pa.array(idx, type=_I64)
            arrays[i] = a.take(take_idx)
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


# ============================================================================ factorisation

def _hashable(t) -> bool:
    """Key types whose Arrow hashing gives exactly ``hash_key`` equality (after _normal)."""
    return (pat.is_integer(t) or _is_float(t) or _is_str(t) or pat.is_boolean(t)
            or pat.is_null(t) or pat.is_date(t) or pat.is_timestamp(t) or pat.is_binary(t)
            or pat.is_large_binary(t))


def _normal(arr: pa.Array) -> pa.Array:
    """``arr`` with hash_key equality as Arrow value equality: a float becomes the int64 bits
    of its value with -0.0 folded into 0.0 and every NaN made the same NaN."""
    if not _is_float(arr.type):
        return arr
    x = _np_values(arr, _F64, 0.0) + 0.0        # -0.0 + 0.0 == +0.0
    x[np.isnan(x)] = np.nan
    return pa.array(x.view(np.int64), type=_I64, mask=_mask_of(arr))


def _codes(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(int64 code per row in first-appearance order, the normalised distinct values);
    NULL is a value of its own."""
    n = len(arr)
    if pat.is_null(arr.type):
        return np.zeros(n, dtype=np.int64), pa.nulls(1 if n else 0)
    d = _normal(arr).dictionary_encode(null_encoding="encode")
    return d.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False), d.dictionary


def _combine(arrays: Sequence[pa.Array]) -> tuple[np.ndarray, int]:
    """One int64 code per row, equal exactly when every column is equal (hash_key sense)."""
    return _combine_codes([_codes(arr) for arr in arrays])


def _combine_codes(parts) -> tuple[np.ndarray, int]:
    """Combine per-column ``(codes, dictionary)`` into one int64 code per row."""
    combined = None
    size = 1
    for c, dictionary in parts:
        k = max(len(dictionary), 1)
        if combined is None:
            combined, size = c, k
            continue
        if size * k >= 2 ** 62:        # compact before the product could overflow
            _, combined = np.unique(combined, return_inverse=True)
            size = int(combined.max()) + 1 if combined.size else 1
        combined = combined * k + c
        size *= k
    return combined, size


# ============================================================================ HashAggregate

def _agg_supported(agg: AggregateCall, arg: pa.Array | None) -> bool:
    if agg.distinct:
        return False
    if arg is None or agg.func == "count" or pat.is_null(arg.type):
        return True
    if agg.func in ("sum", "avg"):
        return _is_num(arg.type) and not pat.is_float16(arg.type)
    return _is_num(arg.type) or pat.is_boolean(arg.type)


def _grow(a: np.ndarray, n: int, fill) -> np.ndarray:
    if len(a) >= n:
        return a
    out = np.full(max(n, 2 * len(a), 16), fill, dtype=a.dtype)
    out[:len(a)] = a
    return out


class _AggState:
    """Running per-group state of one aggregate (numpy arrays indexed by group id)."""

    def __init__(self, agg: AggregateCall):
        self.agg = agg
        self.count = np.zeros(0, dtype=np.int64)     # rows (COUNT(*)) or non-NULL values
        self.kind = None                             # "float" | "int" | None (decided on data)
        self.total = np.zeros(0, dtype=np.float64)   # float SUM / AVG
        self.lo = np.zeros(0, dtype=np.int64)        # int SUM / AVG: total = hi * 2**32 + lo
        self.hi = np.zeros(0, dtype=np.int64)
        self.best = None                             # MIN / MAX
        self.mirror = None    # None (no batch yet) | index of the state it copies | False

    def grow(self, g: int) -> None:
        self.count = _grow(self.count, g, 0)
        if self.agg.func in ("sum", "avg"):
            self.total = _grow(self.total, g, 0.0)
            self.lo = _grow(self.lo, g, 0)
            self.hi = _grow(self.hi, g, 0)
        elif self.best is not None:
            self.best = _grow(self.best, g, 0)


class HashAggregate:
    """GROUP BY over Arrow batches: ``update(keys, args, num_rows)`` per batch, then
    ``finish(types)`` -> one Arrow array per key then per aggregate."""

    def __init__(self, aggregates: Sequence[AggregateCall], num_keys: int):
        self._aggregates = list(aggregates)
        self._num_keys = num_keys
        # the reference twin validates the arguments and takes over any case we do not cover
        self._reference = _ref.HashAggregate(self._aggregates, num_keys)
        self._mode: str | None = None            # None (no data yet) | "fast" | "reference"
        self._groups: dict[tuple, int] = {}      # several keys: normalised key -> group id
        self._uniques: pa.Array | None = None    # one key: normalised key of each group id
        self._key_parts: list[list[pa.Array]] = [[] for _ in range(num_keys)]
        # one integer key with a small value range: lut[key - lo] = group id, lut[-1] = NULL's
        self._lut: np.ndarray | None = None
        self._lut_lo = 0
        self._dense_type = None
        self._ngroups = 1 if num_keys == 0 else 0
        self._states = [_AggState(a) for a in self._aggregates]
        for s in self._states:
            s.grow(self._ngroups)

    # -- group ids -----------------------------------------------------------------------

    _DENSE_MAX = 1 << 20         # largest key range (slots) the dense lookup table may span

    def _dense_ids(self, arr: pa.Array) -> np.ndarray | None:
        """Group ids through the dense lookup table (one integer key whose values all lie in
        a small range); None when this batch does not fit it (the table is then retired)."""
        if not (_is_int(arr.type) and (self._dense_type is None or arr.type.equals(self._dense_type))):
            return self._retire_dense()
        if self._lut is None and self._uniques is not None:
            return None                                   # already on the hashing path
        mm = pc.min_max(arr)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None:
            lo = hi = self._lut_lo if self._lut is not None else 0
        if self._lut is not None:
            old_lo, old_n = self._lut_lo, self._lut.size - 1
            lo, hi = min(lo, old_lo), max(hi, old_lo + old_n - 1)
        span = hi - lo + 1
        if span > self._DENSE_MAX or span > 4 * (self._ngroups + len(arr)) + 1024:
            return self._retire_dense()
        if self._lut is None:
            self._lut = np.full(span + 1, -1, dtype=np.int64)
            self._dense_type = arr.type
        elif lo != self._lut_lo or span != self._lut.size - 1:
            lut = np.full(span + 1, -1, dtype=np.int64)
            off = self._lut_lo - lo
            lut[off:off + self._lut.size - 1] = self._lut[:-1]
            lut[-1] = self._lut[-1]
            self._lut = lut
        self._lut_lo = lo
        keys = _np_values(arr, _I64, lo)
        gids, new_rows, nxt = batch_c.dense_group_ids(keys, _valid(arr), lo, self._lut, self._lut.size - 1,
                                                      self._ngroups)
        if new_rows.size:
            take = pa.array(new_rows, type=_I64)
            self._key_parts[0].append(arr.take(take))
            self._ngroups = nxt
            for st in self._states:
                st.grow(self._ngroups)
        return gids

    def _retire_dense(self) -> None:
        """Leave the dense table for the hashing path: its keys become ``_uniques``."""
        if self._lut is not None:
            slots = np.nonzero(self._lut >= 0)[0]
            gids = self._lut[slots]
            values = pa.array(slots + self._lut_lo, type=_I64, mask=slots == self._lut.size - 1)
            order = np.argsort(gids, kind="stable")
            self._uniques = values.take(pa.array(order, type=_I64)).cast(self._dense_type)
            self._lut = None
        return None

    def _group_ids(self, key_arrays: list[pa.Array], num_rows: int) -> np.ndarray | None:
        if self._num_keys == 0:
            return None
        if self._num_keys == 1:
            gids = self._dense_ids(key_arrays[0])
            if gids is not None:
                return gids
        if self._num_keys == 1 and not pat.is_null(key_arrays[0].type):
            # one key: map this batch's distinct (normalised) keys to global ids vectorised
            local, dictionary = _codes(key_arrays[0])
            if self._uniques is None:
                known = np.full(len(dictionary), -1, dtype=np.int64)
            else:
                found = pc.index_in(dictionary, value_set=self._uniques, skip_nulls=False)
                known = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            new_local = np.nonzero(known < 0)[0]
            mapping = known
            if new_local.size:
                mapping[new_local] = self._ngroups + np.arange(new_local.size, dtype=np.int64)
                added = dictionary.take(pa.array(new_local, type=_I64))
                self._uniques = added if self._uniques is None else pa.concat_arrays([self._uniques, added])
            new_local = new_local.tolist()
        else:
            if self._num_keys == 1:
                local, dictionary = _codes(key_arrays[0])
                normal_keys = [(v,) for v in dictionary.to_pylist()]
            else:
                parts = [_codes(k) for k in key_arrays]
                combined, _ = _combine_codes(parts)
                dense = pa.array(combined).dictionary_encode()          # first-appearance ids
                local = dense.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
                rep = np.empty(len(dense.dictionary), dtype=np.int64)
                rep[local] = np.arange(num_rows, dtype=np.int64)        # any row of each group
                columns = [d.take(pa.array(c[rep], type=_I64)).to_pylist() for c, d in parts]
                normal_keys = list(zip(*columns))
            groups = self._groups
            mapping = np.empty(len(normal_keys), dtype=np.int64)
            new_local = []
            for i, key in enumerate(normal_keys):
                key = tuple(hash_key(v) for v in key)
                gid = groups.get(key)
                if gid is None:
                    gid = groups[key] = self._ngroups + len(new_local)
                    new_local.append(i)
                mapping[i] = gid
        if new_local:
            _, first_rows = np.unique(local, return_index=True)
            take = pa.array(first_rows[new_local], type=_I64)
            for j, k in enumerate(key_arrays):
                self._key_parts[j].append(k.take(take))
            self._ngroups += len(new_local)
            for s in self._states:
                s.grow(self._ngroups)
        return mapping[local]

    # -- update --------------------------------------------------------------------------

    def update(self, key_arrays: list[pa.Array], arg_arrays: list[pa.Array | None], num_rows: int) -> None:
        if self._mode is None:
            fast = (len(key_arrays) == self._num_keys and len(arg_arrays) == len(self._aggregates)
                    and all(_hashable(k.type) for k in key_arrays)
                    and all(_agg_supported(a, x) for a, x in zip(self._aggregates, arg_arrays)))
            self._mode = "fast" if fast else "reference"
        if self._mode == "reference":
            self._reference.update(key_arrays, arg_arrays, num_rows)
            return
        key_arrays = [k.combine_chunks() if isinstance(k, pa.ChunkedArray) else k for k in key_arrays]
        gids = self._group_ids(key_arrays, num_rows)
        g = self._ngroups
        summed: list[tuple[pa.Array, int]] = []
        for j, (state, arg) in enumerate(zip(self._states, arg_arrays)):
            if state.agg.func in ("sum", "avg") and arg is not None and _is_float(arg.type):
                # SUM(v) and AVG(v) get the very same array from the executor: the second
                # copies the first one's totals and counts, as long as it has done so on every
                # batch (then both histories are identical)
                twin = next((i for a, i in summed if a is arg), None)
                if state.mirror is not False and twin is not None and state.mirror in (None, twin):
                    src = self._states[twin]
                    state.mirror = twin
                    state.kind = src.kind
                    state.total[:g] = src.total[:g]
                    state.count[:g] = src.count[:g]
                    continue
                state.mirror = False
                summed.append((arg, j))
            else:
                state.mirror = False
            if isinstance(arg, pa.ChunkedArray):
                arg = arg.combine_chunks()
            self._accumulate(state, gids, arg, g, num_rows)

    @staticmethod
    def _accumulate(state: _AggState, gids: np.ndarray | None, arg: pa.Array | None, g: int,
                    num_rows: int) -> None:
        if arg is None:                                   # COUNT(*)
            if gids is None:
                state.count[0] += num_rows
            else:
                batch_c.group_count(gids, None, state.count[:g])
            return
        if pat.is_null(arg.type):
            return
        valid = _valid(arg)
        if state.agg.func in ("sum", "avg") and _is_float(arg.type):
            if valid is not None and not valid.any():
                return
            # every value added to its group's running total in input order, exactly as the
            # reference's left-to-right Python sum
            state.kind = "float"
            batch_c.group_sum_f64(gids, _np_values(arg, _F64, 0.0), valid, state.total[:g], state.count[:g])
            return
        if gids is None:
            gids = np.zeros(len(arg), dtype=np.int64)
        ids = gids if valid is None else gids[valid]
        batch_count = np.bincount(ids, minlength=g)
        func = state.agg.func
        if func == "count" or ids.size == 0:
            state.count[:g] += batch_count
            return
        if _is_float(arg.type):
            x = _np_values(arg, _F64, 0.0)
            state.kind = "float"
        else:
            x = _np_values(arg, _I64, 0)
            state.kind = "int"
        if valid is not None:
            x = x[valid]
        if func in ("sum", "avg"):
            if state.kind == "float":
                # prepend the running totals so bincount adds every value in input order,
                # exactly as the reference's left-to-right Python sum
                idx = np.concatenate([np.arange(g, dtype=np.int64), ids])
                w = np.concatenate([state.total[:g], x])
                state.total[:g] = np.bincount(idx, weights=w, minlength=g)
            else:
                _add_int_sums(state, ids, x, g)
        else:
            _fold_best(state, ids, x, g, batch_count)
        state.count[:g] += batch_count

    # -- finish --------------------------------------------------------------------------

    def finish(self, types: list[pa.DataType]) -> list[pa.Array]:
        if self._mode != "fast":
            return self._reference.finish(types)
        g = self._ngroups
        out = []
        for j in range(self._num_keys):
            parts = self._key_parts[j]
            keys = pa.concat_arrays(parts) if parts else pa.array([], type=types[j])
            out.append(_conform(keys, types[j], g))
        results = [self._result(s, g) for s in self._states]     # raises in reference order
        for r, t in zip(results, types[self._num_keys:]):
            out.append(r if r.type.equals(t) else _conform(r, t, g))
        return out

    @staticmethod
    def _result(state: _AggState, g: int) -> pa.Array:
        agg, count = state.agg, state.count[:g]
        if agg.func == "count":
            return pa.array(count, type=_I64)
        empty = count == 0
        if state.kind is None:                            # no non-NULL value anywhere
            return _nulls(g, agg.type)
        if agg.func in ("sum", "avg"):
            if state.kind == "float":
                total = state.total[:g]
                if agg.func == "avg":
                    with np.errstate(invalid="ignore", divide="ignore"):
                        total = total / np.where(empty, 1, count)
                return pa.array(total, type=_F64, mask=empty)
            return _int_sum_result(state, g, empty)
        best = state.best[:g]
        if pat.is_boolean(agg.type):
            return pa.array(best != 0, type=_BOOL, mask=empty)
        return pa.array(best, mask=empty).cast(agg.type)


def _add_int_sums(state: _AggState, ids: np.ndarray, x: np.ndarray, g: int) -> None:
    """Add int64 values per group exactly: float64 bincount is exact while every partial sum
    stays below 2**53, so values are split into 32-bit halves and rows into 2**20 chunks."""
    lo_part = np.zeros(g, dtype=np.int64)
    hi_part = np.zeros(g, dtype=np.int64)
    step = 1 << 20
    small = x.size and max(int(x.max()), -int(x.min())) * min(x.size, step) < _TWO53
    for start in range(0, x.size, step):
        xs, gs = x[start:start + step], ids[start:start + step]
        if small:
            lo_part += np.bincount(gs, weights=xs.astype(np.float64), minlength=g).astype(np.int64)
        else:
            lo_part += np.bincount(gs, weights=(xs & 0xFFFFFFFF).astype(np.float64), minlength=g).astype(np.int64)
            hi_part += np.bincount(gs, weights=(xs >> 32).astype(np.float64), minlength=g).astype(np.int64)
    lo = state.lo[:g] + lo_part
    carry = lo >> 32
    state.lo[:g] = lo - (carry << 32)
    add = hi_part + carry
    hi = state.hi[:g]
    if state.hi.dtype == object:
        state.hi[:g] = hi + add.astype(object)
        return
    with np.errstate(over="ignore"):
        new = hi + add
    if np.any(((hi ^ new) & (add ^ new)) < 0):        # int64 wrapped: keep exact Python ints
        state.hi = state.hi.astype(object)
        state.hi[:g] = state.hi[:g] + add.astype(object)
    else:
        state.hi[:g] = new


def _int_sum_result(state: _AggState, g: int, empty: np.ndarray) -> pa.Array:
    agg, count = state.agg, state.count[:g]
    hi, lo = state.hi[:g], state.lo[:g]
    if hi.dtype != object and (hi.size == 0 or np.abs(hi).max() < 2 ** 30):
        total = hi * (1 << 32) + lo                       # exact in int64
        if agg.func == "sum":
            return pa.array(total, type=_I64, mask=empty)
        if total.size == 0 or np.abs(total).max() <= _TWO53:
            with np.errstate(invalid="ignore", divide="ignore"):
                return pa.array(total / np.where(empty, 1, count), type=_F64, mask=empty)
    totals = [int(h) * (1 << 32) + int(l) for h, l in zip(hi, lo)]
    values = []
    for total, c in zip(totals, count):
        if c == 0:
            values.append(None)
        elif agg.func == "avg":
            values.append(total / int(c))     # exact int / int, correctly rounded
        else:
            if not -(2 ** 63) <= total <= 2 ** 63 - 1:
                raise ExecutionError(f"SUM overflow: the total {total} does not fit in BIGINT "
                                     "(int64); use SUM(CAST(x AS DOUBLE))")
            values.append(total)
    return pa.array(values, type=_F64 if agg.func == "avg" else _I64)


def _fold_best(state: _AggState, ids: np.ndarray, x: np.ndarray, g: int, batch_count: np.ndarray) -> None:
    """MIN / MAX of this batch per group, folded into the running best: NaN is the greatest
    value, and on ties (-0.0 vs 0.0) the value seen first is kept."""
    is_min = state.agg.func == "min"
    floating = x.dtype == np.float64
    if floating:
        nan = np.isnan(x)
        if is_min:
            b = np.full(g, np.inf)
            np.minimum.at(b, ids, np.where(nan, np.inf, x))
            non_nan = np.bincount(ids, weights=~nan, minlength=g)
            b = np.where(non_nan == 0, np.nan, b)
        else:
            b = np.full(g, -np.inf)
            np.maximum.at(b, ids, np.where(nan, -np.inf, x))
            b = np.where(np.bincount(ids, weights=nan, minlength=g) > 0, np.nan, b)
        zeros = x == 0
        if np.any(zeros & np.signbit(x)):       # the sign of a zero best is the first zero's
            zrows = np.nonzero(zeros)[0]
            zg, first = np.unique(ids[zrows], return_index=True)
            sel = b[zg] == 0
            b[zg[sel]] = x[zrows[first[sel]]]
    else:
        if is_min:
            b = np.full(g, np.iinfo(np.int64).max)
            np.minimum.at(b, ids, x)
        else:
            b = np.full(g, np.iinfo(np.int64).min)
            np.maximum.at(b, ids, x)
    if state.best is None:
        state.best = np.zeros(len(state.count), dtype=b.dtype)
    r = state.best[:g]
    has = state.count[:g] > 0
    present = batch_count > 0
    if floating:
        if is_min:
            better = (b < r) | (np.isnan(r) & ~np.isnan(b))
        else:
            better = (b > r) | (np.isnan(b) & ~np.isnan(r))
    else:
        better = (b < r) if is_min else (b > r)
    take = present & (~has | better)
    r[take] = b[take]


# ============================================================================ sort

def _sortable(t) -> bool:
    return (_is_num(t) or pat.is_integer(t) or _is_str(t) or pat.is_boolean(t) or pat.is_null(t)
            or pat.is_date(t) or pat.is_timestamp(t))


def sort_indices(key_arrays: list[pa.Array], descending: list[bool], nulls_first: list[bool],
                 limit: int | None = None) -> pa.Array:
    """Row order as int64 indices: stable, multi-key; only the first ``limit`` when given."""
    if (not key_arrays or not (len(key_arrays) == len(descending) == len(nulls_first))
            or (limit is not None and limit < 0)
            or not all(_sortable(k.type) for k in key_arrays)):
        return _ref.sort_indices(key_arrays, descending, nulls_first, limit)
    n = len(key_arrays[0])
    if len(key_arrays) == 1:
        fast = _sort_one_numeric(key_arrays[0], descending[0], nulls_first[0])
        if fast is not None:
            return fast if limit is None else fast.slice(0, limit)
    columns: list[pa.Array] = []
    keys: list[tuple[str, str]] = []

    def add(arr, order):
        keys.append((f"k{len(columns)}", order))
        columns.append(arr)

    for arr, desc, nf in zip(key_arrays, descending, nulls_first):
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pat.is_null(arr.type):
            continue                            # all NULL: no effect on the order
        order = "descending" if desc else "ascending"
        if arr.null_count:
            is_null = pc.is_null(arr)
            add((pc.invert(is_null) if nf else is_null).cast(pa.uint8()), "ascending")
        if _is_float(arr.type):
            v = arr.cast(_F64)
            nan = pc.is_nan(v)
            if pc.any(nan).as_py():
                add(pc.fill_null(nan, False).cast(pa.uint8()), order)      # NaN above numbers
                v = pc.if_else(nan, 0.0, v)
            arr = pc.add(v, 0.0)                                           # -0.0 ties 0.0
        elif pat.is_boolean(arr.type):
            arr = arr.cast(pa.uint8())
        add(arr, order)
    if not columns or n == 0:
        order_idx = pa.array(np.arange(n, dtype=np.int64))
    else:
        table = pa.Table.from_arrays(columns, names=[k for k, _ in keys])
        order_idx = pc.sort_indices(table, sort_keys=keys).cast(_I64)
    if limit is not None:
        order_idx = order_idx.slice(0, limit)
    return order_idx


def _sort_one_numeric(arr: pa.Array, desc: bool, nulls_first: bool) -> pa.Array | None:
    """One int or float ORDER BY key: a stable radix argsort of order-preserving uint64 keys
    (NaN above every number, -0.0 tied with 0.0); NULL rows, in input order, go first or last.
    None for other key types."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if _is_float(t):
        x = _np_values(arr, _F64, 0.0)
    elif _is_int(t):
        x = _np_values(arr, _I64, 0)
    else:
        return None
    valid = _valid(arr)
    if valid is None:
        order = batch_c.radix_argsort(batch_c.sort_key(x, desc))
    else:
        rows = np.flatnonzero(valid)
        order = rows[batch_c.radix_argsort(batch_c.sort_key(x[rows], desc))]
        nulls = np.flatnonzero(~valid)
        order = np.concatenate([nulls, order] if nulls_first else [order, nulls])
    return pa.array(order, type=_I64)


# ============================================================================ join / distinct

def _join_pair(left: pa.Array, right: pa.Array) -> tuple[pa.Array, pa.Array] | None:
    """Both key columns in one type under which Arrow equality is ``hash_key`` equality,
    or None when the pair needs the reference."""
    lt, rt = left.type, right.type
    if pat.is_null(lt) or pat.is_null(rt):
        return _nulls(len(left), _I64), _nulls(len(right), _I64)   # NULL never matches
    if _is_int(lt) and _is_int(rt):
        return left.cast(_I64), right.cast(_I64)
    if _is_num(lt) and _is_num(rt):
        for side in (left, right):
            if _is_int(side.type) and not _int_fits_double(side):
                return None
        return left.cast(_F64, safe=False), right.cast(_F64, safe=False)
    if _is_str(lt) and _is_str(rt):
        return left.cast(pa.large_string()), right.cast(pa.large_string())
    if lt.equals(rt) and (pat.is_boolean(lt) or pat.is_date(lt) or pat.is_timestamp(lt)
                          or pat.is_integer(lt)):
        return left, right
    return None


def hash_join(left_keys: list[pa.Array], right_keys: list[pa.Array], how: str) -> tuple[pa.Array, pa.Array]:
    """(left row indices, right row indices) of an equi-join; a NULL right index pads a LEFT JOIN row."""
    if how not in JOIN_KINDS or not left_keys or len(left_keys) != len(right_keys):
        return _ref.hash_join(left_keys, right_keys, how)
    nl, nr = len(left_keys[0]), len(right_keys[0])
    pairs = []
    for lk, rk in zip(left_keys, right_keys):
        lk = lk.combine_chunks() if isinstance(lk, pa.ChunkedArray) else lk
        rk = rk.combine_chunks() if isinstance(rk, pa.ChunkedArray) else rk
        pair = _join_pair(lk, rk)
        if pair is None:
            return _ref.hash_join(left_keys, right_keys, how)
        pairs.append(pair)
    both = [pa.concat_arrays([l, r]) for l, r in pairs]
    codes, size = _combine(both)
    null_row = np.zeros(nl + nr, dtype=bool)
    for arr in both:
        v = _valid(arr)
        if v is not None:
            null_row |= ~v
    codes = np.where(null_row, -1, codes)                 # a NULL key never matches
    lc, rc = codes[:nl], codes[nl:]
    _, dense = np.unique(codes, return_inverse=True)      # compact codes for bincount
    dense = dense.reshape(-1).astype(np.int64)
    dl, dr = dense[:nl], dense[nl:]
    k = int(dense.max()) + 1 if dense.size else 1
    rvalid = rc >= 0
    right_order = np.nonzero(rvalid)[0]
    right_order = right_order[np.argsort(dr[right_order], kind="stable")]   # by code, then row
    per_code = np.bincount(dr[rvalid], minlength=k)
    starts = np.concatenate([[0], np.cumsum(per_code)[:-1]])
    matches = np.where(lc >= 0, per_code[dl], 0)
    emit = matches if how == "inner" else np.maximum(matches, 1)
    total = int(emit.sum())
    out_left = np.repeat(np.arange(nl, dtype=np.int64), emit)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(emit) - emit, emit)
    matched = np.repeat(matches > 0, emit)
    pos = np.repeat(starts[dl], emit) + offsets
    out_right = np.where(matched, right_order[np.where(matched, pos, 0)] if right_order.size else 0, 0)
    right = pa.array(out_right.astype(np.int64), type=_I64, mask=None if how == "inner" else ~matched)
    return pa.array(out_left, type=_I64), right


def distinct_indices(arrays: list[pa.Array]) -> pa.Array:
    """Indices of the first occurrence of each distinct row, in input order."""
    if not arrays or not all(_hashable(a.type) for a in arrays):
        return _ref.distinct_indices(arrays)
    arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays]
    if len(arrays[0]) == 0:
        return pa.array([], type=_I64)
    codes, _ = _combine(arrays)
    _, first = np.unique(codes, return_index=True)
    first.sort()
    return pa.array(first.astype(np.int64), type=_I64)


#: registry name -> accelerated kernel (velaria.kernels overlays these on the reference)
KERNELS = {
    "evaluate": evaluate,
    "filter_batch": filter_batch,
    "hash_aggregate": HashAggregate,
    "sort_indices": sort_indices,
    "hash_join": hash_join,
    "distinct_indices": distinct_indices,
}
