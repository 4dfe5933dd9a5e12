/* Group ids for int64 keys through a persistent open-addressing hash table (linear probing).
 * Plain C, no SIMD.  The numpy twin is accel/group_hash.py's fallback; tests/test_group_hash.py
 * compares the two.
 *
 * The table lives in two caller-owned arrays of `cap` slots (cap a power of two, 2**bits):
 * slot_keys[s] holds a key and slot_gids[s] its group id (-1: empty slot).  The caller keeps
 * the table at most half full *after* the call (cap >= 2 * (groups + n)), so probing always
 * ends and no insertion can fail half way. */
#include <stdint.h>

/* out_gids[i] = the group id of keys[i]; a key never seen gets next_gid++ and its row is
 * appended to new_rows (first-appearance order).  Returns the new next_gid. */
int64_t velaria_hash_group_ids(const int64_t *keys, int64_t n, int64_t *slot_keys, int64_t *slot_gids,
                               int bits, int64_t next_gid, int64_t *out_gids, int64_t *new_rows)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    const int shift = 64 - bits;
    int64_t added = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t k = keys[i];
        /* Fibonacci hashing: the top bits of k * 2**64/phi spread packed and sequential keys */
        uint64_t s = bits ? ((uint64_t)k * 0x9E3779B97F4A7C15ull) >> shift : 0;
        int64_t g;
        for (;;) {
            g = slot_gids[s];
            if (g < 0) {
                slot_keys[s] = k;
                g = slot_gids[s] = next_gid++;
                new_rows[added++] = i;
                break;
            }
            if (slot_keys[s] == k) break;
            s = (s + 1) & mask;
        }
        out_gids[i] = g;
    }
    return next_gid;
}
