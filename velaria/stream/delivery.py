"""Delivery guarantees and durability profiles of stream queries.

The end-to-end delivery guarantee of a query is the weakest guarantee supplied by the links of
its path: the source, the sink, the checkpoint (its storage and ``checkpoint_delivery_mode``)
and the durability profile. :func:`effective_guarantee` computes it as one ``min()`` over
those links and says which links set it and why, so progress, explain and
``StreamingQuery.delivery`` report the same answer and never claim more than every link gives.

Guarantees (ordered, weakest first):

* ``best-effort``: a failure can lose or duplicate records.
* ``at-least-once``: source positions are never given up before the output is durable, but a
  replay may write records again.
* ``effectively-once``: a replay happens, but deterministic or idempotent sink keys converge on
  one visible result.
* ``exactly-once``: source position and sink publication are committed together.

Sources and sinks declare what they can do as :class:`Capabilities`; the guarantee is derived
from those flags, never declared directly.

Durability profiles (:class:`DurabilityProfileSpec`) are one setting that says what must
survive a process restart: ``dev-local`` (the default: nothing is promised across a restart)
and ``single-node-durable`` (checkpoints in a file the user names, written atomically; a query
without ``checkpoint_path`` refuses to start). ``distributed-durable`` is reserved for a
distributed state backend this build does not have, and is refused. A profile is chosen per
query (``durability_profile=``) or by the ``VELARIA_DURABILITY_PROFILE`` environment variable;
an unknown name is an error, never a silent fallback to the default.
"""
from __future__ import annotations

import enum
import os
from dataclasses import dataclass, fields

from ..errors import VelariaValueError

__all__ = ["DeliveryGuarantee", "Capabilities", "DurabilityProfileSpec", "CheckpointLink", "DeliveryView",
           "PROFILES", "DEFAULT_PROFILE", "PROFILE_ENV", "LINKS", "resolve_profile", "require_profile_storage",
           "effective_guarantee", "capabilities_of", "delivery_view"]


class DeliveryGuarantee(enum.IntEnum):
    """A delivery guarantee; a larger value is a stronger promise, so ``min()`` is the weakest."""

    BEST_EFFORT = 0
    AT_LEAST_ONCE = 1
    EFFECTIVELY_ONCE = 2
    EXACTLY_ONCE = 3

    @property
    def label(self) -> str:
        """The stable kebab-case name (``best-effort``, ``at-least-once``, ...)."""
        return self.name.lower().replace("_", "-")

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, label: str) -> "DeliveryGuarantee":
        """The guarantee named ``label`` (kebab-case, as :attr:`label` writes it)."""
        for g in cls:
            if g.label == label:
                return g
        raise VelariaValueError(f"unknown delivery guarantee {label!r}; use one of "
                                f"{', '.join(g.label for g in cls)}")


@dataclass(frozen=True)
class Capabilities:
    """What a source or sink can do for delivery (all False: promises nothing).

    * ``bounded``: the source ends by itself.
    * ``rewindable``: a source that can replay its data from the start after a restart (the
      data is still there, e.g. files in a directory).
    * ``checkpointable``: a source that resumes after a checkpointed offset (``restore``); a
      sink whose ``flush()`` makes every written row durable or hands it off, so a checkpoint
      taken after the flush never covers output the sink could still lose.
    * ``idempotent_keyed``: a sink that upserts by a key, so writing a row again converges.
    * ``transactional``: a sink that publishes a batch atomically (all rows or none).
    * ``two_phase``: a transactional sink that prepares at ``checkpoint`` and commits once the
      checkpoint is durable; requires ``transactional`` and ``checkpointable``.
    * ``resumable_flush``: a flush interrupted by a crash leaves no partial output behind.
    """

    bounded: bool = False
    rewindable: bool = False
    checkpointable: bool = False
    idempotent_keyed: bool = False
    transactional: bool = False
    two_phase: bool = False
    resumable_flush: bool = False

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, bool):
                raise TypeError(f"Capabilities.{f.name} must be a bool, got {type(v).__name__}")
        if self.two_phase and not (self.transactional and self.checkpointable):
            raise VelariaValueError("Capabilities(two_phase=True) also needs transactional=True and "
                                    "checkpointable=True: a two-phase commit prepares a transaction at the "
                                    "checkpoint and commits it once the checkpoint is durable")

    def guarantee(self) -> DeliveryGuarantee:
        """The strongest guarantee these flags alone can support, derived conservatively:
        two-phase commit is exactly-once, an idempotent keyed sink effectively-once, a
        rewindable or checkpointable endpoint at-least-once, anything else best-effort."""
        if self.two_phase and self.transactional and self.checkpointable:
            return DeliveryGuarantee.EXACTLY_ONCE
        if self.idempotent_keyed:
            return DeliveryGuarantee.EFFECTIVELY_ONCE
        if self.rewindable or self.checkpointable:
            return DeliveryGuarantee.AT_LEAST_ONCE
        return DeliveryGuarantee.BEST_EFFORT


