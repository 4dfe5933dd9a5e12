"""Exact per-group int64 sums: the C kernel and its numpy twin agree with Python integers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from velaria.accel import int_sums

I64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
VALUE = st.one_of(I64, st.sampled_from([0, -1, 1, 2 ** 63 - 1, -(2 ** 63), 2 ** 32, -(2 ** 32), 2 ** 31]))
ROWS = st.lists(st.tuples(st.integers(0, 4), VALUE, st.booleans()), max_size=80)

LEVELS = [False, pytest.param(True, marks=pytest.mark.skipif(
    not int_sums.c_available(), reason="C accelerator not built: only the numpy twin can run"))]


@pytest.mark.parametrize("use_c", LEVELS)
@settings(max_examples=200, deadline=None)
@given(batches=st.lists(ROWS, max_size=5))
def test_group_sums_are_exact(use_c, batches):
    g = 5
    lo, hi, counts = (np.zeros(g, dtype=np.int64) for _ in range(3))
    want, want_counts = [0] * g, [0] * g
    for rows in batches:
        gids = np.array([r[0] for r in rows], dtype=np.int64)
        x = np.array([r[1] for r in rows], dtype=np.int64)
        valid = np.array([r[2] for r in rows], dtype=bool) if rows and not all(r[2] for r in rows) else None
        int_sums.group_sum_i64(gids, x, valid, lo, hi, counts, use_c=use_c)
        for gid, v, ok in rows:
            if ok or valid is None:
                want[gid] += v
                want_counts[gid] += 1
        assert ((0 <= lo) & (lo < 2 ** 32)).all()
    assert [int(h) * 2 ** 32 + int(l) for h, l in zip(hi, lo)] == want
    assert counts.tolist() == want_counts


@st.composite
def multi_batches(draw):
    n = draw(st.integers(0, 60))
    gids = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.int64)
    k = draw(st.integers(1, 4))
    shared = draw(st.sampled_from(["none", "one selection", "each its own"]))
    sel = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    columns = []
    for _ in range(k):
        x = np.array(draw(st.lists(VALUE, min_size=n, max_size=n)), dtype=np.int64)
        valid = None if shared == "none" else sel if shared == "one selection" else \
            np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        columns.append((x, valid))
    return gids, columns


@pytest.mark.parametrize("use_c", LEVELS)
@settings(max_examples=150, deadline=None)
@given(batches=st.lists(multi_batches(), min_size=1, max_size=3))
def test_several_sums_in_one_pass_are_exact(use_c, batches):
    g, k = 5, len(batches[0][1])
    los, his, counts = ([np.zeros(g, dtype=np.int64) for _ in range(k)] for _ in range(3))
    want = [[0] * g for _ in range(k)]
    want_counts = [[0] * g for _ in range(k)]
    for gids, columns in batches:
        m = min(k, len(columns))                   # a batch with fewer columns feeds the first states
        columns = columns[:m]
        int_sums.group_sum_multi_i64(gids, columns, los[:m], his[:m], counts[:m], use_c=use_c)
        for j, (x, valid) in enumerate(columns):
            for i, gid in enumerate(gids.tolist()):
                if valid is None or valid[i]:
                    want[j][gid] += int(x[i])
                    want_counts[j][gid] += 1
    for j in range(k):
        assert ((0 <= los[j]) & (los[j] < 2 ** 32)).all()
        assert [int(h) * 2 ** 32 + int(lo) for h, lo in zip(his[j], los[j])] == want[j]
        assert counts[j].tolist() == want_counts[j]


def test_accelerated_aggregate_uses_the_one_pass_int_sum(monkeypatch):
    """SUM over int64 goes through int_sums (the fast path really ran) and stays exact past
    the int64 range."""
    import pyarrow as pa
    from velaria import Session
    calls = []
    real, real_multi = int_sums.group_sum_i64, int_sums.group_sum_multi_i64
    monkeypatch.setattr(int_sums, "group_sum_i64", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    # SUM(v) and AVG(v) are two exact sums: one pass folds both
    monkeypatch.setattr(int_sums, "group_sum_multi_i64", lambda *a, **k: (calls.append(2), real_multi(*a, **k))[1])
    s = Session(engine="accel")
    big = 2 ** 62
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"k": ["a", "b", "a", "a"],
                                                                    "v": [big, 1, big, -big]})))
    rows = s.sql("SELECT k, SUM(v) AS s, AVG(v) AS a FROM t GROUP BY k ORDER BY k").to_arrow().to_pylist()
    assert calls
    # the running total passes 2**63 on the way (big + big) and comes back: exact
    assert rows == [{"k": "a", "s": big, "a": float(big) / 3}, {"k": "b", "s": 1, "a": 1.0}]
