/* test_quant.c — the scalar reference of the block formats (engine/quant.c):
 *   - fp16 / bf16 / E8M0 conversions against independent formulas (exhaustive over all
 *     16-bit patterns, every round-to-nearest-even tie, the F16C instruction as a second
 *     opinion on random floats);
 *   - every worked example of docs/quantization.md §7, bit for bit;
 *   - quantize -> dequantize on random N(0,1) data per type, with error bounds derived
 *     from the format (stated at each check), plus all-zero, constant, huge and tiny blocks.
 * The fast path (activations, integer dots, matmul tiles) is tested in test_quant_dot.c. */
#include "harness.h"
#include "quant.h"
#include "quantize.h"
#include "quant_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ================================================================ fp16 */

/* binary16 by the definition (docs/quantization.md §1), in double: an independent decoder. */
static double fp16_by_formula(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void fp16_spec_examples(void **state)
{
    (void)state;
    /* docs/quantization.md §1 */
    assert_true(mf_fp16_to_f32(0x3C00) == 1.0f);
    assert_true(mf_fp16_to_f32(0x2E66) == 0.0999755859375f);
    assert_true(mf_fp16_to_f32(0xAE66) == -0.0999755859375f);
    assert_true(mf_fp16_to_f32(0x0001) == ldexpf(1, -24));
    assert_true(isinf(mf_fp16_to_f32(0x7C00)) && mf_fp16_to_f32(0x7C00) > 0);
    assert_true(mf_fp16_to_f32(0x7BFF) == 65504.0f);
    assert_true(mf_fp16_to_f32(0x8000) == 0.0f && signbit(mf_fp16_to_f32(0x8000)));
}

/* All 65536 patterns: decode equals the formula; encode(decode(h)) == h (NaN stays NaN with
 * its sign). */
static void fp16_exhaustive_roundtrip(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = mf_fp16_to_f32((uint16_t)h);
        double ref = fp16_by_formula((uint16_t)h);
        if (isnan(ref)) {
            assert_true(isnan(f));
            uint16_t back = mf_f32_to_fp16(f);
            assert_int_equal(back & 0x7C00, 0x7C00);
            assert_true((back & 0x3FF) != 0);
            assert_int_equal(back >> 15, h >> 15);
            continue;
        }
        if ((double)f != ref || !signbit(f) != !signbit(ref)) fail_msg("fp16 0x%04x -> %.9g, expected %.9g", h, f, ref);
        if (mf_f32_to_fp16(f) != h) fail_msg("fp16 0x%04x does not round-trip (got 0x%04x)", h, mf_f32_to_fp16(f));
    }
}

/* Round to nearest, ties to even: between every two adjacent finite halves (subnormals
 * and the step to inf included), the midpoint goes to the even code, and the floats just
 * below/above it go down/up. The midpoint of two halves is exact in binary32. */
static void fp16_rne_ties(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x7C00; h++) {
        double lo = fp16_by_formula((uint16_t)h);
        /* next value up: the next half, or 65536 where the next code is inf (the "virtual"
         * half that IEEE rounding uses at the top of the range) */
        double hi = h + 1 < 0x7C00 ? fp16_by_formula((uint16_t)(h + 1)) : 65536.0;
        float mid = (float)((lo + hi) / 2);
        assert_true((double)mid == (lo + hi) / 2);
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (int sgn = 0; sgn < 2; sgn++) {
            float m = sgn ? -mid : mid;
            uint16_t s = (uint16_t)(sgn << 15);
            assert_int_equal(mf_f32_to_fp16(m), s | even);
            assert_int_equal(mf_f32_to_fp16(nextafterf(m, 0)), s | h);
            assert_int_equal(mf_f32_to_fp16(nextafterf(m, sgn ? -INFINITY : INFINITY)), s | (h + 1));
        }
    }
    /* below half the smallest subnormal: zero; f32 subnormals: zero; inf and NaN */
    assert_int_equal(mf_f32_to_fp16(ldexpf(1, -25)), 0);
    assert_int_equal(mf_f32_to_fp16(nextafterf(ldexpf(1, -25), 1)), 1);
    assert_int_equal(mf_f32_to_fp16(from_bits(0x00000001)), 0);
    assert_int_equal(mf_f32_to_fp16(-from_bits(0x00000001)), 0x8000);
    assert_int_equal(mf_f32_to_fp16(INFINITY), 0x7C00);
    assert_int_equal(mf_f32_to_fp16(-INFINITY), 0xFC00);
    assert_int_equal(mf_f32_to_fp16(1e20f), 0x7C00);
    uint16_t n = mf_f32_to_fp16(from_bits(0x7F800001)); /* signalling NaN must not become inf */
    assert_true((n & 0x7C00) == 0x7C00 && (n & 0x3FF));
}

