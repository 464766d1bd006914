/* test_cuda_host.c — the CUDA kernels' scalar math, run on the CPU (no GPU needed).
 *
 * cuda/host_twins.cu compiles the __host__ __device__ functions of cuda/dequant.cuh,
 * math.cuh and common.cuh for the host; this test compares them with
 *   - engine/quant.c (mf_dequantize_row, fp16/bf16 conversions): bit for bit (the sign of
 *     zero included; NaN only as NaN), every type,
 *     random rows and edge blocks, plus the worked examples of docs/quantization.md §7 and
 *     docs/quantization.md §7;
 *   - engine/rope.c (mf_rope_apply with tables from mf_rope_cos_sin): bit for bit;
 *   - plain C loops written here from the formulas of docs/forward.md and docs/moe.md: SwiGLU, clamped SwiGLU, the router's top-k
 *     and softmax (as engine/cpu/moe.c selects), attention by a two-pass softmax in double
 *     against the kernels' online-softmax recurrence with tiles, splits and sinks.
 * and the launch geometry of geometry.cuh: the flash-attention grid stays within CUDA's
 * limits (y, z <= 65535) and its blocks cover every query tile exactly once, folded or not;
 * the prompt GEMM's weight tiles are whole multiples of 64 rows (aligned outputs) and fit
 * the scratch; the flash-decoding split covers the keys.
 * This is the verification available on a machine without a GPU. It cannot see the
 * kernels' parallel structure (indexing, reductions, barriers): tests/cuda/ does, on a GPU.
 * The twins come from nvcc in CUDA builds (MF_HAVE_CUDA) and from the C++ compiler in
 * CPU-only builds (MF_HAVE_CUDA_TWINS), where the binary16 rounding test, which needs
 * cuda_fp16.h, is not compiled. Without either, the test skips. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(MF_HAVE_CUDA) || defined(MF_HAVE_CUDA_TWINS)
#include "../cuda/host_twins.h"
#include "memory.h"
#include "quant.h"
#include "quantize.h"
#include "rope.h"
#include "types.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* the same bits (so −0 and +0 differ), or both NaN */
static int same_value(float a, float b) { return bits(a) == bits(b) || (isnan(a) && isnan(b)); }

/* ---------------------------------------------------------------- scalars */

static void fp16_all_patterns(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = mf_cuda_host_h2f((uint16_t)h), b = mf_fp16_to_f32((uint16_t)h);
        if (isnan(b) ? !isnan(a) : bits(a) != bits(b)) fail_msg("f16 0x%04x: twin %.9g, quant.c %.9g", h, a, b);
        float bf = mf_cuda_host_bf2f((uint16_t)h), bq = mf_bf16_to_f32((uint16_t)h);
        if (bits(bf) != bits(bq)) fail_msg("bf16 0x%04x: twin %.9g, quant.c %.9g", h, bf, bq);
    }
}

#ifdef MF_HAVE_CUDA
/* float -> binary16 (the KV cache's rounding): random floats over the whole half range,
 * the halfway points between adjacent halves, and the edges (overflow, subnormals) */
static void f2h_matches_quant(void **state)
{
    (void)state;
    mf_rng r = {0x1234567ull};
    for (int i = 0; i < 200000; i++) {
        float f = ldexpf(mf_rng_uniform(&r) * 2.0f - 1.0f, (int)(mf_rng_u64(&r) % 48) - 30);
        assert_int_equal(mf_cuda_host_f2h(f), mf_f32_to_fp16(f));
    }
    for (uint32_t h = 0; h < 0x7C00; h++) { /* midpoints of every pair of adjacent positive halves */
        float lo = mf_fp16_to_f32((uint16_t)h), hi = mf_fp16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)lo + (double)hi) / 2);
        assert_int_equal(mf_cuda_host_f2h(mid), mf_f32_to_fp16(mid));
        assert_int_equal(mf_cuda_host_f2h(-mid), mf_f32_to_fp16(-mid));
    }
    const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e30f, -1e30f, 1e-8f, 5.96e-8f, 2.9e-8f, 3.0e-8f};
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
        assert_int_equal(mf_cuda_host_f2h(edge[i]), mf_f32_to_fp16(edge[i]));
}
#endif

