/* matmul.c — the CPU backend's matrix product, alone and in groups sharing an input, and the
 * qkv op built from it (the dense FFN is ffn.c, the experts moe.c).
 *
 *   y[r][o] (+)= Σ_i W[o][i]·x[r][i] (+ b[o])
 *
 * Two paths, chosen by the weight type and the number of rows (tokens) of the step:
 *
 * 1. Quantized weights, any number of rows. Convert each activation row once into the weight
 *    type's 8-bit block format (quant.h) and let the threads split the weight rows; each
 *    chunk of rows goes to mf_matmul_packed() (the matrix's packed copy, repack.c) or
 *    mf_matmul_rows() (the file's layout), which read each weight row once for a block of up
 *    to MF_CPU_TOK_BLOCK tokens and do integer dot products.
 *    Decode (one token) is memory-bound: the whole matrix streams from DRAM once per token,
 *    so the goal is to keep both cores' load units busy until the very end of a product.
 *    Chunks are claimed from one cursor per parallel region, guided: a claim takes half of
 *    an even share of the rows left (at least one packed group), so the chunks are large at
 *    first (few claims) and small at the end (the threads finish together).
 *    Products with the same input run in one region (q/k/v; gate/up, whose chunks also apply
 *    the gated activation, so the FFN's middle needs no region of its own).
 *    A prompt is compute-bound, and the integer kernels' tiles measured faster here than
 *    dequantizing to float32 for sgemm (docs/cpu.md §3), so prompts take this path too.
 *    Every output element is computed by one kernel call whose float steps do not depend on
 *    the chunk, the thread or the number of tokens (quant.h): results are batch-invariant.
 * 2. Float weights (F32/F16/BF16) and a batch of MF_CPU_BLAS_MIN_ROWS rows or more, when
 *    OpenBLAS runs a kernel for this CPU's vector units: each thread converts a tile of
 *    MF_CPU_TILE_ROWS weight rows to float32 (it fits in L2) and multiplies it with all
 *    rows of x by a single-threaded sgemm. OpenBLAS runs single-threaded inside our pool, so
 *    the two never compete for cores. (An OpenBLAS that did not recognize the CPU falls back
 *    to SSE3 kernels three times slower than path 1; then path 1 is used.) Its sums are not
 *    those of the 1-row path: float-weight products on this path are not batch-invariant
 *    (float models' prompts on CPUs where OpenBLAS is used; see use_blas), so a state of
 *    several sequences never takes it: there a row's result must not depend on how many
 *    rows share its step (docs/batching.md §4).
 */
#include "cpu.h"
#include "memory.h"
#include "quant.h"
#include "vecf.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#ifdef MF_HAVE_BLAS
#include <cblas.h>
#endif

/* ------------------------------------------------------------------ path 1 */

/* One matrix of a region. */
typedef struct mm_mat {
    const uint8_t *W, *P; /* the file's rows; the packed copy or NULL */
    size_t row_bytes;
    int64_t n_out;
    float *y; /* y[t * y_stride + o] */
    int64_t y_stride;
    const float *bias; /* n_out floats or NULL */
    int accumulate;
    int64_t base; /* first row of this matrix in the region's row space */
} mm_mat;

/* A parallel region: up to three products with the same converted input, or (act != NULL)
 * a gated pair: m[0] gate, m[1] up over one row space, y0 = act(gate + b, up + b). All the
 * step's tokens in one region: each weight row is read from memory once per step. */
typedef struct mm_region {
    uint32_t wtype;
    int64_t n_in;
    const uint8_t *qx;
    size_t qx_stride;
    int rows;
    mm_mat m[3];
    int n;
    int64_t total; /* rows of the row space */
    mf_cpu_act act;
    const void *act_params;
    float *tmp;           /* per thread: 2 x [MF_CPU_TOK_BLOCK][16] kernel results */
    int64_t least, most;  /* smallest and largest chunk, multiples of 16 */
    int shares;           /* 2 x threads: a claim takes rows left / shares */
    _Atomic int64_t next; /* the cursor */
} mm_region;

/* Claim the next chunk [*r0, *r1) of the row space (never across two matrices); 0 when all
 * rows are taken. */
