/* mkmodel.c — synthetic GGUF models: any architecture, shape and tensor type, with
 * deterministic pseudo-random weights.
 *
 *   mkmodel -o OUT.gguf [--arch llama|gpt-oss] [--preset NAME] [--type T] [--output-type T]
 *           [--embd-type T] [--expert-type T] [--vocab-from FILE.gguf] [--layers N]
 *           [--seed S] [--ctx N] [--dim N] [--heads N] [--kv-heads N] [--head-dim N]
 *           [--ff N] [--vocab N] [--experts N] [--experts-used N] [--window N]
 *           [--rope-base F] [--threads N]
 *
 * Presets (the shape; every option above overrides its part):
 *   llama   tiny            d 256, 2 layers, 8 heads / 2 KV heads (hd 32), FFN 512, vocab 512,
 *                           ctx 512: every row is a multiple of 256, so every type fits
 *           tinyllama-1.1b  TinyLlama-1.1B (docs/reference.md §2): d 2048, 22 layers, 32/4 heads,
 *                           FFN 5632, vocab 32000, ctx 2048, rope base 10000, eps 1e-5
 *   gpt-oss tiny            d 128, 4 layers, 4/2 heads of 16 (so H·hd = 64 != d), 4 experts
 *                           top-2 of width 96, window 8, ctx 256, YaRN 32 over 4096 (all three
 *                           ramp regimes occur with hd 16), a small byte-level BPE vocabulary
 *           gpt-oss-20b     docs/forward.md §1: 24 layers, d 2880, 64/8 heads of 64, 32 experts
 *                           top-4 of width 2880, vocab 201088, window 128, ctx 131072, base
 *                           150000, YaRN 32 over 4096; MXFP4 experts, Q8_0 attention,
 *                           embedding and output, F32 norms, biases, sinks and router
 *
 * Tensor types: --type sets every matrix (llama: all of them; gpt-oss: attention, embedding,
 * output), --embd-type / --output-type override token_embd / output, --expert-type the gpt-oss
 * experts. Norms, biases, sinks and the gpt-oss router are always F32 (as in the real files).
 *
 * Weights (see docs/reference.md for the reasoning):
 *   matrices       "normal" with standard deviation 1/sqrt(n_in): each output of W·x then has
 *                  the variance of one input element, so activations stay O(1) at any width
 *                  and the logits have a standard deviation of about 1 (not flat, not one-hot)
 *   token_embd     standard deviation 1: the residual stream starts at RMS 1, the scale of
 *                  what each block adds, so both the token and its context shape the output
 *   norm gains     uniform in [0.9, 1.1]
 *   biases         standard deviation 0.1 (small, yet a dropped bias changes the logits)
 *   sinks          uniform in [0, 2]
 *   router         standard deviation 2/sqrt(d): router logits of spread ~2, so the top-k
 *                  choice is decisive rather than a near-tie
 *   expert gate/up standard deviation 3/sqrt(d): about 2% of the pre-activations pass ±7,
 *                  so the clamps of gpt-oss's SwiGLU are exercised
 *   expert down    standard deviation 0.3/sqrt(F): the SwiGLU output is large (values up to
 *                  7·8), this keeps the expert contribution near RMS 1
 * "normal" is the Irwin-Hall sum of four 16-bit uniforms, scaled to the wanted deviation:
 * bell-shaped, bounded at 3.46σ, and computed with integer operations and one float multiply.
 *
 * Determinism: the bytes depend only on the options. Each row of each tensor has its own
 * random stream, seeded from (seed, tensor name, row index), so the order in which rows are
 * generated (threads) does not matter; the float arithmetic is one IEEE multiply (or one
 * multiply and one add) per value, with no libm call, so every IEEE machine computes the same
 * numbers (the build uses -std=c11, which keeps GCC from fusing the multiply-add). The
 * quantized bytes come from mf_quantize_row (quant.c).
 *
 * Speed: tensors are streamed through the writer's fill callback (one tensor buffer at a
 * time) and their rows are generated and quantized by --threads threads (default: all
 * online CPUs).
 */
#include "gguf.h"
#include "model.h"
#include "quant.h"
#include "quantize.h"
#include "quantize_model.h"
#include "types.h"
#include "driver.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <malloc.h>

enum { ARCH_LLAMA = 0, ARCH_GPT_OSS = 1 };

typedef struct cfg {
    int arch;
    const char *preset, *out, *vocab_from;
    int64_t dim, layers, heads, kv_heads, head_dim, ff, vocab, ctx;
    int64_t experts, experts_used, window, yarn_orig_ctx;
    float rope_base, eps, yarn_factor;
    const char *script;
    int sparse;
    uint32_t type, embd_type, output_type, expert_type;
    uint64_t seed;
    int threads;
} cfg;

/* ================================================================ presets */

