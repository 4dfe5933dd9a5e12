"""The C CSV typing scanner against its reference twin, and the CSV reader typed by the scanner
against the same reader typed by the Arrow pass (kinds, row counts, rows, errors)."""
from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import velaria
from velaria.errors import SourceFormatError
from velaria.io import csv_convert, csv_projection, csv_scan_typing, parsed_cache
from velaria.io.csv_source import CsvSource
from velaria.io.typed_source import clear_typing_cache
from velaria.reference.csv_typing import csv_column_kinds as reference_kinds

accel_typing = pytest.importorskip("velaria.accel.csv_typing")
pytestmark = pytest.mark.skipif(not accel_typing.c_available(),
                                reason="the C accelerator is not built")
c_kinds = accel_typing.csv_column_kinds

_TRICKY = ["0", "-0", "00", "007", "-007", "0.5", "-0.5", "-0.0", "00.5", "0e5", "5.", ".5",
           "1e3", "1E+3", "+5", "+0.5", "inf", "-inf", "nan", "1e400", "-1e400", "1e-400",
           "1.7976931348623157e308", "1.7976931348623159e308", "17976931348623157" + "0" * 292
           + ".0", "0." + "0" * 400 + "1e400", "1e5e5", "9223372036854775807",
           "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
           "99999999999999999999", "12345678901234567.5", "true", "TRUE", "True", "false",
           "FALSE", "null", "NA", "x", "-", "--1", ".", "e", "1e", " 5", "5 ", "0x10", "", "é",
           "日本", "0é", "2024-01-31", "2024-02-29", "2023-02-29", "0000-01-01", "2024-13-01",
           "2024-01-31 10:11:12", "2024-01-31T23:59:59.123456", "2024-01-31 24:00:00",
           "2024-01-31 10:11:12.1234567", "2024-1-31", "[1 2 3]", '"q"', 'a"b']
_CELL = st.one_of(st.sampled_from(_TRICKY), st.integers(-(10 ** 20), 10 ** 20).map(str),
                  st.floats(allow_nan=False).map(repr),
                  st.text(alphabet="0123456789-+.eE", min_size=1, max_size=6))
_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def csv_body(draw, ncols=None, delimiter=None):
    """(data bytes, ncols, delimiter): lines of cells, sometimes ragged or blank."""
    ncols = ncols or draw(st.integers(1, 4))
    delimiter = delimiter or draw(st.sampled_from([",", ";", "\t", "|"]))
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 15)) == 0:
            lines.append("")                                    # a blank line
            continue
        width = ncols if draw(st.integers(0, 20)) else draw(st.integers(1, ncols + 1))
        lines.append(delimiter.join(draw(_CELL) for _ in range(width)))
    ends = [draw(_ENDS) for _ in lines]
    text = "".join(line + end for line, end in zip(lines, ends))
    if text and draw(st.booleans()):
        text = text.rstrip("\r\n")                              # no line end at the end
    return text.encode("utf-8"), ncols, delimiter


def _agree(a, b):
    assert (a[0] == "ok") == (b[0] == "ok"), (a, b)
    if a[0] == "ok":
        assert a[1:] == b[1:], (a, b)


@settings(max_examples=500, deadline=None)
@given(body=csv_body(), dates=st.booleans(), simd=st.booleans(),
       nulls=st.sampled_from([[""], ["", "NA"], ["null"], []]))
def test_scanner_matches_its_reference(body, dates, simd, nulls):
    """With the AVX2 or the portable cell finder: the reference's status class, kinds, rows."""
    data, ncols, delimiter = body
    expected = reference_kinds(data, ncols, delimiter, nulls, dates)
    _agree(c_kinds(data, ncols, delimiter, nulls, dates, simd=simd), expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=csv_body(), dates=st.booleans())
