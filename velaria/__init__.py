"""Velaria for Python: a local dataflow engine where batch and stream share one execution model."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import VelariaError  # noqa: E402
from .session import Session  # noqa: E402
from .dataframe import DataFrame  # noqa: E402

__all__ = ["__version__", "Session", "DataFrame", "VelariaError"]
