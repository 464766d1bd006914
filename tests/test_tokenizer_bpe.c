/* test_tokenizer_bpe.c — byte-level BPE and the o200k pre-tokenizer (docs/tokenizer.md §4).
 *
 * The real o200k vocabulary is not available here, so the ids tiktoken and llama.cpp give
 * (e.g. "2 + 2 = 4." -> 17 659 220 17 314 220 19 13) cannot be checked; instead:
 *   - splits: a synthetic vocabulary holding the 256 byte tokens plus every expected piece
 *     as one token, so the ids reveal where the text was cut. Each expected split is
 *     stated by hand below, per alternative of the pattern (each was also confirmed with
 *     the `regex` module's backtracking engine);
 *   - tests/golden/o200k_split.txt: 600 random strings cut by that regex engine
 *     (tools/gen_o200k_golden.py), compared with the C pre-tokenizer cut for cut;
 *   - merge order, ties and the whole-piece rule on tiny hand-made vocabularies;
 *   - special tokens and the harmony rules on a synthetic harmony vocabulary;
 *   - decoding: the inverse byte map for all 256 bytes, partial UTF-8, round trips.
 * Everything compared is exact (ids, bytes, offsets).
 */
#include "harness.h"
#include "tok_vocab.h"

#include "gguf.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "unicode.h"

/* ------------------------------------------------------------------ helpers */

static void expect_ids(const mf_tokenizer *t, const char *text, size_t len, int parse_special, const int32_t *want,
                       int64_t n_want)
{
    int32_t got[256];
    mf_err err;
    int64_t n = mf_tokenize(t, text, len, 0, parse_special, got, 256, &err);
    if (n < 0) fail_msg("tokenize failed: %s", err.msg);
    int same = n == n_want;
    for (int64_t i = 0; same && i < n; i++) same = got[i] == want[i];
    if (!same) {
        char a[2048] = "", b[2048] = "";
        for (int64_t i = 0; i < n && i < 256; i++) snprintf(a + strlen(a), sizeof a - strlen(a), " %d", got[i]);
        for (int64_t i = 0; i < n_want; i++) snprintf(b + strlen(b), sizeof b - strlen(b), " %d", want[i]);
        fail_msg("text '%.*s'\n got: %s\nwant: %s", (int)len, text, a, b);
    }
}

static int32_t id_of(const mf_tokenizer *t, const char *raw)
{
    char m[256];
    tv_map(raw, strlen(raw), m);
    return mf_tok_find(t, m);
}

/* ------------------------------------------------------------------ splits by hand */

#define MAXP 10
typedef struct split_case {
    const char *pieces[MAXP];
} split_case;

