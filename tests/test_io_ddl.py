"""CREATE TABLE ... [USING csv|line|json] OPTIONS(path: ...) -> TableSource."""
from __future__ import annotations

import pytest

from velaria.errors import SqlError, VelariaFileNotFoundError
from velaria.io.ddl import create_table_source
from velaria.io.typed_source import clear_typing_cache


def rows(src):
    return [r for b in src.scan() for r in b.to_pylist()]


@pytest.fixture(autouse=True)
def _clear():
    clear_typing_cache()


def test_probed_kind_without_using(tmp_path):
    p = tmp_path / "users.csv"
    p.write_text("user_id,name\n1,alice\n")
    src = create_table_source(None, {"path": str(p)}, [])
    assert src.kind == "csv" and rows(src) == [{"user_id": 1, "name": "alice"}]


def test_using_overrides_probing(tmp_path):
    p = tmp_path / "pipe.csv"
    p.write_text("1001|ok|12.5\n1002|fail|9.5\n")
    assert create_table_source(None, {"path": str(p)}, []).kind == "line"
    src = create_table_source("CSV", {"path": str(p), "delimiter": "|"}, [])
    assert src.kind == "csv" and src.schema.names == ["1001", "ok", "12.5"]


def test_using_csv_takes_a_glob_or_a_directory_like_read_csv(tmp_path):
    import velaria

    d = tmp_path / "parts"
    d.mkdir()
    (d / "a.csv").write_text("k;v\nx;1\n")
    (d / "b.csv").write_text("k;v\ny;2.5\n")
    s = velaria.Session()
    want = s.read_csv(str(d / "*.csv"), delimiter=";").to_rows()
    for i, path in enumerate([d / "*.csv", d]):
        s.sql(f"CREATE TABLE t{i} USING csv OPTIONS(path: '{path}', delimiter: ';')")
        assert s.sql(f"SELECT * FROM t{i}").to_rows() == want
    with pytest.raises(VelariaFileNotFoundError, match="matches no file"):
        create_table_source("csv", {"path": str(d / "*.tsv")}, [])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VelariaFileNotFoundError, match=r"\(the directory holds no file\)"):
        create_table_source("csv", {"path": str(tmp_path / "empty")}, [])


def test_line_options(tmp_path):
    p = tmp_path / "a.log"
    p.write_text("u1 click 3\nu2 view 4\n")
    src = create_table_source("line", {"path": str(p), "mode": "split", "delimiter": " ",
                                       "mappings": "uid:0,cost:2"}, [])
    assert rows(src) == [{"uid": "u1", "cost": 3}, {"uid": "u2", "cost": 4}]
    src = create_table_source("line", {"path": str(p), "split_delimiter": " ",
                                       "columns": "a,b,c"}, [])
    assert src.schema.names == ["a", "b", "c"]
    src = create_table_source("line", {"path": str(p), "mode": "regex",
                                       "regex_pattern": r"(\w+) (\w+) (\d+)",
                                       "mappings": "user:1,n:3"}, [])
    assert rows(src)[1] == {"user": "u2", "n": 4}
    src = create_table_source("line", {"path": str(p), "delimiter": " "}, ["x", "y", "z"])
    assert src.schema.names == ["x", "y", "z"]


def test_json_options(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text('[{"a":1,"b":"x"}]')
    src = create_table_source("json", {"path": str(p), "format": "array", "columns": "b"}, [])
    assert rows(src) == [{"b": "x"}]
    q = tmp_path / "e.jsonl"
    q.write_text('{"a":1,"b":"x"}\n')
    assert create_table_source("json", {"path": str(q)}, []).schema.names == ["a", "b"]


@pytest.mark.parametrize("provider,options,declared,message", [
    ("orc", {}, [], "CREATE TABLE type/provider must be csv, line, or json"),
    (None, {}, [], "CREATE TABLE missing option: path"),
    ("csv", {"delimiter": ""}, [], "CREATE TABLE option delimiter cannot be empty"),
    ("line", {"mode": "grep"}, [], "CREATE TABLE option mode must be split or regex"),
    ("line", {"mode": "regex"}, [], "CREATE TABLE regex line source requires OPTIONS(regex_pattern: '...')"),
    ("line", {"mappings": "a0"}, [], "CREATE TABLE option mappings must use column:index pairs"),
    ("line", {"mappings": "a:x"}, [], "CREATE TABLE option mappings contains invalid source index: x"),
    ("json", {"format": "xml"}, [], "CREATE TABLE option format must be json_lines or json_array"),
    ("csv", {}, ["a"], "CREATE TABLE column count does not match source schema"),
    ("csv", {}, ["a", "c"], "CREATE TABLE column mismatch: expected b, got c"),
    ("json", {}, [], "CREATE TABLE json source requires columns or OPTIONS(columns: 'name1,name2,...')"),
])
def test_errors(tmp_path, provider, options, declared, message):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    opts = dict(options)
    if message != "CREATE TABLE missing option: path":
        opts["path"] = str(p)
    with pytest.raises(SqlError) as info:
        create_table_source(provider, opts, declared)
    assert message in str(info.value)


def test_line_requires_columns_when_probe_is_not_line(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(SqlError, match="CREATE TABLE line source requires columns"):
        create_table_source("line", {"path": str(p)}, [])


def test_missing_path_file(tmp_path):
    with pytest.raises(VelariaFileNotFoundError, match="cannot open file: "):
        create_table_source("csv", {"path": str(tmp_path / "none.csv")}, [])


def test_json_table_without_columns_keeps_every_key(tmp_path):
    """Without a column list a JSON table has every key of the file, in first-appearance
    order, as read_json(columns=None) does: a key the first object lacks is not dropped."""
    q = tmp_path / "e.jsonl"
    q.write_text('{"a":1,"b":"x"}\n{"a":2,"c":true}\n')
    for provider in ("json", None):               # USING json, and a probed table
        src = create_table_source(provider, {"path": str(q)}, [])
        assert src.schema.names == ["a", "b", "c"]
        assert rows(src) == [{"a": 1, "b": "x", "c": None}, {"a": 2, "b": None, "c": True}]
