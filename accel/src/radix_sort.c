/* ORDER BY in C: a stable LSD radix argsort over several key columns, and its top-N.
 *
 * Every key column becomes an unsigned 64-bit key whose unsigned order is the reference
 * order of its values (velaria_sort_rows' comment says how each kind maps), shifted down by
 * the column's smallest key so that it needs only as many bits as its range.  Columns are
 * packed, most significant in the high bits, into as few 64-bit words as their widths allow
 * (ORDER BY k, v with k in 0..999 and v a double is a 10-bit and a 62-bit field: two words;
 * two int32-range columns: one word).  The words are sorted least significant first, each by
 * stable LSD passes of at most 11-bit digits that carry 32-bit row numbers; a pass whose digit
 * is the same for every row is skipped.  Stability makes the result the single stable order,
 * whatever the number of threads: each thread counts and scatters its own contiguous share of
 * the rows, and its rows land after every earlier thread's rows of the same digit.
 *
 * With a LIMIT of at most TOP_N_MAX rows and under an eighth of the row count (and one word),
 * one threaded pass keeps the `limit` smallest (word, row) pairs instead (top_n). */
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
#define MAX_THREADS 64
#define MAX_COLS 64
#define TOP_N_MAX 65536       /* larger LIMITs sort everything and cut */

enum { KIND_U64 = 0, KIND_I64 = 1, KIND_F64 = 2, KIND_NULL_RANK = 3 };

/* A large scratch buffer, backed by huge pages where the OS allows (fewer TLB misses in the
 * scattered radix passes). */
static void *big_alloc(size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)2 << 20;
    size_t rounded = (bytes + huge - 1) / huge * huge;
    void *p = NULL;
    if (posix_memalign(&p, huge, rounded ? rounded : huge) != 0) return NULL;
    madvise(p, rounded, MADV_HUGEPAGE);
    return p;
#else
    return malloc(bytes ? bytes : 1);
#endif
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

/* ---- one stable LSD pass over (key, row) pairs */

typedef struct {
    const uint64_t *src_k;
    const uint32_t *src_i;    /* NULL: the row number is the position */
    uint64_t *dst_k;          /* NULL: the keys are not needed after this pass */
    uint32_t *dst_i;          /* either this ... */
    int64_t *dst_out;         /* ... or the final int64 row numbers */
    int shift, width;
    int64_t lo, hi;
    int64_t count[BUCKETS];
} pass_job;

static void *count_thread(void *arg)
{
    pass_job *j = arg;
    const uint64_t mask = ((uint64_t)1 << j->width) - 1;
    memset(j->count, 0, sizeof j->count);
    for (int64_t i = j->lo; i < j->hi; i++) j->count[(j->src_k[i] >> j->shift) & mask]++;
    return NULL;
}

/* The scatter, specialised by the inliner for each combination of its flags. */
static inline void scatter(pass_job *j, int has_src_i, int keep_keys, int final)
{
    const uint64_t mask = ((uint64_t)1 << j->width) - 1;
    const int shift = j->shift;
    int64_t *pos = j->count;               /* holds the thread's start offsets by now */
    for (int64_t i = j->lo; i < j->hi; i++) {
        uint64_t k = j->src_k[i];
        uint32_t row = has_src_i ? j->src_i[i] : (uint32_t)i;
        int64_t p = pos[(k >> shift) & mask]++;
        if (keep_keys) j->dst_k[p] = k;
        if (final) j->dst_out[p] = row;
        else j->dst_i[p] = row;
    }
}

static void *scatter_thread(void *arg)
{
    pass_job *j = arg;
    int has = j->src_i != NULL, keep = j->dst_k != NULL, fin = j->dst_out != NULL;
    if (has) {
        if (keep) { if (fin) scatter(j, 1, 1, 1); else scatter(j, 1, 1, 0); }
        else      { if (fin) scatter(j, 1, 0, 1); else scatter(j, 1, 0, 0); }
    } else {
        if (keep) { if (fin) scatter(j, 0, 1, 1); else scatter(j, 0, 1, 0); }
        else      { if (fin) scatter(j, 0, 0, 1); else scatter(j, 0, 0, 0); }
    }
    return NULL;
}

/* The buffers one sort works in: two key arrays and two row arrays of n each. */
typedef struct {
    uint64_t *k[2];
    uint32_t *r[2];
    int cur;                  /* k[cur] / r[cur] hold the current order; r[cur] NULL-able */
    int has_rows;             /* r[cur] is meaningful (else row j is at position j) */
} sort_bufs;

/* Sorts the n keys in b->k[b->cur] (with their rows) by bits [0, nbits), stably.  When
 * `out` is given, the pass that finishes writes the int64 row numbers there and returns 1
 * (0 when no pass ran: the caller writes them). */
