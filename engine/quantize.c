/* quantize.c — the quantizers: floats -> block bytes for every type minfer computes
 * (contract: quantize.h). The block layouts are drawn above their dequantizers in quant.c
 * and explained in docs/quantization.md §2-3; each quantizer here is the inverse of one.
 *
 * Round to nearest for the 32-element types (the scale from the largest magnitude), a
 * small search over candidate scales for the K-quants (least squared error per sub-block,
 * then the sub-block scales themselves quantized to 4/6/8 bits), the nearest E2M1 value
 * for MXFP4. Every integer code is computed from the scales *as stored* (after rounding
 * them to fp16 and to their 4/6/8-bit codes), so each element is the nearest value the
 * block can represent, unless it lies outside the block's range (then it is clamped).
 */
#include "quantize.h"
#include "quant.h"
#include "quant_impl.h"

#include <math.h>
#include <string.h>

/* ================================================================ helpers */

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* A scale on its way to fp16: saturate at the largest finite half (65504) so that a block
 * of huge values gives clamped codes rather than an inf scale (and NaN products). */
static uint16_t fp16_sat(double v)
{
    if (v > 65504.0) v = 65504.0;
    if (v < -65504.0) v = -65504.0;
    return mf_f32_to_fp16((float)v);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Nearest integer code for x / s, clamped to lo..hi (lo > -1000); ties round up. s == 0
 * gives code 0 (all-zero blocks). Computed in double and clamped before the conversion,
 * so a huge x over a tiny s saturates instead of overflowing an int; floor(v + 1/2) is
 * written as a truncation of a positive number to stay clear of a libm call in this, the
 * quantizers' innermost operation. */
static int code_of(double x, double s, int lo, int hi)
{
    if (s == 0.0) return clampi(0, lo, hi);
    double v = x / s;
    if (!(v >= lo - 0.5)) return lo; /* also NaN */
    if (v >= hi + 0.5) return hi;
    return (int)(v + 1024.5) - 1024;
}

/* The signed value of largest magnitude (the first one on ties). */
static float max_signed(const float *x, int n)
{
    float m = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(m)) m = x[i];
    return m;
}

/* ================================================================ scale search
 *
 * Sub-block model y = s·q - m (q in 0..nmax, s >= 0, m >= 0: the K-quant mins are
 * subtracted and stored unsigned) or y = s·q (q in qlo..qhi, s signed). For a fixed set of
 * codes q the best (s, m) is a least-squares line fit; the codes depend on (s, m). So: try
 * four candidate scales around the obvious one, range / (nmax + k/8) for k = -1..2, round
 * the codes for each, refit (s, m) to those codes, and keep the pair with the least squared
 * error. (Thirteen candidates, k = -4..8, lowered the RMS error on Gaussian data by under 1%
 * at three times the cost; the refit is what matters.)
 *
 * Importance weights. Every error and every fit is weighted: the search minimizes
 * Σ_i w_i (x_i - y_i)², where w_i says how much element i matters (minfer imatrix: the mean
 * square of the activation it multiplies, docs/quantize.md §3). Without an importance
 * matrix w = ONES, and since multiplying by 1.0f is exact the result is bit for bit the
 * unweighted search. */

/* The weights of a block without importance information (sub-blocks have <= 32 values). */
static const float ONES[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                               1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

typedef struct fit {
    double s, m, err;
} fit;

/* Codes of x on the line y = s·q - m, rounded to nearest and clamped to qlo..qhi. The
 * search only ranks candidates, so it multiplies by 1/s in float (fast, vectorizable); the
 * stored codes are computed exactly by code_of once the scales are final. */
static void search_codes(const float *x, int n, float s, float m, float qlo, float qhi, float *q)
{
    float inv = s != 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) {
        /* clamped in the max/min pattern compilers turn into vmaxps/vminps (fmaxf and fminf
         * would be libm calls: their NaN rules differ) */
        float v = (x[i] + m) * inv;
        v = qlo > v ? qlo : v;
        v = qhi < v ? qhi : v;
        q[i] = floorf(v + 0.5f);
    }
}

/* Weighted squared error of the candidate (s, m) with its codes q. */
static double line_err(const float *x, const float *w, const float *q, int n, float s, float m)
{
    float e = 0;
    for (int i = 0; i < n; i++) {
        float d = x[i] - (s * q[i] - m);
        e += w[i] * d * d;
    }
    return e;
}

