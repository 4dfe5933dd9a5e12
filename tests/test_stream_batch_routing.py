"""Local workers: a batch goes only to the workers whose windows its time range may touch."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import velaria.stream.workers as workers_mod
from velaria import Session
from velaria.exec.window import WindowAssignOperator, window_node
from velaria.plan import logical as L
from velaria.stream.batch_routing import BatchRouter
from velaria.stream.plan import StreamScanSource

from stream_fakes import collect

_SIZES = [(60000, 60000), (60000, 30000), (1000, 300), (5, 1), (7, 7)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-10**7, 10**7)), max_size=30), st.sampled_from(_SIZES),
       st.integers(2, 4), st.integers(0, 3))
def test_every_row_owner_is_among_the_batch_owners(ms, sizes, workers, index):
    index %= workers
    every, slide = sizes
    batch = pa.record_batch({"ts": pa.array(ms, pa.int64()), "v": pa.array(range(len(ms)), pa.int64())})
    scan = L.Scan(schema=batch.schema, source=StreamScanSource(batch.schema), table_name="t")
    op = WindowAssignOperator(window_node(scan, "ts", every, slide, "w"), epoch_ms=True)
    op.owner = (workers, index)
    kept = sum(b.num_rows for b in op.push(batch))
    owners = BatchRouter(0, every, slide, workers).owners(batch)
    assert owners == sorted(set(owners)) and all(0 <= o < workers for o in owners)
    if kept:                       # the worker keeps rows of this batch: it must be sent it
        assert index in owners


def test_text_times_go_to_every_worker():
    batch = pa.record_batch({"ts": pa.array(["2026-03-29T10:00:00"])})
    assert BatchRouter(0, 60000, 60000, 3).owners(batch) == [0, 1, 2]


SQL = ("SELECT window_start, key, COUNT(*) AS c, SUM({arg}) AS s FROM ev WINDOW BY ts EVERY 60000{slide} "
       "AS window_start GROUP BY window_start, key")


def _batches():
    rng = np.random.default_rng(5)
    out = []
    for b in range(8):               # 25 s per batch, in time order: most batches lie in one window
        ts = np.sort(rng.integers(b * 25_000, (b + 1) * 25_000, 30))
        v = rng.integers(0, 50, 30)
        out.append(pa.record_batch({"ts": pa.array(ts, pa.int64()),
                                    "key": pa.array([f"k{int(x)}" for x in rng.integers(0, 4, 30)]),
                                    "v": pa.array(v, pa.int64()), "f": pa.array(v / 8.0, pa.float64())}))
    return out


def _run(sql, monkeypatch, **opts):
    sent = []
    real = workers_mod.WorkerPool._send
    monkeypatch.setattr(workers_mod.WorkerPool, "_send",
                        lambda self, i, msg: sent.append((i, msg[0])) or real(self, i, msg))
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_batches()))
    _, rows = collect(s, s.stream_sql(sql), **opts)
    return rows, [i for i, kind in sent if kind == "batch"]


def test_routed_batches_give_the_single_process_rows(monkeypatch, tmp_path):
    """A float SUM keeps each group in one worker: a tumbling window's batches go only to
    the workers of the windows they touch."""
    sql = SQL.format(arg="f", slide="")
    single, _ = _run(sql, monkeypatch)
    workers, sent = _run(sql, monkeypatch, execution_mode="local-workers", local_workers=2)
    assert sorted(map(repr, workers)) == sorted(map(repr, single))
    assert len(_batches()) < len(sent) < 2 * len(_batches())     # a batch inside one window: one worker
    checked, sent = _run(sql, monkeypatch, execution_mode="local-workers", local_workers=2,
                         checkpoint_path=str(tmp_path / "ck"))
    assert sorted(map(repr, checked)) == sorted(map(repr, single))
    # with a checkpoint every batch reaches every worker (each sends its state with it)
    assert len(sent) == 2 * len(_batches())


@pytest.mark.parametrize("slide", ["", " SLIDE 30000"])
def test_exact_windowed_sums_split_the_batches(slide, monkeypatch, tmp_path):
    """COUNT and an integer SUM merge exactly: tumbling or sliding, the workers take turns,
    a whole batch each, and the driver holds the merged state (a checkpoint gathers nothing)."""
    sql = SQL.format(arg="v", slide=slide)
    single, _ = _run(sql, monkeypatch)
    for opts in ({}, {"checkpoint_path": str(tmp_path / "ck")}):
        workers, sent = _run(sql, monkeypatch, execution_mode="local-workers", local_workers=2, **opts)
        assert sorted(map(repr, workers)) == sorted(map(repr, single))
        assert sent == [0, 1] * (len(_batches()) // 2)
