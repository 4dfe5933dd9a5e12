"""Join key pre-filter: the rows of a join's right input whose key no left row has are dropped
before the right input's own WHERE filter runs.

The batch driver drains a join's left input completely before it pulls the right one. At that
point the left keys are known, so a right row whose key is not among them cannot be part of
an inner join's output (nor of a left join's: such a right row is never emitted). When the
join's right input is a Filter, that filter first drops those rows and then evaluates its
predicate on the rest: in TPC-H Q10, ``l_returnflag = 'R'`` is then evaluated on the 4 % of
lineitem rows whose order passed the date range, not on all 6 million.

Results never change: the rows dropped early would have matched nothing, the rows kept stay
in their order, and the predicate must be one that cannot raise (so no error is lost with a
dropped row; the same rule decides which WHERE conjuncts move below joins). Only one key pair
of integers or of one date / timestamp type qualifies: its key set is a C table built once.
The filter measures itself on the first rows it sees and stands aside when it drops too few
of them to pay for the lookups. Which joins qualify is decided with the plan
(``velaria.plan.probe_keys``).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..plan.kernel_paths import collecting, report
from ..plan.optimize import column_refs, remap
from .column_take import take_columns

__all__ = ["ProbeFilter"]


class ProbeFilter:
    """Shared by a join and the Filter feeding its right input: the join arms it with the key
    set of its left input once that input has ended; the Filter then applies it to each
    batch before its predicate."""

    #: rows of the first batch tested before deciding whether the pre-filter pays
    SAMPLE_ROWS = 16384
    #: the pre-filter stays on only when it drops at least this share of the sample
    MIN_DROPPED = 0.25

    def __init__(self, column: int):
        self.column = column
        self._keys = None          # the left input's key set (kernel ``key_set``) once armed
        self._judged = False
        self.enabled = True

    @property
    def armed(self) -> bool:
        """True once ``arm`` gave the left input's key set."""
        return self._keys is not None

    def arm(self, key_set) -> None:
        """Start filtering with ``key_set`` (the left input is complete)."""
        self._keys = key_set

    def _active(self, batch: pa.RecordBatch) -> bool:
        """Whether to pre-filter ``batch``: armed, and on the first batch, whether the sample
        shows it pays."""
        if self._keys is None or not self.enabled or batch.num_rows == 0:
            return False
        if not self._judged:
            self._judged = True
            sample = batch.column(self.column).slice(0, self.SAMPLE_ROWS)
            with collecting({}):         # the sample's lookups are not the path that ran
                hits = self._keys.contains([sample])
            dropped = 1.0 - (pc.sum(hits).as_py() or 0) / len(sample)
            if dropped < self.MIN_DROPPED:
                self.enabled = False
                return False
        report("join-key-prefilter")
        return True

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` without the rows whose key the left input lacks (unchanged while not
        armed, or once judged not worth it)."""
        if not self._active(batch):
            return batch
        return self._keys.select(batch, self.column)

    def filter(self, batch: pa.RecordBatch, predicate, kernels, context) -> pa.RecordBatch | None:
        """The rows of ``batch`` whose key the left input has and for which ``predicate`` is
        TRUE, in order; None while not armed or once judged not worth it (the caller then
        filters the batch itself).

        Only the row numbers of the rows with a key are taken, and only the columns the
        predicate reads are gathered for them (with those row numbers as one more column): the
        filter kernel then keeps the row numbers of the rows it keeps, and every column is
        gathered once, for those rows. Compacting every column for the rows with a key and again
        for the rows the predicate keeps copied most of them twice (TPC-H Q3: 580 thousand
        lineitem rows with a key, 30 thousand kept)."""
        if not self._active(batch):
            return None
        rows = self._keys.indices(batch.column(self.column))
        if len(rows) == 0:
            return batch.slice(0, 0)
        read = sorted(column_refs([predicate]))
        narrow = pa.RecordBatch.from_arrays(
            take_columns([(batch.column(i), rows) for i in read]) + [rows],
            names=[f"c{j}" for j in range(len(read))] + ["row"])
        kept = kernels.filter_batch(remap(predicate, {c: j for j, c in enumerate(read)}), narrow, context)
        rows = kept.column(len(read))
        if len(rows) == batch.num_rows:
            return batch
        return pa.RecordBatch.from_arrays(take_columns([(column, rows) for column in batch.columns]),
                                          schema=batch.schema)
