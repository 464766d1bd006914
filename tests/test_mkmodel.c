/* test_mkmodel.c — tools/mkmodel writes what the architectures require (docs/forward.md §1).
 *
 * Each test runs the built mkmodel into a temporary file, reopens it with the GGUF reader
 * and checks: every metadata key of docs/forward.md §1 (type and
 * value), the tokenizer keys and the layout of the synthetic vocabularies, every tensor's
 * name, shape and type (docs/forward.md §1), and that the dequantized
 * weights have the statistics mkmodel promises (standard deviation 1/sqrt(n_in) for the
 * matrices, gains in [0.9, 1.1], ...). Quantized files are compared with the F32 file of
 * the same seed, which holds the very values they quantize. Also: determinism (same
 * options, same bytes, whatever the thread count), --vocab-from, --layers 0, bad options.
 */
#include "harness.h"
#include "gguf.h"
#include "quant.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

/* Run mkmodel with `args` into the temporary file `name`; returns its exit status and the
 * path in *path (malloc'd by the harness, kept until exit). */
static int mkmodel(const char *name, const char *args, const char **path)
{
    const char *mk = mf_tool_path("mkmodel");
    char cmd[4096];
    if (access(mk, X_OK) != 0) mf_skip("mkmodel is not built");
    *path = mf_tmp_path(name);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' %s > /dev/null 2>&1", mk, *path, args);
    return system(cmd);
}

static mf_gguf *make_and_open(const char *name, const char *args, const char **path)
{
    if (mkmodel(name, args, path) != 0) fail_msg("mkmodel %s failed", args);
    mf_err err;
    mf_gguf *g = mf_gguf_open(*path, &err);
    if (!g) fail_msg("%s", err.msg);
    return g;
}

static void expect_u32(const mf_gguf *g, const char *key, uint32_t want)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) fail_msg("key %s is missing", key);
    if (kv->type != MF_GGUF_U32) fail_msg("key %s has type %s, expected UINT32", key, mf_gguf_vtype_name(kv->type));
    if (kv->v.u != want) fail_msg("key %s = %llu, expected %u", key, (unsigned long long)kv->v.u, want);
}

static void expect_f32(const mf_gguf *g, const char *key, float want)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) fail_msg("key %s is missing", key);
    if (kv->type != MF_GGUF_F32) fail_msg("key %s has type %s, expected FLOAT32", key, mf_gguf_vtype_name(kv->type));
    if ((float)kv->v.f != want) fail_msg("key %s = %g, expected %g", key, kv->v.f, (double)want);
}

static void expect_str(const mf_gguf *g, const char *key, const char *want)
{
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) fail_msg("key %s is missing", key);
    if (kv->type != MF_GGUF_STR) fail_msg("key %s has type %s, expected STRING", key, mf_gguf_vtype_name(kv->type));
    if (strcmp(kv->str, want) != 0) fail_msg("key %s = '%s', expected '%s'", key, kv->str, want);
}

static const mf_gguf_tensor *expect_tensor(const mf_gguf *g, const char *name, uint32_t type, int64_t ne0, int64_t ne1,
                                           int64_t ne2)
{
    const mf_gguf_tensor *t = mf_gguf_find_tensor(g, name);
    char a[32], b[32];
    if (!t) fail_msg("tensor %s is missing", name);
    uint32_t dims = ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1;
    if (t->type != type)
        fail_msg("tensor %s has type %s, expected %s", name, mf_type_name(t->type, a), mf_type_name(type, b));
    if (t->n_dims != dims || t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2)
        fail_msg("tensor %s has ne [%lld, %lld, %lld] (%u dims), expected [%lld, %lld, %lld]", name,
                 (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], t->n_dims, (long long)ne0,
                 (long long)ne1, (long long)ne2);
    return t;
}

/* the tensor's values as floats (malloc'd) */
static float *values(const mf_gguf_tensor *t)
{
    float *x = malloc((size_t)t->n_elements * sizeof *x);
    assert_non_null(x);
    size_t row = mf_type_row_bytes(t->type, t->ne[0]);
    for (uint64_t r = 0; r < t->n_elements / (uint64_t)t->ne[0]; r++)
        mf_dequantize_row(t->type, (const uint8_t *)t->data + r * row, x + r * (uint64_t)t->ne[0], t->ne[0]);
    return x;
}

typedef struct stats {
    double mean, sd, lo, hi;
} stats;

static stats stats_of(const mf_gguf_tensor *t)
{
    float *x = values(t);
    double s = 0, s2 = 0;
    stats st = {0, 0, INFINITY, -INFINITY};
    for (uint64_t i = 0; i < t->n_elements; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        if (x[i] < st.lo) st.lo = x[i];
        if (x[i] > st.hi) st.hi = x[i];
    }
    free(x);
    st.mean = s / (double)t->n_elements;
    st.sd = sqrt(s2 / (double)t->n_elements - st.mean * st.mean);
    return st;
}

/* mkmodel's "normal" is the Irwin-Hall sum of four uniforms: mean 0, the requested standard
 * deviation, support bounded at 2·sqrt(3) = 3.4641 standard deviations. Tolerances: 4
 * standard errors of the sample (1/sqrt(2n) relative for a standard deviation, a bound for
 * this light-tailed law; sd/sqrt(n) for a mean) plus `extra`, the relative change that
 * quantization may add. */
