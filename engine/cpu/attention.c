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
 * (docs/forward.md §2; the sink: docs/moe.md §2.) Work is split over (row, kv head) pairs;
 * each task computes the grp = H/Hkv query heads that share the kv head, so every key and
 * value is loaded once for all of them (GQA). This is the plain
 * two-pass softmax — the CPU twin of the GPU's online-softmax flash attention.
 *
 * Memory layout of the cache (docs/cpu.md §4), per kv head so that a task reads one
 * contiguous stream of keys and one of values (the hardware prefetchers follow those; slot
 * rows interleaving the heads made every task a strided reader, latency-bound). V:
 * [kv head][slot][hd], a value per slot, as the weighted sum reads it (a value times one
 * weight per head). K: tiles of MF_KV_TILE slots, [kv head][slot / 16][d][slot % 16]:
 * dimension d of 16 consecutive keys is one vector, so the scores of 16 keys and up to 8
 * heads accumulate in 8 registers, one FMA per (head, d) with the query element broadcast —
 * no horizontal sums. Per key and kv head that is hd·grp multiply-adds for the scores and
 * as many for the values against 2·hd cached numbers.
 *
 * The canonical order of the float operations (docs/cpu.md §4), which the SIMD code and the
 * scalar twin (simd = 0) follow exactly, so that they agree bit for bit
 * (tests/test_attention.c) and a row's result never depends on the batch:
 *   score      s = fma chain over d = 0..hd-1 from 0, then s · scale
 *   max        M over the scores and the sink (order-free)
 *   weights    e_i = mf_expf(s_i - M): a polynomial exp (below), the same in both
 *   sum        Z: 16 partial sums z[i mod 16] in order of i, combined pairwise
 *              (k with k + 8, then + 4, + 2, + 1), then + mf_expf(S - M) for a sink
 *   output     o[d] = fma chain over the keys in order of position, from 0, of
 *              (e_i · (1/Z)) and v_i[d]
 */
#include "cpu.h"
#include "quant.h"

#include <math.h>
#include <string.h>

#include "vecf.h"

/* The pairwise combination of the 16 partial sums of Z. */
static float sum16(const float z[16])
{
    float a[8], b[4], c[2];
    for (int k = 0; k < 8; k++) a[k] = z[k] + z[k + 8];
    for (int k = 0; k < 4; k++) b[k] = a[k] + a[k + 4];
    for (int k = 0; k < 2; k++) c[k] = b[k] + b[k + 2];
    return c[0] + c[1];
}


/* ---------------------------------------------------------------- one task */

/* How far ahead of the keys and values being read a task asks for their lines: a task's K
 * tiles and its values are each one sequential stream, but the hardware prefetchers stop at
 * every 4 KB page, and without this decoding at depth waited on memory (docs/cpu.md §4). */
#ifndef ATT_PREFETCH
#define ATT_PREFETCH 4096
#endif

/* Where things are for one (row, kv head) task. */
typedef struct att_ctx {
    const uint8_t *kc, *vc; /* the layer's K tiles and V rows */
    int slots, f16, hd, Hkv, grp;
    size_t vrow;    /* bytes of one value (hd numbers) */
    int g;          /* the kv head */
    int t_lo, span; /* visible keys: positions t_lo .. t_lo + span - 1 */
    float scale;
} att_ctx;

/* Element d of key slot s of kv head g in the tiled K cache. */
static inline size_t k_index(const att_ctx *c, int s, int d)
{
    return (((size_t)c->g * (size_t)(c->slots / MF_KV_TILE) + (size_t)(s / MF_KV_TILE)) * (size_t)c->hd + (size_t)d) *
               MF_KV_TILE +
           (size_t)(s % MF_KV_TILE);
}

/* The first element of value slot s of kv head g. */
static inline size_t v_index(const att_ctx *c, int s)
{
    return ((size_t)c->g * (size_t)c->slots + (size_t)s) * (size_t)c->hd;
}

