/* Hash equi-join on int64 keys (the accelerated hash_join's C path; accel/join_hash.py drives
 * it and keeps the reference output order).  Plain C, no SIMD: the work is random memory
 * access, one probe per row.
 *
 * The build side's distinct keys are numbered in an open-addressing table (linear probing,
 * Fibonacci hashing, at most half full) held in one caller-owned array of 2**bits slots of two
 * int64 each: slots[2s] a key, slots[2s + 1] its number (-1: empty), so a probe touches one
 * cache line.  Build rows are then bucketed by number (a stable counting sort), so the rows of
 * one key sit together in row order; the probe side looks each key up and copies the bucket of
 * its number.  When the build keys span a small range, a bitmap of the keys present (one bit
 * per value of the range, small enough to stay in cache) answers most misses of a selective
 * join without touching the table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if !defined(_WIN32)
#include <pthread.h>
#define VELARIA_THREADS 1
#endif

#define MAX_THREADS 64
/* fewer probe rows than this per thread are not worth a thread */
#define MIN_ROWS_PER_THREAD (1 << 16)

#define PREFETCH_AHEAD 16
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* A probe's answer for row i: its build number g (-1: no match) into out_gids, counted in
 * counts[g] when counts is given (atomically when `shared`: several threads probe at once).
 * Returns 1 for a match. */
static inline int64_t emit_match(int64_t g, int64_t i, int64_t *out_gids, int64_t *counts, int shared)
{
    out_gids[i] = g;
    if (g < 0)
        return 0;
    if (counts) {
#if defined(VELARIA_THREADS)
        if (shared)
            __atomic_fetch_add(&counts[g], 1, __ATOMIC_RELAXED);
        else
#endif
            counts[g]++;
    }
    return 1;
}

static inline uint64_t slot_of(int64_t k, int bits)
{
    return bits ? ((uint64_t)k * 0x9E3779B97F4A7C15ull) >> (64 - bits) : 0;
}

/* out_gids[i] = the number of keys[i] (keys numbered 0, 1, ... in first-appearance order), -1
 * for a row whose valid[i] is 0 (a NULL key never matches).  `valid` may be NULL (all valid).
 * The caller sizes the table: 2**bits >= 2 * n.  Returns the count of distinct keys. */
int64_t velaria_join_build(const int64_t *keys, const uint8_t *valid, int64_t n,
                           int64_t *slots, int bits, int64_t *out_gids)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    int64_t next = 0;
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) {
            out_gids[i] = -1;
            continue;
        }
        const int64_t k = keys[i];
        uint64_t s = slot_of(k, bits);
        for (;;) {
            int64_t g = slots[2 * s + 1];
            if (g < 0) {
                slots[2 * s] = k;
                slots[2 * s + 1] = g = next++;
            } else if (slots[2 * s] != k) {
                s = (s + 1) & mask;
                continue;
            }
            out_gids[i] = g;
            break;
        }
    }
    return next;
}

/* Set bit (keys[i] - lo) of `bitmap` for every valid row (the caller zeroed it and made it
 * cover every valid key). */
void velaria_join_bitmap(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, uint64_t *bitmap)
{
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i])
            continue;
        const uint64_t b = (uint64_t)(keys[i] - lo);
        bitmap[b >> 6] |= (uint64_t)1 << (b & 63);
    }
}

static inline int bitmap_has(const uint64_t *bitmap, int64_t lo, int64_t span, int64_t k)
{
    const uint64_t b = (uint64_t)k - (uint64_t)lo;
    return b < (uint64_t)span && ((bitmap[b >> 6] >> (b & 63)) & 1);
}

static inline int64_t probe_slot(const int64_t *slots, uint64_t mask, int bits, int64_t k)
{
    int64_t g;
    uint64_t s = slot_of(k, bits);
    while ((g = slots[2 * s + 1]) >= 0 && slots[2 * s] != k)
        s = (s + 1) & mask;
    return g;
}

