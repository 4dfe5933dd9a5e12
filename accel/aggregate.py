"""Accelerated ``HashAggregate``: per-batch factorisation merged into first-appearance global
groups, COUNT/SUM/AVG/MIN/MAX with numpy ``bincount`` / ``ufunc.at`` and C helpers (float sums
added in input order, exact int64 sums as 32-bit halves); DISTINCT aggregates and key types it
cannot hash run the reference aggregator. Twin of ``velaria.reference.batch.HashAggregate``
(list semantics in ``velaria.reference.aggregate``).
"""
from __future__ import annotations

import copy

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.types as pat

from velaria.errors import ExecutionError, VelariaValueError
from velaria.plan.expr import AggregateCall
from velaria.reference import aggregate as _ref_aggregate, batch as _ref
from velaria.reference.distinct import hash_key

from . import aggregate_stats, batch_c, byte_keys, decimal_values, group_sums, int_sums
from . import group_fused, select_terms
from .group_shortcuts import KeyBitmap, dense_sum_columns
from .group_hash import Int64GroupTable, c_available as group_hash_c, number_packed, number_short_strings
from .pair_ids import PairTable
from .arrow_util import _BOOL, _F64, _I64, _TWO53, _conform, _is_float, _is_int, _is_num, _nulls, _np_values, _valid
from .distinct import _codes, _combine_codes, _hashable

__all__ = ["HashAggregate"]


# ---- HashAggregate

#: the aggregates the fast path computes (the statistics in ``aggregate_stats``)
_FAST_FUNCS = ("count", "sum", "avg", "min", "max") + aggregate_stats.STAT_FUNCS
# the aggregates whose per-group state ``take_updated_state`` restarts in place
_RESTARTABLE = ("count", "sum", "avg", "min", "max")
_I64_MAX = np.iinfo(np.int64).max


def _agg_supported(agg: AggregateCall, arg: pa.Array | None) -> bool:
    return _agg_type_supported(agg, None if arg is None else arg.type)


def _agg_type_supported(agg: AggregateCall, t: pa.DataType | None) -> bool:
    """True when the fast path computes ``agg`` over an argument of type ``t`` exactly."""
    if agg.distinct or agg.func not in _FAST_FUNCS:
        return False
    if t is None or agg.func == "count" or pat.is_null(t):
        return True
    if agg.func in ("sum", "avg"):
        return (_is_num(t) and not pat.is_float16(t)) or _scaled_decimal(t)
    if agg.func in aggregate_stats.STAT_FUNCS:
        return aggregate_stats.stat_type_supported(agg.func, t)
    return _is_num(t) or pat.is_boolean(t) or _scaled_decimal(t)


def _scaled_decimal(t: pa.DataType) -> bool:
    """A DECIMAL: SUM / AVG / MIN / MAX run on the unscaled int64 words exactly
    (``decimal_values``), the scale put back in the result. Up to 18 digits every value fits;
    a wider type's values are checked per batch (``update`` hands a batch with a value beyond
    int64 and everything after it to the reference)."""
    return pat.is_decimal128(t)


def _count_rows(todo: list, rows: np.ndarray, g: int, done: set) -> None:
    """A multi-column pass over NULL-free arguments counted every row it folded, per group:
    that is also the increment of each COUNT(*) in ``todo`` (added, and marked done)."""
    for st, a in todo:
        if a is None and st.agg.func == "count" and id(st) not in done:
            st.count[:g] += rows
            done.add(id(st))


def _selection_mask(selection) -> np.ndarray:
    """A selection (numpy or Arrow bool array, no NULLs) as a numpy bool array."""
    if isinstance(selection, pa.Array):
        return selection.to_numpy(zero_copy_only=False).astype(np.bool_, copy=False)
    return np.asarray(selection, dtype=np.bool_)


def _selected(valid: np.ndarray | None, selection: np.ndarray | None) -> np.ndarray | None:
    """The rows an aggregate folds: valid (non-NULL) and selected; None means every row."""
    if selection is None:
        return valid
    return selection if valid is None else valid & selection


def _grow(a: np.ndarray, n: int, fill) -> np.ndarray:
    if len(a) >= n:
        return a
    out = np.full(max(n, 2 * len(a), 16), fill, dtype=a.dtype)
    out[:len(a)] = a
    return out


class _AggState:
    """Running per-group state of one aggregate (numpy arrays indexed by group id)."""

    def __init__(self, agg: AggregateCall):
        self.agg = agg
        self.count = np.zeros(0, dtype=np.int64)     # rows (COUNT(*)) or non-NULL values
        self.kind = None                             # "float" | "int" | None (decided on data)
        self.total = np.zeros(0, dtype=np.float64)   # float SUM / AVG
        self.lo = np.zeros(0, dtype=np.int64)        # int SUM / AVG: total = hi * 2**32 + lo
        self.hi = np.zeros(0, dtype=np.int64)
        self.hi_bound = 0                            # an upper bound of |hi| (int64 hi only)
        self.best = None                             # MIN / MAX
        self.lanes = None     # float SUM / AVG without GROUP BY: the 16 lane sums (spec order)
        self.mean = np.zeros(0, dtype=np.float64)    # variances: Welford's mean and m2
        self.m2 = np.zeros(0, dtype=np.float64)
        self.values: list = []                       # MEDIAN: (group ids, values) per batch
        self.mirror = None    # None (no batch yet) | index of the state it copies | False
        # a DECIMAL argument: its scale (the state holds unscaled integers); None otherwise
        self.scale = agg.arg.type.scale if agg.arg is not None and pat.is_decimal(agg.arg.type) else None

    def grow(self, g: int) -> None:
        self.count = _grow(self.count, g, 0)
        if self.agg.func in ("sum", "avg"):
            self.total = _grow(self.total, g, 0.0)
            self.lo = _grow(self.lo, g, 0)
            self.hi = _grow(self.hi, g, 0)
        elif self.agg.func in aggregate_stats.STAT_FUNCS:
            self.mean = _grow(self.mean, g, 0.0)
            self.m2 = _grow(self.m2, g, 0.0)
        elif self.best is not None:
            self.best = _grow(self.best, g, 0)


