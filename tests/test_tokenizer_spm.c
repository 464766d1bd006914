/* test_tokenizer_spm.c — the SentencePiece-style tokenizer (docs/tokenizer.md §3).
 *
 * References, all independent of this implementation:
 *   - llama.cpp's own test vectors for the real 32000-token Llama vocabulary
 *     (vocab-llama-spm.gguf / .inp / .out, made with add_special = 0, parse_special = 0);
 *   - 13 stories260K vectors and the worked example of docs/tokenizer.md §3 (ids printed by
 *     llama.cpp's llama-tokenize on the same file; docs/tokenizer.md §7);
 *   - the decoding rules of docs/tokenizer.md §5 (each checked against llama_detokenize);
 *   - hand-built vocabularies for the partition, the loader's validation and byte fallback.
 * All comparisons are exact: token ids and bytes have no tolerance.
 */
#include "harness.h"
#include "tok_vocab.h"

#include <math.h>

#include "gguf.h"
#include "tokenizer.h"

/* ------------------------------------------------------------------ helpers */

typedef struct opened {
    mf_gguf *g;
    mf_tokenizer *t;
} opened;

static opened open_model(const char *file)
{
    const char *p = mf_model_path(file);
    MF_REQUIRE_FILE(p);
    opened o;
    mf_err err;
    o.g = mf_gguf_open(p, &err);
    if (!o.g) fail_msg("%s", err.msg);
    o.t = mf_tokenizer_load(o.g, &err);
    if (!o.t) fail_msg("%s", err.msg);
    return o;
}

static void close_model(opened o)
{
    mf_tokenizer_free(o.t);
    mf_gguf_close(o.g);
}

/* Tokenize and compare with an expected id list; on mismatch print both. */
static void expect_ids(const mf_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                       const int32_t *want, int64_t n_want)
{
    int32_t got[512];
    mf_err err;
    int64_t n = mf_tokenize(t, text, len, add_special, parse_special, got, 512, &err);
    if (n < 0) fail_msg("tokenize failed: %s", err.msg);
    int same = n == n_want;
    for (int64_t i = 0; same && i < n; i++) same = got[i] == want[i];
    if (!same) {
        char a[4096] = "", b[4096] = "";
        for (int64_t i = 0; i < n && i < 512; i++) snprintf(a + strlen(a), sizeof a - strlen(a), " %d", got[i]);
        for (int64_t i = 0; i < n_want; i++) snprintf(b + strlen(b), sizeof b - strlen(b), " %d", want[i]);
        fail_msg("text '%.*s' (add_special %d, parse_special %d)\n got: %s\nwant: %s", (int)len, text, add_special,
                 parse_special, a, b);
    }
}

#define EXPECT(t, text, add, parse, ...)                                                          \
    do {                                                                                          \
        static const int32_t want_[] = {__VA_ARGS__};                                             \
        expect_ids(t, text, sizeof(text) - 1, add, parse, want_, sizeof want_ / sizeof want_[0]); \
    } while (0)

/* ------------------------------------------------------------------ real vocabularies */

/* llama.cpp's vectors: inputs separated by "\n__ggml_vocab_test__\n", line k of .out holds
 * the ids of input k. Every one must match exactly. */
static void llama_spm_vectors(void **state)
{
    (void)state;
    const char *pin = mf_model_path("vocab-llama-spm.inp"), *pout = mf_model_path("vocab-llama-spm.out");
    MF_REQUIRE_FILE(pin);
    MF_REQUIRE_FILE(pout);
    opened m = open_model("vocab-llama-spm.gguf");
    assert_int_equal(mf_tok_n_vocab(m.t), 32000);
    size_t ni, no;
    char *inp = (char *)mf_read_file(pin, &ni), *out = (char *)mf_read_file(pout, &no);
    assert_non_null(inp);
    assert_non_null(out);
    const char *sep = "\n__ggml_vocab_test__\n";
    const char *p = inp, *end = inp + ni, *line = out, *oend = out + no;
    int count = 0;
    for (;;) {
        const char *q = memmem(p, (size_t)(end - p), sep, strlen(sep));
        if (!q) break;
        const char *nl = memchr(line, '\n', (size_t)(oend - line));
        assert_non_null(nl);
        int32_t want[1024];
        int64_t nw = 0;
        for (const char *s = line; s < nl;) {
            char *e;
            long v = strtol(s, &e, 10);
            if (e == s) break;
            want[nw++] = (int32_t)v;
            s = e;
        }
        expect_ids(m.t, p, (size_t)(q - p), 0, 0, want, nw);
        count++;
        p = q + strlen(sep);
        line = nl + 1;
    }
    assert_int_equal(count, 46); /* every vector of the file was compared */
    free(inp);
    free(out);
    close_model(m);
}

