/* quant.c — the scalar reference of every block format: number conversions, dequantize,
 * and the "dequantize then dot" reference product. The quantizers (floats -> blocks, the
 * scale searches) are in quantize.c.
 *
 * This file is the truth the fast kernels (quant_dot.c, quant_avx2.c) and the CUDA kernels
 * are tested against. Each type has one dequantizer, written as a plain loop over the
 * formulas of the block format (docs/quantization.md §2), with the block layout drawn above
 * it.
 *
 * Bit-exactness: every dequantizer does its float32 arithmetic in the order of
 * docs/quantization.md §2, one operation per statement, so that no compiler may fuse a
 * multiply and an add into an FMA (GCC contracts only with -ffp-contract=fast, clang within
 * one expression): the values are then identical to ggml's CPU dequantizers.
 */
#include "quant.h"
#include "quant_impl.h"

#include <math.h>
#include <string.h>

/* ================================================================ number formats */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* binary16: s EEEEE MMMMMMMMMM (docs/quantization.md §1). */
float mf_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
    if (e == 0) { /* zero and subnormals: m · 2^-24, exact in f32 */
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7F800000u | (m << 13)); /* inf, NaN (payload kept) */
    return bits_f32(sign | ((e + 127 - 15) << 23) | (m << 13));
}

/* Round-to-nearest-even on the integer value `v >> shift` (the dropped bits decide). */
static uint32_t shift_rne(uint32_t v, unsigned shift)
{
    uint32_t q = v >> shift, rem = v & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return q;
}

uint16_t mf_f32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) /* NaN: stays a (quiet) NaN */
        return (uint16_t)(sign | 0x7E00 | ((ax >> 13) & 0x3FF));
    if (ax >= 0x47800000u) return (uint16_t)(sign | 0x7C00); /* >= 2^16 (and inf): inf */
    if (ax >= 0x38800000u) {
        /* normal half (|f| >= 2^-14): rebias the exponent (127 -> 15) and drop 13 mantissa
         * bits with RNE; a carry out of the mantissa correctly bumps the exponent, and
         * values >= 65520 carry into 0x7C00 = inf. */
        return (uint16_t)(sign | shift_rne(ax - (112u << 23), 13));
    }
    if (ax < 0x33000000u) return sign; /* |f| < 2^-25: rounds to (signed) zero */
    /* subnormal half: the value in units of 2^-24 is mant · 2^(E - 126), E = f32 exponent.
     * A carry from 0x3FF to 0x400 gives the smallest normal, which is the right encoding. */
    uint32_t E = ax >> 23, mant = (ax & 0x7FFFFFu) | 0x800000u;
    return (uint16_t)(sign | shift_rne(mant, 126 - E));
}

/* bfloat16 = upper 16 bits of binary32 (docs/quantization.md §1). */
float mf_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t mf_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x0040); /* quiet NaN */
    /* RNE: add 0x7FFF plus the lowest kept bit, then truncate; overflow carries into inf */
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1)) >> 16);
}

/* E8M0: value 2^(e-127) (docs/quantization.md §2). e = 0 is the one subnormal (2^-127); e = 255 is NaN
 * in the OCP Microscaling Formats (MX) specification v1.0. */
float mf_e8m0_to_f32(uint8_t e)
{
    if (e == 255) return NAN;
    if (e == 0) return bits_f32(0x00400000u);
    return bits_f32((uint32_t)e << 23);
}

/* ================================================================ byte helpers */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float rdf16(const uint8_t *p) { return mf_fp16_to_f32(rd16(p)); }

/* ================================================================ Q4_0 (docs/quantization.md §2)
 *
 *   byte  0      2                                   18
 *         +------+-----------------------------------+
 *         | d    | qs[16]: lo nibble = y[j],          |
 *         | f16  |         hi nibble = y[j+16]        |
 *         +------+-----------------------------------+
 *   y = (q - 8) · d,  q in 0..15
 */
static void deq_q4_0(const uint8_t *b, float *y)
{
    float d = rdf16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0xF) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

/* ================================================================ Q4_1 (docs/quantization.md §2)
 *
 *   byte  0      2      4                            20
 *         +------+------+----------------------------+
 *         | d    | m    | qs[16] (nibbles as Q4_0)    |
 *         +------+------+----------------------------+
 *   y = q · d + m,  q in 0..15
 */
