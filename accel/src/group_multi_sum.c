/* Grouped float SUM / AVG of several columns in one pass over the group ids.
 *
 * velaria_group_sum_multi_f64: for each row i in order and each column j, when the row is
 * valid in column j (valids[j] NULL: every row), totals[j][gids[i]] += xs[j][i] and
 * counts[j][gids[i]] += 1.  Each group's total of each column is therefore the same chain of
 * IEEE additions in row order as one velaria_group_sum_f64 call per column (the grouped float
 * SUM order of the reference: left to right from the running total; compiled with
 * -ffp-contract=off), bit for bit; the group ids are read once instead of once per column.
 */
#include "velaria_accel.h"

#include <stddef.h>

void velaria_group_sum_multi_f64(const int64_t *gids, int64_t n, int k, const double *const *xs,
                                 const uint8_t *const *valids, double *const *totals,
                                 int64_t *const *counts)
{
    int any_valid = 0;
    for (int j = 0; j < k; j++) any_valid |= valids[j] != NULL;
    if (!any_valid) {
        for (int64_t i = 0; i < n; i++) {
            const int64_t g = gids[i];
            for (int j = 0; j < k; j++) {
                totals[j][g] += xs[j][i];
                counts[j][g]++;
            }
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t g = gids[i];
        for (int j = 0; j < k; j++) {
            if (valids[j] && !valids[j][i]) continue;
            totals[j][g] += xs[j][i];
            counts[j][g]++;
        }
    }
}
