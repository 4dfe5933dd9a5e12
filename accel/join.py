"""Accelerated ``hash_join`` and ``key_matches``, twins of ``velaria.reference.batch``'s.

The join reduces its keys to one int64 per row: integer and date keys as they are (several
columns packed in mixed radix), other key types factorised over both sides together. The C
hash table (``join_hash.py``) then pairs the rows in the reference output order; without the
C module the right rows are sorted by key and matches expanded with numpy. Explain's Join
line names the key form and the path that ran. ``key_set`` holds one side's keys for
membership tests of the other side's batches (the join's key pre-filter).
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from velaria.reference import batch as _ref
from velaria.reference.join import JOIN_KINDS

from velaria.plan.kernel_paths import report

from .arrow_util import _F64, _I64, _is_int, _is_num, _is_str, _np_values, _nulls, _valid
from . import join_hash, key_select
from .filter_terms import compact
from .distinct import _combine
from .expressions import _int_fits_double

__all__ = ["hash_join", "key_matches", "key_set", "KeySet"]


# ---- join / distinct

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


def _flat(a):
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _key_codes(left_keys: list[pa.Array], right_keys: list[pa.Array]) -> np.ndarray | None:
    """One int64 code per row of the left then the right side, equal exactly when the keys
    are equal in the join's sense, -1 for a row with a NULL key (it never matches); None
    when a key pair needs the reference."""
    both = []
    for lk, rk in zip(left_keys, right_keys):
        lk, rk = _flat(lk), _flat(rk)
        pair = _join_pair(lk, rk)
        if pair is None:
            return None
        both.append(pa.concat_arrays(list(pair)))
    codes, _ = _combine(both)
    null_row = np.zeros(len(codes), dtype=bool)
    for arr in both:
        v = _valid(arr)
        if v is not None:
            null_row |= ~v
    return np.where(null_row, -1, codes)


def _int_columns(left_keys: list[pa.Array], right_keys: list[pa.Array]) -> list | None:
    """Per key pair ``(left values, right values, left valid, right valid)`` as int64 numpy
    arrays when both sides are integers (or the same date / timestamp type), where int64
    equality is the join's equality; None when some pair is not."""
    cols = []
    for lk, rk in zip(left_keys, right_keys):
        lk, rk = _flat(lk), _flat(rk)
        if not int_comparable(lk.type, rk.type):
            return None
        (lv, lval), (rv, rval) = int_values(lk), int_values(rk)
        cols.append((lv, rv, lval, rval))
    return cols


def int_comparable(lt: pa.DataType, rt: pa.DataType) -> bool:
    """True when keys of these two types are equal exactly when their int64 values are: both
    integers, or the same date / timestamp type."""
    return (_is_int(lt) and _is_int(rt)) or (lt.equals(rt) and (pat.is_date(lt) or pat.is_timestamp(lt)))


