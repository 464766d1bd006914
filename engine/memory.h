/* memory.h — every byte count of minfer, in one place.
 *
 * What a model and a session cost, as the code that allocates it computes it:
 *
 *   weights        the tensors of the file (mapped by the CPU; uploaded once, 256-byte
 *                  aligned, by the GPU: mf_mem_device_weights)
 *   KV cache       per sequence and layer K and V of 2 · Hkv · hd · e bytes per slot (e = 4
 *                  for float32, 2 for binary16). A full-attention layer has one slot per
 *                  position of the context; a sliding-window layer a ring of
 *                  min(n_ctx, W + max_batch − 1) slots (mf_mem_kv_slots says why), so with
 *                  max_batch = 1 the same function gives what a context of n_ctx holds and
 *                  what one decoded token reads. A state of n_seq sequences has n_seq caches
 *   session        the activation buffers forward.c passes between the ops (x, h, q, k, v,
 *                  attn_out: max_batch rows each) and the logits (mf_mem_logits_rows rows)
 *   backend state  what each backend's state_new allocates beside them: the KV cache, the
 *                  RoPE tables, and its scratch (mf_mem_cpu_state, mf_mem_cuda_state)
 *   per token      the weight bytes one decoded token reads (mf_mem_bytes_per_token)
 *
 * Users: session.c (the buffers), engine/cpu/ and cuda/ (their allocations and their memory
 * checks), plan.c (fit and bound), `minfer bench` (the roofline), `minfer inspect`. The test
 * tests/test_memory.c checks that the CPU backend allocates exactly what mf_mem_cpu_state
 * predicts, and the CUDA formula against sizes worked out by hand.
 *
 * Byte counts are products of sizes the file gives. mf_hparams_read bounds those sizes so
 * that every count here fits 64 bits for contexts up to 2^24 (attention widths H·hd and
 * Hkv·hd <= 2^20, <= 4096 layers: at most 2^35 KV bytes per position); the counts still
 * multiply and add with the saturating helpers below, so a count outside those bounds reads
 * as "more than any memory" (UINT64_MAX), never as a small wrapped number.
 */
#ifndef MF_MEMORY_H
#define MF_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "gguf.h"
#include "memory_sizes.h"
#include "model.h"

static inline uint64_t mf_mul_sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
static inline uint64_t mf_add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/* ---------------------------------------------------------------- weights */

/* Bytes of every tensor of the file (what the mapping holds); *n_params (may be NULL)
 * receives the element count. */
uint64_t mf_mem_file_weights(const mf_gguf *g, uint64_t *n_params);

/* The device copy of a model: every weight of its list (model.h) once, in its file type, at
 * an offset that is a multiple of align; a tied output shares the embedding's bytes. Fills
 * offsets[i] for weight i (UINT64_MAX: absent, or another weight's bytes: weight
 * offsets[slot]) when offsets is not NULL, and returns the total. */
uint64_t mf_mem_device_weights(const mf_model *m, size_t align, uint64_t *offsets);

/* Elements of the largest matrix (per expert for a stack) a product multiplies: the sizes
 * the hyperparameters give every matrix of the list, the output included. */
int64_t mf_mem_largest_matrix(const mf_hparams *hp);

/* ---------------------------------------------------------------- per decoded token */

typedef struct mf_mem_token {
    uint64_t embd_row;    /* one row of token_embd (0 if absent) */
    int tied_output;      /* no output.weight: the embedding is the output matrix */
    uint64_t dense;       /* every tensor that is not a stack of experts, read once; the
                             embedding as one row, and whole again when it is tied */
    uint64_t experts_all; /* all stacked expert tensors */
    uint64_t experts;     /* of them what a token reads: k / E of each */
} mf_mem_token;

/* What one decoded token reads from the weights, from the file's tensor table (so that
 * `plan` computes it without loading the model): every tensor once, except the embedding
 * (one row is gathered) and the stacked expert tensors (only the k selected of E experts'
 * slices). dense + experts is the bytes per token. layers (may be NULL: none skipped): a
 * loaded model's layers, whose skipped ones (mf_layer.skip) are not read. */
void mf_mem_bytes_per_token(const mf_gguf *g, const mf_hparams *hp, const mf_layer *layers, mf_mem_token *out);

/* ---------------------------------------------------------------- KV cache */

/* Slots of layer l's cache for a context of n_ctx positions and steps of at most max_batch
 * tokens: n_ctx on a full-attention layer; on a sliding-window layer a ring buffer of
 * min(n_ctx, W + max_batch − 1) slots, position p at slot p % slots. A step of n tokens
 * writes its n keys before its queries attend; the first query (position p0) still needs
 * the W − 1 keys before it, so the ring keeps those plus the n new ones. Decoding one token
 * at a time (max_batch 1), the ring is the window itself. */
int mf_mem_kv_slots(const mf_hparams *hp, int l, int64_t n_ctx, int max_batch);

/* K and V of one position over all layers, without any window: L · 2 · Hkv · hd · e. */
uint64_t mf_mem_kv_per_position(const mf_hparams *hp, int elem_bytes);

/* Bytes of the whole cache: Σ_l slots(l) · 2 · Hkv · hd · e. max_batch is capped at n_ctx.
 * With max_batch = 1: what a context of n_ctx holds, and what the attention of the next
 * decoded token reads. */
uint64_t mf_mem_kv_bytes(const mf_hparams *hp, int64_t n_ctx, int max_batch, int elem_bytes);