def test_threads_split_big_buffers_at_line_ends(body, dates):
    """Several threads give one thread's kinds and rows (or decline, never another answer)."""
    data, ncols, delimiter = body
    assume(data and data[-1:] in (b"\n", b"\r"))
    copies = (1 << 21) // len(data) + 1              # over the scanner's threading threshold
    big = data * copies
    one = reference_kinds(data, ncols, delimiter, [""], dates)
    for threads in (2, 3):
        got = c_kinds(big, ncols, delimiter, [""], dates, threads=threads)
        if got[0] == "ok":
            assert one[0] == "ok" and got[1] == one[1] and got[2] == one[2] * copies
        elif got[0] == "reference":
            # a part may start past the cell that made a column text, and then meets a
            # possible vector the sequential scan skipped: the caller's other path decides
            assert b"[" in data
        else:  # which problem a part meets first may differ; that there is one may not
            assert one[0] != "ok", (got, one)


def test_statuses_name_what_the_scanner_cannot_type():
    assert c_kinds(b'1,"a"\n', 2)[0] == "quote"
    assert c_kinds(b"1,2\n3\n", 2)[0] == "ragged"
    assert c_kinds(b"1,\xff\n", 2)[0] == "utf8"
    assert c_kinds(b"1,\xe2\x82\n", 2)[0] == "utf8"            # cut multi-byte sequence
    assert c_kinds(b"1,[1 2]\n", 2)[0] == "reference"
    assert c_kinds(b"1,2\n", 2, delimiter="é")[0] == "reference"
    assert c_kinds(b"1,2\r\n\r\n-0,2.5\r", 2) == ("ok", ["int", "float"], 2, None)


def test_the_scanner_extends_kinds_chunk_by_chunk():
    status, kinds, rows, _ = c_kinds(b"1,x,\n", 3)
    assert (status, kinds, rows) == ("ok", ["int", "string", "null"], 1)
    assert c_kinds(b"2.5,7,true\n", 3, kinds=kinds)[:3] == ("ok", ["float", "string", "bool"], 1)


@settings(max_examples=300, deadline=None)
@given(body=csv_body(), simd=st.booleans(), data=st.data())
def test_the_cut_out_columns_match_the_reference(body, simd, data):
    """The kept columns' cells, each followed by the delimiter, one row per data line."""
    data_bytes, ncols, delimiter = body
    keep = sorted(data.draw(st.sets(st.integers(0, ncols - 1), min_size=1)))
    expected = reference_kinds(data_bytes, ncols, delimiter, [""], False, keep=keep)
    _agree(c_kinds(data_bytes, ncols, delimiter, [""], False, keep=keep, simd=simd), expected)


def test_cut_out_rows_are_never_empty_lines():
    assert c_kinds(b"1,\n,2\n", 2, keep=[1])[3] == b",\n2,\n"
    assert c_kinds(b"a,b,c\r\nd,e,f", 3, keep=[0, 2]) == \
        ("ok", ["string"] * 3, 2, b"a,c,\nd,f,\n")


def test_big_buffers_are_cut_out_the_same_on_several_threads():
    lines = b"".join(b"%d,x%d,%d.5\n" % (i, i, i) for i in range(200_000))
    one = c_kinds(lines, 3, keep=[0, 2], threads=1)
    assert one[0] == "ok" and one[3].count(b"\n") == 200_000
    assert c_kinds(lines, 3, keep=[0, 2], threads=3) == one


