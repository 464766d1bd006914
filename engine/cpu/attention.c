/* attention.c — causal grouped-query attention over the KV cache, on the CPU.
 *
 * For the query of row r (position p = pos0 + r) and head j, with kv head g = j / (H/Hkv):
 *
 *   s_t = (q_j · k_{g,t}) · scale                 for visible keys t
 *   visible: t <= p, and on sliding-window layers also p - t < W
 *   sinks (gpt-oss): S_j joins the softmax denominator only (it has no value vector)
 *   M = max(max_t s_t, S_j),  Z = Σ_t e^{s_t - M} + e^{S_j - M}
 *   o_j = Σ_t (e^{s_t - M} / Z) · v_{g,t}
 *
 * (llama-arch.md §4.1 step 5 and §4.5; gpt-oss-arch.md §3.2 step 5.) Work is split over
 * (row, head) pairs; each thread keeps its scores in its own scratch row. This is the plain
 * two-pass softmax — the CPU twin of the GPU's online-softmax flash attention.
 */
#include "cpu.h"
#include "quant.h"

#include <math.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define MF_ATT_SIMD 1
#endif

float mf_cpu_kv_dot(const float *q, const void *krow, int n, int f16)
{
    int i = 0;
    float s = 0.0f;
#ifdef MF_ATT_SIMD
    __m256 acc = _mm256_setzero_ps();
    if (f16) {
        const uint16_t *k = krow;
        for (; i + 8 <= n; i += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i),
                                  _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), acc);
    } else {
        const float *k = krow;
        for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
#endif
    if (f16) {
        const uint16_t *k = krow;
        for (; i < n; i++) s += q[i] * mf_fp16_to_f32(k[i]);
    } else {
        const float *k = krow;
        for (; i < n; i++) s += q[i] * k[i];
    }
    return s;
}

void mf_cpu_kv_axpy(float a, const void *vrow, float *out, int n, int f16)
{
    int i = 0;
#ifdef MF_ATT_SIMD
    __m256 va = _mm256_set1_ps(a);
    if (f16) {
        const uint16_t *v = vrow;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(va, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))),
                                                      _mm256_loadu_ps(out + i)));
    } else {
        const float *v = vrow;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
    }
#endif
    if (f16) {
        const uint16_t *v = vrow;
        for (; i < n; i++) out[i] += a * mf_fp16_to_f32(v[i]);
    } else {
        const float *v = vrow;
        for (; i < n; i++) out[i] += a * v[i];
    }
}

typedef struct att_job {
    mf_bstate *st;
    int l;
    const float *q;
    float *out;
} att_job;

static void att_task(void *ctx, int task, int thread)
{
    att_job *j = ctx;
    mf_bstate *st = j->st;
    const mf_hparams *hp = &st->m->hp;
    const mf_layer *L = &st->m->layers[j->l];
    int H = hp->n_heads, hd = hp->head_dim, grp = hp->n_heads / hp->n_kv_heads;
    int r = task / H, head = task % H, g = head / grp;
    int p = st->pos0 + r;
    int t_lo = L->sliding && p - hp->window + 1 > 0 ? p - hp->window + 1 : 0;
    int slots = st->slots[j->l], f16 = st->o.kv_f16;
    size_t esz = f16 ? 2 : 4, row = (size_t)st->kv_width * esz;
    const uint8_t *kc = st->kc[j->l], *vc = st->vc[j->l];
    const float *qv = j->q + (size_t)r * H * hd + (size_t)head * hd;
    float *sc = st->scores + (size_t)thread * st->o.n_ctx;

    float M = -INFINITY;
    for (int t = t_lo; t <= p; t++) {
        const uint8_t *kr = kc + (size_t)(t % slots) * row + (size_t)g * hd * esz;
        float s = mf_cpu_kv_dot(qv, kr, hd, f16) * hp->attn_scale;
        sc[t - t_lo] = s;
        if (s > M) M = s;
    }
    float S = hp->has_sinks ? ((const float *)L->sinks.data)[head] : -INFINITY;
    if (S > M) M = S;
    double Z = hp->has_sinks ? exp((double)S - M) : 0.0;
    for (int t = t_lo; t <= p; t++) {
        float e = expf(sc[t - t_lo] - M);
        sc[t - t_lo] = e;
        Z += e;
    }
    float inv = (float)(1.0 / Z);
    float *o = j->out + (size_t)r * H * hd + (size_t)head * hd;
    for (int i = 0; i < hd; i++) o[i] = 0.0f;
    for (int t = t_lo; t <= p; t++) {
        const uint8_t *vr = vc + (size_t)(t % slots) * row + (size_t)g * hd * esz;
        mf_cpu_kv_axpy(sc[t - t_lo] * inv, vr, o, hd, f16);
    }
}

void mf_cpu_attention(mf_backend *be, mf_bstate *st, int l, const float *q, float *out)
{
    cpu_backend *cb = be->impl;
    att_job j = {st, l, q, out};
    mf_pool_run(cb->pool, att_task, &j, st->n * st->m->hp.n_heads);
}