class HashAggregate:
    """GROUP BY over Arrow batches: ``update(keys, args, num_rows)`` per batch, then
    ``finish(types)`` -> one Arrow array per key then per aggregate."""

    def __init__(self, aggregates: Sequence[AggregateCall], num_keys: int):
        self._aggregates = list(aggregates)
        self._num_keys = num_keys
        self._schemas: dict[tuple, pa.Schema] = {}      # key types -> export_state's schema
        # the reference twin validates the arguments and takes over any case we do not cover
        self._reference = _ref.HashAggregate(self._aggregates, num_keys)
        self._mode: str | None = None            # None (no data yet) | "fast" | "reference"
        self._groups: dict[tuple, int] = {}      # several keys: normalised key -> group id
        self._uniques: pa.Array | None = None    # one key: normalised key of each group id
        self._column_uniques: list = [None] * num_keys   # several keys: each column's distinct values
        # several keys: table i numbers (code of keys 0..i, code of key i+1) packed in one int64;
        # the last table's numbers are the group ids
        self._pairs: list[PairTable] | None = None
        # several keys: a string column whose values all fit 8 bytes is numbered through its
        # packed words (None: not decided, False: the column left this path for the dictionary one)
        self._short_strings: list = [None] * num_keys
        # several keys: a NULL-free int64 column (window starts) numbered by a persistent hash
        # table of its values (None: not built yet, False: values came in another way)
        self._int_tables: list = [None] * num_keys
        self._key_parts: list[list[pa.Array]] = [[] for _ in range(num_keys)]
        # two string keys of one-byte values: their pair's group id in a direct-indexed table
        # (None: not decided, False: left for the packed-hash path)
        self._byte_pairs = None
        # several keys: (dictionary, code of each of its positions) of the last dictionary-encoded
        # batch of each key column (see ``_stable_dictionary_codes``)
        self._dictionary_cache: list = [None] * num_keys
        # one integer key with a small value range: lut[key - lo] = group id, lut[-1] = NULL's
        self._lut: np.ndarray | None = None
        # several integer keys, no aggregate calls: the bitmap of key combinations seen (None:
        # not decided, False: left for the packed-hash path)
        self._key_bitmap = None
        self._lut_lo = 0
        self._dense_type = None
        self._ngroups = 1 if num_keys == 0 else 0
        self._states = [_AggState(a) for a in self._aggregates]
        for s in self._states:
            s.grow(self._ngroups)
            if _ref_aggregate.lane_summed(s.agg, num_keys):
                s.lanes = np.zeros(batch_c.SUM_LANES, dtype=np.float64)
        # groups updated since emit_updated(); tracked only once a caller has asked (a batch
        # query never does, and marking millions of rows per batch is not free)
        self._tracking = False
        self._touched = np.zeros(16, dtype=bool)
        self._updated = False                      # any update at all (the global group)
        self.path: str | None = None               # the path that ran, once data arrived

    @staticmethod
    def plan_path(aggregates: Sequence[AggregateCall], key_types: Sequence[pa.DataType]) -> str:
        """The path planning expects for these aggregates and key types (see ``path``); the
        dense path may still leave for ``arrow-hash`` at run time when the key range grows
        past the dense table's limit, and the path that ran is reported in ``path``."""
        if not all(_hashable(t) for t in key_types) or not all(
                _agg_type_supported(a, a.arg.type if a.arg is not None else None) for a in aggregates):
            return "reference"
        if not key_types:
            return "global"
        if len(key_types) == 1 and _is_int(key_types[0]):
            return "dense-c" if batch_c.available() else "dense-numpy"
        if len(key_types) >= 2 and not any(pat.is_null(t) for t in key_types):
            return "packed-hash"
        return "arrow-hash" if len(key_types) == 1 and not pat.is_null(key_types[0]) else "python-dict"

    # -- group ids -----------------------------------------------------------------------

    _DENSE_MAX = 1 << 20         # largest key range (slots) the dense lookup table may span

    def _dense_ids(self, arr: pa.Array) -> np.ndarray | None:
        """Group ids through the dense lookup table (one integer key whose values all lie in
        a small range); None when this batch does not fit it (the table is then retired)."""
        keys = self._dense_keys(arr)
        if keys is None:
            return None
        gids, new_rows, nxt = batch_c.dense_group_ids(keys, _valid(arr), self._lut_lo, self._lut,
                                                      self._lut.size - 1, self._ngroups)
        self._dense_opened(arr, new_rows, nxt)
        return gids

    def _dense_keys(self, arr: pa.Array) -> np.ndarray | None:
        """The key column as int64 offsets from the dense table's low end, with the table
        widened to cover this batch; None when it does not fit (the table is then retired)."""
        if not (_is_int(arr.type) and (self._dense_type is None or arr.type.equals(self._dense_type))):
            return self._retire_dense()
        if self._lut is None and self._uniques is not None:
            return None                                   # already on the hashing path
        mm = pc.min_max(arr)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None:
            lo = hi = self._lut_lo if self._lut is not None else 0
        if self._lut is not None:
            old_lo, old_n = self._lut_lo, self._lut.size - 1
            lo, hi = min(lo, old_lo), max(hi, old_lo + old_n - 1)
        span = hi - lo + 1
        if span > self._DENSE_MAX or span > 4 * (self._ngroups + len(arr)) + 1024:
            return self._retire_dense()
        if self._lut is None:
            self._lut = np.full(span + 1, -1, dtype=np.int64)
            self._dense_type = arr.type
        elif lo != self._lut_lo or span != self._lut.size - 1:
            lut = np.full(span + 1, -1, dtype=np.int64)
            off = self._lut_lo - lo
            lut[off:off + self._lut.size - 1] = self._lut[:-1]
            lut[-1] = self._lut[-1]
            self._lut = lut
        self._lut_lo = lo
        return _np_values(arr, _I64, lo)

    def _dense_opened(self, arr: pa.Array, new_rows: np.ndarray, nxt: int) -> None:
        """Record the groups the rows ``new_rows`` of ``arr`` opened on the dense table."""
        if new_rows.size:
            take = pa.array(new_rows, type=_I64)
            self._key_parts[0].append(arr.take(take))
            self._ngroups = nxt
            for st in self._states:
                st.grow(self._ngroups)

    def _dense_sums(self, key_arrays: list[pa.Array], arg_arrays: list, selection) -> bool:
        """Fold a batch whose aggregates are only float SUM / AVG over columns without NULL
        and ``COUNT(*)``, on one integer key of the dense table, in one C pass that numbers
        the groups and adds the values (``group_fused.dense_group_sum_f64``; no group id per
        row). False, with nothing done, when the batch does not take this path."""
        if (self._num_keys != 1 or selection is not None or self._tracking or not group_fused.c_available()
                or (self._lut is None and self._uniques is not None)):
            return False
        columns = dense_sum_columns(self._states, arg_arrays)
        arr = key_arrays[0]
        if columns is None or not _is_int(arr.type):
            return False
        keys = self._dense_keys(arr)
        if keys is None:
            return False
        cap = self._ngroups + self._lut.size
        for st in self._states:
            st.grow(cap)
        added = np.zeros(cap, dtype=np.int64)
        g = self._ngroups
        sums, copies = [], []
        for st, c in zip(self._states, columns):
            if c is None:
                continue
            # SUM(v) and AVG(v) get the very same array: while their totals are equal, the
            # second copies the first one's instead of adding every value again
            twin = next((s for s, a in sums if a is c and s.total[:g].tobytes() == st.total[:g].tobytes()), None)
            (copies.append((st, twin)) if twin is not None else sums.append((st, c)))
            st.kind, st.mirror = "float", False
        new_rows, nxt = group_fused.dense_group_sum_f64(
            keys, _valid(arr), self._lut_lo, self._lut, self._lut.size - 1, g,
            [_np_values(c, _F64, 0.0) for _, c in sums], [st.total for st, _ in sums], added)
        for st, twin in copies:
            st.total[:nxt] = twin.total[:nxt]
        for st in self._states:
            st.count[:nxt] += added[:nxt]
        self._dense_opened(arr, new_rows, nxt)
        self._touch(None)
        return True

    def _retire_dense(self) -> None:
        """Leave the dense table for the hashing path: its keys become ``_uniques``."""
        if self._lut is not None:
            slots = np.nonzero(self._lut >= 0)[0]
            gids = self._lut[slots]
            values = pa.array(slots + self._lut_lo, type=_I64, mask=slots == self._lut.size - 1)
            order = np.argsort(gids, kind="stable")
            self._uniques = values.take(pa.array(order, type=_I64)).cast(self._dense_type)
            self._lut = None                      # the dense table is gone: hashing from now on
        return None

    def _column_codes(self, j: int, arr: pa.Array) -> np.ndarray:
        """Per-row code of key column ``j`` that is stable across batches (its normalised
        distinct values are numbered in first-appearance order)."""
        codes = self._short_string_codes(j, arr)
        if codes is None:
            codes = self._int64_codes(j, arr)
        if codes is not None:
            return codes
        if pat.is_dictionary(arr.type) and arr.indices.null_count == 0:
            return self._stable_dictionary_codes(j, arr)
        local, dictionary = _dictionary_codes(arr) if pat.is_dictionary(arr.type) else _codes(arr)
        return self._global_codes(j, dictionary)[local]

    def _stable_dictionary_codes(self, j: int, arr: pa.DictionaryArray) -> np.ndarray:
        """``_column_codes`` of a dictionary-encoded column: the code of each dictionary
        position is worked out once per dictionary and reused while the batches carry the
        very same dictionary array (a sliding window's stable encoding of a text key), so
        such a batch costs one lookup per row."""
        _, by_position, offset = self._position_codes(j, arr)
        indices = arr.indices.to_numpy(zero_copy_only=False)
        if offset is not None:
            return indices.astype(np.int64) if offset == 0 else indices + np.int64(offset)
        return np.take(by_position, indices)

    def _position_codes(self, j: int, arr: pa.DictionaryArray) -> tuple:
        """(dictionary, code of each of its positions, the offset when the codes count up
        from it else None) of key column ``j``'s dictionary-encoded ``arr``, cached while the
        batches carry the very same dictionary array."""
        dictionary = arr.dictionary
        cached = self._dictionary_cache[j]
        if cached is None or not _same_array(cached[0], dictionary):
            inner, values = _codes(dictionary)
            by_position = self._global_codes(j, values)[inner]
            # codes that count up with the position (the usual case: values first seen in
            # dictionary order) need an addition per row instead of a gather
            first = int(by_position[0]) if by_position.size else 0
            offset = first if np.array_equal(by_position, first + np.arange(by_position.size)) else None
            # the cache holds the dictionary, so its buffers cannot be reused by another array
            cached = self._dictionary_cache[j] = (dictionary, by_position, offset)
        return cached

    def _code_source(self, j: int, arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
        """Key column ``j``'s codes as (index per row, code of each index), the second None
        when the index is the code: a null-free dictionary-encoded column gives its indices
        and its positions' codes, so no per-row code array is built."""
        if not (pat.is_dictionary(arr.type) and arr.indices.null_count == 0):
            return self._column_codes(j, arr), None
        return arr.indices.to_numpy(zero_copy_only=False), self._position_codes(j, arr)[1]

    def _global_codes(self, j: int, dictionary: pa.Array) -> np.ndarray:
        """The stable code of each of ``dictionary``'s distinct (normalised) values in key
        column ``j``; values not seen before get the next codes."""
        codes = self._int64_codes(j, dictionary)
        if codes is not None:
            return codes
        seen = self._column_uniques[j]
        if seen is None:
            known = np.full(len(dictionary), -1, dtype=np.int64)
        else:
            found = pc.index_in(dictionary, value_set=seen, skip_nulls=False)
            known = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        new = np.nonzero(known < 0)[0]
        if new.size:
            start = 0 if seen is None else len(seen)
            if start + new.size >= 1 << 31:
                raise ExecutionError("GROUP BY key column has more than 2**31 distinct values")
            known[new] = start + np.arange(new.size, dtype=np.int64)
            added = dictionary.take(pa.array(new, type=_I64))
            self._column_uniques[j] = added if seen is None else pa.concat_arrays([seen, added])
            self._int_tables[j] = False          # it would miss these values
        return known

    def _int64_codes(self, j: int, arr: pa.Array) -> np.ndarray | None:
        """``_column_codes`` for a NULL-free int64 column (or dictionary): one probe per value
        in a persistent hash table, where the dictionary path would encode the values and look
        them up in every value seen so far, call after call (a stream's window starts, or the
        few new keys of a local worker's partial, pay that per call). The table is built from
        the values numbered so far, so the codes are the same either way. None when the column
        does not take this path."""
        table = self._int_tables[j]
        if table is False or not pat.is_int64(arr.type) or arr.null_count or not group_hash_c():
            return None
        if table is None:
            seen = self._column_uniques[j]
            if seen is not None and (not pat.is_int64(seen.type) or seen.null_count):
                self._int_tables[j] = False
                return None
            table = self._int_tables[j] = Int64GroupTable()
            if seen is not None:
                table.ids(seen.to_numpy())           # distinct: codes 0, 1, ... as numbered
        codes, self._column_uniques[j] = number_packed(table, arr, arr.to_numpy(), self._column_uniques[j])
        return codes

    def _short_string_codes(self, j: int, arr: pa.Array) -> np.ndarray | None:
        """``_column_codes`` for a string column whose values are at most 8 bytes (flags,
        status codes, country codes): each value packed into one int64 in C and numbered by a
        persistent hash table, instead of hashing the strings into a dictionary per batch.
        The distinct values are kept in ``_column_uniques`` as on the dictionary path, so a
        later batch with a longer value continues there with the same numbering. None when
        the column does not take this path."""
        table = self._short_strings[j]
        if table is False or not pat.is_string(arr.type) or not select_terms.c_available():
            return None
        if table is None and self._column_uniques[j] is not None:
            return None                  # numbered by the dictionary path already
        fresh = table is None
        if fresh:
            table = Int64GroupTable()
        numbered = number_short_strings(table, arr, self._column_uniques[j])
        if numbered is None:
            self._short_strings[j] = False
            return None
        if fresh:
            self._short_strings[j] = table
        codes, self._column_uniques[j] = numbered
        return codes

    def _packed_ids(self, key_arrays: list[pa.Array], selection: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(group id per row, rows that opened a group) for several key columns. With a
        ``selection``, only the selected rows are numbered (a row left out never opens a
        group); the others get group id 0, and the caller skips them."""
        if self._pairs is None:
            self._pairs = [PairTable() for _ in key_arrays[1:]]
        if len(key_arrays) == 2 and selection is None:
            # one pair: its table looks the dictionary positions' codes up itself
            (a, a_codes), (b, b_codes) = (self._code_source(j, k) for j, k in enumerate(key_arrays))
            gids, new_rows = self._pairs[0].ids(a, b, a_codes, b_codes)
            if len(self._pairs[0]) >= 1 << 31:
                raise ExecutionError("GROUP BY has more than 2**31 distinct key combinations")
            return gids, new_rows
        # a column code is internal (numbering a value seen only in a row left out changes no
        # output), so the codes are taken on whole columns and only the pairs are selected
        codes = [self._column_codes(j, k) for j, k in enumerate(key_arrays)]
        if selection is not None:
            codes = [c[selection] for c in codes]
        gids = codes[0]
        for j, table in enumerate(self._pairs, 1):
            gids, new_rows = table.ids(gids, codes[j])
            if len(table) >= 1 << 31:
                raise ExecutionError("GROUP BY has more than 2**31 distinct key combinations")
        if selection is not None:
            rows = np.flatnonzero(selection)
            full = np.zeros(len(selection), dtype=np.int64)
            full[rows] = gids
            gids, new_rows = full, rows[new_rows]
        return gids, new_rows

    def _byte_pair_ids(self, key_arrays: list[pa.Array], selection: np.ndarray | None
                       ) -> tuple[np.ndarray, np.ndarray] | None:
        """(group id per row, rows that opened a group) through the direct-indexed table of
        ``byte_keys`` when the two keys are string columns of one-byte values (flags, status
        letters); None when they are not (then the packed-hash path numbers them, continuing
        the numbering of the groups this table opened)."""
        table = self._byte_pairs
        if table is False:
            return None
        if table is None:
            if self._pairs is not None or not byte_keys.c_available():
                self._byte_pairs = False       # already hashing, or no C: the numpy twin is slower
                return None
            table = self._byte_pairs = byte_keys.new_table()
        found = None
        if self._num_keys == 2 and all(byte_keys.takes(k) for k in key_arrays):
            found = byte_keys.byte_pair_ids(key_arrays[0], key_arrays[1], selection, table, self._ngroups)
        if found is None:
            self._leave_byte_pairs()
            return None
        gids, new_rows, _ = found
        return gids, new_rows

    def _bitmap_rows(self, key_arrays: list[pa.Array], num_rows: int, selection) -> np.ndarray | None:
        """The rows that open a group, through the key bitmap (``KeyBitmap``: several
        small-range integer keys, no aggregate calls, so no group id per row is needed); None
        when this batch does not take that path (the groups found so far then go to the
        packed-hash tables, which continue their numbering)."""
        bitmap = self._key_bitmap
        if bitmap is False:
            return None
        if bitmap is None:
            usable = not self._states and not self._tracking and self._pairs is None and selection is None
            bitmap = KeyBitmap.open(key_arrays, num_rows) if usable else None
            if bitmap is None:
                self._key_bitmap = False
                return None
            self._key_bitmap = bitmap
        rows = None if (selection is not None or self._tracking) else bitmap.first_rows(key_arrays)
        if rows is None:
            self._leave_byte_pairs()
        return rows

    def _leave_byte_pairs(self) -> None:
        """Hand the groups the byte-pair table or the key bitmap numbered to the packed-hash
        tables: their keys, in group-id order, are numbered there first, so they get the same
        ids."""
        self._byte_pairs = False
        self._key_bitmap = False
        if self._ngroups and self._pairs is None:
            keys = [pa.concat_arrays(parts) for parts in self._key_parts]
            gids, _ = self._packed_ids(keys)
            if not np.array_equal(gids, np.arange(self._ngroups)):       # pragma: no cover - invariant
                raise ExecutionError("GROUP BY: the group numbering changed while changing paths")

    def _group_ids(self, key_arrays: list[pa.Array], num_rows: int,
                   selection: np.ndarray | None = None) -> np.ndarray | None:
        if self._num_keys == 0:
            return None
        if self._num_keys == 1:
            gids = self._dense_ids(key_arrays[0])
            if gids is not None:
                return gids
        if self._num_keys == 1 and not pat.is_null(key_arrays[0].type):
            # one key: map this batch's distinct (normalised) keys to global ids vectorised
            local, dictionary = _codes(key_arrays[0])
            if self._uniques is None:
                known = np.full(len(dictionary), -1, dtype=np.int64)
            else:
                found = pc.index_in(dictionary, value_set=self._uniques, skip_nulls=False)
                known = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
            new_local = np.nonzero(known < 0)[0]
            mapping = known
            if new_local.size:
                mapping[new_local] = self._ngroups + np.arange(new_local.size, dtype=np.int64)
                added = dictionary.take(pa.array(new_local, type=_I64))
                self._uniques = added if self._uniques is None else pa.concat_arrays([self._uniques, added])
            new_local = new_local.tolist()
        elif self._num_keys >= 2 and not any(pat.is_null(k.type) for k in key_arrays):
            # several keys: per-column global codes, packed pairwise into one int64 per row and
            # numbered by persistent hash tables (one probe per row and key; no Python work per
            # group). The number of the first i keys is < 2**31 like a column code, so it packs
            # with the next column's code the same way.
            new_rows = self._bitmap_rows(key_arrays, num_rows, selection)
            if new_rows is not None:
                gids = None
            else:
                found = self._byte_pair_ids(key_arrays, selection)
                gids, new_rows = found if found is not None else self._packed_ids(key_arrays, selection)
            if new_rows.size:
                take = pa.array(new_rows, type=_I64)
                for j, k in enumerate(key_arrays):
                    self._key_parts[j].append(_decoded(k.take(take)))
                self._ngroups += int(new_rows.size)
                for s in self._states:
                    s.grow(self._ngroups)
            return gids
        else:
            if self._num_keys == 1:
                local, dictionary = _codes(key_arrays[0])
                normal_keys = [(v,) for v in dictionary.to_pylist()]
            else:
                parts = [_codes(k) for k in key_arrays]
                combined, _ = _combine_codes(parts)
                dense = pa.array(combined).dictionary_encode()          # first-appearance ids
                local = dense.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
                rep = np.empty(len(dense.dictionary), dtype=np.int64)
                rep[local] = np.arange(num_rows, dtype=np.int64)        # any row of each group
                columns = [d.take(pa.array(c[rep], type=_I64)).to_pylist() for c, d in parts]
                normal_keys = list(zip(*columns))
            groups = self._groups
            mapping = np.empty(len(normal_keys), dtype=np.int64)
            new_local = []
            for i, key in enumerate(normal_keys):
                key = tuple(hash_key(v) for v in key)
                gid = groups.get(key)
                if gid is None:
                    gid = groups[key] = self._ngroups + len(new_local)
                    new_local.append(i)
                mapping[i] = gid
        if new_local:
            # local ids are in first-appearance order (dictionary encoding), so id i first
            # occurs where the running maximum of the ids reaches i
            rising = np.diff(np.maximum.accumulate(local), prepend=-1) > 0
            first_rows = np.flatnonzero(rising)
            take = pa.array(first_rows[new_local], type=_I64)
            for j, k in enumerate(key_arrays):
                self._key_parts[j].append(k.take(take))
            self._ngroups += len(new_local)
            for s in self._states:
                s.grow(self._ngroups)
        return mapping[local]

    # -- update --------------------------------------------------------------------------

    def update(self, key_arrays: list[pa.Array], arg_arrays: list[pa.Array | None], num_rows: int,
               selection=None) -> None:
        """Fold a batch in. A key may come dictionary-encoded (a window expansion repeats
        each row's key): the two-key path numbers its dictionary once instead of hashing every
        repeated value; every other path decodes it first. Groups and output are the same.

        With ``selection`` (a bool array per row, numpy or Arrow, no NULLs) only the rows
        where it is True are folded, as if the batch held just those rows: on the several-key
        path the other rows are never numbered and count as NULL in every aggregate, so no
        column is compacted; the other paths take the selected rows first."""
        if selection is not None:
            selection = _selection_mask(selection)
            kept = int(np.count_nonzero(selection))
            if kept == num_rows:
                selection = None
            elif kept == 0:
                return
        key_arrays = [k.combine_chunks() if isinstance(k, pa.ChunkedArray) else k for k in key_arrays]
        if any(pat.is_dictionary(k.type) for k in key_arrays) and not (
                self._num_keys >= 2 and self._mode != "reference"
                and not any(pat.is_null(_value_type(k.type)) for k in key_arrays)):
            key_arrays = [_decoded(k) for k in key_arrays]
        if self._mode is None:
            fast = (len(key_arrays) == self._num_keys and len(arg_arrays) == len(self._aggregates)
                    and all(_hashable(_value_type(k.type)) for k in key_arrays)
                    and all(_agg_supported(a, x) for a, x in zip(self._aggregates, arg_arrays)))
            self._mode = "fast" if fast else "reference"
            if not fast:
                self._set_path()
        if self._mode == "fast" and not _decimals_fit(arg_arrays):
            self._to_reference([_value_type(k.type) for k in key_arrays])
        if selection is not None and not (self._mode == "fast" and self._num_keys >= 2
                                          and not any(pat.is_null(k.type) for k in key_arrays)):
            rows = pa.array(np.flatnonzero(selection), type=_I64)
            key_arrays = [k.take(rows) for k in key_arrays]
            arg_arrays = [None if a is None else a.take(rows) for a in arg_arrays]
            num_rows, selection = len(rows), None
        if self._mode == "reference":
            self._reference.update([_decoded(k) for k in key_arrays], arg_arrays, num_rows)
            return
        if self._dense_sums(key_arrays, arg_arrays, selection):
            return
        gids = self._group_ids(key_arrays, num_rows, selection)
        self._touch(gids, selection)
        g = self._ngroups
        summed: list[tuple[pa.Array, int]] = []
        mirrors: list[tuple[_AggState, _AggState]] = []
        todo: list[tuple[_AggState, pa.Array | None]] = []
        for j, (state, arg) in enumerate(zip(self._states, arg_arrays)):
            if state.agg.func in ("sum", "avg") and arg is not None and _is_float(arg.type):
                # SUM(v) and AVG(v) get the very same array from the executor: the second
                # copies the first one's totals and counts, as long as it has done so on every
                # batch (then both histories are identical)
                twin = next((i for a, i in summed if a is arg), None)
                if state.mirror is not False and twin is not None and state.mirror in (None, twin):
                    state.mirror = twin
                    mirrors.append((state, self._states[twin]))
                    continue
                state.mirror = False
                summed.append((arg, j))
            else:
                state.mirror = False
            if isinstance(arg, pa.ChunkedArray):
                arg = arg.combine_chunks()
            todo.append((state, arg))
        if gids is not None:
            todo = self._accumulate_float_sums(todo, gids, g, selection)
            todo = self._accumulate_int_sums(todo, gids, g, selection, num_rows)
        for state, arg in todo:
            self._accumulate(state, gids, arg, g, num_rows, selection)
        for state, src in mirrors:               # after their sources have this batch
            state.kind = src.kind
            state.total[:g] = src.total[:g]
            state.count[:g] = src.count[:g]
            if state.lanes is not None:
                state.lanes[:] = src.lanes

    def update_where(self, predicate, batch: pa.RecordBatch, arg_arrays: list) -> int | None:
        """Fold the rows of ``batch`` where ``predicate`` is TRUE in one pass with the
        predicate (no keys; ``accel.filtered_sums``); returns how many rows it keeps, or None,
        with nothing folded, when the shapes do not fit (filter, then ``update``)."""
        from .filtered_sums import update_where
        return update_where(self, predicate, batch, arg_arrays)

    @staticmethod
    def _accumulate_float_sums(todo: list, gids: np.ndarray, g: int, selection: np.ndarray | None = None) -> list:
        """Fold the grouped float SUM / AVG of ``todo`` in one pass over ``gids`` when there
        are several (``group_sums``: same additions, same order as one pass each); returns
        the rest of ``todo``."""
        sums = [(st, a) for st, a in todo if st.agg.func in ("sum", "avg") and a is not None
                and pat.is_float64(a.type) and a.null_count < len(a) and st.lanes is None]
        if len(sums) < 2:
            return todo
        columns = [(_np_values(a, _F64, 0.0), _selected(_valid(a), selection)) for _, a in sums]
        for st, _ in sums:
            st.kind = "float"
        first_count = sums[0][0].count[:g]
        before = first_count.copy()
        group_sums.group_sum_multi_f64(gids, columns, [st.total[:g] for st, _ in sums],
                                       [st.count[:g] for st, _ in sums])
        done = {id(st) for st, _ in sums}
        if all(a.null_count == 0 for _, a in sums):
            _count_rows(todo, first_count - before, g, done)
        return [(st, a) for st, a in todo if id(st) not in done]

    @staticmethod
    def _accumulate_int_sums(todo: list, gids: np.ndarray, g: int, selection: np.ndarray | None,
                             num_rows: int) -> list:
        """Fold the grouped exact SUM / AVG of integer and DECIMAL arguments of ``todo`` in
        one pass over ``gids`` when there are several (``int_sums.group_sum_multi_i64``; TPC-H
        Q1 on DECIMAL columns has seven); returns the rest of ``todo``."""
        picked, columns = [], []
        for st, a in todo:
            if st.agg.func not in ("sum", "avg") or a is None or pat.is_null(a.type):
                continue
            x = _unscaled_array(st, a) if pat.is_decimal(a.type) else a
            if _is_int(x.type) and _int_sum_fits(st, g, num_rows):
                picked.append((st, a))
                columns.append((_np_values(x, _I64, 0), _selected(_valid(x), selection)))
        if len(picked) < 2:
            return todo
        first_count = picked[0][0].count[:g]
        before = first_count.copy()
        int_sums.group_sum_multi_i64(gids, columns, [st.lo[:g] for st, _ in picked], [st.hi[:g] for st, _ in picked],
                                     [st.count[:g] for st, _ in picked])
        for st, _ in picked:
            st.kind = "int"
            st.hi_bound += num_rows << 31
        done = {id(st) for st, _ in picked}
        if all(a.null_count == 0 for _, a in picked):
            _count_rows(todo, first_count - before, g, done)
        return [(st, a) for st, a in todo if id(st) not in done]

    @staticmethod
    def _accumulate(state: _AggState, gids: np.ndarray | None, arg: pa.Array | None, g: int,
                    num_rows: int, selection: np.ndarray | None = None) -> None:
        """Fold one aggregate's argument for one batch (``selection``: only the rows where it
        is True; the others are skipped as NULLs are)."""
        if arg is None:                                   # COUNT(*)
            if gids is None:
                state.count[0] += num_rows
            else:
                batch_c.group_count(gids, selection, state.count[:g])
            return
        if pat.is_null(arg.type):
            return
        if pat.is_decimal(arg.type):
            arg = _unscaled_array(state, arg)
        valid = _selected(_valid(arg), selection)
        if state.agg.func in aggregate_stats.STAT_FUNCS:
            aggregate_stats.fold(state, gids, arg, valid, g)
            return
        if state.agg.func in ("sum", "avg") and _is_float(arg.type):
            if valid is not None and not valid.any():
                return
            state.kind = "float"
            if state.lanes is not None:
                # no GROUP BY: the specified float SUM order (16 interleaved lanes), which the
                # C kernel follows with SIMD adds; the total is kept as the lanes combined
                x = _np_values(arg, _F64, 0.0)
                state.count[0] += batch_c.sum_lanes_f64(x, valid, state.lanes, int(state.count[0]))
                state.total[0] = batch_c.combine_lanes_f64(state.lanes)
                return
            # every value added to its group's running total in input order, exactly as the
            # reference's left-to-right Python sum
            state.kind = "float"
            batch_c.group_sum_f64(gids, _np_values(arg, _F64, 0.0), valid, state.total[:g], state.count[:g])
            return
        if gids is None:
            gids = np.zeros(len(arg), dtype=np.int64)
        if state.agg.func in ("sum", "avg") and _is_int(arg.type) and _int_sum_fits(state, g, num_rows):
            # one pass: each value into its group's exact hi/lo total and count
            state.kind = "int"
            int_sums.group_sum_i64(gids, _np_values(arg, _I64, 0), valid, state.lo[:g], state.hi[:g],
                                   state.count[:g])
            state.hi_bound += num_rows << 31
            return
        ids = gids if valid is None else gids[valid]
        batch_count = np.bincount(ids, minlength=g)
        func = state.agg.func
        if func == "count" or ids.size == 0:
            state.count[:g] += batch_count
            return
        if _is_float(arg.type):
            x = _np_values(arg, _F64, 0.0)
            state.kind = "float"
        else:
            x = _np_values(arg, _I64, 0)
            state.kind = "int"
        if valid is not None:
            x = x[valid]
        if func in ("sum", "avg"):
            if state.kind == "float":
                # prepend the running totals so bincount adds every value in input order,
                # exactly as the reference's left-to-right Python sum
                idx = np.concatenate([np.arange(g, dtype=np.int64), ids])
                w = np.concatenate([state.total[:g], x])
                state.total[:g] = np.bincount(idx, weights=w, minlength=g)
            else:
                _add_int_sums(state, ids, x, g)
        else:
            _fold_best(state, ids, x, g, batch_count)
        state.count[:g] += batch_count

    # -- state: emit, export, merge (streams, checkpoints, workers) ---------------------

    def _set_path(self) -> None:
        """Record which implementation runs, for the physical plan's decision record:
        ``reference`` (delegated), ``global`` (no keys), ``dense-c`` / ``dense-numpy`` (integer
        key through the dense lookup table), ``arrow-hash`` (one key, Arrow hashing),
        ``packed-hash`` (several keys: per-column codes packed pairwise into one int64, persistent
        hash tables), ``key-bitmap`` (several small-range integer keys and no aggregate call:
        a bitmap of the key combinations seen) or ``python-dict`` (combined codes looked up in a dict: a NULL-typed key)."""
        if self._mode == "reference":
            self.path = "reference"
        elif self._num_keys == 0:
            self.path = "global"
        elif self._lut is not None:
            self.path = "dense-c" if batch_c.available() else "dense-numpy"
        elif self._num_keys == 1:
            self.path = "arrow-hash"
        elif self._key_bitmap not in (None, False):
            self.path = "key-bitmap"
        elif self._pairs is not None:
            self.path = "packed-hash"
        elif self._byte_pairs is not None and self._byte_pairs is not False:
            self.path = "byte-pair"
        else:
            self.path = "python-dict"

    def _touch(self, gids: np.ndarray | None, selection: np.ndarray | None = None) -> None:
        self._updated = True
        self._set_path()               # a few comparisons: the path follows the state it derives from
        if not self._tracking:
            return
        self._touched = _grow(self._touched, self._ngroups, False)
        if gids is None:
            self._touched[0] = True
        else:
            self._touched[gids if selection is None else gids[selection]] = True

    def _to_reference(self, key_types: list[pa.DataType]) -> None:
        """Hand the state over to the reference aggregator, which runs from now on (the
        groups touched since the last emit stay touched there: same ids, same order)."""
        touched = np.nonzero(self._touched[:self._ngroups])[0] if self._tracking else None
        self._reference.import_state(self.export_state(key_types), touched)
        self._mode = "reference"
        self._set_path()

    def emit_updated(self, types: list[pa.DataType]) -> list[pa.Array]:
        """``finish`` restricted to the groups touched since the previous call (non-destructive)."""
        if self._mode != "fast":
            return self._reference.emit_updated(types)
        idx = self._take_updated()
        # only the touched groups are finished: the cost follows the batch, not the state
        n = len(idx)
        out = self._keys_of(idx, types)
        results = [self._result(_subset(s, idx), n) for s in self._states]
        for r, t in zip(results, types[self._num_keys:]):
            out.append(r if r.type.equals(t) else _conform(r, t, n))
        return out

    def _take_updated(self) -> np.ndarray:
        """The ids of the groups touched since the previous call, ascending; from now on
        none counts as touched (the first call: every group so far, the global group only
        if updated, and touches are tracked from then on)."""
        if self._tracking:
            idx = np.nonzero(self._touched[:self._ngroups])[0]
        else:
            idx = np.arange(self._ngroups if (self._num_keys or self._updated) else 0, dtype=np.int64)
            self._tracking = True
        self._touched[:] = False
        return idx

    def _keys_of(self, idx: np.ndarray, types: list[pa.DataType]) -> list[pa.Array]:
        """The key columns of groups ``idx`` (ascending)."""
        out = []
        for j in range(self._num_keys):
            parts = self._key_parts[j]
            if len(parts) > 16:        # a take over many small chunks is slow: merge them now and then
                parts = self._key_parts[j] = [pa.concat_arrays(parts)]
            keys = _take_from_parts(parts, idx) if parts else pa.array([], type=types[j])
            out.append(_conform(keys, types[j], len(idx)))
        return out

    def _keys_from(self, start: int, types: list[pa.DataType]) -> list[pa.Array]:
        """The key columns of the groups numbered from id ``start`` on: slices of the newest
        key chunks (no take, no copy of older keys)."""
        start = min(start, self._ngroups)
        out = []
        for j in range(self._num_keys):
            tail, end = [], self._ngroups
            for part in reversed(self._key_parts[j]):
                if end <= start:
                    break
                end -= len(part)
                tail.append(part.slice(max(start - end, 0)))
            if not tail:
                keys = pa.array([], type=types[j])
            else:
                keys = tail[0] if len(tail) == 1 else pa.concat_arrays(tail[::-1])
            out.append(_conform(keys, types[j], self._ngroups - start))
        return out

    def take_updated_state(self, key_types: list[pa.DataType]) -> pa.Table:
        """The state of the groups touched since the previous call (or ``emit_updated``), in
        ``export_state``'s layout, and those groups restart empty: each call returns the
        partial state of what was folded in since the one before, so merging the successive
        results equals the whole state. The groups keep their ids, so later batches are
        numbered against the same tables (the cost follows the groups touched)."""
        self._restartable(key_types)
        if self._mode != "fast":
            return self._reference.take_updated_state(key_types)
        idx = self._take_updated()
        return self._restart(key_types, idx, self._keys_of(idx, key_types))

    def take_updated_partial(self, key_types: list[pa.DataType], known: int) -> tuple[pa.Table, pa.Table]:
        """``take_updated_state`` by group id: ``(new keys, partial)``. ``new keys``: the key
        columns of the groups numbered from id ``known`` on (the receiver has the keys of the
        ids below); ``partial``: an ``id`` column (int64, the ids of the groups touched since
        the previous call, ascending), then their states in ``export_state``'s layout without
        the key columns. Those groups restart empty; ids never change, so a receiver maps each
        id once (``merge_partial``) and never numbers a known key again."""
        self._restartable(key_types)
        if self._mode != "fast":
            return self._reference.take_updated_partial(key_types, known)
        schema = self._state_schema(key_types)
        new_keys = pa.table(self._keys_from(known, key_types), schema=pa.schema(list(schema)[:self._num_keys]))
        idx = self._take_updated()
        partial = self._restart(key_types, idx, None)
        return new_keys, partial.add_column(0, "id", pa.array(idx, type=_I64))

    def _restartable(self, key_types: list[pa.DataType]) -> None:
        """Before handing out partial states: per-group value lists and moments restart in the
        reference, which takes over here (the first call: every group so far is news)."""
        if self._mode == "fast" and any(s.agg.func not in _RESTARTABLE for s in self._states):
            if not self._tracking:
                first = self._take_updated()
                self._touched = _grow(self._touched, self._ngroups, False)
                self._touched[first] = True
            self._to_reference(key_types)

    def _restart(self, key_types: list[pa.DataType], idx: np.ndarray, keys: list[pa.Array] | None) -> pa.Table:
        """The state table of groups ``idx`` (``keys``: theirs; None: without key columns);
        those groups then restart empty."""
        table = self._export(key_types, keys, [_subset(s, idx) for s in self._states], len(idx))
        for state in self._states:
            state.count[idx] = 0
            if state.agg.func in ("sum", "avg"):
                state.total[idx], state.lo[idx], state.hi[idx] = 0.0, 0, 0
                if state.lanes is not None and idx.size:      # a global float SUM: its lanes
                    state.lanes[:] = 0.0
            # MIN / MAX: a group with count 0 takes the next value as is (``_fold_best``)
        return table

    def export_state(self, key_types: list[pa.DataType]) -> pa.Table:
        """The whole state as Arrow (layout: ``velaria.reference.aggregate``)."""
        if self._mode != "fast":
            return self._reference.export_state(key_types)
        g = self._ngroups
        keys = []
        for j in range(self._num_keys):
            parts = self._key_parts[j]
            column = pa.concat_arrays(parts) if parts else pa.array([], type=key_types[j])
            keys.append(_conform(column, key_types[j], g))
        return self._export(key_types, keys, self._states, g)

    def _state_schema(self, key_types: list[pa.DataType]) -> pa.Schema:
        """``export_state``'s schema for ``key_types``, built once (a local worker hands out a
        partial state every batch, and building the schema cost more than filling it)."""
        schema = self._schemas.get(tuple(key_types))
        if schema is None:
            schema = self._schemas[tuple(key_types)] = _ref_aggregate.state_schema(self._aggregates, key_types)
        return schema

    def _export(self, key_types: list[pa.DataType], keys: list[pa.Array] | None, states: list[_AggState],
                g: int) -> pa.Table:
        """Key columns ``keys`` and the first ``g`` groups of ``states`` as a state table
        (``keys`` None: without the key columns)."""
        schema = self._state_schema(key_types)
        if keys is None:
            schema = pa.schema(list(schema)[self._num_keys:])
        columns = {f"k{j}": k for j, k in enumerate(keys or [])}
        for i, state in enumerate(states):
            prefix = f"a{i}_"
            columns[prefix + "count"] = pa.array(state.count[:g], type=_I64)
            if prefix + "total" in schema.names:
                t = schema.field(prefix + "total").type
                if pat.is_decimal(t):
                    # exact integer totals (unscaled for a DECIMAL argument, the schema's scale)
                    columns[prefix + "total"] = decimal_values.from_unscaled(_exact_totals(state, g), None, t)
                else:
                    columns[prefix + "total"] = pa.array(state.total[:g], type=_F64)
                if prefix + "lanes" in schema.names:
                    columns[prefix + "lanes"] = pa.array([state.lanes.tolist()] * g, type=pa.list_(_F64))
            elif state.agg.func in aggregate_stats.STAT_FUNCS:
                columns.update(aggregate_stats.export_columns(state, g, prefix, schema))
            elif prefix + "best" in schema.names:
                t = schema.field(prefix + "best").type
                best = self._result(state, g)
                columns[prefix + "best"] = best if best.type.equals(t) else best.cast(t)
        return pa.table([columns[n] for n in schema.names], schema=schema)

    def merge_state(self, table: pa.Table) -> None:
        """Fold an exported state in, as if its groups' rows had been updated here."""
        names = table.column_names
        if names[:self._num_keys] != [f"k{j}" for j in range(self._num_keys)]:
            raise VelariaValueError(f"merge_state(): the state table's columns {names} do not match "
                                    f"an aggregator with {self._num_keys} keys")
        keys = [table.column(f"k{j}").combine_chunks() for j in range(self._num_keys)]
        if not self._merges_fast(table, keys):
            self._reference.merge_state(table)
            return
        n = table.num_rows
        self._merge_columns(table, self._group_ids(keys, n) if self._num_keys else np.zeros(n, dtype=np.int64))

    def merge_partial(self, new_keys: pa.Table, partial: pa.Table, id_map) -> np.ndarray:
        """Fold in a partial that another aggregator's ``take_updated_partial`` handed out, as
        ``merge_state`` would with its keys. ``id_map`` (None at first): the group id here of
        each sender id whose keys came before; ``new_keys`` continue it. Returns the map
        extended by ``new_keys`` (known keys keep their ids, others are numbered here): only
        new keys are numbered, the rest is a lookup and vectorised adds."""
        keys = [new_keys.column(j).combine_chunks() for j in range(self._num_keys)]
        # counts and exact totals only (the usual stream aggregates): one add per column
        exact = self._exact_columns(partial) if self._mode == "fast" and self._num_keys else None
        if exact is None or not all(_hashable(k.type) for k in keys):
            if not self._merges_fast(partial, keys):
                return np.asarray(self._reference.merge_partial(new_keys, partial, id_map), dtype=np.int64)
            if not self._num_keys:
                self._merge_columns(partial, np.zeros(partial.num_rows, dtype=np.int64))
                return np.zeros(1, dtype=np.int64)
        id_map = np.zeros(0, dtype=np.int64) if id_map is None else id_map
        if new_keys.num_rows:
            id_map = np.concatenate([id_map, self._group_ids(keys, new_keys.num_rows)])
        gids = id_map[partial.column("id").to_numpy()]
        if exact is not None:
            self._add_exact(exact, gids)
        else:
            self._merge_columns(partial, gids)
        return id_map

    def _merges_fast(self, table: pa.Table, keys: list[pa.Array]) -> bool:
        """Before merging state ``table`` (key columns ``keys``): decide the mode on a first
        merge, or hand over to the reference for a state this path cannot hold; True when the
        merge runs here."""
        if self._mode is None:
            self._mode = "fast" if self._state_is_fast(table, keys) else "reference"
            self._set_path()
        elif self._mode == "fast" and not self._state_is_fast(table, keys):
            self._to_reference([k.type for k in keys])
        return self._mode == "fast"

    def _exact_columns(self, table: pa.Table) -> list | None:
        """(count, exact totals or None) per aggregate of a partial state whose aggregates are
        all COUNT or integer / DECIMAL SUM / AVG with totals that fit int64; None otherwise
        (the general merge then decides)."""
        names = table.column_names
        out = []
        for i, state in enumerate(self._states):
            prefix = f"a{i}_"
            count = table.column(prefix + "count").to_numpy()
            if state.agg.func == "count" and prefix + "best" not in names:
                out.append((count, None))
                continue
            if state.agg.func not in ("sum", "avg") or state.lanes is not None or prefix + "total" not in names:
                return None
            total = table.column(prefix + "total")
            if not pat.is_decimal(total.type) or total.null_count:
                return None
            x = decimal_values.unscaled_i64(total.combine_chunks())
            if x is None:
                return None
            out.append((count, x))
        return out

    def _add_exact(self, columns: list, gids: np.ndarray) -> None:
        """Add ``_exact_columns`` into groups ``gids`` (distinct): counts, and the totals as
        their 32-bit halves (a group's total in a partial with count 0 is 0, adding nothing)."""
        self._touch(gids)
        g = self._ngroups
        for state, (count, x) in zip(self._states, columns):
            state.mirror = False
            if x is not None and count.any():
                state.kind = "int"
                _add_int_sums(state, gids, x, g, distinct=True)
            state.count[gids] += count

    def _merge_columns(self, table: pa.Table, gids: np.ndarray) -> None:
        """Fold the aggregate columns of state table ``table`` into groups ``gids`` (one per
        row, distinct)."""
        names = table.column_names
        self._touch(gids)
        g = self._ngroups
        for i, state in enumerate(self._states):
            prefix = f"a{i}_"
            state.mirror = False                       # the SUM/AVG twin shortcut needs equal histories
            count = table.column(prefix + "count").combine_chunks().to_numpy(zero_copy_only=False)
            present = count > 0
            ids = gids[present]
            if state.lanes is not None and prefix + "total" in names:
                self._merge_lanes(state, table, prefix, count)
                continue
            if state.agg.func in aggregate_stats.STAT_FUNCS:
                aggregate_stats.merge(state, table, prefix, gids, count, g)
            if prefix + "total" in names and ids.size:
                total = table.column(prefix + "total").combine_chunks()
                if pat.is_decimal(total.type):
                    x = decimal_values.unscaled_i64(total)[present]     # fits: _state_is_fast
                    state.kind = "int"
                    _add_int_sums(state, ids, x, g, distinct=True)
                else:
                    x = total.to_numpy(zero_copy_only=False)[present]
                    state.kind = "float"
                    fresh = state.count[ids] == 0        # the reference takes the first total as is
                    state.total[ids] = np.where(fresh, x, state.total[ids] + x)
            elif prefix + "best" in names and ids.size:
                best = table.column(prefix + "best").combine_chunks()
                if pat.is_decimal(best.type):
                    x, state.kind = decimal_values.unscaled_i64(best), "int"
                elif _is_float(best.type):
                    x, state.kind = _np_values(best, _F64, 0.0), "float"
                else:
                    x, state.kind = _np_values(best, _I64, 0), "int"
                _fold_best_distinct(state, ids, x[present])
            state.count[gids] += count

    @staticmethod
    def _merge_lanes(state: _AggState, table: pa.Table, prefix: str, count: np.ndarray) -> None:
        """Merge the lane sums of a global float SUM / AVG partial (the reference's rule: the
        incoming lane j lands on lane ``(count here + j) mod 16``; into an empty state, as is)."""
        totals = table.column(prefix + "total").to_pylist()
        lanes = (table.column(prefix + "lanes").to_pylist() if prefix + "lanes" in table.column_names
                 else [None] * len(totals))
        for c, total, row_lanes in zip(count.tolist(), totals, lanes):
            if not c:
                continue
            if row_lanes is None:             # a partial without lanes: its total is one value
                row_lanes = [total] + [0.0] * (batch_c.SUM_LANES - 1)
            here = int(state.count[0])
            if here == 0:
                state.lanes[:] = row_lanes
            else:
                for j, x in enumerate(row_lanes):
                    state.lanes[(here + j) % batch_c.SUM_LANES] += x
            state.count[0] += c
            state.kind = "float"
        state.total[0] = batch_c.combine_lanes_f64(state.lanes)

    def _state_is_fast(self, table: pa.Table, keys: list[pa.Array]) -> bool:
        """True when this state can be merged on the fast path: hashable keys, no DISTINCT
        sets, integer totals within int64, MIN/MAX of supported types."""
        if not all(_hashable(k.type) for k in keys):
            return False
        for i, agg in enumerate(self._aggregates):
            prefix = f"a{i}_"
            if prefix + "seen" in table.column_names or agg.func not in _FAST_FUNCS:
                return False
            if prefix + "total" in table.column_names:
                total = table.column(prefix + "total")
                if pat.is_decimal(total.type) and len(total):
                    if total.null_count:
                        return False
                    unscaled = decimal_values.unscaled_i64(total.combine_chunks())
                    if unscaled is None or not (-(2 ** 62) <= int(unscaled.min()) and int(unscaled.max()) < 2 ** 62):
                        return False
            if prefix + "best" in table.column_names:
                best = table.column(prefix + "best").combine_chunks()
                if not _agg_supported(agg, best) or not _decimals_fit([best]):
                    return False
            if prefix + "values" in table.column_names:
                if not _agg_type_supported(agg, table.column(prefix + "values").type.value_type):
                    return False
        return True

    def import_state(self, table: pa.Table) -> None:
        """Restore an exported state into this empty aggregator."""
        if self._mode is not None:
            raise VelariaValueError("import_state() needs an empty aggregator; use merge_state() to combine")
        keys = [table.column(f"k{j}").combine_chunks() for j in range(min(self._num_keys, table.num_columns))]
        if not self._state_is_fast(table, keys):
            self._mode = "reference"
            self._set_path()
            self._reference.import_state(table)
            return
        self.merge_state(table)
        self._tracking = True            # a restored state is not news: nothing to emit yet
        self._touched[:] = False

    # -- finish --------------------------------------------------------------------------

    def finish(self, types: list[pa.DataType]) -> list[pa.Array]:
        if self._mode is None:
            # no batch arrived: the planned path computes the empty result (COUNT 0, NULLs)
            planned = self.plan_path(self._aggregates, types[:self._num_keys])
            self._mode = "reference" if planned == "reference" else "fast"
            self._set_path()
        if self._mode != "fast":
            return self._reference.finish(types)
        g = self._ngroups
        out = []
        for j in range(self._num_keys):
            parts = self._key_parts[j]
            keys = pa.concat_arrays(parts) if parts else pa.array([], type=types[j])
            out.append(_conform(keys, types[j], g))
        results = [self._result(s, g) for s in self._states]     # raises in reference order
        for r, t in zip(results, types[self._num_keys:]):
            out.append(r if r.type.equals(t) else _conform(r, t, g))
        return out

    @staticmethod
    def _result(state: _AggState, g: int) -> pa.Array:
        agg, count = state.agg, state.count[:g]
        if agg.func == "count":
            return pa.array(count, type=_I64)
        empty = count == 0
        if state.kind is None:                            # no non-NULL value anywhere
            return _nulls(g, agg.type)
        if agg.func in aggregate_stats.STAT_FUNCS:
            return aggregate_stats.result(state, g)
        if state.scale is not None:
            return _decimal_result(state, g, empty)
        if agg.func in ("sum", "avg"):
            if state.kind == "float":
                total = state.total[:g]
                if agg.func == "avg":
                    with np.errstate(invalid="ignore", divide="ignore"):
                        total = total / np.where(empty, 1, count)
                return pa.array(total, type=_F64, mask=empty)
            return _int_sum_result(state, g, empty)
        best = state.best[:g]
        if pat.is_boolean(agg.type):
            return pa.array(best != 0, type=_BOOL, mask=empty)
        return pa.array(best, mask=empty).cast(agg.type)


def _take_from_parts(parts: list[pa.Array], idx: np.ndarray) -> pa.Array:
    """The rows ``idx`` (ascending) of the concatenation of ``parts``, taken chunk by chunk
    from only the parts they fall in (a stream touches mostly its newest groups; a take over
    the chunked array would concatenate every part first)."""
    if len(parts) == 1:
        return parts[0].take(pa.array(idx, type=_I64))
    ends = np.cumsum([len(p) for p in parts])
    cuts = np.searchsorted(idx, ends)
    taken, lo = [], 0
    for part, end, hi in zip(parts, ends, cuts.tolist()):
        if hi > lo:
            taken.append(part.take(pa.array(idx[lo:hi] - (end - len(part)), type=_I64)))
        lo = hi
    if not taken:
        return parts[0].slice(0, 0)
    return taken[0] if len(taken) == 1 else pa.concat_arrays(taken)


def _subset(state: _AggState, idx: np.ndarray) -> _AggState:
    """A copy of ``state`` holding only the groups ``idx`` (renumbered 0..len(idx)-1)."""
    sub = copy.copy(state)
    sub.count = state.count[idx]
    if state.agg.func in ("sum", "avg"):
        sub.total, sub.lo, sub.hi = state.total[idx], state.lo[idx], state.hi[idx]
    if state.best is not None:
        sub.best = state.best[idx]
    if state.agg.func in aggregate_stats.STAT_FUNCS:
        aggregate_stats.subset(state, sub, idx)
    return sub


def _add_int_sums(state: _AggState, ids: np.ndarray, x: np.ndarray, g: int, distinct: bool = False) -> None:
    """Add int64 values per group exactly: float64 bincount is exact while every partial sum
    stays below 2**53, so values are split into 32-bit halves and rows into 2**20 chunks.
    Only the groups in ``ids`` are read and written (a merge per micro-batch touches a few
    of many groups). ``distinct``: ``ids`` never repeats (a merged state's rows), so each
    value is its group's whole addition: its halves, without grouping."""
    if distinct:
        groups, lo_part, hi_part = ids, x & 0xFFFFFFFF, x >> 32
    else:
        groups, inverse = np.unique(ids, return_inverse=True)
        lo_part, hi_part = int_sums.half_sums(inverse.astype(np.int64, copy=False), x, groups.size)
    lo = state.lo[groups] + lo_part
    carry = lo >> 32
    state.lo[groups] = lo - (carry << 32)
    add = hi_part + carry
    hi = state.hi[groups]
    if state.hi.dtype == object:
        state.hi[groups] = hi + add.astype(object)
        return
    with np.errstate(over="ignore"):
        new = hi + add
    if np.any(((hi ^ new) & (add ^ new)) < 0):        # int64 wrapped: keep exact Python ints
        state.hi = state.hi.astype(object)
        state.hi[groups] = state.hi[groups] + add.astype(object)
        state.hi_bound = int_sums.HI_LIMIT
    else:
        state.hi[groups] = new
        # still an upper bound of every group's |hi| (min(): |INT64_MIN| does not fit)
        if new.size:
            state.hi_bound = max(state.hi_bound, int(np.abs(np.maximum(new, -_I64_MAX)).max()))


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pat.is_dictionary(t) else t


def _decoded(arr: pa.Array) -> pa.Array:
    """``arr`` with a dictionary encoding undone (other arrays as they are)."""
    return arr.cast(arr.type.value_type) if pat.is_dictionary(arr.type) else arr


def _same_array(a: pa.Array, b: pa.Array) -> bool:
    """True when ``a`` and ``b`` view the very same memory (same buffers, offset, length)."""
    if len(a) != len(b) or a.offset != b.offset or not a.type.equals(b.type):
        return False
    return [None if x is None else x.address for x in a.buffers()] == [
        None if x is None else x.address for x in b.buffers()]


def _dictionary_codes(arr: pa.DictionaryArray) -> tuple[np.ndarray, pa.Array]:
    """``_codes`` of a dictionary-encoded array without hashing its rows: (code per row, the
    normalised distinct values). Only the dictionary is hashed (it may hold duplicates, NULL,
    -0.0 or several NaNs); a NULL index is the NULL value. Codes are not in first-appearance
    order (the two-key path does not need that)."""
    dictionary = arr.dictionary
    indices = arr.indices
    if indices.null_count:
        dictionary = pa.concat_arrays([dictionary, pa.nulls(1, dictionary.type)])
        indices = indices.fill_null(len(dictionary) - 1)
    inner, values = _codes(dictionary)
    return inner[indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)], values


