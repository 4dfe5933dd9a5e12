/* GROUP BY one integer key through the dense lookup table, with the float SUM / AVG and the
 * counts folded in the same pass (no group id per row is written).
 *
 * velaria_dense_group_sum_f64: for each row i in order, the group g is lut[keys[i] - lo]
 * (null_slot for a NULL key, valid[i] == 0), numbered next_gid, next_gid + 1, ... on first
 * sight with the row written to new_rows -- exactly velaria_dense_group_ids --; then, for each
 * of the k float columns (none has a NULL), totals[j][g] += xs[j][i], and count[g] += 1.
 * Every group's totals are the same chain of IEEE additions in row order as
 * velaria_group_sum_f64 over the group ids (compiled with -ffp-contract=off), bit for bit.
 * The caller sizes totals and count for every group the batch may open.  Returns the next
 * group id.
 */
#include "velaria_accel.h"

#include <stddef.h>

int64_t velaria_dense_group_sum_f64(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo,
                                    int64_t *lut, int64_t null_slot, int64_t next_gid, int64_t *new_rows,
                                    int k, const double *const *xs, double *const *totals, int64_t *count)
{
    int64_t added = 0;
    if (valid == NULL && k == 1) {
        /* the common shape (SUM and AVG of one column, COUNT(*)): no per-row branches but the
         * rare first sight of a group */
        const double *restrict x0 = xs[0];
        double *restrict t0 = totals[0];
        for (int64_t i = 0; i < n; i++) {
            const int64_t slot = (int64_t)((uint64_t)keys[i] - (uint64_t)lo);
            int64_t g = lut[slot];
            if (__builtin_expect(g < 0, 0)) {
                g = lut[slot] = next_gid++;
                new_rows[added++] = i;
            }
            t0[g] += x0[i];
            count[g]++;
        }
        return next_gid;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t slot = (valid && !valid[i]) ? null_slot : (int64_t)((uint64_t)keys[i] - (uint64_t)lo);
        int64_t g = lut[slot];
        if (g < 0) {
            g = lut[slot] = next_gid++;
            new_rows[added++] = i;
        }
        for (int j = 0; j < k; j++) totals[j][g] += xs[j][i];
        count[g]++;
    }
    return next_gid;
}