static void expect_normal(const mf_gguf *g, const char *name, double sd, double extra)
{
    const mf_gguf_tensor *t = mf_gguf_find_tensor(g, name);
    assert_non_null(t);
    stats st = stats_of(t);
    double n = (double)t->n_elements, rel = 4.0 / sqrt(2.0 * n) + extra;
    if (fabs(st.sd / sd - 1.0) > rel || fabs(st.mean) > 4.0 * sd / sqrt(n) + extra * sd)
        fail_msg("%s: mean %g, standard deviation %g, expected 0 and %g (±%.1f%%)", name, st.mean, st.sd, sd,
                 100 * rel);
    if (t->type == MF_TYPE_F32 && (st.hi > 3.4642 * sd || st.lo < -3.4642 * sd))
        fail_msg("%s: values in [%g, %g] outside ±3.4641·%g", name, st.lo, st.hi, sd);
}

static void expect_uniform(const mf_gguf *g, const char *name, double lo, double hi)
{
    const mf_gguf_tensor *t = mf_gguf_find_tensor(g, name);
    assert_non_null(t);
    stats st = stats_of(t);
    /* uniform on [lo, hi): mean (lo+hi)/2 with standard error (hi-lo)/sqrt(12 n); 5 errors */
    double se = (hi - lo) / sqrt(12.0 * (double)t->n_elements);
    if (st.lo < lo || st.hi >= hi || fabs(st.mean - (lo + hi) / 2) > 5 * se)
        fail_msg("%s: values in [%g, %g] with mean %g, expected uniform on [%g, %g)", name, st.lo, st.hi, st.mean, lo,
                 hi);
}

