/* Exact top-k with results bit-identical to reference/topk.py on every dispatch level.
 *
 * Two phases per query:
 *
 * 1. Select (SIMD, one streaming pass). The ISA kernel gives each row an approximate raw value
 *    (float32 lanes, see the ISA files). A rigorous error bound turns it into an interval
 *    [lb, ub] that contains the row's exact badness (the value the reference ranks ascending:
 *    cosine distance, -dot, squared l2). A bounded heap keeps the k smallest upper bounds; its
 *    worst entry U bounds the exact k-th badness from above. A row is a candidate when its lower
 *    bound is below U; everything else provably cannot reach the top k. A row whose approximate
 *    value is not finite (float32 overflow in a lane) has no usable bound: it is always a
 *    candidate, so no row is ever dropped because of float32 range.
 * 2. Rescore (scalar). Candidates -- about k rows plus near-ties -- are scored with the scalar
 *    kernels, which sum sequentially in float64 exactly like the reference, and cut with the
 *    reference's rule: sort (badness, row_id), NaN badness skipped, keep the first k.
 *
 * So AVX-512, AVX2, NEON and scalar return the same ids and the same scores, bit for bit; a
 * faster ISA can only differ by being faster.
 *
 * The error bound (u = 2^-24, float32 unit roundoff). In every SIMD kernel each product goes
 * through at most n = dim + 8 float32 roundings: at most dim FMAs in its lane, a few adds
 * combining accumulators and, in the register-blocked batch kernels, the 3 or 4 float32 adds
 * of the lane reduction (ceil(dim / 16) + 4 <= dim + 8); the one-query kernels reduce lanes
 * and the tail in float64. So with S = sum |row_j * q_j| (<= ||row|| * ||q||):
 *     |approx - exact| <= g * S + tau,  g = 1.25 * n * u,  tau = (dim + 128) * 2^-149,
 * where tau covers gradual underflow (half the smallest subnormal per operation; flush-to-zero
 * is switched off for the call, see below) and the 1.25 factor covers n*u/(1-n*u) and the
 * float64 roundings of both sides. For l2 the terms are non-negative, so the bound is relative:
 * |approx - exact| <= g * exact + tau <= 2 * g * approx + 2 * tau. For cosine, S * inv_r * inv_q
 * <= 1, so the distance moves by at most g + tau * inv_r * inv_q. The bound does not depend on
 * the summation order, so it holds for any lane layout (AVX-512's 16 lanes, NEON's 4).
 *
 * One query streams from memory, so cosine and dot take the row norms their bounds need from
 * the scan itself (sums of squares in the same pass, see SS_MIN) rather than from a second
 * stream of cached norms. Batches are bound by arithmetic: groups of VELARIA_MULTI_Q queries are
 * scored by register-blocked kernels, and each query's block of 64 values is first tested as a
 * whole with vector instructions (velaria_reject_fn), so most (row, query) pairs cost no scalar
 * work at all.
 *
 * Ties: within one thread rows arrive in ascending id order, so a row whose lower bound equals
 * U loses the tie against every heap row and is not a candidate (this keeps a column of equal
 * vectors at k candidates). Merging threads uses the non-strict test.
 */
#include "velaria_accel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(_WIN32)
#include <pthread.h>
#define VELARIA_THREADS 1
#endif

#if defined(VELARIA_X86)
#include <xmmintrin.h>
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

static inline double heap_bound(const heap *h)
{
    return h->n == h->cap ? h->e[0].bad : INFINITY;
}

/* Candidates of one query on one thread: (lower bound, row id), pruned as U falls. */
typedef struct {
    entry *e;
    int64_t n, cap;
    int oom;
} cand_list;

static void cand_push(cand_list *c, double lb, int64_t id, double bound)
{
    if (c->n == c->cap) {
        /* drop rows the current bound already excludes; grow only if that freed too little */
        int64_t w = 0;
        for (int64_t i = 0; i < c->n; i++)
            if (c->e[i].bad <= bound)
                c->e[w++] = c->e[i];
        c->n = w;
        if (c->n > c->cap / 2) {
            entry *grown = realloc(c->e, (size_t)c->cap * 2 * sizeof(entry));
            if (!grown) {
                c->oom = 1;
                return;
            }
            c->e = grown;
            c->cap *= 2;
        }
    }
    c->e[c->n].bad = lb;
    c->e[c->n].id = id;
    c->n++;
}