def int_values(a: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """An integer, date or timestamp column as ``(int64 values, validity or None)``; a NULL
    slot holds 0."""
    if pat.is_date32(a.type):            # date32 casts to int32 only
        a = a.view(pa.int32())
    elif not _is_int(a.type):
        a = a.view(_I64)
    return _np_values(a, _I64, 0), _valid(a)


def _packed_keys(cols: list) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """One int64 per row and side, equal exactly when every integer key column is equal: each
    column offset by its minimum and the columns combined in mixed radix. None when the value
    ranges multiply past 2**62 (the caller factorises instead)."""
    packed_l = packed_r = lvalid = rvalid = None
    size = 1
    for lv, rv, lval, rval in cols:
        if lv.size + rv.size == 0:
            return None
        lo = min(int(lv.min(initial=0)), int(rv.min(initial=0)))   # NULL slots hold 0: inside the range
        hi = max(int(lv.max(initial=0)), int(rv.max(initial=0)))
        span = hi - lo + 1
        size *= span
        if size > 2 ** 62:
            return None
        base = np.int64(lo)
        packed_l = lv - base if packed_l is None else packed_l * span + (lv - base)
        packed_r = rv - base if packed_r is None else packed_r * span + (rv - base)
        lvalid = _and(lvalid, lval)
        rvalid = _and(rvalid, rval)
    return packed_l, packed_r, lvalid, rvalid


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a & b


def _row_keys(left_keys, right_keys):
    """``(left keys, right keys, left valid, right valid)``: one int64 per row and side and a
    validity mask (None: all valid), or None when a key pair needs the reference. Integer
    and date keys are used as they are (several columns packed); other types are factorised
    over both sides together."""
    cols = _int_columns(left_keys, right_keys)
    if cols is not None and len(cols) == 1:
        report("int-key")
        return cols[0]
    packed = _packed_keys(cols) if cols is not None else None
    if packed is not None:
        report("packed-int-keys")
        return packed
    codes = _key_codes(left_keys, right_keys)
    if codes is None:
        return None
    report("factorised-keys")
    nl = len(left_keys[0])
    lc, rc = codes[:nl], codes[nl:]
    return lc, rc, lc >= 0, rc >= 0


def hash_join(left_keys: list[pa.Array], right_keys: list[pa.Array], how: str) -> tuple[pa.Array, pa.Array]:
    """(left row indices, right row indices) of an equi-join; a NULL index pads an unmatched row."""
    if how not in JOIN_KINDS or not left_keys or len(left_keys) != len(right_keys):
        return _ref.hash_join(left_keys, right_keys, how)
    if join_hash.c_available():
        keys = _row_keys(left_keys, right_keys)
        if keys is None:
            return _ref.hash_join(left_keys, right_keys, how)
        lk, rk, lvalid, rvalid = keys
        report("c-hash")
        left, left_pad, right = join_hash.join_pairs(lk, lvalid, rk, rvalid, how)
        if how == "inner":                  # every pair matched: no padding to mask
            return pa.array(left, type=_I64), pa.array(right, type=_I64)
        unmatched = right < 0
        return (pa.array(left, type=_I64, mask=left_pad if left_pad.any() else None),
                pa.array(np.where(unmatched, 0, right), type=_I64, mask=unmatched if unmatched.any() else None))
    return _sorted_join(left_keys, right_keys, how)


def _sorted_join(left_keys: list[pa.Array], right_keys: list[pa.Array], how: str) -> tuple[pa.Array, pa.Array]:
    """The numpy path (no C module): keys factorised, right rows sorted by key, matches
    expanded with ``repeat``."""
    nl, nr = len(left_keys[0]), len(right_keys[0])
    codes = _key_codes(left_keys, right_keys)
    if codes is None:
        return _ref.hash_join(left_keys, right_keys, how)
    report("numpy-sort")
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
    emit = np.maximum(matches, 1) if how in ("left", "full") else matches
    total = int(emit.sum())
    out_left = np.repeat(np.arange(nl, dtype=np.int64), emit)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(emit) - emit, emit)
    matched = np.repeat(matches > 0, emit)
    pos = np.repeat(starts[dl], emit) + offsets
    out_right = np.where(matched, right_order[np.where(matched, pos, 0)] if right_order.size else 0, 0)
    left_pad = np.zeros(total, dtype=bool)
    if how in ("right", "full"):            # then every right row no left row matched
        hit = np.zeros(nr, dtype=bool)
        hit[out_right[matched]] = True
        extra = np.nonzero(~hit)[0]
        out_left = np.concatenate([out_left, np.zeros(len(extra), dtype=np.int64)])
        out_right = np.concatenate([out_right, extra])
        left_pad = np.concatenate([left_pad, np.ones(len(extra), dtype=bool)])
        matched = np.concatenate([matched, np.ones(len(extra), dtype=bool)])
    right = pa.array(out_right.astype(np.int64), type=_I64, mask=None if matched.all() else ~matched)
    return pa.array(out_left, type=_I64, mask=left_pad if left_pad.any() else None), right