static inline float kv_at(const uint8_t *base, size_t i, int f16)
{
#ifdef MF_VECF
    /* F16C's conversion: exact, as mf_fp16_to_f32, without a call per element */
    if (f16) return _cvtsh_ss(((const uint16_t *)(const void *)base)[i]);
#else
    if (f16) return mf_fp16_to_f32(((const uint16_t *)(const void *)base)[i]);
#endif
    return ((const float *)(const void *)base)[i];
}

#ifdef MF_VECF
#define INLINE static inline __attribute__((always_inline))
/* The scores of NH heads (a constant, so the accumulators stay in registers) against all 16
 * keys of the K tile starting at slot tile0, times scale, into out[h·ostride ..+16]. */
INLINE void tile_scores_nh(const att_ctx *c, const float *q, const int NH, const int F16, int tile0, float *out,
                           size_t ostride)
{
    /* a d-row of a tile is 16 keys: 32 or 64 bytes, aligned (the cache is 64-byte aligned) */
    const size_t esz = F16 ? 2 : 4, row = MF_KV_TILE * esz;
    const uint8_t *k0 = c->kc + k_index(c, tile0, 0) * esz;
    for (int half = 0; half < MF_KV_TILE; half += AW) {
        av acc[8];
        for (int h = 0; h < NH; h++) acc[h] = av_zero();
        const uint8_t *p = k0 + (size_t)half * esz;
        for (int d = 0; d < c->hd; d++, p += row) {
            /* the stream of tiles ahead, one line per 64 bytes consumed */
            if (half == 0 && (!F16 || d % 2 == 0)) _mm_prefetch((const char *)p + ATT_PREFETCH, _MM_HINT_T0);
            av kt = F16 ? av_loadh((const uint16_t *)(const void *)p) : av_load((const float *)(const void *)p);
            for (int h = 0; h < NH; h++) acc[h] = av_fmadd(av_set1(q[(size_t)h * c->hd + d]), kt, acc[h]);
        }
        for (int h = 0; h < NH; h++) av_store(out + (size_t)h * ostride + half, av_mul(acc[h], av_set1(c->scale)));
    }
}
#endif

/* sc[h * stride + i] = score of head h (of nh, from q + h·hd) against the key at position
 * t_lo + i, for i in [i0, i0 + n), all in one K tile (tile-aligned slots). */
static void tile_scores(const att_ctx *c, const float *q, int nh, int s0, int n, float *sc, size_t stride, int simd)
{
#ifdef MF_VECF
    if (simd) {
        /* all 16 lanes of the tile: a whole tile straight into sc, a partial one (the first
         * or last of the visible range) through buf */
        const int tile0 = s0 / MF_KV_TILE * MF_KV_TILE, lane0 = s0 - tile0, whole = n == MF_KV_TILE;
        float buf[8 * MF_KV_TILE];
        for (int h0 = 0; h0 < nh;) {
            int k = nh - h0 >= 8 ? 8 : nh - h0 >= 4 ? 4 : nh - h0 >= 2 ? 2 : 1;
            const float *qh = q + (size_t)h0 * c->hd;
            float *o = whole ? sc + (size_t)h0 * stride : buf;
            size_t os = whole ? stride : MF_KV_TILE;
            /* NH and the element type as constants of the loop */
#define SCORES(NH) c->f16 ? tile_scores_nh(c, qh, NH, 1, tile0, o, os) : tile_scores_nh(c, qh, NH, 0, tile0, o, os)
            switch (k) {
            case 8: SCORES(8); break;
            case 4: SCORES(4); break;
            case 2: SCORES(2); break;
            default: SCORES(1);
            }
#undef SCORES
            if (!whole)
                for (int h = 0; h < k; h++)
                    memcpy(sc + (size_t)(h0 + h) * stride, buf + h * MF_KV_TILE + lane0, sizeof(float) * (size_t)n);
            h0 += k;
        }
        return;
    }
#endif
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < n; i++) {
            float s = 0.0f;
            for (int d = 0; d < c->hd; d++)
                s = fmaf(q[(size_t)h * c->hd + d], kv_at(c->kc, k_index(c, s0 + i, d), c->f16), s);
            sc[(size_t)h * stride + i] = s * c->scale;
        }
}

