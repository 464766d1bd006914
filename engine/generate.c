/* generate.c — one answer: the token-level state machine (mf_gen) and the single-sequence
 * driver (mf_generate). Contract: generate.h; the chapter: docs/generate.md.
 *
 * Text flows in streams: the content, the reasoning (harmony's analysis channel) and the
 * arguments of the tool call being written. Each stream keeps everything generated into it
 * and how much of that was delivered; what lies between is held back:
 *   - an unfinished UTF-8 character at the end (a token may end inside one), in every
 *     stream;
 *   - in the content, the longest tail that is a proper prefix of a stop string: the next
 *     token may complete it. A stop string found ends the answer; the text before it is
 *     delivered, the rest never.
 * Nothing before the delivered mark can begin a stop string: it was only delivered once no
 * stop string could start there, so the search for one starts at the mark.
 */
#include "generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "minfer.h"
#include "strbuf.h"

const char *mf_finish_name(int f)
{
    switch (f) {
    case MF_FINISH_STOP: return "stop";
    case MF_FINISH_LENGTH: return "length";
    case MF_FINISH_TOOL_CALLS: return "tool_calls";
    case MF_FINISH_CONTEXT: return "context";
    case MF_FINISH_CANCELLED: return "cancelled";
    case MF_FINISH_ERROR: return "error";
    default: return "none";
    }
}

mf_gen_params mf_gen_defaults(void)
{
    mf_gen_params p = {.sampler = mf_sampler_defaults(), .max_tokens = -1, .format = MF_CHAT_NONE};
    return p;
}