/* One thread's share of a probe: rows [begin, end) of the probe keys. */
typedef struct {
    const int64_t *keys;
    const uint8_t *valid;
    const int64_t *slots;       /* hash table (velaria_join_build), or NULL */
    int bits;
    const int32_t *lut;         /* dense table (velaria_join_build_dense), or NULL */
    const uint64_t *bitmap;     /* may be NULL */
    int64_t lo, span;
    int64_t *out_gids, *counts;
    int shared;
    int64_t begin, end, found;
} lookup_job;

/* The hash table probe of rows [begin, end).  With a bitmap, only the rows whose bit is set
 * probe the table; their table lines are prefetched as they pass the bitmap and probed
 * PREFETCH_AHEAD passing rows later (a small ring of pending rows), so a selective join does
 * not wait on a cache miss per match. */
static int64_t lookup_hash(const lookup_job *j)
{
    const int64_t *keys = j->keys, *slots = j->slots;
    const uint8_t *valid = j->valid;
    const int bits = j->bits;
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    int64_t found = 0;
    if (j->bitmap) {
        int64_t ring[PREFETCH_AHEAD];
        int64_t pending = 0;
        for (int64_t i = j->begin; i < j->end; i++) {
            const int64_t k = keys[i];
            if ((valid && !valid[i]) || !bitmap_has(j->bitmap, j->lo, j->span, k)) {
                j->out_gids[i] = -1;
                continue;
            }
            PREFETCH(&slots[2 * slot_of(k, bits)]);
            int64_t *slot = &ring[pending % PREFETCH_AHEAD];
            if (pending >= PREFETCH_AHEAD)          /* the row that passed PREFETCH_AHEAD rows ago */
                found += emit_match(probe_slot(slots, mask, bits, keys[*slot]), *slot, j->out_gids, j->counts,
                                    j->shared);
            *slot = i;
            pending++;
        }
        const int64_t first = pending > PREFETCH_AHEAD ? pending - PREFETCH_AHEAD : 0;
        for (int64_t p = first; p < pending; p++) {
            const int64_t r = ring[p % PREFETCH_AHEAD];
            found += emit_match(probe_slot(slots, mask, bits, keys[r]), r, j->out_gids, j->counts, j->shared);
        }
        return found;
    }
    for (int64_t i = j->begin; i < j->end; i++) {
        if (i + PREFETCH_AHEAD < j->end)   /* the table line a later row will read */
            PREFETCH(&slots[2 * slot_of(keys[i + PREFETCH_AHEAD], bits)]);
        if (valid && !valid[i]) {
            j->out_gids[i] = -1;
            continue;
        }
        found += emit_match(probe_slot(slots, mask, bits, keys[i]), i, j->out_gids, j->counts, j->shared);
    }
    return found;
}

/* The dense table probe of rows [begin, end): lut[k - lo] is the number of key k. */
static int64_t lookup_dense(const lookup_job *j)
{
    /* the fields in locals: without strict aliasing every store would reload them */
    const int64_t *keys = j->keys;
    const uint8_t *valid = j->valid;
    const int32_t *lut = j->lut;
    const uint64_t lo = (uint64_t)j->lo, span = (uint64_t)j->span;
    int64_t *out_gids = j->out_gids, *counts = j->counts;
    const int shared = j->shared;
    int64_t found = 0;
    for (int64_t i = j->begin; i < j->end; i++) {
        const uint64_t b = (uint64_t)keys[i] - lo;
        const int64_t g = ((valid && !valid[i]) || b >= span) ? -1 : lut[b];
        found += emit_match(g, i, out_gids, counts, shared);
    }
    return found;
}

static void *lookup_thread(void *arg)
{
    lookup_job *j = (lookup_job *)arg;
    j->found = j->lut ? lookup_dense(j) : lookup_hash(j);
    return NULL;
}

/* How many threads share n rows: at most `threads`, MAX_THREADS and one per MIN_ROWS_PER_THREAD
 * rows, at least one. */
static int threads_for(int64_t n, int threads)
{
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads > n / MIN_ROWS_PER_THREAD)
        threads = (int)(n / MIN_ROWS_PER_THREAD);
    return threads < 1 ? 1 : threads;
}

/* Run fn on each of `count` jobs (an array of `size`-byte structs): jobs 1.. on threads of
 * their own, job 0 on the caller's; a job whose thread cannot start runs here. */
