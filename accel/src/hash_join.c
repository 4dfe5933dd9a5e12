/* Hash equi-join on int64 keys (the accelerated hash_join's C path; accel/hash_join_c.py drives
 * it and keeps the reference output order).  Plain C, no SIMD: the work is random memory
 * access, one probe per row.
 *
 * The build side's distinct keys are numbered in an open-addressing table (linear probing,
 * Fibonacci hashing, at most half full) held in two caller-owned arrays of 2**bits slots:
 * slot_keys[s] a key, slot_gids[s] its number (-1: empty).  Build rows are then bucketed by
 * number (a stable counting sort), so the rows of one key sit together in row order; the probe
 * side looks each key up and copies the bucket of its number. */
#include <stdint.h>

static inline uint64_t slot_of(int64_t k, int bits)
{
    return bits ? ((uint64_t)k * 0x9E3779B97F4A7C15ull) >> (64 - bits) : 0;
}

/* out_gids[i] = the number of keys[i] (keys numbered 0, 1, ... in first-appearance order), -1
 * for a row whose valid[i] is 0 (a NULL key never matches).  `valid` may be NULL (all valid).
 * The caller sizes the table: 2**bits >= 2 * n.  Returns the count of distinct keys. */
int64_t velaria_join_build(const int64_t *keys, const uint8_t *valid, int64_t n,
                           int64_t *slot_keys, int64_t *slot_gids, int bits, int64_t *out_gids)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    int64_t next = 0;
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) {
            out_gids[i] = -1;
            continue;
        }
        const int64_t k = keys[i];
        uint64_t s = slot_of(k, bits);
        for (;;) {
            int64_t g = slot_gids[s];
            if (g < 0) {
                slot_keys[s] = k;
                slot_gids[s] = g = next++;
            } else if (slot_keys[s] != k) {
                s = (s + 1) & mask;
                continue;
            }
            out_gids[i] = g;
            break;
        }
    }
    return next;
}

/* out_gids[i] = the number of keys[i] in a table filled by velaria_join_build, -1 when the key
 * is absent or valid[i] is 0.  Returns the count of rows that found their key. */
int64_t velaria_join_lookup(const int64_t *keys, const uint8_t *valid, int64_t n,
                            const int64_t *slot_keys, const int64_t *slot_gids, int bits, int64_t *out_gids)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    int64_t found = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t g = -1;
        if (!valid || valid[i]) {
            const int64_t k = keys[i];
            uint64_t s = slot_of(k, bits);
            while ((g = slot_gids[s]) >= 0 && slot_keys[s] != k)
                s = (s + 1) & mask;
            found += g >= 0;
        }
        out_gids[i] = g;
    }
    return found;
}

/* Stable counting sort of the rows with gids[i] >= 0 by gid: afterwards the rows of number g
 * are order[starts[g] .. starts[g + 1]) in row order.  starts has n_groups + 1 entries. */
void velaria_join_bucket(const int64_t *gids, int64_t n, int64_t n_groups, int64_t *starts, int64_t *order)
{
    for (int64_t g = 0; g <= n_groups; g++)
        starts[g] = 0;
    for (int64_t i = 0; i < n; i++)
        if (gids[i] >= 0)
            starts[gids[i] + 1]++;
    for (int64_t g = 0; g < n_groups; g++)
        starts[g + 1] += starts[g];
    /* starts[g] doubles as the write cursor of bucket g, then is restored from its neighbour */
    for (int64_t i = 0; i < n; i++)
        if (gids[i] >= 0)
            order[starts[gids[i]]++] = i;
    for (int64_t g = n_groups; g > 0; g--)
        starts[g] = starts[g - 1];
    starts[0] = 0;
}

/* Probe rows in order: row i (number gids[i]) writes the build rows of its bucket at out[pos],
 * pos advancing by `emit[i]`; a row without a match but with emit[i] == 1 (an outer join's
 * padding) writes -1.  out has sum(emit) slots. */
void velaria_join_gather(const int64_t *gids, const int64_t *emit, int64_t n, const int64_t *starts,
                         const int64_t *order, int64_t *out)
{
    int64_t pos = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t g = gids[i];
        if (g >= 0) {
            for (int64_t p = starts[g]; p < starts[g + 1]; p++)
                out[pos++] = order[p];
        } else if (emit[i]) {
            out[pos++] = -1;
        }
    }
}

/* The build side is the left: right rows j in order scatter themselves after the left rows of
 * their bucket, cursor[i] being the next free output slot of left row i.  Visiting j in
 * ascending order leaves every left row's matches in right-row order. */
void velaria_join_scatter(const int64_t *gids, int64_t n, const int64_t *starts, const int64_t *order,
                          int64_t *cursor, int64_t *out)
{
    for (int64_t j = 0; j < n; j++) {
        const int64_t g = gids[j];
        if (g < 0)
            continue;
        for (int64_t p = starts[g]; p < starts[g + 1]; p++)
            out[cursor[order[p]]++] = j;
    }
}
