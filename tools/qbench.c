/* qbench.c — micro-benchmark of the matrix kernel mf_matmul_rows (engine/quant.h).
 *
 * For each weight type and matrix shape it measures
 *   - n_tok = 1 (decoding): GB/s of weight bytes streamed from memory;
 *   - n_tok = 16 and 64 (prompt batches): GFLOP/s (2·rows·n_in·n_tok per product).
 * Each figure is the median of several runs. The matrix is replicated until the copies fill
 * a pool much larger than the last-level cache, and successive products walk through the
 * copies, so every weight byte really comes from DRAM (as in a model's forward pass, where
 * the ~0.6–1.2 GB of weights of a token never fit in cache).
 *
 * usage: qbench [-t THREADS] [-r RUNS] [-p POOL_MB] [-l rows|packed|both] [-s ROWSxN_IN]... [TYPE...]
 *   -l: the file's row-major layout (mf_matmul_rows, default), the packed layout the CPU
 *   backend makes at load (mf_matmul_packed, engine/cpu/pack.c), or both, one line each,
 *   one after the other for every shape and type.
 *   defaults: 1 thread, 5 runs, 1024 MB, the TinyLlama shapes 5632x2048 (ffn gate/up),
 *   2048x5632 (ffn down), 32000x2048 (output), types Q4_0 Q8_0 Q6_K Q4_K MXFP4 F16.
 *   With -t 2 the rows are split between 2 threads (the CPU backend's job in the engine):
 *   it shows the memory-bound ceiling of the machine.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant.h"
#include "quantize.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* xorshift64* — deterministic weights and activations */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static float rng_normalish(uint64_t *s) /* sum of 4 uniforms, centred: cheap, bell-shaped */
{
    float v = 0;
    for (int i = 0; i < 4; i++) v += (float)(rng_next(s) >> 40) / (float)(1u << 24);
    return v - 2.0f;
}

typedef struct job {
    uint32_t type;
    const uint8_t *W;
    int64_t n_in, r0, r1;
    const void *qx;
    size_t xs;
    int n_tok;
    float *y;
    int64_t ys;
    int packed;
} job;

static void *run_job(void *p)
{
    job *j = p;
    if (j->packed) mf_matmul_packed(j->type, j->W, j->n_in, j->ys, j->r0, j->r1, j->qx, j->xs, j->n_tok, j->y, j->ys);
    else mf_matmul_rows(j->type, j->W, j->n_in, j->r0, j->r1, j->qx, j->xs, j->n_tok, j->y, j->ys);
    return NULL;
}

/* One product of the whole matrix, rows split evenly between `threads` threads. */
static void product(int threads, uint32_t type, const uint8_t *W, int64_t rows, int64_t n_in, const void *qx, size_t xs,
                    int n_tok, float *y, int packed)
{
    job jobs[16];
    pthread_t tid[16];
    for (int i = 0; i < threads; i++) {
        int64_t r0 = rows * i / threads, r1 = rows * (i + 1) / threads;
        if (packed) { /* packed products start on a group of 16 rows */
            r0 = r0 / 16 * 16;
            r1 = i + 1 == threads ? rows : r1 / 16 * 16;
        }
        jobs[i] = (job){type, W, n_in, r0, r1, qx, xs, n_tok, y, rows, packed};
    }
    for (int i = 1; i < threads; i++) pthread_create(&tid[i], NULL, run_job, &jobs[i]);
    run_job(&jobs[0]);
    for (int i = 1; i < threads; i++) pthread_join(tid[i], NULL);
}

typedef struct shape {
    int64_t rows, n_in;
} shape;

/* The memory-bound ceiling next to each kernel figure: a plain read of the same bytes
 * (64-bit XOR, which the compiler vectorizes), so a busy machine lowers both numbers and
 * their ratio stays meaningful. */
typedef struct rjob {
    const uint8_t *p;
    size_t n;
    uint64_t x;
} rjob;

static void *read_part(void *v)
{
    rjob *j = v;
    const uint64_t *q = (const uint64_t *)(const void *)j->p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= j->n / 8; i += 4) a ^= q[i], b ^= q[i + 1], c ^= q[i + 2], d ^= q[i + 3];
    j->x = a ^ b ^ c ^ d;
    return NULL;
}

