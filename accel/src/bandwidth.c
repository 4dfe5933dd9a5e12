/* Streaming-read bandwidth probe: one pass over a buffer, summing it with the widest loads
 * this CPU supports (AVX2 on x86-64 when available), so benchmarks can state "% of bandwidth"
 * against a real single-pass read measured in the same run. The sum is returned so the
 * compiler cannot drop the loads; its value is meaningless.
 *
 *   velaria_read_bandwidth(ptr, n_bytes, threads)
 *
 * `threads` > 1 splits the buffer into that many contiguous parts read concurrently (as the
 * top-k kernel splits row ranges). Hardware prefetch only: on the Zen 3 dev box software
 * prefetch 1 KiB ahead made the plain read ~30% slower (22 -> 16 GB/s), and the top-k kernel
 * relies on the same hardware prefetchers.
 */
#include "velaria_accel.h"

#include <string.h>

#if !defined(_WIN32)
#include <pthread.h>
#define VELARIA_THREADS 1
#endif

static double read_scalar(const char *p, int64_t n_bytes)
{
    const int64_t n = n_bytes / (int64_t)sizeof(float);
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        float v[16];
        memcpy(v, p + i * 4, sizeof v);
        a0 += v[0] + v[4] + v[8] + v[12];
        a1 += v[1] + v[5] + v[9] + v[13];
        a2 += v[2] + v[6] + v[10] + v[14];
        a3 += v[3] + v[7] + v[11] + v[15];
    }
    for (; i < n; i++) {
        float v;
        memcpy(&v, p + i * 4, sizeof v);
        a0 += v;
    }
    return (double)a0 + a1 + a2 + a3;
}

#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx2"))) static double read_avx2(const char *p, int64_t n_bytes)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    int64_t i = 0;
    const int64_t body = n_bytes & ~(int64_t)255;
    for (; i < body; i += 256) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps((const float *)(p + i)));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps((const float *)(p + i + 32)));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps((const float *)(p + i + 64)));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps((const float *)(p + i + 96)));
        a4 = _mm256_add_ps(a4, _mm256_loadu_ps((const float *)(p + i + 128)));
        a5 = _mm256_add_ps(a5, _mm256_loadu_ps((const float *)(p + i + 160)));
        a6 = _mm256_add_ps(a6, _mm256_loadu_ps((const float *)(p + i + 192)));
        a7 = _mm256_add_ps(a7, _mm256_loadu_ps((const float *)(p + i + 224)));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    double total = 0.0;
    for (int l = 0; l < 8; l++)
        total += lanes[l];
    return total + read_scalar(p + body, n_bytes - body);
}
#endif

static double read_once(const char *p, int64_t n_bytes)
{
#if defined(VELARIA_X86) && (defined(__GNUC__) || defined(__clang__))
    if (velaria_cpu_level() >= VELARIA_LEVEL_AVX2)
        return read_avx2(p, n_bytes);
#endif
    return read_scalar(p, n_bytes);
}

typedef struct {
    const char *p;
    int64_t n;
    double sum;
} read_job;

#if defined(VELARIA_THREADS)
static void *read_thread(void *arg)
{
    read_job *j = arg;
    j->sum = read_once(j->p, j->n);
    return NULL;
}
#endif

double velaria_read_bandwidth(const void *ptr, int64_t n_bytes, int threads)
{
    if (!ptr || n_bytes <= 0)
        return 0.0;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
#if !defined(VELARIA_THREADS)
    threads = 1;
#endif
    const char *p = ptr;
    read_job jobs[64];
    const int64_t per = ((n_bytes / threads) + 4095) & ~(int64_t)4095;
    for (int t = 0; t < threads; t++) {
        int64_t b = per * t < n_bytes ? per * t : n_bytes;
        int64_t e = (t == threads - 1 || per * (t + 1) > n_bytes) ? n_bytes : per * (t + 1);
        jobs[t].p = p + b;
        jobs[t].n = e - b;
        jobs[t].sum = 0.0;
    }
#if defined(VELARIA_THREADS)
    pthread_t tids[64];
    int started[64] = {0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, read_thread, &jobs[t]) == 0;
    jobs[0].sum = read_once(jobs[0].p, jobs[0].n);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            jobs[t].sum = read_once(jobs[t].p, jobs[t].n);
    }
#endif
    double total = 0.0;
    for (int t = 0; t < threads; t++)
        total += jobs[t].sum;
    return total;
}
