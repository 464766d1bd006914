/* ref_forward.c — the whole forward pass in one readable file (contract: ref_forward.h).
 *
 * Llama (docs/forward.md §2) and gpt-oss (docs/forward.md §2), one token at position pos:
 *
 *   x = token_embd[token]
 *   per layer:
 *     h = rmsnorm(x) * attn_norm
 *     q = Wq h + bq,  k = Wk h + bk,  v = Wv h + bv        (biases: gpt-oss only)
 *     rope(q), rope(k)                                       adjacent pairs / NeoX halves
 *     cache[pos] = (k, v)
 *     per head: a = softmax(q·K / sqrt(hd) [+ sink]) ; o = a·V    (causal, window, sinks)
 *     x += Wo o + bo
 *     h = rmsnorm(x) * ffn_norm
 *     llama:   x += Wdown (silu(Wgate h) * (Wup h))
 *     gpt-oss: x += Σ_{top-k experts} w_e (Wdown_e clampswiglu(Wgate_e h, Wup_e h) + b)
 *   logits = Wout (rmsnorm(x) * output_norm)
 *
 * Everything is float32 with double accumulators; matrix rows are dequantized with the
 * scalar reference of quant.c. No threads, no SIMD, no batching: this is the truth the fast
 * paths are tested against.
 */
#include "ref_forward.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mf_ref {
    const mf_model *m;
    int n_ctx;
    int round_act;          /* emulate the fast path's 8-bit activations (mf_ref_round_activations) */
    mf_matmul_observer obs; /* sees every product's input (mf_ref_observe) */
    void *obs_user;
    void *qx;  /* converted activation */
    float *xr; /* the values it stands for */
    float *x, *h, *q, *k, *v, *attn_out, *gate, *up, *scores, *moe, *ey, *router;
    float *kc, *vc; /* [n_layers][n_ctx][n_kv_heads * head_dim] */
};

/* out[o] = Σ_i W[o][i] · in[i] (+ b[o]) for a matrix of n_out rows */
static void matvec(mf_ref *r, const mf_weight *W, size_t matrix, const float *b, const float *in, float *out)
{
    int64_t n_in = W->ne[0], n_out = W->ne[1];
    if (r->obs) r->obs(r->obs_user, W, (int)matrix, in, 1);
    if (r->round_act && mf_act_type(W->type) != MF_TYPE_F32) {
        /* the input as the fast path sees it: rounded to 8 bits per block (quant.h) */
        mf_quantize_act(W->type, in, r->qx, n_in);
        mf_act_dequantize(W->type, r->qx, r->xr, n_in);
        in = r->xr;
    }
    const uint8_t *base = (const uint8_t *)W->data + matrix * (size_t)n_out * W->row_bytes;
    for (int64_t o = 0; o < n_out; o++)
        out[o] = (float)mf_dot_ref(W->type, base + (size_t)o * W->row_bytes, in, n_in) + (b ? b[o] : 0.0f);
}

static const float *vec(const mf_weight *w) { return w->name ? (const float *)w->data : NULL; }

/* RMSNorm: out_i = x_i / sqrt(mean(x²) + eps) · g_i */
static void rmsnorm(float *out, const float *x, const float *g, int n, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * g[i];
}

/* Rotate one head: pair i is (u[2i], u[2i+1]) for llama, (u[i], u[i+n/2]) for NeoX, turned
 * by θ = pos · freq_i and scaled by mscale (1 without YaRN). */
static void rope(float *u, const mf_model *m, int l, int pos)
{
    int half = m->hp.n_rot / 2;
    for (int i = 0; i < half; i++) {
        double th = (double)pos * m->rope_freq[l][i];
        float c = (float)(cos(th) * m->rope_mscale), s = (float)(sin(th) * m->rope_mscale);
        int a = m->hp.rope_neox ? i : 2 * i, b = m->hp.rope_neox ? i + half : 2 * i + 1;
        float ua = u[a], ub = u[b];
        u[a] = ua * c - ub * s;
        u[b] = ua * s + ub * c;
    }
}

