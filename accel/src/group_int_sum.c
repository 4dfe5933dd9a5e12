/* Exact per-group int64 sums in one pass (plain C).  The numpy twin is accel/int_sums.py's
 * fallback; tests/test_int_sums.py compares them.
 *
 * A group's total is hi * 2**32 + lo.  Each valid value adds its low 32 bits (unsigned) to
 * lo[g] and its high 32 bits (as a signed 32-bit value) to hi[g], and counts[g] += 1.  With
 * 0 <= lo < 2**32 on entry and n < 2**31, lo stays below 2**63; the caller carries lo's high
 * bits into hi afterwards and keeps |hi| far enough from 2**63 that the adds cannot wrap. */
#include <stdint.h>

void velaria_group_sum_i64(const int64_t *gids, const int64_t *x, const uint8_t *valid, int64_t n,
                           int64_t *lo, int64_t *hi, int64_t *counts)
{
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) continue;
        const int64_t g = gids[i];
        const uint64_t v = (uint64_t)x[i];
        const int64_t h = (int64_t)(v >> 32);                /* 0 .. 2**32 - 1 */
        lo[g] += (int64_t)(v & 0xFFFFFFFFull);
        hi[g] += h - ((h & 0x80000000) << 1);                /* the signed high half */
        counts[g] += 1;
    }
}