/* docs/tokenizer.md §7: llama-tokenize ids on stories260K (add_special = 1, parse_special = 1); all
 * but #13 also hold with parse_special = 0. */
static void stories_vectors(void **state)
{
    (void)state;
    opened m = open_model("stories260K.gguf");
    const mf_tokenizer *t = m.t;
    for (int parse = 0; parse <= 1; parse++) {
        EXPECT(t, "", 1, parse, 1);
        EXPECT(t, " ", 1, parse, 1, 410, 410);
        EXPECT(t, "  Hello world  ", 1, parse, 1, 410, 410, 346, 306, 414, 263, 304, 341, 410, 410);
        EXPECT(t, "a    b", 1, parse, 1, 261, 410, 410, 410, 268);
        EXPECT(t, "line one\nline two\n", 1, parse, 1, 278, 271, 411, 353, 411, 13, 421, 271, 411, 259, 424, 414, 13);
        EXPECT(t, "\tTabbed\ttext", 1, parse, 1, 410, 12, 434, 412, 430, 430, 266, 12, 413, 411, 444, 413);
        EXPECT(t, "1234567890 42", 1, parse, 1, 410, 475, 479, 472, 484, 480, 490, 491, 487, 483, 477, 410, 484, 479);
        EXPECT(t, "Hello, world! (yes?) \"quoted\" -- end.", 1, parse, 1, 346, 306, 414, 432, 263, 304, 341, 443, 410,
               489, 422, 406, 450, 488, 313, 456, 425, 309, 266, 436, 410, 464, 464, 344, 264, 426);
        EXPECT(t, "caf\xC3\xA9 na\xC3\xAFve \xC3\x84rger", 1, parse, 1, 280, 412, 431, 485, 297, 412, 198, 178, 360,
               410, 198, 135, 420, 428, 285);
        EXPECT(t, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88", 1,
               parse, 1, 410, 233, 154, 168, 233, 159, 175, 235, 173, 161, 230, 132, 177, 230, 134, 137, 230, 133, 176,
               230, 133, 188, 230, 134, 139);
        EXPECT(t, "I love \xF0\x9F\xA6\x99 and \xF0\x9F\x9A\x80!", 1, parse, 1, 359, 401, 360, 410, 243, 162, 169, 156,
               269, 410, 243, 162, 157, 131, 443);
        EXPECT(t, "Once upon a time, there was a little girl named Lily who loved to play outside in the sunshine.", 1,
               parse, 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 263, 415, 414, 401, 396,
               267, 337, 410, 408, 419, 292, 411, 322, 265, 262, 379, 419, 415, 271, 411, 426);
    }
    /* #13: a space is prefixed after each parsed special token, and the BOS is doubled */
    EXPECT(t, "<s>Hi</s> there", 1, 1, 1, 1, 320, 417, 2, 410, 383);
    EXPECT(t, "<s>Hi</s> there", 1, 0, 1, 410, 504, 419, 505, 440, 417, 504, 492, 419, 505, 383);
    close_model(m);
}

/* docs/tokenizer.md §3: "Hello world" -> ▁He | ll | o | ▁w | or | ld (the merge trace is in
 * docs/tokenizer.md), and the scores that drive it. */
