"""The batch classifier (Arrow compute and numpy over whole columns) against its reference,
the per-cell rule (``classify_text_cell``) folded over the column: the same kind for any
batch, and int / float / bool batches converted to the same values."""
from __future__ import annotations

import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria.io.typing_rules import (classify_convert_text, classify_text_cell, convert_text,
                                     merge_kinds)

_TRICKY = ["0", "-0", "00", "007", "-007", "0.5", "-0.5", "00.5", "0e5", "5.", ".5", "1e3",
           "1E+3", "+5", "+0.5", "inf", "-inf", "nan", "NaN", "1e400", "-1e400", "1e5e5",
           "9223372036854775807", "-9223372036854775808", "9223372036854775808",
           "-9223372036854775809", "99999999999999999999", "12345678901234567.5",
           "1000000000000000000000.0", "true", "TRUE", "True", "false", "FALSE", "null", "x",
           "-", "--1", "1-2", ".", "e", "1e", " 5", "5 ", "0x10", "[1 2 3]", "[1,2]", "[]",
           "", "é", "0é", "-0é"]
cell = st.one_of(st.sampled_from(_TRICKY), st.integers(-(10 ** 20), 10 ** 20).map(str),
                 st.floats(allow_nan=False).map(repr),
                 st.text(alphabet="0123456789-+.eE", min_size=1, max_size=6))
column = st.lists(st.one_of(st.none(), cell), max_size=12)


def _fold(cells, dialect):
    kind = "null"
    for text in cells:
        kind = merge_kinds(kind, classify_text_cell(text, dialect))
    return kind


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) ==
                                                      math.copysign(1, b))
    return a == b


@settings(max_examples=400, deadline=None)
@given(cells=column, dialect=st.sampled_from(["csv", "line"]), chunks=st.integers(1, 3))
def test_batch_kind_matches_the_cell_rule(cells, dialect, chunks):
    arr = pa.array(cells, pa.string())
    if chunks > 1 and len(cells) > 1:  # ChunkedArrays (what pyarrow's reader gives) too
        cut = len(cells) // chunks
        arr = pa.chunked_array([arr.slice(0, cut), arr.slice(cut)], pa.string())
    kind, values = classify_convert_text(arr, dialect)
    expected = _fold(cells, dialect)
    if expected.startswith("vector") and kind.startswith(("vector", "vlist")):
        return  # vectors are checked cell by cell in both
    assert kind == expected, (cells, kind, expected)
    if kind in ("int", "float", "bool"):
        assert all(_same(a, b) for a, b in zip(values.to_pylist(),
                                               convert_text(arr, kind, dialect).to_pylist()))
        reference = [None if c is None else (int(c) if kind == "int" else float(c)
                                             if kind == "float" else c in ("true", "TRUE"))
                     for c in cells]
        assert all(_same(a, b) for a, b in zip(values.to_pylist(), reference)), cells


def test_hexadecimal_is_text_in_every_dialect():
    # Arrow's string -> int64 cast reads 0x10 as 16; the cell rule says text
    for dialect in ("csv", "line"):
        for cells in (["0", "0x10"], ["7", "0X1f"]):
            assert classify_convert_text(pa.array(cells), dialect)[0] == "string"
            assert _fold(cells, dialect) == "string"