static const char *tok_str(const mf_gguf_kv *tokens, uint64_t id, char *buf, size_t cap)
{
    size_t n = tokens->arr_str[id].len < cap - 1 ? (size_t)tokens->arr_str[id].len : cap - 1;
    memcpy(buf, tokens->arr_str[id].ptr, n);
    buf[n] = 0;
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    const mf_str *x = a, *y = b;
    size_t n = x->len < y->len ? (size_t)x->len : (size_t)y->len;
    int c = memcmp(x->ptr, y->ptr, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* token strings must be unique (docs/tokenizer.md §1) */
static void expect_unique_tokens(const mf_gguf_kv *tokens)
{
    mf_str *s = malloc((size_t)tokens->arr_n * sizeof *s);
    assert_non_null(s);
    memcpy(s, tokens->arr_str, (size_t)tokens->arr_n * sizeof *s);
    qsort(s, (size_t)tokens->arr_n, sizeof *s, cmp_str);
    for (uint64_t i = 1; i < tokens->arr_n; i++)
        if (cmp_str(&s[i - 1], &s[i]) == 0) fail_msg("token '%.*s' appears twice", (int)s[i].len, s[i].ptr);
    free(s);
}

static const mf_gguf_kv *expect_arr(const mf_gguf *g, const char *key, uint32_t elem, uint64_t n)
{
    const mf_gguf_kv *kv;
    mf_err err;
    if (mf_gguf_get_arr(g, key, elem, &kv, &err)) fail_msg("%s", err.msg);
    if (kv->arr_n != n)
        fail_msg("%s has %llu elements, expected %llu", key, (unsigned long long)kv->arr_n, (unsigned long long)n);
    return kv;
}

/* ---------------------------------------------------------------- llama */

enum { TINY_D = 256, TINY_L = 2, TINY_H = 8, TINY_HKV = 2, TINY_HD = 32, TINY_F = 512, TINY_V = 512 };

/* Keys, tensors and vocabulary of the llama tiny preset; matrices of type `type`. */
static void check_llama_tiny(const mf_gguf *g, uint32_t type)
{
    expect_str(g, "general.architecture", "llama");
    expect_u32(g, "llama.context_length", 512);
    expect_u32(g, "llama.embedding_length", TINY_D);
    expect_u32(g, "llama.block_count", TINY_L);
    expect_u32(g, "llama.feed_forward_length", TINY_F);
    expect_u32(g, "llama.attention.head_count", TINY_H);
    expect_u32(g, "llama.attention.head_count_kv", TINY_HKV);
    expect_u32(g, "llama.rope.dimension_count", TINY_HD);
    expect_f32(g, "llama.rope.freq_base", 10000.0f);
    expect_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    expect_u32(g, "llama.vocab_size", TINY_V);
    assert_null(mf_gguf_find_kv(g, "llama.attention.key_length")); /* hd = d / H */

    /* 9·L + 3 tensors (docs/forward.md §1) */
    assert_int_equal(mf_gguf_n_tensors(g), 9 * TINY_L + 3);
    expect_tensor(g, "token_embd.weight", type, TINY_D, TINY_V, 1);
    expect_tensor(g, "output_norm.weight", MF_TYPE_F32, TINY_D, 1, 1);
    expect_tensor(g, "output.weight", type, TINY_D, TINY_V, 1);
    char nm[64];
    for (int l = 0; l < TINY_L; l++) {
#define T(suffix, ty, a, b) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), expect_tensor(g, nm, ty, a, b, 1))
        T("attn_norm.weight", MF_TYPE_F32, TINY_D, 1);
        T("attn_q.weight", type, TINY_D, TINY_H * TINY_HD);
        T("attn_k.weight", type, TINY_D, TINY_HKV * TINY_HD);
        T("attn_v.weight", type, TINY_D, TINY_HKV * TINY_HD);
        T("attn_output.weight", type, TINY_H * TINY_HD, TINY_D);
        T("ffn_norm.weight", MF_TYPE_F32, TINY_D, 1);
        T("ffn_gate.weight", type, TINY_D, TINY_F);
        T("ffn_up.weight", type, TINY_D, TINY_F);
        T("ffn_down.weight", type, TINY_F, TINY_D);
#undef T
    }

    /* the synthetic SPM vocabulary (docs/tokenizer.md §1): <unk> <s> </s>, bytes, pieces */
    expect_str(g, "tokenizer.ggml.model", "llama");
    const mf_gguf_kv *tokens = expect_arr(g, "tokenizer.ggml.tokens", MF_GGUF_STR, TINY_V);
    const mf_gguf_kv *types = expect_arr(g, "tokenizer.ggml.token_type", MF_GGUF_I32, TINY_V);
    const mf_gguf_kv *scores = expect_arr(g, "tokenizer.ggml.scores", MF_GGUF_F32, TINY_V);
    expect_u32(g, "tokenizer.ggml.unknown_token_id", 0);
    expect_u32(g, "tokenizer.ggml.bos_token_id", 1);
    expect_u32(g, "tokenizer.ggml.eos_token_id", 2);
    char buf[64];
    assert_string_equal(tok_str(tokens, 0, buf, sizeof buf), "<unk>");
    assert_string_equal(tok_str(tokens, 1, buf, sizeof buf), "<s>");
    assert_string_equal(tok_str(tokens, 2, buf, sizeof buf), "</s>");
    assert_int_equal(mf_gguf_arr_i32(types, 0), 2);
    assert_int_equal(mf_gguf_arr_i32(types, 1), 3);
    for (int b = 0; b < 256; b++) {
        char want[8];
        snprintf(want, sizeof want, "<0x%02X>", b);
        assert_string_equal(tok_str(tokens, 3 + (uint64_t)b, buf, sizeof buf), want);
        assert_int_equal(mf_gguf_arr_i32(types, 3 + (uint64_t)b), 6);
    }
    assert_string_equal(tok_str(tokens, 259, buf, sizeof buf), "\xe2\x96\x81"); /* "▁" */
    /* NORMAL pieces have strictly decreasing scores: a higher score merges first */
    for (uint64_t i = 260; i < TINY_V && mf_gguf_arr_i32(types, i) == 1; i++)
        assert_true(mf_gguf_arr_f32(scores, i) < mf_gguf_arr_f32(scores, i - 1));
    expect_unique_tokens(tokens);
}

static void llama_tiny_f32(void **state)
{
    (void)state;
    const char *path;
    mf_gguf *g = make_and_open("tiny-f32.gguf", "--seed 5", &path);
    check_llama_tiny(g, MF_TYPE_F32);
    expect_u32(g, "general.file_type", 0);
    assert_null(mf_gguf_find_kv(g, "general.quantization_version"));
    /* the weight statistics of mkmodel.c's header */
    expect_normal(g, "token_embd.weight", 1.0, 0);
    expect_normal(g, "blk.0.attn_q.weight", 1.0 / 16, 0); /* 1/sqrt(256) */
    expect_normal(g, "blk.1.attn_k.weight", 1.0 / 16, 0);
    expect_normal(g, "blk.0.ffn_down.weight", 1.0 / sqrt(512.0), 0);
    expect_normal(g, "output.weight", 1.0 / 16, 0);
    expect_uniform(g, "blk.0.attn_norm.weight", 0.9, 1.1);
    expect_uniform(g, "output_norm.weight", 0.9, 1.1);
    /* different tensors are different streams */
    const mf_gguf_tensor *a = mf_gguf_find_tensor(g, "blk.0.ffn_gate.weight");
    const mf_gguf_tensor *b = mf_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    assert_true(memcmp(a->data, b->data, (size_t)a->nbytes) != 0);
    mf_gguf_close(g);
    unlink(path);
}

/* Every supported type: the file is the F32 file of the same seed, quantized. The bound on
 * the relative RMS error of each matrix is about 1.5 times the round-to-nearest noise of
 * the format on these bell-shaped values (half a step of a 32-value block scaled to its
 * largest value, about 2.5 standard deviations; a step is 2.5σ/127 for 8 bits, 2.5σ/7.5
 * for 4 bits ...); a matrix quantized from the wrong values or decoded with the wrong
 * layout is off by 100% or more. */
static void llama_tiny_all_types(void **state)
{
    (void)state;
    static const struct {
        uint32_t type;
        const char *name;
        double rel;
    } TYPES[] = {
        {MF_TYPE_F16, "F16", 1e-3},   {MF_TYPE_BF16, "BF16", 5e-3},   {MF_TYPE_Q8_0, "Q8_0", 0.01},
        {MF_TYPE_Q6_K, "Q6_K", 0.03}, {MF_TYPE_Q5_0, "Q5_0", 0.06},   {MF_TYPE_Q5_1, "Q5_1", 0.06},
        {MF_TYPE_Q5_K, "Q5_K", 0.06}, {MF_TYPE_Q4_0, "Q4_0", 0.12},   {MF_TYPE_Q4_1, "Q4_1", 0.12},
        {MF_TYPE_Q4_K, "Q4_K", 0.12}, {MF_TYPE_MXFP4, "MXFP4", 0.17}, {MF_TYPE_Q3_K, "Q3_K", 0.21},
        {MF_TYPE_Q2_K, "Q2_K", 0.4},
    };
    const char *pf;
    mf_gguf *f = make_and_open("types-f32.gguf", "--seed 9", &pf);
    for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++) {
        assert_true(mf_type_supported(TYPES[k].type));
        char args[128], file[64];
        snprintf(args, sizeof args, "--seed 9 --type %s", TYPES[k].name);
        snprintf(file, sizeof file, "types-%s.gguf", TYPES[k].name);
        const char *pq;
        mf_gguf *g = make_and_open(file, args, &pq);
        check_llama_tiny(g, TYPES[k].type);
        for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
            const mf_gguf_tensor *tq = mf_gguf_tensor_at(g, i);
            const mf_gguf_tensor *t0 = mf_gguf_find_tensor(f, tq->name);
            assert_non_null(t0);
            float *x = values(tq), *x0 = values(t0);
            double e2 = 0, s2 = 0;
            for (uint64_t j = 0; j < tq->n_elements; j++) {
                e2 += ((double)x[j] - x0[j]) * ((double)x[j] - x0[j]);
                s2 += (double)x0[j] * x0[j];
            }
            double rel = sqrt(e2 / s2);
            if (tq->type == MF_TYPE_F32 ? rel != 0.0 : rel > TYPES[k].rel)
                fail_msg("%s %s: relative RMS error %.4f against the F32 file (bound %.3g)", TYPES[k].name, tq->name,
                         rel, tq->type == MF_TYPE_F32 ? 0.0 : TYPES[k].rel);
            free(x);
            free(x0);
        }
        mf_gguf_close(g);
        unlink(pq);
    }
    mf_gguf_close(f);
    unlink(pf);
}

