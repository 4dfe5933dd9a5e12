/* Batch-operator kernels in plain C (no SIMD intrinsics; -ffp-contract=off keeps every float
 * addition a single rounded add in input order, bit-identical to the reference's left-to-right
 * Python sum).  Each has a numpy twin in accel/batch_c.py used when this module is missing,
 * and tests/test_kernel_parity.py checks C against the twin and the reference. */
#define _POSIX_C_SOURCE 200112L
#define _DEFAULT_SOURCE 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "velaria_accel.h"

/* A large scratch buffer, backed by huge pages where the OS allows (fewer TLB misses in the
 * scattered radix passes). */
static void *big_alloc(size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)2 << 20;
    size_t rounded = (bytes + huge - 1) / huge * huge;
    void *p = NULL;
    if (posix_memalign(&p, huge, rounded) != 0) return NULL;
    madvise(p, rounded, MADV_HUGEPAGE);
    return p;
#else
    return malloc(bytes);
#endif
}

/* Dense group ids for one integer key column.  lut[key - lo] is the global group id of that
 * key (-1: not seen yet); lut[null_slot] the id of the NULL group.  A key seen for the first
 * time gets next_gid++ and its row is appended to new_rows.  Returns the new next_gid. */
int64_t velaria_dense_group_ids(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo,
                                int64_t *lut, int64_t null_slot, int64_t next_gid,
                                int64_t *out_gids, int64_t *new_rows)
{
    int64_t added = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t slot = (valid && !valid[i]) ? null_slot : (int64_t)((uint64_t)keys[i] - (uint64_t)lo);
        out_gids[i] = velaria_number_slot(lut, slot, i, &next_gid, new_rows, &added);
    }
    return next_gid;
}

/* totals[g] += x[i] in row order for each valid row (gids NULL: every row is group 0);
 * counts[g] += 1 for the same rows when counts is not NULL. */
void velaria_group_sum_f64(const int64_t *gids, const double *x, const uint8_t *valid, int64_t n,
                           double *totals, int64_t *counts)
{
    if (gids == NULL) {
        double t = totals[0];
        int64_t c = 0;
        if (valid == NULL) {
            for (int64_t i = 0; i < n; i++) t += x[i];
            c = n;
        } else {
            for (int64_t i = 0; i < n; i++) {
                if (valid[i]) { t += x[i]; c++; }
            }
        }
        totals[0] = t;
        if (counts) counts[0] += c;
        return;
    }
    if (valid == NULL) {
        if (counts) {
            for (int64_t i = 0; i < n; i++) { totals[gids[i]] += x[i]; counts[gids[i]]++; }
        } else {
            for (int64_t i = 0; i < n; i++) totals[gids[i]] += x[i];
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (valid[i]) {
                totals[gids[i]] += x[i];
                if (counts) counts[gids[i]]++;
            }
        }
    }
}

/* counts[g] += 1 per row (valid NULL) or per valid row. */
void velaria_group_count(const int64_t *gids, const uint8_t *valid, int64_t n, int64_t *counts)
{
    if (valid == NULL) {
        for (int64_t i = 0; i < n; i++) counts[gids[i]]++;
    } else {
        for (int64_t i = 0; i < n; i++) counts[gids[i]] += valid[i] ? 1 : 0;
    }
}

/* Order-preserving unsigned keys.  float64: NaN (any payload) is the greatest value, -0.0
 * equals 0.0; descending complements the key (a stable sort then keeps ties in input order,
 * as Python's sort(reverse=True)). */
void velaria_sortkey_f64(const double *x, int64_t n, int descending, uint64_t *out)
{
    const uint64_t flip = descending ? ~(uint64_t)0 : 0;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        uint64_t k;
        if (v != v) {
            k = ~(uint64_t)0;
        } else {
            v = v + 0.0;                     /* -0.0 -> 0.0 */
            memcpy(&k, &v, sizeof k);
            k = (k >> 63) ? ~k : (k | ((uint64_t)1 << 63));
        }
        out[i] = k ^ flip;
    }
}

void velaria_sortkey_i64(const int64_t *x, int64_t n, int descending, uint64_t *out)
{
    const uint64_t flip = descending ? ~(uint64_t)0 : 0;
    for (int64_t i = 0; i < n; i++) out[i] = ((uint64_t)x[i] ^ ((uint64_t)1 << 63)) ^ flip;
}

/* Stable LSD radix argsort of n unsigned keys (8-bit digits, digits on which every key
 * agrees are skipped).  out_idx[j] = row of the j-th smallest key, ties in row order.
 * Returns 0, or -1 when memory could not be allocated. */
#define RADIX_BITS 8
#define RADIX_SIZE (1 << RADIX_BITS)
#define RADIX_PASSES 8

