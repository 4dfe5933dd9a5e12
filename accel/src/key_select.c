/* The row numbers of the keys present in a bitmap, in one pass (a semi join's probe side
 * reduced to the rows it keeps, without a mask in between).
 *
 * velaria_bitmap_select_rows: out[0..k) = the rows i, in order, where keys[i] is valid
 * (valid NULL, or valid[i] != 0) and its bit is set in `bitmap` (bit b for key lo + b,
 * b < span); returns k.  The pass reads each key once and writes only the kept row numbers:
 * every row's number is stored at the current output index, which advances by the row's
 * answer (no branch to mispredict), so a batch keeping 3 % of its rows writes 3 % of the
 * output.  On AVX-512 eight keys are tested at once (their bitmap words gathered, the bits
 * shifted out) and the kept row numbers compressed into a register stored whole: the slack past
 * the kept ones is overwritten by the next store and never passes the row being tested.
 *
 * `threads` threads (the caller decides how many the rows are worth) share the rows in
 * contiguous ranges of whole 8-row groups; each writes its numbers from its range's first slot
 * on (out needs room for n), and the ranges are then moved together in order, so the output
 * does not depend on the thread count. */
#include "velaria_accel.h"

#include <string.h>

#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KEY_SELECT_AVX512 1
#endif

#define MAX_THREADS 64

typedef struct {
    int level;
    const int64_t *keys;
    const uint8_t *valid;
    int64_t lo, span;
    const uint64_t *bitmap;
    int64_t *out;
    int64_t begin, end, kept;
} select_job;

static int64_t select_scalar(const select_job *j, int64_t begin)
{
    int64_t *out = j->out + j->begin;
    int64_t k = 0;
    for (int64_t i = begin; i < j->end; i++) {
        const uint64_t b = (uint64_t)j->keys[i] - (uint64_t)j->lo;
        /* b is tested against span before its word is read: the index stays in the bitmap */
        const uint64_t word = b < (uint64_t)j->span ? j->bitmap[b >> 6] : 0;
        const int64_t hit = (int64_t)((word >> (b & 63)) & 1) & (int64_t)(!j->valid || j->valid[i] != 0);
        out[k] = i;
        k += hit;
    }
    return k;
}

#if defined(KEY_SELECT_AVX512)
__attribute__((target("avx512f,avx512bw,avx512vl,popcnt")))
static int64_t select_avx512(const select_job *j, int64_t *end8)
{
    int64_t *out = j->out + j->begin;
    int64_t k = 0, i = j->begin;
    const __m512i vlo = _mm512_set1_epi64(j->lo), vspan = _mm512_set1_epi64(j->span);
    const __m512i v63 = _mm512_set1_epi64(63), one = _mm512_set1_epi64(1), step = _mm512_set1_epi64(8);
    __m512i rows = _mm512_add_epi64(_mm512_set1_epi64(i), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    for (; i + 8 <= j->end; i += 8) {
        const __m512i b = _mm512_sub_epi64(_mm512_loadu_si512((const void *)(j->keys + i)), vlo);
        __mmask8 in = _mm512_cmplt_epu64_mask(b, vspan);
        if (j->valid)
            in &= _mm_cmpneq_epi8_mask(_mm_loadl_epi64((const __m128i *)(j->valid + i)), _mm_setzero_si128());
        const __m512i words = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), in, _mm512_srli_epi64(b, 6),
                                                          (const void *)j->bitmap, 8);
        const __m512i bits = _mm512_and_si512(_mm512_srlv_epi64(words, _mm512_and_si512(b, v63)), one);
        const __mmask8 hit = _mm512_mask_test_epi64_mask(in, bits, bits);
        /* eight slots from out + k stay below out + (i - begin) + 8 <= the range's end */
        _mm512_storeu_si512((void *)(out + k), _mm512_maskz_compress_epi64(hit, rows));
        k += _mm_popcnt_u32((unsigned)hit);
        rows = _mm512_add_epi64(rows, step);
    }
    *end8 = i;
    return k;
}
#endif

static void *select_thread(void *arg)
{
    select_job *j = (select_job *)arg;
    int64_t k = 0, from = j->begin;
#if defined(KEY_SELECT_AVX512)
    if (j->level == VELARIA_LEVEL_AVX512)
        k = select_avx512(j, &from);
#endif
    if (from < j->end) {        /* the scalar loop writes from slot 0 of its view: shift it */
        select_job rest = *j;
        rest.out = j->out + k;
        k += select_scalar(&rest, from);
    }
    j->kept = k;
    return NULL;
}

int64_t velaria_bitmap_select_rows(int level, int threads, const int64_t *keys, const uint8_t *valid, int64_t n,
                                   int64_t lo, int64_t span, const uint64_t *bitmap, int64_t *out)
{
    const int64_t groups = (n + 7) / 8;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > groups) threads = (int)groups;
    if (threads < 1) threads = 1;
    select_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        const int64_t b0 = groups * t / threads * 8, b1 = groups * (t + 1) / threads * 8;
        jobs[t] = (select_job){level, keys, valid, lo, span, bitmap, out, b0, b1 < n ? b1 : n, 0};
    }
    velaria_parallel_jobs(threads, select_thread, jobs, sizeof(jobs[0]));
    int64_t kept = jobs[0].kept;
    for (int t = 1; t < threads; t++) {
        if (kept != jobs[t].begin)
            memmove(out + kept, out + jobs[t].begin, (size_t)jobs[t].kept * sizeof(int64_t));
        kept += jobs[t].kept;
    }
    return kept;
}
