/* model.h — a model: hyperparameters and weight table read from GGUF metadata.
 *
 * Architectures: "llama" (docs/forward.md) and "gpt-oss" (docs/moe.md). Nothing
 * about a shape is hard-coded: every size comes from the file's keys and is checked
 * against every tensor's shape before anything runs. Weights are not copied: an mf_weight
 * points into the GGUF mapping (`data`); a GPU backend keeps its device copy in its own
 * per-model state (backend.h), so one model can serve several sessions and devices.
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
 * ne[0] elements (rows are output features, ne[0] the input width; docs/gguf.md §1). */
typedef struct mf_weight {
    const char *name; /* NULL: the tensor is absent (optional tensors, e.g. biases) */
    uint32_t type;
    int64_t ne[4];
    size_t row_bytes; /* bytes of one row of ne[0] elements */
    size_t nbytes;
    const void *data; /* host bytes, in the mapping (an F32 vector the file places at an
                         address that is not a multiple of 4: an aligned copy, model.c) */
    int slot;         /* index of this tensor in the model's weight list (mf_model_weight);
                         a tied output has the embedding's. A backend that keeps a
                         copy of the tensor (a GPU) finds it by this index in its own
                         table: the model holds nothing of any device (backend.h) */
} mf_weight;

/* ---------------------------------------------------------------- the weight list
 *
 * Every tensor the forward pass reads, listed once. Each row says: the field of mf_model or
 * mf_layer, what the loader checks beyond shape and type (kind), the shape the
 * hyperparameters imply (nd dimensions, each named by a letter below), and for each
 * architecture the GGUF name (after "blk.N." for a layer's tensors) and whether the tensor
 * is required, optional or not used. The structs, the loader, the byte counts, the GPU
 * upload and mkmodel are generated from these rows: adding a tensor is one edit here.
 * The rows are in the order the converters write a layer's tensors (mkmodel writes them in
 * this order, so its files keep their bytes).
 *
 * Shape letters: D n_embd, Q n_heads * head_dim, KV n_kv_heads * head_dim, H n_heads,
 * FF n_ff, E n_experts, FE n_ff_exp, V n_vocab, 1 a dimension of one.
 * Kinds: MF_W_MATRIX a matrix of a product (any supported type); MF_W_VECTOR norms, biases
 * and sinks (read as floats: F32, finite, aligned); MF_W_ROUTER the MoE router (a matrix
 * whose values are checked finite at load, model.c check_values). */
enum mf_wkind { MF_W_MATRIX = 0, MF_W_VECTOR = 1, MF_W_ROUTER = 2 };
enum mf_wuse { MF_USE_NONE = 0, MF_USE_REQ = 1, MF_USE_OPT = 2 };
enum mf_dim { MF_DIM_1, MF_DIM_D, MF_DIM_Q, MF_DIM_KV, MF_DIM_H, MF_DIM_FF, MF_DIM_E, MF_DIM_FE, MF_DIM_V };
/* clang-format off */
#define MF_REQ(name) {MF_USE_REQ, name}
#define MF_OPT(name) {MF_USE_OPT, name}
#define MF_NONE {MF_USE_NONE, NULL}
/* clang-format on */

/* X(field, kind, nd, e0, e1, e2, llama, gpt_oss) */
#define MF_MODEL_TENSORS(X)                                                                             \
    X(tok_embd, MF_W_MATRIX, 2, D, V, 1, MF_REQ("token_embd.weight"), MF_REQ("token_embd.weight"))      \
    X(output_norm, MF_W_VECTOR, 1, D, 1, 1, MF_REQ("output_norm.weight"), MF_REQ("output_norm.weight")) \
    /* absent: the output matrix is the embedding (tied, model.c) */                                    \
    X(output, MF_W_MATRIX, 2, D, V, 1, MF_OPT("output.weight"), MF_OPT("output.weight"))

