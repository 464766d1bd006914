/* matmul.c — the CPU backend's matrix product, and the ops built from it (qkv, dense FFN).
 *
 *   y[r][o] (+)= Σ_i W[o][i]·x[r][i] (+ b[o])
 *
 * Two paths, chosen by the number of rows (tokens) of the step:
 *
 * 1. Quantized weights, any number of rows. Convert each activation row once into the weight
 *    type's 8-bit block format (quant.h) and let the threads split the weight rows; each
 *    thread calls mf_matmul_rows() on a chunk, which reads each weight row once for a group
 *    of up to MF_CPU_QROWS tokens and does integer dot products (AVX2 / AVX-VNNI; AVX-512
 *    VNNI tiles of 16 rows x 16 tokens for batches where the compiler targets them).
 *    Decode (one token) is memory-bound: the whole matrix streams from DRAM once per token,
 *    so the goal is to keep both cores' load units busy — chunks are claimed dynamically so
 *    neither core idles at the end. A prompt is compute-bound, and the integer kernels'
 *    tiles measured faster here than dequantizing to float32 for sgemm (docs/cpu.md §3),
 *    so prompts take this path too.
 * 2. Float weights (F32/F16/BF16) and a batch of MF_CPU_BLAS_MIN_ROWS rows or more, when
 *    OpenBLAS runs a kernel for this CPU's vector units: each thread converts a tile of
 *    MF_CPU_TILE_ROWS weight rows to float32 (it fits in L2) and multiplies it with all
 *    rows of x by a single-threaded sgemm. OpenBLAS runs single-threaded inside our pool, so
 *    the two never compete for cores. (An OpenBLAS that did not recognize the CPU falls back
 *    to SSE3 kernels three times slower than path 1; then path 1 is used.)
 */
#include "cpu.h"
#include "quant.h"

#include <math.h>
#include <string.h>

#ifdef MF_HAVE_BLAS
#include <cblas.h>
#endif

typedef struct mm_job {
    uint32_t wtype;
    const uint8_t *W;
    const uint8_t *P;       /* W's packed copy (repack.c), or NULL */
    size_t row_bytes;
    int64_t n_in, n_out;
    const float *x;
    int64_t x_stride;
    const void *qx;
    size_t qx_stride;
    int rows;
    float *y, *tmp;
    int64_t y_stride;
    int accumulate;
    const float *bias;
    int64_t chunk;          /* weight rows per task */
    float *deq;             /* per-thread tiles (BLAS path) */
    int first_task;         /* in a group: the first task index of this matrix */
} mm_job;

/* Several matrices multiplied with the same input in one parallel region (q/k/v, gate/up):
 * the input is converted once and the threads never wait between the products. */
typedef struct mm_group {
    mm_job job[3];
    int n;
} mm_group;

/* path 1: quantized dot products over a chunk of weight rows */
static void mm_task_q(void *ctx, int task, int thread)
{
    (void)thread;
    mm_job *j = ctx;
    task -= j->first_task;
    int64_t r0 = (int64_t)task * j->chunk, r1 = r0 + j->chunk;
    if (r1 > j->n_out) r1 = j->n_out;
    if (j->P) mf_matmul_packed(j->wtype, j->P, j->n_in, j->n_out, r0, r1, j->qx, j->qx_stride, j->rows, j->tmp, j->n_out);
    else mf_matmul_rows(j->wtype, j->W, j->n_in, r0, r1, j->qx, j->qx_stride, j->rows, j->tmp, j->n_out);
    for (int t = 0; t < j->rows; t++) {
        float *yr = j->y + (int64_t)t * j->y_stride;
        const float *tr = j->tmp + (int64_t)t * j->n_out;
        for (int64_t o = r0; o < r1; o++) {
            float v = tr[o] + (j->bias ? j->bias[o] : 0.0f);
            yr[o] = j->accumulate ? yr[o] + v : v;
        }
    }
}

/* Weight rows per task: about 8 chunks per thread, multiples of 16 rows, enough for dynamic
 * balance and few enough that claiming a chunk is noise; but at least MF_CPU_MIN_TASK_MACS
 * multiply-adds per chunk, so that the products of a small model run on one thread instead
 * of paying a wake-up per product (one chunk = no wake-up at all). */
static int64_t chunk_rows(const cpu_backend *cb, int64_t n_out, int64_t n_in, int rows)
{
    int64_t chunk = n_out / ((int64_t)cb->n_threads * 8);
    int64_t least = MF_CPU_MIN_TASK_MACS / (n_in * (rows < MF_CPU_QROWS ? rows : MF_CPU_QROWS) + 1);
    if (chunk < least) chunk = least;
    return chunk < 16 ? 16 : (chunk + 15) / 16 * 16;
}

