"""Fuzz every reader and probe with random bytes and near-valid CSV/JSON: each call must
return a table or raise a documented VelariaError (a RuntimeError), never anything else,
and never hang."""
from __future__ import annotations

import os
import tempfile
import warnings

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.errors import VelariaError
from velaria.excel import read_excel
from velaria.io.typed_source import clear_typing_cache


from io_fakes import FakeSession  # noqa: E402


SESSION = FakeSession()
FUZZ = settings(max_examples=int(os.environ.get("VELARIA_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

csv_cell = st.one_of(st.sampled_from(["", "1", "007", "0.5", "-3", "1e5", "true", "FALSE",
                                      "null", "[1 2]", "[1,2,3]", "[]", '"q,uoted"',
                                      '"open', "x\"y", "9223372036854775808", "+5", "é"]),
                     st.text(max_size=6))
csv_text = st.lists(st.lists(csv_cell, min_size=1, max_size=4), min_size=0, max_size=8).map(
    lambda rows: "\n".join(",".join(r) for r in rows))
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
    max_leaves=6)
json_lines = st.lists(st.dictionaries(st.sampled_from("abc"), json_value, max_size=3),
                      max_size=5).map(lambda objs: "\n".join(__import__("json").dumps(o)
                                                             for o in objs))
mutation = st.tuples(st.integers(0, 200), st.sampled_from(["", "{", "}", "[", "]", ",", '"',
                                                           "\n", "\\", ":", "\xff", "\r\n"]))


def _mutate(text: str, muts) -> bytes:
    data = text.encode("utf-8")
    for pos, piece in muts:
        pos = min(pos, len(data))
        raw = piece.encode("latin-1") if piece == "\xff" else piece.encode()
        data = data[:pos] + raw + data[pos:]
    return data


def _materialise(source):
    schema = source.schema
    for batch in source.scan():
        assert isinstance(batch, pa.RecordBatch)
        assert batch.schema.names == schema.names
    return schema


def _attempt(call):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _materialise(call())
    except VelariaError:
        pass


def _all_readers(data: bytes, suffix: str):
    clear_typing_cache()
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            SESSION.probe(path)
        except VelariaError:
            pass
        _attempt(lambda: SESSION.read(path))
        _attempt(lambda: SESSION.read_csv(path))
        _attempt(lambda: SESSION.read_csv(path, on_bad_lines="skip"))
        _attempt(lambda: SESSION.read_csv(path, delimiter="|"))
        _attempt(lambda: SESSION.read_line_file(path, [("a", 0), ("b", 1)]))
        _attempt(lambda: SESSION.read_line_file(path, [("a", 1), ("w", 0)], mode="regex",
                                                regex_pattern=r"(\w+)[,:]?(.*)"))
        _attempt(lambda: SESSION.read_json(path, ["a", "b"]))
        _attempt(lambda: SESSION.read_json(path, ["a", "c"], format="json_array"))
        if suffix == ".xlsx":
            _attempt(lambda: read_excel(SESSION, path))
    finally:
        os.unlink(path)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".csv", ".json", ".jsonl", ".txt", "", ".xlsx"]))
def test_random_bytes(data, suffix):
    _all_readers(data, suffix)


@FUZZ
@given(csv_text, st.lists(mutation, max_size=3), st.sampled_from([".csv", ".tsv", ".log", ""]))
def test_near_valid_csv(text, muts, suffix):
    _all_readers(_mutate(text, muts), suffix)


@FUZZ
@given(json_lines, st.lists(mutation, max_size=3), st.booleans(),
       st.sampled_from([".json", ".jsonl", ""]))
def test_near_valid_json(text, muts, as_array, suffix):
    if as_array:
        text = "[" + ",".join(text.splitlines()) + "]"
    _all_readers(_mutate(text, muts), suffix)
