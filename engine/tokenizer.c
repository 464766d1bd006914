/* tokenizer.c — the vocabulary: loading and validating the tokenizer.* keys, lookup by
 * text, the special-token partition that both algorithms run first, pieces and
 * detokenization. The algorithms themselves live in tokenizer_spm.c (SentencePiece-style,
 * docs/tokenizer.md §3) and tokenizer_bpe.c + tokenizer_o200k.c (byte-level BPE,
 * docs/tokenizer.md §4).
 *
 * The GGUF is untrusted input (the fuzzer runs this loader on arbitrary files): every
 * array is type- and length-checked against the token count, every id read from the file
 * is range-checked, duplicate token strings are rejected, and nothing indexes by a value
 * from the file before it is checked.
 */
#include "tokenizer.h"
#include "tokenizer_impl.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ lookup by text */

/* FNV-1a, 64-bit: h = (h ^ byte) * prime for each byte. `h` lets a caller hash a string
 * given in two parts (a merge "A B" is looked up as A||B without copying). */
uint64_t mf_tok_hash(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int32_t mf_tok_find2(const mf_tokenizer *t, const char *a, size_t na, const char *b, size_t nb)
{
    if (na + nb == 0) return -1; /* empty strings are never entered (see build_index) */
    uint64_t h = mf_tok_mix(mf_tok_hash(b, nb, mf_tok_hash(a, na, MF_TOK_HASH_SEED)));
    for (uint64_t i = h & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        const struct mf_tok_slot *s = &t->slot[i];
        if (s->id < 0) return -1;
        if (s->hash == h && s->len == na + nb && !memcmp(s->ptr, a, na) && !memcmp(s->ptr + na, b, nb)) return s->id;
    }
}

int32_t mf_tok_find(const mf_tokenizer *t, const char *text)
{
    if (!t || !text) return -1;
    return mf_tok_find2(t, text, strlen(text), "", 0);
}

const char *mf_tok_esc(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        uint8_t c = (uint8_t)s[i];
        if (o > 40) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7F && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
    }
    buf[o] = 0;
    return buf;
}

/* Open addressing with linear probing at load factor <= 1/2. Empty strings stay out of
 * the index: they can never be matched or merged (llama.cpp renames them "[EMPTY_<id>]",
 * which no text produces either), and several of them are not a duplicate. */
static int build_index(mf_tokenizer *t, const char *path, mf_err *err)
{
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)t->n_vocab) cap *= 2;
    t->slot = malloc(cap * sizeof *t->slot);
    if (!t->slot)
        return mf_errf(err, "%s: out of memory for the token index (%llu slots)", path, (unsigned long long)cap);
    for (uint64_t i = 0; i < cap; i++) t->slot[i].id = -1;
    t->slot_mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const mf_str *s = &t->text[id];
        if (s->len == 0) continue;
        uint64_t h = mf_tok_mix(mf_tok_hash(s->ptr, s->len, MF_TOK_HASH_SEED)), i = h & t->slot_mask;
        for (; t->slot[i].id >= 0; i = (i + 1) & t->slot_mask) {
            const struct mf_tok_slot *o = &t->slot[i];
            if (o->hash == h && o->len == s->len && !memcmp(o->ptr, s->ptr, s->len)) {
                char b[64];
                return mf_errf(err, "%s: tokenizer.ggml.tokens: token %d '%s' duplicates token %d", path, id,
                               mf_tok_esc(s->ptr, s->len, b, sizeof b), o->id);
            }
        }
        t->slot[i] = (struct mf_tok_slot){h, s->ptr, (uint32_t)s->len, id};
    }
    return 0;
}

/* ------------------------------------------------------------------ loading */

static int is_int_type(uint32_t ty)
{
    return ty == MF_GGUF_U8 || ty == MF_GGUF_I8 || ty == MF_GGUF_U16 || ty == MF_GGUF_I16 || ty == MF_GGUF_U32 ||
           ty == MF_GGUF_I32 || ty == MF_GGUF_U64 || ty == MF_GGUF_I64;
}

