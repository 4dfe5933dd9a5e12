"""A scan's pushed filters over batches kept in memory: the next batch is filtered on a worker
thread while the consumer handles this one. The rows are exactly those of filtering the
unfiltered scan (NULLs, empty cells, values equal to the constant, negatives, ints and
doubles), in order; a column read only for a filter is not returned; a scan left early
stops its worker."""
from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.io import pushdown
from velaria.io.base import PushedFilter
from velaria.io.csv_source import CsvSource
from velaria.io.pushdown import apply_filters
from velaria.io.typed_source import clear_typing_cache

_OPS = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _kept_source(path) -> CsvSource:
    """A source of ``path`` whose typing pass kept every column in memory."""
    clear_typing_cache()
    source = CsvSource(str(path))
    list(source.scan())
    assert source._kept_covers(source.names)
    return source


def _record_filter_threads(monkeypatch) -> list[str]:
    """The names of the threads that filter batches from now on (a list filled as they do)."""
    workers = []
    original = pushdown.filter_in_c

    def recording(*args, **kwargs):
        workers.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(pushdown, "filter_in_c", recording)
    return workers


def test_kept_batches_are_filtered_ahead_on_a_worker_and_stop_cleanly(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("k,v\n" + "".join(f"{i % 13},{i}\n" for i in range(300_000)))
    source = _kept_source(path)
    assert len(source._retained) > 1
    workers = _record_filter_threads(monkeypatch)
    got = list(source.scan(["v"], [PushedFilter("k", ">", 10)]))
    want = [i for i in range(300_000) if i % 13 > 10]
    assert [b.schema.names for b in got] == [["v"]] * len(got)   # `k` was read only to filter
    assert [v for b in got for v in b.column(0).to_pylist()] == want
    assert workers and all(name.startswith("velaria-read-ahead") for name in workers)
    before = threading.active_count()
    scan = source.scan(["v"], [PushedFilter("k", ">", 10)])
    first = next(scan)
    scan.close()
    assert first.column(0).to_pylist() == want[:first.num_rows]
    assert threading.active_count() <= before    # the worker is gone with the scan


def test_a_scan_parsing_the_file_filters_on_the_calling_thread(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text("k,v\n" + "".join(f"{i % 13},{i}\n" for i in range(1000)))
    clear_typing_cache()
    source = CsvSource(str(path))
    source.keep_parsed = False
    workers = _record_filter_threads(monkeypatch)
    got = list(source.scan(["v"], [PushedFilter("k", ">", 10)]))
    assert not source._kept_covers(["k", "v"])
    assert [v for b in got for v in b.column(0).to_pylist()] == \
        [i for i in range(1000) if i % 13 > 10]
    assert workers == [threading.current_thread().name] * len(workers) and workers


def test_apply_filters_returns_the_asked_columns():
    batch = pa.record_batch({"a": [1, None, 3, 4], "b": ["w", "x", "y", None]})
    flts = [PushedFilter("a", ">=", 3)]
    assert apply_filters(batch, flts, ["b"]).to_pydict() == {"b": ["y", None]}
    assert apply_filters(batch, flts).to_pydict() == {"a": [3, 4], "b": ["y", None]}
    assert apply_filters(batch, [], ["b"]).to_pydict() == {"b": ["w", "x", "y", None]}
    assert apply_filters(batch, flts, []).num_rows == 2       # a row count's scan


_NUMBER = st.one_of(st.integers(-50, 50), st.sampled_from([0, -1, 10, 2 ** 62, -(2 ** 62)]))
_CELL_OF = {
    "int": st.one_of(st.none(), _NUMBER.map(str)),
    "float": st.one_of(st.none(), _NUMBER.map(str),
                       st.floats(-100, 100, allow_nan=False).map(repr),
                       st.sampled_from(["-0.0", "10.0", "1e1", "-10.5"])),
}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), kind=st.sampled_from(["int", "float"]),
       op=st.sampled_from(sorted(_OPS)), const=st.sampled_from([10, -1, 0, 10.0, 2.5]),
       rows=st.integers(0, 3000))
def test_filtered_scan_of_kept_batches_is_the_filtered_unfiltered_scan(
        tmp_path_factory, data, kind, op, const, rows):
    cells = data.draw(st.lists(_CELL_OF[kind], min_size=rows, max_size=rows))
    # one cell of the kind, so the column is a number column (the filter applies)
    cells.insert(data.draw(st.integers(0, rows)), "7" if kind == "int" else "0.5")
    path = tmp_path_factory.mktemp("f") / "t.csv"
    path.write_text("x,t\n" + "".join(f"{'' if c is None else c},r{i}\n"
                                      for i, c in enumerate(cells)))
    source = _kept_source(path)
    flt = [PushedFilter("x", op, const)]
    whole = pa.Table.from_batches(list(source.scan(["x", "t"])))
    assert whole.schema.field("x").type == (pa.int64() if kind == "int" else pa.float64())
    passing = [t for x, t in zip(whole.column("x").to_pylist(), whole.column("t").to_pylist())
               if x is not None and _OPS[op](x, const)]
    # the whole file filtered as one batch on this thread (where pyarrow cannot compare,
    # e.g. an int beyond 2**53 with a double constant, the filter is skipped: the executor
    # checks WHERE again, so a pushed filter may keep extra rows but never loses one)
    want = apply_filters(whole.combine_chunks().to_batches()[0], flt, ["t"]) \
        if whole.num_rows else whole.select(["t"])
    want = want.column("t").to_pylist()
    got = pa.Table.from_batches(list(source.scan(["t"], flt)))
    assert got.column_names == ["t"]
    assert got.column("t").to_pylist() == want
    assert set(passing) <= set(want)
    if max((abs(x) for x in whole.column("x").to_pylist() if x is not None)) < 2 ** 53:
        assert want == passing
    assert sum(b.num_rows for b in source.scan([], flt)) == len(want)   # a row count


@pytest.mark.parametrize("flts", [[], [PushedFilter("k", ">", 100)]])
def test_empty_results_keep_the_schema(tmp_path, flts):
    path = tmp_path / "t.csv"
    path.write_text("k,v\n1,a\n2,b\n")
    source = _kept_source(path)
    got = list(source.scan(["v"], flts))
    assert got and got[0].schema.names == ["v"]
    assert sum(b.num_rows for b in got) == (0 if flts else 2)
