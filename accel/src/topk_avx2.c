/* AVX2 + FMA kernels. Only this file is compiled for AVX2 (the target pragma below is its
 * per-file flag set, equivalent to -mavx2 -mfma), and topk.c calls it only when CPUID and
 * XCR0 say the CPU and OS support it.
 *
 * One query (also the AVX-512 level's one-query kernels): each row accumulates 4 x 8 float32
 * lanes with FMA, reading the row front to back; the lanes are reduced in float64 and the
 * dim % 8 tail is added in float64. Several queries: a 2 rows x 4 queries register block
 * (score_multi). And the vectorised block admission test (block_rejected_avx2).
 */
#include "velaria_accel.h"

#include <stddef.h>

#if defined(VELARIA_X86)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif
#include <immintrin.h>

/* sum of 8 float32 lanes, in float64 */
static inline double hsum8(__m256 v)
{
    __m256d w = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(w), _mm256_extractf128_pd(w, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* one FMA step for either metric; `l2` is a compile-time constant after inlining */
static inline __m256 step(__m256 x, __m256 qv, __m256 acc, const int l2)
{
    if (l2) {
        __m256 d = _mm256_sub_ps(x, qv);
        return _mm256_fmadd_ps(d, d, acc);
    }
    return _mm256_fmadd_ps(x, qv, acc);
}

/* Rows are scored one after the other, each read front to back (32 floats = 4 independent
 * accumulators per step, then 8-float steps, then the dim % 8 tail in float64). Strictly
 * sequential addresses let the hardware prefetchers stream at full read bandwidth: the
 * earlier scheme (4 rows interleaved sharing each query load, plus software prefetch) ran
 * at ~60% of a plain streaming read on Zen 3 (1M x 128: 37 ms vs 23 ms for the read alone),
 * this one matches the read. Out-of-order execution overlaps consecutive rows, so the
 * per-row FMA chains and the float64 lane reduction stay off the critical path.
 *
 * With `ss` (cosine and dot), the same pass also sums each row's squares into ss[i] (4 more
 * accumulators, no extra load): topk.c bounds the row's norm from it instead of reading the
 * cached inverse norms, a second stream that cost ~10% of the scan's time. */
static inline void score_rows(const float *rows, int64_t n, int64_t dim, const float *q,
                              double *out, double *ss, const int with_ss, const int l2)
{
    const int64_t d32 = dim & ~(int64_t)31, d8 = dim & ~(int64_t)7;
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + i * dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 s0 = a0, s1 = a0, s2 = a0, s3 = a0;
        int64_t j = 0;
        for (; j < d32; j += 32) {
            const __m256 x0 = _mm256_loadu_ps(r + j), x1 = _mm256_loadu_ps(r + j + 8);
            const __m256 x2 = _mm256_loadu_ps(r + j + 16), x3 = _mm256_loadu_ps(r + j + 24);
            a0 = step(x0, _mm256_loadu_ps(q + j), a0, l2);
            a1 = step(x1, _mm256_loadu_ps(q + j + 8), a1, l2);
            a2 = step(x2, _mm256_loadu_ps(q + j + 16), a2, l2);
            a3 = step(x3, _mm256_loadu_ps(q + j + 24), a3, l2);
            if (with_ss) {
                s0 = _mm256_fmadd_ps(x0, x0, s0);
                s1 = _mm256_fmadd_ps(x1, x1, s1);
                s2 = _mm256_fmadd_ps(x2, x2, s2);
                s3 = _mm256_fmadd_ps(x3, x3, s3);
            }
        }
        for (; j < d8; j += 8) {
            const __m256 x = _mm256_loadu_ps(r + j);
            a0 = step(x, _mm256_loadu_ps(q + j), a0, l2);
            if (with_ss)
                s0 = _mm256_fmadd_ps(x, x, s0);
        }
        const __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        out[i] = d8 == dim ? hsum8(a) : hsum8(a) + velaria_tail_f64(r, q, d8, dim, l2);
        if (with_ss) {
            const __m256 sq = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
            ss[i] = d8 == dim ? hsum8(sq) : hsum8(sq) + velaria_tail_f64(r, r, d8, dim, 0);
        }
    }
}

/* 8 accumulators -> one vector of their 8 lane sums, in float32: lane 4a + b = sum of v[2b + a].
 * Three levels of pairwise adds (256 -> 128 -> 64 -> 32 bits per vector), so every lane value
 * goes through 3 float32 additions. */
static inline __m256 reduce8x8(const __m256 v[8])
{
    __m256 w[4], t[2];
    for (int i = 0; i < 4; i++)
        w[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x31));
    for (int i = 0; i < 2; i++)
        t[i] = _mm256_add_ps(_mm256_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm256_add_ps(_mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm256_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* one 8-float step of a 2 x 4 block: acc[2b + a] += row a x query b over the lanes in m */
static inline void block_step(__m256 acc[8], const float *const r[2], const float *const q[4],
                              int64_t j, const __m256i m, const int full, const int l2)
{
    const __m256 x0 = full ? _mm256_loadu_ps(r[0] + j) : _mm256_maskload_ps(r[0] + j, m);
    const __m256 x1 = full ? _mm256_loadu_ps(r[1] + j) : _mm256_maskload_ps(r[1] + j, m);
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        const __m256 qv = full ? _mm256_loadu_ps(q[b] + j) : _mm256_maskload_ps(q[b] + j, m);
        acc[2 * b] = step(x0, qv, acc[2 * b], l2);
        acc[2 * b + 1] = step(x1, qv, acc[2 * b + 1], l2);
    }
}

/* Several queries, register-blocked: 2 rows x 4 queries share each 8-float load of a row and
 * of a query, one accumulator per (query, row) pair (8 of the 16 YMM registers): 6 loads per
 * 8 FMAs instead of 2 loads per FMA. The dim % 8 tail is a masked load (zero lanes add exact
 * zeros); the 8 pairs' lanes are reduced together in float32 (reduce8x8). Each product goes
 * through ceil(dim / 8) + 3 float32 roundings, within the n = dim + 8 that topk.c's error
 * bound allows for. A block short of 2 rows or 4 queries repeats its last row / query and
 * drops the repeats' values. out[qi * ld + i] receives row i against query qi; ld >= n
 * rounded up to 2. */
static inline void score_multi(const float *rows, int64_t n, int64_t dim, const float *qs,
                               int64_t nq, double *out, int64_t ld, const int l2)
{
    const int64_t d8 = dim & ~(int64_t)7, rest = dim & 7;
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rest),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const float *q[4];
    for (int b = 0; b < 4; b++)
        q[b] = qs + (b < nq ? b : nq - 1) * dim;
    for (int64_t i = 0; i < n; i += 2) {
        const float *r[2] = {rows + i * dim, rows + (i + 1 < n ? i + 1 : i) * dim};
        __m256 acc[8];
#pragma GCC unroll 8
        for (int p = 0; p < 8; p++)
            acc[p] = _mm256_setzero_ps();
        for (int64_t j = 0; j < d8; j += 8)
            block_step(acc, r, q, j, tail, 1, l2);
        if (rest)
            block_step(acc, r, q, d8, tail, 0, l2);
        const __m256 sums = reduce8x8(acc); /* lane 4a + b: row i + a, query b */
        double lanes[8];
        _mm256_storeu_pd(lanes, _mm256_cvtps_pd(_mm256_castps256_ps128(sums)));
        _mm256_storeu_pd(lanes + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(sums, 1)));
        for (int64_t b = 0; b < nq; b++) {
            out[b * ld + i] = lanes[b];
            out[b * ld + i + 1] = lanes[4 + b];
        }
    }
}