static int is_signed_type(uint32_t ty)
{
    return ty == MF_GGUF_I8 || ty == MF_GGUF_I16 || ty == MF_GGUF_I32 || ty == MF_GGUF_I64;
}

/* A special-token id key (docs/tokenizer.md §1): absent, negative or >= n_vocab (such as
 * the 0xFFFFFFFF that stories260K.gguf writes for "none") keeps the default; a key of a
 * non-integer type is an error. */
static int opt_id(const mf_gguf *g, const char *key, int32_t def, int32_t n, int32_t *out, mf_err *err)
{
    *out = def >= 0 && def < n ? def : -1;
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, key);
    if (!kv) return 0;
    if (!is_int_type(kv->type))
        return mf_errf(err, "%s: offset %llu: key '%s' has type %s, expected an integer token id", mf_gguf_path(g),
                       (unsigned long long)kv->offset, key, mf_gguf_vtype_name(kv->type));
    if (is_signed_type(kv->type) ? kv->v.i >= 0 && kv->v.i < n : kv->v.u < (uint64_t)n) *out = (int32_t)kv->v.u;
    return 0;
}

/* An optional per-token array: absent -> NULL; otherwise it must hold elem_type and at
 * least n entries (docs/tokenizer.md §1; llama.cpp reads n entries without checking). */
static int opt_token_arr(const mf_gguf *g, const char *key, uint32_t elem_type, int32_t n, const mf_gguf_kv **out,
                         mf_err *err)
{
    *out = NULL;
    if (!mf_gguf_find_kv(g, key)) return 0;
    if (mf_gguf_get_arr(g, key, elem_type, out, err)) return -1;
    if ((*out)->arr_n < (uint64_t)n)
        return mf_errf(err, "%s: offset %llu: key '%s' has %llu entries for %d tokens", mf_gguf_path(g),
                       (unsigned long long)(*out)->offset, key, (unsigned long long)(*out)->arr_n, n);
    return 0;
}

typedef struct {
    int32_t id;
    uint64_t len;
} len_id;

static int by_len_desc(const void *pa, const void *pb)
{
    const len_id *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Special-token candidates of the partition (docs/tokenizer.md §2), longest first. */
static int collect_specials(mf_tokenizer *t, const char *path, mf_err *err)
{
    int32_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if ((ty == MF_TT_CONTROL || ty == MF_TT_USER_DEFINED || ty == MF_TT_UNKNOWN) && t->text[id].len) n++;
    }
    len_id *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    t->special = malloc((size_t)(n ? n : 1) * sizeof *t->special);
    if (!v || !t->special) {
        free(v);
        return mf_errf(err, "%s: out of memory for %d special tokens", path, n);
    }
    n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if ((ty == MF_TT_CONTROL || ty == MF_TT_USER_DEFINED || ty == MF_TT_UNKNOWN) && t->text[id].len)
            v[n++] = (len_id){id, t->text[id].len};
    }
    qsort(v, (size_t)n, sizeof *v, by_len_desc);
    for (int32_t i = 0; i < n; i++) t->special[i] = v[i].id;
    t->n_special = n;
    free(v);
    return 0;
}

/* The gpt-oss vocabulary (o200k_harmony): llama.cpp forces the harmony structure tokens to
 * USER_DEFINED so that they are matched in prompts without parse_special and printed when
 * detokenizing (docs/tokenizer.md §1). Recognized by <|start|>, <|channel|>, <|message|>. */
static void force_harmony_types(mf_tokenizer *t)
{
    if (mf_tok_find(t, "<|start|>") < 0 || mf_tok_find(t, "<|channel|>") < 0 || mf_tok_find(t, "<|message|>") < 0)
        return;
    static const char *const forced[] = {"<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|constrain|>"};
    for (size_t i = 0; i < sizeof forced / sizeof forced[0]; i++) {
        int32_t id = mf_tok_find(t, forced[i]);
        if (id >= 0) t->type[id] = MF_TT_USER_DEFINED;
    }
}

