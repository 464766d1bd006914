/* test_gguf.c — the GGUF reader on the real shared files, and the writer by round trip.
 *
 * Real files (skipped when absent): every expected number below was read once from the file
 * with an independent parser (a few lines of Python struct.unpack written from docs/gguf.md, not
 * from our C code) and is asserted exactly; the byte walk of docs/gguf.md §2 is checked against
 * the raw bytes, not only through the reader.
 *
 * Round trip: the writer builds files with every metadata type and tensors of several types,
 * shapes and alignments; the reader must give back identical values and bytes, and the
 * layout must match sizes computed by hand from docs/gguf.md §2 (so a writer and a reader that
 * agreed on a wrong layout would still fail).
 */
#include "harness.h"
#include "gguf.h"
#include "types.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static mf_gguf *open_or_fail(const char *path)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open(path, &err);
    if (!g) fail_msg("%s", err.msg);
    return g;
}

/* first byte of the file, found through the first tensor (data = base + data_offset + offset) */
static const uint8_t *file_base(const mf_gguf *g)
{
    const mf_gguf_tensor *t = mf_gguf_tensor_at(g, 0);
    return (const uint8_t *)t->data - mf_gguf_data_offset(g) - t->offset;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void assert_str_eq(mf_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

/* ------------------------------------------------------------------ stories260K.gguf */

static void stories_header(void **state)
{
    (void)state;
    const char *p = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(p);
    mf_gguf *g = open_or_fail(p);
    assert_int_equal(mf_gguf_version(g), 3);
    assert_int_equal(mf_gguf_n_tensors(g), 48);
    assert_int_equal(mf_gguf_n_kv(g), 19);
    assert_int_equal(mf_gguf_file_size(g), 1185376);
    assert_int_equal(mf_gguf_alignment(g), 32); /* no general.alignment key */
    assert_null(mf_gguf_find_kv(g, "general.alignment"));
    /* docs/gguf.md §2: P = 14152, data_offset = align_up(14152, 32) = 14176 */
    assert_int_equal(mf_gguf_data_offset(g), 14176);
    mf_gguf_close(g);
}

static void stories_hparams(void **state)
{
    (void)state;
    const char *p = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(p);
    mf_gguf *g = open_or_fail(p);
    mf_err err;
    const char *s;
    uint32_t u;
    float f;
    assert_int_equal(mf_gguf_get_str(g, "general.architecture", &s, &err), 0);
    assert_string_equal(s, "llama");
    assert_int_equal(mf_gguf_get_str(g, "tokenizer.ggml.model", &s, &err), 0);
    assert_string_equal(s, "llama");
    struct {
        const char *key;
        uint32_t v;
    } want[] = {
        {"llama.block_count", 5},
        {"llama.embedding_length", 64},
        {"llama.context_length", 2048},
        {"llama.feed_forward_length", 172},
        {"llama.attention.head_count", 8},
        {"llama.attention.head_count_kv", 4},
        {"llama.rope.dimension_count", 8},
        {"tokenizer.ggml.unknown_token_id", 0},
        {"tokenizer.ggml.bos_token_id", 1},
        {"tokenizer.ggml.eos_token_id", 2},
        {"tokenizer.ggml.padding_token_id", 0xFFFFFFFFu},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (mf_gguf_get_u32(g, want[i].key, &u, &err)) fail_msg("%s", err.msg);
        assert_int_equal(u, want[i].v);
    }
    /* stored as the f32 nearest 1e-5: compare the exact bits */
    assert_int_equal(mf_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f, &err), 0);
    assert_true(f == 1e-5f);
    mf_gguf_close(g);
}

static void stories_vocab(void **state)
{
    (void)state;
    const char *p = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(p);
    mf_gguf *g = open_or_fail(p);
    mf_err err;
    const mf_gguf_kv *tok, *sc, *ty;
    assert_int_equal(mf_gguf_get_arr(g, "tokenizer.ggml.tokens", MF_GGUF_STR, &tok, &err), 0);
    assert_int_equal(mf_gguf_get_arr(g, "tokenizer.ggml.scores", MF_GGUF_F32, &sc, &err), 0);
    assert_int_equal(mf_gguf_get_arr(g, "tokenizer.ggml.token_type", MF_GGUF_I32, &ty, &err), 0);
    assert_int_equal(tok->arr_n, 512);
    assert_int_equal(sc->arr_n, 512);
    assert_int_equal(ty->arr_n, 512);
    /* id, text, score, type — scores are small integers, exact in f32 */
    struct {
        int id;
        const char *text;
        float score;
        int type;
    } want[] = {
        {0, "<unk>", 0.0f, 2},
        {1, "<s>", 0.0f, 3},
        {2, "</s>", 0.0f, 3},
        {3, "<0x00>", 0.0f, 6},
        {100, "<0x61>", 0.0f, 6},
        {300, "\xe2\x96\x81ha", -41.0f, 1},
        {403, "\xe2\x96\x81Once", -144.0f, 1},
        {511, "\xe2\x80\x8a", -252.0f, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_str_eq(tok->arr_str[want[i].id], want[i].text);
        assert_true(mf_gguf_arr_f32(sc, (uint64_t)want[i].id) == want[i].score);
        assert_int_equal(mf_gguf_arr_i32(ty, (uint64_t)want[i].id), want[i].type);
    }
    /* asking for the wrong element type names what is there */
    assert_int_equal(mf_gguf_get_arr(g, "tokenizer.ggml.scores", MF_GGUF_I32, &sc, &err), -1);
    assert_non_null(strstr(err.msg, "ARRAY of FLOAT32, expected ARRAY of INT32"));
    mf_gguf_close(g);
}

static void stories_tensors(void **state)
{
    (void)state;
    const char *p = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(p);
    mf_gguf *g = open_or_fail(p);
    const mf_gguf_tensor *t = mf_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_ptr_equal(t, mf_gguf_tensor_at(g, 0));
    assert_int_equal(t->type, MF_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->offset, 0);
    assert_int_equal(t->nbytes, 64 * 512 * 4);
    assert_int_equal(t->info_offset, 11347);

    t = mf_gguf_find_tensor(g, "output_norm.weight");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->offset, 131072);
    assert_int_equal((const uint8_t *)t->data - file_base(g), 145248);

    /* docs/gguf.md §1: ffn_down maps 172 -> 64 */
    t = mf_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    /* the last tensor ends exactly at EOF (docs/gguf.md §2) */
    t = mf_gguf_tensor_at(g, 47);
    assert_string_equal(t->name, "blk.4.ffn_norm.weight");
    assert_int_equal(mf_gguf_data_offset(g) + t->offset + t->nbytes, mf_gguf_file_size(g));
    assert_null(mf_gguf_find_tensor(g, "blk.5.ffn_norm.weight"));
    assert_null(mf_gguf_tensor_at(g, 48));

    /* every tensor: F32, aligned, and found by its own name */
    uint64_t params = 0;
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        t = mf_gguf_tensor_at(g, i);
        assert_int_equal(t->type, MF_TYPE_F32);
        assert_int_equal(t->offset % 32, 0);
        assert_ptr_equal(mf_gguf_find_tensor(g, t->name), t);
        params += t->n_elements;
    }
    /* the "260K" of the name: 2*64*512 embeddings + 5 layers * (64*64*2 + 64*32*2 + 3*64*172
     * + 2*64) + 64 = 292,800 (computed by hand from the shapes above) */
    assert_int_equal(params, 292800);
    mf_gguf_close(g);
}

