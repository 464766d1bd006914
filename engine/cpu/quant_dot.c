/* quant_dot.c — the fast path's portable half: the activation formats, the scalar integer
 * dot products (the twins of quant_avx2.c), and the build-time choice between them.
 *
 * Why 8-bit activations: a weight block stores small integer codes and one scale, so
 *     Σ_j w_j·x_j = dw · Σ_j q_j·x_j.
 * If x is also a block of integers with one scale, x_j ≈ dx·a_j, the inner sum becomes an
 * integer dot product Σ q_j·a_j: exact, 4x denser than floats in registers, and one
 * instruction per 32 byte pairs with AVX-VNNI (vpdpbusd), two with plain AVX2 (vpmaddubsw,
 * vpmaddwd). The price is the rounding of x: |x_j - dx·a_j| <= dx/2, so the product differs
 * from the exact one by at most Σ_blocks (dx/2)·Σ_j |w_j| (plus float rounding), tested in
 * tests/test_quant_dot.c. See docs/quantization.md §4.
 *
 * The scalar code below computes exactly the integer sums the SIMD code computes and
 * applies the same float steps in the same order (quant.h's canonical order, with fmaf), so
 * the SIMD kernels equal it bit for bit.
 */
#include "quant.h"
#include "quant_impl.h"

#include <math.h>
#include <string.h>

/* ================================================================ activation formats */

uint32_t mf_act_type(uint32_t wtype)
{
    switch (wtype) {
    case MF_TYPE_Q4_0:
    case MF_TYPE_Q5_0:
    case MF_TYPE_Q8_0:
    case MF_TYPE_MXFP4: return MF_TYPE_Q8_0;
    case MF_TYPE_Q4_1:
    case MF_TYPE_Q5_1: return MF_TYPE_Q8_1;
    case MF_TYPE_Q2_K:
    case MF_TYPE_Q3_K:
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K:
    case MF_TYPE_Q6_K: return MF_TYPE_Q8_K;
    default: return MF_TYPE_F32;
    }
}

int mf_act_offset(uint32_t wtype)
{
    switch (wtype) {
    case MF_TYPE_Q4_0: return 8;
    case MF_TYPE_Q5_0: return 16;
    case MF_TYPE_MXFP4: return 12;
    default: return 0;
    }
}

int mf_act_corr_offset(uint32_t wtype) { return wtype == MF_TYPE_Q8_0 ? 128 : mf_act_offset(wtype); }

size_t mf_act_bytes(uint32_t wtype, int64_t n)
{
    if (!mf_type_supported(wtype) || n <= 0) return 0;
    switch (mf_act_type(wtype)) {
    case MF_TYPE_Q8_K: return n % 256 ? 0 : (size_t)(n / 256) * sizeof(mf_actk);
    case MF_TYPE_F32: return (size_t)n * sizeof(float);
    default: return n % 32 ? 0 : (size_t)(n / 32) * sizeof(mf_act32);
    }
}

void mf_act_dequantize(uint32_t wtype, const void *qx, float *x, int64_t n)
{
    switch (mf_act_type(wtype)) {
    case MF_TYPE_F32: memcpy(x, qx, sizeof(float) * (size_t)n); break;
    case MF_TYPE_Q8_K:
        for (int64_t b = 0; b < n / 256; b++) {
            const mf_actk *a = (const mf_actk *)qx + b;
            for (int j = 0; j < 256; j++) x[b * 256 + j] = (float)a->qs[j] * a->d;
        }
        break;
    default:
        for (int64_t b = 0; b < n / 32; b++) {
            const mf_act32 *a = (const mf_act32 *)qx + b;
            for (int j = 0; j < 32; j++) x[b * 32 + j] = (float)a->qs[j] * a->d;
        }
        break;
    }
}

static float max_abs(const float *x, int n)
{
    float m = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] != x[i]) return NAN; /* a NaN anywhere: the block is NaN (act32_block) */
        if (fabsf(x[i]) > m) m = fabsf(x[i]);
    }
    return m;
}

/* A block holding NaN or inf has no codes: its codes are 0 and its scale is max|x| / 127,
 * NaN or inf, so every dot product with it is NaN (0 · inf too) and the broken activation
 * stays visible (minfer run's non-finite check) instead of an int8 conversion of NaN or
 * inf (undefined in C; the SIMD conversion gives -128). quant_avx2.c does the same. */
