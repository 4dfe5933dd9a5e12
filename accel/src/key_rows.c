/* Row numbers of the keys present in a key bitmap: the join key pre-filter's selection.
 *
 * velaria_bitmap_rows writes, in ascending order, the numbers of the rows whose key is valid
 * and whose bit is set in `bitmap` (bits over [lo, lo + span)), and returns how many.  One
 * branch-free pass: every row stores its number at the cursor and moves the cursor by its
 * hit (0 or 1), so a selective pre-filter costs neither a byte mask nor a second pass to find
 * the set bytes; on AVX-512, eight rows a step (the bitmap words gathered, the hits' numbers
 * compressed).  Up to `threads` threads take contiguous row ranges; each writes at its range's
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
    int avx512;
} key_rows_job;

#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KEY_ROWS_AVX512 1
/* Eight rows a step: the bitmap words gathered, each row's bit shifted down and tested, and
 * the numbers of the rows that hit compressed to the front of a vector stored at the cursor.
 * The whole vector is stored: its last slot is at most row i + 7 of the range, so it stays
 * inside the range's own part of out.  Rows [begin, end); returns the count and sets *next to
 * the first row not done (the caller finishes the rows past the last whole step). */
__attribute__((target("avx512f")))
static int64_t key_rows_avx512(const int64_t *keys, const uint8_t *valid, int64_t begin, int64_t end,
                               uint64_t lo, uint64_t span, const uint64_t *bitmap, int64_t *out,
                               int64_t *next)
{
    const __m512i vlo = _mm512_set1_epi64((long long)lo), vspan = _mm512_set1_epi64((long long)span);
    const __m512i v63 = _mm512_set1_epi64(63), one = _mm512_set1_epi64(1), eight = _mm512_set1_epi64(8);
    __m512i rows = _mm512_add_epi64(_mm512_set1_epi64(begin), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    int64_t cnt = 0, i = begin;
    for (; i + 8 <= end; i += 8) {
        const __m512i b = _mm512_sub_epi64(_mm512_loadu_si512((const void *)(keys + i)), vlo);
        __mmask8 in = _mm512_cmplt_epu64_mask(b, vspan);
        if (valid) {
            unsigned m = 0;
            for (int t = 0; t < 8; t++)
                m |= (unsigned)(valid[i + t] != 0) << t;
            in &= (__mmask8)m;
        }
        const __m512i words = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), in, _mm512_srli_epi64(b, 6),
                                                          (const void *)bitmap, 8);
        const __m512i bits = _mm512_srlv_epi64(words, _mm512_and_si512(b, v63));
        const __mmask8 hit = _mm512_mask_test_epi64_mask(in, bits, one);
        _mm512_storeu_si512((void *)(out + cnt), _mm512_maskz_compress_epi64(hit, rows));
        cnt += __builtin_popcount((unsigned)hit);
        rows = _mm512_add_epi64(rows, eight);
    }
    *next = i;
    return cnt;
}
#endif

static void *key_rows_thread(void *arg)
{
    key_rows_job *j = (key_rows_job *)arg;
    /* locals: with -fno-strict-aliasing each store to out could change the job's fields */
    const int64_t *keys = j->keys;
    const uint8_t *valid = j->valid;
    const uint64_t *bitmap = j->bitmap;
    const uint64_t lo = j->lo, span = j->span;
    const int64_t begin = j->begin, end = j->end;
    int64_t *out = j->out + begin;
    int64_t cnt = 0, start = begin;
#if defined(KEY_ROWS_AVX512)
    if (j->avx512)
        cnt = key_rows_avx512(keys, valid, begin, end, lo, span, bitmap, out, &start);
#endif
    if (valid) {
        for (int64_t i = start; i < end; i++) {
            const uint64_t b = (uint64_t)keys[i] - lo;
            const uint64_t in = b < span;
            const uint64_t word = bitmap[in ? b >> 6 : 0];
            out[cnt] = i;
            cnt += (int64_t)(in & (word >> (b & 63)) & (uint64_t)(valid[i] != 0));
        }
    } else {
        for (int64_t i = start; i < end; i++) {
            const uint64_t b = (uint64_t)keys[i] - lo;
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
    const int avx512 = velaria_cpu_level() == VELARIA_LEVEL_AVX512;
    for (int t = 0; t < threads; t++) {
        key_rows_job j = {keys, valid, (uint64_t)lo, (uint64_t)span, bitmap, out,
                          n * t / threads, n * (t + 1) / threads, 0, avx512};
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
