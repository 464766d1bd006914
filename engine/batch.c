/* batch.c — continuous batching (batch.h; docs/batching.md): a session of S sequences, a
 * generation per running request, and the step that serves them all.
 *
 * A sequence is free (no request; its cache still holds the tokens of its last request, for
 * prefix reuse), reading its prompt (`fed` of n_prompt tokens evaluated), or generating
 * (`next` is the token to evaluate). A step carries, in this order:
 *   1. the next token of every generating sequence — one row each, never left out, so no
 *      stream stalls while prompts arrive;
 *   2. prompt tokens of the reading sequences, oldest request first, each as one chunk, up
 *      to what is left of max_batch rows — at most prompt_chunk rows in all while some
 *      sequence generates, so a long prompt delays the others' next tokens by one short
 *      step at a time instead of one long one.
 * The logits of a generating sequence's row, and of a prompt's last token, go to that
 * request's generation, which returns the next token to evaluate or ends the request.
 */
#include "batch.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One sequence of the session and the request it serves. */
typedef struct bseq {
    int id; /* the request, -1: free */
    mf_gen *g;
    mf_delta_fn on_delta;
    mf_done_fn on_done;
    void *user;
    int32_t *prompt; /* [n_prompt] */
    int n_prompt, n_cached, fed;
    int32_t next;   /* generating: the token to evaluate next; -1 while reading the prompt */
    uint64_t order; /* submission order: prompts are served oldest first */
    uint64_t used;  /* when it last served a request: free ones are taken least recent first */
    double t_submit, t_prompt, t_first;
} bseq;

struct mf_batcher {
    mf_model *m;
    mf_session *s;
    int n_seq, n_ctx, max_batch, prompt_chunk;
    bseq *seq;            /* [n_seq] */
    mf_seq_chunk *chunks; /* [n_seq] the step being built */
    int *chunk_id;        /* [n_seq] the request of each chunk when the step was built */
    int *bad;             /* [n_seq] chunks whose logits were not finite */
    int next_id;
    uint64_t clock;
    mf_batcher_stats st;
    double decode_s; /* time of the steps that carried generating sequences */
    uint64_t decode_rows;
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
    mf_session_opts so = o->session;
    so.n_seq = o->n_seq > 0 ? o->n_seq : 1;
    b->m = m;
    b->s = mf_session_new(m, &so, err);
    if (!b->s) {
        free(b);
        return NULL;
    }
    b->n_seq = mf_session_n_seq(b->s);
    b->n_ctx = mf_session_n_ctx(b->s);
    b->max_batch = mf_session_max_batch(b->s);
    b->prompt_chunk = o->prompt_chunk > 0 ? o->prompt_chunk : MF_BATCH_PROMPT_CHUNK;
    b->seq = calloc((size_t)b->n_seq, sizeof *b->seq);
    b->chunks = calloc((size_t)b->n_seq, sizeof *b->chunks);
    b->chunk_id = calloc((size_t)b->n_seq, sizeof *b->chunk_id);
    b->bad = calloc((size_t)b->n_seq, sizeof *b->bad);
    if (!b->seq || !b->chunks || !b->chunk_id || !b->bad) {
        mf_batcher_free(b);
        mf_errf(err, "out of memory");
        return NULL;
    }
    for (int i = 0; i < b->n_seq; i++) b->seq[i].id = -1;
    b->st.n_seq = b->n_seq;
    return b;
}

/* The request of sequence i ends with result r (its counters filled in here). */
static void end_request(mf_batcher *b, int i, const mf_gen_result *r)
{
    bseq *q = &b->seq[i];
    mf_gen_result res = *r;
    double t = now_s();
    res.n_prompt = q->n_prompt;
    res.n_cached = q->n_cached;
    res.t_prompt_s = (q->t_prompt > 0 ? q->t_prompt : t) - q->t_submit;
    res.t_gen_s = q->t_prompt > 0 ? t - q->t_prompt : 0.0;
    /* free before the callback, which may submit a request that takes this sequence */
    mf_gen *g = q->g;
    mf_done_fn done = q->on_done;
    void *user = q->user;
    free(q->prompt);
    q->prompt = NULL;
    q->g = NULL;
    q->id = -1;
    q->used = ++b->clock;
    if (done) done(user, &res);
    mf_gen_free(g);
}