static int claim(mm_region *g, int64_t *r0, int64_t *r1)
{
    int64_t cur = atomic_load_explicit(&g->next, memory_order_relaxed);
    for (;;) {
        if (cur >= g->total) return 0;
        int64_t size = (g->total - cur) / g->shares;
        size = size < g->least ? g->least : size > g->most ? g->most : (size + 15) / 16 * 16;
        int m = 0;
        while (m + 1 < g->n && !g->act && cur >= g->m[m + 1].base) m++;
        int64_t end = g->act || m + 1 == g->n ? g->total : g->m[m + 1].base;
        if (cur + size < end) end = cur + size;
        if (atomic_compare_exchange_weak_explicit(&g->next, &cur, end, memory_order_relaxed, memory_order_relaxed)) {
            *r0 = cur;
            *r1 = end;
            return 1;
        }
    }
}

/* out[t][0 .. nr) = rows [r, r + nr) of matrix m (nr <= 16, r a multiple of 16) · tokens
 * [t0, t0 + nt), 16 floats per token */
static void kernel16(const mm_region *g, const mm_mat *m, int64_t r, int nr, int t0, int nt, float *out)
{
    const uint8_t *x = g->qx + (size_t)t0 * g->qx_stride;
    if (m->P)
        mf_matmul_packed(g->wtype, m->P + (size_t)r * m->row_bytes, g->n_in, m->n_out - r, 0, nr, x, g->qx_stride, nt,
                         out, 16);
    else mf_matmul_rows(g->wtype, m->W + (size_t)r * m->row_bytes, g->n_in, 0, nr, x, g->qx_stride, nt, out, 16);
}

/* A chunk of rows [r0, r1) of matrix m (or of the gated pair) for all tokens: tokens in
 * blocks whose converted activations stay in L2, within a block the chunk's rows 16 at a
 * time (their weights stay in L1/L2 across the blocks). */
static void chunk(const mm_region *g, const mm_mat *m, int64_t r0, int64_t r1, float *tmp)
{
    float *ta = tmp, *tb = tmp + MF_CPU_TOK_BLOCK * 16;
    for (int t0 = 0; t0 < g->rows; t0 += MF_CPU_TOK_BLOCK) {
        int nt = g->rows - t0 < MF_CPU_TOK_BLOCK ? g->rows - t0 : MF_CPU_TOK_BLOCK;
        for (int64_t r = r0; r < r1; r += 16) {
            int nr = r1 - r < 16 ? (int)(r1 - r) : 16;
            if (g->act) {
                const mm_mat *up = &g->m[1];
                kernel16(g, m, r, nr, t0, nt, ta);
                kernel16(g, up, r, nr, t0, nt, tb);
                for (int t = 0; t < nt; t++) {
                    float *ga = ta + t * 16, *ub = tb + t * 16;
                    for (int o = 0; o < nr; o++) {
                        if (m->bias) ga[o] += m->bias[r + o];
                        if (up->bias) ub[o] += up->bias[r + o];
                    }
                    g->act(m->y + (int64_t)(t0 + t) * m->y_stride + r, ga, ub, nr, g->act_params);
                }
                continue;
            }
            kernel16(g, m, r, nr, t0, nt, ta);
            for (int t = 0; t < nt; t++) {
                float *yr = m->y + (int64_t)(t0 + t) * m->y_stride + r;
                for (int o = 0; o < nr; o++) {
                    float v = ta[t * 16 + o] + (m->bias ? m->bias[r + o] : 0.0f);
                    yr[o] = m->accumulate ? yr[o] + v : v;
                }
            }
        }
    }
}

static void region_task(void *ctx, int task, int thread)
{
    (void)task;
    mm_region *g = ctx;
    float *tmp = g->tmp + (size_t)thread * 2 * MF_CPU_TOK_BLOCK * 16;
    int64_t c0, c1;
    while (claim(g, &c0, &c1)) {
        int mi = 0;
        while (mi + 1 < g->n && !g->act && c0 >= g->m[mi + 1].base) mi++;
        chunk(g, &g->m[mi], c0 - g->m[mi].base, c1 - g->m[mi].base, tmp);
    }
}

