"""Which joins pre-filter their right input by their left keys (run by
``velaria.exec.probe_filter``): an inner or left join on one key pair of integers (or of one
date / timestamp type), whose right input is a Filter (or columns picked from one) with a
predicate that cannot raise, and whose right key is a column of that Filter's input.
"""
from __future__ import annotations

import pyarrow as pa

from . import logical as L
from .expr import Column
from .join_filters import _cannot_fail

__all__ = ["probe_filter_target"]

#: join kinds whose output never holds a right row that matched no left key
_KINDS = ("inner", "left")


def _int_like(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_date(t) or pa.types.is_timestamp(t)


def probe_filter_target(join: L.Join) -> tuple[L.Filter, int] | None:
    """``(filter, column)``: the Filter under the join's right input (through projections
    that only pick columns) and the position, in that Filter's input, of the column the join's
    left keys pre-filter; None when the join does not qualify (see the module text)."""
    if join.how not in _KINDS or len(join.right_keys) != 1 or not isinstance(join.right_keys[0], Column):
        return None
    if not join.left.schema:         # the join counts such a left input's rows instead
        return None
    rkey, lkey = join.right_keys[0], join.left_keys[0]
    lt, rt = lkey.type, rkey.type
    if not ((pa.types.is_integer(lt) and pa.types.is_integer(rt)) or (_int_like(lt) and lt.equals(rt))):
        return None
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
