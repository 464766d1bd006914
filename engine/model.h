/* model.h — a model: hyperparameters and weight table read from GGUF metadata.
 *
 * Architectures: "llama" (spec llama-arch.md) and "gpt-oss" (gpt-oss-arch.md). Nothing
 * about a shape is hard-coded: every size comes from the file's keys and is checked
 * against every tensor's shape before anything runs. Weights are not copied: an mf_weight
 * points into the GGUF mapping (`data`); a GPU backend adds its own device copy (`dev`).
 */
#ifndef MF_MODEL_H
#define MF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"
#include "tokenizer.h"

enum mf_arch { MF_ARCH_LLAMA = 0, MF_ARCH_GPT_OSS = 1 };

/* Largest expert count accepted (gpt-oss-120b has 128). */
#define MF_MAX_EXPERTS 4096

/* One weight tensor as the forward pass sees it: a stack of ne[2] matrices of ne[1] rows of
 * ne[0] elements (rows are output features, ne[0] the input width; gguf.md §7). */
typedef struct mf_weight {
    const char *name;        /* NULL: the tensor is absent (optional tensors, e.g. biases) */
    uint32_t type;
    int64_t ne[4];
    size_t row_bytes;        /* bytes of one row of ne[0] elements */
    size_t nbytes;
    const void *data;        /* host bytes, in the mapping */
    void *dev;               /* device copy (owned by the GPU backend), NULL on the CPU */
} mf_weight;

typedef struct mf_layer {
    mf_weight attn_norm;
    mf_weight wq, wk, wv, wo;            /* projections */
    mf_weight bq, bk, bv, bo;            /* biases (gpt-oss) */
    mf_weight sinks;                     /* per-head sink logits (gpt-oss) */
    mf_weight ffn_norm;                  /* llama ffn_norm, gpt-oss post_attention_norm */
    /* dense SwiGLU FFN (llama) */
    mf_weight ffn_gate, ffn_up, ffn_down;
    /* mixture of experts (gpt-oss): router and stacked expert matrices [ne0, ne1, E] */
    mf_weight router, router_b;
    mf_weight gate_exps, up_exps, down_exps;
    mf_weight gate_exps_b, up_exps_b, down_exps_b;   /* [F or d, E] */
    int sliding;             /* 1: sliding-window attention on this layer */
    float rope_base;         /* rope.freq_base or rope.freq_base_swa */
} mf_layer;

typedef struct mf_hparams {
    int arch;                /* enum mf_arch */
    char arch_name[32];
    int n_ctx_train;
    int n_embd;              /* d */
    int n_layers;            /* L */
    int n_heads;             /* H */
    int n_kv_heads;          /* Hkv */
    int head_dim;            /* hd (key_length) */
    int n_ff;                /* dense FFN width (llama) */
    int n_vocab;
    float eps;               /* RMSNorm epsilon */
    /* RoPE */
    int rope_neox;           /* 0: adjacent pairs (llama), 1: halves (gpt-oss) */
    int n_rot;               /* rotated dims (= head_dim for both archs) */
    float rope_base;
    float rope_freq_scale;   /* 1/factor, 1 without scaling */
    int rope_yarn;           /* 1: YaRN ramp and magnitude correction */
    int n_ctx_orig;          /* YaRN original context */
    float yarn_beta_fast, yarn_beta_slow, yarn_attn_factor;
    /* attention extras (gpt-oss) */
    int window;              /* sliding window W (0: none) */
    int swa_pattern;         /* layer l slides iff l % P < P - 1 */
    int has_sinks;
    float attn_scale;        /* 1/sqrt(head_dim) */
    /* mixture of experts (gpt-oss) */
    int n_experts, n_experts_used, n_ff_exp;
    float swiglu_limit, swiglu_alpha;
} mf_hparams;

typedef struct mf_model {
    char *path;
    mf_gguf *gguf;
    mf_hparams hp;
    mf_tokenizer *tok;
    mf_weight tok_embd, output_norm, output;   /* output = tok_embd when tied */
    int tied_output;
    mf_layer *layers;
    /* RoPE frequencies, per rotated pair i < n_rot/2, per layer kind: the angle of pair i at
     * position p is p * rope_freq[l][i] and cos/sin are multiplied by rope_mscale. This is
     * where the YaRN ramp lives (rope.c); every backend uses these numbers. */
    float **rope_freq;       /* [n_layers][n_rot/2] */
    float rope_mscale;
    /* totals for reports */
    uint64_t weight_bytes;   /* all tensor bytes */
    uint64_t n_params;
} mf_model;

/* Open a GGUF file and build the model: metadata, tokenizer, weight table, shape checks.
 * Errors name the file and the key/tensor (missing tensors are listed by name; unsupported
 * tensor types by type name). */
mf_model *mf_model_load(const char *path, mf_err *err);
void mf_model_free(mf_model *m);

/* Hyperparameters only (no tokenizer, no tensors checked): used by `inspect` and `plan`. */
int mf_hparams_read(const mf_gguf *g, mf_hparams *hp, mf_err *err);

/* The KV cache element size (bytes) a session takes when not asked: binary16 on every
 * device. On the CPU it was chosen by measurement against float32 (docs/cpu.md §4): the
 * same speed without context, faster decoding over a long one (half the bytes to stream),
 * at a logit difference well below the 8-bit activation rounding's. session.c and plan.c
 * read it here. */
#define MF_KV_DEFAULT_ELEM 2

/* Bytes of the KV cache (K and V, all layers) for n_ctx positions with elements of
 * elem_bytes (2 or 4), counting sliding-window layers at min(n_ctx, window) (the steady
 * state of a one-token-at-a-time decode). */
uint64_t mf_kv_bytes(const mf_hparams *hp, int64_t n_ctx, int elem_bytes);

/* Number of KV cache slots a layer needs for a context of n_ctx positions and steps of at
 * most max_batch tokens: n_ctx for full-attention layers; for sliding-window layers a ring
 * buffer of min(n_ctx, window + max_batch - 1) slots (position p lives at slot p % slots).
 * The max_batch - 1 extra slots keep the keys that the first queries of a batch still need
 * while the batch's own keys are written. */
int mf_kv_slots(const mf_hparams *hp, int sliding, int n_ctx, int max_batch);

/* Bytes read from the weights to decode one token: every matrix once, except that of the
 * expert tensors only n_experts_used / n_experts are read (the active experts). The token
 * embedding contributes one row. Split into dense and expert parts for reports. */
void mf_model_bytes_per_token(const mf_model *m, uint64_t *dense, uint64_t *experts);

/* Multiply-adds of the matrix products for one token (attention over the cache excluded):
 * every projection matrix's elements, the output matrix, and k/E of the expert matrices.
 * The embedding is a lookup, not a product. 2 x this = FLOPs per token. */
uint64_t mf_model_macs_per_token(const mf_model *m);

#endif
