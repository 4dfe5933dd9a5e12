"""Arrow ingest: turn anything Arrow-shaped into one ``pyarrow.Table``.

Accepted: ``pa.Table``, ``pa.RecordBatch``, ``pa.RecordBatchReader``, any
object exporting ``__arrow_c_stream__`` (polars and duckdb results) or ``__arrow_c_array__``,
a list/tuple of those (flattened, batches must share one schema), and anything
``pyarrow.table()`` accepts, such as a dict of lists. Column types are kept as they are, so
``to_arrow()`` of an untransformed frame returns the types that went in, with one
exception: Arrow's *view* layouts (``string_view``, ``binary_view``, ``list_view``, which
polars exports) are converted to the classic layouts with the same values (``string``,
``binary``, ``list``), because most Arrow compute kernels (take, sort, hash join) do not
accept views.

Exporters are called the way each defines them: ``__arrow_c_stream__()`` and
``__arrow_c_array__()`` without a requested schema (native Velaria and some libraries take
no argument), which every exporter accepts.
"""
from __future__ import annotations

import pyarrow as pa

from .errors import VelariaError

__all__ = ["to_table", "to_batches", "without_views", "batch_without_views", "stream_reader"]


class _Exported:
    """Forwards the PyCapsule protocol to ``obj``, omitting the requested schema when none
    is requested (a no-argument ``__arrow_c_stream__(self)`` would fail on ``None``)."""

    def __init__(self, obj):
        self.obj = obj

    def __arrow_c_stream__(self, requested_schema=None):
        if requested_schema is None:
            return self.obj.__arrow_c_stream__()
        return self.obj.__arrow_c_stream__(requested_schema)

    def __arrow_c_array__(self, requested_schema=None):
        if requested_schema is None:
            return self.obj.__arrow_c_array__()
        return self.obj.__arrow_c_array__(requested_schema)


def _plain_type(typ: pa.DataType) -> pa.DataType:
    """``typ`` with every view layout replaced by its classic twin (recursively)."""
    if typ == pa.string_view():
        return pa.string()
    if typ == pa.binary_view():
        return pa.binary()
    if isinstance(typ, pa.ListViewType):
        return pa.list_(_plain_field(typ.value_field))
    if isinstance(typ, pa.LargeListViewType):
        return pa.large_list(_plain_field(typ.value_field))
    if isinstance(typ, pa.ListType):
        return pa.list_(_plain_field(typ.value_field))
    if isinstance(typ, pa.LargeListType):
        return pa.large_list(_plain_field(typ.value_field))
    if isinstance(typ, pa.FixedSizeListType):
        return pa.list_(_plain_field(typ.value_field), typ.list_size)
    if isinstance(typ, pa.StructType):
        return pa.struct([_plain_field(typ.field(i)) for i in range(typ.num_fields)])
    if isinstance(typ, pa.MapType):
        return pa.map_(_plain_field(typ.key_field), _plain_field(typ.item_field),
                       keys_sorted=typ.keys_sorted)
    return typ


def _plain_field(field: pa.Field) -> pa.Field:
    return field.with_type(_plain_type(field.type))


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every view-layout type replaced by its classic layout."""
    return pa.schema([_plain_field(f) for f in schema], metadata=schema.metadata)


def without_views(table: pa.Table) -> pa.Table:
    """``table`` with view-layout columns cast to their classic layouts (same values)."""
    target = _plain_schema(table.schema)
    if target.equals(table.schema):
        return table
    columns = []
    for column, field, want in zip(table.columns, table.schema, target):
        if field.type == want.type:
            columns.append(column)
        elif "list_view" in str(field.type):
            # pyarrow's list_view -> list cast can build invalid offsets when the input has
            # NULLs; rebuilding from Python values is slow but exact (list views are rare)
            columns.append(pa.chunked_array(
                [pa.array(chunk.to_pylist(), want.type) for chunk in column.chunks],
                want.type))
        else:
            columns.append(column.cast(want.type))
    return pa.Table.from_arrays(columns, schema=target)


def batch_without_views(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with view-layout columns in their classic layouts (one batch stays one)."""
    if _plain_schema(batch.schema).equals(batch.schema):
        return batch            # the usual case, checked on the schema alone (every stream batch)
    plain = without_views(pa.Table.from_batches([batch]))
    return plain.combine_chunks().to_batches()[0] if plain.num_rows else \
        pa.RecordBatch.from_pylist([], schema=plain.schema)


def stream_reader(obj) -> pa.RecordBatchReader:
    """A reader over an ``__arrow_c_stream__`` exporter, called without a requested schema."""
    return pa.RecordBatchReader.from_stream(_Exported(obj))


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
        return stream_reader(obj).read_all()
    if hasattr(obj, "__arrow_c_array__"):
        arr = obj if isinstance(obj, pa.Array) else pa.array(_Exported(obj))
        if isinstance(arr, pa.StructArray):
            return [pa.RecordBatch.from_struct_array(arr)]
        raise TypeError(f"create_dataframe_from_arrow expects tabular Arrow data; "
                        f"{type(obj).__name__}.__arrow_c_array__ exports a {arr.type} array "
                        f"(a table is a struct array: export a record batch instead)")
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
    return without_views(_to_table(obj))


def _to_table(obj) -> pa.Table:
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
