"""The C SIMD accelerator (cffi). Optional: if it cannot be loaded, the reference kernels run.

``KERNELS`` maps kernel-registry names (see ``velaria.kernels``) to C-backed functions with the
same signatures as their reference twins. Importing this package never raises: a failed load is
kept in ``import_error`` so explain can say why the reference ran.
"""
from __future__ import annotations

KERNELS: dict = {}
import_error: BaseException | None = None

try:  # the compiled cffi module is built at install time
    from . import _loader  # noqa: F401
except Exception as exc:  # pragma: no cover - depends on the build
    import_error = exc
else:
    KERNELS.update(_loader.KERNELS)


def available() -> bool:
    """True when the compiled accelerator loaded."""
    return import_error is None and bool(KERNELS)


def backend() -> str:
    """The SIMD backend chosen at load time (``avx512``, ``avx2``, ``neon``, ``scalar-c``) or
    ``python`` when the accelerator is unavailable."""
    if not available():
        return "python"
    return _loader.backend()


def available_backends() -> list[str]:
    """Backends this machine can run, worst first (``[]`` when the accelerator is unavailable)."""
    return _loader.available_backends() if available() else []


def forced_backend(name: str):
    """Test hook: a context manager running its block on SIMD backend ``name``, then restoring
    the previous one. Raises ``ValueError`` if ``name`` is not available here."""
    if not available():
        raise ValueError(f"backend {name!r} is not available: accelerator {status()}")
    return _loader.forced_backend(name)


def status() -> str:
    """A one-line human description of the accelerator state."""
    if available():
        return f"loaded (backend={backend()})"
    if import_error is None:
        return "unavailable: no accelerated kernels registered"
    return f"unavailable: {type(import_error).__name__}: {import_error}"
