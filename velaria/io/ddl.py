"""``CREATE TABLE t [USING csv|line|json|parquet|arrow] OPTIONS(path: '...', ...)``: build
the file source.

The file is probed (so it must exist and be non-empty; binary formats are recognised by
their magic bytes); ``USING`` overrides the probed kind. ``USING csv``, ``USING parquet`` and
``USING arrow`` accept a glob or a directory too. Option keys arrive lower-cased. Recognised
options:

* every kind: ``path`` (required);
* csv: ``delimiter``, ``on_bad_lines`` (``error`` | ``skip``), ``header`` (``true`` |
  ``false``), ``null_values: 'NA,N/A'``, ``compression`` (``infer`` | ``none`` | ``gzip`` |
  ``zstd`` | ``bz2``), ``infer_dates`` (``true`` | ``false``: false keeps ISO dates and
  timestamps as text, as native Velaria does);
* line: ``mode`` (``split`` | ``regex``), ``delimiter`` / ``split_delimiter``,
  ``regex_pattern`` / ``regex``, ``mappings: 'name:index,...'``, ``columns: 'a,b'``,
  ``skip_empty_lines`` (``true`` | ``false``);
* json: ``format`` (``json_lines``/``jsonl``/``lines``/``json_array``/``array``),
  ``columns: 'a,b'``, ``infer_dates`` (as for csv);
* parquet, arrow: no other option; excel (probed .xlsx): ``sheet_name``.

An unknown key is an error with a did-you-mean (a typo must not be silently ignored).

Divergence from upstream: ``mappings`` *replaces* the probed ``c0..cN`` mappings instead of
being appended to them.
"""
from __future__ import annotations

import difflib

from ..errors import SQLSemanticError, VelariaValueError
from .base import TableSource
from .csv_source import ON_BAD_LINES, CsvSource
from .json_source import JSON_FORMATS, JsonSource
from .line_source import LineSource
from .magic import sniff_format
from .multi_source import csv_files_source
from .paths import as_path_str, names_several_files
from .probe import line_options_for, probe_file, source_from_probe

__all__ = ["create_table_source", "check_option_keys", "PROVIDERS"]

PROVIDERS = ("csv", "line", "json", "parquet", "arrow")


def _err(message: str) -> SQLSemanticError:
    return SQLSemanticError(message)


def _split_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_mappings(text: str) -> list[tuple[str, int]]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, index = part.rpartition(":")
        if not sep or not name.strip():
            raise _err("CREATE TABLE option mappings must use column:index pairs "
                       f"(got {part!r}; write mappings: 'name:0,other:2')")
        index = index.strip()
        if not index.isdigit():
            raise _err(f"CREATE TABLE option mappings contains invalid source index: {index}")
        out.append((name.strip(), int(index)))
    return out


