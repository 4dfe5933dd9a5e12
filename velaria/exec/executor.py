"""Compatibility entry points over the operator model: plan a logical tree and run it.

The execution model lives in :mod:`velaria.exec.operators` (one operator class per plan node
kind) and :mod:`velaria.exec.driver` (the batch driver); :mod:`velaria.plan.physical` records
every decision. ``execute_table`` plans and runs an already optimised logical plan.
"""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from ..plan import logical as L
from ..plan.physical import build_physical
from .driver import run, run_table
from .operators import ExecContext

__all__ = ["execute", "execute_table", "ExecContext"]


def execute(node: L.Node, ctx: ExecContext) -> Iterator[pa.RecordBatch]:
    """Yield the record batches the optimised plan ``node`` produces."""
    return run(build_physical(node, ctx.kernels), ctx)


def execute_table(node: L.Node, ctx: ExecContext) -> pa.Table:
    """Run the optimised plan ``node`` to completion and return one ``pa.Table``."""
    return run_table(build_physical(node, ctx.kernels), ctx)