/* --type, --embd-type, --output-type pick the matrices' types independently */
static void llama_mixed_types(void **state)
{
    (void)state;
    const char *path;
    mf_gguf *g = make_and_open("mixed.gguf", "--type Q4_0 --output-type Q6_K --embd-type Q8_0", &path);
    expect_tensor(g, "token_embd.weight", MF_TYPE_Q8_0, TINY_D, TINY_V, 1);
    expect_tensor(g, "output.weight", MF_TYPE_Q6_K, TINY_D, TINY_V, 1);
    expect_tensor(g, "blk.1.ffn_up.weight", MF_TYPE_Q4_0, TINY_D, TINY_F, 1);
    expect_tensor(g, "blk.1.ffn_norm.weight", MF_TYPE_F32, TINY_D, 1, 1);
    expect_u32(g, "general.file_type", 2); /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    expect_u32(g, "general.quantization_version", 2);
    mf_gguf_close(g);
    unlink(path);
}

/* the TinyLlama shape (docs/reference.md §2), cut to one layer and a small vocabulary so the
 * test stays small: keys, and the shapes that involve GQA 32/4 and FFN 5632 */
static void llama_tinyllama_shape(void **state)
{
    (void)state;
    const char *path;
    mf_gguf *g = make_and_open("tinyllama.gguf", "--preset tinyllama-1.1b --layers 1 --vocab 300 --type Q8_0", &path);
    expect_u32(g, "llama.context_length", 2048);
    expect_u32(g, "llama.embedding_length", 2048);
    expect_u32(g, "llama.block_count", 1);
    expect_u32(g, "llama.feed_forward_length", 5632);
    expect_u32(g, "llama.attention.head_count", 32);
    expect_u32(g, "llama.attention.head_count_kv", 4);
    expect_u32(g, "llama.rope.dimension_count", 64);
    expect_f32(g, "llama.rope.freq_base", 10000.0f);
    expect_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    expect_u32(g, "llama.vocab_size", 300);
    expect_tensor(g, "blk.0.attn_k.weight", MF_TYPE_Q8_0, 2048, 256, 1);
    expect_tensor(g, "blk.0.ffn_down.weight", MF_TYPE_Q8_0, 5632, 2048, 1);
    expect_tensor(g, "output.weight", MF_TYPE_Q8_0, 2048, 300, 1);
    expect_normal(g, "blk.0.ffn_down.weight", 1.0 / sqrt(5632.0), 0);
    mf_gguf_close(g);
    unlink(path);
}

