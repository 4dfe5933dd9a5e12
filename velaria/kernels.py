"""The kernel registry: which implementation runs each hot-path operator.

Every kernel has a readable reference twin in ``velaria.reference`` (the executable
specification). ``velaria.accel`` may replace any of them with a C implementation of the same
signature by listing it in its ``KERNELS`` dict -- that is the whole switch; nothing here
changes when a new accelerated kernel lands.

Engines:

* ``reference`` -- only the pure-Python kernels;
* ``accel`` -- accelerated kernels where they exist, and an error if the accelerator is
  unavailable (so a benchmark never silently measures Python);
* ``auto`` (default) -- accelerated where available, reference otherwise.

The choice comes from ``Session(engine=...)``, else the ``VELARIA_ENGINE`` environment
variable, else ``auto``. Explain and progress print what :class:`KernelSet` reports, so they
always describe the kernels that really run.
"""
from __future__ import annotations

import importlib
import os
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Callable

from .errors import VelariaError, VelariaValueError

__all__ = ["ENGINES", "REFERENCE_KERNELS", "KernelSet", "resolve_engine", "kernel_set"]

ENGINES = ("auto", "reference", "accel")

#: kernel name -> "module:attribute" of its reference implementation
REFERENCE_KERNELS: dict[str, str] = {
    "evaluate": "velaria.reference.batch:evaluate",
    "filter_batch": "velaria.reference.batch:filter_batch",
    "filter_select": "velaria.reference.batch:filter_select",
    "filter_fold": "velaria.reference.batch:filter_fold",
    "hash_aggregate": "velaria.reference.batch:HashAggregate",
    "sort_indices": "velaria.reference.batch:sort_indices",
    "sort_take": "velaria.reference.batch:sort_take",
    "hash_join": "velaria.reference.batch:hash_join",
    "key_matches": "velaria.reference.batch:key_matches",
    "key_set": "velaria.reference.batch:key_set",
    "distinct_indices": "velaria.reference.batch:distinct_indices",
    "window_eval": "velaria.reference.batch:window_eval",
    "setop_indices": "velaria.reference.batch:setop_indices",
    "vector_topk": "velaria.reference.topk:topk",
    "keyword_topk": "velaria.reference.keyword:keyword_topk",
    "keyword_stats": "velaria.reference.keyword:keyword_stats",
}


def _load(spec: str) -> Callable:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def resolve_engine(engine: str | None) -> str:
    """Validate ``engine`` (None means ``$VELARIA_ENGINE`` or ``auto``)."""
    if engine is None:
        engine = os.environ.get("VELARIA_ENGINE", "").strip().lower() or "auto"
        source = "VELARIA_ENGINE"
    else:
        source = "engine"
    if not isinstance(engine, str):
        raise TypeError(f"engine must be a str, got {type(engine).__name__}")
    if engine not in ENGINES:
        raise VelariaValueError(f"{source} must be one of: {', '.join(ENGINES)} (got {engine!r})")
    return engine


@dataclass
class KernelSet:
    """The kernels one Session uses, one typed attribute per registry name, with where each
    came from (``origins``: ``"reference"`` or ``"accel"``).

    A reader follows a call from the executor (``ctx.kernels.hash_aggregate(...)``) to the
    attribute here and, through :data:`REFERENCE_KERNELS` or ``velaria.accel.KERNELS``, to the
    function that runs.
    """

    engine: str
    evaluate: Callable = None              # type: ignore[assignment]
    filter_batch: Callable = None          # type: ignore[assignment]
    filter_select: Callable = None         # type: ignore[assignment]
    filter_fold: Callable = None           # type: ignore[assignment]
    hash_aggregate: Callable = None        # type: ignore[assignment]
    sort_indices: Callable = None          # type: ignore[assignment]
    sort_take: Callable = None             # type: ignore[assignment]
    hash_join: Callable = None             # type: ignore[assignment]
    key_matches: Callable = None           # type: ignore[assignment]
    key_set: Callable = None               # type: ignore[assignment]
    distinct_indices: Callable = None      # type: ignore[assignment]
    window_eval: Callable = None           # type: ignore[assignment]
    setop_indices: Callable = None         # type: ignore[assignment]
    vector_topk: Callable = None           # type: ignore[assignment]
    keyword_topk: Callable = None          # type: ignore[assignment]
    keyword_stats: Callable = None         # type: ignore[assignment]
    origins: dict[str, str] = field(default_factory=dict)
    backend: str = "python"          # SIMD backend of the accelerator, or "python"
    accel_status: str = "not requested"

    def __post_init__(self):
        declared = {f.name for f in fields(self)} - {"engine", "origins", "backend", "accel_status"}
        if declared != set(REFERENCE_KERNELS):      # checked once, here: the two lists agree
            raise VelariaError(f"KernelSet attributes {sorted(declared)} differ from the registry "
                               f"{sorted(REFERENCE_KERNELS)}")

    @property
    def kernels(self) -> dict[str, Callable]:
        """Registry name -> the function that runs."""
        return {name: getattr(self, name) for name in REFERENCE_KERNELS}

    def replace(self, name: str, fn: Callable, origin: str) -> "KernelSet":
        """A copy of this set with kernel ``name`` replaced (tests; explain names ``origin``)."""
        if name not in REFERENCE_KERNELS:
            raise VelariaValueError(f"unknown kernel {name!r}; known: {', '.join(REFERENCE_KERNELS)}")
        new = dataclasses.replace(self, origins=dict(self.origins))
        setattr(new, name, fn)
        new.origins[name] = origin
        return new

    def origin(self, name: str) -> str:
        """``"reference"`` or ``"accel"`` for kernel ``name``."""
        return self.origins[name]

    def describe(self, name: str) -> str:
        """One explain token for kernel ``name``, e.g. ``hash_aggregate=reference``."""
        return f"{name}={self.origins[name]}"


_CACHE: dict[str, KernelSet] = {}


def kernel_set(engine: str | None = None) -> KernelSet:
    """The :class:`KernelSet` for ``engine`` (cached per engine name)."""
    engine = resolve_engine(engine)
    if engine in _CACHE:
        return _CACHE[engine]
    ks = KernelSet(engine=engine)
    for name, spec in REFERENCE_KERNELS.items():
        setattr(ks, name, _load(spec))
        ks.origins[name] = "reference"
    if engine != "reference":
        from . import accel  # a missing accelerator is recorded, not raised (see velaria.accel)
        ks.accel_status = accel.status()
        if accel.available():
            ks.backend = accel.backend()
            for name, fn in accel.KERNELS.items():
                if name not in REFERENCE_KERNELS:
                    raise VelariaError(f"accelerated kernel {name!r} has no reference twin in the registry; "
                                       "every accelerated kernel must replace a reference kernel of the same name")
                setattr(ks, name, fn)
                ks.origins[name] = "accel"
        elif engine == "accel":
            raise VelariaError(f"engine='accel' requested but the accelerator is unavailable: {accel.status()}; "
                               "build it with `python3 dev.py test` (needs a C compiler) or use engine='auto'")
    _CACHE[engine] = ks
    return ks