/* End of generation: EOS, the eot/eom keys and an eos_token_ids array when a converter
 * wrote them, and the end tokens of the chat formats minfer renders (ChatML <|im_end|>;
 * harmony <|return|> <|call|> and <|endoftext|>, docs/chat.md §3). Not <|end|>: in harmony
 * it only closes the analysis message. */
static int mark_eog(mf_tokenizer *t, const mf_gguf *g, mf_err *err)
{
    if (t->eos >= 0) t->eog[t->eos] = 1;
    static const char *const keys[] = {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int32_t id;
        if (opt_id(g, keys[i], -1, t->n_vocab, &id, err)) return -1;
        if (id >= 0) t->eog[id] = 1;
    }
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, "tokenizer.ggml.eos_token_ids");
    if (kv) {
        if (kv->type != MF_GGUF_ARR || (kv->arr_type != MF_GGUF_I32 && kv->arr_type != MF_GGUF_U32))
            return mf_errf(err, "%s: offset %llu: key 'tokenizer.ggml.eos_token_ids' is not an array of integers",
                           mf_gguf_path(g), (unsigned long long)kv->offset);
        for (uint64_t i = 0; i < kv->arr_n; i++) {
            uint32_t id = mf_gguf_arr_u32(kv, i); /* a negative INT32 reads as >= n_vocab */
            if (id < (uint32_t)t->n_vocab) t->eog[id] = 1;
        }
    }
    static const char *const names[] = {"<|im_end|>", "<|return|>", "<|call|>", "<|endoftext|>"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id = mf_tok_find(t, names[i]);
        if (id >= 0) t->eog[id] = 1;
    }
    return 0;
}

mf_tokenizer *mf_tokenizer_load(const mf_gguf *g, mf_err *err)
{
    const char *path = mf_gguf_path(g);
    const char *model;
    if (mf_gguf_get_str(g, "tokenizer.ggml.model", &model, err)) return NULL;
    int kind;
    if (!strcmp(model, "llama")) kind = MF_TOK_SPM;
    else if (!strcmp(model, "gpt2")) kind = MF_TOK_BPE;
    else {
        char b[64];
        mf_errf(err, "%s: tokenizer.ggml.model '%s' is not supported (minfer reads 'llama' and 'gpt2')", path,
                mf_tok_esc(model, strlen(model), b, sizeof b));
        return NULL;
    }
    if (kind == MF_TOK_BPE) {
        /* Only the o200k split pattern is implemented; "default" or no key (plain gpt2
         * vocabularies) get the same pattern. Other pre-types use other regexes, and
         * tokenizing with the wrong one would be silently wrong. */
        const char *pre;
        if (mf_gguf_opt_str(g, "tokenizer.ggml.pre", "default", &pre, err)) return NULL;
        if (strcmp(pre, "gpt-4o") && strcmp(pre, "default")) {
            char b[64];
            mf_errf(err, "%s: tokenizer.ggml.pre '%s' is not supported (minfer implements 'gpt-4o', the o200k pattern)",
                    path, mf_tok_esc(pre, strlen(pre), b, sizeof b));
            return NULL;
        }
    }

    const mf_gguf_kv *tokens, *scores, *types;
    if (mf_gguf_get_arr(g, "tokenizer.ggml.tokens", MF_GGUF_STR, &tokens, err)) return NULL;
    if (tokens->arr_n == 0 || tokens->arr_n > (uint64_t)INT32_MAX) {
        mf_errf(err, "%s: offset %llu: tokenizer.ggml.tokens holds %llu tokens (expected 1..%d)", path,
                (unsigned long long)tokens->offset, (unsigned long long)tokens->arr_n, INT32_MAX);
        return NULL;
    }
    int32_t n = (int32_t)tokens->arr_n;
    if (opt_token_arr(g, "tokenizer.ggml.scores", MF_GGUF_F32, n, &scores, err)) return NULL;
    if (opt_token_arr(g, "tokenizer.ggml.token_type", MF_GGUF_I32, n, &types, err)) return NULL;

    mf_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        mf_errf(err, "%s: out of memory", path);
        return NULL;
    }
    t->kind = kind;
    t->n_vocab = n;
    t->text = tokens->arr_str;
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n);
    t->eog = calloc((size_t)n, 1);
    if (!t->score || !t->type || !t->eog) {
        mf_errf(err, "%s: out of memory for %d tokens", path, n);
        goto fail;
    }
    for (int32_t i = 0; i < n; i++) {
        t->score[i] = scores ? mf_gguf_arr_f32(scores, (uint64_t)i) : 0.0f;
        /* SPM merges the pair of highest score: NaN has no order (-inf is a valid "never") */
        if (isnan(t->score[i])) {
            mf_errf(err, "%s: offset %llu: tokenizer.ggml.scores[%d] is NaN", path, (unsigned long long)scores->offset,
                    i);
            goto fail;
        }
        int32_t ty = types ? mf_gguf_arr_i32(types, (uint64_t)i) : MF_TT_NORMAL;
        t->type[i] = (uint8_t)(ty >= MF_TT_UNDEFINED && ty <= MF_TT_BYTE ? ty : MF_TT_UNDEFINED);
    }
    if (build_index(t, path, err)) goto fail;

    /* defaults: docs/tokenizer.md §1 for SPM; docs/tokenizer.md §5 for BPE (no BOS) */
    int spm = kind == MF_TOK_SPM;
    int32_t sep, pad;
    if (opt_id(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, n, &t->bos, err) ||
        opt_id(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, n, &t->eos, err) ||
        opt_id(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n, &t->unk, err) ||
        opt_id(g, "tokenizer.ggml.seperator_token_id", -1, n, &sep, err) ||
        opt_id(g, "tokenizer.ggml.padding_token_id", -1, n, &pad, err) ||
        mf_gguf_opt_bool(g, "tokenizer.ggml.add_bos_token", spm, &t->add_bos, err) ||
        mf_gguf_opt_bool(g, "tokenizer.ggml.add_eos_token", 0, &t->add_eos, err))
        goto fail;
    t->add_space_prefix = 0;
    if (spm && mf_gguf_opt_bool(g, "tokenizer.ggml.add_space_prefix", 1, &t->add_space_prefix, err)) goto fail;

    if (kind == MF_TOK_BPE) force_harmony_types(t);
    if (collect_specials(t, path, err) || mark_eog(t, g, err)) goto fail;
    if (spm) mf_spm_init(t);
    else if (mf_bpe_load(t, g, err)) goto fail;
    return t;