/* Convert the activation rows into st->qx: one row per task. */
typedef struct conv_job {
    uint32_t wtype;
    const float *x;
    int64_t x_stride, n_in;
    uint8_t *qx;
    size_t ab;
} conv_job;

static void conv_task(void *ctx, int task, int thread)
{
    (void)thread;
    const conv_job *j = ctx;
    mf_quantize_act(j->wtype, j->x + (int64_t)task * j->x_stride, j->qx + (size_t)task * j->ab, j->n_in);
}

static void convert(cpu_backend *cb, mf_bstate *st, uint32_t wtype, const float *x, int64_t x_stride, int rows,
                    int64_t n_in)
{
    conv_job j = {wtype, x, x_stride, n_in, st->qx, mf_act_bytes(wtype, n_in)};
    if (rows * n_in < MF_CPU_MIN_TASK_MACS / 8) { /* a decode step's row: a few microseconds */
        for (int t = 0; t < rows; t++) conv_task(&j, t, 0);
        return;
    }
    mf_pool_run(cb->pool, conv_task, &j, rows);
}

/* Run a region whose matrices, input and outputs are set: on the caller alone when it is
 * less work than waking a thread costs (MF_CPU_MIN_TASK_MACS), else on the pool. */
static void run_region(cpu_backend *cb, mf_bstate *st, mm_region *g)
{
    double macs = (double)g->n_in * (double)g->rows * (double)g->total * (g->act ? 2.0 : 1.0);
    /* the smallest chunk: one packed group, or more where a group is less than the work
     * worth a claim (small models); the largest: for batches, as many rows as keep their
     * weights in L2 while the token blocks pass (about 256 KB) */
    int64_t least = MF_CPU_MIN_TASK_MACS / 8 / (g->n_in * g->rows + 1);
    g->least = least < 16 ? 16 : (least + 15) / 16 * 16;
    int64_t rb = (int64_t)mf_type_row_bytes(g->wtype, g->n_in) * (g->act ? 2 : 1);
    g->most = g->rows == 1 ? g->total : (((int64_t)256 << 10) / (rb + 1)) / 16 * 16;
    if (g->most < g->least) g->most = g->least;
    g->shares = 2 * cb->n_threads;
    g->tmp = st->tmp;
    atomic_store_explicit(&g->next, 0, memory_order_relaxed);
    if (macs < MF_CPU_MIN_TASK_MACS || cb->n_threads == 1) {
        region_task(g, 0, 0);
        return;
    }
    mf_pool_run(cb->pool, region_task, g, cb->n_threads);
}

/* ------------------------------------------------------------------ path 2 */

#ifdef MF_HAVE_BLAS
typedef struct blas_job {
    uint32_t wtype;
    const uint8_t *W;
    size_t row_bytes;
    int64_t n_in, n_out;
    const float *x;
    int64_t x_stride;
    int rows;
    float *y;
    int64_t y_stride;
    int accumulate;
    const float *bias;
    float *deq; /* per-thread tiles */
} blas_job;

/* dequantize a tile of weight rows, then sgemm with all rows of x */
static void blas_task(void *ctx, int task, int thread)
{
    blas_job *j = ctx;
    int64_t r0 = (int64_t)task * MF_CPU_TILE_ROWS, nr = MF_CPU_TILE_ROWS;
    if (r0 + nr > j->n_out) nr = j->n_out - r0;
    float *tile = j->deq + (size_t)thread * MF_CPU_TILE_ROWS * (size_t)j->n_in;
    for (int64_t r = 0; r < nr; r++)
        mf_dequantize_row(j->wtype, j->W + (size_t)(r0 + r) * j->row_bytes, tile + r * j->n_in, j->n_in);
    /* C[rows][nr] = X[rows][n_in] · tileᵀ, written in place into the columns r0.. of y */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->rows, (int)nr, (int)j->n_in, 1.0f, j->x, (int)j->x_stride,
                tile, (int)j->n_in, j->accumulate ? 1.0f : 0.0f, j->y + r0, (int)j->y_stride);
    if (j->bias)
        for (int t = 0; t < j->rows; t++)
            for (int64_t o = 0; o < nr; o++) j->y[(int64_t)t * j->y_stride + r0 + o] += j->bias[r0 + o];
}
#endif

