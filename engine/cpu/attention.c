/* attention.c — causal grouped-query attention over the KV cache, on the CPU.
 *
 * For the query of row r (position p = pos[r] of sequence seq[r]: the row attends over that
 * sequence's cache only) and head j, with kv head g = j / (H/Hkv):
 *
 *   s_t = (q_j · k_{g,t}) · scale                 for visible keys t
 *   visible: t <= p, and on sliding-window layers also p - t < W
 *   sinks (gpt-oss): S_j joins the softmax denominator only (it has no value vector)
 *   M = max(max_t s_t, S_j),  Z = Σ_t e^{s_t - M} + e^{S_j - M}
 *   o_j = Σ_t (e^{s_t - M} / Z) · v_{g,t}
 *
 * (docs/forward.md §2; the sink: docs/moe.md §2.) Work is split over
 * (row, kv head) pairs; each thread keeps its scores in its own scratch rows. This is the plain
 * two-pass softmax — the CPU twin of the GPU's online-softmax flash attention.
 */
#include "cpu.h"
#include "quant.h"

#include <math.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define MF_ATT_SIMD 1
#endif

static inline float kv_dot(const float *q, const void *krow, int n, int f16)
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

static inline void kv_axpy(float a, const void *vrow, float *out, int n, int f16)
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

#ifdef MF_ATT_SIMD
/* Eight dot products q·k_i (i < 8, n a multiple of 8) returned as one vector: eight vertical
 * accumulators, then a transpose-and-add that costs what one horizontal sum costs, instead
 * of one horizontal sum per key. */
static inline __m256 kv_dot8(const float *q, const uint8_t *const k[8], int n, int f16)
{
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (int c = 0; c < n; c += 8) {
        __m256 qv = _mm256_loadu_ps(q + c);
        for (int i = 0; i < 8; i++) {
            __m256 kv = f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)k[i] + c)))
                            : _mm256_loadu_ps((const float *)k[i] + c);
            a[i] = _mm256_fmadd_ps(qv, kv, a[i]);
        }
    }
    /* lane j of the result = sum of a[j] */
    __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
    __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
    __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
    __m256 lo = _mm256_permute2f128_ps(s0123, s4567, 0x20), hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
    return _mm256_add_ps(lo, hi);
}
#endif

typedef struct att_job {
    mf_bstate *st;
    int l;
    const float *sinks;  /* [H] or NULL */
    const float *q;
    float *out;
} att_job;

/* One task = one query row and one kv head with the grp query heads that share it: each
 * key and value row is loaded once for all of them (GQA), which matters when the keys no
 * longer fit in L1 (long prompts). */
static void att_task(void *ctx, int task, int thread)
{
    att_job *j = ctx;
    mf_bstate *st = j->st;
    const mf_hparams *hp = &st->m->hp;
    const mf_layer *L = &st->m->layers[j->l];
    int H = hp->n_heads, Hkv = hp->n_kv_heads, hd = hp->head_dim, grp = H / Hkv;
    int r = task / Hkv, g = task % Hkv;
    int p = st->pos[r];
    int t_lo = L->sliding && p - hp->window + 1 > 0 ? p - hp->window + 1 : 0, span = p - t_lo + 1;
    int slots = st->slots[j->l], f16 = st->o.kv_f16;
    size_t esz = f16 ? 2 : 4, row = (size_t)st->kv_width * esz;
    const uint8_t *kc = mf_cpu_kv(st, 0, st->seq[r], j->l) + (size_t)g * hd * esz;
    const uint8_t *vc = mf_cpu_kv(st, 1, st->seq[r], j->l) + (size_t)g * hd * esz;
    const float *q = j->q + (size_t)r * H * hd + (size_t)g * grp * hd;
    float *sc = st->scores + (size_t)thread * grp * st->o.n_ctx;  /* [grp][span] */
    float *out = j->out + (size_t)r * H * hd + (size_t)g * grp * hd;

    /* s = q·k · scale for every head of the group, eight keys at a time where SIMD allows */
    int t = t_lo;
#ifdef MF_ATT_SIMD
    if (hd % 8 == 0)
        for (; t + 8 <= p + 1; t += 8) {
            const uint8_t *kr[8];
            for (int i = 0; i < 8; i++) kr[i] = kc + (size_t)((t + i) % slots) * row;
            for (int h = 0; h < grp; h++)
                _mm256_storeu_ps(sc + (size_t)h * span + (t - t_lo),
                                 _mm256_mul_ps(kv_dot8(q + (size_t)h * hd, kr, hd, f16), _mm256_set1_ps(hp->attn_scale)));
        }
#endif
    for (; t <= p; t++) {
        const uint8_t *kr = kc + (size_t)(t % slots) * row;
        for (int h = 0; h < grp; h++) sc[(size_t)h * span + (t - t_lo)] = kv_dot(q + (size_t)h * hd, kr, hd, f16) * hp->attn_scale;
    }
    /* softmax per head, the sink (if any) joining the denominator */
    for (int h = 0; h < grp; h++) {
        float *s = sc + (size_t)h * span;
        float M = -INFINITY;
        for (int i = 0; i < span; i++) M = s[i] > M ? s[i] : M;
        float S = j->sinks ? j->sinks[g * grp + h] : -INFINITY;
        if (S > M) M = S;
        double Z = j->sinks ? exp((double)S - M) : 0.0;
        for (int i = 0; i < span; i++) Z += s[i] = expf(s[i] - M);
        float inv = (float)(1.0 / Z);
        for (int i = 0; i < span; i++) s[i] *= inv;
    }
    /* o = Σ a_t v_t, value row by value row */
    for (int i = 0; i < grp * hd; i++) out[i] = 0.0f;
    for (t = t_lo; t <= p; t++) {
        const uint8_t *vr = vc + (size_t)(t % slots) * row;
        for (int h = 0; h < grp; h++) kv_axpy(sc[(size_t)h * span + (t - t_lo)], vr, out + (size_t)h * hd, hd, f16);
    }
}

void mf_cpu_attention(mf_backend *be, mf_bstate *st, int l, const mf_weight *sinks, const float *q, float *out)
{
    cpu_backend *cb = be->impl;
    att_job j = {st, l, sinks && sinks->name ? (const float *)sinks->data : NULL, q, out};
    const mf_hparams *hp = &st->m->hp;
    int tasks = st->n * hp->n_kv_heads;
    /* a short cache of a small model: less work than waking a thread costs */
    int span = 0;
    for (int r = 0; r < st->n; r++) span = st->pos[r] + 1 > span ? st->pos[r] + 1 : span;
    double work = (double)st->n * span * hp->n_heads * hp->head_dim;
    if (work < MF_CPU_MIN_TASK_MACS) {
        for (int t = 0; t < tasks; t++) att_task(&j, t, 0);
        return;
    }
    mf_pool_run(cb->pool, att_task, &j, tasks);
}