void dot_multi_f32_avx2(const float *rows, int64_t n, int64_t dim, const float *qs, int64_t nq,
                        double *out, int64_t ld)
{
    score_multi(rows, n, dim, qs, nq, out, ld, 0);
}

void l2sq_multi_f32_avx2(const float *rows, int64_t n, int64_t dim, const float *qs, int64_t nq,
                         double *out, int64_t ld)
{
    score_multi(rows, n, dim, qs, nq, out, ld, 1);
}

void dot_f32_avx2(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    score_rows(rows, n, dim, q, out, NULL, 0, 0);
}

void dot_ss_f32_avx2(const float *rows, int64_t n, int64_t dim, const float *q, double *out,
                     double *ss)
{
    score_rows(rows, n, dim, q, out, ss, 1, 0);
}

void l2sq_f32_avx2(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    score_rows(rows, n, dim, q, out, NULL, 0, 1);
}

/* topk.c's admission test on 4 values per instruction (see velaria_reject_fn). The operations
 * mirror offer_rows one for one; min(1, x) and max(-1, x) return x when x is NaN, like its
 * comparisons, and every comparison is ordered (false on NaN). */
int block_rejected_avx2(const double *raw, const double *inv_norms, const uint8_t *valid,
                        int64_t n, const velaria_reject_args *a)
{
    if (n % 4)
        return 0;
    const __m256d bound = _mm256_set1_pd(a->bound), inv_q = _mm256_set1_pd(a->inv_q);
    const __m256d g = _mm256_set1_pd(a->g), tau = _mm256_set1_pd(a->tau), g_q = _mm256_set1_pd(a->g_q);
    const __m256d one = _mm256_set1_pd(1.0), minus_one = _mm256_set1_pd(-1.0), zero = _mm256_setzero_pd();
    const __m256d two_g = _mm256_set1_pd(2.0 * a->g), two_tau = _mm256_set1_pd(2.0 * a->tau);
    for (int64_t i = 0; i < n; i += 4) {
        const __m256d r = _mm256_loadu_pd(raw + i);
        __m256d out;
        if (a->metric == VELARIA_METRIC_L2) {
            const __m256d lb = _mm256_sub_pd(r, _mm256_add_pd(_mm256_mul_pd(two_g, r), two_tau));
            out = _mm256_cmp_pd(lb, bound, _CMP_GE_OQ);
        } else {
            const __m256d inv = _mm256_loadu_pd(inv_norms + i);
            if (a->metric == VELARIA_METRIC_DOT) {
                const __m256d x = _mm256_sub_pd(_mm256_sub_pd(_mm256_mul_pd(r, minus_one), tau), bound);
                out = _mm256_and_pd(_mm256_cmp_pd(inv, zero, _CMP_GT_OQ),
                                    _mm256_cmp_pd(_mm256_mul_pd(x, inv), g_q, _CMP_GE_OQ));
            } else {
                __m256d sim = _mm256_mul_pd(_mm256_mul_pd(r, inv), inv_q);
                sim = _mm256_max_pd(minus_one, _mm256_min_pd(one, sim));
                const __m256d m = _mm256_add_pd(g, _mm256_mul_pd(_mm256_mul_pd(tau, inv), inv_q));
                const __m256d lb = _mm256_sub_pd(_mm256_sub_pd(one, sim), m);
                out = _mm256_and_pd(_mm256_cmp_pd(inv, zero, _CMP_NEQ_OQ),
                                    _mm256_cmp_pd(lb, bound, _CMP_GE_OQ));
            }
        }
        out = _mm256_and_pd(out, _mm256_cmp_pd(_mm256_sub_pd(r, r), zero, _CMP_EQ_OQ)); /* finite */
        int bits = _mm256_movemask_pd(out);
        if (valid)
            for (int l = 0; l < 4; l++)
                bits |= (valid[i + l] == 0) << l;
        if (bits != 0xF)
            return 0;
    }
    return 1;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif /* VELARIA_X86 */
