"""The accelerator: C SIMD kernels (cffi) and vectorised batch-operator kernels (numpy/pyarrow).

``KERNELS`` maps kernel-registry names (see ``velaria.kernels``) to accelerated functions with
the same signatures as their reference twins. Two independent parts fill it:

* the compiled C module (``_loader``: ``vector_topk``); a failed load is kept in
  ``import_error``;
* the batch-operator kernels, one module per kernel family as in ``velaria.reference``:
  ``expressions`` (``evaluate``), ``predicates`` (``filter_batch``), ``filtered_sums``
  (``filter_fold``), ``aggregate``
  (``hash_aggregate``), ``sort`` (``sort_indices``), ``join`` (``hash_join``), ``distinct``
  (``distinct_indices``), ``window`` (``window_eval``). numpy/pyarrow plus optional C helpers (``batch_c``), so they work
  without a compiler; a failed import is kept in ``batch_import_error``;
* ``keyword`` (``keyword_topk``, BM25 vectorised over Arrow string buffers).

Only a missing module (``ImportError``: no compiler, no numpy) is caught and recorded, so
explain can say why a reference kernel ran. Any other exception is a bug in the accelerator
and propagates: it must fail loudly, never quietly turn ``engine="auto"`` into the reference.
"""
from __future__ import annotations

KERNELS: dict = {}
import_error: BaseException | None = None

try:  # the compiled cffi module is built at install time
    from . import _loader  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the build
    import_error = exc
else:
    KERNELS.update(_loader.KERNELS)

batch_import_error: BaseException | None = None
try:  # numpy/pyarrow batch-operator kernels: independent of the C build
    from . import aggregate, distinct, expressions, filtered_sums, join, predicates, sort, window
except ImportError as exc:  # pragma: no cover - depends on the environment
    batch_import_error = exc
else:
    #: registry name -> accelerated batch kernel (velaria.kernels overlays these on the reference)
    BATCH_KERNELS = {
        "evaluate": expressions.evaluate,
        "filter_batch": predicates.filter_batch,
        "filter_select": predicates.filter_select,
        "filter_fold": filtered_sums.filter_fold,
        "hash_aggregate": aggregate.HashAggregate,
        "sort_indices": sort.sort_indices,
        "sort_take": sort.sort_take,
        "hash_join": join.hash_join,
        "key_matches": join.key_matches,
        "key_set": join.key_set,
        "distinct_indices": distinct.distinct_indices,
        "window_eval": window.window_eval,
        "setop_indices": distinct.setop_indices,
    }
    for _name, _fn in BATCH_KERNELS.items():
        KERNELS.setdefault(_name, _fn)  # a C kernel of the same name, if any, wins

try:  # BM25 keyword search vectorised over Arrow string buffers (numpy/pyarrow)
    from . import keyword as _keyword
except ImportError as exc:  # pragma: no cover - depends on the environment
    batch_import_error = batch_import_error or exc
else:
    KERNELS.update(_keyword.KERNELS)


def c_available() -> bool:
    """True when the compiled C accelerator loaded (SIMD backends, ``vector_topk``)."""
    return import_error is None and "vector_topk" in KERNELS


def batch_available() -> bool:
    """True when the numpy/pyarrow batch-operator kernels loaded."""
    return batch_import_error is None and "evaluate" in KERNELS


def available() -> bool:
    """True when any accelerated kernel loaded (the C part, the batch part or both)."""
    return bool(KERNELS)


def backend() -> str:
    """The SIMD backend chosen at load time (``avx512``, ``avx2``, ``neon``, ``scalar-c``) or
    ``python`` when the accelerator is unavailable."""
    if not c_available():
        return "python"
    return _loader.backend()


def available_backends() -> list[str]:
    """Backends this machine can run, worst first (``[]`` when the accelerator is unavailable)."""
    return _loader.available_backends() if c_available() else []


def forced_backend(name: str):
    """Test hook: a context manager running its block on SIMD backend ``name``, then restoring
    the previous one. Raises ``ValueError`` if ``name`` is not available here."""
    if not c_available():
        raise ValueError(f"backend {name!r} is not available: accelerator {status()}")
    return _loader.forced_backend(name)


def _c_status() -> str:
    if c_available():
        return f"loaded (backend={backend()})"
    if import_error is None:
        return "unavailable: no accelerated kernels registered"
    return f"unavailable: {type(import_error).__name__}: {import_error}"


def _batch_status() -> str:
    if batch_available():
        return "batch=numpy"
    if batch_import_error is None:
        return "batch=unavailable"
    return f"batch=unavailable ({type(batch_import_error).__name__}: {batch_import_error})"


def _fused_status() -> str:
    """How numeric expression trees are fused: numexpr, or why the numpy path runs instead."""
    if not batch_available():
        return "fused=none"
    from . import fused
    return f"fused={fused.status()}"


def status() -> str:
    """A one-line human description of the accelerator state: the C part, the batch part, then
    what fuses numeric expressions (e.g. ``loaded (backend=avx512); batch=numpy;
    fused=numexpr-2.14.2 (threads=2)``)."""
    return f"{_c_status()}; {_batch_status()}; {_fused_status()}"
