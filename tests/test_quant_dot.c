/* test_quant_dot.c — the fast path (engine/cpu/quant_dot.c, engine/cpu/quant_avx2.c,
 * engine/cpu/quant_avx512.c):
 *   - the activation formats: codes, scales, sums and the llama.cpp rounding rule;
 *   - mf_vec_dot (this build's kernels: AVX2/VNNI or scalar) and mf_vec_dot_scalar (the
 *     portable twin, always built) against mf_dot_ref, with a bound derived from the
 *     rounding of the activations, and against each other with a float-rounding bound
 *     (the integer sums must agree exactly, so only the order of float additions differs);
 *   - mf_matmul_rows over row ranges, token counts and strides against the same references,
 *     and that it writes nothing outside its rows. */
#include "harness.h"
#include "quant.h"
#include "quantize.h"
#include "quant_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t ALL_TYPES[] = {MF_TYPE_F32,  MF_TYPE_F16,  MF_TYPE_BF16, MF_TYPE_Q4_0, MF_TYPE_Q4_1,
                                     MF_TYPE_Q5_0, MF_TYPE_Q5_1, MF_TYPE_Q8_0, MF_TYPE_Q2_K, MF_TYPE_Q3_K,
                                     MF_TYPE_Q4_K, MF_TYPE_Q5_K, MF_TYPE_Q6_K, MF_TYPE_MXFP4};
#define N_TYPES (sizeof ALL_TYPES / sizeof ALL_TYPES[0])

static const char *tname(uint32_t t) { return mf_type_get(t)->name; }

/* ================================================================ activation formats */

static void act_types_and_sizes(void **state)
{
    (void)state;
    assert_int_equal(mf_act_type(MF_TYPE_F16), MF_TYPE_F32);
    assert_int_equal(mf_act_type(MF_TYPE_BF16), MF_TYPE_F32);
    assert_int_equal(mf_act_type(MF_TYPE_Q4_0), MF_TYPE_Q8_0);
    assert_int_equal(mf_act_type(MF_TYPE_MXFP4), MF_TYPE_Q8_0);
    assert_int_equal(mf_act_type(MF_TYPE_Q5_1), MF_TYPE_Q8_1);
    assert_int_equal(mf_act_type(MF_TYPE_Q6_K), MF_TYPE_Q8_K);
    assert_int_equal(mf_act_bytes(MF_TYPE_F16, 100), 400);
    assert_int_equal(mf_act_bytes(MF_TYPE_Q8_0, 2048), 64 * sizeof(mf_act32));
    assert_int_equal(mf_act_bytes(MF_TYPE_Q4_K, 2048), 8 * sizeof(mf_actk));
    assert_int_equal(mf_act_bytes(MF_TYPE_Q4_K, 2080), 0); /* not a multiple of 256 */
    assert_int_equal(mf_act_bytes(MF_TYPE_IQ4_NL, 32), 0); /* no kernel */
}

/* Per 32 values: d = max|x|/127 in f32; codes RNE(x·127/max|x|) with that f32 scale, so
 * |code - x·127/max| <= 1/2; the stored d is the fp16 rounding of d (docs/quantization.md §4);
 * bias, s and corr as documented in quant_impl.h. */
static void act32_blocks(void **state)
{
    (void)state;
    float x[128];
    mf_rng rng = {11};
    for (int i = 0; i < 128; i++) x[i] = mf_rng_normal(&rng) * (i < 64 ? 1.0f : 1e-3f);
    memset(x + 96, 0, 32 * sizeof *x); /* an all-zero block: d = 0, codes 0, no NaN */
    const uint32_t types[] = {MF_TYPE_Q4_0, MF_TYPE_Q4_1, MF_TYPE_Q5_0, MF_TYPE_Q8_0, MF_TYPE_MXFP4};
    const int offs[] = {8, 0, 16, 0, 12};
    const int corr_offs[] = {8, 0, 16, 128, 12}; /* Q8_0: the AVX-512 kernel dots w + 128 */
    mf_act32 a[4];
    for (int k = 0; k < 5; k++) {
        mf_quantize_act(types[k], x, a, 128);
        for (int b = 0; b < 4; b++) {
            const float *xb = x + 32 * b;
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
            float id = amax > 0 ? 127.0f / amax : 0.0f;
            assert_true(a[b].d == mf_fp16_to_f32(mf_f32_to_fp16(amax / 127.0f)));
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                assert_true(fabsf(a[b].qs[j] - xb[j] * id) <= 0.5f);
                sum += a[b].qs[j];
            }
            assert_true(a[b].s == a[b].d * (float)sum);
            assert_int_equal(a[b].corr, -corr_offs[k] * sum);
            for (int l = 0; l < 8; l++) {
                int ls = a[b].qs[4 * l] + a[b].qs[4 * l + 1] + a[b].qs[4 * l + 2] + a[b].qs[4 * l + 3];
                /* Q4_0: lanes 4..7 scaled by 16 (its kernel keeps high nibbles × 16) */
                int hi = types[k] == MF_TYPE_Q4_0 && l >= 4 ? 16 : 1;
                assert_int_equal(a[b].bias[l], -offs[k] * ls * hi);
            }
        }
        assert_true(a[3].d == 0 && a[3].s == 0);
    }
}

