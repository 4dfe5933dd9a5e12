"""Bad input: clear errors of the documented classes, with upstream texts plus location."""
from __future__ import annotations

import os

import pytest

from velaria.errors import SourceFormatError, VelariaError, VelariaFileNotFoundError, VelariaValueError
from velaria.io.typed_source import clear_typing_cache


from io_fakes import FakeSession  # noqa: E402


@pytest.fixture
def s():
    clear_typing_cache()
    return FakeSession()


def scan_all(src):
    return [r for b in src.scan() for r in b.to_pylist()]


def test_missing_file_each_reader(s, tmp_path):
    missing = str(tmp_path / "nope.csv")
    for call, text in [(lambda: s.read_csv(missing), "cannot open csv file: "),
                       (lambda: s.read_line_file(missing, [("a", 0)]), "cannot open line file: "),
                       (lambda: s.read_json(missing, ["a"]), "cannot open json file: "),
                       (lambda: s.read(missing), "cannot open file: "),
                       (lambda: s.probe(missing), "cannot open file: ")]:
        with pytest.raises(VelariaFileNotFoundError, match=text) as info:
            call()
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, RuntimeError)
        assert missing in str(info.value)


@pytest.mark.parametrize("text, fmt, where", [
    ('{"a":"x\\ud800y"}\n', "json_lines", "line 1, column 8"),      # typed as a date candidate
    ('{"a":1}\n{"a":"\\\\ud800 \\udc00"}\n', "json_lines", "line 2, column 15"),
    ('[{"a":"ok \\ud83d\\ude00"},\n {"a":"\\udbff!"}]', "json_array", "line 2, column 8"),
])
def test_unpaired_surrogate_escape_is_named_with_its_place(s, tmp_path, text, fmt, where):
    # UTF-8 cannot hold half a surrogate pair: a clear error, never a bare UnicodeEncodeError
    p = tmp_path / "s.json"
    p.write_text(text)
    for infer_dates in (True, False):
        clear_typing_cache()
        with pytest.raises(SourceFormatError, match=f"unpaired surrogate escape at {where}"):
            scan_all(s.read_json(str(p), format=fmt, infer_dates=infer_dates))


def test_directory_instead_of_file(s, tmp_path):
    with pytest.raises(VelariaFileNotFoundError, match="directory"):
        s.read_csv(str(tmp_path))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs non-root posix")
def test_unreadable_file(s, tmp_path):
    p = tmp_path / "locked.csv"
    p.write_text("a\n1\n")
    p.chmod(0)
    try:
        with pytest.raises(VelariaError, match="permission"):
            s.read_csv(str(p))
    finally:
        p.chmod(0o644)


