"""Accelerated ``sort_indices`` and ``sort_take``: every ORDER BY key of a sortable type becomes a numeric key
column (numbers as they are, bool / date / timestamp as int64, strings as the dense rank of
their value among the distinct values) and one stable C radix sort orders the rows by all of
them (``sort_rows``), LIMIT included; vectors and other types run the reference. Twins of
``velaria.reference.batch.sort_indices`` and ``.sort_take``.

``sort_take`` gives the sorted rows themselves: the numeric columns without NULLs travel with
the C sort (``sort_rows_take``), the others are taken by the row numbers it also returns.
"""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.reference import batch as _ref

from .arrow_util import _F64, _I64, _is_float, _is_int, _is_str, _valid
from .sort_rows import SortColumn, sort_rows, sort_rows_take
from .threads import default_threads

__all__ = ["sort_indices", "sort_take"]


# ---- sort

def _sortable(t) -> bool:
    return (_is_float(t) or pat.is_integer(t) or _is_str(t) or pat.is_boolean(t) or pat.is_null(t)
            or pat.is_date(t) or pat.is_timestamp(t))


def sort_indices(key_arrays: list[pa.Array], descending: list[bool], nulls_first: list[bool],
                 limit: int | None = None) -> pa.Array:
    """Row order as int64 indices: stable, multi-key; only the first ``limit`` when given."""
    columns = _sort_columns(key_arrays, descending, nulls_first, limit)
    if columns is None:
        return _ref.sort_indices(key_arrays, descending, nulls_first, limit)
    if not columns:
        return _leading_rows(len(key_arrays[0]), limit)
    return pa.array(sort_rows(columns, limit), type=_I64)


def sort_take(batch: pa.RecordBatch, key_arrays: list[pa.Array], descending: list[bool],
              nulls_first: list[bool], limit: int | None = None) -> list[pa.RecordBatch]:
    """The rows of ``batch`` in the order of :func:`sort_indices` (only the first ``limit``),
    as consecutive batches. Fixed-width columns without NULLs are moved by the C sort itself,
    a string column that is a key is read from its distinct values by its ranks (which the
    sort moves), the others are gathered by the row numbers (on several threads,
    ``take_columns``)."""
    from velaria.exec.column_take import take_columns, take_rows   # velaria.exec imports the kernels

    encoded: dict[int, tuple[np.ndarray, pa.Array]] = {}
    columns = _sort_columns(key_arrays, descending, nulls_first, limit, encoded)
    if columns is None or not columns or not batch.num_columns:
        order = (_ref.sort_indices(key_arrays, descending, nulls_first, limit) if columns is None
                 else sort_indices(key_arrays, descending, nulls_first, limit))
        return take_rows(batch, order)
    moved = [j for j, col in enumerate(batch.columns) if _movable(col)]
    # a string column that is also a key: its ranks (the sort key) move with the sort, and the
    # output reads the strings from the (small, cached) sorted distinct values instead of
    # from all the rows
    coded = {j: i for j, col in enumerate(batch.columns) if j not in moved
             for i in encoded if _same_array(col, key_arrays[i])}
    rest = [j for j in range(batch.num_columns) if j not in moved and j not in coded]
    payload = [_raw_values(batch.column(j)) for j in moved] + [encoded[i][0] for i in coded.values()]
    rows, taken = sort_rows_take(columns, payload, limit, rows=bool(rest))
    out: list[pa.Array | None] = [None] * batch.num_columns
    for j, values in zip(moved, taken):
        out[j] = pa.Array.from_buffers(batch.column(j).type, len(values), [None, pa.py_buffer(values)])
    for (j, i), ranks in zip(coded.items(), taken[len(moved):]):
        out[j] = encoded[i][1].take(pa.array(ranks))
    if rest:
        order = pa.array(rows, type=_I64)
        for j, col in zip(rest, take_columns([(batch.column(j), order) for j in rest])):
            out[j] = col
    return [pa.RecordBatch.from_arrays(out, schema=batch.schema)]


def _sort_columns(key_arrays: list[pa.Array], descending: list[bool], nulls_first: list[bool],
                  limit: int | None, encoded: dict | None = None) -> list[SortColumn] | None:
    """The C sort's key columns (an all-NULL key orders nothing and is left out), or None
    when the reference must sort (no keys, mismatched lists, a negative limit, a key type the
    C sort does not order). ``encoded`` receives, by key position, each string key's ranks and
    distinct values in rank order with a NULL appended (see :func:`_string_ranks`)."""
    if (not key_arrays or not (len(key_arrays) == len(descending) == len(nulls_first))
            or (limit is not None and limit < 0)
            or not all(_sortable(k.type) for k in key_arrays)):
        return None
    columns = []
    for i, (arr, desc, nf) in enumerate(zip(key_arrays, descending, nulls_first)):
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pat.is_null(arr.type):
            continue                            # all NULL: no effect on the order
        if _is_str(arr.type):
            values, distinct = _string_ranks(arr)
            if encoded is not None:
                encoded[i] = (values, distinct)
        else:
            values = _key_values(arr)
        columns.append(SortColumn(values, _valid(arr), bool(desc), bool(nf)))
    return columns


