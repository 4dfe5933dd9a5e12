/* AVX-512F kernels for batches of queries. Only this file is compiled for AVX-512 (the target
 * pragma below is its per-file flag set, equivalent to -mavx512f), and topk.c calls it only
 * when CPUID says AVX512F and XCR0 says the OS saves opmask/ZMM state.
 *
 * Scoring several queries is bound by arithmetic, so the 32 ZMM registers pay off: a 4 rows x
 * 4 queries register block. One query streams from memory, where the AVX2 row kernels are the
 * faster ones (topk.c's dispatch table says why), so this file has no one-query kernel.
 */
#include "velaria_accel.h"

#if defined(VELARIA_X86)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512f")
#endif
#include <immintrin.h>

/* one step for either metric; `l2` is a compile-time constant after inlining */
static inline __m512 step(__m512 x, __m512 qv, __m512 acc, const int l2)
{
    if (l2) {
        __m512 d = _mm512_sub_ps(x, qv);
        return _mm512_fmadd_ps(d, d, acc);
    }
    return _mm512_fmadd_ps(x, qv, acc);
}

/* 16 accumulators -> one vector of their 16 lane sums, in float32: out lane i = sum of v[i].
 * Four levels of pairwise adds (512 -> 256 -> 128 -> 64 -> 32 bits per vector), so every lane
 * value goes through 4 float32 additions, then one permute undoes the 4 x 4 transposition the
 * in-lane shuffles leave. */