/* The code must come from the f32 scale, not from the fp16 one: build a value whose
 * x·127/max lies just below k + 1/2 while x / fp16(d) lies above it. */
static void act32_rounds_with_f32_scale(void **state)
{
    (void)state;
    float x[32] = {0};
    x[0] = 1.0f; /* max|x| = 1: d = 1/127, fp16(d) != d */
    float d = 1.0f / 127.0f, d16 = mf_fp16_to_f32(mf_f32_to_fp16(d));
    assert_true(d16 != d);
    assert_true(d16 < d); /* 1/127 rounds down in fp16 */
    int found = 0;
    for (int k = 1; k < 126 && !found; k++) {
        float v = nextafterf((k + 0.5f) / 127.0f, 0);
        while (v * 127.0f >= k + 0.5f) v = nextafterf(v, 0);
        if (v / d16 >= k + 0.5f) { /* the fp16 scale would round it up to k + 1 */
            found = 1;
            x[1] = v;
            mf_act32 a;
            mf_quantize_act(MF_TYPE_Q8_0, x, &a, 32);
            assert_int_equal(a.qs[1], k);
        }
    }
    assert_true(found);
}

/* This build's conversion (SIMD or not) writes the very bytes of the scalar one, for every
 * family, on data with zeros, ties (x·127/max = k + 1/2 exactly) and a spread of scales. */
static void act_simd_equals_scalar(void **state)
{
    (void)state;
    const int64_t n = 4096;
    float *x = malloc(n * sizeof *x);
    mf_rng rng = {17};
    for (int64_t i = 0; i < n; i++) {
        float s = (i / 256) % 3 == 0 ? 1e-3f : (i / 256) % 3 == 1 ? 1.0f : 300.0f;
        x[i] = mf_rng_normal(&rng) * s;
    }
    for (int i = 0; i < 32; i++) x[i] = i == 0 ? 127.0f : (float)(i % 7) - 3.5f; /* ties */
    memset(x + 64, 0, 32 * sizeof *x);
    const uint32_t types[] = {MF_TYPE_F16,  MF_TYPE_Q4_0,  MF_TYPE_Q4_1, MF_TYPE_Q5_0,
                              MF_TYPE_Q8_0, MF_TYPE_MXFP4, MF_TYPE_Q4_K, MF_TYPE_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        size_t ab = mf_act_bytes(types[k], n);
        uint8_t *a = malloc(ab), *b = malloc(ab);
        memset(a, 0x5A, ab);
        memset(b, 0xA5, ab);
        mf_quantize_act(types[k], x, a, n);
        mf_quantize_act_scalar(types[k], x, b, n);
        if (memcmp(a, b, ab)) fail_msg("%s: activation bytes differ from the scalar conversion", tname(types[k]));
        free(a), free(b);
    }
    free(x);
}

static void actk_blocks(void **state)
{
    (void)state;
    float x[512];
    mf_rng rng = {13};
    for (int i = 0; i < 512; i++) x[i] = mf_rng_normal(&rng) * (i < 256 ? 3.0f : 1e-6f);
    mf_actk a[2];
    mf_quantize_act(MF_TYPE_Q4_K, x, a, 512);
    for (int b = 0; b < 2; b++) {
        float amax = 0;
        for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[256 * b + j]));
        assert_true(a[b].d == amax / 127.0f); /* f32 scale, not rounded */
        for (int j = 0; j < 256; j++) assert_true(fabsf(a[b].qs[j] - x[256 * b + j] * (127.0f / amax)) <= 0.5f);
        for (int k = 0; k < 16; k++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += a[b].qs[16 * k + j];
            assert_int_equal(a[b].bsums[k], s);
        }
    }
}

