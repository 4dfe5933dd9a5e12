"""DECIMAL values as scaled integers, for the accelerated aggregate.

A ``decimal128(p, s)`` value is stored as a 128-bit two's-complement integer ``u`` (the
*unscaled* value; the number is ``u * 10**-s``). When ``p <= 18`` every ``u`` fits in int64,
so SUM / AVG / MIN / MAX can run on the int64 words with the exact integer machinery
(``int_sums``) and the scale is put back at the end: the result is exact, as the reference's
``decimal.Decimal`` arithmetic (``velaria.reference.decimals``), without a Python object per
row. Wider decimals whose values happen to fit (a SUM state's ``decimal128(38, s)`` totals)
are read the same way after a check.
"""
from __future__ import annotations

import decimal
import threading
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.types as pat

__all__ = ["SCALED_MAX_PRECISION", "unscaled_i64", "from_unscaled", "exact_averages", "arith", "arith_tree"]

#: the widest precision whose every value fits in int64 (10**18 - 1 < 2**63)
SCALED_MAX_PRECISION = 18


def _words(arr: pa.Array) -> np.ndarray:
    """The (low, high) 64-bit words of each 128-bit value of a decimal128 ``arr``, shape (n, 2)."""
    off, n = arr.offset, len(arr)
    return np.frombuffer(arr.buffers()[1], dtype=np.int64, count=2 * (off + n))[2 * off:].reshape(n, 2)


# Recently read or written unscaled values, by the address and length of the decimal128
# values they stand for. One expression reads the same column several times (TPC-H Q1 reads
# the price in four aggregates and two products) and the aggregate reads the arrays the
# arithmetic just built; each read of the 128-bit words is a strided copy. An entry holds the
# memory it describes (the Arrow buffer, or the numpy words written here), so that memory
# cannot be freed and reused for other values while the entry exists; Arrow arrays are
# immutable, so equal address and length mean equal values. The returned arrays are
# read-only.
_RECENT: OrderedDict = OrderedDict()
_RECENT_BYTES = 0
_RECENT_MAX_BYTES = 64 << 20
_RECENT_LOCK = threading.Lock()


def _recent_key(arr: pa.Array) -> tuple[int, int]:
    return arr.buffers()[1].address + 16 * arr.offset, len(arr)


def _recall(key: tuple[int, int]) -> np.ndarray | None:
    with _RECENT_LOCK:
        hit = _RECENT.get(key)
        if hit is None:
            return None
        _RECENT.move_to_end(key)
        return hit[1]


def _remember(key: tuple[int, int], owner, u: np.ndarray) -> np.ndarray:
    global _RECENT_BYTES
    u.flags.writeable = False
    size = u.nbytes
    if size > _RECENT_MAX_BYTES // 4:
        return u                               # one huge batch: not worth holding
    with _RECENT_LOCK:
        if key not in _RECENT:
            _RECENT[key] = (owner, u)
            _RECENT_BYTES += size
        while _RECENT_BYTES > _RECENT_MAX_BYTES:
            _, (_, old) = _RECENT.popitem(last=False)
            _RECENT_BYTES -= old.nbytes
    return u


def unscaled_i64(arr: pa.Array) -> np.ndarray | None:
    """The unscaled integers of a decimal128 ``arr`` as a read-only int64 array (NULL slots
    arbitrary), or None when some non-NULL value does not fit in int64."""
    if not pat.is_decimal128(arr.type):
        return None
    key = _recent_key(arr)
    known = _recall(key)
    if known is not None:
        return known
    words = _words(arr)
    low, high = words[:, 0], words[:, 1]
    if arr.type.precision > SCALED_MAX_PRECISION:
        fits = high == (low >> 63)              # the high word only extends the sign
        if arr.null_count:
            fits |= ~np.asarray(arr.is_valid(), dtype=bool)
        if not fits.all():
            return None
    return _remember(key, arr.buffers()[1], np.ascontiguousarray(low))


def from_unscaled(values, valid: np.ndarray | None, t: pa.DataType) -> pa.Array:
    """A decimal128 array of type ``t`` from unscaled integers: an int64 numpy array (built
    from its words, no Python object per row) or a list of Python ints (any size that fits
    ``t``; checked by Arrow). ``valid`` False marks NULL."""
    if isinstance(values, np.ndarray) and values.dtype == np.int64:
        n = values.size
        words = np.empty((n, 2), dtype=np.int64)
        words[:, 0] = values
        words[:, 1] = values >> 63
        validity = None
        if valid is not None and not valid.all():
            validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
        out = pa.Array.from_buffers(t, n, [validity, pa.py_buffer(words)])
        # what unscaled_i64 would read back (every value fits); a caller's array that may
        # still change is copied, a read-only one (the arithmetic's own) is not
        _remember(_recent_key(out), words, values.copy() if values.flags.writeable else values)
        return out
    scale = -t.scale
    out = [None if valid is not None and not valid[i] else decimal.Decimal(int(v)).scaleb(scale)
           for i, v in enumerate(values)]
    return pa.array(out, type=t)