/* docs/gguf.md §2, byte for byte, against the raw file and against the reader */
static void stories_byte_walk(void **state)
{
    (void)state;
    const char *p = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(p);
    size_t n;
    uint8_t *b = mf_read_file(p, &n);
    assert_non_null(b);
    assert_int_equal(n, 1185376);
    assert_memory_equal(b, "GGUF", 4);
    assert_int_equal(rd_le(b + 4, 4), 3);
    assert_int_equal(rd_le(b + 8, 8), 48);
    assert_int_equal(rd_le(b + 16, 8), 19);
    assert_int_equal(rd_le(b + 24, 8), 21);
    assert_memory_equal(b + 32, "tokenizer.ggml.tokens", 21);
    assert_int_equal(rd_le(b + 53, 4), MF_GGUF_ARR);
    assert_int_equal(rd_le(b + 57, 4), MF_GGUF_STR);
    assert_int_equal(rd_le(b + 61, 8), 512);
    assert_int_equal(rd_le(b + 69, 8), 5);
    assert_memory_equal(b + 77, "<unk>", 5);
    /* docs/gguf.md §2: the first tensor-info record at 11347 */
    const uint8_t *q = b + 11347;
    assert_int_equal(rd_le(q, 8), 17);
    assert_memory_equal(q + 8, "token_embd.weight", 17);
    assert_int_equal(rd_le(q + 25, 4), 2);
    assert_int_equal(rd_le(q + 29, 8), 64);
    assert_int_equal(rd_le(q + 37, 8), 512);
    assert_int_equal(rd_le(q + 45, 4), 0);
    assert_int_equal(rd_le(q + 49, 8), 0);

    /* the reader sees the same positions */
    mf_gguf *g = open_or_fail(p);
    const uint8_t *base = file_base(g);
    const mf_gguf_kv *kv = mf_gguf_kv_at(g, 0);
    assert_string_equal(kv->key, "tokenizer.ggml.tokens");
    assert_int_equal(kv->offset, 24);
    assert_int_equal(kv->type, MF_GGUF_ARR);
    assert_int_equal(kv->arr_type, MF_GGUF_STR);
    assert_int_equal(kv->arr_data - base, 69);
    assert_int_equal((const uint8_t *)kv->arr_str[0].ptr - base, 77);
    /* record offsets of the other keys (independent parser) */
    struct {
        const char *key;
        uint64_t off;
    } at[] = {
        {"tokenizer.ggml.scores", 6470},
        {"tokenizer.ggml.token_type", 8563},
        {"tokenizer.ggml.model", 10660},
        {"general.architecture", 10705},
        {"llama.attention.layer_norm_rms_epsilon", 11293},
    };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        const mf_gguf_kv *k = mf_gguf_find_kv(g, at[i].key);
        assert_non_null(k);
        assert_int_equal(k->offset, at[i].off);
    }
    /* the token_embd bytes are the file's bytes at data_offset */
    const mf_gguf_tensor *t = mf_gguf_tensor_at(g, 0);
    assert_memory_equal(t->data, b + 14176, t->nbytes);
    mf_gguf_close(g);
    free(b);
}

/* ------------------------------------------------------------------ vocab-llama-spm.gguf */