void mf_gen_result_free(mf_gen_result *r)
{
    if (!r) return;
    free(r->content);
    free(r->reasoning);
    for (int i = 0; i < r->n_calls; i++) {
        free(r->calls[i].id);
        free(r->calls[i].name);
        free(r->calls[i].arguments);
    }
    free(r->calls);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ the state */

enum { S_CONTENT, S_REASONING, S_ARGS, N_STREAMS };

typedef struct stream {
    mf_sb text;  /* everything generated into the stream */
    size_t sent; /* bytes of it delivered */
} stream;

/* A generated token's logprob waiting for the delta that reports it: the one carrying its
 * first byte (stream, at), or the next delta of any kind for a token without bytes. */
typedef struct lp_meta {
    int stream, call; /* stream -1: no bytes */
    size_t at;
    int32_t top_id[MF_TOP_LOGPROBS_MAX];
    float top_lp[MF_TOP_LOGPROBS_MAX];
} lp_meta;

struct mf_gen {
    const mf_model *m;
    const mf_tokenizer *tok;
    int n_vocab;
    mf_gen_params p;
    char **stop; /* copies of the stop strings */
    size_t *stop_len, stop_max;
    mf_sampler *smp;
    int greedy;
    mf_delta_fn on_delta;
    void *user;
    int cancelled; /* the callback asked to stop: nothing more is delivered */
    int harmony;
    mf_harmony hm;
    stream st[N_STREAMS];    /* S_ARGS: the open call's arguments */
    int call_open, call_msg; /* a call is being written; the harmony message it is */
    int cap_calls;
    mf_token_logprob *lpv; /* waiting logprobs, [lp_head, lp_n) */
    lp_meta *lpm;
    int lp_head, lp_n, lp_cap;
    float *lp_logits; /* the logits before the sampler changes them */
    char *piece;
    size_t piece_cap;
    mf_gen_result r;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int mf_gen_check(const mf_model *m, const mf_gen_params *p, int n_ctx, mf_err *err)
{
    if (p->n_stop < 0 || (p->n_stop > 0 && !p->stop)) return mf_errf(err, "bad stop string list");
    for (int i = 0; i < p->n_stop; i++) {
        if (!p->stop[i] || !p->stop[i][0]) return mf_errf(err, "stop string %d is empty", i + 1);
        if (n_ctx > 0) {
            mf_err e2;
            int64_t k = mf_tokenize(m->tok, p->stop[i], strlen(p->stop[i]), 0, 0, NULL, 0, &e2);
            if (k > n_ctx)
                return mf_errf(err, "stop string %d is %lld tokens long but the context holds %d", i + 1, (long long)k,
                               n_ctx);
        }
    }
    if (p->top_logprobs < 0 || p->top_logprobs > MF_TOP_LOGPROBS_MAX)
        return mf_errf(err, "top_logprobs %d is outside 0..%d", p->top_logprobs, MF_TOP_LOGPROBS_MAX);
    if (p->top_logprobs > 0 && !p->logprobs) return mf_errf(err, "top_logprobs needs logprobs");
    if (p->format < MF_CHAT_NONE || p->format > MF_CHAT_HARMONY)
        return mf_errf(err, "unknown chat format %d", p->format);
    mf_harmony h;
    if (p->format == MF_CHAT_HARMONY && mf_harmony_init(&h, m->tok))
        return mf_errf(err, "the harmony format needs its tokens (<|start|>, <|channel|>, <|message|>, <|end|>, "
                            "<|return|>), which this model's vocabulary lacks");
    return 0;
}

void mf_gen_free(mf_gen *g)
{
    if (!g) return;
    for (int i = 0; i < g->p.n_stop; i++) free(g->stop[i]);
    free(g->stop);
    free(g->stop_len);
    mf_sampler_free(g->smp);
    for (int k = 0; k < N_STREAMS; k++) mf_sb_free(&g->st[k].text);
    free(g->lpv);
    free(g->lpm);
    free(g->lp_logits);
    free(g->piece);
    mf_gen_result_free(&g->r);
    free(g);
}

mf_gen *mf_gen_new(const mf_model *m, const mf_gen_params *p, mf_delta_fn on_delta, void *user, mf_err *err)
{
    if (mf_gen_check(m, p, 0, err)) return NULL;
    mf_gen *g = calloc(1, sizeof *g);
    if (!g) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    g->m = m;
    g->tok = m->tok;
    g->n_vocab = m->hp.n_vocab;
    g->p = *p;
    g->p.stop = NULL;
    g->on_delta = on_delta;
    g->user = user;
    g->r.stop_index = -1;
    int ok = 1;
    if (p->n_stop > 0) {
        g->stop = calloc((size_t)p->n_stop, sizeof *g->stop);
        g->stop_len = calloc((size_t)p->n_stop, sizeof *g->stop_len);
        ok = g->stop && g->stop_len;
        for (int i = 0; ok && i < p->n_stop; i++) {
            ok = (g->stop[i] = strdup(p->stop[i])) != NULL;
            g->stop_len[i] = ok ? strlen(g->stop[i]) : 0;
            if (g->stop_len[i] > g->stop_max) g->stop_max = g->stop_len[i];
        }
    }
    g->smp = mf_sampler_new(&p->sampler, g->n_vocab);
    if (p->logprobs) g->lp_logits = malloc(sizeof(float) * (size_t)g->n_vocab);
    if (!ok || !g->smp || (p->logprobs && !g->lp_logits)) {
        if (!ok) g->p.n_stop = 0; /* free only what was copied */
        mf_gen_free(g);
        mf_errf(err, "out of memory");
        return NULL;
    }
    g->greedy = mf_sampler_is_greedy(g->smp);
    g->harmony = p->format == MF_CHAT_HARMONY && mf_harmony_init(&g->hm, g->tok) == 0;
    if (p->max_tokens == 0) g->r.finish = MF_FINISH_LENGTH; /* nothing to generate */
    return g;
}

int mf_gen_wants_logits(const mf_gen *g) { return !g->greedy || g->p.logprobs; }

void mf_gen_count_prompt(mf_gen *g, int n_prompt, int n_cached, double seconds)
{
    g->r.n_prompt = n_prompt;
    g->r.n_cached = n_cached;
    g->r.t_prompt_s = seconds;
}

void mf_gen_count_decode(mf_gen *g, double seconds)
{
    g->r.n_decode++;
    g->r.t_gen_s += seconds;
}
const mf_gen_result *mf_gen_status(const mf_gen *g) { return &g->r; }

/* ------------------------------------------------------------------ delivering */

static int lp_ready(const mf_gen *g, int i)
{
    const lp_meta *e = &g->lpm[i];
    if (e->stream < 0) return 1;
    if (e->stream == S_ARGS) {
        if (e->call >= g->r.n_calls) return 0;                     /* not opened yet */
        if (e->call < g->r.n_calls - 1 || !g->call_open) return 1; /* closed: all sent */
    }
    return g->st[e->stream].sent > e->at;
}

/* Hands a delta to the callback with the logprobs that are ready (all that wait when
 * `all`). Returns 1 when the caller asked to stop. */
static int deliver(mf_gen *g, mf_delta *d, int all)
{
    int k = 0;
    while (g->lp_head + k < g->lp_n && (all || lp_ready(g, g->lp_head + k))) {
        mf_token_logprob *v = &g->lpv[g->lp_head + k];
        v->top_id = g->lpm[g->lp_head + k].top_id;
        v->top_logprob = g->lpm[g->lp_head + k].top_lp;
        k++;
    }
    d->n_lp = k;
    d->lp = k ? &g->lpv[g->lp_head] : NULL;
    g->lp_head += k;
    if (g->lp_head == g->lp_n) g->lp_head = g->lp_n = 0;
    if (!g->cancelled && g->on_delta && g->on_delta(g->user, d)) g->cancelled = 1;
    return g->cancelled;
}

static int delta_kind(int s)
{
    return s == S_CONTENT ? MF_DELTA_CONTENT : s == S_REASONING ? MF_DELTA_REASONING : MF_DELTA_TOOL_CALL;
}

/* Delivers stream s up to byte `upto`. */
static int send_upto(mf_gen *g, int s, size_t upto)
{
    stream *st = &g->st[s];
    if (upto <= st->sent) return g->cancelled;
    mf_delta d = {.kind = delta_kind(s), .text = st->text.p + st->sent, .len = upto - st->sent};
    if (s == S_ARGS) d.tool_index = g->r.n_calls - 1;
    st->sent = upto;
    return deliver(g, &d, 0);
}

/* The earliest stop string in the content from the delivered mark on: its offset, and the
 * stop's index in *which; -1 if none. */
static long find_stop(const mf_gen *g, int *which)
{
    const stream *st = &g->st[S_CONTENT];
    for (size_t i = st->sent; i < st->text.n; i++)
        for (int j = 0; j < g->p.n_stop; j++)
            if (st->text.n - i >= g->stop_len[j] && !memcmp(st->text.p + i, g->stop[j], g->stop_len[j])) {
                *which = j;
                return (long)i;
            }
    return -1;
}

/* Where the held-back tail of the content begins: the first offset whose tail is a proper
 * prefix of a stop string (the end when none is). */
static size_t stop_holdback(const mf_gen *g)
{
    const stream *st = &g->st[S_CONTENT];
    size_t n = st->text.n, from = st->sent;
    if (g->stop_max > 1 && n - from > g->stop_max - 1) from = n - (g->stop_max - 1);
    for (size_t i = from; i < n; i++)
        for (int j = 0; j < g->p.n_stop; j++)
            if (n - i < g->stop_len[j] && !memcmp(st->text.p + i, g->stop[j], n - i)) return i;
    return n;
}

/* Delivers what became safe in stream s. Returns 1 when the answer ended (cancel, or a stop
 * string: then the result's finish is set). */
static int flow(mf_gen *g, int s)
{
    stream *st = &g->st[s];
    size_t safe = st->text.n;
    if (s == S_CONTENT && g->p.n_stop) {
        int which;
        long at = find_stop(g, &which);
        if (at >= 0) {
            int c = send_upto(g, s, (size_t)at);
            mf_sb_truncate(&st->text, (size_t)at);
            g->r.stop_index = which;
            g->r.finish = c ? MF_FINISH_CANCELLED : MF_FINISH_STOP;
            return 1;
        }
        safe = stop_holdback(g);
    }
    safe = st->sent + mf_utf8_complete(st->text.p + st->sent, safe - st->sent);
    if (send_upto(g, s, safe)) {
        g->r.finish = MF_FINISH_CANCELLED;
        return 1;
    }
    return 0;
}

/* A tool call's id: "call_" and 16 hex digits from the clock and the call's place, so ids
 * differ between the answers of one conversation. */
static void call_id(mf_gen *g, char *out, size_t cap)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t z = (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec + (uint64_t)(uintptr_t)g * 31u +
                 (uint64_t)g->r.n_calls * 0x9E3779B97F4A7C15ull + (uint64_t)g->r.n_generated;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    snprintf(out, cap, "call_%016llx", (unsigned long long)z);
}

/* Opens a tool call for the harmony message now being written: announced by a delta of
 * length 0 with its id and name. Returns 1 when cancelled, -1 out of memory. */
static int open_call(mf_gen *g)
{
    if (g->r.n_calls == g->cap_calls) {
        int cap = g->cap_calls ? 2 * g->cap_calls : 4;
        mf_tool_call *c = realloc(g->r.calls, sizeof *c * (size_t)cap);
        if (!c) return -1;
        g->r.calls = c;
        g->cap_calls = cap;
    }
    const char *rcp = g->hm.recipient;
    const char *name = !strncmp(rcp, "functions.", 10) ? rcp + 10 : rcp;
    char id[32];
    call_id(g, id, sizeof id);
    mf_tool_call *c = &g->r.calls[g->r.n_calls];
    *c = (mf_tool_call){strdup(id), strdup(name), NULL};
    if (!c->id || !c->name) {
        free(c->id);
        free(c->name);
        return -1;
    }
    g->r.n_calls++;
    g->call_open = 1;
    g->call_msg = g->hm.n_messages;
    mf_sb_truncate(&g->st[S_ARGS].text, 0);
    g->st[S_ARGS].sent = 0;
    mf_delta d = {
        .kind = MF_DELTA_TOOL_CALL, .text = "", .tool_index = g->r.n_calls - 1, .tool_id = c->id, .tool_name = c->name};
    return deliver(g, &d, 0);
}

/* Closes the open call: its arguments delivered whole and kept in the result. Returns 1
 * when cancelled, -1 out of memory. */
static int close_call(mf_gen *g)
{
    stream *st = &g->st[S_ARGS];
    int c = send_upto(g, S_ARGS, st->text.n);
    mf_tool_call *tc = &g->r.calls[g->r.n_calls - 1];
    tc->arguments = strdup(st->text.p ? st->text.p : "");
    g->call_open = 0;
    if (!tc->arguments) return -1;
    return c;
}

/* Ends the answer with `why`: everything held back is delivered (not for a cancel), the
 * waiting logprobs with a last delta of length 0, and the result's texts are set. */
static void finish(mf_gen *g, int why)
{
    int cancel = why == MF_FINISH_CANCELLED, oom = 0;
    if (g->call_open && cancel) g->call_open = 0;
    if (g->call_open) oom |= close_call(g) < 0;
    if (!cancel) {
        send_upto(g, S_REASONING, g->st[S_REASONING].text.n);
        send_upto(g, S_CONTENT, g->st[S_CONTENT].text.n);
        if (g->lp_n > g->lp_head) {
            mf_delta d = {.kind = MF_DELTA_CONTENT, .text = ""};
            deliver(g, &d, 1);
        }
    }
    stream *c = &g->st[S_CONTENT], *r = &g->st[S_REASONING];
    oom |= c->text.oom || r->text.oom || g->st[S_ARGS].text.oom;
    mf_sb_truncate(&c->text, c->sent);
    mf_sb_truncate(&r->text, r->sent);
    g->r.content = strdup(c->text.p ? c->text.p : "");
    g->r.reasoning = r->text.n ? strdup(r->text.p) : NULL;
    oom |= !g->r.content || (r->text.n && !g->r.reasoning);
    if (oom) snprintf(g->r.error, sizeof g->r.error, "out of memory");
    g->r.finish = oom ? MF_FINISH_ERROR : why;
}

void mf_gen_fail(mf_gen *g, const char *msg)
{
    if (g->r.content) return; /* finished already */
    snprintf(g->r.error, sizeof g->r.error, "%s", msg ? msg : "the generation failed");
    finish(g, MF_FINISH_ERROR);
}

const mf_gen_result *mf_gen_finish(mf_gen *g, int finish_if_none)
{
    if (!g->r.content) finish(g, g->r.finish != MF_FINISH_NONE ? g->r.finish : finish_if_none);
    return &g->r;
}

/* ------------------------------------------------------------------ one token */

/* The token's bytes in g->piece; their count. */
static size_t piece_of(mf_gen *g, int32_t id, int *oom)
{
    size_t len = mf_tok_piece(g->tok, id, 0, g->piece, g->piece_cap);
    if (len > g->piece_cap) {
        char *p = realloc(g->piece, len);
        if (!p) {
            *oom = 1;
            return 0;
        }
        g->piece = p;
        g->piece_cap = len;
        mf_tok_piece(g->tok, id, 0, g->piece, g->piece_cap);
    }
    return len;
}

/* Takes the chosen token: text into its stream, delivery, end conditions. lp: its logprob
 * entry (already queued) or -1. Returns the token to evaluate, or -1 at the end. */
static int32_t accept(mf_gen *g, int32_t id, int ctx_left, int lp)
{
    g->r.n_generated++;
    int s = S_CONTENT, end = 0, call_end = 0;
    if (g->harmony) {
        int ch = mf_harmony_feed(&g->hm, g->tok, id, &end);
        call_end = end && id == g->hm.tok_call;
        s = ch == MF_HCH_FINAL || ch == MF_HCH_COMMENTARY ? S_CONTENT
            : ch == MF_HCH_ANALYSIS                       ? S_REASONING
            : ch == MF_HCH_TOOL                           ? S_ARGS
                                                          : -1;
    } else if (mf_tok_is_eog(g->tok, id)) {
        end = 1;
        s = -1;
    }
    int same_call = g->call_open && s == S_ARGS && g->hm.n_messages == g->call_msg, oom = 0;
    size_t len = s >= 0 ? piece_of(g, id, &oom) : 0;
    if (lp >= 0 && len) {
        g->lpm[lp].stream = s;
        g->lpm[lp].call = s != S_ARGS ? -1 : same_call ? g->r.n_calls - 1 : g->r.n_calls;
        g->lpm[lp].at = s == S_ARGS && !same_call ? 0 : g->st[s].text.n;
    }
    int rc = oom ? -1 : 0;
    if (!rc && g->call_open && !same_call) rc = close_call(g);
    if (!rc && s == S_ARGS && !same_call) rc = open_call(g);
    if (rc < 0) {
        mf_gen_fail(g, "out of memory");
        return -1;
    }
    if (rc > 0) {
        finish(g, MF_FINISH_CANCELLED);
        return -1;
    }
    if (s >= 0) {
        mf_sb_add_n(&g->st[s].text, g->piece, len);
        if (flow(g, s)) {
            finish(g, g->r.finish);
            return -1;
        }
    }
    int why = end ? (call_end && g->r.n_calls > 0 ? MF_FINISH_TOOL_CALLS : MF_FINISH_STOP)
              : g->p.max_tokens >= 0 && g->r.n_generated >= g->p.max_tokens ? MF_FINISH_LENGTH
              : ctx_left <= 0                                               ? MF_FINISH_CONTEXT
                                                                            : MF_FINISH_NONE;
    if (why != MF_FINISH_NONE) {
        finish(g, why);
        return -1;
    }
    return id;
}

/* A new logprob entry for token `id` (its stream set by accept); its index, -1 out of memory. */
static int lp_push(mf_gen *g, int32_t id)
{
    if (g->lp_n == g->lp_cap) {
        int cap = g->lp_cap ? 2 * g->lp_cap : 16;
        mf_token_logprob *v = realloc(g->lpv, sizeof *v * (size_t)cap);
        if (v) g->lpv = v;
        lp_meta *m = v ? realloc(g->lpm, sizeof *m * (size_t)cap) : NULL;
        if (!m) return -1;
        g->lpm = m;
        g->lp_cap = cap;
    }
    int i = g->lp_n++;
    g->lpv[i] = (mf_token_logprob){.id = id};
    g->lpm[i].stream = -1;
    g->lpm[i].call = -1;
    g->lpm[i].at = 0;
    return i;
}

/* log-softmax of the unchanged logits: the token's value and the top ones, best first
 * (ties: the lower id, as greedy decoding picks) */
static void lp_fill(mf_gen *g, int i, const float *l)
{
    int V = g->n_vocab, k = g->p.top_logprobs;
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < V; v++)
        if (l[v] > mx) mx = l[v];
    for (int v = 0; v < V; v++) z += exp((double)l[v] - mx);
    double lse = mx + log(z);
    lp_meta *m = &g->lpm[i];
    int n = 0;
    for (int v = 0; k > 0 && v < V; v++) { /* k = 0: no alternatives (top_id[n - 1] would be top_id[-1]) */
        if (n == k && !(l[v] > l[m->top_id[n - 1]])) continue;
        int j = n < k ? n++ : n - 1;
        while (j > 0 && l[v] > l[m->top_id[j - 1]]) {
            m->top_id[j] = m->top_id[j - 1];
            j--;
        }
        m->top_id[j] = v;
    }
    for (int j = 0; j < n; j++) m->top_lp[j] = (float)(l[m->top_id[j]] - lse);
    g->lpv[i].logprob = (float)(l[g->lpv[i].id] - lse);
    g->lpv[i].n_top = n;
}

int32_t mf_gen_next(mf_gen *g, float *logits, const int32_t *history, int n_hist, int ctx_left)
{
    if (g->r.finish != MF_FINISH_NONE || g->r.content) {
        mf_gen_finish(g, MF_FINISH_NONE);
        return -1;
    }
    if (g->p.logprobs) memcpy(g->lp_logits, logits, sizeof(float) * (size_t)g->n_vocab);
    int32_t id = mf_sampler_sample(g->smp, logits, history, n_hist);
    if (id < 0) {
        mf_gen_fail(g, "the logits are not finite (NaN, +inf, or no token above -inf): no token can be drawn");
        return -1;
    }
    int lp = -1;
    if (g->p.logprobs) {
        if ((lp = lp_push(g, id)) < 0) {
            mf_gen_fail(g, "out of memory");
            return -1;
        }
        lp_fill(g, lp, g->lp_logits);
    }
    return accept(g, id, ctx_left, lp);
}

int32_t mf_gen_next_token(mf_gen *g, int32_t token, int ctx_left)
{
    if (g->r.finish != MF_FINISH_NONE || g->r.content) {
        mf_gen_finish(g, MF_FINISH_NONE);
        return -1;
    }
    if (g->p.logprobs) {
        mf_gen_fail(g, "logprobs need the logits (mf_gen_next)");
        return -1;
    }
    if (token < 0 || token >= g->n_vocab) {
        char msg[96];
        snprintf(msg, sizeof msg, "token %d is outside the vocabulary of %d", token, g->n_vocab);
        mf_gen_fail(g, msg);
        return -1;
    }
    return accept(g, token, ctx_left, -1);
}

/* ------------------------------------------------------------------ one sequence */

int mf_generate(mf_session *s, const int32_t *prompt, int n, const mf_gen_params *p, mf_delta_fn on_delta, void *user,
                mf_gen_result *out, mf_err *err)
{
    memset(out, 0, sizeof *out);
    const mf_model *m = mf_session_model(s);
    int n_ctx = mf_session_n_ctx(s), V = m->hp.n_vocab;
    if (n < 1) return mf_errf(err, "the prompt is empty (0 tokens)");
    if (n > n_ctx) return mf_errf(err, "the prompt has %d tokens but the context holds %d", n, n_ctx);
    if (mf_gen_check(m, p, n_ctx, err)) return -1;
    mf_gen *g = mf_gen_new(m, p, on_delta, user, err);
    if (!g) return -1;

    /* the prompt: what the cache already holds is kept; at least its last token is
     * evaluated again unless the session still has that token's logits */
    int keep = mf_session_reusable(s, prompt, n);
    if (keep == n && !(mf_session_pos(s) == n && mf_session_has_logits(s)))
        keep = mf_session_reusable(s, prompt, n - 1);
    double t0 = now_s();
    if (mf_session_truncate(s, keep, err) || (keep < n && mf_session_eval(s, prompt + keep, n - keep, NULL, err))) {
        mf_gen_free(g);
        return -1;
    }
    mf_gen_count_prompt(g, n, keep, now_s() - t0);

    /* the tokens of the last evaluation: where to look when its logits are not finite */
    int32_t last_tok;
    const int32_t *last = prompt + keep;
    int n_last = n - keep;
    mf_err e;
    while (g->r.finish == MF_FINISH_NONE) {
        int ctx_left = n_ctx - mf_session_pos(s);
        int32_t next;
        if (!mf_gen_wants_logits(g)) {
            int32_t a = mf_session_argmax(s);
            if (a < 0) {
                mf_session_explain_nonfinite(s, last, n_last, &e);
                mf_gen_fail(g, e.msg);
                break;
            }
            next = mf_gen_next_token(g, a, ctx_left);
        } else {
            float *lg = mf_session_logits(s, &e);
            if (!lg || mf_first_nonfinite_f32(lg, (uint64_t)V) >= 0) {
                if (lg) mf_session_explain_nonfinite(s, last, n_last, &e);
                mf_gen_fail(g, e.msg);
                break;
            }
            next = mf_gen_next(g, lg, mf_session_tokens(s), mf_session_pos(s), ctx_left);
        }
        if (next < 0) break;
        double t = now_s();
        if (mf_session_eval(s, &next, 1, NULL, &e)) {
            mf_gen_fail(g, e.msg);
            break;
        }
        mf_gen_count_decode(g, now_s() - t);
        last_tok = next;
        last = &last_tok;
        n_last = 1;
    }
    mf_gen_finish(g, MF_FINISH_NONE);
    *out = g->r;
    memset(&g->r, 0, sizeof g->r);
    mf_gen_free(g);
    return 0;
}
