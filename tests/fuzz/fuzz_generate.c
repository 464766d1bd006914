/* fuzz_generate.c — libFuzzer entry point: the generation state machine (engine/generate.c,
 * docs/generate.md §2) on any token sequence, stop strings, limits and cancellation, in plain
 * text and in harmony (its output parser included).
 *
 * Input layout:
 *   byte 0    bit 0: harmony (else plain text), bit 1: through mf_gen_next with logits (the
 *             argmax is the token to feed; temperature 0) instead of mf_gen_next_token,
 *             bit 2: logprobs (with bit 1), bits 3-4: the number of stop strings (0..3),
 *             bit 5: cancel from the callback at delta byte 3, bit 6: no max_tokens
 *   byte 1    max_tokens
 *   byte 2    the context positions left before the first token (one fewer per token)
 *   byte 3    the delta at which to cancel; top_logprobs (value % 4)
 *   then      the stop strings, each ended by a NUL (any bytes, UTF-8 or not)
 *   then      16-bit token ids (value % (V + 2) - 1: -1 and V are outside the vocabulary),
 *             at most 512 of them; after the answer ends, two more calls must change nothing
 * The vocabulary is fuzz_vocab.h's (harmony tokens, bytes that split "é"). mf_gen reads only
 * the model's tokenizer and vocabulary size, so the model is a zeroed mf_model with those two.
 * Checked, for every input:
 *   - the finish reason is one of the enum, never NONE; an error carries a message;
 *   - every stream's deltas put together are the result's text (content, reasoning, each
 *     call's arguments); no delta of content or reasoning ends inside a UTF-8 character of
 *     what was delivered; no delivered content holds a stop string;
 *   - a call is announced once (id and name on a delta of length 0) before its arguments;
 *   - max_tokens and the context bound the tokens taken; logprobs report each taken token
 *     once, in order, with the token's id;
 *   - plain text: against a plain reference (the tokens' pieces up to the first end token):
 *     the content is the reference text cut before the first stop string to complete (the
 *     earliest of those found after the same token), or all of it; a cancelled answer
 *     delivers a prefix of it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_vocab.h"
#include "generate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IDS 512
#define MAX_DELTAS 4096

typedef struct seen {
    char *text[3]; /* content, reasoning, arguments of all calls (checked per call below) */
    size_t len[3];
    size_t ends[2][MAX_DELTAS]; /* where the content's and the reasoning's deltas end */
    int n_ends[2];
    int n_deltas, cancel_at, n_calls, bad;
    size_t call_start[64]; /* where each call's arguments begin in text[2] */
    int32_t lp_id[MAX_IDS + 8];
    int n_lp;
} seen;

static void add(seen *s, int k, const char *t, size_t n)
{
    char *p = realloc(s->text[k], s->len[k] + n + 1);
    if (!p) __builtin_trap();
    memcpy(p + s->len[k], t, n);
    s->len[k] += n;
    p[s->len[k]] = 0;
    s->text[k] = p;
}

static int on_delta(void *user, const mf_delta *d)
{
    seen *s = user;
    if (d->kind < MF_DELTA_CONTENT || d->kind > MF_DELTA_TOOL_CALL || (d->len && !d->text)) __builtin_trap();
    int k = d->kind;
    if (k == MF_DELTA_TOOL_CALL && (d->tool_id || d->tool_name)) {
        /* a new call: announced with both, empty, with the next index */
        if (!d->tool_id || !d->tool_name || d->len || d->tool_index != s->n_calls || s->n_calls >= 64) s->bad = 1;
        else s->call_start[s->n_calls++] = s->len[2];
    } else if (k == MF_DELTA_TOOL_CALL && d->tool_index != s->n_calls - 1) {
        s->bad = 1; /* arguments of a call not announced, or not the open one */
    }
    add(s, k, d->text ? d->text : "", d->len);
    if (d->len && k != MF_DELTA_TOOL_CALL && s->n_ends[k] < MAX_DELTAS) s->ends[k][s->n_ends[k]++] = s->len[k];
    for (int i = 0; i < d->n_lp; i++) {
        if (!d->lp || s->n_lp >= MAX_IDS + 8) __builtin_trap();
        s->lp_id[s->n_lp++] = d->lp[i].id;
    }
    return s->cancel_at && ++s->n_deltas >= s->cancel_at;
}

