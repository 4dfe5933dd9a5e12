"""The CSV fast paths must not change results: chunked multi-threaded parsing (with the
streaming fallback once a quote appears), and the typing pass's kept conversions (retention)
versus a fresh parse."""
from __future__ import annotations

import random

import pytest

import velaria.io.csv_source as csv_source
from velaria.io.csv_source import CsvSource
from velaria.io.typed_source import clear_typing_cache


def _read(path, chunk, retain_mb, monkeypatch, columns=None):
    clear_typing_cache()
    monkeypatch.setattr(csv_source, "_CHUNK_BYTES", chunk)
    monkeypatch.setenv("VELARIA_IO_RETAIN_MB", str(retain_mb))
    src = CsvSource(str(path))
    rows = [r for b in src.scan(columns) for r in b.to_pylist()]
    return src.schema, rows


def _variants(path, monkeypatch, columns=None):
    out = [_read(path, chunk, mb, monkeypatch, columns)
           for chunk in (1 << 30, 64, 200) for mb in (0, 256)]
    for other in out[1:]:
        assert other == out[0]
    return out[0]


def _write(path, lines, crlf=False):
    sep = "\r\n" if crlf else "\n"
    path.write_bytes((sep.join(lines) + sep).encode())


@pytest.mark.parametrize("crlf", [False, True])
def test_late_cells_decide_the_type_across_chunks(tmp_path, monkeypatch, crlf):
    lines = ["a,b,c,d,e"] + [f"{i},{i},{str(i % 2 == 0).lower()},{i}.5,x{i}" for i in range(200)]
    lines += ["007,1.5,TRUE,,y", "", "5,6,false,1e3,z"]
    p = tmp_path / "late.csv"
    _write(p, lines, crlf)
    schema, rows = _variants(p, monkeypatch)
    assert [str(t) for t in schema.types] == ["string", "double", "bool", "double", "string"]
    assert rows[0] == {"a": "0", "b": 0.0, "c": True, "d": 0.5, "e": "x0"}
    assert rows[200] == {"a": "007", "b": 1.5, "c": True, "d": None, "e": "y"}
    assert rows[-1]["d"] == 1000.0 and len(rows) == 202
    assert _variants(p, monkeypatch, ["b", "a"])[1][200] == {"b": 1.5, "a": "007"}


def test_quotes_fall_back_to_the_streaming_reader(tmp_path, monkeypatch):
    lines = ['"x","y"'] + [f"{i},v{i}" for i in range(100)]
    lines += ['100,"multi\nline, quoted"', '101,"say ""hi"""'] + [f"{i},w" for i in range(102, 150)]
    p = tmp_path / "quoted.csv"
    _write(p, lines)
    schema, rows = _variants(p, monkeypatch)
    assert [str(t) for t in schema.types] == ["int64", "string"]
    assert rows[100] == {"x": 100, "y": "multi\nline, quoted"}
    assert rows[101] == {"x": 101, "y": 'say "hi"'} and len(rows) == 150


def test_int_column_turning_to_text_keeps_the_text(tmp_path, monkeypatch):
    lines = ["n,f,b"] + [f"-0,{i}.0,true" for i in range(150)] + ["abc,n/a,no"]
    p = tmp_path / "text.csv"
    _write(p, lines)
    schema, rows = _variants(p, monkeypatch)
    assert [str(t) for t in schema.types] == ["string", "string", "string"]
    assert rows[0] == {"n": "-0", "f": "0.0", "b": "true"} and rows[-1]["f"] == "n/a"


def test_random_files_match_across_paths(tmp_path, monkeypatch):
    rng = random.Random(5)
    cells = ["1", "-2", "0", "007", "3.25", "1e5", "true", "FALSE", "", "x", "9223372036854775808",
             "[1 2]", "+5", "inf", "12345678901234567"]
    for n in range(6):
        pool = rng.sample(cells, 3)
        lines = ["p,q,r"] + [",".join(rng.choice(pool) if rng.random() < 0.9 else rng.choice(cells)
                                      for _ in range(3)) for _ in range(rng.randint(1, 300))]
        p = tmp_path / f"r{n}.csv"
        _write(p, lines, crlf=bool(n % 2))
        _variants(p, monkeypatch)