/* Random float bit patterns against the F16C conversion instruction (RNE): a second,
 * independent implementation. Compiled for F16C whatever the build flags; run where the CPU
 * has it (x86 since 2012), skipped elsewhere. */
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("f16c"))) static uint16_t f16c_convert(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#endif

static void fp16_vs_f16c(void **state)
{
    (void)state;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d; /* CPUID leaf 1: ECX bit 29 is F16C */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 29))) {
        mf_skip("this CPU has no F16C: no hardware reference");
        return;
    }
    mf_rng rng = {12345};
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)mf_rng_u64(&rng);
        if (i & 1) u = (u & 0x8FFFFFFFu) | 0x30000000u; /* half the draws in the fp16 range */
        float f = from_bits(u);
        uint16_t mine = mf_f32_to_fp16(f), hw = f16c_convert(f);
        if (isnan(f)) {
            assert_true((mine & 0x7C00) == 0x7C00 && (mine & 0x3FF));
            continue;
        }
        if (mine != hw) fail_msg("f32 0x%08x: fp16 0x%04x, F16C says 0x%04x", u, mine, hw);
    }
#else
    mf_skip("not an x86 CPU: no F16C reference");
#endif
}

/* ================================================================ bf16, E8M0 */

static void bf16_conversions(void **state)
{
    (void)state;
    assert_true(mf_bf16_to_f32(0x3F80) == 1.0f); /* docs/quantization.md §1 */
    assert_true(mf_bf16_to_f32(0xC040) == -3.0f);
    for (uint32_t h = 0; h < 65536; h++) { /* decode = shift; encode(decode) = identity */
        float f = mf_bf16_to_f32((uint16_t)h);
        assert_int_equal(bits(f), h << 16);
        if (isnan(f)) assert_true(isnan(mf_bf16_to_f32(mf_f32_to_bf16(f))));
        else assert_int_equal(mf_f32_to_bf16(f), h);
    }
    /* ties to even: 1 + 2^-8 is halfway between 0x3F80 and 0x3F81 */
    assert_int_equal(mf_f32_to_bf16(from_bits(0x3F808000)), 0x3F80);
    assert_int_equal(mf_f32_to_bf16(from_bits(0x3F818000)), 0x3F82);
    assert_int_equal(mf_f32_to_bf16(from_bits(0x3F808001)), 0x3F81);
    assert_int_equal(mf_f32_to_bf16(from_bits(0x3F807FFF)), 0x3F80);
    assert_int_equal(mf_f32_to_bf16(from_bits(0xBF818000)), 0xBF82);
    assert_int_equal(mf_f32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80); /* rounds up to inf */
    assert_int_equal(mf_f32_to_bf16(from_bits(0x00008000)), 0x0000); /* subnormal tie */
    assert_int_equal(mf_f32_to_bf16(from_bits(0x00018000)), 0x0002);
    uint16_t n = mf_f32_to_bf16(from_bits(0x7F800001)); /* signalling NaN stays NaN */
    assert_true((n & 0x7F80) == 0x7F80 && (n & 0x7F));
}