/* 2^(e−128) for every scale byte, exactly (docs/quantization.md §2: e = 0, 1 are subnormals) */
static void e8m0_all(void **state)
{
    (void)state;
    for (int e = 0; e < 256; e++) assert_true(mf_cuda_host_e8m0_half((uint8_t)e) == ldexpf(1.0f, e - 128));
}

/* ---------------------------------------------------------------- dequantization */

static void expect_values(uint32_t type, const uint8_t *blk, int n, const int *idx, const float *want, int count)
{
    float y[256];
    assert_int_equal(mf_cuda_host_dequant_row(type, blk, y, n), 0);
    for (int i = 0; i < count; i++)
        if (y[idx[i]] != want[i]) fail_msg("type %u element %d: %.9g, expected %.9g", type, idx[i], y[idx[i]], want[i]);
}

static void worked_examples(void **state)
{
    (void)state;
    /* docs/quantization.md §7 Q4_0 */
    const uint8_t q40[18] = {0x66, 0xAE, 0x63, 0x18, 0xCD, 0x72, 0x27, 0xDC, 0x81,
                             0x36, 0xEB, 0x90, 0x45, 0xFA, 0xAF, 0x54, 0x09, 0xBE};
    const int i40[] = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const float v40[] = {0.49987793f,  -0.0f,        -0.49987793f, 0.599853516f, 0.0999755859f, -0.399902344f,
                         0.699829102f, 0.199951172f, 0.199951172f, 0.699829102f, -0.399902344f, 0.0999755859f,
                         0.599853516f, -0.49987793f, -0.0f,        0.49987793f};
    expect_values(MF_TYPE_Q4_0, q40, 32, i40, v40, 16);

    /* docs/quantization.md §7 Q8_0 */
    const uint8_t q80[34] = {0x3D, 0x2A, 0x9C, 0xB9, 0xD6, 0xF3, 0x10, 0x2D, 0x4A, 0x67, 0x84, 0xA1,
                             0xBE, 0xDB, 0xF8, 0x15, 0x32, 0x4F, 0x6C, 0x89, 0xA6, 0xC3, 0xE0, 0xFD,
                             0x1A, 0x37, 0x54, 0x71, 0x8E, 0xAB, 0xC8, 0xE5, 0x02, 0x1F};
    const int i80[] = {0, 1, 2, 3, 4, 5, 6, 7};
    const float v80[] = {-4.87365723f, -3.46029663f, -2.04693604f, -0.633575439f,
                         0.779785156f, 2.19314575f,  3.60650635f,  5.01986694f};
    expect_values(MF_TYPE_Q8_0, q80, 32, i80, v80, 8);

    /* docs/quantization.md §7 Q4_K: d, dmin, scales as printed, qs[k] = (37k + 11) mod 256 */
    uint8_t q4k[144] = {0x66, 0x2E, 0x66, 0x24, 0xC5, 0x4A, 0x8F, 0x13, 0x87, 0x21, 0xFE, 0x40, 0x9C, 0x3B, 0x71, 0xE2};
    for (int k = 0; k < 128; k++) q4k[16 + k] = (uint8_t)((37 * k + 11) % 256);
    const int i4k[] = {0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34, 35, 36, 37, 38, 39, 128, 129, 130, 131, 132, 133, 134, 135};
    const float v4k[] = {5.37838745f, -0.120269775f, 2.37911987f,   4.87850952f,   7.37789917f, 1.87924194f,
                         4.37863159f, 6.87802124f,   -0.566986084f, 2.43228149f,   4.43179321f, 6.43130493f,
                         8.43081665f, 11.4300842f,   13.4295959f,   -0.566986084f, 65.2794495f, -0.704437256f,
                         29.2882385f, 59.2809143f,   89.2735901f,   23.2897034f,   53.2823792f, 83.2750549f};
    expect_values(MF_TYPE_Q4_K, q4k, 256, i4k, v4k, 24);

    /* docs/quantization.md §7 MXFP4 */
    const uint8_t mx[17] = {0x7E, 0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE,
                            0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78};
    const int imx[] = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const float vmx[] = {0, 0.5f, 1, 2, -0.0f, -0.5f, -1, -2, 0.25f, 0.75f, 1.5f, 3, -0.25f, -0.75f, -1.5f, -3};
    expect_values(MF_TYPE_MXFP4, mx, 32, imx, vmx, 16);

    /* docs/quantization.md §7, cases A (scale 0x7E) and B (0x81): all 32 values */
    uint8_t mb[17] = {0x7E, 0xF0, 0x01, 0xE2, 0x13, 0xD4, 0x25, 0xC6, 0x37,
                      0xB8, 0x49, 0xAA, 0x5B, 0x9C, 0x6D, 0x8E, 0x7F};
    int iall[32];
    for (int i = 0; i < 32; i++) iall[i] = i;
    const float va[32] = {0,      0.25f, 0.5f,   0.75f, 1,     1.5f, 2,      3,  0,     -0.25f, -0.5f,
                          -0.75f, -1,    -1.5f,  -2,    -3,    -3,   0,      -2, 0.25f, -1.5f,  0.5f,
                          -1,     0.75f, -0.75f, 1,     -0.5f, 1.5f, -0.25f, 2,  0,     3};
    expect_values(MF_TYPE_MXFP4, mb, 32, iall, va, 32);
    mb[0] = 0x81;
    const float vb[32] = {0,   2, 4,   6, 8,   12, 16, 24, 0,  -2, -4, -6, -8, -12, -16, -24,
                          -24, 0, -16, 2, -12, 4,  -8, 6,  -6, 8,  -4, 12, -2, 16,  0,   24};
    expect_values(MF_TYPE_MXFP4, mb, 32, iall, vb, 32);
}