/* Each row: the pieces, in order; the text is their concatenation. */
static const split_case cases[] = {
    /* A1/A2 contractions: 's 't 're 've 'm 'll 'd, any case, after a lower- or upper-case word */
    {{"it's", " we've", " they're", " I'll", " you'd", " I'm"}},
    {{"IT'S", " DON'T", " WE'LL"}},
    {{"Bob'S", " dog'D"}},
    {{"it's", "x"}},           /* the contraction ends the piece */
    {{" '", "re"}},            /* no word before it: A4 takes " '" */
    {{"we're", "ady"}},        /* "'re" is taken greedily from "'ready" */
    {{"it'\xC5\xBF"}},         /* 's also matches U+017F ſ (Unicode case folding) */
    {{"rock", "'n", "'roll"}}, /* "'n" is no contraction: "'" prefixes the next word */
    /* A3: numbers in groups of up to three, never with a leading space */
    {{"123", "456", "7"}},
    {{" ", "202", "5"}}, /* a single space before a digit is its own piece (A7) */
    {{" ", " ", "42"}},  /* A6 leaves one space, then A7 */
    {{"3", ".", "14"}},
    {{"x", "12"}},
    {{"\xD9\xA1\xD9\xA2\xD9\xA3", "\xD9\xA4"}}, /* Arabic-Indic digits are \p{N} */
    {{"\xC2\xBD\xC2\xB2"}},                     /* ½² (No) */
    /* A4: punctuation runs, an optional leading space, trailing \r \n */
    {{"Hello", "!!!"}},
    {{"foo", "...", " bar"}},
    {{" ---\n\n", "x"}},
    {{"a", "/b"}}, /* one non-letter prefixes a word (A1) */
    {{"http", "://", "x", ".y", "/z"}},
    {{"x", "?!\r\n", "y"}},
    {{"(yes", ")"}},
    /* A5-A7: whitespace */
    {{"a", "  ", " b"}}, /* the run's last space goes to the word */
    {{"end", "  "}},     /* at the end of the text the whole run */
    {{"a", "\r\n", "b"}},
    {{"a", "\r\n\r\n", " ", " b"}}, /* A5 stops after the last newline */
    {{"x", " \r\n", " y"}},
    {{"a", "\n\n", "\tb"}}, /* a tab can prefix a word */
    {{"a", "\xC2\xA0"
           "b"}}, /* U+00A0 is \s and a prefix */
    {{"a", "\xE3\x80\x80",
      "\xE3\x80\x80"
      "b"}}, /* U+3000 ideographic spaces */
    {{"\t\t"}},
    /* CJK (Lo is both "upper" and "lower") */
    {{"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88"}},
    {{"\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8"
      "apple"
      "\xE5\xB7\xA5\xE4\xBD\x9C"}}, /* 我想在apple工作 */
    {{"\xE6\x97\xA5\xE6\x9C\xAC", " \xE8\xAA\x9E"}},
    /* emoji are symbols (A4) */
    {{"I", " love", " \xF0\x9F\xA6\x99", " and", " \xF0\x9F\x9A\x80!"}},
    {{"\xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F", " ok"}}, /* ZWJ sequence + VS16 */
    /* accented letters and combining marks (M is both "upper" and "lower") */
    {{"caf\xC3\xA9", " \xC3\x84rger"}},
    {{"e\xCC\x81te\xCC\x81", " cafe\xCC\x81", " n\xCC\x83o"}}, /* decomposed été café ño stay whole */
    {{"\xCC\x81"
      "a"}}, /* a leading mark is the prefix */
    {{"x", " \xCC\x81"}},
    /* camelCase, ALLCAPS, titlecase */
    {{"camel", "Case", " get", "HTTPResponse", " i", "Phone"}},
    {{"ALLCAPS", " NASA's", " HELLO", " world"}},
    {{"Mc", "Donald"}},
    {{"\xC7\x85"
      "emal"}}, /* U+01C5 (Lt) starts a word */
    /* mixed */
    {{"Hello", ",", " world", "!"}},
    {{"2", " +", " ", "2", " =", " ", "4", "."}}, /* the "2 + 2 = 4." split of o200k */
};

static void hand_splits(void **state)
{
    (void)state;
    tv_vocab v = {0};
    tv_byte_tokens(&v);
    /* every multi-byte piece becomes a token (once) */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int k = 0; k < MAXP && cases[c].pieces[k]; k++) {
            const char *p = cases[c].pieces[k];
            char m[256];
            tv_map(p, strlen(p), m);
            int dup = 0;
            for (int i = 0; i < v.n && !dup; i++) dup = !strcmp(v.tok[i], m);
            if (!dup && strlen(p) > 1) tv_add_n(&v, m, strlen(m), MF_TT_NORMAL);
        }
    mf_gguf *g;
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "gpt2", 1, NULL, NULL, &g, &err);
    if (!t) fail_msg("%s", err.msg);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char text[256] = "";
        int32_t want[MAXP];
        int n = 0;
        for (; n < MAXP && cases[c].pieces[n]; n++) {
            strcat(text, cases[c].pieces[n]);
            want[n] = id_of(t, cases[c].pieces[n]);
            assert_true(want[n] >= 0);
        }
        expect_ids(t, text, strlen(text), 0, want, n);
    }
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    tv_free(&v);
}

