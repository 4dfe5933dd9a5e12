/* First occurrences of small-range integer key combinations through a bitmap.
 *
 * velaria_bitmap_first_rows: row i's keys are packed in mixed radix into one slot,
 *     slot = (((d_0) * radix_1 + d_1) * radix_2 + d_2) ...,  d_j = cols[j][i] - lows[j]
 * (radix_j - 1 when the key is NULL: valids[j] non-NULL and valids[j][i] == 0); the caller
 * guarantees every value lies in [lows[j], lows[j] + radix_j - 2] and the product of the
 * radixes is the bitmap's size in bits.  A row whose slot's bit is still clear sets it and is
 * written to new_rows, in row order.  Returns the number of such rows.  The bitmap persists
 * across calls, so the rows written are the first occurrences of their key combination over
 * every batch: a keys-only GROUP BY (the inner step of COUNT(DISTINCT x) per group) needs just
 * these rows, not a group id per row, and one bit per possible combination stays in cache
 * where a hash table of a million pairs does not.
 */
#include "velaria_accel.h"

#define BLOCK 64

int64_t velaria_bitmap_first_rows(int ncols, const int64_t *const *cols, const uint8_t *const *valids,
                                  const int64_t *lows, const int64_t *radixes, int64_t n,
                                  uint8_t *bitmap, int64_t *new_rows)
{
    int64_t added = 0;
    uint64_t slots[BLOCK];
    /* a block's slots are computed and their bitmap bytes prefetched first, then tested in row
     * order: a bitmap of millions of bits misses the cache on most rows, and the misses of a
     * block then overlap instead of stalling one after the other */
    for (int64_t start = 0; start < n; start += BLOCK) {
        const int64_t m = n - start < BLOCK ? n - start : BLOCK;
        for (int64_t b = 0; b < m; b++) {
            const int64_t i = start + b;
            uint64_t s = 0;
            for (int j = 0; j < ncols; j++) {
                const uint64_t d = (valids[j] && !valids[j][i]) ? (uint64_t)radixes[j] - 1
                                                                : (uint64_t)cols[j][i] - (uint64_t)lows[j];
                s = s * (uint64_t)radixes[j] + d;
            }
            slots[b] = s;
            __builtin_prefetch(bitmap + (s >> 3), 1, 0);
        }
        for (int64_t b = 0; b < m; b++) {
            const uint64_t s = slots[b];
            const uint8_t bit = (uint8_t)(1u << (s & 7));
            uint8_t *byte = bitmap + (s >> 3);
            if (!(*byte & bit)) {
                *byte |= bit;
                new_rows[added++] = start + b;
            }
        }
    }
    return added;
}