fail:
    mf_tokenizer_free(t);
    return NULL;
}

void mf_tokenizer_free(mf_tokenizer *t)
{
    if (!t) return;
    free(t->score);
    free(t->type);
    free(t->eog);
    free(t->slot);
    free(t->special);
    free(t->merge);
    free(t);
}

/* ------------------------------------------------------------------ accessors */

int mf_tok_kind(const mf_tokenizer *t) { return t->kind; }
int32_t mf_tok_n_vocab(const mf_tokenizer *t) { return t->n_vocab; }
int32_t mf_tok_bos(const mf_tokenizer *t) { return t->bos; }
int32_t mf_tok_eos(const mf_tokenizer *t) { return t->eos; }
int mf_tok_add_bos(const mf_tokenizer *t) { return t->add_bos; }

int mf_tok_is_eog(const mf_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab && t->eog[id]; }

const char *mf_tok_text(const mf_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = (size_t)t->text[id].len;
    return t->text[id].ptr;
}

int mf_tok_type(const mf_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->type[id] : -1; }

float mf_tok_score(const mf_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->score[id] : 0.0f; }

/* ------------------------------------------------------------------ candidate heap */

static int better(const mf_tok_cand *a, const mf_tok_cand *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

int mf_tok_heap_push(mf_tok_heap *h, mf_tok_cand c)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        mf_tok_cand *a = realloc(h->a, cap * sizeof *a);
        if (!a) return -1;
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && better(&c, &h->a[(i - 1) / 2])) { /* sift up */
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = c;
    return 0;
}

