/* fuzz_vocab.c — the fuzzers' harmony vocabulary (fuzz_vocab.h): written as a GGUF file with
 * the library's writer, opened with its reader, the file name removed at once. */
#include "fuzz_vocab.h"

#include <stdio.h>
#include <unistd.h>

#include "gguf.h"

const mf_tokenizer *mf_fuzz_harmony_vocab(void)
{
    static mf_tokenizer *tok;
    static mf_gguf *g;
    if (tok) return tok;
    const char *toks[] = {"<|start|>",
                          "<|channel|>",
                          "<|message|>",
                          "<|end|>",
                          "<|return|>",
                          "<|call|>",
                          "<|constrain|>",
                          "<|endoftext|>",
                          "assistant",
                          "analysis",
                          "commentary",
                          "final",
                          "\xc4\xa0to",
                          "=",
                          "functions",
                          ".x",
                          "json",
                          "H",
                          "i",
                          "\xc4\xa0",
                          "!",
                          "a",
                          "l",
                          "y",
                          "Hi",
                          "\xc3\x83",
                          "\xc2\xa9",
                          "\xc3\x83\xc2\xa9",
                          "ab",
                          "\xc4\x8a"};
    enum { NT = sizeof toks / sizeof toks[0] };
    int32_t types[NT];
    for (int i = 0; i < NT; i++) types[i] = i < 8 ? 3 : 1;
    const char *merges[] = {"H i"};
    mf_gguf_writer *w = mf_gguf_writer_new();
    mf_gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    mf_gguf_w_str(w, "tokenizer.ggml.pre", "gpt-4o");
    mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, NT);
    mf_gguf_w_arr(w, "tokenizer.ggml.token_type", MF_GGUF_I32, types, NT);
    mf_gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1);
    mf_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 7);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz-harmony-vocab-%ld.gguf", (long)getpid());
    mf_err err;
    if (mf_gguf_w_write(w, path, NULL, NULL, &err)) __builtin_trap();
    mf_gguf_writer_free(w);
    g = mf_gguf_open(path, &err); /* the mapping outlives the file name */
    unlink(path);
    if (!g || !(tok = mf_tokenizer_load(g, &err))) {
        fprintf(stderr, "%s\n", err.msg);
        __builtin_trap();
    }
    return tok;
}
