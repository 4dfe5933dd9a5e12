"""Parquet and Arrow IPC reading, binary formats recognised by magic bytes, CSV options
(header, null markers, explicit types, compression, globs), writers and COPY ... TO."""
from __future__ import annotations

import bz2
import gzip
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import velaria
from velaria.errors import (SourceFormatError, SQLSemanticError, SQLUnsupportedError,
                            VelariaError, VelariaFileNotFoundError, VelariaValueError)


@pytest.fixture
def s():
    return velaria.Session()


def table3000():
    return pa.table({"a": list(range(3000)), "s": [f"x{i}" for i in range(3000)]})


# ---- Parquet ---------------------------------------------------------------------------------
def test_read_parquet_file_with_projection_and_row_group_pruning(s, tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(table3000(), path, row_group_size=1000)
    frame = s.read_parquet(path)
    assert frame.count() == 3000
    s.create_temp_view("p", s.read_parquet(path))
    got = s.sql("SELECT s FROM p WHERE a >= 2998 ORDER BY s").to_rows()["rows"]
    assert got == [["x2998"], ["x2999"]]
    from velaria.io.parquet_source import ParquetSource
    from velaria.io.base import PushedFilter

    src = ParquetSource(str(path))
    batches = list(src.scan(["s"], [PushedFilter("a", ">=", 2500)]))
    assert sum(b.num_rows for b in batches) == 500
    assert batches[0].schema.names == ["s"]
    assert src.num_rows_hint() == 3000


def test_read_parquet_glob_and_directory(s, tmp_path):
    part = tmp_path / "parts"
    part.mkdir()
    pq.write_table(table3000().slice(0, 10), part / "p1.parquet")
    pq.write_table(table3000().slice(10, 5), part / "p2.parquet")
    assert s.read_parquet(part).count() == 15
    assert s.read_parquet(str(part / "*.parquet")).count() == 15
    s.sql(f"CREATE TABLE q USING parquet OPTIONS(path: '{part}')")
    assert s.sql("SELECT MAX(a) AS m FROM q").to_rows()["rows"] == [[14]]


def test_read_parquet_errors(s, tmp_path):
    with pytest.raises(VelariaFileNotFoundError, match="matches no file"):
        s.read_parquet(str(tmp_path / "*.parquet"))
    a = tmp_path / "a.parquet"
    b = tmp_path / "b.parquet"
    pq.write_table(pa.table({"x": [1]}), a)
    pq.write_table(pa.table({"x": ["text"]}), b)
    with pytest.raises(SourceFormatError, match="different schemas"):
        s.read_parquet(str(tmp_path / "*.parquet"))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(SourceFormatError, match="cannot read parquet file"):
        s.read_parquet(bad)


def test_read_arrow_ipc(s, tmp_path):
    import pyarrow.feather as feather

    path = tmp_path / "t.arrow"
    feather.write_feather(table3000(), path)
    assert s.read_arrow(path).count() == 3000
    assert s.probe(str(path))["kind"] == "arrow"
    assert s.read(path).count() == 3000


def test_read_arrow_ipc_stream_files(s, tmp_path):
    # the IPC stream format (``.arrows``; what pyarrow.ipc.new_stream and many tools write)
    # has no footer: it is read batch by batch, and every pushed filter runs on the rows read
    import pyarrow.ipc as ipc

    table = pa.table({"a": [1, None, 3, 4], "s": ["x", "y", None, "w"]})
    path = tmp_path / "t.arrows"
    with ipc.new_stream(path, table.schema) as writer:
        writer.write_table(table.slice(0, 2))
        writer.write_table(table.slice(2))
    assert s.read_arrow(path).to_arrow().equals(table)
    assert (s.probe(str(path))["kind"], s.read(path).count()) == ("arrow", 4)
    s.sql(f"CREATE TABLE st OPTIONS(path: '{path}')")
    assert s.sql("SELECT s FROM st WHERE a > 1").to_rows()["rows"] == [[None], ["w"]]
    with pytest.raises(SourceFormatError, match="Arrow IPC"):
        s.read_csv(path).count()
    ipc_file = tmp_path / "u.arrow"
    with ipc.new_file(ipc_file, table.schema) as writer:
        writer.write_table(table)
    both = s.read_arrow(str(tmp_path / "*.arrow*"))   # a stream and a file, one table
    assert both.count() == 8 and both.to_arrow().column("a").to_pylist()[4:] == [1, None, 3, 4]


# ---- probe by magic bytes --------------------------------------------------------------------
def test_probe_recognises_parquet_and_reads_it(s, tmp_path):
    path = tmp_path / "data.bin"
    pq.write_table(table3000(), path)
    info = s.probe(str(path))
    assert (info["kind"], info["final_format"], info["schema"]) == ("parquet", "parquet", ["a", "s"])
    assert info["confidence"] == "high"
    assert s.read(path).count() == 3000
    s.sql(f"CREATE TABLE t OPTIONS(path: '{path}')")
    assert s.sql("SELECT COUNT(*) AS c FROM t").to_rows()["rows"] == [[3000]]


def test_probe_recognises_xlsx(s, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.append(["k", "v"])
    book.active.append(["a", 1])
    path = tmp_path / "book"  # no extension: recognised by content
    book.save(path)
    info = s.probe(str(path))
    assert info["kind"] == "excel" and info["schema"] == ["k", "v"]
    assert s.read(path).to_rows()["rows"] == [["a", 1]]


@pytest.mark.parametrize("name, data, what", [
    ("x.gz", gzip.compress(b"a\n1\n"), "gzip-compressed"),
    ("x.zip", b"PK\x03\x04" + b"\0" * 30, "zip archive"),
])
def test_binary_files_are_named_not_invalid_utf8(s, tmp_path, name, data, what):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SourceFormatError, match=what):
        s.probe(str(path))
    with pytest.raises(SourceFormatError, match=f"not text: it is a.* {what}"):
        s.read_line_file(str(path), [("a", 0)]).count()


@pytest.mark.parametrize("name, data", [("x.csv.gz", gzip.compress(b"a\n1\n")),
                                        ("x.csv.bz2", bz2.compress(b"a\n1\n"))])
def test_probing_a_compressed_csv_says_how_to_read_it(s, tmp_path, name, data):
    # read_csv and USING csv detect the compression themselves: the advice must say so (it
    # told bzip2 users to decompress the file first)
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SourceFormatError, match=r"read_csv\(path\) .*USING csv") as info:
        s.sql(f"CREATE TABLE t OPTIONS(path: '{path}')")
    assert "decompress it first" not in str(info.value)
    assert s.read_csv(path).to_rows()["rows"] == [[1]]


