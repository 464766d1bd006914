/* fuzz_gguf.c — libFuzzer entry point: any byte string through the GGUF reader and the
 * tokenizer loader. The reader must reject or accept it without reading out of bounds,
 * leaking, hanging or crashing; an accepted file is then walked completely (every key,
 * every array element, the first and last byte of every tensor) so that a wrong bound in
 * the validation shows up as an ASan report here. */
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
        int32_t ids[64];
        mf_tokenize(tok, "Hello world <s> 123", 19, 1, 1, ids, 64, &err);
        mf_tokenizer_free(tok);
    }
    (void)sink;
    mf_gguf_close(g);
    return 0;
}
