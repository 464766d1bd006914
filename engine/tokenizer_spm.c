/* tokenizer_spm.c — SentencePiece-style tokenization of one text fragment, as llama.cpp
 * does it for tokenizer.ggml.model = "llama" (docs/tokenizer.md §3).
 *
 *   1. escape: optional leading space, then every ' ' becomes U+2581 "▁" (E2 96 81);
 *   2. symbols: one per UTF-8 character (by the lead byte only), in a linked list;
 *   3. merge: repeatedly join the adjacent pair whose concatenation is the vocabulary
 *      entry of highest score (ties: leftmost), using a max-heap of candidate pairs;
 *   4. output each symbol's id, or, for a character the vocabulary lacks, one <0xXX>
 *      byte token per byte (byte fallback).
 *
 * Worked example (traced in docs/tokenizer.md §3): "Hello world" on
 * stories260K gives ▁He | ll | o | ▁w | or | ld.
 */
#include "tokenizer_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mf_spm_init(mf_tokenizer *t)
{
    /* byte fallback (docs/tokenizer.md §3): "<0xXX>" with uppercase hex digits,
     * else the token whose text is that one byte */
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        int32_t id = mf_tok_find2(t, name, 6, "", 0);
        if (id < 0) {
            char c = (char)b;
            id = mf_tok_find2(t, &c, 1, "", 0);
        }
        t->spm_byte[b] = id;
    }
}

/* one symbol: bytes [off, off+n) of the escaped text; n = 0 once merged into its left
 * neighbour */
typedef struct sym {
    int32_t prev, next;
    int32_t off, n;
} sym;

/* Lead-byte length (docs/tokenizer.md §3): no validation, clamped at the end. */
static int32_t char_len(uint8_t c)
{
    static const int8_t by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return by_high_nibble[c >> 4];
}

/* Push the pair (l, r) if l..r together are a vocabulary entry (of any type). */
static int try_pair(const mf_tokenizer *t, const char *buf, const sym *s, int32_t l, int32_t r, mf_tok_heap *h)
{
    if (l < 0 || r < 0) return 0;
    int32_t size = s[l].n + s[r].n;
    int32_t id = mf_tok_find2(t, buf + s[l].off, (size_t)size, "", 0);
    if (id < 0) return 0;
    return mf_tok_heap_push(h, (mf_tok_cand){t->score[id], l, r, size, id});
}

int mf_spm_encode(const mf_tokenizer *t, const char *text, size_t len, int add_prefix, mf_tok_out *o, mf_err *err)
{
    /* 1. escape (the caller bounds len, so the escaped length fits an int32) */
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t elen = (add_prefix ? 3 : 0) + len + 2 * spaces;
    char *buf = malloc(elen ? elen : 1);
    sym *s = malloc((elen ? elen : 1) * sizeof *s);
    mf_tok_heap h = {0};
    int rc = -1;
    if (!buf || !s) {
        mf_errf(err, "tokenize: out of memory for a fragment of %zu bytes", len);
        goto done;
    }
    size_t e = 0;
    if (add_prefix) {
        memcpy(buf, "\xE2\x96\x81", 3);
        e = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + e, "\xE2\x96\x81", 3);
            e += 3;
        } else buf[e++] = text[i];
    }

    /* 2. symbols */
    int32_t ns = 0;
    for (int32_t off = 0; off < (int32_t)elen; ns++) {
        int32_t n = char_len((uint8_t)buf[off]);
        if (n > (int32_t)elen - off) n = (int32_t)elen - off;
        s[ns] = (sym){ns - 1, ns + 1, off, n};
        off += n;
    }
    if (ns) s[ns - 1].next = -1;

    /* 3. merge: seed every adjacent pair, then pop the best. A popped pair is stale when
     * one side was emptied or grew since it was pushed (sizes only grow, so comparing
     * the summed length is exact). */
    for (int32_t i = 0; i + 1 < ns; i++)
        if (try_pair(t, buf, s, i, i + 1, &h)) goto oom;
    while (h.n) {
        mf_tok_cand c = mf_tok_heap_pop(&h);
        sym *l = &s[c.left], *r = &s[c.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != c.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        if (try_pair(t, buf, s, l->prev, c.left, &h) || try_pair(t, buf, s, c.left, l->next, &h)) goto oom;
    }

    /* 4. output */
    for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) {
        int32_t id = mf_tok_find2(t, buf + s[i].off, (size_t)s[i].n, "", 0);
        if (id >= 0) {
            mf_tok_emit(o, id);
            continue;
        }
        for (int32_t j = 0; j < s[i].n; j++) {
            uint8_t b = (uint8_t)buf[s[i].off + j];
            if (t->spm_byte[b] < 0) {
                mf_errf(
                    err,
                    "tokenize: byte 0x%02X has no token (neither <0x%02X> nor the byte itself is in the vocabulary)", b,
                    b);
                goto done;
            }
            mf_tok_emit(o, t->spm_byte[b]);
        }
    }
    rc = 0;
    goto done;
oom:
    mf_errf(err, "tokenize: out of memory merging a fragment of %zu bytes", len);
done:
    free(buf);
    free(s);
    free(h.a);
    return rc;
}
