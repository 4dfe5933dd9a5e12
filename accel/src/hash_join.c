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
    int64_t found = 0;
    for (int64_t i = j->begin; i < j->end; i++) {
        const uint64_t b = (uint64_t)j->keys[i] - (uint64_t)j->lo;
        const int64_t g = ((j->valid && !j->valid[i]) || b >= (uint64_t)j->span) ? -1 : j->lut[b];
        found += emit_match(g, i, j->out_gids, j->counts, j->shared);
    }
    return found;
}

static void *lookup_thread(void *arg)
{
    lookup_job *j = (lookup_job *)arg;
    j->found = j->lut ? lookup_dense(j) : lookup_hash(j);
    return NULL;
}

/* Probe n rows with up to `threads` threads, each a contiguous range of rows (every row's
 * answer is its own, so the output does not depend on the thread count).  Returns the count
 * of rows that found their key. */
static int64_t run_lookup(lookup_job proto, int64_t n, int threads)
{
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads > n / MIN_ROWS_PER_THREAD)
        threads = (int)(n / MIN_ROWS_PER_THREAD);
    if (threads < 1)
        threads = 1;
    lookup_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        jobs[t] = proto;
        jobs[t].begin = n * t / threads;
        jobs[t].end = n * (t + 1) / threads;
        jobs[t].shared = threads > 1;
    }
#if defined(VELARIA_THREADS)
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, lookup_thread, &jobs[t]) == 0;
    lookup_thread(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            lookup_thread(&jobs[t]);       /* could not start a thread: do its share here */
    }
#else
    for (int t = 0; t < threads; t++)
        lookup_thread(&jobs[t]);
#endif
    int64_t found = 0;
    for (int t = 0; t < threads; t++)
        found += jobs[t].found;
    return found;
}

/* out_gids[i] = the number of keys[i] in a table filled by velaria_join_build, -1 when the key
 * is absent or valid[i] is 0.  `bitmap` (may be NULL) holds the build keys' bits over
 * [lo, lo + span).  `counts` (may be NULL) gets +1 per row at its number.  Up to `threads`
 * threads share the rows.  Returns the count of rows that found their key. */
int64_t velaria_join_lookup(const int64_t *keys, const uint8_t *valid, int64_t n, const int64_t *slots, int bits,
                            const uint64_t *bitmap, int64_t lo, int64_t span, int64_t *out_gids, int64_t *counts,
                            int threads)
{
    lookup_job j = {keys, valid, slots, bits, NULL, bitmap, lo, span, out_gids, counts, 0, 0, 0, 0};
    return run_lookup(j, n, threads);
}

/* out[i] = 1 when keys[i] is valid and its bit is set in `bitmap` (bits over [lo, lo + span)),
 * else 0: exact membership when the bitmap holds every key of a set.  Returns the count of 1s. */
int64_t velaria_join_bitmap_contains(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int64_t span,
                                     const uint64_t *bitmap, uint8_t *out)
{
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t hit = (uint8_t)((!valid || valid[i]) && bitmap_has(bitmap, lo, span, keys[i]));
        out[i] = hit;
        kept += hit;
    }
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

/* velaria_join_lookup for a table built by velaria_join_build_dense over [lo, lo + span). */
int64_t velaria_join_lookup_dense(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int64_t span,
                                  const int32_t *lut, int64_t *out_gids, int64_t *counts, int threads)
{
    lookup_job j = {keys, valid, NULL, 0, lut, NULL, lo, span, out_gids, counts, 0, 0, 0, 0};
    return run_lookup(j, n, threads);
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

/* Probe rows in order: row i (number gids[i]) writes the build rows of its bucket at out[pos],
 * pos advancing by `emit[i]`; a row without a match but with emit[i] == 1 (an outer join's
 * padding) writes -1.  out has sum(emit) slots. */
void velaria_join_gather(const int64_t *gids, const int64_t *emit, int64_t n, const int64_t *starts,
                         const int64_t *order, int64_t *out)
{
    int64_t pos = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t g = gids[i];
        if (g >= 0) {
            for (int64_t p = starts[g]; p < starts[g + 1]; p++)
                out[pos++] = order[p];
        } else if (emit[i]) {
            out[pos++] = -1;
        }
    }
}

/* The build side is the left: right rows j in order scatter themselves after the left rows of
 * their bucket, cursor[i] being the next free output slot of left row i.  Visiting j in
 * ascending order leaves every left row's matches in right-row order. */
void velaria_join_scatter(const int64_t *gids, int64_t n, const int64_t *starts, const int64_t *order,
                          int64_t *cursor, int64_t *out)
{
    for (int64_t j = 0; j < n; j++) {
        const int64_t g = gids[j];
        if (g < 0)
            continue;
        for (int64_t p = starts[g]; p < starts[g + 1]; p++)
            out[cursor[order[p]]++] = j;
    }
}
