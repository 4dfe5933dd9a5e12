"""The join's multi-threaded passes give the one-thread output: the pair gather (right side
built), the scatter (left side built), the key bitmap test of the join key pre-filter
(``accel/src/hash_join.c``), and the join output's columns taken on several threads
(``velaria/exec/column_take.py``)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import velaria
from velaria import accel
from velaria.exec import column_take
from velaria.plan.kernel_paths import collecting

join_hash = pytest.importorskip("velaria.accel.join_hash")

needs_c = pytest.mark.skipif(not (accel.available() and join_hash.c_available()),
                             reason="the C hash join is not built")


def _pairs_by_threads(monkeypatch, lk, lvalid, rk, rvalid, how, counts=("1", "2", "3", "8")):
    out = []
    for threads in counts:
        monkeypatch.setenv("VELARIA_THREADS", threads)
        out.append(join_hash.join_pairs(lk, lvalid, rk, rvalid, how))
    return out


@needs_c
@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("left_smaller", [True, False])
@pytest.mark.parametrize("repeats", [1, 5])
def test_threaded_gather_and_scatter_give_the_single_thread_pairs(monkeypatch, how, left_smaller, repeats):
    """Both pair-writing passes split the probe rows into ranges, one per thread, each starting
    where the ranges before it end (gather) or at its rank among the rows of each key
    (scatter): the pairs are byte-identical for every thread count, with repeated keys on
    both sides, NULL keys and unmatched rows."""
    rng = np.random.default_rng(11)
    big = rng.integers(0, 120_000 // repeats, 300_000)      # several ranges of 2**16 rows
    small = rng.integers(0, 150_000 // repeats, 40_000)
    lk, rk = (small, big) if left_smaller else (big, small)
    lvalid = rng.random(lk.size) > 0.05
    rvalid = rng.random(rk.size) > 0.05
    runs = _pairs_by_threads(monkeypatch, lk, lvalid, rk, rvalid, how)
    for other in runs[1:]:
        for one, many in zip(runs[0], other):
            assert one.dtype == many.dtype and np.array_equal(one, many)
    left, _, right = runs[0]
    assert (right >= 0).sum() > 10_000                    # the join really matched rows
    # the reference order: left rows ascending, each one's right rows ascending (the padded
    # right rows of RIGHT / FULL come after them)
    pairs = np.flatnonzero((right >= 0) & ~runs[0][1])
    assert np.array_equal(np.lexsort((right[pairs], left[pairs])), np.arange(pairs.size))


@needs_c
@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 300_000), span=st.integers(1, 400_000), seed=st.integers(0, 2 ** 32 - 1),
       nulls=st.booleans())
def test_threaded_key_bitmap_answers_as_one_thread(monkeypatch_session, n, span, seed, nulls):
    """The key set's bitmap test splits the rows among threads: the same mask and count as
    one thread and as numpy's ``isin`` (NULL keys never in the set)."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(-5, span, 2_000)
    probe = rng.integers(-10, span + 10, n)
    valid = (rng.random(n) > 0.1) if nulls else None
    table = join_hash.KeyTable(keys, None)
    got = []
    for threads in ("1", "3"):
        monkeypatch_session.setenv("VELARIA_THREADS", threads)
        got.append(table.contains(probe, valid))
    want = np.isin(probe, keys) & (valid if valid is not None else True)
    for mask, count in got:
        assert np.array_equal(mask, want) and count == int(want.sum())


