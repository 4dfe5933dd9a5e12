"""Exact top-k returns the reference's ids and scores, bit for bit, on every dispatch level.

Every level this project knows is a parameter. A level this machine (or this build) cannot
run is skipped with a warning naming it, so a green run never hides an untested level: run
with ``-rs`` to list them (NEON on x86, AVX2 / AVX-512 on arm64 or older CPUs). On x86 the
NEON kernels are still executed: ``tests/c/topk_levels_check.c`` is cross-compiled for arm64
and run under qemu-user when those tools are installed (otherwise that test skips loudly).
"""
from __future__ import annotations

import platform
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velaria import accel
from velaria.reference import topk as ref
from velaria.vector.column import inverse_norms

LEVELS = ["scalar-c", "avx2", "avx512", "neon"]
DIMS = [1, 7, 15, 16, 17, 31, 63, 64, 65, 97, 768, 1536]
METRICS = ["cosine", "dot", "l2"]


def _level_kernel(level: str):
    """The accelerated kernel forced to ``level``, or a loud skip saying why it cannot run."""
    if not accel.c_available():
        reason = f"accelerator unavailable ({accel.status()})"
    elif level not in accel.available_backends():
        reason = (f"this machine/build cannot run it (available: "
                  f"{', '.join(accel.available_backends())})")
    else:
        return accel.forced_backend(level)
    message = f"dispatch level {level!r} NOT TESTED: {reason}"
    warnings.warn(message, pytest.PytestWarning, stacklevel=2)
    pytest.skip(message)


@pytest.fixture(params=LEVELS)
def level_topk(request):
    with _level_kernel(request.param):
        yield accel.KERNELS["vector_topk"]


def _call(topk, x, q, k, metric, valid=None, threads=1):
    n, dim = x.shape
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    inv = inverse_norms(flat, dim, n) if metric in ("cosine", "dot") else None
    return topk(flat, dim, n, valid, np.ascontiguousarray(q, dtype=np.float32).reshape(-1), k,
                metric, inv, threads)


