"""The batch driver: pull every source, push through the operators, finish, close.

One execution model, two drivers: this one runs a bounded query to completion; the stream
driver (``velaria.stream``) pushes micro-batches through the same operators and checkpoints
their snapshots between batches.
"""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from ..errors import ExecutionError, VelariaError
from ..plan.physical import PhysicalPlan
from .operators import ExecContext, Operator, SourceOperator

__all__ = ["run", "run_table", "walk_operators", "call_operator"]


def walk_operators(root: Operator) -> list[Operator]:
    """Every operator under ``root``, children before parents."""
    out: list[Operator] = []
    for child in root.children:
        out.extend(walk_operators(child))
    out.append(root)
    return out


def call_operator(op: Operator, method, *args):
    """``method(*args)`` of operator ``op``; a failure names the operator that failed."""
    try:
        return method(*args)
    except VelariaError as exc:
        exc.add_note(f"while running operator {op.name} (step {op.node.__class__.__name__})")
        raise
    except (pa.ArrowException, ArithmeticError) as exc:
        raise ExecutionError(f"operator {op.name} failed: {type(exc).__name__}: {exc}") from exc


def _drive(op: Operator) -> Iterator[pa.RecordBatch]:
    if isinstance(op, SourceOperator):
        while True:
            b = call_operator(op, op.next_batch)
            if b is None:
                return
            op.rows_out += b.num_rows
            yield b
    for port, child in enumerate(op.children):
        for b in _drive(child):
            op.rows_in += b.num_rows
            for out in call_operator(op, op.push, b, port):
                op.rows_out += out.num_rows
                yield out
            if op.done:          # LIMIT reached: stop pulling (closes the child generators)
                break
        if op.done:
            break
        call_operator(op, op.input_ended, port)
    for out in call_operator(op, op.finish):
        op.rows_out += out.num_rows
        yield out


def run(plan: PhysicalPlan, ctx: ExecContext) -> Iterator[pa.RecordBatch]:
    """Yield the record batches ``plan`` produces; every operator is closed at the end, on
    success and on failure, and the kernels' paths are recorded in the plan."""
    root = plan.instantiate()
    ops = walk_operators(root)
    opened: list[Operator] = []
    try:
        for op in ops:
            call_operator(op, op.open, ctx)
            opened.append(op)
        yield from _drive(root)
    finally:
        plan.record_run(opened)
        errors = []
        for op in reversed(opened):
            try:
                op.close()
            except Exception as exc:  # close every operator; report the first failure after
                errors.append(exc)
        if errors:
            raise errors[0]


def run_table(plan: PhysicalPlan, ctx: ExecContext) -> pa.Table:
    """Run ``plan`` to completion and return one single-chunk ``pa.Table``."""
    schema = plan.root.schema
    batches = [b if b.schema.equals(schema) else pa.RecordBatch.from_arrays(list(b.columns), schema=schema)
               for b in run(plan, ctx) if b.num_rows]
    return pa.Table.from_batches(batches, schema=schema).combine_chunks()
