/* ctx.cuh — the internal contract between the CUDA files: an execution context (stream,
 * cuBLAS handle, prompt-path scratch, the first error of a step), the view of a weight
 * matrix the kernels take, and the launchers each kernel file exports.
 *
 * Errors. Backend operations return void (backend.h), so a launcher that fails records the
 * first message in the context (mf_cu_fail) and later launches of the step are skipped;
 * step_end() reports it. Every CUDA and cuBLAS call is checked.
 *
 * Streams. Everything of a session runs in order on ctx->stream; nothing synchronizes with
 * the host except argmax/read (one value or one buffer back) and the MoE prompt path (the
 * per-expert token counts, needed to size the cuBLAS calls).
 *
 * Kernel names. Every __global__ function is declared inside namespace mf_kernels (around
 * each file's anonymous namespace), so its mangled and demangled names contain
 * "mf_kernels": tools/gpu_check.sh runs compute-sanitizer's racecheck with --kernel-name
 * kns=mf_kernels, which checks minfer's kernels and leaves cuBLAS's alone (its Hopper
 * kernels synchronize in ways racecheck reports as hazards that are not minfer's).
 */
#ifndef MF_CUDA_CTX_CUH
#define MF_CUDA_CTX_CUH

#include <cstddef>
#include <cstdint>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "common.cuh"
#include "geometry.cuh"

extern "C" {
#include "err.h"
#include "types.h"
}

typedef struct mf_cu_ctx {
    cudaStream_t stream;
    cublasHandle_t blas;
    int sm_count;
    size_t smem_optin; /* largest dynamic shared memory a block may opt in to */
    /* prompt path (gemv_gemm.cu): F16 copies of a weight tile and of the activations */
    __half *wh;
    size_t wh_cap; /* elements */
    __half *xh;
    size_t xh_cap;
    int capturing; /* inside cudaStreamBeginCapture: no host synchronization */
    int failed;
    char msg[960];
} mf_cu_ctx;

/* Create the stream and the cuBLAS handle, and F16 scratch of wh_cap + xh_cap elements
 * (0: none, then the prompt path is unavailable). */
int mf_cu_ctx_init(mf_cu_ctx *c, size_t wh_cap, size_t xh_cap, mf_err *err);
void mf_cu_ctx_free(mf_cu_ctx *c);