static void run_jobs(void *(*fn)(void *), void *jobs, size_t size, int count)
{
    char *base = (char *)jobs;
#if defined(VELARIA_THREADS)
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < count; t++)
        started[t] = pthread_create(&tids[t], NULL, fn, base + t * size) == 0;
    fn(base);
    for (int t = 1; t < count; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            fn(base + t * size);
    }
#else
    for (int t = 0; t < count; t++)
        fn(base + t * size);
#endif
}

/* Probe n rows with up to `threads` threads, each a contiguous range of rows (every row's
 * answer is its own, so the output does not depend on the thread count).  Returns the count
 * of rows that found their key. */
static int64_t run_lookup(lookup_job proto, int64_t n, int64_t n_groups, int threads)
{
    threads = threads_for(n, threads);
    lookup_job jobs[MAX_THREADS];
    /* counts per thread, added up afterwards, where they are small beside the probe (an atomic
     * add per match is a locked instruction, which holds back the table reads around it) */
    int64_t *own = NULL;
    if (proto.counts && threads > 1 && n_groups <= n / threads)
        own = (int64_t *)calloc((size_t)(threads - 1) * (size_t)(n_groups ? n_groups : 1), sizeof(int64_t));
    for (int t = 0; t < threads; t++) {
        jobs[t] = proto;
        jobs[t].begin = n * t / threads;
        jobs[t].end = n * (t + 1) / threads;
        jobs[t].shared = threads > 1 && !own;
        if (own && t > 0)
            jobs[t].counts = own + (size_t)(t - 1) * (size_t)n_groups;
    }
    run_jobs(lookup_thread, jobs, sizeof(lookup_job), threads);
    int64_t found = 0;
    for (int t = 0; t < threads; t++)
        found += jobs[t].found;
    if (own) {
        for (int t = 1; t < threads; t++)
            for (int64_t g = 0; g < n_groups; g++)
                proto.counts[g] += jobs[t].counts[g];
        free(own);
    }
    return found;
}

/* out_gids[i] = the number of keys[i] in a table filled by velaria_join_build, -1 when the key
 * is absent or valid[i] is 0.  `bitmap` (may be NULL) holds the build keys' bits over
 * [lo, lo + span).  `counts` (may be NULL; n_groups entries) gets +1 per row at its number.  Up to `threads`
 * threads share the rows.  Returns the count of rows that found their key. */
int64_t velaria_join_lookup(const int64_t *keys, const uint8_t *valid, int64_t n, const int64_t *slots, int bits,
                            const uint64_t *bitmap, int64_t lo, int64_t span, int64_t *out_gids, int64_t *counts,
                            int64_t n_groups, int threads)
{
    lookup_job j = {keys, valid, slots, bits, NULL, bitmap, lo, span, out_gids, counts, 0, 0, 0, 0};
    return run_lookup(j, n, n_groups, threads);
}

/* One thread's share of velaria_join_bitmap_contains: rows [begin, end). */
typedef struct {
    const int64_t *keys;
    const uint8_t *valid;
    int64_t lo, span;
    const uint64_t *bitmap;
    uint8_t *out;
    int64_t begin, end, kept;
} contains_job;

static void *contains_thread(void *arg)
{
    contains_job *j = (contains_job *)arg;
    int64_t kept = 0;
    for (int64_t i = j->begin; i < j->end; i++) {
        const uint8_t hit = (uint8_t)((!j->valid || j->valid[i]) && bitmap_has(j->bitmap, j->lo, j->span, j->keys[i]));
        j->out[i] = hit;
        kept += hit;
    }
    j->kept = kept;
    return NULL;
}

/* out[i] = 1 when keys[i] is valid and its bit is set in `bitmap` (bits over [lo, lo + span)),
 * else 0: exact membership when the bitmap holds every key of a set.  Up to `threads` threads
 * share the rows (each row's answer is its own).  Returns the count of 1s. */
