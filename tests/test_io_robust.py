"""Crashes, unbounded memory and trust at the file edges: each test failed (or crashed the
process) before the fix it guards."""
from __future__ import annotations

import json
import os
import stat
import warnings

import pyarrow as pa
import pytest

import velaria
from velaria.errors import SourceFormatError, SQLSemanticError, VelariaError, VelariaValueError
from velaria.io import csv_source, materialize
from velaria.io.typed_source import clear_typing_cache

from io_fakes import FakeSession


def rows(src, columns=None):
    return [r for b in src.scan(columns) for r in b.to_pylist()]


# ---- a file that shrinks while it is read is an error, not SIGBUS -----------------------------
def test_csv_truncated_during_scan_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_source, "_CHUNK_BYTES", 4096)
    monkeypatch.setenv("VELARIA_IO_RETAIN_MB", "0")  # the scan must read the file again
    path = tmp_path / "rotating.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(5000)))
    clear_typing_cache()
    src = FakeSession().read_csv(str(path))
    assert src.schema.names == ["a", "b"]
    scan = src.scan()
    next(scan)
    os.truncate(path, 100)  # log rotation with copytruncate
    with pytest.raises(SourceFormatError, match="shrank while it was being read"):
        list(scan)


# ---- per-user, private cache directory; foreign entries are never served -----------------------
posix_user = pytest.mark.skipif(not hasattr(os, "getuid"), reason="needs POSIX users")


@posix_user
def test_default_cache_root_is_per_user_and_private(tmp_path, monkeypatch):
    monkeypatch.setattr(materialize.tempfile, "gettempdir", lambda: str(tmp_path))
    root = materialize.default_materialization_root()
    assert root.endswith(f"-{os.getuid()}")
    os.makedirs(root, mode=0o777)
    os.chmod(root, 0o777)
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    src = FakeSession().read_csv(str(csv), materialization=True)
    assert rows(src) == [{"a": 1}]
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


@posix_user
def test_cache_root_symlink_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    with pytest.raises(VelariaError, match="not a directory owned by the current user"):
        FakeSession().read_csv(str(csv), materialization_dir=str(link))


@posix_user
@pytest.mark.parametrize("default_root", [True, False])
def test_cache_root_owned_by_another_user_is_refused(tmp_path, monkeypatch, default_root):
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    monkeypatch.setattr(materialize.tempfile, "gettempdir", lambda: str(tmp_path))
    root = materialize.default_materialization_root() if default_root else str(tmp_path / "cache")
    os.makedirs(root, mode=0o700)
    me = os.getuid()
    if me == 0:          # root can give the directory away for real
        os.chown(root, 12345, 12345)
    else:                # otherwise the process pretends to be someone else
        monkeypatch.setattr(materialize.os, "getuid", lambda: me + 1)
    kwargs = {"materialization": True} if default_root else {"materialization_dir": root}
    with pytest.raises(VelariaError, match="not a directory owned by the current user"):
        FakeSession().read_csv(str(csv), **kwargs)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to chown")
