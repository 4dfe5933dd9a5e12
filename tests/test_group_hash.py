"""The persistent int64 group table: C kernel and numpy twin number keys identically."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from velaria.accel.group_hash import Int64GroupTable, c_available

I64 = st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1)
BATCH = st.lists(st.one_of(I64, st.integers(-3, 3), st.sampled_from([0, -1, 2 ** 31, 1 << 62])),
                 max_size=60)


def _oracle(batches):
    """First-appearance numbering with a dict: (ids per batch, new positions per batch)."""
    seen: dict[int, int] = {}
    out = []
    for b in batches:
        ids, new = [], []
        for i, k in enumerate(b):
            if k not in seen:
                seen[k] = len(seen)
                new.append(i)
            ids.append(seen[k])
        out.append((ids, new))
    return out


@pytest.mark.parametrize("use_c", [False, pytest.param(True, marks=pytest.mark.skipif(
    not c_available(), reason="C accelerator not built: only the numpy twin can run"))])
@settings(max_examples=150, deadline=None)
@given(batches=st.lists(BATCH, max_size=6))
def test_table_numbers_keys_in_first_appearance_order(use_c, batches):
    table = Int64GroupTable(use_c=use_c)
    assert table.use_c == use_c
    for (want_ids, want_new), b in zip(_oracle(batches), batches):
        ids, new = table.ids(np.array(b, dtype=np.int64))
        assert ids.tolist() == want_ids
        assert new.tolist() == want_new
    flat = [k for b in batches for k in b]
    assert table.keys.tolist() == list(dict.fromkeys(flat))


@pytest.mark.skipif(not c_available(), reason="C accelerator not built: only the numpy twin can run")
def test_c_table_grows_and_keeps_ids():
    """Many batches of partly new keys force several rehashes; ids never change."""
    rng = np.random.default_rng(3)
    c, twin = Int64GroupTable(use_c=True), Int64GroupTable(use_c=False)
    for step in range(40):
        keys = rng.integers(0, 5_000 * (step + 1), 3_000, dtype=np.int64) << 20
        a, b = c.ids(keys), twin.ids(keys)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(c.keys, twin.keys)
    assert len(c) == len(twin) > 50_000