int64_t velaria_join_bitmap_contains(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int64_t span,
                                     const uint64_t *bitmap, uint8_t *out, int threads)
{
    threads = threads_for(n, threads);
    contains_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        contains_job j = {keys, valid, lo, span, bitmap, out, n * t / threads, n * (t + 1) / threads, 0};
        jobs[t] = j;
    }
    run_jobs(contains_thread, jobs, sizeof(contains_job), threads);
    int64_t kept = 0;
    for (int t = 0; t < threads; t++)
        kept += jobs[t].kept;
    return kept;
}

/* The dense variant, for build keys spanning a range a few times their count: lut[k - lo] is the
 * number of key k (-1: absent; int32, as the numbers stay below 2**31), one array read per row
 * instead of a hash probe, and sorted keys read it sequentially.  Same outputs as
 * velaria_join_build; the caller filled lut with -1 and made it cover every valid key. */
int64_t velaria_join_build_dense(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo,
                                 int32_t *lut, int64_t *out_gids)
{
    int64_t next = 0;
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) {
            out_gids[i] = -1;
            continue;
        }
        int32_t *slot = &lut[(uint64_t)keys[i] - (uint64_t)lo];
        if (*slot < 0)
            *slot = (int32_t)next++;
        out_gids[i] = *slot;
    }
    return next;
}

/* A build side tried as one whose keys are distinct (its pairs then need no numbering, see
 * velaria_join_probe_unique): lut[k - lo] = i for every valid row i.  Returns 1 when the valid
 * keys were distinct, 0 at the first repeated one (lut is then partly filled: the caller
 * clears it and numbers the keys with velaria_join_build_dense).  Rows below 2**31. */
int velaria_join_build_unique_dense(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int32_t *lut)
{
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i])
            continue;
        int32_t *slot = &lut[(uint64_t)keys[i] - (uint64_t)lo];
        if (*slot >= 0)
            return 0;
        *slot = (int32_t)i;
    }
    return 1;
}

/* The same for the hash table: slots[2s + 1] = i, the row of key slots[2s].  Returns 1 when the
 * valid keys were distinct, 0 at the first repeated one (the caller clears the table). */
int velaria_join_build_unique(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t *slots, int bits)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i])
            continue;
        const int64_t k = keys[i];
        uint64_t s = slot_of(k, bits);
        while (slots[2 * s + 1] >= 0) {
            if (slots[2 * s] == k)
                return 0;
            s = (s + 1) & mask;
        }
        slots[2 * s] = k;
        slots[2 * s + 1] = i;
    }
    return 1;
}

/* velaria_join_lookup for a table built by velaria_join_build_dense over [lo, lo + span). */
int64_t velaria_join_lookup_dense(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int64_t span,
                                  const int32_t *lut, int64_t *out_gids, int64_t *counts, int64_t n_groups,
                                  int threads)
{
    lookup_job j = {keys, valid, NULL, 0, lut, NULL, lo, span, out_gids, counts, 0, 0, 0, 0};
    return run_lookup(j, n, n_groups, threads);
}

/* Stable counting sort of the rows with gids[i] >= 0 by gid: afterwards the rows of number g
 * are order[starts[g] .. starts[g + 1]) in row order.  starts has n_groups + 1 entries. */
void velaria_join_bucket(const int64_t *gids, int64_t n, int64_t n_groups, int64_t *starts, int64_t *order)
{
    for (int64_t g = 0; g <= n_groups; g++)
        starts[g] = 0;
    for (int64_t i = 0; i < n; i++)
        if (gids[i] >= 0)
            starts[gids[i] + 1]++;
    for (int64_t g = 0; g < n_groups; g++)
        starts[g + 1] += starts[g];
    /* starts[g] doubles as the write cursor of bucket g, then is restored from its neighbour */
    for (int64_t i = 0; i < n; i++)
        if (gids[i] >= 0)
            order[starts[gids[i]]++] = i;
    for (int64_t g = n_groups; g > 0; g--)
        starts[g] = starts[g - 1];
    starts[0] = 0;
}

/* One thread's share of the pair writing (velaria_join_gather, velaria_join_scatter): rows
 * [begin, end) of the probe side, writing from output slot `pos` (gather) or with its own
 * running rank per build number `rank` (scatter). */
typedef struct {
    const int64_t *gids, *emit, *starts, *order, *cursor;
    int64_t *out_left, *out_right, *rank;
    int64_t n_groups, begin, end, pos;
} pairs_job;