def key_matches(left_keys: list[pa.Array], right_keys: list[pa.Array]) -> pa.Array:
    """A boolean per left row: some right row has equal keys (NULL keys never match).

    The keys are reduced to one int64 per row as for ``hash_join``; with the C module each
    left key is looked up in a table of the right keys, else both sides' codes are
    factorised together and the left codes looked up in the set of right codes: O(rows), no
    pairs either way. Twin of ``velaria.reference.batch.key_matches``."""
    if not left_keys or len(left_keys) != len(right_keys):
        return _ref.key_matches(left_keys, right_keys)
    if join_hash.c_available():
        keys = _row_keys(left_keys, right_keys)
        if keys is None:
            return _ref.key_matches(left_keys, right_keys)
        lk, rk, lvalid, rvalid = keys
        report("c-hash")
        return pa.array(join_hash.key_found(lk, lvalid, rk, rvalid), type=pa.bool_())
    codes = _key_codes(left_keys, right_keys)
    if codes is None:
        return _ref.key_matches(left_keys, right_keys)
    nl = len(left_keys[0])
    lc, rc = codes[:nl], codes[nl:]
    hit = np.isin(lc, np.unique(rc[rc >= 0])) & (lc >= 0)
    return pa.array(hit, type=pa.bool_())


# ---- key sets (a join's left keys pre-filtering its right input)

class KeySet:
    """The distinct non-NULL keys of ``keys``; ``contains(probe)`` equals
    ``key_matches(probe, keys)``."""

    def __init__(self, keys: list[pa.Array]):
        self._keys = [_flat(k) for k in keys]
        self._table = None
        if join_hash.c_available() and len(self._keys) == 1 and int_comparable(self._keys[0].type, self._keys[0].type):
            self._table = join_hash.KeyTable(*int_values(self._keys[0]))

    def _mask(self, probe: pa.Array) -> tuple[np.ndarray, int] | None:
        """``(mask, count)`` from the C table, or None when it does not apply to ``probe``."""
        if self._table is None or not int_comparable(self._keys[0].type, probe.type):
            return None
        report("c-key-set")
        return self._table.contains(*int_values(probe))

    def contains(self, keys: list[pa.Array]) -> pa.Array:
        """A boolean per row of ``keys``: its key is in the set (NULL keys never are)."""
        found = self._mask(_flat(keys[0])) if len(keys) == 1 else None
        if found is None:
            return key_matches(keys, self._keys)
        return pa.array(found[0], type=pa.bool_())

    def _bitmap_rows(self, probe: pa.Array) -> np.ndarray | None:
        """The ascending row numbers of ``probe``'s keys in the set, tested and listed in one C
        pass (``key_select``); None unless the set is a bitmap in the C table."""
        table = self._table
        if (table is None or table.bitmap is None or not key_select.c_available()
                or not int_comparable(self._keys[0].type, probe.type)):
            return None
        report("c-key-set")         # the test and the kept row numbers in one pass
        return key_select.bitmap_select_rows(*int_values(probe), table.lo, table.span, table.bitmap)

    def indices(self, keys: pa.Array) -> pa.Array:
        """The row numbers (int64, ascending) of the keys in the set: written in one C pass
        over a bitmap key set, else read off ``contains``' answers."""
        keys = _flat(keys)
        rows = self._bitmap_rows(keys)
        if rows is not None:
            return pa.array(rows, type=pa.int64())
        found = self._mask(keys)
        mask = self.contains([keys]).to_numpy(zero_copy_only=False) if found is None else found[0]
        return pa.array(np.flatnonzero(mask), type=pa.int64())

    def select(self, batch: pa.RecordBatch, column: int) -> pa.RecordBatch:
        """The rows of ``batch`` whose key (column ``column``) is in the set, in order (few rows
        gathered by number, many compacted by the mask, as the filter kernel does)."""
        probe = _flat(batch.column(column))
        rows = self._bitmap_rows(probe)
        if rows is not None:
            return key_select.gather_rows(batch, rows)
        found = self._mask(probe)
        if found is None:
            return batch.filter(self.contains([batch.column(column)]))
        return compact(batch, *found)


def key_set(keys: list[pa.Array]) -> KeySet:
    """The distinct keys of one join side, for membership tests of the other side's rows.

    One integer or date key column is held in the C join's key table (a bitmap over the
    keys' range, built once; each ``contains`` then reads one bit per row); other keys are
    answered by ``key_matches``, which rebuilds its table per call."""
    return KeySet(keys)
