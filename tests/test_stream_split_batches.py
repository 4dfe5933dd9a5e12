"""Local workers split the batches when partial states merge exactly: each worker folds whole
batches, taking turns, into partial states that the driver merges in batch order. Other
aggregates (a float SUM, whose rounding follows the order of its additions) keep each group in
one worker. Either way the rows equal
single-process mode, batch by batch."""
from __future__ import annotations

import collections

import pyarrow as pa
import pytest

import velaria.stream.workers as workers_mod
from velaria import Session
from velaria.plan.expr import AggregateCall, Column
from velaria.plan import logical as L

from stream_fakes import RecordingSink, RecordingSource, collect

LW = {"execution_mode": "local-workers", "local_workers": 2, "trigger_interval_ms": 0}


def _source(rows=3000, batch=200):
    keys = [None if i % 11 == 0 else f"k{i % 29}" for i in range(rows)]
    return pa.table({"key": keys, "v": [(i * 7919) % 1000 - 500 for i in range(rows)],
                     "f": [((i * 31) % 97) / 7.0 for i in range(rows)]}).to_batches(max_chunksize=batch)


def _run(sql, monkeypatch, **opts):
    """(rows, [(worker, batch number)] of the batch messages, whether the pool split batches)."""
    sent, pools = [], []
    real_send, real_start = workers_mod.WorkerPool._send, workers_mod.WorkerPool.start.__func__
    monkeypatch.setattr(workers_mod.WorkerPool, "_send",
                        lambda self, i, msg: sent.append((i, msg[0])) or real_send(self, i, msg))

    def start(cls, runtime):
        pool = real_start(cls, runtime)
        pools.append(pool.split)
        return pool
    monkeypatch.setattr(workers_mod.WorkerPool, "start", classmethod(start))
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_source()))
    _, rows = collect(s, s.stream_sql(sql), **opts)
    return rows, [i for i, kind in sent if kind == "batch"], pools


def _single(sql):
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_source()))
    return collect(s, s.stream_sql(sql))[1]


@pytest.mark.parametrize("sql", [
    "SELECT key, COUNT(*) AS n, SUM(v) AS s, AVG(v) AS a, MIN(v) AS lo, MAX(f) AS hi FROM ev GROUP BY key",
    "SELECT key, COUNT(*) AS n, MIN(f) AS lo FROM ev WHERE v > 0 GROUP BY key",
])
def test_exact_aggregates_send_each_batch_to_one_worker(sql, monkeypatch):
    rows, sent, split = _run(sql, monkeypatch, execution_mode="local-workers", local_workers=2)
    assert split == [True]
    assert sent == [i % 2 for i in range(len(_source()))]      # whole batches, taking turns
    assert sorted(map(repr, rows)) == sorted(map(repr, _single(sql)))   # the same rows, batch by batch


def test_a_float_sum_keeps_each_group_in_one_worker(monkeypatch):
    sql = "SELECT key, COUNT(*) AS n, SUM(f) AS s FROM ev GROUP BY key"
    rows, sent, split = _run(sql, monkeypatch, execution_mode="local-workers", local_workers=2)
    assert split == [False]
    assert collections.Counter(sent) == {0: len(_source()), 1: len(_source())}   # every worker reads every batch
    assert sorted(map(repr, rows)) == sorted(map(repr, _single(sql)))   # float sums bit for bit


def test_which_aggregates_merge_exactly():
    v, f = Column(type=pa.int64(), index=0, name="v"), Column(type=pa.float64(), index=1, name="f")

    def node(*aggs):
        return L.Aggregate(schema=pa.schema([]), keys=[v], aggregates=list(aggs))
    assert workers_mod.merges_exactly(node(AggregateCall(type=pa.int64(), func="count"),
                                           AggregateCall(type=pa.int64(), func="sum", arg=v),
                                           AggregateCall(type=pa.float64(), func="avg", arg=v),
                                           AggregateCall(type=pa.float64(), func="max", arg=f)))
    assert not workers_mod.merges_exactly(node(AggregateCall(type=pa.float64(), func="sum", arg=f)))
    assert not workers_mod.merges_exactly(node(AggregateCall(type=pa.int64(), func="count", arg=v, distinct=True)))
    assert not workers_mod.merges_exactly(node(AggregateCall(type=pa.float64(), func="median", arg=v)))


