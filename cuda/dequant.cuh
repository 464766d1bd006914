/* dequant.cuh — every tensor type minfer supports, dequantized 32 elements at a time, on the
 * GPU and (same code) on the host.
 *
 * Unit of work: a "chunk" = 32 consecutive elements of a row. A 32-element type (Q4_0 …
 * Q8_0, MXFP4) has one block per chunk; a K-quant super-block of 256 elements holds 8
 * chunks. mf_dq32<T>(row, ch, y) writes elements [32·ch, 32·ch + 32) of a row into y[0..31].
 * The GEMV, the embedding lookup and the F16 tile dequantizer of the prompt path all call
 * it, so one function per type is what has to agree with engine/quant.c's
 * mf_dequantize_row — checked on the host by tests/test_cuda_host.c, bit for bit.
 *
 * Formulas and arithmetic order: docs/quantization.md §2 (order: Q4_K/Q5_K
 * a = d·sc, b = dmin·m, then a·q − b; Q2_K likewise; Q3_K/Q6_K (d·sc)·q; legacy q·d (+ m)),
 * docs/quantization.md §2 (doubled table × 2^(e−128), code 8 gives −0). mf_mul/mf_add keep nvcc from
 * fusing these into FMAs, so device and host round identically.
 *
 * Alignment: weights are uploaded to 256-byte aligned addresses and a row is a whole number
 * of blocks, so a block starts at a multiple of gcd(block bytes, 256): Q4_0, Q5_0, Q8_0, Q3_K,
 * Q6_K 2 bytes; Q4_1, Q2_K 4; Q5_1 8; Q4_K, Q5_K 16; MXFP4 (17 bytes) 1. Each type loads
 * with the widest words its alignment allows (mf_ld_words<ALIGN>).
 */
#ifndef MF_CUDA_DEQUANT_CUH
#define MF_CUDA_DEQUANT_CUH

#include <type_traits>

#include "common.cuh"
#include "types.h"

/* ---------------------------------------------------------------- float types, per element */

template <int T> MF_HD float mf_dq_elem(const uint8_t *row, int64_t i)
{
    if constexpr (T == MF_TYPE_F32) return mf_bits_f32(mf_ld_u32(row + 4 * i));
    else if constexpr (T == MF_TYPE_F16) return mf_h2f(mf_ld_u16(row + 2 * i));
    else return mf_bf2f(mf_ld_u16(row + 2 * i));
}

template <int T> constexpr bool mf_is_float_type = T == MF_TYPE_F32 || T == MF_TYPE_F16 || T == MF_TYPE_BF16;

/* ---------------------------------------------------------------- 32-element blocks */

/* Q4_0, 18 bytes: d f16 | qs[16]; y[j] = (lo(qs[j]) − 8)·d, y[j+16] = (hi(qs[j]) − 8)·d */
MF_HD void mf_dq_q4_0(const uint8_t *b, float *y)
{
    float d = mf_h2f(mf_ld_u16(b));
    uint32_t w[4];
    mf_ld_words<2>(b + 2, w, 4);
    for (int j = 0; j < 16; j++) {
        uint32_t q = mf_byte(w, j);
        y[j] = mf_mul((float)((int)(q & 15) - 8), d);
        y[j + 16] = mf_mul((float)((int)(q >> 4) - 8), d);
    }
}

/* Q4_1, 20 bytes: d f16 | m f16 | qs[16]; y = q·d + m */
MF_HD void mf_dq_q4_1(const uint8_t *b, float *y)
{
    uint32_t dm = mf_ld_u32(b);
    float d = mf_h2f(dm & 0xFFFF), m = mf_h2f(dm >> 16);
    uint32_t w[4];
    mf_ld_words<4>(b + 4, w, 4);
    for (int j = 0; j < 16; j++) {
        uint32_t q = mf_byte(w, j);
        y[j] = mf_add(mf_mul((float)(q & 15), d), m);
        y[j + 16] = mf_add(mf_mul((float)(q >> 4), d), m);
    }
}

/* Q5_0, 22 bytes: d f16 | qh[4] | qs[16]; bit k of qh (LE u32) is the fifth bit of element k;
 * y = (q5 − 16)·d */