/* Asymmetric sub-block: returns s >= 0 and m with x ≈ s·q - m, q in 0..nmax. K-quants
 * (free_min = 0) store m unsigned: m >= 0, so the fitted line passes at or below zero.
 * Q4_1/Q5_1 (free_min = 1) store the offset as a signed fp16: any m. */
static fit fit_scale_min(const float *x, const float *w, int n, int nmax, int free_min)
{
    float lo = free_min ? x[0] : 0, hi = x[0], q[32];
    for (int i = 0; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    search_codes(x, n, 0, -lo, 0, (float)nmax, q);
    fit best = {0, -lo, line_err(x, w, q, n, 0, -lo)};
    if (hi <= lo) return best;
    for (int k = -1; k <= 2; k++) {
        float s = (hi - lo) / (nmax + 0.125f * k), m = -lo;
        search_codes(x, n, s, m, 0, (float)nmax, q);
        double e = line_err(x, w, q, n, s, m);
        if (e < best.err) best = (fit){s, m, e};
        /* weighted least-squares refit of x ≈ s·q + c to these codes (c = -m) */
        float sw = 0, sq = 0, sx = 0, sqq = 0, sqx = 0;
        for (int i = 0; i < n; i++)
            sw += w[i], sq += w[i] * q[i], sx += w[i] * x[i], sqq += w[i] * q[i] * q[i], sqx += w[i] * q[i] * x[i];
        float den = sw * sqq - sq * sq;
        if (den <= 0) continue;
        float s2 = (sw * sqx - sq * sx) / den, c = (sx - s2 * sq) / sw;
        if (c > 0 && !free_min) { /* a positive offset is not representable: fit through the origin */
            c = 0;
            s2 = sqx / sqq;
        }
        if (!(s2 > 0)) continue;
        search_codes(x, n, s2, -c, 0, (float)nmax, q);
        e = line_err(x, w, q, n, s2, -c);
        if (e < best.err) best = (fit){s2, -c, e};
    }
    return best;
}

/* Symmetric sub-block: returns a signed s with x ≈ s·q, q in qlo..qhi (qlo = -qhi - 1). */
static fit fit_scale_sym(const float *x, const float *w, int n, int qlo, int qhi)
{
    float mx = max_signed(x, n), q[32];
    fit best = {0, 0, line_err(x, w, (const float[32]){0}, n, 0, 0)};
    if (mx == 0) return best;
    for (int k = -1; k <= 2; k++) {
        /* the largest magnitude maps near the long end qlo (as Q4_0 does) */
        float s = mx / (qlo - 0.125f * k);
        search_codes(x, n, s, 0, (float)qlo, (float)qhi, q);
        double e = line_err(x, w, q, n, s, 0);
        if (e < best.err) best = (fit){s, 0, e};
        float sqq = 0, sqx = 0;
        for (int i = 0; i < n; i++) sqq += w[i] * q[i] * q[i], sqx += w[i] * q[i] * x[i];
        if (sqq == 0) continue;
        search_codes(x, n, sqx / sqq, 0, (float)qlo, (float)qhi, q);
        e = line_err(x, w, q, n, sqx / sqq, 0);
        if (e < best.err) best = (fit){sqx / sqq, 0, e};
    }
    return best;
}

/* Quantize sub-block scales v[0..n) >= 0 to codes 0..cmax under one fp16 super-scale. */
static uint16_t quant_scales_u(const double *v, int n, int cmax, int *code)
{
    double mx = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > mx) mx = v[i];
    uint16_t dh = fp16_sat(mx / cmax);
    float d = mf_fp16_to_f32(dh);
    for (int i = 0; i < n; i++) code[i] = code_of(v[i], d, 0, cmax);
    return dh;
}

/* Signed version: codes cmin..cmax (cmin = -cmax - 1), largest magnitude -> cmin. */
static uint16_t quant_scales_s(const double *v, int n, int cmin, int cmax, int *code)
{
    double mx = 0;
    for (int i = 0; i < n; i++)
        if (fabs(v[i]) > fabs(mx)) mx = v[i];
    uint16_t dh = fp16_sat(mx / cmin);
    float d = mf_fp16_to_f32(dh);
    for (int i = 0; i < n; i++) code[i] = code_of(v[i], d, cmin, cmax);
    return dh;
}

/* Once the sub-block scales are rounded to their 4/6/8-bit codes, the rounded scale may
 * clamp the top values of a sub-block (rounded down) or waste a level (rounded up): try the
 * neighbouring scale codes (and min codes, when mc is given) and keep the pair whose
 * requantized sub-block has the least squared error. Values as the dequantizer computes
 * them: a = d·sc, c = dmin·m, y = a·q - c. */