/* ------------------------------------------------------------------ splits vs a regex engine */

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static void golden_splits(void **state)
{
    (void)state;
    const char *path = MF_SOURCE_DIR "/tests/golden/o200k_split.txt";
    size_t len;
    char *data = (char *)mf_read_file(path, &len);
    if (!data) fail_msg("cannot read %s", path);
    int lines = 0;
    for (char *p = data, *end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        char *tab = memchr(p, '\t', (size_t)(nl - p));
        assert_non_null(tab);
        uint8_t s[256];
        size_t n = (size_t)(tab - p) / 2;
        assert_true(n <= sizeof s);
        for (size_t i = 0; i < n; i++) s[i] = (uint8_t)(hexval(p[2 * i]) * 16 + hexval(p[2 * i + 1]));
        char *q = tab + 1;
        size_t pos = 0;
        while (q < nl) {
            char *e;
            size_t want = strtoul(q, &e, 10);
            assert_true(e > q);
            size_t got = mf_o200k_next(s, n, pos);
            if (got != want)
                fail_msg("line %d: piece at byte %zu ends at %zu, regex says %zu", lines + 1, pos, got, want);
            pos = got;
            q = e;
        }
        assert_int_equal(pos, n);
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, 600);
    free(data);
}

/* The generated class table against facts of the Unicode standard. */
static void unicode_classes(void **state)
{
    (void)state;
    assert_int_equal(mf_unicode_class('A'), MF_UC_LU);
    assert_int_equal(mf_unicode_class('z'), MF_UC_LL);
    assert_int_equal(mf_unicode_class(0x01C5), MF_UC_LT); /* ǅ */
    assert_int_equal(mf_unicode_class(0x02B0), MF_UC_LM); /* ʰ */
    assert_int_equal(mf_unicode_class(0x65E5), MF_UC_LO); /* 日 */
    assert_int_equal(mf_unicode_class(0x00AA), MF_UC_LO); /* ª: Lo since Unicode 6.1 */
    assert_int_equal(mf_unicode_class(0x0301), MF_UC_M);
    assert_int_equal(mf_unicode_class(0x0903), MF_UC_M);  /* Mc */
    assert_int_equal(mf_unicode_class(0xE0100), MF_UC_M); /* variation selector 17 */
    assert_int_equal(mf_unicode_class('7'), MF_UC_N);
    assert_int_equal(mf_unicode_class(0x00BD), MF_UC_N); /* ½ No */
    assert_int_equal(mf_unicode_class(0x216B), MF_UC_N); /* Ⅻ Nl */
    static const uint32_t ws[] = {0x09,   0x0A,   0x0B,   0x0C,   0x0D,   0x20,   0x85,   0xA0,
                                  0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) assert_int_equal(mf_unicode_class(ws[i]), MF_UC_WS);
    static const uint32_t none[] = {'!', 0x1C, 0x1F, 0x200B, 0x180E, 0xFEFF, 0x1F999, 0xD800, 0x10FFFF, 0x110000};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) assert_int_equal(mf_unicode_class(none[i]), 0);
}

/* Invalid UTF-8 never stops the pre-tokenizer: pieces still tile the input, every byte in
 * exactly one piece, whatever the bytes. */
static void split_any_bytes(void **state)
{
    (void)state;
    mf_rng r = {77};
    for (int it = 0; it < 2000; it++) {
        uint8_t s[64];
        size_t n = 1 + mf_rng_u64(&r) % sizeof s;
        for (size_t i = 0; i < n; i++) s[i] = (uint8_t)mf_rng_u64(&r);
        for (size_t pos = 0; pos < n;) {
            size_t e = mf_o200k_next(s, n, pos);
            assert_true(e > pos && e <= n);
            pos = e;
        }
    }
}

/* ------------------------------------------------------------------ merges */

static mf_tokenizer *merge_vocab(const char *const *extra, const char *const *merges, mf_gguf **g)
{
    tv_vocab v = {0};
    tv_byte_tokens(&v);
    for (; *extra; extra++) tv_add(&v, *extra, MF_TT_NORMAL);
    for (; *merges; merges++) tv_merge(&v, *merges);
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "gpt2", 1, NULL, NULL, g, &err);
    if (!t) fail_msg("%s", err.msg);
    tv_free(&v);
    return t;
}