/* Path 2 for float weights, a batch and at least one tile per thread: a smaller matrix
 * (gpt-oss's router, 32 rows) would leave threads idle, and on path 1 it keeps the
 * quantized models' batch invariance whole. Never in a state of several sequences
 * (docs/batching.md §4). */
static int use_blas(const cpu_backend *cb, const mf_bstate *st, uint32_t wtype, int rows, int64_t n_out)
{
#ifdef MF_HAVE_BLAS
    return cb->blas_ok && rows >= MF_CPU_BLAS_MIN_ROWS && mf_act_type(wtype) == MF_TYPE_F32 &&
           n_out >= (int64_t)MF_CPU_TILE_ROWS * cb->n_threads && mf_mem_n_seq(&st->o) == 1;
#else
    (void)cb, (void)st, (void)wtype, (void)rows, (void)n_out;
    return 0;
#endif
}

/* ------------------------------------------------------------------ the products */

void mf_cpu_matmul(cpu_backend *cb, mf_bstate *st, uint32_t wtype, const void *W, size_t row_bytes, int64_t n_in,
                   int64_t n_out, const float *x, int64_t x_stride, int rows, float *y, int64_t y_stride,
                   int accumulate, const float *bias)
{
#ifdef MF_HAVE_BLAS
    if (use_blas(cb, st, wtype, rows, n_out)) {
        blas_job j = {.wtype = wtype,
                      .W = W,
                      .row_bytes = row_bytes,
                      .n_in = n_in,
                      .n_out = n_out,
                      .x = x,
                      .x_stride = x_stride,
                      .rows = rows,
                      .y = y,
                      .y_stride = y_stride,
                      .accumulate = accumulate,
                      .bias = bias,
                      .deq = st->deq};
        mf_pool_run(cb->pool, blas_task, &j, (int)((n_out + MF_CPU_TILE_ROWS - 1) / MF_CPU_TILE_ROWS));
        return;
    }
#endif
    mm_region g = {.wtype = wtype,
                   .n_in = n_in,
                   .qx = st->qx,
                   .qx_stride = mf_act_bytes(wtype, n_in),
                   .n = 1,
                   .total = n_out,
                   .rows = rows};
    g.m[0] = (mm_mat){.W = W,
                      .P = mf_cpu_packed_of(st, W, (size_t)n_out * row_bytes),
                      .row_bytes = row_bytes,
                      .n_out = n_out,
                      .y = y,
                      .y_stride = y_stride,
                      .bias = bias,
                      .accumulate = accumulate};
    convert(cb, st, wtype, x, x_stride, rows, n_in);
    run_region(cb, st, &g);
}

static const float *bias_of(const mf_weight *b) { return b && b->name ? (const float *)b->data : NULL; }

static void matmul_w(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b, const float *in, float *out,
                     int rows, int accumulate)
{
    mf_cpu_matmul(be->impl, st, W->type, W->data, W->row_bytes, W->ne[0], W->ne[1], in, W->ne[0], rows, out, W->ne[1],
                  accumulate, bias_of(b));
}
void mf_cpu_matmul_op(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b, const float *in,
                      float *out, int rows, int accumulate)
{
    mf_cpu_observe(st, W, 0, in, rows);
    matmul_w(be, st, W, b, in, out, rows, accumulate);
}

/* The matrices of a region from weights of one type and width, the packed copies looked up. */
static void set_mats(mf_bstate *st, mm_region *g, int n, const mf_weight *const *W, const float *const *bias,
                     float *const *out)
{
    int64_t base = 0;
    for (int i = 0; i < n; i++) {
        int64_t n_out = W[i]->ne[1];
        g->m[i] = (mm_mat){.W = W[i]->data,
                           .P = mf_cpu_packed_of(st, W[i]->data, (size_t)n_out * W[i]->row_bytes),
                           .row_bytes = W[i]->row_bytes,
                           .n_out = n_out,
                           .y = out[i],
                           .y_stride = n_out,
                           .bias = bias[i],
                           .base = base};
        base += n_out;
    }
    g->n = n;
    g->total = base;
}

