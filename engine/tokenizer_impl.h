/* tokenizer_impl.h — what the three tokenizer files share (private to the engine).
 *
 *   tokenizer.c      vocabulary loading and validation, lookup by text, special-token
 *                    partition, encode dispatch, pieces and detokenization, UTF-8 helpers,
 *                    the candidate heap both merge loops use
 *   tokenizer_spm.c  SentencePiece-style merging by score with byte fallback
 *                    (docs/tokenizer.md §3)
 *   tokenizer_bpe.c  byte-level BPE: GPT-2 byte map, merge ranks, the merge loop
 *                    (docs/tokenizer.md §4.1, docs/tokenizer.md §4.3)
 *   tokenizer_o200k.c  the o200k pre-tokenizer (docs/tokenizer.md §4.2)
 */
#ifndef MF_TOKENIZER_IMPL_H
#define MF_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* one merge rule of a BPE vocabulary: the pair (left id, right id) becomes id `id` */
typedef struct mf_bpe_merge {
    uint64_t key; /* (left << 32) | right; UINT64_MAX marks an empty slot */
    int32_t rank; /* index in tokenizer.ggml.merges: lower merges first */
    int32_t id;   /* token of the concatenation */
} mf_bpe_merge;

struct mf_tokenizer {
    int kind; /* enum mf_tok_kind */
    int32_t n_vocab;
    const mf_str *text;    /* token strings, inside the GGUF mapping */
    float *score;          /* SPM merge priority per token (0 when absent) */
    uint8_t *type;         /* enum mf_tok_type per token (unknown values -> UNDEFINED) */
    uint8_t *eog;          /* 1 for end-of-generation tokens */
    int32_t bos, eos, unk; /* -1: none */
    int add_bos, add_eos, add_space_prefix;

    /* text -> id: open addressing, linear probing. A slot keeps the hash and the string
     * next to the id, so a probe that fails touches nothing else and a hit reads only the
     * string bytes (the load of 201088 tokens + 3 lookups per merge is bound by cache
     * misses). id -1 marks an empty slot. */
    struct mf_tok_slot {
        uint64_t hash;
        const char *ptr;
        uint32_t len;
        int32_t id;
    } * slot;
    uint64_t slot_mask;

    /* special-token candidates of the partition (CONTROL, USER_DEFINED, UNKNOWN with
     * non-empty text), longest text first, ties by id */
    int32_t *special;
    int32_t n_special;

    /* SPM byte fallback: id of "<0xXX>", else of the one-byte token, else -1 */
    int32_t spm_byte[256];

    /* BPE: id of the token of each single byte (its GPT-2 mapped character), -1 if none;
     * the merge table, open addressing on the pair key */
    int32_t bpe_byte[256];
    mf_bpe_merge *merge;
    uint64_t merge_mask;
};

/* Where mf_tokenize's ids go: the first `cap` are stored, all are counted. */
typedef struct mf_tok_out {
    int32_t *ids;
    int64_t cap;
    int64_t n;
} mf_tok_out;

static inline void mf_tok_emit(mf_tok_out *o, int32_t id)
{
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

/* ---- lookup by text (tokenizer.c) ---- */
uint64_t mf_tok_hash(const char *s, size_t n, uint64_t h);
#define MF_TOK_HASH_SEED 0xcbf29ce484222325ull /* FNV-1a 64 offset basis */

/* The splitmix64 finalizer: every output bit depends on every input bit. Applied before
 * masking a hash to a table index, so that the index draws on all 64 bits (FNV-1a's low
 * bits only ever mix with low bits; the pair keys of the merge table are two ids). */
static inline uint64_t mf_tok_mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

/* id of the token whose text is a||b (b may be empty), -1 if none */
int32_t mf_tok_find2(const mf_tokenizer *t, const char *a, size_t na, const char *b, size_t nb);

/* A token string for a one-line error message: printable ASCII kept, the rest as \xNN,
 * cut after about 40 characters; buf needs 64 bytes. */
const char *mf_tok_esc(const char *s, size_t n, char *buf, size_t cap);

/* ---- UTF-8 (tokenizer.c) ---- */
#define MF_UTF8_INVALID 0xFFFFFFFFu
/* Decode the code point at s (n >= 1 bytes available). Returns its byte length; a byte
 * that does not start a well-formed sequence (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) counts as a 1-byte unit with *cp = MF_UTF8_INVALID. */
size_t mf_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* ---- candidate heap of the merge loops (tokenizer.c) ----
 * Both algorithms pop "the best pair, leftmost on ties": SPM the highest score, BPE the
 * lowest rank (pushed as prio = -rank). */
typedef struct mf_tok_cand {
    double prio;         /* higher pops first */
    int32_t left, right; /* symbol indices; ties pop the smaller left first */
    int32_t size;        /* byte length of the pair when pushed (stale check) */
    int32_t id;          /* token the pair becomes */
} mf_tok_cand;

typedef struct mf_tok_heap {
    mf_tok_cand *a;
    size_t n, cap;
} mf_tok_heap;

int mf_tok_heap_push(mf_tok_heap *h, mf_tok_cand c); /* 0, or -1: out of memory */
mf_tok_cand mf_tok_heap_pop(mf_tok_heap *h);         /* h->n must be > 0 */

/* ---- per algorithm ---- */
/* SPM: one text fragment (raw bytes, before the space prefix and escaping). */
int mf_spm_encode(const mf_tokenizer *t, const char *text, size_t len, int add_prefix, mf_tok_out *o, mf_err *err);
void mf_spm_init(mf_tokenizer *t);

/* BPE: load the merges and the byte tokens; encode one text fragment (pre-tokenizer, then
 * merges per piece). */
int mf_bpe_load(mf_tokenizer *t, const mf_gguf *g, mf_err *err);
int mf_bpe_encode(const mf_tokenizer *t, const char *text, size_t len, mf_tok_out *o, mf_err *err);
/* The GPT-2 byte map (docs/tokenizer.md §4.1): the code point standing for byte b, and
 * back (-1 for a code point outside the map). */
uint32_t mf_gpt2_cp(uint8_t b);
int mf_gpt2_byte(uint32_t cp);

/* The o200k pre-tokenizer: the end (byte offset) of the piece that starts at `pos`
 * (pos < n). Pieces tile the text. (tokenizer_o200k.c) */
size_t mf_o200k_next(const uint8_t *s, size_t n, size_t pos);

#endif