#define MF_LAYER_TENSORS(X)                                                                               \
    X(attn_norm, MF_W_VECTOR, 1, D, 1, 1, MF_REQ("attn_norm.weight"), MF_REQ("attn_norm.weight"))         \
    /* projections and their biases (gpt-oss has biases; llama.cpp accepts them on llama too) */          \
    X(wq, MF_W_MATRIX, 2, D, Q, 1, MF_REQ("attn_q.weight"), MF_REQ("attn_q.weight"))                      \
    X(bq, MF_W_VECTOR, 1, Q, 1, 1, MF_OPT("attn_q.bias"), MF_REQ("attn_q.bias"))                          \
    X(wk, MF_W_MATRIX, 2, D, KV, 1, MF_REQ("attn_k.weight"), MF_REQ("attn_k.weight"))                     \
    X(bk, MF_W_VECTOR, 1, KV, 1, 1, MF_OPT("attn_k.bias"), MF_REQ("attn_k.bias"))                         \
    X(wv, MF_W_MATRIX, 2, D, KV, 1, MF_REQ("attn_v.weight"), MF_REQ("attn_v.weight"))                     \
    X(bv, MF_W_VECTOR, 1, KV, 1, 1, MF_OPT("attn_v.bias"), MF_REQ("attn_v.bias"))                         \
    X(wo, MF_W_MATRIX, 2, Q, D, 1, MF_REQ("attn_output.weight"), MF_REQ("attn_output.weight"))            \
    X(bo, MF_W_VECTOR, 1, D, 1, 1, MF_OPT("attn_output.bias"), MF_REQ("attn_output.bias"))                \
    /* per-head sink logits (gpt-oss) */                                                                  \
    X(sinks, MF_W_VECTOR, 1, H, 1, 1, MF_NONE, MF_REQ("attn_sinks.weight"))                               \
    /* the norm before the FFN: llama's ffn_norm, gpt-oss's post_attention_norm */                        \
    X(ffn_norm, MF_W_VECTOR, 1, D, 1, 1, MF_REQ("ffn_norm.weight"), MF_REQ("post_attention_norm.weight")) \
    /* dense SwiGLU FFN (llama) */                                                                        \
    X(ffn_gate, MF_W_MATRIX, 2, D, FF, 1, MF_REQ("ffn_gate.weight"), MF_NONE)                             \
    X(ffn_up, MF_W_MATRIX, 2, D, FF, 1, MF_REQ("ffn_up.weight"), MF_NONE)                                 \
    X(ffn_down, MF_W_MATRIX, 2, FF, D, 1, MF_REQ("ffn_down.weight"), MF_NONE)                             \
    /* mixture of experts (gpt-oss): router, stacked expert matrices [ne0, ne1, E] and biases */          \
    X(router, MF_W_ROUTER, 2, D, E, 1, MF_NONE, MF_REQ("ffn_gate_inp.weight"))                            \
    X(router_b, MF_W_VECTOR, 1, E, 1, 1, MF_NONE, MF_REQ("ffn_gate_inp.bias"))                            \
    X(gate_exps, MF_W_MATRIX, 3, D, FE, E, MF_NONE, MF_REQ("ffn_gate_exps.weight"))                       \
    X(gate_exps_b, MF_W_VECTOR, 2, FE, E, 1, MF_NONE, MF_REQ("ffn_gate_exps.bias"))                       \
    X(up_exps, MF_W_MATRIX, 3, D, FE, E, MF_NONE, MF_REQ("ffn_up_exps.weight"))                           \
    X(up_exps_b, MF_W_VECTOR, 2, FE, E, 1, MF_NONE, MF_REQ("ffn_up_exps.bias"))                           \
    X(down_exps, MF_W_MATRIX, 3, FE, D, E, MF_NONE, MF_REQ("ffn_down_exps.weight"))                       \
    X(down_exps_b, MF_W_VECTOR, 2, D, E, 1, MF_NONE, MF_REQ("ffn_down_exps.bias"))

#define MF_X_FIELD(field, ...) mf_weight field;
#define MF_X_LT(field, ...) MF_LT_##field,
#define MF_X_MT(field, ...) MF_MT_##field,

/* index of each tensor in its list: MF_MT_tok_embd, ..., MF_LT_wq, ... */
enum { MF_MODEL_TENSORS(MF_X_MT) MF_MODEL_N_TENSORS };
enum { MF_LAYER_TENSORS(MF_X_LT) MF_LAYER_N_TENSORS };

typedef struct mf_layer {
    MF_LAYER_TENSORS(MF_X_FIELD)
    int sliding;     /* 1: sliding-window attention on this layer */
    int skip;        /* 1: the forward passes skip this layer (prune.h) */
    float rope_base; /* rope.freq_base or rope.freq_base_swa */
} mf_layer;

/* One row of the list, as data. */
typedef struct mf_tensor_use {
    int use;          /* enum mf_wuse */
    const char *name; /* GGUF name, after "blk.N." for a layer's tensor */
} mf_tensor_use;

typedef struct mf_tensor_desc {
    const char *field; /* "wq" */
    int kind;          /* enum mf_wkind */
    int nd;
    int dim[3];            /* enum mf_dim */
    mf_tensor_use arch[2]; /* by enum mf_arch */
    size_t offset;         /* of the field in mf_model or mf_layer */
} mf_tensor_desc;

extern const mf_tensor_desc mf_model_tensors[MF_MODEL_N_TENSORS];
extern const mf_tensor_desc mf_layer_tensors[MF_LAYER_N_TENSORS];

/* 1 for a stack of per-expert tensors (its last dimension is E; the router, which maps to E
 * logits, is not one): a token reads only the slices of the experts it selects */
