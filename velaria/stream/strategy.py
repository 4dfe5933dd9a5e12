"""Stream query options and the decision record that explain and progress both render.

:class:`StreamDecisions` is computed once from the plan, the options, the source and the
sink. ``explain_stream_sql`` prints its ``strategy`` section; a running query copies the same
object into ``progress()``, and when the runtime resolves the execution path on the first
batch it updates this record (``resolve_*``), so explain-then-run and progress can never
describe different decisions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import VelariaValueError
from .delivery import resolve_profile

__all__ = ["StreamOptions", "StreamDecisions", "parse_options", "EXECUTION_MODES", "DELIVERY_MODES"]

EXECUTION_MODES = ("single-process", "local-workers")
DELIVERY_MODES = ("at-least-once", "best-effort")

_ELIGIBLE_AGG = "stateful grouped aggregate can be partitioned and merged through local workers"
_HASH_AGG = "stateful grouped aggregate falls back to the generic hash-oriented path"
_LW = "configured local-workers execution"
REASONS = {
    "single": "configured single-process execution",
    "lw_plain": _LW,
    "lw_available": _LW + "; credit-based scheduling is available for the eligible grouped aggregate",
    "lw_needs_workers": _LW + "; credit acceleration requires local_workers > 1",
    "lw_used": _LW + "; using credit-based scheduling for the eligible grouped aggregate",
    "lw_not_eligible": _LW + "; using generic partition workers because the query plan is not eligible for credit acceleration",
    "lw_fallback_workers": _LW + "; using generic partition workers because credit acceleration requires local_workers > 1",
    "lw_missing_columns": _LW + "; using generic partition workers because credit scheduling requires a final eligible "
                                "stateful grouped aggregate with supported SUM/COUNT/MIN/MAX/AVG outputs",
}


@dataclass(frozen=True)
class StreamOptions:
    """``StreamingQueryOptions`` with native Velaria's defaults."""

    trigger_interval_ms: int = 1000
    max_inflight_batches: int = 2
    max_queued_partitions: int = 8
    backpressure_high_watermark: int = 2
    backpressure_low_watermark: int = 1
    checkpoint_path: str = ""
    execution_mode: str = "single-process"
    local_workers: int = 1
    max_inflight_partitions: int = 0
    shared_memory_transport: bool = True
    shared_memory_min_payload_bytes: int = 65536
    idle_wait_ms: int = 100
    max_retained_windows: int = 0
    checkpoint_delivery_mode: str = "at-least-once"
    durability_profile: str = "dev-local"

    @property
    def effective_local_workers(self) -> int:
        if self.execution_mode == "local-workers" and self.local_workers > 1:
            return self.local_workers
        return 1


_INT_OPTIONS = ("trigger_interval_ms", "max_inflight_batches", "max_queued_partitions",
                "backpressure_high_watermark", "backpressure_low_watermark", "local_workers",
                "max_inflight_partitions", "shared_memory_min_payload_bytes", "idle_wait_ms",
                "max_retained_windows")


