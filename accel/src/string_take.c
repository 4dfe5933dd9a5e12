/* Gathering a string column by row index on several threads (a join's output of a text
 * column: a dimension's names repeated for every fact row).  Arrow's take copies on one
 * thread; here the rows are split into contiguous ranges, one per thread, in two passes:
 * velaria_take_str_bytes sums each range's bytes (the caller then sizes the output), then
 * velaria_take_str_copy copies each range's strings from the bytes of the ranges before it,
 * writing their offsets.  Both passes split the rows identically (same n and
 * thread count), so the output is the one-thread output.  Columns have 32-bit offsets (`wide`
 * 0: Arrow string) or 64-bit ones (`wide` 1: large_string); the output has the input's. */
#include <stdint.h>
#include <string.h>
#include "velaria_accel.h"

#define TAKE_MAX_THREADS 64
/* fewer rows than this per thread are not worth a thread */
#define TAKE_MIN_ROWS (1 << 15)

typedef struct {
    const void *offsets;        /* the input's n_values + 1 offsets */
    int wide;
    int64_t n_values;
    const uint8_t *data;
    int64_t data_len;
    const int64_t *idx;
    void *out_offsets;          /* n + 1 entries */
    uint8_t *out_data;
    int64_t begin, end, bytes, base;
    int bad;                    /* an index outside [0, n_values) */
} take_job;

static inline int64_t offset_at(const void *offsets, int wide, int64_t i)
{
    return wide ? ((const int64_t *)offsets)[i] : (int64_t)((const int32_t *)offsets)[i];
}

static inline void set_offset(void *offsets, int wide, int64_t i, int64_t v)
{
    if (wide)
        ((int64_t *)offsets)[i] = v;
    else
        ((int32_t *)offsets)[i] = (int32_t)v;
}

/* The bytes of rows [begin, end), checking every index. */
static void *bytes_thread(void *arg)
{
    take_job *j = (take_job *)arg;
    const int64_t *idx = j->idx;
    const int64_t n_values = j->n_values;
    const void *offsets = j->offsets;
    const int wide = j->wide;
    int64_t bytes = 0;
    for (int64_t i = j->begin; i < j->end; i++) {
        const int64_t r = idx[i];
        if ((uint64_t)r >= (uint64_t)n_values) {
            j->bad = 1;
            return NULL;
        }
        bytes += offset_at(offsets, wide, r + 1) - offset_at(offsets, wide, r);
    }
    j->bytes = bytes;
    return NULL;
}

/* Rows [begin, end): strings copied behind one another from the range's base, and their
 * offsets. */
static void *copy_thread(void *arg)
{
    take_job *j = (take_job *)arg;
    const int64_t *idx = j->idx;
    const void *offsets = j->offsets;
    const uint8_t *data = j->data;
    uint8_t *out = j->out_data;
    const int wide = j->wide;
    const int64_t data_len = j->data_len, end = j->base + j->bytes;
    int64_t pos = j->base;
    for (int64_t i = j->begin; i < j->end; i++) {
        const int64_t r = idx[i];
        const int64_t from = offset_at(offsets, wide, r), len = offset_at(offsets, wide, r + 1) - from;
        /* a short string is copied as 16 bytes (one vector move; the bytes past its end are
         * overwritten by the strings after it) wherever those 16 bytes stay inside the input
         * and inside this range's output: a copy of its exact length would branch on a
         * length that varies at random */
        if (len <= 16 && pos + 16 <= end && from + 16 <= data_len)
            memcpy(out + pos, data + from, 16);
        else
            memcpy(out + pos, data + from, (size_t)len);
        pos += len;
        set_offset(j->out_offsets, wide, i + 1, pos);
    }
    return NULL;
}

static int fill_jobs(take_job *jobs, const void *offsets, int wide, int64_t n_values, const uint8_t *data,
                     int64_t data_len, const int64_t *idx, int64_t n, void *out_offsets, uint8_t *out_data,
                     int threads)
{
    /* one range per TAKE_MIN_ROWS rows at the most, and at least one */
    const int64_t ranges = n / TAKE_MIN_ROWS < threads ? n / TAKE_MIN_ROWS : threads;
    threads = ranges < 1 ? 1 : ranges > TAKE_MAX_THREADS ? TAKE_MAX_THREADS : (int)ranges;
    for (int t = 0; t < threads; t++) {
        take_job j = {offsets, wide, n_values, data, data_len, idx, out_offsets, out_data,
                      n * t / threads, n * (t + 1) / threads, 0, 0, 0};
        jobs[t] = j;
    }
    return threads;
}

/* First pass: range_bytes (TAKE_MAX_THREADS entries) gets each range's byte total.  Returns
 * the total bytes of the output, or -1 when some index is outside [0, n_values). */
int64_t velaria_take_str_bytes(const void *offsets, int wide, int64_t n_values, const int64_t *idx, int64_t n,
                               int64_t *range_bytes, int threads)
{
    take_job jobs[TAKE_MAX_THREADS];
    threads = fill_jobs(jobs, offsets, wide, n_values, NULL, 0, idx, n, NULL, NULL, threads);
    velaria_parallel_jobs(threads, bytes_thread, jobs, sizeof(take_job));
    int64_t total = 0;
    for (int t = 0; t < threads; t++) {
        if (jobs[t].bad)
            return -1;
        range_bytes[t] = jobs[t].bytes;
        total += jobs[t].bytes;
    }
    return total;
}

/* Second pass, with the same n and threads: each range's strings copied into out_data from
 * the bytes of the ranges before it, and out_offsets (n + 1 entries) written.  `data` holds
 * data_len bytes. */
void velaria_take_str_copy(const void *offsets, int wide, int64_t n_values, const uint8_t *data, int64_t data_len,
                           const int64_t *idx, int64_t n, void *out_offsets, uint8_t *out_data,
                           const int64_t *range_bytes, int threads)
{
    take_job jobs[TAKE_MAX_THREADS];
    threads = fill_jobs(jobs, offsets, wide, n_values, data, data_len, idx, n, out_offsets, out_data, threads);
    int64_t base = 0;
    for (int t = 0; t < threads; t++) {
        jobs[t].base = base;
        jobs[t].bytes = range_bytes[t];
        base += range_bytes[t];
    }
    set_offset(out_offsets, wide, 0, 0);
    velaria_parallel_jobs(threads, copy_thread, jobs, sizeof(take_job));
}