MF_HD void mf_dq_q5_0(const uint8_t *b, float *y)
{
    float d = mf_h2f(mf_ld_u16(b));
    uint32_t h = mf_ld_u16(b + 2) | (mf_ld_u16(b + 4) << 16);
    uint32_t w[4];
    mf_ld_words<2>(b + 6, w, 4);
    for (int j = 0; j < 16; j++) {
        uint32_t q = mf_byte(w, j);
        uint32_t lo = (q & 15) | (((h >> j) & 1) << 4), hi = (q >> 4) | (((h >> (j + 16)) & 1) << 4);
        y[j] = mf_mul((float)((int)lo - 16), d);
        y[j + 16] = mf_mul((float)((int)hi - 16), d);
    }
}

/* Q5_1, 24 bytes: d f16 | m f16 | qh[4] | qs[16]; y = q5·d + m */
MF_HD void mf_dq_q5_1(const uint8_t *b, float *y)
{
    uint32_t dm = mf_ld_u32(b);
    float d = mf_h2f(dm & 0xFFFF), m = mf_h2f(dm >> 16);
    uint32_t h = mf_ld_u32(b + 4);
    uint32_t w[4];
    mf_ld_words<4>(b + 8, w, 4);
    for (int j = 0; j < 16; j++) {
        uint32_t q = mf_byte(w, j);
        uint32_t lo = (q & 15) | (((h >> j) & 1) << 4), hi = (q >> 4) | (((h >> (j + 16)) & 1) << 4);
        y[j] = mf_add(mf_mul((float)lo, d), m);
        y[j + 16] = mf_add(mf_mul((float)hi, d), m);
    }
}

/* Q8_0, 34 bytes: d f16 | qs i8[32]; y = q·d */
MF_HD void mf_dq_q8_0(const uint8_t *b, float *y)
{
    float d = mf_h2f(mf_ld_u16(b));
    uint32_t w[8];
    mf_ld_words<2>(b + 2, w, 8);
    for (int j = 0; j < 32; j++) y[j] = mf_mul((float)(int8_t)mf_byte(w, j), d);
}

/* MXFP4, 17 bytes: e (E8M0) | qs[16], nibbles as Q4_0; y = kv[code]·2^(e−128) with the
 * doubled E2M1 table kv = 0 1 2 3 4 6 8 12 and the same negated for codes 8..15 — code 8
 * is −0 as E2M1 defines it (docs/quantization.md §2; llama.cpp's integer table gives +0, equal in
 * value), which is what engine/quant.c returns too. */
MF_HD float mf_mxfp4_kv(uint32_t c)
{
    float mag = (float)((0xC8643210u >> (4 * (c & 7))) & 15);
    return (c & 8) ? -mag : mag;
}

MF_HD void mf_dq_mxfp4(const uint8_t *b, float *y)
{
    float d = mf_cu_e8m0_half(b[0]);
    uint32_t w[4];
    mf_ld_words<1>(b + 1, w, 4);
    for (int j = 0; j < 16; j++) {
        uint32_t q = mf_byte(w, j);
        y[j] = mf_mul(mf_mxfp4_kv(q & 15), d);
        y[j + 16] = mf_mul(mf_mxfp4_kv(q >> 4), d);
    }
}

/* ---------------------------------------------------------------- K-quants, chunk c of 8 */

/* Q2_K, 84 bytes: scales[16] | qs[64] | d f16 | dmin f16. Chunk c: elements 32c + l use
 * bit pair k2 = c % 4 of qs[32·(c/4) + l] and scale byte 2c + l/16 (low nibble scale, high
 * nibble min): y = (d·sc)·q − dmin·m. */
MF_HD void mf_dq_q2_k(const uint8_t *blk, int c, float *y)
{
    uint32_t dd = mf_ld_u32(blk + 80);
    float d = mf_h2f(dd & 0xFFFF), dmin = mf_h2f(dd >> 16);
    uint32_t sw = mf_ld_u16(blk + 2 * c);
    uint32_t qw[8];
    mf_ld_words<4>(blk + 16 + 32 * (c >> 2), qw, 8);
    int k2 = c & 3;
    for (int sub = 0; sub < 2; sub++) {
        uint32_t sc = (sw >> (8 * sub)) & 0xFF;
        float a = mf_mul(d, (float)(sc & 15)), bm = mf_mul(dmin, (float)(sc >> 4));
        for (int l = 16 * sub; l < 16 * sub + 16; l++) {
            uint32_t q = (mf_byte(qw, l) >> (2 * k2)) & 3;
            y[l] = mf_sub(mf_mul(a, (float)q), bm);
        }
    }
}

/* Q3_K, 110 bytes: hmask[32] | qs[64] | scales[12] | d f16. 6-bit signed scales, 3-bit
 * values: q = low2 − 4·(hmask bit clear); y = (d·sc)·q. */
