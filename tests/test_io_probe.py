"""Probe: upstream's worked examples and the shape of its probe dict."""
from __future__ import annotations

import pytest

from velaria.errors import SourceFormatError, VelariaFileNotFoundError
import velaria
from velaria.io.probe import probe_file

BASE_KEYS = ["path", "kind", "final_format", "score", "confidence", "schema",
             "suggested_table_name", "warnings", "candidates"]


def probe(tmp_path, name, content):
    p = tmp_path / name
    p.write_text(content)
    return probe_file(str(p))


def cands(info):
    return [(c["format"], c["kind"], c["score"]) for c in info["candidates"]]


def test_users_csv(tmp_path):
    info = probe(tmp_path, "users.csv", "user_id,name\n1,alice\n2,bob")
    assert list(info)[:9] == BASE_KEYS and list(info)[9:] == ["delimiter"]
    assert (info["kind"], info["final_format"], info["score"], info["confidence"]) == \
        ("csv", "csv", 91, "high")
    assert info["delimiter"] == "," and info["schema"] == ["user_id", "name"]
    assert info["suggested_table_name"] == "users" and info["warnings"] == []
    assert [c["reason"] for c in info["candidates"]] == [
        "delimiter=,;columns=2;header=true; matching delimited extension",
        "csv extension fallback",
        "delimiter=,;columns=2;header=false; header not trusted for line fallback"]
    assert cands(info) == [("csv", "csv", 91), ("csv", "csv", 55), ("line_split", "line", 36)]
    assert list(info["candidates"][0]) == ["format", "kind", "score", "reason", "evidence"]


def test_pipe_csv_is_line(tmp_path):
    info = probe(tmp_path, "pipe.csv", "1001|ok|12.5\n1002|fail|9.5")
    assert (info["kind"], info["final_format"], info["score"], info["confidence"]) == \
        ("line", "line_split", 73, "medium")
    assert info["mode"] == "split" and info["delimiter"] == "|"
    assert info["schema"] == ["c0", "c1", "c2"]
    assert info["mappings"] == [{"column": f"c{i}", "source_index": i} for i in range(3)]
    assert info["candidates"][0]["reason"] == \
        "delimiter=|;columns=3;header=false; stable split columns without header"
    assert cands(info)[1] == ("csv", "csv", 55)
    assert list(info)[9:] == ["mode", "delimiter", "mappings"]


def test_pipe_no_extension(tmp_path):
    info = probe(tmp_path, "pipe", "1001|ok|12.5\n1002|fail|9.5")
    assert (info["final_format"], info["score"], info["confidence"], info["warnings"]) == \
        ("line_split", 73, "medium", [])


def test_jsonl(tmp_path):
    info = probe(tmp_path, "events.jsonl", '{"a":1,"b":2,"c":3}\n{"a":4,"b":5,"c":6}\n')
    assert (info["kind"], info["final_format"], info["score"], info["confidence"]) == \
        ("json", "json_lines", 100, "high")
    assert info["candidates"][0]["evidence"] == [
        "content starts with object", "newline-delimited objects", "jsonl/ndjson extension"]
    assert cands(info)[1] == ("line_split", "line", 57)
    assert info["schema"] == ["a", "b", "c"] and info["columns"] == ["a", "b", "c"]
    assert info["format"] == "json_lines" and info["suggested_table_name"] == "events"
    assert list(info)[9:] == ["format", "columns"]


def test_jsonl_no_extension_and_json_extension(tmp_path):
    info = probe(tmp_path, "events", '{"a":1,"b":2,"c":3}\n{"a":4,"b":5,"c":6}\n')
    assert cands(info)[:2] == [("json_lines", "json", 92), ("line_split", "line", 57)]
    assert info["confidence"] == "high"
    info = probe(tmp_path, "u.json", '{"a":1,"b":2,"c":3}\n{"a":4,"b":5,"c":6}\n')
    assert info["score"] == 100
    assert "jsonl/ndjson extension" not in info["candidates"][0]["evidence"]


