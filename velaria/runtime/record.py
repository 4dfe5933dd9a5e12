"""The runtime record of a partitioned plan: stages, tasks, exchange and shuffle, decided
from the plan's stage cut before anything runs (a run then fills in what really ran)."""
from __future__ import annotations

import os

from ..errors import VelariaValueError
from ..plan import logical as L
from ..plan.physical import RuntimeRecord
from .join_shuffle import broadcast_note

__all__ = ["plan_record", "join_record", "shuffle_buckets", "aggregate_shuffle_enabled", "AGGREGATE_SHUFFLE_ENV"]

AGGREGATE_SHUFFLE_ENV = "VELARIA_AGGREGATE_SHUFFLE"


def join_record(record: RuntimeRecord, chosen, maps: int, buckets: int, described: str, above) -> None:
    """Fill ``record`` for a plan whose join ``chosen`` is shuffled, with the part ``above``
    it (a :class:`~velaria.runtime.join_above.AbovePlan`) in the bucket tasks."""
    record.partitions = maps
    record.partitioning = described
    pushed = [type(n).__name__ for n in above.pipeline] + ([type(above.exchange).__name__] if above.exchange else [])
    then = (f", then {' + '.join(pushed)}" + (" (partial state)" if above.kind.startswith("partial") else ""))\
        if pushed else ""
    suffix = f"+{above.kind}" if above.kind else ""
    record.stage_count = 3
    if chosen.strategy == "broadcast-outer":
        record.exchange = "broadcast-outer-join" + suffix
        record.shuffle = (f"right input computed first as one task and broadcast to the left input's {maps} "
                          f"partitions, one join per partition{then} on the workers; the right rows no partition "
                          f"matched are padded on the client ({chosen.reason})")
        record.task_count = maps + 1
    else:
        record.exchange = "hash-shuffle-join" + suffix
        record.shuffle = (f"hash shuffle of both join inputs by join key into {buckets} buckets, one join per bucket"
                          f"{then} on the workers ({chosen.reason})")
        record.task_count = maps + buckets
    merge = {
        "partial-aggregate+merge": "merge the tasks' aggregate states in first-appearance order, then the plan above "
                                   "the aggregate",
        "top-n+merge": "the same top-n over the tasks' candidates, then the plan above it",
        "limit+merge": "the LIMIT over the tasks' rows in join order, then the plan above it",
    }.get(above.kind, "order the joined rows as one join would, then the plan above the join")
    padded = ("the plan above the join over the padded unmatched right rows, then "
              if chosen.strategy == "broadcast-outer" else "")
    record.final_stage = f"client: {padded}{merge}"
    record.fallbacks = [above.fallback] if above.fallback else []


def aggregate_shuffle_enabled(environ=os.environ) -> bool:
    """``VELARIA_AGGREGATE_SHUFFLE``: ``1`` (default) hash-shuffles grouped aggregates, ``0``
    merges all partial states on the client (cheaper when there are few groups)."""
    raw = environ.get(AGGREGATE_SHUFFLE_ENV, "1")
    if raw not in ("0", "1"):
        raise VelariaValueError(f"{AGGREGATE_SHUFFLE_ENV}={raw!r} is not 0 or 1; set it to 1 to hash-shuffle "
                                "partial aggregate states, 0 to merge them on the client, or unset it")
    return raw == "1"


def shuffle_buckets(cut, parallelism: int) -> int:
    """Buckets of the hash shuffle for ``cut`` (0: no shuffle). A grouped aggregate over
    several partitions is shuffled into ``parallelism`` buckets unless
    ``VELARIA_AGGREGATE_SHUFFLE=0``; an aggregate without keys has one group, which the
    client merges (nothing to spread)."""
    if cut.partitions is None or len(cut.partitions) < 2 or parallelism < 2:
        return 0
    if not aggregate_shuffle_enabled():
        return 0
    if not isinstance(cut.exchange, L.Aggregate) or not cut.exchange.keys:
        return 0
    return parallelism


def plan_record(record: RuntimeRecord, cut, buckets: int = 0) -> None:
    """Fill the stage facts of ``record`` from the plan's stage ``cut``."""
    if cut.partitions is None:
        record.stage_count = record.task_count = record.partitions = 1
        record.partitioning = "not split"
        record.exchange = "none"
        record.shuffle = "result to the client"
        record.final_stage = "none"
        record.fallbacks = [cut.reason]
        return
    record.partitions = len(cut.partitions)
    record.task_count = record.partitions + len(cut.broadcasts)
    record.partitioning = cut.partitioning
    record.exchange = cut.kind
    record.shuffle = ("gather-merge of partial aggregate states to the client"
                      if cut.kind.startswith("partial-aggregate") else "gather of partition results to the client")
    record.stage_count = 2 + (1 if cut.broadcasts else 0)
    broadcasts = "".join("; " + broadcast_note(j) for j in cut.broadcasts)
    record.shuffle += broadcasts
    above = cut.exchange is not None
    record.final_stage = ("client: merge, then the plan above the exchange" if above
                          else "client: concatenate partitions")
    if buckets:
        record.exchange = record.exchange.replace("partial-aggregate+merge", "partial-aggregate+hash-shuffle")
        record.shuffle = (f"hash shuffle of partial aggregate states by group key into {buckets} buckets; "
                          "final aggregate per bucket on the workers") + broadcasts
        record.task_count += buckets
        record.stage_count += 1
        record.final_stage = "client: concatenate buckets in first-appearance order, then the plan above the exchange"
    record.fallbacks = []
    if isinstance(cut.exchange, L.KeywordSearch):
        record.exchange = record.exchange.replace("gather+keywordsearch", "keyword-top-k+merge")
        record.shuffle = ("corpus statistics summed on the client, then each partition's top-k gathered to the "
                          "client") + broadcasts
        record.task_count += len(cut.partitions)
        record.stage_count += 1
        return
    if above and not cut.decomposed:
        record.fallbacks.append(f"{type(cut.exchange).__name__} is not split into partial steps: it runs once on "
                                "the client over the gathered partition rows")