def _int_sum_fits(state: _AggState, g: int, num_rows: int) -> bool:
    """True when a batch of ``num_rows`` int64 values can go through ``int_sums`` (int64
    ``hi`` that cannot wrap in this batch); refreshes the bound from the data when needed."""
    if state.hi.dtype == object or num_rows >= 1 << 30 or state.kind == "float":
        return False
    if state.hi_bound + (num_rows << 31) >= int_sums.HI_LIMIT:
        state.hi_bound = int(np.abs(state.hi[:g]).max()) if g else 0
    return state.hi_bound + (num_rows << 31) < int_sums.HI_LIMIT


def _int64_totals(state: _AggState, g: int) -> np.ndarray | None:
    """The exact integer totals ``hi * 2**32 + lo`` as int64, or None when one may not fit."""
    hi, lo = state.hi[:g], state.lo[:g]
    if hi.dtype != object and (hi.size == 0 or np.abs(hi).max() < 2 ** 30):
        return hi * (1 << 32) + lo
    return None


def _exact_totals(state: _AggState, g: int):
    """The exact integer totals ``hi * 2**32 + lo``: int64 numpy when they fit, else a list
    of Python ints."""
    exact = _int64_totals(state, g)
    if exact is not None:             # the common case, without a Python loop per group
        return exact
    return [int(h) * (1 << 32) + int(l) for h, l in zip(state.hi[:g], state.lo[:g])]