def _tricky_rows(dim: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Random rows plus exact ties, one-ulp near ties, zero rows, a NaN row and an inf row;
    queries: two random ones, one equal to a row, and the zero vector."""
    x = rng.standard_normal((240, dim)).astype(np.float32)
    x[10] = x[3]                                   # exact tie
    x[11] = x[3]
    x[11][0] = np.nextafter(x[3][0], np.float32(np.inf))  # one ulp away
    x[12] = x[3] * np.float32(1.0000001)           # same direction (cosine near tie)
    x[20] = 0.0                                    # zero rows
    x[21] = 0.0
    x[30] = np.nan                                 # skipped (dot, l2) / distance 1.0 (cosine)
    x[31][dim // 2] = np.inf
    x[40:60] = x[41]                               # a block of equal rows
    q = rng.standard_normal((4, dim)).astype(np.float32)
    q[2] = x[3]
    q[3] = 0.0
    return x, q


_REFERENCE: dict = {}


def _reference(dim: int, metric: str, k: int):
    key = (dim, metric, k)
    if key not in _REFERENCE:
        x, q = _tricky_rows(dim, np.random.default_rng(dim))
        _REFERENCE[key] = _call(ref.topk, x, q, k, metric)
    return _REFERENCE[key]


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("metric", METRICS)
def test_every_level_returns_the_reference_bit_for_bit(level_topk, dim, metric):
    x, q = _tricky_rows(dim, np.random.default_rng(dim))
    for k in (1, 10, 300):  # 300 > rows: the whole order must match
        got = _call(level_topk, x, q, k, metric)
        want = _reference(dim, metric, k)
        assert [ids for ids, _ in got] == [ids for ids, _ in want]
        assert [s for _, s in got] == [s for _, s in want]  # float equality, no tolerance


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("metric", METRICS)
def test_one_query_at_a_time_returns_the_reference_bit_for_bit(level_topk, dim, metric):
    # one query takes the streaming path (on x86 it bounds the norms from the scan's own sums of
    # squares); several take the register-blocked one: both must give the reference's answer
    x, q = _tricky_rows(dim, np.random.default_rng(dim))
    for k in (1, 10, 300):
        want = _reference(dim, metric, k)
        for qi in range(q.shape[0]):
            assert _call(level_topk, x, q[qi:qi + 1], k, metric) == [want[qi]]


@pytest.mark.parametrize("n_queries", [2, 3, 4, 5, 8, 9])
@pytest.mark.parametrize("metric", METRICS)
def test_every_batch_size_equals_one_query_at_a_time(level_topk, n_queries, metric):
    # batches are scored in groups of 4 queries (a lone remainder query by the one-query
    # kernel) over 64-row blocks; 203 rows leave a partial block and a partial 4-row tile
    rng = np.random.default_rng(n_queries)
    x = rng.standard_normal((203, 45)).astype(np.float32)
    x[100:110] = x[7]
    q = rng.standard_normal((n_queries, 45)).astype(np.float32)
    q[-1] = x[7]
    got = _call(level_topk, x, q, 12, metric)
    want = _call(ref.topk, x, q, 12, metric)
    assert got == want
    assert got == [_call(level_topk, x, q[i:i + 1], 12, metric)[0] for i in range(n_queries)]


@pytest.mark.parametrize("metric", METRICS)
def test_threads_do_not_change_the_result(level_topk, metric):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((70000, 24)).astype(np.float32)
    x[5000:5100] = x[17]  # ties spread over thread boundaries
    valid = (rng.random(70000) > 0.1).astype(np.uint8)
    q = rng.standard_normal((2, 24)).astype(np.float32)
    one = _call(level_topk, x, q, 50, metric, valid)
    for threads in (2, 4):
        assert _call(level_topk, x, q, 50, metric, valid, threads) == one


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("scale", [1e20, 3e19, 1e-20, 1e-30])
def test_float32_overflow_and_underflow_never_drop_or_misrank_rows(level_topk, metric, scale):
    # products of components near 1e20 overflow float32 (the SIMD lanes); near 1e-20 they
    # underflow: the rows must still come back, scored exactly as the reference scores them
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((50, 33)) * scale).astype(np.float32)
    q = (rng.standard_normal((1, 33)) * scale).astype(np.float32)
    got = _call(level_topk, x, q, 50, metric)
    want = _call(ref.topk, x, q, 50, metric)
    assert got == want
    assert len(got[0][0]) == 50  # every row is scored: nothing disappears


def test_huge_top_k_is_sized_by_the_rows(level_topk):
    x = np.eye(4, dtype=np.float32)
    ids, scores = _call(level_topk, x, x[:1], 2 ** 33, "dot")[0]
    assert ids == [0, 1, 2, 3] and scores == [1.0, 0.0, 0.0, 0.0]


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
special32 = st.one_of(finite32, st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 3e38, -3e38,
                                                 1e-45, 1.5e19, 2e-20]))


@st.composite
def float_problems(draw):
    dim = draw(st.sampled_from([1, 3, 8, 16, 17, 33]))
    n = draw(st.integers(1, 30))
    rows = draw(st.lists(st.lists(special32, min_size=dim, max_size=dim), min_size=n, max_size=n))
    if n > 1 and draw(st.booleans()):
        rows[-1] = list(rows[0])  # an exact tie
    query = draw(st.lists(finite32, min_size=dim, max_size=dim))
    valid = draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    return (np.array(rows, dtype=np.float32), np.array([query], dtype=np.float32),
            None if valid is None else np.array(valid, dtype=np.uint8))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(problem=float_problems(), k=st.integers(1, 35), metric=st.sampled_from(METRICS))
def test_property_every_available_level_equals_the_reference(problem, k, metric):
    x, q, valid = problem
    want = _call(ref.topk, x, q, k, metric, valid)
    levels = accel.available_backends() if accel.c_available() else []
    for level in levels:
        with accel.forced_backend(level):
            got = _call(accel.KERNELS["vector_topk"], x, q, k, metric, valid)
        assert [g[0] for g in got] == [w[0] for w in want], level
        # compare scores as bit patterns so NaN-free results and -0.0 / 0.0 are held exactly
        assert [np.array(g[1]).tobytes() for g in got] == [np.array(w[1]).tobytes() for w in want], level


def test_canonical_inverse_norms_match_the_reference_definition():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((37, 129)).astype(np.float32)
    x[3] = 0.0
    got = inverse_norms(x.reshape(-1), 129, 37)
    assert list(got) == [ref.inv_norm(memoryview(row)) for row in x]


# ---- the C harness: every level against the scalar level, natively and for arm64 under qemu ----

_SRC = Path(__file__).resolve().parents[1] / "accel" / "src"
_HARNESS = Path(__file__).resolve().parent / "c" / "topk_levels_check.c"
_C_SOURCES = ["topk.c", "topk_scalar.c", "topk_avx2.c", "topk_avx512.c", "topk_neon.c", "cpu.c"]


def _build(compiler: str, out: Path, *extra: str) -> None:
    cmd = [compiler, "-O2", "-std=c11", "-ffp-contract=off", *extra, f"-I{_SRC}", str(_HARNESS),
           *[str(_SRC / name) for name in _C_SOURCES], "-lm", "-lpthread", "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _loud_skip(message: str):
    warnings.warn(message, pytest.PytestWarning, stacklevel=2)
    pytest.skip(message)


def test_c_harness_every_native_level_equals_scalar(tmp_path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        _loud_skip("no C compiler: the native C level harness NOT RUN")
    exe = tmp_path / "check"
    _build(compiler, exe)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    if accel.c_available():
        for level in accel.available_backends()[1:]:
            assert f"level {level}: " in done.stdout, done.stdout


def test_neon_kernels_under_qemu_equal_scalar(tmp_path):
    # the development machines are x86: cross-compile the same sources for arm64 and run them
    # under qemu-user, so the NEON kernels really execute (apt: gcc-aarch64-linux-gnu qemu-user)
    compiler, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if platform.machine() in ("aarch64", "arm64"):
        pytest.skip("native arm64: the NEON level runs in the tests above")
    if compiler is None or qemu is None:
        _loud_skip("dispatch level 'neon' NOT TESTED under emulation: needs aarch64-linux-gnu-gcc and "
                   "qemu-aarch64 (apt-get install gcc-aarch64-linux-gnu qemu-user)")
    exe = tmp_path / "check-arm64"
    _build(compiler, exe, "-static")
    done = subprocess.run([qemu, str(exe)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "level neon: " in done.stdout and "cases identical" in done.stdout, done.stdout