static const uint32_t all_types[] = {MF_TYPE_F32,  MF_TYPE_F16,  MF_TYPE_BF16, MF_TYPE_Q4_0, MF_TYPE_Q4_1,
                                     MF_TYPE_Q5_0, MF_TYPE_Q5_1, MF_TYPE_Q8_0, MF_TYPE_Q2_K, MF_TYPE_Q3_K,
                                     MF_TYPE_Q4_K, MF_TYPE_Q5_K, MF_TYPE_Q6_K, MF_TYPE_MXFP4};

/* Rows of random bytes (every field random: scales, codes, signs; f16 scales may be
 * subnormal, inf or NaN — both sides must agree on those too), 3 super-blocks or 24 blocks
 * wide, 300 rows per type: the twin equals mf_dequantize_row element for element. */
static void random_rows_match_quant(void **state)
{
    (void)state;
    mf_rng r = {42};
    for (size_t ti = 0; ti < sizeof all_types / sizeof *all_types; ti++) {
        uint32_t t = all_types[ti];
        const mf_type_info *info = mf_type_get(t);
        int64_t n = info->blck == 256 ? 768 : (info->blck == 1 ? 37 * 32 + 3 : 768);
        size_t nb = mf_type_row_bytes(t, n);
        uint8_t *row = malloc(nb);
        float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
        assert_non_null(row);
        for (int rep = 0; rep < 300; rep++) {
            for (size_t i = 0; i < nb; i++) row[i] = (uint8_t)mf_rng_u64(&r);
            assert_int_equal(mf_cuda_host_dequant_row(t, row, a, n), 0);
            mf_dequantize_row(t, row, b, n);
            for (int64_t i = 0; i < n; i++)
                if (!same_value(a[i], b[i]))
                    fail_msg("%s element %lld: twin %.9g, quant.c %.9g", info->name, (long long)i, a[i], b[i]);
        }
        free(row);
        free(a);
        free(b);
    }
}

/* Quantized N(0,1) data (realistic scales) and edge blocks: all-zero codes, extreme
 * codes, subnormal / negative-zero f16 scales, MXFP4 scale bytes 0, 1, 254, 255. */
