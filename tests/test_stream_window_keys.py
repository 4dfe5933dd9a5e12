"""Late window formatting: a windowed GROUP BY groups on int64 window starts and formats the
text of the groups it emits. Same rows, same order, same values as grouping on the text."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

import velaria.exec.window as window_mod
from velaria import Session
from velaria.plan import logical as L
from velaria.stream.plan import StreamScanSource
from velaria.exec.window import WindowAssignOperator, WindowKeyAggregateOperator

from stream_fakes import collect

TIMES = ["2026-03-29T10:00:00", None, "2026-03-29T10:00:10.250", "2026-03-29T10:01:35", "2026-03-29",
         "1970-01-01T00:00:00.001", None, "2026-03-29T10:00:59.999"]


def _events(n_batches=3):
    batches = []
    for b in range(n_batches):
        ts = [TIMES[(i + b) % len(TIMES)] for i in range(11)]
        batches.append(pa.record_batch({"ts": ts, "key": [None if i % 4 == 3 else f"k{(i * 7 + b) % 3}" for i in range(11)],
                                        "v": [None if i % 5 == 0 else i + b for i in range(11)]}))
    return batches


QUERIES = [
    "SELECT window_start, key, COUNT(*) AS c, SUM(v) AS s FROM ev WINDOW BY ts EVERY 60000 AS window_start "
    "GROUP BY window_start, key",
    "SELECT key, window_start, MIN(v) AS lo, MAX(v) AS hi, AVG(v) AS a FROM ev WINDOW BY ts EVERY 60000 "
    "SLIDE 20000 AS window_start GROUP BY key, window_start",
    "SELECT window_start, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 1500 AS window_start GROUP BY window_start",
    # HAVING runs above the aggregate
    "SELECT window_start, COUNT(*) AS c FROM ev WINDOW BY ts EVERY 60000 AS window_start "
    "GROUP BY window_start HAVING c >= 1",
]


def _run(engine, sql, late: bool, monkeypatch, **opts):
    with monkeypatch.context() as m:
        if not late:
            m.setattr(window_mod, "late_window_key", lambda window, aggregate: None)
            import velaria.stream.operators as ops
            m.setattr(ops, "late_window_key", lambda window, aggregate: None)
        s = Session(engine=engine) if engine else Session()
        s.create_temp_view("ev", s.create_stream_from_arrow(_events()))
        q, rows = collect(s, s.stream_sql(sql), **opts)
    kinds = {type(op) for op in q._rt.operators}
    if late and "SLIDE" in sql and "GROUP BY key, window_start" in sql:
        # the sliding copies repeat dictionary codes of the text key, not the text
        assert any(getattr(op, "encode", None) for op in q._rt.operators)
    if late and "GROUP BY window_start, key" in sql:
        # the two-key aggregate gets the window starts numbered (dictionary-encoded)
        assert any(getattr(op, "numbered", False) for op in q._rt.operators)
    return rows, kinds


@pytest.mark.parametrize("engine", ["reference", "accel"])
@pytest.mark.parametrize("sql", QUERIES)
def test_late_formatting_gives_the_same_rows(engine, sql, monkeypatch):
    late, kinds = _run(engine, sql, True, monkeypatch)
    text, plain = _run(engine, sql, False, monkeypatch)
    assert WindowKeyAggregateOperator in kinds and WindowKeyAggregateOperator not in plain
    assert late == text
    assert any(r["window_start"] is None for r in late)         # NULL times keep their group
    assert all(r["window_start"] is None or isinstance(r["window_start"], str) for r in late)


@pytest.mark.parametrize("sql", QUERIES[:2])
def test_late_formatting_in_local_workers(sql, monkeypatch):
    single, _ = _run(None, sql, True, monkeypatch)
    workers, kinds = _run(None, sql, True, monkeypatch, execution_mode="local-workers", local_workers=2)
    assert WindowKeyAggregateOperator in kinds
    assert sorted(map(repr, workers)) == sorted(map(repr, single))


@pytest.mark.parametrize("sql", [
    # the window column is read by something else than the GROUP BY: keep the text column
    "SELECT window_start, COUNT(*) AS c, MAX(window_start) AS m FROM ev WINDOW BY ts EVERY 60000 "
    "AS window_start GROUP BY window_start",
    "SELECT window_start, key FROM ev WINDOW BY ts EVERY 60000 AS window_start",
])
def test_other_uses_of_the_window_column_keep_text(sql, monkeypatch):
    rows, kinds = _run(None, sql, True, monkeypatch)
    assert WindowKeyAggregateOperator not in kinds and WindowAssignOperator in kinds
    assert rows and all(r["window_start"] is None or isinstance(r["window_start"], str) for r in rows)


def test_checkpoint_of_a_plain_window_plan_is_refused_by_the_late_plan(tmp_path, monkeypatch):
    """The state layout differs (text vs int64 keys): the plan fingerprint says so."""
    sql = QUERIES[0]
    ck = str(tmp_path / "ck")
    with monkeypatch.context() as m:
        import velaria.stream.operators as ops
        m.setattr(ops, "late_window_key", lambda window, aggregate: None)
        s = Session()
        s.create_temp_view("ev", s.create_stream_from_arrow(_events()))
        collect(s, s.stream_sql(sql), checkpoint_path=ck)
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_events()))
    with pytest.raises(RuntimeError, match="checkpoint"):
        collect(s, s.stream_sql(sql), checkpoint_path=ck)


_MS = st.one_of(st.none(), st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=0, max_value=200_000))


@settings(max_examples=200, deadline=None)
@given(st.lists(_MS, max_size=40), st.sampled_from([(60000, 60000), (60000, 30000), (1000, 300), (5, 1)]))
def test_numbered_window_starts_decode_to_the_plain_starts(ms, sizes):
    """The dictionary-encoded window column (for a two-key aggregate) holds, row for row, the
    same starts as the plain int64 column: NULL times, negative times, wide spans (hashed)."""
    every, slide = sizes
    batch = pa.record_batch({"ts": pa.array(ms, pa.int64())})
    scan = L.Scan(schema=batch.schema, source=StreamScanSource(batch.schema), table_name="t")
    node = window_mod.window_node(scan, "ts", every, slide, "w")
    plain = WindowAssignOperator(node, epoch_ms=True).push(batch)
    numbered = WindowAssignOperator(node, epoch_ms=True, numbered=True).push(batch)
    if not ms:
        assert plain == numbered == []
        return
    column = numbered[0].column(1)
    assert pa.types.is_dictionary(column.type)
    assert column.cast(pa.int64()).to_pylist() == plain[0].column(1).to_pylist()