static void deq_q4_1(const uint8_t *b, float *y)
{
    float d = rdf16(b), m = rdf16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        float lo = (float)(qs[j] & 0xF) * d, hi = (float)(qs[j] >> 4) * d;
        y[j] = lo + m;
        y[j + 16] = hi + m;
    }
}

/* ================================================================ Q5_0 (docs/quantization.md §2)
 *
 *   byte  0      2          6                        22
 *         +------+----------+------------------------+
 *         | d    | qh[4]    | qs[16] (nibbles as Q4_0)|
 *         +------+----------+------------------------+
 *   qh read as a little-endian u32 h: bit k = fifth bit of element k
 *   y = (q - 16) · d,  q = nibble | 16·bit, 0..31
 */
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void deq_q5_0(const uint8_t *b, float *y)
{
    float d = rdf16(b);
    uint32_t h = rd32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0xF) | (int)((h >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
        y[j] = (float)(lo - 16) * d;
        y[j + 16] = (float)(hi - 16) * d;
    }
}

/* ================================================================ Q5_1 (docs/quantization.md §2)
 *
 *   byte  0      2      4          8                  24
 *         +------+------+----------+------------------+
 *         | d    | m    | qh[4]    | qs[16]            |
 *         +------+------+----------+------------------+
 *   y = q · d + m,  q 0..31 (fifth bits as Q5_0)
 */
static void deq_q5_1(const uint8_t *b, float *y)
{
    float d = rdf16(b), m = rdf16(b + 2);
    uint32_t h = rd32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0xF) | (int)((h >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
        float a = (float)lo * d, c = (float)hi * d;
        y[j] = a + m;
        y[j + 16] = c + m;
    }
}

/* ================================================================ Q8_0 (docs/quantization.md §2)
 *
 *   byte  0      2                                   34
 *         +------+-----------------------------------+
 *         | d    | qs[32] signed bytes                |
 *         +------+-----------------------------------+
 *   y = q · d
 */