static inline __m512 reduce16x16(const __m512 v[16])
{
    __m512 w[8], z[4], t[2];
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 4; i++)
        z[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int i = 0; i < 2; i++)
        t[i] = _mm512_add_ps(_mm512_shuffle_ps(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(z[2 * i], z[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
    /* lane 4b + p of s holds the sum of v[4p + b] */
    const __m512i undo = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(undo, s);
}

/* Several queries, register-blocked: 4 rows x 4 queries share each 16-float load of a row
 * and of a query, one accumulator per (query, row) pair (16 of the 32 ZMM registers), so a
 * step is 8 loads for 16 FMAs instead of 2 loads per FMA. The dim % 16 tail is a masked load
 * (zero lanes add exact zeros); the 16 pairs' lanes are reduced together in float32
 * (reduce16x16). Each product goes through ceil(dim / 16) + 4 float32 roundings, within the
 * n = dim + 8 that topk.c's error bound allows for, so these values select like the one-query
 * kernel's. A block short of 4 rows or 4 queries repeats its last row / query and drops the
 * repeats' values. out[qi * ld + i] receives row i against query qi; ld >= n rounded up to 4. */
/* one 16-float step of a 4 x 4 block: acc[4b + a] += row a x query b over lanes in m */
static inline void block_step(__m512 acc[16], const float *const r[4], const float *const q[4],
                              int64_t j, const __mmask16 m, const int l2)
{
    __m512 x[4];
#pragma GCC unroll 4
    for (int a = 0; a < 4; a++)
        x[a] = _mm512_maskz_loadu_ps(m, r[a] + j);
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        const __m512 qv = _mm512_maskz_loadu_ps(m, q[b] + j);
#pragma GCC unroll 4
        for (int a = 0; a < 4; a++)
            acc[4 * b + a] = step(x[a], qv, acc[4 * b + a], l2);
    }
}

static inline void score_multi(const float *rows, int64_t n, int64_t dim, const float *qs,
                               int64_t nq, double *out, int64_t ld, const int l2)
{
    const __mmask16 tail = (__mmask16)((1u << (dim & 15)) - 1u);
    const int64_t d16 = dim & ~(int64_t)15;
    const float *q[4];
    for (int b = 0; b < 4; b++)
        q[b] = qs + (b < nq ? b : nq - 1) * dim;
    for (int64_t i = 0; i < n; i += 4) {
        const float *r[4];
        for (int a = 0; a < 4; a++)
            r[a] = rows + (i + a < n ? i + a : n - 1) * dim;
        __m512 acc[16];
#pragma GCC unroll 16
        for (int p = 0; p < 16; p++)
            acc[p] = _mm512_setzero_ps();
        for (int64_t j = 0; j < d16; j += 16)
            block_step(acc, r, q, j, (__mmask16)0xFFFF, l2);
        if (tail)
            block_step(acc, r, q, d16, tail, l2);
        const __m512 sums = reduce16x16(acc); /* lane 4b + a: query b, row i + a */
        double lanes[16];
        _mm512_storeu_pd(lanes, _mm512_cvtps_pd(_mm512_castps512_ps256(sums)));
        _mm512_storeu_pd(lanes + 8, _mm512_cvtps_pd(_mm256_castpd_ps(
                                        _mm512_extractf64x4_pd(_mm512_castps_pd(sums), 1))));
        for (int64_t b = 0; b < nq; b++)
            for (int a = 0; a < 4; a++)
                out[b * ld + i + a] = lanes[4 * b + a];
    }
}

void dot_multi_f32_avx512(const float *rows, int64_t n, int64_t dim, const float *qs, int64_t nq,
                          double *out, int64_t ld)
{
    score_multi(rows, n, dim, qs, nq, out, ld, 0);
}

void l2sq_multi_f32_avx512(const float *rows, int64_t n, int64_t dim, const float *qs, int64_t nq,
                           double *out, int64_t ld)
{
    score_multi(rows, n, dim, qs, nq, out, ld, 1);
}

/* topk.c's admission test on 8 values per instruction (see velaria_reject_fn). The operations
 * mirror offer_rows one for one; min(1, x) and max(-1, x) return x when x is NaN, like its
 * comparisons, and every comparison is ordered (false on NaN). */
int block_rejected_avx512(const double *raw, const double *inv_norms, const uint8_t *valid,
                          int64_t n, const velaria_reject_args *a)
{
    if (n % 8)
        return 0;
    const __m512d bound = _mm512_set1_pd(a->bound), inv_q = _mm512_set1_pd(a->inv_q);
    const __m512d g = _mm512_set1_pd(a->g), tau = _mm512_set1_pd(a->tau), g_q = _mm512_set1_pd(a->g_q);
    const __m512d one = _mm512_set1_pd(1.0), minus_one = _mm512_set1_pd(-1.0), zero = _mm512_setzero_pd();
    const __m512d two_g = _mm512_set1_pd(2.0 * a->g), two_tau = _mm512_set1_pd(2.0 * a->tau);
    for (int64_t i = 0; i < n; i += 8) {
        const __m512d r = _mm512_loadu_pd(raw + i);
        __mmask8 out;
        if (a->metric == VELARIA_METRIC_L2) {
            const __m512d lb = _mm512_sub_pd(r, _mm512_add_pd(_mm512_mul_pd(two_g, r), two_tau));
            out = _mm512_cmp_pd_mask(lb, bound, _CMP_GE_OQ);
        } else {
            const __m512d inv = _mm512_loadu_pd(inv_norms + i);
            if (a->metric == VELARIA_METRIC_DOT) {
                const __m512d x = _mm512_sub_pd(_mm512_sub_pd(_mm512_mul_pd(r, minus_one), tau), bound);
                out = _mm512_cmp_pd_mask(inv, zero, _CMP_GT_OQ) &
                      _mm512_cmp_pd_mask(_mm512_mul_pd(x, inv), g_q, _CMP_GE_OQ);
            } else {
                __m512d sim = _mm512_mul_pd(_mm512_mul_pd(r, inv), inv_q);
                sim = _mm512_max_pd(minus_one, _mm512_min_pd(one, sim));
                const __m512d m = _mm512_add_pd(g, _mm512_mul_pd(_mm512_mul_pd(tau, inv), inv_q));
                const __m512d lb = _mm512_sub_pd(_mm512_sub_pd(one, sim), m);
                out = _mm512_cmp_pd_mask(inv, zero, _CMP_NEQ_OQ) &
                      _mm512_cmp_pd_mask(lb, bound, _CMP_GE_OQ);
            }
        }
        out &= _mm512_cmp_pd_mask(_mm512_sub_pd(r, r), zero, _CMP_EQ_OQ); /* finite */
        if (valid)
            out |= _mm512_cmp_epi64_mask(_mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(valid + i))),
                                         _mm512_setzero_si512(), _MM_CMPINT_EQ);
        if (out != 0xFF)
            return 0;
    }
    return 1;
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif /* VELARIA_X86 */