static void merge_order(void **state)
{
    (void)state;
    mf_gguf *g;
    /* the lowest rank wins wherever it is: "b c" (rank 0) before "a b" (rank 1) */
    static const char *const tok1[] = {"ab", "bc", "cd", NULL}, *const m1[] = {"b c", "a b", "c d", NULL};
    mf_tokenizer *t = merge_vocab(tok1, m1, &g);
    int32_t w1[] = {'a', 256 + 1, 'd'}; /* a | bc | d: no merge joins a with bc */
    expect_ids(t, "abcd", 4, 0, w1, 3);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    /* same tokens, other order: ab first, then cd */
    static const char *const m2[] = {"a b", "b c", "c d", NULL};
    t = merge_vocab(tok1, m2, &g);
    int32_t w2[] = {256, 256 + 2};
    expect_ids(t, "abcd", 4, 0, w2, 2);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    /* ties go to the leftmost pair: aaa -> aa | a, aaaaa -> aaaa | a */
    static const char *const tok3[] = {"aa", "aaaa", NULL}, *const m3[] = {"a a", "aa aa", NULL};
    t = merge_vocab(tok3, m3, &g);
    int32_t w3[] = {256, 'a'}, w5[] = {257, 'a'};
    expect_ids(t, "aaa", 3, 0, w3, 2);
    expect_ids(t, "aaaaa", 5, 0, w5, 2);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    /* a piece that is an ordinary token is that token, even if the merges would not make
     * it (tiktoken's rule); a longer piece goes through the merges */
    static const char *const tok4[] = {"bc", "abc", NULL}, *const m4[] = {"b c", NULL};
    t = merge_vocab(tok4, m4, &g);
    int32_t w4[] = {257}, w6[] = {'a', 256, 'a', 256};
    expect_ids(t, "abc", 3, 0, w4, 1);
    expect_ids(t, "abcabc", 6, 0, w6, 4);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
}

/* One piece of 2^20 letters (a single A1 match): the heap keeps it O(n log n). With
 * "a a" then "aa aa" every 4 letters become one token. */
static void huge_piece(void **state)
{
    (void)state;
    mf_gguf *g;
    static const char *const tok[] = {"aa", "aaaa", NULL}, *const m[] = {"a a", "aa aa", NULL};
    mf_tokenizer *t = merge_vocab(tok, m, &g);
    size_t n = (size_t)1 << 20;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'a', n);
    mf_err err;
    int32_t *ids = malloc((n / 4) * sizeof *ids);
    assert_non_null(ids);
    assert_int_equal(mf_tokenize(t, s, n, 0, 0, ids, (int64_t)(n / 4), &err), (int64_t)(n / 4));
    for (size_t i = 0; i < n / 4; i++)
        if (ids[i] != 257) fail_msg("id %d at %zu", ids[i], i);
    free(ids);
    free(s);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
}

/* ------------------------------------------------------------------ loader */

static void loader_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *tok, *merge, *pre;
        int omit;
        const char *msg;
    } bad[] = {
        {"ab", "a x", NULL, 0, "not a token"}, /* "ax" is not a token */
        {"ab", "q b", NULL, 0, "not a token"}, /* fine, but see the next */
        {"ab", "ab", NULL, 0, "separated by a space"},
        {"ab", " a", NULL, 0, "separated by a space"},   /* the space must be at index >= 1 */
        {"ab", "a b", NULL, 1, "tokenizer.ggml.merges"}, /* merges missing */
        {"ab", "a b", "llama-bpe", 0, "llama-bpe"},      /* another pre-tokenizer */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tv_vocab v = {0};
        for (int b = 0; b < 256; b++)
            if (b != 'q') {
                char c = (char)b;
                tv_add_mapped(&v, &c, 1, MF_TT_NORMAL);
            }
        tv_add(&v, bad[i].tok, MF_TT_NORMAL);
        tv_merge(&v, bad[i].merge);
        v.pre = bad[i].pre;
        v.omit_merges = bad[i].omit;
        mf_gguf *g;
        mf_err err = {{0}};
        mf_tokenizer *t = tv_load(&v, "gpt2", 1, NULL, NULL, &g, &err);
        if (t) fail_msg("case %zu: accepted", i);
        if (!strstr(err.msg, bad[i].msg)) fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, bad[i].msg);
        tv_free(&v);
    }
}