static void e8m0_values(void **state)
{
    (void)state;
    /* docs/quantization.md §2: 2^(e-127); e = 0 is the subnormal 2^-127; 255 is NaN (OCP) */
    for (int e = 0; e < 255; e++) assert_true(mf_e8m0_to_f32((uint8_t)e) == ldexpf(1, e - 127));
    assert_true(mf_e8m0_to_f32(0) != 0 && mf_e8m0_to_f32(0) < 1.18e-38f);
    assert_true(isnan(mf_e8m0_to_f32(255)));
    assert_true(mf_e8m0_to_f32(127) == 1.0f);
    /* the halved scale llama.cpp uses: its bit patterns for e = 0, 1 (docs/quantization.md §2) */
    assert_int_equal(bits(mf_e8m0_half(0)), 0x00200000);
    assert_int_equal(bits(mf_e8m0_half(1)), 0x00400000);
    assert_int_equal(bits(mf_e8m0_half(2)), 1u << 23);
    assert_int_equal(bits(mf_e8m0_half(255)), 254u << 23);
}

/* ================================================================ worked examples */

static void expect_values(const float *y, int first, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (bits(y[first + i]) != bits(want[i]) && !(y[first + i] == 0 && want[i] == 0))
            fail_msg("y[%d] = %.9g (0x%08x), expected %.9g", first + i, y[first + i], bits(y[first + i]), want[i]);
}

static void example_q4_0(void **state)
{
    (void)state;
    /* docs/quantization.md §7 */
    const uint8_t blk[18] = {0x66, 0xAE, 0x63, 0x18, 0xCD, 0x72, 0x27, 0xDC, 0x81,
                             0x36, 0xEB, 0x90, 0x45, 0xFA, 0xAF, 0x54, 0x09, 0xBE};
    float y[32];
    mf_dequantize_row(MF_TYPE_Q4_0, blk, y, 32);
    const float lo[8] = {0.49987793f,   -0.0f,         -0.49987793f, 0.599853516f,
                         0.0999755859f, -0.399902344f, 0.699829102f, 0.199951172f};
    const float hi[8] = {0.199951172f, 0.699829102f, -0.399902344f, 0.0999755859f,
                         0.599853516f, -0.49987793f, -0.0f,         0.49987793f};
    expect_values(y, 0, lo, 8);
    expect_values(y, 16, hi, 8);
    assert_true(y[0] == 0.4998779296875f); /* (3 - 8)·(-0.0999755859375), worked by hand */
    assert_true(signbit(y[1]));            /* 0·(negative d) is -0 */
}

static void example_q8_0(void **state)
{
    (void)state;
    /* docs/quantization.md §7 */
    const uint8_t blk[34] = {0x3D, 0x2A, 0x9C, 0xB9, 0xD6, 0xF3, 0x10, 0x2D, 0x4A, 0x67, 0x84, 0xA1,
                             0xBE, 0xDB, 0xF8, 0x15, 0x32, 0x4F, 0x6C, 0x89, 0xA6, 0xC3, 0xE0, 0xFD,
                             0x1A, 0x37, 0x54, 0x71, 0x8E, 0xAB, 0xC8, 0xE5, 0x02, 0x1F};
    float y[32];
    mf_dequantize_row(MF_TYPE_Q8_0, blk, y, 32);
    const float want[8] = {-4.87365723f, -3.46029663f, -2.04693604f, -0.633575439f,
                           0.779785156f, 2.19314575f,  3.60650635f,  5.01986694f};
    expect_values(y, 0, want, 8);
    assert_true(y[0] == -100 * 0.048736572265625f);
}

