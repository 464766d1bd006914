/* moe.c — the mixture-of-experts block of gpt-oss on the CPU (docs/moe.md §1).
 *
 *   r   = W_r h + b_r                          router logits, one per expert
 *   S   = the k largest r_e (ties: lower e)    top-k selection
 *   w_e = softmax over the k selected r_e      (not over all experts)
 *   per e in S:  g = W_gate,e h + b_gate,e ;  u = W_up,e h + b_up,e
 *                a = min(g, L) · σ(α·min(g, L)) · (clamp(u, −L, L) + 1)     L = 7, α = 1.702
 *                y_e = W_down,e a + b_down,e
 *   x  += Σ_{e in S} w_e · y_e                 summed in selection order
 *
 * Only the selected experts' matrices are touched: expert e's slice of a stacked tensor
 * [n_in, n_out, E] starts at byte e · n_out · row_bytes, and nothing else of the tensor is
 * addressed (tests/test_gptoss_ops.c runs the block with the unselected experts' bytes set
 * to NaN, and the output stays finite and exact). For a batch, tokens are grouped by expert
 * with a counting sort so each expert's weights stream from memory once per batch, not once
 * per token.
 */
#include "cpu.h"
#include "vecf.h"

#include <math.h>
#include <string.h>

/* top-k of n logits by value, ties to the lower index; writes indices in descending order */
static void top_k(const float *r, int n, int k, int *idx)
{
    for (int s = 0; s < k; s++) {
        int best = -1;
        for (int e = 0; e < n; e++) {
            int taken = 0;
            for (int q = 0; q < s; q++) taken |= idx[q] == e;
            if (!taken && (best < 0 || r[e] > r[best])) best = e;
        }
        idx[s] = best;
    }
}

static float clamped_swiglu(float g, float u, float limit, float alpha)
{
    float gc = g < limit ? g : limit;
    float uc = u < -limit ? -limit : (u > limit ? limit : u);
    return gc / (1.0f + mf_expf(-alpha * gc)) * (uc + 1.0f);
}

/* the activation of the expert FFN, as mf_cpu_gated applies it; params: the hparams. The
 * vector form and the scalar tail are the same operations (vecf.h). */
static void clamped_swiglu_n(float *y, const float *g, const float *u, int64_t n, const void *params)
{
    const mf_hparams *hp = params;
    const float L = hp->swiglu_limit, alpha = hp->swiglu_alpha;
    int64_t i = 0;
#ifdef MF_VECF
    for (; i + AW <= n; i += AW) {
        av gc = av_min(av_load(g + i), av_set1(L));
        av uc = av_min(av_max(av_load(u + i), av_set1(-L)), av_set1(L));
        av s = av_div(gc, av_add(av_set1(1.0f), av_expf(av_mul(av_set1(-alpha), gc))));
        av_store(y + i, av_mul(s, av_add(uc, av_set1(1.0f))));
    }
#endif
    for (; i < n; i++) y[i] = clamped_swiglu(g[i], u[i], L, alpha);
}

/* expert e's bias of a stacked bias tensor */
static const float *expert_bias(const mf_weight *b, const mf_weight *W, int e)
{
    return (const float *)b->data + (size_t)e * (size_t)W->ne[1];
}

/* out = W_e · in + b_e for c rows: expert e's slice of the stacked tensor W */
static void expert_matmul(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b, int e, const float *in,
                          int c, float *out)
{
    const uint8_t *slice = (const uint8_t *)W->data + (size_t)e * (size_t)W->ne[1] * W->row_bytes;
    mf_cpu_observe(st, W, e, in, c);
    mf_cpu_matmul(be->impl, st, W->type, slice, W->row_bytes, W->ne[0], W->ne[1], in, W->ne[0], c, out, W->ne[1], 0,
                  expert_bias(b, W, e));
}

void mf_cpu_moe(mf_backend *be, mf_bstate *st, const mf_weight *router, const mf_weight *router_b,
                const mf_weight *const W[3], const mf_weight *const b[3], const float *h, float *x)
{
    const mf_hparams *hp = &st->m->hp;
    int n = st->n, E = hp->n_experts, k = hp->n_experts_used, d = hp->n_embd;

    /* router and selection */
    mf_cpu_matmul_op(be, st, router, router_b, h, st->router, n, 0);
    int count[MF_MAX_EXPERTS + 1];
    memset(count, 0, sizeof(int) * (size_t)(E + 1));
    for (int t = 0; t < n; t++) {
        const float *r = st->router + (size_t)t * E;
        int *sel = st->sel + (size_t)t * k;
        float *w = st->selw + (size_t)t * k;
        top_k(r, E, k, sel);
        float m = r[sel[0]], z = 0.0f;
        for (int s = 0; s < k; s++) z += w[s] = expf(r[sel[s]] - m);
        for (int s = 0; s < k; s++) w[s] /= z;
        for (int s = 0; s < k; s++) count[sel[s] + 1]++;
    }
    /* counting sort of the n·k (token, pick) pairs by expert */
    for (int e = 0; e < E; e++) count[e + 1] += count[e];
    int fill[MF_MAX_EXPERTS];
    memcpy(fill, count, sizeof(int) * (size_t)E);
    for (int t = 0; t < n; t++)
        for (int s = 0; s < k; s++) {
            int e = st->sel[(size_t)t * k + s], at = fill[e]++;
            st->ex_tok[at] = t;
            st->ex_slot[at] = s;
        }

    for (int e = 0; e < E; e++) {
        int c0 = count[e], c = count[e + 1] - c0;
        if (c == 0) continue;
        for (int i = 0; i < c; i++)
            memcpy(st->ex_in + (size_t)i * d, h + (size_t)st->ex_tok[c0 + i] * d, sizeof(float) * (size_t)d);
        mf_cpu_gated(be, st, W[0], expert_bias(b[0], W[0], e), W[1], expert_bias(b[1], W[1], e), e, st->ex_in, c,
                     st->ff_g, st->ff_u, clamped_swiglu_n, hp);
        expert_matmul(be, st, W[2], b[2], e, st->ff_g, c, st->ex_out);
        for (int i = 0; i < c; i++) {
            int t = st->ex_tok[c0 + i], s = st->ex_slot[c0 + i];
            memcpy(st->ex_acc + ((size_t)t * k + s) * d, st->ex_out + (size_t)i * d, sizeof(float) * (size_t)d);
        }
    }
    /* moe = Σ w_e·y_e in selection order, then x += moe (the residual add) */
    for (int t = 0; t < n; t++) {
        float *moe = st->ex_out;
        for (int i = 0; i < d; i++) moe[i] = 0.0f;
        for (int s = 0; s < k; s++) {
            float w = st->selw[(size_t)t * k + s];
            const float *y = st->ex_acc + ((size_t)t * k + s) * d;
            for (int i = 0; i < d; i++) moe[i] += w * y[i];
        }
        float *xt = x + (size_t)t * d;
        for (int i = 0; i < d; i++) xt[i] += moe[i];
    }
}