/* ================================================================ tolerances */

/* Largest error of one activation in block b (containing x[i0 .. i0+B)) after its 8-bit
 * rounding: half a step of the f32 scale, plus for the 32-blocks the fp16 rounding of the
 * scale applied to codes up to 127 (and when fp16 overflows the f32 d is kept); a relative
 * 2^-20 covers the f32 rounding of x·127/max. */
static double act_err(uint32_t wtype, const float *xb)
{
    uint32_t at = mf_act_type(wtype);
    if (at == MF_TYPE_F32) return 0;
    int B = at == MF_TYPE_Q8_K ? 256 : 32;
    float amax = 0;
    for (int j = 0; j < B; j++) amax = fmaxf(amax, fabsf(xb[j]));
    double d = amax / 127.0f, e = 0.5 * d;
    if (at != MF_TYPE_Q8_K) {
        float d16 = mf_fp16_to_f32(mf_f32_to_fp16((float)d));
        if (!isinf(d16)) e += 127 * fabs(d - d16);
    }
    return e * (1 + 0x1p-20);
}

typedef struct tol {
    double act, flt;
} tol;

/* act: Σ_blocks e_b · Σ_{i in b} |w_i| — the effect of the activation rounding (quant.h).
 * flt: float rounding of the fast path: each block's scale product, conversion and FMA
 * (3 roundings) and an accumulation over at most n/B + 8 terms per lane: (nb + 16)·2^-24
 * times the sum of the magnitudes involved. The types with a min (Q4_1, Q5_1, K-quants)
 * compute d·q·x and the min term separately, two terms that may cancel, so their
 * magnitude is bounded by (|w_i| + max|w| of the block)·|x_i|. */
static tol tolerance(uint32_t wtype, const float *w, const float *x, int64_t n)
{
    const mf_type_info *t = mf_type_get(wtype);
    int64_t B = mf_act_type(wtype) == MF_TYPE_F32 ? 256 : (mf_act_type(wtype) == MF_TYPE_Q8_K ? 256 : 32);
    int64_t nb = t->blck > 1 ? n / t->blck : n;
    double act = 0, mag = 0;
    for (int64_t i0 = 0; i0 < n; i0 += B) {
        int64_t m = n - i0 < B ? n - i0 : B;
        double e = m == B ? act_err(wtype, x + i0) : 0, sw = 0, wmax = 0;
        for (int64_t i = i0; i < i0 + m; i++) wmax = fmax(wmax, fabs(w[i]));
        for (int64_t i = i0; i < i0 + m; i++) {
            sw += fabs(w[i]);
            mag += (fabs(w[i]) + (t->blck > 1 ? wmax : 0)) * (fabs(x[i]) + e);
        }
        act += e * sw;
    }
    return (tol){act, (double)(nb + 16) * 0x1p-24 * mag + 1e-30};
}

/* ================================================================ dot products */

static void random_row(uint32_t type, mf_rng *rng, int64_t n, float *w_deq, uint8_t *q)
{
    float *w = malloc((size_t)n * sizeof *w);
    float scale = 0.02f + mf_rng_uniform(rng); /* model-like magnitudes */
    for (int64_t i = 0; i < n; i++) w[i] = mf_rng_normal(rng) * scale;
    mf_quantize_row(type, w, q, n);
    mf_dequantize_row(type, q, w_deq, n);
    free(w);
}

/* activations with a spread of block magnitudes (as after RMSNorm, with outliers) */
static void random_act(mf_rng *rng, int64_t n, float *x)
{
    for (int64_t i = 0; i < n; i++) {
        float s = (i / 32) % 5 == 3 ? 20.0f : (i / 32) % 7 == 2 ? 0.01f : 1.0f;
        x[i] = mf_rng_normal(rng) * s;
    }
}

