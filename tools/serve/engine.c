/* engine.c — STAND-IN for the library's batcher (engine.h says what and until when).
 *
 * One sequence at a time on one mf_session: the first step reuses what the session's cache
 * holds of the prompt (mf_session_reusable) and evaluates the rest, then each step lets the
 * library's generation state machine (mf_gen: sampling, stop strings, harmony channels and
 * tool calls, logprobs) choose one token and evaluates it. Kept deliberately small: this
 * file is replaced by mf_batcher when the library has it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

int srv_chat_opts_set_tools(mf_chat_opts *o, const char *tools_json, mf_err *err)
{
    if (!tools_json) return 0;
    if (mf_chat_tools_check(tools_json, err)) return -1;
    o->tools_json = tools_json;
    return 0;
}

int srv_engine_n_seq(int requested)
{
    (void)requested;
    return 1;
}

/* ---------------------------------------------------------------- the generator */

struct mf_batcher {
    mf_model *m;
    mf_session *s;
    int n_ctx, next_id;
    /* the one sequence */
    int active, id, prompt_done, n_prompt;
    int32_t *prompt;
    mf_gen *g;
    mf_done_fn on_done;
    void *user;
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
    b->prompt = malloc(sizeof(int32_t) * (size_t)b->n_ctx);
    if (!b->prompt) {
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
    free(b->prompt);
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
    if (mf_gen_check(b->m, p, b->n_ctx, err)) return -1;
    if (b->active) return -2;
    mf_gen *g = mf_gen_new(b->m, p, on_delta, user, err);
    if (!g) return -1;
    b->g = g;
    memcpy(b->prompt, prompt, sizeof(int32_t) * (size_t)n);
    b->n_prompt = n;
    b->prompt_done = 0;
    b->on_done = on_done;
    b->user = user;
    b->active = 1;
    b->id = b->next_id++;
    if (b->next_id < 0) b->next_id = 0;
    return b->id;
}

/* The answer ended (or ends now with `why`): the done callback, and the sequence is free. */
static void finish(mf_batcher *b, int why)
{
    const mf_gen_result *r = mf_gen_finish(b->g, why);
    b->active = 0;
    b->on_done(b->user, r);
    mf_gen_free(b->g);
    b->g = NULL;
}

static void fail(mf_batcher *b, const char *msg)
{
    mf_gen_fail(b->g, msg);
    finish(b, MF_FINISH_ERROR);
}

void mf_batcher_cancel(mf_batcher *b, int id)
{
    if (b->active && b->id == id) finish(b, MF_FINISH_CANCELLED);
}

int mf_batcher_step(mf_batcher *b, mf_err *err)
{
    (void)err;
    if (!b->active) return 0;
    mf_err e;
    mf_gen *g = b->g;
    if (!b->prompt_done) {
        /* what the cache holds of the prompt is kept; at least its last token is evaluated
         * again, for its logits */
        double t = now_s();
        int keep = mf_session_reusable(b->s, b->prompt, b->n_prompt - 1);
        if (mf_session_truncate(b->s, keep, &e) ||
            mf_session_eval(b->s, b->prompt + keep, b->n_prompt - keep, NULL, &e)) {
            fail(b, e.msg);
            return 0;
        }
        mf_gen_count_prompt(g, b->n_prompt, keep, now_s() - t);
        b->prompt_done = 1;
        b->st.prompt_tokens += (uint64_t)b->n_prompt;
        b->st.cached_tokens += (uint64_t)keep;
    }
    if (mf_gen_status(g)->finish != MF_FINISH_NONE) {
        finish(b, MF_FINISH_NONE);
        return 0;
    }
    b->st.steps++;
    int ctx_left = b->n_ctx - mf_session_pos(b->s);
    int32_t next;
    if (mf_gen_wants_logits(g)) {
        float *lg = mf_session_logits(b->s, &e);
        if (!lg) {
            fail(b, e.msg);
            return 0;
        }
        if (mf_first_nonfinite_f32(lg, (uint64_t)b->m->hp.n_vocab) >= 0) {
            fail(b, "the logits are not finite (NaN or infinite)");
            return 0;
        }
        next = mf_gen_next(g, lg, mf_session_tokens(b->s), mf_session_pos(b->s), ctx_left);
    } else {
        int32_t a = mf_session_argmax(b->s);
        if (a < 0) {
            fail(b, "the logits are not finite (NaN or infinite)");
            return 0;
        }
        next = mf_gen_next_token(g, a, ctx_left);
    }
    b->st.generated_tokens++;
    if (next < 0) {
        finish(b, MF_FINISH_NONE);
        return 0;
    }
    double t = now_s();
    if (mf_session_eval(b->s, &next, 1, NULL, &e)) {
        fail(b, e.msg);
        return 0;
    }
    double dt = now_s() - t;
    mf_gen_count_decode(g, dt);
    b->decode_s += dt;
    b->n_decode++;
    return b->active;
}
