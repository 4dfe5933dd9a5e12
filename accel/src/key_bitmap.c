/* First occurrences of small packed keys through a bitmap.
 *
 * velaria_bitmap_first_rows: slots[i] is a key already packed into [0, bits) (the caller
 * packs several small-range integer key columns in mixed radix, NULL its own digit); a row
 * whose slot's bit is still clear sets it and is written to new_rows, in row order.  Returns
 * the number of such rows.  The bitmap persists across calls, so the rows written are the
 * first occurrences of their key over every batch: a keys-only GROUP BY (the inner step of
 * COUNT(DISTINCT x) per group) needs just these rows, not a group id per row, and one bit per
 * possible key stays in cache where a hash table of a million pairs does not.
 */
#include "velaria_accel.h"

int64_t velaria_bitmap_first_rows(const int64_t *slots, int64_t n, uint8_t *bitmap, int64_t *new_rows)
{
    int64_t added = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint64_t s = (uint64_t)slots[i];
        const uint8_t bit = (uint8_t)(1u << (s & 7));
        uint8_t *byte = bitmap + (s >> 3);
        if (!(*byte & bit)) {
            *byte |= bit;
            new_rows[added++] = i;
        }
    }
    return added;
}
