/* fuzz_gguf.c — libFuzzer entry point: any byte string through the GGUF reader and the
 * tokenizer. The reader must reject or accept it without reading out of bounds, leaking,
 * hanging or crashing; an accepted file is then walked completely (every key, every array
 * element, the first and last byte of every tensor) so that a wrong bound in the validation
 * shows up as an ASan report here.
 *
 * When the file holds a vocabulary the tokenizer loads it, then encodes a text the fuzzer
 * controls too: the bytes after the last tensor (after the metadata when there are no
 * tensors), which a valid file may carry (docs/gguf.md §3: trailing bytes are accepted). The ids
 * are decoded again, and every token of the vocabulary is rendered as a piece. */
#include <stdint.h>
#include <stddef.h>

#include "gguf.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open_memory(data, size, "fuzz", &err);
    if (!g) return 0;
    volatile uint64_t sink = 0;
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) {
        const mf_gguf_kv *kv = mf_gguf_kv_at(g, i);
        sink += kv->v.u + kv->str_len;
        if (kv->type == MF_GGUF_ARR) {
            if (kv->arr_type == MF_GGUF_STR) {
                for (uint64_t j = 0; j < kv->arr_n; j++)
                    if (kv->arr_str[j].len) sink += (uint8_t)kv->arr_str[j].ptr[kv->arr_str[j].len - 1];
            } else if (kv->arr_n) {
                sink += kv->arr_data[0];
            }
        }
        if (mf_gguf_find_kv(g, kv->key) != kv) __builtin_trap();
    }
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        sink += p[0] + p[t->nbytes - 1];
        if (mf_gguf_find_tensor(g, t->name) != t) __builtin_trap();
    }
    mf_tokenizer *tok = mf_tokenizer_load(g, &err);
    if (tok) {
        uint64_t end = mf_gguf_data_offset(g);
        for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
            const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
            uint64_t e = mf_gguf_data_offset(g) + t->offset + t->nbytes;
            if (e > end) end = e;
        }
        const char *text = "Hello world <s> 123";
        size_t len = 19;
        if (end < size) {
            text = (const char *)data + end;
            len = size - end < 256 ? (size_t)(size - end) : 256;
        }
        /* the contract of mf_tokenize: the count returned does not depend on cap, and a
         * smaller cap gets the same first ids */
        int32_t ids[1024], few[4];
        char out[2048];
        int64_t n = mf_tokenize(tok, text, len, 1, 1, ids, 1024, &err);
        int64_t n_few = mf_tokenize(tok, text, len, 1, 1, few, 4, &err);
        if (n_few != n) __builtin_trap();
        for (int64_t i = 0; i < n && i < 4; i++)
            if (few[i] != ids[i]) __builtin_trap();
        if (n > 1024) n = 1024;
        if (n > 0) {
            sink += mf_detokenize(tok, ids, (size_t)n, 1, 1, out, sizeof out);
            sink += mf_detokenize(tok, ids, (size_t)n, 0, 0, out, 16);
        }
        for (int32_t id = 0; id < mf_tok_n_vocab(tok); id++) sink += mf_tok_piece(tok, id, 1, out, 8);
        mf_tokenizer_free(tok);
    }
    (void)sink;
    mf_gguf_close(g);
    return 0;
}