static void stories_worked_example(void **state)
{
    (void)state;
    opened m = open_model("stories260K.gguf");
    EXPECT(m.t, "Hello world", 1, 0, 1, 346, 306, 414, 263, 304, 341);
    /* the candidates of the first merge round, with their vocabulary scores */
    static const struct {
        const char *text;
        float score;
    } cand[] = {{"\xE2\x96\x81w", -4},  {"or", -45}, {"ll", -47},
                {"\xE2\x96\x81H", -61}, {"ld", -82}, {"\xE2\x96\x81He", -87}};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
        int32_t id = mf_tok_find(m.t, cand[i].text);
        assert_true(id >= 0);
        assert_true(mf_tok_score(m.t, id) == cand[i].score); /* scores are small integers: exact */
    }
    assert_int_equal(mf_tok_find(m.t, "\xE2\x96\x81Hell"), -1); /* step 6: "▁Hell" is not a merge */
    /* the special ids and flags of the file: bos 1, eos 2, add_bos by default */
    assert_int_equal(mf_tok_bos(m.t), 1);
    assert_int_equal(mf_tok_eos(m.t), 2);
    assert_int_equal(mf_tok_add_bos(m.t), 1);
    assert_true(mf_tok_is_eog(m.t, 2));
    assert_false(mf_tok_is_eog(m.t, 1));
    assert_int_equal(mf_tok_type(m.t, 0), MF_TT_UNKNOWN);
    assert_int_equal(mf_tok_type(m.t, 3 + 0xE6), MF_TT_BYTE); /* byte b is id b + 3 */
    close_model(m);
}

static void expect_text(const mf_tokenizer *t, const int32_t *ids, size_t n, int remove_special, int render_special,
                        const char *want)
{
    char buf[256];
    size_t k = mf_detokenize(t, ids, n, remove_special, render_special, buf, sizeof buf);
    assert_true(k < sizeof buf);
    buf[k] = 0;
    assert_int_equal(k, strlen(want));
    assert_string_equal(buf, want);
}

/* docs/tokenizer.md §5, case by case (each checked against llama_detokenize) */
static void stories_decoding(void **state)
{
    (void)state;
    opened m = open_model("stories260K.gguf");
    const mf_tokenizer *t = m.t;
    int32_t a[] = {403, 407}, b[] = {1, 403, 407}, c[] = {410, 410, 346}, d[] = {1, 410, 233, 154, 168, 2};
    expect_text(t, a, 2, 0, 0, "Once upon");  /* first token is text: its space goes */
    expect_text(t, b, 3, 0, 0, " Once upon"); /* BOS first: nothing is stripped */
    expect_text(t, b, 3, 0, 1, "<s> Once upon");
    expect_text(t, b, 3, 1, 0, " Once upon");    /* BOS removed, the space kept */
    expect_text(t, c, 3, 0, 0, "  He");          /* only the first ▁ is stripped */
    expect_text(t, d, 6, 0, 0, " \xE6\x97\xA5"); /* byte tokens rebuild " 日" */
    expect_text(t, d, 6, 0, 1, "<s> \xE6\x97\xA5</s>");

    /* pieces: NORMAL with ▁ -> space, BYTE -> its byte, CONTROL/UNKNOWN only rendered */
    char p[16];
    assert_int_equal(mf_tok_piece(t, 346, 0, p, sizeof p), 3);
    assert_memory_equal(p, " He", 3);
    assert_int_equal(mf_tok_piece(t, 233, 0, p, sizeof p), 1);
    assert_int_equal((uint8_t)p[0], 0xE6);
    assert_int_equal(mf_tok_piece(t, 2, 0, p, sizeof p), 0);
    assert_int_equal(mf_tok_piece(t, 2, 1, p, sizeof p), 4);
    assert_memory_equal(p, "</s>", 4);
    assert_int_equal(mf_tok_piece(t, 0, 1, p, sizeof p), 5); /* <unk> */
    /* a too-small buffer: the full size comes back, only cap bytes are written */
    memset(p, 'x', sizeof p);
    assert_int_equal(mf_tok_piece(t, 346, 0, p, 2), 3);
    assert_memory_equal(p, " Hx", 3);
    assert_int_equal(mf_tok_piece(t, -1, 1, p, sizeof p), 0);
    assert_int_equal(mf_tok_piece(t, 512, 1, p, sizeof p), 0);
    close_model(m);
}