/* --vocab-from copies every tokenizer.* key verbatim and takes the vocabulary size */
static void llama_vocab_from(void **state)
{
    (void)state;
    const char *src = mf_model_path("vocab-llama-spm.gguf");
    MF_REQUIRE_FILE(src);
    char args[1200];
    snprintf(args, sizeof args, "--vocab-from '%s' --dim 64 --heads 2 --kv-heads 2 --ff 64 --layers 1", src);
    const char *path;
    mf_gguf *g = make_and_open("vocab-from.gguf", args, &path);
    mf_err err;
    mf_gguf *v = mf_gguf_open(src, &err);
    if (!v) fail_msg("%s", err.msg);
    int copied = 0;
    for (uint64_t i = 0; i < mf_gguf_n_kv(v); i++) {
        const mf_gguf_kv *a = mf_gguf_kv_at(v, i);
        if (strncmp(a->key, "tokenizer.", 10) != 0) continue;
        const mf_gguf_kv *b = mf_gguf_find_kv(g, a->key);
        if (!b) fail_msg("%s was not copied", a->key);
        assert_int_equal(a->type, b->type);
        copied++;
        if (a->type == MF_GGUF_STR) {
            assert_int_equal(a->str_len, b->str_len);
            assert_memory_equal(a->str, b->str, a->str_len);
        } else if (a->type == MF_GGUF_ARR) {
            assert_int_equal(a->arr_type, b->arr_type);
            assert_int_equal(a->arr_n, b->arr_n);
            for (uint64_t j = 0; a->arr_type == MF_GGUF_STR && j < a->arr_n; j++) {
                assert_int_equal(a->arr_str[j].len, b->arr_str[j].len);
                assert_memory_equal(a->arr_str[j].ptr, b->arr_str[j].ptr, a->arr_str[j].len);
            }
            if (a->arr_type != MF_GGUF_STR)
                assert_memory_equal(a->arr_data, b->arr_data,
                                    (size_t)(a->arr_n * (a->arr_type == MF_GGUF_U8 || a->arr_type == MF_GGUF_I8 ||
                                                                 a->arr_type == MF_GGUF_BOOL
                                                             ? 1
                                                             : 4)));
        } else {
            assert_true(a->v.u == b->v.u);
        }
    }
    assert_true(copied >= 9); /* model, pre, tokens, scores, types, bos, eos, unk, add_* */
    expect_u32(g, "llama.vocab_size", 32000);
    expect_tensor(g, "token_embd.weight", MF_TYPE_F32, 64, 32000, 1);
    expect_tensor(g, "output.weight", MF_TYPE_F32, 64, 32000, 1);
    mf_gguf_close(v);
    mf_gguf_close(g);
    unlink(path);
}

/* ---------------------------------------------------------------- gpt-oss */

/* The keys of docs/forward.md §1 with the given values. */
static void check_gpt_oss_keys(const mf_gguf *g, uint32_t L, uint32_t ctx, uint32_t d, uint32_t H, uint32_t Hkv,
                               uint32_t hd, uint32_t E, uint32_t k, uint32_t F, uint32_t W)
{
    expect_str(g, "general.architecture", "gpt-oss");
    expect_u32(g, "gpt-oss.block_count", L);
    expect_u32(g, "gpt-oss.context_length", ctx);
    expect_u32(g, "gpt-oss.embedding_length", d);
    expect_u32(g, "gpt-oss.feed_forward_length", F);
    expect_u32(g, "gpt-oss.attention.head_count", H);
    expect_u32(g, "gpt-oss.attention.head_count_kv", Hkv);
    expect_f32(g, "gpt-oss.rope.freq_base", 150000.0f);
    expect_f32(g, "gpt-oss.attention.layer_norm_rms_epsilon", 1e-5f);
    expect_u32(g, "gpt-oss.expert_count", E);
    expect_u32(g, "gpt-oss.expert_used_count", k);
    expect_u32(g, "gpt-oss.attention.key_length", hd);
    expect_u32(g, "gpt-oss.attention.value_length", hd);
    expect_u32(g, "gpt-oss.attention.sliding_window", W);
    expect_u32(g, "gpt-oss.expert_feed_forward_length", F);
    expect_str(g, "gpt-oss.rope.scaling.type", "yarn");
    expect_f32(g, "gpt-oss.rope.scaling.factor", 32.0f);
    expect_u32(g, "gpt-oss.rope.scaling.original_context_length", 4096);
    expect_str(g, "tokenizer.ggml.model", "gpt2");
    expect_str(g, "tokenizer.ggml.pre", "gpt-4o");
}

/* 19·L + 3 tensors of docs/forward.md §1 with the types of the ggml-org release */
static void check_gpt_oss_tensors(const mf_gguf *g, int L, int64_t d, int64_t H, int64_t Hkv, int64_t hd, int64_t E,
                                  int64_t F, int64_t V, uint32_t mt, uint32_t et)
{
    const uint32_t f = MF_TYPE_F32;
    assert_int_equal(mf_gguf_n_tensors(g), 19 * L + 3);
    expect_tensor(g, "token_embd.weight", mt, d, V, 1);
    expect_tensor(g, "output_norm.weight", f, d, 1, 1);
    expect_tensor(g, "output.weight", mt, d, V, 1);
    char nm[64];
    for (int l = 0; l < L; l++) {
#define T(suffix, ty, a, b, c) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), expect_tensor(g, nm, ty, a, b, c))
        T("attn_norm.weight", f, d, 1, 1);
        T("attn_q.weight", mt, d, H * hd, 1);
        T("attn_q.bias", f, H * hd, 1, 1);
        T("attn_k.weight", mt, d, Hkv * hd, 1);
        T("attn_k.bias", f, Hkv * hd, 1, 1);
        T("attn_v.weight", mt, d, Hkv * hd, 1);
        T("attn_v.bias", f, Hkv * hd, 1, 1);
        T("attn_output.weight", mt, H * hd, d, 1);
        T("attn_output.bias", f, d, 1, 1);
        T("attn_sinks.weight", f, H, 1, 1);
        T("post_attention_norm.weight", f, d, 1, 1);
        T("ffn_gate_inp.weight", f, d, E, 1);
        T("ffn_gate_inp.bias", f, E, 1, 1);
        T("ffn_gate_exps.weight", et, d, F, E);
        T("ffn_gate_exps.bias", f, F, E, 1);
        T("ffn_up_exps.weight", et, d, F, E);
        T("ffn_up_exps.bias", f, F, E, 1);
        T("ffn_down_exps.weight", et, F, d, E);
        T("ffn_down_exps.bias", f, d, E, 1);
#undef T
    }
}

