"""The C CSV converters (``csv_convert``: a scan's read columns straight into Arrow buffers;
``csv_type_convert``: the typing walk converting columns as it types them) against their
reference twins, their float parsing against Python's correctly rounded ``float()``, and the
reader using them against pyarrow's parse (the fast paths must run, and change nothing)."""
from __future__ import annotations

import math
import random

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from velaria.io import csv_convert, csv_scan_typing
from velaria.io.base import PushedFilter
from velaria.io.csv_source import CsvSource
from velaria.io.typed_source import clear_typing_cache
from velaria.reference import csv_typing as reference

from test_io_csv_scan_typing import _read, _same_rows, csv_body

accel = pytest.importorskip("velaria.accel.csv_typing")
pytestmark = pytest.mark.skipif(not accel.c_available(), reason="the C accelerator is not built")

_KINDS = ["int", "float", "bool", "date", "timestamp", "string", "null"]


def _rows(table):
    return None if table is None else [tuple(r.values()) for r in table.to_pylist()]


def _same_table(a, b):
    assert (a is None) == (b is None)
    if a is not None:
        assert a.schema == b.schema
        assert _same_rows(_rows(a), _rows(b))


@settings(max_examples=300, deadline=None)
@given(body=csv_body(), simd=st.booleans(), data=st.data(),
       nulls=st.sampled_from([[""], ["", "NA"], ["null", "-0"], []]))
def test_convert_matches_its_reference(body, simd, data, nulls):
    """Same status and, when ``ok``, the same values (NULLs, -0.0, extremes) and types."""
    raw, ncols, delimiter = body
    kinds = data.draw(st.lists(st.sampled_from(_KINDS + [None]), min_size=ncols,
                               max_size=ncols))
    want = reference.csv_convert(raw, ncols, kinds, delimiter, nulls)
    got = accel.csv_convert(raw, ncols, kinds, delimiter, nulls, simd=simd)
    # which problem the walk meets first may differ from the reference's (it checks quotes
    # and UTF-8 before any cell); that there is one may not
    assert (got[0] == "ok") == (want[0] == "ok"), (got[0], want[0])
    if want[0] == "ok":
        _same_table(got[1], want[1])


def _parts_table(parts, col):
    """One converted column over all parts, or None when a part was not converted."""
    arrays = []
    for _, columns in parts:
        kind, array = columns[col]
        if kind is None or array is None:
            return kind
        arrays.append(array)
    return pa.chunked_array(arrays)


@settings(max_examples=300, deadline=None)
@given(body=csv_body(), dates=st.booleans(), simd=st.booleans(), data=st.data(),
       nulls=st.sampled_from([[""], ["", "NA"], ["7"]]))
def test_type_convert_matches_its_reference(body, dates, simd, data, nulls):
    """The kinds and rows of the typing scan, and each converted column's kind and values."""
    raw, ncols, delimiter = body
    convert = sorted(data.draw(st.sets(st.integers(0, ncols - 1))))
    start = data.draw(st.lists(st.sampled_from(["null", "string", "int"]), min_size=ncols,
                               max_size=ncols))
    want = reference.csv_type_convert(raw, ncols, delimiter, nulls, dates, start,
                                      convert=convert)
    got = accel.csv_type_convert(raw, ncols, delimiter, nulls, dates, start, convert=convert,
                                 simd=simd)
    assert (got[0] == "ok") == (want[0] == "ok"), (got[0], want[0])
    if want[0] != "ok":
        return
    assert got[1:3] == want[1:3]
    assert len(got[3]) == len(want[3]) == 1              # small buffers: one part
    for (n_got, cols_got), (n_want, cols_want) in zip(got[3], want[3]):
        assert n_got == n_want
        for (kind_got, a_got), (kind_want, a_want) in zip(cols_got, cols_want):
            assert kind_got == kind_want, (raw, convert, cols_got, cols_want)
            assert (a_got is None) == (a_want is None)
            if a_got is not None:
                assert a_got.type == a_want.type
                assert _same_rows([(v,) for v in a_got.to_pylist()],
                                  [(v,) for v in a_want.to_pylist()])


