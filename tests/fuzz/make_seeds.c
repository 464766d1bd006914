/* make_seeds.c — writes the seeds of the fuzzers: small valid GGUF files for fuzz_gguf
 * (tests/fuzz/corpus), and inputs in the layouts fuzz_sampler.c, fuzz_chat.c and fuzz_generate.c
 * describe (tests/fuzz/corpus-sampler, tests/fuzz/corpus-chat, tests/fuzz/corpus-generate).
 *
 *   fuzz_make_seeds GGUF_DIR [SAMPLER_DIR CHAT_DIR [GENERATE_DIR]]
 *
 * Each seed is a few KB so that libFuzzer's mutations reach every part of it within -max_len:
 *   seed-tiny-llama.bin  llama hyperparameters, an SPM vocabulary (scores, types, byte tokens),
 *                         a chat template with quotes and newlines, a few F16/F32 tensors
 *   seed-tiny-bpe.bin    a gpt2/BPE vocabulary with merges and control tokens, no tensors
 * These two end with a text after the last tensor (trailing bytes are valid GGUF), which
 * fuzz_gguf.c gives to the tokenizer, so the fuzzer mutates tokenizer input as well.
 *   seed-types.bin       one tensor of every type id the format defines
 *   seed-all-kv.bin      every metadata value type, arrays of each, general.alignment 64
 * The seeds are committed (named .bin: .gitignore keeps *.gguf model files out of git); this
 * program documents how they were made and remakes them.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "types.h"

static int fill_pattern(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err)
{
    (void)user;
    (void)err;
    /* small finite values for the float types; any bytes would do for the fuzzer */
    uint8_t *b = buf;
    for (uint64_t i = 0; i < t->nbytes; i++) b[i] = (uint8_t)((i * 13 + index) & 0x3f);
    return 0;
}

static int finish(mf_gguf_writer *w, const char *dir, const char *name)
{
    char path[4096];
    mf_err err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = mf_gguf_w_write(w, path, fill_pattern, NULL, &err);
    if (rc) fprintf(stderr, "fuzz_make_seeds: %s\n", err.msg);
    mf_gguf_writer_free(w);
    return rc;
}

/* append text after the end of a written file */
static int append(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "ab");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) {
        fprintf(stderr, "fuzz_make_seeds: cannot append to %s\n", path);
        return -1;
    }
    return 0;
}

static int tiny_llama(const char *dir)
{
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_err err;
    mf_gguf_w_str(w, "general.architecture", "llama");
    mf_gguf_w_str(w, "general.name", "seed \"tiny\" llama");
    mf_gguf_w_u32(w, "llama.context_length", 64);
    mf_gguf_w_u32(w, "llama.embedding_length", 32);
    mf_gguf_w_u32(w, "llama.block_count", 1);
    mf_gguf_w_u32(w, "llama.feed_forward_length", 64);
    mf_gguf_w_u32(w, "llama.attention.head_count", 4);
    mf_gguf_w_u32(w, "llama.attention.head_count_kv", 2);
    mf_gguf_w_u32(w, "llama.rope.dimension_count", 8);
    mf_gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    mf_gguf_w_str(w, "tokenizer.ggml.model", "llama");
    const char *toks[] = {"<unk>",         "<s>",  "</s>", "<0x0A>", "<0x20>", "<0xE2>", "\xe2\x96\x81",
                          "\xe2\x96\x81H", "H",    "e",    "l",      "o",      "ll",     "\xe2\x96\x81Hello",
                          "\xe2\x96\x81w", "orld", "1",    "2",      "3"};
    enum { NT = sizeof toks / sizeof toks[0] };
    float scores[NT];
    int32_t types[NT];
    for (int i = 0; i < NT; i++) {
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 6 ? 6 : 1;
    }
    mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, NT);
    mf_gguf_w_arr(w, "tokenizer.ggml.scores", MF_GGUF_F32, scores, NT);
    mf_gguf_w_arr(w, "tokenizer.ggml.token_type", MF_GGUF_I32, types, NT);
    mf_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    mf_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
    mf_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2);
    mf_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
    mf_gguf_w_str(w, "tokenizer.chat_template",
                  "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m[\"content\"] }}</s>\n{% endfor %}");
    const int64_t emb[2] = {32, NT}, vec[1] = {32}, q[2] = {32, 32}, kv[2] = {32, 16};
    int bad = mf_gguf_w_tensor(w, "token_embd.weight", MF_TYPE_F16, 2, emb, NULL, &err) < 0 ||
              mf_gguf_w_tensor(w, "output_norm.weight", MF_TYPE_F32, 1, vec, NULL, &err) < 0 ||
              mf_gguf_w_tensor(w, "blk.0.attn_q.weight", MF_TYPE_Q8_0, 2, q, NULL, &err) < 0 ||
              mf_gguf_w_tensor(w, "blk.0.attn_k.weight", MF_TYPE_Q4_0, 2, kv, NULL, &err) < 0;
    if (bad) {
        fprintf(stderr, "fuzz_make_seeds: %s\n", err.msg);
        mf_gguf_writer_free(w);
        return -1;
    }
    if (finish(w, dir, "seed-tiny-llama.bin")) return -1;
    return append(dir, "seed-tiny-llama.bin", "Hello world\n 123 <s>ll</s> \xe2\x96\x81 \xc3\xa9\xff");
}