/* The synthetic byte-level vocabulary: the 256 byte tokens in GPT-2 order (docs/tokenizer.md §4
 * docs/tokenizer.md §4.1: '!' = 0, space = 220), every merge "a b" has its token "ab", the 15 harmony tokens
 * start at `first_special` and bos/eos/pad point at the right ones. */
static void check_bpe_vocab(const mf_gguf *g, uint64_t V, uint64_t first_special)
{
    const mf_gguf_kv *tokens = expect_arr(g, "tokenizer.ggml.tokens", MF_GGUF_STR, V);
    const mf_gguf_kv *types = expect_arr(g, "tokenizer.ggml.token_type", MF_GGUF_I32, V);
    const mf_gguf_kv *merges;
    mf_err err;
    if (mf_gguf_get_arr(g, "tokenizer.ggml.merges", MF_GGUF_STR, &merges, &err)) fail_msg("%s", err.msg);
    char buf[128];
    assert_string_equal(tok_str(tokens, 0, buf, sizeof buf), "!");
    assert_string_equal(tok_str(tokens, 13, buf, sizeof buf), ".");
    assert_string_equal(tok_str(tokens, 25, buf, sizeof buf), ":");
    assert_string_equal(tok_str(tokens, 220, buf, sizeof buf), "\xc4\xa0"); /* Ġ = byte 0x20 */
    assert_string_equal(tok_str(tokens, 188, buf, sizeof buf), "\xc4\x80"); /* byte 0x00 = U+0100 */
    assert_string_equal(tok_str(tokens, 255, buf, sizeof buf), "\xc5\x83"); /* byte 0xAD = U+0143 */
    assert_true(merges->arr_n > 100);
    for (uint64_t i = 0; i < merges->arr_n; i++) {
        char m[128], t[128];
        tok_str(merges, i, m, sizeof m);
        char *sp = strchr(m, ' ');
        assert_non_null(sp);
        snprintf(t, sizeof t, "%.*s%s", (int)(sp - m), m, sp + 1);
        int found = 0;
        for (uint64_t j = 0; j < V && !found; j++)
            found = tokens->arr_str[j].len == strlen(t) && !memcmp(tokens->arr_str[j].ptr, t, strlen(t));
        if (!found) fail_msg("merge '%s' has no token '%s'", m, t);
    }
    static const char *const H[] = {
        "<|startoftext|>", "<|endoftext|>",       "<|reserved_200000|>", "<|reserved_200001|>", "<|return|>",
        "<|constrain|>",   "<|reserved_200004|>", "<|channel|>",         "<|start|>",           "<|end|>",
        "<|message|>",     "<|reserved_200009|>", "<|reserved_200010|>", "<|reserved_200011|>", "<|call|>"};
    for (uint64_t i = 0; i < 15; i++) {
        assert_string_equal(tok_str(tokens, first_special + i, buf, sizeof buf), H[i]);
        assert_int_equal(mf_gguf_arr_i32(types, first_special + i), 3);
    }
    expect_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)first_special);
    expect_u32(g, "tokenizer.ggml.padding_token_id", (uint32_t)first_special + 1);
    expect_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)first_special + 4);
    expect_unique_tokens(tokens);
}

static void gpt_oss_tiny(void **state)
{
    (void)state;
    const char *path, *p32;
    mf_gguf *g = make_and_open("oss-tiny.gguf", "--arch gpt-oss --seed 4", &path);
    const mf_gguf_kv *tokens = mf_gguf_find_kv(g, "tokenizer.ggml.tokens");
    assert_non_null(tokens);
    int64_t V = (int64_t)tokens->arr_n;
    check_gpt_oss_keys(g, 4, 256, 128, 4, 2, 16, 4, 2, 96, 8);
    check_gpt_oss_tensors(g, 4, 128, 4, 2, 16, 4, 96, V, MF_TYPE_Q8_0, MF_TYPE_MXFP4);
    check_bpe_vocab(g, (uint64_t)V, (uint64_t)V - 15);
    expect_u32(g, "general.file_type", 38); /* LLAMA_FTYPE_MOSTLY_MXFP4_MOE */
    expect_u32(g, "general.quantization_version", 2);
    /* statistics, on the all-F32 file of the same seed (exact values) and, looser, on the
     * quantized one (Q8_0 adds ~0.5% noise, MXFP4 ~11%, which raises a standard deviation
     * by under 1%) */
    mf_gguf *f = make_and_open("oss-tiny-f32.gguf", "--arch gpt-oss --seed 4 --type F32 --expert-type F32", &p32);
    expect_normal(f, "blk.0.attn_q.weight", 1.0 / sqrt(128.0), 0);
    expect_normal(f, "blk.2.attn_output.weight", 1.0 / 8, 0); /* n_in = H·hd = 64 */
    expect_normal(f, "blk.1.ffn_gate_inp.weight", 2.0 / sqrt(128.0), 0);
    expect_normal(f, "blk.3.ffn_gate_exps.weight", 3.0 / sqrt(128.0), 0);
    expect_normal(f, "blk.3.ffn_down_exps.weight", 0.3 / sqrt(96.0), 0);
    expect_normal(f, "blk.0.attn_q.bias", 0.1, 0);
    expect_normal(f, "blk.0.ffn_up_exps.bias", 0.1, 0);
    expect_uniform(f, "blk.0.attn_sinks.weight", 0.0, 2.0);
    expect_uniform(f, "blk.1.post_attention_norm.weight", 0.9, 1.1);
    expect_normal(g, "blk.3.ffn_gate_exps.weight", 3.0 / sqrt(128.0), 0.02);
    expect_normal(g, "blk.0.attn_v.weight", 1.0 / sqrt(128.0), 0.01);
    check_gpt_oss_tensors(f, 4, 128, 4, 2, 16, 4, 96, V, MF_TYPE_F32, MF_TYPE_F32);
    mf_gguf_close(f);
    unlink(p32);
    mf_gguf_close(g);
    unlink(path);
}

