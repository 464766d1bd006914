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
 * pointers the forward pass never dereferences.
 *
 * Two kinds of state, both the backend's own, both opaque here. What a backend keeps per
 * model (the CUDA backend: the device copy of the weights; the CPU backend: the packed
 * copies of the matrices, made by the first state that uses them) lives in an mf_bmodel
 * made by prepare(); every session state on that model on that backend shares it, and the model
 * itself holds nothing of any device, so one model can serve several sessions and devices.
 * What it keeps per session (the KV cache, the RoPE tables, scratch) lives in an mf_bstate
 * made by state_new(). Each state_new checks its own memory (host RAM, device memory)
 * against what it is about to allocate (memory.h) and refuses with both numbers.
 *
 * Weights are passed by tensor. Every op receives the mf_weight of each tensor it reads,
 * never a layer index to look them up: forward.c then names every tensor each line of the
 * block reads, so the data flow of the model is in one file, and no backend depends on the
 * layout of mf_layer. A backend that keeps its own copy of a tensor (a device copy) finds it
 * by the tensor's slot (mf_weight.slot) in its mf_bmodel. A layer index is still passed to
 * the ops that use per-layer session state that is not a weight: rope_kv and attention
 * (that layer's KV cache, its RoPE table, whether it slides).
 *
 * A step (mf_step). step_begin() stages the step's n rows (n <= max_batch): row r is token
 * tokens[r] of sequence seq[r] (< n_seq: each sequence has its own KV cache) at position
 * pos[r]; then the forward pass issues the ops, then step_end(). Rows of different sequences
 * share the step — the decode tokens of some, prompt chunks of others — and every op but
 * rope_kv and attention treats the rows alike, so each weight is read once for all of them.
 * The rows of one sequence are consecutive in the step, at consecutive positions, at most
 * max_batch of them, and every earlier position of that sequence is in its cache: the
 * sliding-window ring is sized for that (memory.h mf_mem_kv_slots). rope_kv writes each row
 * into its own sequence's cache at its own position, and attention runs each row over its
 * own sequence's cache, so a row never sees another sequence's keys. The logits are computed
 * for the n_out rows out[] (ascending; logits row i belongs to step row out[i]).
 *
 * Graphs. A *decode step* is a step whose rows all belong to different sequences and all
 * want logits (n <= n_seq, out[i] = i): one token per sequence, as when every sequence of a
 * batch is generating; with one sequence it is the single-token step. A backend may capture
 * the op sequence of a decode step of n rows once and replay it for every later decode step
 * of n rows: step_begin() then returns 1 and the forward pass issues nothing (CUDA graphs,
 * one per n). Ops that depend on the rows (embed, rope_kv, attention) read tokens, sequences
 * and positions from the staged step, so a captured sequence stays valid whichever
 * sequences the rows belong to and at whatever positions. A step begun with eager = 1 is
 * neither captured nor replayed: its ops run as issued, so the host may read buffers between
 * them (the layer hook of mf_session_set_hook, which a replay would skip and a capture would
 * refuse).
 */
#ifndef MF_BACKEND_H
#define MF_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

typedef struct mf_backend mf_backend;
typedef struct mf_bmodel mf_bmodel; /* per-model state (prepare), opaque, backend-defined */
typedef struct mf_bstate mf_bstate; /* per-session state (state_new), opaque, backend-defined */

/* Progress of a long step, for a driver's progress line: `done` of `total` bytes. */
typedef void (*mf_progress_fn)(void *user, uint64_t done, uint64_t total);

/* One step's rows (see the top of this file). The arrays stay valid until step_end. */
typedef struct mf_step {
    int n;                 /* rows */
    const int32_t *tokens; /* [n] */
    const int32_t *seq;    /* [n] the sequence of each row */
    const int32_t *pos;    /* [n] the position of each row in its sequence */
    int n_out;             /* rows whose logits are computed */
    const int32_t *out;    /* [n_out] those rows, ascending */
} mf_step;

/* Whether s is a decode step (see the top of this file): one row per sequence, every row's
 * logits. The rows of one sequence are adjacent, so distinct neighbours mean distinct
 * sequences. */
static inline int mf_step_is_decode(const mf_step *s, int n_seq)
{
    if (s->n < 1 || s->n > n_seq || s->n_out != s->n) return 0;
    for (int i = 0; i < s->n; i++)
        if (s->out[i] != i || (i && s->seq[i] == s->seq[i - 1])) return 0;
    return 1;
}

/* Sees the float input of a matrix product: `rows` rows of W->ne[0] values, for matrix
 * `matrix` of W (the expert of a stacked expert tensor, else 0). */
typedef void (*mf_matmul_observer)(void *user, const mf_weight *W, int matrix, const float *x, int rows);

typedef struct mf_state_opts {
    int n_ctx;     /* positions each sequence's KV cache holds */
    int max_batch; /* most rows (tokens) in one step */
    int n_seq;     /* sequences, each with its own KV cache (<= 1: one) */
    int kv_f16;    /* 1: KV cache in binary16, 0: float32 */
    int no_graph;  /* 1: never capture/replay (debug hooks, `minfer check`) */
    int no_pack;   /* CPU: 1 keeps the weights in the file's layout only (no packed
                                copy, docs/cpu.md §3) */
} mf_state_opts;

struct mf_backend {
    const char *name;      /* "cpu", "cuda" */
    char device_name[128]; /* "Intel Xeon ... (2 threads)", "NVIDIA H100 80GB HBM3" */
    int kv_f16_default;    /* the KV cache type when the session leaves it open: 0 float32,
                              1 binary16 (both backends: half the cache traffic; on the CPU
                              chosen by measurement, docs/cpu.md §4) */
    void *impl;

    /* ---- lifetime ---- */
    /* Make the model's weights usable on this backend, checking first that they fit (CPU:
     * in RAM; they stay in the file mapping, read in order when progress is set; GPU: in
     * free device memory, each tensor uploaded in its file type). progress (may be NULL)
     * reports the bytes read or uploaded. A second prepare of the same model on the same
     * backend returns the same mf_bmodel (counted: each prepare needs its unprepare). */
    mf_bmodel *(*prepare)(mf_backend *be, const mf_model *m, mf_progress_fn progress, void *user, mf_err *err);
    /* Undo one prepare; the last one frees what prepare made (device copies). */
    void (*unprepare)(mf_backend *be, mf_bmodel *bm);
    /* A session's state on a prepared model. */
    mf_bstate *(*state_new)(mf_backend *be, mf_bmodel *bm, const mf_state_opts *o, mf_err *err);
    void (*state_free)(mf_backend *be, mf_bstate *st);
    /* bytes the state allocated (KV cache, RoPE tables, scratch): memory.h predicts them */
    uint64_t (*state_bytes)(mf_backend *be, const mf_bstate *st);
    void (*free)(mf_backend *be);

    /* ---- buffers ---- */
    float *(*alloc)(mf_backend *be, size_t n_floats);
    void (*release)(mf_backend *be, float *p);
    /* copy n floats of a buffer to the host */
    int (*read)(mf_backend *be, const float *buf, size_t n, float *host, mf_err *err);

    /* ---- a step ---- */
    int (*step_begin)(mf_backend *be, mf_bstate *st, const mf_step *s, int eager);
    int (*step_end)(mf_backend *be, mf_bstate *st, mf_err *err);

    /* ---- operations (n rows = tokens of the step unless an explicit count is given) ---- */
    /* x[i] = dequantized row tokens[i] of emb */
    void (*embed)(mf_backend *be, mf_bstate *st, const mf_weight *emb, float *x);
    /* out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * g, for `rows` rows of width g->ne[0] */
    void (*rmsnorm)(mf_backend *be, mf_bstate *st, const float *x, const mf_weight *g, float eps, float *out, int rows);
    /* out[r] (+)= W * in[r] (+ b), rows of width W->ne[0] in, W->ne[1] out.
     * accumulate = 1 adds into out (residual connections). b may be NULL or absent. */
    void (*matmul)(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b, const float *in, float *out,
                   int rows, int accumulate);
    /* q, k, v = W[0] h (+ b[0]), W[1] h (+ b[1]), W[2] h (+ b[2]): the projections of one
     * layer, matrices of one input width (a bias may be absent) */
    void (*qkv)(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const mf_weight *const b[3], const float *h,
                float *q, float *k, float *v);
    /* RoPE on q and k at each row's position, then k and v of each row into layer l's cache
     * of the row's sequence, at the row's position */
    void (*rope_kv)(mf_backend *be, mf_bstate *st, int l, float *q, const float *k, const float *v);
    /* causal GQA attention of layer l for each row's query over its sequence's cache (sliding window
     * when the layer slides; sinks: per-head sink logits or absent):
     * out[r] = concat over heads of softmax(q k^T * scale) v (docs/forward.md §2) */
    void (*attention)(mf_backend *be, mf_bstate *st, int l, const mf_weight *sinks, const float *q, float *out);
    /* dense SwiGLU FFN: x[r] += W[2] (silu(W[0] h[r]) * (W[1] h[r]))  (gate, up, down) */
    void (*ffn)(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const float *h, float *x);
    /* mixture of experts: x[r] += sum over the k experts the router (router h[r] + router_b)
     * selects of w_e * expert_e(h[r]), each expert a clamped SwiGLU FFN of the stacked
     * matrices W = {gate, up, down} and biases b (docs/moe.md §1) */
    void (*moe)(mf_backend *be, mf_bstate *st, const mf_weight *router, const mf_weight *router_b,
                const mf_weight *const W[3], const mf_weight *const b[3], const float *h, float *x);
    /* index of the largest of n floats of buf (greedy decoding without copying logits), the
     * first one on ties; -1 when one of them is not finite (NaN, +inf, -inf): the logits
     * are broken, which the caller reports (minfer.h mf_session_argmax) */
    int (*argmax)(mf_backend *be, mf_bstate *st, const float *buf, int n);

    /* ---- optional (NULL: not supported; the CUDA backend has none) ---- */
    /* From now on call fn(user, ...) with the input of every matrix product, before the
     * product (fn NULL: stop). The activation statistics of `minfer imatrix`. */
    void (*observe)(mf_backend *be, mf_bstate *st, mf_matmul_observer fn, void *user);
};

/* Memory bandwidth probes for the roofline of `minfer bench`, in GB/s (1e9 bytes/s):
 * the median of `reps` timed passes.
 * CPU: streaming read of a `bytes`-sized buffer (much larger than the caches) by n_threads
 * threads, each summing its slice with wide loads (the access pattern of a decode step).
 * CUDA: a device-to-device copy, counting bytes read plus bytes written (docs/benchmarks.md, "Method"); -1 when
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
