"""Accelerated ``hash_join``: keys factorised over both sides, matches expanded with numpy in
the reference output order. Twin of ``velaria.reference.batch.hash_join``.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.types as pat

from velaria.reference import batch as _ref
from velaria.reference.join import JOIN_KINDS

from .arrow_util import _F64, _I64, _is_int, _is_num, _is_str, _nulls, _valid
from .distinct import _combine
from .expressions import _int_fits_double

__all__ = ["hash_join", "key_matches"]


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


def _key_codes(left_keys: list[pa.Array], right_keys: list[pa.Array]) -> np.ndarray | None:
    """One int64 code per row of the left then the right side, equal exactly when the keys
    are equal in the join's sense, -1 for a row with a NULL key (it never matches); None
    when a key pair needs the reference."""
    both = []
    for lk, rk in zip(left_keys, right_keys):
        lk = lk.combine_chunks() if isinstance(lk, pa.ChunkedArray) else lk
        rk = rk.combine_chunks() if isinstance(rk, pa.ChunkedArray) else rk
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


def hash_join(left_keys: list[pa.Array], right_keys: list[pa.Array], how: str) -> tuple[pa.Array, pa.Array]:
    """(left row indices, right row indices) of an equi-join; a NULL index pads an unmatched row."""
    if how not in JOIN_KINDS or not left_keys or len(left_keys) != len(right_keys):
        return _ref.hash_join(left_keys, right_keys, how)
    nl, nr = len(left_keys[0]), len(right_keys[0])
    codes = _key_codes(left_keys, right_keys)
    if codes is None:
        return _ref.hash_join(left_keys, right_keys, how)
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

    Both sides' keys are factorised together as for ``hash_join``, then each left code is
    looked up in the set of right codes: O(rows), no pairs. Twin of
    ``velaria.reference.batch.key_matches``."""
    if not left_keys or len(left_keys) != len(right_keys):
        return _ref.key_matches(left_keys, right_keys)
    codes = _key_codes(left_keys, right_keys)
    if codes is None:
        return _ref.key_matches(left_keys, right_keys)
    nl = len(left_keys[0])
    lc, rc = codes[:nl], codes[nl:]
    hit = np.isin(lc, np.unique(rc[rc >= 0])) & (lc >= 0)
    return pa.array(hit, type=pa.bool_())
