"""Source materialisation (a reusable on-disk cache of a parsed file) and ``cache_in_memory``.

Layout (python-api §13): ``<root>/<source_id>/meta.txt`` plus one data file, where
``source_id`` is the 16-hex-digit FNV-1a 64-bit hash of
``source_format \\0 source_options \\0 absolute_path`` and ``root`` is ``materialization_dir``
or ``<temp>/velaria_source_materialization_cache``.

Data formats (``materialization_format``):

==========================================  ===============  ==========================
name(s)                                     data file        encoding
==========================================  ===============  ==========================
``binary``, ``binary_row_batch``, ``""``    ``table.bin``    Arrow IPC file
``nanoarrow``, ``nanoarrow_ipc``            ``table.nanoarrow``  Arrow IPC stream
``arrow_ipc``                               ``table.arrow``  Arrow IPC file
``parquet``                                 ``table.parquet``  Parquet
==========================================  ===============  ==========================

An entry is reused only when the format, options, absolute path, file size and mtime_ns in
``meta.txt`` match the file, and the data file has the recorded size, schema and row count;
anything else (stale or corrupt) is rebuilt, never served. Files are written to a temporary
name and renamed, data first, ``meta.txt`` last.
"""
from __future__ import annotations

import hashlib
import os
import zlib
import tempfile
from typing import Sequence

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import VelariaValueError
from .base import DEFAULT_BATCH_ROWS, PushedFilter, TableSource
from .paths import as_path_str, fingerprint
from .pushdown import apply_filters, usable_filters

__all__ = ["CachedSource", "canonical_materialization_format", "source_id",
           "default_materialization_root", "DATA_FILES"]

_FORMATS = {
    "": "binary_row_batch", "binary": "binary_row_batch", "binary_row_batch": "binary_row_batch",
    "nanoarrow": "nanoarrow_ipc", "nanoarrow_ipc": "nanoarrow_ipc",
    "arrow_ipc": "arrow_ipc", "arrow": "arrow_ipc", "parquet": "parquet",
}
DATA_FILES = {"binary_row_batch": "table.bin", "nanoarrow_ipc": "table.nanoarrow",
              "arrow_ipc": "table.arrow", "parquet": "table.parquet"}


def canonical_materialization_format(fmt) -> str:
    """Map an accepted ``materialization_format`` (or None) to its canonical name."""
    if fmt is None:
        return "binary_row_batch"
    if not isinstance(fmt, str):
        raise TypeError("materialization_format must be str or None")
    try:
        return _FORMATS[fmt]
    except KeyError:
        raise VelariaValueError(
            f"materialization_format must be one of: binary_row_batch, nanoarrow_ipc "
            f"(also accepted: binary, nanoarrow, arrow_ipc, parquet; got {fmt!r})") from None


def default_materialization_root() -> str:
    return os.path.join(tempfile.gettempdir(), "velaria_source_materialization_cache")


def _fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def source_id(source_format: str, source_options: str, abs_path: str) -> str:
    """16 hex digits: FNV-1a 64 of ``format \\0 options \\0 abs_path``."""
    key = f"{source_format}\0{source_options}\0{abs_path}".encode("utf-8")
    return f"{_fnv1a64(key):016x}"


def _schema_digest(schema: pa.Schema) -> str:
    return hashlib.sha1(schema.to_string(show_schema_metadata=False).encode()).hexdigest()[:16]


def _crc32_file(path: str) -> str:
    crc = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 22)
            if not chunk:
                return f"{crc:08x}"
            crc = zlib.crc32(chunk, crc)


