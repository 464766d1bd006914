/* tok_vocab.h — synthetic vocabularies for the tokenizer and chat tests: a GGUF file
 * holding only tokenizer.* keys, written with the GGUF writer and opened again, so the
 * tests go through the same loader as real files.
 *
 * Also an independent GPT-2 byte map (docs/tokenizer.md §4.1), written from the
 * definition as a loop (the engine uses a closed form), to build byte-level token texts.
 */
#ifndef MF_TOK_VOCAB_H
#define MF_TOK_VOCAB_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "gguf.h"
#include "tokenizer.h"

/* A vocabulary under construction: token strings (copied, any bytes), types, merges. */
typedef struct tv_vocab {
    char **tok;
    uint64_t *len;
    int32_t *type;
    int n, cap;
    char **merge;
    int n_merge, cap_merge;
    const char *pre; /* gpt2: tokenizer.ggml.pre (NULL: "gpt-4o") */
    int omit_merges; /* gpt2: write no tokenizer.ggml.merges key */
} tv_vocab;

static inline int tv_add_n(tv_vocab *v, const char *s, size_t n, int32_t type)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 512;
        v->tok = realloc(v->tok, (size_t)v->cap * sizeof *v->tok);
        v->len = realloc(v->len, (size_t)v->cap * sizeof *v->len);
        v->type = realloc(v->type, (size_t)v->cap * sizeof *v->type);
        if (!v->tok || !v->len || !v->type) abort();
    }
    v->tok[v->n] = malloc(n + 1);
    if (!v->tok[v->n]) abort();
    memcpy(v->tok[v->n], s, n);
    v->tok[v->n][n] = 0;
    v->len[v->n] = n;
    v->type[v->n] = type;
    return v->n++;
}

static inline int tv_add(tv_vocab *v, const char *s, int32_t type) { return tv_add_n(v, s, strlen(s), type); }

static inline void tv_merge(tv_vocab *v, const char *m)
{
    if (v->n_merge == v->cap_merge) {
        v->cap_merge = v->cap_merge ? 2 * v->cap_merge : 64;
        v->merge = realloc(v->merge, (size_t)v->cap_merge * sizeof *v->merge);
        if (!v->merge) abort();
    }
    v->merge[v->n_merge] = strdup(m);
    if (!v->merge[v->n_merge]) abort();
    v->n_merge++;
}

static inline void tv_free(tv_vocab *v)
{
    for (int i = 0; i < v->n; i++) free(v->tok[i]);
    for (int i = 0; i < v->n_merge; i++) free(v->merge[i]);
    free(v->tok);
    free(v->len);
    free(v->type);
    free(v->merge);
    memset(v, 0, sizeof *v);
}

/* GPT-2 byte map, as GPT-2's encoder defines it: bytes 0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF keep their
 * value; the others, in increasing order, get 256, 257, ... */
static inline uint32_t tv_gpt2_cp(uint8_t b)
{
    uint32_t next = 256;
    for (int c = 0; c < 256; c++) {
        int keep = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
        if (c == b) return keep ? (uint32_t)c : next;
        if (!keep) next++;
    }
    return 0;
}