def test_json_array_without_extension(tmp_path):
    info = probe(tmp_path, "arr", '[{"event":"open","cost":1.5},{"event":"close","cost":2}]')
    assert (info["final_format"], info["score"], info["confidence"]) == ("json_array", 94, "high")
    assert info["schema"] == ["event", "cost"] and info["format"] == "json_array"
    assert cands(info)[1] == ("line_split", "line", 60)


def test_tsv(tmp_path):
    info = probe(tmp_path, "t.tsv", "a\tb\n1\t2\n")
    assert cands(info) == [("tsv", "csv", 91), ("tsv", "csv", 55), ("line_split", "line", 36)]
    assert info["delimiter"] == "\t"
    assert info["candidates"][0]["evidence"][0] == "delimiter=\\t;columns=2;header=true"


def test_app_log_space_csv(tmp_path):
    info = probe(tmp_path, "app.log", "hello world foo\nbar baz qux")
    assert (info["kind"], info["score"], info["confidence"], info["delimiter"]) == \
        ("csv", 74, "medium", " ")
    assert info["schema"] == ["hello", "world", "foo"]
    assert info["candidates"][0]["evidence"][1] == "header-shaped first row"
    assert info["candidates"][1]["score"] == 47
    assert info["candidates"][1]["evidence"][-1] == "line-oriented extension"
    assert info["candidates"][1]["evidence"][0] == "delimiter=space;columns=3;header=false"


def test_single_word_low_confidence(tmp_path):
    info = probe(tmp_path, "one.txt", "single")
    assert (info["final_format"], info["score"], info["confidence"]) == ("line_split", 15, "low")
    assert info["warnings"] == ["probe confidence is low; consider explicit USING ... OPTIONS(...)",
                                "probe selected a weak fallback candidate"]


def test_ragged_txt(tmp_path):
    info = probe(tmp_path, "ragged.txt", "a b\nc")
    assert (info["score"], info["confidence"], info["schema"]) == (15, "low", ["c0", "c1"])
    assert info["delimiter"] == " "


def test_headerless_digits_look_like_header(tmp_path):
    info = probe(tmp_path, "h.csv", "1,alice\n2,bob")
    assert info["kind"] == "csv" and info["schema"] == ["1", "alice"]


def test_quoted_json_csv_low_confidence(tmp_path):
    info = probe(tmp_path, "q.csv", 'id,payload\n1,"{""a"":1,""b"":2}"\n2,"{""a"":3}"\n')
    assert (info["kind"], info["score"], info["confidence"]) == ("csv", 55, "low")
    assert len(info["warnings"]) == 1


def test_suggested_table_name(tmp_path):
    assert probe(tmp_path, "my-data.v2.csv", "a,b\n1,2")["suggested_table_name"] == "my-data.v2"


def test_probe_errors(tmp_path):
    with pytest.raises(VelariaFileNotFoundError, match="cannot open file: "):
        probe_file(str(tmp_path / "missing.csv"))
    with pytest.raises(FileNotFoundError):
        probe_file(str(tmp_path / "missing.csv"))
    with pytest.raises(VelariaFileNotFoundError, match="directory"):
        probe_file(str(tmp_path))
    (tmp_path / "blank.txt").write_text("\n  \n\t\n")
    with pytest.raises(SourceFormatError, match="probe found empty input: "):
        probe_file(str(tmp_path / "blank.txt"))
    with pytest.raises(RuntimeError):
        probe_file(str(tmp_path / "blank.txt"))


def test_read_of_a_probed_json_file_keeps_keys_the_first_object_lacks(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text('{"a":1,"b":"x"}\n{"a":2,"c":true}\n')
    df = velaria.Session().read(str(p))
    assert df.to_rows() == {"schema": ["a", "b", "c"], "rows": [[1, "x", None], [2, None, True]]}