def _write_atomic(path: str, write) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class CachedSource(TableSource):
    """Wraps a file source: serves scans from a disk cache entry and/or an in-memory table.
    Pushdown to the file is off: the first scan reads every column and row."""

    def __init__(self, inner: TableSource, *, materialize: bool, root=None,
                 data_format: str = "binary_row_batch", in_memory: bool = False):
        self.inner = inner
        self.kind = inner.kind
        self.materialize = materialize
        self.root = as_path_str(root, "materialization_dir") if root is not None \
            else default_materialization_root()
        self.data_format = canonical_materialization_format(data_format)
        self.in_memory = in_memory
        self._table: pa.Table | None = None
        self._schema: pa.Schema | None = None
        self.cache_status = "none"  # hit | built | rebuilt | none

    # ---- cache entry -------------------------------------------------------------------
    def _meta_fields(self) -> dict:
        fp = fingerprint(self.inner.path)
        options = self.inner.options_key() if hasattr(self.inner, "options_key") else ""
        sid = source_id(self.inner.kind, options, fp.abs_path)
        return {"source_id": sid, "data_format": self.data_format,
                "source_format": self.inner.kind, "source_options": options,
                "abs_path": fp.abs_path, "file_size": str(fp.size),
                "mtime_ns": str(fp.mtime_ns)}

    @property
    def entry_dir(self) -> str:
        return os.path.join(self.root, self._meta_fields()["source_id"])

    def _read_meta(self, path: str) -> dict | None:
        try:
            with open(path, encoding="utf-8") as handle:
                pairs = [line.rstrip("\n").split("=", 1) for line in handle if "=" in line]
            return {k: v for k, v in pairs}
        except (OSError, UnicodeDecodeError):
            return None

    def _load_entry(self, expected: dict, want_table: bool):
        """(schema, table or None) of a fresh, intact entry; None when it must be rebuilt."""
        entry = os.path.join(self.root, expected["source_id"])
        meta = self._read_meta(os.path.join(entry, "meta.txt"))
        if meta is None or any(meta.get(k) != v for k, v in expected.items()):
            return None
        data = os.path.join(entry, DATA_FILES[self.data_format])
        try:
            if os.path.getsize(data) != int(meta.get("data_size", "-1")):
                return None
            if want_table and _crc32_file(data) != meta.get("data_crc32"):
                return None
            table = self._read_data(data) if want_table else None
            schema = table.schema if table is not None else self._read_schema(data)
        except Exception:  # corrupt entry: rebuild
            return None
        if _schema_digest(schema) != meta.get("schema_digest"):
            return None
        if table is not None and str(table.num_rows) != meta.get("num_rows"):
            return None
        return schema, table

    def _read_schema(self, data: str) -> pa.Schema:
        if self.data_format == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(data)
        with pa.memory_map(data) as source:
            if self.data_format == "nanoarrow_ipc":
                return ipc.open_stream(source).schema
            return ipc.open_file(source).schema

    def _read_data(self, data: str) -> pa.Table:
        if self.data_format == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(data)
        with pa.memory_map(data) as source:
            if self.data_format == "nanoarrow_ipc":
                return ipc.open_stream(source).read_all()
            return ipc.open_file(source).read_all()

    def _write_entry(self, expected: dict, table: pa.Table) -> None:
        entry = os.path.join(self.root, expected["source_id"])
        os.makedirs(entry, exist_ok=True)
        for name in DATA_FILES.values():  # a different format's file must not linger
            if name != DATA_FILES[self.data_format]:
                try:
                    os.unlink(os.path.join(entry, name))
                except OSError:
                    pass
        data = os.path.join(entry, DATA_FILES[self.data_format])

        def write_data(tmp: str) -> None:
            if self.data_format == "parquet":
                import pyarrow.parquet as pq

                pq.write_table(table, tmp)
                return
            with pa.OSFile(tmp, "wb") as sink:
                opener = ipc.new_stream if self.data_format == "nanoarrow_ipc" else ipc.new_file
                with opener(sink, table.schema) as writer:
                    writer.write_table(table)

        _write_atomic(data, write_data)
        meta = dict(expected)
        meta.update({"num_rows": str(table.num_rows), "data_size": str(os.path.getsize(data)),
                     "data_crc32": _crc32_file(data),
                     "schema_digest": _schema_digest(table.schema)})

        def write_meta(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as handle:
                for key, value in meta.items():
                    handle.write(f"{key}={value}\n")

        _write_atomic(os.path.join(entry, "meta.txt"), write_meta)

    # ---- TableSource -------------------------------------------------------------------
    @property
    def schema(self) -> pa.Schema:
        if self._table is not None:
            return self._table.schema
        if self._schema is None:
            loaded = self._load_entry(self._meta_fields(), False) if self.materialize else None
            if loaded is not None:
                self._schema = loaded[0]
                if hasattr(self.inner, "set_known_schema"):
                    self.inner.set_known_schema(self._schema)
            else:
                self._schema = self.inner.schema
        return self._schema

    @property
    def path(self):
        return getattr(self.inner, "path", None)

    def _full_table(self) -> pa.Table:
        if self._table is not None:
            return self._table
        table = None
        if self.materialize:
            expected = self._meta_fields()
            loaded = self._load_entry(expected, True)
            if loaded is not None:
                table = loaded[1]
                self.cache_status = "hit"
            else:
                existed = os.path.exists(os.path.join(self.root, expected["source_id"], "meta.txt"))
                table = self._scan_inner()
                self._write_entry(expected, table)
                self.cache_status = "rebuilt" if existed else "built"
        else:
            table = self._scan_inner()
        if self.in_memory:
            self._table = table
        return table

    def _scan_inner(self) -> pa.Table:
        schema = self.inner.schema
        batches = [b for b in self.inner.scan(None, (), DEFAULT_BATCH_ROWS) if b.num_rows]
        return pa.Table.from_batches(batches, schema=schema)

    def scan(self, columns: Sequence[str] | None = None, filters: Sequence[PushedFilter] = (),
             batch_rows: int = DEFAULT_BATCH_ROWS):
        table = self._full_table()
        names = list(table.schema.names) if columns is None else list(columns)
        if hasattr(self.inner, "_resolve_columns"):
            self.inner._resolve_columns(names)
        flts = usable_filters(filters, table.schema)
        need = names + [f.column for f in flts if f.column not in names]
        part = table.select(need) if need else table.select([])
        produced = False
        for batch in part.to_batches(max_chunksize=batch_rows):
            batch = apply_filters(batch, flts)
            if list(batch.schema.names) != names:
                batch = batch.select(names)
            produced = True
            yield batch
        if not produced:
            out = pa.schema([table.schema.field(n) for n in names])
            yield pa.RecordBatch.from_pylist([], schema=out) if names else \
                pa.record_batch([], schema=out)

    def num_rows_hint(self):
        return self._table.num_rows if self._table is not None else None

    def describe(self, columns=None, filters=None) -> str:
        """The inner source's description for this pushdown, plus the cache settings."""
        base = self.inner.describe(columns, list(filters or ()))
        extra = []
        if self.materialize:
            extra.append(f"materialization={self.data_format} cache_dir={self.root} "
                         f"cache={self.cache_status}")
        if self.in_memory:
            extra.append("cache_in_memory=true")
        return " ".join([base] + extra)

    def supports_filter_pushdown(self) -> bool:
        return True
