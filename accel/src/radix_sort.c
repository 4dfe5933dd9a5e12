/* ORDER BY in C: a stable radix argsort over several key columns, and its top-N.
 *
 * Every key column becomes an unsigned 64-bit key whose unsigned order is the reference
 * order of its values (velaria_sort_rows' comment says how each kind maps), shifted down by
 * the column's smallest key so that it needs only as many bits as its range.  Columns are
 * packed, most significant in the high bits, into as few 64-bit words as their widths allow
 * (ORDER BY k, v with k in 0..999 and v a double is a 10-bit and a 62-bit field: two words;
 * two int32-range columns: one word).  Words are sorted least significant first, each stably,
 * so the last word sorted decides first and ties fall back to the earlier words' order.
 *
 * One word is sorted most significant digit first (MSD radix, 11-bit digits, 32-bit row
 * numbers carried along): a digit pass scatters a segment into buckets, stably, and each
 * bucket is sorted by the remaining bits.  Only the first digit or two move the whole input
 * through memory; the buckets below soon fit in cache (digits sized to about four rows a bucket,
 * an insertion sort under SMALL_SEGMENT), and a digit that every row of a segment shares is
 * skipped.  Segments larger than a share of a thread get threaded passes: each thread counts
 * and scatters its own contiguous part, its rows landing after every earlier thread's rows of
 * the same digit; the smaller ones are dealt out to the threads whole.  Stability makes the
 * result the single stable order, whatever the number of threads.
 *
 * With a LIMIT of at most TOP_N_MAX rows and under an eighth of the row count (and one word),
 * one threaded pass keeps the `limit` smallest (word, row) pairs instead (top_n).
 *
 * velaria_sort_rows_take also moves payload columns into the sorted order: with one word, the
 * first pass scatters them with the keys and the gather at the end stays within a bucket (see
 * `payload`); otherwise they are gathered by the row numbers. */
#define _POSIX_C_SOURCE 200112L
#define _DEFAULT_SOURCE 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define DIGIT_BITS 11
#define BUCKETS (1 << DIGIT_BITS)
#ifndef FUSED_DIGIT_BITS
#define FUSED_DIGIT_BITS 8
#endif
#define MAX_THREADS 64
#define MAX_COLS 64
#define TOP_N_MAX 65536       /* larger LIMITs sort everything and cut */

enum { KIND_U64 = 0, KIND_I64 = 1, KIND_F64 = 2, KIND_NULL_RANK = 3 };

/* Scratch buffers, rounded up to 2 MiB and backed by huge pages where the OS allows (fewer
 * TLB misses in the scattered passes).  A freed buffer is kept for the next sort, up to
 * SCRATCH_SLOTS buffers and SCRATCH_KEEP bytes in all: fresh memory costs a page fault and a
 * zeroed page on first touch, which is a good part of a large sort's time, and a session
 * that sorts once usually sorts again. */
#define SCRATCH_SLOTS 8
#define SCRATCH_KEEP ((size_t)512 << 20)
#define SCRATCH_ALIGN ((size_t)2 << 20)

static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { void *p; size_t bytes; } scratch[SCRATCH_SLOTS];