/* Record an error (the first one of a step wins). Always returns false. */
bool mf_cu_fail(mf_cu_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* true if e is cudaSuccess, else records "what: <CUDA message>" */
bool mf_cu_check(mf_cu_ctx *c, cudaError_t e, const char *what);
bool mf_cu_blas_check(mf_cu_ctx *c, cublasStatus_t s, const char *what);
/* after a kernel launch: the launch error, if any (no synchronization) */
bool mf_cu_launched(mf_cu_ctx *c, const char *kernel);
/* "cudaMalloc of %zu bytes failed: ..." into err; returns -1 (for setup code with an mf_err) */
int mf_cu_err(mf_err *err, cudaError_t e, const char *what);

static inline unsigned mf_cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

/* A weight matrix as the kernels see it: n_out rows of n_in elements of `type`, row o at
 * w + o·row_bytes (device memory, the file's own bytes), optional float bias[n_out]. */
typedef struct mf_cu_mat {
    uint32_t type;
    const uint8_t *w;
    int64_t n_in, n_out;
    size_t row_bytes;
    const float *bias;
} mf_cu_mat;

/* ---------------------------------------------------------------- matrix products */

/* out_j[r·ldo_j + o] (+)= Σ_i W_j[o][i]·x[r·ldx + i] (+ b_j[o]) for up to 3 matrices of the
 * same n_in (q, k, v) and rows tokens: GEMV (gemv_vec.cu) below MF_GEMM_MIN_ROWS, F16
 * tiles + cuBLAS (gemv_gemm.cu) from there on. (matmul.cu) */
void mf_cu_matmul(mf_cu_ctx *c, const mf_cu_mat *m, float *const *out, const int64_t *ldo, int n_mats, const float *x,
                  int64_t ldx, int rows, int accumulate);

/* GEMV: rows <= MF_GEMV_MAX_TOK tokens, matrices of one type (gemv_vec.cu) */
void mf_cu_gemv(mf_cu_ctx *c, const mf_cu_mat *m, float *const *out, const int64_t *ldo, int n_mats, const float *x,
                int64_t ldx, int rows, int accumulate);
/* act[r·ld_act + o] = silu(gate·x_r)·(up·x_r): both projections and the product in one pass
 * (gate and up of one type, rows <= MF_GEMV_MAX_TOK) */
void mf_cu_gemv_swiglu(mf_cu_ctx *c, const mf_cu_mat *gate, const mf_cu_mat *up, const float *x, int64_t ldx, int rows,
                       float *act, int64_t ld_act);
/* prompt path: each matrix dequantized to F16 in tiles, x converted once, cublasGemmEx */
void mf_cu_gemm(mf_cu_ctx *c, const mf_cu_mat *m, float *const *out, const int64_t *ldo, int n_mats, const float *x,
                int64_t ldx, int rows, int accumulate);

/* ---------------------------------------------------------------- element-wise (act.cu) */

/* g[i] = silu(g[i])·u[i] for n values */
void mf_cu_swiglu(mf_cu_ctx *c, float *g, const float *u, int64_t n);
/* g[i] = clamped SwiGLU(g[i], u[i]) (gpt-oss) */
void mf_cu_swiglu_oai(mf_cu_ctx *c, float *g, const float *u, int64_t n, float limit, float alpha);

/* ---------------------------------------------------------------- embed.cu, norm_rope.cu */

/* x[r] = dequantized row tokens[r] of emb (tokens in device memory, checked < n_out) */
void mf_cu_embed(mf_cu_ctx *c, const mf_cu_mat *emb, const int32_t *tokens, int n, float *x);
/* out[r] = x[r] / sqrt(mean(x[r]²) + eps) · g, rows of width d */
void mf_cu_rmsnorm(mf_cu_ctx *c, const float *x, const float *g, float eps, float *out, int rows, int d);

typedef struct mf_cu_rope_args {
    float *q;           /* [n][H·hd], rotated in place */
    const float *k, *v; /* [n][Hkv·hd] */
    void *kc, *vc;      /* layer cache [n_seq][Hkv][slots][hd], float or binary16 */
    int kv_f16, slots;
    int64_t seq_stride;         /* elements from one sequence's cache to the next */
    const float *cos_t, *sin_t; /* [n_ctx][n_rot/2], mscale included */
    int n_ctx;
    const int32_t *pos; /* device [n]: the position of each row */
    const int32_t *seq; /* device [n]: the sequence of each row (its cache) */
    int n, H, Hkv, hd, n_rot, neox;
} mf_cu_rope_args;
void mf_cu_rope_kv(mf_cu_ctx *c, const mf_cu_rope_args *a);

/* ---------------------------------------------------------------- flash_attn.cu */

typedef struct mf_cu_attn_args {
    const float *q;      /* [n][H·hd] */
    float *out;          /* [n][H·hd] */
    const void *kc, *vc; /* [n_seq][Hkv][slots][hd] */
    int kv_f16, slots;
    int64_t seq_stride;  /* elements from one sequence's cache to the next */
    const int32_t *pos0; /* device: the position of row 0; the n rows are consecutive
                            positions of one sequence */
    const int32_t *seq;  /* device: that sequence (its cache: kc + seq·seq_stride) */
    int n, H, Hkv, hd;
    int window; /* 0: full causal; else keys with p − t < window */
    float scale;
    const float *sinks; /* [H] raw logits, or NULL */
    /* flash-decoding (n == 1): keys split in chunks of `chunk` (a multiple of 32), nsplit
     * blocks per KV head, partial results in part_o [nsplit][H][hd], part_ml [nsplit][H][2].
     * chunk == 0: one pass per block, output written directly (prompts). */
    int chunk, nsplit;
    float *part_o, *part_ml;
} mf_cu_attn_args;

void mf_cu_attention(mf_cu_ctx *c, const mf_cu_attn_args *a);
/* Shared memory the kernel needs for head dim hd, and the one-time opt-in above 48 KiB. */
size_t mf_cu_attn_smem(int hd);
int mf_cu_attn_configure(int hd, int kv_f16, size_t smem_optin, mf_err *err);
/* the split (mf_cu_attn_split) and the grid (mf_cu_attn_grid): geometry.cuh */

/* ---------------------------------------------------------------- moe.cu */

typedef struct mf_cu_moe_args {
    const float *h; /* [n][d] */
    float *x;       /* [n][d], += */
    int n, d, F, E, k;
    float limit, alpha;
    mf_cu_mat router; /* [E][d] (+ bias) */
    /* stacked experts: expert e's matrix at w + e·n_out·row_bytes, bias row at bias + e·n_out */
    mf_cu_mat gate, up, down;
    /* scratch, max_batch = the largest n */
    float *logits;        /* [max_batch][E] */
    int32_t *sel;         /* [max_batch][k] */
    float *selw;          /* [max_batch][k] */
    float *g, *u;         /* [max_batch·k][F] */
    float *hg;            /* [max_batch·k][d] gathered inputs (prompt path) */
    float *y;             /* [max_batch·k][d] expert outputs (prompt path) */
    int32_t *counts;      /* [E + 1] + offsets [E + 1] (device) */
    int32_t *perm, *inv;  /* [max_batch·k] */
    int32_t *counts_host; /* [2·(E + 1)] pinned */
} mf_cu_moe_args;

/* below this many tokens the MoE runs per token (graph-capturable, no host round trip) */
#define MF_MOE_GROUP_MIN 8
void mf_cu_moe(mf_cu_ctx *c, const mf_cu_moe_args *a);

/* ---------------------------------------------------------------- upload.cu */

struct mf_model;
/* Copy every weight of m into one device allocation (each tensor once, in its file type,
 * 256-byte aligned: memory.h mf_mem_device_weights); dev[i] receives the address of weight i
 * of the model's list (NULL: absent), *base the allocation, *bytes its size. Fails with
 * both numbers when the weights do not fit in the free device memory. progress (may be NULL)
 * receives the bytes uploaded after each staged chunk. */
int mf_cu_upload_model(const struct mf_model *m, void **base, const uint8_t **dev, size_t *bytes,
                       void (*progress)(void *user, uint64_t done, uint64_t total), void *user, mf_err *err);

/* ---------------------------------------------------------------- sample.cu */

/* *out = index of the largest of n floats (first on ties; NaN never wins) */
void mf_cu_argmax(mf_cu_ctx *c, const float *buf, int n, int32_t *out);

#endif
