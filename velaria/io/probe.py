"""``Session.probe``: guess a file's format from its first lines and extension, with
upstream's candidates, scores, confidence and warnings, and build the matching source (``Session.read``)."""
from __future__ import annotations

import codecs
import json
import os
from typing import Any

from ..errors import SourceFormatError
from .paths import check_readable_file

__all__ = ["probe_file", "choose_delimiter", "source_from_probe", "line_options_for"]

_SPACE = " \t\n\v\f\r"
_DELIMITERS = [",", "\t", "|", ";", " "]
_MAX_LINE = 4 << 20


def _sample_lines(path: str, limit: int) -> list[str]:
    """Up to ``limit`` non-empty lines, stripped of surrounding whitespace (lines longer than
    4 MiB are cut: the rest of such a line is skipped, not taken as further lines, so a
    one-line file such as a JSON array costs one cut piece whatever its size)."""
    out: list[str] = []
    with open(path, "rb") as handle:
        first = True
        while len(out) < limit:
            raw = handle.readline(_MAX_LINE)
            if not raw:
                break
            if len(raw) == _MAX_LINE and not raw.endswith(b"\n"):
                while (rest := handle.readline(_MAX_LINE)) and not rest.endswith(b"\n"):
                    pass
            if first and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            first = False
            text = raw.decode("utf-8", errors="replace").strip(_SPACE)
            if text:
                out.append(text)
    return out


def choose_delimiter(lines: list[str]) -> tuple[str, int] | None:
    """(delimiter, columns): the delimiter of ``, TAB | ; space`` that splits the first line
    into the most (>1) fields and every line into the same count; ties keep the earlier."""
    if not lines:
        return None
    best = None
    for delim in _DELIMITERS:
        count = len(lines[0].split(delim))
        if count <= 1:
            continue
        if all(len(line.split(delim)) == count for line in lines[1:]):
            if best is None or count > best[1]:
                best = (delim, count)
    return best


def _is_header_token(token: str) -> bool:
    token = token.strip(_SPACE)
    return bool(token) and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in token)


def _render_delim(delim: str) -> str:
    return {"\t": "\\t", " ": "space"}.get(delim, delim)


def _candidate(fmt: str, kind: str, score: int, evidence: list[str]) -> dict:
    return {"format": fmt, "kind": kind, "score": score, "reason": "; ".join(evidence),
            "evidence": list(evidence)}


