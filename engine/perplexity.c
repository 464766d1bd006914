/* perplexity.c — perplexity and KL divergence over a text (contract: perplexity.h). */
#include "perplexity.h"
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mf_ppl {
    mf_model *m;
    mf_session *s;
    int n_ctx, n_chunks, first, V;
    int32_t *tokens; /* [n_chunks][n_ctx] */
    float *logits;   /* [n_ctx][V] */
    mf_gguf *base;   /* the base's log-probs, or NULL */
    /* sums over scored tokens */
    int chunks_done;
    int64_t n;
    double s_nll, s_nll2, s_base_nll, s_kl, s_kl2, kl_max, s_dp;
    int64_t top1;
    double *kl; /* every token's KL (for the percentile), base runs only */
};

int mf_ppl_chunks(const mf_model *m, const char *text, size_t len, int n_ctx, int32_t **tokens, int *n_chunks,
                  mf_err *err)
{
    *tokens = NULL;
    int64_t n = mf_tokenize(m->tok, text, len, 1, 0, NULL, 0, err);
    if (n < 0) return -1;
    if (n < n_ctx || n_ctx < 4)
        return mf_errf(
            err,
            "the text has %lld tokens, fewer than one chunk of %d (give a longer text or a smaller -c, at least 4)",
            (long long)n, n_ctx);
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    if (!ids) return mf_errf(err, "out of memory for %lld tokens", (long long)n);
    mf_tokenize(m->tok, text, len, 1, 0, ids, n, err);
    int k = (int)(n / n_ctx);
    int32_t bos = mf_tok_bos(m->tok);
    if (bos >= 0 && mf_tok_add_bos(m->tok))
        for (int c = 0; c < k; c++) ids[(size_t)c * n_ctx] = bos;
    *tokens = ids;
    *n_chunks = k;
    return 0;
}

void mf_ppl_free(mf_ppl *p)
{
    if (!p) return;
    mf_session_free(p->s);
    mf_gguf_close(p->base);
    free(p->tokens);
    free(p->logits);
    free(p->kl);
    free(p);
}

const mf_session *mf_ppl_session(const mf_ppl *p) { return p->s; }