static int preset_apply(cfg *c, mf_err *err)
{
    const char *p = c->preset;
    if (c->arch == ARCH_LLAMA && strcmp(p, "tiny") == 0) {
        c->dim = 256;
        c->layers = 2;
        c->heads = 8;
        c->kv_heads = 2;
        c->ff = 512;
        c->vocab = 512;
        c->ctx = 512;
        c->rope_base = 10000.0f;
        c->eps = 1e-5f;
        c->type = c->embd_type = c->output_type = MF_TYPE_F32;
    } else if (c->arch == ARCH_LLAMA && strcmp(p, "tinyllama-1.1b") == 0) {
        c->dim = 2048;
        c->layers = 22;
        c->heads = 32;
        c->kv_heads = 4;
        c->ff = 5632;
        c->vocab = 32000;
        c->ctx = 2048;
        c->rope_base = 10000.0f;
        c->eps = 1e-5f;
        c->type = c->embd_type = c->output_type = MF_TYPE_F16;
    } else if (c->arch == ARCH_GPT_OSS && strcmp(p, "tiny") == 0) {
        c->dim = 128;
        c->layers = 4;
        c->heads = 4;
        c->kv_heads = 2;
        c->head_dim = 16;
        c->experts = 4;
        c->experts_used = 2;
        c->ff = 96;
        c->window = 8;
        c->ctx = 256;
        c->vocab = 0; /* the natural size of the synthetic vocabulary */
        c->rope_base = 150000.0f;
        c->yarn_factor = 32.0f;
        c->yarn_orig_ctx = 4096;
        c->eps = 1e-5f;
        c->type = c->embd_type = c->output_type = MF_TYPE_Q8_0;
        c->expert_type = MF_TYPE_MXFP4;
    } else if (c->arch == ARCH_GPT_OSS && strcmp(p, "gpt-oss-20b") == 0) {
        c->dim = 2880;
        c->layers = 24;
        c->heads = 64;
        c->kv_heads = 8;
        c->head_dim = 64;
        c->experts = 32;
        c->experts_used = 4;
        c->ff = 2880;
        c->window = 128;
        c->ctx = 131072;
        c->vocab = 201088;
        c->rope_base = 150000.0f;
        c->yarn_factor = 32.0f;
        c->yarn_orig_ctx = 4096;
        c->eps = 1e-5f;
        c->type = c->embd_type = c->output_type = MF_TYPE_Q8_0;
        c->expert_type = MF_TYPE_MXFP4;
    } else {
        return mf_errf(err,
                       "--preset %s: unknown for --arch %s (llama: tiny, tinyllama-1.1b; "
                       "gpt-oss: tiny, gpt-oss-20b)",
                       p, c->arch == ARCH_LLAMA ? "llama" : "gpt-oss");
    }
    return 0;
}

/* ================================================================ vocabularies */

/* A growing token list: strings (owned), types, scores; and BPE merges. */
typedef struct vocab {
    char **tok;
    int32_t *type;
    float *score;
    int64_t n, cap;
    char **merge;
    int64_t n_merge, cap_merge;
    int64_t bos, eos, unk, pad;
} vocab;

static void vocab_free(vocab *v)
{
    for (int64_t i = 0; i < v->n; i++) free(v->tok[i]);
    for (int64_t i = 0; i < v->n_merge; i++) free(v->merge[i]);
    free(v->tok);
    free(v->type);
    free(v->score);
    free(v->merge);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "mkmodel: out of memory\n");
        exit(1);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "mkmodel: out of memory\n");
        exit(1);
    }
    return d;
}

static int64_t vocab_find(const vocab *v, const char *s)
{
    for (int64_t i = 0; i < v->n; i++)
        if (strcmp(v->tok[i], s) == 0) return i;
    return -1;
}

/* Append a token; returns its id (or the existing id of an equal string: token strings
 * must be unique, docs/tokenizer.md §1). */
static int64_t vocab_add(vocab *v, const char *s, int32_t type, float score)
{
    int64_t id = vocab_find(v, s);
    if (id >= 0) return id;
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 1024;
        v->tok = xrealloc(v->tok, (size_t)v->cap * sizeof *v->tok);
        v->type = xrealloc(v->type, (size_t)v->cap * sizeof *v->type);
        v->score = xrealloc(v->score, (size_t)v->cap * sizeof *v->score);
    }
    v->tok[v->n] = xstrdup(s);
    v->type[v->n] = type;
    v->score[v->n] = score;
    return v->n++;
}

/* Same, without the uniqueness scan: for the generated filler tokens, unique by construction
 * (keeps the 201088-token vocabulary linear to build). */
static void vocab_push(vocab *v, const char *s, int32_t type, float score)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 1024;
        v->tok = xrealloc(v->tok, (size_t)v->cap * sizeof *v->tok);
        v->type = xrealloc(v->type, (size_t)v->cap * sizeof *v->type);
        v->score = xrealloc(v->score, (size_t)v->cap * sizeof *v->score);
    }
    v->tok[v->n] = xstrdup(s);
    v->type[v->n] = type;
    v->score[v->n] = score;
    v->n++;
}

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_UNUSED = 5, TT_BYTE = 6 };

/* Words whose pieces (SPM) or merges (BPE) the synthetic vocabularies contain: enough that
 * English text tokenizes into more than single bytes, small enough for a tiny model. */
static const char *const WORDS[] = {
    "the",   "and",    "was",    "to",   "he",    "she", "it",    "of",        "in",     "they",     "said",  "his",
    "her",   "you",    "with",   "that", "on",    "for", "is",    "day",       "one",    "time",     "upon",  "once",
    "there", "little", "girl",   "boy",  "named", "who", "loved", "play",      "happy",  "big",      "dog",   "cat",
    "sun",   "tree",   "friend", "mom",  "went",  "saw", "had",   "very",      "not",    "but",      "so",    "what",
    "Once",  "Lily",   "Tom",    "The",  "She",   "He",  "user",  "assistant", "system", "analysis", "final",
};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

/* SentencePiece-style vocabulary (docs/tokenizer.md §3): <unk>, <s>, </s>, the 256 byte tokens
 * <0x00>..<0xFF>, single characters, then every prefix of "▁word" for the word list, with
 * scores 0, −1, −2, … in that order (a higher score merges first), padded with UNUSED
 * <unusedN> tokens up to n. */
static int vocab_spm(vocab *v, int64_t n, mf_err *err)
{
    static const char SP[] = "\xe2\x96\x81"; /* U+2581, the SPM space */
    char buf[64];
    v->unk = vocab_add(v, "<unk>", TT_UNKNOWN, 0.0f);
    v->bos = vocab_add(v, "<s>", TT_CONTROL, 0.0f);
    v->eos = vocab_add(v, "</s>", TT_CONTROL, 0.0f);
    v->pad = -1;
    for (int b = 0; b < 256; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        vocab_add(v, buf, TT_BYTE, 0.0f);
    }
    int64_t first_piece = v->n; /* 259 */
    float score = 0.0f;
    vocab_add(v, SP, TT_NORMAL, score--);
    const char *chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";
    for (const char *c = chars; *c; c++) {
        char s[2] = {*c, 0};
        if (vocab_find(v, s) < 0) vocab_add(v, s, TT_NORMAL, score--);
    }
    for (size_t w = 0; w < N_WORDS; w++) {
        size_t len = strlen(WORDS[w]);
        for (size_t k = 1; k <= len; k++) {
            snprintf(buf, sizeof buf, "%s%.*s", SP, (int)k, WORDS[w]);
            if (vocab_find(v, buf) < 0) vocab_add(v, buf, TT_NORMAL, score--);
        }
    }
    if (n < first_piece + 1)
        return mf_errf(err,
                       "--vocab %lld: a llama vocabulary needs at least %lld tokens "
                       "(3 specials, 256 bytes, one piece)",
                       (long long)n, (long long)first_piece + 1);
    while (v->n > n) free(v->tok[--v->n]);
    for (int64_t k = 0; v->n < n; k++) {
        snprintf(buf, sizeof buf, "<unused%lld>", (long long)k);
        vocab_push(v, buf, TT_UNUSED, score--);
    }
    return 0;
}

