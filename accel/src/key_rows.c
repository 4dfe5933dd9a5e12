/* Row numbers of the keys present in a key bitmap: the join key pre-filter's selection.
 *
 * velaria_bitmap_rows writes, in ascending order, the numbers of the rows whose key is valid
 * and whose bit is set in `bitmap` (bits over [lo, lo + span)), and returns how many.  One
 * branch-free pass: every row stores its number at the cursor and moves the cursor by its
 * hit (0 or 1), so a selective pre-filter costs neither a byte mask nor a second pass to find
 * the set bytes.  Up to `threads` threads take contiguous row ranges; each writes at its range's
 * start and the ranges' results are then moved together in order, so the output does not
 * depend on the thread count.  `bitmap` has at least (span + 63) / 64 + 1 words (word 0 is read
 * for keys out of range, and ignored). */
#include "velaria_accel.h"
#include <string.h>

#define KEY_ROWS_MAX_THREADS 64
#define KEY_ROWS_MIN_ROWS 65536

typedef struct {
    const int64_t *keys;
    const uint8_t *valid;
    uint64_t lo, span;
    const uint64_t *bitmap;
    int64_t *out;
    int64_t begin, end, kept;
} key_rows_job;

static void *key_rows_thread(void *arg)
{
    key_rows_job *j = (key_rows_job *)arg;
    const uint64_t *bitmap = j->bitmap;
    const uint64_t lo = j->lo, span = j->span;
    int64_t *out = j->out + j->begin;
    int64_t cnt = 0;
    if (j->valid) {
        for (int64_t i = j->begin; i < j->end; i++) {
            const uint64_t b = (uint64_t)j->keys[i] - lo;
            const uint64_t in = b < span;
            const uint64_t word = bitmap[in ? b >> 6 : 0];
            out[cnt] = i;
            cnt += (int64_t)(in & (word >> (b & 63)) & (uint64_t)(j->valid[i] != 0));
        }
    } else {
        for (int64_t i = j->begin; i < j->end; i++) {
            const uint64_t b = (uint64_t)j->keys[i] - lo;
            const uint64_t in = b < span;
            const uint64_t word = bitmap[in ? b >> 6 : 0];
            out[cnt] = i;
            cnt += (int64_t)(in & (word >> (b & 63)));
        }
    }
    j->kept = cnt;
    return NULL;
}

int64_t velaria_bitmap_rows(const int64_t *keys, const uint8_t *valid, int64_t n, int64_t lo, int64_t span,
                            const uint64_t *bitmap, int64_t *out, int threads)
{
    if (threads > KEY_ROWS_MAX_THREADS) threads = KEY_ROWS_MAX_THREADS;
    if (threads > n / KEY_ROWS_MIN_ROWS) threads = (int)(n / KEY_ROWS_MIN_ROWS);
    if (threads < 1) threads = 1;
    key_rows_job jobs[KEY_ROWS_MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        key_rows_job j = {keys, valid, (uint64_t)lo, (uint64_t)span, bitmap, out,
                          n * t / threads, n * (t + 1) / threads, 0};
        jobs[t] = j;
    }
    velaria_parallel_jobs(threads, key_rows_thread, jobs, sizeof(key_rows_job));
    int64_t total = jobs[0].kept;
    for (int t = 1; t < threads; t++) {     /* each range's rows behind the ranges before it */
        memmove(out + total, out + jobs[t].begin, (size_t)jobs[t].kept * sizeof(int64_t));
        total += jobs[t].kept;
    }
    return total;
}