static void example_q4_k(void **state)
{
    (void)state;
    /* docs/quantization.md §7: header bytes, then qs[k] = (37k + 11) mod 256 */
    uint8_t blk[144] = {0x66, 0x2E, 0x66, 0x24, 0xC5, 0x4A, 0x8F, 0x13, 0x87, 0x21, 0xFE, 0x40, 0x9C, 0x3B, 0x71, 0xE2};
    for (int k = 0; k < 128; k++) blk[16 + k] = (uint8_t)((37 * k + 11) % 256);
    assert_int_equal(blk[16 + 127], 0x66); /* the last byte of the worked block */
    const int sc[8] = {5, 10, 15, 19, 60, 27, 33, 2}, mn[8] = {7, 33, 62, 0, 41, 3, 55, 30};
    for (int g = 0; g < 8; g++) {
        int s, m;
        mf_k4_scale_min(blk + 4, g, &s, &m);
        assert_int_equal(s, sc[g]);
        assert_int_equal(m, mn[g]);
    }
    float y[256];
    mf_dequantize_row(MF_TYPE_Q4_K, blk, y, 256);
    const float g0[8] = {5.37838745f, -0.120269775f, 2.37911987f, 4.87850952f,
                         7.37789917f, 1.87924194f,   4.37863159f, 6.87802124f};
    const float g1[8] = {-0.566986084f, 2.43228149f, 4.43179321f, 6.43130493f,
                         8.43081665f,   11.4300842f, 13.4295959f, -0.566986084f};
    const float g4[8] = {65.2794495f, -0.704437256f, 29.2882385f, 59.2809143f,
                         89.2735901f, 23.2897034f,   53.2823792f, 83.2750549f};
    expect_values(y, 0, g0, 8);
    expect_values(y, 32, g1, 8);
    expect_values(y, 128, g4, 8);
}

static void example_mxfp4(void **state)
{
    (void)state;
    float y[32];
    /* docs/quantization.md §7: codes 0,2,4,...,14 then 1,3,...,15; scale 2^-1 */
    const uint8_t a[17] = {0x7E, 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE,
                           0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78};
    mf_dequantize_row(MF_TYPE_MXFP4, a, y, 32);
    const float a0[8] = {0, 0.5f, 1, 2, -0.0f, -0.5f, -1, -2},
                a16[8] = {0.25f, 0.75f, 1.5f, 3, -0.25f, -0.75f, -1.5f, -3};
    expect_values(y, 0, a0, 8);
    expect_values(y, 16, a16, 8);
    assert_true(signbit(y[4])); /* code 8 is E2M1 -0 */

    /* docs/quantization.md §7, cases A (e = 0x7E) and B (e = 0x81), same codes */
    uint8_t b[17] = {0x7E, 0xF0, 0x01, 0xE2, 0x13, 0xD4, 0x25, 0xC6, 0x37,
                     0xB8, 0x49, 0xAA, 0x5B, 0x9C, 0x6D, 0x8E, 0x7F};
    const float caseA[32] = {0,      0.25f, 0.5f,   0.75f, 1,     1.5f, 2,      3,  0,     -0.25f, -0.5f,
                             -0.75f, -1,    -1.5f,  -2,    -3,    -3,   0,      -2, 0.25f, -1.5f,  0.5f,
                             -1,     0.75f, -0.75f, 1,     -0.5f, 1.5f, -0.25f, 2,  0,     3};
    mf_dequantize_row(MF_TYPE_MXFP4, b, y, 32);
    expect_values(y, 0, caseA, 32);
    b[0] = 0x81;
    const float caseB[32] = {0,   2, 4,   6, 8,   12, 16, 24, 0,  -2, -4, -6, -8, -12, -16, -24,
                             -24, 0, -16, 2, -12, 4,  -8, 6,  -6, 8,  -4, 12, -2, 16,  0,   24};
    mf_dequantize_row(MF_TYPE_MXFP4, b, y, 32);
    expect_values(y, 0, caseB, 32);

    /* the subnormal scales: e = 0 gives 0.5·2^-127 = 2^-128 for code 1 (exact, not
     * flushed); e = 255 gives 2^128 (inf) for code 2 and the finite 2^127 for code 1 */
    b[0] = 0;
    mf_dequantize_row(MF_TYPE_MXFP4, b, y, 32);
    assert_int_equal(bits(y[19]), 0x00200000); /* element 19: high nibble of qs[3] = 1 */
    b[0] = 255;
    mf_dequantize_row(MF_TYPE_MXFP4, b, y, 32);
    assert_true(y[19] == ldexpf(1, 127));
    assert_true(isinf(y[2]));
}

/* ================================================================ quantize -> dequantize */