static void spm_vocab(void **state)
{
    (void)state;
    const char *p = mf_model_path("vocab-llama-spm.gguf");
    MF_REQUIRE_FILE(p);
    mf_gguf *g = mf_gguf_open(p, NULL);
    assert_non_null(g);
    mf_err err;
    /* a vocabulary-only file: no tensors, so no data section padding (docs/gguf.md §2) */
    assert_int_equal(mf_gguf_n_tensors(g), 0);
    assert_int_equal(mf_gguf_n_kv(g), 22);
    assert_int_equal(mf_gguf_data_offset(g), mf_gguf_file_size(g));
    assert_int_equal(mf_gguf_file_size(g), 723869);
    uint32_t u;
    assert_int_equal(mf_gguf_get_u32(g, "llama.vocab_size", &u, &err), 0);
    assert_int_equal(u, 32000);
    int b = -1;
    assert_int_equal(mf_gguf_opt_bool(g, "tokenizer.ggml.add_bos_token", 0, &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(mf_gguf_opt_bool(g, "tokenizer.ggml.add_eos_token", 1, &b, &err), 0);
    assert_int_equal(b, 0);
    const char *pre;
    assert_int_equal(mf_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &err), 0);
    assert_string_equal(pre, "default");

    const mf_gguf_kv *tok, *sc, *ty;
    assert_int_equal(mf_gguf_get_arr(g, "tokenizer.ggml.tokens", MF_GGUF_STR, &tok, &err), 0);
    assert_int_equal(mf_gguf_get_arr(g, "tokenizer.ggml.scores", MF_GGUF_F32, &sc, &err), 0);
    assert_int_equal(mf_gguf_get_arr(g, "tokenizer.ggml.token_type", MF_GGUF_I32, &ty, &err), 0);
    assert_int_equal(tok->arr_n, 32000);
    assert_int_equal(sc->arr_n, 32000);
    assert_int_equal(ty->arr_n, 32000);
    /* scores are integers in f32 (-1e9 is exactly representable: 0xce6e6b28) */
    struct {
        int id;
        const char *text;
        float score;
        int type;
    } want[] = {
        {0, "<unk>", 0.0f, 2},
        {1, "<s>", 0.0f, 3},
        {2, "</s>", 0.0f, 3},
        {13, "<0x0A>", 0.0f, 6},
        {259, "\xe2\x96\x81\xe2\x96\x81", -1e9f, 1},
        {9038, "\xe2\x96\x81Once", -8779.0f, 1},
        {29871, "\xe2\x96\x81", -1e9f, 1},
        {29889, ".", -29630.0f, 1},
        {31999, "\xe7\xbb\x99", -31740.0f, 1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_str_eq(tok->arr_str[want[i].id], want[i].text);
        assert_true(mf_gguf_arr_f32(sc, (uint64_t)want[i].id) == want[i].score);
        assert_int_equal(mf_gguf_arr_i32(ty, (uint64_t)want[i].id), want[i].type);
    }
    mf_gguf_close(g);
}

/* ------------------------------------------------------------------ writer round trip */

static const uint8_t A_U8[] = {0, 1, 255};
static const int8_t A_I8[] = {-128, 0, 127};
static const uint16_t A_U16[] = {0, 65535, 4660};
static const int16_t A_I16[] = {-32768, 32767, -1};
static const uint32_t A_U32[] = {0, 0xFFFFFFFFu, 0x12345678u, 7};
static const int32_t A_I32[] = {INT32_MIN, INT32_MAX, -5};
static const float A_F32[] = {-1.5f, 3.25e-38f, 1e30f, 0.0f};
static const uint8_t A_BOOL[] = {1, 0, 1};
static const uint64_t A_U64[] = {UINT64_MAX, 0, 1ull << 40};
static const int64_t A_I64[] = {INT64_MIN, INT64_MAX};
static const double A_F64[] = {3.141592653589793, -2.5e-300};

static const struct {
    uint32_t type;
    const void *data;
    uint64_t n, esize;
} ARRS[] = {
    {MF_GGUF_U8, A_U8, 3, 1},   {MF_GGUF_I8, A_I8, 3, 1},   {MF_GGUF_U16, A_U16, 3, 2}, {MF_GGUF_I16, A_I16, 3, 2},
    {MF_GGUF_U32, A_U32, 4, 4}, {MF_GGUF_I32, A_I32, 3, 4}, {MF_GGUF_F32, A_F32, 4, 4}, {MF_GGUF_BOOL, A_BOOL, 3, 1},
    {MF_GGUF_U64, A_U64, 3, 8}, {MF_GGUF_I64, A_I64, 2, 8}, {MF_GGUF_F64, A_F64, 2, 8},
};
#define N_ARRS (sizeof ARRS / sizeof ARRS[0])

static const char *const STRS[] = {"alpha", "", "quote \" newline \n tab \t", "\xe2\x96\x81x"};
static const char NUL_STR[] = {'a', 0, 'b'}; /* a string value with an embedded NUL */

/* every metadata type; returns the number of keys written */
static int write_all_metadata(mf_gguf_writer *w)
{
    int n = 0;
#define OK(call)                     \
    do {                             \
        assert_int_equal((call), 0); \
        n++;                         \
    } while (0)
    OK(mf_gguf_w_u8(w, "t.u8", 200));
    OK(mf_gguf_w_i8(w, "t.i8", -100));
    OK(mf_gguf_w_u16(w, "t.u16", 60000));
    OK(mf_gguf_w_i16(w, "t.i16", -30000));
    OK(mf_gguf_w_u32(w, "t.u32", 4000000000u));
    OK(mf_gguf_w_i32(w, "t.i32", -2000000000));
    OK(mf_gguf_w_f32(w, "t.f32", -0.375f));
    OK(mf_gguf_w_bool(w, "t.true", 1));
    OK(mf_gguf_w_bool(w, "t.false", 0));
    OK(mf_gguf_w_str(w, "t.str", "hello"));
    OK(mf_gguf_w_str(w, "t.empty", ""));
    OK(mf_gguf_w_strn(w, "t.nul", NUL_STR, sizeof NUL_STR));
    OK(mf_gguf_w_u64(w, "t.u64", UINT64_MAX - 1));
    OK(mf_gguf_w_i64(w, "t.i64", INT64_MIN + 1));
    OK(mf_gguf_w_f64(w, "t.f64", 1.0 / 3.0));
    for (size_t i = 0; i < N_ARRS; i++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", mf_gguf_vtype_name(ARRS[i].type));
        OK(mf_gguf_w_arr(w, key, ARRS[i].type, ARRS[i].data, ARRS[i].n));
    }
    OK(mf_gguf_w_arr(w, "a.empty", MF_GGUF_U32, NULL, 0));
    OK(mf_gguf_w_arr_str(w, "a.strs", STRS, NULL, 4));
    const uint64_t lens[] = {3, 0};
    const char *const with_nul[] = {NUL_STR, ""};
    OK(mf_gguf_w_arr_str(w, "a.strs_len", with_nul, lens, 2));
    OK(mf_gguf_w_arr_str(w, "a.strs_empty", NULL, NULL, 0));
#undef OK
    return n;
}

static void check_all_metadata(const mf_gguf *g)
{
    const mf_gguf_kv *kv;
#define KV(k) (kv = mf_gguf_find_kv(g, k), assert_non_null(kv), kv)
    assert_int_equal(KV("t.u8")->type, MF_GGUF_U8);
    assert_int_equal(kv->v.u, 200);
    assert_int_equal(KV("t.i8")->type, MF_GGUF_I8);
    assert_int_equal(kv->v.i, -100);
    assert_int_equal(KV("t.u16")->type, MF_GGUF_U16);
    assert_int_equal(kv->v.u, 60000);
    assert_int_equal(KV("t.i16")->type, MF_GGUF_I16);
    assert_int_equal(kv->v.i, -30000);
    assert_int_equal(KV("t.u32")->type, MF_GGUF_U32);
    assert_int_equal(kv->v.u, 4000000000u);
    assert_int_equal(KV("t.i32")->type, MF_GGUF_I32);
    assert_int_equal(kv->v.i, -2000000000);
    assert_int_equal(KV("t.f32")->type, MF_GGUF_F32);
    assert_true(kv->v.f == -0.375);
    assert_int_equal(KV("t.true")->type, MF_GGUF_BOOL);
    assert_int_equal(kv->v.u, 1);
    assert_int_equal(KV("t.false")->type, MF_GGUF_BOOL);
    assert_int_equal(kv->v.u, 0);
    assert_int_equal(KV("t.str")->type, MF_GGUF_STR);
    assert_string_equal(kv->str, "hello");
    assert_int_equal(kv->str_len, 5);
    assert_int_equal(KV("t.empty")->type, MF_GGUF_STR);
    assert_int_equal(kv->str_len, 0);
    assert_string_equal(kv->str, "");
    assert_int_equal(KV("t.nul")->str_len, 3);
    assert_memory_equal(kv->str, NUL_STR, 3);
    assert_int_equal(kv->str[3], 0); /* the copy is NUL-terminated past its length */
    assert_int_equal(KV("t.u64")->type, MF_GGUF_U64);
    assert_true(kv->v.u == UINT64_MAX - 1);
    assert_int_equal(KV("t.i64")->type, MF_GGUF_I64);
    assert_true(kv->v.i == INT64_MIN + 1);
    assert_int_equal(KV("t.f64")->type, MF_GGUF_F64);
    assert_true(kv->v.f == 1.0 / 3.0);
    for (size_t i = 0; i < N_ARRS; i++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", mf_gguf_vtype_name(ARRS[i].type));
        assert_int_equal(KV(key)->type, MF_GGUF_ARR);
        assert_int_equal(kv->arr_type, ARRS[i].type);
        assert_int_equal(kv->arr_n, ARRS[i].n);
        assert_memory_equal(kv->arr_data, ARRS[i].data, ARRS[i].n * ARRS[i].esize);
    }
    assert_int_equal(mf_gguf_arr_u32(KV("a.UINT32"), 2), 0x12345678u);
    assert_int_equal(mf_gguf_arr_i32(KV("a.INT32"), 0), INT32_MIN);
    assert_true(mf_gguf_arr_f32(KV("a.FLOAT32"), 1) == 3.25e-38f);
    assert_int_equal(KV("a.empty")->arr_n, 0);
    assert_int_equal(kv->arr_type, MF_GGUF_U32);
    assert_int_equal(KV("a.strs")->arr_type, MF_GGUF_STR);
    assert_int_equal(kv->arr_n, 4);
    for (int i = 0; i < 4; i++) assert_str_eq(kv->arr_str[i], STRS[i]);
    assert_int_equal(KV("a.strs_len")->arr_n, 2);
    assert_int_equal(kv->arr_str[0].len, 3);
    assert_memory_equal(kv->arr_str[0].ptr, NUL_STR, 3);
    assert_int_equal(kv->arr_str[1].len, 0);
    assert_int_equal(KV("a.strs_empty")->arr_n, 0);
    assert_int_equal(kv->arr_type, MF_GGUF_STR);
#undef KV
}

typedef struct tspec {
    const char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t nbytes; /* by hand from docs/gguf.md §1 */
} tspec;

static const tspec TENSORS[] = {
    {"f32.matrix", MF_TYPE_F32, 2, {3, 5}, 3 * 5 * 4},
    {"f16.vector", MF_TYPE_F16, 1, {7}, 7 * 2},
    {"q4_0.m", MF_TYPE_Q4_0, 2, {64, 3}, 2 * 3 * 18},
    {"q8_0.stack", MF_TYPE_Q8_0, 3, {32, 2, 2}, 1 * 2 * 2 * 34},
    {"q4_k.4d", MF_TYPE_Q4_K, 4, {256, 1, 1, 2}, 2 * 144},
    {"mxfp4.experts", MF_TYPE_MXFP4, 3, {32, 3, 2}, 6 * 17},
    {"iq2_xxs.unsupported", MF_TYPE_IQ2_XXS, 1, {256}, 66},
    {"i8.bytes", MF_TYPE_I8, 1, {5}, 5},
    {"a.name.of.exactly.sixty-three.bytes.......................x.y.z", MF_TYPE_BF16, 1, {9}, 18},
};
#define N_TENSORS (sizeof TENSORS / sizeof TENSORS[0])

static uint8_t *tensor_bytes(uint64_t i, uint64_t n)
{
    uint8_t *b = malloc(n);
    mf_rng r = {0x1234 + i};
    for (uint64_t k = 0; k < n; k++) b[k] = (uint8_t)mf_rng_u64(&r);
    return b;
}

static int fill_cb(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err)
{
    int *calls = user;
    (*calls)++;
    if (strcmp(t->name, TENSORS[index].name) != 0) return mf_errf(err, "fill: wrong tensor");
    uint8_t *b = tensor_bytes(index, t->nbytes);
    memcpy(buf, b, t->nbytes);
    free(b);
    return 0;
}

/* Hand-computed size of the tensor-info section (docs/gguf.md §2: 8 + name + 4 + 8*n_dims + 4 + 8). */
static uint64_t tinfo_bytes(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i < N_TENSORS; i++) n += 8 + strlen(TENSORS[i].name) + 4 + 8 * TENSORS[i].n_dims + 12;
    return n;
}

/* alignment 0: leave the default; use_fill: every other tensor comes from the callback */
static void round_trip(uint32_t alignment, int use_fill, uint32_t version)
{
    const char *path = mf_tmp_path("roundtrip.gguf");
    mf_gguf_writer *w = mf_gguf_writer_new();
    assert_non_null(w);
    if (version) mf_gguf_w_set_version(w, version);
    int n_kv = write_all_metadata(w);
    if (alignment) {
        assert_int_equal(mf_gguf_w_u32(w, "general.alignment", alignment), 0);
        n_kv++;
    }
    uint8_t *data[N_TENSORS];
    mf_err err;
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tspec *s = &TENSORS[i];
        data[i] = tensor_bytes(i, s->nbytes);
        int from_cb = use_fill && i % 2 == 1;
        int64_t idx = mf_gguf_w_tensor(w, s->name, s->type, s->n_dims, s->ne, from_cb ? NULL : data[i], &err);
        if (idx < 0) fail_msg("%s", err.msg);
        assert_int_equal(idx, (int64_t)i);
    }
    int calls = 0;
    if (mf_gguf_w_write(w, path, fill_cb, &calls, &err)) fail_msg("%s", err.msg);
    assert_int_equal(calls, use_fill ? (int)(N_TENSORS / 2) : 0);
    mf_gguf_writer_free(w);

    mf_gguf *g = open_or_fail(path);
    uint32_t al = alignment ? alignment : 32;
    assert_int_equal(mf_gguf_version(g), version ? version : 3);
    assert_int_equal(mf_gguf_n_kv(g), n_kv);
    assert_int_equal(mf_gguf_alignment(g), al);
    check_all_metadata(g);
    assert_int_equal(mf_gguf_n_tensors(g), N_TENSORS);
    /* layout by hand: infos start after the last KV, data at align_up(P), tensors in record
     * order each at the previous offset + align_up(nbytes) (docs/gguf.md §2) */
    const mf_gguf_kv *last = mf_gguf_kv_at(g, (uint64_t)n_kv - 1);
    uint64_t p = mf_gguf_tensor_at(g, 0)->info_offset + tinfo_bytes();
    assert_true(mf_gguf_tensor_at(g, 0)->info_offset > last->offset);
    assert_int_equal(mf_gguf_data_offset(g), (p + al - 1) / al * al);
    uint64_t off = 0;
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tspec *s = &TENSORS[i];
        const mf_gguf_tensor *t = mf_gguf_find_tensor(g, s->name);
        assert_non_null(t);
        assert_ptr_equal(t, mf_gguf_tensor_at(g, i));
        assert_int_equal(t->type, s->type);
        assert_int_equal(t->n_dims, s->n_dims);
        for (uint32_t j = 0; j < 4; j++) assert_int_equal(t->ne[j], j < s->n_dims ? s->ne[j] : 1);
        assert_int_equal(t->nbytes, s->nbytes);
        assert_int_equal(t->offset, off);
        off += (s->nbytes + al - 1) / al * al;
        assert_memory_equal(t->data, data[i], s->nbytes);
        free(data[i]);
    }
    /* no trailing padding after the last tensor */
    const mf_gguf_tensor *lt = mf_gguf_tensor_at(g, N_TENSORS - 1);
    assert_int_equal(mf_gguf_data_offset(g) + lt->offset + lt->nbytes, mf_gguf_file_size(g));
    mf_gguf_close(g);
    unlink(path);
}