static void refine_codes(const float *x, const float *w, int n, float d, float dmin, int qlo, int qhi, int cmin,
                         int cmax, int *sc, int *mc)
{
    int s0 = *sc, m0 = mc ? *mc : 0, best_s = s0, best_m = m0;
    double best = -1;
    float q[32];
    for (int s = s0 - 1; s <= s0 + 1; s++) {
        for (int m = m0 - 1; m <= m0 + 1; m++) {
            if (s < cmin || s > cmax || (mc ? m < 0 || m > cmax : m != 0)) continue;
            float a = d * (float)s, c = dmin * (float)m;
            search_codes(x, n, a, c, (float)qlo, (float)qhi, q);
            double e = line_err(x, w, q, n, a, c);
            if (best < 0 || e < best) best = e, best_s = s, best_m = m;
        }
    }
    *sc = best_s;
    if (mc) *mc = best_m;
}


/* ================================================================ Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
 *
 * Without importance weights (w == NULL) each block is the deterministic result its format
 * defines: the scale from the block's extreme, every code the nearest (tests/test_quant.c
 * checks hand-computed blocks). With weights, a scale search (above) proposes another scale;
 * it is kept only if its weighted error, with the scale as stored (fp16), is smaller. */

/* Weighted squared error of a symmetric block y = q·d, q in lo..hi, as the dequantizer
 * computes y. */
static double sym_err(const float *x, const float *w, int n, float d, int lo, int hi)
{
    double e = 0;
    for (int i = 0; i < n; i++) {
        float y = (float)code_of(x[i], d, lo, hi) * d;
        e += w[i] * ((double)x[i] - y) * ((double)x[i] - y);
    }
    return e;
}

/* The fp16 scale of a symmetric 32-block with codes lo..hi (lo = -hi - 1): max / lo, where
 * max is the signed value of largest magnitude, so it lands on the long end of the range
 * (its value lo·d = max, up to the fp16 rounding of d). */
static uint16_t sym_scale(const float *x, const float *w, int lo, int hi)
{
    uint16_t dh = fp16_sat(max_signed(x, 32) / (double)lo);
    if (w) {
        uint16_t alt = fp16_sat(fit_scale_sym(x, w, 32, lo, hi).s);
        if (sym_err(x, w, 32, mf_fp16_to_f32(alt), lo, hi) < sym_err(x, w, 32, mf_fp16_to_f32(dh), lo, hi)) dh = alt;
    }
    return dh;
}

static void quant_q4_0(const float *x, const float *w, uint8_t *b)
{
    uint16_t dh = sym_scale(x, w, -8, 7);
    float d = mf_fp16_to_f32(dh);
    wr16(b, dh);
    for (int j = 0; j < 16; j++) {
        int lo = code_of(x[j], d, -8, 7) + 8, hi = code_of(x[j + 16], d, -8, 7) + 8;
        b[2 + j] = (uint8_t)(lo | hi << 4);
    }
}

/* Weighted squared error of an asymmetric block y = q·d + m, q in 0..nmax. */
static double aff_err(const float *x, const float *w, float d, float m, int nmax)
{
    double e = 0;
    for (int i = 0; i < 32; i++) {
        float qd = (float)code_of((double)x[i] - m, d, 0, nmax) * d, y = qd + m;
        e += w[i] * ((double)x[i] - y) * ((double)x[i] - y);
    }
    return e;
}

/* Scale and offset of an asymmetric 32-block as fp16: m = min, d = (max - min) / nmax
 * (with weights: or the search's pair, whichever has the smaller weighted error). */