mf_tok_cand mf_tok_heap_pop(mf_tok_heap *h)
{
    mf_tok_cand top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) { /* sift `last` down from the root */
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && better(&h->a[c + 1], &h->a[c])) c++;
        if (!better(&h->a[c], &last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

/* ------------------------------------------------------------------ UTF-8 */

size_t mf_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    *cp = MF_UTF8_INVALID;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte (RFC 3629 §4) */
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0; /* no overlongs */
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90; /* no overlongs */
        if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else return 1;
    if (n < len || s[1] < lo || s[1] > hi) return 1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

size_t mf_utf8_complete(const char *s, size_t n)
{
    /* Only the last 3 bytes can belong to an unfinished sequence. Find the lead byte of
     * the last sequence; hold it back only if the bytes after it are a valid beginning
     * that more bytes could complete. Anything invalid is "complete": it never will be. */
    const uint8_t *u = (const uint8_t *)s;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t c = u[n - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation: look further back */
        size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
        if (need <= k) return n;
        if (k >= 2) {
            uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
            uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            if (u[n - k + 1] < lo || u[n - k + 1] > hi) return n;
        }
        return n - k;
    }
    return n;
}

/* ------------------------------------------------------------------ encoding */

/* A fragment of the partition: text [off, off+len) when id < 0, else one special token. */
typedef struct frag {
    int32_t id;
    size_t off, len;
} frag;

typedef struct frag_list {
    frag *a;
    size_t n, cap;
} frag_list;

static int frag_push(frag_list *l, frag f)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        frag *a = realloc(l->a, cap * sizeof *a);
        if (!a) return -1;
        l->a = a;
        l->cap = cap;
    }
    l->a[l->n++] = f;
    return 0;
}

/* docs/tokenizer.md §2 (both algorithms): candidates longest first; each one splits every
 * remaining text fragment at its exact occurrences, left to right, non-overlapping;
 * matched tokens are never scanned again. */
static int partition(const mf_tokenizer *t, const char *text, size_t len, int parse_special, frag_list *cur,
                     mf_err *err)
{
    frag_list nxt = {0};
    if (len && frag_push(cur, (frag){-1, 0, len})) goto oom;
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != MF_TT_USER_DEFINED) continue;
        const char *s = t->text[id].ptr;
        size_t sl = (size_t)t->text[id].len;
        if (!memmem(text, len, s, sl)) continue; /* absent from the whole text: skip the pass */
        nxt.n = 0;
        for (size_t i = 0; i < cur->n; i++) {
            frag f = cur->a[i];
            if (f.id >= 0) {
                if (frag_push(&nxt, f)) goto oom;
                continue;
            }
            for (;;) {
                const char *p = memmem(text + f.off, f.len, s, sl);
                if (!p) {
                    if (f.len && frag_push(&nxt, f)) goto oom;
                    break;
                }
                size_t at = (size_t)(p - text);
                if (at > f.off && frag_push(&nxt, (frag){-1, f.off, at - f.off})) goto oom;
                if (frag_push(&nxt, (frag){id, at, sl})) goto oom;
                f.len -= at + sl - f.off;
                f.off = at + sl;
            }
        }
        frag_list tmp = *cur;
        *cur = nxt;
        nxt = tmp;
    }
    free(nxt.a);
    return 0;
oom:
    free(nxt.a);
    return mf_errf(err, "tokenize: out of memory splitting %zu bytes at special tokens", len);
}

