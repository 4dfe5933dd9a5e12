"""Runtime modes: where a Session's batch queries run (embedded, single-node, distributed).

* :mod:`.modes` -- the valid (mode, placement) pairs, environment variables, validation;
* :mod:`.partition` -- splitting a scan's source into partitions;
* :mod:`.stages` -- cutting a plan at its exchange, partition tasks, merging partials;
* :mod:`.local_pool` -- ``single-node``: local worker processes, Arrow IPC in shared memory;
* :mod:`.dask_backend` -- ``distributed``: tasks on a Dask distributed cluster;
* :mod:`.runtime` -- the Session's :class:`Runtime`: annotate the plan's record, run it.
"""
from .modes import ADDRESS_ENV, MODE_ENV, MODES, PLACEMENTS, VALID_PAIRS, RuntimeConfig, resolve_config
from .runtime import Runtime, create_runtime

__all__ = ["MODES", "PLACEMENTS", "VALID_PAIRS", "MODE_ENV", "ADDRESS_ENV", "RuntimeConfig", "resolve_config",
           "Runtime", "create_runtime"]