def test_convert_statuses_and_values():
    data = b"1,a,0.5,true,2024-01-02,2024-01-02 10:11:12.5\n-0,,-0,FALSE,,2024-01-03\n"
    kinds = ["int", "string", "float", "bool", "date", "timestamp"]
    status, table = accel.csv_convert(data, 6, kinds)
    assert status == "ok" and table.column("c2").to_pylist()[1] == 0.0
    assert math.copysign(1, table.column("c2").to_pylist()[1]) == -1     # "-0" is -0.0
    assert table.column("c1").to_pylist() == ["a", None]
    assert [str(t) for t in table.schema.types] == \
        ["int64", "string", "double", "bool", "date32[day]", "timestamp[us]"]
    assert accel.csv_convert(b"007\n", 1, ["int"])[0] == "convert"       # the typing rules
    assert accel.csv_convert(b"inf\n", 1, ["float"])[0] == "convert"
    assert accel.csv_convert(b'1,"a"\n', 2, ["int", "string"])[0] == "quote"
    assert accel.csv_convert(b"1,2\n3\n", 2, ["int", None])[0] == "ragged"
    assert accel.csv_convert(b"1,\xff\n", 2, [None, "string"])[0] == "utf8"


def _float_texts():
    digits = st.text(alphabet="0123456789", min_size=1, max_size=25)
    decimal = st.builds(lambda s, a, b, e: f"{s}{a}.{b}" + (f"e{e}" if e is not None else ""),
                        st.sampled_from(["", "-", "+"]), digits, digits,
                        st.one_of(st.none(), st.integers(-340, 310)))
    return st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr),
                     st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.17g}"),
                     st.floats(allow_nan=False, allow_infinity=False).map(lambda x: f"{x:.3f}"),
                     decimal)


@settings(max_examples=800, deadline=None)
@given(texts=st.lists(_float_texts(), min_size=1, max_size=20))
def test_doubles_round_as_python_float(texts):
    """Correctly rounded, like Python's float() (and pyarrow's parser): the fast path (up to
    19 digits, exponent within 22) and strtod alike, ties and subnormals included."""
    texts = [t for t in texts if not math.isinf(float(t))]
    assume(texts)
    data = "".join(t + "\n" for t in texts).encode()
    # the typing walk reads integers as doubles once a decimal is among them
    for convert in (lambda: accel.csv_convert(data, 1, ["float"])[1].column(0),
                    lambda: _parts_table(accel.csv_type_convert(data + b"0.5\n", 1,
                                                                convert=[0])[3], 0)):
        got = convert().to_pylist()
        for text, value in zip(texts, got):
            want = float(text)
            assert value == want and math.copysign(1, value) == math.copysign(1, want), text


def _plain_number_texts():
    """Integers and decimals without exponent or leading zero, shorter than 19 bytes (the
    converters read these in one pass), with mantissas on both sides of 2^53."""
    head = st.integers(1, 9).map(str)
    tail = st.text(alphabet="0123456789", max_size=17)
    near = st.integers(2**53 - 40, 2**53 + 40).map(str)
    number = st.builds(lambda sign, a, b, point, c: f"{sign}{a}{b}" + (f".{c}" if point else ""),
                       st.sampled_from(["", "-"]), head, tail, st.booleans(),
                       st.text(alphabet="0123456789", max_size=17))
    return st.one_of(number, near, near.map(lambda t: t[:-3] + "." + t[-3:]))


@settings(max_examples=500, deadline=None)
@given(texts=st.lists(_plain_number_texts(), min_size=1, max_size=20), decimal_first=st.booleans())
def test_plain_numbers_read_in_one_pass_match_their_reference(texts, decimal_first):
    """The one-pass reading of plain numbers (int and float columns of both converters, the
    typing walk's int -> float change included) gives the reference's kinds and values."""
    if decimal_first:
        texts = ["0.5"] + texts
    data = "".join(t + "\n" for t in texts).encode()
    for kind in ("int", "float"):
        want = reference.csv_convert(data, 1, [kind])
        got = accel.csv_convert(data, 1, [kind])
        assert got[0] == want[0]
        if want[0] == "ok":
            _same_table(got[1], want[1])
    want = reference.csv_type_convert(data, 1, convert=[0])
    got = accel.csv_type_convert(data, 1, convert=[0])
    assert got[:3] == want[:3]
    assert [k for k, _ in got[3][0][1]] == [k for k, _ in want[3][0][1]]
    assert _same_rows([(v,) for v in got[3][0][1][0][1].to_pylist()],
                      [(v,) for v in want[3][0][1][0][1].to_pylist()])
    if got[1] == ["float"]:
        values = got[3][0][1][0][1].to_pylist()
        assert all(v == float(t) for v, t in zip(values, texts))