/* e_i = exp(s_i - M) in place; returns Z (without the sink) by the canonical sum */
static float exp_sum(float *s, int span, float M, int simd)
{
    float z[16] = {0};
    int i = 0;
#ifdef MF_VECF
    if (simd) {
        av zv[16 / AW], m = av_set1(M);
        for (int k = 0; k < 16 / AW; k++) zv[k] = av_zero();
        for (; i + 16 <= span; i += 16)
            for (int k = 0; k < 16 / AW; k++) {
                av e = av_expf(av_sub(av_load(s + i + k * AW), m));
                av_store(s + i + k * AW, e);
                zv[k] = av_add(zv[k], e);
            }
        for (int k = 0; k < 16 / AW; k++) av_store(z + k * AW, zv[k]);
    }
#endif
    for (; i < span; i++) {
        s[i] = mf_expf(s[i] - M);
        z[i % 16] += s[i];
    }
    return sum16(z);
}

#ifdef MF_VECF
/* Keys in blocks of KB (their value rows stay in L1), read once for HB heads at a time. */
enum { KB = 32 };
/* out[h][v·AW ..] += Σ_i a[h][i] · v_i for heads [0, HB) and the NV vectors of hd starting
 * at vector v0i, over the n keys whose value rows are vrow[] (constants HB, NV: the HB·NV
 * accumulators stay in registers) */
INLINE void values_block(const att_ctx *c, const float *a, const float *a0, size_t stride, int i0, int n,
                         const uint8_t *const *vrow, const int HB, const int NV, const int F16, int v0i, float *out)
{
    av acc[16];
    for (int h = 0; h < HB; h++)
        for (int k = 0; k < NV; k++) acc[h * NV + k] = av_load(out + (size_t)h * c->hd + (size_t)(v0i + k) * AW);
    for (int i = 0; i < n; i++) {
        av v[8];
        if (v0i == 0 && a == a0) /* the first pass over the block asks for the rows ahead */
            for (size_t o = 0; o < c->vrow; o += 64)
                _mm_prefetch((const char *)vrow[i] + ATT_PREFETCH + o, _MM_HINT_T0);
        for (int k = 0; k < NV; k++) {
            size_t e = (size_t)(v0i + k) * AW;
            v[k] = F16 ? av_loadh((const uint16_t *)(const void *)vrow[i] + e)
                       : av_load((const float *)(const void *)vrow[i] + e);
        }
        for (int h = 0; h < HB; h++) {
            av w = av_set1(a[(size_t)h * stride + (size_t)(i0 + i)]);
            for (int k = 0; k < NV; k++) acc[h * NV + k] = av_fmadd(w, v[k], acc[h * NV + k]);
        }
    }
    for (int h = 0; h < HB; h++)
        for (int k = 0; k < NV; k++) av_store(out + (size_t)h * c->hd + (size_t)(v0i + k) * AW, acc[h * NV + k]);
}

/* values_block for as many of `left` heads as fit beside NV vectors in the registers
 * (up to 16 accumulators with AVX-512, 8 with AVX2); returns how many it did. */
static int values_heads(const att_ctx *c, const float *a, const float *a0, size_t stride, int i0, int n,
                        const uint8_t *const *vrow, int NV, int v0i, float *out, int left)
{
    const int room = AW == 16 ? 16 : 8;
    /* HB, NV and the element type as constants of the loop */
#define VB(HB, NVV)                                                                    \
    do {                                                                               \
        if (c->f16) values_block(c, a, a0, stride, i0, n, vrow, HB, NVV, 1, v0i, out); \
        else values_block(c, a, a0, stride, i0, n, vrow, HB, NVV, 0, v0i, out);        \
        return HB;                                                                     \
    } while (0)
    switch (NV) {
    case 8: VB(1, 8);
    case 4:
        if (left >= 4 && room >= 16) VB(4, 4);
        if (left >= 2) VB(2, 4);
        VB(1, 4);
    case 2:
        if (left >= 4) VB(4, 2);
        VB(1, 2);
    default:
        if (left >= 4) VB(4, 1);
        VB(1, 1);
    }
#undef VB
}
#endif