/* Open and check the base file; fills n_ctx, n_chunks and the tokens when not given. */
static int open_base(mf_ppl *p, const char *path, const int32_t *tokens, mf_err *err)
{
    if (!(p->base = mf_gguf_open(path, err))) return -1;
    uint32_t ver, n_ctx, n_chunks, n_vocab, first;
    if (mf_gguf_get_u32(p->base, "minfer.logits.version", &ver, err) ||
        mf_gguf_get_u32(p->base, "minfer.logits.n_ctx", &n_ctx, err) ||
        mf_gguf_get_u32(p->base, "minfer.logits.n_chunks", &n_chunks, err) ||
        mf_gguf_get_u32(p->base, "minfer.logits.n_vocab", &n_vocab, err) ||
        mf_gguf_get_u32(p->base, "minfer.logits.first", &first, err))
        return mf_err_prefix(err, "not a minfer --save-logits file");
    if (ver != 1) return mf_errf(err, "%s: logits file version %u (this minfer reads 1)", path, ver);
    if ((int)n_vocab != p->V)
        return mf_errf(
            err, "%s: the base model has a vocabulary of %u, this model %d: KL divergence needs the same vocabulary",
            path, n_vocab, p->V);
    if (n_ctx < 4 || n_ctx > (1u << 20) || n_chunks < 1 || n_chunks > (1u << 20) || first != n_ctx / 2)
        return mf_errf(err, "%s: n_ctx %u, n_chunks %u, first %u are inconsistent", path, n_ctx, n_chunks, first);
    if (tokens && ((int)n_ctx != p->n_ctx || (int)n_chunks != p->n_chunks))
        return mf_errf(
            err, "%s: the base was computed on %u chunks of %u tokens, this run has %d of %d (another text or -c?)",
            path, n_chunks, n_ctx, p->n_chunks, p->n_ctx);
    p->n_ctx = (int)n_ctx;
    p->n_chunks = (int)n_chunks;
    p->first = (int)first;
    const mf_gguf_tensor *t = mf_gguf_find_tensor(p->base, "tokens");
    if (!t || t->type != MF_TYPE_I32 || t->ne[0] != n_ctx || t->ne[1] != n_chunks || t->ne[2] != 1 || t->ne[3] != 1)
        return mf_errf(err, "%s: tensor 'tokens' is missing or not I32 [%u, %u]", path, n_ctx, n_chunks);
    size_t nt = (size_t)n_ctx * n_chunks;
    if (!(p->tokens = malloc(sizeof(int32_t) * nt))) return mf_errf(err, "out of memory");
    memcpy(p->tokens, t->data, sizeof(int32_t) * nt);
    for (size_t i = 0; i < nt; i++)
        if (p->tokens[i] < 0 || p->tokens[i] >= p->V)
            return mf_errf(err, "%s: token %d at %zu is outside the vocabulary", path, p->tokens[i], i);
    if (tokens && memcmp(tokens, p->tokens, sizeof(int32_t) * nt) != 0)
        return mf_errf(err, "%s: the base logits were computed on another text (the tokens differ)", path);
    int scored = p->n_ctx - 1 - p->first;
    for (int k = 0; k < p->n_chunks; k++) {
        char name[32];
        snprintf(name, sizeof name, "logp.%d", k);
        const mf_gguf_tensor *lt = mf_gguf_find_tensor(p->base, name);
        if (!lt || lt->type != MF_TYPE_F16 || lt->ne[0] != p->V || lt->ne[1] != scored || lt->ne[2] != 1 ||
            lt->ne[3] != 1)
            return mf_errf(err, "%s: tensor '%s' is missing or not F16 [%d, %d]", path, name, p->V, scored);
    }
    return 0;
}

mf_ppl *mf_ppl_new(mf_model *m, const mf_session_opts *o, const int32_t *tokens, int n_chunks, int n_ctx,
                   const char *base, mf_err *err)
{
    mf_ppl *p = calloc(1, sizeof *p);
    if (!p) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    p->m = m;
    p->V = m->hp.n_vocab;
    p->n_ctx = n_ctx;
    p->n_chunks = n_chunks;
    p->first = n_ctx / 2;
    if (base) {
        if (open_base(p, base, tokens, err)) goto fail;
    } else {
        if (!tokens || n_chunks < 1 || n_ctx < 4) {
            mf_errf(err, "no chunks to evaluate");
            goto fail;
        }
        size_t nt = (size_t)n_ctx * (size_t)n_chunks;
        if (!(p->tokens = malloc(sizeof(int32_t) * nt))) {
            mf_errf(err, "out of memory");
            goto fail;
        }
        memcpy(p->tokens, tokens, sizeof(int32_t) * nt);
    }
    if (p->n_ctx > m->hp.n_ctx_train) {
        mf_errf(err, "chunks of %d tokens exceed the model's training context of %d", p->n_ctx, m->hp.n_ctx_train);
        goto fail;
    }
    mf_session_opts so = o ? *o : mf_session_defaults();
    so.n_ctx = p->n_ctx;
    if (!(p->s = mf_session_new(m, &so, err))) goto fail;
    p->logits = malloc(sizeof(float) * (size_t)p->n_ctx * (size_t)p->V);
    if (base) p->kl = malloc(sizeof(double) * (size_t)p->n_chunks * (size_t)(p->n_ctx - 1 - p->first));
    if (!p->logits || (base && !p->kl)) {
        mf_errf(err, "out of memory for the logits of a chunk");
        goto fail;
    }
    return p;
fail:
    mf_ppl_free(p);
    return NULL;
}