static size_t scratch_size(size_t bytes)
{
    return bytes ? (bytes + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN : SCRATCH_ALIGN;
}

static void *big_alloc(size_t bytes)
{
    size_t size = scratch_size(bytes);
    int best = -1;
    pthread_mutex_lock(&scratch_lock);
    for (int s = 0; s < SCRATCH_SLOTS && best < 0; s++)
        if (scratch[s].p && scratch[s].bytes == size) best = s;
    void *p = NULL;
    if (best >= 0) {
        p = scratch[best].p;
        scratch[best].p = NULL;
    }
    pthread_mutex_unlock(&scratch_lock);
    if (p) return p;
    if (posix_memalign(&p, SCRATCH_ALIGN, size) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

/* Gives back a buffer of big_alloc(bytes): kept for reuse, older kept buffers freed to make
 * room (so the kept ones follow the latest sort's sizes); freed when larger than the limit. */
static void big_free(void *p, size_t bytes)
{
    if (!p) return;
    size_t size = scratch_size(bytes);
    void *evicted[SCRATCH_SLOTS];
    int n_evicted = 0;
    pthread_mutex_lock(&scratch_lock);
    if (size <= SCRATCH_KEEP) {
        size_t kept = 0;
        for (int s = 0; s < SCRATCH_SLOTS; s++) kept += scratch[s].p ? scratch[s].bytes : 0;
        for (int s = 0; s < SCRATCH_SLOTS; s++) {
            int full = 1;
            for (int t = 0; t < SCRATCH_SLOTS; t++) full &= scratch[t].p != NULL;
            if (kept + size <= SCRATCH_KEEP && !full) break;
            if (scratch[s].p) {
                kept -= scratch[s].bytes;
                evicted[n_evicted++] = scratch[s].p;
                scratch[s].p = NULL;
            }
        }
        for (int s = 0; s < SCRATCH_SLOTS; s++) {
            if (!scratch[s].p) {
                scratch[s].p = p;
                scratch[s].bytes = size;
                p = NULL;
                break;
            }
        }
    }
    pthread_mutex_unlock(&scratch_lock);
    for (int i = 0; i < n_evicted; i++) free(evicted[i]);
    free(p);
}

/* ---- threads: run fn(job) for each of `threads` jobs, job 0 on the calling thread */

typedef void *(*job_fn)(void *);

static void run_jobs(job_fn fn, void *jobs, size_t job_size, int threads)
{
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, fn, (char *)jobs + t * job_size) == 0;
    fn(jobs);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        else fn((char *)jobs + t * job_size);      /* could not start a thread: run it here */
    }
}

/* ---- one key column */

typedef struct {
    int kind, descending, nulls_first;
    const void *data;
    const uint8_t *valid;     /* NULL: no NULL rows */
    uint64_t min;             /* smallest key of a non-NULL row */
    int bits;                 /* bits of (key - min) over non-NULL rows */
    int shift;                /* where the field sits in its word */
} key_col;

/* The order-preserving key of row r: int64 with the sign bit flipped; float64 NaN (any
 * payload) above every number and -0.0 equal to 0.0; descending complements it. */
static inline uint64_t col_key(const key_col *c, int64_t r)
{
    uint64_t k;
    if (c->kind == KIND_F64) {
        double v = ((const double *)c->data)[r];
        if (v != v) {
            k = ~(uint64_t)0;
        } else {
            v = v + 0.0;                      /* -0.0 -> 0.0 */
            memcpy(&k, &v, sizeof k);
            k = (k >> 63) ? ~k : (k | ((uint64_t)1 << 63));
        }
    } else if (c->kind == KIND_I64) {
        k = (uint64_t)((const int64_t *)c->data)[r] ^ ((uint64_t)1 << 63);
    } else {
        k = ((const uint64_t *)c->data)[r];
    }
    return c->descending ? ~k : k;
}

/* Row r's field in its word: key - min; 0 for a NULL row, so NULL rows tie with each other
 * and keep their input order.  A column with NULLs is preceded by its NULL rank column: one
 * bit, 0 for the rows that go first. */
static inline uint64_t col_field(const key_col *c, int64_t r)
{
    if (c->kind == KIND_NULL_RANK) return (uint64_t)((c->valid[r] != 0) == c->nulls_first);
    if (c->valid && !c->valid[r]) return 0;
    return col_key(c, r) - c->min;
}

typedef struct {
    key_col *col;
    int64_t lo, hi;
    uint64_t min, max;
    int64_t valid_rows;
} range_job;

static void *range_thread(void *arg)
{
    range_job *j = arg;
    uint64_t mn = ~(uint64_t)0, mx = 0;
    int64_t seen = 0;
    for (int64_t r = j->lo; r < j->hi; r++) {
        if (j->col->valid && !j->col->valid[r]) continue;
        uint64_t k = col_key(j->col, r);
        mn = k < mn ? k : mn;
        mx = k > mx ? k : mx;
        seen++;
    }
    j->min = mn; j->max = mx; j->valid_rows = seen;
    return NULL;
}

static int bits_of(uint64_t range)
{
    return range == 0 ? 0 : 64 - __builtin_clzll(range);
}

/* Fills c->min and c->bits from the non-NULL rows; forgets c->valid when every row or none
 * is NULL (one NULL rank for every row orders nothing). */
static void measure_col(key_col *c, int64_t n, int threads)
{
    range_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (range_job){c, n * t / threads, n * (t + 1) / threads, 0, 0, 0};
    run_jobs(range_thread, jobs, sizeof jobs[0], threads);
    uint64_t mn = ~(uint64_t)0, mx = 0;
    int64_t seen = 0;
    for (int t = 0; t < threads; t++) {
        if (!jobs[t].valid_rows) continue;
        mn = jobs[t].min < mn ? jobs[t].min : mn;
        mx = jobs[t].max > mx ? jobs[t].max : mx;
        seen += jobs[t].valid_rows;
    }
    if (seen == 0) { mn = mx = 0; }
    c->min = mn;
    c->bits = bits_of(mx - mn);
    if (seen == 0 || seen == n) c->valid = NULL;
}

/* ---- building one word per row: the packed fields of a run of columns */

typedef struct {
    const key_col *cols;
    int ncols;
    const uint32_t *perm;     /* NULL: row j is row j; else the word of row perm[j] */
    uint64_t *out;
    int64_t lo, hi;
} pack_job;

static void *pack_thread(void *arg)
{
    pack_job *j = arg;
    for (int64_t i = j->lo; i < j->hi; i++) {
        int64_t r = j->perm ? (int64_t)j->perm[i] : i;
        uint64_t w = 0;
        for (int c = 0; c < j->ncols; c++) w |= col_field(&j->cols[c], r) << j->cols[c].shift;
        j->out[i] = w;
    }
    return NULL;
}

static void pack_words(const key_col *cols, int ncols, const uint32_t *perm, uint64_t *out,
                       int64_t n, int threads)
{
    pack_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (pack_job){cols, ncols, perm, out, n * t / threads, n * (t + 1) / threads};
    run_jobs(pack_thread, jobs, sizeof jobs[0], threads);
}

/* ---- the sort of one word per row: stable MSD radix, threaded at the top */

/* Columns moved along with the sort (velaria_sort_rows_take): with one word, the first pass
 * over the whole input scatters them next to the keys, and the rows it carries from then on are
 * positions in that pass's output.  MSD radix keeps each bucket of that pass in the range of
 * the output it ends up in, so the final gather of a column reads near where it writes (within
 * a bucket) instead of anywhere in the input. */
typedef struct {
    int ncols;
    const void *const *src;   /* the columns, in row order */
    const int *width;         /* bytes per value: 1, 2, 4 or 8 */
    void *const *dst;         /* their sorted output, `limit` values each */
    void **moved;             /* scratch: each column in the order of the first pass's output */
    uint32_t *origin;         /* scratch (NULL: rows not wanted): the row of each such position */
} payload;

/* Where a sort of one word per row works: keys and rows in buffer 0 (rows NULL at the start:
 * row i at position i), buffer 1 the scratch of the same size; each finished segment writes
 * its rows to dest32 or dest64 at their final positions. */
typedef struct {
    uint64_t *k[2];
    uint32_t *r[2];
    uint32_t *dest32;
    int64_t *dest64;
    const payload *pay;       /* NULL, or columns the first pass moves (rows become positions) */
} msd_ctx;

/* A segment left to sort on one thread: positions [lo, hi) of buffer `buf`, ordered already
 * by the key bits above `bits`. */
typedef struct {
    int buf, bits;
    int64_t lo, hi;
} msd_task;

static inline void emit_rows(const msd_ctx *c, const uint32_t *rows, int64_t lo, int64_t hi)
{
    if (c->dest64) {
        if (rows) for (int64_t i = lo; i < hi; i++) c->dest64[i] = rows[i];
        else for (int64_t i = lo; i < hi; i++) c->dest64[i] = i;
    } else {
        if (rows) memcpy(c->dest32 + lo, rows + lo, (size_t)(hi - lo) * sizeof *rows);
        else for (int64_t i = lo; i < hi; i++) c->dest32[i] = (uint32_t)i;
    }
}

#define SMALL_SEGMENT 24          /* insertion sort below this many rows */

/* Sorts positions [lo, hi) of buffer `buf` by the key bits below `bits`, stably (equal keys
 * keep their order in the buffer, which is row order), on the calling thread. */
static void msd_sequential(const msd_ctx *c, int buf, int64_t lo, int64_t hi, int bits)
{
    uint64_t *k = c->k[buf];
    uint32_t *r = c->r[buf];
    int64_t n = hi - lo;
    if (bits == 0 || n <= SMALL_SEGMENT) {
        if (bits > 0) {
            for (int64_t i = lo + 1; i < hi; i++) {          /* strict '>' keeps ties in order */
                uint64_t key = k[i];
                uint32_t row = r[i];
                int64_t j = i;
                for (; j > lo && k[j - 1] > key; j--) { k[j] = k[j - 1]; r[j] = r[j - 1]; }
                k[j] = key;
                r[j] = row;
            }
        }
        emit_rows(c, r, lo, hi);
        return;
    }
    /* about four rows per bucket: a digit much wider than the segment costs more in
     * bucket bookkeeping (clearing, summing, visiting empty buckets) than it saves */
    int width = 63 - __builtin_clzll((uint64_t)n) - 2;
    if (width > DIGIT_BITS) width = DIGIT_BITS;
    if (width < 3) width = 3;
    if (width > bits) width = bits;
    const int shift = bits - width;
    const uint64_t mask = ((uint64_t)1 << width) - 1;
    const int buckets = 1 << width;
    uint32_t count[BUCKETS];
    memset(count, 0, (size_t)buckets * sizeof count[0]);
    for (int64_t i = lo; i < hi; i++) count[(k[i] >> shift) & mask]++;
    if (count[(k[lo] >> shift) & mask] == (uint64_t)n) {     /* one digit: nothing moves */
        msd_sequential(c, buf, lo, hi, shift);
        return;
    }
    int64_t pos[BUCKETS];
    int64_t sum = lo;
    for (int d = 0; d < buckets; d++) { pos[d] = sum; sum += count[d]; }
    uint64_t *k2 = c->k[1 - buf];
    uint32_t *r2 = c->r[1 - buf];
    for (int64_t i = lo; i < hi; i++) {
        uint64_t key = k[i];
        int64_t p = pos[(key >> shift) & mask]++;
        k2[p] = key;
        r2[p] = r[i];
    }
    int64_t start = lo;
    for (int d = 0; d < buckets; d++) {
        if (count[d]) msd_sequential(c, 1 - buf, start, start + count[d], shift);
        start += count[d];
    }
}

typedef struct {
    const uint64_t *src_k;
    const uint32_t *src_i;    /* NULL: the row number is the position */
    uint64_t *dst_k;
    uint32_t *dst_i;
    int shift, width;
    int64_t lo, hi;
    const payload *pay;       /* set on the first pass of a fused sort (src_i NULL) */
    int64_t count[BUCKETS];   /* digit counts of [lo, hi), then this thread's next positions */
} pass_job;

#define MOVE_BLOCK 512

/* moved[c][to[b]] = src[c][from + b] for b < m: one payload column of a block of the first pass. */
static void move_values(const payload *pay, int c, int64_t from, const uint32_t *to, int m)
{
#define MOVE_AS(T) do { const T *a = (const T *)pay->src[c] + from; T *d = pay->moved[c]; \
                          for (int b = 0; b < m; b++) d[to[b]] = a[b]; } while (0)
    switch (pay->width[c]) {
    case 8: MOVE_AS(uint64_t); break;
    case 4: MOVE_AS(uint32_t); break;
    case 2: MOVE_AS(uint16_t); break;
    default: MOVE_AS(uint8_t); break;
    }
#undef MOVE_AS
}