/* GPT-2 byte map (docs/tokenizer.md §4.1): printable bytes map to themselves, the other 68
 * bytes to U+0100, U+0101, ... in increasing order. */
static uint32_t gpt2_byte_cp(int b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return (uint32_t)b;
    uint32_t k = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) k++;
    return 256 + k;
}

static int utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2; /* the byte map only reaches U+0143 */
}

/* The 15 harmony tokens in id order from <|startoftext|> (docs/tokenizer.md §1). */
static const char *const HARMONY[] = {
    "<|startoftext|>", "<|endoftext|>",       "<|reserved_200000|>", "<|reserved_200001|>", "<|return|>",
    "<|constrain|>",   "<|reserved_200004|>", "<|channel|>",         "<|start|>",           "<|end|>",
    "<|message|>",     "<|reserved_200009|>", "<|reserved_200010|>", "<|reserved_200011|>", "<|call|>",
};
#define N_HARMONY 15
/* ids after <|startoftext|> in the real vocabulary: 201088 − 199998 */
#define HARMONY_TAIL 1090

static void bpe_merge(vocab *v, const char *a, const char *b)
{
    char m[128], t[128];
    snprintf(m, sizeof m, "%s %s", a, b);
    snprintf(t, sizeof t, "%s%s", a, b);
    for (int64_t i = 0; i < v->n_merge; i++)
        if (strcmp(v->merge[i], m) == 0) return;
    if (v->n_merge == v->cap_merge) {
        v->cap_merge = v->cap_merge ? 2 * v->cap_merge : 256;
        v->merge = xrealloc(v->merge, (size_t)v->cap_merge * sizeof *v->merge);
    }
    v->merge[v->n_merge++] = xstrdup(m);
    vocab_add(v, t, TT_NORMAL, 0.0f);
}

/* Byte-level BPE vocabulary in the layout of o200k_harmony (docs/tokenizer.md §4): the 256
 * byte tokens in GPT-2 order (bytes 0x21.. first, space = id 220), then for each word the
 * left-to-right merges of "Ġword" and "word" (rank = order of creation), then — when n
 * leaves room — "[PAD<id>]" UNUSED fillers so that the 15 harmony tokens start at
 * n − 1090 (199998 for the real 201088), then <|reserved_<id>|> CONTROL tokens up to n.
 * n = 0 asks for the natural size (the harmony tokens right after the merges). */
static int vocab_bpe(vocab *v, int64_t n, mf_err *err)
{
    char buf[64];
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            if (printable != (pass == 0)) continue;
            int k = utf8_put(buf, gpt2_byte_cp(b));
            buf[k] = 0;
            vocab_add(v, buf, TT_NORMAL, 0.0f);
        }
    static const char G[] = "\xc4\xa0"; /* Ġ = mapped space */
    for (int spaced = 1; spaced >= 0; spaced--)
        for (size_t w = 0; w < N_WORDS; w++) {
            char left[64];
            const char *word = WORDS[w];
            snprintf(left, sizeof left, "%s", spaced ? G : "");
            size_t start = 0;
            if (!spaced) {
                left[0] = word[0];
                left[1] = 0;
                start = 1;
            }
            for (size_t k = start; word[k]; k++) {
                char right[2] = {word[k], 0};
                bpe_merge(v, left, right);
                size_t l = strlen(left);
                left[l] = word[k];
                left[l + 1] = 0;
            }
        }
    int64_t natural = v->n + N_HARMONY;
    if (n == 0) n = natural;
    if (n < natural)
        return mf_errf(err, "--vocab %lld: this byte-level vocabulary needs at least %lld tokens", (long long)n,
                       (long long)natural);
    int64_t first_special = n - HARMONY_TAIL > v->n ? n - HARMONY_TAIL : v->n;
    for (int64_t i = v->n; i < first_special; i++) {
        snprintf(buf, sizeof buf, "[PAD%lld]", (long long)i);
        vocab_push(v, buf, TT_UNUSED, 0.0f);
    }
    for (int i = 0; i < N_HARMONY; i++) vocab_push(v, HARMONY[i], TT_CONTROL, 0.0f);
    for (int64_t i = v->n; i < n; i++) {
        snprintf(buf, sizeof buf, "<|reserved_%lld|>", (long long)(i - first_special + 199998));
        vocab_push(v, buf, TT_CONTROL, 0.0f);
    }
    v->bos = first_special;     /* <|startoftext|> */
    v->pad = first_special + 1; /* <|endoftext|> */
    v->eos = first_special + 4; /* <|return|> */
    v->unk = -1;
    return 0;
}

static int write_vocab(mf_gguf_writer *w, const vocab *v, int bpe)
{
    int rc = 0;
    rc |= mf_gguf_w_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
    rc |= mf_gguf_w_str(w, "tokenizer.ggml.pre", bpe ? "gpt-4o" : "default");
    rc |= mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, NULL, (uint64_t)v->n);
    if (!bpe) rc |= mf_gguf_w_arr(w, "tokenizer.ggml.scores", MF_GGUF_F32, v->score, (uint64_t)v->n);
    rc |= mf_gguf_w_arr(w, "tokenizer.ggml.token_type", MF_GGUF_I32, v->type, (uint64_t)v->n);
    if (bpe)
        rc |= mf_gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merge, NULL, (uint64_t)v->n_merge);
    rc |= mf_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    rc |= mf_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (v->unk >= 0) rc |= mf_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (v->pad >= 0) rc |= mf_gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)v->pad);
    if (!bpe) {
        rc |= mf_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
        rc |= mf_gguf_w_bool(w, "tokenizer.ggml.add_eos_token", 0);
    }
    return rc ? -1 : 0;
}