typedef struct qstats {
    double max_err, sse, ssx;
} qstats;

static const uint32_t BLOCK_TYPES[] = {MF_TYPE_Q4_0, MF_TYPE_Q4_1, MF_TYPE_Q5_0, MF_TYPE_Q5_1,
                                       MF_TYPE_Q8_0, MF_TYPE_Q2_K, MF_TYPE_Q3_K, MF_TYPE_Q4_K,
                                       MF_TYPE_Q5_K, MF_TYPE_Q6_K, MF_TYPE_MXFP4};
#define N_BLOCK_TYPES (sizeof BLOCK_TYPES / sizeof BLOCK_TYPES[0])

/* quantize then dequantize n values; returns the dequantized copy (caller frees) */
static float *roundtrip(uint32_t type, const float *x, int64_t n, uint8_t **bytes_out)
{
    size_t rb = mf_type_row_bytes(type, n);
    uint8_t *q = malloc(rb);
    float *y = malloc((size_t)n * sizeof *y);
    assert_int_equal(mf_quantize_row(type, x, q, n), rb);
    mf_dequantize_row(type, q, y, n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i]))
            fail_msg("%s: element %lld dequantizes to %g", mf_type_get(type)->name, (long long)i, y[i]);
    if (bytes_out) *bytes_out = q;
    else free(q);
    return y;
}

