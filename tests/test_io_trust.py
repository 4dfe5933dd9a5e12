"""Reading must never lose, stale-serve or silently change data: each test here failed
before the fix it guards."""
from __future__ import annotations

import os
import shutil
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import velaria
from velaria.errors import SourceFormatError, SQLSemanticError, VelariaError
from velaria.io import typed_source


@pytest.fixture
def session():
    return velaria.Session()


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


# ---- Arrow export keeps every row -------------------------------------------------------
def test_arrow_c_array_exports_every_chunk(session, tmp_path):
    path = str(tmp_path / "three_groups.parquet")
    table = pa.table({"x": list(range(3000))})
    pq.write_table(table, path, row_group_size=1000)
    parts = pq.ParquetFile(path)
    frame = session.create_dataframe_from_arrow(
        pa.Table.from_batches([b for b in parts.iter_batches(batch_size=1000)]))
    assert frame.to_arrow().num_rows == 3000
    struct = pa.array(frame)  # goes through __arrow_c_array__
    assert len(struct) == 3000
    assert struct.field("x").to_pylist() == list(range(3000))


def test_arrow_c_array_of_polars(session):
    pl = pytest.importorskip("polars")
    chunked = pa.Table.from_batches([pa.record_batch({"a": [1, 2]}),
                                     pa.record_batch({"a": [3, 4, 5]})])
    frame = session.create_dataframe_from_arrow(chunked)
    assert pl.DataFrame(frame).height == 5
    # polars makes a struct Series of any non-pyarrow exporter: every row is still there
    series = pl.from_arrow(frame)
    assert len(series) == 5 and series.struct.field("a").to_list() == [1, 2, 3, 4, 5]
    assert pl.from_arrow(frame.to_arrow()).height == 5


# ---- CSV: an unterminated quote is an error naming its line --------------------------------
def test_csv_unterminated_quote_names_line(session, tmp_path):
    path = write(tmp_path, "q.csv", 'a,b\n1,"abc\n2,3\n4,5\n')
    with pytest.raises(SourceFormatError, match=r"unterminated quoted field.*line 2, column 3"):
        session.read_csv(path).to_rows()


def test_csv_unterminated_quote_at_last_line(session, tmp_path):
    path = write(tmp_path, "q.csv", 'a,b\n1,2\n3,"open')
    with pytest.raises(SourceFormatError, match="line 3"):
        session.read_csv(path).count()


@pytest.mark.parametrize("content, rows", [
    ('a,b\n1,"ab""c"\n2,"x\ny"\n', [[1, 'ab"c'], [2, "x\ny"]]),
    ('a,b\nx"y,2\n3,4\n', [['x"y', 2], ["3", 4]]),        # a mid-field quote is a character
    ('a,b\n1,""""\n', [[1, '"']]),
])
def test_csv_closed_quotes_still_read(session, tmp_path, content, rows):
    path = write(tmp_path, "ok.csv", content)
    assert session.read_csv(path).to_rows()["rows"] == rows


def test_unterminated_quote_found_across_read_chunks(tmp_path, monkeypatch):
    from velaria.io import csv_quotes
    monkeypatch.setattr(csv_quotes, "_READ_BYTES", 7)
    body = 'a,b\n1,"x""y"\n2,"long\nvalue"\n3,"never closed\n4,5\n'
    path = write(tmp_path, "c.csv", body)
    at = csv_quotes.find_unterminated_quote(path, 0, ",")
    assert at == body.index('"never')
    closed = write(tmp_path, "d.csv", 'a,b\n1,"x""y"\n2,"long\nvalue"\n')
    assert csv_quotes.find_unterminated_quote(closed, 0, ",") is None


