/* Group ids of (a, b) code pairs through a direct-indexed table: the pair's slot is
 * a * stride + b in `lut` (int64, -1: a pair not seen yet).  Plain C, no SIMD.  The caller is
 * accel/pair_ids.py (PairTable); its numpy twin is the fallback and tests/test_pair_ids.py
 * compares the two.
 *
 * Each side comes as one index per row, int32 (`*32` set) or int64, and an optional map from
 * index to code (a dictionary-encoded key column: the code of each dictionary position), so a
 * row costs two loads and no temporary code array. */
#include "velaria_accel.h"

static inline int64_t code_at(const void *idx, int is32, const int64_t *map, int64_t i)
{
    const int64_t v = is32 ? (int64_t)((const int32_t *)idx)[i] : ((const int64_t *)idx)[i];
    return map ? map[v] : v;
}

/* Returns the new next_gid: out_gids[i] = the id of row i's pair; a pair never seen gets
 * next_gid++ and its row is appended to new_rows (first-appearance order).  Nothing is
 * written, and -1 returned, when a code lies outside [0, rows) x [0, stride); -2 when an
 * index lies outside its map.  bounds[0..3] get the lowest and highest code of a, then of b
 * (when n > 0 and no index is out of its map), so the caller can grow the table. */
int64_t velaria_pair_ids(int64_t n, const void *ia, int a32, const int64_t *map_a, int64_t map_a_len,
                         const void *ib, int b32, const int64_t *map_b, int64_t map_b_len,
                         int64_t rows, int64_t stride, int64_t *lut, int64_t next_gid,
                         int64_t *out_gids, int64_t *new_rows, int64_t *bounds)
{
    if (n <= 0) return next_gid;
    int64_t amin = INT64_MAX, amax = INT64_MIN, bmin = INT64_MAX, bmax = INT64_MIN;
    for (int64_t i = 0; i < n; i++) {
        if (map_a) {
            const int64_t v = a32 ? (int64_t)((const int32_t *)ia)[i] : ((const int64_t *)ia)[i];
            if (v < 0 || v >= map_a_len) return -2;
        }
        if (map_b) {
            const int64_t v = b32 ? (int64_t)((const int32_t *)ib)[i] : ((const int64_t *)ib)[i];
            if (v < 0 || v >= map_b_len) return -2;
        }
        const int64_t a = code_at(ia, a32, map_a, i), b = code_at(ib, b32, map_b, i);
        if (a < amin) amin = a;
        if (a > amax) amax = a;
        if (b < bmin) bmin = b;
        if (b > bmax) bmax = b;
    }
    bounds[0] = amin; bounds[1] = amax; bounds[2] = bmin; bounds[3] = bmax;
    if (amin < 0 || bmin < 0 || amax >= rows || bmax >= stride) return -1;
    int64_t added = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t slot = code_at(ia, a32, map_a, i) * stride + code_at(ib, b32, map_b, i);
        out_gids[i] = velaria_number_slot(lut, slot, i, &next_gid, new_rows, &added);
    }
    return next_gid;
}