/* ---------------------------------------------------------------- the session's buffers */

/* Rows of logits a session keeps for a step: all max_batch rows while they fit in
 * MF_MEM_LOGITS_CAP, and at least one per sequence (n_seq; a step of several sequences wants
 * the last row of each), never more than max_batch. */
int mf_mem_logits_rows(const mf_hparams *hp, int max_batch, int n_seq);

/* The activation buffers of a session (session.c, read by forward.c), in floats: x and h
 * [max_batch][d], q and attn_out [max_batch][H·hd], k and v [max_batch][Hkv·hd], logits
 * [logits_rows][V] (mf_mem_logits_rows of n_seq sequences). Rows of different sequences
 * share them: they do not grow with n_seq. */
typedef struct mf_mem_acts {
    size_t x, h, q, k, v, attn_out, logits;
    uint64_t bytes; /* all of them */
} mf_mem_acts;
void mf_mem_acts_of(const mf_hparams *hp, int max_batch, int n_seq, mf_mem_acts *a);

/* ---------------------------------------------------------------- RoPE tables */

/* Backends keep cos/sin tables of [n_ctx][n_rot/2] floats per distinct frequency set: one
 * per distinct RoPE base of the layers (gpt-oss may give sliding layers their own). The
 * table of layer l, and how many there are. */
int mf_mem_rope_table(const mf_hparams *hp, int l);
int mf_mem_rope_tables(const mf_hparams *hp);

/* ---------------------------------------------------------------- backend states */

/* Sequences of a state (mf_state_opts.n_seq <= 1 means one). */
static inline int mf_mem_n_seq(const mf_state_opts *o) { return o->n_seq > 1 ? o->n_seq : 1; }

/* The three parts of a state, for reports and memory checks. */
typedef struct mf_mem_state {
    uint64_t kv, rope, scratch;
    uint64_t total; /* kv + rope + scratch */
} mf_mem_state;

/* What cpu_state_new (engine/cpu/backend_cpu.c) allocates, buffer by buffer, in bytes; it
 * allocates exactly these sizes (the test counts them). The state's bookkeeping (the struct
 * and its per-layer pointer arrays) is not counted. */
typedef struct mf_mem_cpu {
    mf_mem_state sum;
    size_t rows;   /* each of the step's tokens, sequences and positions */
    size_t krow;   /* one rotated key row per thread */
    size_t qx;     /* converted activations, max_batch rows (whole cache lines) */
    size_t tmp;    /* kernel results, per thread two blocks of MF_CPU_TOK_BLOCK tokens x 16 */
    size_t ff;     /* each of the FFN gate and up outputs, max_batch rows */
    size_t scores; /* attention scores, per thread */
    size_t deq;    /* dequantized weight tiles of the BLAS path, per thread */
    /* MoE (0 without experts): router logits; each of sel, selw, ex_tok, ex_slot; each of
     * ex_in, ex_out; ex_acc */
    size_t router, sel, ex_io, ex_acc;
    size_t rope_table; /* each of cos and sin of one table */
} mf_mem_cpu;
void mf_mem_cpu_state(const mf_hparams *hp, const mf_state_opts *o, int n_threads, mf_mem_cpu *out);
/* bytes of layer l's K (or V) cache of one sequence; a state allocates o->n_seq of them */
uint64_t mf_mem_kv_layer_bytes(const mf_hparams *hp, int l, const mf_state_opts *o);
/* The CPU's cache: layer l's slots (mf_mem_kv_slots rounded up to whole K tiles of
 * MF_KV_TILE slots, the layout of engine/cpu/attention.c) and the bytes of its K (or V) of
 * one sequence (a state allocates o->n_seq of them). */
int mf_mem_cpu_kv_slots(const mf_hparams *hp, int l, const mf_state_opts *o);
uint64_t mf_mem_cpu_kv_layer_bytes(const mf_hparams *hp, int l, const mf_state_opts *o);

/* What cu_state_new (cuda/backend_cuda.cu) allocates on the device, in bytes, and the pinned
 * host buffers beside them. nsplit: the flash-decoding splits of the longest layer (the
 * backend computes it from its SM count; plan, which knows no SM count, passes the most any
 * device makes). */
typedef struct mf_mem_cuda {
    mf_mem_state sum;       /* device memory */
    size_t params, arg;     /* the step (tokens, sequences, positions), the argmax result */
    size_t part_o, part_ml; /* flash-decoding partials */
    size_t ff;              /* each of the dense FFN gate and up outputs */
    /* MoE (0 without experts): router logits; each of sel, selw, perm, inv; each of the
     * per-selection gate and up outputs; each of the gathered inputs and outputs; counts */
    size_t logits, sel, eg, hg, counts;
    size_t wh, xh;     /* F16 weight tile and activations of the prompt GEMM */
    size_t rope_table; /* each of cos and sin of one table */
    uint64_t pinned;   /* host: the step, the argmax result, the MoE counts */
} mf_mem_cuda;
void mf_mem_cuda_state(const mf_hparams *hp, const mf_state_opts *o, int nsplit, mf_mem_cuda *out);
/* The most flash-decoding splits any device makes for a context of n_ctx: one per
 * MF_CUDA_FA_KEYS keys. */
int mf_mem_cuda_nsplit_max(int64_t n_ctx);

/* ---------------------------------------------------------------- the host */

/* MemTotal of /proc/meminfo in bytes, 0 if it cannot be read. */
uint64_t mf_mem_host_total(void);

#endif
