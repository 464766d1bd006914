/* bandwidth.c — the streaming-read probe behind `minfer bench --bandwidth` and the roofline
 * percentages: how many bytes per second this machine's cores can pull from DRAM.
 *
 * Decoding one token reads every weight once, sequentially, from memory far larger than the
 * caches; the probe does the same thing with no arithmetic in the way: each thread sums its
 * slice of a large buffer (as four concurrent streams, like a 4-row kernel tile), and the
 * time of the slowest thread gives the rate. The buffer is written first so that its pages exist (reading
 * never-touched pages would measure the kernel's zero page, not DRAM).
 */
#include "backend.h"
#include "threadpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

typedef struct bw_job {
    const uint8_t *buf;
    size_t slice;
    uint64_t sink[64]; /* one slot per thread, keeps the loads from being removed */
} bw_job;

static void bw_task(void *ctx, int task, int thread)
{
    (void)thread;
    bw_job *j = ctx;
    const uint8_t *p = j->buf + (size_t)task * j->slice;
    /* four streams in lockstep (the quarters of the slice), each prefetched 1 KB ahead:
     * enough misses in flight per core to reach the DRAM limit, as the decode kernels do
     * with their 4-row tiles and prefetch. One stream of plain loads reaches ~70% of it. */
    size_t q = j->slice / 4;
    uint64_t acc = 0;
#if defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (size_t i = 0; i < q; i += 64)
        for (int s = 0; s < 4; s++) {
            const uint8_t *r = p + (size_t)s * q + i;
            _mm_prefetch((const char *)r + 1024, _MM_HINT_T0);
            a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)r));
            a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(r + 32)));
        }
    a0 = _mm256_add_epi64(a0, a1);
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, a0);
    acc = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#else
    for (size_t i = 0; i < q / 8; i++)
        for (int s = 0; s < 4; s++) acc += ((const uint64_t *)(p + (size_t)s * q))[i];
#endif
    j->sink[task & 63] += acc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double mf_cpu_read_bandwidth(int n_threads, size_t bytes, int reps)
{
    mf_pool *pool = mf_pool_new(n_threads);
    if (!pool) return -1.0;
    int nt = mf_pool_threads(pool);
    if (reps < 1) reps = 1;
    size_t slice = bytes / (size_t)nt / 256 * 256; /* quarters of whole cache lines */
    uint8_t *buf = NULL;
    double *rate = malloc(sizeof(double) * (size_t)reps);
    if (slice == 0 || !rate || posix_memalign((void **)&buf, 64, slice * (size_t)nt)) {
        free(rate);
        mf_pool_free(pool);
        return -1.0;
    }
    memset(buf, 1, slice * (size_t)nt);
    bw_job j = {.buf = buf, .slice = slice};
    mf_pool_run(pool, bw_task, &j, nt); /* warm-up pass */
    for (int r = 0; r < reps; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        mf_pool_run(pool, bw_task, &j, nt);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double dt = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        rate[r] = (double)(slice * (size_t)nt) / dt / 1e9;
    }
    qsort(rate, (size_t)reps, sizeof *rate, cmp_d);
    double med = rate[reps / 2];
    free(rate);
    free(buf);
    mf_pool_free(pool);
    return med;
}
