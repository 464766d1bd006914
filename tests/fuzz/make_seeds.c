/* make_seeds.c — writes the small valid GGUF files that seed the fuzzer (tests/fuzz/corpus).
 *
 *   fuzz_make_seeds DIR
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
    const char *toks[] = {"<unk>", "<s>", "</s>", "<0x0A>", "<0x20>", "<0xE2>",
                          "\xe2\x96\x81", "\xe2\x96\x81H", "H", "e", "l", "o", "ll",
                          "\xe2\x96\x81Hello", "\xe2\x96\x81w", "orld", "1", "2", "3"};
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
    const char *toks[] = {"H", "e", "l", "o", "w", "r", "d", "\xc4\xa0", "1", "2", "He", "ll",
                          "llo", "Hello", "\xc4\xa0w", "or", "\xc4\xa0wor", "ld",
                          "<|endoftext|>", "<|start|>", "<|end|>", "<|return|>"};
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
    const uint32_t arr_types[] = {MF_GGUF_U8, MF_GGUF_I8, MF_GGUF_U16, MF_GGUF_I16, MF_GGUF_U32,
                                  MF_GGUF_I32, MF_GGUF_F32, MF_GGUF_BOOL, MF_GGUF_U64,
                                  MF_GGUF_I64, MF_GGUF_F64};
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

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
        return 2;
    }
    return tiny_llama(argv[1]) || tiny_bpe(argv[1]) || all_types(argv[1]) || all_kv(argv[1]) ? 1 : 0;
}