# ------------------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class DurabilityProfileSpec:
    """What one durability profile requires of every component of a stream query.

    ``state_store``: where operator state lives between micro-batches and restarts (``memory``,
    or ``checkpoint-file``: exported into the checkpoint file after every micro-batch).
    ``checkpoint_storage``: ``ephemeral`` (none, or a file the profile makes no promise about)
    or ``local-file`` (the ``checkpoint_path`` the user names, written to a temporary file,
    fsynced, renamed into place and the directory fsynced). ``restart_durable``: progress
    survives a process restart. ``multi_node_safe``: more than one host may run the query.
    ``requires_checkpoint_path``: a query without ``checkpoint_path`` refuses to start.
    """

    name: str
    state_store: str
    checkpoint_storage: str
    restart_durable: bool
    multi_node_safe: bool
    requires_checkpoint_path: bool


PROFILES = {
    "dev-local": DurabilityProfileSpec("dev-local", state_store="memory", checkpoint_storage="ephemeral",
                                       restart_durable=False, multi_node_safe=False,
                                       requires_checkpoint_path=False),
    "single-node-durable": DurabilityProfileSpec("single-node-durable", state_store="checkpoint-file",
                                                 checkpoint_storage="local-file", restart_durable=True,
                                                 multi_node_safe=False, requires_checkpoint_path=True),
}
DEFAULT_PROFILE = "dev-local"
PROFILE_ENV = "VELARIA_DURABILITY_PROFILE"
_RESERVED = {"distributed-durable": "it needs a distributed state and checkpoint backend (consensus metadata, "
                                    "object-store checkpoints), which this build does not have"}


def resolve_profile(value=None) -> DurabilityProfileSpec:
    """The profile named ``value``; ``None`` reads ``$VELARIA_DURABILITY_PROFILE`` (unset or
    empty: ``dev-local``). An unknown or reserved name raises ``VelariaValueError`` (never a
    silent fallback to the default), a non-string ``TypeError``."""
    origin = "durability_profile"
    if value is None:
        value = os.environ.get(PROFILE_ENV, "")
        origin = f"${PROFILE_ENV}"
        if value == "":
            return PROFILES[DEFAULT_PROFILE]
    if not isinstance(value, str):
        raise TypeError(f"durability_profile must be a str, got {type(value).__name__}")
    if value in PROFILES:
        return PROFILES[value]
    if value in _RESERVED:
        raise VelariaValueError(f"{origin}={value!r} is not available: {_RESERVED[value]}; use "
                                f"{' or '.join(repr(p) for p in PROFILES)}")
    raise VelariaValueError(f"unknown {origin} {value!r}; valid profiles: {', '.join(PROFILES)} "
                            f"({', '.join(_RESERVED)} is reserved)")


def require_profile_storage(profile: DurabilityProfileSpec, checkpoint_path: str) -> None:
    """Refuse to start a query whose checkpoint cannot satisfy its durability profile."""
    if profile.requires_checkpoint_path and not checkpoint_path:
        raise VelariaValueError(f"durability_profile={profile.name!r} needs a durable checkpoint but the query has "
                                "no checkpoint_path; pass checkpoint_path='<file>' (written atomically after every "
                                "micro-batch) or use durability_profile='dev-local'")


# ------------------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class CheckpointLink:
    """The checkpoint of a query: its file (``""``: none) and ``checkpoint_delivery_mode``."""

    path: str
    mode: str

    @property
    def label(self) -> str:
        """``none``, or ``local-file:<mode>``."""
        return f"local-file:{self.mode}" if self.path else "none"


#: the links of a delivery path, in the order ``limited_by`` names them
LINKS = ("source", "sink", "checkpoint", "profile")
_TOP = DeliveryGuarantee.EXACTLY_ONCE