/* The gpt-oss-20b preset: the real hyperparameters and tensor shapes with one layer and 4
 * of the 32 experts of width 64 (the real experts are 3 × 2880 × 2880 values per expert);
 * the vocabulary of 2048 puts the harmony tokens at 2048 − 1090 as the real 201088 puts
 * them at 199998. */
static void gpt_oss_20b_shape(void **state)
{
    (void)state;
    const char *path;
    mf_gguf *g =
        make_and_open("oss-20b.gguf", "--preset gpt-oss-20b --layers 1 --experts 4 --ff 64 --vocab 2048", &path);
    check_gpt_oss_keys(g, 1, 131072, 2880, 64, 8, 64, 4, 4, 64, 128);
    check_gpt_oss_tensors(g, 1, 2880, 64, 8, 64, 4, 64, 2048, MF_TYPE_Q8_0, MF_TYPE_MXFP4);
    check_bpe_vocab(g, 2048, 2048 - 1090);
    const mf_gguf_kv *tokens = mf_gguf_find_kv(g, "tokenizer.ggml.tokens");
    char buf[64];
    assert_string_equal(tok_str(tokens, 2048 - 1090 + 15, buf, sizeof buf), "<|reserved_200013|>");
    assert_string_equal(tok_str(tokens, 2047, buf, sizeof buf), "<|reserved_201087|>");
    mf_gguf_close(g);
    unlink(path);
}

/* The real 201088-token layout (docs/tokenizer.md §1), on a model of width 32 without
 * layers so that the file stays small. */
static void gpt_oss_real_vocab(void **state)
{
    (void)state;
    const char *path;
    mf_gguf *g = make_and_open("oss-vocab.gguf", "--preset gpt-oss-20b --layers 0 --dim 32", &path);
    assert_int_equal(mf_gguf_n_tensors(g), 3);
    expect_u32(g, "gpt-oss.block_count", 0);
    check_gpt_oss_tensors(g, 0, 32, 64, 8, 64, 32, 2880, 201088, MF_TYPE_Q8_0, MF_TYPE_MXFP4);
    const mf_gguf_kv *tokens = expect_arr(g, "tokenizer.ggml.tokens", MF_GGUF_STR, 201088);
    char buf[64];
    assert_string_equal(tok_str(tokens, 199998, buf, sizeof buf), "<|startoftext|>");
    assert_string_equal(tok_str(tokens, 200002, buf, sizeof buf), "<|return|>");
    assert_string_equal(tok_str(tokens, 200006, buf, sizeof buf), "<|start|>");
    assert_string_equal(tok_str(tokens, 200012, buf, sizeof buf), "<|call|>");
    assert_string_equal(tok_str(tokens, 201087, buf, sizeof buf), "<|reserved_201087|>");
    expect_u32(g, "tokenizer.ggml.bos_token_id", 199998);
    expect_u32(g, "tokenizer.ggml.eos_token_id", 200002);
    expect_u32(g, "tokenizer.ggml.padding_token_id", 199999);
    mf_gguf_close(g);
    unlink(path);
}

/* ---------------------------------------------------------------- options */

static uint8_t *file_bytes(const char *path, size_t *n)
{
    uint8_t *b = mf_read_file(path, n);
    if (!b) fail_msg("cannot read %s", path);
    return b;
}