/* The output slots rows [begin, end) emit, into pos. */
static void *emit_count_thread(void *arg)
{
    pairs_job *j = (pairs_job *)arg;
    int64_t total = 0;
    for (int64_t i = j->begin; i < j->end; i++)
        total += j->emit[i];
    j->pos = total;
    return NULL;
}

static void *gather_thread(void *arg)
{
    pairs_job *j = (pairs_job *)arg;
    int64_t pos = j->pos;
    for (int64_t i = j->begin; i < j->end; i++) {
        const int64_t g = j->gids[i];
        if (g >= 0) {
            for (int64_t p = j->starts[g]; p < j->starts[g + 1]; p++) {
                j->out_left[pos] = i;
                j->out_right[pos++] = j->order[p];
            }
        } else if (j->emit[i]) {
            j->out_left[pos] = i;
            j->out_right[pos++] = -1;
        }
    }
    return NULL;
}

/* Probe rows in order: row i (number gids[i]) writes the build rows of its bucket at
 * out_right[pos] and itself at out_left[pos], pos advancing by `emit[i]`; a row without a
 * match but with emit[i] == 1 (an outer join's padding) writes -1 as its right row.  The
 * outputs have sum(emit) slots.  Up to `threads` threads each take a contiguous range of probe
 * rows, starting at the slot the rows before it end at (a first pass sums each range's emit),
 * so the output is the one-thread output. */
void velaria_join_gather(const int64_t *gids, const int64_t *emit, int64_t n, const int64_t *starts,
                         const int64_t *order, int64_t *out_left, int64_t *out_right, int threads)
{
    threads = threads_for(n, threads);
    pairs_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        pairs_job j = {gids, emit, starts, order, NULL, out_left, out_right, NULL, 0,
                       n * t / threads, n * (t + 1) / threads, 0};
        jobs[t] = j;
    }
    if (threads > 1) {
        run_jobs(emit_count_thread, jobs, sizeof(pairs_job), threads);
        int64_t pos = 0;
        for (int t = 0; t < threads; t++) {       /* each range's count becomes its first slot */
            const int64_t count = jobs[t].pos;
            jobs[t].pos = pos;
            pos += count;
        }
    }
    run_jobs(gather_thread, jobs, sizeof(pairs_job), threads);
}

/* Count each build number's probe rows in [begin, end) into rank (n_groups entries, zeroed). */
static void *rank_count_thread(void *arg)
{
    pairs_job *j = (pairs_job *)arg;
    for (int64_t r = j->begin; r < j->end; r++)
        if (j->gids[r] >= 0)
            j->rank[j->gids[r]]++;
    return NULL;
}

/* Probe row r, the k-th probe row of its number g overall, goes to slot cursor[i] + k of each
 * build row i of bucket g. */
static void *scatter_thread(void *arg)
{
    pairs_job *j = (pairs_job *)arg;
    for (int64_t r = j->begin; r < j->end; r++) {
        const int64_t g = j->gids[r];
        if (g < 0)
            continue;
        const int64_t k = j->rank[g]++;
        for (int64_t p = j->starts[g]; p < j->starts[g + 1]; p++)
            j->out_right[j->cursor[j->order[p]] + k] = r;
    }
    return NULL;
}

/* The build side is the left: right rows r in order scatter themselves after the left rows of
 * their bucket, cursor[i] being the first output slot of left row i.  Visiting r in ascending
 * order leaves every left row's matches in right-row order.  Up to `threads` threads each take
 * a contiguous range of right rows: a first pass counts each range's rows per number, so a
 * thread knows how many rows of a number come before its range (its starting rank), and the
 * output is the one-thread output.  cursor is left unchanged.  Returns 0, or -1 when the
 * per-thread counts could not be allocated (nothing written). */