/* An activation block holding NaN or inf gives NaN in every product, in every build, and the
 * SIMD conversion writes the scalar one's bytes: such a block has no codes and a NaN or
 * infinite scale. Before, the int8 conversion of NaN·(127/max) dropped the NaN (the scalar
 * code: undefined behaviour; AVX2: max_ps lost a NaN that was not in the last lanes), and a
 * NaN weight gave a finite answer (test_nonfinite). */
static void act_nonfinite(void **state)
{
    (void)state;
    const int64_t n = 512;
    const uint32_t types[] = {MF_TYPE_Q4_0,  MF_TYPE_Q4_1, MF_TYPE_Q5_0, MF_TYPE_Q8_0,
                              MF_TYPE_MXFP4, MF_TYPE_Q4_K, MF_TYPE_Q6_K};
    const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
    const int at[] = {0, 5, 31, 255, 300, 511}; /* first, middle and last lanes of blocks */
    float x[512], w[512];
    uint8_t q[1024];
    mf_rng rng = {23};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        random_row(types[k], &rng, n, w, q);
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
            for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
                for (int64_t j = 0; j < n; j++) x[j] = mf_rng_normal(&rng);
                x[at[i]] = bad[b];
                size_t ab = mf_act_bytes(types[k], n);
                uint8_t a[2048], c[2048];
                mf_quantize_act(types[k], x, a, n);
                mf_quantize_act_scalar(types[k], x, c, n);
                if (memcmp(a, c, ab))
                    fail_msg("%s, %g at %d: activation bytes differ from the scalar conversion", tname(types[k]),
                             bad[b], at[i]);
                float y = mf_vec_dot(types[k], q, a, n), ys = mf_vec_dot_scalar(types[k], q, c, n);
                if (!isnan(y) || !isnan(ys))
                    fail_msg("%s, %g at %d: dot %g, scalar %g, expected NaN", tname(types[k]), bad[b], at[i], y, ys);
            }
    }
}

static const int64_t *lengths_of(uint32_t type, int *count)
{
    static const int64_t f[] = {1, 7, 8, 33, 100, 2880, 4096};
    static const int64_t b32[] = {32, 64, 96, 288, 2880, 4096};
    static const int64_t bk[] = {256, 512, 768, 2816, 4096};
    switch (mf_act_type(type)) {
    case MF_TYPE_F32: *count = 7; return f;
    case MF_TYPE_Q8_K: *count = 5; return bk;
    default: *count = 6; return b32;
    }
}

static void check_dot(uint32_t type, const char *what, double got, double ref, double bound, int64_t n)
{
    if (!(fabs(got - ref) <= bound))
        fail_msg("%s n=%lld %s: %.9g vs %.9g, |diff| %.3g > bound %.3g", tname(type), (long long)n, what, got, ref,
                 fabs(got - ref), bound);
}

static void vec_dot_vs_reference(void **state)
{
    (void)state;
    mf_rng rng = {2024};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = ALL_TYPES[k];
        int nl;
        const int64_t *lens = lengths_of(type, &nl);
        for (int li = 0; li < nl; li++) {
            int64_t n = lens[li];
            for (int rep = 0; rep < 4; rep++) {
                float *w = malloc((size_t)n * sizeof *w), *x = malloc((size_t)n * sizeof *x);
                uint8_t *q = malloc(mf_type_row_bytes(type, n));
                void *qx = malloc(mf_act_bytes(type, n));
                random_row(type, &rng, n, w, q);
                random_act(&rng, n, x);
                mf_quantize_act(type, x, qx, n);
                double ref = mf_dot_ref(type, q, x, n);
                tol tl = tolerance(type, w, x, n);
                float fast = mf_vec_dot(type, q, qx, n), scal = mf_vec_dot_scalar(type, q, qx, n);
                check_dot(type, "mf_vec_dot vs ref", fast, ref, tl.act + tl.flt, n);
                check_dot(type, "scalar vs ref", scal, ref, tl.act + tl.flt, n);
                /* quantized types: the same integers and the same canonical float steps
                 * (quant.h), so the SIMD kernel equals its scalar twin bit for bit; float
                 * weights: only the order of float additions separates the two */
                if (mf_act_type(type) == MF_TYPE_F32)
                    check_dot(type, "mf_vec_dot vs scalar", fast, scal, 2 * tl.flt, n);
                else if (!(fast == scal))
                    fail_msg("%s n=%lld: mf_vec_dot %.9g != scalar twin %.9g", tname(type), (long long)n, fast, scal);
                free(w), free(x), free(q), free(qx);
            }
        }
    }
}