static float amax_of(const float *x, int n)
{
    float m = 0;
    for (int i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* Per-element bound for the 32-element types, from the block's stored scale d:
 *   inside the code range, the nearest code is within half a step: |err| <= |d|/2;
 *   Q4_0/Q5_0 put the largest magnitude at the long end (-8/-16), so the short end (+7/+15)
 *   may clamp values up to one step away: |err| <= |d|;
 *   plus slack for the fp16 rounding of d and m (relative 2^-11 each, times at most
 *   2·max|x|): 2^-9·max|x|.
 * MXFP4: the nearest E2M1 value, so half the gap of the interval |x|/s lies in: 0.25s below
 * 2, 0.5s below 4, 1s below 6; above 6 (up to 8 by the choice of e) clamping to 6: 2s. */
static void check_block32(uint32_t type, const float *x, const uint8_t *blk, const float *y)
{
    float amax = amax_of(x, 32), slack = ldexpf(amax, -9) + 1e-30f;
    if (type == MF_TYPE_MXFP4) {
        int e = amax > 0 ? (int)floor(log2((double)amax)) + 125 : 0;
        if (e < 0) e = 0;
        assert_int_equal(blk[0], e); /* docs/quantization.md §3: floor(log2(max)) - 2 + 127 */
        double s = ldexp(1, blk[0] - 127);
        for (int i = 0; i < 32; i++) {
            double r = fabs(x[i]) / s, gap = r <= 2 ? 0.25 : r <= 4 ? 0.5 : r <= 6 ? 1 : 2;
            if (fabs(x[i] - y[i]) > gap * s) fail_msg("MXFP4 x=%g y=%g s=%g", x[i], y[i], s);
        }
        return;
    }
    float d = mf_fp16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
    int symmetric = type == MF_TYPE_Q4_0 || type == MF_TYPE_Q5_0 || type == MF_TYPE_Q8_0;
    int qhi = type == MF_TYPE_Q4_0 ? 7 : type == MF_TYPE_Q5_0 ? 15 : 127;
    for (int i = 0; i < 32; i++) {
        double err = fabs(x[i] - y[i]);
        double step = fabs(d);
        double bound = (symmetric && type != MF_TYPE_Q8_0 && x[i] / d > qhi + 0.5) ? step : step / 2;
        if (err > bound + slack)
            fail_msg("%s: x=%.9g y=%.9g d=%g err=%g > %g", mf_type_get(type)->name, x[i], y[i], d, err, bound + slack);
    }
}

/* Random N(0,1) data, many blocks: per-element bounds (32-element types) and the RMS
 * error relative to RMS(x) for all types. A uniform quantizer of step Δ has error RMS
 * Δ/√12; Δ is the block's (or sub-block's) range over its number of levels, e.g. Q8_0:
 * max|x| of 32 normals ≈ 2.1, Δ = 2.1/127, RMS ≈ 0.0048. The bounds are such estimates
 * with ~25% margin over the values this quantizer reaches here (Q4_0 0.086, Q4_1 0.078,
 * Q5_0 0.043, Q5_1 0.038, Q8_0 0.0054, Q2_K 0.26, Q3_K 0.146, Q4_K 0.071, Q5_K 0.035,
 * Q6_K 0.018, MXFP4 0.115). A wrong nibble or scale gives RMS errors of order 1. */
static void quant_random_normal(void **state)
{
    (void)state;
    const struct {
        uint32_t type;
        double rms;
    } bound[] = {
        {MF_TYPE_Q4_0, 0.11},   {MF_TYPE_Q4_1, 0.10},  {MF_TYPE_Q5_0, 0.054},  {MF_TYPE_Q5_1, 0.048},
        {MF_TYPE_Q8_0, 0.0068}, {MF_TYPE_Q2_K, 0.33},  {MF_TYPE_Q3_K, 0.18},   {MF_TYPE_Q4_K, 0.088},
        {MF_TYPE_Q5_K, 0.044},  {MF_TYPE_Q6_K, 0.023}, {MF_TYPE_MXFP4, 0.145},
    };
    const int n = 256 * 64;
    float *x = malloc(n * sizeof *x);
    mf_rng rng = {7};
    for (int i = 0; i < n; i++) x[i] = mf_rng_normal(&rng);
    for (size_t k = 0; k < sizeof bound / sizeof bound[0]; k++) {
        uint32_t type = bound[k].type;
        uint8_t *q;
        float *y = roundtrip(type, x, n, &q);
        const mf_type_info *t = mf_type_get(type);
        double sse = 0, ssx = 0;
        for (int i = 0; i < n; i++) sse += (x[i] - y[i]) * (double)(x[i] - y[i]), ssx += (double)x[i] * x[i];
        if (t->blck == 32)
            for (int b = 0; b < n / 32; b++) check_block32(type, x + 32 * b, q + b * t->size, y + 32 * b);
        double rel = sqrt(sse / ssx);
        if (rel > bound[k].rms) fail_msg("%s: relative RMS error %.4f > %.4f", t->name, rel, bound[k].rms);
        free(q);
        free(y);
    }
    free(x);
}

/* K-quants: within each 16- or 32-element sub-block the values are s·q - m with integer q,
 * so the error is bounded by the sub-block's own spread. Reference step: that of a plain
 * min/max quantizer of the sub-block, (max - min(min, 0)) / levels, or max|x| / (levels/2)
 * for the symmetric Q3_K/Q6_K. Bound: 1.25 steps. Why more than half a step: the
 * symmetric types put the largest magnitude at the long end (-4 / -32), so a value of the
 * other sign near max|x| clamps at the short end (+3 / +31), up to one step away; the
 * least-squares scale may clip an outlier by a fraction of a step; and the sub-block scale
 * is itself rounded to 4/6/8 bits. Measured worst cases (65536 values): 0.76 (Q2_K),
 * 1.14 (Q3_K), 0.80 (Q4_K), 0.96 (Q5_K), 0.95 (Q6_K) steps. A wrong bit layout or scale
 * gives errors of many steps. */
static void quant_k_per_element(void **state)
{
    (void)state;
    const struct {
        uint32_t type;
        int sub, levels, symmetric;
    } k[] = {
        {MF_TYPE_Q2_K, 16, 3, 0},  {MF_TYPE_Q3_K, 16, 7, 1},  {MF_TYPE_Q4_K, 32, 15, 0},
        {MF_TYPE_Q5_K, 32, 31, 0}, {MF_TYPE_Q6_K, 16, 63, 1},
    };
    const int n = 256 * 32;
    float *x = malloc(n * sizeof *x);
    mf_rng rng = {99};
    for (int i = 0; i < n; i++) x[i] = mf_rng_normal(&rng);
    for (size_t j = 0; j < sizeof k / sizeof k[0]; j++) {
        float *y = roundtrip(k[j].type, x, n, NULL);
        for (int s0 = 0; s0 < n; s0 += k[j].sub) {
            float lo = 0, hi = x[s0], am = 0;
            for (int i = s0; i < s0 + k[j].sub; i++)
                lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]), am = fmaxf(am, fabsf(x[i]));
            double step = k[j].symmetric ? am / ((k[j].levels + 1) / 2.0) : (hi - lo) / k[j].levels;
            for (int i = s0; i < s0 + k[j].sub; i++)
                if (fabs(x[i] - y[i]) > 1.25 * step)
                    fail_msg("%s: element %d x=%g y=%g, step %g", mf_type_get(k[j].type)->name, i, x[i], y[i], step);
        }
        free(y);
    }
    free(x);
}