/* out[h][d] (heads [0, nh), d < hd) = Σ_i a[h][i] · v_i[d], keys in order of position */
static void weighted_values(const att_ctx *c, const float *a, size_t stride, int nh, float *out, int simd)
{
    const size_t esz = c->f16 ? 2 : 4;
    const uint8_t *v0 = c->vc + v_index(c, 0) * esz;
    for (size_t i = 0; i < (size_t)nh * (size_t)c->hd; i++) out[i] = 0.0f;
#ifdef MF_VECF
    if (simd && c->hd % AW == 0) {
        const int nv = c->hd / AW;
        int slot = c->t_lo % c->slots;
        for (int i0 = 0; i0 < c->span; i0 += KB) {
            int n = c->span - i0 < KB ? c->span - i0 : KB;
            const uint8_t *vrow[KB]; /* the block's value rows, the ring's wrap resolved once */
            for (int i = 0; i < n; i++, slot = slot + 1 == c->slots ? 0 : slot + 1)
                vrow[i] = v0 + (size_t)slot * c->vrow;
            /* the hd outputs of a head in vectors of up to 8 */
            for (int v0i = 0; v0i < nv;) {
                int NV = nv - v0i >= 8 ? 8 : nv - v0i >= 4 ? 4 : nv - v0i >= 2 ? 2 : 1;
                for (int h = 0; h < nh;)
                    h += values_heads(c, a + (size_t)h * stride, a, stride, i0, n, vrow, NV, v0i,
                                      out + (size_t)h * c->hd, nh - h);
                v0i += NV;
            }
        }
        return;
    }
    /* head sizes that are a multiple of 8 but not of the vector width (stories260K's 8 with
     * AVX-512): 8 lanes of the scalar loop below at a time, the same fma per element in the
     * same key order, so the same bits */
    if (simd && c->hd % 8 == 0) {
        for (int i = 0; i < c->span; i++) {
            const uint8_t *vr = v0 + (size_t)((c->t_lo + i) % c->slots) * c->vrow;
            for (int h = 0; h < nh; h++) {
                __m256 w = _mm256_set1_ps(a[(size_t)h * stride + i]);
                float *o = out + (size_t)h * c->hd;
                for (int d = 0; d < c->hd; d += 8) {
                    __m256 v =
                        c->f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(vr + 2 * (size_t)d)))
                               : _mm256_loadu_ps((const float *)(const void *)vr + d);
                    _mm256_storeu_ps(o + d, _mm256_fmadd_ps(w, v, _mm256_loadu_ps(o + d)));
                }
            }
        }
        return;
    }
#endif
    for (int i = 0; i < c->span; i++) {
        const uint8_t *vr = v0 + (size_t)((c->t_lo + i) % c->slots) * c->vrow;
        for (int h = 0; h < nh; h++) {
            float w = a[(size_t)h * stride + i];
            for (int d = 0; d < c->hd; d++)
                out[(size_t)h * c->hd + d] = fmaf(w, kv_at(vr, (size_t)d, c->f16), out[(size_t)h * c->hd + d]);
        }
    }
}