/* Encoding then decoding gives the text back (add_special = 0: the prefix space is
 * stripped again) for text of every kind, random bytes included: byte fallback covers
 * every byte and the decoder glues the bytes back. Two exceptions, kept out of the random
 * input: a literal U+2581 decodes as a space; and a space after a broken lead byte, since
 * symbols are cut by the lead byte alone (docs/tokenizer.md §3), so e.g. FB swallows the next
 * three bytes, the escaped space's E2 among them, and the ▁ comes back as raw bytes. */
static void stories_round_trip(void **state)
{
    (void)state;
    opened m = open_model("stories260K.gguf");
    static const char *const texts[] = {"Once upon a time",
                                        "  two  spaces ",
                                        "\ttabs\nand\r\nlines",
                                        "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\xA6\x99",
                                        "<s>Hi</s>",
                                        "x"};
    int32_t ids[4096];
    char back[4096];
    mf_err err;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int64_t n = mf_tokenize(m.t, texts[i], strlen(texts[i]), 0, 0, ids, 4096, &err);
        assert_true(n > 0);
        size_t k = mf_detokenize(m.t, ids, (size_t)n, 0, 0, back, sizeof back);
        assert_int_equal(k, strlen(texts[i]));
        assert_memory_equal(back, texts[i], k);
    }
    mf_rng r = {0x5eed};
    for (int it = 0; it < 200; it++) {
        char in[300];
        size_t n = 1 + mf_rng_u64(&r) % sizeof in;
        for (size_t j = 0; j < n; j++) {
            in[j] = (char)mf_rng_u64(&r);
            if ((uint8_t)in[j] == 0xE2 || in[j] == ' ') in[j] = 'e'; /* see above */
        }
        int64_t k = mf_tokenize(m.t, in, n, 0, 0, ids, 4096, &err);
        if (k < 0) fail_msg("%s", err.msg);
        for (int64_t j = 0; j < k; j++) assert_true(ids[j] >= 0 && ids[j] < 512);
        size_t nb = mf_detokenize(m.t, ids, (size_t)k, 0, 0, back, sizeof back);
        assert_int_equal(nb, n);
        assert_memory_equal(back, in, n);
    }
    close_model(m);
}

/* The count/cap contract: cap 0 sizes, a small cap stores a prefix. */
static void tokenize_cap(void **state)
{
    (void)state;
    opened m = open_model("stories260K.gguf");
    mf_err err;
    int64_t n = mf_tokenize(m.t, "Hello world", 11, 1, 0, NULL, 0, &err);
    assert_int_equal(n, 7);
    int32_t ids[8] = {-7, -7, -7, -7, -7, -7, -7, -7};
    assert_int_equal(mf_tokenize(m.t, "Hello world", 11, 1, 0, ids, 3, &err), 7);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[2], 306);
    assert_int_equal(ids[3], -7); /* nothing past cap */
    assert_int_equal(mf_tokenize(m.t, NULL, 3, 1, 0, ids, 8, &err), -1);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(mf_tokenize(m.t, "x", 1, 1, 0, ids, -1, &err), -1);
    close_model(m);
}

/* A long fragment goes through the heap in O(n log n): 200 000 letters, checked by the
 * round trip (no timing here). */
static void long_fragment(void **state)
{
    (void)state;
    opened m = open_model("stories260K.gguf");
    size_t n = 200000;
    char *s = malloc(n), *back = malloc(n);
    assert_non_null(s);
    assert_non_null(back);
    for (size_t i = 0; i < n; i++) s[i] = "the cat sat"[i % 11];
    mf_err err;
    int64_t k = mf_tokenize(m.t, s, n, 0, 0, NULL, 0, &err);
    assert_true(k > 0 && k < (int64_t)n);
    int32_t *ids = malloc((size_t)k * sizeof *ids);
    assert_non_null(ids);
    assert_int_equal(mf_tokenize(m.t, s, n, 0, 0, ids, k, &err), k);
    assert_int_equal(mf_detokenize(m.t, ids, (size_t)k, 0, 0, back, n), n);
    assert_memory_equal(back, s, n);
    free(ids);
    free(s);
    free(back);
    close_model(m);
}

