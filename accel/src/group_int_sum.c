/* Exact per-group int64 sums in one pass (plain C).  The numpy twin is accel/int_sums.py's
 * fallback; tests/test_int_sums.py compares them.
 *
 * A group's total is hi * 2**32 + lo with 0 <= lo < 2**32.  Each valid value adds its low 32
 * bits (unsigned) to lo[g], carrying into hi[g] at once, and its high 32 bits (as a signed
 * 32-bit value) to hi[g], and counts[g] += 1, so only the groups of the rows are touched (a
 * carry pass over every group after each batch would cost the whole state every batch).  The
 * caller keeps |hi| far enough from 2**63 that the adds cannot wrap. */
#include <stddef.h>
#include <stdint.h>

void velaria_group_sum_i64(const int64_t *gids, const int64_t *x, const uint8_t *valid, int64_t n,
                           int64_t *lo, int64_t *hi, int64_t *counts)
{
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) continue;
        const int64_t g = gids[i];
        const uint64_t v = (uint64_t)x[i];
        const int64_t h = (int64_t)(v >> 32);                /* 0 .. 2**32 - 1 */
        const int64_t l = lo[g] + (int64_t)(v & 0xFFFFFFFFull), carry = l >> 32;   /* 0 or 1 */
        lo[g] = l - (carry << 32);
        hi[g] += h - ((h & 0x80000000) << 1) + carry;        /* the signed high half */
        counts[g] += 1;
    }
}

static inline void add_halves(int64_t *lo, int64_t *hi, int64_t g, int64_t x)
{
    const uint64_t v = (uint64_t)x;
    const int64_t h = (int64_t)(v >> 32);
    const int64_t l = lo[g] + (int64_t)(v & 0xFFFFFFFFull), carry = l >> 32;
    lo[g] = l - (carry << 32);
    hi[g] += h - ((h & 0x80000000) << 1) + carry;
}

/* velaria_group_sum_i64 for k columns in one pass over the group ids (TPC-H Q1 on DECIMAL
 * columns has seven exact sums): column j's valid rows go to lo[j], hi[j] and counts[j], the
 * same additions as k calls.  When every valids[j] is the same pointer (or all NULL) and
 * counts[j] is NULL for j > 0, the rows are counted once, in counts[0] (the caller copies
 * the increments). */
void velaria_group_sum_multi_i64(const int64_t *gids, int64_t n, int k, const int64_t *const *xs,
                                 const uint8_t *const *valids, int64_t *const *lo, int64_t *const *hi,
                                 int64_t *const *counts)
{
    int shared = k > 0;
    for (int j = 0; j < k; j++) shared &= valids[j] == valids[0] && (j == 0 || counts[j] == NULL);
    if (shared) {
        const uint8_t *valid = valids[0];
        int64_t *count = counts[0];
        for (int64_t i = 0; i < n; i++) {
            if (valid && !valid[i]) continue;
            const int64_t g = gids[i];
            for (int j = 0; j < k; j++) add_halves(lo[j], hi[j], g, xs[j][i]);
            count[g]++;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t g = gids[i];
        for (int j = 0; j < k; j++) {
            if (valids[j] && !valids[j][i]) continue;
            add_halves(lo[j], hi[j], g, xs[j][i]);
            counts[j][g]++;
        }
    }
}
