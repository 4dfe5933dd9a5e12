"""The fast JSON-lines parser (pyarrow.json) against its reference twin (Python's json): the
same schema, rows, warnings and errors for any file; and read_json without columns."""
from __future__ import annotations

import json
import math
import os
import tempfile
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria.errors import VelariaError
from velaria.io.json_source import JsonSource
from velaria.io.typed_source import clear_typing_cache

scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.integers(min_value=1 << 63, max_value=1 << 70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -0.0, 1e300]),
    st.text(max_size=4), st.sampled_from(["2024-01-01", "2024-01-01T10:00:00", "NaN", "007"]))
value = st.one_of(scalar, st.lists(st.integers(-5, 5), max_size=3),
                  st.dictionaries(st.sampled_from("xy"), scalar, max_size=2))
row = st.dictionaries(st.sampled_from(["a", "b", "c"]), value, max_size=3)
raw_line = st.sampled_from(['{"a": NaN}', '{"a": 1e400}', "[1]", "{bad", "", '{"a":1,"a":2}'])


def _run(path, parser, columns):
    clear_typing_cache()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            src = JsonSource(path, columns, parser=parser)
            result = (str(src.schema), [r for b in src.scan() for r in b.to_pylist()])
        except VelariaError as exc:
            result = (type(exc).__name__, str(exc))
    return result, sorted(str(w.message) for w in caught)


def _same(a, b):
    """Equality that treats NaN as equal to NaN and -0.0 as distinct from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=int(os.environ.get("VELARIA_FUZZ_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(row.map(lambda r: json.dumps(r)), raw_line), max_size=8))
def test_fast_parser_agrees_with_reference(lines):
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        fast = _run(path, "arrow", ["a", "b", "c"])
        ref = _run(path, "python", ["a", "b", "c"])
        assert _same(fast[0], ref[0]) and fast[1] == ref[1], (lines, fast, ref)
    finally:
        os.unlink(path)


def test_fast_parser_really_runs(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps({"id": i, "v": i * 0.5, "s": f"n{i}", "ok": i % 2 == 0})
                            + "\n" for i in range(1000)))
    clear_typing_cache()
    src = JsonSource(str(path), ["id", "v", "s", "ok"])
    assert [str(t) for t in src.schema.types] == ["int64", "double", "string", "bool"]
    assert src.parser == "arrow"
    assert "parser=arrow" in src.describe()
    nested = tmp_path / "n.jsonl"
    nested.write_text('{"a": {"x": 1}}\n')
    fallback = JsonSource(str(nested), ["a"])
    assert fallback.schema.field("a").type.equals(__import__("pyarrow").string())
    assert fallback.parser == "python"


def test_read_json_without_columns_reads_every_key(tmp_path):
    path = tmp_path / "k.jsonl"
    path.write_text('{"a": 1}\n{"b": "x", "a": 2}\n{"c": true}\n')
    frame = velaria.Session().read_json(path)
    assert frame.columns == ["a", "b", "c"]
    assert frame.to_rows()["rows"] == [[1, None, None], [2, "x", None], [None, None, True]]
    arr = tmp_path / "k.json"
    arr.write_text('[{"z": 1}, {"y": 2}]')
    assert velaria.Session().read_json(arr, format="json_array").columns == ["z", "y"]
    empty = tmp_path / "e.jsonl"
    empty.write_text("{}\n")
    with pytest.raises(VelariaError, match="no keys"):
        velaria.Session().read_json(empty)


@pytest.mark.parametrize("content", ["null\n", "null,0.5\n", "\ufeff  null\n{\"a\": 1}\n"])
def test_files_that_crash_pyarrow_json_never_reach_it(tmp_path, content):
    """pyarrow's JSON reader segfaults on a first row of ``null``: such files must go to the
    reference parser (this test would kill the test process otherwise)."""
    path = tmp_path / "n.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(VelariaError, match="json object expected|malformed"):
        JsonSource(str(path), ["a"]).schema