typedef struct {
    const velaria_kernels *kern;
    const float *data;
    int64_t dim;
    const uint8_t *valid;
    const double *inv_norms;
    const float *queries; /* n_queries * dim */
    const double *inv_q;  /* per query: 1 / ||q||, or 0 */
    const double *norm_q; /* per query: ||q|| */
    int64_t n_queries, k;
    int metric;
    double g, tau; /* the error bound of the selecting kernels (0, 0 for the scalar ones) */
} scan_ctx;

typedef struct {
    const scan_ctx *ctx;
    int64_t begin, end;
    heap *heaps;     /* n_queries heaps of upper bounds */
    cand_list *cands; /* n_queries candidate lists */
} scan_job;

/* The reference's badness for an exact raw value (dot product or squared l2 distance). */
static inline double canonical_bad(int metric, double raw, double inv_r, double inv_q)
{
    if (metric == VELARIA_METRIC_DOT)
        return -raw;
    if (metric == VELARIA_METRIC_L2)
        return raw;
    if (inv_r == 0.0 || inv_q == 0.0)
        return 1.0;
    double sim = raw * inv_r * inv_q;
    if (sim > 1.0)
        sim = 1.0;
    else if (sim < -1.0)
        sim = -1.0; /* NaN stays NaN: the row is skipped after rescoring */
    return 1.0 - sim;
}

/* Rows whose scanned sum of squares s is at least SS_MIN (and finite) take their norm bound
 * from it instead of the cached inverse norms. s carries the kernels' error bound,
 * |s - ||r||^2| <= g ||r||^2 + tau, and past 2^-40 the tau term is below 2^-80 of s, so
 * ||r|| / sqrt(s) lies in [1 - g, 1 + g] (g <= 0.1). Then for dot the error is at most
 * g ||r|| ||q|| + tau <= g (1 + g) sqrt(s) ||q|| + tau; for cosine the similarity
 * r / (sqrt(s) ||q||) differs from the canonical one by at most g (1 + g) + g (from the dot
 * and from the norm) plus tau / (sqrt(s) ||q||) -- 2.5 g and twice that term leave room for the
 * float64 roundings. Smaller, zero, NaN or infinite rows use the cached inverse norms, whose
 * zero marks the rows cosine scores 1.0 exactly. */
#define SS_MIN 0x1p-40

/* Bound each approximate raw value, keep the k best upper bounds and collect candidates.
 * `metric` and `has_valid` are compile-time constants after inlining (see offer()); the common
 * case is one comparison that rejects the row. */
static inline void offer_rows(const scan_ctx *c, heap *h, cand_list *cl, const double *raw,
                              const double *ss, int64_t row0, int64_t n, int64_t qi,
                              const int metric, const int has_valid)
{
    const double inv_q = c->inv_q[qi], norm_q = c->norm_q[qi], g = c->g, tau = c->tau;
    const double g_q = g * norm_q * (1.0 + 0x1p-40);
    /* the dot bound from a row's approximate sum of squares s: g (1 + g) ||q|| sqrt(s) */
    const double g_q_s = g * (1.0 + g) * norm_q, g_q_s2 = g_q_s * g_q_s * (1.0 + 0x1p-30);
    double bound = heap_bound(h);
    for (int64_t i = 0; i < n; i++) {
        const int64_t id = row0 + i;
        if (has_valid && !c->valid[id])
            continue;
        const double r = raw[i];
        if (__builtin_expect(!isfinite(r), 0) &&
            !(metric == VELARIA_METRIC_COSINE && (c->inv_norms[id] == 0.0 || inv_q == 0.0))) {
            cand_push(cl, -INFINITY, id, bound); /* float32 overflow or NaN: always rescore */
            continue;
        }
        double bad, m;
        const double s2 = ss ? ss[i] : 0.0;
        if (ss && s2 >= SS_MIN && s2 < INFINITY) {
            /* the row's norm from the scan's own sum of squares (see SS_MIN) */
            if (metric == VELARIA_METRIC_COSINE) {
                if (inv_q == 0.0) {
                    bad = 1.0; /* zero query: exactly 1.0 */
                    m = 0.0;
                } else {
                    const double inv_s = 1.0 / sqrt(s2);
                    double sim = r * inv_s * inv_q;
                    sim = sim > 1.0 ? 1.0 : sim;
                    sim = sim < -1.0 ? -1.0 : sim;
                    bad = 1.0 - sim;
                    m = 2.5 * g + 2.0 * tau * inv_s * inv_q;
                }
            } else {
                bad = -r;
                const double x = bad - tau - bound;
                if (__builtin_expect(x > 0.0 && x * x >= g_q_s2 * s2, 1))
                    continue; /* lb >= bound, tested without the square root */
                m = g_q_s * sqrt(s2) + tau;
            }
        } else if (metric == VELARIA_METRIC_COSINE) {
            const double inv_r = c->inv_norms[id];
            if (inv_r == 0.0 || inv_q == 0.0) {
                bad = 1.0; /* zero (or non-finite) row or query: exactly 1.0 */
                m = 0.0;
            } else {
                double sim = r * inv_r * inv_q;
                sim = sim > 1.0 ? 1.0 : sim;
                sim = sim < -1.0 ? -1.0 : sim;
                bad = 1.0 - sim;
                m = g + tau * inv_r * inv_q;
            }
        } else if (metric == VELARIA_METRIC_DOT) {
            const double inv_r = c->inv_norms[id];
            bad = -r;
            /* lb >= bound without the division: (bad - tau - bound) * inv_r >= g * ||q||, with
             * g_q a hair larger so the multiplication's rounding cannot reject a candidate */
            if (__builtin_expect(inv_r > 0.0 && (bad - tau - bound) * inv_r >= g_q, 1))
                continue;
            m = inv_r > 0.0 ? g * norm_q / inv_r + tau : tau;
        } else {
            bad = r;
            m = 2.0 * g * r + 2.0 * tau;
        }
        const double lb = bad - m;
        if (__builtin_expect(lb >= bound, 1))
            continue; /* provably outside the top k (ties lose: this row's id is larger) */
        heap_push(h, bad + m, id);
        bound = heap_bound(h);
        cand_push(cl, lb, id, bound);
    }
}

