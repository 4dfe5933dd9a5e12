"""Source materialisation (a reusable on-disk cache of a parsed file) and ``cache_in_memory``.

Layout: ``<root>/<source_id>/meta.txt`` plus one data file, where
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

An entry is reused only when the format, options, absolute path, file size, mtime, inode and
ctime in ``meta.txt`` match the file, and the data file has the recorded size, schema and row
count;anything else (stale or corrupt) is rebuilt, never served. Files are written to a temporary
name and renamed, data first, ``meta.txt`` last.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import warnings
import zlib
from typing import Sequence

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import VelariaError, VelariaValueError
from .base import DEFAULT_BATCH_ROWS, PushedFilter, TableSource, empty_batch
from .paths import as_path_str, fingerprint
from .pushdown import apply_filters, usable_filters
from . import progress
from .writers import write_atomic

__all__ = ["CachedSource", "canonical_materialization_format", "source_id",
           "default_materialization_root", "prepare_root", "DATA_FILES"]

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
    """The per-user default cache directory (``<temp>/velaria_source_materialization_cache``
    plus ``-<uid>`` on POSIX). Per user, because a shared directory would let another local
    user plant entries that are served as cache hits."""
    base = os.path.join(tempfile.gettempdir(), "velaria_source_materialization_cache")
    return f"{base}-{os.getuid()}" if hasattr(os, "getuid") else base


def _owned_by_me(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def prepare_root(root: str, default: bool) -> None:
    """Create the cache root (mode 0700) or check an existing one: it must be a real
    directory (not a symlink) owned by the current user; the default root is also made
    private (0700) if it is not."""
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        st = os.lstat(root)
    except OSError as exc:
        raise VelariaError(
            f"cannot use materialization cache directory {root}: {exc.strerror or exc}; pass "
            f"materialization_dir= a directory you can write") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or not _owned_by_me(st):
        raise VelariaError(
            f"refusing materialization cache directory {root}: it is not a directory owned "
            f"by the current user (entries there could have been planted by someone else); "
            f"remove it or pass materialization_dir= a directory you own")
    if default and hasattr(os, "getuid") and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(root, 0o700)


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


def _clear_path(path: str) -> None:
    """Remove what occupies ``path`` when it is not a regular file (a directory left by a
    damaged entry), so an atomic rename can put a file there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)


def _write_atomic(path: str, write) -> None:
    """:func:`~velaria.io.writers.write_atomic` over whatever a damaged entry left at
    ``path`` (a directory is removed first)."""
    _clear_path(path)
    write_atomic(path, write)


def _prepare_entry(entry: str) -> None:
    """Make ``entry`` a directory owned by the current user, replacing whatever else is
    there (a file, a symlink, someone else's directory) instead of failing on it."""
    try:
        st = os.lstat(entry)
    except FileNotFoundError:
        os.makedirs(entry, 0o700, exist_ok=True)  # another process may create it too
        return
    if stat.S_ISDIR(st.st_mode) and _owned_by_me(st):
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(entry)
    else:
        os.unlink(entry)
    os.makedirs(entry, 0o700, exist_ok=True)


