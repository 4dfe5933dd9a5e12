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


def test_accelerated_aggregate_uses_the_one_pass_int_sum(monkeypatch):
    """SUM over int64 goes through int_sums (the fast path really ran) and stays exact past
    the int64 range."""
    import pyarrow as pa
    from velaria import Session
    calls = []
    real = int_sums.group_sum_i64
    monkeypatch.setattr(int_sums, "group_sum_i64", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    s = Session(engine="accel")
    big = 2 ** 62
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"k": ["a", "b", "a", "a"],
                                                                    "v": [big, 1, big, -big]})))
    rows = s.sql("SELECT k, SUM(v) AS s, AVG(v) AS a FROM t GROUP BY k ORDER BY k").to_arrow().to_pylist()
    assert calls
    # the running total passes 2**63 on the way (big + big) and comes back: exact
    assert rows == [{"k": "a", "s": big, "a": float(big) / 3}, {"k": "b", "s": 1, "a": 1.0}]