/* ================================================================ tensor plan */

/* D_ZERO and D_SCRIPT only with --script (see script_apply) */
enum { D_NORMAL = 0, D_UNIFORM = 1, D_ZERO = 2, D_SCRIPT = 3 };

typedef struct ptensor {
    char name[MF_GGUF_MAX_NAME];
    uint32_t type, n_dims;
    int64_t ne[3];
    int dist;
    float a, b; /* normal: a = standard deviation; uniform: [a, b) */
} ptensor;

typedef struct plan {
    ptensor *t;
    int64_t n, cap;
    uint64_t seed;
    int threads;
    /* --script: pairs (from[i] -> to[i]) the output matrix is made to follow */
    int64_t script_from[64], script_to[64];
    int n_script;
    const ptensor *embd;
} plan;

static void add_t(plan *p, const char *name, uint32_t type, uint32_t n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                  int dist, double a, double b)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->t = xrealloc(p->t, (size_t)p->cap * sizeof *p->t);
    }
    ptensor *t = &p->t[p->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->dist = dist;
    t->a = (float)a;
    t->b = (float)b;
}

/* One tensor of the weight list (model.h) as mkmodel fills it: its type and distribution
 * (see the top of this file for the reasoning). */
static void add_listed(plan *p, const cfg *c, const mf_hparams *hp, int i, const char *name)
{
    const mf_tensor_desc *t = mf_model_weight_desc(i);
    int64_t ne[3];
    for (int j = 0; j < 3; j++) ne[j] = mf_dim_size(hp, t->dim[j]);
    double d = (double)hp->n_embd, n_in = (double)ne[0];
    uint32_t mtype = c->arch == ARCH_GPT_OSS && t->nd == 3 ? c->expert_type : c->type;
    if (i == MF_MT_tok_embd) mtype = c->embd_type;
    if (i == MF_MT_output) mtype = c->output_type;
    int lt = i >= MF_MODEL_N_TENSORS ? (i - MF_MODEL_N_TENSORS) % MF_LAYER_N_TENSORS : -1;
    if (i == MF_MT_tok_embd) {
        add_t(p, name, mtype, 2, ne[0], ne[1], 1, D_NORMAL, 1.0, 0);
    } else if (t->kind == MF_W_ROUTER) {
        add_t(p, name, MF_TYPE_F32, 2, ne[0], ne[1], 1, D_NORMAL, 2.0 / sqrt(d), 0);
    } else if (t->kind == MF_W_MATRIX) {
        /* expert gate/up drive the clamps, expert down keeps the sum near RMS 1 */
        double sd = lt == MF_LT_gate_exps || lt == MF_LT_up_exps ? 3.0 / sqrt(d)
                    : lt == MF_LT_down_exps                      ? 0.3 / sqrt(n_in)
                                                                 : 1.0 / sqrt(n_in);
        add_t(p, name, mtype, (uint32_t)t->nd, ne[0], ne[1], ne[2], D_NORMAL, sd, 0);
    } else if (lt == MF_LT_sinks) {
        add_t(p, name, MF_TYPE_F32, 1, ne[0], 1, 1, D_UNIFORM, 0.0, 2.0);
    } else if (strstr(t->field, "norm")) { /* gains */
        add_t(p, name, MF_TYPE_F32, 1, ne[0], 1, 1, D_UNIFORM, 0.9, 1.1);
    } else { /* biases */
        add_t(p, name, MF_TYPE_F32, (uint32_t)t->nd, ne[0], ne[1], 1, D_NORMAL, 0.1, 0);
    }
}

/* Every tensor the architecture requires, in the list's order, and the output matrix (which
 * the format allows to be absent: mkmodel always writes it); the embedding first and the
 * output norm and matrix last, as converters lay files out. */
static void plan_tensors(plan *p, const cfg *c)
{
    int arch = c->arch == ARCH_GPT_OSS ? MF_ARCH_GPT_OSS : MF_ARCH_LLAMA;
    mf_hparams hp = {.arch = arch,
                     .n_embd = (int)c->dim,
                     .n_heads = (int)c->heads,
                     .n_kv_heads = (int)c->kv_heads,
                     .head_dim = (int)c->head_dim,
                     .n_vocab = (int)c->vocab,
                     .n_experts = (int)c->experts};
    if (arch == MF_ARCH_GPT_OSS) hp.n_ff_exp = (int)c->ff;
    else hp.n_ff = (int)c->ff;
    if (!hp.head_dim) hp.head_dim = (int)(c->dim / c->heads);
    char nm[MF_GGUF_MAX_NAME];
    const int top[] = {MF_MT_tok_embd, -1, MF_MT_output_norm, MF_MT_output};
    for (size_t k = 0; k < sizeof top / sizeof *top; k++) {
        if (top[k] >= 0) {
            add_listed(p, c, &hp, top[k], mf_model_tensors[top[k]].arch[arch].name);
            continue;
        }
        for (int64_t l = 0; l < c->layers; l++)
            for (int i = 0; i < MF_LAYER_N_TENSORS; i++) {
                const mf_tensor_use *u = &mf_layer_tensors[i].arch[arch];
                if (u->use != MF_USE_REQ) continue;
                snprintf(nm, sizeof nm, "blk.%lld.%s", (long long)l, u->name);
                add_listed(p, c, &hp, MF_MODEL_N_TENSORS + i, nm);
            }
    }
}

/* ================================================================ weights */

/* splitmix64 finalizer: a strong 64-bit mix, used both to seed and to step the streams. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return h;
}

/* Mean and variance of the sum of four uniform integers in 0..65535 (Irwin-Hall):
 * 4 · 65535 / 2 = 131070 and 4 · (65536² − 1) / 12 = 1431655765 */
#define IH4_MEAN 131070
#define IH4_VAR 1431655765.0