static void quantized_and_edge_blocks(void **state)
{
    (void)state;
    mf_rng r = {7};
    float x[512], a[512], b[512];
    uint8_t q[512 * sizeof(float)]; /* the widest row: 512 F32 elements */
    for (size_t ti = 0; ti < sizeof all_types / sizeof *all_types; ti++) {
        uint32_t t = all_types[ti];
        for (int rep = 0; rep < 50; rep++) {
            for (int i = 0; i < 512; i++) x[i] = mf_rng_normal(&r) * (rep % 5 == 0 ? 1e-3f : 3.0f);
            size_t nb = mf_quantize_row(t, x, q, 512);
            if (rep % 7 == 1) memset(q, 0, nb);
            if (rep % 7 == 2) memset(q, 0xFF, nb);
            if (rep % 7 == 3 && t == MF_TYPE_Q4_0)
                for (int bk = 0; bk < 16; bk++) q[18 * bk] = 0x01, q[18 * bk + 1] = 0x80; /* d = −2^-24 */
            assert_int_equal(mf_cuda_host_dequant_row(t, q, a, 512), 0);
            mf_dequantize_row(t, q, b, 512);
            for (int i = 0; i < 512; i++)
                if (!same_value(a[i], b[i])) fail_msg("type %u rep %d element %d: %.9g vs %.9g", t, rep, i, a[i], b[i]);
        }
    }
    for (int e = 0; e < 256; e++) {
        uint8_t blk[17];
        blk[0] = (uint8_t)e;
        for (int j = 0; j < 16; j++) blk[1 + j] = (uint8_t)(j * 17); /* every code, both nibbles */
        assert_int_equal(mf_cuda_host_dequant_row(MF_TYPE_MXFP4, blk, a, 32), 0);
        mf_dequantize_row(MF_TYPE_MXFP4, blk, b, 32);
        for (int i = 0; i < 32; i++)
            if (!same_value(a[i], b[i])) fail_msg("MXFP4 e=%d element %d: %.9g vs %.9g", e, i, a[i], b[i]);
    }
}

/* ---------------------------------------------------------------- RoPE */

/* The twin's rotation equals mf_rope_apply bit for bit, for both pair layouts, with
 * cos/sin tables from mf_rope_cos_sin (plain and YaRN-like frequencies, mscale != 1). */
static void rope_matches_engine(void **state)
{
    (void)state;
    mf_rng r = {99};
    const int n_rots[] = {8, 16, 64, 128};
    for (size_t ni = 0; ni < sizeof n_rots / sizeof *n_rots; ni++) {
        int n_rot = n_rots[ni], hd = n_rot + 8;
        float freq[64];
        float *fr = freq;
        mf_model m;
        memset(&m, 0, sizeof m);
        m.hp.n_rot = n_rot;
        m.rope_freq = &fr;
        for (int i = 0; i < n_rot / 2; i++)
            freq[i] = powf(10000.0f, -2.0f * i / n_rot) * (i > n_rot / 4 ? 0.03125f : 1);
        m.rope_mscale = ni % 2 ? 1.3465736f : 1.0f;
        for (int neox = 0; neox <= 1; neox++)
            for (int pos = 0; pos < 3000; pos += 7) {
                float c[64], s[64], u[136], w[136];
                mf_rope_cos_sin(&m, 0, pos, c, s);
                for (int i = 0; i < hd; i++) u[i] = w[i] = mf_rng_normal(&r);
                mf_rope_apply(u, c, s, n_rot, neox);
                mf_cuda_host_rope(w, c, s, n_rot, neox);
                for (int i = 0; i < hd; i++)
                    if (bits(u[i]) != bits(w[i])) fail_msg("RoPE n_rot %d neox %d pos %d dim %d", n_rot, neox, pos, i);
            }
    }
}

/* ---------------------------------------------------------------- activations */

/* Against the formulas (docs/forward.md §2, docs/moe.md §1) in double (with alpha
 * as the float the kernel gets); the differences are float rounding and libm's expf:
 * 1e-6 relative to the size of the factors (uc + 1 may cancel, so not relative to the
 * product), plus, for the clamped form, the rounding of the product α·gc before the
 * exponential: 2^-23·|α·gc| relative. */
