/* NEON kernels (arm64 only; NEON is baseline there): 4 float32 lanes accumulated with FMA
 * (two accumulators per row), lanes reduced in float64, scalar float64 tail. */
#include "velaria_accel.h"

#if defined(VELARIA_ARM64)
#include <arm_neon.h>

static inline double hsum4(float32x4_t v)
{
    return vaddvq_f64(vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)));
}

void dot_f32_neon(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    const int64_t d8 = dim & ~(int64_t)7;
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + i * dim;
        float32x4_t a = vdupq_n_f32(0.0f), b = a;
        for (int64_t j = 0; j < d8; j += 8) {
            a = vfmaq_f32(a, vld1q_f32(r + j), vld1q_f32(q + j));
            b = vfmaq_f32(b, vld1q_f32(r + j + 4), vld1q_f32(q + j + 4));
        }
        out[i] = hsum4(a) + hsum4(b) + velaria_tail_f64(r, q, d8, dim, 0);
    }
}

void l2sq_f32_neon(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    const int64_t d8 = dim & ~(int64_t)7;
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + i * dim;
        float32x4_t a = vdupq_n_f32(0.0f), b = a;
        for (int64_t j = 0; j < d8; j += 8) {
            float32x4_t d0 = vsubq_f32(vld1q_f32(r + j), vld1q_f32(q + j));
            float32x4_t d1 = vsubq_f32(vld1q_f32(r + j + 4), vld1q_f32(q + j + 4));
            a = vfmaq_f32(a, d0, d0);
            b = vfmaq_f32(b, d1, d1);
        }
        out[i] = hsum4(a) + hsum4(b) + velaria_tail_f64(r, q, d8, dim, 1);
    }
}
#endif /* VELARIA_ARM64 */
