/* Selection kernels for compound WHERE clauses and grouping keys.
 *
 * velaria_and_cmp: the AND of "column op constant" terms over one batch, as a byte mask
 * (1 where every term is TRUE, 0 where any is FALSE or NULL), without materialising any
 * intermediate column.  A term reads a float64, int64 or int32 column (dates are int32 days,
 * timestamps int64) and compares it with a constant of the same kind under the reference
 * rules: NaN is above every number and equal to itself (the constant is never NaN), -0.0
 * equals 0.0, a NULL row (valid byte 0) makes the term NULL, which drops the row.  The batch
 * is processed in blocks that stay in L1: the first term writes the block's mask, each later
 * term ANDs into it, branch-free, so the compiler vectorises every term's loop.  Returns the
 * number of rows kept.
 *
 * velaria_pack_short_str: each string of an Arrow utf8 / binary array (int32 offsets) packed
 * into one int64: its bytes little-endian, zero-padded to 8.  Two strings of at most 8 bytes
 * without a NUL byte are equal exactly when their packed words are (the first zero byte marks
 * the end); NULL packs to -1 (eight 0xFF bytes, never valid UTF-8).  Returns 0, or 1 when
 * some valid value is longer than 8 bytes, contains a NUL byte or packs to -1 (the packing
 * is then not one-to-one and must not be used).
 */
#include "velaria_accel.h"

#include <string.h>

#define MAX_THREADS 64
/* row numbers are written while at most 1 row in IDX_SHARE is kept (the caller gathers by
 * number below that share and compacts by the mask above it) */
#define IDX_SHARE 8

#define BLOCK 2048

enum { K_F64 = 0, K_I64 = 1, K_I32 = 2 };

/* m[i] (op) (x[i] cmp c): the first term assigns, later ones AND. */
#define TERM_LOOP(T, COND)                                                           \
    do {                                                                              \
        const T *restrict x = (const T *)col + lo;                                    \
        if (first) { for (int64_t i = 0; i < len; i++) { T v = x[i]; m[i] = (uint8_t)(COND); } } \
        else { for (int64_t i = 0; i < len; i++) { T v = x[i]; m[i] &= (uint8_t)(COND); } } \
    } while (0)

#define INT_TERM(T, C)                                                               \
    switch (op) {                                                                     \
    case 0: TERM_LOOP(T, v == (C)); break;                                            \
    case 1: TERM_LOOP(T, v != (C)); break;                                            \
    case 2: TERM_LOOP(T, v < (C)); break;                                             \
    case 3: TERM_LOOP(T, v <= (C)); break;                                            \
    case 4: TERM_LOOP(T, v > (C)); break;                                             \
    default: TERM_LOOP(T, v >= (C)); break;                                           \
    }

/* One term over rows lo..lo+len into the block mask m.  The same plain C is compiled once per
 * ISA (the 64-bit compares narrowed to bytes vectorise only from AVX2 on); every level
 * computes the same bytes.  NaN rows: '=', '<', '<=' are FALSE as in IEEE; '!=', '>', '>='
 * TRUE, hence the negated forms (!(v <= c) is "v > c or v is NaN"). */
#define DEFINE_TERM_BLOCK(NAME, ATTR)                                                \
    ATTR static void NAME(int kind, const void *col, const uint8_t *valid, int op,   \
                          double fc, int64_t ic, int64_t lo, int64_t len,             \
                          uint8_t *restrict m, int first)                             \
    {                                                                                 \
        if (kind == K_F64) {                                                          \
            switch (op) {                                                             \
            case 0: TERM_LOOP(double, v == fc); break;                                \
            case 1: TERM_LOOP(double, v != fc); break;                                \
            case 2: TERM_LOOP(double, v < fc); break;                                 \
            case 3: TERM_LOOP(double, v <= fc); break;                                \
            case 4: TERM_LOOP(double, !(v <= fc)); break;                             \
            default: TERM_LOOP(double, !(v < fc)); break;                             \
            }                                                                         \
        } else if (kind == K_I64) {                                                   \
            INT_TERM(int64_t, ic)                                                     \
        } else {                                                                      \
            const int32_t c32 = (int32_t)ic;                                          \
            INT_TERM(int32_t, c32)                                                    \
        }                                                                             \
        if (valid) {                                                                  \
            const uint8_t *restrict v = valid + lo;                                   \
            for (int64_t i = 0; i < len; i++) m[i] &= (uint8_t)(v[i] != 0);           \
        }                                                                             \
    }

typedef void (*term_block_fn)(int, const void *, const uint8_t *, int, double, int64_t, int64_t,
                              int64_t, uint8_t *restrict, int);

DEFINE_TERM_BLOCK(term_block_scalar, )
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
DEFINE_TERM_BLOCK(term_block_avx2, __attribute__((target("avx2"))))
DEFINE_TERM_BLOCK(term_block_avx512, __attribute__((target("avx512f,avx512bw,avx512vl"))))
#endif

