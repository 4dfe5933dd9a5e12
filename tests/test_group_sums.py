"""Grouped float sums of several arguments in one pass (``accel/src/group_multi_sum.c``)
against the numpy twin (one pass per argument) and the reference's left-to-right sums:
the same bits, with NULLs, NaN, -0.0, +-inf and extreme magnitudes."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria.accel import group_sums

FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, math.nan, 1e308, -1e308, 5e-324, 0.1]))


@st.composite
def cases(draw):
    n = draw(st.integers(0, 40))
    g = draw(st.integers(1, 4))
    gids = np.array(draw(st.lists(st.integers(0, g - 1), min_size=n, max_size=n)), dtype=np.int64)
    columns = []
    # one validity object for every column (a selection, or no NULLs): C counts once
    shared = draw(st.booleans())
    shared_valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool) \
        if draw(st.booleans()) else None
    for _ in range(draw(st.integers(1, 4))):
        x = np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype=np.float64)
        valid = shared_valid if shared else None
        if not shared and draw(st.booleans()):
            valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        columns.append((x, valid))
    start = [draw(st.sampled_from([0.0, -0.0, 1.5, math.inf])) for _ in columns]
    return gids, g, columns, start


def _run(case, use_c):
    gids, g, columns, start = case
    totals = [np.full(g, s) for s in start]
    counts = [np.zeros(g, dtype=np.int64) for _ in columns]
    group_sums.group_sum_multi_f64(gids, columns, totals, counts, use_c=use_c)
    return totals, counts


def _bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64).tolist()


@pytest.mark.skipif(not group_sums.c_available(), reason="C kernel not built")
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases())
def test_one_pass_equals_one_pass_per_column_and_row_order(case):
    c_totals, c_counts = _run(case, True)
    np_totals, np_counts = _run(case, False)
    gids, g, columns, start = case
    for j, (x, valid) in enumerate(columns):
        want = [start[j]] * g
        want_counts = [0] * g
        for i, gi in enumerate(gids.tolist()):
            if valid is None or valid[i]:
                want[gi] = want[gi] + float(x[i])       # left to right, as the reference
                want_counts[gi] += 1
        assert _bits(c_totals[j]) == _bits(np_totals[j]) == _bits(want)
        assert c_counts[j].tolist() == np_counts[j].tolist() == want_counts