def test_entry_owned_by_another_user_is_rebuilt(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    cache = tmp_path / "cache"
    rows(FakeSession().read_csv(str(csv), materialization_dir=str(cache)))
    entry = next(p for p in cache.iterdir())
    meta = entry / "meta.txt"
    data = entry / "table.bin"
    # a planted entry: valid-looking, but written by someone else
    os.chown(meta, 12345, 12345)
    os.chown(data, 12345, 12345)
    src = FakeSession().read_csv(str(csv), materialization_dir=str(cache))
    assert rows(src) == [{"a": 1}]
    assert src.cache_status == "rebuilt"
    assert os.stat(entry / "meta.txt").st_uid == os.getuid()


# ---- cache robustness ----------------------------------------------------------------------
def _entry(cache):
    return next(p for p in cache.iterdir())


@pytest.mark.parametrize("damage", ["meta_is_dir", "data_is_dir", "entry_is_file"])
def test_wrong_entry_layout_is_rebuilt(tmp_path, damage):
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n2\n")
    cache = tmp_path / "cache"
    rows(FakeSession().read_csv(str(csv), materialization_dir=str(cache)))
    entry = _entry(cache)
    if damage == "meta_is_dir":
        os.unlink(entry / "meta.txt")
        (entry / "meta.txt").mkdir()
    elif damage == "data_is_dir":
        os.unlink(entry / "table.bin")
        (entry / "table.bin").mkdir()
    else:
        for f in entry.iterdir():
            os.unlink(f)
        entry.rmdir()
        entry.write_text("not a directory")
    src = FakeSession().read_csv(str(csv), materialization_dir=str(cache))
    assert rows(src) == [{"a": 1}, {"a": 2}]
    assert src.cache_status in ("built", "rebuilt")


def test_formats_sharing_a_directory_keep_each_others_data(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    cache = tmp_path / "cache"
    rows(FakeSession().read_csv(str(csv), materialization_dir=str(cache)))
    entry = _entry(cache)
    assert (entry / "table.bin").exists()
    rows(FakeSession().read_csv(str(csv), materialization_dir=str(cache),
                                materialization_format="parquet"))
    # the binary file another process may be reading is still there
    assert (entry / "table.bin").exists() and (entry / "table.parquet").exists()


def test_cache_in_memory_holds_no_mapping_of_the_entry(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("a\n" + "".join(f"{i}\n" for i in range(1000)))
    cache = tmp_path / "cache"
    src = FakeSession().read_csv(str(csv), materialization_dir=str(cache), cache_in_memory=True)
    assert len(rows(src)) == 1000
    data = _entry(cache) / "table.bin"
    with open(data, "r+b") as handle:  # another process rewriting the file in place
        handle.write(b"\0" * os.path.getsize(data))
    assert [r["a"] for r in rows(src)] == list(range(1000))


def test_materialized_scan_streams_batches(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("a\n" + "".join(f"{i}\n" for i in range(200_000)))
    cache = tmp_path / "cache"
    src = FakeSession().read_csv(str(csv), materialization_dir=str(cache))
    sizes = [b.num_rows for b in src.scan(None, (), 50_000)]
    assert sum(sizes) == 200_000 and max(sizes) <= 65_536
    assert src.num_rows_hint() is None  # nothing held in memory


def test_unwritable_cache_dir_falls_back_with_warning(tmp_path, monkeypatch):
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    cache = tmp_path / "cache"
    src = FakeSession().read_csv(str(csv), materialization_dir=str(cache))

    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(materialize, "_prepare_entry", fail)
    with pytest.warns(RuntimeWarning, match="could not write the materialization cache"):
        assert rows(src) == [{"a": 1}]
    assert src.cache_status == "unwritable"


# ---- probing never decodes a whole JSON array; nesting is a clear error ----------------------
def test_probe_json_array_decodes_only_the_first_element(tmp_path, monkeypatch):
    path = tmp_path / "big.json"
    with open(path, "w") as handle:
        handle.write("[" + ",".join(json.dumps({"id": i, "pad": "x" * 100})
                                    for i in range(20000)) + "]")
    decoded = []
    real = velaria.io.probe._PROBE_DECODER.raw_decode

    def spy(text, idx=0):
        decoded.append(len(text))
        return real(text, idx)

    monkeypatch.setattr(velaria.io.probe._PROBE_DECODER, "raw_decode", spy)
    info = velaria.Session().probe(str(path))
    assert info["columns"] == ["id", "pad"]
    assert max(decoded) <= 1 << 16 < os.path.getsize(path)


@pytest.mark.parametrize("name, content", [
    ("deep.json", "[" + '{"a":' * 5000 + "1" + "}" * 5000 + "]"),
    ("deep.jsonl", '{"a":' + "[" * 100000 + "\n"),
])
def test_deeply_nested_json_is_a_velaria_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(VelariaError):
        velaria.Session().probe(str(path))
    fmt = "json_array" if name.endswith(".json") else "json_lines"
    with pytest.raises(SourceFormatError, match="nested too deeply|malformed"):
        velaria.Session().read_json(str(path), ["a"], format=fmt).count()


def test_huge_first_csv_line_is_not_read_whole(tmp_path):
    path = tmp_path / "one_line.csv"
    with open(path, "w") as handle:
        handle.write("x" * (20 << 20))
    with pytest.raises(SourceFormatError, match="longer than 16 MiB|field larger"):
        velaria.Session().read_csv(str(path))


# ---- bare exceptions become VelariaError subclasses ------------------------------------------
def test_truncated_multibyte_at_end_of_csv(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes(b"a,b\n1,2\n\xe4")
    with pytest.raises(SourceFormatError, match="invalid UTF-8 .* line 3"):
        velaria.Session().read_csv(str(path)).to_rows()


def test_nanosecond_timestamps_in_to_rows():
    s = velaria.Session()
    whole = s.create_dataframe_from_arrow(pa.table({"t": pa.array([1000], pa.timestamp("ns"))}))
    assert whole.to_rows()["rows"][0][0].microsecond == 1
    frame = s.create_dataframe_from_arrow(pa.table({"t": pa.array([1], pa.timestamp("ns"))}))
    with pytest.raises(VelariaValueError, match="column 't' holds nanosecond.*to_arrow"):
        frame.to_rows()
    assert frame.to_arrow().column(0)[0].value == 1


# ---- SQL may be kept away from files -----------------------------------------------------------
def test_external_access_off_forbids_file_tables(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    locked = velaria.Session(enable_external_access=False)
    with pytest.raises(SQLSemanticError, match="file access from SQL is disabled"):
        locked.sql(f"CREATE TABLE t OPTIONS(path: '{path}')")
    locked.create_temp_view("t", locked.read_csv(str(path)))  # the application may
    assert locked.sql("SELECT a FROM t").to_rows()["rows"] == [[1]]
    with pytest.raises(TypeError):
        velaria.Session(enable_external_access="no")


@pytest.mark.parametrize("sql", [
    "CREATE SOURCE TABLE s (a BIGINT) USING csv OPTIONS(path: '{dir}')",
    "CREATE SINK TABLE k (a BIGINT) USING csv OPTIONS(path: '{dir}/out.csv')",
    "COPY (SELECT 1 AS a) TO '{dir}/copy.csv'",
])
def test_external_access_off_covers_stream_tables_and_copy(tmp_path, sql):
    locked = velaria.Session(enable_external_access=False)
    with pytest.raises(SQLSemanticError, match="file access from SQL is disabled"):
        locked.sql(sql.format(dir=tmp_path))
    assert locked.tables() == [] and sorted(os.listdir(tmp_path)) == []


# ---- user regexes cannot hang the process --------------------------------------------------------
@pytest.mark.parametrize("pattern", [r"^(a+)+b$", r"(a*)*c", r"(\w+\s?)*$", r"(x+x+)+y",
                                     # alternatives matching the same text; Python's parser
                                     # factors a|aa into a(?:|a), hiding it in an empty branch
                                     r"^(a|aa)+$", r"^(a|a)*b$", r"(a|ab|b)*c", r"(a?|b)+c",
                                     r"(.*,)*x"])
def test_exponential_regex_is_rejected(tmp_path, pattern):
    path = tmp_path / "a.log"
    path.write_text("a" * 40 + "\n")
    with pytest.raises(VelariaValueError, match="exponential time"):
        velaria.Session().read_line_file(str(path), [("x", 1)], mode="regex",
                                         regex_pattern=pattern)


def test_a_hidden_ambiguity_is_refused_before_any_line_is_read(tmp_path):
    # a non-ASCII line is matched by Python's re (backtracking); this pattern would take
    # about 2**28 steps on it
    path = tmp_path / "a.log"
    path.write_text("a" * 28 + "\u00e9!\n")
    with pytest.raises(VelariaValueError, match="alternatives that can match the same text"):
        velaria.Session().read_line_file(str(path), [("x", 0)], mode="regex",
                                         regex_pattern=r"^(a|a)*b$")


@pytest.mark.parametrize("pattern", [r"^uid=(\d+) action=(\w+)$", r"(GET|POST) (\S+)",
                                     r"(\d{1,3}\.){3}(\d{1,3})", r"(?>a+)+(b)", r"\[(.*?)\] (\w+)",
                                     # repetitions that can split a line only one way
                                     r"(\d+,)*(\d+)", r"(\S+ )+(\S+)", r"([^,]+,)*(x)", r"(x|xy)+$",
                                     r"(\w+\s)*(\w+)$", r"(\d+(\.\d+)?,)*(\d+)"])
def test_ordinary_regexes_are_accepted(tmp_path, pattern):
    path = tmp_path / "a.log"
    path.write_text("x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        velaria.Session().read_line_file(str(path), [("x", 1)], mode="regex",
                                         regex_pattern=pattern).count()


def test_a_data_record_longer_than_a_read_block_is_a_clear_error(tmp_path):
    """A 20 MiB cell in a data line: the error names the file, the line and what to do,
    not the parser's block-size internals."""
    path = tmp_path / "long_cell.csv"
    with open(path, "w") as handle:
        handle.write("a,b\n1,short\n2,")
        handle.write("x" * (20 << 20))
        handle.write("\n3,z\n")
    with pytest.raises(SourceFormatError) as info:
        velaria.Session().read_csv(str(path)).count()
    message = str(info.value)
    assert "line 3" in message and str(path) in message and "MiB" in message
    assert "straddl" not in message and "block size" not in message