def test_empty_file(s, tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(SourceFormatError, match="csv file is empty"):
        s.read_csv(str(p))


def test_invalid_utf8_names_line_and_column(s, tmp_path):
    p = tmp_path / "u.csv"
    p.write_bytes(b"a,b\n1,ok\n2,\xff\xfe\n")
    with pytest.raises(SourceFormatError, match=r"invalid UTF-8 .* line 3, column 3"):
        scan_all(s.read_csv(str(p)))
    q = tmp_path / "u.jsonl"
    q.write_bytes(b'{"a":1}\n{"a":"\xc3"}\n')
    with pytest.raises(SourceFormatError, match="line 2"):
        scan_all(s.read_json(str(q), ["a"]))


def test_malformed_json_location(s, tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a":1}\n{"a":2,}\n')
    with pytest.raises(SourceFormatError, match=r"malformed JSON .*m.jsonl at line 2, column 8"):
        scan_all(s.read_json(str(p), ["a"]))
    q = tmp_path / "arr.json"
    q.write_text('[{"a":1},\n {"a":2\n]')
    with pytest.raises(SourceFormatError, match=r"line 3, column 1"):
        scan_all(s.read_json(str(q), ["a"], format="json_array"))


def test_json_upstream_messages(s, tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('[1,2]\n')
    with pytest.raises(SourceFormatError, match="json object expected"):
        scan_all(s.read_json(str(p), ["a"]))
    p.write_text('{"a":["x",1]}\n')
    with pytest.raises(SourceFormatError, match="json array only supports numeric vectors"):
        scan_all(s.read_json(str(p), ["a"]))
    p.write_text('{"a":1}\n')
    with pytest.raises(SourceFormatError, match=r"json array source should start with '\['"):
        scan_all(s.read_json(str(p), ["a"], format="json_array"))
    p.write_text('{"a":NaN}\n')
    with pytest.raises(SourceFormatError, match="invalid json keyword"):
        scan_all(s.read_json(str(p), ["a"]))


def test_bad_regex_and_mapping_beyond_fields(s, tmp_path):
    p = tmp_path / "l.log"
    p.write_text("a b\nc d\n")
    with pytest.raises(VelariaValueError, match=r"invalid regex_pattern '\(unclosed'"):
        s.read_line_file(str(p), [("a", 1)], mode="regex", regex_pattern="(unclosed")
    with pytest.raises(VelariaValueError, match="beyond the 1 capture group"):
        s.read_line_file(str(p), [("a", 2)], mode="regex", regex_pattern=r"(\w) .*")
    with pytest.raises(VelariaValueError, match="regex mode requires regex_pattern"):
        s.read_line_file(str(p), [("a", 0)], mode="regex")
    src = s.read_line_file(str(p), [("a", 0), ("z", 5)], split_delimiter=" ")
    with pytest.raises(SourceFormatError, match="source_index 5, beyond the fields"):
        src.schema


def test_ragged_csv_names_line(s, tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("a,b\n1,2\n3,4\n5\n")
    with pytest.raises(SourceFormatError, match=r"line 4 .* 1 field\(s\) but the header has 2.*on_bad_lines='skip'"):
        s.read_csv(str(p)).schema


def test_duplicate_columns(s, tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(SourceFormatError, match="duplicate column name 'a'"):
        s.read_csv(str(p))
    with pytest.raises(VelariaValueError, match="duplicate column: x"):
        s.read_line_file(str(p), [("x", 0), ("x", 1)])
    with pytest.raises(VelariaValueError, match="duplicate column: a"):
        s.read_json(str(p), ["a", "a"])


def test_argument_errors(s, tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("a\n1\n")
    with pytest.raises(VelariaValueError, match="delimiter must be a single character"):
        s.read_csv(str(p), delimiter="::")
    with pytest.raises(ValueError, match="format must be one of: json_lines, json_array"):
        s.read_json(str(p), ["a"], format="xml")
    with pytest.raises(ValueError, match="mode must be one of: split, regex"):
        s.read_line_file(str(p), [("a", 0)], mode="grep")
    with pytest.raises(ValueError, match="materialization_format must be one of: binary_row_batch, nanoarrow_ipc"):
        s.read_csv(str(p), materialization_format="orc")
    with pytest.raises(ValueError, match="on_bad_lines must be one of"):
        s.read_csv(str(p), on_bad_lines="warn")
    with pytest.raises(ValueError, match="mappings must be a sequence"):
        s.read_line_file(str(p), "a:0")
    with pytest.raises(ValueError, match=r"mappings\[0\] must have exactly 2 items"):
        s.read_line_file(str(p), [("a", 0, 1)])
    with pytest.raises(ValueError, match=r"mappings\[0\]\[1\] must be non-negative"):
        s.read_line_file(str(p), [("a", -1)])
    with pytest.raises(ValueError, match=r"mappings\[0\] dict mapping requires column and source_index"):
        s.read_line_file(str(p), [{"column": "a"}])
    with pytest.raises(ValueError, match="json source columns cannot be empty"):
        s.read_json(str(p), [])
    with pytest.raises(ValueError, match="columns must contain only strings"):
        s.read_json(str(p), ["a", 1])
    with pytest.raises(TypeError):
        s.read_csv(123)