static void swiglu_formulas(void **state)
{
    (void)state;
    mf_rng r = {5};
    for (int i = 0; i < 100000; i++) {
        float g = mf_rng_normal(&r) * 6.0f, u = mf_rng_normal(&r) * 6.0f;
        double sg = (double)g / (1.0 + exp(-(double)g)) * u;
        double gc = g < 7.0 ? g : 7.0, uc = u < -7.0 ? -7.0 : (u > 7.0 ? 7.0 : u);
        double al = (double)1.702f, so = gc / (1.0 + exp(-al * gc)) * (uc + 1.0);
        float a = mf_cuda_host_swiglu(g, u), b = mf_cuda_host_swiglu_oai(g, u, 7.0f, 1.702f);
        assert_true(fabs(a - sg) <= 1e-6 * fabs(sg) + 1e-30);
        double tol = (1e-6 + 1.2e-7 * fabs(al * gc)) * fabs(gc / (1.0 + exp(-al * gc))) * (fabs(uc) + 1.0);
        assert_true(fabs(b - so) <= tol + 1e-30);
    }
    /* the clamps: gate above the limit is cut, up is cut on both sides */
    assert_true(mf_cuda_host_swiglu_oai(100.0f, 100.0f, 7.0f, 1.702f) ==
                mf_cuda_host_swiglu_oai(7.0f, 7.0f, 7.0f, 1.702f));
    assert_true(mf_cuda_host_swiglu_oai(1.0f, -100.0f, 7.0f, 1.702f) ==
                mf_cuda_host_swiglu_oai(1.0f, -7.0f, 7.0f, 1.702f));
    assert_true(mf_cuda_host_swiglu_oai(-30.0f, 1.0f, 7.0f, 1.702f) < 0.0f);
}

/* ---------------------------------------------------------------- attention */

/* Two-pass softmax in double (docs/moe.md §2) — the independent reference. */
static void attend_ref(const float *s, const float *v, int n, int hd, int has_sink, float sink, double *out)
{
    double M = has_sink ? sink : -INFINITY, Z = 0;
    for (int t = 0; t < n; t++)
        if (s[t] > M) M = s[t];
    if (has_sink) Z += exp(sink - M);
    for (int t = 0; t < n; t++) Z += s[t] == -INFINITY ? 0.0 : exp(s[t] - M);
    for (int d = 0; d < hd; d++) out[d] = 0;
    for (int t = 0; t < n; t++) {
        if (s[t] == -INFINITY) continue;
        double w = exp(s[t] - M) / Z;
        for (int d = 0; d < hd; d++) out[d] += w * v[t * hd + d];
    }
}

/* The online-softmax recurrence (tiles of 32, flash-decoding splits and their merge, sinks)
 * against the two-pass reference: lengths 1 … 2048, masked prefixes (a first tile with no
 * visible key), scores spread over ±30 (so the running maximum changes often and the
 * rescaling matters). Tolerance: float accumulation of ≤ 2048 terms, |err| ≤ 2e-6·max|v|·
 * log2(n + 1) — measured errors are ~10x below. */
static void online_softmax_matches_two_pass(void **state)
{
    (void)state;
    mf_rng r = {11};
    const int lens[] = {1, 7, 31, 32, 33, 64, 100, 333, 2048};
    const int chunks[] = {0, 32, 64, 96, 512};
    float *s = malloc(sizeof(float) * 2048), *v = malloc(sizeof(float) * 2048 * 8);
    float out[8];
    double ref[8];
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (size_t ci = 0; ci < sizeof chunks / sizeof *chunks; ci++)
            for (int variant = 0; variant < 4; variant++) {
                int n = lens[li], hd = 1 + variant * 2, sink_on = variant & 1;
                int masked = variant >= 2 ? n / 2 : 0; /* keys before the window: −∞ */
                float sink = mf_rng_normal(&r) * 5.0f, vmax = 0;
                for (int t = 0; t < n; t++) s[t] = t < masked ? -INFINITY : (mf_rng_uniform(&r) * 60.0f - 30.0f);
                if (masked == n) s[n - 1] = 0.5f;
                for (int i = 0; i < n * hd; i++) {
                    v[i] = mf_rng_normal(&r);
                    vmax = fmaxf(vmax, fabsf(v[i]));
                }
                mf_cuda_host_attend(s, v, n, hd, chunks[ci], sink_on, sink, out);
                attend_ref(s, v, n, hd, sink_on, sink, ref);
                double tol = 2e-6 * vmax * log2(n + 1.0);
                for (int d = 0; d < hd; d++)
                    if (!(fabs(out[d] - ref[d]) <= tol))
                        fail_msg("n %d chunk %d variant %d dim %d: %.9g vs %.9g", n, chunks[ci], variant, d, out[d],
                                 ref[d]);
            }
    free(s);
    free(v);
}