def _build_candidates(path: str, lines: list[str]) -> list[dict]:
    lower = path.lower()
    csv_ext = lower.endswith(".csv")
    tsv_ext = lower.endswith(".tsv")
    json_ext = lower.endswith(".json")
    jsonl_ext = lower.endswith((".jsonl", ".ndjson"))
    line_ext = lower.endswith((".log", ".txt", ".lines"))
    cands: list[dict] = []

    if all(line.startswith("{") and line.endswith("}") for line in lines):
        ev = ["content starts with object", "newline-delimited objects"]
        if jsonl_ext:
            ev.append("jsonl/ndjson extension")
        cands.append(_candidate("json_lines", "json", 92 + (8 if json_ext or jsonl_ext else 0), ev))
    elif lines[0].startswith("["):
        ev = ["content starts with array"] + (["json extension"] if json_ext else [])
        cands.append(_candidate("json_array", "json", 94 + (8 if json_ext else 0), ev))

    found = choose_delimiter(lines)
    if found is not None:
        delim, cols = found
        header = len(lines) >= 2 and len(lines[1].split(delim)) == cols and \
            all(_is_header_token(t) for t in lines[0].split(delim))
        base = 40 + 3 * min(cols, 12)
        matching = (delim == "," and csv_ext) or (delim == "\t" and tsv_ext)
        ext_bonus = 20 if matching else 0
        prefers_line = delim not in (",", "\t")
        name = "tsv" if delim == "\t" else "csv"
        d = _render_delim(delim)
        if header:
            ev = [f"delimiter={d};columns={cols};header=true",
                  "matching delimited extension" if ext_bonus else "header-shaped first row"]
            cands.append(_candidate(name, "csv", base + 25 + ext_bonus, ev))
        elif matching:
            ev = [f"delimiter={d};columns={cols};header=false",
                  "stable delimited columns with matching extension"]
            cands.append(_candidate(name, "csv", base + 28 + ext_bonus, ev))
        line_bonus = -10 if header else (24 if prefers_line else 8)
        score = base + line_bonus + (0 if header else ext_bonus // 2) + \
            (8 if line_ext and prefers_line else 0)
        ev = [f"delimiter={d};columns={cols};header=false",
              "header not trusted for line fallback" if header
              else "stable split columns without header"]
        if line_ext and prefers_line:
            ev.append("line-oriented extension")
        cands.append(_candidate("line_split", "line", score, ev))
    else:
        cands.append(_candidate("line_split", "line", 15,
                                ["no stable delimiter match", "fallback line split candidate"]))

    if csv_ext:
        cands.append(_candidate("csv", "csv", 55, ["csv extension fallback"]))
    if tsv_ext:
        cands.append(_candidate("tsv", "csv", 55, ["tsv extension fallback"]))
    if json_ext and not any(c["kind"] == "json" for c in cands):
        cands.append(_candidate("json_lines", "json", 58, ["json extension fallback"]))
    if jsonl_ext and not any(c["format"] == "json_lines" for c in cands):
        cands.append(_candidate("json_lines", "json", 60, ["jsonl/ndjson extension fallback"]))
    cands.sort(key=lambda c: -c["score"])  # stable, as upstream's small-array sort
    return cands


_FIRST_ELEMENT_LIMIT = 64 << 20


def _first_array_element_keys(path: str) -> list[str]:
    """The keys of the first element of a JSON array file, decoding only as much of the file
    as that element needs (a prefix that doubles until the element is complete, up to 64
    MiB), never the whole array."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = ""
    with open(path, "rb") as handle:
        size = 1 << 16
        while True:
            data = handle.read(size - len(text))
            at_end = not data
            text += decoder.decode(data, final=at_end)
            body = text.lstrip("\ufeff").lstrip(_SPACE)
            idx = 1
            while idx < len(body) and body[idx] in _SPACE:
                idx += 1
            if idx < len(body) and body[idx] == "]":
                return []
            try:
                obj, _ = _PROBE_DECODER.raw_decode(body, idx)
                break
            except RecursionError:
                raise SourceFormatError(
                    f"json probe cannot read {path}: the first array element is nested too "
                    f"deeply; flatten the data") from None
            except ValueError:
                if at_end or len(text) >= _FIRST_ELEMENT_LIMIT:
                    obj = None
                    break
            size = min(size * 2, _FIRST_ELEMENT_LIMIT)
    if not isinstance(obj, dict):
        raise SourceFormatError(
            f"json probe found no objects: {path} (the array's first element is not a "
            f"JSON object, or it is not complete within its first "
            f"{_FIRST_ELEMENT_LIMIT >> 20} MiB)")
    return list(obj.keys())


_PROBE_DECODER = json.JSONDecoder()


def _json_options(path: str) -> tuple[str, list[str]]:
    """(format, columns): ``[`` first means json_array; columns are the first object's keys."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff").lstrip(_SPACE)
    if not text:
        raise SourceFormatError(f"json probe found empty input: {path}")
    if text.startswith("["):
        return "json_array", _first_array_element_keys(path)
    for line in _sample_lines(path, 1):
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            return "json_lines", list(obj.keys())
        raise SourceFormatError(
            f"json probe found no objects: {path} (the first non-empty line is not a JSON "
            f"object)")
    raise SourceFormatError(f"json probe found empty input: {path}")


def line_options_for(path: str) -> dict:
    """Split-mode line options from a 2-line sample: delimiter (space if none is stable) and
    mappings ``c0..c{n-1}`` for the first line's fields."""
    lines = _sample_lines(path, 2)
    if not lines:
        raise SourceFormatError(f"line probe found empty input: {path}")
    found = choose_delimiter(lines)
    delim = found[0] if found else " "
    count = len(lines[0].split(delim))
    return {"mode": "split", "delimiter": delim,
            "mappings": [{"column": f"c{i}", "source_index": i} for i in range(count)]}


def _probe_binary(path: str) -> dict[str, Any] | None:
    """The probe dict of a file recognised by its magic bytes: Parquet, Arrow IPC and xlsx
    are read directly; compressed files and other archives are an error saying what the file
    is (instead of "invalid UTF-8")."""
    from .magic import FORMAT_NAMES, how_to_read, sniff_format

    fmt = sniff_format(path)
    if fmt is None:
        return None
    stem = os.path.splitext(os.path.basename(path))[0] or "input_table"
    kind = {"parquet": "parquet", "arrow": "arrow", "arrow_stream": "arrow",
            "xlsx": "excel"}.get(fmt)
    if kind is None:
        raise SourceFormatError(f"probe: {path} is {FORMAT_NAMES[fmt]}, not a text file; "
                                f"{how_to_read(fmt)}")
    if kind == "excel":
        from .excel_source import ExcelSource

        schema = list(ExcelSource(path).schema.names)
    else:
        from .parquet_source import ArrowIpcSource, ParquetSource

        schema = list((ParquetSource if kind == "parquet" else ArrowIpcSource)(path).schema.names)
    evidence = [f"magic bytes of {FORMAT_NAMES[fmt]}"]
    final = "arrow" if kind == "arrow" else fmt   # both IPC formats are read the same way
    return {"path": path, "kind": kind, "final_format": final, "score": 100,
            "confidence": "high", "schema": schema, "suggested_table_name": stem,
            "warnings": [], "candidates": [_candidate(final, kind, 100, evidence)]}


def probe_file(path: str) -> dict[str, Any]:
    """The upstream probe dict for ``path``."""
    check_readable_file(path, "cannot open file", allow_empty=True)
    binary = _probe_binary(path)
    if binary is not None:
        return binary
    lines = _sample_lines(path, 4)
    if not lines:
        raise SourceFormatError(
            f"probe found empty input: {path} (the file has no non-blank lines)")
    cands = _build_candidates(path, lines)
    top = cands[0]["score"] if cands else 0
    second = cands[1]["score"] if len(cands) > 1 else 0
    gap = top - second
    if top >= 90 and gap >= 15:
        confidence = "high"
    elif top >= 65 and gap >= 8:
        confidence = "medium"
    else:
        confidence = "low"
    warnings = []
    if not cands:
        warnings.append("probe found no candidates")
    if confidence == "low":
        warnings.append("probe confidence is low; consider explicit USING ... OPTIONS(...)")
    if len(cands) >= 2 and gap < 8:
        warnings.append("top probe candidates are close in score")
    if top < 40:
        warnings.append("probe selected a weak fallback candidate")
    best = cands[0]
    stem = os.path.splitext(os.path.basename(path))[0]
    if os.path.basename(path).startswith(".") and stem == "":
        stem = os.path.basename(path)
    result: dict[str, Any] = {
        "path": path, "kind": best["kind"], "final_format": best["format"],
        "score": best["score"], "confidence": confidence, "schema": [],
        "suggested_table_name": stem or "input_table", "warnings": warnings,
        "candidates": cands,
    }
    if best["kind"] == "json":
        fmt, columns = _json_options(path)
        result["schema"] = list(columns)
        result["format"] = fmt
        result["columns"] = list(columns)
    elif best["kind"] == "csv":
        from .csv_source import read_csv_header

        delim = "\t" if best["format"] == "tsv" else ","
        found = choose_delimiter(lines)
        if found is not None:
            delim = found[0]
        result["schema"] = read_csv_header(path, delim)
        result["delimiter"] = delim
    else:
        opts = line_options_for(path)
        result["schema"] = [m["column"] for m in opts["mappings"]]
        result.update(opts)
    return result


def source_from_probe(path: str, info: dict):
    """The source ``Session.read`` builds for a probe result."""
    kind = info["kind"]
    if kind in ("parquet", "arrow"):
        from .parquet_source import ArrowIpcSource, ParquetSource

        return (ParquetSource if kind == "parquet" else ArrowIpcSource)(path)
    if kind == "excel":
        from .excel_source import ExcelSource

        return ExcelSource(path)
    if kind == "csv":
        from .csv_source import CsvSource

        return CsvSource(path, delimiter=info["delimiter"])
    if kind == "json":
        from .json_source import JsonSource

        if not info["columns"]:
            raise SourceFormatError(
                f"json probe found no columns: {path} (the first object has no keys)")
        # every key of the file, not only the first object's (a later key is not dropped)
        return JsonSource(path, None, info["format"])
    from .line_source import LineSource

    return LineSource(path, [(m["column"], m["source_index"]) for m in info["mappings"]],
                      mode="split", split_delimiter=info["delimiter"])