def test_doubles_near_ties_and_limits():
    texts = ["9007199254740993", "9007199254740993.0", "0.1", "2.2250738585072011e-308",
             "4.9406564584124654e-324", "2.4703282292062328e-324", "1.7976931348623157e308",
             "123456789012345678901234567890.0", "1e22", "1e23", "8.589973e9",
             "0." + "0" * 30 + "1",
             "1" + "0" * 22 + ".0", "5e-324", "-0.0", "0e999999999"]
    data = "".join(t + "\n" for t in texts).encode()
    got = accel.csv_convert(data, 1, ["float"])[1].column(0).to_pylist()
    assert got == [float(t) for t in texts]
    pyarrow_values = pacsv.read_csv(pa.py_buffer(data), pacsv.ReadOptions(column_names=["x"]),
                                    convert_options=pacsv.ConvertOptions(
                                        column_types={"x": pa.float64()})).column(0).to_pylist()
    assert got == pyarrow_values


def test_threads_convert_big_buffers_the_same():
    rng = random.Random(3)
    lines = b"".join(b"%d,x%d,%s,%s\n" % (i, i, repr(rng.random() * 1e6).encode(),
                                          b"" if i % 7 == 0 else b"true")
                     for i in range(150_000))
    kinds = ["int", "string", "float", "bool"]
    one = accel.csv_convert(lines, 4, kinds, threads=1)
    several = accel.csv_convert(lines, 4, kinds, threads=3)
    assert one[0] == several[0] == "ok" and several[1].column(0).num_chunks == 3
    assert several[1].equals(one[1])
    status, got_kinds, rows, parts = accel.csv_type_convert(lines, 4, threads=3,
                                                            convert=[0, 1, 2, 3])
    assert status == "ok" and got_kinds == kinds and rows == 150_000 and len(parts) == 3
    for col in range(4):
        assert _parts_table(parts, col).equals(one[1].column(col))


# ---- the reader -------------------------------------------------------------------------

def _bench_like(path, rows=20_000):
    rng = random.Random(11)
    cats = ["alpha", "beta", "gamma"]
    path.write_text("id,cat,value,qty,flag\n" + "".join(
        f"{i},{rng.choice(cats)},{round(rng.random() * 1000, 3)},{rng.randint(0, 99)},"
        f"{rng.random() < 0.5}\n".replace("True", "true").replace("False", "false")
        for i in range(rows)))


def _record_rereads(monkeypatch) -> list[str]:
    """Replace the two parsers a scan could read the file again with (pyarrow's reader and the
    chunk converter) by recorders: the list fills with "pyarrow" / "convert" if either runs."""
    calls: list[str] = []
    monkeypatch.setattr(pacsv, "read_csv", lambda *a, **k: calls.append("pyarrow"))
    monkeypatch.setattr(csv_convert.ChunkConverter, "convert",
                        lambda *a: calls.append("convert") or ("reference", None))
    return calls


def test_a_cold_scan_converts_in_the_typing_walk_and_parses_nothing_else(tmp_path,
                                                                         monkeypatch):
    """The scan that asks for the typing gets its columns from the typing walk: neither the
    converter nor pyarrow reads the file again, and the rows are pyarrow's."""
    path = tmp_path / "b.csv"
    _bench_like(path)
    clear_typing_cache()
    calls = _record_rereads(monkeypatch)
    source = CsvSource(str(path))
    got = [r for b in source.scan(["cat", "value"], [PushedFilter("qty", ">", 10)])
           for r in b.to_pylist()]
    assert calls == [] and source.stats["typing_path"] == "scan"
    monkeypatch.undo()
    want = pacsv.read_csv(str(path)).filter(pa.compute.greater(pa.compute.field("qty"), 10))
    assert got == want.select(["cat", "value"]).to_pylist()


def test_a_scan_after_typing_runs_the_c_converter(tmp_path):
    path = tmp_path / "b.csv"
    _bench_like(path)
    clear_typing_cache()
    source = CsvSource(str(path))
    source.column_kinds()                       # typed first: nothing converted on the way
    got = pa.Table.from_batches(list(source.scan(["value", "id", "flag"])))
    assert source.chunk_parsers["c"] >= 1 and source.chunk_parsers["pyarrow"] == 0
    want = pacsv.read_csv(str(path)).select(["value", "id", "flag"])
    assert got.equals(want)