def _decimals_fit(arg_arrays) -> bool:
    """True when every DECIMAL argument's unscaled values fit int64 (the fast path's words)."""
    for a in arg_arrays:
        if a is not None and pat.is_decimal(a.type):
            a = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
            if decimal_values.unscaled_i64(a) is None:
                return False
    return True


def _unscaled_array(state: _AggState, arg: pa.Array) -> pa.Array:
    """A DECIMAL argument as its unscaled int64 values (same NULLs), at the state's scale."""
    if arg.type.scale != state.scale:
        arg = arg.cast(pa.decimal128(38, state.scale))
    values = decimal_values.unscaled_i64(arg)
    if values is None:                     # _decimals_fit let it through: never
        raise ExecutionError(f"DECIMAL value beyond 18 digits reached the int64 path ({arg.type})")
    return pa.Array.from_buffers(_I64, len(values), [_validity_buffer(arg), pa.py_buffer(values)])


def _validity_buffer(arr: pa.Array) -> pa.Buffer | None:
    valid = _valid(arr)
    return None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))


def _decimal_result(state: _AggState, g: int, empty: np.ndarray) -> pa.Array:
    """SUM (DECIMAL(38, s), exact), AVG (DOUBLE: the exact total over the count, rounded
    once) or MIN / MAX (the argument's type) of a DECIMAL argument from unscaled integers."""
    agg = state.agg
    if agg.func == "sum":
        return decimal_values.from_unscaled(_exact_totals(state, g), ~empty, agg.type)
    if agg.func == "avg":
        averages = decimal_values.exact_averages(_exact_totals(state, g), state.count[:g], state.scale)
        return pa.array(averages, type=_F64, mask=empty)
    return decimal_values.from_unscaled(np.asarray(state.best[:g], dtype=np.int64), ~empty, agg.type)


