"""Apply a scan's pushed filters to its batches, using a second core when the batches come
from memory.

A scan of batches kept in memory (converted by the typing walk) has nothing left to do but
filter them, and its consumer (an aggregate) waits meanwhile: filtering and consuming would
run one after the other on one core while the other idles. The filters' C kernels (and
pyarrow's comparisons and ``filter``) release the GIL, so the next batches (two ahead) are
filtered on a worker thread while the consumer handles this one.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import pyarrow as pa

from .base import PushedFilter
from .pushdown import apply_filters
from .read_ahead import read_ahead

__all__ = ["filtered_batches"]


def _filtered(batches: Iterator[pa.RecordBatch], filters: Sequence[PushedFilter],
              names: list[str]) -> Iterator[pa.RecordBatch]:
    """``batches`` without the rows ``filters`` reject, as the columns ``names``."""
    for batch in batches:
        yield apply_filters(batch, filters, names)


def filtered_batches(batches: Iterator[pa.RecordBatch], filters: Sequence[PushedFilter],
                     names: list[str], in_memory: bool) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches`` that pass ``filters``, as the columns ``names``, in order.
    ``in_memory``: the batches cost nothing to produce, so the next one is filtered on a
    worker thread while the caller handles this one."""
    if filters and in_memory:
        # two batches ahead: a filter and the consumer take about as long per batch, and
        # a batch that filters slower than its consumer then does not stall the next one
        return read_ahead(_filtered(batches, filters, names), depth=2)
    return _filtered(batches, filters, names)
