/* tokenizer_bpe.c — byte-level BPE for tokenizer.ggml.model = "gpt2" (gpt-oss, o200k;
 * docs/tokenizer.md §4.1, docs/tokenizer.md §4.3).
 *
 *   1. the text fragment is cut into pieces by the o200k pre-tokenizer (tokenizer_o200k.c);
 *   2. a piece that is itself an ordinary token is that token (tiktoken's rule);
 *   3. otherwise start from one symbol per byte (the token of its GPT-2 mapped character)
 *      and repeatedly merge the adjacent pair with the lowest merge rank, ties leftmost,
 *      with a min-heap of candidate pairs: O(n log n) however long the piece (a megabyte
 *      of letters is one piece).
 *
 * Merges are stored by token ids: the pair (id of A, id of B) -> (rank, id of AB). The
 * loader rejects a merge whose A, B or AB is not a token, so every symbol the loop makes
 * has an id.
 */
#include "tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ GPT-2 byte map */

/* Bytes that stand for themselves: printable ASCII 0x21-0x7E and Latin-1 0xA1-0xAC,
 * 0xAE-0xFF. The other 68 (0x00-0x20, 0x7F-0xA0, 0xAD), in increasing order, become
 * U+0100, U+0101, ... U+0143 (docs/tokenizer.md §4.1: space -> U+0120 'Ġ'). */
static int kept(uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

uint32_t mf_gpt2_cp(uint8_t b)
{
    if (kept(b)) return b;
    if (b <= 0x20) return 0x100 + b;               /* 33 bytes: 0x00..0x20 */
    if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F); /* 34 bytes: 0x7F..0xA0 */
    return 0x100 + 67;                             /* 0xAD */
}

int mf_gpt2_byte(uint32_t cp)
{
    if (cp < 0x100) return kept(cp) ? (int)cp : -1;
    if (cp <= 0x100 + 32) return (int)(cp - 0x100);
    if (cp <= 0x100 + 66) return (int)(cp - 0x100 - 33 + 0x7F);
    if (cp == 0x100 + 67) return 0xAD;
    return -1;
}

/* UTF-8 of a mapped code point (all are < U+0800: one or two bytes). */
static size_t put_cp(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* ------------------------------------------------------------------ merge table */

static const mf_bpe_merge *find_merge(const mf_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint64_t i = mf_tok_mix(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge[i].key == key) return &t->merge[i];
        if (t->merge[i].key == UINT64_MAX) return NULL;
    }
}

int mf_bpe_load(mf_tokenizer *t, const mf_gguf *g, mf_err *err)
{
    const char *path = mf_gguf_path(g);
    for (int b = 0; b < 256; b++) {
        char u[2];
        t->bpe_byte[b] = mf_tok_find2(t, u, put_cp(mf_gpt2_cp((uint8_t)b), u), "", 0);
    }

    const mf_gguf_kv *kv;
    if (mf_gguf_get_arr(g, "tokenizer.ggml.merges", MF_GGUF_STR, &kv, err)) return -1;
    if (kv->arr_n > (uint64_t)INT32_MAX)
        return mf_errf(err, "%s: offset %llu: tokenizer.ggml.merges holds %llu merges (at most %d)", path,
                       (unsigned long long)kv->offset, (unsigned long long)kv->arr_n, INT32_MAX);
    uint64_t cap = 16;
    while (cap < 2 * kv->arr_n) cap *= 2;
    t->merge = malloc(cap * sizeof *t->merge);
    if (!t->merge) return mf_errf(err, "%s: out of memory for %llu merges", path, (unsigned long long)kv->arr_n);
    for (uint64_t i = 0; i < cap; i++) t->merge[i].key = UINT64_MAX;
    t->merge_mask = cap - 1;

    for (uint64_t r = 0; r < kv->arr_n; r++) {
        const mf_str *m = &kv->arr_str[r];
        char b1[64], b2[64];
        /* "A B": split at the first space at index >= 1 (docs/tokenizer.md §4.3) */
        const char *sp = m->len >= 2 ? memchr(m->ptr + 1, ' ', m->len - 1) : NULL;
        if (!sp)
            return mf_errf(err, "%s: tokenizer.ggml.merges[%llu] '%s' is not two tokens separated by a space", path,
                           (unsigned long long)r, mf_tok_esc(m->ptr, m->len, b1, sizeof b1));
        size_t na = (size_t)(sp - m->ptr), nb = m->len - na - 1;
        int32_t a = mf_tok_find2(t, m->ptr, na, "", 0), b = mf_tok_find2(t, sp + 1, nb, "", 0);
        int32_t ab = mf_tok_find2(t, m->ptr, na, sp + 1, nb);
        if (a < 0 || b < 0 || ab < 0)
            return mf_errf(err, "%s: tokenizer.ggml.merges[%llu] '%s': %s is not a token", path, (unsigned long long)r,
                           mf_tok_esc(m->ptr, m->len, b1, sizeof b1),
                           a < 0   ? mf_tok_esc(m->ptr, na, b2, sizeof b2)
                           : b < 0 ? mf_tok_esc(sp + 1, nb, b2, sizeof b2)
                                   : "the concatenation");
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        uint64_t i = mf_tok_mix(key) & t->merge_mask;
        while (t->merge[i].key != UINT64_MAX && t->merge[i].key != key) i = (i + 1) & t->merge_mask;
        if (t->merge[i].key == key) continue; /* a repeated pair keeps its first (lowest) rank */
        t->merge[i] = (mf_bpe_merge){key, (int32_t)r, ab};
    }
    return 0;
}

