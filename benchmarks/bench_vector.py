"""Exact top-k (k=10) side by side: velaria accel (raw kernel and Session.vector_search) vs
numpy, faiss IndexFlat, simsimd and usearch exact, plus a streaming-read bandwidth probe.

    .venv/bin/python -m pytest benchmarks/bench_vector.py --benchmark-only \
        --benchmark-columns=median,min,rounds -q
    VELARIA_BENCH_SCALE=0.1 ...      # shrink the shapes (quick run)
    VELARIA_SIMD=avx2 ...            # lower the dispatch level (velaria-raw, velaria-session)
    VELARIA_BENCH_CONTENDERS=velaria-avx2,velaria-avx512,faiss VELARIA_BENCH_MODES=1q-1t \
    VELARIA_BENCH_STAT=min VELARIA_BENCH_ROUNDS=9 ...   # a narrow run on a busy machine
    .venv/bin/python benchmarks/bench_vector.py   # one-shot table: ms, GB/s, % of bandwidth, ratios

Peers that are not installed are skipped. Shapes: 1M x 128 and 100k x 768 (times the scale).

The data live in a private 2 MiB-aligned anonymous mapping advised with MADV_HUGEPAGE (as
Arrow's 64-byte-aligned buffers and numpy's large allocations get huge pages), and "% bw" is
measured against ``velaria_read_bandwidth`` -- a plain AVX2 single-pass read of the same buffer
exported by the C module -- on the same number of threads, timed just before each group with the
same clock and statistic. On a shared machine: VELARIA_BENCH_CLOCK=cpu (CPU time, 1-thread modes).
"""
from __future__ import annotations

import mmap
import os
import time

import numpy as np
import pytest

SCALE = float(os.environ.get("VELARIA_BENCH_SCALE", "1"))
SHAPES = [(int(1_000_000 * SCALE), 128), (int(100_000 * SCALE), 768)]
if os.environ.get("VELARIA_BENCH_SHAPES"):  # e.g. "1000000x128": a narrower run
    SHAPES = [tuple(int(v) for v in s.split("x")) for s in os.environ["VELARIA_BENCH_SHAPES"].split(",")]
METRICS = ["cosine", "dot", "l2"]
K = 10


_HUGE = 2 * 1024 * 1024


