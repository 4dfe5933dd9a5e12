"""The CSV file sink never leaves a torn line: an append cut short by a crash is cut off when
the sink opens the file again, found by the quote-aware scan of ``velaria.stream.csv_tail``."""
from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria import Session
from velaria.stream import csv_tail
from velaria.stream.sinks import CsvFileStreamSink

_FIELD = st.text(alphabet=st.sampled_from(list('ab,"\r\n é')), max_size=6)
_RECORDS = st.lists(st.lists(_FIELD, min_size=1, max_size=3), max_size=8)


def _csv_bytes(records) -> tuple[bytes, list[int]]:
    """The records as the sink writes them, and the byte offset after each record."""
    data, ends = b"", []
    for r in records:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(r)
        data += buf.getvalue().encode("utf-8")
        ends.append(len(data))
    return data, ends


@settings(max_examples=300, deadline=None)
@given(_RECORDS, st.integers(min_value=0, max_value=10_000), st.sampled_from([1, 3, 1 << 20]))
def test_complete_length_is_the_end_of_the_last_whole_record(tmp_path_factory, records, cut, chunk):
    data, ends = _csv_bytes(records)
    cut = min(cut, len(data))
    path = tmp_path_factory.mktemp("tail") / "f.csv"
    path.write_bytes(data[:cut])
    old = csv_tail._CHUNK
    csv_tail._CHUNK = chunk                        # small chunks: line feeds and quotes across chunk edges
    try:
        with open(path, "rb") as f:
            got = csv_tail.complete_length(f, cut)
    finally:
        csv_tail._CHUNK = old
    assert got == max([e for e in ends if e <= cut], default=0)


@settings(max_examples=300, deadline=None)
@given(_RECORDS, st.integers(min_value=0, max_value=10_000))
def test_first_record_length_is_the_end_of_the_first_whole_record(records, cut):
    data, ends = _csv_bytes(records)
    cut = min(cut, len(data))
    want = ends[0] if ends and ends[0] <= cut else 0
    assert csv_tail.first_record_length(data[:cut]) == want


def test_an_intact_or_missing_file_is_left_alone(tmp_path):
    assert csv_tail.cut_torn_tail(str(tmp_path / "none.csv")) == 0
    p = tmp_path / "ok.csv"
    p.write_bytes(b'k,v\r\n"x\r\ny",1\r\n')
    assert csv_tail.cut_torn_tail(str(p)) == 0 and p.read_bytes() == b'k,v\r\n"x\r\ny",1\r\n'


def test_the_sink_cuts_a_torn_record_inside_a_quoted_line_break(tmp_path):
    p = tmp_path / "o.csv"
    # the torn record stopped right after a line feed inside its quoted field
    p.write_bytes(b'k,v\r\na,1\r\n"torn\r\n')
    sink = CsvFileStreamSink(str(p))
    with pytest.warns(RuntimeWarning, match=r"o\.csv ended in an incomplete record .* removed its last 7 bytes"):
        Session().create_stream_from_arrow(_table()).write_stream_sink(sink, trigger_interval_ms=0) \
            .await_termination()
    assert sink.repaired_bytes == 7
    assert p.read_bytes() == b"k,v\r\na,1\r\nb,2\r\nc,3\r\n"


def test_a_torn_header_is_written_again(tmp_path):
    p = tmp_path / "o.csv"
    p.write_bytes(b"k,")
    with pytest.warns(RuntimeWarning):
        Session().create_stream_from_arrow(_table()).write_stream_csv(str(p), trigger_interval_ms=0) \
            .await_termination()
    assert p.read_bytes() == b"k,v\r\nb,2\r\nc,3\r\n"


def _table():
    import pyarrow as pa
    return pa.table({"k": ["b", "c"], "v": [2, 3]})


CHILD = textwrap.dedent("""
    import os, sys
    import pyarrow as pa
    from velaria import Session
    from velaria.stream.sinks import CsvFileStreamSink
    out, ckpt, crash = sys.argv[1], sys.argv[2], sys.argv[3] == "crash"
    real = CsvFileStreamSink._do_write
    calls = [0]
    def write(self, batch):
        calls[0] += 1
        if crash and calls[0] == 3:
            # the process dies in the middle of this batch's append
            self._file.write(b'x,"half of a quoted\\r\\nfie')
            os.fsync(self._file.fileno())
            os.kill(os.getpid(), signal_kill)
        real(self, batch)
    signal_kill = 9
    CsvFileStreamSink._do_write = write
    batches = pa.table({"k": [f"k{i}" for i in range(6)], "v": list(range(6))}).to_batches(max_chunksize=1)
    q = Session().create_stream_from_arrow(batches).write_stream_csv(
        out, trigger_interval_ms=0, checkpoint_path=ckpt, durability_profile="single-node-durable")
    q.await_termination()
""")


def test_a_restart_after_sigkill_mid_append_leaves_no_torn_line(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out, ckpt = str(tmp_path / "o.csv"), str(tmp_path / "ck")
    crashed = subprocess.run([sys.executable, str(script), out, ckpt, "crash"], capture_output=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert (tmp_path / "o.csv").read_bytes().endswith(b"fie")      # the torn append is really there
    resumed = subprocess.run([sys.executable, str(script), out, ckpt, "resume"], capture_output=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert b"incomplete record" in resumed.stderr
    data = (tmp_path / "o.csv").read_bytes()
    assert data.endswith(b"\r\n") and b"half" not in data
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["k", "v"] and all(len(r) == 2 for r in rows[1:])
    # at-least-once: every input row is there (the first two possibly twice)
    assert {tuple(r) for r in rows[1:]} == {(f"k{i}", str(i)) for i in range(6)}