mf_ref *mf_ref_new(const mf_model *m, int n_ctx, mf_err *err)
{
    const mf_hparams *hp = &m->hp;
    mf_ref *r = calloc(1, sizeof *r);
    if (!r) {
        mf_errf(err, "out of memory");
        return NULL;
    }
    r->m = m;
    r->n_ctx = n_ctx;
    size_t d = hp->n_embd, qw = (size_t)hp->n_heads * hp->head_dim, kw = (size_t)hp->n_kv_heads * hp->head_dim;
    size_t F = (size_t)(hp->n_ff > hp->n_ff_exp ? hp->n_ff : hp->n_ff_exp);
    r->x = malloc(d * 4);
    r->h = malloc(d * 4);
    r->moe = malloc(d * 4);
    r->ey = malloc(d * 4);
    r->q = malloc(qw * 4);
    r->attn_out = malloc(qw * 4);
    r->k = malloc(kw * 4);
    r->v = malloc(kw * 4);
    r->gate = malloc(F * 4);
    r->up = malloc(F * 4);
    r->scores = malloc((size_t)n_ctx * 4);
    size_t max_in = d > qw ? d : qw;
    if (F > max_in) max_in = F;
    r->qx = malloc(4 * max_in + 512);
    r->xr = malloc(4 * max_in);
    r->router = malloc((size_t)(hp->n_experts + 1) * 4);
    r->kc = calloc((size_t)hp->n_layers * n_ctx * kw + 1, 4);
    r->vc = calloc((size_t)hp->n_layers * n_ctx * kw + 1, 4);
    if (!r->x || !r->h || !r->moe || !r->ey || !r->q || !r->attn_out || !r->k || !r->v || !r->gate || !r->up ||
        !r->scores || !r->router || !r->kc || !r->vc || !r->qx || !r->xr) {
        mf_ref_free(r);
        mf_errf(err, "out of memory for the reference forward pass");
        return NULL;
    }
    return r;
}

void mf_ref_free(mf_ref *r)
{
    if (!r) return;
    float *p[] = {r->x,  r->h,      r->q,   r->k,  r->v,      r->attn_out, r->gate,
                  r->up, r->scores, r->moe, r->ey, r->router, r->kc,       r->vc};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) free(p[i]);
    free(r->qx);
    free(r->xr);
    free(r);
}

void mf_ref_round_activations(mf_ref *r, int on) { r->round_act = on; }

void mf_ref_observe(mf_ref *r, mf_matmul_observer fn, void *user)
{
    r->obs = fn;
    r->obs_user = user;
}

/* gpt-oss feed-forward: route h to the top-k experts and add their weighted outputs to x */
static void moe(mf_ref *r, const mf_layer *L, float *x)
{
    const mf_hparams *hp = &r->m->hp;
    int E = hp->n_experts, k = hp->n_experts_used, d = hp->n_embd, F = hp->n_ff_exp;
    matvec(r, &L->router, 0, vec(&L->router_b), r->h, r->router);
    /* top-k by value, ties to the lower expert index */
    int sel[MF_MAX_EXPERTS];
    float w[MF_MAX_EXPERTS];
    for (int s = 0; s < k; s++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int t = 0; t < s; t++) taken |= sel[t] == e;
            if (!taken && (best < 0 || r->router[e] > r->router[best])) best = e;
        }
        sel[s] = best;
    }
    /* softmax over the k selected logits only */
    double z = 0.0;
    for (int s = 0; s < k; s++) z += w[s] = expf(r->router[sel[s]] - r->router[sel[0]]);
    for (int s = 0; s < k; s++) w[s] = (float)(w[s] / z);

    for (int i = 0; i < d; i++) r->moe[i] = 0.0f;
    for (int s = 0; s < k; s++) {
        int e = sel[s];
        matvec(r, &L->gate_exps, (size_t)e, vec(&L->gate_exps_b) + (size_t)e * F, r->h, r->gate);
        matvec(r, &L->up_exps, (size_t)e, vec(&L->up_exps_b) + (size_t)e * F, r->h, r->up);
        for (int i = 0; i < F; i++) {
            /* clamped SwiGLU: min(g, L)·σ(α·min(g, L))·(clamp(u, −L, L) + 1) */
            float g = fminf(r->gate[i], hp->swiglu_limit);
            float u = fmaxf(fminf(r->up[i], hp->swiglu_limit), -hp->swiglu_limit);
            r->gate[i] = g / (1.0f + expf(-hp->swiglu_alpha * g)) * (u + 1.0f);
        }
        matvec(r, &L->down_exps, (size_t)e, vec(&L->down_exps_b) + (size_t)e * d, r->gate, r->ey);
        for (int i = 0; i < d; i++) r->moe[i] += w[s] * r->ey[i];
    }
    for (int i = 0; i < d; i++) x[i] += r->moe[i];
}