/* A vocabulary without some byte token: encoding that byte is an error, not a crash. */
static void missing_byte(void **state)
{
    (void)state;
    tv_vocab v = {0};
    for (int b = 'a'; b <= 'z'; b++) {
        char c = (char)b;
        tv_add_mapped(&v, &c, 1, MF_TT_NORMAL);
    }
    mf_gguf *g;
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "gpt2", 1, NULL, NULL, &g, &err);
    if (!t) fail_msg("%s", err.msg);
    int32_t ids[8];
    assert_int_equal(mf_tokenize(t, "ab", 2, 0, 0, ids, 8, &err), 2);
    assert_int_equal(mf_tokenize(t, "a!", 2, 0, 0, ids, 8, &err), -1);
    assert_non_null(strstr(err.msg, "0x21"));
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    tv_free(&v);
}

/* ------------------------------------------------------------------ special tokens, harmony */

static void harmony_specials(void **state)
{
    (void)state;
    tv_harmony h;
    mf_gguf *g;
    mf_tokenizer *t = tv_harmony_vocab(&h, &g);
    /* forced to USER_DEFINED at load; the others stay CONTROL */
    assert_int_equal(mf_tok_type(t, h.start), MF_TT_USER_DEFINED);
    assert_int_equal(mf_tok_type(t, h.chan), MF_TT_USER_DEFINED);
    assert_int_equal(mf_tok_type(t, h.msg), MF_TT_USER_DEFINED);
    assert_int_equal(mf_tok_type(t, h.end), MF_TT_USER_DEFINED);
    assert_int_equal(mf_tok_type(t, h.con), MF_TT_USER_DEFINED);
    assert_int_equal(mf_tok_type(t, h.ret), MF_TT_CONTROL);
    assert_int_equal(mf_tok_type(t, h.eot), MF_TT_CONTROL);
    /* end of generation: <|return|> (also EOS), <|call|>, <|endoftext|>; not <|end|> */
    assert_true(mf_tok_is_eog(t, h.ret));
    assert_true(mf_tok_is_eog(t, h.call));
    assert_true(mf_tok_is_eog(t, h.eot));
    assert_false(mf_tok_is_eog(t, h.end));
    assert_false(mf_tok_is_eog(t, h.start));
    /* no BOS is added, although the file names one */
    assert_int_equal(mf_tok_bos(t), h.sot);
    assert_int_equal(mf_tok_add_bos(t), 0);
    int32_t w1[] = {h.start, 'u', 's', 'e', 'r', h.msg, 'H', 'i', h.end};
    expect_ids(t, "<|start|>user<|message|>Hi<|end|>", 33, 0, w1, 9); /* USER_DEFINED: always */
    int32_t ids[32];
    mf_err err;
    assert_int_equal(mf_tokenize(t, "<|start|>", 9, 1, 1, ids, 32, &err), 1); /* add_special: still no BOS */
    int32_t w2[] = {h.ret};
    expect_ids(t, "<|return|>", 10, 1, w2, 1);
    int64_t n = mf_tokenize(t, "<|return|>", 10, 0, 0, ids, 32, &err); /* CONTROL, not parsed: text */
    assert_int_equal(n, 10);
    for (int64_t i = 0; i < n; i++) assert_true(ids[i] < 256);
    /* pieces */
    char p[32];
    assert_int_equal(mf_tok_piece(t, h.start, 0, p, sizeof p), 9);
    assert_memory_equal(p, "<|start|>", 9);
    assert_int_equal(mf_tok_piece(t, h.ret, 0, p, sizeof p), 0);
    assert_int_equal(mf_tok_piece(t, h.ret, 1, p, sizeof p), 10);
    assert_int_equal(mf_tok_piece(t, h.pad, 1, p, sizeof p), 0); /* UNUSED: nothing */
    /* detokenize: no space handling for BPE */
    int32_t seq[] = {' ', 'a', h.start};
    assert_int_equal(mf_detokenize(t, seq, 3, 0, 0, p, sizeof p), 11);
    assert_memory_equal(p, " a<|start|>", 11);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
}

