/* AVX-512F kernels. Only this file is compiled for AVX-512 (the target pragma below is its
 * per-file flag set, equivalent to -mavx512f), and topk.c calls it only when CPUID says
 * AVX512F and XCR0 says the OS saves opmask/ZMM state.
 *
 * Each row accumulates 4 x 16 float32 lanes with FMA, reading the row front to back; the
 * lanes are reduced in float64 and the dim % 16 tail is added in float64 (as the AVX2 file
 * does), so a dimension below 16 is scored exactly like the scalar kernel.
 */
#include "velaria_accel.h"

#if defined(VELARIA_X86)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512f")
#endif
#include <immintrin.h>

/* sum of 16 float32 lanes, in float64 */
static inline double hsum16(__m512 v)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

/* one step for either metric; `l2` is a compile-time constant after inlining */
static inline __m512 step(__m512 x, __m512 qv, __m512 acc, const int l2)
{
    if (l2) {
        __m512 d = _mm512_sub_ps(x, qv);
        return _mm512_fmadd_ps(d, d, acc);
    }
    return _mm512_fmadd_ps(x, qv, acc);
}

/* Rows are scored one after the other, each read front to back (64 floats = 4 independent
 * accumulators per step, then 16-float steps, then the dim % 16 tail in float64), so the loads hit
 * strictly sequential addresses and the hardware prefetchers stream at full read bandwidth
 * (interleaving 4 rows to share the query loads ran at ~60% of a plain read with AVX2 on Zen 3;
 * see topk_avx2.c). Out-of-order execution overlaps consecutive rows. */
static inline void score_rows(const float *rows, int64_t n, int64_t dim, const float *q,
                              double *out, const int l2)
{
    const int64_t d64 = dim & ~(int64_t)63, d16 = dim & ~(int64_t)15;
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + i * dim;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t j = 0;
        for (; j < d64; j += 64) {
            a0 = step(_mm512_loadu_ps(r + j), _mm512_loadu_ps(q + j), a0, l2);
            a1 = step(_mm512_loadu_ps(r + j + 16), _mm512_loadu_ps(q + j + 16), a1, l2);
            a2 = step(_mm512_loadu_ps(r + j + 32), _mm512_loadu_ps(q + j + 32), a2, l2);
            a3 = step(_mm512_loadu_ps(r + j + 48), _mm512_loadu_ps(q + j + 48), a3, l2);
        }
        for (; j < d16; j += 16)
            a0 = step(_mm512_loadu_ps(r + j), _mm512_loadu_ps(q + j), a0, l2);
        const double lanes = hsum16(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        out[i] = d16 == dim ? lanes : lanes + velaria_tail_f64(r, q, d16, dim, l2);
    }
}

void dot_f32_avx512(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    score_rows(rows, n, dim, q, out, 0);
}

void l2sq_f32_avx512(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    score_rows(rows, n, dim, q, out, 1);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif /* VELARIA_X86 */