static void deq_q8_0(const uint8_t *b, float *y)
{
    float d = rdf16(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* ================================================================ Q4_K and Q5_K scales (docs/quantization.md §2)
 *
 *   scales[12]:  s[0..3]  bits 0-5: sc0..sc3      bits 6-7: bits 4-5 of sc4..sc7
 *                s[4..7]  bits 0-5: m0..m3        bits 6-7: bits 4-5 of m4..m7
 *                s[8..11] low nibble: bits 0-3 of sc4..sc7, high nibble: bits 0-3 of m4..m7
 */
void mf_k4_scale_min(const uint8_t *s, int g, int *sc, int *m)
{
    if (g < 4) {
        *sc = s[g] & 63;
        *m = s[g + 4] & 63;
    } else {
        *sc = (s[g + 4] & 0x0F) | (s[g - 4] >> 6) << 4;
        *m = (s[g + 4] >> 4) | (s[g] >> 6) << 4;
    }
}

/* ================================================================ Q4_K (docs/quantization.md §2)
 *
 *   byte  0      2      4             16                               144
 *         +------+------+-------------+--------------------------------+
 *         | d    | dmin | scales[12]  | qs[128]                        |
 *         +------+------+-------------+--------------------------------+
 *   chunk c (64 elements) uses qs[32c .. 32c+31]: low nibbles = sub-block 2c,
 *   high nibbles = sub-block 2c+1.      y = (d·sc_g)·q - (dmin·m_g)
 */
static void deq_q4_k(const uint8_t *b, float *y)
{
    float d = rdf16(b), dmin = rdf16(b + 2);
    const uint8_t *qs = b + 16;
    for (int i = 0; i < 256; i++) {
        int g = i / 32, c = i / 64, l = i % 32, sc, m;
        mf_k4_scale_min(b + 4, g, &sc, &m);
        int q = g % 2 ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
        float a = d * (float)sc, bm = dmin * (float)m;
        float aq = a * (float)q;
        y[i] = aq - bm;
    }
}

/* ================================================================ Q5_K (docs/quantization.md §2)
 *
 *   byte  0      2      4             16          48                   176
 *         +------+------+-------------+-----------+--------------------+
 *         | d    | dmin | scales[12]  | qh[32]    | qs[128] (as Q4_K)  |
 *         +------+------+-------------+-----------+--------------------+
 *   q = nibble | 16·((qh[l] >> g) & 1), 0..31      y = (d·sc_g)·q - (dmin·m_g)
 */
static void deq_q5_k(const uint8_t *b, float *y)
{
    float d = rdf16(b), dmin = rdf16(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int i = 0; i < 256; i++) {
        int g = i / 32, c = i / 64, l = i % 32, sc, m;
        mf_k4_scale_min(b + 4, g, &sc, &m);
        int q = g % 2 ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 0xF;
        q |= ((qh[l] >> g) & 1) << 4;
        float a = d * (float)sc, bm = dmin * (float)m;
        float aq = a * (float)q;
        y[i] = aq - bm;
    }
}

/* ================================================================ Q2_K (docs/quantization.md §2)
 *
 *   byte  0             16                                  80     82     84
 *         +-------------+-----------------------------------+------+------+
 *         | scales[16]  | qs[64]                            | d    | dmin |
 *         +-------------+-----------------------------------+------+------+
 *   scales[k]: low nibble = scale, high nibble = min of sub-block k (16 elements).
 *   element i: h = i/128, k2 = (i%128)/32, l = i%32: q = (qs[32h + l] >> 2·k2) & 3
 *   y = (d·sc)·q - (dmin·m)
 */
static void deq_q2_k(const uint8_t *b, float *y)
{
    const uint8_t *sc = b, *qs = b + 16;
    float d = rdf16(b + 80), dmin = rdf16(b + 82);
    for (int i = 0; i < 256; i++) {
        int h = i / 128, k2 = (i % 128) / 32, l = i % 32;
        int q = (qs[32 * h + l] >> (2 * k2)) & 3;
        float a = d * (float)(sc[i / 16] & 0xF), bm = dmin * (float)(sc[i / 16] >> 4);
        float aq = a * (float)q;
        y[i] = aq - bm;
    }
}

/* ================================================================ Q3_K (docs/quantization.md §2)
 *
 *   byte  0            32                     96            108    110
 *         +------------+----------------------+-------------+------+
 *         | hmask[32]  | qs[64] (as Q2_K)     | scales[12]  | d    |
 *         +------------+----------------------+-------------+------+
 *   scale k (6 bits, minus 32): low 4 bits in s[k] (k < 8) or s[k-8] >> 4,
 *   high 2 bits at (s[8 + k%4] >> 2·(k/4)) & 3.
 *   q = low2 - (hbit ? 0 : 4), hbit = (hmask[l] >> (4h + k2)) & 1;   y = (d·sc)·q
 */
static int q3k_scale(const uint8_t *s, int k)
{
    int low4 = k < 8 ? s[k] & 0xF : s[k - 8] >> 4;
    int high2 = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
    return (low4 | high2 << 4) - 32;
}

static void deq_q3_k(const uint8_t *b, float *y)
{
    const uint8_t *hm = b, *qs = b + 32, *s = b + 96;
    float d = rdf16(b + 108);
    for (int i = 0; i < 256; i++) {
        int h = i / 128, k2 = (i % 128) / 32, l = i % 32;
        int low2 = (qs[32 * h + l] >> (2 * k2)) & 3;
        int hbit = (hm[l] >> (4 * h + k2)) & 1;
        int q = low2 - (hbit ? 0 : 4);
        float a = d * (float)q3k_scale(s, i / 16);
        y[i] = a * (float)q;
    }
}

/* ================================================================ Q6_K (docs/quantization.md §2)
 *
 *   byte  0                  128           192           208    210
 *         +------------------+-------------+-------------+------+
 *         | ql[128]          | qh[64]      | scales i8[16]| d    |
 *         +------------------+-------------+-------------+------+
 *   element i: h = i/128, k2 = (i%128)/32, l = i%32:
 *   low4 = ql[64h + 32·(k2&1) + l] (low nibble if k2 < 2, else high nibble)
 *   high2 = (qh[32h + l] >> 2·k2) & 3;   q = (low4 | high2 << 4) - 32
 *   y = (d·sc)·q
 */
static void deq_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = rdf16(b + 208);
    for (int i = 0; i < 256; i++) {
        int h = i / 128, k2 = (i % 128) / 32, l = i % 32;
        int v = ql[64 * h + 32 * (k2 & 1) + l];
        int low4 = k2 < 2 ? v & 0xF : v >> 4;
        int high2 = (qh[32 * h + l] >> (2 * k2)) & 3;
        int q = (low4 | high2 << 4) - 32;
        float a = d * (float)sc[i / 16];
        y[i] = a * (float)q;
    }
}

/* ================================================================ MXFP4 (docs/quantization.md §2)
 *
 *   byte  0    1                                     17
 *         +----+-------------------------------------+
 *         | e  | qs[16]: lo nibble = y[j], hi = y[j+16] |
 *         +----+-------------------------------------+
 *   code c: bit 3 sign, bits 2-1 exponent (bias 1), bit 0 mantissa (E2M1)
 *   y = E2M1(c) · 2^(e-127) = (2·E2M1(c)) · 2^(e-128)
 *
 * The doubled table with the halved scale is llama.cpp's form (docs/quantization.md §2): it stays
 * exact for e = 255, where 2^(e-127) is not a float. Code 8 is -0 (E2M1), which llama.cpp's
 * integer table writes as +0; the two compare equal.
 */
const float mf_e2m1_x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, -0.0f, -1, -2, -3, -4, -6, -8, -12};

