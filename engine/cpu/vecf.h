/* vecf.h — float vectors for the CPU backend's elementwise and attention code (attention.c,
 * matmul.c's activations): one set of wrappers, av_*, over AW lanes — 16 (zmm) where the
 * compiler targets AVX-512F, else 8 (ymm) with AVX2/FMA/F16C, none in a scalar build
 * (MF_VECF undefined) — and the exp they use, with its scalar twin.
 *
 * mf_expf(x): Cephes' expf. x = n·ln 2 + r with n = round(x / ln 2) and ln 2 split in two
 * parts so that r is exact, e^r by a degree-5 polynomial, 2^n put in the exponent. Relative
 * error about 1e-7 (1-2 ulp) against exp() (tests/test_attention.c); arguments are clamped
 * to [-87.34, 88.37], so it returns e^-87.34 ≈ 1.2e-38 below (a softmax weight or a
 * sigmoid tail that cannot matter) and never overflows the exponent above; NaN gives NaN
 * (the non-finite checks of minfer run must see a broken activation, not a small weight). Every step is
 * one rounded float operation, so av_expf gives the same bits as mf_expf, lane for lane:
 * code that uses the vector form for most elements and the scalar one for a tail computes
 * the same function everywhere (batch invariance, docs/cpu.md §4).
 */
#ifndef MF_VECF_H
#define MF_VECF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define MF_EXP_LO -87.33654f
#define MF_EXP_HI 88.37626f
#define MF_EXP_LOG2E 1.44269504088896341f
#define MF_EXP_C1 0.693359375f
#define MF_EXP_C2 -2.12194440e-4f
static const float mf_exp_p[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                  4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

static inline float mf_expf(float x)
{
    if (x != x) return x; /* NaN stays NaN (the vector form: the clamps pass it through) */
    x = x > MF_EXP_LO ? x : MF_EXP_LO;
    x = x < MF_EXP_HI ? x : MF_EXP_HI;
    float n = nearbyintf(x * MF_EXP_LOG2E);
    float r = fmaf(n, -MF_EXP_C1, x);
    r = fmaf(n, -MF_EXP_C2, r);
    float p = mf_exp_p[0];
    for (int k = 1; k < 6; k++) p = fmaf(p, r, mf_exp_p[k]);
    float y = fmaf(p, r * r, r) + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return y * scale;
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define MF_VECF 1
#if defined(__AVX512F__)
#define AW 16
typedef __m512 av;
#define AV_(op) _mm512_##op
static inline av av_loadh(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
static inline av av_round(av a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline av av_pow2(av n) /* 2^n for integral n in [-126, 128] (128: inf) */
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
static inline float av_hmax(av a) { return _mm512_reduce_max_ps(a); }
#else
#define AW 8
typedef __m256 av;
#define AV_(op) _mm256_##op
static inline av av_loadh(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
static inline av av_round(av a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline av av_pow2(av n)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
static inline float av_hmax(av a)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}
#endif
/* the same in both widths: _mm512_OP or _mm256_OP */
static inline av av_zero(void) { return AV_(setzero_ps)(); }
static inline av av_set1(float f) { return AV_(set1_ps)(f); }
static inline av av_load(const float *p) { return AV_(loadu_ps)(p); }
static inline void av_store(float *p, av v) { AV_(storeu_ps)(p, v); }
static inline av av_fmadd(av a, av b, av c) { return AV_(fmadd_ps)(a, b, c); }
static inline av av_mul(av a, av b) { return AV_(mul_ps)(a, b); }
static inline av av_div(av a, av b) { return AV_(div_ps)(a, b); }
static inline av av_add(av a, av b) { return AV_(add_ps)(a, b); }
static inline av av_sub(av a, av b) { return AV_(sub_ps)(a, b); }
static inline av av_max(av a, av b) { return AV_(max_ps)(a, b); }
static inline av av_min(av a, av b) { return AV_(min_ps)(a, b); }

/* mf_expf on AW lanes, operation for operation */
static inline av av_expf(av x)
{
    /* maxps/minps return their second operand when one is NaN: x second, so a NaN passes
     * the clamps and the result is NaN (a broken logit stays visible, never a weight of 0) */
    x = av_min(av_set1(MF_EXP_HI), av_max(av_set1(MF_EXP_LO), x));
    av n = av_round(av_mul(x, av_set1(MF_EXP_LOG2E)));
    av r = av_fmadd(n, av_set1(-MF_EXP_C1), x);
    r = av_fmadd(n, av_set1(-MF_EXP_C2), r);
    av p = av_set1(mf_exp_p[0]);
    for (int k = 1; k < 6; k++) p = av_fmadd(p, r, av_set1(mf_exp_p[k]));
    av y = av_add(av_fmadd(p, av_mul(r, r), r), av_set1(1.0f));
    return av_mul(y, av_pow2(n));
}
#endif

#endif