/* ------------------------------------------------------------------ synthetic vocabularies */

/* <unk> <s> </s>, byte tokens, a few pieces */
static void base_vocab(tv_vocab *v, int with_bytes)
{
    tv_add(v, "<unk>", MF_TT_UNKNOWN);
    tv_add(v, "<s>", MF_TT_CONTROL);
    tv_add(v, "</s>", MF_TT_CONTROL);
    if (with_bytes)
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            tv_add(v, name, MF_TT_BYTE);
        }
    tv_add(v, "\xE2\x96\x81", MF_TT_NORMAL);
    tv_add(v, "a", MF_TT_NORMAL);
    tv_add(v, "b", MF_TT_NORMAL);
}

/* Special tokens: USER_DEFINED is matched without parse_special, CONTROL only with it;
 * longer texts are matched first; a space is prefixed after each parsed special. */
static void partition_rules(void **state)
{
    (void)state;
    tv_vocab v = {0};
    base_vocab(&v, 1);                                  /* ids: 0-2, bytes 3-258, ▁ 259, a 260, b 261 */
    int ud = tv_add(&v, "<x>", MF_TT_USER_DEFINED);     /* 262 */
    int udl = tv_add(&v, "<x><x>", MF_TT_USER_DEFINED); /* 263: longer, matched first */
    int ab = tv_add(&v,
                    "\xE2\x96\x81"
                    "a",
                    MF_TT_NORMAL); /* 264: "▁a" */
    mf_gguf *g;
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "llama", 1, NULL, NULL, &g, &err);
    if (!t) fail_msg("%s", err.msg);
    int32_t want1[] = {udl, ud, ab}; /* "<x><x><x>a": longest first, then ▁a after it */
    expect_ids(t, "<x><x><x>a", 10, 0, 0, want1, 3);
    int32_t want2[] = {1, ab, 2, 259, 261}; /* "<s>a</s>b": ▁ prefixed again, "▁b" is no token */
    expect_ids(t, "<s>a</s>b", 9, 0, 1, want2, 5);
    int32_t want3[] = {ab, 3 + '<', 3 + 's', 3 + '>'}; /* CONTROL not parsed: bytes */
    expect_ids(t, "a<s>", 4, 0, 0, want3, 4);
    /* pieces: USER_DEFINED always printed verbatim */
    char p[16];
    assert_int_equal(mf_tok_piece(t, ud, 0, p, sizeof p), 3);
    assert_memory_equal(p, "<x>", 3);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    tv_free(&v);
}

static void set_add_eos(mf_gguf_writer *w, void *user)
{
    (void)user;
    mf_gguf_w_bool(w, "tokenizer.ggml.add_eos_token", 1);
    mf_gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    mf_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 0xFFFFFFFFu); /* out of range: default kept */
}

/* add_eos_token / add_space_prefix keys, an out-of-range id keeps its default, and the
 * byte fallback without <0xXX> tokens uses the one-byte token, else fails cleanly. */
static void keys_and_fallback(void **state)
{
    (void)state;
    tv_vocab v = {0};
    base_vocab(&v, 0); /* 0-2, ▁ 3, a 4, b 5: no byte tokens */
    mf_gguf *g;
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "llama", 1, set_add_eos, NULL, &g, &err);
    if (!t) fail_msg("%s", err.msg);
    assert_int_equal(mf_tok_bos(t), 1);
    int32_t want[] = {1, 4, 5, 2}; /* no space prefix; "a" "b" from the one-byte tokens */
    expect_ids(t, "ab", 2, 1, 0, want, 4);
    int32_t ids[8];
    assert_int_equal(mf_tokenize(t, "az", 2, 0, 0, ids, 8, &err), -1);
    assert_non_null(strstr(err.msg, "0x7A"));
    /* detokenize with remove_special drops the added BOS and EOS */
    char out[16];
    assert_int_equal(mf_detokenize(t, want, 4, 1, 1, out, sizeof out), 2);
    assert_memory_equal(out, "ab", 2);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    tv_free(&v);
}

