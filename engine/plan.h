/* plan.h — will a model fit on a device, and how fast can it decode at best?
 *
 * Everything here is arithmetic on the GGUF header (tensor types and shapes, hyperparameters)
 * and on a table of devices; no weight is read and nothing runs. `minfer plan` prints it.
 *
 * The model (mf_plan_model_read):
 *   weight bytes      sum of every tensor's bytes, per type. Types minfer has no kernel for
 *                     are counted like any other and listed in `unsupported` (the plan is
 *                     still made; `minfer run` would refuse the file).
 *   bytes per token   what one decoded token reads from the weights: every tensor once,
 *                     except the token embedding (one row is gathered) and the expert
 *                     tensors of a mixture of experts (only the k selected of E experts are
 *                     read: k/E of their bytes, gpt-oss-arch.md §3.2). A tied output matrix
 *                     (no output.weight) is the embedding read whole, so it is counted whole.
 *   KV cache          K and V of every layer: 2 * Hkv * hd * e bytes per position per layer
 *                     (e = 2 for binary16, 4 for float32). A sliding-window layer holds at
 *                     most W positions (model.h mf_kv_bytes).
 *   scratch           activation buffers for a prompt batch of B = min(512, ctx) tokens, the
 *                     logits, the RoPE tables, and on a GPU the F16 GEMM staging buffers
 *                     (mf_plan_scratch_bytes gives the formula).
 *
 * A device (mf_plan_device): memory, bandwidth, and a headroom kept free (what the driver
 * and the CUDA context take on a GPU, the OS on a host). For each device (mf_plan_evaluate):
 *   needs   = weight bytes + KV cache allocated for ctx + scratch
 *   fits    = needs <= memory - headroom
 *   bound   = bandwidth / (bytes per token + KV bytes read at that context)   [tok/s]
 * The bound is the memory roofline of decoding: a token cannot be produced faster than the
 * bytes it must read can stream from memory. Real engines reach a fraction of it.
 *
 * Measurements (mf_plan_find_measurement) come from the JSON Lines files that
 * `minfer bench --save` writes: one flat JSON object per test.
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
#include "model.h"
#include "types.h"

/* Prompt batch the scratch estimate assumes (the session default, minfer.h). */
#define MF_PLAN_BATCH 512

typedef struct mf_plan_model {
    mf_hparams hp;
    uint64_t file_bytes;
    uint64_t n_tensors;
    uint64_t n_params;
    uint64_t weight_bytes;                /* all tensors */
    uint64_t type_bytes[MF_TYPE_COUNT];   /* per ggml type id */
    uint32_t type_tensors[MF_TYPE_COUNT];
    /* per decoded token */
    uint64_t embd_row_bytes;              /* one row of token_embd (0 if absent) */
    int tied_output;                      /* 1: no output.weight, the embedding is read whole */
    uint64_t dense_per_token;             /* every non-expert tensor, the embedding as one row */
    uint64_t expert_bytes;                /* all expert tensors (names with "_exps.") */
    uint64_t expert_per_token;            /* sum over expert tensors of bytes / E * k */
    /* for the scratch estimate */
    int64_t largest_matrix;               /* elements of the largest 2-D (per expert) matrix */
    int rope_tables;                      /* distinct RoPE frequency sets (1 or 2) */
    /* types without a minfer kernel: count of tensors and their type names ("IQ2_XS, TQ1_0") */
    int n_unsupported;
    char unsupported[160];
} mf_plan_model;

/* Read the plan inputs from an open file: mf_hparams_read (so the architecture and keys
 * must be ones minfer knows) plus the tensor table. -1 with err on a bad header. */
int mf_plan_model_read(const mf_gguf *g, mf_plan_model *pm, mf_err *err);

/* Weight bytes read per decoded token (dense + active experts). */
uint64_t mf_plan_bytes_per_token(const mf_plan_model *pm);

/* KV bytes of one position across all layers, without any window: L * 2 * Hkv * hd * e. */
uint64_t mf_plan_kv_per_position(const mf_hparams *hp, int elem_bytes);

/* KV cache as minfer allocates it for a context of n_ctx (at most INT_MAX; minfer caps
 * contexts at 2^24) and prompt steps of `batch` tokens: per layer mf_kv_slots() positions
 * (sliding layers: a ring of min(n_ctx, W + batch - 1)), 2 * Hkv * hd * e bytes each. */
uint64_t mf_plan_kv_alloc_bytes(const mf_hparams *hp, int64_t n_ctx, int batch, int elem_bytes);

/* Scratch bytes for a context of n_ctx and prompt batch B (B is capped at n_ctx), with
 * F = max(n_ff, n_ff_exp), R = min(B, max(1, floor(64 MiB / (4 V)))) logits rows:
 *     4 B (2d + 2 H hd + 2 Hkv hd + 2F)          activations x, h, q, attention out, k, v,
 *                                                 FFN gate and up
 *   + 4 B k (2 F_exp + 2d) + 4 B E                MoE only: per-selection gate/up outputs,
 *                                                 gathered inputs and outputs, router logits
 *   + 4 R V                                       logits
 *   + 4 n_ctx hd * tables                         RoPE cos and sin, n_ctx x hd/2 each
 *   + gpu: 2 (min(largest matrix, 32 Mi) + B max_in)   F16 GEMM staging (weight tile and
 *                                                 activations, max_in = widest matrix input)
 */
