/* backend.h — the contract between the forward pass (forward.c, written once) and the
 * devices that execute it (engine/cpu/, cuda/).
 *
 * The forward pass is a fixed sequence of coarse operations on activation buffers:
 *
 *   embed -> for each layer { rmsnorm, qkv, rope_kv, attention, matmul(+=), rmsnorm,
 *                              ffn (dense SwiGLU) or moe } -> rmsnorm -> matmul(logits)
 *
 * Operations are coarse on purpose: a backend may fuse inside one (the CUDA qkv does three
 * projections in one launch, its ffn fuses gate/up/SwiGLU), while the sequence itself — the
 * math a reader must follow — lives in forward.c only.
 *
 * Buffers. Activations are row-major float32 matrices of `n` rows (one per token of the
 * current step) allocated with alloc(); on the CPU they are host pointers, on a GPU device
 * pointers the forward pass never dereferences. The KV cache, RoPE tables and scratch are
 * the backend's own, in the per-session state created by state_new().
 *
 * A step. step_begin() stages the tokens and the position of the first (pos0) of a step of
 * n tokens (n <= max_batch), then the forward pass issues the ops, then step_end(). A backend
 * may capture the op sequence of a decode step (n == 1) once and replay it: step_begin()
 * then returns 1 and the forward pass issues nothing (CUDA graphs). Ops that depend on the
 * position (embed, rope_kv, attention) take it from the staged step, so a captured sequence
 * stays valid for every position.
 */
#ifndef MF_BACKEND_H
#define MF_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

typedef struct mf_backend mf_backend;
typedef struct mf_bstate mf_bstate;   /* per-session state, opaque, backend-defined */

typedef struct mf_state_opts {
    int n_ctx;               /* positions the KV cache holds */
    int max_batch;           /* most tokens in one step */
    int kv_f16;              /* 1: KV cache in binary16, 0: float32 */
    int no_graph;            /* 1: never capture/replay (debug hooks, `minfer check`) */
    int no_pack;             /* CPU: 1 keeps the weights in the file's layout only (no packed
                                copy, docs/cpu.md §3) */
} mf_state_opts;

struct mf_backend {
    const char *name;        /* "cpu", "cuda" */
    char device_name[128];   /* "Intel Xeon ... (2 threads)", "NVIDIA H100 80GB HBM3" */
    void *impl;

    /* ---- lifetime ---- */
    /* Make the model's weights usable (CPU: nothing; GPU: check free memory, upload each
     * tensor in its file type and set w->dev). Called once per model. */
    int (*prepare)(mf_backend *be, mf_model *m, mf_err *err);
    /* Undo prepare (free device copies). */
    void (*unprepare)(mf_backend *be, mf_model *m);
    mf_bstate *(*state_new)(mf_backend *be, const mf_model *m, const mf_state_opts *o, mf_err *err);
    void (*state_free)(mf_backend *be, mf_bstate *st);
    void (*free)(mf_backend *be);

    /* ---- buffers ---- */
    float *(*alloc)(mf_backend *be, size_t n_floats);
    void (*release)(mf_backend *be, float *p);
    /* copy n floats of a buffer to the host */
    int (*read)(mf_backend *be, const float *buf, size_t n, float *host, mf_err *err);

    /* ---- a step ---- */
    int (*step_begin)(mf_backend *be, mf_bstate *st, const int32_t *tokens, int n, int pos0);
    int (*step_end)(mf_backend *be, mf_bstate *st, mf_err *err);

    /* ---- operations (n rows = tokens of the step unless an explicit count is given) ---- */
    /* x[i] = dequantized row tokens[i] of emb */
    void (*embed)(mf_backend *be, mf_bstate *st, const mf_weight *emb, float *x);
    /* out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * g, for `rows` rows of width g->ne[0] */
    void (*rmsnorm)(mf_backend *be, mf_bstate *st, const float *x, const mf_weight *g, float eps,
                    float *out, int rows);
    /* out[r] (+)= W * in[r] (+ b), rows of width W->ne[0] in, W->ne[1] out.
     * accumulate = 1 adds into out (residual connections). b may be NULL or absent. */
    void (*matmul)(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b,
                   const float *in, float *out, int rows, int accumulate);
    /* q, k, v projections of layer l (with biases when present) from h */
    void (*qkv)(mf_backend *be, mf_bstate *st, int l, const float *h, float *q, float *k, float *v);
    /* RoPE on q and k at the step's positions, then append k and v to layer l's cache */
    void (*rope_kv)(mf_backend *be, mf_bstate *st, int l, float *q, const float *k, const float *v);
    /* causal GQA attention of layer l for the step's queries over the cache (sliding window
     * and sinks per the layer): out[r] = concat over heads of softmax(q k^T * scale) v */
    void (*attention)(mf_backend *be, mf_bstate *st, int l, const float *q, float *out);
    /* dense SwiGLU FFN of layer l: x[r] += W_down (silu(W_gate h[r]) * (W_up h[r])) */
    void (*ffn)(mf_backend *be, mf_bstate *st, int l, const float *h, float *x);
    /* mixture of experts of layer l: x[r] += sum_e w_e * expert_e(h[r]) (gpt-oss-arch §3.2) */
    void (*moe)(mf_backend *be, mf_bstate *st, int l, const float *h, float *x);
    /* index of the largest of n floats of buf (greedy decoding without copying logits) */
    int (*argmax)(mf_backend *be, mf_bstate *st, const float *buf, int n);
};

/* Memory bandwidth probes for the roofline of `minfer bench`, in GB/s (1e9 bytes/s):
 * the median of `reps` timed passes.
 * CPU: streaming read of a `bytes`-sized buffer (much larger than the caches) by n_threads
 * threads, each summing its slice with wide loads (the access pattern of a decode step).
 * CUDA: a device-to-device copy, counting bytes read plus bytes written (METHOD.md); -1 when
 * there is no device. */
double mf_cpu_read_bandwidth(int n_threads, size_t bytes, int reps);
double mf_cuda_bandwidth(int device, size_t bytes, int reps);

/* Constructors. n_threads <= 0: one per core. */
mf_backend *mf_backend_cpu_new(int n_threads, mf_err *err);
/* NULL (and a message) when built without CUDA or no device is present. */
mf_backend *mf_backend_cuda_new(int device, mf_err *err);
/* Devices the CUDA runtime sees: fills up to cap names, returns the count (0: none, or a
 * build without CUDA). `why` (may be NULL) receives the runtime's reason when 0. */
int mf_cuda_devices(char names[][128], int cap, char *why, size_t why_len);

#endif