/* Byte-map a raw string into out (room for 2n + 1 bytes); returns the length. */
static inline size_t tv_map(const char *raw, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = tv_gpt2_cp((uint8_t)raw[i]);
        if (cp < 0x80) out[o++] = (char)cp;
        else {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = 0;
    return o;
}

/* Add the byte-mapped form of raw text as a token. */
static inline int tv_add_mapped(tv_vocab *v, const char *raw, size_t n, int32_t type)
{
    char *m = malloc(2 * n + 1);
    if (!m) abort();
    int id = tv_add_n(v, m, tv_map(raw, n, m), type);
    free(m);
    return id;
}

/* Optional extra keys: called with the writer before the file is written. */
typedef void (*tv_extra_fn)(mf_gguf_writer *w, void *user);

/* Write the vocabulary with tokenizer.ggml.model = model (and, for gpt2, the pre-type and
 * the merges), open it, load the tokenizer. *g receives the open file (close it after
 * freeing the tokenizer). On a load error returns NULL with the message in err. */
static inline mf_tokenizer *tv_load(const tv_vocab *v, const char *model, int with_types, tv_extra_fn extra, void *user,
                                    mf_gguf **g, mf_err *err)
{
    static int serial;
    char name[64];
    snprintf(name, sizeof name, "vocab-%d.gguf", serial++);
    const char *path = mf_tmp_path(name);
    mf_gguf_writer *w = mf_gguf_writer_new();
    if (!w) abort();
    mf_gguf_w_str(w, "general.architecture", "test");
    mf_gguf_w_str(w, "tokenizer.ggml.model", model);
    if (!strcmp(model, "gpt2")) {
        mf_gguf_w_str(w, "tokenizer.ggml.pre", v->pre ? v->pre : "gpt-4o");
        if (!v->omit_merges)
            mf_gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merge, NULL, (uint64_t)v->n_merge);
    }
    mf_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, v->len, (uint64_t)v->n);
    if (with_types) mf_gguf_w_arr(w, "tokenizer.ggml.token_type", MF_GGUF_I32, v->type, (uint64_t)v->n);
    if (extra) extra(w, user);
    mf_err werr;
    if (mf_gguf_w_write(w, path, NULL, NULL, &werr)) fail_msg("writing %s: %s", path, werr.msg);
    mf_gguf_writer_free(w);
    *g = mf_gguf_open(path, err);
    remove(path); /* the mapping stays valid after the name is gone */
    if (!*g) return NULL;
    mf_tokenizer *t = mf_tokenizer_load(*g, err);
    if (!t) {
        mf_gguf_close(*g);
        *g = NULL;
    }
    return t;
}

/* ids 0..255: the 256 byte tokens (byte-mapped), in byte order */
static inline void tv_byte_tokens(tv_vocab *v)
{
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        tv_add_mapped(v, &c, 1, MF_TT_NORMAL);
    }
}

/* A small harmony vocabulary: the byte tokens, then the specials of o200k_harmony, all
 * CONTROL in the file as the converter writes them (docs/tokenizer.md §1), BOS/EOS/pad
 * keys as in the gpt-oss GGUF, and an UNUSED "[PAD300]". Text is all byte tokens. */
typedef struct tv_harmony {
    int32_t sot, eot, ret, con, chan, start, end, msg, call, pad;
} tv_harmony;

static inline void tv_harmony_keys(mf_gguf_writer *w, void *user)
{
    const tv_harmony *h = user;
    mf_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)h->sot);
    mf_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)h->ret);
    mf_gguf_w_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)h->eot);
}

static inline mf_tokenizer *tv_harmony_vocab(tv_harmony *h, mf_gguf **g)
{
    tv_vocab v = {0};
    tv_byte_tokens(&v);
    h->sot = tv_add(&v, "<|startoftext|>", MF_TT_CONTROL);
    h->eot = tv_add(&v, "<|endoftext|>", MF_TT_CONTROL);
    h->ret = tv_add(&v, "<|return|>", MF_TT_CONTROL);
    h->con = tv_add(&v, "<|constrain|>", MF_TT_CONTROL);
    h->chan = tv_add(&v, "<|channel|>", MF_TT_CONTROL);
    h->start = tv_add(&v, "<|start|>", MF_TT_CONTROL);
    h->end = tv_add(&v, "<|end|>", MF_TT_CONTROL);
    h->msg = tv_add(&v, "<|message|>", MF_TT_CONTROL);
    h->call = tv_add(&v, "<|call|>", MF_TT_CONTROL);
    h->pad = tv_add(&v, "[PAD300]", MF_TT_UNUSED);
    mf_err err;
    mf_tokenizer *t = tv_load(&v, "gpt2", 1, tv_harmony_keys, h, g, &err);
    if (!t) fail_msg("%s", err.msg);
    tv_free(&v);
    return t;
}

#endif