uint64_t mf_plan_scratch_bytes(const mf_plan_model *pm, int64_t n_ctx, int batch, int gpu);

/* ------------------------------------------------------------------ devices */

enum mf_plan_kind {
    MF_PLAN_CUDA = 0,    /* discrete NVIDIA GPU: minfer's CUDA backend */
    MF_PLAN_APPLE = 1,   /* unified memory, GPU working-set limit (no minfer backend) */
    MF_PLAN_HOST = 2,    /* this machine's CPU: minfer's CPU backend */
    MF_PLAN_CUSTOM = 3   /* --mem / --bandwidth */
};

typedef struct mf_plan_device {
    const char *name;         /* "RTX 4090 24GB" */
    int kind;                 /* enum mf_plan_kind */
    uint64_t mem_bytes;
    uint64_t headroom_bytes;  /* kept free: driver reserve + CUDA context, OS, ... */
    double bandwidth_gbs;
    /* names the CUDA runtime reports for this card ("NVIDIA GeForce RTX 4090"), separated
     * by '|'; NULL for non-CUDA rows */
    const char *cuda_names;
} mf_plan_device;

/* The built-in table (constant; the host row is made by mf_plan_host_device). */
size_t mf_plan_n_devices(void);
const mf_plan_device *mf_plan_device_at(size_t i);

/* The "this CPU" row: memory = MemTotal of /proc/meminfo (0 if unknown), the given
 * bandwidth (measured by the caller with mf_cpu_read_bandwidth), headroom MF_PLAN_HOST_HEADROOM. */
#define MF_PLAN_GPU_HEADROOM (1ull << 30)
#define MF_PLAN_HOST_HEADROOM (2ull << 30)
mf_plan_device mf_plan_host_device(double bandwidth_gbs);
/* MemTotal in bytes, 0 if /proc/meminfo cannot be read. */
uint64_t mf_plan_mem_total(void);

/* Devices of `devs` whose name matches `query`, case-insensitively: a row whose name
 * equals the query wins alone; otherwise every row whose name contains it. Writes up to
 * cap indices, returns how many matched (0: unknown). */
int mf_plan_find_devices(const mf_plan_device *devs, int n, const char *query, int *idx, int cap);

/* 1 when a device string reported by a backend ("NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)")
 * is one of the row's CUDA names: equal to it, or it followed by " (". */
int mf_plan_cuda_name_matches(const mf_plan_device *dev, const char *device_string);

/* ------------------------------------------------------------------ per device */

typedef struct mf_plan_fit {
    int kv_elem;              /* 2 or 4 */
    uint64_t weights, kv, scratch, need;    /* need = weights + kv + scratch */
    uint64_t usable;          /* memory - headroom (0 if the headroom exceeds it) */
    int fits;
    int64_t spare;            /* usable - need: negative = short by that much */
    uint64_t bytes_ctx0;      /* weight bytes per token (KV read: nothing at context 0) */
    uint64_t bytes_ctx;       /* weight bytes per token + KV read at n_ctx */
    double tok_s_ctx0, tok_s_ctx;
} mf_plan_fit;

/* kv_elem: 2 or 4; <= 0 takes the sessions' default (MF_KV_DEFAULT_ELEM, model.h). */
void mf_plan_evaluate(const mf_plan_model *pm, const mf_plan_device *dev, int64_t n_ctx,
                      int kv_elem, mf_plan_fit *out);

/* Decode bound in tokens per second: bandwidth_gbs * 1e9 / bytes (0 if bytes is 0). */
double mf_plan_bound(double bandwidth_gbs, uint64_t bytes_per_token);

/* ------------------------------------------------------------------ measurements */

typedef struct mf_plan_record {
    char date[32], commit[48], backend[16], device[128], model[256], sha[72], test[48];
    int depth;
    int n_gen;                /* N of a "tgN" test (0 for other tests) */
    double tok_s;             /* tok_s_median */
    double bandwidth_gbs;
    int line;                 /* 1-based line in the file */
} mf_plan_record;

/* Parse one line written by `minfer bench --save` (a flat JSON object; unknown keys are
 * ignored). -1 with err when the line is not such an object or lacks test/backend/
 * tok_s_median. */
int mf_plan_parse_record(const char *line, mf_plan_record *r, mf_err *err);

/* The last generation ("tg...") record of `text` (a whole results file) measured on the same
 * model file and device class as `dev`:
 *   file:   header_sha256 equal to `sha` (when both are non-empty), else the model's file
 *           name equal to `model_name`;
 *   device: CUDA rows: backend "cuda" and mf_plan_cuda_name_matches; the host row: backend
 *           "cpu" and the device string's CPU model (before " (") equal to `cpu_model`
 *           (any CPU record when cpu_model is NULL or empty); other rows never match.
 * Returns 1 and fills *out when found, 0 when not. *n_bad (may be NULL) receives the number
 * of non-empty lines that were not records. */
int mf_plan_find_measurement(const char *text, const char *model_name, const char *sha,
                             const mf_plan_device *dev, const char *cpu_model,
                             mf_plan_record *out, int *n_bad);

#endif
