/* plan.h — will a model fit on a device, and how fast can it decode at best?
 *
 * Everything here is arithmetic on the GGUF header (tensor types and shapes, hyperparameters)
 * and on a table of devices; no weight is read and nothing runs. `minfer plan` prints it.
 *
 * The model (mf_plan_model_read): every byte count comes from memory.h, the functions the
 * session and the backends allocate with.
 *   weight bytes      sum of every tensor's bytes, per type. Types minfer has no kernel for
 *                     are counted like any other and listed in `unsupported` (the plan is
 *                     still made; `minfer run` would refuse the file).
 *   bytes per token   what one decoded token reads from the weights (mf_mem_bytes_per_token).
 *   KV cache          as the device's backend allocates it for the context and prompt steps
 *                     of B = min(512, ctx) tokens (sliding layers: a ring of W + B − 1 slots).
 *   scratch           the session's activation buffers and logits, and the RoPE tables and
 *                     scratch of the device's backend (mf_plan_scratch_bytes).
 *
 * A device (mf_plan_device): memory, bandwidth, and a headroom kept free (what the driver
 * and the CUDA context take on a GPU, the OS on a host). For each device (mf_plan_evaluate):
 *   needs   = weight bytes + KV cache allocated for ctx + scratch
 *   fits    = needs <= memory - headroom
 *   bound   = bandwidth / (bytes per token + KV bytes read at that context)   [tok/s]
 * (the KV bytes a token reads: the cache a context of ctx holds, mf_mem_kv_bytes with a
 * batch of 1: a sliding layer holds at most W positions).
 * The bound is the memory roofline of decoding: a token cannot be produced faster than the
 * bytes it must read can stream from memory. Real engines reach a fraction of it.
 *
 * Units: bytes are bytes; bandwidth is GB/s with GB = 1e9 bytes (as vendors and
 * `minfer bench` state it).
 */
#ifndef MF_PLAN_H
#define MF_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"
#include "memory.h"
#include "model.h"
#include "types.h"

/* Prompt batch the scratch estimate assumes (the session default, minfer.h). */
#define MF_PLAN_BATCH 512

typedef struct mf_plan_model {
    mf_hparams hp;
    uint64_t file_bytes;
    uint64_t n_tensors;
    uint64_t n_params;
    uint64_t weight_bytes;              /* all tensors */
    uint64_t type_bytes[MF_TYPE_COUNT]; /* per ggml type id */
    uint32_t type_tensors[MF_TYPE_COUNT];
    mf_mem_token per_token; /* what a decoded token reads (memory.h) */
    /* for the scratch estimate */
    int64_t largest_matrix; /* elements of the largest (per expert) matrix */
    int rope_tables;        /* distinct RoPE frequency sets (1 or 2) */
    /* types without a minfer kernel: count of tensors and their type names ("IQ2_XS, TQ1_0") */
    int n_unsupported;
    char unsupported[160];
} mf_plan_model;

/* Read the plan inputs from an open file: mf_hparams_read (so the architecture and keys
 * must be ones minfer knows) plus the tensor table. -1 with err on a bad header. */
int mf_plan_model_read(const mf_gguf *g, mf_plan_model *pm, mf_err *err);

/* Weight bytes read per decoded token (dense + active experts). */
uint64_t mf_plan_bytes_per_token(const mf_plan_model *pm);

/* Scratch bytes for a context of n_ctx and prompt batch B (capped at n_ctx): the session's
 * activation buffers and logits, and the RoPE tables and scratch of the backend's state —
 * the CUDA backend's (cuda = 1) or the CPU backend's with `threads` threads (memory.h). */
uint64_t mf_plan_scratch_bytes(const mf_plan_model *pm, int64_t n_ctx, int batch, int cuda, int threads);

/* ------------------------------------------------------------------ devices */

/* A device: memory, bandwidth, a headroom kept free. The table of known devices is the plan
 * command's (tools/plan_devices.h). */
enum mf_plan_kind {
    MF_PLAN_CUDA = 0,  /* discrete NVIDIA GPU: minfer's CUDA backend */
    MF_PLAN_APPLE = 1, /* unified memory, GPU working-set limit (no minfer backend) */
    MF_PLAN_HOST = 2,  /* this machine's CPU: minfer's CPU backend */
    MF_PLAN_CUSTOM = 3 /* --mem / --bandwidth */
};

typedef struct mf_plan_device {
    const char *name; /* "RTX 4090 24GB" */
    int kind;         /* enum mf_plan_kind */
    uint64_t mem_bytes;
    uint64_t headroom_bytes; /* kept free: driver reserve + CUDA context, OS, ... */
    double bandwidth_gbs;
    /* names the CUDA runtime reports for this card ("NVIDIA GeForce RTX 4090"), separated
     * by '|'; NULL for non-CUDA rows */
    const char *cuda_names;
    int threads; /* the host row: CPU threads (each has its own scratch); else 0 */
} mf_plan_device;

/* ------------------------------------------------------------------ per device */

typedef struct mf_plan_fit {
    int kv_elem;                         /* 2 or 4 */
    uint64_t weights, kv, scratch, need; /* need = weights + kv + scratch */
    uint64_t usable;                     /* memory - headroom (0 if the headroom exceeds it) */
    int fits;
    int64_t spare;       /* usable - need: negative = short by that much */
    uint64_t bytes_ctx0; /* weight bytes per token (KV read: nothing at context 0) */
    uint64_t bytes_ctx;  /* weight bytes per token + KV read at n_ctx */
    double tok_s_ctx0, tok_s_ctx;
} mf_plan_fit;

/* kv_elem: 2 or 4; <= 0 takes the backends' default (binary16 on every row: both backends'
 * kv_f16_default, backend.h). */
void mf_plan_evaluate(const mf_plan_model *pm, const mf_plan_device *dev, int64_t n_ctx, int kv_elem, mf_plan_fit *out);

/* Decode bound in tokens per second: bandwidth_gbs * 1e9 / bytes (0 if bytes is 0). */
double mf_plan_bound(double bandwidth_gbs, uint64_t bytes_per_token);

#endif