/* ------------------------------------------------------------------ encoding */

/* one symbol: a token covering n bytes of the piece; n = 0 once merged into its left
 * neighbour; id -1 only for a byte whose token the vocabulary lacks */
typedef struct sym {
    int32_t id, prev, next, n;
} sym;

static int try_pair(const mf_tokenizer *t, const sym *s, int32_t l, int32_t r, mf_tok_heap *h)
{
    if (l < 0 || r < 0 || s[l].id < 0 || s[r].id < 0) return 0;
    const mf_bpe_merge *m = find_merge(t, s[l].id, s[r].id);
    if (!m) return 0;
    /* lowest rank first = highest -rank; ties pop the leftmost (smaller l) */
    return mf_tok_heap_push(h, (mf_tok_cand){-(double)m->rank, l, r, s[l].n + s[r].n, m->id});
}

/* One piece of the pre-tokenizer. `mapped` has room for 2n bytes, `s` for n symbols. */
static int encode_piece(const mf_tokenizer *t, const uint8_t *p, size_t n, char *mapped, sym *s, mf_tok_heap *h,
                        mf_tok_out *o, mf_err *err)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += put_cp(mf_gpt2_cp(p[i]), mapped + m);
    int32_t whole = mf_tok_find2(t, mapped, m, "", 0);
    if (whole >= 0 && t->type[whole] == MF_TT_NORMAL) {
        mf_tok_emit(o, whole);
        return 0;
    }

    int32_t ns = (int32_t)n;
    for (int32_t i = 0; i < ns; i++) s[i] = (sym){t->bpe_byte[p[i]], i - 1, i + 1, 1};
    s[ns - 1].next = -1;
    h->n = 0;
    for (int32_t i = 0; i + 1 < ns; i++)
        if (try_pair(t, s, i, i + 1, h)) goto oom;
    while (h->n) {
        mf_tok_cand c = mf_tok_heap_pop(h);
        sym *l = &s[c.left], *r = &s[c.right];
        /* stale: a side was emptied or grew since the push (sizes only grow) */
        if (l->n == 0 || r->n == 0 || l->n + r->n != c.size) continue;
        l->id = c.id;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        if (try_pair(t, s, l->prev, c.left, h) || try_pair(t, s, c.left, l->next, h)) goto oom;
    }
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        if (s[i].id < 0) return mf_errf(err, "tokenize: byte 0x%02X has no token in this vocabulary", p[i]);
        mf_tok_emit(o, s[i].id);
    }
    return 0;
oom:
    return mf_errf(err, "tokenize: out of memory merging a piece of %zu bytes", n);
}

int mf_bpe_encode(const mf_tokenizer *t, const char *text, size_t len, mf_tok_out *o, mf_err *err)
{
    char *mapped = malloc(2 * len);
    sym *s = malloc(len * sizeof *s);
    mf_tok_heap h = {0};
    int rc = 0;
    if (!mapped || !s) rc = mf_errf(err, "tokenize: out of memory for a fragment of %zu bytes", len);
    const uint8_t *u = (const uint8_t *)text;
    for (size_t pos = 0, end; rc == 0 && pos < len; pos = end) {
        end = mf_o200k_next(u, len, pos);
        rc = encode_piece(t, u + pos, end - pos, mapped, s, &h, o, err);
    }
    free(mapped);
    free(s);
    free(h.a);
    return rc;
}