static void offer(const scan_ctx *c, heap *h, cand_list *cl, const double *raw,
                  const double *ss, int64_t row0, int64_t n, int64_t qi)
{
    const int has_valid = c->valid != NULL;
#define VELARIA_OFFER(m)                                                                      \
    do {                                                                                      \
        if (has_valid)                                                                        \
            offer_rows(c, h, cl, raw, ss, row0, n, qi, m, 1);                                 \
        else                                                                                  \
            offer_rows(c, h, cl, raw, ss, row0, n, qi, m, 0);                                 \
    } while (0)
    if (!ss && c->kern->block_rejected && c->inv_q[qi] != 0.0) {
        /* batches offer every (row, query) pair: reject whole blocks with vector instructions */
        const velaria_reject_args args = {c->metric, heap_bound(h), c->inv_q[qi], c->g, c->tau,
                                          c->g * c->norm_q[qi] * (1.0 + 0x1p-40)};
        if (c->kern->block_rejected(raw, c->inv_norms ? c->inv_norms + row0 : NULL,
                                    c->valid ? c->valid + row0 : NULL, n, &args))
            return;
    }
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

/* Rows scored per kernel call before their values are offered (they stay in L1). 64 measured
 * best at 1M x 128 on Zen 3; 16 was ~5% slower, 256 no better. */
#ifndef STREAM_BLOCK
#define STREAM_BLOCK 64
#endif

/* Several queries with a register-blocked kernel: groups of VELARIA_MULTI_Q queries score each
 * 64-row block together (the kernel shares every row load among them), then each query's values
 * are offered in row order. */
static void scan_tile_multi(const scan_ctx *c, scan_job *job, velaria_multi_f32_fn multi,
                            velaria_rows_f32_fn one, int64_t t, int64_t tile_end)
{
    const int64_t dim = c->dim;
    double raw[VELARIA_MULTI_Q * STREAM_BLOCK];
    for (int64_t q0 = 0; q0 < c->n_queries; q0 += VELARIA_MULTI_Q) {
        const int64_t nq = c->n_queries - q0 < VELARIA_MULTI_Q ? c->n_queries - q0 : VELARIA_MULTI_Q;
        for (int64_t r = t; r < tile_end; r += STREAM_BLOCK) {
            const int64_t n = tile_end - r < STREAM_BLOCK ? tile_end - r : STREAM_BLOCK;
            if (nq == 1) /* a lone remainder query: the one-query kernel does no padded work */
                one(c->data + r * dim, n, dim, c->queries + q0 * dim, raw);
            else
                multi(c->data + r * dim, n, dim, c->queries + q0 * dim, nq, raw, STREAM_BLOCK);
            for (int64_t b = 0; b < nq; b++)
                offer(c, &job->heaps[q0 + b], &job->cands[q0 + b], raw + b * STREAM_BLOCK, NULL, r,
                      n, q0 + b);
        }
    }
}

static void scan_range(scan_job *job)
{
    const scan_ctx *c = job->ctx;
    const int64_t dim = c->dim;
    const int l2 = c->metric == VELARIA_METRIC_L2;
    velaria_rows_f32_fn fn = l2 ? c->kern->l2sq_f32 : c->kern->dot_f32;
    velaria_multi_f32_fn multi = l2 ? c->kern->l2sq_multi_f32 : c->kern->dot_multi_f32;
    double raw[STREAM_BLOCK], ss[STREAM_BLOCK];
    /* one query streaming from memory: cosine and dot bound the rows' norms from the scan */
    const int with_ss = !l2 && c->n_queries == 1 && c->kern->dot_ss_f32 != NULL;
    /* One query: stream blocks of 64 rows straight from the buffer. Several queries: take an
     * L2-sized tile of rows (about 256 KiB) and score it against every query before moving
     * on, so the tile is read from memory once. Per query, rows still arrive in id order. */
    int64_t tile = STREAM_BLOCK;
    if (c->n_queries > 1) {
        tile = (256 * 1024) / (dim * (int64_t)sizeof(float));
        tile = tile < STREAM_BLOCK ? STREAM_BLOCK : (tile / STREAM_BLOCK) * STREAM_BLOCK;
    }
    for (int64_t t = job->begin; t < job->end; t += tile) {
        const int64_t tile_end = job->end - t < tile ? job->end : t + tile;
        if (c->n_queries > 1 && multi) {
            scan_tile_multi(c, job, multi, fn, t, tile_end);
            continue;
        }
        for (int64_t qi = 0; qi < c->n_queries; qi++) {
            for (int64_t r = t; r < tile_end; r += STREAM_BLOCK) {
                const int64_t n = tile_end - r < STREAM_BLOCK ? tile_end - r : STREAM_BLOCK;
                if (with_ss)
                    c->kern->dot_ss_f32(c->data + r * dim, n, dim, c->queries + qi * dim, raw, ss);
                else
                    fn(c->data + r * dim, n, dim, c->queries + qi * dim, raw);
                offer(c, &job->heaps[qi], &job->cands[qi], raw, with_ss ? ss : NULL, r, n, qi);
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

static const velaria_kernels scalar_kernels = {.dot_f32 = dot_f32_scalar,
                                               .l2sq_f32 = l2sq_f32_scalar};

static const velaria_kernels *kernels_for(int level)
{
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    static const velaria_kernels avx2 = {.dot_f32 = dot_f32_avx2,
                                         .l2sq_f32 = l2sq_f32_avx2,
                                         .dot_ss_f32 = dot_ss_f32_avx2,
                                         .dot_multi_f32 = dot_multi_f32_avx2,
                                         .l2sq_multi_f32 = l2sq_multi_f32_avx2,
                                         .block_rejected = block_rejected_avx2};
    /* One query streams from memory: the 256-bit row kernels are the faster ones there (on a
     * Sapphire Rapids VM the 512-bit ones read at ~85% of a plain read, the 256-bit ones at
     * ~97%: the scan is bound by bandwidth, not arithmetic). Batches are bound by arithmetic:
     * the 512-bit register-blocked kernels. */
    static const velaria_kernels avx512 = {.dot_f32 = dot_f32_avx2,
                                           .l2sq_f32 = l2sq_f32_avx2,
                                           .dot_ss_f32 = dot_ss_f32_avx2,
                                           .dot_multi_f32 = dot_multi_f32_avx512,
                                           .l2sq_multi_f32 = l2sq_multi_f32_avx512,
                                           .block_rejected = block_rejected_avx512};
#endif
#if defined(VELARIA_ARM64)
    static const velaria_kernels neon = {.dot_f32 = dot_f32_neon, .l2sq_f32 = l2sq_f32_neon};
#endif
    switch (level) {
    case VELARIA_LEVEL_SCALAR:
        return &scalar_kernels;
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

/* The error bound assumes gradual underflow. Flush-to-zero / denormals-are-zero may have been
 * switched on in this thread by another library; switch them off for the call (threads created
 * here inherit the calling thread's floating-point environment) and restore them after. */
typedef struct {
    unsigned long long saved;
} fp_env;

static void fp_env_enter(fp_env *env)
{
#if defined(VELARIA_X86)
    env->saved = _mm_getcsr();
    _mm_setcsr((unsigned)env->saved & ~0x8040u); /* FTZ (bit 15), DAZ (bit 6) */
#elif defined(VELARIA_ARM64) && (defined(__GNUC__) || defined(__clang__))
    unsigned long long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    env->saved = fpcr;
    fpcr &= ~(1ull << 24); /* FZ */
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
#else
    env->saved = 0;
#endif
}

static void fp_env_leave(const fp_env *env)
{
#if defined(VELARIA_X86)
    _mm_setcsr((unsigned)env->saved);
#elif defined(VELARIA_ARM64) && (defined(__GNUC__) || defined(__clang__))
    __asm__ volatile("msr fpcr, %0" : : "r"(env->saved));
#else
    (void)env;
#endif
}

/* 1 / sqrt(sequential float64 sum of squares) per row, 0.0 for a zero (or NaN) row: the
 * reference's inv_norm, bit for bit. Four rows are summed side by side for throughput; each
 * row's own sum stays sequential. */
void velaria_inv_norms_f32(const float *data, int64_t n_rows, int64_t dim, double *out)
{
    int64_t i = 0;
    for (; i + 4 <= n_rows; i += 4) {
        const float *r0 = data + i * dim, *r1 = r0 + dim, *r2 = r1 + dim, *r3 = r2 + dim;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (int64_t j = 0; j < dim; j++) {
            const double a = r0[j], b = r1[j], c = r2[j], d = r3[j];
            s0 += a * a;
            s1 += b * b;
            s2 += c * c;
            s3 += d * d;
        }
        out[i] = s0 > 0.0 ? 1.0 / sqrt(s0) : 0.0;
        out[i + 1] = s1 > 0.0 ? 1.0 / sqrt(s1) : 0.0;
        out[i + 2] = s2 > 0.0 ? 1.0 / sqrt(s2) : 0.0;
        out[i + 3] = s3 > 0.0 ? 1.0 / sqrt(s3) : 0.0;
    }
    for (; i < n_rows; i++) {
        const float *r = data + i * dim;
        double s = 0.0;
        for (int64_t j = 0; j < dim; j++) {
            const double a = r[j];
            s += a * a;
        }
        out[i] = s > 0.0 ? 1.0 / sqrt(s) : 0.0;
    }
}

/* Rescore one query's candidates with the scalar kernels and write the first k by
 * (badness, row_id). `sel` is the global bound: candidates above it cannot make the top k. */
static void rescore(const scan_ctx *c, int64_t qi, scan_job *jobs, int threads, double sel,
                    heap *best, int64_t *out_ids, double *out_scores, int64_t *out_count)
{
    const int64_t dim = c->dim;
    const float *q = c->queries + qi * dim;
    const velaria_rows_f32_fn fn =
        c->metric == VELARIA_METRIC_L2 ? scalar_kernels.l2sq_f32 : scalar_kernels.dot_f32;
    best->n = 0;
    for (int t = 0; t < threads; t++) {
        const cand_list *cl = &jobs[t].cands[qi];
        for (int64_t i = 0; i < cl->n; i++) {
            if (cl->e[i].bad > sel)
                continue;
            const int64_t id = cl->e[i].id;
            double raw;
            fn(c->data + id * dim, 1, dim, q, &raw);
            const double inv_r = c->metric == VELARIA_METRIC_COSINE ? c->inv_norms[id] : 0.0;
            const double bad = canonical_bad(c->metric, raw, inv_r, c->inv_q[qi]);
            if (bad != bad)
                continue; /* NaN score: skipped like a NULL row, as the reference does */
            heap_push(best, bad, id);
        }
    }
    qsort(best->e, (size_t)best->n, sizeof(entry), cmp_entry);
    *out_count = best->n;
    for (int64_t i = 0; i < best->n; i++) {
        const double bad = best->e[i].bad;
        out_ids[i] = best->e[i].id;
        out_scores[i] = c->metric == VELARIA_METRIC_DOT  ? -bad
                        : c->metric == VELARIA_METRIC_L2 ? sqrt(bad)
                                                         : bad;
    }
}

int velaria_topk_f32(int level, const float *data, int64_t n_rows, int64_t dim,
                     const uint8_t *valid, const double *inv_norms, const float *queries,
                     int64_t n_queries, int64_t k, int metric, int threads, int64_t *out_ids,
                     double *out_scores, int64_t *out_counts)
{
    if (dim < 1 || n_rows < 0 || n_queries < 1 || k < 1 || metric < 0 || metric > 2)
        return -1;
    const velaria_kernels *kern = kernels_for(level);
    if (!kern)
        return -3;
    const int64_t stride = k; /* output slots per query, as the caller allocated them */
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
    /* float32 lanes with n = dim + 8 roundings; past n*u = 0.1 the bound is useless, so such
     * huge dimensions select with the (exact) scalar kernels */
    const double u = 0x1p-24, n_round = (double)dim + 8.0;
    if (n_round * u > 0.1)
        kern = &scalar_kernels;
    const int exact_scan = kern == &scalar_kernels;
    const int64_t n_lists = (int64_t)threads * n_queries;
    const int64_t cand_cap = (k < 1024 ? k : 1024) * 2 + 64;
    fp_env env;
    fp_env_enter(&env);
    int rc = 0;
    double *own_norms = NULL;
    double *inv_q = malloc((size_t)n_queries * 2 * sizeof(double));
    entry *store = malloc((size_t)(n_lists + 1) * (size_t)k * sizeof(entry));
    heap *heaps = malloc((size_t)n_lists * sizeof(heap));
    cand_list *cands = calloc((size_t)n_lists, sizeof(cand_list));
    scan_job *jobs = malloc((size_t)threads * sizeof(scan_job));
    if (!inv_q || !store || !heaps || !cands || !jobs) {
        rc = -2;
        goto done;
    }
    if (metric != VELARIA_METRIC_L2 && !inv_norms && n_rows > 0) {
        /* cosine needs the row norms; dot needs them for its error bound */
        own_norms = malloc((size_t)n_rows * sizeof(double));
        if (!own_norms) {
            rc = -2;
            goto done;
        }
        velaria_inv_norms_f32(data, n_rows, dim, own_norms);
        inv_norms = own_norms;
    }
    double *norm_q = inv_q + n_queries;
    for (int64_t qi = 0; qi < n_queries; qi++) {
        double ss = 0.0;
        for (int64_t j = 0; j < dim; j++) {
            double v = (double)queries[qi * dim + j];
            ss += v * v;
        }
        inv_q[qi] = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
        norm_q[qi] = sqrt(ss);
    }
    for (int64_t h = 0; h < n_lists; h++) {
        heaps[h].e = store + h * k;
        heaps[h].n = 0;
        heaps[h].cap = k;
        cands[h].e = malloc((size_t)cand_cap * sizeof(entry));
        cands[h].cap = cand_cap;
        if (!cands[h].e) {
            rc = -2;
            goto done;
        }
    }
    scan_ctx ctx = {kern,   data,   dim, valid,    inv_norms,
                    queries, inv_q, norm_q, n_queries, k,
                    metric, exact_scan ? 0.0 : 1.25 * n_round * u,
                    exact_scan ? 0.0 : ((double)dim + 128.0) * 0x1p-149};
    for (int t = 0; t < threads; t++) {
        /* split on 64-row boundaries so every thread streams whole blocks */
        int64_t per = ((n_rows / threads) + 63) & ~(int64_t)63;
        jobs[t].ctx = &ctx;
        jobs[t].begin = per * t < n_rows ? per * t : n_rows;
        jobs[t].end = (t == threads - 1 || per * (t + 1) > n_rows) ? n_rows : per * (t + 1);
        jobs[t].heaps = heaps + (int64_t)t * n_queries;
        jobs[t].cands = cands + (int64_t)t * n_queries;
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
    for (int64_t h = 0; h < n_lists; h++)
        if (cands[h].oom) {
            rc = -2;
            goto done;
        }
    heap best = {store + n_lists * k, 0, k};
    for (int64_t qi = 0; qi < n_queries; qi++) {
        /* the k smallest upper bounds over all threads bound the exact k-th badness */
        heap *h0 = &heaps[qi];
        for (int t = 1; t < threads; t++) {
            heap *ht = &heaps[(int64_t)t * n_queries + qi];
            for (int64_t i = 0; i < ht->n; i++)
                heap_push(h0, ht->e[i].bad, ht->e[i].id);
        }
        rescore(&ctx, qi, jobs, threads, heap_bound(h0), &best, out_ids + qi * stride,
                out_scores + qi * stride, &out_counts[qi]);
    }
done:
    fp_env_leave(&env);
    if (cands)
        for (int64_t h = 0; h < n_lists; h++)
            free(cands[h].e);
    free(own_norms);
    free(inv_q);
    free(store);
    free(heaps);
    free(cands);
    free(jobs);
    return rc;
}