static int tiny_bpe(const char *dir)
{
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_gguf_w_str(w, "general.architecture", "gpt-oss");
    mf_gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    mf_gguf_w_str(w, "tokenizer.ggml.pre", "gpt-4o");
    /* GPT-2 byte map: 'Ġ' (U+0120) is the space byte */
    const char *toks[] = {"H",
                          "e",
                          "l",
                          "o",
                          "w",
                          "r",
                          "d",
                          "\xc4\xa0",
                          "1",
                          "2",
                          "He",
                          "ll",
                          "llo",
                          "Hello",
                          "\xc4\xa0w",
                          "or",
                          "\xc4\xa0wor",
                          "ld",
                          "<|endoftext|>",
                          "<|start|>",
                          "<|end|>",
                          "<|return|>"};
    enum { NT = sizeof toks / sizeof toks[0] };
    int32_t types[NT];
    for (int i = 0; i < NT; i++) types[i] = i >= 18 ? 3 : 1;
    const char *merges[] = {"H e", "l l", "ll o", "He llo", "\xc4\xa0 w", "o r", "\xc4\xa0w or", "l d"};
    mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, NT);
    mf_gguf_w_arr(w, "tokenizer.ggml.token_type", MF_GGUF_I32, types, NT);
    mf_gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, NULL, sizeof merges / sizeof merges[0]);
    mf_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 18);
    mf_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 21);
    mf_gguf_w_u32(w, "tokenizer.ggml.padding_token_id", 18);
    if (finish(w, dir, "seed-tiny-bpe.bin")) return -1;
    return append(dir, "seed-tiny-bpe.bin", "Hello world<|start|>12<|end|> \xc4\xa0\n\xff");
}

static int all_types(const char *dir)
{
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_err err;
    mf_gguf_w_str(w, "general.architecture", "types");
    for (uint32_t t = 0; t < MF_TYPE_COUNT; t++) {
        const mf_type_info *ti = mf_type_get(t);
        if (!ti) continue;
        char name[32];
        snprintf(name, sizeof name, "t.%s", ti->name);
        const int64_t ne[1] = {ti->blck};
        if (mf_gguf_w_tensor(w, name, t, 1, ne, NULL, &err) < 0) {
            fprintf(stderr, "fuzz_make_seeds: %s\n", err.msg);
            mf_gguf_writer_free(w);
            return -1;
        }
    }
    return finish(w, dir, "seed-types.bin");
}

