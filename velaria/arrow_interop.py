"""Arrow ingest: turn anything Arrow-shaped into one ``pyarrow.Table``.

Accepted (python-api §10.1): ``pa.Table``, ``pa.RecordBatch``, ``pa.RecordBatchReader``, any
object exporting ``__arrow_c_stream__`` (polars and duckdb results) or ``__arrow_c_array__``,
a list/tuple of those (flattened, batches must share one schema), and anything
``pyarrow.table()`` accepts, such as a dict of lists. Column types are kept as they are, so
``to_arrow()`` of an untransformed frame returns the types that went in.
"""
from __future__ import annotations

import pyarrow as pa

from .errors import VelariaError

__all__ = ["to_table", "to_batches"]


def to_batches(obj) -> list[pa.RecordBatch] | pa.Table:
    """Normalise ``obj`` to a list of record batches (or a Table for dict-like input)."""
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return [obj]
    if isinstance(obj, pa.RecordBatchReader):
        return obj.read_all()
    if isinstance(obj, (list, tuple)):
        out: list[pa.RecordBatch] = []
        for item in obj:
            part = to_batches(item)
            out.extend(part.to_batches() if isinstance(part, pa.Table) else part)
        return out
    if hasattr(obj, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(obj).read_all()
    if hasattr(obj, "__arrow_c_array__"):
        arr = pa.array(obj) if not isinstance(obj, pa.Array) else obj
        if isinstance(arr, pa.StructArray):
            return [pa.RecordBatch.from_struct_array(arr)]
        return pa.record_batch(obj) if hasattr(pa, "record_batch") else [arr]
    if isinstance(obj, (str, bytes, bytearray)) or isinstance(obj, (int, float)) or obj is None:
        raise TypeError(f"create_dataframe_from_arrow expects Arrow data (pa.Table, RecordBatch, "
                        f"RecordBatchReader, an __arrow_c_stream__ exporter or a dict of lists), "
                        f"got {type(obj).__name__}")
    try:
        return pa.table(obj)
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise VelariaError(f"failed to normalize input as pyarrow.Table: {type(obj).__name__}: {exc}") from exc


def to_table(obj) -> pa.Table:
    """One ``pa.Table`` from any accepted input (see module docstring)."""
    got = to_batches(obj)
    if isinstance(got, pa.Table):
        return got
    if isinstance(got, pa.RecordBatch):
        return pa.Table.from_batches([got])
    if not got:
        return pa.table({})
    first = got[0].schema
    for b in got[1:]:
        if b.schema.names != first.names:
            raise VelariaError("Arrow stream batches must share the same schema "
                               f"(first batch has {first.names}, another has {b.schema.names})")
        if not b.schema.equals(first):
            raise VelariaError("Arrow stream batches must share the same schema "
                               f"(types differ: {first} vs {b.schema})")
    return pa.Table.from_batches(got, schema=first)