typedef struct bad_case {
    const char *what;
    void (*extra)(mf_gguf_writer *, void *);
} bad_case;

static void short_scores(mf_gguf_writer *w, void *u)
{
    (void)u;
    float s[2] = {0, 0};
    mf_gguf_w_arr(w, "tokenizer.ggml.scores", MF_GGUF_F32, s, 2);
}
static void scores_wrong_type(mf_gguf_writer *w, void *u)
{
    (void)u;
    int32_t s[6] = {0};
    mf_gguf_w_arr(w, "tokenizer.ggml.scores", MF_GGUF_I32, s, 6);
}
static void short_types(mf_gguf_writer *w, void *u)
{
    (void)u;
    int32_t s[3] = {1, 1, 1};
    mf_gguf_w_arr(w, "tokenizer.ggml.token_type", MF_GGUF_I32, s, 3);
}
static void bos_string(mf_gguf_writer *w, void *u)
{
    (void)u;
    mf_gguf_w_str(w, "tokenizer.ggml.bos_token_id", "1");
}
static void add_bos_int(mf_gguf_writer *w, void *u)
{
    (void)u;
    mf_gguf_w_u32(w, "tokenizer.ggml.add_bos_token", 1);
}

/* A bad vocabulary is an error with a message, never a crash. */
static void loader_rejects(void **state)
{
    (void)state;
    static const bad_case cases[] = {{"scores shorter than tokens", short_scores},
                                     {"scores of the wrong type", scores_wrong_type},
                                     {"token types shorter than tokens", short_types},
                                     {"a string token id", bos_string},
                                     {"an integer flag", add_bos_int}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tv_vocab v = {0};
        base_vocab(&v, 0);
        mf_gguf *g;
        mf_err err = {{0}};
        mf_tokenizer *t = tv_load(&v, "llama", cases[i].extra != short_types, cases[i].extra, NULL, &g, &err);
        if (t) fail_msg("accepted a vocabulary with %s", cases[i].what);
        assert_true(strlen(err.msg) > 0);
        tv_free(&v);
    }
    /* duplicate strings */
    tv_vocab v = {0};
    base_vocab(&v, 0);
    tv_add(&v, "a", MF_TT_NORMAL);
    mf_gguf *g;
    mf_err err;
    assert_null(tv_load(&v, "llama", 1, NULL, NULL, &g, &err));
    assert_non_null(strstr(err.msg, "duplicates"));
    /* an unknown model */
    assert_null(tv_load(&v, "bert", 1, NULL, NULL, &g, &err));
    assert_non_null(strstr(err.msg, "bert"));
    tv_free(&v);
    /* empty strings are allowed (never matched), even several of them */
    base_vocab(&v, 0);
    tv_add(&v, "", MF_TT_NORMAL);
    tv_add(&v, "", MF_TT_NORMAL);
    mf_tokenizer *t = tv_load(&v, "llama", 1, NULL, NULL, &g, &err);
    if (!t) fail_msg("%s", err.msg);
    int32_t want[] = {3, 4}; /* "a" -> ▁ a */
    expect_ids(t, "a", 1, 0, 0, want, 2);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    tv_free(&v);
}

/* scores for the random vocabularies: random, with NaN and infinities among them */
static void random_scores(mf_gguf_writer *w, void *user)
{
    mf_rng *r = user;
    float s[64];
    for (int i = 0; i < 64; i++) {
        uint64_t k = mf_rng_u64(r) % 10;
        s[i] = k == 0 ? NAN : k == 1 ? INFINITY : k == 2 ? -INFINITY : (float)(mf_rng_u64(r) % 7) - 3.0f;
    }
    mf_gguf_w_arr(w, "tokenizer.ggml.scores", MF_GGUF_F32, s, 64);
}