static const float zero_block[256];

/* One Q8_0-style block. Codes: RNE(x · (127 / max|x|)), the f32 reciprocal llama.cpp's x86
 * code multiplies by (nearbyintf rounds to nearest even in the default rounding mode, as
 * the SIMD conversion does). The scale the dot products use is d rounded to fp16 — unless
 * that overflows (max|x| > 8.3e6), where llama.cpp would produce inf: then d stays f32. */
static void act32_block(const float *x, mf_act32 *a, int off, int hi, int coff)
{
    float amax = max_abs(x, 32);
    float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    if (!isfinite(amax)) x = zero_block;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        a->qs[j] = (int8_t)nearbyintf(x[j] * id);
        sum += a->qs[j];
    }
    float d16 = mf_fp16_to_f32(mf_f32_to_fp16(d));
    a->d = isinf(d16) ? d : d16;
    a->s = a->d * (float)sum;
    a->corr = -coff * sum;
    for (int k = 0; k < 8; k++) {
        int lane = a->qs[4 * k] + a->qs[4 * k + 1] + a->qs[4 * k + 2] + a->qs[4 * k + 3];
        a->bias[k] = -off * lane * (k >= 4 ? hi : 1);
    }
    memset(a->pad, 0, sizeof a->pad);
}

/* One Q8_K-style block: f32 scale, codes as above, sums of 16 codes. */
static void actk_block(const float *x, mf_actk *a)
{
    float amax = max_abs(x, 256);
    float id = amax > 0 ? 127.0f / amax : 0.0f;
    if (!isfinite(amax)) x = zero_block;
    for (int j = 0; j < 256; j++) a->qs[j] = (int8_t)nearbyintf(x[j] * id);
    a->d = amax / 127.0f;
    for (int k = 0; k < 16; k++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += a->qs[16 * k + j];
        a->bsums[k] = (int16_t)s;
    }
    memset(a->pad, 0, sizeof a->pad);
}

void mf_quantize_act_scalar(uint32_t wtype, const float *x, void *qx, int64_t n)
{
    switch (mf_act_type(wtype)) {
    case MF_TYPE_F32: memcpy(qx, x, (size_t)n * sizeof(float)); return;
    case MF_TYPE_Q8_K:
        for (int64_t b = 0; b < n / 256; b++) actk_block(x + 256 * b, (mf_actk *)qx + b);
        return;
    default: {
        int off = mf_act_offset(wtype), hi = wtype == MF_TYPE_Q4_0 ? 16 : 1, coff = mf_act_corr_offset(wtype);
        for (int64_t b = 0; b < n / 32; b++) act32_block(x + 32 * b, (mf_act32 *)qx + b, off, hi, coff);
    }
    }
}

/* ================================================================ scalar integer dots
 *
 * Each "codes" function writes the integer codes of one weight block (the q of the
 * dequantization formulas, offsets removed) so the dot is Σ scale · Σ q·a. */

static float f16(const uint8_t *p) { return mf_fp16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

static int isum(const int8_t *q, const int8_t *a, int n)
{
    int s = 0;
    for (int j = 0; j < n; j++) s += q[j] * a[j];
    return s;
}

/* Nibbles in the Q4_0 order: element j low nibble of qs[j], element j+16 high nibble. */
static void nibbles32(const uint8_t *qs, int8_t q[32], int off)
{
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0xF) - off);
        q[j + 16] = (int8_t)((qs[j] >> 4) - off);
    }
}

static void fifth_bits(const uint8_t *qh, int8_t q[32])
{
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int j = 0; j < 32; j++) q[j] = (int8_t)(q[j] + (int)((h >> j) & 1) * 16);
}

