/* One job per thread: velaria_parallel_jobs runs fn on each of `threads` job records (laid out
 * `size` bytes apart), the first on the calling thread and the others on new threads, and
 * returns when all have finished.  A thread that cannot be started has its job run on the
 * calling thread afterwards, so every job always runs exactly once; without pthreads they
 * all run here in order. */
#include "velaria_accel.h"

#if !defined(_WIN32)
#include <pthread.h>
#define PARALLEL_THREADS 1
#endif

#define MAX_THREADS 64

void velaria_parallel_jobs(int threads, void *(*fn)(void *), void *jobs, size_t size)
{
    char *base = (char *)jobs;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
#if defined(PARALLEL_THREADS)
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, fn, base + (size_t)t * size) == 0;
    fn(base);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        else fn(base + (size_t)t * size);
    }
#else
    for (int t = 0; t < threads; t++) fn(base + (size_t)t * size);
#endif
}