/* Zero weights or zero activations give exactly 0; activations beyond the fp16 range of
 * the 32-block scale (max|x| > 127·65504) or below it (scale flushed to 0) stay finite and
 * within the bound. */
static void vec_dot_edge_cases(void **state)
{
    (void)state;
    const int64_t n = 512;
    float w[512], x[512], z[512] = {0};
    uint8_t q[4096], qx[4096];
    mf_rng rng = {77};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = ALL_TYPES[k];
        random_row(type, &rng, n, w, q);
        mf_quantize_act(type, z, qx, n);
        assert_true(mf_vec_dot(type, q, qx, n) == 0 && mf_vec_dot_scalar(type, q, qx, n) == 0);
        const float scales[] = {1e7f, 1e-9f};
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < n; i++) x[i] = mf_rng_normal(&rng) * scales[s];
            mf_quantize_act(type, x, qx, n);
            double ref = mf_dot_ref(type, q, x, n);
            tol tl = tolerance(type, w, x, n);
            float fast = mf_vec_dot(type, q, qx, n);
            assert_true(isfinite(fast));
            check_dot(type, "extreme activations", fast, ref, tl.act + tl.flt, n);
        }
        uint8_t zq[4096];
        mf_quantize_row(type, z, zq, n);
        random_act(&rng, n, x);
        mf_quantize_act(type, x, qx, n);
        assert_true(mf_vec_dot(type, zq, qx, n) == 0);
    }
}

/* MXFP4 scales of every exponent, the subnormal e = 0, 1 and e = 255 included (the SIMD
 * code looks them up in a table): one non-zero product per block, so every kernel computes
 * the same single rounding, 12·127 · (2^(e-128) · fp16(1/127)), and must agree exactly. */
static void mxfp4_all_exponents(void **state)
{
    (void)state;
    float x[32] = {0};
    x[21] = 1.0f; /* one activation: code 127, d = fp16(1/127) */
    mf_act32 a;
    mf_quantize_act(MF_TYPE_MXFP4, x, &a, 32);
    for (int e = 0; e < 256; e++) {
        uint8_t blk[17] = {(uint8_t)e};
        blk[1 + 5] = 0x70; /* element 21 = high nibble of qs[5] = code 7 (E2M1 6, doubled 12) */
        float want = (float)(12 * 127) * (mf_e8m0_half((uint8_t)e) * a.d);
        float fast = mf_vec_dot(MF_TYPE_MXFP4, blk, &a, 32), scal = mf_vec_dot_scalar(MF_TYPE_MXFP4, blk, &a, 32);
        if (!(fast == want && scal == want)) fail_msg("MXFP4 e=%d: %g / %g, expected %g", e, fast, scal, want);
    }
}

/* ================================================================ matmul_rows */

typedef struct mm_case {
    int64_t n_in;
    int n_tok;
    int64_t r0, r1, rows;
} mm_case;