/* flash-decoding split sizes: whole tiles, enough splits to cover every key, none empty; never
 * more than memory.h's bound (which sizes `plan`'s estimate of the partial results), and
 * exactly the bound on a device with SMs enough for one split per tile */
static void attn_split_covers(void **state)
{
    (void)state;
    const int spans[] = {1, 31, 32, 33, 128, 2048, 4096, 16384, 131072};
    const int hkvs[] = {1, 4, 8, 64};
    const int sms[] = {1, 132, 1 << 20};
    for (size_t a = 0; a < sizeof spans / sizeof *spans; a++)
        for (size_t b = 0; b < sizeof hkvs / sizeof *hkvs; b++)
            for (size_t c = 0; c < sizeof sms / sizeof *sms; c++) {
                int chunk, ns;
                mf_cuda_host_attn_split(spans[a], hkvs[b], sms[c], &chunk, &ns);
                assert_true(chunk >= 32 && chunk % 32 == 0);
                assert_true((int64_t)ns * chunk >= spans[a]);
                assert_true((int64_t)(ns - 1) * chunk < spans[a]);
                assert_true(ns <= mf_mem_cuda_nsplit_max(spans[a]));
                if (sms[c] == 1 << 20 && hkvs[b] == 1) assert_int_equal(ns, mf_mem_cuda_nsplit_max(spans[a]));
            }
}

/* Every query tile of a KV head is worked on by exactly one block of the grid, each within
 * CUDA's limits; the blocks past the last tile (a fold's spares) are fewer than one row of
 * the fold. Cases: decode with G = 1 … 64 (G = 16, 32: one and two tiles), prompts of every
 * size around the 65535-tile edge (n·G/16 = 65535 fits in y; 65536 and the 32 769-row
 * prompt at G = 32 fold into x), and a prompt of 2^22 rows at G = 16 (folds into 65 x). */