def test_a_column_that_changes_kind_late_is_parsed_again(tmp_path, monkeypatch):
    """A column whose cells in an early chunk are of another kind than the column's final
    type was not converted into that type: the scan parses it from the file."""
    monkeypatch.setattr(csv_scan_typing, "_CHUNK_BYTES", 4096)
    path = tmp_path / "late.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},{i},x{i}\n" for i in range(3000))
                    + "2.5,007,y\n" + "".join(f"{i},{i},{i}\n" for i in range(100)))
    clear_typing_cache()
    source = CsvSource(str(path))
    got = pa.Table.from_batches(list(source.scan(["a", "b", "c"])))
    assert [str(t) for t in got.schema.types] == ["double", "string", "string"]
    want = pacsv.read_csv(str(path), convert_options=pacsv.ConvertOptions(
        column_types={"a": pa.float64(), "b": pa.string(), "c": pa.string()}))
    assert got.equals(want)
    assert got.column("a").to_pylist()[-1] == 99.0 and got.column("b").to_pylist()[0] == "0"


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=csv_body(delimiter=","), header=st.booleans(), dates=st.booleans(),
       nulls=st.sampled_from([None, ["", "NA"]]), data=st.data())
def test_a_scan_typing_the_file_reads_what_pyarrow_reads(tmp_path_factory, monkeypatch, body,
                                                         header, dates, nulls, data):
    """A scan that types the file (converting as it types) against the Arrow pass and
    pyarrow's parse: same kinds, rows and errors."""
    raw, ncols, _ = body
    names = [f"h{i}" for i in range(ncols)]
    content = ((",".join(names) + "\n").encode() if header else b"") + raw
    assume(content.strip(b"\r\n"))
    path = tmp_path_factory.mktemp("fused") / "t.csv"
    path.write_bytes(content)
    options = dict(header=header, null_values=nulls, infer_dates=dates)
    if not header:
        options["column_names"] = names
    need = sorted(data.draw(st.sets(st.sampled_from(names), min_size=1)))
    try:
        arrow = _read(str(path), True, monkeypatch, **options)
    except UnicodeDecodeError:
        return
    clear_typing_cache()
    try:
        source = CsvSource(str(path), **options)
        rows = [r for b in source.scan(need) for r in zip(*[c.to_pylist() for c in b.columns])]
    except Exception as exc:  # noqa: BLE001 - compared with the Arrow pass's outcome
        assert arrow[0] == "error", (content, exc)
        return
    assert arrow[0] != "error", content
    index = [names.index(n) for n in need]
    assert _same_rows(rows, [tuple(r[i] for i in index) for r in arrow[2]]), content


def test_a_file_too_big_for_the_budget_keeps_its_first_part(tmp_path, monkeypatch):
    """The typing walk converts while its arrays fit the budget; the scan reads that first
    part from memory and the rest of the file from the byte where it ends."""
    monkeypatch.setattr(csv_scan_typing, "_CHUNK_BYTES", 8192)
    monkeypatch.setenv("VELARIA_IO_RETAIN_MB", "0.1")
    path = tmp_path / "big.csv"
    _bench_like(path, rows=30_000)
    clear_typing_cache()
    source = CsvSource(str(path))
    got = pa.Table.from_batches(list(source.scan(["value", "cat"],
                                                 [PushedFilter("qty", ">", 10)])))
    batches, cols, until = source._prefix
    assert 0 < until < path.stat().st_size and len(batches) > 1
    want = pacsv.read_csv(str(path)).filter(pa.compute.greater(pa.compute.field("qty"), 10))
    assert got.equals(want.select(["value", "cat"]))
    # another scan of the same columns reads the first part from memory again; one of
    # another column parses the whole file
    assert pa.Table.from_batches(list(source.scan(["cat"]))).column(0).to_pylist() == \
        pacsv.read_csv(str(path)).column("cat").to_pylist()
    assert pa.Table.from_batches(list(source.scan(["id"]))).column(0).to_pylist() == \
        list(range(30_000))
    # a new reader of the unchanged file finds the first part in the parsed-file cache
    again = CsvSource(str(path))
    assert pa.Table.from_batches(list(again.scan(["value", "cat"],
                                                 [PushedFilter("qty", ">", 10)]))).equals(got)
    assert again._prefix is not None and again._prefix[2] == until