static void aff_scale(const float *x, const float *w, int nmax, uint8_t *db, uint8_t *mb, float *d, float *m)
{
    float lo = x[0], hi = x[0];
    for (int i = 1; i < 32; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    uint16_t dh = fp16_sat(((double)hi - lo) / nmax), mh = fp16_sat(lo);
    if (w) {
        fit f = fit_scale_min(x, w, 32, nmax, 1);
        uint16_t dh2 = fp16_sat(f.s), mh2 = fp16_sat(-f.m);
        if (aff_err(x, w, mf_fp16_to_f32(dh2), mf_fp16_to_f32(mh2), nmax) <
            aff_err(x, w, mf_fp16_to_f32(dh), mf_fp16_to_f32(mh), nmax))
            dh = dh2, mh = mh2;
    }
    wr16(db, dh);
    wr16(mb, mh);
    *d = mf_fp16_to_f32(dh);
    *m = mf_fp16_to_f32(mh);
}

static void quant_q4_1(const float *x, const float *w, uint8_t *b)
{
    float d, m;
    aff_scale(x, w, 15, b, b + 2, &d, &m);
    for (int j = 0; j < 16; j++) {
        int lo = code_of((double)x[j] - m, d, 0, 15), hi = code_of((double)x[j + 16] - m, d, 0, 15);
        b[4 + j] = (uint8_t)(lo | hi << 4);
    }
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Store 32 five-bit codes: nibbles into qs (Q4_0 order), fifth bits into h. */
static void pack5(const int q[32], uint8_t *qh, uint8_t *qs)
{
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0xF) | (q[j + 16] & 0xF) << 4);
        h |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    wr32(qh, h);
}

static void quant_q5_0(const float *x, const float *w, uint8_t *b)
{
    uint16_t dh = sym_scale(x, w, -16, 15);
    float d = mf_fp16_to_f32(dh);
    wr16(b, dh);
    int q[32];
    for (int i = 0; i < 32; i++) q[i] = code_of(x[i], d, -16, 15) + 16;
    pack5(q, b + 2, b + 6);
}

static void quant_q5_1(const float *x, const float *w, uint8_t *b)
{
    float d, m;
    aff_scale(x, w, 31, b, b + 2, &d, &m);
    int q[32];
    for (int i = 0; i < 32; i++) q[i] = code_of((double)x[i] - m, d, 0, 31);
    pack5(q, b + 4, b + 8);
}

/* Q8_0 ignores importance weights: with 255 levels its rounding error (~0.5% RMS) leaves
 * a scale search nothing measurable to gain. */
static void quant_q8_0(const float *x, const float *w, uint8_t *b)
{
    (void)w;
    uint16_t dh = fp16_sat(fabsf(max_signed(x, 32)) / 127.0);
    float d = mf_fp16_to_f32(dh);
    wr16(b, dh);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)code_of(x[j], d, -127, 127);
}

/* ================================================================ Q4_K, Q5_K, Q2_K, Q3_K, Q6_K */

/* The 6-bit scales and mins of Q4_K/Q5_K in their 12 bytes: the inverse of mf_k4_scale_min
 * (quant.c). */
static void pack_k4_scales(const int sc[8], const int m[8], uint8_t *s)
{
    for (int g = 0; g < 4; g++) {
        s[g] = (uint8_t)((sc[g] & 63) | (sc[g + 4] >> 4) << 6);
        s[g + 4] = (uint8_t)((m[g] & 63) | (m[g + 4] >> 4) << 6);
        s[g + 8] = (uint8_t)((sc[g + 4] & 0xF) | (m[g + 4] & 0xF) << 4);
    }
}

/* Shared by Q4_K and Q5_K: fit 8 sub-blocks of 32, quantize their scales and mins to 6
 * bits, store d and dmin at b[0..3] and the scales at b[4..15], return the codes. */
static void quant_k4_common(const float *x, const float *w, uint8_t *b, int nmax, int q[256])
{
    double s[8], m[8];
    for (int g = 0; g < 8; g++) {
        fit f = fit_scale_min(x + 32 * g, w ? w + 32 * g : ONES, 32, nmax, 0);
        s[g] = f.s;
        m[g] = f.m;
    }
    int sc[8], mc[8];
    uint16_t dh = quant_scales_u(s, 8, 63, sc), mh = quant_scales_u(m, 8, 63, mc);
    wr16(b, dh);
    wr16(b + 2, mh);
    float d = mf_fp16_to_f32(dh), dmin = mf_fp16_to_f32(mh);
    for (int g = 0; g < 8; g++)
        refine_codes(x + 32 * g, w ? w + 32 * g : ONES, 32, d, dmin, 0, nmax, 0, 63, &sc[g], &mc[g]);
    pack_k4_scales(sc, mc, b + 4);
    for (int g = 0; g < 8; g++) {
        float a = d * (float)sc[g], c = dmin * (float)mc[g]; /* as the dequantizer: a·q - c */
        for (int l = 0; l < 32; l++) q[32 * g + l] = code_of((double)x[32 * g + l] + c, a, 0, nmax);
    }
}

static void quant_q4_k(const float *x, const float *w, uint8_t *b)
{
    int q[256];
    quant_k4_common(x, w, b, 15, q);
    uint8_t *qs = b + 16;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) qs[32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
}

