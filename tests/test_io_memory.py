"""Memory that must not grow with the file: each case runs in a fresh process at two file
sizes (4x apart) and compares the peaks of Arrow's memory pool and of Python's allocations.

A reader that held the whole file (a probe decoding a whole JSON array, a materialised CSV
kept in memory as well as on disk) shows a peak about four times larger on the big file."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import json, sys, tracemalloc
    import pyarrow as pa
    import velaria
    from velaria.io import csv_quotes, csv_scan_typing, csv_source
    case, path, cache = sys.argv[1:4]
    # the readers' fixed-size read buffers, made small so that both files span many (pyarrow's
    # streaming reader, used once a quote is seen, reads up to 32 blocks ahead)
    csv_source._CHUNK_BYTES = csv_quotes._READ_BYTES = csv_scan_typing._CHUNK_BYTES = 1 << 20
    csv_source._BLOCK_SIZE = 64 << 10
    tracemalloc.start()
    s = velaria.Session()
    if case == "probe_json_array":
        assert s.probe(path)["kind"] == "json"
    else:
        s.create_temp_view("t", s.read_csv(path, materialization_dir=cache))
        assert s.sql("SELECT COUNT(*) AS n, SUM(v) AS total FROM t").to_rows()["rows"][0][0] > 0
    pool = pa.default_memory_pool()
    print(json.dumps({"python_peak": tracemalloc.get_traced_memory()[1],
                      "arrow_peak": pool.max_memory(), "arrow_held": pool.bytes_allocated()}))
""")


def _write_csv(path, mb: int, quoted: bool) -> None:
    # a quote after the header sends the typing pass through Arrow (the C scan refuses it)
    pad = '"x,y"' if quoted else "xy"
    row_len = len(f"1000000,{pad},0.5\n")
    rows = (mb << 20) // row_len
    with open(path, "w") as handle:
        handle.write("id,pad,v\n")
        handle.write("".join(f"{i},{pad},{i % 97}.5\n" for i in range(rows)))


def _write_json_array(path, mb: int) -> None:
    item = json.dumps({"id": 1, "name": "n", "pad": "x" * 80})
    count = (mb << 20) // (len(item) + 1)
    with open(path, "w") as handle:
        handle.write("[" + ",".join(item for _ in range(count)) + "]")


def _peaks(tmp_path, case: str, mb: int) -> dict:
    path = tmp_path / f"{case}_{mb}.{'json' if case == 'probe_json_array' else 'csv'}"
    if case == "probe_json_array":
        _write_json_array(path, mb)
    else:
        _write_csv(path, mb, quoted=case.endswith("quoted"))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    done = subprocess.run([sys.executable, str(script), case, str(path), str(tmp_path / f"cache_{mb}")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["probe_json_array", "materialized_csv", "materialized_csv_quoted"])
def test_peak_memory_does_not_grow_with_the_file(tmp_path, case):
    # probing reads pieces of at most 4 MiB of a line: both files are bigger than that
    mb = 6 if case == "probe_json_array" else 3
    small, big = _peaks(tmp_path, case, mb), _peaks(tmp_path, case, 4 * mb)
    slack = 2 << 20  # allocator noise, not a copy of several more MB of file
    for key in ("python_peak", "arrow_peak"):
        assert big[key] <= small[key] * 1.25 + slack, (key, small, big)
    # and nothing of the file stays behind in memory once the query is done
    assert big["arrow_held"] <= slack, big