def effective_guarantee(source: Capabilities, sink: Capabilities | None, checkpoint: CheckpointLink,
                        profile: DurabilityProfileSpec, *, sink_name: str = "sink", source_name: str = "source",
                        offsets_in_sink_transaction: bool = False
                        ) -> tuple[DeliveryGuarantee, tuple[str, ...], tuple[str, ...]]:
    """``(guarantee, limited_by, reasons)`` of one delivery path across a process restart.

    The guarantee is the ``min()`` of each link's cap; ``limited_by`` names every link whose
    cap equals it (in :data:`LINKS` order; empty when nothing caps below exactly-once) and
    ``reasons`` says why each capping link caps where it does. ``sink`` None: the sink is not
    chosen yet (explain of a plain SELECT), which caps at at-least-once because a checkpointed
    replay can emit a micro-batch again. ``offsets_in_sink_transaction``: the source offsets
    commit atomically with the sink's transaction (never true of this runtime, which keeps
    them in the checkpoint file).
    """
    caps: dict[str, tuple[DeliveryGuarantee, str]] = {}
    if not (source.rewindable or source.checkpointable):
        caps["source"] = (DeliveryGuarantee.BEST_EFFORT,
                          f"source {source_name} can neither replay nor resume: batches consumed before a crash "
                          "are gone")
    if sink is None:
        caps["sink"] = (DeliveryGuarantee.AT_LEAST_ONCE,
                        "no sink chosen yet: a checkpointed replay can emit a micro-batch again")
    else:
        g = sink.guarantee()
        if g == DeliveryGuarantee.EXACTLY_ONCE and not offsets_in_sink_transaction:
            caps["sink"] = (DeliveryGuarantee.EFFECTIVELY_ONCE,
                            f"sink {sink_name} commits transactionally but the source offsets live in the "
                            "checkpoint file, not in the sink's transaction")
        elif g == DeliveryGuarantee.EFFECTIVELY_ONCE:
            caps["sink"] = (g, f"sink {sink_name} upserts by key: a replayed row converges on one result")
        elif g == DeliveryGuarantee.AT_LEAST_ONCE:
            caps["sink"] = (g, f"sink {sink_name} appends: a replay after a crash writes rows again")
        elif g == DeliveryGuarantee.BEST_EFFORT:
            caps["sink"] = (g, f"sink {sink_name} keeps its output only in this process: a crash loses what "
                               "was written but not yet consumed")
    if not checkpoint.path:
        caps["checkpoint"] = (DeliveryGuarantee.BEST_EFFORT,
                              "no checkpoint_path: nothing records what was delivered across a restart")
    elif checkpoint.mode == "best-effort":
        caps["checkpoint"] = (DeliveryGuarantee.BEST_EFFORT,
                              "checkpoint_delivery_mode=best-effort restores the source offset only where the "
                              "source supports it and makes no delivery claim")
    if not profile.restart_durable:
        caps["profile"] = (DeliveryGuarantee.BEST_EFFORT,
                           f"durability profile {profile.name} promises nothing across a process restart "
                           "(choose single-node-durable with a checkpoint_path)")
    effective = min((g for g, _ in caps.values()), default=_TOP)
    limited_by = tuple(link for link in LINKS if link in caps and caps[link][0] == effective)
    reasons = tuple(caps[link][1] for link in limited_by)
    return effective, limited_by, reasons


def capabilities_of(endpoint, what: str) -> Capabilities:
    """``endpoint.capabilities()``, checked: a source or sink must return :class:`Capabilities`."""
    caps = endpoint.capabilities()
    if not isinstance(caps, Capabilities):
        raise TypeError(f"{type(endpoint).__name__}.capabilities() must return velaria.stream.Capabilities, "
                        f"got {type(caps).__name__}; this {what} declares what it can do for delivery there")
    return caps


@dataclass(frozen=True)
class DeliveryView:
    """The delivery guarantee of one query, as :attr:`StreamingQuery.delivery` reports it."""

    source: str
    sink: str
    sink_guarantee: DeliveryGuarantee | None
    checkpoint: CheckpointLink
    profile: DurabilityProfileSpec
    effective: DeliveryGuarantee
    limited_by: tuple[str, ...]
    reasons: tuple[str, ...]
    source_offsets_in_sink_transaction: bool = False

    @property
    def limited_by_text(self) -> str:
        """``limited_by`` comma-joined (``none`` when nothing caps it)."""
        return ",".join(self.limited_by) or "none"

    def as_dict(self) -> dict:
        return {"source": self.source, "sink": self.sink,
                "sink_guarantee": self.sink_guarantee.label if self.sink_guarantee is not None else "none",
                "checkpoint": self.checkpoint.label, "profile": self.profile.name,
                "source_offsets_in_sink_transaction": self.source_offsets_in_sink_transaction,
                "effective": self.effective.label, "limited_by": self.limited_by_text,
                "reasons": list(self.reasons)}

    def strategy_lines(self) -> list[str]:
        """The explain strategy lines, ``key=value`` like the rest of the section."""
        return [f"durability_profile={self.profile.name}", f"delivery_guarantee={self.effective.label}",
                f"delivery_guarantee_limited_by={self.limited_by_text}"]


def delivery_view(source, sink, options) -> DeliveryView:
    """The delivery view of a query over ``source`` into ``sink`` (None: not chosen yet) with
    :class:`~velaria.stream.strategy.StreamOptions` ``options``."""
    profile = resolve_profile(options.durability_profile)
    checkpoint = CheckpointLink(options.checkpoint_path, options.checkpoint_delivery_mode)
    src_caps = capabilities_of(source, "source")
    sink_caps = capabilities_of(sink, "sink") if sink is not None else None
    sink_name = sink.name() if sink is not None else "none"
    effective, limited_by, reasons = effective_guarantee(src_caps, sink_caps, checkpoint, profile,
                                                         sink_name=sink_name, source_name=source.describe())
    return DeliveryView(source=source.describe(), sink=sink_name,
                        sink_guarantee=sink_caps.guarantee() if sink_caps is not None else None,
                        checkpoint=checkpoint, profile=profile, effective=effective, limited_by=limited_by,
                        reasons=reasons)
