"""Runtime modes and placements: which (mode, placement) pairs a Session may use.

The *mode* is what the user asks for; the *placement* says where data-plane work is allowed
to run. They are kept apart on purpose: a distributed session must never quietly run its
data in the client process because a cluster was missing, so only three pairs exist and
every other pair is refused when the Session is built, not at its first query.

=============  ==================  ================================================
mode           placement           where partitions run
=============  ==================  ================================================
embedded       in_process          this process (today's engine)
single-node    local_workers       worker processes on this machine
distributed    remote_required     a Dask distributed cluster at an explicit address
=============  ==================  ================================================

Environment: ``VELARIA_RUNTIME_MODE`` (mode) and ``VELARIA_DASK_ADDRESS`` (scheduler
address). An address never implies a local mode: an address without a mode means
``distributed``.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import VelariaValueError

__all__ = ["MODES", "PLACEMENTS", "VALID_PAIRS", "RuntimeConfig", "resolve_config", "is_loopback",
           "START_CLUSTER_HINT", "MODE_ENV", "ADDRESS_ENV"]

MODE_ENV = "VELARIA_RUNTIME_MODE"
ADDRESS_ENV = "VELARIA_DASK_ADDRESS"

MODES = ("embedded", "single-node", "distributed")
PLACEMENTS = ("in_process", "local_workers", "remote_required")
#: the only pairs that construct; the placement of each mode is also its default
VALID_PAIRS = {"embedded": "in_process", "single-node": "local_workers", "distributed": "remote_required"}

START_CLUSTER_HINT = (
    "start a Dask cluster first -- on the scheduler machine run `dask scheduler` (it prints "
    "tcp://HOST:8786), on each worker machine `dask worker tcp://HOST:8786`, or in Python "
    "`distributed.LocalCluster(n_workers=2).scheduler_address` -- then pass "
    "Session(runtime_mode='distributed', address='tcp://HOST:8786') or set "
    f"{ADDRESS_ENV}=tcp://HOST:8786")


@dataclass(frozen=True)
class RuntimeConfig:
    """A validated (mode, placement, address) choice plus the partitioning knobs."""

    mode: str
    placement: str
    address: str | None = None
    parallelism: int | None = None      # partitions per scan (None: the backend's worker count)
    connect_timeout: float = 10.0       # seconds to reach a Dask scheduler
    task_timeout: float | None = None   # seconds one query may wait for its tasks (None: no limit)


def is_loopback(address: str) -> bool:
    """True when ``address`` (``tcp://host:port``, ``host:port`` or a bare host) names this
    machine through a loopback name or IP."""
    text = address if "://" in address else "tcp://" + address
    host = urlsplit(text).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_str(name: str, value) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")


def _positive(name: str, value, number_types=(int,)):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, number_types):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if value <= 0:
        raise VelariaValueError(f"{name} must be > 0, got {value}")


def resolve_config(runtime_mode: str | None = None, address: str | None = None,
                   placement: str | None = None, parallelism: int | None = None,
                   connect_timeout: float = 10.0, task_timeout: float | None = None,
                   environ=None) -> RuntimeConfig:
    """The runtime a Session uses, from its arguments, then ``VELARIA_RUNTIME_MODE`` /
    ``VELARIA_DASK_ADDRESS``; raises ``VelariaValueError`` for any pair outside
    :data:`VALID_PAIRS`, ``distributed`` without an address, or an address given to a local
    mode."""
    env = os.environ if environ is None else environ
    for name, value in (("runtime_mode", runtime_mode), ("address", address), ("placement", placement)):
        _check_str(name, value)
    _positive("parallelism", parallelism)
    _positive("connect_timeout", connect_timeout, (int, float))
    _positive("task_timeout", task_timeout, (int, float))
    mode_from = "runtime_mode"
    if runtime_mode is None and env.get(MODE_ENV):
        runtime_mode, mode_from = env[MODE_ENV].strip(), MODE_ENV
    address_from = "address"
    if address is None and env.get(ADDRESS_ENV):
        address, address_from = env[ADDRESS_ENV].strip(), ADDRESS_ENV
    if address is not None and not address:
        raise VelariaValueError(f"{address_from} is empty; pass a Dask scheduler address such as "
                                "tcp://HOST:8786, or leave it unset")
    if runtime_mode is None:
        # an address means a cluster: it never implies a local mode, loopback or not
        runtime_mode = "distributed" if address is not None else "embedded"
    if runtime_mode not in MODES:
        raise VelariaValueError(f"{mode_from}={runtime_mode!r} is not a runtime mode; use one of "
                                f"{', '.join(MODES)}")
    if placement is not None and placement not in PLACEMENTS:
        raise VelariaValueError(f"placement={placement!r} is not a placement; use one of "
                                f"{', '.join(PLACEMENTS)} (or leave it unset)")
    wanted = VALID_PAIRS[runtime_mode]
    if placement is not None and placement != wanted:
        if runtime_mode == "distributed":
            why = ("distributed mode cannot use local fallback; use placement='remote_required' "
                   "(or leave placement unset)")
        else:
            why = f"runtime_mode={runtime_mode!r} runs with placement={wanted!r} only"
        raise VelariaValueError(f"invalid runtime pair (runtime_mode={runtime_mode!r}, "
                                f"placement={placement!r}): {why}")
    if runtime_mode == "distributed" and address is None:
        raise VelariaValueError("runtime_mode='distributed' needs an explicit Dask scheduler address "
                                f"(it never runs the data in this process instead); {START_CLUSTER_HINT}")
    if runtime_mode != "distributed" and address is not None:
        where = "a remote" if not is_loopback(address) else "a"
        raise VelariaValueError(
            f"{address_from}={address!r} names {where} Dask scheduler but runtime_mode={runtime_mode!r} "
            f"runs locally and takes no address; use runtime_mode='distributed' to run on that cluster, "
            f"or unset {address_from}")
    return RuntimeConfig(mode=runtime_mode, placement=wanted, address=address, parallelism=parallelism,
                         connect_timeout=float(connect_timeout),
                         task_timeout=None if task_timeout is None else float(task_timeout))