/* Fill one row of n floats from the row's own stream. */
static void gen_row(const ptensor *t, uint64_t stream, float *x, int64_t n)
{
    uint64_t s = stream;
    if (t->dist == D_ZERO) {
        memset(x, 0, (size_t)n * sizeof *x);
    } else if (t->dist == D_NORMAL || t->dist == D_SCRIPT) {
        float scale = (float)(t->a / sqrt(IH4_VAR));
        for (int64_t i = 0; i < n; i++) {
            s += 0x9E3779B97F4A7C15ull;
            uint64_t r = mix64(s);
            int32_t sum = (int32_t)(r & 0xFFFF) + (int32_t)((r >> 16) & 0xFFFF) + (int32_t)((r >> 32) & 0xFFFF) +
                          (int32_t)(r >> 48);
            x[i] = (float)(sum - IH4_MEAN) * scale;
        }
    } else {
        float lo = t->a, width = t->b - t->a;
        for (int64_t i = 0; i < n; i++) {
            s += 0x9E3779B97F4A7C15ull;
            float u = (float)(mix64(s) >> 40) * (1.0f / 16777216.0f); /* exact: 24 bits */
            float step = width * u;
            x[i] = lo + step;
        }
    }
}

/* Row u of the scripted output matrix: for every scripted pair (t -> u), add
 * (20 / d) · e_t / rms(e_t), with e_t the embedding row of t regenerated from its stream.
 * With the blocks adding nothing (their output projections are zero) the final hidden state
 * of token t is RMSNorm(e_t) ≈ e_t / rms(e_t), so the logit of u is ≈ 20 · gain while every
 * other logit stays of order 1 (random rows) or 20/sqrt(d) (another pair's row): greedy
 * decoding follows the script. */
static void script_row(const plan *p, int64_t u, float *x, int64_t n)
{
    float *e = NULL;
    for (int i = 0; i < p->n_script; i++) {
        if (p->script_to[i] != u) continue;
        if (!e && !(e = malloc((size_t)n * sizeof *e))) return;
        gen_row(p->embd, mix64(mix64(p->seed ^ fnv1a(p->embd->name)) + (uint64_t)p->script_from[i]), e, n);
        double ss = 0;
        for (int64_t k = 0; k < n; k++) ss += (double)e[k] * e[k];
        float a = (float)(20.0 / (double)n / sqrt(ss / (double)n));
        for (int64_t k = 0; k < n; k++) x[k] += a * e[k];
    }
    free(e);
}

typedef struct job {
    const plan *p;
    const ptensor *t;
    uint8_t *dst;
    size_t row_bytes;
    int64_t r0, r1;
    uint64_t base;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    int64_t n = j->t->ne[0];
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) return (void *)1;
    for (int64_t r = j->r0; r < j->r1; r++) {
        uint8_t *dst = j->dst + (size_t)r * j->row_bytes;
        gen_row(j->t, mix64(j->base + (uint64_t)r), x, n);
        if (j->t->dist == D_SCRIPT) script_row(j->p, r, x, n);
        if (j->t->type == MF_TYPE_F32) memcpy(dst, x, (size_t)n * sizeof *x);
        else mf_quantize_row(j->t->type, x, dst, n);
    }
    free(x);
    return NULL;
}

/* The writer's fill callback: rows of tensor `index` split over the threads. */
static int fill(void *user, uint64_t index, const mf_gguf_tensor *info, void *buf, mf_err *err)
{
    const plan *p = user;
    const ptensor *t = &p->t[index];
    int64_t rows = info->ne[1] * info->ne[2] * info->ne[3];
    int nt = p->threads;
    if (rows < 64 * (int64_t)nt) nt = 1; /* small tensors: not worth a thread */
    job jobs[64];
    pthread_t th[64];
    int started[64] = {0}, failed = 0;
    for (int i = 0; i < nt; i++) {
        jobs[i] = (job){p,
                        t,
                        buf,
                        mf_type_row_bytes(t->type, t->ne[0]),
                        rows * i / nt,
                        rows * (i + 1) / nt,
                        mix64(p->seed ^ fnv1a(t->name))};
        /* jobs 1.. on threads (run here if a thread cannot be made), job 0 here */
        if (i > 0) started[i] = pthread_create(&th[i], NULL, run_job, &jobs[i]) == 0;
        if (i > 0 && !started[i]) failed |= run_job(&jobs[i]) != NULL;
    }
    failed |= run_job(&jobs[0]) != NULL;
    for (int i = 1; i < nt; i++)
        if (started[i]) {
            void *ret;
            pthread_join(th[i], &ret);
            failed |= ret != NULL;
        }
    return failed ? mf_errf(err, "out of memory generating tensor '%s'", t->name) : 0;
}

/* ================================================================ metadata */

/* general.file_type: the llama_ftype of the file's main type (quantize_model.h) */
static uint32_t file_type(const cfg *c)
{
    if (c->arch == ARCH_GPT_OSS && c->expert_type == MF_TYPE_MXFP4) return mf_quant_file_type("MXFP4");
    return mf_quant_file_type(mf_type_get(c->type)->name);
}

static int any_quantized(const plan *p)
{
    for (int64_t i = 0; i < p->n; i++)
        if (p->t[i].type != MF_TYPE_F32 && p->t[i].type != MF_TYPE_F16 && p->t[i].type != MF_TYPE_BF16) return 1;
    return 0;
}

/* Keys of docs/forward.md §1 (what the converter writes for TinyLlama). */
static int meta_llama(mf_gguf_writer *w, const cfg *c)
{
    int rc = 0;
    rc |= mf_gguf_w_u32(w, "llama.context_length", (uint32_t)c->ctx);
    rc |= mf_gguf_w_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    rc |= mf_gguf_w_u32(w, "llama.block_count", (uint32_t)c->layers);
    rc |= mf_gguf_w_u32(w, "llama.feed_forward_length", (uint32_t)c->ff);
    rc |= mf_gguf_w_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    rc |= mf_gguf_w_u32(w, "llama.attention.head_count", (uint32_t)c->heads);
    rc |= mf_gguf_w_u32(w, "llama.attention.head_count_kv", (uint32_t)c->kv_heads);
    if (c->head_dim != c->dim / c->heads) {
        rc |= mf_gguf_w_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim);
        rc |= mf_gguf_w_u32(w, "llama.attention.value_length", (uint32_t)c->head_dim);
    }
    rc |= mf_gguf_w_f32(w, "llama.rope.freq_base", c->rope_base);
    rc |= mf_gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", c->eps);
    rc |= mf_gguf_w_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
    return rc ? -1 : 0;
}