def _flag(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise _err(f"CREATE TABLE option {key} must be true or false (got {value!r})")


def _delimiter(key: str, value: str) -> str:
    if len(value) != 1:
        raise _err(f"delimiter must be a single character (option {key}={value!r})")
    return value


#: the OPTIONS keys each kind understands (besides ``path``)
KNOWN_OPTIONS = {
    "csv": ("delimiter", "on_bad_lines", "header", "null_values", "compression", "infer_dates"),
    "line": ("mode", "delimiter", "split_delimiter", "regex_pattern", "regex", "mappings",
             "columns", "skip_empty_lines"),
    "json": ("format", "columns", "infer_dates"),
    "parquet": (),
    "arrow": (),
    "excel": ("sheet_name",),
}


def _check_option_keys(kind: str, options: dict[str, str]) -> None:
    """An unknown key is an error: a typo (``delimeter``) must not be silently ignored."""
    check_option_keys(f"CREATE TABLE USING {kind}", f"{kind} tables", ("path",) + KNOWN_OPTIONS[kind],
                      options)


def check_option_keys(statement: str, what: str, known: tuple[str, ...], options: dict[str, str]) -> None:
    """Raise for the first key of ``options`` not in ``known``, with a did-you-mean
    (``statement``: how the error names the statement; ``what``: whose options these are)."""
    for key in options:
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise _err(f"{statement}: unknown option {key!r}; {guess}"
                   f"the options of {what} are: {', '.join(known)}")


def create_table_source(provider: str | None, options: dict[str, str],
                        declared_columns: list[str]) -> TableSource:
    """The source of ``CREATE TABLE`` with a ``path`` option (see the module docstring)."""
    kind = None
    if provider is not None:
        kind = provider.strip().lower()
        if kind not in PROVIDERS:
            raise _err(f"CREATE TABLE type/provider must be csv, line, or json (parquet and "
                       f"arrow are accepted too; got {provider!r})")
    for key, value in options.items():
        if value is None or value == "":
            raise _err(f"CREATE TABLE option {key} cannot be empty")
    if "path" not in options:
        raise _err("CREATE TABLE missing option: path")
    path = as_path_str(options["path"])
    if kind in ("parquet", "arrow"):  # a glob or directory is fine: no probing needed
        _check_option_keys(kind, options)
        from .parquet_source import ArrowIpcSource, ParquetSource

        source = (ParquetSource if kind == "parquet" else ArrowIpcSource)(path)
        _check_declared(source, list(declared_columns or []))
        return source
    if kind == "csv" and (names_several_files(path) or
                          sniff_format(path) in ("gzip", "zstd", "bzip2")):
        # several files (a glob, a directory) or a compressed one: read_csv's rules apply
        info = {"kind": "csv", "delimiter": ","}
    else:
        info = probe_file(path)
    kind = kind or info["kind"]
    _check_option_keys(kind, options)
    if kind in ("parquet", "arrow", "excel"):
        source = source_from_probe(path, info)
        if kind == "excel" and "sheet_name" in options:
            from .excel_source import ExcelSource

            sheet = options["sheet_name"]
            source = ExcelSource(path, sheet_name=int(sheet) if sheet.isdigit() else sheet)
        _check_declared(source, list(declared_columns or []))
        return source
    declared = list(declared_columns or [])
    infer_dates = _flag("infer_dates", options["infer_dates"]) if "infer_dates" in options else True

    if kind == "csv":
        if "delimiter" in options:
            delim = _delimiter("delimiter", options["delimiter"])
        else:
            delim = info.get("delimiter", ",") if info["kind"] == "csv" else ","
        bad = options.get("on_bad_lines", "error")
        if bad not in ON_BAD_LINES:
            raise _err(f"CREATE TABLE option on_bad_lines must be error or skip (got {bad!r})")
        header = _flag("header", options["header"]) if "header" in options else True
        nulls = [v for v in options["null_values"].split(",")] \
            if "null_values" in options else None
        csv_options = dict(delimiter=delim, on_bad_lines=bad, header=header, null_values=nulls,
                           compression=options.get("compression", "infer"),
                           infer_dates=infer_dates)
        try:
            source = csv_files_source(path, **csv_options) if names_several_files(path) \
                else CsvSource(path, **csv_options)
        except VelariaValueError as exc:
            raise _err(f"CREATE TABLE: {exc}") from None
    elif kind == "line":
        base = info if info["kind"] == "line" else None
        mode = options.get("mode", "split").strip().lower()
        if mode not in ("split", "regex"):
            raise _err("CREATE TABLE option mode must be split or regex")
        if "split_delimiter" in options:
            delim = _delimiter("split_delimiter", options["split_delimiter"])
        elif "delimiter" in options:
            delim = _delimiter("delimiter", options["delimiter"])
        elif base is not None:
            delim = base["delimiter"]
        else:
            delim = line_options_for(path)["delimiter"]
        pattern = options.get("regex_pattern", options.get("regex", ""))
        if mode == "regex" and not pattern:
            raise _err("CREATE TABLE regex line source requires OPTIONS(regex_pattern: '...')")
        if "mappings" in options:
            mappings = _parse_mappings(options["mappings"])
        elif "columns" in options:
            mappings = [(name, i) for i, name in enumerate(_split_names(options["columns"]))]
        elif declared:
            mappings = [(name, i) for i, name in enumerate(declared)]
        elif base is not None:
            mappings = [(m["column"], m["source_index"]) for m in base["mappings"]]
        else:
            mappings = []
        if not mappings:
            raise _err("CREATE TABLE line source requires columns, OPTIONS(columns: "
                       "'name1,name2,...'), or OPTIONS(mappings: 'name:0,...')")
        skip_empty = _flag("skip_empty_lines", options["skip_empty_lines"]) \
            if "skip_empty_lines" in options else True
        source = LineSource(path, mappings, mode=mode, split_delimiter=delim,
                            regex_pattern=pattern, skip_empty_lines=skip_empty)
    else:
        if "format" in options:
            fmt = JSON_FORMATS.get(options["format"].strip().lower())
            if fmt is None:
                raise _err("CREATE TABLE option format must be json_lines or json_array "
                           f"(got {options['format']!r})")
        elif info["kind"] == "json":
            fmt = info["format"]
        else:
            fmt = _json_format_from_content(path)
        if "columns" in options:
            columns = _split_names(options["columns"])
        elif declared:
            columns = declared
        elif info["kind"] == "json":
            # every key of the file, in first-appearance order (as read_json without columns):
            # the probe's first-object keys would silently drop a key that appears later
            columns = None
        else:
            columns = []
        if columns is not None and not columns:
            raise _err("CREATE TABLE json source requires columns or "
                       "OPTIONS(columns: 'name1,name2,...')")
        source = JsonSource(path, columns, fmt, infer_dates=infer_dates)

    _check_declared(source, declared)
    return source


def _check_declared(source: TableSource, declared: list[str]) -> None:
    """A declared column list must name the source's columns, in order."""
    if declared:
        names = list(source.schema.names) if not hasattr(source, "names") else list(source.names)
        if len(names) != len(declared):
            raise _err(f"CREATE TABLE column count does not match source schema "
                       f"(declared {len(declared)}: {', '.join(declared)}; the source has "
                       f"{len(names)}: {', '.join(names)})")
        for want, got in zip(declared, names):
            if want != got:
                raise _err(f"CREATE TABLE column mismatch: expected {got}, got {want}")


def _json_format_from_content(path: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    return "json_array" if head.startswith("[") else "json_lines"