# ---- Excel: the real extent, not the <dimension> record ------------------------------------
def _stale_dimension_book(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "name"])
    for i in range(10):
        sheet.append([i, f"n{i}"])
    good = tmp_path / "good.xlsx"
    book.save(good)
    bad = tmp_path / "stale.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                import re
                data, n = re.subn(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:A3"/>', data)
                assert n == 1
            dst.writestr(item, data)
    return str(bad)


def test_excel_rows_beyond_stale_dimension(session, tmp_path):
    path = _stale_dimension_book(tmp_path)
    frame = velaria.read_excel(session, path)
    assert frame.columns == ["id", "name"]
    assert frame.count() == 10


def test_excel_cells_beyond_the_header_row_are_kept(session, tmp_path):
    """A data cell right of the last header cell is a column named ``Unnamed: <i>`` (as
    pandas names it), not silently dropped; earlier rows are NULL there."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["a", "b"])
    sheet.append([1, "x"])
    sheet.append([2, "y", None, 99])
    path = str(tmp_path / "wide.xlsx")
    book.save(path)
    frame = velaria.read_excel(session, path)
    assert frame.to_rows() == {"schema": ["a", "b", "Unnamed: 2", "Unnamed: 3"],
                               "rows": [[1, "x", None, None], [2, "y", None, 99]]}


def test_excel_formula_without_cached_value_warns(session, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["a", "b"])
    sheet.append([1, "=A2+1"])
    path = str(tmp_path / "f.xlsx")
    book.save(path)
    with pytest.warns(RuntimeWarning, match="1 formula cell.*no saved result"):
        rows = velaria.read_excel(session, path).to_rows()["rows"]
    assert rows == [[1, None]]


def test_excel_damaged_sheet_xml_is_a_velaria_error(session, tmp_path):
    path = _stale_dimension_book(tmp_path)
    broken = str(tmp_path / "broken.xlsx")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    with pytest.raises(VelariaError, match="excel file"):
        velaria.read_excel(session, broken).to_rows()


# ---- stale results: fingerprint and cached typing -----------------------------------------
def test_same_size_same_mtime_rewrite_is_seen(session, tmp_path):
    path = write(tmp_path, "s.csv", "a,b\n1,2\n")
    assert session.read_csv(path).to_rows()["rows"] == [[1, 2]]
    st = os.stat(path)
    write(tmp_path, "s.csv", "a,b\nx,y\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # what cp -p / rsync -t do
    assert os.stat(path).st_size == st.st_size
    fresh = velaria.Session()
    assert fresh.read_csv(path).to_rows()["rows"] == [["x", "y"]]


def test_replaced_by_copy_with_preserved_times(session, tmp_path):
    path = write(tmp_path, "r.csv", "a\n1\n")
    assert session.read_csv(path).count() == 1
    other = write(tmp_path, "other.csv", "a\nz\n")
    shutil.copy2(other, path)
    assert velaria.Session().read_csv(path).to_rows()["rows"] == [["z"]]


def test_stale_cached_typing_is_retyped(tmp_path):
    path = write(tmp_path, "t.csv", "a,b\n1,x\n2,y\n")
    source = velaria.Session().read_csv(path)
    assert source.schema.field("a").type == pa.int64()
    # simulate contents changing in a way no fingerprint can see: the cache says int, the
    # file now holds text in that column
    key = next(k for k in typed_source._TYPING_CACHE if k[1].abs_path == os.path.abspath(path))
    kinds, stats = typed_source._TYPING_CACHE[key]
    typed_source._TYPING_CACHE[key] = (["int", "int"], stats)
    with pytest.raises(SourceFormatError, match="changed after its schema was read"):
        velaria.Session().read_csv(path).to_rows()
    # the stale entry is gone: the next session reads the file correctly
    assert velaria.Session().read_csv(path).to_rows()["rows"] == [[1, "x"], [2, "y"]]


# ---- CREATE TABLE never replaces rows silently; unknown options are errors ------------------
def test_create_table_using_csv_does_not_replace_memory_table(session, tmp_path):
    path = write(tmp_path, "c.csv", "a\n1\n")
    session.sql("CREATE TABLE t (a INT)")
    session.sql("INSERT INTO t VALUES (7)")
    with pytest.raises(VelariaError, match="table already exists: t"):
        session.sql(f"CREATE TABLE t USING csv OPTIONS(path: '{path}')")
    assert session.sql("SELECT a FROM t").to_rows()["rows"] == [[7]]


def test_create_table_unknown_option_did_you_mean(session, tmp_path):
    path = write(tmp_path, "c.csv", "a;b\n1;2\n")
    with pytest.raises(SQLSemanticError, match="unknown option 'delimeter'.*did you mean 'delimiter'"):
        session.sql(f"CREATE TABLE t USING csv OPTIONS(path: '{path}', delimeter: ';')")


# ---- regex line files say when lines do not match -----------------------------------------
def test_regex_unmatched_lines_warn(session, tmp_path):
    path = write(tmp_path, "app.log", "ERROR disk full\nINFO ok\n")
    with pytest.warns(RuntimeWarning, match=r"none of the 2 line\(s\).*fully matched"):
        frame = session.read_line_file(path, [("level", 1)], mode="regex",
                                       regex_pattern=r"(\w+)")
        assert frame.count() == 0
    with pytest.warns(RuntimeWarning, match=r"1 of 2 line\(s\).*did not fully match"):
        frame = session.read_line_file(path, [("level", 1)], mode="regex",
                                       regex_pattern=r"(ERROR) .*")
        assert frame.to_rows()["rows"] == [["ERROR"]]


def test_explain_reports_what_the_file_scan_did(session, tmp_path):
    log = write(tmp_path, "app.log", "uid=1 action=a extra\nuid=2 action=b\n")
    with pytest.warns(RuntimeWarning, match="did not fully match"):
        frame = session.read_line_file(log, [("uid", 1), ("action", 2)], mode="regex",
                                       regex_pattern=r"uid=(\d+) action=(\w+)")
        session.create_temp_view("logs", frame)
        query = session.sql("SELECT uid FROM logs WHERE uid > 0")
        assert query.count() == 1
    text = query.explain()
    assert f"file: path={log} mode=regex" in text
    assert "unmatched_lines=1" in text and "parser=" in text
    assert text.count("uid>0") == 1                      # the pushdown is said once

    bad = write(tmp_path, "bad.csv", "a,b\n1,2\n3\n4,5\n")
    with pytest.warns(RuntimeWarning):
        skipped = session.read_csv(bad, on_bad_lines="skip")
        assert skipped.count() == 2
    assert "skipped_bad_lines=1" in skipped.explain()

    cached = session.read_csv(write(tmp_path, "m.csv", "a\n1\n"), materialization_dir=str(tmp_path / "c"))
    cached.count()
    assert "cache=built" in cached.explain()
    in_memory = session.create_dataframe_from_arrow(pa.table({"a": [1]}))
    assert "file:" not in in_memory.explain()


# ---- lossy conversions: no infinity from text, lost digits are reported ---------------------
def test_csv_number_beyond_double_stays_text(session, tmp_path):
    path = write(tmp_path, "big.csv", "x\n1.5\n1e400\n")
    frame = session.read_csv(path)
    assert frame.schema.field("x").type == pa.string()
    assert frame.to_rows()["rows"] == [["1.5"], ["1e400"]]


def test_json_number_beyond_double_stays_text(session, tmp_path):
    path = write(tmp_path, "big.jsonl", '{"x": 1e400}\n{"x": 2.5}\n')
    frame = session.read_json(path, ["x"])
    assert frame.to_rows()["rows"] == [["1e400"], ["2.5"]]


def test_json_big_int_warns_digits_lost(session, tmp_path):
    path = write(tmp_path, "o.jsonl", '{"a":99999999999999999999}\n{"a":1}\n')
    with pytest.warns(RuntimeWarning, match="1 integer.*do not fit int64"):
        assert session.read_json(path, ["a"]).schema.field("a").type == pa.float64()


@pytest.mark.parametrize("sql, match", [
    ("SELECT 1e400 AS x", "out of range for DOUBLE"),
    ("SELECT 99999999999999999999 AS x", "would lose digits"),
])
def test_sql_literals_never_lose_data_silently(session, sql, match):
    with pytest.raises(SQLSemanticError, match=match):
        session.sql(sql)


def test_sql_big_integer_literal_exact_as_double(session):
    assert session.sql("SELECT 18446744073709551616 AS x").to_rows()["rows"] == [[2.0 ** 64]]