@pytest.fixture(scope="module")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.parametrize("threads", ["1", "2", "4"])
def test_join_output_columns_taken_on_threads(monkeypatch, threads):
    """A join of many rows takes its output columns on the pool (when there are threads to
    spare): the same table as the reference engine, NULL padding and strings included."""
    monkeypatch.setenv("VELARIA_THREADS", threads)
    rng = np.random.default_rng(3)
    n = 200_000
    fact = pa.table({"k": rng.integers(0, 5_000, n), "v": rng.random(n),
                     "s": pa.array(rng.integers(0, 10 ** 6, n).astype(str).astype(object)),
                     "d": pa.array(rng.integers(0, 20_000, n).astype(np.int32), pa.date32())})
    dim = pa.table({"k": np.concatenate([np.arange(0, 6_000, 2), np.arange(0, 600, 3)]).astype(np.int64),
                    "name": pa.array([f"n{i}" if i % 7 else None for i in range(3_200)])})
    sql = "SELECT v, s, d, name, f.k FROM f LEFT JOIN dim ON f.k = dim.k"    # fact rows repeated: gathered
    out = {}
    for engine in ("reference", "auto"):
        s = velaria.Session(engine=engine)
        s.create_temp_view("f", s.create_dataframe_from_arrow(fact))
        s.create_temp_view("dim", s.create_dataframe_from_arrow(dim))
        before = dict(column_take.stats)
        out[engine] = s.sql(sql).to_arrow()
        ran = {k: column_take.stats[k] - before[k] for k in before}
        assert ran["parallel" if threads != "1" else "serial"] >= 1
    assert out["auto"].equals(out["reference"])
    assert out["auto"].num_rows > n and out["auto"].column("name").null_count > n // 3


def test_few_rows_are_taken_on_the_callers_thread():
    before = column_take.stats["serial"]
    col = pa.array([1, 2, 3])
    got = column_take.take_columns([(col, pa.array([2, 0])), (col, pa.array([None, 1], pa.int64()))])
    assert [a.to_pylist() for a in got] == [[3, 1], [None, 2]]
    assert column_take.stats["serial"] == before + 1


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_takes_on_a_pool_of_its_own(monkeypatch):
    """A worker process forked after the parent used the pool still takes its columns: it
    starts a pool of its own (the parent's threads do not exist in it)."""
    import os

    monkeypatch.setenv("VELARIA_THREADS", "2")
    col = pa.array(np.arange(100_000))
    idx = pa.array(np.arange(99_999, -1, -1))
    assert column_take.take_columns([(col, idx), (col, idx)])[0][0].as_py() == 99_999
    pid = os.fork()
    if pid == 0:                                       # the child: exit 0 only if the take answers
        ok = False
        try:
            ok = column_take.take_columns([(col, idx), (col, idx)])[1][-1].as_py() == 0
        finally:
            os._exit(0 if ok else 1)
    import signal
    import time
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child's take did not finish")


@needs_c
@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
@pytest.mark.parametrize("dense", [True, False])
def test_unique_build_pass_gives_the_single_thread_pairs(monkeypatch, how, dense):
    """The unique-build pass probes ranges of rows on threads, then writes each range's pairs
    from where the ranges before it end: byte-identical pairs for every thread count, in the
    dense table and the hash table, with NULL keys on both sides and unmatched rows."""
    if not dense:
        monkeypatch.setattr(join_hash._BuildTable, "DENSE_SPAN_PER_ROW", 0)
    rng = np.random.default_rng(5)
    rk = rng.permutation(400_000)[:150_000]                 # distinct keys, some absent
    lk = rng.integers(0, 400_000, 300_000)                  # several probe ranges of 2**16 rows
    lvalid = rng.random(lk.size) > 0.05
    rvalid = rng.random(rk.size) > 0.05
    with collecting({}) as paths:
        runs = _pairs_by_threads(monkeypatch, lk, lvalid, rk, rvalid, how)
    assert "unique-build" in paths
    for other in runs[1:]:
        for one, many in zip(runs[0], other):
            assert one.dtype == many.dtype and np.array_equal(one, many)
    left, pad, right = runs[0]
    matched = (right >= 0) & ~pad
    assert matched.sum() > 10_000
    assert np.array_equal(lk[left[matched]], rk[right[matched]])         # the keys really match
    assert (np.diff(left[~pad]) > 0).all()                                # left rows in order, once each