/* 1 when offset e of t[0..n) falls inside a well-formed multi-byte UTF-8 character */
static int splits(const char *text, size_t n, size_t e)
{
    const uint8_t *t = (const uint8_t *)text;
    for (size_t k = 1; k <= 3 && k <= e; k++) {
        uint8_t c = t[e - k];
        if ((c & 0xC0) == 0x80) continue;
        size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
        if (need <= k || e - k + need > n) return 0;
        uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80, hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
        if (t[e - k + 1] < lo || t[e - k + 1] > hi) return 0;
        for (size_t j = 2; j < need; j++)
            if ((t[e - k + j] & 0xC0) != 0x80) return 0;
        return 1;
    }
    return 0;
}

/* the earliest stop string in t[0..n): its offset (n when none), the stop's index in *which
 * (the lowest index at that offset) */
static size_t first_stop(const char *t, size_t n, char **stop, int n_stop, int *which)
{
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < n_stop; j++) {
            size_t l = strlen(stop[j]);
            if (l && n - i >= l && !memcmp(t + i, stop[j], l)) {
                *which = j;
                return i;
            }
        }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    const mf_tokenizer *tok = mf_fuzz_harmony_vocab();
    int V = mf_tok_n_vocab(tok);
    mf_model m;
    memset(&m, 0, sizeof m);
    m.tok = (mf_tokenizer *)tok;
    m.hp.n_vocab = V;

    int flags = data[0], harmony = flags & 1, with_logits = (flags >> 1) & 1, n_stop = (flags >> 3) & 3;
    mf_gen_params p = mf_gen_defaults();
    p.sampler.temp = 0;
    p.format = harmony ? MF_CHAT_HARMONY : MF_CHAT_NONE;
    p.max_tokens = flags & 64 ? -1 : data[1];
    p.logprobs = with_logits && (flags & 4);
    p.top_logprobs = p.logprobs ? data[3] % 4 : 0;
    int ctx_left = data[2];
    const uint8_t *at = data + 4, *end = data + size;
    char *stop[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n_stop; i++) {
        const uint8_t *z = memchr(at, 0, (size_t)(end - at));
        size_t n = z ? (size_t)(z - at) : (size_t)(end - at);
        stop[i] = malloc(n + 1);
        if (!stop[i]) __builtin_trap();
        memcpy(stop[i], at, n);
        stop[i][n] = 0;
        at = z ? z + 1 : end;
    }
    p.stop = (const char *const *)stop;
    p.n_stop = n_stop;

    seen s;
    memset(&s, 0, sizeof s);
    s.cancel_at = flags & 32 ? data[3] + 1 : 0;
    mf_err err;
    mf_gen *g = mf_gen_new(&m, &p, on_delta, &s, &err);
    int empty_stop = 0;
    for (int i = 0; i < n_stop; i++) empty_stop |= !stop[i][0];
    if (!g) {
        /* refused only for an empty stop string, with the reason */
        if (!empty_stop || !err.msg[0]) __builtin_trap();
        goto out;
    }
    if (empty_stop) __builtin_trap();

    int32_t ids[MAX_IDS];
    int n_ids = 0;
    for (; at + 1 < end && n_ids < MAX_IDS; at += 2) ids[n_ids++] = (int32_t)(at[0] | at[1] << 8) % (V + 2) - 1;
    float *logits = malloc(sizeof(float) * (size_t)V);
    if (!logits) __builtin_trap();
    int taken = 0, ended = 0; /* tokens fed before the end; the answer ended (-1) */
    for (int i = 0; i < n_ids && !ended; i++) {
        int left = ctx_left - i;
        int32_t r;
        if (with_logits && ids[i] >= 0 && ids[i] < V) {
            for (int v = 0; v < V; v++) logits[v] = v == ids[i] ? 1.0f : 0.0f;
            r = mf_gen_next(g, logits, ids, i, left);
        } else {
            r = mf_gen_next_token(g, ids[i], left);
        }
        if (r >= 0 && r != ids[i]) __builtin_trap(); /* the token to evaluate is the one taken */
        ended = r < 0;
        taken++;
    }
    const mf_gen_result *res = mf_gen_status(g);
    if (!ended) {
        /* going on means not finished, except max_tokens 0: finished before any token */
        if (res->finish != (p.max_tokens == 0 ? MF_FINISH_LENGTH : MF_FINISH_NONE)) __builtin_trap();
        res = mf_gen_finish(g, MF_FINISH_LENGTH);
    }
    /* a finished answer takes nothing more */
    int n_gen = res->n_generated, finish = res->finish;
    if (mf_gen_next_token(g, 0, 5) != -1 || mf_gen_next(g, logits, NULL, 0, 5) != -1) __builtin_trap();
    res = mf_gen_status(g);
    if (res->n_generated != n_gen || res->finish != finish) __builtin_trap();
    free(logits);

    if (finish <= MF_FINISH_NONE || finish > MF_FINISH_ERROR) __builtin_trap();
    if (finish == MF_FINISH_ERROR && !res->error[0]) __builtin_trap();
    if (!res->content) __builtin_trap();
    if (n_gen > taken || (p.max_tokens >= 0 && n_gen > p.max_tokens)) __builtin_trap();
    if (finish == MF_FINISH_LENGTH && ended && n_gen != p.max_tokens) __builtin_trap();
    if (finish == MF_FINISH_CONTEXT && n_gen != (ctx_left < 0 ? 0 : ctx_left) + 1) __builtin_trap();
    if (s.bad) __builtin_trap();
    /* the streams delivered are the result */
    if (strcmp(s.text[0] ? s.text[0] : "", res->content)) __builtin_trap();
    if (strcmp(s.text[1] ? s.text[1] : "", res->reasoning ? res->reasoning : "")) __builtin_trap();
    if ((res->reasoning && !res->reasoning[0]) || s.n_calls != res->n_calls) __builtin_trap();
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < s.n_ends[k]; i++)
            if (splits(s.text[k], s.len[k], s.ends[k][i])) __builtin_trap();
    for (int c = 0; c < res->n_calls; c++) {
        size_t from = s.call_start[c], to = c + 1 < s.n_calls ? s.call_start[c + 1] : s.len[2];
        const char *a = res->calls[c].arguments;
        if (!res->calls[c].id || !res->calls[c].name || !a) {
            if (finish != MF_FINISH_CANCELLED && finish != MF_FINISH_ERROR) __builtin_trap();
            continue; /* cut off: the call never closed */
        }
        if (strlen(a) != to - from || memcmp(a, s.text[2] + from, to - from)) __builtin_trap();
    }
    if (res->n_calls && !harmony) __builtin_trap();
    if (finish == MF_FINISH_TOOL_CALLS && !res->n_calls) __builtin_trap();
    int which = -1;
    size_t clen = strlen(res->content);
    if (first_stop(res->content, clen, stop, n_stop, &which) != clen) __builtin_trap();
    if (p.logprobs && finish != MF_FINISH_CANCELLED) {
        if (s.n_lp != n_gen) __builtin_trap();
        for (int i = 0; i < s.n_lp; i++)
            if (s.lp_id[i] != ids[i]) __builtin_trap();
    }

    if (!harmony) {
        /* the reference: pieces up to the first end token, the stop found after each one */
        char *ref = NULL;
        size_t rn = 0, cut = (size_t)-1;
        int ref_stop = -1, ref_n = 0;
        for (int i = 0; i < taken && i < n_gen; i++) {
            ref_n = i + 1;
            if (ids[i] < 0 || ids[i] >= V) break;
            if (mf_tok_is_eog(tok, ids[i])) break;
            char pc[64];
            size_t k = mf_tok_piece(tok, ids[i], 0, pc, sizeof pc);
            if (k > sizeof pc) __builtin_trap();
            ref = realloc(ref, rn + k + 1);
            if (!ref) __builtin_trap();
            memcpy(ref + rn, pc, k);
            rn += k;
            size_t o = first_stop(ref, rn, stop, n_stop, &ref_stop);
            if (o < rn) {
                cut = o;
                break;
            }
        }
        if (cut != (size_t)-1) {
            if (finish == MF_FINISH_CANCELLED) {
                if (clen > cut || (clen && memcmp(res->content, ref, clen))) __builtin_trap();
            } else if (finish != MF_FINISH_STOP || res->stop_index != ref_stop || clen != cut ||
                       (cut && memcmp(ref, res->content, cut)) || n_gen != ref_n) {
                __builtin_trap();
            }
        } else if (finish == MF_FINISH_CANCELLED) {
            if (clen > rn || (clen && memcmp(res->content, ref, clen))) __builtin_trap();
        } else {
            if (clen != rn || (rn && memcmp(ref, res->content, rn))) __builtin_trap();
            if (finish == MF_FINISH_STOP && res->stop_index != -1) __builtin_trap();
        }
        free(ref);
    }
    mf_gen_free(g);
out:
    for (int k = 0; k < 3; k++) free(s.text[k]);
    for (int i = 0; i < n_stop; i++) free(stop[i]);
    return 0;
}