static void run_matmul_case(uint32_t type, mm_case c, mf_rng *rng)
{
    const int64_t rows = c.rows, ys = rows + 3, n = c.n_in;
    size_t rb = mf_type_row_bytes(type, n), ab = mf_act_bytes(type, n);
    size_t xs = ab + 96; /* a padded activation stride */
    uint8_t *W = malloc(rb * rows);
    float *wd = malloc((size_t)(rows * n) * sizeof *wd), *x = malloc((size_t)(c.n_tok * n) * sizeof *x);
    uint8_t *qx = malloc(xs * c.n_tok);
    float *y = malloc((size_t)(ys * c.n_tok) * sizeof *y);
    for (int64_t r = 0; r < rows; r++) random_row(type, rng, n, wd + r * n, W + r * rb);
    for (int t = 0; t < c.n_tok; t++) {
        random_act(rng, n, x + t * n);
        mf_quantize_act(type, x + t * n, qx + t * xs, n);
    }
    for (int64_t i = 0; i < ys * c.n_tok; i++) y[i] = NAN;
    mf_matmul_rows(type, W, n, c.r0, c.r1, qx, xs, c.n_tok, y, ys);
    for (int t = 0; t < c.n_tok; t++)
        for (int64_t r = 0; r < ys; r++) {
            float got = y[t * ys + r];
            if (r < c.r0 || r >= c.r1) {
                if (!isnan(got))
                    fail_msg("%s: y[%d][%lld] written outside rows [%lld, %lld)", tname(type), t, (long long)r,
                             (long long)c.r0, (long long)c.r1);
                continue;
            }
            /* reference: the double dot of the dequantized row (= mf_dot_ref) */
            double ref = 0;
            for (int64_t i = 0; i < n; i++) ref += (double)wd[r * n + i] * x[t * n + i];
            tol tl = tolerance(type, wd + r * n, x + t * n, n);
            float scal = mf_vec_dot_scalar(type, W + r * rb, qx + t * xs, n);
            int exact = mf_act_type(type) != MF_TYPE_F32; /* see vec_dot_vs_reference */
            if (!(fabs(got - ref) <= tl.act + tl.flt) || !(exact ? got == scal : fabs(got - scal) <= 2 * tl.flt))
                fail_msg("%s n_in=%lld n_tok=%d rows [%lld,%lld): y[%d][%lld] = %.9g, ref %.9g, scalar %.9g",
                         tname(type), (long long)n, c.n_tok, (long long)c.r0, (long long)c.r1, t, (long long)r, got,
                         ref, scal);
        }
    free(W), free(wd), free(x), free(qx), free(y);
}

static void matmul_rows_vs_reference(void **state)
{
    (void)state;
    mf_rng rng = {31337};
    const int toks[] = {1, 2, 3, 5, 8, 17, 64};
    const int64_t ranges[][2] = {{0, 37}, {3, 30}, {5, 6}, {1, 10}, {33, 37}};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = ALL_TYPES[k];
        int nl;
        const int64_t *lens = lengths_of(type, &nl);
        for (int ti = 0; ti < 7; ti++) /* every token count on a small row, every range */
            for (int ri = 0; ri < 5; ri++)
                run_matmul_case(type, (mm_case){lens[1], toks[ti], ranges[ri][0], ranges[ri][1], 37}, &rng);
        for (int li = 0; li < nl; li++) /* every length with a few token counts */
            for (int ti = 0; ti < 6; ti += 2) run_matmul_case(type, (mm_case){lens[li], toks[ti], 3, 30, 37}, &rng);
    }
}

/* The batch tiles of the AVX-512 build take 16 rows × 16, 8, 4, 2 or 1 tokens and leave
 * the rows after the last full group of 16 to the AVX2 code: every token count from 1 to
 * 17 on ranges that start anywhere and end with 0..15 leftover rows, and rows longer than
 * the 32 blocks of the tiles' scale table, on realistic data. (The same cases run through
 * the AVX2 or scalar code in other builds; tests/test_quant_avx512.c checks the tiles bit
 * for bit against the scalar twin.) */
static void matmul_rows_batch_tiles(void **state)
{
    (void)state;
    mf_rng rng = {16161};
    const int64_t ranges[][2] = {{0, 53}, {3, 19}, {5, 53}, {17, 50}, {20, 35}};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = ALL_TYPES[k];
        if (mf_act_type(type) == MF_TYPE_F32) continue; /* no batch tiles for float weights */
        int kq = mf_act_type(type) == MF_TYPE_Q8_K;
        for (int n_tok = 1; n_tok <= 17; n_tok++)
            for (int ri = 0; ri < 5; ri++)
                run_matmul_case(type, (mm_case){kq ? 512 : 64, n_tok, ranges[ri][0], ranges[ri][1], 53}, &rng);
        const int toks[] = {2, 16, 17};
        for (int ti = 0; ti < 3; ti++) run_matmul_case(type, (mm_case){kq ? 2304 : 1088, toks[ti], 3, 40, 40}, &rng);
    }
}

/* mf_vec_dot is the 1-row, 1-token case of the kernels; the scalar matmul is its own loop:
 * both must agree with the dispatching mf_matmul_rows. */
