"""Readers: csv, line (split/regex), json; reader equivalence with probed read; pushdown."""
from __future__ import annotations

import pathlib

import pytest

from velaria.io.base import PushedFilter
from velaria.io.typed_source import clear_typing_cache


from io_fakes import FakeSession  # noqa: E402


@pytest.fixture
def s():
    clear_typing_cache()
    return FakeSession()


def rows(source, columns=None, filters=()):
    return [r for b in source.scan(columns, filters) for r in b.to_pylist()]


def types(source):
    return [str(t) for t in source.schema.types]


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


# ---- csv -----------------------------------------------------------------------------------
def test_csv_basic_typing(s, tmp_path):
    p = write(tmp_path, "a.csv", "id,name,score,flag\n1,alice,0.5,true\n2,bob,2,FALSE\n")
    src = s.read_csv(str(p))
    assert src.schema.names == ["id", "name", "score", "flag"]
    assert types(src) == ["int64", "string", "double", "bool"]
    assert rows(src) == [{"id": 1, "name": "alice", "score": 0.5, "flag": True},
                         {"id": 2, "name": "bob", "score": 2.0, "flag": False}]


def test_csv_accepts_pathlike_bom_crlf_quotes(s, tmp_path):
    p = write(tmp_path, "b.csv", b'\xef\xbb\xbfk,v\r\n"a,b",1\r\n"say ""hi""\nthere",2\r\n')
    src = s.read_csv(pathlib.Path(p))
    assert src.schema.names == ["k", "v"]
    assert rows(src) == [{"k": "a,b", "v": 1}, {"k": 'say "hi"\nthere', "v": 2}]


def test_csv_other_delimiter_and_projection(s, tmp_path):
    p = write(tmp_path, "t.tsv", "a\tb\tc\n1\tx\t2.5\n3\ty\t4\n")
    src = s.read_csv(str(p), delimiter="\t")
    assert rows(src, ["c", "a"]) == [{"c": 2.5, "a": 1}, {"c": 4.0, "a": 3}]
    assert "pushed_columns=[c,a]" in src.describe(["c", "a"])


def test_csv_filter_pushdown_drops_rows(s, tmp_path):
    p = write(tmp_path, "f.csv", "x,y\n1,a\n5,b\n,c\n9,d\n")
    src = s.read_csv(str(p))
    got = rows(src, ["y"], [PushedFilter("x", ">", 2)])
    assert got == [{"y": "b"}, {"y": "d"}]
    assert "pushed_filters=[x>2]" in src.describe(["y"], [PushedFilter("x", ">", 2)])


def test_csv_count_star_scan_without_columns(s, tmp_path):
    p = write(tmp_path, "c.csv", "x,y\n1,a\n2,b\n3,c\n")
    src = s.read_csv(str(p))
    assert sum(b.num_rows for b in src.scan([])) == 3


def test_csv_header_only(s, tmp_path):
    p = write(tmp_path, "h.csv", "a,b\n")
    src = s.read_csv(str(p))
    assert types(src) == ["string", "string"]
    assert rows(src) == []


@pytest.mark.parametrize("text", ["a,b", "a,\"b\"", "\ufeffa,b"])
def test_csv_header_only_without_final_newline(s, tmp_path, text):
    # a file that is just a header line with no newline after it has no rows (pyarrow's
    # reader alone fails on it: "cannot infer number of columns")
    p = write(tmp_path, "h.csv", text)
    src = s.read_csv(str(p))
    assert types(src) == ["string", "string"]
    assert rows(src) == []
    assert sum(b.num_rows for b in src.scan(["a"])) == 0


@pytest.mark.parametrize("text", ["a,\"b", "a,\"b\n1,2\n"])
def test_csv_unterminated_quote_in_the_header_is_named(s, tmp_path, text):
    p = write(tmp_path, "h.csv", text)
    from velaria.errors import SourceFormatError

    with pytest.raises(SourceFormatError, match="the quote at line 1, column 3 is never closed"):
        rows(s.read_csv(str(p)))


