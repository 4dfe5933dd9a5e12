"""The typing walk over a chunk in parts, one per thread, each thread then reading its piece
of the next chunk: the parts are the ones one threaded C walk cuts, and the answers (status
class, kinds, rows, converted parts) are that walk's; the next chunk's pieces, read by
several threads, are the file's bytes, and a shorter file says how much it got."""
from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria.accel import csv_typing
from velaria.io import csv_chunk_walk
from velaria.io.csv_chunk_walk import NextRead, part_bounds, walk_in_parts
from velaria.io.csv_scan_typing import _buffer

from test_io_csv_scan_typing import csv_body

pytestmark = pytest.mark.skipif(not csv_typing.c_available(), reason="no compiled scanner")


def _walk(convert, ncols, delimiter):
    def walk(data, kinds):
        if not convert:
            status, got, rows, _ = csv_typing.csv_column_kinds(data, ncols, delimiter, [""], True,
                                                               kinds, 1)
            return status, got, rows, None
        return csv_typing.csv_type_convert(data, ncols, delimiter, [""], True, kinds, 1, convert)
    return walk


def _same(parts_a, parts_b):
    assert [rows for rows, _ in parts_a] == [rows for rows, _ in parts_b]
    for (_, cols_a), (_, cols_b) in zip(parts_a, parts_b):
        assert [k for k, _ in cols_a] == [k for k, _ in cols_b]
        assert all(a is b is None or a.equals(b) for (_, a), (_, b) in zip(cols_a, cols_b))


def test_the_parts_are_those_of_one_threaded_c_walk():
    """A 1.5 MB chunk whose second half changes kinds (an int column gets a float, a float
    column a text): the same parts, kinds, rows and converted arrays."""
    rng = random.Random(5)
    lines = [f"{i},{rng.random():.3f},x{i % 7},{i % 2 == 0}".lower() for i in range(60_000)]
    lines[45_000] = "1.5,oops,y,true"
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > csv_chunk_walk.MIN_SPLIT_BYTES
    start = ["null"] * 4
    with ThreadPoolExecutor(1) as pool:
        for convert in ([], [0, 1, 3]):
            got = walk_in_parts(_walk(convert, 4, ","), data, 0, len(data), start, 2, pool, None)
            if convert:
                want = csv_typing.csv_type_convert(data, 4, ",", [""], True, start, 2, convert)
                assert len(got[3]) == 2
                _same(got[3], want[3])
            else:
                want = csv_typing.csv_column_kinds(data, 4, ",", [""], True, start, 2)
            assert got[:3] == want[:3] == ("ok", ["float", "string", "string", "bool"], 60_000)


@settings(max_examples=200, deadline=None)
@given(body=csv_body(), parts=st.integers(1, 4), convert=st.booleans())
def test_walking_in_parts_agrees_with_walking_each_part(body, parts, convert):
    """Any chunk in 1-4 parts (small parts too): the first status of the parts' own walks
    that is not ``ok`` (a part starts from the chunk's kinds, as in the threaded C walk: a
    possible vector cell may need the reference parser in a part but not in the whole);
    with every part ``ok``, the kinds and rows of one walk of the whole, and the parts'
    conversions in order."""
    data, ncols, delimiter = body
    if not data.endswith(b"\n"):
        data += b"\n"
    cols = list(range(ncols)) if convert else []
    walk = _walk(cols, ncols, delimiter)
    start = ["null"] * ncols
    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(max(1, parts - 1)) as pool:
        patch.setattr(csv_chunk_walk, "MIN_SPLIT_BYTES", 0)
        got = walk_in_parts(walk, data, 0, len(data), start, parts, pool, None)
    bounds = part_bounds(data, 0, len(data), parts)
    assert bounds[0] == 0 and bounds[-1] == len(data) and bounds == sorted(bounds)
    assert all(data[b - 1:b] == b"\n" for b in bounds[1:] if b)
    alone = [walk(data[a:b], start) for a, b in zip(bounds, bounds[1:])]
    assert got[0] == next((r[0] for r in alone if r[0] != "ok"), "ok")
    if got[0] != "ok":
        return
    whole = walk(data, start)
    assert whole[0] == "ok" and got[1:3] == whole[1:3]
    if convert:
        _same(got[3], [part for result in alone for part in result[3]])


@pytest.mark.parametrize("fresh, preadv", [(False, True), (True, True), (False, False)])
def test_next_read_pieces_from_several_threads_are_the_files_bytes(tmp_path, monkeypatch,
                                                                   fresh, preadv):
    if not preadv:   # as on Windows: pread, then a copy
        monkeypatch.delattr(os, "preadv", raising=False)
    path = tmp_path / "bytes.bin"
    payload = os.urandom(300_001)
    path.write_bytes(payload)
    buf = _buffer(400_000)
    with open(path, "rb") as handle:
        read = NextRead(handle.fileno(), buf, 1000, 1000 + 250_000, 17, 3, fresh=fresh)
        threads = [threading.Thread(target=read.read_piece, args=(i,)) for i in (2, 0)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert read.finish() == 250_000        # piece 1 read by finish()
        assert buf[1000:251_000] == payload[17:250_017]
        short = NextRead(handle.fileno(), buf, 0, 100_000, 250_001, 4)
        assert short.finish() == 50_000        # the file ends there
        assert buf[:50_000] == payload[250_001:]
