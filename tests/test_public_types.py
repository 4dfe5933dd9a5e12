"""The public API carries type hints (the package ships ``py.typed``): every public method of
Session, DataFrame, StreamingDataFrame and StreamingQuery annotates each parameter and its
result, and the annotations name real types."""
from __future__ import annotations

import inspect
import sys
import typing

import pytest

import velaria
from velaria.dataframe import DataFrame
from velaria.streaming import RealtimeStreamSink, RealtimeStreamSource, StreamingDataFrame, StreamingQuery

CLASSES = [velaria.Session, DataFrame, StreamingDataFrame, StreamingQuery]


def _public_methods():
    for cls in CLASSES:
        for name, fn in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_"):
                yield pytest.param(fn, id=f"{cls.__name__}.{name}")


@pytest.mark.parametrize("fn", list(_public_methods()))
def test_public_method_is_fully_annotated(fn):
    sig = inspect.signature(fn)
    bare = [p.name for p in sig.parameters.values() if p.name != "self" and p.annotation is inspect.Parameter.empty]
    assert not bare, f"parameters without a type hint: {bare}"
    assert sig.return_annotation is not inspect.Signature.empty, "no return type hint"
    # the strings resolve to real types (names imported only for type checkers included)
    from velaria.stream.abi import StreamSink, StreamSource
    extra = {"DataFrame": DataFrame, "StreamingDataFrame": StreamingDataFrame, "StreamingQuery": StreamingQuery,
             "RealtimeStreamSource": RealtimeStreamSource, "RealtimeStreamSink": RealtimeStreamSink,
             "StreamSource": StreamSource, "StreamSink": StreamSink}
    module = sys.modules[fn.__module__]
    typing.get_type_hints(fn, globalns={**vars(module), **extra})