static void *count_thread(void *arg)
{
    pass_job *j = arg;
    const uint64_t mask = ((uint64_t)1 << j->width) - 1;
    memset(j->count, 0, sizeof j->count);
    for (int64_t i = j->lo; i < j->hi; i++) j->count[(j->src_k[i] >> j->shift) & mask]++;
    return NULL;
}

static void *scatter_thread(void *arg)
{
    pass_job *j = arg;
    const uint64_t mask = ((uint64_t)1 << j->width) - 1;
    const int shift = j->shift;
    int64_t *pos = j->count;
    if (j->src_i) {
        for (int64_t i = j->lo; i < j->hi; i++) {
            uint64_t k = j->src_k[i];
            int64_t p = pos[(k >> shift) & mask]++;
            j->dst_k[p] = k;
            j->dst_i[p] = j->src_i[i];
        }
    } else if (!j->pay) {
        for (int64_t i = j->lo; i < j->hi; i++) {
            uint64_t k = j->src_k[i];
            int64_t p = pos[(k >> shift) & mask]++;
            j->dst_k[p] = k;
            j->dst_i[p] = (uint32_t)i;
        }
    } else {
        /* fused: the rows carried on are positions; the payload columns follow each block */
        const payload *pay = j->pay;
        uint32_t to[MOVE_BLOCK];
        for (int64_t i0 = j->lo; i0 < j->hi; i0 += MOVE_BLOCK) {
            int m = j->hi - i0 < MOVE_BLOCK ? (int)(j->hi - i0) : MOVE_BLOCK;
            for (int b = 0; b < m; b++) {
                uint64_t k = j->src_k[i0 + b];
                int64_t p = pos[(k >> shift) & mask]++;
                j->dst_k[p] = k;
                j->dst_i[p] = (uint32_t)p;
                to[b] = (uint32_t)p;
            }
            if (pay->origin) for (int b = 0; b < m; b++) pay->origin[to[b]] = (uint32_t)(i0 + b);
            for (int c = 0; c < pay->ncols; c++) move_values(pay, c, i0, to, m);
        }
    }
    return NULL;
}

