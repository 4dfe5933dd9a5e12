"""The vector_topk kernel contract, run against the reference and every accel SIMD level.

Written once as a mixin over ``self.topk`` (CPython's dual-module habit). With
``VELARIA_REQUIRE_ACCEL=1`` (CI) an unavailable accelerator fails instead of skipping.
"""
from __future__ import annotations

import inspect
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import accel
from velaria.reference import topk as ref
from velaria.vector.column import inverse_norms

REQUIRE_ACCEL = os.environ.get("VELARIA_REQUIRE_ACCEL") == "1"
METRICS = ["cosine", "dot", "l2"]
EDGE_DIMS = [1, 2, 7, 8, 11, 15, 16, 17, 31, 97, 128, 1024, 1536]


def _need_accel():
    if not accel.c_available():
        msg = f"accelerator unavailable: {accel.status()}"
        if REQUIRE_ACCEL:
            pytest.fail(msg)
        pytest.skip(msg)


BACKENDS = ["reference"] + (accel.available_backends() if accel.c_available() else ["accel-unavailable"])


@pytest.fixture(params=BACKENDS)
def kernel(request):
    """(name, topk) for the reference and for each forced SIMD level."""
    if request.param == "reference":
        yield "reference", ref.topk
        return
    _need_accel()
    with accel.forced_backend(request.param):
        yield request.param, accel.KERNELS["vector_topk"]


def oracle(x, valid, q, k, metric):
    """The definition: sort (badness, row_id), keep the first k (float64 numpy)."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    out = []
    for i in range(x.shape[0]):
        if valid is not None and not valid[i]:
            continue
        r = x64[i]
        if metric == "dot":
            bad = -float(r @ q64)
        elif metric == "l2":
            bad = float(((r - q64) ** 2).sum())
        else:
            nr, nq = math.sqrt(float(r @ r)), math.sqrt(float(q64 @ q64))
            bad = 1.0 if nr == 0 or nq == 0 else 1.0 - max(-1.0, min(1.0, float(r @ q64) / (nr * nq)))
        out.append((bad, i))
    out.sort()
    best = out[:k]
    scores = [(-b if metric == "dot" else math.sqrt(b) if metric == "l2" else b) for b, _ in best]
    return [i for _, i in best], scores


def run(topk, x, valid, q, k, metric, threads=1):
    n, dim = x.shape
    inv = ref_inv_norms(x) if metric == "cosine" else None
    return topk(np.ascontiguousarray(x, dtype=np.float32).reshape(-1), dim, n, valid,
                np.ascontiguousarray(q, dtype=np.float32).reshape(-1), k, metric, inv, threads)


_REF_CACHE: dict = {}


def _reference(x, q, k, metric):
    """The reference's answer, computed once per input (the pure-Python scan is slow)."""
    key = (x.tobytes(), q.tobytes(), k, metric)
    if key not in _REF_CACHE:
        _REF_CACHE[key] = run(ref.topk, x, None, q, k, metric)
    return _REF_CACHE[key]


def ref_inv_norms(x):
    """The canonical inverse norms (sequential float64 sums), as the API passes them."""
    return inverse_norms(np.ascontiguousarray(x, dtype=np.float32).reshape(-1), x.shape[1], x.shape[0])


int_matrix = st.integers(1, 40).flatmap(lambda n: st.sampled_from(EDGE_DIMS[:11]).flatmap(
    lambda d: st.tuples(
        st.lists(st.lists(st.integers(-3, 3), min_size=d, max_size=d), min_size=n, max_size=n),
        st.lists(st.integers(-3, 3), min_size=d, max_size=d),
        st.lists(st.booleans(), min_size=n, max_size=n))))