static void attn_grid_covers(void **state)
{
    (void)state;
    struct {
        int64_t n, G, Hkv;
        int chunk;
        int64_t nsplit;
    } cs[] = {
        {1, 1, 8, 64, 33},    {1, 8, 8, 64, 33},      {1, 16, 4, 32, 200},   {1, 32, 2, 32, 200},
        {1, 64, 1, 128, 7},   {7, 4, 2, 0, 1},        {333, 8, 1, 0, 1},     {65535, 16, 2, 0, 1},
        {65536, 16, 1, 0, 1}, {1048560, 1, 3, 0, 1},  {1048561, 1, 1, 0, 1}, {32769, 32, 2, 0, 1},
        {32768, 32, 1, 0, 1}, {4194304, 16, 1, 0, 1},
    };
    unsigned char *seen = NULL;
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        long long g[3];
        int64_t tiles = 0;
        assert_int_equal(mf_cuda_host_attn_grid(cs[i].n, cs[i].G, cs[i].Hkv, cs[i].chunk, cs[i].nsplit, g, &tiles), 0);
        assert_int_equal(tiles, (cs[i].n * cs[i].G + 15) / 16);
        if (!(g[0] >= 1 && g[0] <= 2147483647ll && g[1] >= 1 && g[1] <= 65535 && g[2] == cs[i].Hkv))
            fail_msg("n %lld G %lld: grid %lld x %lld x %lld is outside CUDA's limits", (long long)cs[i].n,
                     (long long)cs[i].G, g[0], g[1], g[2]);
        if (cs[i].chunk) assert_int_equal(g[0], cs[i].nsplit);
        seen = realloc(seen, (size_t)tiles);
        assert_non_null(seen);
        memset(seen, 0, (size_t)tiles);
        int64_t spare = 0;
        for (long long bx = 0; bx < g[0]; bx++)
            for (long long by = 0; by < g[1]; by++) {
                int64_t t = mf_cuda_host_attn_tile(cs[i].chunk, (unsigned)bx, (unsigned)by, (unsigned)g[1]);
                assert_true(t >= 0);
                if (t >= tiles) {
                    spare++;
                    continue;
                }
                /* decode: every split block works on its tile; prompts: one block per tile */
                if (!cs[i].chunk && seen[t])
                    fail_msg("n %lld G %lld: tile %lld twice", (long long)cs[i].n, (long long)cs[i].G, (long long)t);
                seen[t] = 1;
            }
        for (int64_t t = 0; t < tiles; t++)
            if (!seen[t])
                fail_msg("n %lld G %lld: tile %lld has no block", (long long)cs[i].n, (long long)cs[i].G, (long long)t);
        assert_true(spare < (cs[i].chunk ? 1 : g[0]));
    }
    free(seen);
    /* no grid: too many KV heads for z, a decode with more than 65535 tiles, two rows split */
    long long g[3];
    int64_t tiles;
    assert_int_equal(mf_cuda_host_attn_grid(1, 1, 65536, 0, 1, g, &tiles), -1);
    assert_int_equal(mf_cuda_host_attn_grid(1, 1048561, 1, 32, 4, g, &tiles), -1);
    assert_int_equal(mf_cuda_host_attn_grid(2, 4, 1, 32, 4, g, &tiles), -1);
}

/* Tiles of the prompt GEMM: the whole matrix when it fits; else a multiple of 64 rows that
 * fits the scratch, so tile k's output at out + k·rows is 256-byte aligned; 0 when not even
 * 64 rows fit. Random shapes and the test's own scratch (test_cuda_matmul: 64·2880 + 1000). */
static void gemm_tiles_aligned(void **state)
{
    (void)state;
    mf_rng r = {17};
    for (int i = 0; i < 100000; i++) {
        int64_t n_in = 1 + (int64_t)(mf_rng_u64(&r) % 20000), n_out = 1 + (int64_t)(mf_rng_u64(&r) % 300000);
        size_t cap = (size_t)(mf_rng_u64(&r) % (64ull << 20));
        if (i % 4 == 0) cap = (size_t)n_in * (size_t)(1 + mf_rng_u64(&r) % 200); /* near the 64-row edge */
        int64_t rows = mf_cuda_host_gemm_tile_rows(cap, n_in, n_out);
        if (rows == n_out) {
            assert_true((size_t)n_out * (size_t)n_in <= cap);
        } else if (rows == 0) {
            assert_true((size_t)n_in * 64 > cap);
        } else {
            if (rows % 64 || (size_t)rows * (size_t)n_in > cap || rows > n_out ||
                (size_t)(rows + 64) * (size_t)n_in <= cap)
                fail_msg("n_in %lld n_out %lld scratch %zu: %lld rows per tile", (long long)n_in, (long long)n_out, cap,
                         (long long)rows);
        }
    }
    assert_int_equal(mf_cuda_host_gemm_tile_rows(64 * 2880 + 1000, 2880, 67), 64);
    assert_int_equal(mf_cuda_host_gemm_tile_rows(64 * 2880 + 1000, 2880, 64), 64);
    assert_int_equal(mf_cuda_host_gemm_tile_rows(64 * 2880 + 1000, 2304, 256), 64);
    assert_int_equal(mf_cuda_host_gemm_tile_rows(64 * 2880 + 1000, 256, 256), 256);
    assert_int_equal(mf_cuda_host_gemm_tile_rows(32u << 20, 2880, 201088), 11648); /* gpt-oss-20b output, 64 MiB */
    assert_int_equal(mf_cuda_host_gemm_tile_rows(63 * 100, 100, 1000), 0);
}