typedef struct {
    msd_task *items;
    int64_t len, cap;
} task_list;

static int add_task(task_list *t, msd_task task)
{
    if (t->len == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : 4096;
        msd_task *grown = realloc(t->items, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        t->items = grown;
        t->cap = cap;
    }
    t->items[t->len++] = task;
    return 0;
}

/* One MSD digit of a segment too big for one thread: each thread counts and scatters its
 * contiguous share (its rows of a digit land after every earlier thread's, so the pass is
 * stable); each bucket is then split again the same way while it is big, else queued.
 * `rows_implicit`: buffer buf has no rows yet (row i at position i). */
static int msd_parallel(const msd_ctx *c, pass_job *jobs, int threads, int buf, int rows_implicit,
                        int64_t lo, int64_t hi, int bits, int64_t big, task_list *tasks)
{
    const int64_t n = hi - lo;
    while (bits > 0) {
        /* the fused first pass writes more streams (keys, rows, payload): fewer buckets */
        int top = rows_implicit && c->pay && c->pay->ncols ? FUSED_DIGIT_BITS : DIGIT_BITS;
        int width = bits < top ? bits : top;
        int shift = bits - width;
        for (int t = 0; t < threads; t++) {
            pass_job *j = &jobs[t];
            j->src_k = c->k[buf];
            j->src_i = rows_implicit ? NULL : c->r[buf];
            j->dst_k = c->k[1 - buf];
            j->dst_i = c->r[1 - buf];
            j->shift = shift;
            j->width = width;
            j->lo = lo + n * t / threads;
            j->hi = lo + n * (t + 1) / threads;
            j->pay = rows_implicit ? c->pay : NULL;
        }
        run_jobs(count_thread, jobs, sizeof jobs[0], threads);
        int buckets = 1 << width;
        int64_t sizes[BUCKETS];
        int single = 0;
        for (int d = 0; d < buckets; d++) {
            sizes[d] = 0;
            for (int t = 0; t < threads; t++) sizes[d] += jobs[t].count[d];
            single |= sizes[d] == n;
        }
        if (single) { bits = shift; continue; }       /* one digit: nothing moves */
        int64_t sum = lo;
        for (int d = 0; d < buckets; d++) {
            for (int t = 0; t < threads; t++) {
                int64_t cnt = jobs[t].count[d];
                jobs[t].count[d] = sum;
                sum += cnt;
            }
        }
        run_jobs(scatter_thread, jobs, sizeof jobs[0], threads);
        int64_t start = lo;
        for (int d = 0; d < buckets; d++) {
            int64_t size = sizes[d];
            if (size > big && shift > 0) {
                if (msd_parallel(c, jobs, threads, 1 - buf, 0, start, start + size, shift, big, tasks) < 0) return -1;
            } else if (size) {
                if (add_task(tasks, (msd_task){1 - buf, shift, start, start + size}) < 0) return -1;
            }
            start += size;
        }
        return 0;
    }
    /* every key of the segment is equal: it is in order already */
    return add_task(tasks, (msd_task){buf, 0, lo, hi}) < 0 ? -1 : (rows_implicit ? 1 : 0);
}

typedef struct {
    const msd_ctx *c;
    const msd_task *tasks;
    int64_t first, last;
} seq_job;

static void *seq_thread(void *arg)
{
    seq_job *j = arg;
    for (int64_t t = j->first; t < j->last; t++) {
        const msd_task *task = &j->tasks[t];
        msd_sequential(j->c, task->buf, task->lo, task->hi, task->bits);
    }
    return NULL;
}

/* Sorts the n words in c->k[0] (rows in c->r[0], or implicit when rows_implicit) stably by
 * their low `bits` bits; writes the rows in order to c->dest32 / c->dest64.  0; 1 when every
 * word was equal and nothing moved (the rows written are 0..n-1, c->pay untouched); -1 when
 * out of memory. */
static int sort_word(const msd_ctx *c, int64_t n, int bits, int rows_implicit, int threads)
{
    pass_job *jobs = malloc((size_t)threads * sizeof *jobs);
    task_list tasks = {NULL, 0, 0};
    if (!jobs) return -1;
    /* segments above `big` rows get another threaded digit; the rest are shared out */
    int64_t big = threads > 1 ? n / (4 * (int64_t)threads) : n;
    if (big < (1 << 16)) big = 1 << 16;
    int rc = msd_parallel(c, jobs, threads, 0, rows_implicit, 0, n, bits, big, &tasks);
    free(jobs);
    if (rc < 0) { free(tasks.items); return -1; }
    if (rc == 1) {                                     /* all equal, rows never materialised */
        emit_rows(c, NULL, 0, n);
        free(tasks.items);
        return 1;
    }
    /* tasks are disjoint: give each thread a run of them holding about n / threads rows */
    seq_job sj[MAX_THREADS];
    int64_t t0 = 0, acc = 0;
    for (int t = 0; t < threads; t++) {
        int64_t goal = n * (t + 1) / threads, t1 = t0;
        while (t1 < tasks.len && (acc < goal || t == threads - 1)) {
            acc += tasks.items[t1].hi - tasks.items[t1].lo;
            t1++;
        }
        sj[t] = (seq_job){c, tasks.items, t0, t1};
        t0 = t1;
    }
    run_jobs(seq_thread, sj, sizeof sj[0], threads);
    free(tasks.items);
    return 0;
}

/* ---- top-N: one pass keeping the smallest (word, row) pairs seen so far */

typedef struct {
    uint64_t key;
    uint32_t row;
} cand;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->row < b->row ? -1 : a->row > b->row;
}

