/* Stand-alone check that every SIMD level this build can run returns exactly the scalar
 * level's ids and scores (the scalar level is compared with the Python reference by the
 * Python tests). Built and run by tests/test_topk_levels.py: natively, and for arm64 under
 * qemu-user when a cross compiler and qemu are installed, so the NEON kernels really execute
 * even on an x86 development machine.
 *
 * Prints one "level <name>: <n> cases identical" line per level it ran and exits 0, or prints
 * the first mismatch and exits 1.
 */
#include "velaria_accel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double next_uniform(void) /* xorshift64*, in [0, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
}

static float next_normal(void) /* Box-Muller */
{
    double u = next_uniform(), v = next_uniform();
    return (float)(sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

/* Random rows with exact ties, one-ulp near ties, zero, NaN, infinite and huge / tiny rows. */
static void fill(float *x, int64_t n, int64_t dim, float scale)
{
    for (int64_t i = 0; i < n * dim; i++)
        x[i] = next_normal() * scale;
    memcpy(x + 10 * dim, x + 3 * dim, (size_t)dim * sizeof(float));
    memcpy(x + 11 * dim, x + 3 * dim, (size_t)dim * sizeof(float));
    x[11 * dim] = nextafterf(x[11 * dim], INFINITY);
    memset(x + 20 * dim, 0, (size_t)dim * sizeof(float));
    x[30 * dim] = NAN;
    x[31 * dim + dim / 2] = INFINITY;
    for (int64_t j = 0; j < dim; j++) {
        x[40 * dim + j] *= 3e19f;  /* float32 products overflow */
        x[41 * dim + j] *= 1e-21f; /* float32 products underflow */
    }
    for (int64_t i = 50; i < 70; i++)
        memcpy(x + i * dim, x + 49 * dim, (size_t)dim * sizeof(float));
}

static const char *level_name(int level)
{
    switch (level) {
    case VELARIA_LEVEL_AVX2:
        return "avx2";
    case VELARIA_LEVEL_AVX512:
        return "avx512";
    case VELARIA_LEVEL_NEON:
        return "neon";
    default:
        return "scalar-c";
    }
}

#if defined(VELARIA_X86)
/* The register-blocked multi-query kernels against float64 sums: every value within the error
 * bound topk.c relies on (g * S + tau), for 1..4 queries and 1..9 rows (partial blocks), and
 * the padding slots beyond n rows or nq queries never matter. Returns the number of values
 * checked, or -1 after printing the first one out of bounds. */
static int check_multi(const char *name, velaria_multi_f32_fn fn, int l2, const float *x,
                       const float *q, int64_t dim)
{
    const double g = 1.25 * ((double)dim + 8.0) * 0x1p-24, tau = ((double)dim + 128.0) * 0x1p-149;
    double out[4 * 12];
    int checked = 0;
    for (int64_t nq = 1; nq <= 4; nq++)
        for (int64_t n = 1; n <= 9; n++) {
            fn(x, n, dim, q, nq, out, 12);
            for (int64_t b = 0; b < nq; b++)
                for (int64_t i = 0; i < n; i++) {
                    double exact = 0.0, s = 0.0;
                    for (int64_t j = 0; j < dim; j++) {
                        const double r = x[i * dim + j], v = q[b * dim + j];
                        const double t = l2 ? (r - v) * (r - v) : r * v;
                        exact += t;
                        s += fabs(t);
                    }
                    const double got = out[b * 12 + i];
                    if (!(fabs(got - exact) <= g * s + tau)) {
                        printf("MULTI OUT OF BOUND %s dim=%lld nq=%lld n=%lld query=%lld row=%lld: "
                               "%.17g vs %.17g\n", name, (long long)dim, (long long)nq, (long long)n,
                               (long long)b, (long long)i, got, exact);
                        return -1;
                    }
                    checked++;
                }
        }
    return checked;
}

/* The one-query dot kernel with sums of squares: both values within the error bound. */
static int check_dot_ss(const float *x, const float *q, int64_t dim)
{
    const double g = 1.25 * ((double)dim + 8.0) * 0x1p-24, tau = ((double)dim + 128.0) * 0x1p-149;
    double out[9], ss[9];
    dot_ss_f32_avx2(x, 9, dim, q, out, ss);
    for (int64_t i = 0; i < 9; i++) {
        double dot = 0.0, s = 0.0, sq = 0.0;
        for (int64_t j = 0; j < dim; j++) {
            const double r = x[i * dim + j], v = q[j];
            dot += r * v;
            s += fabs(r * v);
            sq += r * r;
        }
        if (!(fabs(out[i] - dot) <= g * s + tau) || !(fabs(ss[i] - sq) <= g * sq + tau)) {
            printf("DOT_SS OUT OF BOUND dim=%lld row=%lld: %.17g vs %.17g, %.17g vs %.17g\n",
                   (long long)dim, (long long)i, out[i], dot, ss[i], sq);
            return -1;
        }
    }
    return 18;
}
#endif

int main(void)
{
    static const int64_t dims[] = {1, 7, 15, 16, 17, 31, 63, 64, 65, 97, 768, 1536};
    static const float scales[] = {1.0f, 1e19f, 1e-20f};
    /* the last 1, 5 or 6 queries: the one-query kernels, a group of 4 for the multi-query kernels
     * plus a lone query, 4 + 2; 203 rows: a partial row block */
    const int64_t n = 203, n_queries = 6;
    const int cpu = velaria_cpu_level(), compiled = velaria_compiled_levels();
    int levels[4], n_levels = 0;
    for (int level = VELARIA_LEVEL_AVX2; level <= VELARIA_LEVEL_NEON; level++) {
        int runs = level == VELARIA_LEVEL_NEON ? cpu == VELARIA_LEVEL_NEON
                                               : (cpu == VELARIA_LEVEL_AVX2 || cpu == VELARIA_LEVEL_AVX512) &&
                                                     level <= cpu;
        if (runs && (compiled & (1 << level)))
            levels[n_levels++] = level;
    }
    int cases[4] = {0}, multi_checked[4] = {0}, ss_checked = 0;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        const int64_t dim = dims[di];
        for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
            float *x = malloc((size_t)(n * dim) * sizeof(float));
            float *q = malloc((size_t)(n_queries * dim) * sizeof(float));
            double *inv = malloc((size_t)n * sizeof(double));
            fill(x, n, dim, scales[si]);
            for (int64_t j = 0; j < n_queries * dim; j++)
                q[j] = next_normal() * scales[si];
            /* the last query equals a row: every suffix of the queries below contains it */
            memcpy(q + 5 * dim, x + 3 * dim, (size_t)dim * sizeof(float));
            velaria_inv_norms_f32(x, n, dim, inv);
#if defined(VELARIA_X86)
            if (si == 0) { /* finite rows 0..8 (the special rows start at 10) */
                for (int li = 0; li < n_levels; li++) {
                    const int avx512 = levels[li] == VELARIA_LEVEL_AVX512;
                    for (int l2 = 0; l2 <= 1; l2++) {
                        velaria_multi_f32_fn fn =
                            avx512 ? (l2 ? l2sq_multi_f32_avx512 : dot_multi_f32_avx512)
                                   : (l2 ? l2sq_multi_f32_avx2 : dot_multi_f32_avx2);
                        const int done = check_multi(level_name(levels[li]), fn, l2, x, q, dim);
                        if (done < 0)
                            return 1;
                        multi_checked[li] += done;
                    }
                }
                if (n_levels > 0) { /* every x86 SIMD level runs AVX2 */
                    const int done = check_dot_ss(x, q, dim);
                    if (done < 0)
                        return 1;
                    ss_checked += done;
                }
            }
#endif
            static const int64_t query_counts[] = {1, 5, 6};
            for (int qc = 0; qc < 3; qc++) {
                const int64_t nq = query_counts[qc];
                const float *qs = q + (n_queries - nq) * dim;
                for (int metric = 0; metric < 3; metric++) {
                    static const int64_t ks[] = {1, 10, 250};
                    for (int ki = 0; ki < 3; ki++) {
                        const int64_t k = ks[ki], slots = k < n ? k : n, total = nq * slots;
                        int64_t want_ids[6 * 250], got_ids[6 * 250], want_n[6], got_n[6];
                        double want_sc[6 * 250], got_sc[6 * 250];
                        if (velaria_topk_f32(VELARIA_LEVEL_SCALAR, x, n, dim, NULL, inv, qs, nq, slots,
                                             metric, 1, want_ids, want_sc, want_n) != 0) {
                            printf("scalar level failed\n");
                            return 1;
                        }
                        for (int li = 0; li < n_levels; li++) {
                            for (int threads = 1; threads <= 2; threads++) {
                                memset(got_ids, 0xff, sizeof got_ids);
                                memset(got_sc, 0xff, sizeof got_sc);
                                int rc = velaria_topk_f32(levels[li], x, n, dim, NULL, inv, qs, nq, slots,
                                                          metric, threads, got_ids, got_sc, got_n);
                                int same = rc == 0 && memcmp(got_n, want_n, sizeof want_n) == 0;
                                for (int64_t qi = 0; same && qi < nq; qi++) /* the filled slots */
                                    same = memcmp(got_ids + qi * slots, want_ids + qi * slots,
                                                  (size_t)want_n[qi] * sizeof(int64_t)) == 0 &&
                                           memcmp(got_sc + qi * slots, want_sc + qi * slots,
                                                  (size_t)want_n[qi] * sizeof(double)) == 0;
                                if (!same) {
                                    printf("MISMATCH level=%s queries=%lld dim=%lld scale=%g metric=%d k=%lld threads=%d rc=%d\n",
                                           level_name(levels[li]), (long long)nq, (long long)dim, (double)scales[si], metric,
                                           (long long)k, threads, rc);
                                    for (int64_t qi = 0; qi < nq; qi++)
                                        printf("  query %lld: %lld rows, expected %lld\n", (long long)qi,
                                               (long long)got_n[qi], (long long)want_n[qi]);
                                    for (int64_t i = 0; i < total; i++)
                                        if (i % slots < want_n[i / slots] &&
                                            (got_ids[i] != want_ids[i] || memcmp(&got_sc[i], &want_sc[i], 8))) {
                                            printf("  slot %lld: id %lld score %.17g, expected id %lld score %.17g\n",
                                                   (long long)i, (long long)got_ids[i], got_sc[i],
                                                   (long long)want_ids[i], want_sc[i]);
                                            break;
                                        }
                                    return 1;
                                }
                                cases[li]++;
                            }
                        }
                    }
                }
            }
            free(x);
            free(q);
            free(inv);
        }
    }
    for (int li = 0; li < n_levels; li++)
        if (multi_checked[li])
            printf("level %s: %d cases identical; multi-query kernel: %d values within the bound\n",
                   level_name(levels[li]), cases[li], multi_checked[li]);
        else
            printf("level %s: %d cases identical\n", level_name(levels[li]), cases[li]);
    if (ss_checked)
        printf("one-query dot + sum of squares kernel: %d values within the bound\n", ss_checked);
    if (n_levels == 0)
        printf("no SIMD level runs here\n");
    return 0;
}