static int all_kv(const char *dir)
{
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_err err;
    mf_gguf_w_u32(w, "general.alignment", 64);
    mf_gguf_w_u8(w, "k.u8", 1);
    mf_gguf_w_i8(w, "k.i8", -1);
    mf_gguf_w_u16(w, "k.u16", 2);
    mf_gguf_w_i16(w, "k.i16", -2);
    mf_gguf_w_i32(w, "k.i32", -3);
    mf_gguf_w_f32(w, "k.f32", 0.5f);
    mf_gguf_w_bool(w, "k.bool", 1);
    mf_gguf_w_str(w, "k.str", "");
    mf_gguf_w_u64(w, "k.u64", 4);
    mf_gguf_w_i64(w, "k.i64", -4);
    mf_gguf_w_f64(w, "k.f64", 0.25);
    static const uint8_t raw[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const uint32_t arr_types[] = {MF_GGUF_U8,  MF_GGUF_I8,   MF_GGUF_U16, MF_GGUF_I16, MF_GGUF_U32, MF_GGUF_I32,
                                  MF_GGUF_F32, MF_GGUF_BOOL, MF_GGUF_U64, MF_GGUF_I64, MF_GGUF_F64};
    for (size_t i = 0; i < sizeof arr_types / sizeof arr_types[0]; i++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", mf_gguf_vtype_name(arr_types[i]));
        mf_gguf_w_arr(w, key, arr_types[i], raw, 2);
    }
    const char *strs[] = {"", "x", "\xe2\x96\x81"};
    mf_gguf_w_arr_str(w, "a.str", strs, NULL, 3);
    mf_gguf_w_arr(w, "a.empty", MF_GGUF_U32, NULL, 0);
    const int64_t ne[2] = {4, 2};
    if (mf_gguf_w_tensor(w, "w", MF_TYPE_F32, 2, ne, NULL, &err) < 0 ||
        mf_gguf_w_tensor(w, "v", MF_TYPE_F16, 1, ne, NULL, &err) < 0) {
        fprintf(stderr, "fuzz_make_seeds: %s\n", err.msg);
        mf_gguf_writer_free(w);
        return -1;
    }
    return finish(w, dir, "seed-all-kv.bin");
}

/* ---------------------------------------------------------------- byte seeds */

typedef struct seed {
    uint8_t b[512];
    size_t n;
} seed;

static void put(seed *s, const void *p, size_t n)
{
    if (s->n + n > sizeof s->b) return;
    memcpy(s->b + s->n, p, n);
    s->n += n;
}
static void put_u32(seed *s, uint32_t v) { put(s, &v, 4); } /* little-endian hosts only */
static void put_f32(seed *s, float v) { put(s, &v, 4); }
static void put_u8(seed *s, uint8_t v) { put(s, &v, 1); }
static void put_str(seed *s, const char *t) { put(s, t, strlen(t) + 1); } /* with its NUL */

static int save(const char *dir, const char *name, const seed *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
        fprintf(stderr, "fuzz_make_seeds: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* fuzz_sampler.c layout: n_vocab - 1, temp, top_p, min_p, penalty, top_k, last_n, seed,
 * logits, history */
static int sampler_seed(const char *dir, const char *name, float temp, float top_p, float min_p, float pen,
                        int32_t top_k, const float *logits, int n, const int32_t *hist, int n_hist)
{
    seed s = {0};
    put_u8(&s, (uint8_t)(n - 1));
    put_f32(&s, temp);
    put_f32(&s, top_p);
    put_f32(&s, min_p);
    put_f32(&s, pen);
    put_u32(&s, (uint32_t)top_k);
    put_u32(&s, 64);
    put_u32(&s, 7);
    for (int i = 0; i < n; i++) put_f32(&s, logits[i]);
    for (int i = 0; i < n_hist; i++) put_u32(&s, (uint32_t)hist[i]);
    return save(dir, name, &s);
}

static int sampler_seeds(const char *dir)
{
    const float plain[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f};
    const float with_nan[8] = {0.0f, 0.5f, NAN, 1.5f, 2.0f, 2.5f, 3.0f, 3.5f};
    const float ninf[8] = {-INFINITY, 1.0f, -INFINITY, 2.0f, -INFINITY, -INFINITY, 0.5f, -INFINITY};
    const float all_ninf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    const float extremes[6] = {FLT_MAX, -FLT_MAX, 1e-45f, -0.0f, FLT_MAX, 3.0f};
    const int32_t hist[4] = {1, 7, 7, 3};
    return sampler_seed(dir, "defaults.bin", 0.8f, 0.95f, 0.05f, 1.1f, 40, plain, 8, hist, 4) ||
           sampler_seed(dir, "nan-min-p-0.bin", 0.8f, 0.95f, 0.0f, 1.0f, 3, with_nan, 8, NULL, 0) ||
           sampler_seed(dir, "greedy-ninf.bin", 0.0f, 1.0f, 0.0f, 1.3f, 0, ninf, 8, hist, 4) ||
           sampler_seed(dir, "all-ninf.bin", 1.0f, 0.5f, 0.1f, 1.0f, 2, all_ninf, 4, NULL, 0) ||
           sampler_seed(dir, "extremes.bin", INFINITY, 0.0f, 2.0f, 0.5f, 5, extremes, 6, hist, 4);
}

/* fuzz_chat.c layout: format, flags, user NUL system NUL date NUL template NUL, then token
 * ids as 16-bit values id + 1 of fuzz_chat.c's vocabulary (0 <|start|>, 1 <|channel|>,
 * 2 <|message|>, 3 <|end|>, 4 <|return|>, 5 <|call|>, 6 <|constrain|>, 7 <|endoftext|>,
 * 8 assistant, 9 analysis, 10 commentary, 11 final, 12 " to", 13 =, 14 functions, 15 .x,
 * 16 json, 17 H, 18 i) */
static int chat_seed(const char *dir, const char *name, int fmt, int flags, const char *user, const char *sys,
                     const char *date, const char *tmpl, const int *ids, int n)
{
    seed s = {0};
    put_u8(&s, (uint8_t)fmt);
    put_u8(&s, (uint8_t)flags);
    put_str(&s, user);
    put_str(&s, sys);
    put_str(&s, date);
    put_str(&s, tmpl);
    for (int i = 0; i < n; i++) {
        put_u8(&s, (uint8_t)(ids[i] + 1));
        put_u8(&s, 0);
    }
    return save(dir, name, &s);
}

static int chat_seeds(const char *dir)
{
    /* analysis, then the final answer "Hi", then <|return|> */
    const int answer[] = {1, 9, 2, 17, 18, 3, 0, 8, 1, 11, 2, 17, 18, 4};
    /* a tool call: commentary to=functions.x <|constrain|>json, arguments, <|call|> */
    const int call[] = {1, 10, 12, 13, 14, 15, 6, 16, 2, 17, 5};
    /* a stray <|channel|> in the content, a long header, <|end|> and text outside a message */
    const int odd[] = {1, 10, 2, 1, 11, 2, 18, 3, 17, 17, 0, 9, 9, 9, 9, 9, 9, 9, 9, 2, 18, 7};
    return chat_seed(dir, "harmony.bin", 4, 1 | 8, "What is 2+2?", "Be brief.", "2025-01-01",
                     "<|start|>{{ m }}<|channel|>", answer, 14) ||
           chat_seed(dir, "harmony-call.bin", 4, 16 | 2, "weather?", "", "", "", call, 11) ||
           chat_seed(dir, "harmony-odd.bin", 4, 4, "x", "", "20x5-01-01", "", odd, 22) ||
           chat_seed(dir, "zephyr.bin", 1, 1, "Hello", "You are kind.", "", "<|user|> <|assistant|>", NULL, 0) ||
           chat_seed(dir, "llama2.bin", 2, 1, "  hi there \n", " sys ", "", "[INST]", NULL, 0) ||
           chat_seed(dir, "chatml.bin", 3, 0, "zephyr", "", "", "<|im_start|>", NULL, 0);
}

/* fuzz_generate.c layout: flags, max_tokens, context left, cancel delta / top_logprobs, the
 * stop strings with their NULs, then token ids as 16-bit values id + 1 of fuzz_vocab.h's
 * vocabulary (0 <|start|>, 1 <|channel|>, 2 <|message|>, 3 <|end|>, 4 <|return|>, 5 <|call|>,
 * 6 <|constrain|>, 7 <|endoftext|>, 8 assistant, 9 analysis, 10 commentary, 11 final, 12 " to",
 * 13 =, 14 functions, 15 .x, 16 json, 17 H, 18 i, 19 " ", 20 !, 21 a, 22 l, 23 y, 24 Hi,
 * 25 byte 0xC3, 26 byte 0xA9, 27 "é", 28 ab, 29 newline; -1: outside the vocabulary) */
static int generate_seed(const char *dir, const char *name, int flags, int max_tokens, int ctx_left, int b3,
                         const char *const *stops, int n_stops, const int *ids, int n)
{
    seed s = {0};
    put_u8(&s, (uint8_t)(flags | n_stops << 3));
    put_u8(&s, (uint8_t)max_tokens);
    put_u8(&s, (uint8_t)ctx_left);
    put_u8(&s, (uint8_t)b3);
    for (int i = 0; i < n_stops; i++) put_str(&s, stops[i]);
    for (int i = 0; i < n; i++) {
        put_u8(&s, (uint8_t)(ids[i] + 1));
        put_u8(&s, 0);
    }
    return save(dir, name, &s);
}

static int generate_seeds(const char *dir)
{
    enum { HARMONY = 1, LOGITS = 2, LOGPROBS = 4, CANCEL = 32, NO_MAX = 64 };
    /* "Hi é" (é in two tokens) "alHi!y", then the end token */
    const int plain[] = {24, 19, 25, 26, 21, 22, 24, 20, 23, 7};
    const char *plain_stops[] = {"Hi!", "\xc3\xa9"
                                        "a"};
    /* split and whole characters, a lone lead byte, a lone continuation byte, newlines */
    const int utf8[] = {25, 26, 25, 25, 26, 27, 29, 26, 25, 29, 27};
    /* analysis, then a final answer with a split "é", then <|return|> */
    const int answer[] = {1, 9, 2, 17, 25, 3, 0, 8, 1, 11, 2, 21, 25, 26, 22, 23, 4};
    const char *answer_stops[] = {"\xc3\xa9ly"};
    /* a preamble, then a call: commentary to=functions.x <|constrain|>json, arguments, <|call|> */
    const int call[] = {1, 10, 2, 17, 18, 3, 0, 8, 1, 10, 12, 13, 14, 15, 6, 16, 2, 28, 25, 26, 5};
    const char *call_stops[] = {"zz"};
    /* ids outside the vocabulary, after some text */
    const int bad[] = {17, 18, -1, 17};
    return generate_seed(dir, "plain-stops.bin", NO_MAX, 0, 200, 0, plain_stops, 2, plain, 10) ||
           generate_seed(dir, "plain-utf8.bin", 0, 8, 100, 0, NULL, 0, utf8, 11) ||
           generate_seed(dir, "plain-context.bin", NO_MAX | LOGITS | LOGPROBS, 0, 3, 2, NULL, 0, utf8, 11) ||
           generate_seed(dir, "plain-cancel.bin", CANCEL | NO_MAX, 0, 200, 2, plain_stops, 1, plain, 10) ||
           generate_seed(dir, "plain-bad-id.bin", NO_MAX, 0, 50, 0, NULL, 0, bad, 4) ||
           generate_seed(dir, "harmony-answer.bin", HARMONY | NO_MAX, 0, 200, 0, answer_stops, 1, answer, 17) ||
           generate_seed(dir, "harmony-call.bin", HARMONY | LOGITS | LOGPROBS | NO_MAX, 0, 200, 3, call_stops, 1, call,
                         21) ||
           generate_seed(dir, "harmony-cancel.bin", HARMONY | CANCEL | NO_MAX, 0, 200, 3, NULL, 0, call, 21);
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 4 && argc != 5) {
        fprintf(stderr, "usage: fuzz_make_seeds GGUF_DIR [SAMPLER_DIR CHAT_DIR [GENERATE_DIR]]\n");
        return 2;
    }
    if (tiny_llama(argv[1]) || tiny_bpe(argv[1]) || all_types(argv[1]) || all_kv(argv[1])) return 1;
    if (argc >= 4 && (sampler_seeds(argv[2]) || chat_seeds(argv[3]))) return 1;
    return argc == 5 && generate_seeds(argv[4]) ? 1 : 0;
}
