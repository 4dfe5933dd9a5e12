"""Velaria for Python: a local dataflow engine where batch and stream share one execution model.

Entry point: :class:`Session`. ``read_excel(session, path)`` reads a worksheet. Engine errors
subclass :class:`VelariaError` (itself a ``RuntimeError``); see :mod:`velaria.errors`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (CatalogNotFoundError, SqlError, SQLNotAvailableError, SQLSemanticError,  # noqa: E402
                     SQLSyntaxError, SQLUnsupportedError, VelariaError, VelariaFileNotFoundError,
                     VelariaValueError)
from .session import Session  # noqa: E402
from .dataframe import DataFrame  # noqa: E402
from .excel import read_excel  # noqa: E402
from .streaming import (RealtimeStreamSink, RealtimeStreamSource, StreamingDataFrame,  # noqa: E402
                        StreamingQuery)
from .stream.custom import (CustomArrowStreamSink, CustomArrowStreamSource,  # noqa: E402
                            CustomStreamEmitOptions, consume_arrow_batches_with_custom_sink,
                            create_stream_from_custom_source)

__all__ = [
    "__version__", "Session", "DataFrame", "StreamingDataFrame", "StreamingQuery", "RealtimeStreamSource",
    "RealtimeStreamSink", "CustomArrowStreamSource", "CustomArrowStreamSink", "CustomStreamEmitOptions",
    "create_stream_from_custom_source", "consume_arrow_batches_with_custom_sink", "read_excel",
    "VelariaError", "VelariaValueError", "VelariaFileNotFoundError", "SqlError", "SQLSyntaxError",
    "SQLUnsupportedError", "SQLNotAvailableError", "SQLSemanticError", "CatalogNotFoundError",
]