def huge_empty(shape, dtype=np.float32):
    """An uninitialised array in a 2 MiB-aligned anonymous mapping with MADV_HUGEPAGE (falls
    back to np.empty where mmap / madvise are unavailable)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    try:
        # private: a shared anonymous mapping is shmem, which gets no transparent huge pages
        # where /sys/kernel/mm/transparent_hugepage/shmem_enabled is "never" (a common default;
        # it cost the whole run ~25% of its read bandwidth)
        m = mmap.mmap(-1, nbytes + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        base = np.frombuffer(m, dtype=np.uint8)
        off = (-base.ctypes.data) % _HUGE
        if hasattr(mmap, "MADV_HUGEPAGE"):
            m.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError, AttributeError):
        return np.empty(shape, dtype=dtype)
    # the array's base chain holds the mapping: it lives exactly as long as the data
    return base[off:off + nbytes].view(dtype).reshape(shape)


def _data(n, dim):
    rng = np.random.default_rng(n + dim)
    x = huge_empty((n, dim))
    rng.standard_normal((n, dim), dtype=np.float32, out=x)
    q = rng.standard_normal((16, dim), dtype=np.float32)
    return x, q


_CACHE: dict = {}


def data(n, dim):
    if (n, dim) not in _CACHE:
        _CACHE.clear()
        _CACHE[(n, dim)] = _data(n, dim)
    return _CACHE[(n, dim)]


# ---- contenders -----------------------------------------------------------------------------

def velaria_raw(x, q, metric, threads):
    from velaria import accel
    from velaria.vector.column import inverse_norms
    topk = accel.KERNELS["vector_topk"]
    n, dim = x.shape
    flat = x.reshape(-1)
    # computed once per column by the API (cached); cosine scores with them, dot bounds with them
    inv = inverse_norms(flat, dim, n) if metric in ("cosine", "dot") else None
    qf = np.ascontiguousarray(q).reshape(-1)
    return lambda: topk(flat, dim, n, None, qf, K, metric, inv, threads)


def velaria_level(level):
    """velaria-raw forced to one SIMD level, so AVX2 and AVX-512 are measured in the same run."""
    def make(x, q, metric, threads):
        from velaria import accel
        if level not in accel.available_backends():
            pytest.skip(f"SIMD level {level} is not available here")
        run = velaria_raw(x, q, metric, threads)

        def call():
            with accel.forced_backend(level):
                return run()
        return call
    return make


def velaria_session(x, q, metric, threads):
    import pyarrow as pa
    from velaria.session import Session
    os.environ["VELARIA_THREADS"] = str(threads)
    s = Session(engine="accel")
    n, dim = x.shape
    col = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)
    s.create_temp_view("t", s.create_dataframe_from_arrow(pa.table({"v": col})))
    query = q[0].tolist() if q.shape[0] == 1 else q.tolist()
    s.vector_search("t", "v", query, top_k=K, metric=metric)  # warm: caches inverse norms
    return lambda: s.vector_search("t", "v", query, top_k=K, metric=metric).to_arrow()


def _blas_threads(n):
    """Pin numpy's bundled OpenBLAS to n threads (it would otherwise use every core even in the
    1-thread rows). No-op where the library or symbol is not found."""
    import ctypes
    import glob
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "libscipy_openblas*.so*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for sym in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                    "openblas_set_num_threads"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                return


def numpy_peer(x, q, metric, threads):
    _blas_threads(threads)
    if metric == "l2":
        sq = np.einsum("ij,ij->i", x, x)

        def run():
            d = sq[None, :] - 2.0 * (q @ x.T) if q.shape[0] > 1 else sq - 2.0 * (x @ q[0])
            return np.argpartition(d, K, axis=-1)[..., :K]
        return run
    xs = x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "cosine" else x

    def run():
        s = xs @ q[0] if q.shape[0] == 1 else q @ xs.T
        return np.argpartition(-s, K, axis=-1)[..., :K]
    return run


def faiss_peer(x, q, metric, threads):
    faiss = pytest.importorskip("faiss")
    faiss.omp_set_num_threads(threads)
    dim = x.shape[1]
    if metric == "l2":
        index = faiss.IndexFlatL2(dim)
        index.add(x)
    else:
        index = faiss.IndexFlatIP(dim)
        index.add(x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "cosine" else x)
    if q.shape[0] > 1:
        faiss.cvar.distance_compute_blas_threshold = 1  # force the BLAS path for batches
    return lambda: index.search(q, K)


def simsimd_peer(x, q, metric, threads):
    simsimd = pytest.importorskip("simsimd")
    name = {"cosine": "cosine", "dot": "dot", "l2": "sqeuclidean"}[metric]

    def run():
        d = np.asarray(simsimd.cdist(q, x, metric=name, threads=threads))
        if metric == "dot":
            d = -d
        return np.argpartition(d, K, axis=-1)[..., :K]
    return run


def usearch_peer(x, q, metric, threads):
    ue = pytest.importorskip("usearch.index")
    name = {"cosine": ue.MetricKind.Cos, "dot": ue.MetricKind.IP, "l2": ue.MetricKind.L2sq}[metric]
    return lambda: ue.search(x, q if q.shape[0] > 1 else q[0], K, name, exact=True, threads=threads)


def bandwidth_probe(x, q, metric, threads):
    """A streaming read of the same buffer: the C module's AVX2 single-pass sum over `threads`
    contiguous parts (numpy ``max`` if the accelerator is not built)."""
    flat = x.reshape(-1)
    try:
        from velaria.accel import _velaria_accel as m
    except ImportError:
        return lambda: flat.max()
    ptr = m.ffi.from_buffer("float[]", flat)
    return lambda: m.lib.velaria_read_bandwidth(ptr, flat.nbytes, threads)


CONTENDERS = {"velaria-raw": velaria_raw, "velaria-avx2": velaria_level("avx2"),
              "velaria-avx512": velaria_level("avx512"), "velaria-session": velaria_session,
              "numpy": numpy_peer, "faiss": faiss_peer, "simsimd": simsimd_peer, "usearch": usearch_peer}
# narrow a run on a busy machine: VELARIA_BENCH_CONTENDERS=velaria-raw,faiss VELARIA_BENCH_MODES=1q-1t
if os.environ.get("VELARIA_BENCH_CONTENDERS"):
    CONTENDERS = {k: v for k, v in CONTENDERS.items() if k in os.environ["VELARIA_BENCH_CONTENDERS"].split(",")}
MODES = tuple(os.environ.get("VELARIA_BENCH_MODES", "1q-1t,1q-2t,16q-2t").split(","))

CASES = [(shape, metric, mode) for shape in SHAPES for metric in METRICS for mode in MODES]


def _mode(mode):
    nq = 16 if mode.startswith("16q") else 1
    threads = int(mode.split("-")[1][0])
    return nq, threads


@pytest.mark.parametrize("name", list(CONTENDERS))
@pytest.mark.parametrize("shape,metric,mode", CASES, ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else v)
def test_topk(benchmark, name, shape, metric, mode):
    if name.startswith("velaria"):
        from velaria import accel
        if not accel.available():
            pytest.skip(accel.status())
    x, q = data(*shape)
    nq, threads = _mode(mode)
    if name == "faiss" and nq == 1:
        threads = 1  # faiss is 3-4x slower with 2 OpenMP threads on one query
    fn = CONTENDERS[name](x, q[:nq], metric, threads)
    fn()
    benchmark.extra_info.update(bytes=x.nbytes, queries=nq, threads=threads)
    benchmark.pedantic(fn, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_bandwidth_probe(benchmark, shape, threads):
    x, q = data(*shape)
    benchmark.extra_info.update(bytes=x.nbytes, threads=threads)
    benchmark.pedantic(bandwidth_probe(x, q, None, threads), rounds=5, warmup_rounds=1)


# ---- one-shot report --------------------------------------------------------------------------

#: on a busy shared machine the fastest round is the least disturbed one: VELARIA_BENCH_STAT=min
STAT = {"median": np.median, "min": np.min}[os.environ.get("VELARIA_BENCH_STAT", "median")]
ROUNDS = int(os.environ.get("VELARIA_BENCH_ROUNDS", "5"))


#: VELARIA_BENCH_CLOCK=cpu times with the process's CPU time instead of the wall clock: on a
#: machine shared with other jobs it leaves out the time this process waited to be scheduled
#: (memory-bus contention still counts). Meaningful for the 1-thread modes only.
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}[os.environ.get("VELARIA_BENCH_CLOCK", "wall")]


def _time(fn, rounds=ROUNDS):
    fn()
    ts = []
    for _ in range(rounds):
        t = CLOCK()
        fn()
        ts.append(CLOCK() - t)
    return float(STAT(ts))


def report() -> str:
    """The side-by-side table. Each (metric, mode) group first times the bandwidth probe with
    the same clock, statistic and rounds as its contenders, so "% bw" compares like with like
    at the moment the group ran."""
    lines = ["| shape | metric | mode | contender | ms/query | GB/s | % bw | velaria-raw / peer |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for shape in SHAPES:
        x, q = data(*shape)
        for metric in METRICS:
            for mode in MODES:
                nq, threads = _mode(mode)
                bw = x.nbytes / _time(bandwidth_probe(x, q, None, threads)) / 1e9
                results = {}
                for name, make in CONTENDERS.items():
                    th = 1 if name == "faiss" and nq == 1 else threads
                    try:
                        results[name] = _time(make(x, q[:nq], metric, th)) / nq
                    except BaseException as exc:  # a missing peer (pytest.skip) or a peer failure
                        if not isinstance(exc, (Exception, pytest.skip.Exception)):
                            raise
                # the ratio's base: velaria-raw, else the best SIMD level measured
                raw = next((results[n] for n in ("velaria-raw", "velaria-avx512", "velaria-avx2") if n in results), None)
                lines.append(f"| {shape[0]}x{shape[1]} | {metric} | {mode} | C read probe | - | {bw:.1f} | 100 | - |")
                for name, sec in results.items():
                    gbs = x.nbytes / (sec * nq) / 1e9
                    ratio = f"{raw / sec:.2f}" if raw else "-"
                    lines.append(f"| {shape[0]}x{shape[1]} | {metric} | {mode} | {name} | {sec * 1e3:.2f} | "
                                 f"{gbs:.1f} | {100 * gbs / bw:.0f} | {ratio} |")
    return "\n".join(lines)


def machine() -> str:
    """The ISA the velaria rows ran on (the accelerator's dispatch level) and the CPU count."""
    from velaria import accel
    return (f"velaria backend={accel.backend()} (available: {', '.join(accel.available_backends())}), "
            f"{os.cpu_count()} CPUs, clock={os.environ.get('VELARIA_BENCH_CLOCK', 'wall')}, "
            f"statistic={os.environ.get('VELARIA_BENCH_STAT', 'median')} of {ROUNDS} rounds")


if __name__ == "__main__":
    print(machine())
    print(report())