int velaria_radix_argsort_u64(const uint64_t *keys, int64_t n, int64_t *out_idx)
{
    if (n <= 0) return 0;
    int64_t (*hist)[RADIX_SIZE] = calloc(RADIX_PASSES, sizeof *hist);
    uint64_t *ka = big_alloc((size_t)n * sizeof *ka), *kb = big_alloc((size_t)n * sizeof *kb);
    int64_t *ib = big_alloc((size_t)n * sizeof *ib);
    if (!hist || !ka || !kb || !ib) {
        free(hist); free(ka); free(kb); free(ib);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t k = keys[i];
        for (int p = 0; p < RADIX_PASSES; p++) hist[p][(k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1)]++;
    }
    /* source of the first real pass: the keys themselves with implicit row numbers */
    const uint64_t *src_k = keys;
    const int64_t *src_i = NULL;
    uint64_t *dst_k = ka;
    int64_t *dst_i = out_idx;
    int passes_done = 0;
    for (int p = 0; p < RADIX_PASSES; p++) {
        int shift = p * RADIX_BITS;
        int64_t *h = hist[p];
        if (h[(keys[0] >> shift) & (RADIX_SIZE - 1)] == n) continue;   /* one bucket: no-op */
        int64_t sum = 0;
        for (int b = 0; b < RADIX_SIZE; b++) { int64_t c = h[b]; h[b] = sum; sum += c; }
        if (src_i == NULL) {
            for (int64_t i = 0; i < n; i++) {
                uint64_t k = src_k[i];
                int64_t pos = h[(k >> shift) & (RADIX_SIZE - 1)]++;
                dst_k[pos] = k;
                dst_i[pos] = i;
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                uint64_t k = src_k[i];
                int64_t pos = h[(k >> shift) & (RADIX_SIZE - 1)]++;
                dst_k[pos] = k;
                dst_i[pos] = src_i[i];
            }
        }
        passes_done++;
        src_k = dst_k;
        src_i = dst_i;
        dst_k = (dst_k == ka) ? kb : ka;
        dst_i = (dst_i == out_idx) ? ib : out_idx;
    }
    if (passes_done == 0) {
        for (int64_t i = 0; i < n; i++) out_idx[i] = i;
    } else if (src_i != out_idx) {
        memcpy(out_idx, src_i, (size_t)n * sizeof *out_idx);
    }
    free(hist); free(ka); free(kb); free(ib);
    return 0;
}

/* Selection of the rows where "x[i] op c" is TRUE under the reference comparison rules, for a
 * float64 (or int64) column against a constant: op 0 '=', 1 '!=', 2 '<', 3 '<=', 4 '>', 5 '>='.
 * float64: c is never NaN; a NaN row is above every number (so only '!=', '>' and '>=' keep
 * it: !(x <= c) is "x > c or x is NaN"); -0.0 equals 0.0 as in IEEE.  valid (may be NULL)
 * drops NULL rows.  Writes the kept row numbers to out_idx and/or their values to out_vals
 * (either may be NULL; each has room for n) in row order, branch-free; returns how many. */
#define SELECT_BODY(T, COND)                                                          \
    do {                                                                              \
        if (valid == NULL) {                                                          \
            if (out_idx && out_vals) {                                                \
                for (int64_t i = 0; i < n; i++) {                                     \
                    T v = x[i]; out_idx[j] = i; out_vals[j] = v; j += (COND);         \
                }                                                                     \
            } else if (out_vals) {                                                    \
                for (int64_t i = 0; i < n; i++) { T v = x[i]; out_vals[j] = v; j += (COND); } \
            } else {                                                                  \
                for (int64_t i = 0; i < n; i++) { T v = x[i]; out_idx[j] = i; j += (COND); } \
            }                                                                         \
        } else {                                                                      \
            for (int64_t i = 0; i < n; i++) {                                         \
                T v = x[i];                                                           \
                if (out_idx) out_idx[j] = i;                                          \
                if (out_vals) out_vals[j] = v;                                        \
                j += (COND) & (valid[i] != 0);                                        \
            }                                                                         \
        }                                                                             \
    } while (0)

int64_t velaria_select_cmp_f64(const double *x, const uint8_t *valid, int64_t n, int op, double c,
                               int64_t *out_idx, double *out_vals)
{
    int64_t j = 0;
    switch (op) {
    case 0: SELECT_BODY(double, (int64_t)(v == c)); break;
    case 1: SELECT_BODY(double, (int64_t)(v != c)); break;
    case 2: SELECT_BODY(double, (int64_t)(v < c)); break;
    case 3: SELECT_BODY(double, (int64_t)(v <= c)); break;
    case 4: SELECT_BODY(double, (int64_t)!(v <= c)); break;
    case 5: SELECT_BODY(double, (int64_t)!(v < c)); break;
    default: return -1;
    }
    return j;
}

int64_t velaria_select_cmp_i64(const int64_t *x, const uint8_t *valid, int64_t n, int op, int64_t c,
                               int64_t *out_idx, int64_t *out_vals)
{
    int64_t j = 0;
    switch (op) {
    case 0: SELECT_BODY(int64_t, (int64_t)(v == c)); break;
    case 1: SELECT_BODY(int64_t, (int64_t)(v != c)); break;
    case 2: SELECT_BODY(int64_t, (int64_t)(v < c)); break;
    case 3: SELECT_BODY(int64_t, (int64_t)(v <= c)); break;
    case 4: SELECT_BODY(int64_t, (int64_t)(v > c)); break;
    case 5: SELECT_BODY(int64_t, (int64_t)(v >= c)); break;
    default: return -1;
    }
    return j;
}

/* out[j] = src[idx[j]] for 8-byte values (int64 / float64 / timestamps as raw bits). */
void velaria_gather_u64(const uint64_t *src, const int64_t *idx, int64_t k, uint64_t *out)
{
    for (int64_t j = 0; j < k; j++) out[j] = src[idx[j]];
}