def test_pyarrow_copies_what_it_parses_out_of_its_input():
    """The chunked CSV scan reuses one input buffer for every chunk: safe only while the
    tables pyarrow parses out of it never point into it."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    data = bytearray(b"a,b,c\n" + b"".join(b"%d,x%d,%d.5\n" % (i, i, i) for i in range(5000)))
    table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(data)),
                           convert_options=pacsv.ConvertOptions(
                               column_types={"a": pa.int64(), "b": pa.string()}))
    before = table.to_pylist()
    start = pa.py_buffer(data).address
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                assert buffer is None or not start <= buffer.address < start + len(data)
    data[:] = b"9" * len(data)
    assert table.to_pylist() == before


# ---- the reader: scanner typing against the Arrow pass ----------------------------------

def _read(path, arrow: bool, monkeypatch, **options):
    clear_typing_cache()
    with monkeypatch.context() as patch:
        if arrow:
            patch.setattr(csv_scan_typing, "available", lambda: False)
        source = CsvSource(path, **options)
        try:
            kinds = source.column_kinds()
            stats = source.stats
            rows = [r for b in source.scan() for r in zip(*[c.to_pylist() for c in b.columns])]
        except SourceFormatError as exc:
            return "error", str(exc).split(":")[0], None, None
    return kinds, stats["rows"], rows, stats["typing_path"]


def _same_rows(a, b):
    def same(x, y):
        if isinstance(x, float) and isinstance(y, float):
            return (x == y and math.copysign(1, x) == math.copysign(1, y)) or x != x and y != y
        return x == y
    return len(a) == len(b) and all(len(r) == len(s) and all(map(same, r, s))
                                    for r, s in zip(a, b))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=csv_body(delimiter=","), header=st.booleans(), dates=st.booleans(),
       nulls=st.sampled_from([None, ["", "NA"]]), bom=st.booleans())
def test_reader_types_as_the_arrow_pass(tmp_path_factory, monkeypatch, body, header, dates,
                                        nulls, bom):
    data, ncols, _ = body
    names = ",".join(f"h{i}" for i in range(ncols))
    content = (b"\xef\xbb\xbf" if bom else b"") + (names.encode() + b"\n" if header else b"")
    content += data
    assume(content.strip(b"\r\n\xef\xbb\xbf"))
    path = tmp_path_factory.mktemp("scan") / "t.csv"
    path.write_bytes(content)
    options = dict(header=header, null_values=nulls, infer_dates=dates)
    if not header:
        options["column_names"] = [f"c{i}" for i in range(ncols)]
    try:
        arrow = _read(str(path), True, monkeypatch, **options)
    except UnicodeDecodeError:
        return
    fast = _read(str(path), False, monkeypatch, **options)
    assert fast[:2] == arrow[:2], (content, fast, arrow)
    if arrow[0] != "error":
        assert _same_rows(fast[2], arrow[2]), content
        assert arrow[3] == "arrow"


def test_a_plain_file_is_typed_by_the_scanner(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,x,d,b\n1,1.5,2024-01-31,true\n2,-0.0,2024-02-29,FALSE\n")
    source = CsvSource(str(path))
    assert source.column_kinds() == ["int", "float", "date", "bool"]
    assert source.stats["typing_path"] == "scan"
    assert source.stats["rows"] == 2


def test_a_quoted_file_falls_back_to_the_arrow_pass(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,x\n1,"a,b"\n2,"007"\n')
    source = CsvSource(str(path))
    assert source.column_kinds() == ["int", "string"]
    assert source.stats["typing_path"] == "arrow"
    assert [r for b in source.scan() for r in b.to_pylist()] == [
        {"id": 1, "x": "a,b"}, {"id": 2, "x": "007"}]


def test_errors_come_from_the_arrow_pass(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(SourceFormatError, match="line 3"):
        CsvSource(str(path)).column_kinds()
    path.write_bytes(b"a,b\n1,\xff\n")
    with pytest.raises(SourceFormatError, match="invalid UTF-8"):
        CsvSource(str(path)).column_kinds()


def test_given_column_types_are_not_classified(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("a,b\n007,1\n")
    source = CsvSource(str(path), column_types={"a": "STRING"})
    assert source.column_kinds() == ["string", "int"]
    assert source.stats["typing_path"] == "scan"


def test_first_scan_keeps_its_columns_for_a_reread(tmp_path, monkeypatch):
    clear_typing_cache()
    path = tmp_path / "k.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},x{i},{i / 4}\n" for i in range(1000)))
    calls = []
    original = CsvSource._read
    monkeypatch.setattr(CsvSource, "_read",
                        lambda self, *a, **k: calls.append(a[0]) or original(self, *a, **k))
    session = velaria.Session()
    session.create_temp_view("t", session.read_csv(str(path)))
    assert session.sql("SELECT SUM(a) AS s FROM t").to_rows()["rows"] == [[499500]]
    assert len(calls) == 1 and parsed_cache.held_bytes() > 0
    again = velaria.Session()
    again.create_temp_view("t", again.read_csv(str(path)))
    assert again.sql("SELECT SUM(a) AS s FROM t").to_rows()["rows"] == [[499500]]
    assert len(calls) == 1                       # served from what the first scan kept
    assert again.sql("SELECT COUNT(b) AS n FROM t").to_rows()["rows"] == [[1000]]
    assert len(calls) == 2                       # another column: parsed (and now kept)
    clear_typing_cache()


def test_a_file_that_shrinks_during_the_scan_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "s.csv"
    path.write_text("a\n" + "1\n" * 1000)
    real_fstat = csv_scan_typing.os.fstat

    class Bigger:
        def __init__(self, st):
            self.st_size = st.st_size + 100

    monkeypatch.setattr(csv_scan_typing.os, "fstat", lambda fd: Bigger(real_fstat(fd)))
    with pytest.raises(SourceFormatError, match="shrank while it was being read"):
        CsvSource(str(path)).column_kinds()


# ---- the scan: columns converted or cut out by the C scanner against pyarrow's parse ------

def _scan(path, need, how: str, monkeypatch, **options):
    """The rows of a scan of ``need``, ``how``: ``convert`` (the C converter first, as
    scans run), ``cut`` (columns cut out for pyarrow) or ``whole`` (pyarrow parses chunks)."""
    clear_typing_cache()
    with monkeypatch.context() as patch:
        if how != "convert":
            patch.setattr(csv_convert.ChunkConverter, "for_scan", lambda *a: None)
        if how == "whole":
            patch.setattr(csv_projection.ChunkProjector, "for_scan", lambda *a: None)
        try:
            source = CsvSource(path, **options)
            return [r for b in source.scan(need) for r in zip(*[c.to_pylist() for c in b.columns])]
        except SourceFormatError as exc:
            return str(exc)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=csv_body(delimiter=","), header=st.booleans(), data=st.data(),
       on_bad_lines=st.sampled_from(["error", "skip"]))
def test_scans_of_some_columns_read_what_the_whole_chunk_parse_reads(
        tmp_path_factory, monkeypatch, body, header, data, on_bad_lines):
    content, ncols, _ = body
    assume(ncols > 1)
    names = [f"h{i}" for i in range(ncols)]
    if header:
        content = (",".join(names) + "\n").encode() + content
    assume(content.strip(b"\r\n"))
    need = sorted(data.draw(st.sets(st.sampled_from(names), min_size=1, max_size=ncols - 1)))
    path = tmp_path_factory.mktemp("cut") / "t.csv"
    path.write_bytes(content)
    options = dict(header=header, on_bad_lines=on_bad_lines)
    if not header:
        options["column_names"] = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # skipped bad lines
        try:
            whole = _scan(str(path), need, "whole", monkeypatch, **options)
        except UnicodeDecodeError:
            return
        cut = _scan(str(path), need, "cut", monkeypatch, **options)
        converted = _scan(str(path), need, "convert", monkeypatch, **options)
    if isinstance(whole, str):
        assert cut == whole and converted == whole
    else:
        assert _same_rows(cut, whole) and _same_rows(converted, whole), content


def test_a_scan_of_some_columns_parses_only_what_the_scanner_cut_out(tmp_path, monkeypatch):
    clear_typing_cache()
    monkeypatch.setattr(csv_convert.ChunkConverter, "for_scan", lambda *a: None)
    monkeypatch.setenv("VELARIA_IO_CACHE_MB", "0")      # the typing walk converts nothing
    path = tmp_path / "c.csv"
    path.write_text("a,b,c,d\n" + "".join(f"{i},x{i},{i / 2},true\n" for i in range(3000)))
    cuts = []
    original = csv_projection.ChunkProjector.cut
    monkeypatch.setattr(csv_projection.ChunkProjector, "cut",
                        lambda self, data: cuts.append(len(data)) or original(self, data))
    rows = [r for b in CsvSource(str(path)).scan(["c", "a"]) for r in b.to_pylist()]
    assert rows[:2] == [{"c": 0.0, "a": 0}, {"c": 0.5, "a": 1}] and len(rows) == 3000
    assert cuts and sum(cuts) == path.stat().st_size - len("a,b,c,d\n")
    cuts.clear()
    assert len([r for b in CsvSource(str(path)).scan() for r in b.to_pylist()]) == 3000
    assert cuts == []                               # every column read: nothing to cut
    clear_typing_cache()
