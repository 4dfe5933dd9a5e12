/* Grouped float SUM / AVG of several columns in one pass over the group ids.
 *
 * velaria_group_sum_multi_f64: for each row i in order and each column j, when the row is
 * valid in column j (valids[j] NULL: every row), totals[j][gids[i]] += xs[j][i] and
 * counts[j][gids[i]] += 1.  Each group's total of each column is therefore the same chain of
 * IEEE additions in row order as one velaria_group_sum_f64 call per column (the grouped float
 * SUM order of the reference: left to right from the running total; compiled with
 * -ffp-contract=off), bit for bit; the group ids are read once instead of once per column.
 *
 * When the columns share one validity (every valids[j] the same pointer, or all NULL: no NULL
 * in any column, or one selection of rows) their counts are equal, so the caller may pass
 * counts[j] NULL for j > 0: only counts[0] is kept, one increment per row instead of k.
 */
#include "velaria_accel.h"

#include <stddef.h>

void velaria_group_sum_multi_f64(const int64_t *gids, int64_t n, int k, const double *const *xs,
                                 const uint8_t *const *valids, double *const *totals,
                                 int64_t *const *counts)
{
    int any_valid = 0, shared = k > 0;
    for (int j = 0; j < k; j++) {
        any_valid |= valids[j] != NULL;
        shared &= valids[j] == valids[0] && (j == 0 || counts[j] == NULL);
    }
    if (shared) {
        const uint8_t *valid = valids[0];
        int64_t *count = counts[0];
        for (int64_t i = 0; i < n; i++) {
            if (valid && !valid[i]) continue;
            const int64_t g = gids[i];
            for (int j = 0; j < k; j++) totals[j][g] += xs[j][i];
            count[g]++;
        }
        return;
    }
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