static void quant_q5_k(const float *x, const float *w, uint8_t *b)
{
    int q[256];
    quant_k4_common(x, w, b, 31, q);
    uint8_t *qh = b + 16, *qs = b + 48;
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 0xF) | (q[64 * c + 32 + l] & 0xF) << 4);
    for (int i = 0; i < 256; i++) qh[i % 32] |= (uint8_t)((q[i] >> 4) << (i / 32));
}

static void quant_q2_k(const float *x, const float *w, uint8_t *b)
{
    double s[16], m[16];
    for (int k = 0; k < 16; k++) {
        fit f = fit_scale_min(x + 16 * k, w ? w + 16 * k : ONES, 16, 3, 0);
        s[k] = f.s;
        m[k] = f.m;
    }
    int sc[16], mc[16];
    uint16_t dh = quant_scales_u(s, 16, 15, sc), mh = quant_scales_u(m, 16, 15, mc);
    wr16(b + 80, dh);
    wr16(b + 82, mh);
    float d = mf_fp16_to_f32(dh), dmin = mf_fp16_to_f32(mh);
    for (int k = 0; k < 16; k++)
        refine_codes(x + 16 * k, w ? w + 16 * k : ONES, 16, d, dmin, 0, 3, 0, 15, &sc[k], &mc[k]);
    uint8_t *qs = b + 16;
    memset(qs, 0, 64);
    for (int k = 0; k < 16; k++) b[k] = (uint8_t)(sc[k] | mc[k] << 4);
    for (int i = 0; i < 256; i++) {
        int k = i / 16, h = i / 128, k2 = (i % 128) / 32, l = i % 32;
        float a = d * (float)sc[k], c = dmin * (float)mc[k];
        int q = code_of((double)x[i] + c, a, 0, 3);
        qs[32 * h + l] |= (uint8_t)(q << (2 * k2));
    }
}

static void quant_q3_k(const float *x, const float *w, uint8_t *b)
{
    double s[16];
    for (int k = 0; k < 16; k++) s[k] = fit_scale_sym(x + 16 * k, w ? w + 16 * k : ONES, 16, -4, 3).s;
    int sc[16];
    uint16_t dh = quant_scales_s(s, 16, -32, 31, sc);
    wr16(b + 108, dh);
    float d = mf_fp16_to_f32(dh);
    for (int k = 0; k < 16; k++)
        refine_codes(x + 16 * k, w ? w + 16 * k : ONES, 16, d, 0, -4, 3, -32, 31, &sc[k], NULL);
    uint8_t *hm = b, *qs = b + 32, *sb = b + 96;
    memset(b, 0, 108);
    for (int k = 0; k < 16; k++) {
        int u = sc[k] + 32; /* stored unsigned 0..63 */
        if (k < 8) sb[k] |= (uint8_t)(u & 0xF);
        else sb[k - 8] |= (uint8_t)((u & 0xF) << 4);
        sb[8 + k % 4] |= (uint8_t)((u >> 4) << (2 * (k / 4)));
    }
    for (int i = 0; i < 256; i++) {
        int h = i / 128, k2 = (i % 128) / 32, l = i % 32;
        float a = d * (float)sc[i / 16];
        int q = code_of(x[i], a, -4, 3) + 4; /* 0..7: bit 2 is the hmask bit */
        qs[32 * h + l] |= (uint8_t)((q & 3) << (2 * k2));
        hm[l] |= (uint8_t)((q >> 2) << (4 * h + k2));
    }
}

static void quant_q6_k(const float *x, const float *w, uint8_t *b)
{
    double s[16];
    for (int k = 0; k < 16; k++) s[k] = fit_scale_sym(x + 16 * k, w ? w + 16 * k : ONES, 16, -32, 31).s;
    int sc[16];
    uint16_t dh = quant_scales_s(s, 16, -128, 127, sc);
    wr16(b + 208, dh);
    float d = mf_fp16_to_f32(dh);
    for (int k = 0; k < 16; k++)
        refine_codes(x + 16 * k, w ? w + 16 * k : ONES, 16, d, 0, -32, 31, -128, 127, &sc[k], NULL);
    uint8_t *ql = b, *qh = b + 128;
    memset(b, 0, 192);
    for (int k = 0; k < 16; k++) b[192 + k] = (uint8_t)(int8_t)sc[k];
    for (int i = 0; i < 256; i++) {
        int h = i / 128, k2 = (i % 128) / 32, l = i % 32;
        float a = d * (float)sc[i / 16];
        int q = code_of(x[i], a, -32, 31) + 32;
        ql[64 * h + 32 * (k2 & 1) + l] |= (uint8_t)((q & 0xF) << (k2 < 2 ? 0 : 4));
        qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k2));
    }
}

