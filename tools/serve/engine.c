/* engine.c — STAND-IN for the library's generation API (engine.h says what and until when).
 *
 * One sequence at a time on one mf_session: the prompt is evaluated in the first step,
 * then each step samples one token, turns it into text and evaluates it. The text is sent
 * as deltas once it holds no unfinished UTF-8 character (mf_utf8_complete). A harmony
 * model's tokens are sorted into content and reasoning with mf_harmony_feed; a tool call
 * ends the answer with an error (parsing calls is issue 14's). Kept deliberately small:
 * this file is replaced by mf_batcher when the library has it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

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

char *mf_chat_render_conv(int fmt, const mf_chat_msg *msgs, int n, const mf_chat_opts *o, int add_generation_prompt,
                          mf_err *err)
{
    static const char *why = "this build renders a system (or developer) message and one user message; "
                             "conversations with more turns need the library of issue 14";
    if (n < 1) {
        mf_errf(err, "the conversation is empty");
        return NULL;
    }
    if (!add_generation_prompt) {
        mf_errf(err, "%s", why);
        return NULL;
    }
    mf_chat_opts co = o ? *o : (mf_chat_opts){0};
    int i = 0;
    if (n == 2 && (msgs[0].role == MF_ROLE_SYSTEM || msgs[0].role == MF_ROLE_DEVELOPER)) {
        if (fmt == MF_CHAT_NONE) {
            mf_errf(err, "the model has no chat template, so a system message cannot be rendered");
            return NULL;
        }
        co.system = msgs[0].content ? msgs[0].content : "";
        i = 1;
    }
    if (n - i != 1 || msgs[i].role != MF_ROLE_USER || msgs[i].n_tool_calls) {
        mf_errf(err, "%s", why);
        return NULL;
    }
    return mf_chat_render(fmt, msgs[i].content ? msgs[i].content : "", &co, err);
}

int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err)
{
    (void)o;
    if (!tools_json) return 0;
    return mf_errf(err, "tools are not supported by this build yet (they need the library of issue 14)");
}

int srv_engine_n_seq(int requested)
{
    (void)requested;
    return 1;
}

/* ---------------------------------------------------------------- the generator */

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