def exact_averages(totals, counts: np.ndarray, scale: int) -> np.ndarray:
    """``total * 10**-scale / count`` per group, each rounded once to the nearest double (the
    reference's AVG of decimals); groups with count 0 give NaN (the caller masks them).

    When the unscaled total and ``count * 10**scale`` are both exact doubles (below 2**53),
    one IEEE division is that correctly rounded quotient; otherwise Python's int / int, which
    is correctly rounded for any size."""
    counts = np.asarray(counts, dtype=np.int64)
    factor = 10 ** scale
    if isinstance(totals, np.ndarray) and totals.dtype == np.int64:
        if factor <= 2 ** 53 and (counts.size == 0 or (int(counts.max()) * factor <= 2 ** 53
                                                       and _magnitude(totals) <= 2 ** 53)):
            with np.errstate(invalid="ignore", divide="ignore"):
                return totals.astype(np.float64) / (counts * factor).astype(np.float64)
        totals = totals.tolist()
    return np.array([int(t) / (int(c) * factor) if c else np.nan for t, c in zip(totals, counts.tolist())],
                    dtype=np.float64)


def to_double(arr: pa.Array) -> pa.Array | None:
    """A decimal128 ``arr`` as the nearest doubles (the reference's CAST AS DOUBLE), or None
    when that is not certain here: ``u / 10**s`` is one correctly rounded IEEE division when
    the unscaled value and ``10**s`` are both exact doubles (below 2**53)."""
    u = unscaled_i64(arr)
    if u is None or 10 ** arr.type.scale > 2 ** 53:
        return None
    valid = _valid_mask(arr)
    live = u if valid is None else u[valid]
    if _magnitude(live) > 2 ** 53:
        return None
    x = u.astype(np.float64) / float(10 ** arr.type.scale)
    return pa.array(x, type=pa.float64(), mask=None if valid is None else ~valid)


def _magnitude(u: np.ndarray) -> int:
    """The largest ``|value|`` of an int64 array as a Python int (``np.abs`` wraps -2**63)."""
    if u.size == 0:
        return 0
    return max(-int(u.min()), int(u.max()))


def _valid_mask(arr: pa.Array) -> np.ndarray | None:
    return None if arr.null_count == 0 else np.asarray(arr.is_valid(), dtype=bool)


_INT64_MAX = 2 ** 63 - 1
_CMP_NP = {"=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
           ">=": np.greater_equal}


def _aligned(arr: pa.Array, shift: int) -> np.ndarray | None:
    """The integers of a decimal (unscaled) or integer ``arr`` times ``10**shift`` as int64
    (NULL slots 0), or None when a value would not fit."""
    if pat.is_decimal(arr.type):
        u = unscaled_i64(arr)
        if u is None:
            return None
    else:
        u = arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    valid = _valid_mask(arr)
    if valid is not None:
        u = np.where(valid, u, 0)
    if shift:
        factor = 10 ** shift
        if _magnitude(u) > _INT64_MAX // factor:
            return None
        u = u * factor
    return u


def compare(op: str, a: pa.Array, b: pa.Array) -> pa.Array | None:
    """``a op b`` for decimal / integer arrays (at least one decimal), exactly: both sides as
    integers at the larger scale. None when a value does not fit int64 there."""
    sa = a.type.scale if pat.is_decimal(a.type) else 0
    sb = b.type.scale if pat.is_decimal(b.type) else 0
    scale = max(sa, sb)
    xa, xb = _aligned(a, scale - sa), _aligned(b, scale - sb)
    if xa is None or xb is None:
        return None
    va, vb = _valid_mask(a), _valid_mask(b)
    valid = va if vb is None else vb if va is None else va & vb
    return pa.array(_CMP_NP[op](xa, xb), type=pa.bool_(), mask=None if valid is None else ~valid)


