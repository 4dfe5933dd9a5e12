/* Compaction of 8-byte columns by a byte mask: the values whose mask byte is nonzero, in row
 * order (a filter's output columns, a masked SUM's values).
 *
 * velaria_compact_run_u64 compacts one run of rows into out without ever writing at or past
 * out + room (room >= the number kept). On AVX-512 it takes 64 mask bytes at a time as a bit
 * mask and moves 8 values per instruction (vcompresspd into a register, then one full-width
 * store that may run past the values kept so far, while room allows; later stores overwrite
 * that slack); near the end of room it switches to masked stores that write exactly the kept
 * values. The scalar form writes every value at the current index, which advances by the
 * mask (branch-free), and stops once room is full.
 *
 * velaria_compact_cols_u64 compacts several columns of one batch on up to `threads` threads.
 * The result does not depend on the thread count, because the split decides only who writes
 * a value, never where it goes: the rows are cut into contiguous ranges, each thread counts the
 * kept rows of its range, the counts' running sums give every range its first output slot,
 * then each thread writes its range's values there (room = its count, so no thread writes
 * into another's slots). Every out has room for `room` values; more kept rows than that
 * return -1 before anything is written.
 */
#include "velaria_accel.h"

#define MAX_THREADS 64

static int64_t compact_scalar(const uint64_t *restrict src, const uint8_t *restrict mask, int64_t n,
                              uint64_t *restrict out, int64_t room)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n && k < room; i++) {
        out[k] = src[i];
        k += mask[i] != 0;
    }
    return k;
}

#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx512f,avx512bw,popcnt")))
static int64_t compact_avx512(const uint64_t *restrict src, const uint8_t *restrict mask, int64_t n,
                              uint64_t *restrict out, int64_t room)
{
    int64_t k = 0, i = 0;
    const __m512i zero = _mm512_setzero_si512();
    for (; i + 64 <= n; i += 64) {
        const uint64_t bits = (uint64_t)_mm512_cmpneq_epi8_mask(_mm512_loadu_si512(mask + i), zero);
        const int64_t kept = (int64_t)__builtin_popcountll(bits);
        if (k + kept + 8 <= room) {         /* full-width stores stay inside room */
            for (int c = 0; c < 8; c++) {
                const __mmask8 m = (__mmask8)(bits >> (8 * c));
                const __m512i v = _mm512_maskz_compress_epi64(m, _mm512_loadu_si512(src + i + 8 * c));
                _mm512_storeu_si512(out + k, v);
                k += __builtin_popcount(m);
            }
        } else {                            /* exact stores: nothing past the kept values */
            for (int c = 0; c < 8; c++) {
                const __mmask8 m = (__mmask8)(bits >> (8 * c));
                _mm512_mask_compressstoreu_epi64(out + k, m, _mm512_loadu_si512(src + i + 8 * c));
                k += __builtin_popcount(m);
            }
        }
    }
    for (; i < n; i++)
        if (mask[i]) out[k++] = src[i];
    return k;
}
#endif

int64_t velaria_compact_run_u64(int level, const uint64_t *src, const uint8_t *mask, int64_t n,
                                uint64_t *out, int64_t room)
{
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    if (level == VELARIA_LEVEL_AVX512) return compact_avx512(src, mask, n, out, room);
#else
    (void)level;
#endif
    return compact_scalar(src, mask, n, out, room);
}

static int64_t count_kept(const uint8_t *restrict mask, int64_t n)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += mask[i] != 0;
    return k;
}

typedef struct {
    int level, ncols;
    const uint8_t *mask;
    const uint64_t *const *srcs;
    uint64_t *const *outs;
    int64_t begin, end;   /* this job's rows */
    int64_t first, kept;  /* its first output slot; its kept rows (counted in phase 1) */
    int phase;
} compact_job;

static void *compact_job_run(void *arg)
{
    compact_job *j = (compact_job *)arg;
    if (j->phase == 1) {
        j->kept = count_kept(j->mask + j->begin, j->end - j->begin);
    } else {
        for (int c = 0; c < j->ncols; c++)
            velaria_compact_run_u64(j->level, j->srcs[c] + j->begin, j->mask + j->begin, j->end - j->begin,
                                    j->outs[c] + j->first, j->kept);
    }
    return NULL;
}

int64_t velaria_compact_cols_u64(int level, int threads, int64_t n, const uint8_t *mask, int ncols,
                                 const uint64_t *const *srcs, uint64_t *const *outs, int64_t room)
{
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    const int64_t groups = (n + 63) / 64;          /* ranges start on 64-row boundaries */
    if (groups < threads) threads = groups > 0 ? (int)groups : 1;
    compact_job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        const int64_t g0 = groups * t / threads, g1 = groups * (t + 1) / threads;
        jobs[t] = (compact_job){level, ncols, mask, srcs, outs, g0 * 64, g1 * 64 < n ? g1 * 64 : n, 0, 0, 1};
    }
    velaria_parallel_jobs(threads, compact_job_run, jobs, sizeof(jobs[0]));
    int64_t total = 0;
    for (int t = 0; t < threads; t++) {
        jobs[t].first = total;
        jobs[t].phase = 2;
        total += jobs[t].kept;
    }
    if (total > room) return -1;        /* the outputs are too small: nothing written */
    velaria_parallel_jobs(threads, compact_job_run, jobs, sizeof(jobs[0]));
    return total;
}