def parse_options(**kwargs) -> StreamOptions:
    """Validated options. Wrong types raise ``TypeError``; bad values ``VelariaValueError``
    with native Velaria's messages for the two mode options."""
    names = set(StreamOptions.__dataclass_fields__)
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise TypeError(f"unexpected stream option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    for k in _INT_OPTIONS:
        if k in kwargs:
            v = kwargs[k]
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{k} must be an int, got {type(v).__name__}")
            if v < 0:
                raise VelariaValueError(f"{k} must be >= 0, got {v}")
    for k in ("checkpoint_path", "execution_mode", "checkpoint_delivery_mode"):
        if k in kwargs and not isinstance(kwargs[k], str):
            if k == "checkpoint_path" and hasattr(kwargs[k], "__fspath__"):
                import os
                kwargs[k] = os.fspath(kwargs[k])
                continue
            raise TypeError(f"{k} must be a str, got {type(kwargs[k]).__name__}")
    if "shared_memory_transport" in kwargs and not isinstance(kwargs["shared_memory_transport"], bool):
        raise TypeError("shared_memory_transport must be a bool")
    # explicit option, else $VELARIA_DURABILITY_PROFILE, else dev-local; unknown names raise
    kwargs["durability_profile"] = resolve_profile(kwargs.get("durability_profile")).name
    opts = StreamOptions(**kwargs)
    if opts.execution_mode not in EXECUTION_MODES:
        raise VelariaValueError("execution_mode must be 'single-process' or 'local-workers'")
    if opts.checkpoint_delivery_mode not in DELIVERY_MODES:
        raise VelariaValueError("checkpoint_delivery_mode must be 'at-least-once' or 'best-effort'")
    if opts.max_retained_windows:
        raise VelariaValueError(f"max_retained_windows={opts.max_retained_windows} is not supported: window "
                                "state is never evicted (0, the default); windowed totals stay exact")
    if opts.backpressure_low_watermark > opts.backpressure_high_watermark:
        raise VelariaValueError(f"backpressure_low_watermark ({opts.backpressure_low_watermark}) must be <= "
                                f"backpressure_high_watermark ({opts.backpressure_high_watermark})")
    return opts


@dataclass
class StreamDecisions:
    """Every decision about how a stream query runs, and why (the strategy record)."""

    options: StreamOptions
    requested_mode: str
    selected_mode: str
    reason: str
    actor_eligible: bool
    aggregate_impl: str
    aggregate_reason: str
    has_window: bool
    has_stateful_ops: bool
    sink_is_blocking: bool
    source_is_bounded: bool
    estimated_state_size_bytes: int
    estimated_batch_cost: int
    simd_backend: str
    compiled_backends: str
    engine: str
    aggregate_path: str = "none"
    transport_mode: str = "inproc"
    used_actor_runtime: bool = False
    used_shared_memory: bool = False
    resolved: bool = False
    notes: list = field(default_factory=list)

    @classmethod
    def decide(cls, plan, options: StreamOptions, sink_name: str | None, source_bounded: bool,
               kernels) -> "StreamDecisions":
        """The decision record for ``plan`` before any batch runs."""
        eligible, _ = plan.eligibility()
        stateful = plan.has_stateful_ops
        if not stateful:
            impl, impl_reason = "not-applicable", ""
        elif eligible:
            impl, impl_reason = "local-global", _ELIGIBLE_AGG
        else:
            impl, impl_reason = "hash-ref", _HASH_AGG
        mode = options.execution_mode
        if mode == "single-process":
            reason = REASONS["single"]
        elif not eligible:
            reason = REASONS["lw_plain"]
        elif options.effective_local_workers > 1:
            reason = REASONS["lw_available"]
        else:
            reason = REASONS["lw_needs_workers"]
        from .. import accel
        from ..plan import logical as L
        from ..plan.physical import build_physical
        # the aggregate kernel's path, planned by the same physical planner as batch SQL
        steps = [st for st in build_physical(plan.root, kernels).steps if isinstance(st.node, L.Aggregate)]
        agg_path = steps[0].path if steps else "none"
        backends = ["scalar"] + [b for b in (accel.available_backends() if kernels.engine != "reference" else [])
                                 if b not in ("scalar", "scalar-c")]
        return cls(options=options, requested_mode=mode, selected_mode=mode, reason=reason,
                   actor_eligible=eligible, aggregate_impl=impl, aggregate_reason=impl_reason,
                   has_window=plan.has_window, has_stateful_ops=stateful,
                   sink_is_blocking=sink_name not in (None, "memory", "console"),
                   source_is_bounded=source_bounded,
                   estimated_state_size_bytes=1024 if stateful else 0,
                   estimated_batch_cost=max(1, plan.transform_count) * 64 + (256 if stateful else 0),
                   simd_backend=kernels.backend, compiled_backends=",".join(backends), engine=kernels.engine,
                   aggregate_path=agg_path)

    # ---------------------------------------------------------------- runtime resolution
    @property
    def uses_workers(self) -> bool:
        """True when the eligible aggregate will run in worker processes."""
        return (self.requested_mode == "local-workers" and self.actor_eligible
                and self.options.effective_local_workers > 1)

    def record_aggregate_path(self, path: str | None) -> None:
        """The path the aggregate kernel reports after running (it may switch while running,
        e.g. a dense integer key whose range grows)."""
        if path:
            self.aggregate_path = path

    def resolve_single_process(self) -> None:
        self.selected_mode, self.reason, self.transport_mode = "single-process", REASONS["single"], "inproc"
        self.resolved = True

    def resolve_local_workers(self, used_workers: bool, shared_memory: bool = False) -> None:
        """Record what the first batch in local-workers mode really did."""
        self.selected_mode = "local-workers"
        if used_workers:
            self.reason = REASONS["lw_used"]
            self.used_actor_runtime = True
            self.used_shared_memory = shared_memory
            self.transport_mode = "shared-memory" if shared_memory else "rpc-copy"
        elif not self.actor_eligible:
            self.reason, self.transport_mode = REASONS["lw_not_eligible"], "inproc"
        else:
            self.reason, self.transport_mode = REASONS["lw_fallback_workers"], "inproc"
        self.resolved = True

    # ---------------------------------------------------------------- rendering
    def strategy_lines(self) -> list[str]:
        o = self.options
        eff = o.effective_local_workers
        b = _b
        return [
            f"requested_mode={self.requested_mode}",
            f"selected_mode={self.selected_mode}",
            f"simd_backend={self.simd_backend}",
            f"compiled_backends={self.compiled_backends}",
            f"aggregate_impl={self.aggregate_impl}",
            f"aggregate_reason={self.aggregate_reason}",
            f"reason={self.reason}",
            f"actor_eligible={b(self.actor_eligible)}",
            f"used_actor_runtime={b(self.used_actor_runtime)}",
            f"transport_mode={self.transport_mode}",
            f"has_window={b(self.has_window)}",
            f"has_stateful_ops={b(self.has_stateful_ops)}",
            f"sink_is_blocking={b(self.sink_is_blocking)}",
            f"source_is_bounded={b(self.source_is_bounded)}",
            f"estimated_state_size_bytes={self.estimated_state_size_bytes}",
            f"estimated_batch_cost={self.estimated_batch_cost}",
            f"backpressure_max_queue_batches={max(1, o.max_inflight_batches)}",
            f"backpressure_high_watermark={o.backpressure_high_watermark}",
            f"backpressure_low_watermark={o.backpressure_low_watermark}",
            f"checkpoint_delivery_mode={o.checkpoint_delivery_mode}",
            f"local_worker_count={max(1, eff)}",
            f"max_inflight_partitions={max(1, o.max_inflight_partitions if o.max_inflight_partitions > 0 else eff)}",
            f"shared_memory_transport={b(o.shared_memory_transport)}",
            f"shared_memory_min_payload_bytes={o.shared_memory_min_payload_bytes}",
            "columnar_operator=stream",
            "columnar_fallback_type=boundary-materialization",
            "columnar_reason=stream transforms may stay columnar; sinks and row-wire formats materialize rows "
            "as compatibility boundaries",
            "columnar_input_row_count=0",
            "columnar_affected_columns=all",
            f"engine={self.engine}",
            f"aggregate_path={self.aggregate_path}",
        ]


def _b(v: bool) -> str:
    return "true" if v else "false"


def explain_text(plan, decisions: StreamDecisions, delivery=None) -> str:
    """The three-section stream explain: ``logical``, ``physical``, ``strategy``. ``delivery``
    (a :class:`~velaria.stream.delivery.DeliveryView`) adds the durability profile and the
    delivery guarantee at the end of the strategy section."""
    lines = ["logical", *plan.logical_text(), "physical", *plan.physical_text(),
             "strategy", *decisions.strategy_lines(), *(delivery.strategy_lines() if delivery else ())]
    return "\n".join(lines) + "\n"
