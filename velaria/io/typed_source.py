"""The common machinery of text file sources (csv, line, json): a whole-file typing pass,
then streamed, projected, filtered scans.

Typing needs every cell of a column (a ``007`` on the last line turns an int column into a
string column), so the first time the schema is needed the source reads the whole file once
and folds per-batch kinds (see :mod:`velaria.io.typing_rules`). The result is cached per
process, keyed by the file's fingerprint (absolute path, size, mtime, inode, ctime) and
the reader options, so re-reading an unchanged
file does not pay for it again. Files up to ``VELARIA_IO_RETAIN_MB`` (default 64 MB) also keep
the parsed cells from that pass, so the first scan does not parse the file a second time.

A scan re-checks the file's fingerprint: if the file changed after it was typed, the
scan fails instead of returning rows that do not match the schema.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Iterator, Sequence

import pyarrow as pa

from ..errors import SourceFormatError
from . import parsed_cache, progress
from .base import (DEFAULT_BATCH_ROWS, PushedFilter, TableSource, empty_batch,
                   resolve_columns)
from .paths import FileFingerprint, fingerprint
from .pushdown import render_pushdown, usable_filters
from .scan_filter import filtered_batches
from .typing_rules import arrow_type, merge_kinds

__all__ = ["TypedFileSource", "clear_typing_cache", "FastPathUnavailable", "retain_limit"]


class FastPathUnavailable(Exception):
    """Raised by a fast parser that cannot reproduce the reference parser's result for a
    file (a type or construct only the reference parser handles); never leaves the source."""

_TYPING_CACHE: dict[tuple, tuple[list[str], dict]] = {}
_TYPING_LOCK = threading.Lock()
#: default of ``VELARIA_IO_RETAIN_MB``: how much parsed data the typing pass may keep so that
#: the first scan need not parse the file again (Arrow sources: MB of kept column data;
#: Python-parsed sources: MB of file)
DEFAULT_RETAIN_MB = 256


def clear_typing_cache() -> None:
    """Forget every cached typing result and parsed file (tests and cold benchmarks)."""
    with _TYPING_LOCK:
        _TYPING_CACHE.clear()
    parsed_cache.clear()


def retain_limit(python_parser: bool) -> int:
    """Bytes a typing pass (or a first scan) may keep for later scans (``VELARIA_IO_RETAIN_MB``)."""
    mb = float(os.environ.get("VELARIA_IO_RETAIN_MB",
                              "64" if python_parser else str(DEFAULT_RETAIN_MB)))
    return int(mb * (1 << 20) / (4 if python_parser else 1))


def _nbytes(kept) -> int:
    return kept.nbytes if isinstance(kept, (pa.Array, pa.ChunkedArray)) else 0


class TypedFileSource(TableSource):
    """Base of csv/line/json sources. Subclasses implement the four hooks below."""

    #: the typing dialect for text cells (``csv`` | ``line``), or ``json``
    dialect = "csv"
    #: True when cells are parsed in Python (retention then holds Python objects)
    python_parser = False
    #: False keeps no parsed data for later scans (neither in the source nor in the
    #: process-wide parsed-file cache): set when the rows are kept elsewhere, such as a
    #: materialisation entry on disk, so memory does not grow with the file
    keep_parsed = True

    def __init__(self, path: str, names: Sequence[str]):
        self.path = path
        self.names = list(names)
        self._kinds: list[str] | None = None
        self._stats: dict = {}
        self._typed_fp: FileFingerprint | None = None
        self._typed_from_cache = False
        self._retained: list[list[tuple[str, Any]]] | None = None
        self._retained_cols: set[int] = set()
        #: the columns the scan that asked for the typing reads (None: not a scan)
        self._typing_hint: list[str] | None = None

    # ---- hooks -------------------------------------------------------------------------
    def options_key(self) -> str:
        """Reader options that change the parsed result (part of cache keys)."""
        raise NotImplementedError

    def _raw_batches(self, names: Sequence[str], batch_rows: int,
                     stats: dict | None) -> Iterator[list[Any]]:
        """Yield, per batch, one raw column per name (text arrays or Python lists).
        ``stats`` is a dict to fill with counters during the typing pass, else None."""
        raise NotImplementedError

    def _classify(self, raw) -> str:
        """The kind of one raw column batch."""
        raise NotImplementedError

    def _convert(self, raw, kind: str) -> pa.Array:
        """Convert one raw column batch to the Arrow type of ``kind``."""
        raise NotImplementedError

    def _check_typing_stats(self, stats: dict) -> None:
        """Raise if the typing pass found an error only visible over the whole file."""

    def _describe_options(self) -> str:
        return ""

    # ---- typing ------------------------------------------------------------------------
    def _cache_key(self, fp: FileFingerprint) -> tuple:
        return (type(self).__name__, fp, self.options_key())

    def _ensure_typed(self) -> None:
        if self._kinds is not None:
            return
        fp = fingerprint(self.path)
        key = self._cache_key(fp)
        with _TYPING_LOCK:
            cached = _TYPING_CACHE.get(key)
        forced = getattr(self, "forced_kinds", {})
        if cached is not None:
            kinds, stats = cached
            if stats.get("reference_parser"):
                self._use_reference_parser()
            self._check_typing_stats(stats)
            self._kinds, self._stats, self._typed_fp = list(kinds), dict(stats), fp
            self._typed_from_cache = True
            if not self.python_parser:
                # a warm re-read scans what an earlier reader parsed, without parsing again
                parsed = parsed_cache.lookup(key, kinds)
                if parsed is not None:
                    self._retained, self._retained_cols = parsed
            return
        self._typed_from_cache = False
        try:
            with progress.bar(fp.size, f"typing {os.path.basename(self.path)}"):
                kinds, stats, retain = self._typing_pass(fp)
        except FastPathUnavailable:
            # the fast parser cannot give the reference parser's result for this file:
            # type it again with the reference parser (which also scans it from now on)
            self._use_reference_parser()
            kinds, stats, retain = self._typing_pass(fp)
            stats["reference_parser"] = True
        for index, kind in forced.items():  # explicit column types win over typing
            kinds[index] = kind
        self._check_typing_stats(stats)
        if fingerprint(self.path) != fp:
            raise SourceFormatError(
                f"{self.kind} file {self.path} changed while it was being read; read it again")
        with _TYPING_LOCK:
            _TYPING_CACHE[key] = (list(kinds), dict(stats))
        retained_cols = set()
        if retain is not None:
            # explicitly typed columns are parsed again by the scan, whose conversion errors
            # name the file and the bad value
            retained_cols = {i for i, kind in enumerate(kinds) if i not in forced and
                             all(self._kept_usable(batch[i][0], kind) for batch in retain)}
            if not retained_cols:
                retain = None
        self._kinds, self._stats, self._typed_fp = kinds, stats, fp
        self._retained, self._retained_cols = retain, retained_cols
        if retain is not None and not self.python_parser:
            parsed_cache.store(key, kinds, retain, retained_cols)

    def _typing_pass(self, fp: FileFingerprint):
        """(kinds, stats, retained batches or None) from one pass over the file."""
        kinds = ["null"] * len(self.names)
        stats: dict = {"rows": 0}
        limit = retain_limit(self.python_parser)
        # Python parsers: retain by file size; Arrow parsers: by the bytes actually kept.
        retain = [] if self.keep_parsed and (not self.python_parser or fp.size <= limit) else None
        kept_bytes = 0
        for raws in self._raw_batches(self.names, DEFAULT_BATCH_ROWS, stats):
            kept_batch = self._classify_batch(raws, kinds)
            for i, (batch_kind, _) in enumerate(kept_batch):
                kinds[i] = merge_kinds(kinds[i], batch_kind)
            if raws:
                stats["rows"] += len(raws[0])
            if retain is not None:
                if not self.python_parser:
                    kept_bytes += sum(_nbytes(kept) for _, kept in kept_batch)
                    if kept_bytes > limit:
                        retain = None
                        continue
                retain.append(kept_batch)
        return kinds, stats, retain

    def _use_reference_parser(self) -> None:
        """Switch to the reference (Python) parser; sources with a fast parser override."""
        raise NotImplementedError

    # ---- retention hooks (the defaults keep the raw cells and convert them on scan) -------
    def _classify_batch(self, raws, kinds: list[str]) -> list[tuple[str, Any]]:
        """:meth:`_classify_keep` for every column of one batch."""
        return [self._classify_keep(raw, kind) for raw, kind in zip(raws, kinds)]

    def _classify_keep(self, raw, current: str) -> tuple[str, Any]:
        """``(kind of this batch, what to keep for the scan)`` for one raw column batch;
        ``current`` is the column's kind so far (``string`` needs no more checking)."""
        return ("string" if current == "string" else self._classify(raw)), raw

    def _kept_usable(self, batch_kind: str, final_kind: str) -> bool:
        """Whether a kept batch of ``batch_kind`` converts to the column's final kind."""
        return True

    def _from_kept(self, kept, batch_kind: str, final_kind: str):
        """The kept batch converted to the Arrow type of ``final_kind``."""
        return self._convert(kept, final_kind)

    def set_known_schema(self, schema: pa.Schema) -> None:
        """Adopt a schema known from elsewhere (a fresh materialisation cache entry), so the
        typing pass is not needed. Used only when the schema was produced by this reader."""
        from .typing_rules import kind_of_arrow_type

        if list(schema.names) == self.names:
            self._kinds = [kind_of_arrow_type(f.type) for f in schema]
            self._typed_fp = fingerprint(self.path)

    @property
    def schema(self) -> pa.Schema:
        self._ensure_typed()
        return pa.schema([pa.field(n, arrow_type(k)) for n, k in zip(self.names, self._kinds)])

    def column_kinds(self) -> list[str]:
        """The typing kind of each column (see :mod:`velaria.io.typing_rules`)."""
        self._ensure_typed()
        return list(self._kinds)

    @property
    def stats(self) -> dict:
        """Counters from the typing pass: ``rows``, ``skipped_bad_lines``, ...."""
        self._ensure_typed()
        return dict(self._stats)

    def num_rows_hint(self) -> int | None:
        if self._kinds is not None and "rows" in self._stats:
            return self._stats["rows"]
        return None

    # ---- scanning ----------------------------------------------------------------------
    def _resolve_columns(self, columns: Sequence[str] | None) -> list[str]:
        return resolve_columns(self, self.names, columns)

    def _check_unchanged(self) -> None:
        if self._typed_fp is not None and fingerprint(self.path) != self._typed_fp:
            raise SourceFormatError(
                f"{self.kind} file {self.path} changed after its schema was read; "
                f"read it again to pick up the new contents")

    def scan(self, columns: Sequence[str] | None = None, filters: Sequence[PushedFilter] = (),
             batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        names = self._resolve_columns(columns)
        if self._kinds is None:
            # what this scan reads, for a typing pass that can convert it on the way
            self._typing_hint = list(names) + [f.column for f in filters
                                               if f.column in self.names and f.column not in names]
        schema = self.schema
        flts = usable_filters(filters, schema)
        self._check_unchanged()
        need = list(names) + [f.column for f in flts if f.column not in names]
        if not need and self.names:
            need = [self.names[0]]  # zero-column scans (COUNT(*)) still need row counts
        out_schema = pa.schema([schema.field(n) for n in names])
        produced = False
        batches = filtered_batches(self._typed_batches_checked(need, batch_rows, schema),
                                   flts, names, in_memory=self._kept_covers(need))
        try:
            for batch in batches:
                if batch.num_rows == 0 and produced:
                    continue
                produced = True
                yield batch
        finally:
            batches.close()   # a scan left early: its worker (if any) stops here
        if not produced:
            yield empty_batch(out_schema)

    def _kept_covers(self, need: list[str]) -> bool:
        """Whether a scan of ``need`` reads only batches kept in memory."""
        index = {n: i for i, n in enumerate(self.names)}
        return self._retained is not None and all(index[n] in self._retained_cols
                                                  for n in need)

    def _forget_typing(self) -> None:
        """Drop this file's typing (here and in the process-wide cache)."""
        if self._typed_fp is not None:
            with _TYPING_LOCK:
                _TYPING_CACHE.pop(self._cache_key(self._typed_fp), None)
            parsed_cache.forget(self._cache_key(self._typed_fp))
        self._kinds, self._typed_fp, self._typed_from_cache = None, None, False
        self._retained, self._retained_cols = None, set()

    def _typed_batches_checked(self, need: list[str], batch_rows: int, schema: pa.Schema
                               ) -> Iterator[pa.RecordBatch]:
        """:meth:`_typed_batches`, recovering from a stale cached typing: when the typing
        came from the process-wide cache and the file no longer converts under it (its
        contents changed in a way the fingerprint could not see), the file is typed again.
        Same schema: the scan goes on; another schema: a clear error (the query was
        planned for the old one). Either way the stale entry is gone for later readers."""
        produced = False
        try:
            for batch in self._typed_batches(need, batch_rows):
                produced = True
                yield batch
            return
        except SourceFormatError as exc:
            if produced or not self._typed_from_cache or "conversion error" not in str(exc):
                raise
        self._forget_typing()
        if self.schema != schema:
            raise SourceFormatError(
                f"{self.kind} file {self.path} changed after its schema was read (its column "
                f"types are now {self.schema}); read it again to pick up the new contents")
        yield from self._typed_batches(need, batch_rows)

    def _typed_batches(self, need: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Yield batches of ``need`` columns converted to their final types."""
        index = {n: i for i, n in enumerate(self.names)}
        kinds = [self._kinds[index[n]] for n in need]
        fields = [pa.field(n, arrow_type(k)) for n, k in zip(need, kinds)]
        schema = pa.schema(fields)
        if self._kept_covers(need):
            for batch in self._retained:
                arrays = [self._from_kept(batch[index[n]][1], batch[index[n]][0], kind)
                          for n, kind in zip(need, kinds)]
                if any(isinstance(a, pa.ChunkedArray) for a in arrays):
                    yield from pa.Table.from_arrays(arrays, schema=schema).to_batches()
                else:
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            return
        for raws in self._raw_batches(need, batch_rows, None):
            arrays = [self._convert(raw, kind) for raw, kind in zip(raws, kinds)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def describe(self, columns: Sequence[str] | None = None,
                 filters: Sequence[PushedFilter] | None = None) -> str:
        """``path=... <options> pushed_columns=[...] pushed_filters=[...]`` for a scan that
        pushes down ``columns`` and ``filters``. The source keeps no per-scan state, so one
        source serves several queries (or workers) at once."""
        parts = [f"path={self.path}"]
        opts = self._describe_options()
        if opts:
            parts.append(opts)
        parts.append(render_pushdown(columns, filters or ()))
        return " ".join(parts)

    def supports_filter_pushdown(self) -> bool:
        return True