typedef struct {
    const key_col *cols;
    int ncols;
    int64_t lo, hi, limit, cap;
    cand *buf;
    int64_t kept;
} topn_job;

/* ---- the bar as a plain comparison on the raw column (one key, no NULLs, keys as they are)
 *
 * A row enters the candidates only when its key is below the bar.  For one float64 or int64
 * key without NULLs that is one comparison of the stored value with a threshold, so blocks of
 * rows are first tested with a loop the compiler vectorises, and only a block with a row that
 * passes is walked row by row.  After the first few thousand rows almost no block does. */

#define BAR_BLOCK 256

static int64_t bar_skips;     /* blocks skipped by the bar test, for velaria_sort_bar_skips */

enum { BAR_NONE, BAR_NOTHING, BAR_F_LT, BAR_F_GT_OR_NAN, BAR_F_NOT_NAN, BAR_I_LT, BAR_I_GT };

typedef struct {
    int test;                 /* BAR_*: how a value is compared with the threshold */
    double f;
    int64_t i;
} raw_bar;

/* The double whose order key (col_key, ascending) is k; k is not NaN's key. */
static double key_double(uint64_t k)
{
    uint64_t bits = (k >> 63) ? (k & ~((uint64_t)1 << 63)) : ~k;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* The test on the stored value equivalent to col_key(c, r) < bar. */
static raw_bar raw_bar_of(const key_col *c, uint64_t bar)
{
    raw_bar b = {BAR_NONE, 0.0, 0};
    const uint64_t sign = (uint64_t)1 << 63;
    if (c->kind == KIND_I64) {
        if (!c->descending) { b.test = BAR_I_LT; b.i = (int64_t)(bar ^ sign); }
        else { b.test = BAR_I_GT; b.i = (int64_t)(~bar ^ sign); }
    } else if (c->kind == KIND_F64) {
        uint64_t k = c->descending ? ~bar : bar;     /* the bar in ascending key terms */
        if (!c->descending) {
            if (k == ~(uint64_t)0) b.test = BAR_F_NOT_NAN;   /* below NaN: any number */
            else { b.test = BAR_F_LT; b.f = key_double(k); }
        } else if (k != ~(uint64_t)0) {
            b.test = BAR_F_GT_OR_NAN; b.f = key_double(k);
        } else {
            b.test = BAR_NOTHING;       /* the bar is NaN, which comes first: nothing is below */
        }
    }
    return b;
}

/* 1 when some value of [lo, hi) may pass the bar (a cheap superset test, vectorised). */
static int block_may_pass(const key_col *c, const raw_bar *b, int64_t lo, int64_t hi)
{
    int any = 0;
    if (b->test == BAR_NOTHING) return 0;
    if (c->kind == KIND_F64) {
        const double *v = (const double *)c->data;
        const double t = b->f;
        if (b->test == BAR_F_LT) for (int64_t i = lo; i < hi; i++) any |= v[i] < t;
        else if (b->test == BAR_F_GT_OR_NAN) for (int64_t i = lo; i < hi; i++) any |= !(v[i] <= t);
        else for (int64_t i = lo; i < hi; i++) any |= v[i] == v[i];
    } else {
        const int64_t *v = (const int64_t *)c->data;
        const int64_t t = b->i;
        if (b->test == BAR_I_LT) for (int64_t i = lo; i < hi; i++) any |= v[i] < t;
        else for (int64_t i = lo; i < hi; i++) any |= v[i] > t;
    }
    return any;
}

/* Each thread keeps a buffer of candidates; when it fills up, it is sorted and cut to the
 * `limit` smallest, whose largest word becomes the bar: a later row (a larger row number)
 * can only enter with a strictly smaller word.  So ties keep the earliest rows. */
static void *topn_thread(void *arg)
{
    topn_job *j = arg;
    int64_t m = 0;
    int full = 0;
    uint64_t bar = 0;
    const key_col *c0 = &j->cols[0];
    const int raw = j->ncols == 1 && !c0->valid && c0->min == 0 && c0->shift == 0
                    && (c0->kind == KIND_F64 || c0->kind == KIND_I64);
    raw_bar rb = {BAR_NONE, 0.0, 0};
    int64_t skipped = 0;
    for (int64_t lo = j->lo; lo < j->hi; lo += BAR_BLOCK) {
        int64_t hi = lo + BAR_BLOCK < j->hi ? lo + BAR_BLOCK : j->hi;
        if (full && raw && !block_may_pass(c0, &rb, lo, hi)) { skipped++; continue; }
        for (int64_t i = lo; i < hi; i++) {
            uint64_t w = 0;
            for (int c = 0; c < j->ncols; c++) w |= col_field(&j->cols[c], i) << j->cols[c].shift;
            if (full && w >= bar) continue;
            j->buf[m].key = w;
            j->buf[m].row = (uint32_t)i;
            if (++m == j->cap) {
                qsort(j->buf, (size_t)m, sizeof *j->buf, cand_cmp);
                m = j->limit;
                bar = j->buf[m - 1].key;
                full = 1;
                if (raw) rb = raw_bar_of(c0, bar);
            }
        }
    }
    qsort(j->buf, (size_t)m, sizeof *j->buf, cand_cmp);
    j->kept = m < j->limit ? m : j->limit;
    __atomic_fetch_add(&bar_skips, skipped, __ATOMIC_RELAXED);
    return NULL;
}

/* The first `limit` rows of the stable order of the words packed from cols (one word).
 * Returns how many were written to out, or -1 when out of memory. */
static int64_t top_n(const key_col *cols, int ncols, int64_t n, int64_t limit, int threads, int64_t *out)
{
    int64_t cap = 2 * limit > limit + 1024 ? 2 * limit : limit + 1024;
    cand *buf = malloc((size_t)(cap * threads) * sizeof *buf);
    if (!buf) return -1;
    topn_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (topn_job){cols, ncols, n * t / threads, n * (t + 1) / threads, limit, cap, buf + cap * t, 0};
    run_jobs(topn_thread, jobs, sizeof jobs[0], threads);
    /* every thread's best, side by side, sorted together */
    int64_t m = 0;
    for (int t = 0; t < threads; t++) {
        memmove(buf + m, jobs[t].buf, (size_t)jobs[t].kept * sizeof *buf);
        m += jobs[t].kept;
    }
    qsort(buf, (size_t)m, sizeof *buf, cand_cmp);
    int64_t got = m < limit ? m : limit;
    for (int64_t i = 0; i < got; i++) out[i] = buf[i].row;
    free(buf);
    return got;
}

/* ---- the payload's output: a gather by the final positions, threaded */

typedef struct {
    const payload *pay;
    const uint32_t *pos32;    /* the output's positions: in the first pass's output when moved */
    const int64_t *pos64;     /* or rows of the input (pos32 NULL) */
    int moved;                /* 1: read pay->moved (and pay->origin); 0: read pay->src */
    int64_t *out;             /* NULL, or the rows to write (from pos32) */
    int64_t lo, hi;
} gather_job;

static void *gather_thread(void *arg)
{
    gather_job *j = arg;
    const payload *pay = j->pay;
    int64_t at[MOVE_BLOCK];
    for (int64_t i0 = j->lo; i0 < j->hi; i0 += MOVE_BLOCK) {
        int m = j->hi - i0 < MOVE_BLOCK ? (int)(j->hi - i0) : MOVE_BLOCK;
        if (j->pos32) for (int b = 0; b < m; b++) at[b] = j->pos32[i0 + b];
        else for (int b = 0; b < m; b++) at[b] = j->pos64[i0 + b];
        if (j->out) {
            if (j->moved && pay->origin) for (int b = 0; b < m; b++) j->out[i0 + b] = pay->origin[at[b]];
            else for (int b = 0; b < m; b++) j->out[i0 + b] = at[b];
        }
        for (int c = 0; c < pay->ncols; c++) {
            const void *from = j->moved ? pay->moved[c] : pay->src[c];
#define GATHER_AS(T) do { const T *a = from; T *d = (T *)pay->dst[c] + i0; \
                            for (int b = 0; b < m; b++) d[b] = a[at[b]]; } while (0)
            switch (pay->width[c]) {
            case 8: GATHER_AS(uint64_t); break;
            case 4: GATHER_AS(uint32_t); break;
            case 2: GATHER_AS(uint16_t); break;
            default: GATHER_AS(uint8_t); break;
            }
#undef GATHER_AS
        }
    }
    return NULL;
}

