/* Batch-operator kernels in plain C (no SIMD intrinsics; -ffp-contract=off keeps every float
 * addition a single rounded add in input order, bit-identical to the reference's left-to-right
 * Python sum).  Each has a numpy twin in accel/batch_c.py used when this module is missing,
 * and tests/test_kernel_parity.py checks C against the twin and the reference. */
#define _POSIX_C_SOURCE 200112L
#define _DEFAULT_SOURCE 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "velaria_accel.h"

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