/* ================================================================ MXFP4 */

/* Nearest E2M1 code for v (in units of the doubled table); ties go to the smaller
 * magnitude, zero is code 0. */
static int e2m1_code(double v)
{
    int best = 0;
    for (int c = 1; c < 8; c++)
        if (fabs(fabs(v) - mf_e2m1_x2[c]) < fabs(fabs(v) - mf_e2m1_x2[best])) best = c;
    return best && v < 0 ? best | 8 : best;
}

/* Weighted squared error of an MXFP4 block with scale byte e. */
static double mxfp4_err(const float *x, const float *w, int e)
{
    double d = mf_e8m0_half((uint8_t)e), err = 0;
    for (int j = 0; j < 32; j++) {
        double r = x[j] - mf_e2m1_x2[e2m1_code(x[j] / d)] * d;
        err += w[j] * r * r;
    }
    return err;
}

static void quant_mxfp4(const float *x, const float *w, uint8_t *b)
{
    /* e = floor(log2(max|x|)) - 2 + 127 (docs/quantization.md §3): max|x| / 2^(e-127) lies
     * in [4, 8), near the top of the E2M1 range (6). frexp gives floor(log2) exactly. */
    float amax = fabsf(max_signed(x, 32));
    int e = 0;
    if (amax > 0) {
        int ex;
        frexpf(amax, &ex); /* amax = f · 2^ex, f in [0.5, 1) */
        e = clampi(ex - 1 - 2 + 127, 0, 254);
    }
    /* with weights, the neighbouring powers of two compete: one step up clips nothing, one
     * step down resolves the small values twice as finely */
    if (w && amax > 0) {
        int best = e;
        double best_err = mxfp4_err(x, w, e);
        for (int c = e - 1; c <= e + 1; c += 2) {
            if (c < 0 || c > 254) continue;
            double err = mxfp4_err(x, w, c);
            if (err < best_err) best = c, best_err = err;
        }
        e = best;
    }
    b[0] = (uint8_t)e;
    double d = mf_e8m0_half((uint8_t)e);
    for (int j = 0; j < 16; j++) b[1 + j] = (uint8_t)(e2m1_code(x[j] / d) | e2m1_code(x[j + 16] / d) << 4);
}

/* ================================================================ rows */

typedef void (*quant_fn)(const float *, const float *, uint8_t *);

static quant_fn block_quant(uint32_t type)
{
    switch (type) {
    case MF_TYPE_Q4_0: return quant_q4_0;
    case MF_TYPE_Q4_1: return quant_q4_1;
    case MF_TYPE_Q5_0: return quant_q5_0;
    case MF_TYPE_Q5_1: return quant_q5_1;
    case MF_TYPE_Q8_0: return quant_q8_0;
    case MF_TYPE_Q2_K: return quant_q2_k;
    case MF_TYPE_Q3_K: return quant_q3_k;
    case MF_TYPE_Q4_K: return quant_q4_k;
    case MF_TYPE_Q5_K: return quant_q5_k;
    case MF_TYPE_Q6_K: return quant_q6_k;
    case MF_TYPE_MXFP4: return quant_mxfp4;
    default: return NULL;
    }
}

size_t mf_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    return mf_quantize_row_imp(type, src, dst, n, NULL);
}

size_t mf_quantize_row_imp(uint32_t type, const float *src, void *dst, int64_t n, const float *imp)
{
    uint8_t *p = dst;
    size_t bytes = mf_type_row_bytes(type, n);
    switch (type) {
    case MF_TYPE_F32: memcpy(dst, src, bytes); return bytes;
    case MF_TYPE_F16:
        for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, mf_f32_to_fp16(src[i]));
        return bytes;
    case MF_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) wr16(p + 2 * i, mf_f32_to_bf16(src[i]));
        return bytes;
    }
    quant_fn qnt = block_quant(type);
    if (bytes == 0 || !qnt) return 0;
    const mf_type_info *t = mf_type_get(type);
    for (int64_t b = 0; b < n / t->blck; b++) qnt(src + b * t->blck, imp ? imp + b * t->blck : NULL, p + b * t->size);
    return bytes;
}
