/* session.c — a model opened on a device for one sequence: the backend choice, the model
 * prepared on it, the sequence's state and activation buffers (the backend checks that they
 * fit), and the entry points (batching, context checks, logits retrieval, the layer hook).
 * Each step goes to forward.c with the session's view of it (mf_session_forward). */
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

    mf_session *s = calloc(1, sizeof *s);
    if (!s) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    s->m = m;
    s->n_ctx = o.n_ctx;
    s->max_batch = o.max_batch;
    s->be = pick_backend(s, &o, err);
    if (!s->be) goto fail;
    if (o.kv_f16 < 0) o.kv_f16 = s->be->kv_f16_default;
    s->o = o;

    s->logits_rows = mf_mem_logits_rows(hp, o.max_batch);

    s->bm = s->be->prepare(s->be, m, o.progress, o.progress_user, err);
    if (!s->bm) goto fail;
    /* the backend checks its memory (host RAM or device memory) against what it allocates */
    mf_state_opts so = {
        .n_ctx = o.n_ctx, .max_batch = o.max_batch, .kv_f16 = o.kv_f16, .no_graph = o.no_graph, .no_pack = o.no_pack};
    s->bst = s->be->state_new(s->be, s->bm, &so, err);
    if (!s->bst) goto fail;

    /* the activation buffers (memory.h); the backend's state_new has counted them in its
     * memory check */
    mf_mem_acts a;
    mf_mem_acts_of(hp, o.max_batch, &a);
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

int mf_session_eval(mf_session *s, const int32_t *tokens, int n, float *all_logits, mf_err *err)
{
    const mf_hparams *hp = &s->m->hp;
    if (n <= 0) return mf_errf(err, "nothing to evaluate (0 tokens)");
    if ((int64_t)s->pos + n > s->n_ctx)
        return mf_errf(err, "%d tokens at position %d exceed the context of %d tokens (use -c to enlarge it)", n,
                       s->pos, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return mf_errf(err, "token %d (at index %d) is outside the vocabulary of %d", tokens[i], i, hp->n_vocab);
    int B = all_logits ? s->logits_rows : s->max_batch;
    mf_forward f = mf_session_forward(s);
    for (int done = 0; done < n;) {
        int c = n - done < B ? n - done : B;
        if (mf_forward_step(&f, tokens + done, c, s->pos, all_logits != NULL, err)) return -1;
        if (all_logits &&
            s->be->read(s->be, s->buf.logits, (size_t)c * hp->n_vocab, all_logits + (size_t)done * hp->n_vocab, err))
            return -1;
        s->last_row = all_logits ? c - 1 : 0;
        s->pos += c;
        done += c;
    }
    s->host_valid = 0;
    return 0;
}

float *mf_session_logits(mf_session *s, mf_err *err)
{
    int V = s->m->hp.n_vocab;
    if (!s->host_valid) {
        if (s->be->read(s->be, s->buf.logits + (size_t)s->last_row * V, (size_t)V, s->host_logits, err)) return NULL;
        s->host_valid = 1;
    }
    return s->host_logits;
}

int32_t mf_session_argmax(mf_session *s)
{
    int V = s->m->hp.n_vocab;
    return s->be->argmax(s->be, s->bst, s->buf.logits + (size_t)s->last_row * V, V);
}

/* The layer hook of mf_session_explain_nonfinite: remembers the first stage whose output
 * holds a non-finite value (layer -1 = the embeddings). */
typedef struct nf_find {
    int found, layer, row, col;
    float value;
} nf_find;

static void nf_hook(void *user, int layer, const float *x, int rows, int width)
{
    nf_find *f = user;
    if (f->found) return;
    int64_t i = mf_first_nonfinite_f32(x, (uint64_t)rows * (uint64_t)width);
    if (i < 0) return;
    *f = (nf_find){1, layer, (int)(i / width), (int)(i % width), x[i]};
}

static const char *nf_name(float v) { return isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf"; }

int mf_session_explain_nonfinite(mf_session *s, const int32_t *tokens, int n, mf_err *err)
{
    const mf_hparams *hp = &s->m->hp;
    if (n <= 0 || n > s->pos) return mf_errf(err, "the logits are not finite (NaN or infinite)");
    int pos0 = s->pos - n;
    nf_find f = {0};
    mf_layer_hook saved = s->hook;
    void *saved_user = s->hook_user;
    mf_err e2;
    s->pos = pos0;
    mf_session_set_hook(s, nf_hook, &f);
    int rc = mf_session_eval(s, tokens, n, NULL, &e2);
    mf_session_set_hook(s, saved, saved_user);
    if (rc) return mf_errf(err, "the logits are not finite, and evaluating again to find out why failed: %s", e2.msg);
    if (f.found && f.layer < 0)
        return mf_errf(
            err,
            "the logits are not finite: the token embedding (token_embd.weight) of token %d at position %d holds %s (element %d)",
            tokens[f.row], pos0 + f.row, nf_name(f.value), f.col);
    if (f.found)
        return mf_errf(
            err,
            "the logits are not finite: layer %d (of %d, blk.%d.*) is the first whose output holds %s (position %d, element %d)",
            f.layer, hp->n_layers, f.layer, nf_name(f.value), pos0 + f.row, f.col);
    /* every layer's output is finite: the output norm or the output matrix */
    float *lg = mf_session_logits(s, &e2);
    int64_t bad = lg ? mf_first_nonfinite_f32(lg, (uint64_t)hp->n_vocab) : -1;
    if (bad >= 0)
        return mf_errf(
            err,
            "the logits are not finite (%s for token %lld) although every layer's output is: the output norm or the output matrix (%s) holds a non-finite value",
            nf_name(lg[bad]), (long long)bad, s->m->tied_output ? "token_embd.weight, tied" : "output.weight");
    return mf_errf(err, "the logits were not finite, but evaluating the same tokens again gave finite ones");
}

int mf_session_pos(const mf_session *s) { return s->pos; }
int mf_session_kv_f16(const mf_session *s) { return s->o.kv_f16; }
int mf_session_n_ctx(const mf_session *s) { return s->n_ctx; }
void mf_session_reset(mf_session *s)
{
    s->pos = 0;
    s->host_valid = 0;
}
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
