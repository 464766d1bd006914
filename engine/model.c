/* model.c — hyperparameters and the weight table of a GGUF model (llama, gpt-oss).
 *
 * Everything the forward pass needs is read here, once, and checked: every key against its
 * type (missing required keys and wrong types are errors naming the key), every tensor
 * against the shape the hyperparameters imply (docs/forward.md §1), every
 * tensor type against what minfer can compute. A model that loads can be run.
 */
#include "model.h"
#include "memory.h"
#include "rope.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sanity caps: far above any real model, low enough that a hostile header cannot make the
 * loader allocate absurd amounts before a tensor shape check fails. */
#define MAX_DIM (1 << 20)
#define MAX_LAYERS 4096
#define MAX_VOCAB (1 << 24)
/* Domains of the float keys (beyond "finite"). RoPE bases: > 1, or the rotation frequencies
 * base^(-2i/n) would not decrease. Scaling factors: every known file writes 1..64 (gpt-oss:
 * 32, attn_factor 1); outside [1e-3, 1e6] the RoPE angles or the YaRN magnitude
 * attn_factor * (1 + 0.1 ln factor) become meaningless (a denormal factor gives an infinite
 * 1/factor), so such a file is refused rather than run into NaN logits. */
#define MIN_SCALE 1e-3f
#define MAX_SCALE 1e6f

/* ------------------------------------------------------------------ the weight list */