@pytest.mark.parametrize("columns", [None, ["name"]])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_data_line_starting_with_a_bom_character_keeps_it_on_every_parser(
        tmp_path, monkeypatch, columns, quoted):
    """pyarrow drops a UTF-8 BOM at the start of its input: right at the file's start, wrong
    at a chunk's start inside the file, where U+FEFF is data (the C converter keeps it)."""
    from velaria.io import csv_source

    # every line starts with U+FEFF, and so does every name: whichever line a chunk starts at
    lines = [f"\ufeff{i},\ufeffn{i}" for i in range(400)]
    if quoted:
        lines[300] = '\ufeff300,"\ufeffq"'   # from here pyarrow's streaming reader reads on
    path = tmp_path / "b.csv"
    path.write_bytes(("\ufeffid,name\n" + "\n".join(lines) + "\n").encode())
    monkeypatch.setattr(csv_source, "_CHUNK_BYTES", 256)   # many chunks inside the file
    monkeypatch.setattr(csv_convert.ChunkConverter, "convert", lambda *a: ("reference", None))
    clear_typing_cache()
    source = CsvSource(str(path))
    source.column_kinds()
    got = pa.Table.from_batches(list(source.scan(columns)))
    assert got.column("name").to_pylist()[:3] == ["\ufeffn0", "\ufeffn1", "\ufeffn2"]
    assert all(v.startswith("\ufeff") for v in got.column("name").to_pylist())
    assert got.num_rows == 400
    if columns is None:             # the file's own BOM is not part of the header's first name
        assert got.column_names == ["id", "name"]
        assert all(v.startswith("\ufeff") for v in got.column("id").to_pylist())
    assert source.chunk_parsers["pyarrow"] >= 1


def test_minus_zero_integers_before_the_first_decimal_stay_minus_zero():
    """The typing walk keeps a number column as int64 until its first decimal, then turns
    the integers so far into doubles: every ``-0`` among them (more than the first growth of
    the list that notes them) becomes -0.0 as pyarrow parses it, as in the reference."""
    lines = [f"{i},{'-0' if i % 3 == 0 else i}" for i in range(60)] + ["60,0.5", "61,-0"]
    data = ("\n".join(lines) + "\n").encode()
    for impl in (accel, reference):
        status, kinds, _, parts = impl.csv_type_convert(data, 2, ",", [""], True, None, 1, [1])
        assert status == "ok" and kinds == ["int", "float"]
        (rows, [(kind, array)]), = parts
        want = pacsv.read_csv(pa.py_buffer(b"a,b\n" + data))["b"].to_pylist()
        got = array.to_pylist()
        assert kind == "float" and rows == 62 and got == want
        assert [math.copysign(1, v) for v in got] == [math.copysign(1, v) for v in want]


@pytest.mark.parametrize("first_null", [0, 1, 7, 8, 9, 63, 64, 65, 1000])
def test_validity_from_the_first_null_on(first_null):
    """The converters write validity bits only from a column's first NULL on (the rows
    before it marked valid at once): every row's validity and value still match the
    reference, whichever row the first NULL is in (byte and word edges included)."""
    values = {"int": "12", "float": "1.5", "bool": "true", "date": "2024-02-29",
              "timestamp": "2024-02-29 10:11:12", "string": "ab"}
    rows = []
    for i in range(1100):
        null = i == first_null or (i > first_null and i % 5 == 0)
        rows.append(",".join("" if null else values[k] for k in values))
    data = ("\n".join(rows) + "\n").encode()
    kinds = list(values)
    want = reference.csv_convert(data, len(kinds), kinds)
    got = accel.csv_convert(data, len(kinds), kinds)
    assert got[0] == want[0] == "ok"
    _same_table(got[1], want[1])
    assert got[1].column(0).null_count == 1 + sum(1 for i in range(first_null + 1, 1100)
                                                   if i % 5 == 0)
    convert = list(range(len(kinds)))
    want = reference.csv_type_convert(data, len(kinds), convert=convert)
    got = accel.csv_type_convert(data, len(kinds), convert=convert)
    assert got[:3] == want[:3]
    for (kind_got, a_got), (kind_want, a_want) in zip(got[3][0][1], want[3][0][1]):
        assert kind_got == kind_want and a_got.type == a_want.type
        assert _same_rows([(v,) for v in a_got.to_pylist()], [(v,) for v in a_want.to_pylist()])
        assert a_got.null_count == a_want.null_count
        a_got.validate(full=True)
