/* session.c — a model opened on a device for one or several sequences: the backend choice,
 * the model prepared on it, the sequences' state and the activation buffers (the backend
 * checks that they fit), and the entry points (steps over the chunks of several sequences,
 * a sequence's prompt cut into steps, context checks, logits retrieval, prefix reuse, the
 * layer hook). Each step goes to forward.c with the session's view of it
 * (mf_session_forward). */
#include "session.h"
#include "memory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

mf_session_opts mf_session_defaults(void)
{
    mf_session_opts o = {.device = "auto",
                         .n_threads = 0,
                         .n_ctx = 0,
                         .max_batch = 512,
                         .n_seq = 1,
                         .kv_f16 = -1,
                         .no_graph = 0,
                         .progress = NULL,
                         .progress_user = NULL};
    return o;
}

uint64_t mf_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}

static void free_buffers(mf_session *s)
{
    if (!s->be) return;
    mf_fwd_bufs *b = &s->buf;
    float **bufs[] = {&b->x, &b->h, &b->q, &b->k, &b->v, &b->attn_out, &b->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        if (*bufs[i]) s->be->release(s->be, *bufs[i]);
        *bufs[i] = NULL;
    }
}

void mf_session_free(mf_session *s)
{
    if (!s) return;
    free_buffers(s);
    if (s->be) {
        if (s->bst) s->be->state_free(s->be, s->bst);
        if (s->bm) s->be->unprepare(s->be, s->bm);
        s->be->free(s->be);
    }
    free(s->host_logits);
    free(s->hook_buf);
    for (int i = 0; s->seq && i < s->n_seq; i++) free(s->seq[i].tokens);
    free(s->seq);
    free(s->step_rows);
    free(s);
}

static mf_backend *pick_backend(mf_session *s, const mf_session_opts *o, mf_err *err)
{
    const char *dev = o->device ? o->device : "auto";
    if (!strcmp(dev, "cpu")) return mf_backend_cpu_new(o->n_threads, err);
    if (!strcmp(dev, "cuda")) return mf_backend_cuda_new(0, err);
    if (strcmp(dev, "auto") != 0) {
        mf_errf(err, "unknown device '%s' (expected auto, cpu or cuda)", dev);
        return NULL;
    }
    char why[256] = "";
    char names[1][128];
    if (mf_cuda_devices(names, 1, why, sizeof why) > 0) {
        mf_err e2;
        mf_backend *be = mf_backend_cuda_new(0, &e2);
        if (be) return be;
        snprintf(s->note, sizeof s->note, "CUDA device present but unusable (%.180s); using the CPU", e2.msg);
    } else {
        snprintf(s->note, sizeof s->note, "no CUDA device (%.200s); using the CPU", why);
    }
    return mf_backend_cpu_new(o->n_threads, err);
}