static int lsd_sort(sort_bufs *b, int64_t n, int nbits, int threads, int64_t *out)
{
    int passes = (nbits + DIGIT_BITS - 1) / DIGIT_BITS;
    pass_job *jobs = malloc((size_t)threads * sizeof *jobs);
    if (!jobs) return -1;
    /* which passes move something: decide before scattering, so the last real pass knows
     * it is last (it then writes the final row numbers and no keys) */
    int width[64 / DIGIT_BITS + 2], shift[64 / DIGIT_BITS + 2];
    for (int p = 0, s = 0; p < passes; p++) {
        width[p] = (nbits - s + (passes - p) - 1) / (passes - p);     /* even split */
        shift[p] = s;
        s += width[p];
    }
    int wrote_out = 0;
    for (int p = 0; p < passes; p++) {
        for (int t = 0; t < threads; t++) {
            pass_job *j = &jobs[t];
            j->src_k = b->k[b->cur];
            j->shift = shift[p]; j->width = width[p];
            j->lo = n * t / threads; j->hi = n * (t + 1) / threads;
        }
        run_jobs(count_thread, jobs, sizeof jobs[0], threads);
        int buckets = 1 << width[p];
        int single = 0;
        for (int d = 0; d < buckets && !single; d++) {
            int64_t total = 0;
            for (int t = 0; t < threads; t++) total += jobs[t].count[d];
            single = total == n;
        }
        if (single) continue;                          /* every row has this digit */
        /* the last digit's pass writes the final row numbers; when it is skipped, the order
         * stays in r[cur] for the caller */
        int last = (p == passes - 1);
        int64_t sum = 0;
        for (int d = 0; d < buckets; d++) {
            for (int t = 0; t < threads; t++) {
                int64_t c = jobs[t].count[d];
                jobs[t].count[d] = sum;
                sum += c;
            }
        }
        int nxt = 1 - b->cur;
        for (int t = 0; t < threads; t++) {
            pass_job *j = &jobs[t];
            j->src_i = b->has_rows ? b->r[b->cur] : NULL;
            j->dst_k = last && out ? NULL : b->k[nxt];
            j->dst_i = last && out ? NULL : b->r[nxt];
            j->dst_out = last && out ? out : NULL;
        }
        run_jobs(scatter_thread, jobs, sizeof jobs[0], threads);
        if (last && out) { wrote_out = 1; break; }
        b->cur = nxt;
        b->has_rows = 1;
    }
    free(jobs);
    return wrote_out;
}

typedef struct {
    const uint32_t *rows;
    int64_t *out;
    int64_t lo, hi;
} widen_job;

static void *widen_thread(void *arg)
{
    widen_job *j = arg;
    if (j->rows) for (int64_t i = j->lo; i < j->hi; i++) j->out[i] = j->rows[i];
    else for (int64_t i = j->lo; i < j->hi; i++) j->out[i] = i;
    return NULL;
}

/* out[i] = rows[i] (or i when rows is NULL), threaded. */
static void widen_rows(const uint32_t *rows, int64_t *out, int64_t n, int threads)
{
    widen_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++)
        jobs[t] = (widen_job){rows, out, n * t / threads, n * (t + 1) / threads};
    run_jobs(widen_thread, jobs, sizeof jobs[0], threads);
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

/* Each thread keeps a buffer of candidates; when it fills up, it is sorted and cut to the
 * `limit` smallest, whose largest word becomes the bar: a later row (a larger row number)
 * can only enter with a strictly smaller word.  So ties keep the earliest rows. */
static void *topn_thread(void *arg)
{
    topn_job *j = arg;
    int64_t m = 0;
    int full = 0;
    uint64_t bar = 0;
    for (int64_t i = j->lo; i < j->hi; i++) {
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
        }
    }
    qsort(j->buf, (size_t)m, sizeof *j->buf, cand_cmp);
    j->kept = m < j->limit ? m : j->limit;
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
    if (small_limit && ncols == 1 && (!valid || !valid[0])) {
        /* one key without NULLs: its keys as they are (no range pass), one word of 64 bits */
        cols[0] = (key_col){kinds[0], descending[0] != 0, nulls_first[0] != 0, data[0], NULL, 0, 64, 0};
        return top_n(cols, 1, n, limit, threads, out);
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
    int word_first[2 * MAX_COLS], word_bits[2 * MAX_COLS], words = 0;
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
    if (words == 0) {                                  /* every key is constant */
        widen_rows(NULL, out, limit, threads);
        return limit;
    }

    if (words == 1 && small_limit) return top_n(cols, used, n, limit, threads, out);

    sort_bufs b = {{big_alloc((size_t)n * 8), big_alloc((size_t)n * 8)}, {NULL, NULL}, 0, 0};
    int64_t result = -1;
    b.r[0] = big_alloc((size_t)n * 4);
    b.r[1] = big_alloc((size_t)n * 4);
    int64_t *full = limit < n ? big_alloc((size_t)n * 8) : out;
    if (b.k[0] && b.k[1] && b.r[0] && b.r[1] && full) {
        int ok = 1, wrote = 0;
        for (int w = 0; w < words && ok; w++) {       /* least significant word first */
            int first = word_first[w];
            int last_col = w == 0 ? used - 1 : word_first[w - 1] - 1;
            pack_words(cols + first, last_col - first + 1, b.has_rows ? b.r[b.cur] : NULL,
                       b.k[b.cur], n, threads);
            int done = lsd_sort(&b, n, word_bits[w], threads, w == words - 1 ? full : NULL);
            if (done < 0) ok = 0;
            wrote = done == 1;
        }
        if (ok) {
            if (!wrote) widen_rows(b.has_rows ? b.r[b.cur] : NULL, full, n, threads);
            if (full != out) memcpy(out, full, (size_t)limit * sizeof *out);
            result = limit;
        }
    }
    free(b.k[0]); free(b.k[1]); free(b.r[0]); free(b.r[1]);
    if (full != out) free(full);
    return result;
}
