"""The stream runtime: a second driver over the batch engine's plan nodes and kernels.

Public ABI for your own sources and sinks: :class:`StreamSource`, :class:`StreamSink` and the
context / marker records (see :mod:`velaria.stream.abi` for the lifecycle rules), and the
delivery vocabulary they declare themselves in: :class:`Capabilities`, :class:`DeliveryGuarantee`
(see :mod:`velaria.stream.delivery`).
"""
from .abi import (CheckpointMarker, LifecycleError, PullContext, SinkContext, SourceContext, StreamSink,
                  StreamSource)
from .delivery import Capabilities, DeliveryGuarantee, DurabilityProfileSpec

__all__ = ["StreamSource", "StreamSink", "SourceContext", "PullContext", "SinkContext", "CheckpointMarker",
           "LifecycleError", "Capabilities", "DeliveryGuarantee", "DurabilityProfileSpec"]