/* ---------------------------------------------------------------- MoE routing */

/* engine/cpu/moe.c's selection, restated: scan up, a strictly larger logit replaces */
static void topk_cpu(const float *r, int n, int k, int *idx, float *w)
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
    float m = r[idx[0]], z = 0.0f;
    for (int s = 0; s < k; s++) z += w[s] = expf(r[idx[s]] - m);
    for (int s = 0; s < k; s++) w[s] /= z;
}

/* Random logits with many exact ties (values on a grid of 0.25), E = 4 … 128, k = 1 … 4:
 * same experts in the same order, same weights (same float operations: exact). */
static void topk_matches_cpu(void **state)
{
    (void)state;
    mf_rng r = {3};
    const int Es[] = {4, 5, 8, 32, 33, 128};
    float lg[128], w1[4], w2[4];
    int i1[4];
    int32_t i2[4];
    for (size_t ei = 0; ei < sizeof Es / sizeof *Es; ei++)
        for (int k = 1; k <= 4 && k <= Es[ei]; k++)
            for (int rep = 0; rep < 500; rep++) {
                int E = Es[ei];
                for (int e = 0; e < E; e++)
                    lg[e] = rep % 3 == 0 ? floorf(mf_rng_normal(&r) * 2.0f) / 4.0f : mf_rng_normal(&r);
                if (rep % 10 == 0)
                    for (int e = 0; e < E; e++) lg[e] = 1.0f; /* all tied: experts 0 … k−1 */
                topk_cpu(lg, E, k, i1, w1);
                mf_cuda_host_topk(lg, E, k, i2, w2);
                for (int s = 0; s < k; s++) {
                    assert_int_equal(i1[s], i2[s]);
                    assert_true(w1[s] == w2[s]);
                }
                if (rep % 10 == 0)
                    for (int s = 0; s < k; s++) assert_int_equal(i2[s], s);
            }
}

/* the order itself: larger first, ties to the lower index, NaN last, "no candidate" loses */
static void topk_order(void **state)
{
    (void)state;
    assert_true(mf_cuda_host_topk_better(2.0f, 5, 1.0f, 0));
    assert_false(mf_cuda_host_topk_better(1.0f, 0, 2.0f, 5));
    assert_true(mf_cuda_host_topk_better(1.0f, 3, 1.0f, 4));
    assert_false(mf_cuda_host_topk_better(1.0f, 4, 1.0f, 3));
    assert_true(mf_cuda_host_topk_better(-INFINITY, 9, NAN, 0));
    assert_false(mf_cuda_host_topk_better(NAN, 0, -INFINITY, 9));
    assert_true(mf_cuda_host_topk_better(NAN, 7, 0.0f, -1));
    assert_false(mf_cuda_host_topk_better(0.0f, -1, NAN, 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fp16_all_patterns),
#ifdef MF_HAVE_CUDA
        cmocka_unit_test(f2h_matches_quant),
#endif
        cmocka_unit_test(e8m0_all),
        cmocka_unit_test(worked_examples),
        cmocka_unit_test(random_rows_match_quant),
        cmocka_unit_test(quantized_and_edge_blocks),
        cmocka_unit_test(rope_matches_engine),
        cmocka_unit_test(swiglu_formulas),
        cmocka_unit_test(online_softmax_matches_two_pass),
        cmocka_unit_test(attn_split_covers),
        cmocka_unit_test(attn_grid_covers),
        cmocka_unit_test(gemm_tiles_aligned),
        cmocka_unit_test(topk_matches_cpu),
        cmocka_unit_test(topk_order),
    };
#ifndef MF_HAVE_CUDA
    print_message("cuda_host: twins compiled as C++ (no nvcc); the binary16 rounding test needs nvcc's cuda_fp16.h\n");
#endif
    return MF_RUN("cuda_host", tests);
}

#else

static void no_cuda(void **state)
{
    (void)state;
    mf_skip("this build has neither nvcc nor a C++ compiler: the kernels' host twins are not compiled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(no_cuda)};
    return MF_RUN("cuda_host", tests);
}
#endif