def test_csv_cr_only_line_ends_keep_their_rows(s, tmp_path):
    p = write(tmp_path, "cr.csv", "a,b\r1,2\r3,4")
    assert rows(s.read_csv(str(p))) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_csv_large_file_streams_in_batches(s, tmp_path):
    n = 300_000
    p = tmp_path / "big.csv"
    with open(p, "w") as f:
        f.write("k,v\n")
        for i in range(n):
            f.write(f"g{i % 3},{i}\n")
        f.write("g0,007\n")  # the last row turns v into a string column
    src = s.read_csv(str(p))
    assert types(src) == ["string", "string"]
    batches = list(src.scan(["v"]))
    assert sum(b.num_rows for b in batches) == n + 1
    assert batches[-1].column(0)[-1].as_py() == "007"


def test_csv_same_file_same_schema_every_time(s, tmp_path):
    p = write(tmp_path, "same.csv", "a\n1\n2.5\n")
    first = s.read_csv(str(p)).schema
    clear_typing_cache()
    assert s.read_csv(str(p)).schema == first


def test_csv_on_bad_lines_skip_counts(s, tmp_path):
    p = write(tmp_path, "r.csv", "a,b\n1,2\n3\n4,5,6\n7,8\n")
    src = s.read_csv(str(p), on_bad_lines="skip")
    with pytest.warns(RuntimeWarning, match="skipped 2 bad line"):
        assert rows(src) == [{"a": 1, "b": 2}, {"a": 7, "b": 8}]
    assert src.stats["skipped_bad_lines"] == 2
    assert "skipped_bad_lines=2" in src.describe()


# ---- line ----------------------------------------------------------------------------------
def test_line_split(s, tmp_path):
    p = write(tmp_path, "l.txt", "1001|ok|12.5\n1003|true|null|C:\\\\logs\\\\app\n\n")
    src = s.read_line_file(str(p), [("id", 0), ("status", 1), ("v", 2), ("p", 3)],
                           split_delimiter="|")
    assert rows(src) == [
        {"id": 1001, "status": "ok", "v": 12.5, "p": None},
        {"id": 1003, "status": "true", "v": None, "p": "C:\\\\logs\\\\app"},
    ]


def test_line_regex_groups_and_unmatched(s, tmp_path):
    p = write(tmp_path, "r.log", "uid=7 action=click latency=11\ngarbage\nuid=8 action=open latency=3\n")
    src = s.read_line_file(str(p), [{"column": "uid", "source_index": 1}, ("action", 2),
                                    ("lat", 3), ("line", 0)],
                           mode="regex", regex_pattern=r"^uid=(\d+) action=(\w+) latency=(\d+)$")
    with pytest.warns(RuntimeWarning, match="1 of 3 line"):
        got = rows(src)
    assert got[0] == {"uid": 7, "action": "click", "lat": 11,
                      "line": "uid=7 action=click latency=11"}
    assert len(got) == 2
    assert src.stats["unmatched_lines"] == 1
    assert "unmatched_lines=1" in src.describe()


def test_line_no_leading_zero_rule_and_crlf(s, tmp_path):
    p = write(tmp_path, "z.txt", "007,a\r\n010,b\r\n")
    src = s.read_line_file(str(p), [("n", 0), ("t", 1)])
    assert rows(src) == [{"n": 7, "t": "a"}, {"n": 10, "t": "b"}]


def test_line_keep_empty_lines(s, tmp_path):
    p = write(tmp_path, "e.txt", "a\n\nb\n")
    src = s.read_line_file(str(p), [("x", 0)], skip_empty_lines=False)
    assert rows(src) == [{"x": "a"}, {"x": None}, {"x": "b"}]