class _Restorable(RecordingSource):
    def _do_restore(self, offset):
        self.i = int(offset)
        return True


@pytest.mark.parametrize("sql", ["SELECT key, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY key",
                                 "SELECT key, COUNT(*) AS n, SUM(f) AS s FROM ev GROUP BY key"],
                         ids=["split", "owned"])
def test_a_checkpoint_restores_exact_totals_in_either_split(sql, tmp_path):
    path = str(tmp_path / "ck")
    opts = dict(LW, checkpoint_path=path, checkpoint_delivery_mode="best-effort")
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_source(_Restorable(_source())))
    q = s.stream_sql(sql).write_stream_sink(RecordingSink(), **opts)
    q.start()
    assert q.await_termination(max_batches=6) == 6
    s2 = Session()
    s2.create_temp_view("ev", s2.create_stream_from_source(_Restorable(_source())))
    sink = RecordingSink()
    q2 = s2.stream_sql(sql).write_stream_sink(sink, **opts)
    q2.start()
    assert q2.await_termination() == len(_source()) - 6           # resumes after batch 6
    last = {r["key"]: (r["n"], r["s"]) for r in sink.rows}
    want = {r["key"]: (r["n"], r["s"]) for r in _single(sql)}
    assert last == want


def test_the_driver_numbers_each_workers_keys_once(monkeypatch):
    """A worker's partial carries its group ids and only the keys of its groups that are new
    since its previous reply: the driver numbers each key at most once per worker, whatever
    the number of batches, and maps every other id through its per-worker array."""
    from velaria.exec.operators import AggregateOperator
    received = []
    real = AggregateOperator.merge_partial

    def merge_partial(self, new_keys, partial, id_map):
        received.append((new_keys.column("k0").to_pylist(), partial.num_rows))
        return real(self, new_keys, partial, id_map)
    monkeypatch.setattr(AggregateOperator, "merge_partial", merge_partial)
    sql = "SELECT key, COUNT(*) AS n, SUM(v) AS s FROM ev GROUP BY key"
    rows, sent, split = _run(sql, monkeypatch, execution_mode="local-workers", local_workers=2)
    assert split == [True] and len(received) == len(_source())
    for w in (0, 1):
        keys = [k for i, (new, _) in enumerate(received) if sent[i] == w for k in new]
        assert len(keys) == len(set(keys)) == 30                  # 29 texts and NULL, once each
    assert sum(len(new) for new, _ in received[2:]) == 0          # warm after each worker's first batch
    assert all(n == 30 for _, n in received)                      # every batch touches every group
    assert sorted(map(repr, rows)) == sorted(map(repr, _single(sql)))


def test_every_batch_through_reused_shared_memory_blocks(monkeypatch):
    """Every batch through a shared block (threshold 1 byte): the few blocks are reused batch
    after batch (nothing a worker keeps may point into a block the driver writes again), and
    the rows equal single-process mode."""
    sql = "SELECT key, COUNT(*) AS n, SUM(v) AS s, MAX(f) AS hi FROM ev GROUP BY key"
    kinds = []
    real_send = workers_mod.WorkerPool._send
    monkeypatch.setattr(workers_mod.WorkerPool, "_send",
                        lambda self, i, msg: kinds.append(msg[1][0]) or real_send(self, i, msg))
    s = Session()
    s.create_temp_view("ev", s.create_stream_from_arrow(_source()))
    sink = s.create_realtime_stream_sink()
    q = s.stream_sql(sql).write_stream_queue_sink(sink, **LW)
    q._rt.options = q._rt.options.__class__(**{**q._rt.options.__dict__, "shared_memory_min_payload_bytes": 1})
    q.start()
    q.await_termination()
    rows = []
    while (t := sink.poll_arrow()) is not None:
        rows.extend(t.to_pylist())
    assert len(_source()) > 4 and kinds == ["shm"] * len(_source())
    assert q.progress()["transport_mode"] == "shared-memory"
    assert rows == _single(sql)
