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

/* The kept row numbers of a block (mask m, rows lo..lo+len), listed into idx; returns how
 * many.  `rows`, the rows the terms kept, picks how: few are found eight mask bytes at a time
 * (an all-zero word skipped at once, each set byte cleared as it is taken), many by storing
 * every row number branch-free.  Each kept row's first factor is prefetched: it is read one
 * block later (range_products), so a sparse selection's cache misses overlap the next block's
 * tests instead of stalling the product loop. */
static int64_t list_rows(const where_args *a, int64_t lo, int64_t len, const uint8_t *m, int64_t rows,
                         int32_t *idx)
{
    int64_t k = 0, i = 0;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (rows * 16 < len) {
        for (; i + 8 <= len; i += 8) {
            uint64_t w;
            memcpy(&w, m + i, 8);
            while (w) {                     /* mask bytes are 0 or 1: bit 8 * j marks row i + j */
                const int64_t r = i + (__builtin_ctzll(w) >> 3);
                __builtin_prefetch(a->x + lo + r);
                idx[k++] = (int32_t)r;
                w &= w - 1;
            }
        }
    }
#else
    (void)rows;
    (void)a;
    (void)lo;
#endif
    for (; i < len; i++) {                  /* every row number stored, the index advanced by m */
        idx[k] = (int32_t)i;
        k += m[i];
    }
    return k;
}

/* The products x * y of the kept rows of lo0..hi, in row order, into out (room for hi - lo0);
 * returns how many and adds the rows the terms kept to *rows.  A block's rows are listed when
 * it is tested and multiplied after the next block's test (two lists alternate), so the
 * prefetched factors have arrived. */
static int64_t range_products(const where_args *a, int64_t lo0, int64_t hi, double *out, int64_t *rows)
{
    uint8_t m[BLOCK];
    int32_t idx[2][BLOCK];
    int64_t count[2] = {0, 0}, base[2] = {0, 0}, k = 0;
    int cur = 0;
    for (int64_t lo = lo0;; lo += BLOCK) {
        if (lo < hi) {
            const int64_t len = hi - lo < BLOCK ? hi - lo : BLOCK;
            const int64_t kept = where_block(a, lo, len, m);
            *rows += kept;
            count[cur] = list_rows(a, lo, len, m, kept, idx[cur]);
            base[cur] = lo;
        }
        cur ^= 1;                           /* the block before: its factors */
        const double *x = a->x + base[cur], *y = a->y + base[cur];
        const int32_t *ix = idx[cur];
        for (int64_t j = 0; j < count[cur]; j++) out[k + j] = x[ix[j]] * y[ix[j]];
        k += count[cur];
        count[cur] = 0;
        if (lo >= hi) return k;
    }
}

/* Rows lo..hi tested and summed on this thread; returns the values added.  Products are made
 * a CHUNK of rows at a time into `buf` (room for CHUNK values; NULL: a BLOCK at a time on the
 * stack), then added as a dense run. */
static int64_t sum_rows(const where_args *a, int64_t lo, int64_t hi, double *lanes, int64_t pos, int64_t *rows,
                        double *buf)
{
    int64_t added = 0;
    if (a->y) {
        double small[BLOCK];
        const int64_t piece = buf ? CHUNK : BLOCK;
        double *out = buf ? buf : small;
        for (; lo < hi; lo += piece) {
            const int64_t k = range_products(a, lo, hi - lo < piece ? hi : lo + piece, out, rows);
            added += velaria_sum_lanes_f64(a->level, out, NULL, k, lanes, pos + added);
        }
        return added;
    }
    uint8_t m[BLOCK];
    for (; lo < hi; lo += BLOCK) {
        const int64_t len = hi - lo < BLOCK ? hi - lo : BLOCK;
        *rows += where_block(a, lo, len, m);
        added += velaria_sum_lanes_f64(a->level, a->x + lo, m, len, lanes, pos + added);
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
        if (a->y) {
            k = range_products(a, lo0, hi, out, &rows);
        } else {
            for (int64_t lo = lo0; lo < hi; lo += BLOCK) {
                const int64_t len = hi - lo < BLOCK ? hi - lo : BLOCK;
                rows += where_block(a, lo, len, m);
                k += velaria_compact_run_u64(a->level, (const uint64_t *)(a->x + lo), m, len,
                                             (uint64_t *)(out + k), CHUNK - k);
            }
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
    double *own = y ? malloc(CHUNK * sizeof(double)) : NULL;    /* this thread's products */
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
                added += sum_rows(&a, lo, hi, lanes, pos + added, &rows, own);
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
        free(own);
        if (rows_kept) *rows_kept = rows;
        return added;
    }
    free(claim);
    free(bufs);
    free(helpers);
#endif
    added = sum_rows(&a, 0, n, lanes, pos, &rows, own);
    free(own);
    if (rows_kept) *rows_kept = rows;
    return added;
}
