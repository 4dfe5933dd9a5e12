/* Fused exact top-k: one streaming pass over the rows keeps a bounded heap per query.
 *
 * A row's "badness" is ranked ascending: the cosine distance, -dot, or the squared l2
 * distance; equal badness is broken by ascending row id (the reference's rule). Row ranges
 * are scanned by up to `threads` threads, each with its own heaps, merged at the end.
 * Rows are read in place (the Arrow buffer); batches of queries are scored tile by tile.
 */
#include "velaria_accel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <pthread.h>
#define VELARIA_THREADS 1
#endif

typedef struct {
    double bad;
    int64_t id;
} entry;

/* a is worse than b: larger badness, or equal badness and larger row id */
static inline int worse(const entry *a, const entry *b)
{
    return a->bad > b->bad || (a->bad == b->bad && a->id > b->id);
}

typedef struct {
    entry *e; /* max-heap on worse(): e[0] is the worst survivor */
    int64_t n, cap;
} heap;

static void sift_down(heap *h, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && worse(&h->e[l], &h->e[m]))
            m = l;
        if (r < h->n && worse(&h->e[r], &h->e[m]))
            m = r;
        if (m == i)
            return;
        entry t = h->e[i];
        h->e[i] = h->e[m];
        h->e[m] = t;
        i = m;
    }
}

static inline void heap_push(heap *h, double bad, int64_t id)
{
    entry c = {bad, id};
    if (h->n < h->cap) {
        int64_t i = h->n++;
        while (i > 0) {
            int64_t p = (i - 1) / 2;
            if (!worse(&c, &h->e[p]))
                break;
            h->e[i] = h->e[p];
            i = p;
        }
        h->e[i] = c;
    } else if (worse(&h->e[0], &c)) {
        h->e[0] = c;
        sift_down(h, 0);
    }
}

typedef struct {
    const velaria_kernels *kern;
    const float *data;
    int64_t dim;
    const uint8_t *valid;
    const double *inv_norms;
    const float *queries; /* n_queries * dim */
    const double *inv_q; /* per query */
    int64_t n_queries, k;
    int metric;
} scan_ctx;

typedef struct {
    const scan_ctx *ctx;
    int64_t begin, end;
    heap *heaps; /* n_queries heaps */
} scan_job;

/* Turn raw dot / squared-l2 values into badness and offer them to the heap. `metric` and
 * `has_valid` are compile-time constants after inlining (see offer()), so the per-row work is
 * a few arithmetic ops and one almost-never-taken branch: `!(bad <= worst)` rejects both rows
 * worse than the current k-th best and NaN scores (skipped like NULL rows); while the heap is
 * not full `worst` is +inf. Ties with the worst survivor fall through to heap_push, which
 * applies the row-id rule. */
static inline void offer_rows(const scan_ctx *c, heap *h, const double *raw, int64_t row0,
                              int64_t n, double inv_q, const int metric, const int has_valid)
{
    double worst = h->n == h->cap ? h->e[0].bad : INFINITY;
    for (int64_t i = 0; i < n; i++) {
        const int64_t id = row0 + i;
        if (has_valid && !c->valid[id])
            continue;
        double bad;
        if (metric == VELARIA_METRIC_DOT) {
            bad = -raw[i];
        } else if (metric == VELARIA_METRIC_L2) {
            bad = raw[i];
        } else {
            const double inv_r = c->inv_norms[id];
            double sim = raw[i] * inv_r * inv_q;
            sim = sim > 1.0 ? 1.0 : sim;
            sim = sim < -1.0 ? -1.0 : sim; /* NaN stays NaN */
            bad = inv_r == 0.0 ? 1.0 : 1.0 - sim;
        }
        if (__builtin_expect(!(bad <= worst), 1))
            continue; /* worse than the k-th best so far, or NaN */
        heap_push(h, bad, id);
        worst = h->n == h->cap ? h->e[0].bad : INFINITY;
    }
}

