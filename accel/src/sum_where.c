/* WHERE + float SUM in one pass: the lane-order sum (velaria_sum_lanes_f64) of x -- or of the
 * products x * y, when a second factor y is given (TPC-H Q6's SUM(price * discount)) -- over
 * the rows where every "column op constant" term is TRUE and every factor is not NULL, without
 * building the mask, the filtered columns or the product column.
 *
 * With a second factor, each block's kept row numbers are listed first (branch-free) and only
 * those rows' factors are read and multiplied into an L1 buffer, which is then added as a dense
 * run: a query keeping 2 % of its rows reads the factors' cache lines that hold a kept row
 * only. The product is rounded to a double before it is added (the build passes
 * -ffp-contract=off and the buffer sits between the two operations), so each value is exactly
 * the one the reference multiplies, and the lanes receive the values in row order as before.
 *
 * One thread: per 2,048-row block the terms' mask is built in L1 (velaria_terms_mask_block) and
 * the block's kept values are added through velaria_sum_lanes_f64, continuing at the lane after
 * the last value added -- the lanes get the same values in the same order as summing the
 * compacted column.
 *
 * Several threads: the sum itself stays one chain of additions in row order (the lane chains
 * are sequential by definition; splitting them would reassociate), but reading and testing the
 * rows is shared. The rows are cut into chunks of CHUNK rows dealt round-robin: chunk c belongs
 * to thread c mod T. The calling thread (0) walks the chunks in order: its own it tests and
 * sums as above; another thread's chunk it takes over when that thread has not claimed it yet
 * (a helper the OS has not scheduled never holds it up), else it waits until the helper has
 * compacted the chunk's kept values into one of its RING buffers (which stay in cache), adds
 * them as a dense run and hands the buffer back. Every value is added by thread 0, in row
 * order, so the bits do not depend on the thread count or on who tested which chunk.
 */
#include "velaria_accel.h"

#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#define SUM_WHERE_THREADS 1
#endif

#define BLOCK 2048
#define CHUNK (32 * BLOCK)  /* rows per chunk: 512 KiB of x, its kept values fit L2 */
#define RING 4              /* buffers per helper thread */
#define MAX_THREADS 64
#define EMPTY (-1)

typedef struct {
    int level, n_terms;
    const int *kinds, *ops;
    const void *const *cols;
    const uint8_t *const *valids;
    const double *fconsts;
    const int64_t *iconsts;
    const double *x, *y;                /* y: the second factor, or NULL */
    const uint8_t *valid, *y_valid;
    int64_t n;
} where_args;

/* Block lo..lo+len: the terms' mask into m, ANDed with x's validity; returns the rows where
 * every term is TRUE (before the validity). */
static int64_t where_block(const where_args *a, int64_t lo, int64_t len, uint8_t *m)
{
    const int64_t rows = velaria_terms_mask_block(a->level, a->n_terms, a->kinds, a->cols, a->valids, a->ops,
                                                  a->fconsts, a->iconsts, lo, len, m);
    if (a->valid)
        for (int64_t i = 0; i < len; i++) m[i] &= (uint8_t)(a->valid[lo + i] != 0);
    if (a->y_valid)
        for (int64_t i = 0; i < len; i++) m[i] &= (uint8_t)(a->y_valid[lo + i] != 0);
    return rows;
}

/* The products x * y of the block's kept rows (mask m), in row order, into out; returns how
 * many.  `rows`, the rows the terms kept, picks the loop: few kept rows are found eight mask
 * bytes at a time (an all-zero word skipped at once, each set byte cleared as it is taken),
 * many by listing every row number branch-free. */
static int64_t block_products(const where_args *a, int64_t lo, int64_t len, const uint8_t *m, int64_t rows,
                              double *out)
{
    const double *x = a->x + lo, *y = a->y + lo;
    int64_t k = 0;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (rows * 16 < len) {
        int64_t i = 0;
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, m + i, 8);
            while (w) {                     /* mask bytes are 0 or 1: bit 8 * j marks row i + j */
                const int64_t r = i + (__builtin_ctzll(w) >> 3);
                out[k++] = x[r] * y[r];
                w &= w - 1;
            }
        }
        for (; i < len; i++)
            if (m[i]) out[k++] = x[i] * y[i];
        return k;
    }
#else
    (void)rows;
#endif
    int32_t idx[BLOCK];
    for (int64_t i = 0; i < len; i++) {     /* every row number stored, the index advanced by m */
        idx[k] = (int32_t)i;
        k += m[i];
    }
    for (int64_t j = 0; j < k; j++) out[j] = x[idx[j]] * y[idx[j]];
    return k;
}

/* The values the block adds (x, or the products), compacted into out (room values); returns
 * how many. */
static int64_t block_values(const where_args *a, int64_t lo, int64_t len, const uint8_t *m, int64_t rows,
                            double *out, int64_t room)
{
    if (a->y)
        return block_products(a, lo, len, m, rows, out);
    return velaria_compact_run_u64(a->level, (const uint64_t *)(a->x + lo), m, len, (uint64_t *)out, room);
}

/* Rows lo..hi tested and summed on this thread; returns the values added. */
static int64_t sum_rows(const where_args *a, int64_t lo, int64_t hi, double *lanes, int64_t pos, int64_t *rows)
{
    uint8_t m[BLOCK];
    int64_t added = 0;
    for (; lo < hi; lo += BLOCK) {
        const int64_t len = hi - lo < BLOCK ? hi - lo : BLOCK;
        const int64_t kept = where_block(a, lo, len, m);
        *rows += kept;
        if (a->y) {
            double buf[BLOCK];
            const int64_t k = block_products(a, lo, len, m, kept, buf);
            added += velaria_sum_lanes_f64(a->level, buf, NULL, k, lanes, pos + added);
        } else {
            added += velaria_sum_lanes_f64(a->level, a->x + lo, m, len, lanes, pos + added);
        }
    }
    return added;
}

