/* test_attention.c — the CPU attention (engine/cpu/attention.c) against its scalar twin and
 * against a plain double-precision softmax:
 *   - mf_expf (vecf.h), the softmax's and SiLU's polynomial exp, within 3e-7 relative of
 *     exp() over the range they use, exact at 0, tiny and finite far below, finite up to
 *     its upper clamp; its vector form equal to it bit for bit;
 *   - the SIMD tasks equal the scalar twin bit for bit (the canonical order of
 *     attention.c's header): float32 and binary16 caches, grouped heads (grp 1, 2, 3, 4, 8,
 *     16: one and two chunks of 8), head sizes 16, 32, 48, 64, 128, every span from 1 to 70 (partial K
 *     tiles at both ends, spans that are not multiples of 16), the sliding-window ring of
 *     gpt-oss across its wrap, sinks;
 *   - both within 2e-6 (relative to the largest |v|) of attention computed in double from
 *     the same cached keys and values.
 * The caches are filled by real forward steps of mkmodel models; the queries are random. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "cpu/vecf.h"
#include "harness.h"
#include "minfer.h"
#include "quant.h"
#include "session.h"

static void exp_accuracy(void **state)
{
    (void)state;
    assert_true(mf_expf(0.0f) == 1.0f);
    double worst = 0;
    for (float x = -87.0f; x <= 0.0f; x += 0.000731f) {
        double want = exp((double)x), got = mf_expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    for (float x = 0.0f; x <= 88.0f; x += 0.000917f) {
        double want = exp((double)x), got = mf_expf(x);
        if (fabs(got - want) / want > worst) worst = fabs(got - want) / want;
    }
    print_message("mf_expf: largest relative error %.3g on [-87, 88]\n", worst);
    assert_true(worst < 3e-7);
    float far = mf_expf(-1000.0f);
    assert_true(isfinite(far) && far >= 0.0f && far < 1.3e-38f);
    assert_true(mf_expf(-INFINITY) < 1.3e-38f);
    assert_true(isfinite(mf_expf(88.3f)) && mf_expf(1000.0f) > 1e38f);
    assert_true(isnan(mf_expf(NAN)) && isnan(mf_expf(-NAN)));
#ifdef MF_VECF
    /* NaN passes the vector clamps too, in every lane */
    {
        float nan_in[AW], nan_out[AW];
        for (int i = 0; i < AW; i++) nan_in[i] = i % 2 ? NAN : -NAN;
        av_store(nan_out, av_expf(av_load(nan_in)));
        for (int i = 0; i < AW; i++)
            if (!isnan(nan_out[i])) fail_msg("av_expf(NaN) = %g in lane %d", nan_out[i], i);
    }
    /* the vector form, lane for lane */
    float in[AW], out[AW];
    for (float x0 = -100.0f; x0 < 100.0f; x0 += 0.37f * AW) {
        for (int i = 0; i < AW; i++) in[i] = x0 + 0.37f * (float)i;
        av_store(out, av_expf(av_load(in)));
        for (int i = 0; i < AW; i++)
            if (memcmp(&out[i], &(float){mf_expf(in[i])}, sizeof(float))) fail_msg("av_expf(%g) != mf_expf", in[i]);
    }
#endif
}

static int mkmodel(const char *out, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s -o %s %s > /dev/null", mf_tool_path("mkmodel"), out, args);
    return system(cmd);
}

/* The visible keys of row r of layer l at the staged position, as attention.c defines them,
 * attended in double: the reference for one kv head g and its grp query heads. */
static void reference(const mf_session *s, int l, int g, const float *q, double *out)
{
    const mf_bstate *st = s->bst;
    const mf_hparams *hp = &s->m->hp;
    const mf_layer *L = &s->m->layers[l];
    int grp = hp->n_heads / hp->n_kv_heads, hd = hp->head_dim, p = st->pos[0];
    const uint8_t *kc = mf_cpu_kv(st, 0, st->seq[0], l), *vc = mf_cpu_kv(st, 1, st->seq[0], l);
    int t_lo = L->sliding && p - hp->window + 1 > 0 ? p - hp->window + 1 : 0;
    for (int h = 0; h < grp; h++) {
        int span = p - t_lo + 1;
        double *sc = malloc(sizeof(double) * (size_t)span), M = -INFINITY;
        for (int i = 0; i < span; i++) {
            int slot = (t_lo + i) % st->slots[l];
            double d = 0;
            for (int k = 0; k < hd; k++) {
                size_t at = (((size_t)g * (st->slots[l] / MF_KV_TILE) + slot / MF_KV_TILE) * hd + k) * MF_KV_TILE +
                            slot % MF_KV_TILE;
                float kv = st->o.kv_f16 ? mf_fp16_to_f32(((const uint16_t *)kc)[at]) : ((const float *)kc)[at];
                d += (double)q[h * hd + k] * kv;
            }
            sc[i] = d * hp->attn_scale;
            if (sc[i] > M) M = sc[i];
        }
        double S = hp->has_sinks ? ((const float *)L->sinks.data)[g * grp + h] : -INFINITY, Z = 0;
        if (S > M) M = S;
        for (int i = 0; i < span; i++) Z += sc[i] = exp(sc[i] - M);
        if (hp->has_sinks) Z += exp(S - M);
        for (int k = 0; k < hd; k++) {
            double o = 0;
            for (int i = 0; i < span; i++) {
                size_t at = ((size_t)g * st->slots[l] + (size_t)((t_lo + i) % st->slots[l])) * hd + k;
                float v = st->o.kv_f16 ? mf_fp16_to_f32(((const uint16_t *)vc)[at]) : ((const float *)vc)[at];
                o += sc[i] / Z * v;
            }
            out[h * hd + k] = o;
        }
        free(sc);
    }
}

