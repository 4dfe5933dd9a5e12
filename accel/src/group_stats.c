/* Per-group statistics folds with the reference's exact arithmetic (reference/aggregate.py).
 *
 * velaria_group_welford_f64: VAR_* / STDDEV_* state. For every valid row in row order,
 * Welford's update of its group: n += 1; d = x - mean; mean += d / n; m2 += d * (x - mean).
 * The same IEEE operations in the same order as the Python reference (compiled with
 * -ffp-contract=off, so no fused multiply-add), hence bit-identical. gids NULL: group 0.
 */
#include "velaria_accel.h"

void velaria_group_welford_f64(const int64_t *gids, const double *x, const uint8_t *valid, int64_t n,
                               int64_t *counts, double *mean, double *m2)
{
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) continue;
        const int64_t g = gids ? gids[i] : 0;
        const int64_t c = ++counts[g];
        const double v = x[i];
        const double d = v - mean[g];
        mean[g] += d / (double)c;
        m2[g] += d * (v - mean[g]);
    }
}