#ifdef MF_HAVE_BLAS
/* path 2: dequantize a tile of weight rows, then sgemm with all rows of x */
static void mm_task_blas(void *ctx, int task, int thread)
{
    mm_job *j = ctx;
    int64_t r0 = (int64_t)task * MF_CPU_TILE_ROWS, nr = MF_CPU_TILE_ROWS;
    if (r0 + nr > j->n_out) nr = j->n_out - r0;
    float *tile = j->deq + (size_t)thread * MF_CPU_TILE_ROWS * (size_t)j->n_in;
    for (int64_t r = 0; r < nr; r++)
        mf_dequantize_row(j->wtype, j->W + (size_t)(r0 + r) * j->row_bytes, tile + r * j->n_in, j->n_in);
    /* C[rows][nr] = X[rows][n_in] · tileᵀ, written in place into the columns r0.. of y */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->rows, (int)nr, (int)j->n_in, 1.0f, j->x,
                (int)j->x_stride, tile, (int)j->n_in, j->accumulate ? 1.0f : 0.0f, j->y + r0,
                (int)j->y_stride);
    if (j->bias)
        for (int t = 0; t < j->rows; t++)
            for (int64_t o = 0; o < nr; o++) j->y[(int64_t)t * j->y_stride + r0 + o] += j->bias[r0 + o];
}
#endif

void mf_cpu_matmul(cpu_backend *cb, mf_bstate *st, uint32_t wtype, const void *W, size_t row_bytes,
                   int64_t n_in, int64_t n_out, const float *x, int64_t x_stride, int rows,
                   float *y, int64_t y_stride, int accumulate, const float *bias)
{
    mm_job j = {.wtype = wtype, .W = W, .row_bytes = row_bytes, .n_in = n_in, .n_out = n_out,
                .x = x, .x_stride = x_stride, .rows = rows, .y = y, .y_stride = y_stride,
                .accumulate = accumulate, .bias = bias, .tmp = st->tmp, .deq = st->deq};
#ifdef MF_HAVE_BLAS
    if (cb->blas_ok && rows >= MF_CPU_BLAS_MIN_ROWS && mf_act_type(wtype) == MF_TYPE_F32) {
        mf_pool_run(cb->pool, mm_task_blas, &j, (int)((n_out + MF_CPU_TILE_ROWS - 1) / MF_CPU_TILE_ROWS));
        return;
    }
#endif
    /* about 8 chunks per thread, multiples of 16 rows: enough for dynamic balance, few enough
     * that claiming a chunk is noise */
    int64_t chunk = chunk_rows(cb, n_out, n_in, rows);
    j.chunk = chunk;
    j.P = mf_cpu_packed_of(cb, W, (size_t)n_out * row_bytes);
    size_t ab = mf_act_bytes(wtype, n_in);
    /* groups of at most MF_CPU_QROWS tokens (the size of the tmp scratch) */
    for (int t0 = 0; t0 < rows; t0 += MF_CPU_QROWS) {
        int nt = rows - t0 < MF_CPU_QROWS ? rows - t0 : MF_CPU_QROWS;
        /* the activation rows, converted once for all weight rows */
        for (int t = 0; t < nt; t++)
            mf_quantize_act(wtype, x + (int64_t)(t0 + t) * x_stride, (uint8_t *)st->qx + (size_t)t * ab, n_in);
        j.qx = st->qx;
        j.qx_stride = ab;
        j.rows = nt;
        j.y = y + (int64_t)t0 * y_stride;
        mf_pool_run(cb->pool, mm_task_q, &j, (int)((n_out + chunk - 1) / chunk));
    }
}

static const float *bias_of(const mf_weight *b)
{
    return b && b->name ? (const float *)b->data : NULL;
}

static void mm_task_group(void *ctx, int task, int thread)
{
    mm_group *g = ctx;
    int m = 0;
    while (m + 1 < g->n && task >= g->job[m + 1].first_task) m++;
    mm_task_q(&g->job[m], task, thread);
}

/* out[i] = W[i] · x (+ b[i]) for n matrices sharing the input. A decode step (fewer rows than
 * the BLAS threshold) with matrices of one type and width takes a single parallel region;
 * anything else falls back to one product after the other. */