/* All-zero blocks dequantize to exact zeros; constant blocks to (nearly) the constant:
 * every format represents a constant c within the fp16 rounding of its scales (2^-11
 * relative; 2^-8 leaves room for the K-quants' scale codes), plus the absolute precision
 * of an fp16 scale near zero (2^-25) times the largest code product (Q6_K: 128·32), for
 * small constants whose super-block scale is an fp16 subnormal. MXFP4's nearest E2M1 value
 * may be half a gap away: within |c|/4 (gap/2 = s in 4..6, and c >= 4s). */
static void quant_zero_and_constant(void **state)
{
    (void)state;
    float x[256], *y;
    for (size_t k = 0; k < N_BLOCK_TYPES; k++) {
        uint32_t type = BLOCK_TYPES[k];
        memset(x, 0, sizeof x);
        y = roundtrip(type, x, 256, NULL);
        for (int i = 0; i < 256; i++) assert_true(y[i] == 0);
        free(y);
        const float consts[] = {0.7f, -0.7f, 3e-3f, -123.0f};
        for (int c = 0; c < 4; c++) {
            for (int i = 0; i < 256; i++) x[i] = consts[c];
            y = roundtrip(type, x, 256, NULL);
            double tol = type == MF_TYPE_MXFP4 ? fabsf(consts[c]) / 4 : fabsf(consts[c]) * 0x1p-8 + 4096 * 0x1p-25;
            for (int i = 0; i < 256; i++)
                if (fabs(y[i] - consts[c]) > tol)
                    fail_msg("%s: constant %g -> %g", mf_type_get(type)->name, consts[c], y[i]);
            free(y);
        }
    }
}

/* Huge and tiny magnitudes: never NaN or inf (roundtrip() checks), and where the scale
 * still fits its format the usual relative accuracy holds. fp16 scales end at 65504 (so
 * blocks beyond ~5e5 saturate: codes clamp, values stay finite) and below 6e-8 (blocks of
 * ~1e-9 flush to zero, which is the nearest representable block). */
static void quant_extreme_scales(void **state)
{
    (void)state;
    const float scales[] = {1e30f, 1e6f, 1e3f, 1e-4f, 1e-9f, 1e-30f};
    float x[512];
    mf_rng rng = {3};
    for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
        for (int i = 0; i < 512; i++) x[i] = mf_rng_normal(&rng) * scales[s];
        float am = amax_of(x, 512);
        for (size_t k = 0; k < N_BLOCK_TYPES; k++) {
            float *y = roundtrip(BLOCK_TYPES[k], x, 512, NULL);
            for (int i = 0; i < 512; i++) assert_true(fabsf(y[i]) <= 2 * am);
            if (scales[s] == 1e3f || (scales[s] == 1e-4f && BLOCK_TYPES[k] != MF_TYPE_Q2_K)) {
                /* in range: error below 40% of the magnitude (Q2_K at 1e-4 has 4-bit
                 * scales of fp16 subnormals: skipped) */
                double sse = 0, ssx = 0;
                for (int i = 0; i < 512; i++) sse += (x[i] - y[i]) * (double)(x[i] - y[i]), ssx += (double)x[i] * x[i];
                if (sqrt(sse / ssx) > 0.4)
                    fail_msg("%s at scale %g: relative RMS %g", mf_type_get(BLOCK_TYPES[k])->name, scales[s],
                             sqrt(sse / ssx));
            }
            free(y);
        }
    }
    /* F16 and BF16 rows: RNE of each value; F16 overflow -> inf is the format's answer */
    float v[4] = {1.0f + 0x1p-11f, 70000.0f, 1e-9f, -2.5f}, back[4];
    uint16_t h[4];
    assert_int_equal(mf_quantize_row(MF_TYPE_F16, v, h, 4), 8);
    mf_dequantize_row(MF_TYPE_F16, h, back, 4);
    assert_true(back[0] == 1.0f && isinf(back[1]) && back[2] == 0.0f && back[3] == -2.5f);
    assert_int_equal(mf_quantize_row(MF_TYPE_BF16, v, h, 4), 8);
    mf_dequantize_row(MF_TYPE_BF16, h, back, 4);
    assert_true(back[0] == 1.0f && back[1] == 70144.0f && back[3] == -2.5f);
}

