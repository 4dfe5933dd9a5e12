"""Which joins pre-filter their right input by their left keys (run by
``velaria.exec.probe_filter``): an inner or left join on one key pair of integers (or of one
date / timestamp type), whose right input is a Filter (or columns picked from one) with a
predicate that cannot raise, and whose right key is a column of that Filter's input. A
qualifying join whose right input has no such Filter tests its right rows itself as they
arrive (``arriving_rows_target``).
"""
from __future__ import annotations

import pyarrow as pa

from . import logical as L
from .expr import Column
from .join_filters import _cannot_fail

__all__ = ["probe_filter_target", "arriving_rows_target"]

#: join kinds whose output never holds a right row that matched no left key
_KINDS = ("inner", "left")


def _int_like(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_date(t) or pa.types.is_timestamp(t)


def _key_pair(join: L.Join) -> Column | None:
    """The right key column of a join whose left keys may pre-filter its right rows: inner or
    left, one key pair of integers (or of one date / timestamp type); else None."""
    if join.how not in _KINDS or len(join.right_keys) != 1 or not isinstance(join.right_keys[0], Column):
        return None
    if not join.left.schema:         # the join counts such a left input's rows instead
        return None
    rkey, lkey = join.right_keys[0], join.left_keys[0]
    lt, rt = lkey.type, rkey.type
    if not ((pa.types.is_integer(lt) and pa.types.is_integer(rt)) or (_int_like(lt) and lt.equals(rt))):
        return None
    return rkey


#: a right input is tested as it arrives only when its table is known to hold this many rows
ARRIVING_MIN_ROWS = 1 << 16


def _known_rows(node: L.Node) -> int | None:
    """The row count of the table under an input made of projections over one scan, when its
    source knows it (None otherwise)."""
    while isinstance(node, L.Project):
        node = node.input
    hint = getattr(node.source, "num_rows_hint", None) if isinstance(node, L.Scan) else None
    return hint() if callable(hint) else None


def arriving_rows_target(join: L.Join) -> int | None:
    """The column of the join's right input whose values the join's left keys test as the right
    rows arrive (the join drops the rows no left key matches before it collects them), or None.
    Applies to the joins of ``_key_pair`` whose right input has no Filter to do it earlier
    (``probe_filter_target``): there the rows are already computed, so dropping them early
    hides nothing and changes neither the pairs nor their order. Only for a right input read
    from a table known to be large (``ARRIVING_MIN_ROWS``) and not smaller than the left input's
    table when that is known: the left keys' set costs a pass over the left keys, which a small
    right side (a fact table joined to its dimension) would not repay."""
    rkey = _key_pair(join)
    if rkey is None or probe_filter_target(join) is not None:
        return None
    right, left = _known_rows(join.right), _known_rows(join.left)
    if right is None or right < ARRIVING_MIN_ROWS or (left is not None and left > right):
        return None
    return rkey.index


def probe_filter_target(join: L.Join) -> tuple[L.Filter, int] | None:
    """``(filter, column)``: the Filter under the join's right input (through projections
    that only pick columns) and the position, in that Filter's input, of the column the join's
    left keys pre-filter; None when the join does not qualify (see the module text)."""
    rkey = _key_pair(join)
    if rkey is None:
        return None
    rt = rkey.type
    node, index = join.right, rkey.index
    while isinstance(node, L.Project):
        picked = node.exprs[index] if index < len(node.exprs) else None
        if not isinstance(picked, Column):
            return None
        node, index = node.input, picked.index
    if not isinstance(node, L.Filter) or not _cannot_fail(node.predicate):
        return None
    if index >= len(node.input.schema) or not node.input.schema.field(index).type.equals(rt):
        return None
    return node, index
