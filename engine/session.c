/* session.c — a model opened on a device: backend choice, memory check, buffers, and the
 * prompt/generation entry points (batching, context checks, logits retrieval). */
#include "session.h"
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

mf_session_opts mf_session_defaults(void)
{
    mf_session_opts o = {.device = "auto", .n_threads = 0, .n_ctx = 0, .max_batch = 512, .kv_f16 = -1, .no_graph = 0};
    return o;
}

uint64_t mf_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024;  /* Linux reports kilobytes */
}

static void free_buffers(mf_session *s)
{
    if (!s->be) return;
    float **bufs[] = {&s->x, &s->h, &s->q, &s->k, &s->v, &s->att, &s->logits};
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
        s->be->unprepare(s->be, s->m);
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
    if (o.n_ctx > (1 << 24)) { mf_errf(err, "context of %d tokens is too large", o.n_ctx); return NULL; }
    if (o.max_batch <= 0) o.max_batch = 512;
    if (o.max_batch > o.n_ctx) o.max_batch = o.n_ctx;

    mf_session *s = calloc(1, sizeof *s);
    if (!s) { mf_errf(err, "out of memory"); return NULL; }
    s->m = m;
    s->n_ctx = o.n_ctx;
    s->max_batch = o.max_batch;
    s->be = pick_backend(s, &o, err);
    if (!s->be) goto fail;
    int gpu = strcmp(s->be->name, "cpu") != 0;
    if (o.kv_f16 < 0) o.kv_f16 = MF_KV_DEFAULT_ELEM == 2;  /* model.h */
    s->o = o;

    /* logits for all rows of a batch cost rows * n_vocab floats: cap that scratch at 64 MB */
    int64_t lr = (64ll << 20) / ((int64_t)hp->n_vocab * 4);
    s->logits_rows = lr < 1 ? 1 : (lr > o.max_batch ? o.max_batch : (int)lr);

    /* host memory check before any large allocation (weights are mapped, not copied, but
     * they must fit in RAM to run at memory speed) */
    if (!gpu) {
        uint64_t kv = mf_kv_bytes(hp, o.n_ctx, o.kv_f16 ? 2 : 4);
        uint64_t act = (uint64_t)o.max_batch * 4 *
                       (uint64_t)(2 * hp->n_embd + 2 * hp->n_heads * hp->head_dim + 2 * hp->n_kv_heads * hp->head_dim +
                                  2 * (hp->n_ff > hp->n_ff_exp ? hp->n_ff : hp->n_ff_exp)) +
                       (uint64_t)s->logits_rows * 4 * (uint64_t)hp->n_vocab;
        uint64_t need = m->weight_bytes + kv + act, have = mf_plan_mem_total();
        if (have && need > have) {
            mf_errf(err, "model needs %.2f GB (weights %.2f GB + KV cache %.2f GB + scratch %.2f GB) but this machine has %.2f GB of RAM",
                    need / 1e9, m->weight_bytes / 1e9, kv / 1e9, act / 1e9, have / 1e9);
            goto fail;
        }
    }

    if (s->be->prepare(s->be, m, err)) goto fail;
    mf_state_opts so = {.n_ctx = o.n_ctx, .max_batch = o.max_batch, .kv_f16 = o.kv_f16, .no_graph = o.no_graph,
                        .no_pack = o.no_pack};
    s->bst = s->be->state_new(s->be, m, &so, err);
    if (!s->bst) goto fail;

    size_t B = (size_t)o.max_batch, qw = (size_t)hp->n_heads * hp->head_dim, kw = (size_t)hp->n_kv_heads * hp->head_dim;
    s->x = s->be->alloc(s->be, B * hp->n_embd);
    s->h = s->be->alloc(s->be, B * hp->n_embd);
    s->q = s->be->alloc(s->be, B * qw);
    s->k = s->be->alloc(s->be, B * kw);
    s->v = s->be->alloc(s->be, B * kw);
    s->att = s->be->alloc(s->be, B * qw);
    s->logits = s->be->alloc(s->be, (size_t)s->logits_rows * hp->n_vocab);
    s->host_logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    if (!s->x || !s->h || !s->q || !s->k || !s->v || !s->att || !s->logits || !s->host_logits) {
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
        return mf_errf(err, "%d tokens at position %d exceed the context of %d tokens (use -c to enlarge it)",
                       n, s->pos, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return mf_errf(err, "token %d (at index %d) is outside the vocabulary of %d", tokens[i], i, hp->n_vocab);
    int B = all_logits ? s->logits_rows : s->max_batch;
    for (int done = 0; done < n;) {
        int c = n - done < B ? n - done : B;
        if (mf_forward_step(s, tokens + done, c, s->pos, all_logits != NULL, err)) return -1;
        if (all_logits &&
            s->be->read(s->be, s->logits, (size_t)c * hp->n_vocab, all_logits + (size_t)done * hp->n_vocab, err))
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
        if (s->be->read(s->be, s->logits + (size_t)s->last_row * V, (size_t)V, s->host_logits, err)) return NULL;
        s->host_valid = 1;
    }
    return s->host_logits;
}

int32_t mf_session_argmax(mf_session *s)
{
    int V = s->m->hp.n_vocab;
    return s->be->argmax(s->be, s->bst, s->logits + (size_t)s->last_row * V, V);
}

int mf_session_pos(const mf_session *s) { return s->pos; }
int mf_session_kv_f16(const mf_session *s) { return s->o.kv_f16; }
int mf_session_n_ctx(const mf_session *s) { return s->n_ctx; }
void mf_session_reset(mf_session *s) { s->pos = 0; s->host_valid = 0; }
const mf_backend *mf_session_backend(const mf_session *s) { return s->be; }
const char *mf_session_note(const mf_session *s) { return s->note[0] ? s->note : NULL; }

void mf_session_set_hook(mf_session *s, mf_layer_hook hook, void *user)
{
    s->hook = hook;
    s->hook_user = user;
}

void mf_session_call_hook(mf_session *s, int layer, int rows)
{
    int d = s->m->hp.n_embd;
    if (!s->hook_buf) {
        s->hook_buf = malloc(sizeof(float) * (size_t)s->max_batch * (size_t)d);
        if (!s->hook_buf) return;
    }
    mf_err err;
    if (s->be->read(s->be, s->x, (size_t)rows * d, s->hook_buf, &err)) return;
    s->hook(s->hook_user, layer, s->hook_buf, rows, d);
}
