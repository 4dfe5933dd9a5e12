/* Velaria C accelerator: exact top-k vector search.
 *
 * Public entry points (declared to cffi in accel/build_accel.py):
 *   velaria_cpu_level()        highest dispatch level this CPU + OS supports
 *   velaria_compiled_levels()  bitmask of levels compiled into this build
 *   velaria_topk_f32(...)      exact top-k per query, multi-threaded, identical on every level
 *   velaria_inv_norms_f32(...) the reference's inverse row norms
 *
 * Each ISA file provides kernels named <op>_<dtype>_<isa>: one-query row kernels (scalar, AVX2,
 * NEON; the AVX-512 level uses AVX2's), register-blocked several-query kernels and a vectorised
 * block admission test (AVX2, AVX-512); topk.c owns heaps, threads and the dispatch table
 * (velaria_kernels). The scalar kernels sum sequentially in float64 (bit-identical to
 * reference/topk.py); the SIMD kernels accumulate float32 lanes with FMA (at most dim + 8
 * float32 roundings per product), which keeps them at memory bandwidth. They only *select*
 * candidates: topk.c bounds their error and rescores the candidates with the scalar kernels, so
 * the returned ids and scores never depend on the level.
 */
#ifndef VELARIA_ACCEL_H
#define VELARIA_ACCEL_H

#include <stdint.h>

#define VELARIA_LEVEL_SCALAR 0
#define VELARIA_LEVEL_AVX2 1
#define VELARIA_LEVEL_AVX512 2
#define VELARIA_LEVEL_NEON 3

#define VELARIA_METRIC_COSINE 0
#define VELARIA_METRIC_DOT 1
#define VELARIA_METRIC_L2 2

int velaria_cpu_level(void);
int velaria_compiled_levels(void);

/* Returns 0 on success, -1 on bad arguments, -2 when out of memory, -3 for an unknown level.
 * out_ids / out_scores hold n_queries * k slots; out_counts[q] says how many are filled.
 * inv_norms (velaria_inv_norms_f32's values) serve cosine and the dot error bound; NULL
 * computes them for the call. */
int velaria_topk_f32(int level, const float *data, int64_t n_rows, int64_t dim,
                     const uint8_t *valid, const double *inv_norms,
                     const float *queries, int64_t n_queries, int64_t k, int metric,
                     int threads, int64_t *out_ids, double *out_scores, int64_t *out_counts);

/* out[i] = 1 / sqrt(sequential float64 sum of row i's squares), or 0.0 when that sum is not
 * positive (zero or NaN row): reference/topk.py's inv_norm, bit for bit. */
void velaria_inv_norms_f32(const float *data, int64_t n_rows, int64_t dim, double *out);

/* One streaming pass over n_bytes on `threads` threads (AVX2 loads where available): the
 * bandwidth probe the benchmarks compare the kernels against. Returns a meaningless sum. */
double velaria_read_bandwidth(const void *ptr, int64_t n_bytes, int threads);

/* Row-scoring kernels: out[i] = dot(rows[i], q) or squared l2 distance, for i < n.
 * rows has row stride dim. */
typedef void (*velaria_rows_f32_fn)(const float *rows, int64_t n, int64_t dim, const float *q,
                                    double *out);

/* The dim % lanes tail of a SIMD row kernel: sum over j in [from, dim) of row*q (or of the
 * squared difference), each value widened to float64, summed in float64. */
static inline double velaria_tail_f64(const float *r, const float *q, int64_t from, int64_t dim,
                                      const int l2)
{
    double s = 0.0;
    for (int64_t j = from; j < dim; j++) {
        if (l2) {
            const double d = (double)r[j] - (double)q[j];
            s += d * d;
        } else {
            s += (double)r[j] * (double)q[j];
        }
    }
    return s;
}

/* Several queries at once (register-blocked): out[qi * ld + i] = the value of row i against
 * query qi, for i < n and qi < nq <= VELARIA_MULTI_Q; ld >= n rounded up to the kernel's row
 * block (4), and those padding slots may be written. The values carry the same error bound as
 * the one-query kernels' (see topk.c). */
typedef void (*velaria_multi_f32_fn)(const float *rows, int64_t n, int64_t dim, const float *qs,
                                     int64_t nq, double *out, int64_t ld);
#define VELARIA_MULTI_Q 4

/* A one-query dot kernel that also writes each row's sum of squares (same float32 lanes, same
 * error bound) to ss[i], so the selection needs no second stream of cached row norms. */
