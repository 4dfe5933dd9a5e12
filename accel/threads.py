"""How many threads the accelerator's parallel passes may use."""
from __future__ import annotations

import os

__all__ = ["default_threads"]


def default_threads() -> int:
    """``$VELARIA_THREADS``, else the CPU count."""
    raw = os.environ.get("VELARIA_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