def _int_sum_result(state: _AggState, g: int, empty: np.ndarray) -> pa.Array:
    agg, count = state.agg, state.count[:g]
    hi, lo = state.hi[:g], state.lo[:g]
    total = _int64_totals(state, g)
    if total is not None:
        if agg.func == "sum":
            return pa.array(total, type=_I64, mask=empty)
        if total.size == 0 or np.abs(total).max() <= _TWO53:
            with np.errstate(invalid="ignore", divide="ignore"):
                return pa.array(total / np.where(empty, 1, count), type=_F64, mask=empty)
    totals = [int(h) * (1 << 32) + int(l) for h, l in zip(hi, lo)]
    values = []
    for total, c in zip(totals, count):
        if c == 0:
            values.append(None)
        elif agg.func == "avg":
            values.append(total / int(c))     # exact int / int, correctly rounded
        else:
            if not -(2 ** 63) <= total <= 2 ** 63 - 1:
                raise ExecutionError(f"SUM overflow: the total {total} does not fit in BIGINT "
                                     "(int64); use SUM(CAST(x AS DOUBLE))")
            values.append(total)
    return pa.array(values, type=_F64 if agg.func == "avg" else _I64)


def _better(x: np.ndarray, r: np.ndarray, is_min: bool) -> np.ndarray:
    """Where candidate ``x`` replaces the running MIN / MAX ``r``: strictly smaller (MIN) or
    greater (MAX), NaN being the greatest value; a tie keeps ``r``, the value seen first."""
    if x.dtype.kind != "f":
        return (x < r) if is_min else (x > r)
    if is_min:
        return (x < r) | (np.isnan(r) & ~np.isnan(x))
    return (x > r) | (np.isnan(x) & ~np.isnan(r))


