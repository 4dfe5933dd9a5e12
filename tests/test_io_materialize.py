"""Materialisation cache (upstream's entry layout and reuse rules) and cache_in_memory."""
from __future__ import annotations

import os

import pytest

from velaria.io.typed_source import clear_typing_cache


from io_fakes import FakeSession  # noqa: E402


def rows(src, columns=None):
    return [r for b in src.scan(columns) for r in b.to_pylist()]


def make_csv(tmp_path, n=20000):
    p = tmp_path / "source_input.csv"
    with open(p, "w") as f:
        f.write("id,name,amount\n")
        for i in range(1, n + 1):
            f.write(f"{i},user_{i},{i * 0.5 + 0.25}\n")
    return p


def entry_files(root):
    out = []
    for dirpath, _, files in os.walk(root):
        out += [os.path.join(dirpath, f) for f in files]
    return sorted(out)


@pytest.mark.parametrize("fmt,data_name", [(None, "table.bin"), ("nanoarrow_ipc", "table.nanoarrow"),
                                           ("binary", "table.bin"), ("arrow_ipc", "table.arrow"),
                                           ("parquet", "table.parquet")])
def test_cache_written_once_and_reused(tmp_path, fmt, data_name):
    clear_typing_cache()
    p = make_csv(tmp_path)
    cache = tmp_path / "cache"
    first = FakeSession().read_csv(str(p), materialization=True, materialization_dir=str(cache),
                                   materialization_format=fmt)
    got = rows(first)
    assert len(got) == 20000 and got[0]["id"] == 1 and got[-1]["name"] == "user_20000"
    files = entry_files(cache)
    assert [os.path.basename(f) for f in files] == sorted([data_name, "meta.txt"])
    data = [f for f in files if f.endswith(data_name)][0]
    mtime = os.stat(data).st_mtime_ns
    assert first.cache_status == "built"
    clear_typing_cache()
    second = FakeSession().read_csv(str(p), materialization_dir=str(cache),
                                    materialization_format=fmt)
    assert second.schema == first.schema
    assert rows(second) == got
    assert second.cache_status == "hit"
    assert os.stat(data).st_mtime_ns == mtime
    total = sum(r["amount"] for r in rows(second, ["id", "amount"]) if r["id"] > 15000)
    assert total == sum(i * 0.5 + 0.25 for i in range(15001, 20001))
    meta = open(os.path.join(os.path.dirname(data), "meta.txt")).read()
    for key in ("source_id=", "data_format=", "source_format=csv", "source_options=",
                "abs_path=", "file_size=", "mtime_ns="):
        assert key in meta
    assert len(os.path.basename(os.path.dirname(data))) == 16


def test_stale_entry_is_rebuilt(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("a\n1\n")
    cache = tmp_path / "cache"
    assert rows(FakeSession().read_csv(str(p), materialization_dir=str(cache))) == [{"a": 1}]
    p.write_text("a\n1\n2\n")
    os.utime(p, ns=(os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns + 10_000_000))
    src = FakeSession().read_csv(str(p), materialization_dir=str(cache))
    assert rows(src) == [{"a": 1}, {"a": 2}]
    assert src.cache_status == "rebuilt"


def test_corrupt_entry_is_rebuilt(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("a\n1\n")
    cache = tmp_path / "cache"
    rows(FakeSession().read_csv(str(p), materialization_dir=str(cache)))
    data = [f for f in entry_files(cache) if f.endswith("table.bin")][0]
    with open(data, "r+b") as f:
        f.seek(4)
        f.write(b"garbage!")
    src = FakeSession().read_csv(str(p), materialization_dir=str(cache))
    assert rows(src) == [{"a": 1}]
    assert src.cache_status == "rebuilt"


def test_json_nanoarrow_leaves_file(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text('{"a":1}\n{"a":2}\n')
    cache = tmp_path / "cache"
    src = FakeSession().read_json(str(p), ["a"], materialization=True,
                                  materialization_dir=str(cache),
                                  materialization_format="nanoarrow_ipc")
    assert rows(src) == [{"a": 1}, {"a": 2}]
    assert entry_files(cache)


def test_cache_in_memory_keeps_snapshot(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("a,b\n1,x\n2,y\n")
    src = FakeSession().read_csv(str(p), cache_in_memory=True)
    assert rows(src, ["a"]) == [{"a": 1}, {"a": 2}]
    os.unlink(p)  # served from memory from now on
    assert rows(src, ["b"]) == [{"b": "x"}, {"b": "y"}]
    assert "cache_in_memory=true" in src.describe()
