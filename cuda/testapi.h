/* testapi.h — entry points for the GPU tests (tests/cuda/): each runs one CUDA kernel path
 * on host arrays (upload, launch, download) so a C test can compare it with its CPU twin.
 * Outputs are poisoned with NaN on the device before the launch, so an element the kernel
 * forgot to write shows up. All functions return 0, or -1 with one line in err. */
#ifndef MF_CUDA_TESTAPI_H
#define MF_CUDA_TESTAPI_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mf_cuda_test mf_cuda_test;

/* A device context (stream, cuBLAS, F16 scratch of gemm_elems elements for the prompt path;
 * 0 disables it). NULL with a message when no GPU is usable. */
mf_cuda_test *mf_cuda_test_new(size_t gemm_elems, mf_err *err);
void mf_cuda_test_free(mf_cuda_test *t);

/* a weight matrix in host memory: n_out rows of n_in elements of `type` (file layout) */
typedef struct mf_cuda_test_mat {
    uint32_t type;
    const void *w;
    int64_t n_in, n_out;
    const float *bias; /* n_out floats or NULL */
} mf_cuda_test_mat;

/* out[j][r·n_out_j + o] (+)= W_j x_r (+ b_j) for n_mats (1..3) matrices sharing x
 * [rows][n_in]; path 0: as the backend chooses, 1: GEMV, 2: F16 tiles + cuBLAS.
 * With accumulate the outputs' initial contents are uploaded, else poisoned. */
int mf_cuda_test_matmul(mf_cuda_test *t, const mf_cuda_test_mat *m, int n_mats, const float *x, int rows,
                        float *const *out, int accumulate, int path, mf_err *err);
/* act[r·n_out + o] = silu(gate x_r)·(up x_r), the fused GEMV (rows <= 8) */
int mf_cuda_test_gemv_swiglu(mf_cuda_test *t, const mf_cuda_test_mat *gate, const mf_cuda_test_mat *up, const float *x,
                             int rows, float *act, mf_err *err);
/* x[r] = row tokens[r] of emb */
int mf_cuda_test_embed(mf_cuda_test *t, const mf_cuda_test_mat *emb, const int32_t *tokens, int n, float *x,
                       mf_err *err);
int mf_cuda_test_rmsnorm(mf_cuda_test *t, const float *x, const float *g, float eps, int rows, int d, float *out,
                         mf_err *err);

/* RoPE + cache write for n rows, row r at position pos[r] of sequence seq[r] (pos NULL:
 * pos0 + r; seq NULL: 0): q [n][H·hd] rotated in place; the caches [n_seq][Hkv][slots][hd]
 * (float, or binary16 bits when kv_f16; n_seq <= 1: one) are uploaded, written, downloaded */
typedef struct mf_cuda_test_rope {
    float *q;
    const float *k, *v;
    void *kc, *vc;
    int kv_f16, slots;
    const float *cos_t, *sin_t; /* [n_ctx][n_rot/2] */
    int n_ctx, pos0, n, H, Hkv, hd, n_rot, neox;
    int n_seq;
    const int32_t *pos, *seq;
} mf_cuda_test_rope;
int mf_cuda_test_rope_kv(mf_cuda_test *t, const mf_cuda_test_rope *a, mf_err *err);

/* attention of n query rows at pos0 of sequence seq over caches [n_seq][Hkv][slots][hd]
 * (float or binary16 bits; n_seq <= 1: one); split = 1 (n == 1): the flash-decoding launch
 * with the split of a context of n_ctx positions (window-sized on sliding layers), as the
 * backend makes it */
typedef struct mf_cuda_test_attn {
    const float *q;
    const void *kc, *vc;
    int kv_f16, slots, n_ctx;
    int pos0, n, H, Hkv, hd, window;
    float scale;
    const float *sinks; /* [H] or NULL */
    int split;
    float *out; /* [n][H·hd] */
    int n_seq, seq;
} mf_cuda_test_attn;
int mf_cuda_test_attention(mf_cuda_test *t, const mf_cuda_test_attn *a, mf_err *err);

/* the MoE block on n tokens: x [n][d] is updated in place; sel, selw and logits receive
 * the routing */
typedef struct mf_cuda_test_moe {
    const float *h;
    float *x;
    int n, d, F, E, k;
    float limit, alpha;
    mf_cuda_test_mat router; /* n_in d, n_out E */
    /* stacked experts: w holds E matrices one after the other; bias [E][n_out] or NULL */
    mf_cuda_test_mat gate, up, down;
    int32_t *sel;  /* [n][k] */
    float *selw;   /* [n][k] */
    float *logits; /* [n][E] router logits */
} mf_cuda_test_moe;
int mf_cuda_test_moe_run(mf_cuda_test *t, const mf_cuda_test_moe *a, mf_err *err);

int mf_cuda_test_argmax(mf_cuda_test *t, const float *buf, int n, int32_t *idx, mf_err *err);

#ifdef __cplusplus
}
#endif

#endif
