"""The stream runtime: a second driver over the batch engine's plan nodes and kernels.

Public ABI for your own sources and sinks: :class:`StreamSource`, :class:`StreamSink` and the
context / marker records (see :mod:`velaria.stream.abi` for the lifecycle rules).
"""
from .abi import (CheckpointMarker, LifecycleError, PullContext, SinkContext, SourceContext, StreamSink,
                  StreamSource)

__all__ = ["StreamSource", "StreamSink", "SourceContext", "PullContext", "SinkContext", "CheckpointMarker",
           "LifecycleError"]