def _operand(x, n: int) -> tuple[np.ndarray | int, int, np.ndarray | None] | None:
    """(unscaled int64 values or one Python int, scale, validity) of a decimal / integer
    array or scalar; None when a value does not fit int64."""
    if isinstance(x, pa.Scalar):
        if not x.is_valid:
            return None
        if pat.is_decimal(x.type):
            return int(x.as_py().scaleb(x.type.scale)), x.type.scale, None
        return int(x.as_py()), 0, None
    if pat.is_decimal(x.type):
        u = unscaled_i64(x)
        if u is None:
            return None
        scale = x.type.scale
    else:
        u = x.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        scale = 0
    return u, scale, _valid_mask(x)


def _bound(v) -> int:
    return abs(v) if isinstance(v, int) else _magnitude(v)


def arith(op: str, a, b, out_type: pa.DataType) -> pa.Array | None:
    """DECIMAL ``a + b``, ``a - b`` or ``a * b`` (decimal / integer arrays or scalars) of the
    planned type ``out_type`` on the unscaled int64 integers: ``+ -`` align both to the
    result's scale, ``*`` multiplies the unscaled values (scales add). Exact: it runs only when
    the operands' largest magnitudes prove that no row can overflow int64, and the result's
    largest magnitude fits ``out_type``'s digits; otherwise None (Arrow's decimal kernels and
    the reference decide)."""
    n = len(a) if not isinstance(a, pa.Scalar) else len(b)
    left, right = _operand(a, n), _operand(b, n)
    if left is None or right is None:
        return None
    return _to_array(_arith_scaled(op, left, right, out_type), n, out_type)


def arith_tree(expr, n: int, leaf) -> pa.Array | None:
    """A tree of DECIMAL ``+ - *`` nodes (``expr``, a ``Call`` of decimal128 type) computed on
    unscaled int64 integers from the leaves to the root, with each node's rule and checks as in
    :func:`arith`, and one decimal128 array built at the root instead of one per node (TPC-H's
    ``price * (1 - discount) * (1 + tax)``: three operations, one array). ``leaf(e, sibling)``
    evaluates a node that is not part of the tree (a column, a literal: an array or scalar).
    None when some node is not exact here; the caller then evaluates node by node."""
    return _to_array(_tree(expr, None, n, leaf), n, expr.type)


def _tree(e, sibling, n: int, leaf):
    from velaria.plan.expr import Call

    if isinstance(e, Call) and e.name in ("+", "-", "*") and pat.is_decimal128(e.type) and len(e.args) == 2:
        a, b = e.args
        left = _tree(a, b, n, leaf)
        right = None if left is None else _tree(b, a, n, leaf)
        return None if right is None else _arith_scaled(e.name, left, right, e.type)
    x = leaf(e, sibling)
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    if not (pat.is_decimal(x.type) or pat.is_integer(x.type)):
        return None                           # a NULL-typed operand and the like: node by node
    return _operand(x, n)


def _to_array(scaled, n: int, out_type: pa.DataType) -> pa.Array | None:
    if scaled is None:
        return None
    out, _, valid = scaled
    out = np.asarray(out, dtype=np.int64)
    if out.ndim == 0:
        out = np.full(n, out, dtype=np.int64)
    out.flags.writeable = False           # ours alone: from_unscaled may keep it without a copy
    return from_unscaled(out, valid, out_type)


def _arith_scaled(op: str, left, right, out_type: pa.DataType):
    """(unscaled result, its scale, validity) of ``left op right`` (each such a triple), or
    None when overflow is not ruled out or the result does not fit ``out_type``."""
    (ua, sa, va), (ub, sb, vb) = left, right
    scale = out_type.scale
    if op == "*":
        if sa + sb != scale or _bound(ua) * _bound(ub) > _INT64_MAX:
            return None
        with np.errstate(over="ignore"):
            out = np.multiply(ua, ub, dtype=np.int64)
    elif op in ("+", "-"):
        if scale < max(sa, sb):
            return None
        fa, fb = 10 ** (scale - sa), 10 ** (scale - sb)
        if _bound(ua) * fa + _bound(ub) * fb > _INT64_MAX:
            return None
        xa, xb = np.multiply(ua, fa, dtype=np.int64), np.multiply(ub, fb, dtype=np.int64)
        out = np.add(xa, xb) if op == "+" else np.subtract(xa, xb)
    else:
        return None
    out = np.asarray(out, dtype=np.int64)
    if _magnitude(out.reshape(-1)) >= 10 ** out_type.precision:
        return None                           # does not fit the planned type: the error path
    valid = va if vb is None else vb if va is None else va & vb
    return out, scale, valid