/* out[i] = W[i] · x (+ b[i]) for n matrices sharing the input (cpu.h): one parallel region
 * when they have one type and width (q/k/v), else one product after the other. */
void mf_cpu_matmul_group(mf_backend *be, mf_bstate *st, int n, const mf_weight *const *W, const mf_weight *const *b,
                         float *const *out, const float *x, int rows)
{
    cpu_backend *cb = be->impl;
    for (int i = 0; i < n; i++) mf_cpu_observe(st, W[i], 0, x, rows);
    int same = !use_blas(cb, st, W[0]->type, rows, W[0]->ne[1]);
    for (int i = 1; i < n; i++) same &= W[i]->type == W[0]->type && W[i]->ne[0] == W[0]->ne[0];
    if (!same) {
        for (int i = 0; i < n; i++) matmul_w(be, st, W[i], b[i], x, out[i], rows, 0);
        return;
    }
    uint32_t wtype = W[0]->type;
    int64_t n_in = W[0]->ne[0];
    mm_region g = {.wtype = wtype, .n_in = n_in, .qx = st->qx, .qx_stride = mf_act_bytes(wtype, n_in), .rows = rows};
    const float *bias[3];
    for (int i = 0; i < n; i++) bias[i] = bias_of(b[i]);
    set_mats(st, &g, n, W, bias, out);
    convert(cb, st, wtype, x, n_in, rows, n_in);
    run_region(cb, st, &g);
}

void mf_cpu_gated(mf_backend *be, mf_bstate *st, const mf_weight *Wg, const float *bg, const mf_weight *Wu,
                  const float *bu, int matrix, const float *x, int rows, float *out, float *scratch, mf_cpu_act act,
                  const void *params)
{
    cpu_backend *cb = be->impl;
    int64_t n_in = Wg->ne[0], F = Wg->ne[1];
    size_t mb = (size_t)F * Wg->row_bytes; /* one matrix (an expert's slice of a stack) */
    const uint8_t *wg = (const uint8_t *)Wg->data + (size_t)matrix * mb,
                  *wu = (const uint8_t *)Wu->data + (size_t)matrix * mb;
    mf_cpu_observe(st, Wg, matrix, x, rows);
    mf_cpu_observe(st, Wu, matrix, x, rows);
    if (Wu->type != Wg->type || Wu->ne[0] != n_in || Wu->ne[1] != F || use_blas(cb, st, Wg->type, rows, F)) {
        /* two products, then the activation on the caller (float models' prompts) */
        mf_cpu_matmul(cb, st, Wg->type, wg, Wg->row_bytes, n_in, F, x, n_in, rows, out, F, 0, bg);
        mf_cpu_matmul(cb, st, Wu->type, wu, Wu->row_bytes, n_in, F, x, n_in, rows, scratch, F, 0, bu);
        for (int t = 0; t < rows; t++)
            act(out + (int64_t)t * F, out + (int64_t)t * F, scratch + (int64_t)t * F, F, params);
        return;
    }
    mm_region g = {.wtype = Wg->type,
                   .n_in = n_in,
                   .qx = st->qx,
                   .qx_stride = mf_act_bytes(Wg->type, n_in),
                   .rows = rows,
                   .act = act,
                   .act_params = params,
                   .n = 2,
                   .total = F}; /* one row space: a chunk is the same rows of both */
    g.m[0] = (mm_mat){.W = wg,
                      .P = mf_cpu_packed_of(st, wg, mb),
                      .row_bytes = Wg->row_bytes,
                      .n_out = F,
                      .y = out,
                      .y_stride = F,
                      .bias = bg};
    g.m[1] = (mm_mat){.W = wu, .P = mf_cpu_packed_of(st, wu, mb), .row_bytes = Wu->row_bytes, .n_out = F, .bias = bu};
    convert(cb, st, Wg->type, x, n_in, rows, n_in);
    run_region(cb, st, &g);
}

void mf_cpu_qkv(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const mf_weight *const b[3], const float *h,
                float *q, float *k, float *v)
{
    float *out[3] = {q, k, v};
    mf_cpu_matmul_group(be, st, 3, W, b, out, h, st->n);
}