/* Σ over 32-blocks of wtype·act32. */
static float dot32(uint32_t wtype, const uint8_t *w, const mf_act32 *a, int64_t nb)
{
    const mf_type_info *t = mf_type_get(wtype);
    float acc = 0;
    for (int64_t b = 0; b < nb; b++, w += t->size, a++) {
        int8_t q[32];
        float dw, m = 0;
        switch (wtype) {
        case MF_TYPE_Q4_0:
            dw = f16(w);
            nibbles32(w + 2, q, 8);
            break;
        case MF_TYPE_Q4_1:
            dw = f16(w);
            m = f16(w + 2);
            nibbles32(w + 4, q, 0);
            break;
        case MF_TYPE_Q5_0:
            dw = f16(w);
            nibbles32(w + 6, q, 0);
            fifth_bits(w + 2, q);
            for (int j = 0; j < 32; j++) q[j] = (int8_t)(q[j] - 16);
            break;
        case MF_TYPE_Q5_1:
            dw = f16(w);
            m = f16(w + 2);
            nibbles32(w + 8, q, 0);
            fifth_bits(w + 4, q);
            break;
        case MF_TYPE_Q8_0:
            dw = f16(w);
            memcpy(q, w + 2, 32);
            break;
        default: /* MXFP4: the doubled E2M1 values are integers, the scale is halved */
            dw = mf_e8m0_half(w[0]);
            for (int j = 0; j < 16; j++) {
                q[j] = (int8_t)mf_e2m1_x2[w[1 + j] & 0xF];
                q[j + 16] = (int8_t)mf_e2m1_x2[w[1 + j] >> 4];
            }
        }
        /* the canonical order (quant.h): one rounding per block step, blocks in order */
        acc = fmaf((float)isum(q, a->qs, 32), dw * a->d, acc);
        if (mf_simd_has_min32(wtype)) acc = fmaf(m, a->s, acc);
    }
    return acc;
}

/* K-quant codes of one super-block plus its scales: y[i] = d·sc[i/16]·q[i] - dmin·mn[i/16]
 * (the 32-element sub-blocks of Q4_K/Q5_K give their scale to both 16-halves). */
typedef struct kblock {
    int8_t q[256];
    int sc[16], mn[16];
    float d, dmin;
} kblock;