class TestKernelContract:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=int_matrix, k=st.integers(1, 50), metric=st.sampled_from(METRICS), nulls=st.booleans())
    def test_matches_reference_exactly_on_integer_data(self, kernel, data, k, metric, nulls):
        # integer-valued float32 data: every sum is exact, so all backends agree bit for bit,
        # including ties (duplicates, zero vectors) ordered by row id
        rows, q, mask = data
        x = np.array(rows, dtype=np.float32)
        qv = np.array([q], dtype=np.float32)
        valid = np.array(mask, dtype=np.uint8) if nulls else None
        got = run(kernel[1], x, valid, qv, k, metric)
        want = run(ref.topk, x, valid, qv, k, metric)
        assert got == want
        ids, scores = oracle(x, valid, qv[0], k, metric)
        # the numpy oracle rounds differently from the canonical scoring, so rows whose scores
        # tie in exact arithmetic (e.g. cosine of [1, 1] and [2, 2]) may swap places there
        all_ids, all_scores = oracle(x, valid, qv[0], x.shape[0], metric)
        score_of = dict(zip(all_ids, all_scores))
        for g, w in zip(got[0][0], ids):
            assert g == w or abs(score_of[g] - score_of[w]) <= 1e-12, (g, w)
        assert got[0][1] == pytest.approx(scores, rel=1e-12, abs=1e-12)

    @pytest.mark.parametrize("dim", EDGE_DIMS)
    @pytest.mark.parametrize("metric", METRICS)
    def test_random_float_data_matches_reference_exactly(self, kernel, dim, metric):
        rng = np.random.default_rng(dim)
        n = 300
        x = rng.standard_normal((n, dim)).astype(np.float32)
        q = rng.standard_normal((2, dim)).astype(np.float32)
        got = run(kernel[1], x, None, q, 10, metric)
        assert got == _reference(x, q, 10, metric)  # ids and scores, bit for bit
        for qi in range(2):  # and the definition, up to float64 summation order
            ids, scores = oracle(x, None, q[qi], 10, metric)
            assert got[qi][1] == pytest.approx(scores, rel=1e-9, abs=1e-9)

    def test_k_at_least_n_and_nulls_and_zero_vectors(self, kernel):
        x = np.array([[0, 0], [1, 0], [1, 0], [0, 0], [5, 5]], dtype=np.float32)
        valid = np.array([1, 1, 1, 1, 0], dtype=np.uint8)
        ids, scores = run(kernel[1], x, valid, np.array([[1, 0]]), 10, "cosine")[0]
        assert ids == [1, 2, 0, 3] and scores == [0.0, 0.0, 1.0, 1.0]
        ids, scores = run(kernel[1], x, None, np.array([[0, 0]]), 3, "cosine")[0]
        assert ids == [0, 1, 2] and scores == [1.0, 1.0, 1.0]  # zero query: distance 1.0 everywhere
        ids, scores = run(kernel[1], x, valid, np.array([[1, 0]]), 10, "dot")[0]
        assert ids == [1, 2, 0, 3] and scores == [1.0, 1.0, 0.0, 0.0]
        ids, scores = run(kernel[1], x, valid, np.array([[1, 0]]), 2, "l2")[0]
        assert ids == [1, 2] and scores == [0.0, 0.0]

    def test_all_null_and_empty(self, kernel):
        x = np.ones((3, 4), dtype=np.float32)
        assert run(kernel[1], x, np.zeros(3, np.uint8), np.ones((1, 4)), 2, "dot") == [([], [])]
        assert run(kernel[1], np.zeros((0, 4), np.float32), None, np.ones((1, 4)), 2, "l2") == [([], [])]

    def test_nan_rows_are_skipped(self, kernel):
        x = np.array([[np.nan, 1], [1, 1], [np.inf, 0]], dtype=np.float32)
        ids, _ = run(kernel[1], x, None, np.array([[1, 1]]), 3, "dot")[0]
        assert ids == [2, 1] if kernel[0] != "never" else True

    def test_batch_equals_single_queries(self, kernel):
        rng = np.random.default_rng(7)
        x = rng.integers(-3, 4, (500, 37)).astype(np.float32)
        q = rng.integers(-3, 4, (5, 37)).astype(np.float32)
        for metric in METRICS:
            batch = run(kernel[1], x, None, q, 7, metric)
            assert batch == [run(kernel[1], x, None, q[i:i + 1], 7, metric)[0] for i in range(5)]

    def test_bad_arguments(self, kernel):
        x = np.ones((2, 2), dtype=np.float32)
        with pytest.raises(ValueError):
            run(kernel[1], x, None, np.ones((1, 2)), 0, "dot")
        with pytest.raises(ValueError):
            run(kernel[1], x, None, np.ones((1, 2)), 1, "cosin")


def test_multithreaded_scan_matches_single_thread():
    _need_accel()
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, (70000, 16)).astype(np.float32)
    valid = (rng.random(70000) > 0.05).astype(np.uint8)
    q = rng.integers(-3, 4, (3, 16)).astype(np.float32)
    topk = accel.KERNELS["vector_topk"]
    for b in accel.available_backends():
        with accel.forced_backend(b):
            for metric in METRICS:
                one = run(topk, x, valid, q, 25, metric, threads=1)
                for threads in (2, 3, 4):
                    assert run(topk, x, valid, q, 25, metric, threads=threads) == one
                assert one[0] == run(ref.topk, x[:70000], valid, q[:1], 25, metric)[0]


def test_registry_parity_with_reference():
    _need_accel()
    fn = accel.KERNELS["vector_topk"]
    assert set(ref.__all__) >= {"topk"}
    assert inspect.signature(fn) == inspect.signature(ref.topk)
    assert fn.__doc__.splitlines()[0] == ref.topk.__doc__.splitlines()[0]
    assert fn.__module__ == "velaria.accel._loader"
    from velaria.accel import _loader
    assert "velaria_topk_f32" in dir(_loader.lib)


def test_forced_backend_restores_and_rejects_unknown():
    _need_accel()
    before = accel.backend()
    with accel.forced_backend("scalar-c"):
        assert accel.backend() == "scalar-c"
    assert accel.backend() == before
    with pytest.raises(ValueError):
        with accel.forced_backend("sse9"):
            pass


@pytest.mark.parametrize("value,expect", [("scalar", "scalar-c"), ("avx512", None), ("auto", None)])
def test_env_can_only_lower_the_dispatch_level(value, expect):
    _need_accel()
    best = accel.available_backends()[-1]
    code = "import velaria.accel as a; print(a.backend())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "VELARIA_SIMD": value}, check=True).stdout.strip()
    # asking for more than the machine has never raises the level
    assert out == (expect or best)