/* log Σ exp(v_i) over n values, in double */
static double logsumexp_f(const float *v, int n)
{
    float mx = v[0];
    for (int i = 1; i < n; i++) mx = v[i] > mx ? v[i] : mx;
    double z = 0;
    for (int i = 0; i < n; i++) z += exp((double)v[i] - mx);
    return mx + log(z);
}

static int argmax_f(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* One scored position against the base's stored log-probs (F16, renormalized here). */
static void compare(mf_ppl *p, const float *l, double lse, const uint8_t *base_row, int next, float *lb)
{
    int V = p->V;
    for (int i = 0; i < V; i++) lb[i] = mf_fp16_to_f32((uint16_t)(base_row[2 * i] | base_row[2 * i + 1] << 8));
    double blse = logsumexp_f(lb, V), kl = 0;
    for (int i = 0; i < V; i++) {
        double lp = lb[i] - blse;
        if (lp < -700) continue; /* p = 0 (a -inf log-prob): no contribution */
        kl += exp(lp) * (lp - ((double)l[i] - lse));
    }
    int tb = argmax_f(lb, V), tq = argmax_f(l, V);
    p->s_base_nll += blse - lb[next];
    p->kl[p->n] = kl;
    p->s_kl += kl;
    p->s_kl2 += kl * kl;
    if (kl > p->kl_max) p->kl_max = kl;
    p->top1 += tb == tq;
    p->s_dp += fabs(exp((double)l[tb] - lse) - exp(lb[tb] - blse));
}

/* Evaluate chunk k; save (when not NULL) receives its F16 log-probs. */
static int eval_chunk(mf_ppl *p, int k, uint8_t *save, mf_err *err)
{
    int V = p->V, c = p->n_ctx;
    const int32_t *tok = p->tokens + (size_t)k * c;
    mf_session_reset(p->s);
    if (mf_session_eval(p->s, tok, c, p->logits, err)) return -1;
    const uint8_t *base = NULL;
    float *lb = NULL;
    if (p->base) {
        char name[32];
        snprintf(name, sizeof name, "logp.%d", k);
        base = mf_gguf_find_tensor(p->base, name)->data;
        if (!(lb = malloc(sizeof(float) * (size_t)V))) return mf_errf(err, "out of memory");
    }
    for (int j = p->first; j < c - 1; j++) {
        const float *l = p->logits + (size_t)j * V;
        for (int i = 0; i < V; i++)
            if (!isfinite(l[i])) {
                free(lb);
                return mf_errf(err, "chunk %d, position %d: the model produced a non-finite logit", k, j);
            }
        double lse = logsumexp_f(l, V), nll = lse - l[tok[j + 1]];
        size_t row = (size_t)(j - p->first) * (size_t)V;
        if (save)
            for (int i = 0; i < V; i++) {
                uint16_t h = mf_f32_to_fp16((float)((double)l[i] - lse));
                save[2 * (row + i)] = (uint8_t)h;
                save[2 * (row + i) + 1] = (uint8_t)(h >> 8);
            }
        if (base) compare(p, l, lse, base + 2 * row, tok[j + 1], lb);
        p->s_nll += nll;
        p->s_nll2 += nll * nll;
        p->n++;
    }
    free(lb);
    p->chunks_done++;
    return 0;
}

typedef struct run_ctx {
    mf_ppl *p;
    mf_ppl_progress progress;
    void *user;
} run_ctx;

static void report(run_ctx *r)
{
    if (!r->progress) return;
    mf_ppl_stats st;
    mf_ppl_result(r->p, &st);
    r->progress(r->user, &st);
}

/* The writer's fill: tensor 0 is "tokens" (given as data), tensor k + 1 is chunk k. */
static int fill(void *user, uint64_t index, const mf_gguf_tensor *t, void *buf, mf_err *err)
{
    run_ctx *r = user;
    (void)t;
    if (eval_chunk(r->p, (int)index - 1, buf, err)) return -1;
    report(r);
    return 0;
}

int mf_ppl_run(mf_ppl *p, const char *save, mf_ppl_progress progress, void *user, mf_err *err)
{
    run_ctx r = {p, progress, user};
    if (!save) {
        for (int k = 0; k < p->n_chunks; k++) {
            if (eval_chunk(p, k, NULL, err)) return -1;
            report(&r);
        }
        return 0;
    }
    mf_gguf_writer *w = mf_gguf_writer_new();
    if (!w) return mf_errf(err, "out of memory");
    const char *name = strrchr(p->m->path, '/');
    int rc = mf_gguf_w_str(w, "general.type", "logprobs") || mf_gguf_w_u32(w, "minfer.logits.version", 1) ||
             mf_gguf_w_str(w, "minfer.logits.model", name ? name + 1 : p->m->path) ||
             mf_gguf_w_u32(w, "minfer.logits.n_ctx", (uint32_t)p->n_ctx) ||
             mf_gguf_w_u32(w, "minfer.logits.n_chunks", (uint32_t)p->n_chunks) ||
             mf_gguf_w_u32(w, "minfer.logits.n_vocab", (uint32_t)p->V) ||
             mf_gguf_w_u32(w, "minfer.logits.first", (uint32_t)p->first);
    if (rc) {
        mf_gguf_writer_free(w);
        return mf_errf(err, "out of memory");
    }
    const int64_t tne[2] = {p->n_ctx, p->n_chunks}, lne[2] = {p->V, p->n_ctx - 1 - p->first};
    rc = mf_gguf_w_tensor(w, "tokens", MF_TYPE_I32, 2, tne, p->tokens, err) < 0 ? -1 : 0;
    for (int k = 0; k < p->n_chunks && rc == 0; k++) {
        char tn[32];
        snprintf(tn, sizeof tn, "logp.%d", k);
        rc = mf_gguf_w_tensor(w, tn, MF_TYPE_F16, 2, lne, NULL, err) < 0 ? -1 : 0;
    }
    if (rc == 0) rc = mf_gguf_w_write(w, save, fill, &r, err);
    mf_gguf_writer_free(w);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* mean and standard error of the mean from Σv and Σv² over n values */
static void mean_se(double s, double s2, int64_t n, double *mean, double *se)
{
    *mean = n ? s / (double)n : 0;
    double var = n ? s2 / (double)n - *mean * *mean : 0;
    *se = n > 1 && var > 0 ? sqrt(var / (double)(n - 1)) : 0;
}

void mf_ppl_result(const mf_ppl *p, mf_ppl_stats *st)
{
    memset(st, 0, sizeof *st);
    st->n_ctx = p->n_ctx;
    st->n_chunks = p->n_chunks;
    st->chunks_done = p->chunks_done;
    st->n = p->n;
    mean_se(p->s_nll, p->s_nll2, p->n, &st->nll, &st->nll_se);
    st->ppl = exp(st->nll);
    st->ppl_se = st->ppl * st->nll_se;
    if (!p->base || !p->n) return;
    st->has_base = 1;
    st->base_ppl = exp(p->s_base_nll / (double)p->n);
    mean_se(p->s_kl, p->s_kl2, p->n, &st->kld, &st->kld_se);
    st->kld_max = p->kl_max;
    double *sorted = malloc(sizeof(double) * (size_t)p->n);
    if (sorted) {
        memcpy(sorted, p->kl, sizeof(double) * (size_t)p->n);
        qsort(sorted, (size_t)p->n, sizeof *sorted, cmp_double);
        int64_t rank = (int64_t)ceil(0.99 * (double)p->n); /* nearest rank, 1-based */
        st->kld_p99 = sorted[(rank < 1 ? 1 : rank) - 1];
        free(sorted);
    }
    st->top1 = (double)p->top1 / (double)p->n;
    st->top1_se = p->n > 1 ? sqrt(st->top1 * (1 - st->top1) / (double)(p->n - 1)) : 0;
    st->dp_top = p->s_dp / (double)p->n;
}
