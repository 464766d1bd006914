/* gen_standin.c — STAND-IN for the library's generation loop (generate.h says what and until
 * when): mf_gen with the sampler (greedy through the caller's argmax, else
 * mf_sampler_sample), end-of-generation tokens, max_tokens, the context, text sent as
 * deltas once it holds no unfinished UTF-8 character (mf_utf8_complete), and for a harmony
 * model the tokens sorted into content and reasoning by mf_harmony_feed. Stop strings and
 * logprobs are refused with a reason, and a tool call ends the answer with an error. This is
 * the logic the server's one-sequence stand-in had (tools/serve/engine.c), moved here so
 * that the batcher (batch.c) drives it per sequence; the whole file goes when
 * engine/generate.c lands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "generate.h"
#include "tokenizer.h"

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

typedef struct text_buf {
    char *p;
    size_t n, cap;
} text_buf;

static int text_add(text_buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

struct mf_gen {
    const mf_model *m;
    mf_gen_params p;
    mf_sampler *smp;
    mf_delta_fn on_delta;
    void *user;
    int harmony;
    mf_harmony hm;
    text_buf text[2]; /* whole content and reasoning */
    char hold[2][4];  /* an unfinished UTF-8 character per kind */
    size_t n_hold[2];
    char *piece;
    size_t piece_cap;
    mf_gen_result res;
};

mf_gen *mf_gen_new(const mf_model *m, const mf_gen_params *p, mf_delta_fn on_delta, void *user, mf_err *err)
{
    if (p->n_stop > 0) {
        mf_errf(err, "stop strings are not supported by this build yet (they need the library of issue 14)");
        return NULL;
    }
    if (p->logprobs) {
        mf_errf(err, "logprobs are not supported by this build yet (they need the library of issue 14)");
        return NULL;
    }
    mf_gen *g = calloc(1, sizeof *g);
    if (!g || !(g->smp = mf_sampler_new(&p->sampler, m->hp.n_vocab))) {
        free(g);
        mf_errf(err, "out of memory");
        return NULL;
    }
    g->m = m;
    g->p = *p;
    g->p.stop = NULL;
    g->on_delta = on_delta;
    g->user = user;
    g->harmony = p->format == MF_CHAT_HARMONY && mf_harmony_init(&g->hm, m->tok) == 0;
    return g;
}

void mf_gen_free(mf_gen *g)
{
    if (!g) return;
    mf_sampler_free(g->smp);
    free(g->piece);
    for (int k = 0; k < 2; k++) free(g->text[k].p);
    free(g);
}

int mf_gen_wants_logits(const mf_gen *g) { return !mf_sampler_is_greedy(g->smp); }

static void set_error(mf_gen *g, const char *why)
{
    g->res.finish = MF_FINISH_ERROR;
    snprintf(g->res.error, sizeof g->res.error, "%s", why);
}

/* Text of kind k (0 content, 1 reasoning) to the whole answer and to the caller, without
 * an unfinished UTF-8 character at the end unless `all`. Returns the callback's verdict
 * (non-zero: cancel) or -1 out of memory. */
static int emit(mf_gen *g, int k, const char *s, size_t n, int all)
{
    char buf[512];
    size_t len = 0;
    while (n || all) {
        len = g->n_hold[k];
        memcpy(buf, g->hold[k], len);
        size_t c = n < sizeof buf - len ? n : sizeof buf - len;
        memcpy(buf + len, s, c);
        len += c;
        s += c;
        n -= c;
        size_t ok = all && !n ? len : mf_utf8_complete(buf, len);
        g->n_hold[k] = len - ok;
        memcpy(g->hold[k], buf + ok, len - ok);
        if (ok) {
            if (text_add(&g->text[k], buf, ok)) return -1;
            mf_delta d = {.kind = k ? MF_DELTA_REASONING : MF_DELTA_CONTENT, .text = buf, .len = ok};
            if (g->on_delta && g->on_delta(g->user, &d)) return 1;
        }
        if (!n) break;
    }
    return 0;
}

static int flush_all(mf_gen *g)
{
    for (int k = 0; k < 2; k++) {
        int r = g->n_hold[k] ? emit(g, k, "", 0, 1) : 0;
        if (r) return r;
    }
    return 0;
}

int32_t mf_gen_next_token(mf_gen *g, int32_t next, int ctx_left)
{
    const mf_tokenizer *tok = g->m->tok;
    if (g->res.finish != MF_FINISH_NONE) return -1;
    if (next < 0 || next >= g->m->hp.n_vocab) {
        set_error(g, "the logits are not finite (NaN or infinite)");
        return -1;
    }
    g->res.n_generated++;
    int stop = 0, kind = 0, call = 0;
    if (g->harmony) {
        int ch = mf_harmony_feed(&g->hm, tok, next, &stop);
        call = stop && next == g->hm.tok_call;
        kind = ch == MF_HCH_FINAL || (ch == MF_HCH_COMMENTARY && !g->hm.has_recipient) ? 0
               : ch == MF_HCH_ANALYSIS                                                 ? 1
                                                                                       : -1;
    } else {
        stop = mf_tok_is_eog(tok, next);
        kind = stop ? -1 : 0;
    }
    int r = 0;
    if (kind >= 0) {
        size_t len = mf_tok_piece(tok, next, 0, g->piece, g->piece_cap);
        if (len > g->piece_cap) {
            char *p = realloc(g->piece, len);
            if (!p) {
                set_error(g, "out of memory");
                return -1;
            }
            g->piece = p;
            g->piece_cap = len;
            mf_tok_piece(tok, next, 0, g->piece, g->piece_cap);
        }
        r = emit(g, kind, g->piece, len, 0);
    }
    int why = call                                                            ? MF_FINISH_ERROR
              : stop                                                          ? MF_FINISH_STOP
              : g->p.max_tokens >= 0 && g->res.n_generated >= g->p.max_tokens ? MF_FINISH_LENGTH
              : ctx_left <= 0                                                 ? MF_FINISH_CONTEXT
                                                                              : MF_FINISH_NONE;
    if (!r && why != MF_FINISH_NONE) r = flush_all(g);
    if (r < 0) {
        set_error(g, "out of memory");
        return -1;
    }
    if (r > 0) {
        g->res.finish = MF_FINISH_CANCELLED;
        return -1;
    }
    if (why == MF_FINISH_ERROR) {
        set_error(g, "the model called a tool; tool calls are not supported by this build yet "
                     "(they need the library of issue 14)");
        return -1;
    }
    g->res.finish = why;
    return why == MF_FINISH_NONE ? next : -1;
}

int32_t mf_gen_next(mf_gen *g, float *logits, const int32_t *history, int n_hist, int ctx_left)
{
    return mf_gen_next_token(g, mf_sampler_sample(g->smp, logits, history, n_hist), ctx_left);
}

const mf_gen_result *mf_gen_finish(mf_gen *g, int finish_if_none)
{
    if (g->res.finish == MF_FINISH_NONE) {
        /* the held-back text ends the answer (the callback's verdict no longer matters);
         * a cancelled answer gets no more deltas */
        if (finish_if_none != MF_FINISH_CANCELLED) flush_all(g);
        g->res.finish = finish_if_none;
    }
    g->res.content = g->text[0].p;
    g->res.reasoning = g->text[1].n ? g->text[1].p : NULL;
    return &g->res;
}
