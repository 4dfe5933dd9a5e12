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
#include <stdlib.h>
#include <string.h>

#include "velaria_accel.h"

#define BYTE_CODES 258
#define PAIR_SLOTS (BYTE_CODES * BYTE_CODES)
#define PAIR_MAX_THREADS 16
/* rows per thread at least: each thread clears a first-row table of PAIR_SLOTS entries */
#define PAIR_ROWS_PER_THREAD (1 << 18)

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

/* One thread's share of the threaded numbering.  Phase 0: each selected row's slot into
 * out[i] (-1 for an unselected row), the first row of the range per slot into first[], and
 * the longest value of the range.  Phase 1: out[i] = lut[slot] (0 for an unselected row). */
typedef struct {
    const int32_t *off0; const uint8_t *data0; const uint8_t *bits0; int64_t bit_off0;
    const int32_t *off1; const uint8_t *data1; const uint8_t *bits1; int64_t bit_off1;
    const uint8_t *sel; const int32_t *lut; int64_t *out; int64_t *first;
    int64_t begin, end; int32_t longest; int phase;
} pair_job;

static void *pair_thread(void *arg)
{
    pair_job *j = (pair_job *)arg;
    const int32_t *off0 = j->off0, *off1 = j->off1;
    const uint8_t *sel = j->sel;
    int64_t *out = j->out;
    if (j->phase == 1) {
        const int32_t *lut = j->lut;
        for (int64_t i = j->begin; i < j->end; i++)
            out[i] = out[i] < 0 ? 0 : lut[out[i]];
        return NULL;
    }
    int64_t *first = j->first;
    int32_t longest = 0;
    for (int64_t i = j->begin; i < j->end; i++) {
        const int32_t l0 = off0[i + 1] - off0[i], l1 = off1[i + 1] - off1[i];
        longest = l0 > longest ? l0 : longest;
        longest = l1 > longest ? l1 : longest;
        if (sel && !sel[i]) {
            out[i] = -1;
            continue;
        }
        const int64_t slot = byte_code(off0, j->data0, j->bits0, j->bit_off0, i) * BYTE_CODES
                             + byte_code(off1, j->data1, j->bits1, j->bit_off1, i);
        out[i] = slot;
        if (first[slot] < 0) first[slot] = i;
    }
    j->longest = longest;
    return NULL;
}

static int by_row(const void *a, const void *b)
{
    const int64_t x = ((const int64_t *)a)[0], y = ((const int64_t *)b)[0];
    return (x > y) - (x < y);
}

/* The threaded form of the numbering below, with the same answer: the rows are split into
 * contiguous ranges; each thread finds its rows' slots and the first row per slot of its
 * range; the slots without a group then get ids in the order of their first row over the
 * whole input (first-appearance order, as one pass gives), and a second threaded pass maps
 * slots to ids.  The table is only written between the passes, after every value was
 * checked to be at most one byte long, so a -1 answer leaves it unchanged.  Returns -2 when
 * the scratch table cannot be allocated (the caller runs the one-thread pass). */
static int64_t pair_ids_threaded(int threads, int64_t n,
                                 const int32_t *off0, const uint8_t *data0, const uint8_t *bits0, int64_t bit_off0,
                                 const int32_t *off1, const uint8_t *data1, const uint8_t *bits1, int64_t bit_off1,
                                 const uint8_t *sel, int32_t *lut, int64_t next_gid,
                                 int64_t *out_gids, int64_t *new_rows, int64_t *n_new)
{
    int64_t *first = (int64_t *)malloc((size_t)threads * PAIR_SLOTS * sizeof(int64_t));
    int64_t *found = (int64_t *)malloc((size_t)PAIR_SLOTS * 2 * sizeof(int64_t));
    if (!first || !found) {
        free(first);
        free(found);
        return -2;
    }
    memset(first, 0xff, (size_t)threads * PAIR_SLOTS * sizeof(int64_t));     /* every entry -1 */
    pair_job jobs[PAIR_MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (pair_job){off0, data0, bits0, bit_off0, off1, data1, bits1, bit_off1, sel, lut, out_gids,
                             first + (int64_t)t * PAIR_SLOTS, n * t / threads, n * (t + 1) / threads, 0, 0};
    velaria_parallel_jobs(threads, pair_thread, jobs, sizeof(jobs[0]));
    int32_t longest = 0;
    for (int t = 0; t < threads; t++)
        longest = jobs[t].longest > longest ? jobs[t].longest : longest;
    int64_t nfound = 0;
    if (longest <= 1) {
        for (int64_t slot = 0; slot < PAIR_SLOTS; slot++) {
            if (lut[slot] >= 0) continue;
            for (int t = 0; t < threads; t++) {     /* ranges in row order: the first hit is the first row */
                const int64_t row = first[(int64_t)t * PAIR_SLOTS + slot];
                if (row >= 0) {
                    found[2 * nfound] = row;
                    found[2 * nfound + 1] = slot;
                    nfound++;
                    break;
                }
            }
        }
        qsort(found, (size_t)nfound, 2 * sizeof(int64_t), by_row);
        for (int64_t k = 0; k < nfound; k++) {
            lut[found[2 * k + 1]] = (int32_t)next_gid++;
            new_rows[k] = found[2 * k];
        }
        for (int t = 0; t < threads; t++) jobs[t].phase = 1;
        velaria_parallel_jobs(threads, pair_thread, jobs, sizeof(jobs[0]));
    }
    free(first);
    free(found);
    if (longest > 1) return -1;
    *n_new = nfound;
    return next_gid;
}

/* out_gids[i] = the group id of row i's pair of values; a pair never seen gets next_gid++ and
 * its row is appended to new_rows (first-appearance order; *n_new counts them).  Rows with
 * sel[i] == 0 (sel NULL: every row selected) are not numbered and get id 0.  `off0`/`off1`
 * point at the column's first offset (the array offset applied), `bits0`/`bits1` are Arrow
 * validity bitmaps (NULL: no NULL) read from bit `bit_off0`/`bit_off1`.  Returns the new
 * next_gid, or -1 (nothing changed) when a value is longer than one byte.  With `threads` > 1
 * and enough rows the work is split over threads (same answer). */
int64_t velaria_byte_pair_ids(int64_t n,
                              const int32_t *off0, const uint8_t *data0, const uint8_t *bits0, int64_t bit_off0,
                              const int32_t *off1, const uint8_t *data1, const uint8_t *bits1, int64_t bit_off1,
                              const uint8_t *sel, int32_t *lut, int64_t next_gid,
                              int64_t *out_gids, int64_t *new_rows, int64_t *n_new, int threads)
{
    if (threads > PAIR_MAX_THREADS) threads = PAIR_MAX_THREADS;
    if (threads > n / PAIR_ROWS_PER_THREAD) threads = (int)(n / PAIR_ROWS_PER_THREAD);
    if (threads > 1) {
        const int64_t r = pair_ids_threaded(threads, n, off0, data0, bits0, bit_off0, off1, data1, bits1,
                                            bit_off1, sel, lut, next_gid, out_gids, new_rows, n_new);
        if (r != -2) return r;
    }
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
