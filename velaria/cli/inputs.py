"""Open an input file as a DataFrame through the Session's readers (never by splicing the path
into SQL, so any path works, quotes included)."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import CliStructuredError, CliUsageError

__all__ = ["INPUT_TYPES", "check_input_path", "open_input", "parse_mappings_text", "split_columns"]

#: ``auto`` probes text files; the others force a reader
INPUT_TYPES = ("auto", "csv", "line", "json", "parquet", "arrow", "excel")
_BY_SUFFIX = {".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow",
              ".xlsx": "excel", ".xlsm": "excel"}


def check_input_path(path: str, flag: str) -> Path:
    """``path`` as a Path; a clear ``file_not_found`` error when it is missing or a directory."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CliStructuredError(f"input file not found: {path} (check the path given to {flag})",
                                 error_type="file_not_found", phase="filesystem", details={"path": str(path)})
    if p.is_dir():
        raise CliStructuredError(f"input path is a directory, not a file: {path} ({flag} takes one file)",
                                 error_type="file_not_found", phase="filesystem", details={"path": str(path)})
    return p


def split_columns(text: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (blanks dropped)."""
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def parse_mappings_text(text: str) -> list[tuple[str, int]]:
    """``"uid:1,action:2"`` -> ``[("uid", 1), ("action", 2)]``."""
    out = []
    for part in split_columns(text):
        name, sep, index = part.partition(":")
        if not sep or not name.strip() or not index.strip().isdigit():
            raise CliUsageError(f"--mappings entry {part!r} is not NAME:INDEX (example: 'uid:1,action:2')",
                                details={"mappings": text})
        out.append((name.strip(), int(index)))
    return out


def resolve_input_type(path: Path, input_type: str) -> str:
    """The reader to use: ``input_type`` itself, or for ``auto`` the one the extension names
    (``text`` meaning: let the Session probe it)."""
    if input_type != "auto":
        return input_type
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise CliUsageError(f"{path.name}: legacy .xls workbooks are not supported; save the sheet as .xlsx or .csv",
                            details={"path": str(path)})
    return _BY_SUFFIX.get(suffix, "auto")


def open_input(session, path: Path, input_type: str = "auto", *, delimiter: str = ",",
               line_mode: str = "split", regex_pattern: str | None = None, mappings: str | None = None,
               columns: str | None = None, json_format: str = "json_lines", sheet: str | None = None):
    """A DataFrame over ``path`` read with the reader ``input_type`` selects."""
    kind = resolve_input_type(path, input_type)
    text = os.fspath(path)
    if kind == "parquet":
        import pyarrow.parquet as pq
        return session.create_dataframe_from_arrow(pq.read_table(text))
    if kind == "arrow":
        import pyarrow as pa
        import pyarrow.ipc as ipc
        try:
            table = ipc.open_file(text).read_all()
        except pa.ArrowInvalid:
            table = ipc.open_stream(text).read_all()
        return session.create_dataframe_from_arrow(table)
    if kind == "excel":
        from ..excel import read_excel
        sheet_name = 0 if sheet is None else (int(sheet) if sheet.isdigit() else sheet)
        return read_excel(session, text, sheet_name=sheet_name)
    if kind == "csv":
        return session.read_csv(text, delimiter=delimiter)
    if kind == "line":
        if line_mode == "regex" and not regex_pattern:
            raise CliUsageError("--regex-pattern is required when --input-type=line and --line-mode=regex",
                                details={"input_type": input_type, "line_mode": line_mode})
        if mappings:
            pairs = parse_mappings_text(mappings)
        elif columns:
            first = 1 if line_mode == "regex" else 0  # regex group 0 is the whole match
            pairs = [(c, i + first) for i, c in enumerate(split_columns(columns))]
        else:
            raise CliUsageError("--input-type=line requires --columns or --mappings",
                                details={"input_type": input_type})
        return session.read_line_file(text, pairs, mode=line_mode, split_delimiter=delimiter,
                                      regex_pattern=regex_pattern or "")
    if kind == "json":
        if not columns:
            raise CliUsageError("--input-type=json requires --columns", details={"input_type": input_type})
        return session.read_json(text, split_columns(columns), format=json_format)
    if kind == "auto":
        return session.read(text)
    raise CliUsageError(f"unsupported input type: {input_type} (choose one of {', '.join(INPUT_TYPES)})",
                        details={"input_type": input_type})