static void add_bos_true(mf_gguf_writer *w, void *user)
{
    (void)user;
    mf_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 256);
    mf_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
}

/* add_bos_token is honoured when present; <|end|> of a vocabulary that is not harmony's
 * keeps its type. */
static void bos_key_and_plain_vocab(void **state)
{
    (void)state;
    tv_vocab v = {0};
    tv_byte_tokens(&v);
    tv_add(&v, "<|endoftext|>", MF_TT_CONTROL); /* 256 */
    int end = tv_add(&v, "<|end|>", MF_TT_CONTROL);
    mf_gguf *g;
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "gpt2", 1, add_bos_true, NULL, &g, &err);
    if (!t) fail_msg("%s", err.msg);
    int32_t ids[4];
    assert_int_equal(mf_tokenize(t, "x", 1, 1, 0, ids, 4, &err), 2);
    assert_int_equal(ids[0], 256);
    assert_int_equal(ids[1], 'x');
    assert_int_equal(mf_tok_type(t, end), MF_TT_CONTROL);
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    tv_free(&v);
}

/* ------------------------------------------------------------------ decoding */

static void decoding(void **state)
{
    (void)state;
    tv_vocab v = {0};
    tv_byte_tokens(&v);
    int hello = tv_add_mapped(&v, " hello", 6, MF_TT_NORMAL);
    mf_gguf *g;
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "gpt2", 1, NULL, NULL, &g, &err);
    if (!t) fail_msg("%s", err.msg);
    /* the inverse byte map, for every byte */
    for (int b = 0; b < 256; b++) {
        char p[4];
        assert_int_equal(mf_tok_piece(t, b, 0, p, sizeof p), 1);
        assert_int_equal((uint8_t)p[0], b);
    }
    char p[16];
    assert_int_equal(mf_tok_piece(t, hello, 0, p, sizeof p), 6); /* "Ġhello" */
    assert_memory_equal(p, " hello", 6);
    /* "日" = E6 97 A5 arrives as three one-byte pieces: a streaming printer holds the
     * first two back */
    int32_t ids[8];
    assert_int_equal(mf_tokenize(t, "\xE6\x97\xA5", 3, 0, 0, ids, 8, &err), 3);
    char buf[8];
    size_t n = 0;
    static const size_t printable[] = {0, 0, 3};
    for (int i = 0; i < 3; i++) {
        n += mf_tok_piece(t, ids[i], 0, buf + n, sizeof buf - n);
        assert_int_equal(mf_utf8_complete(buf, n), printable[i]);
    }
    assert_memory_equal(buf, "\xE6\x97\xA5", 3);
    /* any bytes round-trip */
    mf_rng r = {4242};
    for (int it = 0; it < 300; it++) {
        char in[200], back[200];
        int32_t out[200];
        size_t len = 1 + mf_rng_u64(&r) % sizeof in;
        for (size_t i = 0; i < len; i++) in[i] = (char)mf_rng_u64(&r);
        int64_t k = mf_tokenize(t, in, len, 0, 0, out, 200, &err);
        assert_true(k > 0 && k <= (int64_t)len);
        assert_int_equal(mf_detokenize(t, out, (size_t)k, 0, 0, back, sizeof back), len);
        assert_memory_equal(back, in, len);
    }
    mf_tokenizer_free(t);
    mf_gguf_close(g);
    tv_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_splits),      cmocka_unit_test(golden_splits),
        cmocka_unit_test(unicode_classes),  cmocka_unit_test(split_any_bytes),
        cmocka_unit_test(merge_order),      cmocka_unit_test(huge_piece),
        cmocka_unit_test(loader_rejects),   cmocka_unit_test(missing_byte),
        cmocka_unit_test(harmony_specials), cmocka_unit_test(bos_key_and_plain_vocab),
        cmocka_unit_test(decoding),
    };
    return MF_RUN("tokenizer_bpe", tests);
}
