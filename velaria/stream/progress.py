"""``StreamingQueryProgress``: the contract's progress fields, ``progress()`` and
``snapshot_json()``.

Both projections carry the same keys: the contract fields plus ``aggregate_impl`` and
``aggregate_reason`` (native Velaria's Python dict leaves those two out; we keep the two views
identical) and the extensions ``engine`` and ``aggregate_path`` (the aggregate kernel's path:
``dense-c``, ``arrow-hash``, ``packed-hash``, ``python-dict``, ``global``, ``reference``),
``durability_profile``, ``delivery_guarantee`` and ``delivery_guarantee_limited_by`` (the
end-to-end guarantee and the links that set it, see :mod:`velaria.stream.delivery`).
``progress()`` uses the Python dict order of native Velaria, ``snapshot_json()`` its JSON
order.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields

__all__ = ["Progress", "PROGRESS_KEYS", "SNAPSHOT_KEYS"]


@dataclass
class Progress:
    query_id: str = ""
    status: str = "created"
    requested_execution_mode: str = "single-process"
    execution_mode: str = "single-process"
    execution_reason: str = ""
    transport_mode: str = "inproc"
    aggregate_impl: str = "not-applicable"
    aggregate_reason: str = ""
    batches_pulled: int = 0
    batches_processed: int = 0
    blocked_count: int = 0
    max_backlog_batches: int = 0
    inflight_batches: int = 0
    inflight_partitions: int = 0
    last_batch_latency_ms: int = 0
    last_sink_latency_ms: int = 0
    last_state_latency_ms: int = 0
    last_source_offset: str = ""
    backpressure_active: bool = False
    actor_eligible: bool = False
    used_actor_runtime: bool = False
    used_shared_memory: bool = False
    has_stateful_ops: bool = False
    has_window: bool = False
    sink_is_blocking: bool = False
    source_is_bounded: bool = False
    estimated_partitions: int = 1
    projected_payload_bytes: int = 0
    sampled_batches: int = 0
    sampled_rows_per_batch: int = 0
    average_projected_payload_bytes: int = 0
    actor_speedup: float = 0.0
    compute_to_overhead_ratio: float = 0.0
    estimated_state_size_bytes: int = 0
    estimated_batch_cost: int = 0
    backpressure_max_queue_batches: int = 2
    backpressure_high_watermark: int = 2
    backpressure_low_watermark: int = 1
    checkpoint_delivery_mode: str = "at-least-once"
    engine: str = "auto"
    aggregate_path: str = "none"
    durability_profile: str = "dev-local"
    delivery_guarantee: str = "best-effort"
    delivery_guarantee_limited_by: str = "checkpoint,profile"

    def apply(self, d) -> None:
        """Copy the decision record (:class:`~velaria.stream.strategy.StreamDecisions`) in."""
        o = d.options
        self.requested_execution_mode = d.requested_mode
        self.execution_mode = d.selected_mode
        self.execution_reason = d.reason
        self.transport_mode = d.transport_mode
        self.aggregate_impl = d.aggregate_impl
        self.aggregate_reason = d.aggregate_reason
        self.actor_eligible = d.actor_eligible
        self.used_actor_runtime = d.used_actor_runtime
        self.used_shared_memory = d.used_shared_memory
        self.has_stateful_ops = d.has_stateful_ops
        self.has_window = d.has_window
        self.sink_is_blocking = d.sink_is_blocking
        self.source_is_bounded = d.source_is_bounded
        self.estimated_state_size_bytes = d.estimated_state_size_bytes
        self.estimated_batch_cost = max(self.estimated_batch_cost, d.estimated_batch_cost)
        self.backpressure_max_queue_batches = max(1, o.max_inflight_batches)
        self.backpressure_high_watermark = o.backpressure_high_watermark
        self.backpressure_low_watermark = o.backpressure_low_watermark
        self.checkpoint_delivery_mode = o.checkpoint_delivery_mode
        self.engine = d.engine
        self.aggregate_path = d.aggregate_path

    def apply_delivery(self, view) -> None:
        """Copy a :class:`~velaria.stream.delivery.DeliveryView` in (fixed for the query's life)."""
        self.durability_profile = view.profile.name
        self.delivery_guarantee = view.effective.label
        self.delivery_guarantee_limited_by = view.limited_by_text

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in PROGRESS_KEYS}

    def snapshot_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in SNAPSHOT_KEYS}, separators=(",", ":"), ensure_ascii=False)


SNAPSHOT_KEYS = tuple(f.name for f in fields(Progress))
_DICT_HEAD = ("query_id", "status", "requested_execution_mode", "execution_mode", "execution_reason",
              "transport_mode", "checkpoint_delivery_mode")
PROGRESS_KEYS = _DICT_HEAD + tuple(k for k in SNAPSHOT_KEYS if k not in _DICT_HEAD)
