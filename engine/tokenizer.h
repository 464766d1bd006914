/* tokenizer.h — text <-> token ids, from the vocabulary stored in a GGUF file.
 *
 * Two algorithms, picked by tokenizer.ggml.model:
 *   "llama" — SentencePiece-style (docs/tokenizer.md §3): scores, byte fallback, added
 *             space prefix, U+2581 escaping; Llama, TinyLlama, stories models.
 *   "gpt2"  — byte-level BPE (docs/tokenizer.md §4): GPT-2 byte<->unicode map, merge
 *             ranks, the o200k pre-tokenizer regex (tokenizer.ggml.pre = "gpt-4o" and
 *             compatible); gpt-oss.
 * Special tokens (CONTROL/USER_DEFINED/UNKNOWN types) are matched in the input text as the
 * llama.cpp does (docs/tokenizer.md §2: longest first, USER_DEFINED always, the others only with parse_special).
 *
 * Choices where llama.cpp and the reference tokenizer differ (docs/tokenizer.md):
 *   - BPE pre-tokenizes with the real Unicode categories (tiktoken's result), not
 *     llama.cpp's ASCII approximation; a piece that is itself an ordinary token is that
 *     token without merging (tiktoken's rule). Pre-types "gpt-4o", "default" and none are
 *     accepted (all get the o200k pattern); any other pre-type is refused at load.
 *   - BPE: no BOS unless tokenizer.ggml.add_bos_token says so. The gpt-oss vocabulary
 *     (recognized by <|start|> <|channel|> <|message|>) has <|start|> <|channel|>
 *     <|message|> <|end|> <|constrain|> forced to USER_DEFINED, as llama.cpp does.
 *   - The loader is strict: duplicate token strings, per-token arrays shorter than the
 *     token list, and merges whose parts or result are not tokens are errors.
 *
 * The tokenizer copies what it needs out of the GGUF, except the token strings, which
 * live in the mapping: the caller keeps the mf_gguf open while the tokenizer lives.
 * A loaded tokenizer is read-only: encoding and decoding may run from several threads.
 */
#ifndef MF_TOKENIZER_H
#define MF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gguf.h"

enum mf_tok_kind { MF_TOK_SPM = 0, MF_TOK_BPE = 1 };

/* token types of tokenizer.ggml.token_type (docs/tokenizer.md §1) */
enum mf_tok_type {
    MF_TT_UNDEFINED = 0,
    MF_TT_NORMAL = 1,
    MF_TT_UNKNOWN = 2,
    MF_TT_CONTROL = 3,
    MF_TT_USER_DEFINED = 4,
    MF_TT_UNUSED = 5,
    MF_TT_BYTE = 6
};

typedef struct mf_tokenizer mf_tokenizer;

/* Build from the tokenizer.* keys of an open file. NULL + message on error (missing keys,
 * unknown tokenizer.ggml.model, array length mismatches, duplicate token strings...). */
mf_tokenizer *mf_tokenizer_load(const mf_gguf *g, mf_err *err);
void mf_tokenizer_free(mf_tokenizer *t);

int mf_tok_kind(const mf_tokenizer *t);
int32_t mf_tok_n_vocab(const mf_tokenizer *t);
int32_t mf_tok_bos(const mf_tokenizer *t); /* -1 if none */
int32_t mf_tok_eos(const mf_tokenizer *t); /* -1 if none */
int mf_tok_add_bos(const mf_tokenizer *t); /* tokenizer.ggml.add_bos_token (SPM default 1) */
/* 1 when generation should stop at this id. The end-of-generation set: EOS, the
 * tokenizer.ggml.eot_token_id / eom_token_id keys and a tokenizer.ggml.eos_token_ids array
 * when present, and the tokens named <|im_end|> (ChatML), <|return|>, <|call|>,
 * <|endoftext|> (harmony); not <|end|>, which in harmony only closes a message. */
int mf_tok_is_eog(const mf_tokenizer *t, int32_t id);
/* id of a token by its exact text, -1 if absent (e.g. "<|start|>"). */
int32_t mf_tok_find(const mf_tokenizer *t, const char *text);
/* token string as stored (escaped: U+2581 for SPM, GPT-2 byte map for BPE); points into
 * the GGUF mapping, NOT NUL-terminated: *len bytes. NULL (and *len = 0) for a bad id. */
const char *mf_tok_text(const mf_tokenizer *t, int32_t id, size_t *len);
int mf_tok_type(const mf_tokenizer *t, int32_t id);
float mf_tok_score(const mf_tokenizer *t, int32_t id);

/* Encode text (len bytes, need not be NUL-terminated).
 *   add_special:   prepend BOS (if the vocabulary asks for it) / append EOS (likewise)
 *   parse_special: match CONTROL/UNKNOWN token texts in the input (USER_DEFINED always)
 * Writes at most cap ids to out and returns the total count the text needs (so a caller
 * can size the buffer with a first call of cap 0), or -1 with err on failure. */
int64_t mf_tokenize(const mf_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                    int32_t *out, int64_t cap, mf_err *err);

/* Bytes of one token as they appear in the output text (docs/tokenizer.md §5: NORMAL with
 * U+2581 -> ' ' (SPM) or through the inverse GPT-2 byte map (BPE), BYTE -> its byte (SPM),
 * USER_DEFINED -> its text, CONTROL/UNKNOWN -> text only if render_special, others ->
 * nothing). Returns the piece's full byte count; the first min(count, cap) bytes are
 * written (no NUL), so a result > cap means the piece was cut. A piece can be part of a
 * UTF-8 character (see mf_utf8_complete). Unknown ids give 0. */
size_t mf_tok_piece(const mf_tokenizer *t, int32_t id, int render_special, char *out, size_t cap);

/* Detokenize a whole sequence with llama.cpp's rules (docs/tokenizer.md §5: the leading
 * space of the first piece is dropped when the vocabulary adds a space prefix; with
 * remove_special a leading BOS / trailing EOS is dropped as the vocabulary adds them).
 * Returns the bytes needed; writes the first min(needed, cap) (no NUL). */
size_t mf_detokenize(const mf_tokenizer *t, const int32_t *ids, size_t n, int remove_special, int render_special,
                     char *out, size_t cap);

/* Streaming output: the length of the longest prefix of s[0..n) that does not end in the
 * middle of a UTF-8 character. Only a well-formed but unfinished sequence at the very end
 * is held back (at most 3 bytes); invalid bytes count as complete, since no later byte
 * can complete them. A driver prints that prefix and keeps the rest for the next piece. */
size_t mf_utf8_complete(const char *s, size_t n);

#endif
