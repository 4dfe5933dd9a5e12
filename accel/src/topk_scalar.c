/* Scalar C kernels: sequential float64 sums, bit-identical to reference/topk.py.
 * Compiled with baseline flags (and -ffp-contract=off), so this path runs on any CPU. */
#include "velaria_accel.h"

void dot_f32_scalar(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + i * dim;
        double acc = 0.0;
        for (int64_t j = 0; j < dim; j++)
            acc += (double)r[j] * (double)q[j];
        out[i] = acc;
    }
}

void l2sq_f32_scalar(const float *rows, int64_t n, int64_t dim, const float *q, double *out)
{
    for (int64_t i = 0; i < n; i++) {
        const float *r = rows + i * dim;
        double acc = 0.0;
        for (int64_t j = 0; j < dim; j++) {
            double d = (double)r[j] - (double)q[j];
            acc += d * d;
        }
        out[i] = acc;
    }
}
