/* Group ids for GROUP BY on two string columns whose values are at most one byte long (flags
 * and status letters: TPC-H Q1's l_returnflag, l_linestatus), through a direct-indexed table.
 *
 * Each value gets a code: 0 for the empty string, 1 + its byte for a one-byte value, 257 for
 * NULL; the pair (c0, c1) indexes a table of 258 * 258 int32 group ids (-1: no group yet).
 * One pass reads each row's two offsets and bytes and one table slot: no hashing, no probe
 * chain, and the table (260 KiB) stays in cache.  Plain C; the numpy twin is
 * accel/byte_keys.py's fallback and tests/test_byte_keys.py compares the two.
 */
#include <stdint.h>

#define BYTE_CODES 258

static inline int64_t byte_code(const int32_t *off, const uint8_t *data, const uint8_t *bits,
                                int64_t bit_off, int64_t i)
{
    if (bits) {
        const int64_t b = bit_off + i;
        if (!((bits[b >> 3] >> (b & 7)) & 1)) return BYTE_CODES - 1;
    }
    return off[i + 1] > off[i] ? 1 + (int64_t)data[off[i]] : 0;
}

/* 1 when every row of the column is at most one byte long (NULL slots included). */
static int all_short(const int32_t *off, int64_t n)
{
    int32_t longest = 0;
    for (int64_t i = 0; i < n; i++) {
        const int32_t len = off[i + 1] - off[i];
        longest = len > longest ? len : longest;
    }
    return longest <= 1;
}

/* out_gids[i] = the group id of row i's pair of values; a pair never seen gets next_gid++ and
 * its row is appended to new_rows (first-appearance order; *n_new counts them).  Rows with
 * sel[i] == 0 (sel NULL: every row selected) are not numbered and get id 0.  `off0`/`off1`
 * point at the column's first offset (the array offset applied), `bits0`/`bits1` are Arrow
 * validity bitmaps (NULL: no NULL) read from bit `bit_off0`/`bit_off1`.  Returns the new
 * next_gid, or -1 (nothing changed) when a value is longer than one byte. */
int64_t velaria_byte_pair_ids(int64_t n,
                              const int32_t *off0, const uint8_t *data0, const uint8_t *bits0, int64_t bit_off0,
                              const int32_t *off1, const uint8_t *data1, const uint8_t *bits1, int64_t bit_off1,
                              const uint8_t *sel, int32_t *lut, int64_t next_gid,
                              int64_t *out_gids, int64_t *new_rows, int64_t *n_new)
{
    if (!all_short(off0, n) || !all_short(off1, n)) return -1;
    int64_t added = 0;
    for (int64_t i = 0; i < n; i++) {
        if (sel && !sel[i]) {
            out_gids[i] = 0;
            continue;
        }
        const int64_t slot = byte_code(off0, data0, bits0, bit_off0, i) * BYTE_CODES
                             + byte_code(off1, data1, bits1, bit_off1, i);
        int32_t g = lut[slot];
        if (g < 0) {
            g = lut[slot] = (int32_t)next_gid++;
            new_rows[added++] = i;
        }
        out_gids[i] = g;
    }
    *n_new = added;
    return next_gid;
}