static void gather_payload(const payload *pay, const uint32_t *pos32, const int64_t *pos64, int moved,
                           int64_t *out, int64_t limit, int threads)
{
    gather_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (gather_job){pay, pos32, pos64, moved, out, limit * t / threads, limit * (t + 1) / threads};
    run_jobs(gather_thread, jobs, sizeof jobs[0], threads);
}

/* The sort behind velaria_sort_rows and velaria_sort_rows_take: rows to out (NULL when pay
 * is given and the rows are not wanted), pay's columns gathered in that order. */
static int64_t sort_rows_impl(int ncols, const int *kinds, const void *const *data,
                              const uint8_t *const *valid, const int *descending, const int *nulls_first,
                              int64_t n, int64_t limit, int threads, int64_t *out, payload *pay)
{
    if (n < 0 || ncols < 0 || ncols > MAX_COLS) return -2;
    if (n >= ((int64_t)1 << 32)) return -2;
    if (limit < 0 || limit > n) limit = n;
    if (limit == 0 || n == 0) return 0;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (n < 4096 * (int64_t)threads) threads = 1;       /* a thread costs more than it saves */

    key_col cols[2 * MAX_COLS];
    int used = 0;
    int small_limit = limit <= TOP_N_MAX && limit < n / 8;
    /* the paths that give rows first and gather the payload by them afterwards write the rows
     * here when the caller wants none */
    int64_t *rows_out = out;
    int64_t result = -1;
    int words = 0;
    if (!out && (small_limit || !pay)) {
        rows_out = big_alloc((size_t)limit * 8);
        if (!rows_out) return -1;
    }
    if (small_limit && ncols == 1 && (!valid || !valid[0])) {
        /* one key without NULLs: its keys as they are (no range pass), one word of 64 bits */
        cols[0] = (key_col){kinds[0], descending[0] != 0, nulls_first[0] != 0, data[0], NULL, 0, 64, 0};
        result = top_n(cols, 1, n, limit, threads, rows_out);
        goto rows_then_payload;
    }
    for (int c = 0; c < ncols; c++) {
        key_col col = {kinds[c], descending[c] != 0, nulls_first[c] != 0, data[c],
                       valid ? valid[c] : NULL, 0, 0, 0};
        measure_col(&col, n, threads);
        if (col.valid)
            cols[used++] = (key_col){KIND_NULL_RANK, 0, col.nulls_first, NULL, col.valid, 0, 1, 0};
        if (col.bits) cols[used++] = col;             /* a constant column orders nothing */
    }
    /* words: runs of columns whose fields fit 64 bits, grouped from the least significant */
    int word_first[2 * MAX_COLS], word_bits[2 * MAX_COLS];
    for (int c = used - 1; c >= 0; ) {
        int bits = 0, first = c;
        while (first >= 0 && bits + cols[first].bits <= 64) {
            cols[first].shift = bits;
            bits += cols[first].bits;
            first--;
        }
        word_first[words] = first + 1;
        word_bits[words] = bits;
        words++;
        c = first;
    }
    if (!rows_out && (words != 1 || small_limit)) {   /* rows first, then the payload */
        rows_out = big_alloc((size_t)limit * 8);
        if (!rows_out) return -1;
    }
    if (words == 0) {                                  /* every key is constant */
        for (int64_t i = 0; i < limit; i++) rows_out[i] = i;
        result = limit;
        goto rows_then_payload;
    }
    if (words == 1 && small_limit) {
        result = top_n(cols, used, n, limit, threads, rows_out);
        goto rows_then_payload;
    }

    /* word-level LSD: sort by the least significant word, then stably by each next one
     * (gathered in the current order); rows rotate through three arrays: the order so far,
     * the scratch, and the next order.  A fused single-word sort ends in positions (rows[2]),
     * resolved by the payload gather. */
    int fused = pay && words == 1;
    uint64_t *k0 = big_alloc((size_t)n * 8), *k1 = big_alloc((size_t)n * 8);
    uint32_t *rows[3] = {big_alloc((size_t)n * 4), big_alloc((size_t)n * 4),
                         words > 1 || fused ? big_alloc((size_t)n * 4) : NULL};
    int64_t *full = limit < n && !fused ? big_alloc((size_t)n * 8) : rows_out;
    int ok = k0 && k1 && rows[0] && rows[1] && ((words == 1 && !fused) || rows[2]) && (fused || full);
    if (fused && ok) {
        pay->origin = out ? big_alloc((size_t)n * 4) : NULL;
        ok = !out || pay->origin;
        for (int c = 0; c < pay->ncols; c++) {
            pay->moved[c] = ok ? big_alloc((size_t)n * (size_t)pay->width[c]) : NULL;
            ok = ok && pay->moved[c];
        }
    }
    if (ok) {
        int order = -1, rc = 0;                        /* rows[order]: the order so far */
        for (int w = 0; w < words && ok; w++) {
            int first = word_first[w];
            int last_col = w == 0 ? used - 1 : word_first[w - 1] - 1;
            int in = order < 0 ? 0 : order, scratch = (in + 1) % 3, next = (in + 2) % 3;
            pack_words(cols + first, last_col - first + 1, order < 0 ? NULL : rows[order], k0, n, threads);
            int final = w == words - 1;
            msd_ctx c = {{k0, k1}, {rows[in], rows[scratch]}, final && !fused ? NULL : rows[next],
                         final && !fused ? full : NULL, fused ? pay : NULL};
            rc = sort_word(&c, n, word_bits[w], order < 0, threads);
            ok = rc >= 0;
            order = next;
        }
        if (ok && fused) {
            /* positions of the first pass (rc 0), or rows when nothing moved (rc 1) */
            gather_payload(pay, rows[order], NULL, rc == 0, out, limit, threads);
            result = limit;
        } else if (ok) {
            if (full != rows_out) memcpy(rows_out, full, (size_t)limit * sizeof *rows_out);
            result = limit;
        }
    }
    big_free(k0, (size_t)n * 8);
    big_free(k1, (size_t)n * 8);
    for (int i = 0; i < 3; i++) big_free(rows[i], (size_t)n * 4);
    if (full != rows_out) big_free(full, (size_t)n * 8);
    if (fused) {
        big_free(pay->origin, (size_t)n * 4);
        for (int c = 0; c < pay->ncols; c++) big_free(pay->moved[c], (size_t)n * (size_t)pay->width[c]);
    }
    if (fused || result < 0) {
        if (rows_out && rows_out != out) big_free(rows_out, (size_t)limit * 8);
        return result;
    }

rows_then_payload:
    if (pay && result > 0) gather_payload(pay, NULL, rows_out, 0, NULL, result, threads);
    if (rows_out != out) big_free(rows_out, (size_t)limit * 8);
    return result;
}