/* Evaluate n_tok tokens one by one, and after each step compare every layer's and kv
 * head's attention task for a random query: SIMD == scalar twin, both close to double. */
static void check_model(const char *args, int n_tok, int kv_f16)
{
    const char *path = mf_tmp_path("att.gguf");
    if (mkmodel(path, args) != 0) fail_msg("mkmodel %s failed", args);
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s", err.msg);
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_ctx = n_tok;
    o.max_batch = 4;
    o.kv_f16 = kv_f16;
    mf_session *s = mf_session_new(m, &o, &err);
    if (!s) fail_msg("%s", err.msg);
    const mf_hparams *hp = &m->hp;
    int grp = hp->n_heads / hp->n_kv_heads, hd = hp->head_dim, w = grp * hd;
    float *q = malloc(sizeof(float) * (size_t)w), *a = malloc(sizeof(float) * (size_t)w),
          *b = malloc(sizeof(float) * (size_t)w);
    float *sc = malloc(sizeof(float) * (size_t)grp * (size_t)n_tok);
    double *ref = malloc(sizeof(double) * (size_t)w);
    mf_rng rng = {(uint64_t)n_tok * 7 + (uint64_t)kv_f16};
    int compared = 0;
    for (int t = 0; t < n_tok; t++) {
        int32_t tok = (int32_t)(mf_rng_u64(&rng) % (uint64_t)hp->n_vocab);
        if (mf_session_eval(s, &tok, 1, NULL, &err)) fail_msg("%s", err.msg);
        for (int l = 0; l < hp->n_layers; l++)
            for (int g = 0; g < hp->n_kv_heads; g++) {
                const mf_weight *sk = &m->layers[l].sinks;
                const float *sinks = sk->name ? sk->data : NULL;
                for (int i = 0; i < w; i++) q[i] = mf_rng_normal(&rng) * 2.0f;
                mf_cpu_attention_row(s->bst, l, sinks, 0, g, q, a, sc, 1);
                mf_cpu_attention_row(s->bst, l, sinks, 0, g, q, b, sc, 0);
                if (memcmp(a, b, sizeof(float) * (size_t)w))
                    fail_msg("%s kv_f16=%d: position %d layer %d kv head %d: SIMD and scalar twin differ", args, kv_f16,
                             t, l, g);
                reference(s, l, g, q, ref);
                double vmax = 1e-30, dmax = 0;
                for (int i = 0; i < w; i++) {
                    vmax = fmax(vmax, fabs(ref[i]));
                    dmax = fmax(dmax, fabs(a[i] - ref[i]));
                }
                if (!(dmax <= 2e-6 * vmax))
                    fail_msg("%s kv_f16=%d: position %d layer %d: |attention - double| %.3g of %.3g", args, kv_f16, t,
                             l, dmax, vmax);
                compared++;
            }
    }
    assert_true(compared == n_tok * hp->n_layers * hp->n_kv_heads);
    free(q), free(a), free(b), free(sc), free(ref);
    mf_session_free(s);
    mf_model_free(m);
    unlink(path);
}

static void simd_equals_twin_llama(void **state)
{
    (void)state;
    for (int f16 = 0; f16 < 2; f16++) {
        check_model("--arch llama --preset tiny --type Q8_0 --seed 5", 70, f16); /* grp 4, hd 32 */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 4 --kv-heads 1 --head-dim 64 --seed 6", 40,
                    f16); /* grp 4, hd 64 */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 8 --kv-heads 1 --head-dim 64 --seed 7", 35,
                    f16); /* grp 8 */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 16 --kv-heads 1 --head-dim 32 --seed 8", 33,
                    f16); /* grp 16: two chunks */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 4 --kv-heads 4 --head-dim 32 --seed 9", 20,
                    f16); /* grp 1 */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 4 --kv-heads 2 --head-dim 128 --seed 10", 18,
                    f16); /* hd 128 */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 6 --kv-heads 2 --head-dim 48 --seed 11", 18,
                    f16); /* grp 3, hd 48 */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 8 --kv-heads 4 --head-dim 8 --seed 12", 40,
                    f16); /* hd 8, as stories260K: below the AVX-512 width */
        check_model("--arch llama --preset tiny --type Q8_0 --heads 4 --kv-heads 2 --head-dim 24 --seed 13", 24,
                    f16); /* hd 24: 8 lanes three times */
    }
}

/* gpt-oss tiny: window 8 on alternate layers (the ring of 8 + max_batch - 1 slots rounded to
 * a K tile wraps every 16 positions), sinks, hd 16, grp 2 */
static void simd_equals_twin_gptoss(void **state)
{
    (void)state;
    for (int f16 = 0; f16 < 2; f16++) check_model("--arch gpt-oss --preset tiny --seed 4", 50, f16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exp_accuracy),
        cmocka_unit_test(simd_equals_twin_llama),
        cmocka_unit_test(simd_equals_twin_gptoss),
    };
    return MF_RUN("attention", tests);
}
