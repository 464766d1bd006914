/* cpu.h — internals of the CPU backend (the files of engine/cpu/), shared between them.
 *
 * Memory plan of a session (mf_bstate; every size from memory.h mf_mem_cpu_state):
 *   KV cache      per layer: K and V, [n_seq][slots][n_kv_heads * head_dim], float32 or
 *                 binary16: one cache per sequence (mf_cpu_kv); slots = n_ctx, or a ring
 *                 buffer for sliding-window layers (memory.h mf_mem_kv_slots)
 *   RoPE tables   cos/sin [n_ctx][n_rot/2] per distinct frequency set (rope.h), in double
 *                 precision rounded once, so every backend rotates by the same numbers
 *   scratch       converted activations (quant.h activation formats), FFN gate/up rows,
 *                 per-thread attention scores and dequantized weight tiles, MoE routing
 * Weights are never copied: matrix rows are read from the file mapping.
 *
 * Which file runs which op of backend.h: backend_cpu.c the state and the small ops (embed,
 * rmsnorm, rope_kv, argmax), matmul.c matmul and qkv, attention.c attention, ffn.c ffn,
 * moe.c moe; quant_dot.c dispatches each product to the kernel of its weight type and CPU
 * (docs/cpu.md §3 maps be->matmul to the tile that runs).
 */
#ifndef MF_CPU_H
#define MF_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "memory_sizes.h"  /* MF_CPU_QROWS, MF_CPU_TILE_ROWS: they size the scratch */
#include "threadpool.h"

/* What the CPU backend keeps per model (prepare): nothing but the model, whose weights it
 * reads in the file mapping; counted, one per model (backend.h). */
struct mf_bmodel {
    const mf_model *m;
    int refs;
    struct mf_bmodel *next;
};

typedef struct cpu_backend {
    mf_pool *pool;
    int n_threads;
    int blas_ok;        /* OpenBLAS runs AVX2/AVX-512 kernels on this CPU (matmul.c path 2) */
    mf_bmodel *models;  /* prepared models */
} cpu_backend;

struct mf_bstate {
    const mf_model *m;
    mf_state_opts o;
    /* the current step: its rows' tokens, sequences and positions (backend.h mf_step) */
    int n;
    int32_t *tokens, *seq, *pos;  /* [max_batch] */
    /* KV cache */
    void **kc, **vc;              /* [n_layers] -> [n_seq][slots][kv_width] */
    int *slots;                   /* [n_layers] */
    int kv_width;                 /* n_kv_heads * head_dim */
    float *krow;                  /* [kv_width] one rotated key row before it is stored */
    /* RoPE: per layer pointers into (at most two) tables of [n_ctx][n_rot/2] */
    float **rcos, **rsin;
    float *tables[4];
    /* scratch */
    void *qx;                     /* converted activations, MF_CPU_QROWS rows */
    float *tmp;                   /* [MF_CPU_QROWS][max_out] products before they are added to y
                                     (max_out: a group's outputs side by side, memory.c) */
    float *ff_g, *ff_u;           /* [max_batch][n_ff or n_ff_exp] */
    float *scores;                /* [n_threads][heads per kv head][n_ctx] attention scores */
    float *deq;                   /* [n_threads][MF_CPU_TILE_ROWS][max_in] dequantized weight tiles */
    /* MoE routing: per token k (expert, weight) pairs, and per-expert token lists */
    float *router;                /* [max_batch][n_experts] */
    int *sel;                     /* [max_batch][k] */
    float *selw;                  /* [max_batch][k] */
    int *ex_tok;                  /* [max_batch * k] tokens grouped by expert */
    int *ex_slot;                 /* [max_batch * k] which of the token's k picks */
    float *ex_in, *ex_out;        /* [max_batch][d] one expert's gathered rows (an expert
                                     appears at most once per token) */
    float *ex_acc;                /* [max_batch * k][d] expert outputs before weighting */
    uint64_t allocated;           /* bytes of the buffers above (backend_cpu.c state_buf) */
    /* the observer of every matrix product's input (backend.h observe), or NULL */
    mf_matmul_observer obs;
    void *obs_user;
};

/* Layer l's K (kv = 0) or V (kv = 1) cache of sequence s: [slots][kv_width] */
static inline uint8_t *mf_cpu_kv(const mf_bstate *st, int kv, int s, int l)
{
    size_t seq_bytes = (size_t)st->slots[l] * (size_t)st->kv_width * (st->o.kv_f16 ? 2u : 4u);
    return (uint8_t *)(kv ? st->vc : st->kc)[l] + (size_t)s * seq_bytes;
}

static inline void mf_cpu_observe(mf_bstate *st, const mf_weight *W, int matrix, const float *x, int rows)
{
    if (st->obs) st->obs(st->obs_user, W, matrix, x, rows);
}

/* batches of float weights with at least this many rows take the sgemm path (BLAS on) */
#ifndef MF_CPU_BLAS_MIN_ROWS
#define MF_CPU_BLAS_MIN_ROWS 16
#endif
/* the least work (multiply-adds) worth a parallel task: about 10 µs */
#define MF_CPU_MIN_TASK_MACS (1 << 18)

/* y[r][o] (+)= sum_i W[o][i] x[r][i] (+ bias[o]) for r < rows, o < n_out: the one matrix
 * product of the backend (matmul.c). W: n_out rows of n_in elements of wtype, row_bytes
 * apart. bias: n_out floats or NULL. */
void mf_cpu_matmul(cpu_backend *cb, mf_bstate *st, uint32_t wtype, const void *W, size_t row_bytes,
                   int64_t n_in, int64_t n_out, const float *x, int64_t x_stride, int rows,
                   float *y, int64_t y_stride, int accumulate, const float *bias);

/* out[i] = W[i] · x (+ b[i]) for i < n (at most 3) matrices sharing the input x of `rows`
 * rows (matmul.c): the input is converted once and the products run in one parallel region
 * where they can. b[i] may be NULL or absent. */
void mf_cpu_matmul_group(mf_backend *be, mf_bstate *st, int n, const mf_weight *const *W,
                         const mf_weight *const *b, float *const *out, const float *x, int rows);

/* ops implemented outside backend_cpu.c */
void mf_cpu_matmul_op(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b,
                      const float *in, float *out, int rows, int accumulate);
void mf_cpu_qkv(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const mf_weight *const b[3],
                const float *h, float *q, float *k, float *v);
void mf_cpu_ffn(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const float *h, float *x);
void mf_cpu_attention(mf_backend *be, mf_bstate *st, int l, const mf_weight *sinks, const float *q, float *out);
void mf_cpu_moe(mf_backend *be, mf_bstate *st, const mf_weight *router, const mf_weight *router_b,
                const mf_weight *const W[3], const mf_weight *const b[3], const float *h, float *x);

#endif