int mf_ref_forward(mf_ref *r, int32_t token, int pos, float *logits, float *hidden, mf_err *err)
{
    const mf_model *m = r->m;
    const mf_hparams *hp = &m->hp;
    if (token < 0 || token >= hp->n_vocab) return mf_errf(err, "token %d outside the vocabulary", token);
    if (pos < 0 || pos >= r->n_ctx) return mf_errf(err, "position %d outside the context of %d", pos, r->n_ctx);
    int d = hp->n_embd, H = hp->n_heads, Hkv = hp->n_kv_heads, hd = hp->head_dim;
    int kw = Hkv * hd, grp = H / Hkv;
    float *x = r->x;

    /* 1. embedding: row `token` of token_embd */
    mf_dequantize_row(m->tok_embd.type, (const uint8_t *)m->tok_embd.data + (size_t)token * m->tok_embd.row_bytes, x,
                      d);

    for (int l = 0; l < hp->n_layers; l++) {
        const mf_layer *L = &m->layers[l];
        if (L->skip) { /* --skip-layers: the block adds nothing, x passes through (prune.h) */
            if (hidden) memcpy(hidden + (size_t)l * d, x, sizeof(float) * d);
            continue;
        }
        float *kc = r->kc + (size_t)l * r->n_ctx * kw, *vc = r->vc + (size_t)l * r->n_ctx * kw;

        /* 2.1-2.2 attention input and projections */
        rmsnorm(r->h, x, vec(&L->attn_norm), d, hp->eps);
        matvec(r, &L->wq, 0, vec(&L->bq), r->h, r->q);
        matvec(r, &L->wk, 0, vec(&L->bk), r->h, r->k);
        matvec(r, &L->wv, 0, vec(&L->bv), r->h, r->v);
        /* 2.3 RoPE on every head of q and k */
        for (int j = 0; j < H; j++) rope(r->q + j * hd, m, l, pos);
        for (int j = 0; j < Hkv; j++) rope(r->k + j * hd, m, l, pos);
        /* 2.4 the cache keeps every position */
        memcpy(kc + (size_t)pos * kw, r->k, sizeof(float) * kw);
        memcpy(vc + (size_t)pos * kw, r->v, sizeof(float) * kw);

        /* 2.5 attention per query head; heads j share kv head j / (H/Hkv) */
        int t0 = L->sliding && pos - hp->window + 1 > 0 ? pos - hp->window + 1 : 0;
        for (int j = 0; j < H; j++) {
            const float *qj = r->q + j * hd;
            int g = j / grp;
            float mx = -INFINITY;
            for (int t = t0; t <= pos; t++) {
                const float *kt = kc + (size_t)t * kw + g * hd;
                double s = 0.0;
                for (int i = 0; i < hd; i++) s += (double)qj[i] * kt[i];
                r->scores[t] = (float)s * hp->attn_scale;
                if (r->scores[t] > mx) mx = r->scores[t];
            }
            /* a sink is an extra logit in the denominator with no value (gpt-oss) */
            float sink = hp->has_sinks ? vec(&L->sinks)[j] : -INFINITY;
            if (sink > mx) mx = sink;
            double z = hp->has_sinks ? exp((double)sink - mx) : 0.0;
            for (int t = t0; t <= pos; t++) z += r->scores[t] = expf(r->scores[t] - mx);
            float *o = r->attn_out + j * hd;
            for (int i = 0; i < hd; i++) {
                double acc = 0.0;
                for (int t = t0; t <= pos; t++) acc += (double)r->scores[t] * vc[(size_t)t * kw + g * hd + i];
                o[i] = (float)(acc / z);
            }
        }
        /* 2.6 output projection and residual */
        matvec(r, &L->wo, 0, vec(&L->bo), r->attn_out, r->h);
        for (int i = 0; i < d; i++) x[i] += r->h[i];

        /* 2.7-2.8 feed-forward and residual */
        rmsnorm(r->h, x, vec(&L->ffn_norm), d, hp->eps);
        if (hp->n_experts) {
            moe(r, L, x);
        } else {
            int F = hp->n_ff;
            matvec(r, &L->ffn_gate, 0, NULL, r->h, r->gate);
            matvec(r, &L->ffn_up, 0, NULL, r->h, r->up);
            for (int i = 0; i < F; i++) r->gate[i] = r->gate[i] / (1.0f + expf(-r->gate[i])) * r->up[i];
            matvec(r, &L->ffn_down, 0, NULL, r->gate, r->h);
            for (int i = 0; i < d; i++) x[i] += r->h[i];
        }
        if (hidden) memcpy(hidden + (size_t)l * d, x, sizeof(float) * d);
    }

    /* 3-4. final norm and the output projection */
    rmsnorm(r->h, x, vec(&m->output_norm), d, hp->eps);
    matvec(r, &m->output, 0, NULL, r->h, logits);
    return 0;
}