static void deq_mxfp4(const uint8_t *b, float *y)
{
    float d = mf_e8m0_half(b[0]);
    const uint8_t *qs = b + 1;
    for (int j = 0; j < 16; j++) {
        y[j] = mf_e2m1_x2[qs[j] & 0xF] * d;
        y[j + 16] = mf_e2m1_x2[qs[j] >> 4] * d;
    }
}

/* ================================================================ rows */

typedef void (*deq_fn)(const uint8_t *, float *);

static deq_fn block_deq(uint32_t type)
{
    switch (type) {
    case MF_TYPE_Q4_0: return deq_q4_0;
    case MF_TYPE_Q4_1: return deq_q4_1;
    case MF_TYPE_Q5_0: return deq_q5_0;
    case MF_TYPE_Q5_1: return deq_q5_1;
    case MF_TYPE_Q8_0: return deq_q8_0;
    case MF_TYPE_Q2_K: return deq_q2_k;
    case MF_TYPE_Q3_K: return deq_q3_k;
    case MF_TYPE_Q4_K: return deq_q4_k;
    case MF_TYPE_Q5_K: return deq_q5_k;
    case MF_TYPE_Q6_K: return deq_q6_k;
    case MF_TYPE_MXFP4: return deq_mxfp4;
    default: return NULL;
    }
}

void mf_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    switch (type) {
    case MF_TYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case MF_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = mf_fp16_to_f32(rd16(p + 2 * i));
        return;
    case MF_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = mf_bf16_to_f32(rd16(p + 2 * i));
        return;
    }
    deq_fn deq = block_deq(type);
    if (!deq) {
        memset(dst, 0, (size_t)n * sizeof *dst); /* unsupported: documented as zeros */
        return;
    }
    const mf_type_info *t = mf_type_get(type);
    for (int64_t b = 0; b < n / t->blck; b++) deq(p + b * t->size, dst + b * t->blck);
}

double mf_dot_ref(uint32_t type, const void *row, const float *x, int64_t n)
{
    const mf_type_info *t = mf_type_get(type);
    if (!t || !mf_type_supported(type)) return 0.0;
    /* dequantize one block (or, for the 1-element types, 256 elements) at a time */
    int64_t chunk = t->blck > 1 ? t->blck : 256;
    float y[256];
    double sum = 0;
    for (int64_t i = 0; i < n; i += chunk) {
        int64_t m = n - i < chunk ? n - i : chunk;
        mf_dequantize_row(type, (const uint8_t *)row + (size_t)(i / t->blck) * t->size, y, m);
        for (int64_t j = 0; j < m; j++) sum += (double)y[j] * x[i + j];
    }
    return sum;
}