int64_t mf_tokenize(const mf_tokenizer *t, const char *text, size_t len, int add_special, int parse_special,
                    int32_t *out, int64_t cap, mf_err *err)
{
    if (!t || (!text && len) || cap < 0 || (!out && cap > 0))
        return mf_errf(err, "tokenize: bad arguments (no tokenizer, no text for %zu bytes, or no room for cap %lld)",
                       len, (long long)cap);
    if (len > (size_t)INT32_MAX / 4)
        return mf_errf(err, "tokenize: text of %zu bytes is too long (at most %d)", len, INT32_MAX / 4);
    frag_list fr = {0};
    if (partition(t, text, len, parse_special, &fr, err)) {
        free(fr.a);
        return -1;
    }

    /* docs/tokenizer.md §3: BOS, then the fragments; an SPM text fragment gets the space
     * prefix when it comes first or right after a special token. */
    mf_tok_out o = {out, cap, 0};
    if (add_special && t->add_bos && t->bos >= 0) mf_tok_emit(&o, t->bos);
    int prev_special = 1;
    for (size_t i = 0; i < fr.n; i++) {
        const frag *f = &fr.a[i];
        if (f->id >= 0) {
            mf_tok_emit(&o, f->id);
            prev_special = 1;
            continue;
        }
        int rc = t->kind == MF_TOK_SPM
                     ? mf_spm_encode(t, text + f->off, f->len, t->add_space_prefix && prev_special, &o, err)
                     : mf_bpe_encode(t, text + f->off, f->len, &o, err);
        if (rc) {
            free(fr.a);
            return -1;
        }
        prev_special = 0;
    }
    if (add_special && t->add_eos && t->eos >= 0) mf_tok_emit(&o, t->eos);
    free(fr.a);
    return o.n;
}

/* ------------------------------------------------------------------ decoding */

/* Output of piece bytes: the first `cap` are stored, all are counted. `strip` drops the
 * next byte if it is a space (the leading-space rule of detokenize). */
typedef struct writer {
    char *out;
    size_t cap, n;
    int strip;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (!n) return;
    if (w->strip) {
        w->strip = 0;
        if (s[0] == ' ') {
            s++;
            n--;
        }
    }
    for (size_t i = 0; i < n; i++, w->n++)
        if (w->n < w->cap) w->out[w->n] = s[i];
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* docs/tokenizer.md §5: the bytes one token stands for. */
static void piece(const mf_tokenizer *t, int32_t id, int render_special, writer *w)
{
    if (id < 0 || id >= t->n_vocab) return;
    const char *s = t->text[id].ptr;
    size_t n = (size_t)t->text[id].len;
    switch (t->type[id]) {
    case MF_TT_USER_DEFINED: put(w, s, n); return;
    case MF_TT_CONTROL:
    case MF_TT_UNKNOWN:
        if (render_special) put(w, s, n);
        return;
    case MF_TT_NORMAL:
        if (t->kind == MF_TOK_BPE) {
            /* docs/tokenizer.md §4.1: each code point stands for one byte; one outside
             * the map (only in a malformed vocabulary) is kept as it is */
            for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t l = mf_utf8_decode((const uint8_t *)s + i, n - i, &cp);
                int b = mf_gpt2_byte(cp);
                if (b >= 0) {
                    char c = (char)b;
                    put(w, &c, 1);
                } else put(w, s + i, l);
                i += l;
            }
            return;
        }
        for (size_t i = 0; i < n;) { /* SPM: every U+2581 (E2 96 81) is a space */
            if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) {
                put(w, " ", 1);
                i += 3;
            } else {
                put(w, s + i, 1);
                i++;
            }
        }
        return;
    case MF_TT_BYTE:
        if (t->kind == MF_TOK_SPM && n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && hexval(s[3]) >= 0 &&
            hexval(s[4]) >= 0) {
            char b = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            put(w, &b, 1);
        }
        return;
    default: /* UNUSED, UNDEFINED: nothing */ return;
    }
}

size_t mf_tok_piece(const mf_tokenizer *t, int32_t id, int render_special, char *out, size_t cap)
{
    writer w = {out, out ? cap : 0, 0, 0};
    piece(t, id, render_special, &w);
    return w.n;
}

size_t mf_detokenize(const mf_tokenizer *t, const int32_t *ids, size_t n, int remove_special, int render_special,
                     char *out, size_t cap)
{
    /* docs/tokenizer.md §5: the leading space of the first piece is removed (it is the one
     * the encoder added), unless a BOS was dropped first. */
    int strip = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        ids++;
        n--;
        strip = 0;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos) n--;
    writer w = {out, out ? cap : 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        w.strip = strip;
        piece(t, ids[i], render_special, &w);
        w.strip = 0;
        strip = 0;
    }
    return w.n;
}
