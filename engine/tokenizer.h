/* tokenizer.h — text <-> token ids, from the vocabulary stored in a GGUF file.
 *
 * Two algorithms, picked by tokenizer.ggml.model:
 *   "llama" — SentencePiece-style (spec: tokenizer-spm.md): scores, byte fallback, added
 *             space prefix, U+2581 escaping; Llama, TinyLlama, stories models.
 *   "gpt2"  — byte-level BPE (spec: tokenizer-o200k.md): GPT-2 byte<->unicode map, merge
 *             ranks, the o200k pre-tokenizer regex (tokenizer.ggml.pre = "gpt-4o" and
 *             compatible); gpt-oss.
 * Special tokens (CONTROL/USER_DEFINED/UNKNOWN types) are matched in the input text as the
 * specs describe (longest first, USER_DEFINED always, the others only with parse_special).
 *
 * The tokenizer copies what it needs out of the GGUF (token strings live in the mapping,
 * which the caller keeps open while the tokenizer lives).
 */
#ifndef MF_TOKENIZER_H
#define MF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"

enum mf_tok_kind { MF_TOK_SPM = 0, MF_TOK_BPE = 1 };

/* token types of tokenizer.ggml.token_type (tokenizer-spm.md §1.1) */
enum mf_tok_type {
    MF_TT_UNDEFINED = 0, MF_TT_NORMAL = 1, MF_TT_UNKNOWN = 2, MF_TT_CONTROL = 3,
    MF_TT_USER_DEFINED = 4, MF_TT_UNUSED = 5, MF_TT_BYTE = 6
};

typedef struct mf_tokenizer mf_tokenizer;

/* Build from the tokenizer.* keys of an open file. NULL + message on error (missing keys,
 * unknown tokenizer.ggml.model, array length mismatches, duplicate token strings...). */
mf_tokenizer *mf_tokenizer_load(const mf_gguf *g, mf_err *err);
void mf_tokenizer_free(mf_tokenizer *t);

int mf_tok_kind(const mf_tokenizer *t);
int32_t mf_tok_n_vocab(const mf_tokenizer *t);
int32_t mf_tok_bos(const mf_tokenizer *t);          /* -1 if none */
int32_t mf_tok_eos(const mf_tokenizer *t);          /* -1 if none */
int mf_tok_add_bos(const mf_tokenizer *t);          /* tokenizer.ggml.add_bos_token (SPM default 1) */
/* 1 when generation should stop at this id (end-of-generation set: EOS, and for the
 * harmony vocabulary <|return|>, <|call|>, <|endoftext|>; not <|end|>). */
int mf_tok_is_eog(const mf_tokenizer *t, int32_t id);
/* id of a token by its exact text, -1 if absent (e.g. "<|start|>"). */
int32_t mf_tok_find(const mf_tokenizer *t, const char *text);
/* token string as stored (escaped: U+2581 for SPM, GPT-2 byte map for BPE) */
const char *mf_tok_text(const mf_tokenizer *t, int32_t id, size_t *len);
int mf_tok_type(const mf_tokenizer *t, int32_t id);
float mf_tok_score(const mf_tokenizer *t, int32_t id);

/* Encode text (len bytes, need not be NUL-terminated).
 *   add_special:   prepend BOS (if the vocabulary asks for it) / append EOS (likewise)
 *   parse_special: match CONTROL/UNKNOWN token texts in the input (USER_DEFINED always)
 * Writes at most cap ids to out and returns the total count the text needs (so a caller
 * can size the buffer with a first call of cap 0), or -1 with err on failure. */
int64_t mf_tokenize(const mf_tokenizer *t, const char *text, size_t len, int add_special,
                    int parse_special, int32_t *out, int64_t cap, mf_err *err);

/* Bytes of one token as they appear in the output text (tokenizer-spm.md §5: NORMAL with
 * U+2581 -> ' ', BYTE -> its byte, CONTROL/UNKNOWN -> text only if render_special).
 * Returns the byte count written (<= cap) or the count needed if cap is too small. */
size_t mf_tok_piece(const mf_tokenizer *t, int32_t id, int render_special, char *out, size_t cap);

/* Detokenize a whole sequence with llama.cpp's rules (leading-space strip, optional
 * special removal). Returns bytes needed; writes at most cap. */
size_t mf_detokenize(const mf_tokenizer *t, const int32_t *ids, size_t n, int remove_special,
                     int render_special, char *out, size_t cap);

#endif
