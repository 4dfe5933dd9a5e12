"""Writers: a table to CSV, Parquet or JSON lines, atomically.

Every writer writes to a temporary file next to the target, fsyncs it and renames it over
the target: a reader (or a crash) sees the old file or the complete new one, never a
half-written file. A failure removes the temporary file and leaves the target as it was.

* CSV: a header row (unless ``header=False``), RFC 4180 quoting where needed, NULL as an empty
  cell, vectors as ``[1,2,3]`` text, binary as base64, structs and maps as compact JSON.
  Reading it back types the text again (docs/io.md lists what does not come back as it was:
  number-like text, ``""``, NaN, zoned timestamps).
* Parquet: the Arrow schema as it is (compression ``zstd`` by default).
* JSON lines: one object per row; NULL is ``null``; NaN and infinities, which JSON cannot
  hold, are written as ``null`` (a RuntimeWarning says how many); dates and timestamps as
  ISO-8601 text; binary as base64 text.
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import os
import secrets
import warnings

import pyarrow as pa

from ..errors import VelariaError, VelariaValueError

__all__ = ["write_table", "WRITE_FORMATS", "write_atomic"]

WRITE_FORMATS = ("csv", "parquet", "json")
_PARQUET_CODECS = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")


def _create_temporary(directory: str, base: str) -> str:
    """Create an empty, new temporary file for ``base`` in ``directory``; returns its path.
    It is created with mode 0666 less the umask, as ``open()`` would create the target
    (``tempfile.mkstemp`` makes it 0600, which the rename would hand on to the target)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {base} in {directory}")


def write_atomic(path: str, write, shown: str | None = None) -> None:
    """Call ``write(tmp_path)``, fsync, then rename the temporary file to ``path`` (a symlink
    at ``path`` is replaced, never followed: internal files such as the materialisation
    cache's must not be redirected). ``shown`` is the name messages use."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise VelariaError(f"cannot write {shown or path}: the directory {directory} does not "
                           f"exist; create it first")
    if os.path.isdir(path):
        raise VelariaError(f"cannot write {shown or path}: it is a directory; pass a file path")
    tmp = _create_temporary(directory, os.path.basename(path))
    try:
        write(tmp)
        try:  # a replaced file keeps its permissions
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _cell_text(kind: str, value) -> str:
    """The CSV text of one non-NULL cell of a column CSV cannot hold as it is."""
    from .typing_rules import render_value

    if kind == "vector":
        return render_value(value)
    if kind == "binary":
        return base64.b64encode(value).decode("ascii")
    if kind == "map":
        value = dict(value)
    return json.dumps(_json_value(value, [0]), ensure_ascii=False, separators=(",", ":"))


def _text_kind(type_: pa.DataType) -> str | None:
    if pa.types.is_list(type_) or pa.types.is_fixed_size_list(type_) or \
            pa.types.is_large_list(type_):
        return "vector"
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or \
            pa.types.is_fixed_size_binary(type_):
        return "binary"
    if pa.types.is_map(type_):
        return "map"
    if pa.types.is_struct(type_):
        return "struct"
    return None


def _cells_as_text(table: pa.Table) -> pa.Table:
    """CSV holds text: vector columns become their ``[1,2,3]`` text, binary its base64 (as
    in JSON lines), structs and maps their compact JSON (as the JSON reader gives a nested
    object)."""
    columns, fields = [], []
    for field, column in zip(table.schema, table.columns):
        kind = _text_kind(field.type)
        if kind is not None:
            column = pa.array([None if v is None else _cell_text(kind, v)
                               for v in column.to_pylist()], pa.string())
            field = field.with_type(pa.string())
        columns.append(column)
        fields.append(field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _write_csv(table: pa.Table, tmp: str, delimiter: str, header: bool) -> None:
    import pyarrow.csv as pacsv

    table = _cells_as_text(table)
    options = pacsv.WriteOptions(include_header=header, delimiter=delimiter,
                                 quoting_style="needed")
    pacsv.write_csv(table, tmp, write_options=options)


def _write_parquet(table: pa.Table, tmp: str, compression: str) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, tmp, compression=None if compression == "none" else compression)


def _json_value(value, counter: list):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        counter[0] += 1
        return None
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _json_value(v, counter) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v, counter) for v in value]
    return str(value)


def _write_json(table: pa.Table, tmp: str) -> int:
    from ..render import python_values

    counter = [0]
    names = table.schema.names
    with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for batch in table.to_batches(max_chunksize=65536):
            columns = [python_values(col, name) for col, name in zip(batch.columns, names)]
            for row in zip(*columns):
                obj = {n: _json_value(v, counter) for n, v in zip(names, row)}
                handle.write(json.dumps(obj, ensure_ascii=False, allow_nan=False))
                handle.write("\n")
    return counter[0]


def write_table(table: pa.Table, path: str, fmt: str, *, delimiter: str = ",",
                header: bool = True, compression: str = "zstd") -> int:
    """Write ``table`` to ``path`` in ``fmt`` (csv | parquet | json), atomically; returns the
    number of rows written."""
    if fmt not in WRITE_FORMATS:
        raise VelariaValueError(f"format must be one of: {', '.join(WRITE_FORMATS)} "
                                f"(got {fmt!r})")
    if fmt == "parquet" and compression not in _PARQUET_CODECS:
        raise VelariaValueError(f"compression must be one of: {', '.join(_PARQUET_CODECS)} "
                                f"(got {compression!r})")
    replaced = [0]

    def write(tmp: str) -> None:
        if fmt == "csv":
            _write_csv(table, tmp, delimiter, header)
        elif fmt == "parquet":
            _write_parquet(table, tmp, compression)
        else:
            replaced[0] = _write_json(table, tmp)

    # a user's symlink stays a link: the file it points to is replaced
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        write_atomic(target, write, shown=path)
    except (OSError, pa.ArrowException) as exc:
        raise VelariaError(f"cannot write {fmt} file {path}: {exc}") from None
    if replaced[0]:
        warnings.warn(f"{replaced[0]} NaN/infinite value(s) were written as null to {path} "
                      f"(JSON has no NaN or infinity)", RuntimeWarning, stacklevel=3)
    return table.num_rows