struct mf_batcher {
    mf_model *m;
    mf_session *s;
    mf_sampler *smp;
    int n_ctx, next_id;
    /* the one sequence */
    int active, id, prompt_done, n_prompt, n_ids, n_gen, harmony;
    int32_t *ids; /* prompt and generated tokens: the sampler's history */
    mf_gen_params p;
    mf_delta_fn on_delta;
    mf_done_fn on_done;
    void *user;
    mf_harmony hm;
    text_buf text[2]; /* whole content and reasoning */
    char hold[2][4];  /* an unfinished UTF-8 character per kind */
    size_t n_hold[2];
    char *piece;
    size_t piece_cap;
    double t_start, t_prompt, t_gen;
    mf_batcher_stats st;
    double decode_s;   /* all single-token evaluations and their count, */
    uint64_t n_decode; /* for st.decode_tok_s */
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

mf_batcher *mf_batcher_new(mf_model *m, const mf_batcher_opts *o, mf_err *err)
{
    mf_batcher *b = calloc(1, sizeof *b);
    if (!b) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    b->m = m;
    b->s = mf_session_new(m, &o->session, err);
    if (!b->s) {
        free(b);
        return NULL;
    }
    b->n_ctx = mf_session_n_ctx(b->s);
    b->ids = malloc(sizeof(int32_t) * (size_t)b->n_ctx);
    if (!b->ids) {
        mf_session_free(b->s);
        free(b);
        mf_errf(err, "out of memory");
        return NULL;
    }
    b->st.n_seq = 1;
    return b;
}

void mf_batcher_free(mf_batcher *b)
{
    if (!b) return;
    if (b->active) mf_batcher_cancel(b, b->id);
    mf_session_free(b->s);
    mf_sampler_free(b->smp);
    free(b->ids);
    free(b->piece);
    for (int k = 0; k < 2; k++) free(b->text[k].p);
    free(b);
}

const mf_model *mf_batcher_model(const mf_batcher *b) { return b->m; }
int srv_engine_n_ctx(const mf_batcher *b) { return b->n_ctx; }
int mf_batcher_active(const mf_batcher *b) { return b->active; }

void mf_batcher_stats_get(const mf_batcher *b, mf_batcher_stats *s)
{
    *s = b->st;
    s->active = b->active;
    s->decode_tok_s = b->decode_s > 0 ? (double)b->n_decode / b->decode_s : 0.0;
}

int mf_batcher_submit(mf_batcher *b, const int32_t *prompt, int n, const mf_gen_params *p, mf_delta_fn on_delta,
                      mf_done_fn on_done, void *user, mf_err *err)
{
    if (n < 1) return mf_errf(err, "the prompt is empty (0 tokens)");
    if (n > b->n_ctx) return mf_errf(err, "the prompt has %d tokens but the context holds %d", n, b->n_ctx);
    if (p->n_stop > 0)
        return mf_errf(err, "stop strings are not supported by this build yet (they need the library of issue 14)");
    if (p->logprobs)
        return mf_errf(err, "logprobs are not supported by this build yet (they need the library of issue 14)");
    if (b->active) return -2;
    mf_sampler *smp = mf_sampler_new(&p->sampler, b->m->hp.n_vocab);
    if (!smp) return mf_errf(err, "out of memory");
    mf_sampler_free(b->smp);
    b->smp = smp;
    memcpy(b->ids, prompt, sizeof(int32_t) * (size_t)n);
    b->n_ids = b->n_prompt = n;
    b->n_gen = 0;
    b->prompt_done = 0;
    b->p = *p;
    b->p.stop = NULL;
    b->on_delta = on_delta;
    b->on_done = on_done;
    b->user = user;
    b->harmony = p->format == MF_CHAT_HARMONY && mf_harmony_init(&b->hm, b->m->tok) == 0;
    for (int k = 0; k < 2; k++) {
        b->text[k].n = 0;
        b->n_hold[k] = 0;
    }
    b->t_start = now_s();
    b->t_prompt = b->t_gen = 0;
    b->active = 1;
    b->id = b->next_id++;
    if (b->next_id < 0) b->next_id = 0;
    return b->id;
}

static void finish(mf_batcher *b, int why, const char *error)
{
    mf_gen_result r = {.finish = why,
                       .n_prompt = b->n_prompt,
                       .n_generated = b->n_gen,
                       .content = b->text[0].p,
                       .reasoning = b->text[1].n ? b->text[1].p : NULL,
                       .t_prompt_s = b->t_prompt,
                       .t_gen_s = b->t_gen};
    if (error) snprintf(r.error, sizeof r.error, "%s", error);
    b->active = 0;
    b->on_done(b->user, &r);
    for (int k = 0; k < 2; k++) b->text[k].n = 0;
    if (b->text[0].p) b->text[0].p[0] = 0;
}

void mf_batcher_cancel(mf_batcher *b, int id)
{
    if (b->active && b->id == id) finish(b, MF_FINISH_CANCELLED, NULL);
}

/* Text of kind k (0 content, 1 reasoning) to the whole answer and to the caller, without
 * an unfinished UTF-8 character at the end unless `all`. Returns the callback's verdict
 * (non-zero: cancel) or -1 out of memory. */
static int emit(mf_batcher *b, int k, const char *s, size_t n, int all)
{
    char buf[512];
    size_t len = 0;
    while (n || all) {
        len = b->n_hold[k];
        memcpy(buf, b->hold[k], len);
        size_t c = n < sizeof buf - len ? n : sizeof buf - len;
        memcpy(buf + len, s, c);
        len += c;
        s += c;
        n -= c;
        size_t ok = all && !n ? len : mf_utf8_complete(buf, len);
        b->n_hold[k] = len - ok;
        memcpy(b->hold[k], buf + ok, len - ok);
        if (ok) {
            if (text_add(&b->text[k], buf, ok)) return -1;
            mf_delta d = {.kind = k ? MF_DELTA_REASONING : MF_DELTA_CONTENT, .text = buf, .len = ok};
            if (b->on_delta && b->on_delta(b->user, &d)) return 1;
        }
        if (!n) break;
    }
    return 0;
}

static int flush_all(mf_batcher *b)
{
    for (int k = 0; k < 2; k++) {
        int r = b->n_hold[k] ? emit(b, k, "", 0, 1) : 0;
        if (r) return r;
    }
    return 0;
}

int mf_batcher_step(mf_batcher *b, mf_err *err)
{
    if (!b->active) return 0;
    mf_err e;
    const mf_tokenizer *tok = b->m->tok;
    if (!b->prompt_done) {
        double t = now_s();
        mf_session_reset(b->s);
        if (mf_session_eval(b->s, b->ids, b->n_prompt, NULL, &e)) {
            finish(b, MF_FINISH_ERROR, e.msg);
            return 0;
        }
        b->t_prompt = now_s() - t;
        b->prompt_done = 1;
        b->st.prompt_tokens += (uint64_t)b->n_prompt;
    }
    b->st.steps++;
    int32_t next;
    if (mf_sampler_is_greedy(b->smp)) {
        next = mf_session_argmax(b->s);
    } else {
        float *lg = mf_session_logits(b->s, &e);
        if (!lg) {
            finish(b, MF_FINISH_ERROR, e.msg);
            return 0;
        }
        next = mf_first_nonfinite_f32(lg, (uint64_t)b->m->hp.n_vocab) >= 0
                   ? -1
                   : mf_sampler_sample(b->smp, lg, b->ids, b->n_ids);
    }
    if (next < 0) {
        int last = b->n_gen ? 1 : b->n_prompt;
        mf_session_explain_nonfinite(b->s, b->ids + b->n_ids - last, last, &e);
        finish(b, MF_FINISH_ERROR, e.msg);
        return 0;
    }
    b->n_gen++;
    b->st.generated_tokens++;
    int stop = 0, kind = 0, call = 0;
    if (b->harmony) {
        int ch = mf_harmony_feed(&b->hm, tok, next, &stop);
        call = stop && next == b->hm.tok_call;
        kind = ch == MF_HCH_FINAL || (ch == MF_HCH_COMMENTARY && !b->hm.has_recipient) ? 0
               : ch == MF_HCH_ANALYSIS                                                 ? 1
                                                                                       : -1;
    } else {
        stop = mf_tok_is_eog(tok, next);
        kind = stop ? -1 : 0;
    }
    int r = 0;
    if (kind >= 0) {
        size_t len = mf_tok_piece(tok, next, 0, b->piece, b->piece_cap);
        if (len > b->piece_cap) {
            char *p = realloc(b->piece, len);
            if (!p) {
                finish(b, MF_FINISH_ERROR, "out of memory");
                return 0;
            }
            b->piece = p;
            b->piece_cap = len;
            mf_tok_piece(tok, next, 0, b->piece, b->piece_cap);
        }
        r = emit(b, kind, b->piece, len, 0);
    }
    int why = call                                                  ? MF_FINISH_ERROR
              : stop                                                ? MF_FINISH_STOP
              : b->p.max_tokens >= 0 && b->n_gen >= b->p.max_tokens ? MF_FINISH_LENGTH
              : b->n_ids >= b->n_ctx                                ? MF_FINISH_CONTEXT
                                                                    : MF_FINISH_NONE;
    if (!r && why != MF_FINISH_NONE) r = flush_all(b);
    if (r < 0) {
        finish(b, MF_FINISH_ERROR, "out of memory");
        return 0;
    }
    if (r > 0) {
        finish(b, MF_FINISH_CANCELLED, NULL);
        return 0;
    }
    if (why != MF_FINISH_NONE) {
        finish(b, why,
               call ? "the model called a tool; tool calls are not supported by this build yet "
                      "(they need the library of issue 14)"
                    : NULL);
        return 0;
    }
    b->ids[b->n_ids++] = next;
    double t = now_s();
    if (mf_session_eval(b->s, &next, 1, NULL, &e)) {
        finish(b, MF_FINISH_ERROR, e.msg);
        return 0;
    }
    double dt = now_s() - t;
    b->t_gen += dt;
    b->decode_s += dt;
    b->n_decode++;
    (void)err;
    return b->active;
}