static void offer(const scan_ctx *c, heap *h, const double *raw, int64_t row0, int64_t n,
                  double inv_q)
{
    const int has_valid = c->valid != NULL;
    if (c->metric == VELARIA_METRIC_COSINE && inv_q == 0.0) {
        /* zero query: every row scores 1.0 */
        for (int64_t i = 0; i < n; i++)
            if (!has_valid || c->valid[row0 + i])
                heap_push(h, 1.0, row0 + i);
        return;
    }
#define VELARIA_OFFER(m)                                                                      \
    do {                                                                                      \
        if (has_valid)                                                                        \
            offer_rows(c, h, raw, row0, n, inv_q, m, 1);                                      \
        else                                                                                  \
            offer_rows(c, h, raw, row0, n, inv_q, m, 0);                                      \
    } while (0)
    switch (c->metric) {
    case VELARIA_METRIC_DOT:
        VELARIA_OFFER(VELARIA_METRIC_DOT);
        break;
    case VELARIA_METRIC_L2:
        VELARIA_OFFER(VELARIA_METRIC_L2);
        break;
    default:
        VELARIA_OFFER(VELARIA_METRIC_COSINE);
        break;
    }
#undef VELARIA_OFFER
}

/* Rows scored per kernel call before their scores are offered to the heap (the scores stay in
 * L1). 64 measured best at 1M x 128 on Zen 3; 16 was ~5% slower, 256 no better. */
#ifndef STREAM_BLOCK
#define STREAM_BLOCK 64
#endif

static void scan_range(scan_job *job)
{
    const scan_ctx *c = job->ctx;
    const int64_t dim = c->dim;
    velaria_rows_f32_fn fn = c->metric == VELARIA_METRIC_L2 ? c->kern->l2sq_f32 : c->kern->dot_f32;
    double raw[STREAM_BLOCK];
    /* One query: stream blocks of 64 rows straight from the buffer. Several queries: take an
     * L2-sized tile of rows (about 256 KiB) and score it against every query before moving
     * on, so the tile is read from memory once. */
    int64_t tile = STREAM_BLOCK;
    if (c->n_queries > 1) {
        tile = (256 * 1024) / (dim * (int64_t)sizeof(float));
        tile = tile < STREAM_BLOCK ? STREAM_BLOCK : (tile / STREAM_BLOCK) * STREAM_BLOCK;
    }
    for (int64_t t = job->begin; t < job->end; t += tile) {
        const int64_t tile_end = job->end - t < tile ? job->end : t + tile;
        for (int64_t qi = 0; qi < c->n_queries; qi++) {
            for (int64_t r = t; r < tile_end; r += STREAM_BLOCK) {
                const int64_t n = tile_end - r < STREAM_BLOCK ? tile_end - r : STREAM_BLOCK;
                fn(c->data + r * dim, n, dim, c->queries + qi * dim, raw);
                offer(c, &job->heaps[qi], raw, r, n, c->inv_q[qi]);
            }
        }
    }
}

#if defined(VELARIA_THREADS)
static void *scan_thread(void *arg)
{
    scan_range((scan_job *)arg);
    return NULL;
}
#endif

static const velaria_kernels *kernels_for(int level)
{
    static const velaria_kernels scalar = {dot_f32_scalar, l2sq_f32_scalar};
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    static const velaria_kernels avx2 = {dot_f32_avx2, l2sq_f32_avx2};
    static const velaria_kernels avx512 = {dot_f32_avx512, l2sq_f32_avx512};
#endif
#if defined(VELARIA_ARM64)
    static const velaria_kernels neon = {dot_f32_neon, l2sq_f32_neon};
#endif
    switch (level) {
    case VELARIA_LEVEL_SCALAR:
        return &scalar;
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    case VELARIA_LEVEL_AVX2:
        return &avx2;
    case VELARIA_LEVEL_AVX512:
        return &avx512;
#endif
#if defined(VELARIA_ARM64)
    case VELARIA_LEVEL_NEON:
        return &neon;
#endif
    default:
        return NULL;
    }
}

static int cmp_entry(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    return worse(a, b) ? 1 : (worse(b, a) ? -1 : 0);
}