typedef struct {
    term_block_fn term;
    int n_terms;
    const int *kinds, *ops;
    const void *const *cols;
    const uint8_t *const *valids;
    const double *fconsts;
    const int64_t *iconsts;
    uint8_t *mask;
    int64_t *idx;        /* NULL: no row numbers wanted */
    int64_t begin, end;  /* this job's rows */
    int64_t kept;        /* out: rows kept (their numbers at idx + begin when idx is given) */
    int idx_complete;    /* out: 1 when every kept row's number was written */
} and_job;

static void and_range(and_job *j)
{
    int64_t kept = 0;
    int64_t *idx = j->idx ? j->idx + j->begin : NULL;
    j->idx_complete = idx != NULL;
    for (int64_t lo = j->begin; lo < j->end; lo += BLOCK) {
        const int64_t len = j->end - lo < BLOCK ? j->end - lo : BLOCK;
        uint8_t *m = j->mask + lo;
        for (int t = 0; t < j->n_terms; t++)
            j->term(j->kinds[t], j->cols[t], j->valids[t], j->ops[t], j->fconsts[t], j->iconsts[t],
                    lo, len, m, t == 0);
        if (idx) {      /* branch-free: every row number is written, the index advances by the mask */
            for (int64_t i = 0; i < len; i++) {
                idx[kept] = lo + i;
                kept += m[i];
            }
            /* more than 1 row in IDX_SHARE kept so far: the caller compacts by the mask, so
             * stop paying a store per row for numbers it will not read */
            if (kept * IDX_SHARE > lo + len - j->begin) {
                idx = NULL;
                j->idx_complete = 0;
            }
        } else {
            int64_t k = 0;
            for (int64_t i = 0; i < len; i++) k += m[i];
            kept += k;
        }
    }
    j->kept = kept;
}

static void *and_thread(void *arg)
{
    and_range((and_job *)arg);
    return NULL;
}

/* The AND of the terms into out_mask (n bytes); with out_idx (room for n) also the kept row
 * numbers in order while few rows are kept (*out_idx_complete says whether they all were).  threads > 1 splits the rows into
 * contiguous ranges of whole blocks, one per thread; the ranges' row numbers are then moved
 * together, so the output does not depend on the thread count. */
int64_t velaria_and_cmp(int level, int threads, int64_t n, int n_terms, const int *kinds,
                        const void *const *cols, const uint8_t *const *valids, const int *ops,
                        const double *fconsts, const int64_t *iconsts, uint8_t *out_mask,
                        int64_t *out_idx, int *out_idx_complete)
{
    term_block_fn term = term_block_scalar;
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    if (level == VELARIA_LEVEL_AVX512) term = term_block_avx512;
    else if (level == VELARIA_LEVEL_AVX2) term = term_block_avx2;
#else
    (void)level;
#endif
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
    if (blocks < threads) threads = blocks > 0 ? (int)blocks : 1;
    and_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        int64_t b0 = blocks * t / threads, b1 = blocks * (t + 1) / threads;
        jobs[t] = (and_job){term, n_terms, kinds, ops, cols, valids, fconsts, iconsts, out_mask, out_idx,
                            b0 * BLOCK, b1 * BLOCK < n ? b1 * BLOCK : n, 0, 0};
    }
    velaria_parallel_jobs(threads, and_thread, jobs, sizeof(jobs[0]));
    int complete = out_idx != NULL;
    for (int t = 0; t < threads; t++) complete &= jobs[t].idx_complete;
    int64_t kept = jobs[0].kept;
    for (int t = 1; t < threads; t++) {
        if (complete && kept != jobs[t].begin)
            memmove(out_idx + kept, out_idx + jobs[t].begin, (size_t)jobs[t].kept * sizeof(int64_t));
        kept += jobs[t].kept;
    }
    if (out_idx_complete) *out_idx_complete = complete;
    return kept;
}

/* The rows of `ncols` NULL-free 8-byte columns where every term is TRUE, in one pass: the
 * terms' mask of each block stays in L1 and the block's kept values are compacted at once
 * (velaria_compact_run_u64), so the columns are read once and no mask is written.  Each of
 * `threads` threads takes a contiguous range of whole blocks and writes its kept values from
 * the range's first row on (outs[c] has room for n values); the ranges' values are then moved
 * together in range order, so the output does not depend on the thread count.  Returns the
 * number of rows kept. */
typedef struct {
    and_job a;            /* the terms and this job's rows (kept: rows kept in the range) */
    int level, ncols;
    const uint64_t *const *srcs;
    uint64_t *const *outs;
} and_compact_job;

