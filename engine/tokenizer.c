/* tokenizer.c — scaffold: replaced by the tokenizer implementation. */
#include "tokenizer.h"
mf_tokenizer *mf_tokenizer_load(const mf_gguf *g, mf_err *err) { (void)g; mf_errf(err, "tokenizer not implemented yet"); return 0; }
void mf_tokenizer_free(mf_tokenizer *t) { (void)t; }
int64_t mf_tokenize(const mf_tokenizer *t, const char *text, size_t len, int add_special,
                    int parse_special, int32_t *out, int64_t cap, mf_err *err)
{ (void)t; (void)text; (void)len; (void)add_special; (void)parse_special; (void)out; (void)cap; return mf_errf(err, "no"); }