/* Keys of docs/forward.md §1, in the order of the ggml-org file. */
static int meta_gpt_oss(mf_gguf_writer *w, const cfg *c)
{
    int rc = 0;
    rc |= mf_gguf_w_u32(w, "gpt-oss.block_count", (uint32_t)c->layers);
    rc |= mf_gguf_w_u32(w, "gpt-oss.context_length", (uint32_t)c->ctx);
    rc |= mf_gguf_w_u32(w, "gpt-oss.embedding_length", (uint32_t)c->dim);
    rc |= mf_gguf_w_u32(w, "gpt-oss.feed_forward_length", (uint32_t)c->ff);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.head_count", (uint32_t)c->heads);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.head_count_kv", (uint32_t)c->kv_heads);
    rc |= mf_gguf_w_f32(w, "gpt-oss.rope.freq_base", c->rope_base);
    rc |= mf_gguf_w_f32(w, "gpt-oss.attention.layer_norm_rms_epsilon", c->eps);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_count", (uint32_t)c->experts);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_used_count", (uint32_t)c->experts_used);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.key_length", (uint32_t)c->head_dim);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.value_length", (uint32_t)c->head_dim);
    rc |= mf_gguf_w_u32(w, "gpt-oss.attention.sliding_window", (uint32_t)c->window);
    rc |= mf_gguf_w_u32(w, "gpt-oss.expert_feed_forward_length", (uint32_t)c->ff);
    rc |= mf_gguf_w_str(w, "gpt-oss.rope.scaling.type", "yarn");
    rc |= mf_gguf_w_f32(w, "gpt-oss.rope.scaling.factor", c->yarn_factor);
    rc |= mf_gguf_w_u32(w, "gpt-oss.rope.scaling.original_context_length", (uint32_t)c->yarn_orig_ctx);
    return rc ? -1 : 0;
}

/* ================================================================ command line */

