/* Float SUM in the order the specification defines (reference/aggregate.py, "Float SUM"):
 * the k-th non-NULL value of a sum goes to lane k mod 16; each lane is summed left to right
 * from +0.0; the lanes are then combined pairwise (velaria_combine_lanes_f64).
 *
 * Every dispatch level computes exactly that: a lane is one chain of IEEE float64 additions
 * in input order, and a SIMD register lane is such a chain (vaddpd adds lane by lane, no
 * reassociation, no FMA). The scalar level keeps 16 doubles; AVX2 four 4-wide registers;
 * AVX-512 two 8-wide registers. The result is bit-identical across levels by construction.
 *
 * velaria_sum_lanes_f64 continues a running sum: `lanes` holds the 16 partial sums and
 * `pos` the number of values added so far (mod 16 picks the first value's lane); it returns
 * the number of values it added (the non-NULL ones when `valid` is given).
 */
#include "velaria_accel.h"

#define LANES 16

/* values at lanes pos.. up to the next multiple of 16, one at a time */
static int64_t head(const double *x, int64_t n, double *lanes, int64_t pos)
{
    int64_t h = (LANES - (pos & (LANES - 1))) & (LANES - 1);
    if (h > n) h = n;
    for (int64_t i = 0; i < h; i++) lanes[(pos + i) & (LANES - 1)] += x[i];
    return h;
}

static void tail(const double *x, int64_t n, double *lanes)
{
    for (int64_t i = 0; i < n; i++) lanes[i] += x[i];   /* starts at lane 0 */
}

static void body_scalar(const double *x, int64_t blocks, double *lanes)
{
    double acc[LANES];
    for (int j = 0; j < LANES; j++) acc[j] = lanes[j];
    for (int64_t b = 0; b < blocks; b++) {
        const double *p = x + b * LANES;
        for (int j = 0; j < LANES; j++) acc[j] += p[j];
    }
    for (int j = 0; j < LANES; j++) lanes[j] = acc[j];
}

#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx2")))
static void body_avx2(const double *x, int64_t blocks, double *lanes)
{
    __m256d a0 = _mm256_loadu_pd(lanes), a1 = _mm256_loadu_pd(lanes + 4);
    __m256d a2 = _mm256_loadu_pd(lanes + 8), a3 = _mm256_loadu_pd(lanes + 12);
    for (int64_t b = 0; b < blocks; b++) {
        const double *p = x + b * LANES;
        a0 = _mm256_add_pd(a0, _mm256_loadu_pd(p));
        a1 = _mm256_add_pd(a1, _mm256_loadu_pd(p + 4));
        a2 = _mm256_add_pd(a2, _mm256_loadu_pd(p + 8));
        a3 = _mm256_add_pd(a3, _mm256_loadu_pd(p + 12));
    }
    _mm256_storeu_pd(lanes, a0);
    _mm256_storeu_pd(lanes + 4, a1);
    _mm256_storeu_pd(lanes + 8, a2);
    _mm256_storeu_pd(lanes + 12, a3);
}

__attribute__((target("avx512f")))
static void body_avx512(const double *x, int64_t blocks, double *lanes)
{
    __m512d a0 = _mm512_loadu_pd(lanes), a1 = _mm512_loadu_pd(lanes + 8);
    for (int64_t b = 0; b < blocks; b++) {
        const double *p = x + b * LANES;
        a0 = _mm512_add_pd(a0, _mm512_loadu_pd(p));
        a1 = _mm512_add_pd(a1, _mm512_loadu_pd(p + 8));
    }
    _mm512_storeu_pd(lanes, a0);
    _mm512_storeu_pd(lanes + 8, a1);
}
#endif

/* The values of x (no NULLs) added to the lanes from lane pos mod 16 on. */
static void sum_dense(int level, const double *x, int64_t n, double *lanes, int64_t pos)
{
    int64_t h = head(x, n, lanes, pos);
    int64_t blocks = (n - h) / LANES;
    const double *p = x + h;
    switch (level) {
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    case VELARIA_LEVEL_AVX512:
        body_avx512(p, blocks, lanes);
        break;
    case VELARIA_LEVEL_AVX2:
        body_avx2(p, blocks, lanes);
        break;
#endif
    default:
        body_scalar(p, blocks, lanes);
    }
    tail(p + blocks * LANES, n - h - blocks * LANES, lanes);
}

/* rows per piece of a masked sum: its kept values are moved into a buffer that stays in L1 */
#define PIECE 1024

int64_t velaria_sum_lanes_f64(int level, const double *x, const uint8_t *valid, int64_t n,
                              double *lanes, int64_t pos)
{
    if (!valid) {
        sum_dense(level, x, n, lanes, pos);
        return n;
    }
    /* NULLs (or unselected rows) skipped: the kept values of each piece are compacted, in
     * order, then added as a dense run continuing at the lane after the last value added, so
     * every lane receives the same values in the same order as without pieces */
    double buf[PIECE];
    int64_t k = 0;
    for (int64_t lo = 0; lo < n; lo += PIECE) {
        const int64_t len = n - lo < PIECE ? n - lo : PIECE;
        const int64_t got = velaria_compact_run_u64(level, (const uint64_t *)(x + lo), valid + lo, len,
                                                    (uint64_t *)buf, PIECE);
        sum_dense(level, buf, got, lanes, pos + k);
        k += got;
    }
    return k;
}

double velaria_combine_lanes_f64(const double *lanes)
{
    double t[LANES];
    for (int j = 0; j < LANES; j++) t[j] = lanes[j];
    for (int width = LANES / 2; width >= 1; width /= 2)
        for (int j = 0; j < width; j++) t[j] = t[2 * j] + t[2 * j + 1];
    return t[0];
}

/* out[0..k) = the src values whose mask byte is nonzero, in order; returns k. Branch-free:
 * every value is written at the current output index, which advances by the mask, so out
 * needs k + 1 slots (the index never passes k). */
int64_t velaria_compact_u64(const uint64_t *src, const uint8_t *mask, int64_t n, uint64_t *out)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        out[k] = src[i];
        k += mask[i] != 0;
    }
    return k;
}