static inline int mf_tensor_per_expert(const mf_tensor_desc *t)
{
    return t->kind != MF_W_ROUTER && t->nd >= 2 && t->dim[t->nd - 1] == MF_DIM_E;
}

typedef struct mf_hparams {
    int arch; /* enum mf_arch */
    char arch_name[32];
    int n_ctx_train;
    int n_embd;     /* d */
    int n_layers;   /* L */
    int n_heads;    /* H */
    int n_kv_heads; /* Hkv */
    int head_dim;   /* hd (key_length) */
    int n_ff;       /* dense FFN width (llama) */
    int n_vocab;
    float eps; /* RMSNorm epsilon */
    /* RoPE */
    int rope_neox; /* 0: adjacent pairs (llama), 1: halves (gpt-oss) */
    int n_rot;     /* rotated dims (= head_dim for both archs) */
    float rope_base;
    float rope_base_swa;   /* sliding-window layers' base (rope.freq_base_swa, default rope_base) */
    float rope_freq_scale; /* 1/factor, 1 without scaling */
    int rope_yarn;         /* 1: YaRN ramp and magnitude correction */
    int n_ctx_orig;        /* YaRN original context */
    float yarn_beta_fast, yarn_beta_slow, yarn_attn_factor;
    /* attention extras (gpt-oss) */
    int window;      /* sliding window W (0: none) */
    int swa_pattern; /* layer l slides iff l % P < P - 1 */
    int has_sinks;
    float attn_scale; /* 1/sqrt(head_dim) */
    /* mixture of experts (gpt-oss) */
    int n_experts, n_experts_used, n_ff_exp;
    float swiglu_limit, swiglu_alpha;
} mf_hparams;

typedef struct mf_model {
    char *path;
    mf_gguf *gguf;
    mf_hparams hp;
    mf_tokenizer *tok;
    MF_MODEL_TENSORS(MF_X_FIELD) /* tok_embd, output_norm, output */
    int tied_output;             /* 1: output is a copy of tok_embd */
    mf_layer *layers;
    /* RoPE frequencies, per rotated pair i < n_rot/2, per layer kind: the angle of pair i at
     * position p is p * rope_freq[l][i] and cos/sin are multiplied by rope_mscale. This is
     * where the YaRN ramp lives (rope.c); every backend uses these numbers. */
    float **rope_freq; /* [n_layers][n_rot/2] */
    float rope_mscale;
    void **owned; /* aligned copies of misaligned vectors (model.c check_values) */
    size_t n_owned;
    /* totals for reports */
    uint64_t weight_bytes; /* all tensor bytes */
    uint64_t n_params;
} mf_model;

/* The model's weight list: its MF_MODEL_N_TENSORS own tensors, then MF_LAYER_N_TENSORS per
 * layer, in the order of the lists (absent tensors have name == NULL). The weight at index i
 * has slot i, except a tied output, whose slot is the embedding's. */
int mf_model_n_weights(const mf_model *m);
const mf_weight *mf_model_weight(const mf_model *m, int i);
const mf_tensor_desc *mf_model_weight_desc(int i);
/* a layer's tensor by its index in MF_LAYER_TENSORS */
static inline const mf_weight *mf_layer_weight(const mf_layer *L, int i)
{
    return (const mf_weight *)((const char *)L + mf_layer_tensors[i].offset);
}
/* the size a shape letter stands for */
int64_t mf_dim_size(const mf_hparams *hp, int dim);
/* 1 when layer l attends over a sliding window: l % P < P - 1 for the pattern P of a model
 * with a window (docs/moe.md §3) */
int mf_layer_slides(const mf_hparams *hp, int l);

/* Open a GGUF file and build the model: metadata, tokenizer, weight table, shape checks.
 * Errors name the file and the key/tensor (missing tensors are listed by name; unsupported
 * tensor types by type name). */
mf_model *mf_model_load(const char *path, mf_err *err);
void mf_model_free(mf_model *m);

/* The checks of mf_model_load that need no tensor: hyperparameters, vocabulary, and their
 * agreement. mkmodel runs them before it lays out any data. 0, or -1 with err. */
int mf_model_check_metadata(const mf_gguf *g, mf_err *err);

/* Hyperparameters only (no tokenizer, no tensors checked): used by `inspect` and `plan`. */
int mf_hparams_read(const mf_gguf *g, mf_hparams *hp, mf_err *err);

/* The layer of a tensor named blk.<l>.<rest> (with *rest, when not NULL, pointing at
 * <rest>); -1 for every other name. */
int mf_tensor_layer(const char *name, const char **rest);

/* Multiply-adds of the matrix products for one token (attention over the cache excluded):
 * every projection matrix's elements, the output matrix, and k/E of the expert matrices.
 * The embedding is a lookup, not a product. 2 x this = FLOPs per token. */
uint64_t mf_model_macs_per_token(const mf_model *m);

#endif