# ---- CSV options -----------------------------------------------------------------------------
def test_csv_without_header(s, tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("1,x\n2,y\n")
    frame = s.read_csv(path, header=False)
    assert frame.columns == ["c0", "c1"]
    assert frame.to_rows()["rows"] == [[1, "x"], [2, "y"]]
    named = s.read_csv(path, header=False, column_names=["id", "name"])
    assert named.to_rows()["rows"][0] == [1, "x"]


def test_csv_null_markers(s, tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("a,b\n1,NA\nN/A,2\n3,4\n")
    frame = s.read_csv(path, null_values=["NA", "N/A"])
    assert [str(t) for t in frame.schema.types] == ["int64", "int64"]
    assert frame.to_rows()["rows"] == [[1, None], [None, 2], [3, 4]]


def test_csv_explicit_column_types(s, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("zip,amount\n007,1\n010,2\n")
    frame = s.read_csv(path, column_types={"amount": "DOUBLE"})
    assert [str(t) for t in frame.schema.types] == ["string", "double"]
    assert frame.to_rows()["rows"] == [["007", 1.0], ["010", 2.0]]
    bad = s.read_csv(path, column_types={"zip": "BOOLEAN"})
    with pytest.raises(SourceFormatError, match=r"invalid value '007'.*column_types \(zip\)"):
        bad.to_rows()
    with pytest.raises(TypeError, match="null_values must be a string or a list of strings"):
        s.read_csv(path, null_values=5)
    with pytest.raises(VelariaValueError, match="does not have"):
        s.read_csv(path, column_types={"nope": "int"})
    with pytest.raises(VelariaValueError, match="not a supported type"):
        s.read_csv(path, column_types={"zip": "decimal"})


@pytest.mark.parametrize("compress, name", [(gzip.compress, "d.csv.gz"),
                                            (bz2.compress, "d.csv.bz2")])
def test_csv_compressed_inferred(s, tmp_path, compress, name):
    path = tmp_path / name
    path.write_bytes(compress(b"a,b\n1,x\n2,\"y\nz\"\n"))
    assert s.read_csv(path).to_rows()["rows"] == [[1, "x"], [2, "y\nz"]]


def test_csv_zstd_and_explicit_compression(s, tmp_path):
    import pyarrow as pa

    path = tmp_path / "d.csv.zst"
    with pa.output_stream(str(path), compression="zstd") as out:
        out.write(b"a\n1\n2\n")
    assert s.read_csv(path, compression="zstd").count() == 2
    with pytest.raises(VelariaValueError, match="compression must be one of"):
        s.read_csv(path, compression="rar")
    with pytest.raises(SourceFormatError, match="cannot decompress"):
        s.read_csv(path, compression="gzip")


def test_csv_glob_unifies_int_and_float(s, tmp_path):
    (tmp_path / "a.csv").write_text("k,v\nx,1\n")
    (tmp_path / "b.csv").write_text("k,v\ny,2.5\n")
    frame = s.read_csv(str(tmp_path / "*.csv"))
    assert [str(t) for t in frame.schema.types] == ["string", "double"]
    assert frame.to_rows()["rows"] == [["x", 1.0], ["y", 2.5]]
    (tmp_path / "c.csv").write_text("k,v\nz,text\n")
    with pytest.raises(SourceFormatError, match="column_types"):
        s.read_csv(str(tmp_path / "*.csv")).schema


def test_csv_glob_column_without_values_takes_the_other_files_type(s, tmp_path):
    # a header-only file, or a column that is empty in one file, holds no evidence of a
    # type: it must not turn the files' int64 column into a clash with "string"
    (tmp_path / "a.csv").write_text("k,v\nx,1\n")
    (tmp_path / "b.csv").write_text("k,v\n")
    (tmp_path / "c.csv").write_text("k,v\ny,\n")
    (tmp_path / "d.csv").write_text("k,v\nz,2.5\n")
    frame = s.read_csv(str(tmp_path / "*.csv"))
    assert [str(t) for t in frame.schema.types] == ["string", "double"]
    assert frame.to_rows()["rows"] == [["x", 1.0], ["y", None], ["z", 2.5]]
    (tmp_path / "a.csv").unlink()
    (tmp_path / "d.csv").unlink()
    only_empty = s.read_csv(str(tmp_path / "*.csv"))   # no file has a value: text, as one file
    assert [str(t) for t in only_empty.schema.types] == ["string", "string"]


# ---- writers ---------------------------------------------------------------------------------
def sample(s):
    return s.create_dataframe_from_arrow(pa.table({
        "a": [1, 2, None], "s": ["x", "y,\"z\"\n", None], "f": [1.5, -0.0, 2.25]}))


def test_write_csv_round_trips(s, tmp_path):
    path = tmp_path / "o.csv"
    assert sample(s).write_csv(path) == 3
    assert s.read_csv(path).to_rows()["rows"] == sample(s).to_rows()["rows"]
    sample(s).write_csv(path, delimiter=";", header=False)
    assert s.read_csv(path, delimiter=";", header=False).count() == 3


def test_write_csv_nested_and_binary_columns_as_text(s, tmp_path):
    # CSV holds text: a struct or map becomes its compact JSON (how the JSON reader gives a
    # nested object), binary its base64 (as write_json writes it); pyarrow alone refused
    # both ("Unsupported Type", "Invalid UTF8 payload") without naming the column
    frame = s.create_dataframe_from_arrow(pa.table({
        "st": pa.array([{"x": 1, "y": "a,b"}, None], pa.struct([("x", pa.int64()),
                                                               ("y", pa.string())])),
        "m": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())),
        "b": pa.array([b"\x00\xff", None])}))
    assert frame.write_csv(tmp_path / "n.csv") == 2
    back = s.read_csv(tmp_path / "n.csv").to_rows()["rows"]
    assert back == [['{"x":1,"y":"a,b"}', '{"k":1}', "AP8="], [None, None, None]]


def test_write_parquet_and_json_round_trip(s, tmp_path):
    sample(s).write_parquet(tmp_path / "o.parquet")
    assert s.read_parquet(tmp_path / "o.parquet").to_arrow().equals(sample(s).to_arrow())
    sample(s).write_json(tmp_path / "o.jsonl")
    back = s.read_json(tmp_path / "o.jsonl", ["a", "s", "f"])
    assert back.to_rows()["rows"] == sample(s).to_rows()["rows"]


def test_writes_are_atomic(s, tmp_path, monkeypatch):
    path = tmp_path / "keep.csv"
    path.write_text("old\n")
    from velaria.io import writers

    def boom(table, tmp, delimiter, header):
        with open(tmp, "w") as handle:
            handle.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(writers, "_write_csv", boom)
    with pytest.raises(VelariaError, match="cannot write csv file .*disk full"):
        sample(s).write_csv(path)
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["keep.csv"]  # no temporary file left


def test_written_files_get_the_usual_permissions(s, tmp_path):
    # a new file gets 0666 less the umask, as open() would give it; a replaced file keeps
    # its mode (the temporary file behind the atomic rename must not leak its private 0600)
    old = os.umask(0o022)
    try:
        sample(s).write_csv(tmp_path / "new.csv")
        s.sql(f"COPY (SELECT 1 AS x) TO '{tmp_path / 'copy.parquet'}'")
    finally:
        os.umask(old)
    assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "copy.parquet").stat().st_mode & 0o777 == 0o644
    kept = tmp_path / "shared.jsonl"
    kept.write_text("{}\n")
    kept.chmod(0o664)
    sample(s).write_json(kept)
    assert kept.stat().st_mode & 0o777 == 0o664