/* (MF_REQ("...") expands to a braced pair, so the rows cannot pass through a second macro) */
#define MF_X_MODEL(field, kind, nd, e0, e1, e2, llama, gpt_oss) \
    {#field, kind, nd, {MF_DIM_##e0, MF_DIM_##e1, MF_DIM_##e2}, {llama, gpt_oss}, offsetof(mf_model, field)},
#define MF_X_LAYER(field, kind, nd, e0, e1, e2, llama, gpt_oss) \
    {#field, kind, nd, {MF_DIM_##e0, MF_DIM_##e1, MF_DIM_##e2}, {llama, gpt_oss}, offsetof(mf_layer, field)},
const mf_tensor_desc mf_model_tensors[MF_MODEL_N_TENSORS] = {MF_MODEL_TENSORS(MF_X_MODEL)};
const mf_tensor_desc mf_layer_tensors[MF_LAYER_N_TENSORS] = {MF_LAYER_TENSORS(MF_X_LAYER)};
#undef MF_X_MODEL
#undef MF_X_LAYER

int64_t mf_dim_size(const mf_hparams *hp, int dim)
{
    switch (dim) {
    case MF_DIM_D: return hp->n_embd;
    case MF_DIM_Q: return (int64_t)hp->n_heads * hp->head_dim;
    case MF_DIM_KV: return (int64_t)hp->n_kv_heads * hp->head_dim;
    case MF_DIM_H: return hp->n_heads;
    case MF_DIM_FF: return hp->n_ff;
    case MF_DIM_E: return hp->n_experts;
    case MF_DIM_FE: return hp->n_ff_exp;
    case MF_DIM_V: return hp->n_vocab;
    default: return 1;
    }
}

int mf_model_n_weights(const mf_model *m) { return MF_MODEL_N_TENSORS + m->hp.n_layers * MF_LAYER_N_TENSORS; }

const mf_tensor_desc *mf_model_weight_desc(int i)
{
    return i < MF_MODEL_N_TENSORS ? &mf_model_tensors[i]
                                  : &mf_layer_tensors[(i - MF_MODEL_N_TENSORS) % MF_LAYER_N_TENSORS];
}

static mf_weight *weight_at(mf_model *m, int i)
{
    if (i < MF_MODEL_N_TENSORS) return (mf_weight *)((char *)m + mf_model_tensors[i].offset);
    int l = (i - MF_MODEL_N_TENSORS) / MF_LAYER_N_TENSORS;
    return (mf_weight *)((char *)&m->layers[l] + mf_model_weight_desc(i)->offset);
}

const mf_weight *mf_model_weight(const mf_model *m, int i) { return weight_at((mf_model *)m, i); }

typedef struct kreader {
    const mf_gguf *g;
    char prefix[40];
    mf_err *err;
} kreader;

static const char *key(kreader *k, const char *suffix, char buf[128])
{
    snprintf(buf, 128, "%s.%s", k->prefix, suffix);
    return buf;
}

/* required u32 <arch>.suffix, also accepting a per-layer array whose values are all equal */
static int req_u32(kreader *k, const char *suffix, int *out)
{
    char b[128];
    const char *name = key(k, suffix, b);
    const mf_gguf_kv *kv = mf_gguf_find_kv(k->g, name);
    uint32_t v;
    if (kv && kv->type == MF_GGUF_ARR && (kv->arr_type == MF_GGUF_U32 || kv->arr_type == MF_GGUF_I32)) {
        if (kv->arr_n == 0) return mf_errf(k->err, "%s: key '%s' is an empty array", mf_gguf_path(k->g), name);
        v = mf_gguf_arr_u32(kv, 0);
        for (uint64_t i = 1; i < kv->arr_n; i++)
            if (mf_gguf_arr_u32(kv, i) != v)
                return mf_errf(k->err, "%s: key '%s' varies per layer, which minfer does not support",
                               mf_gguf_path(k->g), name);
    } else if (mf_gguf_get_u32(k->g, name, &v, k->err)) {
        return -1;
    }
    if (v > MAX_DIM * 4u) return mf_errf(k->err, "%s: key '%s' = %u is out of range", mf_gguf_path(k->g), name, v);
    *out = (int)v;
    return 0;
}

static int opt_u32(kreader *k, const char *suffix, int def, int *out)
{
    char b[128];
    const char *name = key(k, suffix, b);
    if (!mf_gguf_find_kv(k->g, name)) {
        *out = def;
        return 0;
    }
    return req_u32(k, suffix, out);
}

static int req_f32(kreader *k, const char *suffix, float *out)
{
    char b[128];
    return mf_gguf_get_f32(k->g, key(k, suffix, b), out, k->err);
}

static int opt_f32(kreader *k, const char *suffix, float def, float *out)
{
    char b[128];
    return mf_gguf_opt_f32(k->g, key(k, suffix, b), def, out, k->err);
}

static int opt_str(kreader *k, const char *suffix, const char *def, const char **out)
{
    char b[128];
    return mf_gguf_opt_str(k->g, key(k, suffix, b), def, out, k->err);
}

static int bad(kreader *k, const char *what) { return mf_errf(k->err, "%s: %s", mf_gguf_path(k->g), what); }

/* A float key's value outside its domain: the message names the key and the value. */
static int bad_f32(kreader *k, const char *suffix, float v, const char *domain)
{
    return mf_errf(k->err, "%s: key '%s.%s' = %g is invalid (must be %s)", mf_gguf_path(k->g), k->prefix, suffix,
                   (double)v, domain);
}

static int scale_ok(float v) { return isfinite(v) && v >= MIN_SCALE && v <= MAX_SCALE; }

/* Keys shared by both architectures. */
static int read_common(kreader *k, mf_hparams *hp)
{
    if (req_u32(k, "context_length", &hp->n_ctx_train) || req_u32(k, "embedding_length", &hp->n_embd) ||
        req_u32(k, "block_count", &hp->n_layers) || req_u32(k, "attention.head_count", &hp->n_heads) ||
        opt_u32(k, "attention.head_count_kv", hp->n_heads, &hp->n_kv_heads) ||
        req_f32(k, "attention.layer_norm_rms_epsilon", &hp->eps) ||
        opt_f32(k, "rope.freq_base", 10000.0f, &hp->rope_base))
        return -1;
    if (hp->n_embd <= 0 || hp->n_embd > MAX_DIM) return bad(k, "embedding_length out of range");
    if (hp->n_layers < 0 || hp->n_layers > MAX_LAYERS) return bad(k, "block_count out of range");
    if (hp->n_heads <= 0 || hp->n_kv_heads <= 0 || hp->n_heads % hp->n_kv_heads)
        return mf_errf(k->err, "%s: head_count %d is not a positive multiple of head_count_kv %d", mf_gguf_path(k->g),
                       hp->n_heads, hp->n_kv_heads);
    if (!(hp->eps > 0 && hp->eps < 1)) return bad_f32(k, "attention.layer_norm_rms_epsilon", hp->eps, "in (0, 1)");
    if (!(isfinite(hp->rope_base) && hp->rope_base > 1))
        return bad_f32(k, "rope.freq_base", hp->rope_base, "a finite number > 1");
    /* sliding-window layers may have their own base (docs/forward.md §1) */
    if (opt_f32(k, "rope.freq_base_swa", hp->rope_base, &hp->rope_base_swa)) return -1;
    if (!(isfinite(hp->rope_base_swa) && hp->rope_base_swa > 1))
        return bad_f32(k, "rope.freq_base_swa", hp->rope_base_swa, "a finite number > 1");
    /* head size: key_length when present (gpt-oss: 64 != d/H), else d/H */
    int def_hd = hp->n_embd % hp->n_heads ? 0 : hp->n_embd / hp->n_heads;
    int vlen;
    if (opt_u32(k, "attention.key_length", def_hd, &hp->head_dim) ||
        opt_u32(k, "attention.value_length", hp->head_dim, &vlen) ||
        opt_u32(k, "rope.dimension_count", hp->head_dim, &hp->n_rot))
        return -1;
    if (hp->head_dim <= 0 || hp->head_dim % 2 || hp->head_dim > 1024)
        return mf_errf(k->err, "%s: head size %d is invalid (embedding %d, %d heads, key_length absent or bad)",
                       mf_gguf_path(k->g), hp->head_dim, hp->n_embd, hp->n_heads);
    if (vlen != hp->head_dim)
        return mf_errf(k->err, "%s: value_length %d differs from key_length %d (unsupported)", mf_gguf_path(k->g), vlen,
                       hp->head_dim);
    /* bounds every byte count derived from the shape (memory.h) */
    if ((int64_t)hp->n_heads * hp->head_dim > MAX_DIM || (int64_t)hp->n_kv_heads * hp->head_dim > MAX_DIM)
        return mf_errf(k->err, "%s: attention width head_count %d x head size %d = %lld (KV: %d x %d) exceeds %d",
                       mf_gguf_path(k->g), hp->n_heads, hp->head_dim, (long long)hp->n_heads * hp->head_dim,
                       hp->n_kv_heads, hp->head_dim, MAX_DIM);
    if (hp->n_rot != hp->head_dim)
        return mf_errf(k->err, "%s: rope.dimension_count %d differs from the head size %d (unsupported)",
                       mf_gguf_path(k->g), hp->n_rot, hp->head_dim);
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->rope_freq_scale = 1.0f;
    return 0;
}

/* rope.scaling.* (docs/forward.md §1) */
static int read_rope_scaling(kreader *k, mf_hparams *hp, int allow_yarn)
{
    const char *type;
    float factor;
    if (opt_str(k, "rope.scaling.type", "linear", &type)) return -1;
    if (opt_f32(k, "rope.scaling.factor", 0.0f, &factor)) return -1;
    const char *fkey = "rope.scaling.factor";
    if (factor == 0.0f) {
        if (opt_f32(k, "rope.scale_linear", 0.0f, &factor)) return -1;
        fkey = "rope.scale_linear";
    }
    if (factor != 0.0f && !scale_ok(factor)) return bad_f32(k, fkey, factor, "0 (no scaling) or in [0.001, 1e6]");
    float s = factor > 0 ? 1.0f / factor : 1.0f;
    if (!strcmp(type, "linear")) {
        hp->rope_freq_scale = s;
    } else if (!strcmp(type, "none")) {
        /* no scaling on any layer, whatever the factor says. (llama.cpp keeps the factor on
         * the sliding layers of a gpt-oss file that says "none"; no real file does, and
         * minfer has one scale for all layers.) */
        hp->rope_freq_scale = 1.0f;
    } else if (!strcmp(type, "yarn") && allow_yarn) {
        hp->rope_freq_scale = s;
        hp->rope_yarn = 1;
        if (opt_u32(k, "rope.scaling.original_context_length", hp->n_ctx_train, &hp->n_ctx_orig) ||
            opt_f32(k, "rope.scaling.attn_factor", 1.0f, &hp->yarn_attn_factor))
            return -1;
        /* beta_fast/slow are not read for gpt-oss by llama.cpp: fixed 32 / 1 (docs/moe.md §4) */
        hp->yarn_beta_fast = 32.0f;
        hp->yarn_beta_slow = 1.0f;
        if (hp->n_ctx_orig <= 0) return bad(k, "rope.scaling.original_context_length must be > 0");
        if (!scale_ok(hp->yarn_attn_factor))
            return bad_f32(k, "rope.scaling.attn_factor", hp->yarn_attn_factor, "in [0.001, 1e6]");
    } else {
        return mf_errf(k->err, "%s: RoPE scaling type '%s' is not supported for architecture '%s'", mf_gguf_path(k->g),
                       type, hp->arch_name);
    }
    return 0;
}

int mf_hparams_read(const mf_gguf *g, mf_hparams *hp, mf_err *err)
{
    memset(hp, 0, sizeof *hp);
    const char *arch;
    if (mf_gguf_get_str(g, "general.architecture", &arch, err)) return -1;
    snprintf(hp->arch_name, sizeof hp->arch_name, "%s", arch);
    kreader k = {g, "", err};
    snprintf(k.prefix, sizeof k.prefix, "%s", arch);

    if (!strcmp(arch, "llama")) {
        hp->arch = MF_ARCH_LLAMA;
        int n_exp;
        if (read_common(&k, hp) || req_u32(&k, "feed_forward_length", &hp->n_ff) ||
            opt_u32(&k, "expert_count", 0, &n_exp) || read_rope_scaling(&k, hp, 0))
            return -1;
        if (n_exp > 0) return bad(&k, "llama models with experts (Mixtral-style) are not supported");
        if (hp->n_ff <= 0 || hp->n_ff > MAX_DIM) return bad(&k, "feed_forward_length out of range");
        hp->rope_neox = 0;
    } else if (!strcmp(arch, "gpt-oss")) {
        hp->arch = MF_ARCH_GPT_OSS;
        if (read_common(&k, hp) || req_u32(&k, "expert_count", &hp->n_experts) ||
            req_u32(&k, "expert_used_count", &hp->n_experts_used) ||
            req_u32(&k, "expert_feed_forward_length", &hp->n_ff_exp) ||
            req_u32(&k, "attention.sliding_window", &hp->window) ||
            opt_u32(&k, "attention.sliding_window_pattern", 2, &hp->swa_pattern) || read_rope_scaling(&k, hp, 1))
            return -1;
        if (hp->n_experts <= 0 || hp->n_experts > MF_MAX_EXPERTS || hp->n_experts_used <= 0 ||
            hp->n_experts_used > hp->n_experts)
            return mf_errf(err, "%s: expert_used_count %d / expert_count %d are invalid", mf_gguf_path(g),
                           hp->n_experts_used, hp->n_experts);
        if (hp->n_ff_exp <= 0 || hp->n_ff_exp > MAX_DIM) return bad(&k, "expert_feed_forward_length out of range");
        if (hp->window <= 0) return bad(&k, "attention.sliding_window must be > 0");
        if (hp->swa_pattern < 2)
            return mf_errf(err, "%s: sliding_window_pattern %d leaves no sliding layer (must be >= 2)", mf_gguf_path(g),
                           hp->swa_pattern);
        hp->rope_neox = 1;
        hp->has_sinks = 1;
        /* clamped SwiGLU constants are fixed by the architecture (docs/moe.md §1) */
        hp->swiglu_limit = 7.0f;
        hp->swiglu_alpha = 1.702f;
    } else {
        return mf_errf(err, "%s: unsupported architecture '%s' (minfer runs llama and gpt-oss)", mf_gguf_path(g), arch);
    }
    if (hp->n_ctx_train <= 0) return bad(&k, "context_length must be > 0");

    /* vocabulary size: <arch>.vocab_size, else the token list */
    const mf_gguf_kv *tokens = mf_gguf_find_kv(g, "tokenizer.ggml.tokens");
    int vsize;
    if (opt_u32(&k, "vocab_size", tokens && tokens->type == MF_GGUF_ARR ? (int)tokens->arr_n : 0, &vsize)) return -1;
    if (vsize <= 0 || vsize > MAX_VOCAB)
        return mf_errf(err, "%s: vocabulary size %d is invalid (vocab_size key or tokenizer.ggml.tokens)",
                       mf_gguf_path(g), vsize);
    hp->n_vocab = vsize;
    return 0;
}

int mf_layer_slides(const mf_hparams *hp, int l)
{
    return hp->window > 0 && hp->swa_pattern > 0 && (l % hp->swa_pattern) < hp->swa_pattern - 1;
}

/* ------------------------------------------------------------------ weights */

typedef struct wloader {
    mf_model *m;
    mf_err *err;
    char missing[640]; /* names of missing tensors, for one message */
    int n_missing;
    int failed; /* a non-"missing" error is in err */
} wloader;

/* The checks on a tensor's values, made once at load where they are cheap: vectors (norms,
 * biases, sinks: a few KB per layer) and the MoE router (d x E) must be finite — a NaN
 * there would not always reach the logits (a router row that top-k never picks) and
 * would then go unnoticed. The big matrices are not read here (gigabytes); a non-finite
 * value in one shows in the logits, which the generation loop checks every step.
 * A vector the file places at an address that is not a multiple of 4 (general.alignment
 * 1 or 2, docs/gguf.md §2) gets an aligned copy owned by the model, so that every kernel may
 * read vectors as float arrays; matrices are read with unaligned loads everywhere. */
static void check_values(wloader *w, mf_weight *dst, const mf_gguf_tensor *t, int vector)
{
    if (t->type != MF_TYPE_F32) return;
    int64_t bad_at = mf_first_nonfinite_f32(t->data, t->n_elements);
    if (bad_at >= 0) {
        float v;
        memcpy(&v, (const uint8_t *)t->data + 4 * bad_at, 4);
        mf_errf(w->err, "%s: tensor '%s' holds %s at element %lld (norms, biases, sinks and routers must be finite)",
                w->m->path, t->name,
                isnan(v) ? "NaN"
                : v > 0  ? "+inf"
                         : "-inf",
                (long long)bad_at);
        w->failed = 1;
        return;
    }
    if (!vector || (uintptr_t)t->data % sizeof(float) == 0) return;
    mf_model *m = w->m;
    void **owned = realloc(m->owned, (m->n_owned + 1) * sizeof *owned);
    float *copy = malloc(t->nbytes);
    if (!owned || !copy) {
        free(copy);
        if (owned) m->owned = owned;
        mf_errf(w->err, "%s: out of memory", m->path);
        w->failed = 1;
        return;
    }
    m->owned = owned;
    memcpy(copy, t->data, t->nbytes);
    m->owned[m->n_owned++] = copy;
    dst->data = copy;
}

/* Bind tensor `i` of the weight list (mf_model_weight) as its row describes it for this
 * architecture: the name (prefixed by "blk.N." for a layer's tensor), the shape, required or
 * optional. A vector (MF_W_VECTOR: norms, biases, sinks) must be F32; check_values() runs on
 * vectors and on the router. */
static void bind(wloader *w, int i)
{
    mf_model *m = w->m;
    const mf_hparams *hp = &m->hp;
    const mf_tensor_desc *t_desc = mf_model_weight_desc(i);
    mf_weight *dst = weight_at(m, i);
    const mf_tensor_use *use = &t_desc->arch[hp->arch];
    int vector = t_desc->kind == MF_W_VECTOR;
    memset(dst, 0, sizeof *dst);
    dst->slot = i;
    if (w->failed || use->use == MF_USE_NONE) return;
    char name[MF_GGUF_MAX_NAME + 16];
    if (i < MF_MODEL_N_TENSORS) snprintf(name, sizeof name, "%s", use->name);
    else snprintf(name, sizeof name, "blk.%d.%s", (i - MF_MODEL_N_TENSORS) / MF_LAYER_N_TENSORS, use->name);
    const mf_gguf_tensor *t = mf_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (use->use == MF_USE_OPT) return;
        if (w->n_missing < 6) {
            size_t n = strlen(w->missing);
            snprintf(w->missing + n, sizeof w->missing - n, "%s%s", n ? ", " : "", name);
        }
        w->n_missing++;
        return;
    }
    int nd = t_desc->nd;
    int64_t want[4] = {1, 1, 1, 1};
    for (int j = 0; j < nd; j++) want[j] = mf_dim_size(hp, t_desc->dim[j]);
    int ok = 1;
    for (int j = 0; j < 4; j++) ok &= t->ne[j] == want[j];
    char tb[32];
    if (!ok) {
        mf_errf(w->err, "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]", m->path,
                name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                (long long)want[0], (long long)want[1], (long long)want[2]);
        w->failed = 1;
        return;
    }
    if (!mf_type_supported(t->type)) {
        mf_errf(w->err, "%s: tensor '%s' has type %s, which minfer cannot compute", m->path, name,
                mf_type_name(t->type, tb));
        w->failed = 1;
        return;
    }
    if (vector && t->type != MF_TYPE_F32) {
        mf_errf(w->err, "%s: tensor '%s' has type %s; minfer expects F32 for norms, biases and sinks", m->path, name,
                mf_type_name(t->type, tb));
        w->failed = 1;
        return;
    }
    dst->name = t->name;
    dst->type = t->type;
    memcpy(dst->ne, t->ne, sizeof dst->ne);
    dst->row_bytes = mf_type_row_bytes(t->type, t->ne[0]);
    dst->nbytes = t->nbytes;
    dst->data = t->data;
    if (t_desc->kind != MF_W_MATRIX) check_values(w, dst, t, vector);
}

static int check_vocab(const mf_gguf *g, const mf_hparams *hp, const mf_tokenizer *t, mf_err *err)
{
    if (mf_tok_n_vocab(t) <= hp->n_vocab) return 0;
    return mf_errf(err, "%s: the tokenizer has %d tokens but the model only %d embeddings", mf_gguf_path(g),
                   mf_tok_n_vocab(t), hp->n_vocab);
}

int mf_model_check_metadata(const mf_gguf *g, mf_err *err)
{
    mf_hparams hp;
    if (mf_hparams_read(g, &hp, err)) return -1;
    mf_tokenizer *t = mf_tokenizer_load(g, err);
    int rc = !t || check_vocab(g, &hp, t, err) ? -1 : 0;
    mf_tokenizer_free(t);
    return rc;
}

mf_model *mf_model_load(const char *path, mf_err *err)
{
    mf_model *m = calloc(1, sizeof *m);
    if (!m) {
        mf_errf(err, "%s: out of memory", path);
        return NULL;
    }
    m->path = strdup(path);
    m->gguf = mf_gguf_open(path, err);
    if (!m->path || !m->gguf || mf_hparams_read(m->gguf, &m->hp, err)) goto fail;
    mf_hparams *hp = &m->hp;

    m->tok = mf_tokenizer_load(m->gguf, err);
    if (!m->tok || check_vocab(m->gguf, hp, m->tok, err)) goto fail;

    wloader w = {.m = m, .err = err};
    m->layers = calloc(hp->n_layers ? (size_t)hp->n_layers : 1, sizeof *m->layers);
    if (!m->layers) {
        mf_errf(err, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < mf_model_n_weights(m) && !w.failed; i++) bind(&w, i);
    if (w.failed) goto fail;
    if (!m->output.name) { /* tied embeddings (docs/forward.md §1) */
        m->output = m->tok_embd;
        m->tied_output = 1;
    }
    for (int l = 0; l < hp->n_layers; l++) m->layers[l].sliding = mf_layer_slides(hp, l);
    if (w.n_missing) {
        mf_errf(err, "%s: %d required tensor%s missing: %s%s", path, w.n_missing, w.n_missing > 1 ? "s are" : " is",
                w.missing, w.n_missing > 6 ? ", ..." : "");
        goto fail;
    }

    /* RoPE frequencies per layer (a sliding layer may have its own base) */
    m->rope_freq = calloc(hp->n_layers ? (size_t)hp->n_layers : 1, sizeof *m->rope_freq);
    if (!m->rope_freq) {
        mf_errf(err, "%s: out of memory", path);
        goto fail;
    }
    for (int l = 0; l < hp->n_layers; l++) {
        m->layers[l].rope_base = m->layers[l].sliding ? hp->rope_base_swa : hp->rope_base;
        m->rope_freq[l] = malloc((size_t)(hp->n_rot / 2) * sizeof(float));
        if (!m->rope_freq[l]) {
            mf_errf(err, "%s: out of memory", path);
            goto fail;
        }
        m->rope_mscale = mf_rope_freqs(hp, m->layers[l].rope_base, m->rope_freq[l]);
    }

    m->weight_bytes = mf_mem_file_weights(m->gguf, &m->n_params);
    return m;
fail:
    mf_model_free(m);
    return NULL;
}

void mf_model_free(mf_model *m)
{
    if (!m) return;
    if (m->rope_freq)
        for (int l = 0; l < m->hp.n_layers; l++) free(m->rope_freq[l]);
    free(m->rope_freq);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    mf_tokenizer_free(m->tok);
    mf_gguf_close(m->gguf);
    free(m->path);
    free(m);
}

static uint64_t elements(const mf_weight *w)
{
    return w->name ? (uint64_t)w->ne[0] * (uint64_t)w->ne[1] * (uint64_t)w->ne[2] * (uint64_t)w->ne[3] : 0;
}

uint64_t mf_model_macs_per_token(const mf_model *m)
{
    const mf_hparams *hp = &m->hp;
    uint64_t macs = elements(&m->output);
    for (int l = 0; l < hp->n_layers; l++)
        for (int i = 0; i < MF_LAYER_N_TENSORS && !m->layers[l].skip; i++) {
            if (mf_layer_tensors[i].kind == MF_W_VECTOR) continue;
            uint64_t e = elements(mf_layer_weight(&m->layers[l], i));
            /* a stack of experts: k of its E matrices per token (absent without experts) */
            if (mf_tensor_per_expert(&mf_layer_tensors[i]) && hp->n_experts > 0)
                e = e / (uint64_t)hp->n_experts * (uint64_t)hp->n_experts_used;
            macs += e;
        }
    return macs;
}

int mf_tensor_layer(const char *name, const char **rest)
{
    if (strncmp(name, "blk.", 4) != 0) return -1;
    const char *p = name + 4;
    long l = 0;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9' && l < 1000000) l = l * 10 + (*p++ - '0');
    if (*p != '.') return -1;
    if (rest) *rest = p + 1;
    return (int)l;
}
