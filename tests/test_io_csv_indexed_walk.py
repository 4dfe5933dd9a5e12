"""The CSV walk's indexed form (a structural pass over a batch of rows, then one loop per
column, with shape checks and eight-digit number reading for the common cells) against the
reference twins and against the row-by-row walk the projection still uses: padded bodies (so
every cell takes the fast steps, which need 32 readable bytes after a cell's start), bodies
repeated across batch boundaries with CRLF and empty lines, long cells, and the fast path
really running."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.reference import csv_typing as reference

from test_io_csv_convert import _parts_table, _same_table
from test_io_csv_scan_typing import _CELL, _same_rows, csv_body

accel = pytest.importorskip("velaria.accel.csv_typing")
pytestmark = pytest.mark.skipif(not accel.c_available(), reason="the C accelerator is not built")

_KINDS = ["int", "float", "bool", "date", "timestamp", "string", "null", None]
#: empty lines are skipped by every walk: after a body they leave its cells' results as they
#: are while giving each cell the readable bytes the fast steps need
_PAD = b"\n" * 40
#: plain numbers and short and long texts (the cells the fast steps take, and their edges)
_PLAIN = st.one_of(
    st.integers(-(10 ** 17), 10 ** 17).map(str),
    st.builds(lambda a, b: f"{a}.{b}", st.integers(-(10 ** 8), 10 ** 8),
              st.text(alphabet="0123456789", max_size=9)),
    st.text(alphabet="abcxyz_ 0123456789.-", min_size=0, max_size=80))
_BODY_CELL = st.one_of(_CELL, _PLAIN)


def _status_agree(got, want):
    assert (got[0] == "ok") == (want[0] == "ok"), (got[0], want[0])
    return want[0] == "ok"


def _check_all_three(data, ncols, delimiter, nulls, kinds, convert, simd):
    """csv_column_kinds, csv_convert and csv_type_convert of the C walk against the
    reference on ``data``."""
    want = reference.csv_column_kinds(data, ncols, delimiter, nulls, True)
    got = accel.csv_column_kinds(data, ncols, delimiter, nulls, True, simd=simd)
    if _status_agree(got, want):
        assert got[1:3] == want[1:3]
    want = reference.csv_convert(data, ncols, kinds, delimiter, nulls)
    got = accel.csv_convert(data, ncols, kinds, delimiter, nulls, simd=simd)
    if _status_agree(got, want):
        _same_table(got[1], want[1])
    want = reference.csv_type_convert(data, ncols, delimiter, nulls, True, None,
                                      convert=convert)
    got = accel.csv_type_convert(data, ncols, delimiter, nulls, True, None, convert=convert,
                                 simd=simd)
    if _status_agree(got, want):
        assert got[1:3] == want[1:3]
        for col in range(len(convert)):
            kind_got, kind_want = _parts_table(got[3], col), _parts_table(want[3], col)
            if isinstance(kind_want, (str, type(None))):
                assert kind_got == kind_want
            else:
                assert kind_got.type == kind_want.type
                assert _same_rows([(v,) for v in kind_got.to_pylist()],
                                  [(v,) for v in kind_want.to_pylist()])


@settings(max_examples=300, deadline=None)
@given(body=csv_body(), simd=st.booleans(), data=st.data(),
       nulls=st.sampled_from([[""], ["", "NA"], ["7", "-1"], []]))
def test_padded_bodies_take_the_fast_steps_and_match_the_reference(body, simd, data, nulls):
    raw, ncols, delimiter = body
    kinds = data.draw(st.lists(st.sampled_from(_KINDS), min_size=ncols, max_size=ncols))
    convert = sorted(data.draw(st.sets(st.integers(0, ncols - 1))))
    _check_all_three(raw + _PAD, ncols, delimiter, nulls, kinds, convert, simd)


@st.composite
def plain_body(draw):
    """(data, ncols): rows of plain numbers and texts (mostly one kind per column), some
    lines ending in \\r\\n, some empty lines."""
    ncols = draw(st.integers(1, 5))
    columns = [draw(st.sampled_from(["int", "float", "text", "any"])) for _ in range(ncols)]
    cell = {"int": st.integers(-(10 ** 15), 10 ** 15).map(str),
            "float": st.builds(lambda a, b: f"{a}.{b}", st.integers(-99999, 99999),
                               st.text(alphabet="0123456789", max_size=6)),
            "text": st.text(alphabet="abc_xyz", min_size=0, max_size=40),
            "any": _BODY_CELL}
    lines = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.integers(0, 25)) == 0:
            lines.append("")
        lines.append(",".join(draw(cell[c]) for c in columns))
    ends = [draw(st.sampled_from(["\n", "\n", "\n", "\r\n"])) for _ in lines]
    return "".join(line + end for line, end in zip(lines, ends)).encode(), ncols


@settings(max_examples=300, deadline=None)
@given(body=plain_body(), simd=st.booleans(), data=st.data(), nulls=st.sampled_from([[""], []]))
def test_plain_cells_read_by_shape_match_the_reference(body, simd, data, nulls):
    """Columns of plain numbers and texts (where the shape checks and the eight-digit
    reading do the work), padded so that every cell takes them."""
    raw, ncols = body
    kinds = data.draw(st.lists(st.sampled_from(_KINDS), min_size=ncols, max_size=ncols))
    convert = sorted(data.draw(st.sets(st.integers(0, ncols - 1))))
    _check_all_three(raw + _PAD, ncols, ",", nulls, kinds, convert, simd)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=plain_body(), simd=st.booleans())
def test_bodies_across_batch_boundaries_match_the_reference(body, simd):
    """A body repeated past several batches (a batch holds about 32768 cells; the row in
    progress at a batch's end moves to the next), CRLF and empty lines included: the
    reference's kinds, rows and values, and the row-by-row walk's kinds and rows."""
    raw, ncols = body
    copies = 70_000 // max(1, raw.count(b"\n") * ncols) + 1
    big = raw * copies
    want = reference.csv_column_kinds(big, ncols, ",", [""], True)
    got = accel.csv_column_kinds(big, ncols, ",", [""], True, simd=simd)
    row_walk = accel.csv_column_kinds(big, ncols, ",", [""], True, simd=simd,
                                      keep=list(range(ncols)))
    if _status_agree(got, want):
        assert got[1:3] == want[1:3] == row_walk[1:3]
    kinds = [k if k != "null" else "string" for k in want[1]]
    want = reference.csv_convert(big, ncols, kinds, ",", [""])
    got = accel.csv_convert(big, ncols, kinds, ",", [""], simd=simd)
    if _status_agree(got, want):
        _same_table(got[1], want[1])


def test_the_indexed_walk_runs_and_the_projection_walks_rows():
    lines = b"".join(b"%d,x%d,%d.25,true\n" % (i, i, i) for i in range(20_000))
    before = accel.indexed_batches()
    assert accel.csv_column_kinds(lines, 4)[:3] == ("ok", ["int", "string", "float", "bool"],
                                                    20_000)
    after_kinds = accel.indexed_batches()
    assert after_kinds > before
    assert accel.csv_convert(lines, 4, ["int", "string", "float", None])[0] == "ok"
    after_convert = accel.indexed_batches()
    assert after_convert > after_kinds
    assert accel.csv_type_convert(lines, 4, convert=[0, 2])[0] == "ok"
    assert accel.indexed_batches() > after_convert
    now = accel.indexed_batches()
    assert accel.csv_column_kinds(lines, 4, keep=[0])[0] == "ok"
    assert accel.indexed_batches() == now


def test_edges_of_the_fast_steps():
    """Cells at the limits of the shape checks and the eight-digit reading: 16 and 17 bytes,
    leading zeros, a lone sign or point, -0 before and after a decimal, a cell crossing a
    64-byte block, a text of 16 and 17 bytes, and the last cells without 32 bytes after."""
    cells = ["9999999999999999", "-999999999999999", "99999999999999999", "1234567.12345678",
             "-1234567.1234567", "0", "-0", "007", "0.5", "-", ".", "5.", "-5.", "1.2.3",
             "12345678", "123456789", "1" * 40, "-0.0", "x" * 16, "y" * 17, "", "NA"]
    for kind in ("int", "float", "string"):
        for tail in (b"", _PAD):
            data = "".join(c + "\n" for c in cells).encode() + tail
            want = reference.csv_convert(data, 1, [kind], ",", ["", "NA"])
            got = accel.csv_convert(data, 1, [kind], ",", ["", "NA"])
            assert got[0] == want[0]
            if got[0] == "ok":
                _same_table(got[1], want[1])
    # the rest as one float column (40 digits are no int64: that cell would make it text)
    numbers = [c for c in cells
               if c not in ("x" * 16, "y" * 17, "-", ".", "1.2.3", "007", "1" * 40)]
    data = "".join(c + "\n" for c in numbers).encode() + _PAD
    for convert in ([0], []):
        want = reference.csv_type_convert(data, 1, ",", ["", "NA"], True, None, convert=convert)
        got = accel.csv_type_convert(data, 1, ",", ["", "NA"], True, None, convert=convert)
        assert got[:3] == want[:3] and got[1] == ["float"]
        if convert:
            assert _parts_table(got[3], 0).to_pylist() == _parts_table(want[3], 0).to_pylist()

