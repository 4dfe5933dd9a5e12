"""JSON array files are decoded one element at a time: the same elements and the same error
positions as decoding the whole document, in memory that does not grow with the file."""
from __future__ import annotations

import io
import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velaria
from velaria.errors import SourceFormatError
from velaria.io.json_array_stream import iter_array_elements
from velaria.io.typed_source import clear_typing_cache

_DECODER = json.JSONDecoder()

scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30),
                   st.floats(allow_nan=False, allow_infinity=False),
                   st.text(alphabet=st.characters(codec="utf-8"), max_size=6))
value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8)


class _Failed(Exception):
    pass


def _raise(what, line, column, fix):
    raise _Failed(what, line, column)


def _stream(text: str, slice_chars: int):
    try:
        return list(v for _, v in iter_array_elements(io.StringIO(text), _DECODER, _raise,
                                                      slice_chars=slice_chars))
    except _Failed as exc:
        return ("error", exc.args[1], exc.args[2])


def _whole(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return ("error", exc.lineno, exc.colno)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elements=st.lists(st.one_of(value, st.dictionaries(st.text(max_size=3), value,
                                                         max_size=3)), max_size=8),
       indent=st.sampled_from([None, 0, 2]),
       ascii_only=st.booleans(), slice_chars=st.integers(1, 120),
       cut=st.one_of(st.none(), st.integers(0, 10 ** 6)), junk=st.sampled_from(["", ",", "x", "]", "}", '"', "\n"]))
def test_stream_matches_whole_document(elements, indent, ascii_only, slice_chars, cut, junk):
    """Any slicing gives the elements json.loads gives; a damaged document (a character
    replaced by junk) fails at the same line and column."""
    text = "  \n" + json.dumps(elements, indent=indent, ensure_ascii=ascii_only) + "\n"
    if cut is not None:
        at = 4 + cut % max(1, len(text) - 4)  # keep the leading '['
        text = text[:at] + junk + text[at + 1:]
    assert _stream(text, slice_chars) == _whole(text)


@pytest.mark.parametrize("text, expected", [
    ("", []), ("  \n ", []), ("[]", []), ('[{"a": 1}]', [{"a": 1}]),
    ("[1,]", ("error", 1, 4)), ("[", ("error", 1, 2)), ("[1 2]", ("error", 1, 4)),
    ("[1] x", ("error", 1, 5)), ('[{"a":1},\n {"a":2\n]', ("error", 3, 1)),
])
def test_stream_edge_cases(text, expected):
    for slice_chars in (1, 3, 1 << 20):
        assert _stream(text, slice_chars) == expected


def test_not_an_array_names_the_problem(tmp_path):
    path = tmp_path / "o.json"
    path.write_text('\n\n{"a": 1}')
    with pytest.raises(SourceFormatError, match=r"should start with '\['.* at line 3, column 1"):
        velaria.Session().read_json(str(path), ["a"], format="json_array").count()


def test_large_array_reads_in_bounded_memory(tmp_path, monkeypatch):
    """A 21 MB array: decoding it whole would hold its text and every decoded element (well
    over 21 MB of Python objects); streamed, Python's peak stays a small fraction of that."""
    monkeypatch.setenv("VELARIA_IO_RETAIN_MB", "0")  # measure the parse, not kept cells
    path = tmp_path / "big.json"
    pad = "p" * 400
    with open(path, "w") as handle:
        handle.write("[\n")
        count = 50_000
        for i in range(count):
            handle.write(json.dumps({"i": i, "pad": pad}) + (",\n" if i < count - 1 else "\n"))
        handle.write("]\n")
    size = path.stat().st_size
    assert size > 20_000_000
    clear_typing_cache()
    tracemalloc.start()
    try:
        frame = velaria.Session().read_json(str(path), ["i"], format="json_array")
        total = frame.to_arrow().column("i").to_pylist()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == list(range(count))
    assert peak < size / 3, f"peak {peak} bytes for a {size}-byte file"


def test_whole_runs_of_objects_are_decoded_in_one_call(monkeypatch):
    """The fast path really runs: of 3,000 objects in slices of 4 K characters, only the one
    that straddles each slice's end goes through the element-by-element decoder."""
    from velaria.io import json_array_stream as stream

    careful = []
    original = stream._decode_one
    monkeypatch.setattr(stream, "_decode_one",
                        lambda *args: careful.append(1) or original(*args))
    text = json.dumps([{"i": i, "s": "x" * (i % 7)} for i in range(3000)])
    got = _stream(text, 4096)
    assert got == json.loads(text)
    assert len(careful) < 3000 / 20
