"""Load the compiled cffi module and choose the SIMD dispatch level once.

The level is the best one the CPU and OS support (``velaria_cpu_level()``: CPUID + XCR0, as
NumPy checks), optionally *lowered* by the environment:

* ``VELARIA_SIMD`` (or upstream's ``VELARIA_SIMD_BACKEND``) = ``auto`` | ``scalar`` |
  ``scalar-c`` | ``avx2`` | ``avx512`` | ``neon``. A value above what the machine supports
  selects the best supported level below it; it can never raise the level.

Tests switch levels with :func:`forced_backend` (a context manager that restores the previous
level). ``KERNELS`` maps registry names to functions with the reference signatures.
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings

import numpy as np

from ._velaria_accel import ffi, lib  # ImportError here: velaria.accel records it

__all__ = ["KERNELS", "backend", "available_backends", "detected_backend", "forced_backend", "topk",
           "inv_norms_f32"]

# level number (velaria_accel.h) -> backend name, and the rank used for "lower only"
_NAMES = {0: "scalar-c", 1: "avx2", 2: "avx512", 3: "neon"}
_RANK = {"scalar-c": 0, "avx2": 1, "neon": 1, "avx512": 2}
_ALIASES = {"scalar": "scalar-c", "scalar-c": "scalar-c", "avx2": "avx2", "avx512": "avx512",
            "neon": "neon"}
_METRICS = {"cosine": 0, "dot": 1, "l2": 2}


def _supported() -> list[str]:
    """Backends this build has and this machine can run, worst first."""
    detected = lib.velaria_cpu_level()
    compiled = lib.velaria_compiled_levels()
    names = ["scalar-c"]
    if detected == 3 and compiled & (1 << 3):
        names.append("neon")
    if detected in (1, 2) and compiled & (1 << 1):
        names.append("avx2")
    if detected == 2 and compiled & (1 << 2):
        names.append("avx512")
    return names


_AVAILABLE = _supported()
_LEVEL_OF = {name: lvl for lvl, name in _NAMES.items()}
_lock = threading.Lock()


def _initial_backend() -> str:
    best = _AVAILABLE[-1]
    raw = os.environ.get("VELARIA_SIMD") or os.environ.get("VELARIA_SIMD_BACKEND") or "auto"
    raw = raw.strip().lower()
    if raw == "auto":
        return best
    want = _ALIASES.get(raw)
    if want is None:
        warnings.warn(f"VELARIA_SIMD={raw!r} is not one of: auto, scalar, avx2, avx512, neon; using {best}",
                      RuntimeWarning, stacklevel=2)
        return best
    # the best available level whose rank does not exceed the requested one
    fitting = [name for name in _AVAILABLE if _RANK[name] <= _RANK[want]]
    return fitting[-1]


_backend = _initial_backend()


def backend() -> str:
    """The SIMD backend in use: ``avx512``, ``avx2``, ``neon`` or ``scalar-c``."""
    return _backend


def detected_backend() -> str:
    """The best backend this machine supports (ignoring the environment)."""
    return _AVAILABLE[-1]


def available_backends() -> list[str]:
    """Every backend this build can run on this machine, worst first."""
    return list(_AVAILABLE)


@contextlib.contextmanager
def forced_backend(name: str):
    """Test hook: run the block with backend ``name`` (must be available), then restore."""
    global _backend
    name = _ALIASES.get(name, name)
    if name not in _AVAILABLE:
        raise ValueError(f"backend {name!r} is not available here (available: {', '.join(_AVAILABLE)})")
    with _lock:
        previous, _backend = _backend, name
    try:
        yield name
    finally:
        with _lock:
            _backend = previous


def inv_norms_f32(flat: np.ndarray, dim: int, n_rows: int) -> np.ndarray:
    """The reference's inverse row norms (sequential float64 sums) of a row-major float32 buffer."""
    data = np.ascontiguousarray(flat[: n_rows * dim], dtype=np.float32)
    out = np.zeros(n_rows, dtype=np.float64)
    if n_rows and dim:
        lib.velaria_inv_norms_f32(ffi.from_buffer("float[]", data), n_rows, dim,
                                  ffi.from_buffer("double[]", out))
    return out


def topk(flat, dim, n_rows, valid, queries, k, metric, inv_norms=None, threads=1):
    """Exact top-k rows per query vector, best first, ties by ascending row id.

    Identical to the reference's result on every SIMD level: the SIMD scan only selects
    candidates, which are rescored the reference's way (see accel/src/topk.c). ``inv_norms``
    (for cosine and dot) must be the reference's inverse norms; ``None`` computes them.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of: {', '.join(_METRICS)}")
    if k < 1:
        raise ValueError("top_k must be >= 1")
    data = np.frombuffer(flat, dtype=np.float32) if not isinstance(flat, np.ndarray) else flat.reshape(-1)
    qdata = np.frombuffer(queries, dtype=np.float32) if not isinstance(queries, np.ndarray) else queries.reshape(-1)
    if data.dtype != np.float32 or qdata.dtype != np.float32:
        raise TypeError("vector buffers must hold float32 values")
    if dim < 1 or data.size < n_rows * dim or qdata.size % dim or not qdata.size:
        raise ValueError("vector buffers do not match dim / n_rows")
    data = np.ascontiguousarray(data)
    qdata = np.ascontiguousarray(qdata)
    n_queries = qdata.size // dim
    c_valid = ffi.NULL
    if valid is not None:
        vmask = np.frombuffer(valid, dtype=np.uint8) if not isinstance(valid, np.ndarray) else valid.view(np.uint8)
        if vmask.size < n_rows:
            raise ValueError("valid mask is shorter than n_rows")
        c_valid = ffi.from_buffer("uint8_t[]", np.ascontiguousarray(vmask))
    c_norms = ffi.NULL
    if metric in ("cosine", "dot") and n_rows and inv_norms is not None:
        norms = np.frombuffer(inv_norms, dtype=np.float64) if not isinstance(inv_norms, np.ndarray) else inv_norms
        if norms.dtype != np.float64 or norms.size < n_rows:
            raise ValueError("inv_norms must hold n_rows float64 values")
        c_norms = ffi.from_buffer("double[]", np.ascontiguousarray(norms))
    # never more output slots than rows: top_k=2**33 over 1000 rows allocates 1000 slots
    slots = max(1, min(int(k), n_rows))
    ids = np.empty(n_queries * slots, dtype=np.int64)
    scores = np.empty(n_queries * slots, dtype=np.float64)
    counts = np.zeros(n_queries, dtype=np.int64)
    rc = lib.velaria_topk_f32(
        _LEVEL_OF[_backend], ffi.from_buffer("float[]", data), n_rows, dim, c_valid, c_norms,
        ffi.from_buffer("float[]", qdata), n_queries, slots, _METRICS[metric], int(threads),
        ffi.from_buffer("int64_t[]", ids), ffi.from_buffer("double[]", scores),
        ffi.from_buffer("int64_t[]", counts))
    if rc == -2:
        raise MemoryError("vector top-k: out of memory")
    if rc != 0:
        raise ValueError(f"vector top-k: invalid arguments (code {rc})")
    results = []
    for qi in range(n_queries):
        n = int(counts[qi])
        base = qi * slots
        results.append((ids[base:base + n].tolist(), scores[base:base + n].tolist()))
    return results


KERNELS = {"vector_topk": topk}
