"""Accelerated ``evaluate``: IR subtrees compiled to pyarrow.compute / numpy calls.

Checked int64 arithmetic, ``/`` in float64 with NULL on a zero divisor, NaN-aware comparisons,
Kleene logic, IN, CASE on the rows that reach each branch, numeric CAST, LIKE as an anchored
RE2 regex, ASCII LOWER/UPPER, TRIM, LENGTH. Any other node (dates, float->text, Unicode case
mapping, an error path) runs the reference evaluator on that subtree only, so a fallback costs
speed, never a different answer. Twin of ``velaria.reference.batch.evaluate``.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.errors import VelariaError
from velaria.plan.expr import Call, Case, Cast, Column, Expr, InList, Literal, walk
from velaria.plan.kernel_paths import report
from velaria.plan.types import type_name
from velaria.reference import batch as _ref
from velaria.reference.functions import EvalContext

from . import dates, decimal_values, functions_extra, fused
from .arrow_util import _BOOL, _F64, _I64, _TWO53, _conform, _is_float, _is_int, _is_num, _is_str, _mask_of, _nulls, _np_values

__all__ = ["evaluate"]

_C_WHITESPACE = " \t\n\v\f\r"


# ---- evaluate

# Internal: raised by a handler whose node is left to the reference evaluator
_Unsupported = dates.Unsupported


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


def _reference(expr: Expr, batch: pa.RecordBatch, ctx) -> pa.Array:
    """The reference evaluator on this subtree (same values, same errors)."""
    report("reference")
    return _ref.evaluate(expr, batch, ctx)


def _ev(expr: Expr, batch: pa.RecordBatch, ctx) -> pa.Array:
    try:
        if isinstance(expr, Column):
            arr = batch.column(expr.index)
            return arr if arr.type.equals(expr.type) else arr.cast(expr.type)
        if isinstance(expr, Literal):
            return _literal(expr, batch.num_rows)
        if isinstance(expr, Call):
            if fused.can_fuse(expr, batch):
                # the whole tree in one fused pass (numexpr or blocked numpy); a tree it cannot
                # compute exactly is retried below, node by node, with its subtrees fused
                out = fused.fused_values(expr, batch)
                if out is not None:
                    return out
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
    if dates._temporal(t):
        return dates.literal(expr, n)
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


def _arith(expr: Call, batch, ctx):
    if expr.name in _CHECKED and pat.is_decimal128(expr.type):
        # a DECIMAL + - * tree on unscaled int64 end to end, one decimal array at the root
        out = decimal_values.arith_tree(
            expr, batch.num_rows, lambda e, sibling: _scalar_operand(e, sibling) or _ev(e, batch, ctx))
        if out is not None:
            return out
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
    if pat.is_decimal(expr.type):
        return _decimal_arith(expr, a, b)
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


_DECIMAL_KERNELS = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}


def _decimal_arith(expr: Call, a: pa.Array, b: pa.Array) -> pa.Array:
    """Exact DECIMAL ``+ - *``: on the unscaled int64 integers where no row can overflow
    (``decimal_values.arith``), else with Arrow's decimal kernels (integers as DECIMAL(19, 0)),
    then the planned type; a result that does not fit raises ArrowInvalid, and the
    reference computes the node again and reports it. ``%`` is left to the reference.

    Arrow types ``a * b`` as precision ``p1 + p2 + 1`` (``a + b`` one digit more than the
    wider operand) and refuses a decimal128 result above 38 digits, where our rule caps the
    type at 38 and fails only on a value that does not fit: such operands are computed in
    decimal256 (exact), then cast to the planned type."""
    kernel = _DECIMAL_KERNELS.get(expr.name)
    if kernel is None:
        raise _Unsupported
    if pat.is_decimal128(expr.type):
        scaled = decimal_values.arith(expr.name, a, b, expr.type)    # int64 words, no overflow
        if scaled is not None:
            return scaled
    operands = []
    for x in (a, b):
        if _is_int(x.type):
            x = x.cast(pa.decimal128(19, 0))
        elif not pat.is_decimal(x.type):
            raise _Unsupported
        operands.append(x)
    (p1, s1), (p2, s2) = ((x.type.precision, x.type.scale) for x in operands)
    if expr.name == "*":
        arrow_precision = p1 + p2 + 1
    else:
        scale = max(s1, s2)
        arrow_precision = max(p1 - s1, p2 - s2) + scale + 1
    if arrow_precision > 38:
        operands = [x.cast(pa.decimal256(x.type.precision, x.type.scale)) for x in operands]
    return kernel(*operands).cast(expr.type)     # safe cast: never rounds, never wraps


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
    if (pat.is_decimal128(a.type) or _is_int(a.type)) and (pat.is_decimal128(b.type) or _is_int(b.type)):
        out = decimal_values.compare(op, a, b)        # exact, on the scaled integers
        if out is not None:
            return out
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


def _logic(expr, batch, ctx):
    """AND / OR in Kleene logic. The right operand runs on the whole batch (the result of a
    row the left operand decides does not depend on it); only when that raises is it run again
    on the rows the left operand leaves open, as the reference evaluates it, so an error on a
    row a guard excludes (``s <> 'x' AND CAST(s AS INT) > 0``) is never raised."""
    n = batch.num_rows
    combine = pc.and_kleene if expr.name == "and" else pc.or_kleene
    left = _as_bool(_ev(expr.args[0], batch, ctx), n)
    try:
        return combine(left, _as_bool(_ev(expr.args[1], batch, ctx), n))
    except VelariaError:
        # the rows left open: AND where the left value is not FALSE, OR where it is not TRUE
        decided = pc.fill_null(left if expr.name == "or" else pc.invert(left), False)
        open_rows = np.flatnonzero(~decided.to_numpy(zero_copy_only=False))
        if open_rows.size == n:
            raise
    result = left.to_numpy(zero_copy_only=False).astype(object)
    result[~np.asarray(left.is_valid())] = None
    if open_rows.size:
        needed = {node.index for node in walk(expr.args[1]) if isinstance(node, Column)}
        rows = pa.array(open_rows, type=_I64)
        right = _as_bool(_ev(expr.args[1], _needed_batch(batch, needed).take(rows), ctx), open_rows.size)
        result[open_rows] = combine(left.take(rows), right).to_numpy(zero_copy_only=False)
    return pa.array(result, type=_BOOL)


_and = _or = _logic


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
    if target in ("DATE", "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL") or dates._temporal(src):
        return dates.cast(expr, a, n)
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
    if target == "DOUBLE" and pat.is_decimal128(src):
        out = decimal_values.to_double(a)
        if out is None:
            raise _Unsupported              # not certainly the nearest double here
        return out
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
_CALLS.update(dates.calls(_CALLS, _ev))


def _reference_only(node: Expr) -> str | None:
    """The name of ``node`` when the accelerated evaluator hands it to the reference by its
    kind (before looking at any data), else None."""
    if isinstance(node, Call) and node.name not in _CALLS:
        return node.name
    if isinstance(node, Cast):
        src, target = node.arg.type, node.target.upper()
        if target == "STRING" and not (_is_str(src) or _is_int(src) or pat.is_boolean(src)
                                       or pat.is_date32(src) or pat.is_null(src)):
            return f"CAST({type_name(src)} AS VARCHAR)"
        if target == "INTERVAL":
            return "CAST(AS INTERVAL)"
    return None


def plan_path(exprs) -> str:
    """What explain's ``expression_path`` says about evaluating ``exprs``: ``vectorised`` when
    every node has a vectorised handler, else the nodes the reference evaluates (per subtree).
    A handler still falls back for data it cannot take exactly (text that is not strict ISO,
    an overflow); that costs speed, never a different answer."""
    slow = []
    for e in exprs:
        for node in walk(e):
            name = _reference_only(node)
            if name is not None and name not in slow:
                slow.append(name)
    return "vectorised" if not slow else "vectorised; reference=" + ",".join(slow)


evaluate.plan_path = plan_path