static void kcodes(uint32_t wtype, const uint8_t *b, kblock *k)
{
    memset(k->mn, 0, sizeof k->mn);
    k->dmin = 0;
    switch (wtype) {
    case MF_TYPE_Q2_K:
        k->d = f16(b + 80), k->dmin = f16(b + 82);
        for (int i = 0; i < 256; i++) k->q[i] = (int8_t)((b[16 + 32 * (i / 128) + i % 32] >> (2 * (i % 128 / 32))) & 3);
        for (int s = 0; s < 16; s++) k->sc[s] = b[s] & 0xF, k->mn[s] = b[s] >> 4;
        return;
    case MF_TYPE_Q3_K:
        k->d = f16(b + 108);
        for (int i = 0; i < 256; i++) {
            int h = i / 128, k2 = i % 128 / 32, l = i % 32;
            int low2 = (b[32 + 32 * h + l] >> (2 * k2)) & 3, hbit = (b[l] >> (4 * h + k2)) & 1;
            k->q[i] = (int8_t)(low2 - (hbit ? 0 : 4));
        }
        for (int s = 0; s < 16; s++) {
            int low4 = s < 8 ? b[96 + s] & 0xF : b[96 + s - 8] >> 4;
            k->sc[s] = (low4 | ((b[104 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
        }
        return;
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: {
        k->d = f16(b), k->dmin = f16(b + 2);
        const uint8_t *qs = b + (wtype == MF_TYPE_Q4_K ? 16 : 48);
        for (int i = 0; i < 256; i++) {
            int g = i / 32, c = i / 64, l = i % 32;
            int q = g % 2 ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
            if (wtype == MF_TYPE_Q5_K) q |= ((b[16 + l] >> g) & 1) << 4;
            k->q[i] = (int8_t)q;
        }
        for (int g = 0; g < 8; g++) {
            int sc, m;
            mf_k4_scale_min(b + 4, g, &sc, &m);
            k->sc[2 * g] = k->sc[2 * g + 1] = sc;
            k->mn[2 * g] = k->mn[2 * g + 1] = m;
        }
        return;
    }
    default: /* Q6_K */
        k->d = f16(b + 208);
        for (int i = 0; i < 256; i++) {
            int h = i / 128, k2 = i % 128 / 32, l = i % 32;
            int v = b[64 * h + 32 * (k2 & 1) + l];
            int low4 = k2 < 2 ? v & 0xF : v >> 4, high2 = (b[128 + 32 * h + l] >> (2 * k2)) & 3;
            k->q[i] = (int8_t)((low4 | high2 << 4) - 32);
        }
        for (int s = 0; s < 16; s++) k->sc[s] = (int8_t)b[192 + s];
    }
}

/* Σ over super-blocks: d·dx·Σ_s sc_s·Σ q·a  -  dmin·dx·Σ_s mn_s·bsum_s */
static float dotk(uint32_t wtype, const uint8_t *w, const mf_actk *a, int64_t nb)
{
    const mf_type_info *t = mf_type_get(wtype);
    float acc = 0;
    for (int64_t b = 0; b < nb; b++, w += t->size, a++) {
        kblock k;
        kcodes(wtype, w, &k);
        int dot = 0, mins = 0;
        for (int s = 0; s < 16; s++) {
            dot += k.sc[s] * isum(k.q + 16 * s, a->qs + 16 * s, 16);
            mins += k.mn[s] * a->bsums[s];
        }
        acc = fmaf((float)dot, k.d * a->d, acc);
        if (mf_simd_k_dmin_at(wtype) >= 0) acc = fmaf(-(float)mins, k.dmin * a->d, acc);
    }
    return acc;
}

/* float weights are loaded byte-wise: a file with general.alignment 1 or 2 may place a
 * row at any address (docs/gguf.md, alignment) */
static float dotf(uint32_t wtype, const uint8_t *w, const float *x, int64_t n)
{
    float sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float v;
        if (wtype == MF_TYPE_F32) memcpy(&v, w + 4 * i, 4);
        else v = wtype == MF_TYPE_F16 ? f16(w + 2 * i) : mf_bf16_to_f32((uint16_t)(w[2 * i] | w[2 * i + 1] << 8));
        sum += v * x[i];
    }
    return sum;
}

float mf_vec_dot_scalar(uint32_t wtype, const void *row, const void *qx, int64_t n)
{
    switch (mf_act_type(wtype)) {
    case MF_TYPE_F32: return dotf(wtype, row, qx, n);
    case MF_TYPE_Q8_K: return dotk(wtype, row, qx, n / 256);
    default: return dot32(wtype, row, qx, n / 32);
    }
}

void mf_matmul_rows_scalar(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                           size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    size_t rb = mf_type_row_bytes(wtype, n_in);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W + (size_t)r * rb;
        for (int t = 0; t < n_tok; t++) /* the row stays in cache across the tokens */
            y[t * y_stride + r] = mf_vec_dot_scalar(wtype, row, (const char *)qx + t * qx_stride, n_in);
    }
}

/* ================================================================ the build's choice */

void mf_quantize_act(uint32_t wtype, const float *x, void *qx, int64_t n)
{
#ifdef MF_QUANT_AVX2
    mf_quantize_act_avx2(wtype, x, qx, n);
#else
    mf_quantize_act_scalar(wtype, x, qx, n);
#endif
}

float mf_vec_dot(uint32_t wtype, const void *row, const void *qx, int64_t n)
{
#ifdef MF_QUANT_AVX2
    float y = 0;
    mf_matmul_rows_avx2(wtype, row, n, 0, 1, qx, 0, 1, &y, 0);
    return y;
#else
    return mf_vec_dot_scalar(wtype, row, qx, n);
#endif
}

void mf_matmul_rows(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                    size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
#if defined(MF_QUANT_AVX512)
    mf_matmul_rows_avx512(wtype, W, n_in, r0, r1, qx, qx_stride, n_tok, y, y_stride);
#elif defined(MF_QUANT_AVX2)
    mf_matmul_rows_avx2(wtype, W, n_in, r0, r1, qx, qx_stride, n_tok, y, y_stride);
#else
    mf_matmul_rows_scalar(wtype, W, n_in, r0, r1, qx, qx_stride, n_tok, y, y_stride);
#endif
}

const char *mf_quant_kernels(void)
{
#if defined(MF_QUANT_AVX512)
    return "avx512-vnni+avx2"; /* AVX-512 tiles for batches, AVX2 for decoding */
#elif defined(MF_QUANT_AVX2)
    return "avx2";
#else
    return "scalar";
#endif
}