def _same_array(a, b) -> bool:
    """Whether ``a`` and ``b`` are the same values: the same type, offset, length and buffers
    (a key that is a plain column reference evaluates to the batch's own column)."""
    if not isinstance(a, pa.Array) or not a.type.equals(b.type) or a.offset != b.offset or len(a) != len(b):
        return False
    return [None if x is None else x.address for x in a.buffers()] == \
           [None if x is None else x.address for x in b.buffers()]


def _leading_rows(n: int, limit: int | None) -> pa.Array:
    """0, 1, ... as the order when no key orders anything (input order, cut to ``limit``)."""
    return pa.array(np.arange(n if limit is None else min(limit, n), dtype=np.int64))


def _movable(col: pa.Array) -> bool:
    """Whether the C sort can move ``col`` with its keys: fixed-width values of 1 to 8 bytes
    (numbers, dates, times, timestamps, durations) and no NULLs."""
    t = col.type
    return (col.null_count == 0 and pat.is_primitive(t) and not pat.is_boolean(t)
            and t.bit_width in (8, 16, 32, 64))


def _key_values(arr: pa.Array) -> np.ndarray:
    """The values of ``arr`` as a numpy array whose order is the reference order of the
    column: float64, int64, or uint64 (uint64 columns, and the dense ranks of strings). What
    a NULL slot holds does not matter (the sort never reads it)."""
    t = arr.type
    if _is_str(t):
        return _string_ranks(arr)[0]
    if _is_float(t):
        target = _F64
    elif pat.is_uint64(t):
        target = pa.uint64()
    elif _is_int(t) or pat.is_boolean(t) or pat.is_date(t) or pat.is_timestamp(t):
        target = _I64
    else:  # pragma: no cover - _sortable admits nothing else
        raise TypeError(f"no sort key for type {t}")
    if pat.is_date32(t):
        arr = arr.cast(pa.int32())
    elif pat.is_date64(t) or pat.is_timestamp(t):
        arr = arr.cast(_I64)
    return _primitive_view(arr if arr.type.equals(target) else arr.cast(target))


def _primitive_view(arr: pa.Array, dtype=None) -> np.ndarray:
    """The data buffer of a fixed-width array as numpy (no copy, NULL slots as stored), read
    as ``dtype`` (default: the array type's own numpy type)."""
    dtype = np.dtype(arr.type.to_pandas_dtype() if dtype is None else dtype)
    buf = arr.buffers()[1]
    if buf is None:
        return np.zeros(len(arr), dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _raw_values(arr: pa.Array) -> np.ndarray:
    """The values of a fixed-width array as unsigned integers of its width (no copy): the bytes
    the sort moves, whatever the type."""
    return _primitive_view(arr, f"u{arr.type.bit_width // 8}")


#: rows per slice of a string key hashed on its own thread
STRING_SLICE_ROWS = 1 << 20


def _string_ranks(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(uint64 dense rank of each row's string among the distinct strings, in byte (code
    point) order, a NULL row's rank being the number of distinct strings; the distinct
    strings in rank order with one NULL appended, so that ``distinct.take(ranks)`` is
    ``arr``). A hash pass per slice of the column (``dictionary_encode``, on several threads
    for a large column), then only the distinct values are merged and sorted."""
    from velaria.exec.column_take import pool_map      # velaria.exec imports the kernels

    n = len(arr)
    parts = max(1, min(default_threads(), n // STRING_SLICE_ROWS))
    bounds = [n * p // parts for p in range(parts + 1)]
    encs = pool_map(pc.dictionary_encode, [arr.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])])
    if parts == 1:
        distinct = encs[0].dictionary
    else:
        distinct = pc.unique(pa.concat_arrays([e.dictionary for e in encs]))
    order = pc.sort_indices(distinct).to_numpy()
    rank = np.empty(len(distinct) + 1, dtype=np.uint64)
    rank[order] = np.arange(len(order), dtype=np.uint64)
    rank[-1] = len(order)                                # the NULL code below
    ranks = np.empty(n, dtype=np.uint64)

    def fill(part):
        """The ranks of one slice: its codes through its dictionary's ranks (and a NULL's)."""
        lo, hi, enc = part
        local = rank if parts == 1 else np.append(rank[pc.index_in(enc.dictionary, distinct).to_numpy()], rank[-1])
        codes = _primitive_view(enc.indices)           # int32 dictionary codes
        if enc.indices.null_count:
            codes = np.where(_valid(enc.indices), codes, np.int32(len(local) - 1))
        np.take(local, codes, out=ranks[lo:hi], mode="clip")

    pool_map(fill, list(zip(bounds, bounds[1:], encs)))
    return ranks, pa.concat_arrays([distinct.take(pa.array(order)), pa.nulls(1, distinct.type)])