static void end_with_error(mf_batcher *b, int i, const char *msg)
{
    const mf_gen_result *r = mf_gen_finish(b->seq[i].g, MF_FINISH_ERROR);
    mf_gen_result res = *r;
    res.finish = MF_FINISH_ERROR;
    strncpy(res.error, msg, sizeof res.error - 1);
    res.error[sizeof res.error - 1] = 0;
    end_request(b, i, &res);
}

void mf_batcher_free(mf_batcher *b)
{
    if (!b) return;
    for (int i = 0; b->seq && i < b->n_seq; i++)
        if (b->seq[i].id >= 0) mf_batcher_cancel(b, b->seq[i].id);
    mf_session_free(b->s);
    free(b->seq);
    free(b->chunks);
    free(b->chunk_id);
    free(b->bad);
    free(b);
}

int mf_batcher_submit(mf_batcher *b, const int32_t *prompt, int n, const mf_gen_params *p, mf_delta_fn on_delta,
                      mf_done_fn on_done, void *user, mf_err *err)
{
    int V = b->m->hp.n_vocab;
    if (n < 1) return mf_errf(err, "the prompt is empty (0 tokens)");
    if (n > b->n_ctx) return mf_errf(err, "the prompt has %d tokens but the context holds %d", n, b->n_ctx);
    for (int i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return mf_errf(err, "token %d (at index %d) is outside the vocabulary of %d", prompt[i], i, V);
    /* the free sequence whose cache holds the most of the prompt; a cache that would lose
     * more than it keeps (say a conversation that shares only the BOS token with the
     * prompt) counts as no match, so that it stays for its own conversation's return. Among
     * equals, the one unused the longest (its cache the least likely to be asked for). */
    int best = -1, best_score = -1, best_keep = 0;
    for (int i = 0; i < b->n_seq; i++) {
        if (b->seq[i].id >= 0) continue;
        /* the last prompt token is evaluated again, for its logits */
        int keep = mf_session_seq_reusable(b->s, i, prompt, n - 1);
        int score = 2 * keep >= mf_session_seq_pos(b->s, i) ? keep : 0;
        if (score > best_score || (score == best_score && b->seq[i].used < b->seq[best].used)) {
            best = i;
            best_score = score;
            best_keep = keep;
        }
    }
    mf_gen *g = mf_gen_new(b->m, p, on_delta, user, err);
    if (!g) return -1;
    if (best < 0) {
        mf_gen_free(g);
        return -2;
    }
    int32_t *copy = malloc(sizeof(int32_t) * (size_t)n);
    if (!copy) {
        mf_gen_free(g);
        return mf_errf(err, "out of memory");
    }
    if (mf_session_seq_truncate(b->s, best, best_keep, err)) {
        free(copy);
        mf_gen_free(g);
        return -1;
    }
    memcpy(copy, prompt, sizeof(int32_t) * (size_t)n);
    bseq *q = &b->seq[best];
    q->prompt = copy;
    q->g = g;
    q->on_delta = on_delta;
    q->on_done = on_done;
    q->user = user;
    q->n_prompt = n;
    q->n_cached = q->fed = best_keep;
    q->next = -1;
    q->order = ++b->clock;
    q->t_submit = now_s();
    q->t_prompt = q->t_first = 0;
    q->id = b->next_id;
    b->next_id = b->next_id == INT_MAX ? 0 : b->next_id + 1;
    b->st.prompt_tokens += (uint64_t)n;
    b->st.cached_tokens += (uint64_t)best_keep;
    return q->id;
}

void mf_batcher_cancel(mf_batcher *b, int id)
{
    if (id < 0) return;
    for (int i = 0; i < b->n_seq; i++)
        if (b->seq[i].id == id) {
            end_request(b, i, mf_gen_finish(b->seq[i].g, MF_FINISH_CANCELLED));
            return;
        }
}

int mf_batcher_active(const mf_batcher *b)
{
    int n = 0;
    for (int i = 0; i < b->n_seq; i++) n += b->seq[i].id >= 0;
    return n;
}

/* The chunks of the next step (the order of the file's top comment); returns how many,
 * and how many of them are generating sequences' tokens. */
static int plan_step(mf_batcher *b, int *n_decode)
{
    int n = 0;
    for (int i = 0; i < b->n_seq; i++) {
        bseq *q = &b->seq[i];
        if (q->id < 0 || q->next < 0) continue;
        b->chunk_id[n] = q->id;
        b->chunks[n++] = (mf_seq_chunk){.seq = i, .tokens = &q->next, .n = 1, .logits = 1};
    }
    *n_decode = n;
    int budget = b->max_batch - n;
    if (n > 0 && budget > b->prompt_chunk) budget = b->prompt_chunk;
    while (budget > 0) {
        int pick = -1; /* the oldest request still reading its prompt and not yet in the step */
        for (int i = 0; i < b->n_seq; i++) {
            bseq *q = &b->seq[i];
            if (q->id < 0 || q->next >= 0 || q->fed == q->n_prompt) continue;
            int taken = 0;
            for (int c = *n_decode; c < n; c++) taken |= b->chunks[c].seq == i;
            if (!taken && (pick < 0 || q->order < b->seq[pick].order)) pick = i;
        }
        if (pick < 0) break;
        bseq *q = &b->seq[pick];
        int c = q->n_prompt - q->fed < budget ? q->n_prompt - q->fed : budget;
        b->chunk_id[n] = q->id;
        b->chunks[n++] =
            (mf_seq_chunk){.seq = pick, .tokens = q->prompt + q->fed, .n = c, .logits = q->fed + c == q->n_prompt};
        budget -= c;
    }
    return n;
}

int mf_batcher_step(mf_batcher *b, mf_err *err)
{
    int n_decode, n = plan_step(b, &n_decode);
    if (n == 0) return mf_batcher_active(b);
    double t0 = now_s();
    if (mf_session_step(b->s, b->chunks, n, err)) {
        for (int i = 0; i < b->n_seq; i++)
            if (b->seq[i].id >= 0) end_with_error(b, i, err->msg);
        return -1;
    }
    double t1 = now_s();
    b->st.steps++;
    if (n_decode) {
        b->decode_s += t1 - t0;
        b->decode_rows += (uint64_t)n_decode;
    }
    /* each chunk's sequence takes its next token; a sequence whose logits are not finite is
     * explained after the others have read theirs (explaining evaluates again) */
    int *bad = b->bad, n_bad = 0;
    for (int c = 0; c < n; c++) {
        const mf_seq_chunk *ch = &b->chunks[c];
        bseq *q = &b->seq[ch->seq];
        if (q->id != b->chunk_id[c]) continue; /* cancelled by a callback of this step */
        if (q->next < 0) {
            q->fed += ch->n;
            if (q->fed < q->n_prompt) continue;
            q->t_prompt = t1;
        }
        int pos = mf_session_seq_pos(b->s, ch->seq), left = b->n_ctx - pos;
        int32_t next;
        if (!mf_gen_wants_logits(q->g)) {
            int32_t t = mf_session_seq_argmax(b->s, ch->seq);
            if (t < 0) {
                bad[n_bad++] = c;
                continue;
            }
            next = mf_gen_next_token(q->g, t, left);
        } else {
            mf_err e;
            float *lg = mf_session_seq_logits(b->s, ch->seq, &e);
            if (!lg) {
                end_with_error(b, ch->seq, e.msg);
                continue;
            }
            if (mf_first_nonfinite_f32(lg, (uint64_t)b->m->hp.n_vocab) >= 0) {
                bad[n_bad++] = c;
                continue;
            }
            next = mf_gen_next(q->g, lg, mf_session_seq_tokens(b->s, ch->seq), pos, left);
        }
        b->st.generated_tokens++;
        if (q->id != b->chunk_id[c]) continue; /* a delta callback cancelled another request */
        if (next >= 0) {
            q->next = next;
            if (!q->t_first) q->t_first = now_s();
        } else {
            end_request(b, ch->seq, mf_gen_finish(q->g, MF_FINISH_STOP));
        }
    }
    for (int i = 0; i < n_bad; i++) {
        const mf_seq_chunk *ch = &b->chunks[bad[i]];
        if (b->seq[ch->seq].id != b->chunk_id[bad[i]]) continue;
        mf_err e;
        mf_session_seq_explain_nonfinite(b->s, ch->seq, ch->n, &e);
        end_with_error(b, ch->seq, e.msg);
    }
    return mf_batcher_active(b);
}

void mf_batcher_stats_get(const mf_batcher *b, mf_batcher_stats *s)
{
    *s = b->st;
    s->active = mf_batcher_active(b);
    s->decode_tok_s = b->decode_s > 0 ? (double)b->decode_rows / b->decode_s : 0.0;
}

const mf_model *mf_batcher_model(const mf_batcher *b) { return b->m; }
int mf_batcher_n_ctx(const mf_batcher *b) { return b->n_ctx; }
mf_session *mf_batcher_session(mf_batcher *b) { return b->s; }