/* Same options, same bytes, whatever the thread count; another seed, other weights. */
static void determinism(void **state)
{
    (void)state;
    const char *a, *b, *c;
    assert_int_equal(mkmodel("det-a.gguf", "--arch gpt-oss --seed 11 --threads 1", &a), 0);
    assert_int_equal(mkmodel("det-b.gguf", "--arch gpt-oss --seed 11 --threads 3", &b), 0);
    assert_int_equal(mkmodel("det-c.gguf", "--arch gpt-oss --seed 12", &c), 0);
    size_t na, nb, nc;
    uint8_t *xa = file_bytes(a, &na), *xb = file_bytes(b, &nb), *xc = file_bytes(c, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(xa, xb, na);
    assert_int_equal(na, nc);
    assert_true(memcmp(xa, xc, na) != 0);
    free(xa);
    free(xb);
    free(xc);
    unlink(a);
    unlink(b);
    unlink(c);
}

static void layers_zero(void **state)
{
    (void)state;
    const char *path;
    mf_gguf *g = make_and_open("layers0.gguf", "--layers 0", &path);
    expect_u32(g, "llama.block_count", 0);
    assert_int_equal(mf_gguf_n_tensors(g), 3);
    expect_tensor(g, "token_embd.weight", MF_TYPE_F32, TINY_D, TINY_V, 1);
    mf_gguf_close(g);
    unlink(path);
}

/* bad options fail with a non-zero status and leave no file behind */
static void bad_options(void **state)
{
    (void)state;
    static const char *const BAD[] = {
        "--type Q8_1",                                  /* not a supported model type */
        "--type Q4_K --dim 320 --heads 5 --kv-heads 5", /* rows of 320 are not K-quant blocks */
        "--heads 8 --kv-heads 3",                       /* GQA needs H % Hkv == 0 */
        "--arch gpt-oss --experts 2 --experts-used 3",
        "--preset huge",
        "--vocab 100", /* fewer than the 259 fixed tokens */
        "--dim",       /* missing value */
        "--frobnicate 1",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const char *path;
        int rc = mkmodel("bad.gguf", BAD[i], &path);
        if (rc == 0) fail_msg("mkmodel %s succeeded", BAD[i]);
        unlink(path);
    }
}

/* mkmodel refuses what minfer would refuse, with minfer's own checks (issue 11: it wrote
 * files with wrapped offsets, windows and head sizes minfer refuses, duplicate tokens):
 * exit 1, the loader's reason, and no file — neither under the name nor a temporary one. */
static void refuses_what_minfer_refuses(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    const char *dup = mf_tmp_path("dupvocab.gguf"), *out = mf_tmp_path("refused.gguf");
    /* the stories vocabulary with token 500 spelled like token 499 */
    int have_stories = access(model, R_OK) == 0;
    if (have_stories) {
        mf_err err;
        mf_gguf *g = mf_gguf_open(model, &err);
        assert_non_null(g);
        const mf_str t499 = mf_gguf_find_kv(g, "tokenizer.ggml.tokens")->arr_str[499];
        mf_write_vocab_with(model, dup, 500, t499.ptr, t499.len);
        mf_gguf_close(g);
    }
    const struct {
        const char *args[12];
        const char *phrase;
    } cases[] = {
        {{"--head-dim", "2048", "--heads", "1", "--kv-heads", "1"}, "head size 2048 is invalid"},
        {{"--arch", "gpt-oss", "--window", "5000000"},
         "key 'gpt-oss.attention.sliding_window' = 5000000 is out of range"},
        {{"--dim", "2147483647", "--heads", "1", "--kv-heads", "1", "--head-dim", "2", "--sparse", "1"},
         "key 'llama.embedding_length' = 2147483647 is out of range"},
        {{"--dim", "4096", "--heads", "4096", "--kv-heads", "4096", "--head-dim", "1024", "--sparse", "1"},
         "attention width head_count 4096 x head size 1024 = 4194304"},
        {{"--ctx", "2147483647"}, "key 'llama.context_length' = 2147483647 is out of range"},
        {{"--vocab-from", dup}, "tokenizer.ggml.tokens: token 500 '&' duplicates token 499"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        if (c == 5 && !have_stories) continue;
        const char *args[16] = {"-o", out};
        int n = 2;
        for (int k = 0; cases[c].args[k]; k++) args[n++] = cases[c].args[k];
        args[n] = NULL;
        mf_proc p = mf_run_tool("mkmodel", args);
        char want[256];
        snprintf(want, sizeof want, "mkmodel: %s: minfer would refuse this file: ", out);
        if (p.rc != 1 || strncmp(p.err, want, strlen(want)) || !strstr(p.err, cases[c].phrase))
            fail_msg("case %zu: exit %d, expected 1 with '%s...%s': %s", c, p.rc, want, cases[c].phrase, p.err);
        assert_int_equal(access(out, F_OK), -1);
        mf_proc_free(&p);
    }
    /* nothing left beside the output either (the check files and the writer's temporaries) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    assert_non_null(slash);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "ls '%.*s' | grep -q -F '%s.'", (int)(slash - dir), dir, slash + 1);
    assert_int_not_equal(system(cmd), 0);
    unlink(dup);
    if (!have_stories) mf_skip("stories260K.gguf missing: the duplicate-vocabulary case was not run");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama_tiny_f32),    cmocka_unit_test(llama_tiny_all_types),
        cmocka_unit_test(llama_mixed_types), cmocka_unit_test(llama_tinyllama_shape),
        cmocka_unit_test(llama_vocab_from),  cmocka_unit_test(gpt_oss_tiny),
        cmocka_unit_test(gpt_oss_20b_shape), cmocka_unit_test(gpt_oss_real_vocab),
        cmocka_unit_test(determinism),       cmocka_unit_test(layers_zero),
        cmocka_unit_test(bad_options),       cmocka_unit_test(refuses_what_minfer_refuses),
    };
    return MF_RUN("mkmodel", tests);
}