def _fold_best_distinct(state: _AggState, ids: np.ndarray, x: np.ndarray) -> None:
    """``_fold_best`` for one value per group (``ids`` distinct, as in a merged partial
    state): compared with the running best group by group, the cost following the groups
    merged rather than all groups. Same rules: NaN is the greatest value, and on ties (-0.0
    vs 0.0) the running best, seen first, is kept."""
    if state.best is None:
        state.best = np.zeros(len(state.count), dtype=x.dtype)
    r = state.best[ids]
    take = _better(x, r, state.agg.func == "min") | (state.count[ids] == 0)
    state.best[ids[take]] = x[take]


def _fold_best(state: _AggState, ids: np.ndarray, x: np.ndarray, g: int, batch_count: np.ndarray) -> None:
    """MIN / MAX of this batch per group, folded into the running best: NaN is the greatest
    value, and on ties (-0.0 vs 0.0) the value seen first is kept."""
    is_min = state.agg.func == "min"
    floating = x.dtype == np.float64
    if floating:
        nan = np.isnan(x)
        if is_min:
            b = np.full(g, np.inf)
            np.minimum.at(b, ids, np.where(nan, np.inf, x))
            non_nan = np.bincount(ids, weights=~nan, minlength=g)
            b = np.where(non_nan == 0, np.nan, b)
        else:
            b = np.full(g, -np.inf)
            np.maximum.at(b, ids, np.where(nan, -np.inf, x))
            b = np.where(np.bincount(ids, weights=nan, minlength=g) > 0, np.nan, b)
        zeros = x == 0
        if np.any(zeros & np.signbit(x)):       # the sign of a zero best is the first zero's
            zrows = np.nonzero(zeros)[0]
            zg, first = np.unique(ids[zrows], return_index=True)
            sel = b[zg] == 0
            b[zg[sel]] = x[zrows[first[sel]]]
    else:
        if is_min:
            b = np.full(g, np.iinfo(np.int64).max)
            np.minimum.at(b, ids, x)
        else:
            b = np.full(g, np.iinfo(np.int64).min)
            np.maximum.at(b, ids, x)
    if state.best is None:
        state.best = np.zeros(len(state.count), dtype=b.dtype)
    r = state.best[:g]
    has = state.count[:g] > 0
    present = batch_count > 0
    take = present & (~has | _better(b, r, is_min))
    r[take] = b[take]
