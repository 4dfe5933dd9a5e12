"""Filter pushdown helpers: drop rows of a batch that certainly fail the pushed filters, and
render what was pushed for explain.

A pushed filter may keep rows the query's WHERE then drops (the executor re-checks it), never
the other way round. Arrow's comparisons and the engine's differ on NaN: the engine orders NaN
above every number (``NaN > 10`` holds), Arrow's ``greater`` is false for NaN. So ``>`` and
``>=`` on a float column keep NaN rows too (:func:`_keeps_nan`), and a comparison with a NaN
constant is not pushed at all."""
from __future__ import annotations

import math
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from .base import PushedFilter
from .pushdown_c import filter_in_c

__all__ = ["apply_filters", "usable_filters", "render_pushdown"]

_OPS = {
    "=": pc.equal, "==": pc.equal, "!=": pc.not_equal, "<>": pc.not_equal,
    "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal,
}


def usable_filters(filters: Sequence[PushedFilter], schema: pa.Schema) -> list[PushedFilter]:
    """The filters this source can evaluate: known operator, known column, comparable value."""
    out = []
    for flt in filters or ():
        if flt.op not in _OPS or flt.value is None or schema.get_field_index(flt.column) < 0:
            continue
        typ = schema.field(flt.column).type
        value = flt.value
        if isinstance(value, float) and math.isnan(value):
            continue            # the engine's NaN equals NaN and exceeds every number; Arrow's does not
        if isinstance(value, bool):
            ok = pa.types.is_boolean(typ)
        elif isinstance(value, (int, float)):
            ok = pa.types.is_integer(typ) or pa.types.is_floating(typ)
        elif isinstance(value, str):
            ok = pa.types.is_string(typ)
        else:
            ok = False
        if ok:
            out.append(flt)
    return out


def _keeps_nan(flt: PushedFilter, typ: pa.DataType) -> bool:
    """Whether filter ``flt`` on a column of type ``typ`` must also keep the column's NaN rows,
    which Arrow's comparison drops and the engine keeps: ``>`` and ``>=`` on floats (NaN is
    greater than every number)."""
    return flt.op in (">", ">=") and pa.types.is_floating(typ)


def _filter_mask(batch: pa.RecordBatch, filters: Sequence[PushedFilter]):
    """The rows of ``batch`` every filter keeps, as a boolean array without NULLs (a NULL
    comparison never passes), or None when no filter applies (keep every row)."""
    mask = None
    for flt in filters or ():
        try:
            column = batch.column(flt.column)
            part = _OPS[flt.op](column, flt.value)
            if _keeps_nan(flt, column.type):
                part = pc.or_kleene(part, pc.is_nan(column))
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
            continue  # the executor re-checks WHERE; skipping a filter is always safe
        mask = part if mask is None else pc.and_kleene(mask, part)
    return None if mask is None else pc.fill_null(mask, False)


def apply_filters(batch: pa.RecordBatch, filters: Sequence[PushedFilter],
                  columns: Sequence[str] | None = None) -> pa.RecordBatch:
    """Keep the rows of ``batch`` for which every filter is TRUE (NULL never passes), of the
    columns ``columns`` (None: all; a column read only for a filter is not copied). Numeric
    comparisons run in C where that gives pyarrow's answer (:mod:`.pushdown_c`)."""
    if columns is not None and list(batch.schema.names) != list(columns):
        kept = batch.select(list(columns))
    else:
        kept = batch
    if not filters or batch.num_rows == 0:
        return kept
    fast = filter_in_c(batch, filters, kept)
    if fast is not None:
        return fast
    mask = _filter_mask(batch, filters)
    return kept if mask is None else kept.filter(mask)


def render_pushdown(columns: Sequence[str] | None, filters: Sequence[PushedFilter]) -> str:
    """``pushed_columns=[a,b] pushed_filters=[x>1]`` (``*`` when every column was read)."""
    cols = "*" if columns is None else ",".join(columns)
    flts = ",".join(f.render() for f in filters or ())
    return f"pushed_columns=[{cols}] pushed_filters=[{flts}]"