typedef void (*velaria_rows_ss_f32_fn)(const float *rows, int64_t n, int64_t dim, const float *q,
                                       double *out, double *ss);

/* The constants of topk.c's admission test for one query's block of values. */
typedef struct {
    int metric;
    double bound, inv_q, g, tau, g_q;
} velaria_reject_args;

/* 1 when no value of the block can enter the top k: topk.c's scalar test (offer_rows, cached
 * norms) with the same float64 operations in the same order, so the same verdicts, 8 or 4
 * values per instruction. 0 when some row may pass, or when n is not a multiple of the vector
 * width: the caller then tests row by row. valid may be NULL. */
typedef int (*velaria_reject_fn)(const double *raw, const double *inv_norms, const uint8_t *valid,
                                 int64_t n, const velaria_reject_args *a);

typedef struct {
    velaria_rows_f32_fn dot_f32;
    velaria_rows_f32_fn l2sq_f32;
    velaria_rows_ss_f32_fn dot_ss_f32;  /* NULL: cosine and dot read the cached inverse norms */
    velaria_multi_f32_fn dot_multi_f32; /* NULL: score each query with dot_f32 */
    velaria_multi_f32_fn l2sq_multi_f32;
    velaria_reject_fn block_rejected; /* NULL: every row is tested on its own */
} velaria_kernels;

#define VELARIA_DECLARE_ISA(isa)                                                              \
    void dot_f32_##isa(const float *, int64_t, int64_t, const float *, double *);             \
    void l2sq_f32_##isa(const float *, int64_t, int64_t, const float *, double *);

#define VELARIA_DECLARE_MULTI(isa)                                                            \
    void dot_multi_f32_##isa(const float *, int64_t, int64_t, const float *, int64_t, double *, \
                             int64_t);                                                        \
    void l2sq_multi_f32_##isa(const float *, int64_t, int64_t, const float *, int64_t, double *, \
                              int64_t);

VELARIA_DECLARE_ISA(scalar)

#if defined(__x86_64__) || defined(_M_X64)
#define VELARIA_X86 1
VELARIA_DECLARE_ISA(avx2)
VELARIA_DECLARE_MULTI(avx2)
VELARIA_DECLARE_MULTI(avx512)
void dot_ss_f32_avx2(const float *, int64_t, int64_t, const float *, double *, double *);
int block_rejected_avx2(const double *, const double *, const uint8_t *, int64_t,
                        const velaria_reject_args *);
int block_rejected_avx512(const double *, const double *, const uint8_t *, int64_t,
                          const velaria_reject_args *);
#endif

#if defined(__aarch64__)
#define VELARIA_ARM64 1
VELARIA_DECLARE_ISA(neon)
#endif

/* CSV column typing over raw bytes (csv_typing.c); see that file for the contract. */
int velaria_csv_column_kinds(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                             const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                             int dates, int simd, int threads, uint8_t *kinds,
                             int64_t *rows_out, const uint8_t *keep, uint8_t *out,
                             int64_t *out_len);

/* One column of one part converted by velaria_csv_convert (csv_typing.c): Arrow buffers the
 * caller owns (release each with velaria_csv_free). */
typedef struct {
    uint8_t *values;    /* int64 / float64 / int32 date / int64 timestamp values, packed bools,
                           or a string column's bytes */
    int64_t values_len; /* bytes of values in use */
    int32_t *offsets;   /* string columns: rows + 1 offsets into values; else NULL */
    uint8_t *valid;     /* validity bits, 1 = not NULL */
    int64_t nulls;
} velaria_csv_column;

int velaria_csv_convert(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                        const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                        int simd, int threads, const uint8_t *types, int *parts_out,
                        int64_t *part_rows, velaria_csv_column *columns);
void velaria_csv_free(void *ptr);
int velaria_csv_type_convert(const uint8_t *buf, int64_t len, int64_t ncols, int delim,
                             const uint8_t *nulls, const int64_t *null_lens, int64_t n_nulls,
                             int dates, int simd, int threads, uint8_t *kinds,
                             int64_t *rows_out, const uint8_t *hint, int *parts_out,
                             int64_t *part_rows, velaria_csv_column *columns,
                             uint8_t *spec_kinds);
/* Batches of rows the CSV walk handled column by column so far (its indexed walk ran). */
int64_t velaria_csv_indexed_batches(void);