int velaria_topk_f32(int level, const float *data, int64_t n_rows, int64_t dim,
                     const uint8_t *valid, const double *inv_norms, const float *queries,
                     int64_t n_queries, int64_t k, int metric, int threads, int64_t *out_ids,
                     double *out_scores, int64_t *out_counts)
{
    if (dim < 1 || n_rows < 0 || n_queries < 1 || k < 1 || metric < 0 || metric > 2)
        return -1;
    if (metric == VELARIA_METRIC_COSINE && !inv_norms && n_rows > 0)
        return -1;
    const velaria_kernels *kern = kernels_for(level);
    if (!kern)
        return -3;
    const int64_t stride = k; /* output slots per query */
    if (k > n_rows)
        k = n_rows > 0 ? n_rows : 1;
    if (threads < 1)
        threads = 1;
    /* at least 16k rows per thread, or the start-up cost dominates */
    if ((int64_t)threads > n_rows / 16384)
        threads = (int)(n_rows / 16384 > 0 ? n_rows / 16384 : 1);
    if (threads > 64)
        threads = 64;
#if !defined(VELARIA_THREADS)
    threads = 1;
#endif
    int rc = 0;
    double *inv_q = malloc((size_t)n_queries * sizeof(double));
    entry *store = malloc((size_t)(threads * n_queries * k) * sizeof(entry));
    heap *heaps = malloc((size_t)(threads * n_queries) * sizeof(heap));
    scan_job *jobs = malloc((size_t)threads * sizeof(scan_job));
    if (!inv_q || !store || !heaps || !jobs) {
        rc = -2;
        goto done;
    }
    for (int64_t qi = 0; qi < n_queries; qi++) {
        double ss = 0.0;
        for (int64_t j = 0; j < dim; j++) {
            double v = (double)queries[qi * dim + j];
            ss += v * v;
        }
        inv_q[qi] = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
    }
    for (int64_t h = 0; h < threads * n_queries; h++) {
        heaps[h].e = store + h * k;
        heaps[h].n = 0;
        heaps[h].cap = k;
    }
    scan_ctx ctx = {kern, data, dim, valid, inv_norms, queries, inv_q, n_queries, k, metric};
    for (int t = 0; t < threads; t++) {
        /* split on 64-row boundaries so every thread streams whole blocks */
        int64_t per = ((n_rows / threads) + 63) & ~(int64_t)63;
        jobs[t].ctx = &ctx;
        jobs[t].begin = per * t < n_rows ? per * t : n_rows;
        jobs[t].end = (t == threads - 1 || per * (t + 1) > n_rows) ? n_rows : per * (t + 1);
        jobs[t].heaps = heaps + (int64_t)t * n_queries;
    }
#if defined(VELARIA_THREADS)
    pthread_t tids[64];
    int started[64] = {0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, scan_thread, &jobs[t]) == 0;
    scan_range(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            scan_range(&jobs[t]); /* could not start a thread: do its share here */
    }
#else
    scan_range(&jobs[0]);
#endif
    for (int64_t qi = 0; qi < n_queries; qi++) {
        heap *h0 = &heaps[qi];
        for (int t = 1; t < threads; t++) {
            heap *ht = &heaps[(int64_t)t * n_queries + qi];
            for (int64_t i = 0; i < ht->n; i++)
                heap_push(h0, ht->e[i].bad, ht->e[i].id);
        }
        qsort(h0->e, (size_t)h0->n, sizeof(entry), cmp_entry);
        out_counts[qi] = h0->n;
        for (int64_t i = 0; i < h0->n; i++) {
            double bad = h0->e[i].bad, score = bad;
            if (metric == VELARIA_METRIC_DOT)
                score = -bad;
            else if (metric == VELARIA_METRIC_L2)
                score = sqrt(bad);
            out_ids[qi * stride + i] = h0->e[i].id;
            out_scores[qi * stride + i] = score;
        }
    }
done:
    free(inv_q);
    free(store);
    free(heaps);
    free(jobs);
    return rc;
}
