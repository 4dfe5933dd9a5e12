"""Stable dictionary encoding of a text GROUP BY key, for the rows a sliding window copies.

A sliding window copies each row into every window that contains it. A text key read only by
the GROUP BY above is dictionary-encoded before the copies, so they repeat small integers
instead of strings. :class:`StableDictionary` does that encoding for a stream: the same value
gets the same index in every batch, and every batch's dictionary is the same Arrow array for
as long as no new value arrives. So the aggregate above numbers that dictionary once and then
only looks its codes up per row (see ``HashAggregate`` in the accelerated aggregate), instead of
hashing a fresh dictionary every batch.

Values of at most 8 bytes (flags, country codes, ``key-0042``) are packed into one int64 word
each by the accelerator's ``pack_short_str`` and numbered by a persistent C hash table, one
probe per row, with no string hashing at all. A column with a longer value, a NUL byte, or no
accelerator falls back to Arrow's per-batch ``dictionary_encode`` for the rest of the query
(its dictionary then differs per batch; the aggregate's answer is the same either way).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["StableDictionary", "packing_available"]


def packing_available() -> bool:
    """True when the accelerator's string packing and group hash table are both loaded."""
    try:
        from ..accel import group_hash, select_terms
    except ImportError:              # pragma: no cover - the accelerator is optional
        return False
    return select_terms.c_available() and group_hash.c_available()


class StableDictionary:
    """Dictionary-encodes one text column batch after batch with stable indices.

    ``packed=False`` (or a value that cannot be packed) uses Arrow's per-batch encoding."""

    def __init__(self, packed: bool = True):
        self.packed = packed and packing_available()
        self._table = None                      # int64 word -> index (``Int64GroupTable``)
        self._values: pa.Array | None = None    # the value of each index, in index order

    def encode(self, arr: pa.Array) -> pa.DictionaryArray:
        """``arr`` dictionary-encoded (int32 indices); a NULL is a dictionary value of its own
        on the packed path and a NULL index otherwise -- both decode to NULL."""
        numbered = self._number(arr) if self.packed else None
        if numbered is None:
            return pc.dictionary_encode(arr)
        codes, values = numbered
        self._values = values if values is not None else pa.array([], arr.type)
        indices = pa.array(codes.astype(np.int32), pa.int32())
        return pa.DictionaryArray.from_arrays(indices, self._values)

    def _number(self, arr: pa.Array):
        """``(codes, values)`` of the packed path, or None when this column leaves it (for
        good: mixing the two encodings would gain nothing)."""
        from ..accel.group_hash import Int64GroupTable, number_short_strings
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        numbered = None
        if pa.types.is_string(arr.type) and (self._values is None or self._values.type.equals(arr.type)):
            if self._table is None:
                self._table = Int64GroupTable()
            numbered = number_short_strings(self._table, arr, self._values)
        if numbered is None:
            self.packed = False
        return numbered