/* Quantizers write exactly a row's bytes; unsupported types and bad lengths return 0. */
static void quant_sizes(void **state)
{
    (void)state;
    float x[512] = {0};
    uint8_t buf[2048];
    for (size_t k = 0; k < N_BLOCK_TYPES; k++) {
        const mf_type_info *t = mf_type_get(BLOCK_TYPES[k]);
        memset(buf, 0xA5, sizeof buf);
        size_t n = mf_quantize_row(BLOCK_TYPES[k], x, buf, 512);
        assert_int_equal(n, 512 / t->blck * t->size);
        assert_int_equal(buf[n], 0xA5); /* nothing written past the row */
        assert_int_equal(mf_quantize_row(BLOCK_TYPES[k], x, buf, t->blck + 1), 0);
    }
    assert_int_equal(mf_quantize_row(MF_TYPE_IQ4_NL, x, buf, 32), 0);
    assert_int_equal(mf_quantize_row(MF_TYPE_Q8_K, x, buf, 256), 0);
}

/* mf_dot_ref = the double dot of the dequantized row (its definition), including the
 * 1-element types whose rows are not multiples of the 256-value chunk it works in. */
static void dot_ref_definition(void **state)
{
    (void)state;
    float x[300], w[300], y[300];
    mf_rng rng = {5};
    for (int i = 0; i < 300; i++) x[i] = mf_rng_normal(&rng), w[i] = mf_rng_normal(&rng);
    const uint32_t types[] = {MF_TYPE_F32, MF_TYPE_F16, MF_TYPE_BF16, MF_TYPE_Q8_0, MF_TYPE_Q6_K};
    const int64_t lens[] = {300, 300, 300, 288, 256};
    for (int k = 0; k < 5; k++) {
        uint8_t q[1200];
        mf_quantize_row(types[k], w, q, lens[k]);
        mf_dequantize_row(types[k], q, y, lens[k]);
        double want = 0;
        for (int i = 0; i < lens[k]; i++) want += (double)y[i] * x[i];
        assert_true(mf_dot_ref(types[k], q, x, lens[k]) == want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fp16_spec_examples),
        cmocka_unit_test(fp16_exhaustive_roundtrip),
        cmocka_unit_test(fp16_rne_ties),
        cmocka_unit_test(fp16_vs_f16c),
        cmocka_unit_test(bf16_conversions),
        cmocka_unit_test(e8m0_values),
        cmocka_unit_test(example_q4_0),
        cmocka_unit_test(example_q8_0),
        cmocka_unit_test(example_q4_k),
        cmocka_unit_test(example_mxfp4),
        cmocka_unit_test(quant_random_normal),
        cmocka_unit_test(quant_k_per_element),
        cmocka_unit_test(quant_zero_and_constant),
        cmocka_unit_test(quant_extreme_scales),
        cmocka_unit_test(quant_sizes),
        cmocka_unit_test(dot_ref_definition),
    };
    return MF_RUN("quant", tests);
}