static void matmul_scalar_twin(void **state)
{
    (void)state;
    mf_rng rng = {4242};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = ALL_TYPES[k];
        int nl;
        const int64_t n = lengths_of(type, &nl)[2];
        size_t rb = mf_type_row_bytes(type, n), ab = mf_act_bytes(type, n);
        uint8_t *W = malloc(rb * 9), *qx = malloc(ab * 6);
        float *wd = malloc((size_t)n * 9 * sizeof *wd), *x = malloc((size_t)n * 6 * sizeof *x), y1[54], y2[54];
        for (int r = 0; r < 9; r++) random_row(type, &rng, n, wd + r * n, W + r * rb);
        for (int t = 0; t < 6; t++) {
            random_act(&rng, n, x + t * n);
            mf_quantize_act(type, x + t * n, qx + t * ab, n);
        }
        mf_matmul_rows(type, W, n, 0, 9, qx, ab, 6, y1, 9);
        mf_matmul_rows_scalar(type, W, n, 0, 9, qx, ab, 6, y2, 9);
        for (int t = 0; t < 6; t++)
            for (int r = 0; r < 9; r++) {
                tol tl = tolerance(type, wd + r * n, x + t * n, n);
                if (mf_act_type(type) == MF_TYPE_F32) assert_true(fabs(y1[t * 9 + r] - y2[t * 9 + r]) <= 2 * tl.flt);
                else assert_true(y1[t * 9 + r] == y2[t * 9 + r]);
                assert_true(y2[t * 9 + r] == mf_vec_dot_scalar(type, W + r * rb, qx + t * ab, n));
            }
        free(W), free(qx), free(wd), free(x);
    }
}

/* Batch invariance (docs/cpu.md §3): the result for one (weight row, token) pair must not
 * depend on how many tokens share the product, so that a sequence decoded alone and the same
 * sequence batched with others get the same logits bit for bit. For every type: T = 1..20
 * tokens through mf_matmul_rows at once (the AVX-512 tiles of 16, 8, 4, 2, 1 tokens, the
 * AVX2 tiles of 4 and 1, their leftovers), row by row equal to T products of one token, on
 * a row range that starts and ends off the tiles' multiples (leftover rows). */
static void matmul_batch_invariant(void **state)
{
    (void)state;
    mf_rng rng = {0xB17};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = ALL_TYPES[k];
        int nl;
        const int64_t n = lengths_of(type, &nl)[3], rows = 53, r0 = 3, r1 = 50;
        size_t rb = mf_type_row_bytes(type, n), ab = mf_act_bytes(type, n);
        uint8_t *W = malloc(rb * rows), *qx = malloc(ab * 20);
        float *wd = malloc((size_t)(n * rows) * sizeof *wd), *x = malloc((size_t)n * sizeof *x);
        float *yb = malloc(sizeof(float) * 20 * rows), *y1 = malloc(sizeof(float) * rows);
        for (int64_t r = 0; r < rows; r++) random_row(type, &rng, n, wd + r * n, W + r * rb);
        for (int t = 0; t < 20; t++) {
            random_act(&rng, n, x);
            mf_quantize_act(type, x, qx + (size_t)t * ab, n);
        }
        for (int T = 1; T <= 20; T++) {
            mf_matmul_rows(type, W, n, r0, r1, qx, ab, T, yb, rows);
            for (int t = 0; t < T; t++) {
                mf_matmul_rows(type, W, n, r0, r1, qx + (size_t)t * ab, ab, 1, y1, rows);
                for (int64_t r = r0; r < r1; r++)
                    if (memcmp(&yb[t * rows + r], &y1[r], sizeof(float)))
                        fail_msg("%s n=%lld: token %d of %d, row %lld: %.9g batched, %.9g alone", tname(type),
                                 (long long)n, t, T, (long long)r, yb[t * rows + r], y1[r]);
            }
        }
        free(W), free(qx), free(wd), free(x), free(yb), free(y1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(act_types_and_sizes),         cmocka_unit_test(act32_blocks),
        cmocka_unit_test(act32_rounds_with_f32_scale), cmocka_unit_test(actk_blocks),
        cmocka_unit_test(act_simd_equals_scalar),      cmocka_unit_test(act_nonfinite),
        cmocka_unit_test(vec_dot_vs_reference),        cmocka_unit_test(vec_dot_edge_cases),
        cmocka_unit_test(mxfp4_all_exponents),         cmocka_unit_test(matmul_rows_vs_reference),
        cmocka_unit_test(matmul_rows_batch_tiles),     cmocka_unit_test(matmul_scalar_twin),
        cmocka_unit_test(matmul_batch_invariant),
    };
    return MF_RUN("quant_dot", tests);
}