int velaria_join_scatter(const int64_t *gids, int64_t n, int64_t n_groups, const int64_t *starts,
                         const int64_t *order, const int64_t *cursor, int64_t *out, int threads)
{
    threads = threads_for(n, threads);
    /* the per-thread counts (8 bytes a thread and build number) stay within the probe answers'
     * size: many build numbers per probe row would cost more to count and combine than the
     * threads save */
    while (threads > 1 && n_groups > n / threads)
        threads--;
    int64_t *rank = (int64_t *)calloc((size_t)threads * (size_t)(n_groups ? n_groups : 1), sizeof(int64_t));
    if (!rank)
        return -1;
    pairs_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        pairs_job j = {gids, NULL, starts, order, cursor, NULL, out, rank + (size_t)t * (size_t)n_groups, n_groups,
                       n * t / threads, n * (t + 1) / threads, 0};
        jobs[t] = j;
    }
    if (threads > 1) {
        run_jobs(rank_count_thread, jobs, sizeof(pairs_job), threads);
        for (int64_t g = 0; g < n_groups; g++) {     /* counts -> each thread's starting rank */
            int64_t before = 0;
            for (int t = 0; t < threads; t++) {
                const int64_t count = jobs[t].rank[g];
                jobs[t].rank[g] = before;
                before += count;
            }
        }
    }
    run_jobs(scatter_thread, jobs, sizeof(pairs_job), threads);
    free(rank);
    return 0;
}

/* ---- a build side whose keys are all distinct (a dimension joined on its key, a 1:1 join)
 *
 * Every number then has one build row, so the pairs need no buckets: a probe row writes
 * itself and that row, or (outer) a -1.  `rows` maps a number to its build row; NULL when the
 * number is the row itself (every build row valid: numbers follow the rows). */

/* One thread's share of velaria_join_probe_unique: probe rows [begin, end), whose pairs it
 * writes from slot `begin` (a range never writes past its own end: it has at most one pair per
 * row); `found` counts them. */
typedef struct {
    lookup_job look;            /* the table, and this range's keys as rows [0, end - begin) */
    const int64_t *rows;
    int64_t *out_left, *out_right;
    uint8_t *hit;               /* per number: some probe row found it (may be NULL) */
    int outer;
    int64_t begin, found;
} unique_job;

/* Several threads may mark one number: a relaxed atomic store of the same 1 (a plain byte store) */
static inline void mark_hit(uint8_t *hit, int64_t g)
{
    __atomic_store_n(&hit[g], (uint8_t)1, __ATOMIC_RELAXED);
}

static inline int64_t row_of(const int64_t *rows, int64_t g)
{
    return rows ? rows[g] : g;
}

/* The dense table without a branch on the answer (half of a selective join's rows miss, at
 * random: a mispredicted branch per row would wait on its table read): each row reads a
 * table entry (entry 0 for a key out of range), keeps -1 where it has none, writes its pair
 * and moves the output slot on only when it matched.  The fields are copied to locals: the
 * module is built without strict aliasing, so every store would reload them. */
static int64_t unique_dense(const unique_job *j)
{
    const int64_t *keys = j->look.keys, *rows = j->rows;
    const uint8_t *valid = j->look.valid;
    const int32_t *lut = j->look.lut;
    const uint64_t lo = (uint64_t)j->look.lo, span = (uint64_t)j->look.span;
    const int64_t len = j->look.end, b0 = j->begin;
    int64_t *left = j->out_left + b0, *right = j->out_right + b0;
    uint8_t *hit = j->hit;
    int64_t pos = 0;
    if (!j->outer && !hit && !rows) {           /* the common inner join: build numbers are rows */
        for (int64_t i = 0; i < len; i++) {
            const uint64_t b = (uint64_t)keys[i] - lo;
            const int ok = b < span && (!valid || valid[i]);
            const int64_t g = lut[ok ? b : 0];
            left[pos] = b0 + i;
            right[pos] = g;
            pos += ok & (g >= 0);
        }
        return pos;
    }
    if (j->outer && !hit && !rows) {            /* the LEFT join's twin: every row at its slot */
        for (int64_t i = 0; i < len; i++) {
            const uint64_t b = (uint64_t)keys[i] - lo;
            const int ok = b < span && (!valid || valid[i]);
            const int64_t g = lut[ok ? b : 0];
            left[i] = b0 + i;
            right[i] = ok ? g : -1;
        }
        return len;
    }
    const int outer = j->outer;
    for (int64_t i = 0; i < len; i++) {
        const uint64_t b = (uint64_t)keys[i] - lo;
        const int ok = b < span && (!valid || valid[i]);
        const int64_t entry = lut[ok ? b : 0];
        const int64_t g = ok ? entry : -1;
        const int64_t row = row_of(rows, g < 0 ? 0 : g);
        if (hit && g >= 0)
            mark_hit(hit, g);
        if (outer) {
            left[i] = b0 + i;
            right[i] = g < 0 ? -1 : row;
        } else {
            left[pos] = b0 + i;
            right[pos] = row;
            pos += g >= 0;
        }
    }
    return outer ? len : pos;
}