mf_session *mf_session_new(mf_model *m, const mf_session_opts *opts, mf_err *err)
{
    mf_session_opts o = opts ? *opts : mf_session_defaults();
    const mf_hparams *hp = &m->hp;
    if (o.n_ctx <= 0) o.n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (o.n_ctx > (1 << 24)) {
        mf_errf(err, "context of %d tokens is too large", o.n_ctx);
        return NULL;
    }
    if (o.max_batch <= 0) o.max_batch = 512;
    if (o.max_batch > o.n_ctx) o.max_batch = o.n_ctx;
    if (o.n_seq <= 0) o.n_seq = 1;
    if (o.n_seq > o.max_batch) {
        mf_errf(err, "%d sequences do not fit steps of %d tokens (one token each)", o.n_seq, o.max_batch);
        return NULL;
    }

    mf_session *s = calloc(1, sizeof *s);
    if (!s) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    s->m = m;
    s->n_ctx = o.n_ctx;
    s->max_batch = o.max_batch;
    s->n_seq = o.n_seq;
    s->host_seq = -1;
    s->seq = calloc((size_t)o.n_seq, sizeof *s->seq);
    s->step_rows = malloc(sizeof(int32_t) * 4 * (size_t)o.max_batch);
    if (!s->seq || !s->step_rows) {
        mf_errf(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < o.n_seq; i++) s->seq[i].logits_row = -1;
    s->be = pick_backend(s, &o, err);
    if (!s->be) goto fail;
    if (o.kv_f16 < 0) o.kv_f16 = s->be->kv_f16_default;
    s->o = o;

    s->logits_rows = mf_mem_logits_rows(hp, o.max_batch, o.n_seq);
    for (int l = 0; l < hp->n_layers; l++)
        if (mf_layer_slides(hp, l)) s->swa_slots = mf_mem_kv_slots(hp, l, o.n_ctx, o.max_batch);

    s->bm = s->be->prepare(s->be, m, o.progress, o.progress_user, err);
    if (!s->bm) goto fail;
    /* the backend checks its memory (host RAM or device memory) against what it allocates */
    mf_state_opts so = {.n_ctx = o.n_ctx,
                        .max_batch = o.max_batch,
                        .n_seq = o.n_seq,
                        .kv_f16 = o.kv_f16,
                        .no_graph = o.no_graph,
                        .no_pack = o.no_pack};
    s->bst = s->be->state_new(s->be, s->bm, &so, err);
    if (!s->bst) goto fail;

    /* the activation buffers (memory.h); the backend's state_new has counted them in its
     * memory check */
    mf_mem_acts a;
    mf_mem_acts_of(hp, o.max_batch, o.n_seq, &a);
    mf_fwd_bufs *b = &s->buf;
    b->x = s->be->alloc(s->be, a.x);
    b->h = s->be->alloc(s->be, a.h);
    b->q = s->be->alloc(s->be, a.q);
    b->k = s->be->alloc(s->be, a.k);
    b->v = s->be->alloc(s->be, a.v);
    b->attn_out = s->be->alloc(s->be, a.attn_out);
    b->logits = s->be->alloc(s->be, a.logits);
    s->host_logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    if (!b->x || !b->h || !b->q || !b->k || !b->v || !b->attn_out || !b->logits || !s->host_logits) {
        mf_errf(err, "out of memory for the activation buffers (%s)", s->be->name);
        goto fail;
    }
    return s;
fail:
    mf_session_free(s);
    return NULL;
}

/* Make room for sequence q's token record up to `need` positions (at most n_ctx). */
static int seq_reserve(mf_session *s, mf_seq *q, int need, mf_err *err)
{
    if (need <= q->cap) return 0;
    int cap = q->cap ? q->cap : 256;
    while (cap < need) cap = cap > s->n_ctx / 2 ? s->n_ctx : 2 * cap;
    int32_t *t = realloc(q->tokens, sizeof(int32_t) * (size_t)cap);
    if (!t) return mf_errf(err, "out of memory for the tokens of a sequence (%d positions)", cap);
    q->tokens = t;
    q->cap = cap;
    return 0;
}

/* One step over the chunks (checked by the callers): rows in chunk order, logits of each
 * chunk's last row when it asks (every row of the only chunk when all_rows), then each
 * sequence advances. */
static int run_step(mf_session *s, const mf_seq_chunk *c, int n_chunks, int all_rows, mf_err *err)
{
    int32_t *tok = s->step_rows, *seq = tok + s->max_batch, *pos = seq + s->max_batch, *out = pos + s->max_batch;
    int n = 0, n_out = 0;
    for (int i = 0; i < n_chunks; i++) {
        mf_seq *q = &s->seq[c[i].seq];
        if (seq_reserve(s, q, q->pos + c[i].n, err)) return -1;
        for (int j = 0; j < c[i].n; j++, n++) {
            tok[n] = c[i].tokens[j];
            seq[n] = c[i].seq;
            pos[n] = q->pos + j;
            if (all_rows || (c[i].logits && j == c[i].n - 1)) out[n_out++] = n;
        }
    }
    for (int i = 0; i < s->n_seq; i++) s->seq[i].logits_row = -1;
    s->host_seq = -1;
    mf_step st = {.n = n, .tokens = tok, .seq = seq, .pos = pos, .n_out = n_out, .out = out};
    mf_forward f = mf_session_forward(s);
    if (mf_forward_step(&f, &st, err)) return -1;
    for (int i = 0, row = 0; i < n_chunks; i++) {
        mf_seq *q = &s->seq[c[i].seq];
        memcpy(q->tokens + q->pos, c[i].tokens, sizeof(int32_t) * (size_t)c[i].n);
        /* the step overwrote the ring slots of positions pos + n − slots .. pos − 1 */
        if (s->swa_slots && q->pos + c[i].n - s->swa_slots > q->swa_lo) q->swa_lo = q->pos + c[i].n - s->swa_slots;
        q->pos += c[i].n;
        if (all_rows) q->logits_row = c[i].n - 1;
        else if (c[i].logits) q->logits_row = row++;
    }
    return 0;
}

/* The checks every step's input passes: the tokens in the vocabulary, the context. */
static int check_tokens(const mf_session *s, int seq, const int32_t *tokens, int n, mf_err *err)
{
    int V = s->m->hp.n_vocab, pos = s->seq[seq].pos;
    if (n <= 0) return mf_errf(err, "nothing to evaluate (0 tokens)");
    if ((int64_t)pos + n > s->n_ctx) {
        if (s->n_seq == 1)
            return mf_errf(err, "%d tokens at position %d exceed the context of %d tokens (use -c to enlarge it)", n,
                           pos, s->n_ctx);
        return mf_errf(err, "%d tokens at position %d of sequence %d exceed its context of %d tokens", n, pos, seq,
                       s->n_ctx);
    }
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return mf_errf(err, "token %d (at index %d) is outside the vocabulary of %d", tokens[i], i, V);
    return 0;
}

int mf_session_eval(mf_session *s, const int32_t *tokens, int n, float *all_logits, mf_err *err)
{
    const mf_hparams *hp = &s->m->hp;
    if (check_tokens(s, 0, tokens, n, err)) return -1;
    int B = all_logits ? s->logits_rows : s->max_batch;
    for (int done = 0; done < n;) {
        int c = n - done < B ? n - done : B;
        mf_seq_chunk ch = {.seq = 0, .tokens = tokens + done, .n = c, .logits = 1};
        if (run_step(s, &ch, 1, all_logits != NULL, err)) return -1;
        if (all_logits &&
            s->be->read(s->be, s->buf.logits, (size_t)c * hp->n_vocab, all_logits + (size_t)done * hp->n_vocab, err))
            return -1;
        done += c;
    }
    return 0;
}

int mf_session_step(mf_session *s, const mf_seq_chunk *chunks, int n_chunks, mf_err *err)
{
    if (n_chunks <= 0) return mf_errf(err, "a step of no sequences");
    int rows = 0;
    for (int i = 0; i < n_chunks; i++) {
        int q = chunks[i].seq;
        if (q < 0 || q >= s->n_seq) return mf_errf(err, "sequence %d does not exist (the session has %d)", q, s->n_seq);
        for (int j = 0; j < i; j++)
            if (chunks[j].seq == q) return mf_errf(err, "sequence %d appears twice in one step", q);
        if (check_tokens(s, q, chunks[i].tokens, chunks[i].n, err)) return -1;
        rows += chunks[i].n;
        if (rows > s->max_batch)
            return mf_errf(err, "a step of more than %d tokens (the session's max_batch)", s->max_batch);
    }
    /* at most one row of logits per sequence: n_chunks <= n_seq <= logits_rows */
    return run_step(s, chunks, n_chunks, 0, err);
}

float *mf_session_seq_logits(mf_session *s, int seq, mf_err *err)
{
    int V = s->m->hp.n_vocab;
    if (seq < 0 || seq >= s->n_seq || s->seq[seq].logits_row < 0) {
        mf_errf(err, "sequence %d has no logits from the last step", seq);
        return NULL;
    }
    if (s->host_seq != seq) {
        if (s->be->read(s->be, s->buf.logits + (size_t)s->seq[seq].logits_row * V, (size_t)V, s->host_logits, err))
            return NULL;
        s->host_seq = seq;
    }
    return s->host_logits;
}

int32_t mf_session_seq_argmax(mf_session *s, int seq)
{
    int V = s->m->hp.n_vocab;
    if (seq < 0 || seq >= s->n_seq || s->seq[seq].logits_row < 0) return -2;
    return s->be->argmax(s->be, s->bst, s->buf.logits + (size_t)s->seq[seq].logits_row * V, V);
}

float *mf_session_logits(mf_session *s, mf_err *err) { return mf_session_seq_logits(s, 0, err); }

int32_t mf_session_argmax(mf_session *s)
{
    int32_t t = mf_session_seq_argmax(s, 0);
    return t < 0 ? -1 : t;
}

/* docs/generate.md §5: evaluating from position n, the query at n needs the keys of the W − 1
 * positions before it; a sliding layer's ring still holds them when none was overwritten
 * since, i.e. swa_lo <= n − W + 1 (everything from position 0 on before the ring wrapped). */
static int can_rewind(const mf_session *s, const mf_seq *q, int n)
{
    if (n == 0 || !s->swa_slots) return 1;
    int need = n - s->m->hp.window + 1;
    return q->swa_lo <= (need > 0 ? need : 0);
}

int mf_session_seq_reusable(const mf_session *s, int seq, const int32_t *toks, int n)
{
    if (seq < 0 || seq >= s->n_seq) return 0;
    const mf_seq *q = &s->seq[seq];
    int k = 0;
    while (k < n && k < q->pos && toks[k] == q->tokens[k]) k++;
    return can_rewind(s, q, k) ? k : 0;
}

int mf_session_seq_truncate(mf_session *s, int seq, int n, mf_err *err)
{
    if (seq < 0 || seq >= s->n_seq)
        return mf_errf(err, "sequence %d does not exist (the session has %d)", seq, s->n_seq);
    mf_seq *q = &s->seq[seq];
    if (n < 0 || n > q->pos) return mf_errf(err, "cannot keep %d tokens of a cache that holds %d", n, q->pos);
    if (n == q->pos) return 0;
    if (!can_rewind(s, q, n))
        return mf_errf(err,
                       "cannot go back to position %d: the sliding-window layers' rings (%d slots) no longer hold "
                       "the positions before it",
                       n, s->swa_slots);
    q->pos = n;
    q->logits_row = -1;
    if (s->host_seq == seq) s->host_seq = -1;
    if (n == 0) q->swa_lo = 0;
    return 0;
}

const int32_t *mf_session_seq_tokens(const mf_session *s, int seq) { return s->seq[seq].tokens; }
int mf_session_seq_pos(const mf_session *s, int seq) { return s->seq[seq].pos; }
int mf_session_n_seq(const mf_session *s) { return s->n_seq; }
int mf_session_max_batch(const mf_session *s) { return s->max_batch; }

/* The layer hook of mf_session_explain_nonfinite: remembers the first stage whose output
 * holds a non-finite value (layer -1 = the embeddings). */
typedef struct nf_find {
    int found, layer, row, col;
    float value;
    int base; /* tokens before the current step's */
} nf_find;

static void nf_hook(void *user, int layer, const float *x, int rows, int width)
{
    nf_find *f = user;
    if (f->found) return;
    int64_t i = mf_first_nonfinite_f32(x, (uint64_t)rows * (uint64_t)width);
    if (i < 0) return;
    *f = (nf_find){1, layer, f->base + (int)(i / width), (int)(i % width), x[i], f->base};
}

static const char *nf_name(float v) { return isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf"; }

/* mf_session_explain_nonfinite of sequence seq, whose last n tokens are `tokens`. */
static int explain(mf_session *s, int seq, const int32_t *tokens, int n, mf_err *err)
{
    const mf_hparams *hp = &s->m->hp;
    mf_seq *q = &s->seq[seq];
    if (n <= 0 || n > q->pos) return mf_errf(err, "the logits are not finite (NaN or infinite)");
    int pos0 = q->pos - n;
    nf_find f = {0};
    mf_layer_hook saved = s->hook;
    void *saved_user = s->hook_user;
    mf_err e2;
    /* the same tokens at the same positions, all of them (a sliding layer's ring ends up as
     * it was only once the last has been written again); a copy, since the record is
     * rewritten with them */
    int32_t *again = malloc(sizeof(int32_t) * (size_t)n);
    if (!again) return mf_errf(err, "the logits are not finite (NaN or infinite), and out of memory to find out why");
    memcpy(again, tokens, sizeof(int32_t) * (size_t)n);
    q->pos = pos0;
    mf_session_set_hook(s, nf_hook, &f);
    int rc = 0;
    for (int done = 0; done < n && !rc; done += s->max_batch) {
        mf_seq_chunk ch = {
            .seq = seq, .tokens = again + done, .n = n - done < s->max_batch ? n - done : s->max_batch, .logits = 1};
        f.base = done;
        rc = run_step(s, &ch, 1, 0, &e2);
    }
    mf_session_set_hook(s, saved, saved_user);
    free(again);
    if (rc) {
        q->pos = pos0 + n; /* the record still holds them */
        return mf_errf(err, "the logits are not finite, and evaluating again to find out why failed: %s", e2.msg);
    }
    if (f.found && f.layer < 0)
        return mf_errf(
            err,
            "the logits are not finite: the token embedding (token_embd.weight) of token %d at position %d holds %s (element %d)",
            q->tokens[pos0 + f.row], pos0 + f.row, nf_name(f.value), f.col);
    if (f.found)
        return mf_errf(
            err,
            "the logits are not finite: layer %d (of %d, blk.%d.*) is the first whose output holds %s (position %d, element %d)",
            f.layer, hp->n_layers, f.layer, nf_name(f.value), pos0 + f.row, f.col);
    /* every layer's output is finite: the output norm or the output matrix */
    float *lg = mf_session_seq_logits(s, seq, &e2);
    int64_t bad = lg ? mf_first_nonfinite_f32(lg, (uint64_t)hp->n_vocab) : -1;
    if (bad >= 0)
        return mf_errf(
            err,
            "the logits are not finite (%s for token %lld) although every layer's output is: the output norm or the output matrix (%s) holds a non-finite value",
            nf_name(lg[bad]), (long long)bad, s->m->tied_output ? "token_embd.weight, tied" : "output.weight");
    return mf_errf(err, "the logits were not finite, but evaluating the same tokens again gave finite ones");
}

int mf_session_explain_nonfinite(mf_session *s, const int32_t *tokens, int n, mf_err *err)
{
    return explain(s, 0, tokens, n, err);
}

int mf_session_seq_explain_nonfinite(mf_session *s, int seq, int n, mf_err *err)
{
    if (seq < 0 || seq >= s->n_seq)
        return mf_errf(err, "sequence %d does not exist (the session has %d)", seq, s->n_seq);
    mf_seq *q = &s->seq[seq];
    return explain(s, seq, n > 0 && n <= q->pos ? q->tokens + q->pos - n : NULL, n, err);
}

int mf_session_pos(const mf_session *s) { return s->seq[0].pos; }
int mf_session_kv_f16(const mf_session *s) { return s->o.kv_f16; }
int mf_session_n_ctx(const mf_session *s) { return s->n_ctx; }
void mf_session_reset(mf_session *s)
{
    for (int i = 0; i < s->n_seq; i++) {
        s->seq[i].pos = 0;
        s->seq[i].logits_row = -1;
        s->seq[i].swa_lo = 0;
    }
    s->host_seq = -1;
}

const mf_model *mf_session_model(const mf_session *s) { return s->m; }
const int32_t *mf_session_tokens(const mf_session *s) { return s->seq[0].tokens; }
int mf_session_has_logits(const mf_session *s) { return s->seq[0].pos > 0 && s->seq[0].logits_row >= 0; }
int mf_session_reusable(const mf_session *s, const int32_t *toks, int n)
{
    return mf_session_seq_reusable(s, 0, toks, n);
}
int mf_session_truncate(mf_session *s, int n, mf_err *err) { return mf_session_seq_truncate(s, 0, n, err); }
const mf_backend *mf_session_backend(const mf_session *s) { return s->be; }
const char *mf_session_note(const mf_session *s) { return s->note[0] ? s->note : NULL; }

void mf_session_set_hook(mf_session *s, mf_layer_hook hook, void *user)
{
    s->hook = hook;
    s->hook_user = user;
}

int mf_session_observe(mf_session *s, mf_matmul_observer fn, void *user, mf_err *err)
{
    if (!s->be->observe)
        return mf_errf(err, "the %s backend cannot report matrix inputs (use the CPU: --device cpu)", s->be->name);
    s->be->observe(s->be, s->bst, fn, user);
    return 0;
}

/* The forward pass's hook while a layer hook is set: the step's rows of x copied to the
 * host, then the caller's hook; -1 with err when the copy fails (the hook is not called). */
static int call_hook(void *user, int layer, int rows, mf_err *err)
{
    mf_session *s = user;
    int d = s->m->hp.n_embd;
    if (!s->hook_buf) {
        s->hook_buf = malloc(sizeof(float) * (size_t)s->max_batch * (size_t)d);
        if (!s->hook_buf) return mf_errf(err, "out of memory for the hook's copy of the hidden state");
    }
    if (s->be->read(s->be, s->buf.x, (size_t)rows * d, s->hook_buf, err)) return -1;
    s->hook(s->hook_user, layer, s->hook_buf, rows, d);
    return 0;
}

mf_forward mf_session_forward(mf_session *s)
{
    mf_forward f = {.m = s->m, .be = s->be, .st = s->bst, .buf = s->buf};
    if (s->hook) {
        f.hook = call_hook;
        f.hook_user = s;
    }
    return f;
}
