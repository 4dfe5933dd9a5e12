"""read_ahead: items in order, produced one ahead on a worker thread; errors reach the caller
at the item that raised them; closing early waits for the running step and closes the
iterator; context variables are seen by the producer. And the CSV scan using it (a file of
several chunks) gives the same rows as reading chunk by chunk without it; the typing walk,
whose threads read the next chunk themselves, types as before and reports a file cut under
it."""
from __future__ import annotations

import contextvars
import threading
import time

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria.errors import SourceFormatError
from velaria.accel import csv_typing
from velaria.io import csv_chunk_walk, csv_scan_typing, csv_source
from velaria.io.csv_source import CsvSource
from velaria.io.read_ahead import read_ahead
from velaria.io.typed_source import clear_typing_cache

_VAR = contextvars.ContextVar("read_ahead_test", default=None)


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers()), depth=st.integers(1, 3))
def test_items_come_in_order_once(items, depth):
    assert list(read_ahead(iter(items), depth=depth)) == items


def test_depth_two_produces_at_most_two_items_ahead():
    produced = []

    def gen():
        for i in range(5):
            produced.append(i)
            yield i

    it = read_ahead(gen(), depth=2)
    assert next(it) == 0
    deadline = time.monotonic() + 5
    while len(produced) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)
    assert produced == [0, 1, 2]         # items 1 and 2 are ready, item 3 is not begun
    assert list(it) == [1, 2, 3, 4]


def test_items_are_produced_on_a_worker_one_ahead():
    produced, threads = [], set()

    def gen():
        for i in range(4):
            produced.append(i)
            threads.add(threading.get_ident())
            yield i

    it = read_ahead(gen())
    assert next(it) == 0
    # while the caller holds item 0, item 1 is being (or has been) produced
    assert next(it) == 1 and produced[:2] == [0, 1]
    assert list(it) == [2, 3]
    assert threading.get_ident() not in threads


def test_an_error_reaches_the_caller_at_its_item():
    def gen():
        yield 1
        raise ValueError("bad second item")

    it = read_ahead(gen())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad second item"):
        next(it)


def test_closing_early_closes_the_iterator():
    closed = []

    def gen():
        try:
            for i in range(100):
                yield i
        finally:
            closed.append(True)

    it = read_ahead(gen())
    assert next(it) == 0
    it.close()
    assert closed == [True]


def test_the_producer_sees_the_callers_context_variables():
    def gen():
        yield _VAR.get()

    token = _VAR.set("mine")
    try:
        assert list(read_ahead(gen())) == ["mine"]
    finally:
        _VAR.reset(token)


def _rows(source):
    return pa.Table.from_batches(list(source.scan()), schema=source.schema).to_pylist()


def _write(path, rows):
    path.write_text("id,cat,value\n" + "".join(f"{i},c{i % 7},{i * 0.25}\n" for i in range(rows)))


def _spy_read_ahead(monkeypatch, module) -> list:
    """A list that gets an entry each time ``module`` calls ``read_ahead``."""
    seen = []
    real = module.read_ahead

    def spy(iterator):
        seen.append(True)
        return real(iterator)
    monkeypatch.setattr(module, "read_ahead", spy)
    return seen


def test_a_scan_of_many_chunks_reads_every_row_in_order(tmp_path, monkeypatch):
    """The scan's chunks come through read_ahead (the file spans many chunks) and the rows are
    those of a one-chunk read of the same file."""
    path = tmp_path / "many.csv"
    _write(path, 20_000)
    clear_typing_cache()
    whole = _rows(CsvSource(str(path)))
    seen = _spy_read_ahead(monkeypatch, csv_source)
    monkeypatch.setattr(csv_source, "_CHUNK_BYTES", 4096)
    monkeypatch.setattr(csv_scan_typing, "_CHUNK_BYTES", 4096)
    clear_typing_cache()
    source = CsvSource(str(path))
    assert source.schema is not None   # typed first, so the scan converts chunk by chunk
    assert _rows(source) == whole
    assert seen and source.chunk_parsers["c"] > 2


def test_the_typing_walk_reads_the_next_chunk_on_its_threads_and_types_as_before(
        tmp_path, monkeypatch):
    """Each walk thread reads its piece of the next chunk once its part is walked (no
    separate reading thread): the typing is the same as the Arrow pass's."""
    path = tmp_path / "walk.csv"
    _write(path, 20_000)
    clear_typing_cache()
    want = CsvSource(str(path)).schema
    readers = []
    real = csv_chunk_walk.NextRead.read_piece

    def spy(self, i):
        readers.append(threading.current_thread().name)
        return real(self, i)
    monkeypatch.setattr(csv_chunk_walk.NextRead, "read_piece", spy)
    monkeypatch.setattr(csv_scan_typing, "_CHUNK_BYTES", 4096)
    monkeypatch.setattr(csv_chunk_walk, "MIN_SPLIT_BYTES", 1024)   # chunks walked in parts
    clear_typing_cache()
    source = CsvSource(str(path))
    assert source.schema == want
    assert source.stats["typing_path"] == "scan"
    assert source.stats["rows"] == 20_000
    assert threading.current_thread().name in readers
    if csv_typing.default_threads() > 1:
        assert any(name.startswith("velaria-csv-walk") for name in readers)


def test_a_file_shrinking_under_the_read_ahead_is_a_clear_error(tmp_path, monkeypatch):
    """The next chunk is read by the walk's threads: a file cut meanwhile still fails with
    the "shrank" error, raised to the caller."""
    path = tmp_path / "shrinks.csv"
    _write(path, 20_000)
    monkeypatch.setattr(csv_scan_typing, "_CHUNK_BYTES", 4096)
    clear_typing_cache()
    source = CsvSource(str(path))
    original = csv_scan_typing._line_chunks

    def cut_after_first(handle, size, src, reads=None):
        for n, item in enumerate(original(handle, size, src, reads)):
            if n == 0:
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
            yield item
    monkeypatch.setattr(csv_scan_typing, "_line_chunks", cut_after_first)
    with pytest.raises(SourceFormatError, match="shrank while it was being read"):
        _ = source.schema


@pytest.mark.parametrize("first_line", [10, 3000])
def test_the_first_chunk_is_short_and_chunks_cover_the_file(tmp_path, monkeypatch, first_line):
    """A file longer than a chunk is read first in a short chunk (the walk starts while the
    next is read), or a full one when its lines are long; the chunks' lines are the file's,
    and the typing is the same as with full chunks only."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "x" * first_line + ",1\n"
                    + "".join(f"r{i},{i * 7 % 1000}\n" for i in range(3000)))
    data = path.read_bytes()
    monkeypatch.setattr(csv_scan_typing, "_CHUNK_BYTES", 8192)
    monkeypatch.setattr(csv_scan_typing, "_FIRST_BYTES", 2048)
    clear_typing_cache()
    source = CsvSource(str(path))
    got, sizes = b"", []
    with open(path, "rb") as handle:
        for view, offset, end, at_end in csv_scan_typing._line_chunks(handle, len(data), source):
            assert offset == len(got) and (end is not None)
            got += bytes(view[:end])
            sizes.append(end)
    assert got == data
    assert sizes[0] <= 2048 if first_line < 1000 else sizes[0] > 2048
    assert max(sizes) > 2048                      # later chunks are full ones
    schema = source.schema
    assert source.stats["typing_path"] == "scan"
    monkeypatch.setattr(csv_scan_typing, "_FIRST_BYTES", 1 << 30)
    clear_typing_cache()
    full = CsvSource(str(path))
    assert full.schema == schema and full.stats["rows"] == source.stats["rows"] == 3001
