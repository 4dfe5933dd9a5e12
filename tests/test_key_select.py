"""The join key pre-filter's one-pass selection (``accel/key_select.py``, C in
``accel/src/key_select.c``): the row numbers of the keys a bitmap holds, on every SIMD level
and thread count, against the numpy twin and a plain Python definition; and the key set's
``select`` taking it (the fast path really runs).

Generated keys have NULLs, int64 extremes, keys below, at both ends of and above the bitmap's
range, empty inputs, ties (repeated keys) and lengths at the 8-row SIMD groups' edges."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velaria.accel import _loader, join, key_select
from velaria.plan.kernel_paths import collecting

needs_c = pytest.mark.skipif(not key_select.c_available(), reason="C kernel not built")
LEVELS = _loader.available_backends()
I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1


def _definition(keys, valid, lo, span, bitmap) -> list[int]:
    """Row i is kept when it is valid and lo <= key < lo + span with its bit set."""
    out = []
    for i, k in enumerate(keys.tolist()):
        if valid is not None and not valid[i]:
            continue
        b = int(k) - lo
        if 0 <= b < span and (int(bitmap[b >> 6]) >> (b & 63)) & 1:
            out.append(i)
    return out


@st.composite
def cases(draw):
    n = draw(st.one_of(st.integers(0, 40), st.sampled_from([7, 8, 9, 15, 16, 17, 97, 1023, 1025, 4099])))
    lo = draw(st.sampled_from([0, -5, 1, 10 ** 12, I64_MIN, I64_MAX - 300, -(2 ** 40)]))
    span = draw(st.sampled_from([0, 1, 63, 64, 65, 200, 300]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    words = (span + 63) // 64
    bitmap = rng.integers(0, 2 ** 64, words + 1, dtype=np.uint64, endpoint=False)
    bitmap[words:] = 0                        # the builder's spare word past the range is empty
    if span % 64:                             # bits past the span are never set by the builder
        bitmap[words - 1] &= np.uint64((1 << (span % 64)) - 1)
    near = lo + rng.integers(-3, span + 3, n) if n else np.empty(0, dtype=np.int64)
    keys = np.where(rng.random(n) < 0.8, near, rng.choice(np.array([I64_MIN, I64_MAX, 0, -1]), n)) if n else near
    keys = np.clip(keys, I64_MIN, I64_MAX).astype(np.int64) if n else keys.astype(np.int64)
    valid = None if draw(st.booleans()) else (rng.random(n) < 0.7).astype(np.uint8)
    return keys, valid, lo, span, bitmap


@needs_c
@settings(max_examples=150, deadline=None)
@given(cases(), st.sampled_from([1, 2, 3, 5]))
def test_c_matches_the_twin_and_the_definition_on_every_level_and_thread_count(case, threads):
    keys, valid, lo, span, bitmap = case
    want = _definition(keys, valid, lo, span, bitmap)
    assert key_select.bitmap_select_rows(keys, valid, lo, span, bitmap, use_c=False).tolist() == want
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(key_select, "_ROWS_PER_THREAD", 8)          # threads even on small inputs
        for level in LEVELS:
            with _loader.forced_backend(level):
                got = key_select.bitmap_select_rows(keys, valid, lo, span, bitmap, use_c=True, threads=threads)
            assert got.dtype == np.int64 and got.tolist() == want, (level, threads)


def test_a_bitmap_too_short_for_its_span_is_rejected():
    with pytest.raises(ValueError, match="span of 200 keys needs 4 bitmap words, got 2"):
        key_select.bitmap_select_rows(np.arange(3), None, 0, 200, np.zeros(2, dtype=np.uint64))
    with pytest.raises(ValueError, match="3 keys but 2 validity bytes"):
        key_select.bitmap_select_rows(np.arange(3), np.ones(2, np.uint8), 0, 64, np.zeros(2, dtype=np.uint64))


@needs_c
def test_the_key_set_selects_through_the_c_pass(monkeypatch):
    """``KeySet.select`` on a key set held as a bitmap takes the one-pass kernel (the C call
    is counted), keeps the kept rows of every column in order, NULL keys dropped."""
    calls = []
    real = key_select._lib.velaria_bitmap_select_rows

    class Spy:
        def __getattr__(self, name):
            if name == "velaria_bitmap_select_rows":
                return lambda *a: calls.append(a) or real(*a)
            return getattr(key_select._lib, name)

    monkeypatch.setattr(key_select, "_lib", Spy())
    ks = join.key_set([pa.array([5, 9, 2, 9, None, 40], type=pa.int64())])
    batch = pa.record_batch([pa.array([9, None, 3, 40, 2, 2, 41], type=pa.int64()),
                             pa.array(["a", "b", "c", "d", "e", "f", "g"]),
                             pa.array([1.5, 2.5, -0.0, float("nan"), 5.0, 6.0, 7.0])], names=["k", "s", "x"])
    paths = {}
    with collecting(paths):
        got = ks.select(batch, 0)
    assert calls and "c-key-set" in paths
    want = batch.filter(pa.array([True, False, False, True, True, True, False]))
    assert got.select([0, 1]).equals(want.select([0, 1]))
    assert got.column(2).to_numpy().view(np.uint64).tolist() == want.column(2).to_numpy().view(np.uint64).tolist()