static int parse_i64(const char *opt, const char *val, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "mkmodel: bad value '%s' for %s (expected an integer in %lld..%lld)\n", val, opt, (long long)lo,
                (long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_f32(const char *opt, const char *val, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v > 0 && v < 1e30)) {
        fprintf(stderr, "mkmodel: bad value '%s' for %s (expected a positive number)\n", val, opt);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int parse_type(const char *opt, const char *val, uint32_t *out)
{
    for (uint32_t t = 0; t < MF_TYPE_COUNT; t++) {
        const mf_type_info *ti = mf_type_get(t);
        if (ti && strcasecmp(ti->name, val) == 0 && mf_type_supported(t)) {
            *out = t;
            return 0;
        }
    }
    fprintf(stderr, "mkmodel: bad value '%s' for %s (supported:", val, opt);
    for (uint32_t t = 0; t < MF_TYPE_COUNT; t++)
        if (mf_type_supported(t)) fprintf(stderr, " %s", mf_type_get(t)->name);
    fprintf(stderr, ")\n");
    return -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: mkmodel -o OUT.gguf [--arch llama|gpt-oss] [--preset NAME] [--type T]\n"
                    "               [--output-type T] [--embd-type T] [--expert-type T] [--vocab-from FILE]\n"
                    "               [--layers N] [--seed S] [--ctx N] [--dim N] [--heads N] [--kv-heads N]\n"
                    "               [--head-dim N] [--ff N] [--vocab N] [--experts N] [--experts-used N]\n"
                    "               [--window N] [--rope-base F] [--threads N] [--script \"TOK TOK ...\"]\n"
                    "               [--sparse 1]   (header only: tensor data left as holes, for inspect/plan)\n"
                    "presets: llama: tiny (default), tinyllama-1.1b; gpt-oss: tiny (default), gpt-oss-20b\n");
}

/* The shape options, which override the preset's values; -1 = not given. */
enum {
    O_DIM,
    O_LAYERS,
    O_HEADS,
    O_KV_HEADS,
    O_HEAD_DIM,
    O_FF,
    O_VOCAB,
    O_CTX,
    O_EXPERTS,
    O_EXPERTS_USED,
    O_WINDOW,
    O_COUNT
};
static const struct {
    const char *opt;
    int64_t lo, hi;
} SHAPE_OPTS[O_COUNT] = {
    [O_DIM] = {"--dim", 1, INT32_MAX},       [O_LAYERS] = {"--layers", 0, 4096},
    [O_HEADS] = {"--heads", 1, 4096},        [O_KV_HEADS] = {"--kv-heads", 1, 4096},
    [O_HEAD_DIM] = {"--head-dim", 2, 4096},  [O_FF] = {"--ff", 1, INT32_MAX},
    [O_VOCAB] = {"--vocab", 1, INT32_MAX},   [O_CTX] = {"--ctx", 1, INT32_MAX},
    [O_EXPERTS] = {"--experts", 1, 4096},    [O_EXPERTS_USED] = {"--experts-used", 1, 4096},
    [O_WINDOW] = {"--window", 1, INT32_MAX},
};

static int parse_args(int argc, char **argv, cfg *c)
{
    int64_t shape[O_COUNT];
    uint32_t types[4] = {0}; /* --type, --embd-type, --output-type, --expert-type */
    int has_type[4] = {0};
    static const char *const TYPE_OPTS[4] = {"--type", "--embd-type", "--output-type", "--expert-type"};
    float rope_base = 0.0f;
    for (int k = 0; k < O_COUNT; k++) shape[k] = -1;
    memset(c, 0, sizeof *c);
    c->preset = "tiny";
    c->seed = 1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mkmodel: option %s needs a value (or is unknown)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int64_t x = 0;
        int rc = 0, known = 1;
        if (strcmp(a, "-o") == 0) c->out = v;
        else if (strcmp(a, "--arch") == 0) {
            if (strcmp(v, "llama") == 0) c->arch = ARCH_LLAMA;
            else if (strcmp(v, "gpt-oss") == 0) c->arch = ARCH_GPT_OSS;
            else {
                fprintf(stderr, "mkmodel: bad value '%s' for --arch (llama or gpt-oss)\n", v);
                return -1;
            }
        } else if (strcmp(a, "--preset") == 0) {
            c->preset = v;
            /* the named real shapes imply their architecture */
            if (strcmp(v, "tinyllama-1.1b") == 0) c->arch = ARCH_LLAMA;
            if (strcmp(v, "gpt-oss-20b") == 0) c->arch = ARCH_GPT_OSS;
        } else if (strcmp(a, "--vocab-from") == 0) c->vocab_from = v;
        else if (strcmp(a, "--seed") == 0) {
            rc = parse_i64(a, v, 0, INT64_MAX, &x);
            c->seed = (uint64_t)x;
        } else if (strcmp(a, "--threads") == 0) {
            rc = parse_i64(a, v, 1, 64, &x);
            c->threads = (int)x;
        } else if (strcmp(a, "--rope-base") == 0) rc = parse_f32(a, v, &rope_base);
        else if (strcmp(a, "--script") == 0) c->script = v;
        else if (strcmp(a, "--sparse") == 0) c->sparse = strcmp(v, "0") != 0;
        else {
            known = 0;
            for (int k = 0; k < O_COUNT && !known; k++)
                if (strcmp(a, SHAPE_OPTS[k].opt) == 0) {
                    known = 1;
                    rc = parse_i64(a, v, SHAPE_OPTS[k].lo, SHAPE_OPTS[k].hi, &shape[k]);
                }
            for (int k = 0; k < 4 && !known; k++)
                if (strcmp(a, TYPE_OPTS[k]) == 0) {
                    known = 1;
                    has_type[k] = 1;
                    rc = parse_type(a, v, &types[k]);
                }
        }
        if (!known) {
            fprintf(stderr, "mkmodel: unknown option %s\n", a);
            usage();
            return -1;
        }
        if (rc) return -1;
    }
    if (!c->out) {
        usage();
        return -1;
    }
    mf_err err;
    if (preset_apply(c, &err)) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return -1;
    }

    int64_t *dst[O_COUNT] = {[O_DIM] = &c->dim,           [O_LAYERS] = &c->layers,
                             [O_HEADS] = &c->heads,       [O_KV_HEADS] = &c->kv_heads,
                             [O_HEAD_DIM] = &c->head_dim, [O_FF] = &c->ff,
                             [O_VOCAB] = &c->vocab,       [O_CTX] = &c->ctx,
                             [O_EXPERTS] = &c->experts,   [O_EXPERTS_USED] = &c->experts_used,
                             [O_WINDOW] = &c->window};
    for (int k = 0; k < O_COUNT; k++)
        if (shape[k] >= 0) *dst[k] = shape[k];
    if (rope_base > 0) c->rope_base = rope_base;
    if (has_type[0]) c->type = c->embd_type = c->output_type = types[0];
    if (has_type[1]) c->embd_type = types[1];
    if (has_type[2]) c->output_type = types[2];
    if (has_type[3]) c->expert_type = types[3];

    /* shape rules of the architectures (docs/forward.md §1) */
    if (c->arch == ARCH_LLAMA && c->head_dim == 0) {
        if (c->dim % c->heads) {
            fprintf(stderr, "mkmodel: --dim %lld is not a multiple of --heads %lld (or give --head-dim)\n",
                    (long long)c->dim, (long long)c->heads);
            return -1;
        }
        c->head_dim = c->dim / c->heads;
    }
    if (c->heads % c->kv_heads) {
        fprintf(stderr, "mkmodel: --heads %lld must be a multiple of --kv-heads %lld\n", (long long)c->heads,
                (long long)c->kv_heads);
        return -1;
    }
    if (c->head_dim % 2) {
        fprintf(stderr, "mkmodel: the head dimension %lld must be even (RoPE rotates pairs)\n", (long long)c->head_dim);
        return -1;
    }
    if (c->arch == ARCH_GPT_OSS && c->experts_used > c->experts) {
        fprintf(stderr, "mkmodel: --experts-used %lld exceeds --experts %lld\n", (long long)c->experts_used,
                (long long)c->experts);
        return -1;
    }
    return 0;
}

/* --script "T0 T1 T2 ...": token strings (as stored in the vocabulary) that greedy decoding
 * must produce one after the other: after T0 comes T1, and so on (a bigram chain, so a token
 * may appear only once before the last). The blocks' output projections and their biases
 * are zeroed, so every block adds nothing to the residual stream, and the output matrix maps
 * each token's embedding to its successor (script_row). Used to demonstrate the chat
 * pipeline end to end: e.g. a tiny gpt-oss file that answers in harmony's final channel. */
static int script_apply(plan *p, const cfg *c, const vocab *v, const mf_gguf_kv *vf_tokens, mf_err *err)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", c->script);
    int64_t ids[65];
    int n = 0;
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        if (n == 65) return mf_errf(err, "--script: at most 65 tokens");
        int64_t id = -1;
        if (vf_tokens) {
            for (uint64_t i = 0; i < vf_tokens->arr_n && id < 0; i++)
                if (vf_tokens->arr_str[i].len == strlen(tok) && !memcmp(vf_tokens->arr_str[i].ptr, tok, strlen(tok)))
                    id = (int64_t)i;
        } else {
            id = vocab_find(v, tok);
        }
        if (id < 0) return mf_errf(err, "--script: '%s' is not a token of the vocabulary", tok);
        for (int i = 0; i + 1 < n; i++)
            if (ids[i] == id) return mf_errf(err, "--script: '%s' appears twice (a bigram chain cannot branch)", tok);
        ids[n++] = id;
    }
    if (n < 2) return mf_errf(err, "--script needs at least two tokens");
    for (int i = 0; i + 1 < n; i++) {
        p->script_from[i] = ids[i];
        p->script_to[i] = ids[i + 1];
    }
    p->n_script = n - 1;
    for (int64_t i = 0; i < p->n; i++) {
        ptensor *t = &p->t[i];
        if (strstr(t->name, "attn_output.") || strstr(t->name, "ffn_down")) t->dist = D_ZERO;
        if (!strcmp(t->name, "output.weight")) t->dist = D_SCRIPT;
        if (!strcmp(t->name, "token_embd.weight")) p->embd = t;
    }
    return 0;
}