static void rt_default_alignment(void **state)
{
    (void)state;
    round_trip(0, 0, 0);
}
static void rt_alignment_64(void **state)
{
    (void)state;
    round_trip(64, 0, 0);
}
static void rt_alignment_4096(void **state)
{
    (void)state;
    round_trip(4096, 1, 0);
}
static void rt_fill_callback(void **state)
{
    (void)state;
    round_trip(0, 1, 0);
}
static void rt_version_2(void **state)
{
    (void)state;
    round_trip(32, 0, 2);
}

/* Copying every record and every tensor into a new writer reproduces the file byte for byte. */
static void rt_copy_is_identical(void **state)
{
    (void)state;
    const char *a = mf_tmp_path("copy-a.gguf"), *b = mf_tmp_path("copy-b.gguf");
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    write_all_metadata(w);
    assert_int_equal(mf_gguf_w_u32(w, "general.alignment", 64), 0);
    uint8_t *data[N_TENSORS];
    for (size_t i = 0; i < N_TENSORS; i++) {
        data[i] = tensor_bytes(i, TENSORS[i].nbytes);
        assert_true(mf_gguf_w_tensor(w, TENSORS[i].name, TENSORS[i].type, TENSORS[i].n_dims, TENSORS[i].ne, data[i],
                                     &err) >= 0);
    }
    if (mf_gguf_w_write(w, a, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);

    mf_gguf *g = open_or_fail(a);
    w = mf_gguf_writer_new();
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) assert_int_equal(mf_gguf_w_copy_kv(w, mf_gguf_kv_at(g, i)), 0);
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        assert_true(mf_gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err) >= 0);
    }
    if (mf_gguf_w_write(w, b, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    mf_gguf_close(g);

    size_t na, nb;
    uint8_t *fa = mf_read_file(a, &na), *fb = mf_read_file(b, &nb);
    assert_non_null(fa);
    assert_non_null(fb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa);
    free(fb);
    for (size_t i = 0; i < N_TENSORS; i++) free(data[i]);
    unlink(a);
    unlink(b);
}

/* The smallest file: header only, and its 24 bytes written exactly. */
static void rt_empty_file(void **state)
{
    (void)state;
    const char *path = mf_tmp_path("empty.gguf");
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    if (mf_gguf_w_write(w, path, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    size_t n;
    uint8_t *b = mf_read_file(path, &n);
    static const uint8_t want[24] = {'G', 'G', 'U', 'F', 3};
    assert_int_equal(n, 24);
    assert_memory_equal(b, want, 24);
    mf_gguf *g = open_or_fail(path);
    assert_int_equal(mf_gguf_n_kv(g), 0);
    assert_int_equal(mf_gguf_n_tensors(g), 0);
    assert_int_equal(mf_gguf_data_offset(g), 24);
    assert_null(mf_gguf_find_kv(g, "general.architecture"));
    assert_null(mf_gguf_find_tensor(g, "x"));
    mf_gguf_close(g);
    free(b);
    unlink(path);
}

/* Writer failures are reported, not written. */
static void writer_errors(void **state)
{
    (void)state;
    const char *path = mf_tmp_path("werr.gguf");
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    const int64_t ne[2] = {33, 2}, ok[1] = {32}, zero[1] = {0};
    char longname[65];
    memset(longname, 'n', 64);
    longname[64] = 0;
    assert_int_equal(mf_gguf_w_tensor(w, "", MF_TYPE_F32, 1, ok, NULL, &err), -1);
    assert_int_equal(mf_gguf_w_tensor(w, longname, MF_TYPE_F32, 1, ok, NULL, &err), -1);
    assert_int_equal(mf_gguf_w_tensor(w, "bad.type", 4, 1, ok, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unknown(4)"));
    assert_int_equal(mf_gguf_w_tensor(w, "bad.row", MF_TYPE_Q4_0, 2, ne, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "not a multiple"));
    assert_int_equal(mf_gguf_w_tensor(w, "zero", MF_TYPE_F32, 1, zero, NULL, &err), -1);
    assert_int_equal(mf_gguf_w_tensor(w, "dims", MF_TYPE_F32, 5, ok, NULL, &err), -1);
    assert_int_equal(mf_gguf_w_arr(w, "nested", MF_GGUF_ARR, NULL, 0), -1);
    /* a tensor without data needs the callback */
    assert_int_equal(mf_gguf_w_tensor(w, "nodata", MF_TYPE_F32, 1, ok, NULL, &err), 0);
    assert_int_equal(mf_gguf_w_write(w, path, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no data and no fill callback"));
    mf_gguf_writer_free(w);
    unlink(path);
}

/* Shapes whose byte counts do not fit 63 bits (issue 11: mkmodel wrote wrapped offsets for
 * huge dimensions, a file the reader then rejected): refused when described or written. */
static void writer_huge_sizes(void **state)
{
    (void)state;
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    const int64_t bytes63[1] = {1ll << 61}; /* 2^61 F32 elements: 2^63 bytes */
    const int64_t f16[2] = {1ll << 61, 2};  /* F16: 2^62 elements of 2 bytes */
    assert_int_equal(mf_gguf_w_tensor(w, "a", MF_TYPE_F32, 1, bytes63, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "tensor 'a': byte size overflows"));
    assert_int_equal(mf_gguf_w_tensor(w, "b", MF_TYPE_F16, 2, f16, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "tensor 'b': byte size overflows"));
    /* each fits, their sum does not: 4 x 2^61 bytes = 2^63 */
    const int64_t big[1] = {1ll << 59};
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        assert_true(mf_gguf_w_tensor(w, name, MF_TYPE_F32, 1, big, NULL, &err) >= 0);
    }
    const char *path = mf_tmp_path("whuge.gguf");
    mf_gguf_w_set_sparse(w, 1);
    assert_int_equal(mf_gguf_w_write(w, path, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "tensor 't3' does not fit: the data section would exceed"));
    assert_int_equal(access(path, F_OK), -1);
    mf_gguf_writer_free(w);
}

static int fill_fails(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err)
{
    (void)user;
    (void)buf;
    return mf_errf(err, "fill of '%s' (%llu) refused", t->name, (unsigned long long)index);
}

static void writer_fill_error(void **state)
{
    (void)state;
    const char *path = mf_tmp_path("wfill.gguf");
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    const int64_t ne[1] = {4};
    assert_int_equal(mf_gguf_w_tensor(w, "x", MF_TYPE_F32, 1, ne, NULL, &err), 0);
    assert_int_equal(mf_gguf_w_write(w, path, fill_fails, NULL, &err), -1);
    assert_string_equal(err.msg, "fill of 'x' (0) refused");
    /* a failed write leaves nothing: no partial file under the name, no temporary beside it */
    assert_int_equal(access(path, F_OK), -1);
    char part[4096];
    snprintf(part, sizeof part, "%s.part%ld-0", path, (long)getpid());
    assert_int_equal(access(part, F_OK), -1);
    mf_gguf_writer_free(w);
    unlink(path);
    w = mf_gguf_writer_new();
    assert_int_equal(mf_gguf_w_write(w, "/nonexistent-dir/x.gguf", NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.gguf: cannot create"));
    mf_gguf_writer_free(w);
}

static int fill_ones(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err)
{
    (void)user, (void)index, (void)err;
    memset(buf, 1, t->nbytes);
    return 0;
}

/* Sets the cancel flag while tensor 1 is filled, as a signal handler would mid-write. */
static int fill_then_cancel(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err)
{
    if (index == 1) *(volatile sig_atomic_t *)user = 1;
    return fill_ones(NULL, index, t, buf, err);
}

/* An interrupted write (mf_gguf_w_set_cancel) ends like a failed one: an error naming the
 * next tensor, no temporary file, and an existing file under the name untouched. */
static void writer_cancel(void **state)
{
    (void)state;
    char dir[] = "/tmp/mf-gguf-cancel-XXXXXX", path[64], ls[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.gguf", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("earlier file", f);
    assert_int_equal(fclose(f), 0);
    mf_err err;
    const int64_t ne[1] = {1024};
    volatile sig_atomic_t cancel = 0;
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_gguf_w_set_cancel(w, &cancel);
    for (int i = 0; i < 4; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        assert_int_equal(mf_gguf_w_tensor(w, name, MF_TYPE_F32, 1, ne, NULL, &err), i);
    }
    assert_int_equal(mf_gguf_w_write(w, path, fill_then_cancel, (void *)&cancel, &err), -1);
    assert_non_null(strstr(err.msg, "interrupted before tensor 't2'; nothing was written"));
    mf_list_dir(dir, ls, sizeof ls);
    assert_string_equal(ls, "x.gguf");
    char *text = mf_read_text(path, NULL);
    assert_string_equal(text, "earlier file");
    free(text);
    /* a flag that stays 0 changes nothing */
    cancel = 0;
    mf_gguf_w_set_cancel(w, &cancel);
    if (mf_gguf_w_write(w, path, fill_ones, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    unlink(path);
    rmdir(dir);
}

/* The writer's file appears complete or not at all: a failed write (a fill error, a
 * file-size limit standing in for a full disk) leaves an existing file untouched and no
 * temporary file behind. */
static void writer_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/mf-gguf-atomic-XXXXXX", path[64], ls[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.gguf", dir);
    mf_err err;
    const int64_t small[1] = {4}, big[1] = {1 << 16};
    mf_gguf_writer *w = mf_gguf_writer_new();
    assert_int_equal(mf_gguf_w_tensor(w, "x", MF_TYPE_F32, 1, small, NULL, &err), 0);
    if (mf_gguf_w_write(w, path, fill_ones, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    size_t len0, len1;
    uint8_t *before = mf_read_file(path, &len0);
    assert_non_null(before);
    mf_list_dir(dir, ls, sizeof ls);
    assert_string_equal(ls, "x.gguf");

    /* a fill error half-way */
    w = mf_gguf_writer_new();
    assert_int_equal(mf_gguf_w_tensor(w, "a", MF_TYPE_F32, 1, big, NULL, &err), 0);
    assert_int_equal(mf_gguf_w_tensor(w, "b", MF_TYPE_F32, 1, small, NULL, &err), 1);
    assert_int_equal(mf_gguf_w_write(w, path, fill_fails, NULL, &err), -1);
    mf_list_dir(dir, ls, sizeof ls);
    assert_string_equal(ls, "x.gguf");
    uint8_t *after = mf_read_file(path, &len1);
    assert_true(len1 == len0 && memcmp(before, after, len0) == 0);
    free(after);

    /* a full disk: a child process limited to 8 KB files (SIGXFSZ ignored, so write()
     * fails with EFBIG instead of killing it) writes 256 KB */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {8192, 8192};
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(3);
        int rc = mf_gguf_w_write(w, path, fill_ones, NULL, &err);
        _exit(rc == -1 && strstr(err.msg, "write failed: File too large") ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    mf_list_dir(dir, ls, sizeof ls);
    assert_string_equal(ls, "x.gguf");
    after = mf_read_file(path, &len1);
    assert_true(len1 == len0 && memcmp(before, after, len0) == 0);
    free(after);

    /* success replaces the file; a device is written in place */
    if (mf_gguf_w_write(w, path, fill_ones, NULL, &err)) fail_msg("%s", err.msg);
    mf_list_dir(dir, ls, sizeof ls);
    assert_string_equal(ls, "x.gguf");
    after = mf_read_file(path, &len1);
    assert_true(len1 > (size_t)(1 << 18));
    free(after);
    if (mf_gguf_w_write(w, "/dev/null", fill_ones, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    free(before);
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------------ typed getters */

static void getters(void **state)
{
    (void)state;
    const char *path = mf_tmp_path("getters.gguf");
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_gguf_w_i32(w, "pos.i32", 7); /* a UINT32 key written as INT32 */
    mf_gguf_w_i32(w, "neg.i32", -1);
    mf_gguf_w_u64(w, "big.u64", 1ull << 32);
    mf_gguf_w_u8(w, "small.u8", 9);
    mf_gguf_w_f64(w, "f.f64", 0.5);
    mf_gguf_w_str(w, "s", "text");
    mf_gguf_w_bool(w, "b", 1);
    if (mf_gguf_w_write(w, path, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    mf_gguf *g = open_or_fail(path);
    uint32_t u = 0;
    float f = 0;
    int b = 0;
    const char *s = NULL;
    assert_int_equal(mf_gguf_get_u32(g, "pos.i32", &u, &err), 0);
    assert_int_equal(u, 7);
    assert_int_equal(mf_gguf_get_u32(g, "small.u8", &u, &err), 0);
    assert_int_equal(u, 9);
    assert_int_equal(mf_gguf_get_u32(g, "neg.i32", &u, &err), -1);
    assert_non_null(strstr(err.msg, "out of range for UINT32"));
    assert_int_equal(mf_gguf_get_u32(g, "big.u64", &u, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(mf_gguf_get_u32(g, "s", &u, &err), -1);
    assert_non_null(strstr(err.msg, "key 's' has type STRING, expected UINT32"));
    assert_int_equal(mf_gguf_get_u32(g, "missing", &u, &err), -1);
    assert_non_null(strstr(err.msg, "'missing' is missing"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(mf_gguf_get_f32(g, "f.f64", &f, &err), 0);
    assert_true(f == 0.5f);
    assert_int_equal(mf_gguf_get_f32(g, "pos.i32", &f, &err), -1);
    assert_int_equal(mf_gguf_opt_u32(g, "missing", 42, &u, &err), 0);
    assert_int_equal(u, 42);
    assert_int_equal(mf_gguf_opt_u32(g, "s", 42, &u, &err), -1); /* wrong type stays an error */
    assert_int_equal(mf_gguf_opt_f32(g, "missing", 1.5f, &f, &err), 0);
    assert_true(f == 1.5f);
    assert_int_equal(mf_gguf_opt_bool(g, "b", 0, &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(mf_gguf_opt_bool(g, "s", 0, &b, &err), -1);
    assert_int_equal(mf_gguf_opt_str(g, "missing", "dflt", &s, &err), 0);
    assert_string_equal(s, "dflt");
    assert_int_equal(mf_gguf_get_str(g, "s", &s, &err), 0);
    assert_string_equal(s, "text");
    assert_int_equal(mf_gguf_get_str(g, "b", &s, &err), -1);
    const mf_gguf_kv *kv;
    assert_int_equal(mf_gguf_get_arr(g, "s", MF_GGUF_STR, &kv, &err), -1);
    assert_non_null(strstr(err.msg, "expected ARRAY of STRING"));
    assert_string_equal(mf_gguf_vtype_name(13), "INVALID");
    mf_gguf_close(g);
    unlink(path);
}

/* Lookups stay right with many names (the sorted index and its binary search). */
static void many_names(void **state)
{
    (void)state;
    const char *path = mf_tmp_path("many.gguf");
    mf_err err;
    mf_gguf_writer *w = mf_gguf_writer_new();
    enum { N = 2000 };
    static float zero[4];
    mf_rng r = {7};
    for (int i = 0; i < N; i++) {
        /* random order, so the index has to sort */
        char k[48];
        uint32_t id = (uint32_t)(mf_rng_u64(&r) % 1000000u) * 4096u + (uint32_t)i;
        snprintf(k, sizeof k, "k.%u", id);
        mf_gguf_w_u32(w, k, id);
        snprintf(k, sizeof k, "t.%u", id);
        const int64_t ne[1] = {4};
        assert_true(mf_gguf_w_tensor(w, k, MF_TYPE_F32, 1, ne, zero, &err) >= 0);
    }
    if (mf_gguf_w_write(w, path, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    mf_gguf *g = open_or_fail(path);
    for (uint64_t i = 0; i < N; i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(g, i);
        assert_ptr_equal(mf_gguf_find_kv(g, kv->key), kv);
        char k[48];
        snprintf(k, sizeof k, "k.%llu", (unsigned long long)kv->v.u);
        assert_string_equal(kv->key, k);
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        assert_ptr_equal(mf_gguf_find_tensor(g, t->name), t);
    }
    assert_null(mf_gguf_find_kv(g, "k."));
    assert_null(mf_gguf_find_kv(g, "k.99999999999"));
    assert_null(mf_gguf_find_tensor(g, ""));
    mf_gguf_close(g);
    unlink(path);
}

/* The fuzzer's seeds (tests/fuzz/make_seeds.c) must be valid files, or fuzzing starts from
 * inputs the reader rejects at the first bytes. */
static void fuzz_seeds_are_valid(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        uint64_t n_tensors;
        const char *arch;
    } seeds[] = {
        {"seed-tiny-llama.bin", 4, "llama"},
        {"seed-tiny-bpe.bin", 0, "gpt-oss"},
        {"seed-types.bin", 35, "types"},
        {"seed-all-kv.bin", 2, NULL},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/%s", MF_SOURCE_DIR, seeds[i].file);
        mf_gguf *g = open_or_fail(path);
        assert_int_equal(mf_gguf_n_tensors(g), seeds[i].n_tensors);
        const char *arch = NULL;
        mf_gguf_opt_str(g, "general.architecture", NULL, &arch, NULL);
        if (seeds[i].arch) assert_string_equal(arch, seeds[i].arch);
        else assert_null(arch);
        mf_gguf_close(g);
    }
}

/* Sparse mode: same header and file size as a full write, tensor bytes read as zeros. */
static void writer_sparse(void **state)
{
    (void)state;
    const char *full = mf_tmp_path("full.gguf"), *sparse = mf_tmp_path("sparse.gguf");
    float a[64];
    for (int i = 0; i < 64; i++) a[i] = (float)i + 1;
    int64_t ne_a[1] = {64}, ne_b[2] = {32, 3};
    uint8_t q[3 * 34];
    memset(q, 0x5a, sizeof q);
    mf_err err;
    for (int k = 0; k < 2; k++) {
        mf_gguf_writer *w = mf_gguf_writer_new();
        assert_int_equal(mf_gguf_w_u32(w, "general.alignment", 64), 0);
        assert_true(mf_gguf_w_tensor(w, "a", MF_TYPE_F32, 1, ne_a, a, &err) >= 0);
        assert_true(mf_gguf_w_tensor(w, "b", MF_TYPE_Q8_0, 2, ne_b, q, &err) >= 0);
        mf_gguf_w_set_sparse(w, k);
        if (mf_gguf_w_write(w, k ? sparse : full, NULL, NULL, &err)) fail_msg("%s", err.msg);
        mf_gguf_writer_free(w);
    }
    size_t nf, ns;
    uint8_t *bf = mf_read_file(full, &nf), *bs = mf_read_file(sparse, &ns);
    assert_non_null(bf);
    assert_non_null(bs);
    assert_int_equal(nf, ns);
    mf_gguf *g = mf_gguf_open(sparse, &err);
    if (!g) fail_msg("%s", err.msg);
    size_t hdr = (size_t)mf_gguf_data_offset(g);
    assert_memory_equal(bf, bs, hdr);
    for (size_t i = hdr; i < ns; i++) assert_int_equal(bs[i], 0);
    assert_int_equal(mf_gguf_find_tensor(g, "b")->nbytes, 3 * 34);
    mf_gguf_close(g);
    free(bf);
    free(bs);
    unlink(full);
    unlink(sparse);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stories_header),       cmocka_unit_test(stories_hparams),
        cmocka_unit_test(stories_vocab),        cmocka_unit_test(stories_tensors),
        cmocka_unit_test(stories_byte_walk),    cmocka_unit_test(spm_vocab),
        cmocka_unit_test(rt_default_alignment), cmocka_unit_test(rt_alignment_64),
        cmocka_unit_test(rt_alignment_4096),    cmocka_unit_test(rt_fill_callback),
        cmocka_unit_test(rt_version_2),         cmocka_unit_test(rt_copy_is_identical),
        cmocka_unit_test(rt_empty_file),        cmocka_unit_test(writer_errors),
        cmocka_unit_test(writer_fill_error),    cmocka_unit_test(writer_atomic),
        cmocka_unit_test(writer_huge_sizes),    cmocka_unit_test(getters),
        cmocka_unit_test(many_names),           cmocka_unit_test(fuzz_seeds_are_valid),
        cmocka_unit_test(writer_sparse),        cmocka_unit_test(writer_cancel),
    };
    return MF_RUN("gguf", tests);
}