void mf_cpu_attention_row(const mf_bstate *st, int l, const float *sinks, int r, int g, const float *q, float *out,
                          float *sc, int simd)
{
    const mf_hparams *hp = &st->m->hp;
    const mf_layer *L = &st->m->layers[l];
    att_ctx c = {.kc = mf_cpu_kv(st, 0, st->seq[r], l), /* the row's own sequence's cache */
                 .vc = mf_cpu_kv(st, 1, st->seq[r], l),
                 .slots = st->slots[l],
                 .f16 = st->o.kv_f16,
                 .hd = hp->head_dim,
                 .Hkv = hp->n_kv_heads,
                 .grp = hp->n_heads / hp->n_kv_heads,
                 .g = g,
                 .scale = hp->attn_scale};
    c.vrow = (size_t)c.hd * (c.f16 ? 2 : 4);
    int p = st->pos[r];
    c.t_lo = L->sliding && p - hp->window + 1 > 0 ? p - hp->window + 1 : 0;
    c.span = p - c.t_lo + 1;
    const size_t stride = (size_t)c.span;

    for (int h0 = 0; h0 < c.grp; h0 += 8) {
        int nh = c.grp - h0 < 8 ? c.grp - h0 : 8;
        const float *qh = q + (size_t)h0 * c.hd;
        /* scores, tile by tile of the slots the visible positions occupy */
        for (int i = 0; i < c.span;) {
            int s = (c.t_lo + i) % c.slots, n = MF_KV_TILE - s % MF_KV_TILE;
            if (n > c.span - i) n = c.span - i;
            tile_scores(&c, qh, nh, s, n, sc + i, stride, simd);
            i += n;
        }
        /* softmax per head, the sink (if any) joining the denominator */
        for (int h = 0; h < nh; h++) {
            float *s = sc + (size_t)h * stride;
            float M = -INFINITY;
            int i = 0;
#ifdef MF_VECF
            if (simd && c.span >= AW) {
                av m = av_load(s);
                for (i = AW; i + AW <= c.span; i += AW) m = av_max(m, av_load(s + i));
                M = av_hmax(m);
            }
#endif
            for (; i < c.span; i++) M = s[i] > M ? s[i] : M;
            float S = sinks ? sinks[g * c.grp + h0 + h] : -INFINITY;
            if (S > M) M = S;
            float Z = exp_sum(s, c.span, M, simd);
            if (sinks) Z += mf_expf(S - M);
            float inv = 1.0f / Z;
            for (i = 0; i < c.span; i++) s[i] *= inv;
        }
        weighted_values(&c, sc, stride, nh, out + (size_t)h0 * c.hd, simd);
    }
}

typedef struct att_job {
    mf_bstate *st;
    int l;
    const float *sinks; /* [H] or NULL */
    const float *q;
    float *out;
} att_job;

static void att_task(void *ctx, int task, int thread)
{
    att_job *j = ctx;
    mf_bstate *st = j->st;
    const mf_hparams *hp = &st->m->hp;
    int H = hp->n_heads, Hkv = hp->n_kv_heads, hd = hp->head_dim, grp = H / Hkv;
    int r = task / Hkv, g = task % Hkv;
    size_t at = (size_t)r * H * hd + (size_t)g * grp * hd;
    mf_cpu_attention_row(st, j->l, j->sinks, r, g, j->q + at, j->out + at,
                         st->scores + (size_t)thread * grp * st->o.n_ctx, 1);
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

/* binary16, rounded to nearest even: F16C where the build has it, the same result as
 * mf_f32_to_fp16 (quant.h) for every finite value */
static inline uint16_t to_fp16(float x)
{
#ifdef MF_VECF
    return (uint16_t)_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT);
#else
    return mf_f32_to_fp16(x);
#endif
}

void mf_cpu_kv_store(mf_bstate *st, int l, int seq, int slot, const float *k, const float *v)
{
    uint8_t *kc = mf_cpu_kv(st, 0, seq, l), *vc = mf_cpu_kv(st, 1, seq, l);
    const mf_hparams *hp = &st->m->hp;
    int hd = hp->head_dim;
    att_ctx c = {.hd = hd, .Hkv = hp->n_kv_heads, .slots = st->slots[l]};
    for (int g = 0; g < c.Hkv; g++) {
        c.g = g;
        size_t vat = v_index(&c, slot);
        for (int d = 0; d < hd; d++) {
            size_t at = k_index(&c, slot, d);
            float x = k[g * hd + d], y = v[g * hd + d];
            if (st->o.kv_f16) {
                ((uint16_t *)kc)[at] = to_fp16(x);
                ((uint16_t *)vc)[vat + (size_t)d] = to_fp16(y);
            } else {
                ((float *)kc)[at] = x;
                ((float *)vc)[vat + (size_t)d] = y;
            }
        }
    }
}