/* The hash table: the range's numbers probed into its own output slots, then turned into
 * pairs in place (a pair's slot never passes its row's). */
static int64_t unique_hash(unique_job *j)
{
    lookup_job *l = &j->look;
    const int64_t len = l->end, b0 = j->begin;
    int64_t *left = j->out_left + b0, *right = j->out_right + b0;
    l->out_gids = right;
    lookup_hash(l);
    const int64_t *rows = j->rows;
    uint8_t *hit = j->hit;
    const int outer = j->outer;
    int64_t pos = 0;
    for (int64_t i = 0; i < len; i++) {
        const int64_t g = right[i];
        if (g >= 0 && hit)
            mark_hit(hit, g);
        if (outer) {
            left[i] = b0 + i;
            right[i] = g < 0 ? -1 : row_of(rows, g);
        } else {
            left[pos] = b0 + i;
            right[pos] = g >= 0 ? row_of(rows, g) : -1;
            pos += g >= 0;
        }
    }
    return outer ? len : pos;
}

static void *unique_thread(void *arg)
{
    unique_job *j = (unique_job *)arg;
    j->found = j->look.lut ? unique_dense(j) : unique_hash(j);
    return NULL;
}

/* Pairs of an equi-join whose build side (velaria_join_build / _build_dense) has distinct
 * keys, in the reference order: probe rows in order, each with its build row (`rows[g]` for
 * number g, or g itself when rows is NULL).  Inner (outer == 0): the matched probe rows only,
 * out_left the probe row and out_right the build row; outer: every probe row i at slot i, -1
 * as the build row of a row without a match.  The outputs hold n slots.  `hit` (may be NULL;
 * one byte per number, zeroed) gets 1 for every number some probe row found.  The table is
 * the hash table (`slots`, `bits`, optional `bitmap` over [lo, lo + span)) or, when `lut` is
 * given, the dense one over [lo, lo + span) (then n_groups >= 1).  Up to `threads` threads
 * each pair a contiguous range of probe rows from the range's first slot; an inner join's
 * ranges are then moved down, in order, to follow one another, so the output is the
 * one-thread output.  Returns the number of pairs written. */
int64_t velaria_join_probe_unique(const int64_t *keys, const uint8_t *valid, int64_t n, const int64_t *slots,
                                  int bits, const int32_t *lut, const uint64_t *bitmap, int64_t lo, int64_t span,
                                  const int64_t *rows, int outer, int64_t *out_left, int64_t *out_right,
                                  uint8_t *hit, int threads)
{
    threads = threads_for(n, threads);
    unique_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        const int64_t b = n * t / threads, e = n * (t + 1) / threads;
        lookup_job look = {keys + b, valid ? valid + b : NULL, slots, bits, lut, bitmap, lo, span,
                           NULL, NULL, 0, 0, e - b, 0};
        unique_job j = {look, rows, out_left, out_right, hit, outer, b, 0};
        jobs[t] = j;
    }
    run_jobs(unique_thread, jobs, sizeof(unique_job), threads);
    if (outer)
        return n;
    int64_t pos = jobs[0].found;
    for (int t = 1; t < threads; t++) {          /* each range's pairs follow the ranges before it */
        memmove(out_left + pos, out_left + jobs[t].begin, (size_t)jobs[t].found * sizeof(int64_t));
        memmove(out_right + pos, out_right + jobs[t].begin, (size_t)jobs[t].found * sizeof(int64_t));
        pos += jobs[t].found;
    }
    return pos;
}