/* n bytes read by `threads` threads, each its contiguous share (as the rows are split) */
static uint64_t read_all(int threads, const uint8_t *p, size_t n)
{
    rjob jobs[16];
    pthread_t tid[16];
    uint64_t x = 0;
    for (int i = 0; i < threads; i++) {
        size_t a = n * (size_t)i / (size_t)threads / 64 * 64, b = n * (size_t)(i + 1) / (size_t)threads / 64 * 64;
        jobs[i] = (rjob){p + a, b - a, 0};
    }
    for (int i = 1; i < threads; i++) pthread_create(&tid[i], NULL, read_part, &jobs[i]);
    read_part(&jobs[0]);
    for (int i = 1; i < threads; i++) pthread_join(tid[i], NULL);
    for (int i = 0; i < threads; i++) x ^= jobs[i].x;
    return x;
}

static void bench(uint32_t type, shape sh, int threads, int runs, size_t pool_bytes, int packed)
{
    const mf_type_info *ti = mf_type_get(type);
    size_t rb = mf_type_row_bytes(type, sh.n_in), mat = rb * (size_t)sh.rows;
    if (!rb) {
        printf("%-6s %6lldx%-6lld  n_in is not a multiple of the block size %u\n", ti->name, (long long)sh.rows,
               (long long)sh.n_in, ti->blck);
        return;
    }
    if (packed && mf_act_type(type) == MF_TYPE_F32) return; /* float weights are never packed */
    size_t copies = pool_bytes / mat < 2 ? 2 : pool_bytes / mat;
    uint8_t *pool = aligned_alloc(64, (copies * mat + 63) / 64 * 64);
    /* 64 distinct quantized rows, repeated: quantizing 10^8 values with the K-quant search
     * would take minutes, and the kernel's speed does not depend on the values */
    uint64_t seed = 0x1234567;
    float *row = malloc((size_t)sh.n_in * sizeof *row);
    for (int64_t r = 0; r < 64 && r < sh.rows; r++) {
        for (int64_t i = 0; i < sh.n_in; i++) row[i] = rng_normalish(&seed) * 0.05f;
        mf_quantize_row(type, row, pool + (size_t)r * rb, sh.n_in);
    }
    for (int64_t r = 64; r < sh.rows; r++) memcpy(pool + (size_t)r * rb, pool + (size_t)(r % 64) * rb, rb);
    if (packed) {
        uint8_t *tmp = malloc(mat);
        memcpy(tmp, pool, mat);
        mf_pack_matrix(type, tmp, sh.n_in, sh.rows, 0, (sh.rows + 15) / 16, pool);
        free(tmp);
    }
    for (size_t c = 1; c < copies; c++) memcpy(pool + c * mat, pool, mat);

    const int toks[3] = {1, 16, 64};
    size_t xs = (mf_act_bytes(type, sh.n_in) + 63) / 64 * 64;
    void *qx = aligned_alloc(64, xs * 64);
    float *x = malloc((size_t)sh.n_in * sizeof *x);
    for (int t = 0; t < 64; t++) {
        for (int64_t i = 0; i < sh.n_in; i++) x[i] = rng_normalish(&seed);
        mf_quantize_act(type, x, (char *)qx + (size_t)t * xs, sh.n_in);
    }
    float *y = malloc((size_t)sh.rows * 64 * sizeof *y);

    double result[3], rd[64];
    size_t next = 0;
    volatile uint64_t sink = 0;
    size_t rreps = (256u << 20) / mat + 1;
    for (int run = 0; run < runs; run++) {
        double t0 = now();
        for (size_t i = 0; i < rreps; i++, next = (next + 1) % copies)
            sink ^= read_all(threads, pool + next * mat, mat);
        rd[run] = (double)mat * (double)rreps / (now() - t0) / 1e9;
    }
    (void)sink;
    qsort(rd, (size_t)runs, sizeof *rd, cmp_double);
    double read_gbs = rd[runs / 2];
    for (int k = 0; k < 3; k++) {
        int n_tok = toks[k];
        /* a run streams at least 256 MB (decode) or lasts a few products (batches) */
        size_t reps = n_tok == 1 ? (256u << 20) / mat + 1 : 3;
        double *t = malloc((size_t)runs * sizeof *t);
        product(threads, type, pool, sh.rows, sh.n_in, qx, xs, n_tok, y, packed); /* warm-up */
        for (int run = 0; run < runs; run++) {
            double t0 = now();
            for (size_t i = 0; i < reps; i++, next = (next + 1) % copies)
                product(threads, type, pool + next * mat, sh.rows, sh.n_in, qx, xs, n_tok, y, packed);
            t[run] = (now() - t0) / (double)reps;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double med = t[runs / 2];
        result[k] = n_tok == 1 ? (double)mat / med / 1e9 : 2.0 * (double)sh.rows * (double)sh.n_in * n_tok / med / 1e9;
        free(t);
    }
    printf("%-6s %-6s %6lldx%-6lld %8.2f MB %7.2f GB/s %9.3f ms %5.0f%% of %5.2f  %7.1f GFLOP/s %7.1f GFLOP/s\n",
           ti->name, packed ? "packed" : "rows", (long long)sh.rows, (long long)sh.n_in, (double)mat / 1e6, result[0],
           (double)mat / result[0] / 1e6, 100 * result[0] / read_gbs, read_gbs, result[1], result[2]);
    fflush(stdout);
    free(pool), free(row), free(qx), free(x), free(y);
}

static int type_by_name(const char *name)
{
    for (uint32_t t = 0; t < MF_TYPE_COUNT; t++) {
        const mf_type_info *ti = mf_type_get(t);
        if (ti && mf_type_supported(t) && strcmp(ti->name, name) == 0) return (int)t;
    }
    return -1;
}

int main(int argc, char **argv)
{
    int threads = 1, runs = 5, ntypes = 0, nshapes = 0, layouts = 1; /* bit 0: rows, bit 1: packed */
    size_t pool_mb = 1024;
    uint32_t types[32];
    shape shapes[16];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) pool_mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-l") && i + 1 < argc) {
            const char *l = argv[++i];
            layouts = !strcmp(l, "rows") ? 1 : !strcmp(l, "packed") ? 2 : !strcmp(l, "both") ? 3 : 0;
            if (!layouts) {
                fprintf(stderr, "qbench: bad layout '%s' (expected rows, packed or both)\n", l);
                return 2;
            }
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc && nshapes < 16) {
            long long r, n;
            if (sscanf(argv[++i], "%lldx%lld", &r, &n) != 2 || r <= 0 || n <= 0) {
                fprintf(stderr, "qbench: bad shape '%s' (expected ROWSxN_IN)\n", argv[i]);
                return 2;
            }
            shapes[nshapes++] = (shape){r, n};
        } else if (type_by_name(argv[i]) >= 0 && ntypes < 32) types[ntypes++] = (uint32_t)type_by_name(argv[i]);
        else {
            fprintf(
                stderr,
                "usage: qbench [-t THREADS] [-r RUNS] [-p POOL_MB] [-l rows|packed|both] [-s ROWSxN_IN]... [TYPE...]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 16 || runs < 1 || runs > 64) {
        fprintf(stderr, "qbench: threads must be 1..16 and runs 1..64\n");
        return 2;
    }
    if (!ntypes) {
        const uint32_t def[] = {MF_TYPE_Q4_0, MF_TYPE_Q8_0, MF_TYPE_Q6_K, MF_TYPE_Q4_K, MF_TYPE_MXFP4, MF_TYPE_F16};
        for (int k = 0; k < 6; k++) types[ntypes++] = def[k];
    }
    if (!nshapes) {
        shapes[nshapes++] = (shape){5632, 2048};
        shapes[nshapes++] = (shape){2048, 5632};
        shapes[nshapes++] = (shape){32000, 2048};
    }
    printf("qbench: mf_matmul_rows, %s kernels, %d thread%s, median of %d runs, %zu MB weight pool\n",
           mf_quant_kernels(), threads, threads > 1 ? "s" : "", runs, pool_mb);
    if ((layouts & 2) && !mf_pack_supported(types[0]))
        printf("(this build has no packed kernels: packed = the scalar twin)\n");
    printf("%-6s %-6s %13s %11s %12s %12s %14s %15s %15s\n", "type", "layout", "rows x n_in", "weights", "n_tok=1",
           "per product", "of read GB/s", "n_tok=16", "n_tok=64");
    for (int s = 0; s < nshapes; s++)
        for (int k = 0; k < ntypes; k++)
            for (int l = 0; l < 2; l++)
                if (layouts & (1 << l)) bench(types[k], shapes[s], threads, runs, pool_mb << 20, l);
    return 0;
}
