"""The Session's file-reading methods (``probe``, ``read``, ``read_csv``, ``read_line_file``,
``read_json``) as a mixin; ``Session`` inherits it and provides ``_frame_from_source``.

Signatures, defaults and messages follow upstream; paths may be ``str`` or
any ``os.PathLike``. Each reader checks its arguments and opens the file at call time (a
missing file fails immediately) and returns a lazy DataFrame over a streamed source.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..api_types import ColumnTypes, LineMappings, PathArg
from ..errors import VelariaValueError
from .base import TableSource
from .csv_source import CsvSource
from .json_source import JsonSource, canonical_json_format
from .line_source import LINE_MODES, LineSource
from .materialize import CachedSource, canonical_materialization_format
from .multi_source import csv_files_source
from .paths import as_path_str, names_several_files
from .probe import probe_file, source_from_probe

if TYPE_CHECKING:  # pragma: no cover
    from ..dataframe import DataFrame

__all__ = ["ReaderMethods", "check_delimiter", "parse_mappings", "wrap_source"]


def check_delimiter(value, arg: str = "delimiter") -> str:
    """A one-character delimiter, or VelariaValueError "delimiter must be a single character"."""
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be str, not {type(value).__name__}")
    if len(value) != 1:
        raise VelariaValueError(f"delimiter must be a single character ({arg}={value!r})")
    if value in ('"', "\n", "\r"):
        raise VelariaValueError(f"{arg} cannot be {value!r} (it is reserved by the CSV syntax)")
    return value


def parse_mappings(mappings) -> list[tuple[str, int]]:
    """Validate ``read_line_file`` mappings: ``(column, source_index)`` pairs or dicts
    ``{"column": ..., "source_index": ...}``; messages as upstream."""
    if isinstance(mappings, (str, bytes)) or not isinstance(mappings, Sequence):
        raise VelariaValueError("mappings must be a sequence of (column, source_index) pairs")
    out = []
    for i, item in enumerate(mappings):
        if isinstance(item, Mapping):
            if "column" not in item or "source_index" not in item:
                raise VelariaValueError(
                    f"mappings[{i}] dict mapping requires column and source_index")
            name, index = item["column"], item["source_index"]
            name_msg, index_msg = f"mappings[{i}].column", f"mappings[{i}].source_index"
        elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
            if len(item) != 2:
                raise VelariaValueError(f"mappings[{i}] must have exactly 2 items")
            name, index = item[0], item[1]
            name_msg, index_msg = f"mappings[{i}][0]", f"mappings[{i}][1]"
        else:
            raise VelariaValueError(f"mappings[{i}] must be a (column, source_index) pair")
        if not isinstance(name, str):
            raise VelariaValueError(f"{name_msg} must be a string")
        if isinstance(index, bool) or not isinstance(index, int):
            raise VelariaValueError(f"{index_msg} must be an integer")
        if index < 0:
            raise VelariaValueError(f"{index_msg} must be non-negative")
        out.append((name, index))
    return out


def _check_columns(columns) -> list[str]:
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    if not isinstance(columns, Sequence) and not hasattr(columns, "__iter__"):
        raise VelariaValueError("columns must be a sequence of strings")
    columns = list(columns)
    if not all(isinstance(c, str) for c in columns):
        raise VelariaValueError("columns must contain only strings")
    return columns


def wrap_source(source: TableSource, materialization=False, materialization_dir=None,
                materialization_format=None, cache_in_memory=False) -> TableSource:
    """Apply the shared reader options: materialisation (on if ``materialization`` is truthy
    or a dir/format is given) and ``cache_in_memory``."""
    if materialization_dir is not None and not isinstance(materialization_dir, (str, os.PathLike)):
        raise TypeError("materialization_dir must be str, os.PathLike or None")
    fmt = canonical_materialization_format(materialization_format)
    materialize = bool(materialization) or materialization_dir is not None or \
        materialization_format is not None
    if not materialize and not cache_in_memory:
        return source
    return CachedSource(source, materialize=materialize, root=materialization_dir,
                        data_format=fmt, in_memory=bool(cache_in_memory))


class ReaderMethods:
    """Mixin with the Session's file readers. Needs ``self.context.frame_from_source(source)``."""

    def probe(self, path: PathArg) -> dict:
        """Guess the format of ``path``; returns upstream's probe dict."""
        return probe_file(as_path_str(path))

    def read(self, path: PathArg, materialization: bool = False,
             materialization_dir: PathArg | None = None, materialization_format: str | None = None,
             cache_in_memory: bool = False) -> "DataFrame":
        """Probe ``path`` and read it with the probed reader and options."""
        path = as_path_str(path)
        canonical_materialization_format(materialization_format)
        source = source_from_probe(path, probe_file(path))
        return self.context.frame_from_source(wrap_source(
            source, materialization, materialization_dir, materialization_format,
            cache_in_memory))

    def read_csv(self, path: PathArg, delimiter: str = ",", materialization: bool = False,
                 materialization_dir: PathArg | None = None, materialization_format: str | None = None,
                 cache_in_memory: bool = False, on_bad_lines: str = "error", *, header: bool = True,
                 column_names: Sequence[str] | None = None, null_values: Sequence[str] | None = None,
                 column_types: ColumnTypes = None, compression: str = "infer",
                 infer_dates: bool = True) -> "DataFrame":
        """A CSV file (typed per column; see docs/io.md), or several by glob or directory.

        ``header=False``: the first line is data (columns ``c0..cN`` unless ``column_names``
        names them); ``null_values``: the texts that mean NULL (default: the empty cell);
        ``column_types``: ``{"col": "BIGINT" | "DOUBLE" | "BOOLEAN" | "STRING" | "DATE" |
        "TIMESTAMP"}`` skips typing for those columns; ``compression``: ``infer`` (by magic
        bytes), ``none``, ``gzip``, ``zstd`` or ``bz2``; ``infer_dates=False`` keeps ISO dates
        and timestamps as text (native Velaria's behaviour) instead of DATE / TIMESTAMP."""
        path = as_path_str(path)
        check_delimiter(delimiter)
        canonical_materialization_format(materialization_format)
        if not isinstance(header, bool):
            raise TypeError("header must be a bool")
        options = dict(delimiter=delimiter, on_bad_lines=on_bad_lines, header=header,
                       column_names=column_names, null_values=null_values,
                       column_types=column_types, compression=compression,
                       infer_dates=infer_dates)
        if names_several_files(path):
            if materialization or materialization_dir is not None or \
                    materialization_format is not None:
                raise VelariaValueError(
                    f"materialization is for one file; {path} names several (read them "
                    f"without it, or materialize each file)")
            source = csv_files_source(path, **options)
            return self.context.frame_from_source(wrap_source(source, cache_in_memory=cache_in_memory))
        source = CsvSource(path, **options)
        return self.context.frame_from_source(wrap_source(
            source, materialization, materialization_dir, materialization_format,
            cache_in_memory))

    def read_line_file(self, path: PathArg, mappings: LineMappings, mode: str = "split",
                       split_delimiter: str = ",", regex_pattern: str = "",
                       skip_empty_lines: bool = True, materialization: bool = False,
                       materialization_dir: PathArg | None = None,
                       materialization_format: str | None = None,
                       cache_in_memory: bool = False) -> "DataFrame":
        """A line file in split mode (fields by index) or regex mode (capture groups)."""
        path = as_path_str(path)
        pairs = parse_mappings(mappings)
        if mode not in LINE_MODES:
            raise VelariaValueError(f"mode must be one of: split, regex (got {mode!r})")
        check_delimiter(split_delimiter, "split_delimiter")
        if not isinstance(regex_pattern, str):
            raise TypeError("regex_pattern must be str")
        canonical_materialization_format(materialization_format)
        source = LineSource(path, pairs, mode=mode, split_delimiter=split_delimiter,
                            regex_pattern=regex_pattern, skip_empty_lines=skip_empty_lines)
        return self.context.frame_from_source(wrap_source(
            source, materialization, materialization_dir, materialization_format,
            cache_in_memory))

    def read_parquet(self, path: PathArg, cache_in_memory: bool = False) -> "DataFrame":
        """Parquet: one file, a glob (``data/*.parquet``) or a directory of ``*.parquet``
        files sharing one schema; projection and row-group filter pushdown. (Parquet needs
        no materialisation cache: it is already typed and columnar.)"""
        from .parquet_source import ParquetSource

        return self.context.frame_from_source(wrap_source(
            ParquetSource(as_path_str(path)), False, None, None, cache_in_memory))

    def read_arrow(self, path: PathArg, cache_in_memory: bool = False) -> "DataFrame":
        """Arrow IPC (Feather v2) files: one file, a glob or a directory of ``*.arrow``."""
        from .parquet_source import ArrowIpcSource

        return self.context.frame_from_source(wrap_source(
            ArrowIpcSource(as_path_str(path)), False, None, None, cache_in_memory))

    def read_json(self, path: PathArg, columns: Sequence[str] | None = None,
                  format: str = "json_lines", materialization: bool = False,
                  materialization_dir: PathArg | None = None, materialization_format: str | None = None,
                  cache_in_memory: bool = False, *, infer_dates: bool = True) -> "DataFrame":
        """A JSON lines or JSON array file; ``columns`` lists the keys to keep (None: every
        top-level key of the file, in first-appearance order, found by one pass);
        ``infer_dates=False`` keeps ISO date and timestamp strings as text (native Velaria's
        behaviour) instead of DATE / TIMESTAMP."""
        path = as_path_str(path)
        cols = None if columns is None else _check_columns(columns)
        fmt = canonical_json_format(format)
        canonical_materialization_format(materialization_format)
        source = JsonSource(path, cols, fmt, infer_dates=infer_dates)
        return self.context.frame_from_source(wrap_source(
            source, materialization, materialization_dir, materialization_format,
            cache_in_memory))