MF_HD void mf_dq_q3_k(const uint8_t *blk, int c, float *y)
{
    float d = mf_h2f(mf_ld_u16(blk + 108));
    uint32_t hm[8], qw[8], sw[3];
    int h = c >> 2, k2 = c & 3;
    mf_ld_words<2>(blk, hm, 8);
    mf_ld_words<2>(blk + 32 + 32 * h, qw, 8);
    mf_ld_words<2>(blk + 96, sw, 3);
    for (int sub = 0; sub < 2; sub++) {
        int k = 2 * c + sub;
        uint32_t low4 = k < 8 ? mf_byte(sw, k) & 15 : mf_byte(sw, k - 8) >> 4;
        uint32_t high2 = (mf_byte(sw, 8 + (k & 3)) >> (2 * (k >> 2))) & 3;
        float a = mf_mul(d, (float)((int)(low4 | (high2 << 4)) - 32));
        for (int l = 16 * sub; l < 16 * sub + 16; l++) {
            uint32_t low2 = (mf_byte(qw, l) >> (2 * k2)) & 3;
            uint32_t hbit = (mf_byte(hm, l) >> (4 * h + k2)) & 1;
            y[l] = mf_mul(a, (float)((int)low2 - (hbit ? 0 : 4)));
        }
    }
}

/* 6-bit scale and min of sub-block g from the 12 packed bytes (docs/quantization.md §2) */
MF_HD void mf_scale_min_k4(const uint32_t *s, int g, uint32_t *sc, uint32_t *m)
{
    if (g < 4) {
        *sc = mf_byte(s, g) & 63;
        *m = mf_byte(s, g + 4) & 63;
    } else {
        *sc = (mf_byte(s, g + 4) & 15) | ((mf_byte(s, g - 4) >> 6) << 4);
        *m = (mf_byte(s, g + 4) >> 4) | ((mf_byte(s, g) >> 6) << 4);
    }
}

/* Q4_K, 144 bytes: d f16 | dmin f16 | scales[12] | qs[128]; chunk g = sub-block g, its
 * nibbles are the low (g even) or high (g odd) halves of qs[32·(g/2) .. +31]. */
MF_HD void mf_dq_q4_k(const uint8_t *blk, int g, float *y)
{
    uint32_t dd = mf_ld_u32(blk);
    float d = mf_h2f(dd & 0xFFFF), dmin = mf_h2f(dd >> 16);
    uint32_t s[3], qw[8], sc, m;
    mf_ld_words<4>(blk + 4, s, 3);
    mf_ld_words<4>(blk + 16 + 32 * (g >> 1), qw, 8);
    mf_scale_min_k4(s, g, &sc, &m);
    float a = mf_mul(d, (float)sc), bm = mf_mul(dmin, (float)m);
    int shift = 4 * (g & 1);
    for (int l = 0; l < 32; l++) y[l] = mf_sub(mf_mul(a, (float)((mf_byte(qw, l) >> shift) & 15)), bm);
}

/* Q5_K, 176 bytes: d | dmin | scales[12] | qh[32] | qs[128]; fifth bit of element 32g + l is
 * bit g of qh[l]. */
MF_HD void mf_dq_q5_k(const uint8_t *blk, int g, float *y)
{
    uint32_t dd = mf_ld_u32(blk);
    float d = mf_h2f(dd & 0xFFFF), dmin = mf_h2f(dd >> 16);
    uint32_t s[3], hw[8], qw[8], sc, m;
    mf_ld_words<4>(blk + 4, s, 3);
    mf_ld_words<4>(blk + 16, hw, 8);
    mf_ld_words<4>(blk + 48 + 32 * (g >> 1), qw, 8);
    mf_scale_min_k4(s, g, &sc, &m);
    float a = mf_mul(d, (float)sc), bm = mf_mul(dmin, (float)m);
    int shift = 4 * (g & 1);
    for (int l = 0; l < 32; l++) {
        uint32_t q = ((mf_byte(qw, l) >> shift) & 15) | (((mf_byte(hw, l) >> g) & 1) << 4);
        y[l] = mf_sub(mf_mul(a, (float)q), bm);
    }
}

/* Q6_K, 210 bytes: ql[128] | qh[64] | scales i8[16] | d f16. Chunk c (h = c/4, k2 = c%4):
 * low 4 bits from ql[64h + 32·(k2 & 1) + l] (low nibble for k2 < 2), high 2 bits from
 * qh[32h + l] >> 2k2; q − 32; y = (d·sc)·q with sc = scales[2c + l/16]. */