# ---- json ----------------------------------------------------------------------------------
def test_json_lines_values(s, tmp_path):
    p = write(tmp_path, "j.jsonl",
              '{"user_id":3,"name":"al\\"ice","ok":true,"note":"line\\nnext","score":null}\n'
              '\n{"user_id":4,"name":"C:\\\\logs","ok":false,"score":1}\n')
    src = s.read_json(str(p), ["user_id", "name", "ok", "note", "score"])
    assert types(src) == ["int64", "string", "bool", "string", "int64"]
    assert rows(src) == [
        {"user_id": 3, "name": 'al"ice', "ok": True, "note": "line\nnext", "score": None},
        {"user_id": 4, "name": "C:\\logs", "ok": False, "note": None, "score": 1},
    ]


def test_json_nested_object_text_and_vectors(s, tmp_path):
    p = write(tmp_path, "n.jsonl", '{"a":2,"b":{"b1":2,"b2":["x",3,null]},"v":[1,2,3]}\n'
                                   '{"a":3,"b":null,"v":[4,5.5,6]}\n')
    src = s.read_json(str(p), ["a", "b", "v"])
    assert str(src.schema.field("v").type) == "fixed_size_list<item: float>[3]"
    got = rows(src)
    assert got[0]["b"] == '{"b1":2,"b2":["x",3,null]}'
    assert got[1]["v"] == [4.0, 5.5, 6.0]


def test_json_mixed_int_float_and_strings(s, tmp_path):
    p = write(tmp_path, "m.json", '[{"e":"open","cost":1.5,"x":"42"},{"e":"close","cost":2,"x":7}]')
    src = s.read_json(str(p), ["e", "cost", "x"], format="array")
    assert types(src) == ["string", "double", "string"]
    assert rows(src) == [{"e": "open", "cost": 1.5, "x": "42"}, {"e": "close", "cost": 2.0, "x": "7"}]


def test_json_int_overflow_becomes_float(s, tmp_path):
    p = write(tmp_path, "o.jsonl", '{"a":99999999999999999999}\n{"a":1}\n')
    src = s.read_json(str(p), ["a"])
    with pytest.warns(RuntimeWarning, match="do not fit int64"):
        assert types(src) == ["double"]


# ---- reader equivalence ---------------------------------------------------------------------
EQUIV_CASES = [
    ("users.csv", "user_id,name\n1,alice\n2,bob\n", "csv"),
    ("t.tsv", "a\tb\n1\tx\n2\ty\n", "csv"),
    ("pipe.csv", "1001|ok|12.5\n1002|fail|9.5\n", "line"),
    ("events.jsonl", '{"event":"open","cost":1.5}\n{"event":"close","cost":2}\n', "json"),
    ("arr", '[{"event":"open","cost":1.5},{"event":"close","cost":2}]', "json"),
    ("app.log", "hello world foo\nbar baz qux\n", "csv"),
    ("ragged.txt", "a b\nc\n", "line"),
]


@pytest.mark.parametrize("name,content,kind", EQUIV_CASES)
def test_probed_read_equals_explicit_reader(s, tmp_path, name, content, kind):
    p = write(tmp_path, name, content)
    info = s.probe(str(p))
    assert info["kind"] == kind
    probed = s.read(str(p))
    if kind == "csv":
        explicit = s.read_csv(str(p), delimiter=info["delimiter"])
    elif kind == "line":
        explicit = s.read_line_file(str(p), info["mappings"], mode="split",
                                    split_delimiter=info["delimiter"])
    else:
        explicit = s.read_json(str(p), info["columns"], format=info["format"])
    assert probed.schema == explicit.schema
    assert probed.schema.names == info["schema"]
    assert rows(probed) == rows(explicit)


def test_real_session_roundtrip(tmp_path):
    velaria = pytest.importorskip("velaria")
    try:
        session = velaria.Session()
        p = write(tmp_path, "q.csv", "k,v\na,1\nb,2\na,3\n")
        df = session.read_csv(str(p))
        out = df.to_rows()
    except (NotImplementedError, AttributeError, TypeError) as exc:  # Session still in progress
        pytest.skip(f"Session not ready: {exc}")
    assert out["schema"] == ["k", "v"]
    assert out["rows"] == [["a", 1], ["b", 2], ["a", 3]]