/* Stable ORDER BY over `ncols` key columns (most significant first) of n rows.  Column c is
 * `kinds[c]` (0: uint64 keys as given, 1: int64, 2: float64 -- NaN above every number, all
 * NaNs tied, -0.0 tied with 0.0), `valid[c]` (one byte per row, 0 = NULL; may be NULL),
 * `descending[c]` (reverses the non-NULL values; ties keep input order) and `nulls_first[c]`.
 * Writes the row numbers of the first min(limit, n) rows of the order (limit < 0: all n) to
 * out and returns how many; -1 when out of memory, -2 for n >= 2^32 or too many columns. */
int64_t velaria_sort_rows(int ncols, const int *kinds, const void *const *data,
                          const uint8_t *const *valid, const int *descending, const int *nulls_first,
                          int64_t n, int64_t limit, int threads, int64_t *out)
{
    return sort_rows_impl(ncols, kinds, data, valid, descending, nulls_first, n, limit, threads, out, NULL);
}

/* velaria_sort_rows, and the `npay` columns pay[c] (fixed width, pay_width[c] bytes a value:
 * 1, 2, 4 or 8) written in the sorted order to pay_out[c] (min(limit, n) values each).  out may
 * be NULL when the row numbers are not wanted.  Same return values; -2 also for a bad width
 * or more than MAX_COLS payload columns. */
int64_t velaria_sort_rows_take(int ncols, const int *kinds, const void *const *data,
                               const uint8_t *const *valid, const int *descending, const int *nulls_first,
                               int64_t n, int64_t limit, int threads, int64_t *out,
                               int npay, const void *const *pay, const int *pay_width, void *const *pay_out)
{
    if (npay < 0 || npay > MAX_COLS) return -2;
    for (int c = 0; c < npay; c++)
        if (pay_width[c] != 1 && pay_width[c] != 2 && pay_width[c] != 4 && pay_width[c] != 8) return -2;
    void *moved[MAX_COLS];
    payload p = {npay, pay, pay_width, pay_out, moved, NULL};
    return sort_rows_impl(ncols, kinds, data, valid, descending, nulls_first, n, limit, threads, out, &p);
}

/* How many blocks of BAR_BLOCK rows the LIMIT pass has skipped with its vectorised bar test,
 * since the module was loaded (tests check that the fast test runs). */
int64_t velaria_sort_bar_skips(void)
{
    return __atomic_load_n(&bar_skips, __ATOMIC_RELAXED);
}