/* accel/src/compact_rows.c: the 8-byte values whose mask byte is nonzero, in row order.
 * velaria_compact_run_u64 writes them to out and never at or past out + room; returns how
 * many. velaria_compact_cols_u64 does it for several columns on up to `threads` threads (the
 * same output for any thread count); returns -1, writing nothing, when more than room
 * rows are kept. */
int64_t velaria_compact_run_u64(int level, const uint64_t *src, const uint8_t *mask, int64_t n,
                                uint64_t *out, int64_t room);
int64_t velaria_compact_cols_u64(int level, int threads, int64_t n, const uint8_t *mask, int ncols,
                                 const uint64_t *const *srcs, uint64_t *const *outs, int64_t room);

/* accel/src/select_terms.c: the rows of NULL-free 8-byte columns where every term is TRUE,
 * compacted in the pass that tests the terms (each out needs room for n values). */
int64_t velaria_and_compact_u64(int level, int threads, int64_t n, int n_terms, const int *kinds,
                                const void *const *cols, const uint8_t *const *valids, const int *ops,
                                const double *fconsts, const int64_t *iconsts, int ncols,
                                const uint64_t *const *srcs, uint64_t *const *outs);
/* accel/src/select_terms.c: one block of the terms' mask (rows lo..lo+len into m[0..len));
 * returns the rows it keeps. */
int64_t velaria_terms_mask_block(int level, int n_terms, const int *kinds, const void *const *cols,
                                 const uint8_t *const *valids, const int *ops, const double *fconsts,
                                 const int64_t *iconsts, int64_t lo, int64_t len, uint8_t *m);
/* accel/src/sum_where.c: the lane-order float SUM of x (or of x * y when y is given) over the
 * rows where every "column op constant" term is TRUE (and no factor is NULL), fused: no
 * filtered column is built. */
int64_t velaria_sum_lanes_f64(int level, const double *x, const uint8_t *valid, int64_t n,
                              double *lanes, int64_t pos);
int64_t velaria_sum_lanes_where_f64(int level, int threads, int64_t n, int n_terms, const int *kinds,
                                    const void *const *cols, const uint8_t *const *valids,
                                    const int *ops, const double *fconsts, const int64_t *iconsts,
                                    const double *x, const uint8_t *valid, const double *y,
                                    const uint8_t *y_valid, double *lanes, int64_t pos, int64_t *rows_kept);

/* accel/src/key_select.c: the rows whose valid key has its bit set in a bitmap over
 * [lo, lo + span), their numbers in order into out (room for n); returns how many. */
int64_t velaria_bitmap_select_rows(int level, int threads, const int64_t *keys, const uint8_t *valid, int64_t n,
                                   int64_t lo, int64_t span, const uint64_t *bitmap, int64_t *out);
/* accel/src/parallel_jobs.c: fn on each of `threads` job records `size` bytes apart, the first
 * on the calling thread, the rest on new threads (or here when one cannot start); returns
 * when all have finished. */
#include <stddef.h>
void velaria_parallel_jobs(int threads, void *(*fn)(void *), void *jobs, size_t size);
/* Stable ORDER BY over several key columns (accel/src/radix_sort.c): the row numbers of the
 * first min(limit, n) rows of the order; see the definition for the key kinds. */
int64_t velaria_sort_rows(int ncols, const int *kinds, const void *const *data,
                          const uint8_t *const *valid, const int *descending, const int *nulls_first,
                          int64_t n, int64_t limit, int threads, int64_t *out);
/* The same sort, and fixed-width columns gathered in its order (fused with the sort's first
 * pass when the keys fit one word); the LIMIT pass's count of skipped blocks. */
int64_t velaria_sort_rows_take(int ncols, const int *kinds, const void *const *data,
                               const uint8_t *const *valid, const int *descending, const int *nulls_first,
                               int64_t n, int64_t limit, int threads, int64_t *out,
                               int npay, const void *const *pay, const int *pay_width, void *const *pay_out);
int64_t velaria_sort_bar_skips(void);
/* Direct-indexed group numbering (dense_group_ids, pair_ids): the group id in lut[slot], or a
 * new one (next_gid++) for an empty slot (-1), whose row is appended to new_rows. */
static inline int64_t velaria_number_slot(int64_t *lut, int64_t slot, int64_t row, int64_t *next_gid,
                                          int64_t *new_rows, int64_t *added)
{
    int64_t g = lut[slot];
    if (g < 0) {
        g = lut[slot] = (*next_gid)++;
        new_rows[(*added)++] = row;
    }
    return g;
}

#endif
