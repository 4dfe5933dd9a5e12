"""Type aliases for the annotations of the public API (Session, DataFrame and the stream
classes), so that editors and type checkers see what each argument takes."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

__all__ = ["PathArg", "ArrowData", "CellValue", "Params", "ColumnTypes", "LineMappings"]

#: a file or directory path
PathArg = Union[str, os.PathLike[str]]     # a real object, not a name: resolves in any module
#: Arrow data: ``pa.Table``, ``RecordBatch``, ``RecordBatchReader``, a list of those, a dict of
#: columns, or any object exporting ``__arrow_c_stream__`` / ``__arrow_c_array__``
ArrowData = Any
#: one cell value as Python passes it in (filters, rows pushed into a stream)
CellValue = Union[None, bool, int, float, str]
#: SQL parameters: positional (``$1``, ``?``) or named (``$name``)
Params = Union[Sequence[Any], Mapping[str, Any], None]
#: explicit CSV column types: a SQL type name, a Python type or an Arrow type per column
ColumnTypes = Union[Mapping[str, Any], None]
#: line-file mappings: ``(column, source_index)`` pairs or ``{"column", "source_index"}`` dicts
LineMappings = Sequence[Union[tuple[str, int], Mapping[str, Any]]]