/* Random small vocabularies (random strings, types out of range, NaN scores) and random
 * input bytes: load either fails with a message or gives a tokenizer whose output ids are
 * all in range. Run under ASan in the sanitizer build. */
static void random_vocabularies(void **state)
{
    (void)state;
    mf_rng r = {0xf00d};
    for (int it = 0; it < 150; it++) {
        tv_vocab v = {0};
        int n = 1 + (int)(mf_rng_u64(&r) % 40);
        for (int i = 0; i < n; i++) {
            char s[6];
            size_t len = mf_rng_u64(&r) % 5;
            for (size_t j = 0; j < len; j++) s[j] = "ab<>s/\xE2\x96\x81\xC3\xA9 "[mf_rng_u64(&r) % 12];
            tv_add_n(&v, s, len, (int32_t)(mf_rng_u64(&r) % 9) - 1);
        }
        mf_gguf *g;
        mf_err err = {{0}};
        mf_tokenizer *t = tv_load(&v, "llama", 1, random_scores, &r, &g, &err);
        if (!t) {
            assert_true(strlen(err.msg) > 0);
            tv_free(&v);
            continue;
        }
        for (int k = 0; k < 10; k++) {
            char in[64];
            size_t len = mf_rng_u64(&r) % sizeof in;
            for (size_t j = 0; j < len; j++) in[j] = (char)mf_rng_u64(&r);
            int32_t ids[1024];
            int64_t m = mf_tokenize(t, in, len, 1, (int)(k & 1), ids, 1024, &err);
            for (int64_t j = 0; j < m && j < 1024; j++) assert_true(ids[j] >= 0 && ids[j] < n);
            char out[4096];
            if (m > 0) mf_detokenize(t, ids, (size_t)(m < 1024 ? m : 1024), 1, 1, out, sizeof out);
        }
        mf_tokenizer_free(t);
        mf_gguf_close(g);
        tv_free(&v);
    }
}

/* ------------------------------------------------------------------ UTF-8 streaming helper */

static void utf8_complete(void **state)
{
    (void)state;
    /* "日" = E6 97 A5: each proper prefix is held back, the whole character is not */
    assert_int_equal(mf_utf8_complete("ab\xE6", 3), 2);
    assert_int_equal(mf_utf8_complete("ab\xE6\x97", 4), 2);
    assert_int_equal(mf_utf8_complete("ab\xE6\x97\xA5", 5), 5);
    assert_int_equal(mf_utf8_complete("\xF0\x9F\xA6", 3), 0); /* 3 of the 4 bytes of 🦙 */
    assert_int_equal(mf_utf8_complete("\xF0\x9F\xA6\x99", 4), 4);
    assert_int_equal(mf_utf8_complete("\xC3", 1), 0); /* first byte of é */
    /* invalid bytes never complete, so they are not held back */
    assert_int_equal(mf_utf8_complete("a\x80", 2), 2); /* stray continuation */
    assert_int_equal(mf_utf8_complete("a\xFF", 2), 2);
    assert_int_equal(mf_utf8_complete("a\xC0", 2), 2);     /* overlong lead */
    assert_int_equal(mf_utf8_complete("a\xE0\x80", 3), 3); /* E0 needs A0..BF next */
    assert_int_equal(mf_utf8_complete("a\xED\xA0", 3), 3); /* surrogate */
    assert_int_equal(mf_utf8_complete("a\xF4\x90", 3), 3); /* above U+10FFFF */
    assert_int_equal(mf_utf8_complete("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(llama_spm_vectors),      cmocka_unit_test(stories_vectors),
        cmocka_unit_test(stories_worked_example), cmocka_unit_test(stories_decoding),
        cmocka_unit_test(stories_round_trip),     cmocka_unit_test(tokenize_cap),
        cmocka_unit_test(long_fragment),          cmocka_unit_test(partition_rules),
        cmocka_unit_test(keys_and_fallback),      cmocka_unit_test(loader_rejects),
        cmocka_unit_test(random_vocabularies),    cmocka_unit_test(utf8_complete),
    };
    return MF_RUN("tokenizer_spm", tests);
}