class CachedSource(TableSource):
    """Wraps a file source: serves scans from a disk cache entry and/or an in-memory table.
    Pushdown to the file is off: the first scan reads every column and row.

    Memory stays bounded by a batch: the entry is written batch by batch as the file is
    scanned, and scans stream batches from the entry (memory-mapped, so the pages are the
    page cache's, not the process's). Only ``cache_in_memory`` holds the whole table, as a
    private copy (never a mapping of a file another process may change)."""

    def __init__(self, inner: TableSource, *, materialize: bool, root=None,
                 data_format: str = "binary_row_batch", in_memory: bool = False):
        self.inner = inner
        self.kind = inner.kind
        self.materialize = materialize
        self._default_root = root is None
        self.root = as_path_str(root, "materialization_dir") if root is not None \
            else default_materialization_root()
        self.data_format = canonical_materialization_format(data_format)
        self.in_memory = in_memory
        self._table: pa.Table | None = None
        self._schema: pa.Schema | None = None
        self.cache_status = "none"  # hit | built | rebuilt | none | unwritable
        if materialize:
            prepare_root(self.root, self._default_root)
            # the entry on disk serves every later scan; parsed copies in memory would only
            # make the process grow with the file
            if hasattr(inner, "keep_parsed"):
                inner.keep_parsed = False

    # ---- cache entry -------------------------------------------------------------------
    def _meta_fields(self) -> dict:
        fp = fingerprint(self.inner.path)
        options = self.inner.options_key() if hasattr(self.inner, "options_key") else ""
        sid = source_id(self.inner.kind, options, fp.abs_path)
        return {"source_id": sid, "data_format": self.data_format,
                "source_format": self.inner.kind, "source_options": options,
                "abs_path": fp.abs_path, "file_size": str(fp.size),
                "mtime_ns": str(fp.mtime_ns), "inode": str(fp.inode),
                "ctime_ns": str(fp.ctime_ns)}

    @property
    def entry_dir(self) -> str:
        return os.path.join(self.root, self._meta_fields()["source_id"])

    def _data_path(self, expected: dict) -> str:
        return os.path.join(self.root, expected["source_id"], DATA_FILES[self.data_format])

    @staticmethod
    def _read_meta(path: str) -> dict | None:
        """The key=value pairs of a regular ``meta.txt`` owned by the current user, else None
        (missing, a directory, someone else's, unreadable: all mean "rebuild")."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _owned_by_me(st):
                return None
            with os.fdopen(fd, encoding="utf-8") as handle:
                fd = -1
                pairs = [line.rstrip("\n").split("=", 1) for line in handle if "=" in line]
            return {k: v for k, v in pairs}
        except (OSError, UnicodeDecodeError):
            return None
        finally:
            if fd >= 0:
                os.close(fd)

    def _load_entry(self, expected: dict, verify_data: bool) -> pa.Schema | None:
        """The schema of a fresh, intact entry (its data file checked against the recorded
        size, and with ``verify_data`` its CRC); None when it must be rebuilt."""
        entry = os.path.join(self.root, expected["source_id"])
        meta = self._read_meta(os.path.join(entry, "meta.txt"))
        if meta is None or any(meta.get(k) != v for k, v in expected.items()):
            return None
        data = os.path.join(entry, DATA_FILES[self.data_format])
        try:
            st = os.lstat(data)
            if not stat.S_ISREG(st.st_mode) or not _owned_by_me(st):
                return None
            if st.st_size != int(meta.get("data_size", "-1")):
                return None
            if verify_data and _crc32_file(data) != meta.get("data_crc32"):
                return None
            schema = self._read_schema(data)
        except Exception:  # noqa: BLE001 - a corrupt entry of any kind is rebuilt
            return None
        if _schema_digest(schema) != meta.get("schema_digest"):
            return None
        return schema

    def _read_schema(self, data: str) -> pa.Schema:
        if self.data_format == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(data)
        with pa.OSFile(data) as source:
            if self.data_format == "nanoarrow_ipc":
                return ipc.open_stream(source).schema
            return ipc.open_file(source).schema

    def _data_batches(self, data: str, batch_rows: int):
        """Stream the batches of a data file (bounded memory)."""
        if self.data_format == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(data).iter_batches(batch_size=batch_rows)
            return
        with pa.memory_map(data) as source:
            if self.data_format == "nanoarrow_ipc":
                yield from ipc.open_stream(source)
                return
            reader = ipc.open_file(source)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def _read_private(self, data: str) -> pa.Table:
        """The whole data file as a table in process memory (no mapping kept)."""
        if self.data_format == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(data, memory_map=False)
        with pa.OSFile(data) as source:
            if self.data_format == "nanoarrow_ipc":
                return ipc.open_stream(source).read_all()
            return ipc.open_file(source).read_all()

    def _write_entry(self, expected: dict) -> None:
        """Scan the inner source into a new entry, batch by batch (data first, then
        ``meta.txt``; each written atomically). Other formats' data files are left alone:
        another process may be reading them."""
        entry = os.path.join(self.root, expected["source_id"])
        _prepare_entry(entry)
        data = os.path.join(entry, DATA_FILES[self.data_format])
        schema = self.inner.schema
        rows = [0]

        def write_data(tmp: str) -> None:
            batches = (b for b in self.inner.scan(None, (), DEFAULT_BATCH_ROWS) if b.num_rows)
            if self.data_format == "parquet":
                import pyarrow.parquet as pq

                with pq.ParquetWriter(tmp, schema) as writer:
                    for batch in batches:
                        writer.write_batch(batch)
                        rows[0] += batch.num_rows
                return
            with pa.OSFile(tmp, "wb") as sink:
                opener = ipc.new_stream if self.data_format == "nanoarrow_ipc" else ipc.new_file
                with opener(sink, schema) as writer:
                    for batch in batches:
                        writer.write_batch(batch)
                        rows[0] += batch.num_rows

        name = os.path.basename(expected["abs_path"])
        with progress.bar(int(expected["file_size"]), f"materializing {name}"):
            _write_atomic(data, write_data)
        meta = dict(expected)
        meta.update({"num_rows": str(rows[0]), "data_size": str(os.path.getsize(data)),
                     "data_crc32": _crc32_file(data),
                     "schema_digest": _schema_digest(schema)})

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
                self._schema = loaded
                if hasattr(self.inner, "set_known_schema"):
                    self.inner.set_known_schema(self._schema)
            else:
                self._schema = self.inner.schema
        return self._schema

    @property
    def path(self):
        return getattr(self.inner, "path", None)

    def _ensure_entry(self) -> str | None:
        """The path of a fresh, verified data file (built when needed), or None when the
        cache directory cannot be written (then a RuntimeWarning says so)."""
        expected = self._meta_fields()
        if self._load_entry(expected, True) is not None:
            self.cache_status = "hit"
            return self._data_path(expected)
        existed = os.path.lexists(os.path.join(self.root, expected["source_id"], "meta.txt"))
        try:
            self._write_entry(expected)
        except OSError as exc:
            warnings.warn(f"could not write the materialization cache entry for "
                          f"{self.inner.path} under {self.root} ({exc}); reading the file "
                          f"without the cache", RuntimeWarning, stacklevel=3)
            self.cache_status = "unwritable"
            return None
        self.cache_status = "rebuilt" if existed else "built"
        return self._data_path(expected)

    def _batches(self, batch_rows: int):
        """Every row of the source as a stream of batches, through the caches."""
        if self._table is not None:
            yield from self._table.to_batches(max_chunksize=batch_rows)
            return
        data = self._ensure_entry() if self.materialize else None
        if self.in_memory:
            if data is not None:
                self._table = self._read_private(data)
            else:
                batches = [b for b in self.inner.scan(None, (), batch_rows) if b.num_rows]
                self._table = pa.Table.from_batches(batches, schema=self.inner.schema)
            yield from self._table.to_batches(max_chunksize=batch_rows)
        elif data is not None:
            for batch in self._data_batches(data, batch_rows):
                for start in range(0, batch.num_rows, batch_rows):  # zero-copy slices
                    yield batch.slice(start, batch_rows)
        else:
            yield from self.inner.scan(None, (), batch_rows)

    def scan(self, columns: Sequence[str] | None = None, filters: Sequence[PushedFilter] = (),
             batch_rows: int = DEFAULT_BATCH_ROWS):
        schema = self.schema
        names = list(schema.names) if columns is None else list(columns)
        if hasattr(self.inner, "_resolve_columns"):
            self.inner._resolve_columns(names)
        flts = usable_filters(filters, schema)
        need = names + [f.column for f in flts if f.column not in names]
        produced = False
        for batch in self._batches(batch_rows):
            if not batch.num_rows:
                continue
            batch = apply_filters(batch.select(need), flts)
            if list(batch.schema.names) != names:
                batch = batch.select(names)
            produced = True
            yield batch
        if not produced:
            out = pa.schema([schema.field(n) for n in names])
            yield empty_batch(out)

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
