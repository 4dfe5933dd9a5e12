"""The process-wide parsed-file cache: warm re-reads scan memory, never stale data."""
from __future__ import annotations

import os

import pytest

import velaria
from velaria.errors import VelariaValueError
from velaria.io import parsed_cache
from velaria.io.csv_source import CsvSource
from velaria.io.typed_source import clear_typing_cache


@pytest.fixture(autouse=True)
def fresh_caches():
    clear_typing_cache()
    yield
    clear_typing_cache()


def _count_parses(monkeypatch) -> list:
    calls = []
    original = CsvSource._read

    def counting(self, *args, **kwargs):
        calls.append(self.path)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CsvSource, "_read", counting)
    return calls


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_warm_reread_does_not_parse(tmp_path, monkeypatch):
    path = _write(tmp_path, "w.csv", "a,b,c\n" + "".join(f"{i},x{i},{i / 2}\n" for i in range(500)))
    calls = _count_parses(monkeypatch)
    first = velaria.Session().read_csv(path).to_rows()["rows"]
    assert len(calls) == 1  # the typing pass; the first scan used what it kept
    second = velaria.Session().read_csv(path).to_rows()["rows"]
    assert second == first and len(first) == 500
    assert len(calls) == 1  # the new Session's reader scanned the cached batches
    assert parsed_cache.held_bytes() > 0


def test_rewritten_file_is_parsed_again(tmp_path, monkeypatch):
    path = _write(tmp_path, "r.csv", "a,b\n1,2\n")
    assert velaria.Session().read_csv(path).to_rows()["rows"] == [[1, 2]]
    st = os.stat(path)
    _write(tmp_path, "r.csv", "a,b\n3,4\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    calls = _count_parses(monkeypatch)
    assert velaria.Session().read_csv(path).to_rows()["rows"] == [[3, 4]]
    assert calls  # parsed, not served from memory


def test_other_options_are_another_entry(tmp_path):
    path = _write(tmp_path, "o.csv", "a;b\n1;NA\n")
    assert velaria.Session().read_csv(path, delimiter=";").to_rows()["rows"] == [[1, "NA"]]
    assert velaria.Session().read_csv(path, delimiter=";", null_values=["NA"]) \
        .to_rows()["rows"] == [[1, None]]


def test_budget_zero_turns_it_off(tmp_path, monkeypatch):
    monkeypatch.setenv("VELARIA_IO_CACHE_MB", "0")
    path = _write(tmp_path, "z.csv", "a\n1\n2\n")
    calls = _count_parses(monkeypatch)
    assert velaria.Session().read_csv(path).count() == 2
    assert velaria.Session().read_csv(path).count() == 2
    assert len(calls) == 2 and parsed_cache.held_bytes() == 0


def test_least_recently_used_entries_are_evicted(tmp_path, monkeypatch):
    # each file keeps about 80 KB of int64 data; the budget holds two of them
    monkeypatch.setenv("VELARIA_IO_CACHE_MB", "0.2")
    paths = [_write(tmp_path, f"e{k}.csv", "a\n" + "\n".join(str(i) for i in range(10_000)))
             for k in range(3)]
    for path in paths:
        assert velaria.Session().read_csv(path).count() == 10_000
    assert 0 < parsed_cache.held_bytes() <= parsed_cache.budget_bytes()
    calls = _count_parses(monkeypatch)
    velaria.Session().read_csv(paths[2]).count()  # most recent: still held
    assert calls == []
    velaria.Session().read_csv(paths[0]).count()  # oldest: evicted, parsed again
    assert calls == [paths[0]]


def test_bad_budget_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VELARIA_IO_CACHE_MB", "lots")
    path = _write(tmp_path, "b.csv", "a\n1\n")
    with pytest.raises(VelariaValueError, match="VELARIA_IO_CACHE_MB must be a number"):
        velaria.Session().read_csv(path).count()


def test_python_values_are_never_cached():
    import pyarrow as pa

    arrow_only = [[("int", pa.array([1, 2]))]]
    mixed = arrow_only + [[("int", [3, 4])]]  # a chunk parsed in Python
    assert parsed_cache.retained_nbytes(mixed) is None
    assert not parsed_cache.store(("k", "mixed"), ["int"], mixed, {0})
    assert parsed_cache.store(("k", "arrow"), ["int"], arrow_only, {0})
    assert parsed_cache.lookup(("k", "arrow"), ["int"])[1] == {0}
    assert parsed_cache.lookup(("k", "arrow"), ["float"]) is None  # another typing: unused