static void and_compact_range(and_compact_job *j)
{
    uint8_t m[BLOCK];
    const int64_t begin = j->a.begin, end = j->a.end;
    int64_t kept = 0;
    for (int64_t lo = begin; lo < end; lo += BLOCK) {
        const int64_t len = end - lo < BLOCK ? end - lo : BLOCK;
        for (int t = 0; t < j->a.n_terms; t++)
            j->a.term(j->a.kinds[t], j->a.cols[t], j->a.valids[t], j->a.ops[t], j->a.fconsts[t],
                      j->a.iconsts[t], lo, len, m, t == 0);
        int64_t got = 0;
        if (j->ncols == 0)
            for (int64_t i = 0; i < len; i++) got += m[i];
        for (int c = 0; c < j->ncols; c++)
            got = velaria_compact_run_u64(j->level, j->srcs[c] + lo, m, len, j->outs[c] + begin + kept,
                                          (end - begin) - kept);
        kept += got;
    }
    j->a.kept = kept;
}

static void *and_compact_thread(void *arg)
{
    and_compact_range((and_compact_job *)arg);
    return NULL;
}

int64_t velaria_and_compact_u64(int level, int threads, int64_t n, int n_terms, const int *kinds,
                                const void *const *cols, const uint8_t *const *valids, const int *ops,
                                const double *fconsts, const int64_t *iconsts, int ncols,
                                const uint64_t *const *srcs, uint64_t *const *outs)
{
    term_block_fn term = term_block_scalar;
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    if (level == VELARIA_LEVEL_AVX512) term = term_block_avx512;
    else if (level == VELARIA_LEVEL_AVX2) term = term_block_avx2;
#endif
    if (n_terms < 1) return -1;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    const int64_t blocks = (n + BLOCK - 1) / BLOCK;
    if (blocks < threads) threads = blocks > 0 ? (int)blocks : 1;
    and_compact_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        const int64_t b0 = blocks * t / threads, b1 = blocks * (t + 1) / threads;
        jobs[t] = (and_compact_job){{term, n_terms, kinds, ops, cols, valids, fconsts, iconsts, NULL, NULL,
                                     b0 * BLOCK, b1 * BLOCK < n ? b1 * BLOCK : n, 0, 0},
                                    level, ncols, srcs, outs};
    }
    velaria_parallel_jobs(threads, and_compact_thread, jobs, sizeof(jobs[0]));
    int64_t kept = jobs[0].a.kept;
    for (int t = 1; t < threads; t++) {
        for (int c = 0; c < ncols; c++)
            if (kept != jobs[t].a.begin)
                memmove(outs[c] + kept, outs[c] + jobs[t].a.begin, (size_t)jobs[t].a.kept * sizeof(uint64_t));
        kept += jobs[t].a.kept;
    }
    return kept;
}

/* The mask of rows lo..lo+len where every term is TRUE, into m[0..len) (0 / 1 bytes);
 * returns how many rows it keeps.  One block of the pass above, for callers that consume the
 * block while it is in L1 (accel/src/sum_where.c). */
int64_t velaria_terms_mask_block(int level, int n_terms, const int *kinds, const void *const *cols,
                                 const uint8_t *const *valids, const int *ops, const double *fconsts,
                                 const int64_t *iconsts, int64_t lo, int64_t len, uint8_t *m)
{
    term_block_fn term = term_block_scalar;
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    if (level == VELARIA_LEVEL_AVX512) term = term_block_avx512;
    else if (level == VELARIA_LEVEL_AVX2) term = term_block_avx2;
#endif
    if (n_terms == 0) memset(m, 1, (size_t)len);
    for (int t = 0; t < n_terms; t++)
        term(kinds[t], cols[t], valids[t], ops[t], fconsts[t], iconsts[t], lo, len, m, t == 0);
    int64_t k = 0;
    for (int64_t i = 0; i < len; i++) k += m[i];
    return k;
}

int velaria_pack_short_str(const int32_t *offsets, const uint8_t *data, int64_t data_len,
                           const uint8_t *valid, int64_t n, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) {
            out[i] = -1;
            continue;
        }
        const int64_t start = offsets[i], len = (int64_t)offsets[i + 1] - start;
        if (len > 8) return 1;
        uint64_t w = 0;
        if (start + 8 <= data_len) {      /* one unaligned 8-byte load, the bytes past len masked off */
            memcpy(&w, data + start, 8);
            w &= len ? ~(uint64_t)0 >> (64 - 8 * len) : 0;
        } else {
            for (int64_t j = 0; j < len; j++) w |= (uint64_t)data[start + j] << (8 * j);
        }
        /* a NUL byte inside the value ("a\0" would pack as "a"): the padding set to 0xFF, then
         * the classic test for a zero byte in a word */
        const uint64_t v = len < 8 ? w | (~(uint64_t)0 << (8 * len)) : w;
        if (((v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL) || w == ~(uint64_t)0)
            return 1;
        out[i] = (int64_t)w;
    }
    return 0;
}