/* mkmodel refuses what minfer would refuse, with minfer's own checks (one source of truth),
 * in two steps: before any tensor is laid out, the metadata alone is written under a
 * temporary name and checked by mf_model_check_metadata (keys, vocabulary); then the
 * whole file is written sparse (complete header, data as holes: no weights generated) and
 * loaded by mf_model_load (shapes, types, offsets). Only a file that loads is written for
 * real. `whole` selects the step. */
static int check_with_minfer(mf_gguf_writer *w, const char *out, int whole, mf_err *err)
{
    char *tmp = malloc(strlen(out) + 32);
    if (!tmp) return mf_errf(err, "out of memory");
    sprintf(tmp, "%s.check%ld", out, (long)getpid());
    mf_gguf_w_set_sparse(w, 1);
    int rc = mf_gguf_w_write(w, tmp, NULL, NULL, err);
    if (rc == 0) {
        mf_err lerr;
        mf_model *m = NULL;
        mf_gguf *g = NULL;
        int bad = whole ? !(m = mf_model_load(tmp, &lerr))
                        : !(g = mf_gguf_open(tmp, &lerr)) || mf_model_check_metadata(g, &lerr);
        if (bad) {
            /* the loader names the file it read: name the one asked for instead */
            size_t k = strlen(tmp);
            const char *why =
                !strncmp(lerr.msg, tmp, k) && !strncmp(lerr.msg + k, ": ", 2) ? lerr.msg + k + 2 : lerr.msg;
            rc = mf_errf(err, "%s: minfer would refuse this file: %s", out, why);
        }
        mf_model_free(m);
        mf_gguf_close(g);
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* Build everything, then stream the file. Returns 0 or -1 with err. */
static int mkmodel(cfg *c, mf_err *err)
{
    int gpt = c->arch == ARCH_GPT_OSS;
    vocab v;
    memset(&v, 0, sizeof v);
    plan p = {.seed = c->seed, .threads = c->threads};
    mf_gguf *vf = NULL;
    const mf_gguf_kv *vf_tokens = NULL;
    mf_gguf_writer *w = mf_gguf_writer_new();
    int rc = -1;
    if (!w) return mf_errf(err, "out of memory");

    /* the vocabulary first: it fixes n_vocab */
    if (c->vocab_from) {
        vf = mf_gguf_open(c->vocab_from, err);
        if (!vf) goto done;
        if (mf_gguf_get_arr(vf, "tokenizer.ggml.tokens", MF_GGUF_STR, &vf_tokens, err)) {
            mf_err_prefix(err, "--vocab-from %s", c->vocab_from);
            goto done;
        }
        c->vocab = (int64_t)vf_tokens->arr_n;
    } else {
        if ((gpt ? vocab_bpe(&v, c->vocab, err) : vocab_spm(&v, c->vocab, err)) != 0) goto done;
        c->vocab = v.n;
    }

    /* metadata in the converters' order: general, architecture, tokenizer, file type */
    char name[96];
    snprintf(name, sizeof name, "minfer synthetic %s %s", gpt ? "gpt-oss" : "llama", c->preset);
    int fail = mf_gguf_w_str(w, "general.architecture", gpt ? "gpt-oss" : "llama");
    fail |= mf_gguf_w_str(w, "general.type", "model");
    fail |= mf_gguf_w_str(w, "general.name", name);
    fail |= gpt ? meta_gpt_oss(w, c) : meta_llama(w, c);
    if (vf) {
        for (uint64_t i = 0; i < mf_gguf_n_kv(vf); i++) {
            const mf_gguf_kv *kv = mf_gguf_kv_at(vf, i);
            if (strncmp(kv->key, "tokenizer.", 10) == 0) fail |= mf_gguf_w_copy_kv(w, kv);
        }
    } else {
        fail |= write_vocab(w, &v, gpt);
    }
    plan_tensors(&p, c);
    if (c->script && script_apply(&p, c, &v, vf_tokens, err)) goto done;
    if (any_quantized(&p)) fail |= mf_gguf_w_u32(w, "general.quantization_version", 2);
    fail |= mf_gguf_w_u32(w, "general.file_type", file_type(c));
    if (fail) {
        mf_errf(err, "out of memory building the metadata");
        goto done;
    }
    if (check_with_minfer(w, c->out, 0, err)) goto done;

    for (int64_t i = 0; i < p.n; i++) {
        const ptensor *t = &p.t[i];
        if (mf_gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL, err) < 0) goto done;
    }
    if (check_with_minfer(w, c->out, 1, err)) goto done;
    mf_gguf_w_set_sparse(w, c->sparse);
    mf_gguf_w_set_cancel(w, drv_interrupt_flag());
    rc = mf_gguf_w_write(w, c->out, fill, &p, err);
done:
    mf_gguf_writer_free(w);
    if (vf) mf_gguf_close(vf);
    vocab_free(&v);
    free(p.t);
    return rc;
}

int main(int argc, char **argv)
{
    cfg c;
    if (parse_args(argc, argv, &c)) return 2;
    /* The writer allocates one buffer per tensor. glibc would serve each large one from a
     * fresh mmap whose pages all fault in again; keeping them on the heap lets the next
     * tensor reuse the pages (a 4.4 GB F32 TinyLlama: 9.9 s -> 3.7 s on the dev machine). */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mf_err err;
    if (mkmodel(&c, &err)) {
        fprintf(stderr, "mkmodel: %s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    char tb[32];
    printf("mkmodel: wrote %s (%s %s, %lld layers, d %lld, vocab %lld, %s) in %.2f s\n", c.out,
           c.arch == ARCH_GPT_OSS ? "gpt-oss" : "llama", c.preset, (long long)c.layers, (long long)c.dim,
           (long long)c.vocab, mf_type_name(c.type, tb), s);
    return 0;
}