def test_writing_to_a_symlink_replaces_the_file_it_points_to(s, tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "data.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(os.path.join("real", "data.csv"))
    sample(s).write_csv(link)
    assert link.is_symlink() and s.read_csv(real).count() == 3
    assert sorted(os.listdir(tmp_path / "real")) == ["data.csv"]   # no temporary file left


def test_write_errors(s, tmp_path):
    with pytest.raises(VelariaError, match="does not exist"):
        sample(s).write_csv(tmp_path / "missing" / "o.csv")
    with pytest.raises(VelariaValueError, match="compression must be one of"):
        sample(s).write_parquet(tmp_path / "o.parquet", compression="rar")


def test_write_json_nan_is_null_with_warning(s, tmp_path):
    frame = s.create_dataframe_from_arrow(pa.table({"f": [float("nan"), 1.0]}))
    with pytest.warns(RuntimeWarning, match="1 NaN/infinite"):
        frame.write_json(tmp_path / "n.jsonl")
    assert (tmp_path / "n.jsonl").read_text() == '{"f": null}\n{"f": 1.0}\n'


# ---- COPY ... TO -----------------------------------------------------------------------------
def test_copy_query_to_csv_parquet_json(s, tmp_path):
    s.create_temp_view("t", sample(s))
    out = s.sql(f"COPY (SELECT a, s FROM t WHERE a > 1) TO '{tmp_path}/o.csv' (FORMAT csv, HEADER)")
    assert out.to_rows()["rows"] == [[1, "copy done", 1]]
    assert s.read_csv(tmp_path / "o.csv").to_rows()["rows"] == [[2, 'y,"z"\n']]
    s.sql(f"COPY t TO '{tmp_path}/o.parquet'")
    assert s.read_parquet(tmp_path / "o.parquet").count() == 3
    s.sql(f"COPY t TO '{tmp_path}/o.out' (FORMAT 'json')")  # JSON is a reserved word unquoted
    assert len((tmp_path / "o.out").read_text().splitlines()) == 3


def test_copy_errors(s, tmp_path):
    s.create_temp_view("t", sample(s))
    with pytest.raises(SQLUnsupportedError, match="COPY ... FROM"):
        s.sql(f"COPY t FROM '{tmp_path}/o.csv'")
    with pytest.raises(SQLSemanticError, match="FORMAT must be one of"):
        s.sql(f"COPY t TO '{tmp_path}/o.x' (FORMAT xml)")
    with pytest.raises(SQLSemanticError, match="unknown option 'quoting'"):
        s.sql(f"COPY t TO '{tmp_path}/o.csv' (QUOTING 'all')")
    locked = velaria.Session(enable_external_access=False)
    with pytest.raises(SQLSemanticError, match="file access from SQL is disabled"):
        locked.sql(f"COPY (SELECT 1 AS x) TO '{tmp_path}/o.csv'")
    assert not (tmp_path / "o.csv").exists()


def test_create_table_csv_options(s, tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"1,NA\n2,x\n"))
    s.sql(f"CREATE TABLE t USING csv OPTIONS(path: '{path}', header: 'false', null_values: 'NA')")
    assert s.sql("SELECT c0, c1 FROM t ORDER BY c0").to_rows()["rows"] == [[1, None], [2, "x"]]
    with pytest.raises(SQLSemanticError, match="compression must be one of"):
        s.sql(f"CREATE TABLE u USING csv OPTIONS(path: '{path}', compression: 'rar')")


def test_csv_glob_refuses_materialization(s, tmp_path):
    (tmp_path / "a.csv").write_text("k\n1\n")
    with pytest.raises(VelariaValueError, match="materialization is for one file"):
        s.read_csv(str(tmp_path / "*.csv"), materialization=True)