MF_HD void mf_dq_q6_k(const uint8_t *blk, int c, float *y)
{
    float d = mf_h2f(mf_ld_u16(blk + 208));
    int h = c >> 2, k2 = c & 3;
    uint32_t lw[8], hw[8];
    mf_ld_words<2>(blk + 64 * h + 32 * (k2 & 1), lw, 8);
    mf_ld_words<2>(blk + 128 + 32 * h, hw, 8);
    uint32_t sw = mf_ld_u16(blk + 192 + 2 * c);
    int shift = k2 < 2 ? 0 : 4;
    for (int sub = 0; sub < 2; sub++) {
        float a = mf_mul(d, (float)(int8_t)((sw >> (8 * sub)) & 0xFF));
        for (int l = 16 * sub; l < 16 * sub + 16; l++) {
            uint32_t q = ((mf_byte(lw, l) >> shift) & 15) | (((mf_byte(hw, l) >> (2 * k2)) & 3) << 4);
            y[l] = mf_mul(a, (float)((int)q - 32));
        }
    }
}

/* ---------------------------------------------------------------- one entry point */

/* Elements [32·ch, 32·ch + 32) of a row of type T into y[0..31]. For the float types the row
 * must hold them (n a multiple of 32); GEMV handles other widths itself. */
template <int T> MF_HD void mf_dq32(const uint8_t *row, int64_t ch, float *y)
{
    if constexpr (mf_is_float_type<T>) {
        for (int j = 0; j < 32; j++) y[j] = mf_dq_elem<T>(row, 32 * ch + j);
    } else if constexpr (T == MF_TYPE_Q4_0) {
        mf_dq_q4_0(row + 18 * ch, y);
    } else if constexpr (T == MF_TYPE_Q4_1) {
        mf_dq_q4_1(row + 20 * ch, y);
    } else if constexpr (T == MF_TYPE_Q5_0) {
        mf_dq_q5_0(row + 22 * ch, y);
    } else if constexpr (T == MF_TYPE_Q5_1) {
        mf_dq_q5_1(row + 24 * ch, y);
    } else if constexpr (T == MF_TYPE_Q8_0) {
        mf_dq_q8_0(row + 34 * ch, y);
    } else if constexpr (T == MF_TYPE_MXFP4) {
        mf_dq_mxfp4(row + 17 * ch, y);
    } else if constexpr (T == MF_TYPE_Q2_K) {
        mf_dq_q2_k(row + 84 * (ch >> 3), (int)(ch & 7), y);
    } else if constexpr (T == MF_TYPE_Q3_K) {
        mf_dq_q3_k(row + 110 * (ch >> 3), (int)(ch & 7), y);
    } else if constexpr (T == MF_TYPE_Q4_K) {
        mf_dq_q4_k(row + 144 * (ch >> 3), (int)(ch & 7), y);
    } else if constexpr (T == MF_TYPE_Q5_K) {
        mf_dq_q5_k(row + 176 * (ch >> 3), (int)(ch & 7), y);
    } else {
        static_assert(T == MF_TYPE_Q6_K, "mf_dq32: unsupported tensor type");
        mf_dq_q6_k(row + 210 * (ch >> 3), (int)(ch & 7), y);
    }
}

/* Run f(std::integral_constant<int, T>) for the runtime type; false for a type without
 * kernels. The one place that lists the 14 supported types (as types.c does). */
template <typename F> bool mf_type_dispatch(uint32_t type, F &&f)
{
    /* a table of cases, one type per row (clang-format would pack it) */
    /* clang-format off */
    switch (type) {
#define MF_CASE(T) \
    case T: f(std::integral_constant<int, T>()); return true;
    MF_CASE(MF_TYPE_F32)
    MF_CASE(MF_TYPE_F16)
    MF_CASE(MF_TYPE_BF16)
    MF_CASE(MF_TYPE_Q4_0)
    MF_CASE(MF_TYPE_Q4_1)
    MF_CASE(MF_TYPE_Q5_0)
    MF_CASE(MF_TYPE_Q5_1)
    MF_CASE(MF_TYPE_Q8_0)
    MF_CASE(MF_TYPE_Q2_K)
    MF_CASE(MF_TYPE_Q3_K)
    MF_CASE(MF_TYPE_Q4_K)
    MF_CASE(MF_TYPE_Q5_K)
    MF_CASE(MF_TYPE_Q6_K)
    MF_CASE(MF_TYPE_MXFP4)
#undef MF_CASE
    default: return false;
    }
    /* clang-format on */
}

#endif