static void matmul_group(mf_backend *be, mf_bstate *st, int n, const mf_weight *const *W,
                         const mf_weight *const *b, float *const *out, const float *x, int rows)
{
    cpu_backend *cb = be->impl;
    int same = 1;
    for (int i = 1; i < n; i++) same &= W[i]->type == W[0]->type && W[i]->ne[0] == W[0]->ne[0];
#ifdef MF_HAVE_BLAS
    same &= !(cb->blas_ok && rows >= MF_CPU_BLAS_MIN_ROWS && mf_act_type(W[0]->type) == MF_TYPE_F32);
#endif
    if (!same || rows > MF_CPU_QROWS) {
        for (int i = 0; i < n; i++) mf_cpu_matmul_op(be, st, W[i], b[i], x, out[i], rows, 0);
        return;
    }
    uint32_t wtype = W[0]->type;
    int64_t n_in = W[0]->ne[0];
    size_t ab = mf_act_bytes(wtype, n_in);
    for (int t = 0; t < rows; t++) mf_quantize_act(wtype, x + (int64_t)t * n_in, (uint8_t *)st->qx + (size_t)t * ab, n_in);
    mm_group g = {.n = n};
    int tasks = 0;
    float *tmp = st->tmp;
    for (int i = 0; i < n; i++) {
        int64_t n_out = W[i]->ne[1];
        int64_t chunk = chunk_rows(cb, n_out, n_in, rows);
        g.job[i] = (mm_job){.wtype = wtype, .W = W[i]->data, .row_bytes = W[i]->row_bytes, .n_in = n_in,
                            .P = mf_cpu_packed_of(cb, W[i]->data, (size_t)n_out * W[i]->row_bytes),
                            .n_out = n_out, .qx = st->qx, .qx_stride = ab, .rows = rows, .y = out[i],
                            .tmp = tmp, .y_stride = n_out, .bias = bias_of(b[i]), .chunk = chunk,
                            .first_task = tasks};
        tmp += (size_t)rows * (size_t)n_out;  /* each product its own part of the scratch */
        tasks += (int)((n_out + chunk - 1) / chunk);
    }
    /* the three products of a small model together are still less work than a wake-up */
    double macs = (double)n_in * (double)(tmp - st->tmp);  /* tmp advanced rows x n_out per product */
    if (macs < MF_CPU_MIN_TASK_MACS) {
        for (int t = 0; t < tasks; t++) mm_task_group(&g, t, 0);
        return;
    }
    mf_pool_run(cb->pool, mm_task_group, &g, tasks);
}

void mf_cpu_matmul_op(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b,
                      const float *in, float *out, int rows, int accumulate)
{
    mf_cpu_matmul(be->impl, st, W->type, W->data, W->row_bytes, W->ne[0], W->ne[1], in, W->ne[0],
                  rows, out, W->ne[1], accumulate, bias_of(b));
}

void mf_cpu_qkv(mf_backend *be, mf_bstate *st, int l, const float *h, float *q, float *k, float *v)
{
    const mf_layer *L = &st->m->layers[l];
    const mf_weight *W[3] = {&L->wq, &L->wk, &L->wv}, *b[3] = {&L->bq, &L->bk, &L->bv};
    float *out[3] = {q, k, v};
    matmul_group(be, st, 3, W, b, out, h, st->n);
}

float mf_silu(float z) { return z / (1.0f + expf(-z)); }

typedef struct swiglu_job { float *g; const float *u; int64_t n; } swiglu_job;

static void swiglu_task(void *ctx, int task, int thread)
{
    (void)thread;
    swiglu_job *j = ctx;
    int64_t i0 = (int64_t)task * 4096, i1 = i0 + 4096;
    if (i1 > j->n) i1 = j->n;
    for (int64_t i = i0; i < i1; i++) j->g[i] = mf_silu(j->g[i]) * j->u[i];
}

void mf_cpu_ffn(mf_backend *be, mf_bstate *st, int l, const float *h, float *x)
{
    cpu_backend *cb = be->impl;
    const mf_layer *L = &st->m->layers[l];
    int n = st->n;
    int64_t F = L->ffn_gate.ne[1];
    /* x += W_down · (silu(W_gate·h) ⊙ (W_up·h))   (llama-arch.md §4.1 step 8) */
    const mf_weight *W[2] = {&L->ffn_gate, &L->ffn_up}, *b[2] = {NULL, NULL};
    float *out[2] = {st->ff_g, st->ff_u};
    matmul_group(be, st, 2, W, b, out, h, n);
    swiglu_job j = {st->ff_g, st->ff_u, (int64_t)n * F};
    mf_pool_run(cb->pool, swiglu_task, &j, (int)((j.n + 4095) / 4096));
    mf_cpu_matmul_op(be, st, &L->ffn_down, NULL, st->ff_g, x, n, 1);
}
