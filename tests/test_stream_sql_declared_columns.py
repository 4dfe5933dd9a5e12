"""A stream source table over a directory that has no files yet still plans from its declared
columns: explain works and planning errors surface before the query runs."""
from __future__ import annotations

import pytest

from velaria import Session
from velaria.errors import SQLUnsupportedError, VelariaError


@pytest.fixture()
def session(tmp_path):
    s = Session()
    (tmp_path / "in").mkdir()
    s.sql(f"CREATE SOURCE TABLE src (key TEXT, value BIGINT, ts BIGINT) USING csv "
          f"OPTIONS(path: '{tmp_path / 'in'}')")
    return s


def test_explain_before_any_file_arrives(session):
    text = session.explain_stream_sql("SELECT key, SUM(value) AS total FROM src GROUP BY key")
    assert [l for l in text.splitlines() if l in ("logical", "physical", "strategy")] == \
        ["logical", "physical", "strategy"]
    assert "Aggregate keys=[key]" in text


@pytest.mark.parametrize("call", ["stream_sql", "explain_stream_sql"])
def test_planning_errors_before_any_file_arrives(session, call):
    with pytest.raises(SQLUnsupportedError, match="WINDOW SLIDE must be > 0 and <= EVERY"):
        getattr(session, call)("SELECT key FROM src WINDOW BY ts EVERY 10 SLIDE 20 AS w")
    with pytest.raises(VelariaError, match="column not found: nope"):
        getattr(session, call)("SELECT nope FROM src")


def test_the_query_runs_once_files_arrive(session, tmp_path):
    frame = session.stream_sql("SELECT key, SUM(value) AS total FROM src GROUP BY key")
    (tmp_path / "in" / "p1.csv").write_text("key,value,ts\na,1,0\nb,2,0\na,3,0\n")
    sink = session.create_realtime_stream_sink()
    query = frame.write_stream_queue_sink(sink, trigger_interval_ms=0)
    assert query.await_termination(max_batches=1) == 1
    query.stop()
    out = sink.poll_arrow()
    assert sorted(zip(out.column("key").to_pylist(), out.column("total").to_pylist())) == [("a", 4), ("b", 2)]