#if defined(SUM_WHERE_THREADS)
typedef struct {
    const where_args *a;
    int self, threads;
    double *bufs;                   /* RING buffers of CHUNK values */
    _Atomic int64_t count[RING];    /* kept values in the buffer, or EMPTY (free to fill) */
    int64_t rows[RING];             /* rows the terms kept in that chunk */
    _Atomic int *claim;             /* per chunk: UNCLAIMED, or who tests it (shared by all) */
} helper;

enum { UNCLAIMED = 0, BY_HELPER = 1, BY_CALLER = 2 };

static void *helper_run(void *arg)
{
    helper *h = (helper *)arg;
    const where_args *a = h->a;
    uint8_t m[BLOCK];
    const int64_t chunks = (a->n + CHUNK - 1) / CHUNK;
    for (int64_t c = h->self, j = 0; c < chunks; c += h->threads, j++) {
        const int slot = (int)(j % RING);
        while (atomic_load_explicit(&h->count[slot], memory_order_acquire) != EMPTY)
            sched_yield();          /* thread 0 has not taken this buffer's values yet */
        int expected = UNCLAIMED;
        if (!atomic_compare_exchange_strong(&h->claim[c], &expected, BY_HELPER))
            continue;               /* thread 0 got there first and tests it itself */
        double *out = h->bufs + (int64_t)slot * CHUNK;
        const int64_t lo0 = c * CHUNK, hi = lo0 + CHUNK < a->n ? lo0 + CHUNK : a->n;
        int64_t k = 0, rows = 0;
        for (int64_t lo = lo0; lo < hi; lo += BLOCK) {
            const int64_t len = hi - lo < BLOCK ? hi - lo : BLOCK;
            const int64_t kept = where_block(a, lo, len, m);
            rows += kept;
            k += block_values(a, lo, len, m, kept, out + k, CHUNK - k);
        }
        h->rows[slot] = rows;
        atomic_store_explicit(&h->count[slot], k, memory_order_release);
    }
    return NULL;
}
#endif

int64_t velaria_sum_lanes_where_f64(int level, int threads, int64_t n, int n_terms, const int *kinds,
                                    const void *const *cols, const uint8_t *const *valids,
                                    const int *ops, const double *fconsts, const int64_t *iconsts,
                                    const double *x, const uint8_t *valid, const double *y,
                                    const uint8_t *y_valid, double *lanes, int64_t pos, int64_t *rows_kept)
{
    const where_args a = {level, n_terms, kinds, ops, cols, valids, fconsts, iconsts, x, y, valid, y_valid, n};
    const int64_t chunks = (n + CHUNK - 1) / CHUNK;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > chunks) threads = (int)chunks;
    int64_t rows = 0, added = 0;
#if defined(SUM_WHERE_THREADS)
    helper *helpers = threads > 1 ? calloc((size_t)threads, sizeof(helper)) : NULL;
    double *bufs = helpers ? malloc((size_t)(threads - 1) * RING * CHUNK * sizeof(double)) : NULL;
    _Atomic int *claim = helpers ? calloc((size_t)chunks, sizeof(_Atomic int)) : NULL;
    if (helpers && bufs && claim) {
        for (int64_t c = 0; c < chunks; c++) atomic_init(&claim[c], UNCLAIMED);
        pthread_t tids[MAX_THREADS];
        int started[MAX_THREADS] = {0};
        for (int t = 1; t < threads; t++) {
            helper *h = &helpers[t];
            h->a = &a;
            h->self = t;
            h->threads = threads;
            h->bufs = bufs + (int64_t)(t - 1) * RING * CHUNK;
            h->claim = claim;
            for (int s = 0; s < RING; s++) atomic_init(&h->count[s], EMPTY);
            started[t] = pthread_create(&tids[t], NULL, helper_run, h) == 0;
        }
        for (int64_t c = 0; c < chunks; c++) {
            const int owner = (int)(c % threads);
            const int64_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
            int expected = UNCLAIMED;
            if (owner == 0 || !started[owner]
                || atomic_compare_exchange_strong(&claim[c], &expected, BY_CALLER)) {
                /* ours, a helper's that did not start, or one its helper has not reached */
                added += sum_rows(&a, lo, hi, lanes, pos + added, &rows);
                continue;
            }
            helper *h = &helpers[owner];
            const int slot = (int)((c / threads) % RING);
            int64_t k;
            while ((k = atomic_load_explicit(&h->count[slot], memory_order_acquire)) == EMPTY)
                sched_yield();
            added += velaria_sum_lanes_f64(level, h->bufs + (int64_t)slot * CHUNK, NULL, k, lanes, pos + added);
            rows += h->rows[slot];
            atomic_store_explicit(&h->count[slot], EMPTY, memory_order_release);
        }
        for (int t = 1; t < threads; t++)
            if (started[t]) pthread_join(tids[t], NULL);
        free(claim);
        free(bufs);
        free(helpers);
        if (rows_kept) *rows_kept = rows;
        return added;
    }
    free(claim);
    free(bufs);
    free(helpers);
#endif
    added = sum_rows(&a, 0, n, lanes, pos, &rows);
    if (rows_kept) *rows_kept = rows;
    return added;
}
