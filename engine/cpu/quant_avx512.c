/* quant_avx512.c — the AVX-512 VNNI batch kernels: mf_matmul_rows for prompts (2 tokens or
 * more) of the 32-element weight types. Compiled in every build; its body exists only when
 * the compiler targets AVX-512 F, BW, VL and VNNI. Decoding (one token) stays with
 * quant_avx2.c, as do the types this file has no kernel for, and the rows left over after
 * the groups of 16.
 *
 * Layout: one 32-bit lane per weight row. A zmm register holds 4 codes of each of 16 rows
 * (lane r = codes 4j..4j+3 of row r), and one vpdpbusd multiplies it with the same 4
 * activation bytes of one token, broadcast to all 16 lanes from memory:
 *
 *     s[r] += Σ_{i<4} u[r][4j+i] · a[4j+i]          (64 byte products, 1 instruction)
 *
 * Eight of them give the integer block sums of 16 rows for one token, already in separate
 * lanes: no horizontal reduction at all (the AVX2 tiles spend a transpose on that). Then
 * one conversion, one scale product and one FMA serve 16 (row, token) pairs, and the
 * accumulator of token t is 16 consecutive results y[t][r0 .. r0+15], stored as they are.
 *
 * The price is moving the weights into that layout: per block, 16 rows × 16 bytes are
 * loaded as four registers of four rows and transposed dword-wise (4×4 in each 128-bit
 * lane: 8 unpacks), which costs some 30 instructions per block and 16 rows — paid once
 * for up to 16 tokens (the tile is 16 rows × T tokens, T = 16, 8, 4, 2 or 1; the 16
 * accumulators, 8 code registers and a few temporaries fill the 32 zmm registers).
 *
 * Offsets: the codes are unsigned bytes (vpdpbusd multiplies unsigned by signed); Q4_0,
 * Q5_0 and MXFP4 carry their offset as in quant_avx2.c, Q8_0 is stored as w + 128. The
 * sum of a block starts from the activation's corr = -off·Σa (quant_impl.h), one
 * broadcast per (token, block), so the integer sums are exactly the scalar twin's
 * Σ (q - off)·a. Only the order of the float additions differs from quant_dot.c.
 *
 * The weight scales of 16 rows are 16 fp16 values 18 to 34 bytes apart: they are copied
 * by scalar loads into a small table for SLAB blocks at a time (the integer ports are
 * otherwise idle here) and converted as one vector per block. See docs/quantization.md
 * §5–6 for the instruction counts and measured speeds.
 */
#include "quant.h"
#include "quant_impl.h"

#ifdef MF_QUANT_AVX512

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

enum {
    ROWS = 16,  /* weight rows per tile: one per 32-bit lane */
    SLAB = 32,  /* blocks whose scales are copied into the table in one go */
    GROUP = 8,  /* tokens whose sums run interleaved: 8 independent vpdpbusd chains hide
                 * the instruction's latency; more would not leave registers for the codes */
};

/* ================================================================ weight codes */

/* Byte offset of the 16 nibble bytes (quant-formats.md §3, mxfp4.md §2). */
INLINE int nibbles_at(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q4_0: return 2;
    case MF_TYPE_Q4_1: return 4;
    case MF_TYPE_Q5_0: return 6;
    case MF_TYPE_Q5_1: return 8;
    default: return 1;  /* MXFP4 */
    }
}

INLINE __m128i load16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)(const void *)p); }

/* The 16 bytes at p of rows 0..15 (rb bytes apart), transposed by dwords: Z[j] lane r =
 * bytes 4j..4j+3 of row r. Loaded as four registers R[i] with rows i, i+4, i+8, i+12 in
 * their 128-bit lanes; in each lane the 4×4 dword transpose (unpacks of 32 then 64 bits)
 * then puts row i + 4k at dword 4k + i, i.e. row r in lane r. */
INLINE void rows16(const uint8_t *p, size_t rb, __m512i Z[4])
{
    __m512i R[4];
    for (int i = 0; i < 4; i++) {
        __m512i v = _mm512_castsi128_si512(load16(p + (size_t)i * rb));
        v = _mm512_inserti32x4(v, load16(p + (size_t)(i + 4) * rb), 1);
        v = _mm512_inserti32x4(v, load16(p + (size_t)(i + 8) * rb), 2);
        R[i] = _mm512_inserti32x4(v, load16(p + (size_t)(i + 12) * rb), 3);
    }
    __m512i t0 = _mm512_unpacklo_epi32(R[0], R[1]), t1 = _mm512_unpackhi_epi32(R[0], R[1]);
    __m512i t2 = _mm512_unpacklo_epi32(R[2], R[3]), t3 = _mm512_unpackhi_epi32(R[2], R[3]);
    Z[0] = _mm512_unpacklo_epi64(t0, t2);
    Z[1] = _mm512_unpackhi_epi64(t0, t2);
    Z[2] = _mm512_unpacklo_epi64(t1, t3);
    Z[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* The 32-bit words at p of rows 0..15 in lanes 0..15 (the Q5 fifth bits). */
INLINE __m512i dwords16(const uint8_t *p, size_t rb)
{
    _Alignas(64) int32_t h[ROWS];
    for (int r = 0; r < ROWS; r++) memcpy(&h[r], p + (size_t)r * rb, 4);
    return _mm512_load_si512((const void *)h);
}

/* The 16 bytes at block byte o of rows 0..15 as lane-per-row words (rows16), from a packed
 * block (pk = 1: plain loads of payload words, quant_impl.h) or from the rows (transposed). */
INLINE void words16(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int o, __m512i Z[4])
{
    if (pk) {
        const uint8_t *p = blk + mf_pack_word(wt, (o - mf_pack_lead(wt)) / 4);
        for (int j = 0; j < 4; j++) Z[j] = _mm512_loadu_si512((const void *)(p + 64 * j));
        return;
    }
    rows16(blk + o, rb, Z);
}

/* The 32-bit words at block byte o of rows 0..15 in lanes 0..15 (dwords16), packed or not. */
INLINE __m512i word16(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int o)
{
    if (pk) return _mm512_loadu_si512((const void *)(blk + mf_pack_word(wt, (o - mf_pack_lead(wt)) / 4)));
    return dwords16(blk + o, rb);
}

/* The fp16 field at block byte `at` of rows 0..15 as floats, packed or not. */
INLINE __m512 f16_16(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int at, int bb)
{
    if (pk) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(blk + mf_pack_field(wt, at, bb))));
    _Alignas(32) uint16_t h[ROWS];
    for (int r = 0; r < ROWS; r++) memcpy(&h[r], blk + (size_t)r * rb + at, 2);
    return _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)h));
}

/* 16 E8M0 bytes -> mf_e8m0_half of each as floats (quant_impl.h): (e - 1) << 23 for e >= 2,
 * the subnormals 0x00200000 << e for e = 0, 1. */
INLINE __m512 e8m0_16(const uint8_t *e)
{
    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)e));
    __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(v, _mm512_set1_epi32(1)), 23);
    __m512i sub = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), v);
    return _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(v, _mm512_set1_epi32(2)), normal, sub));
}

/* u[j] lane r = codes of elements 4j..4j+3 of block `blk` of row r, as unsigned bytes:
 * Q4_0/Q4_1 0..15, Q5_0/Q5_1 0..31, MXFP4 2·E2M1 + 12 in 0..24, Q8_0 w + 128. Elements
 * 0..15 are the low nibbles of bytes 0..15, elements 16..31 the high ones (Q4_0 order), so
 * u[j] and u[j + 4] come from the same transposed word j. */
INLINE void codes16(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, __m512i u[8])
{
    __m512i Z[4];
    if (wt == MF_TYPE_Q8_0) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        words16(pk, wt, blk, rb, 2, Z);
        for (int j = 0; j < 4; j++) u[j] = _mm512_xor_si512(Z[j], flip);
        words16(pk, wt, blk, rb, 18, Z);
        for (int j = 0; j < 4; j++) u[j + 4] = _mm512_xor_si512(Z[j], flip);
        return;
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    words16(pk, wt, blk, rb, nibbles_at(wt), Z);
    for (int j = 0; j < 4; j++) {
        u[j] = _mm512_and_si512(Z[j], m4);
        u[j + 4] = _mm512_and_si512(_mm512_srli_epi16(Z[j], 4), m4);
    }
    if (wt == MF_TYPE_Q5_0 || wt == MF_TYPE_Q5_1) {
        /* fifth bit of element e = bit e of the 32-bit qh: for u[j], byte j/2 of qh copied
         * to the 4 bytes of its lane, tested against one bit per byte, 16 added where set */
        __m512i h = word16(pk, wt, blk, rb, wt == MF_TYPE_Q5_0 ? 2 : 4);
        const __m512i lo = _mm512_set1_epi32(0x08040201), hi = _mm512_set1_epi32((int)0x80402010u);
        const __m512i sixteen = _mm512_set1_epi8(16);
        for (int j = 0; j < 8; j++) {
            const int c = j / 2;  /* byte c of dword d is byte 4d + c of its 128-bit lane */
            __m512i rep = _mm512_shuffle_epi8(h, _mm512_broadcast_i32x4(_mm_setr_epi32(
                0x01010101 * c, 0x01010101 * (4 + c), 0x01010101 * (8 + c), 0x01010101 * (12 + c))));
            __mmask64 k = _mm512_test_epi8_mask(rep, j % 2 ? hi : lo);
            u[j] = _mm512_mask_add_epi8(u[j], k, u[j], sixteen);
        }
    }
    if (wt == MF_TYPE_MXFP4) {
        /* 2·E2M1(c) + 12 for c = 0..15 (mxfp4.md §3), in each 128-bit lane for vpshufb */
        const __m512i tbl = _mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9,
                                                                 8, 6, 4, 0));
        for (int j = 0; j < 8; j++) u[j] = _mm512_shuffle_epi8(tbl, u[j]);
    }
}

/* ================================================================ scales */

/* The scale (and min) of n blocks of 16 rows, block-major: tab[b][r]. fp16 scales stay
 * fp16 (one vector conversion per block later); MXFP4's are float bits already. */
typedef struct scale_tab {
    _Alignas(64) uint16_t d[SLAB][ROWS];
    _Alignas(64) uint16_t m[SLAB][ROWS];
    _Alignas(64) uint32_t e[SLAB][ROWS];
} scale_tab;

INLINE void fill_scales(uint32_t wt, const uint8_t *w, size_t rb, int n, scale_tab *st)
{
    const size_t bb = mf_simd_bytes32(wt);
    for (int r = 0; r < ROWS; r++) {
        const uint8_t *p = w + (size_t)r * rb;
        for (int b = 0; b < n; b++, p += bb) {
            if (wt == MF_TYPE_MXFP4) {
                st->e[b][r] = mf_e8m0_half_bits[p[0]];
                continue;
            }
            memcpy(&st->d[b][r], p, 2);
            if (mf_simd_has_min32(wt)) memcpy(&st->m[b][r], p + 2, 2);
        }
    }
}

INLINE __m512 scale_of(uint32_t wt, const scale_tab *st, int b)
{
    if (wt == MF_TYPE_MXFP4) return _mm512_castsi512_ps(_mm512_load_si512((const void *)st->e[b]));
    return _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)st->d[b]));
}

/* ================================================================ the tile */

/* s + u·a[0..3] per lane (vpdpbusd), the 4 activation bytes broadcast from memory. Written
 * as inline assembly because GCC turns _mm512_dpbusd_epi32(s, u, _mm512_set1_epi32(v))
 * into a separate vpbroadcastd per product instead of the {1to16} memory operand: one
 * instruction more per 64 multiply-adds, measured 6% slower on pp512. */
INLINE __m512i dot4(__m512i s, __m512i u, const int8_t *p)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s) : "v"(u), "m"(*(const int32_t *)(const void *)p));
    return s;
}

/* Prefetch of a packed matrix: the group is one sequential stream, so the kernel asks for
 * the bytes MF_PACK_PREFETCH ahead of the block it works on (the hardware prefetchers stop
 * at every 4 KB page; this keeps the next pages' lines in flight). Measured in
 * docs/cpu.md §3. */
#ifndef MF_PACK_PREFETCH
#define MF_PACK_PREFETCH 2048
#endif
INLINE void prefetch_ahead(const uint8_t *p, size_t n)
{
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)(p + MF_PACK_PREFETCH + o), _MM_HINT_T0);
}

/* y[t·ys + r] = row r · token t for r < 16, t < T, nb blocks per row. pk = 0: w points at
 * row 0 of 16 rows rb bytes apart (the file's layout); pk = 1: at a packed group (block b
 * at w + b·16·bb, quant_impl.h). x points at token 0's mf_act32 blocks, xs bytes per token.
 * Every (row, token) pair takes the canonical steps of quant.h. */
INLINE void tile32(const int pk, const uint32_t wt, const int T, const uint8_t *w, size_t rb, const uint8_t *x,
                   size_t xs, int64_t nb, float *y, int64_t ys, const uint8_t *pf)
{
    const size_t bb = mf_simd_bytes32(wt), pbb = pk ? ROWS * bb : bb;
    const int G = T < GROUP ? T : GROUP;
    scale_tab st;
    __m512 acc[16];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += SLAB) {
        const int n = nb - b0 < SLAB ? (int)(nb - b0) : SLAB;
        if (!pk) fill_scales(wt, w + b0 * bb, rb, n, &st);
        for (int i = 0; i < n; i++) {
            const int64_t b = b0 + i;
            const uint8_t *blk = w + b * pbb;
            if (pk) prefetch_ahead(blk, pbb);
            else if (pf && ((size_t)b * bb & 63) < bb)
                for (int r = 0; r < ROWS; r++) _mm_prefetch((const char *)(pf + (size_t)r * rb + (size_t)b * bb), _MM_HINT_T1);
            __m512i u[8];
            codes16(pk, wt, blk, rb, u);
            __m512 dw, mw = _mm512_setzero_ps();
            if (pk) {
                dw = wt == MF_TYPE_MXFP4 ? e8m0_16(blk) : f16_16(1, wt, blk, rb, 0, (int)bb);
                if (mf_simd_has_min32(wt)) mw = f16_16(1, wt, blk, rb, 2, (int)bb);
            } else {
                dw = scale_of(wt, &st, i);
                if (mf_simd_has_min32(wt)) mw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)st.m[i]));
            }
            if (T == 1) {
                /* one token: two chains of vpdpbusd instead of one of eight (its latency) */
                const mf_act32 *a = (const mf_act32 *)(const void *)x + b;
                __m512i s0 = _mm512_set1_epi32(a->corr), s1 = _mm512_setzero_si512();
                for (int j = 0; j < 8; j += 2) {
                    s0 = dot4(s0, u[j], a->qs + 4 * j);
                    s1 = dot4(s1, u[j + 1], a->qs + 4 * j + 4);
                }
                __m512i sum = _mm512_add_epi32(s0, s1);
                acc[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, _mm512_set1_ps(a->d)), acc[0]);
                if (mf_simd_has_min32(wt)) acc[0] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a->s), acc[0]);
                continue;
            }
            for (int t0 = 0; t0 < T; t0 += G) {
                const mf_act32 *a[GROUP];
                __m512i s[GROUP];
                for (int g = 0; g < G; g++) {
                    a[g] = (const mf_act32 *)(const void *)(x + (t0 + g) * xs) + b;
                    s[g] = _mm512_set1_epi32(a[g]->corr);
                }
                for (int j = 0; j < 8; j++)
                    for (int g = 0; g < G; g++) s[g] = dot4(s[g], u[j], a[g]->qs + 4 * j);
                for (int g = 0; g < G; g++) {
                    acc[t0 + g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[g]), _mm512_mul_ps(dw, _mm512_set1_ps(a[g]->d)), acc[t0 + g]);
                    if (mf_simd_has_min32(wt)) acc[t0 + g] = _mm512_fmadd_ps(mw, _mm512_set1_ps(a[g]->s), acc[t0 + g]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(y + t * ys, acc[t]);
}

/* ================================================================ K-quants
 *
 * A super-block is 256 elements in sub-blocks of 16 (Q2_K, Q3_K, Q6_K) or 32 (Q4_K, Q5_K)
 * with integer scales; the scalar twin computes per super-block and (row, token)
 *
 *     dot = Σ_s sc_s · Σ_{i in s} q_i·a_i,   corr = Σ_{k<16} c_k · bsum_k
 *
 * with c the mins (Q2_K, Q4_K, Q5_K: y = d·sc·q − dmin·mn) or the code offsets times the
 * scales (Q3_K: q = u − 4, Q6_K: q = u − 32), then d·dx·dot − dmin·dx·mins.
 *
 * Here, per super-block and 16 rows, the codes are first decoded into the lane-per-row
 * layout (64 registers' worth, kept in a stack buffer) with the scales as 32-bit lanes
 * and the c as 16-bit pairs. Per token: vpdpbusd over a sub-block's 4 or 8 words gives its
 * sums of 16 rows, one vpmulld by the scales and one add fold them into dot; the 16 bsums
 * enter through 8 vpdpwssd (pairs of c times a broadcast pair of bsums) — into dot for the
 * offsets (exact integers: the scalar twin's), into a separate sum for the mins. */

INLINE int k_has_min(uint32_t wt) { return mf_simd_k_dmin_at(wt) >= 0; }
/* elements per sub-block: 32 for Q4_K/Q5_K, 16 for the others */
INLINE int k_sub(uint32_t wt) { return wt == MF_TYPE_Q4_K || wt == MF_TYPE_Q5_K ? 32 : 16; }
typedef struct kdec {
    __m512i u[64];  /* u[j] lane r: codes of elements 4j..4j+3 of row r, unsigned */
    __m512i sc[16]; /* sub-block scales, int32 per row (8 used for 32-element sub-blocks) */
    __m512i c[8];   /* int16 pairs (c_2k, c_2k+1) per row, for the bsum pairs */
    __m512 d, dmin;
} kdec;

/* Byte i of every 32-bit lane, zero-extended. */
INLINE __m512i byte_u(__m512i z, int i) { return _mm512_and_si512(_mm512_srli_epi32(z, 8 * i), _mm512_set1_epi32(0xFF)); }
/* Two 32-bit lanes holding 16-bit values -> one lane holding the pair (lo, hi). */
INLINE __m512i pair16(__m512i lo, __m512i hi)
{
    return _mm512_mask_blend_epi16(0xAAAAAAAAu, lo, _mm512_slli_epi32(hi, 16));
}
/* Bit `from` of every byte moved to bit `to` and isolated. */
INLINE __m512i bit_to(__m512i v, int from, int to)
{
    __m512i m = _mm512_set1_epi8((char)(1 << to));
    if (from > to) return _mm512_and_si512(_mm512_srli_epi16(v, from - to), m);
    if (from < to) return _mm512_and_si512(_mm512_slli_epi16(v, to - from), m);
    return _mm512_and_si512(v, m);
}

/* Codes (quant-formats.md §4.2–4.6) of super-block `blk` of rows 0..15. Each rows16 load
 * covers 16 bytes, i.e. elements l = 16m .. 16m+15 of a 32-element group; its word q holds
 * l = 16m + 4q .. +3, which is u[j] with j = (element index of l)/4. */
INLINE void kcodes16(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, kdec *k)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
    __m512i A[4], B[4], H[4];
    switch (wt) {
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: /* element 64c + 32·(g%2) + l: nibble of qs[32c + l], low for even g */
        for (int c = 0; c < 4; c++)
            for (int m = 0; m < 2; m++) {
                words16(pk, wt, blk, rb, (wt == MF_TYPE_Q4_K ? 16 : 48) + 32 * c + 16 * m, A);
                if (wt == MF_TYPE_Q5_K) words16(pk, wt, blk, rb, 16 + 16 * m, H);  /* fifth bit: bit g of qh[l] */
                for (int q = 0; q < 4; q++) {
                    __m512i lo = _mm512_and_si512(A[q], m4), hi = _mm512_and_si512(_mm512_srli_epi16(A[q], 4), m4);
                    if (wt == MF_TYPE_Q5_K) {
                        lo = _mm512_or_si512(lo, bit_to(H[q], 2 * c, 4));
                        hi = _mm512_or_si512(hi, bit_to(H[q], 2 * c + 1, 4));
                    }
                    k->u[16 * c + 4 * m + q] = lo;
                    k->u[16 * c + 8 + 4 * m + q] = hi;
                }
            }
        return;
    case MF_TYPE_Q2_K:
    case MF_TYPE_Q3_K: /* element 128h + 32·k2 + l: bits 2·k2 of qs[32h + l] (+ hmask bit 4h + k2) */
        for (int h = 0; h < 2; h++)
            for (int m = 0; m < 2; m++) {
                words16(pk, wt, blk, rb, (wt == MF_TYPE_Q2_K ? 16 : 32) + 32 * h + 16 * m, A);
                if (wt == MF_TYPE_Q3_K) words16(pk, wt, blk, rb, 16 * m, H);
                for (int k2 = 0; k2 < 4; k2++)
                    for (int q = 0; q < 4; q++) {
                        __m512i v = _mm512_and_si512(_mm512_srli_epi16(A[q], 2 * k2), m2);
                        if (wt == MF_TYPE_Q3_K) v = _mm512_or_si512(v, bit_to(H[q], 4 * h + k2, 2));  /* u = q + 4 */
                        k->u[32 * h + 8 * k2 + 4 * m + q] = v;
                    }
            }
        return;
    default: /* Q6_K: low 4 bits from ql[64h + 32·(k2 & 1) + l] (high nibble for k2 >= 2),
              * bits 4-5 from bits 2·k2 of qh[32h + l]; u = q + 32 */
        for (int h = 0; h < 2; h++)
            for (int m = 0; m < 2; m++) {
                words16(pk, wt, blk, rb, 64 * h + 16 * m, A);
                words16(pk, wt, blk, rb, 64 * h + 32 + 16 * m, B);
                words16(pk, wt, blk, rb, 128 + 32 * h + 16 * m, H);
                for (int q = 0; q < 4; q++) {
                    const __m512i m30 = _mm512_set1_epi8(0x30);
                    __m512i l0 = _mm512_and_si512(A[q], m4), l1 = _mm512_and_si512(B[q], m4);
                    __m512i l2 = _mm512_and_si512(_mm512_srli_epi16(A[q], 4), m4);
                    __m512i l3 = _mm512_and_si512(_mm512_srli_epi16(B[q], 4), m4);
                    int j = 32 * h + 4 * m + q;
                    k->u[j] = _mm512_or_si512(l0, _mm512_and_si512(_mm512_slli_epi16(H[q], 4), m30));
                    k->u[j + 8] = _mm512_or_si512(l1, _mm512_and_si512(_mm512_slli_epi16(H[q], 2), m30));
                    k->u[j + 16] = _mm512_or_si512(l2, _mm512_and_si512(H[q], m30));
                    k->u[j + 24] = _mm512_or_si512(l3, _mm512_and_si512(_mm512_srli_epi16(H[q], 2), m30));
                }
            }
    }
}

/* Scales (sc, int32 per row), the bsum coefficients (c, int16 pairs) and d, dmin of
 * super-block `blk` of rows 0..15. */
INLINE void kscales16(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, kdec *k)
{
    __m512i Z[4], cc[16];
    switch (wt) {
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: {
        /* quant-formats.md §4.1 on 4 bytes at a time, as quant_avx2.c: sc/m 0..3 are bits 0-5
         * of bytes 0..3 / 4..7, sc/m 4..7 the nibbles of bytes 8..11 plus bits 6-7 of 0..3 / 4..7 */
        words16(pk, wt, blk, rb, 4, Z);
        const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
        __m512i sl = _mm512_and_si512(Z[0], m6), ml = _mm512_and_si512(Z[1], m6);
        __m512i sh = _mm512_or_si512(_mm512_and_si512(Z[2], m4),
                                     _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(Z[0], 6), m2), 4));
        __m512i mh = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(Z[2], 4), m4),
                                     _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(Z[1], 6), m2), 4));
        for (int g = 0; g < 8; g++) {
            k->sc[g] = byte_u(g < 4 ? sl : sh, g % 4);
            __m512i mn = byte_u(g < 4 ? ml : mh, g % 4);
            k->c[g] = pair16(mn, mn);  /* the min of sub-block g serves bsums 2g and 2g+1 */
        }
        break;
    }
    case MF_TYPE_Q2_K: /* scales[s]: low nibble the scale, high nibble the min */
        words16(pk, wt, blk, rb, 0, Z);
        for (int s = 0; s < 16; s++) {
            __m512i v = byte_u(Z[s / 4], s % 4);
            k->sc[s] = _mm512_and_si512(v, _mm512_set1_epi32(0x0F));
            cc[s] = _mm512_srli_epi32(v, 4);
        }
        for (int p = 0; p < 8; p++) k->c[p] = pair16(cc[2 * p], cc[2 * p + 1]);
        break;
    case MF_TYPE_Q3_K: {
        /* quant-formats.md §4.5: low 4 bits from bytes 0..7 (low then high nibbles), high 2
         * bits from bytes 8..11 shifted by 2·(k/4). Loaded from byte 92 so that the 16-byte
         * load ends inside the block: words 1..3 are scales[0..11]. */
        words16(pk, wt, blk, rb, 92, Z);
        const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
        __m512i w4[4];
        for (int q = 0; q < 4; q++) {
            __m512i low = _mm512_and_si512(q < 2 ? Z[1 + q] : _mm512_srli_epi32(Z[1 + q - 2], 4), m4);
            __m512i high = _mm512_and_si512(_mm512_srli_epi32(Z[3], 2 * q), m2);
            w4[q] = _mm512_or_si512(low, _mm512_slli_epi32(high, 4));
        }
        for (int s = 0; s < 16; s++) {
            k->sc[s] = _mm512_sub_epi32(byte_u(w4[s / 4], s % 4), _mm512_set1_epi32(32));
            cc[s] = _mm512_mullo_epi32(k->sc[s], _mm512_set1_epi32(-4));  /* q = u - 4 */
        }
        for (int p = 0; p < 8; p++) k->c[p] = pair16(cc[2 * p], cc[2 * p + 1]);
        break;
    }
    default: /* Q6_K: 16 signed bytes at 192 */
        words16(pk, wt, blk, rb, 192, Z);
        for (int s = 0; s < 16; s++) {
            k->sc[s] = _mm512_srai_epi32(_mm512_slli_epi32(Z[s / 4], 24 - 8 * (s % 4)), 24);
            cc[s] = _mm512_mullo_epi32(k->sc[s], _mm512_set1_epi32(-32));  /* q = u - 32 */
        }
        for (int p = 0; p < 8; p++) k->c[p] = pair16(cc[2 * p], cc[2 * p + 1]);
    }
    const int bb = (int)mf_simd_bytesk(wt);
    k->d = f16_16(pk, wt, blk, rb, mf_simd_k_d_at(wt), bb);
    k->dmin = k_has_min(wt) ? f16_16(pk, wt, blk, rb, mf_simd_k_dmin_at(wt), bb) : _mm512_setzero_ps();
}

INLINE __m512i dot_pairs(__m512i s, __m512i c, const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_dpwssd_epi32(s, c, _mm512_set1_epi32(v));
}

/* As tile32 for the K-quants: y[t·ys + r] = row r · token t, nb super-blocks per row. */
INLINE void tilek(const int pk, const uint32_t wt, const int T, const uint8_t *w, size_t rb, const uint8_t *x,
                  size_t xs, int64_t nb, float *y, int64_t ys, const uint8_t *pf)
{
    const size_t bb = mf_simd_bytesk(wt), pbb = pk ? ROWS * bb : bb;
    const int G = T < GROUP ? T : GROUP, E = k_sub(wt) / 4, NS = 256 / k_sub(wt);
    kdec k;
    __m512 acc[16];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * pbb;
        if (pk) prefetch_ahead(blk, pbb);
        else if (pf)
            for (int r = 0; r < ROWS; r++)
                for (size_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)(pf + (size_t)r * rb + (size_t)b * bb + o), _MM_HINT_T1);
        kcodes16(pk, wt, blk, rb, &k);
        kscales16(pk, wt, blk, rb, &k);
        for (int t0 = 0; t0 < T; t0 += G) {
            const mf_actk *a[GROUP];
            __m512i dot[GROUP], p[GROUP];
            for (int g = 0; g < G; g++) {
                a[g] = (const mf_actk *)(const void *)(x + (t0 + g) * xs) + b;
                dot[g] = _mm512_setzero_si512();
            }
            for (int s = 0; s < NS; s++) {
                for (int g = 0; g < G; g++) p[g] = _mm512_setzero_si512();
                for (int q = 0; q < E; q++)
                    for (int g = 0; g < G; g++) p[g] = dot4(p[g], k.u[s * E + q], a[g]->qs + 4 * (s * E + q));
                for (int g = 0; g < G; g++) dot[g] = _mm512_add_epi32(dot[g], _mm512_mullo_epi32(p[g], k.sc[s]));
            }
            for (int g = 0; g < G; g++) {
                __m512 dx = _mm512_set1_ps(a[g]->d);
                __m512i c = k_has_min(wt) ? _mm512_setzero_si512() : dot[g];
                for (int i = 0; i < 8; i++) c = dot_pairs(c, k.c[i], a[g]->bsums + 2 * i);
                if (k_has_min(wt)) {
                    acc[t0 + g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot[g]), _mm512_mul_ps(k.d, dx), acc[t0 + g]);
                    acc[t0 + g] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(k.dmin, dx), acc[t0 + g]);
                } else {
                    acc[t0 + g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(k.d, dx), acc[t0 + g]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(y + t * ys, acc[t]);
}

/* ================================================================ the row walk */

typedef void (*tile_fn)(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y,
                        int64_t ys, const uint8_t *pf);

/* The tiles of one type by token count: 16, 8, 4, 2, 1; row-major (t) and packed (p). */
typedef struct tiles { tile_fn t[5], p[5]; } tiles;

#define TILE(name, tile, WT, T)                                                                         \
    static void name##_##T(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, \
                           int64_t ys, const uint8_t *pf)                                               \
    { tile(0, WT, T, w, rb, x, xs, nb, y, ys, pf); }                                                    \
    static void name##_p##T(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, \
                            int64_t ys, const uint8_t *pf)                                              \
    { tile(1, WT, T, w, rb, x, xs, nb, y, ys, pf); }
#define TILES(name, tile, WT)                                                                           \
    TILE(name, tile, WT, 16) TILE(name, tile, WT, 8) TILE(name, tile, WT, 4) TILE(name, tile, WT, 2)    \
    TILE(name, tile, WT, 1)                                                                             \
    static const tiles name = {{name##_16, name##_8, name##_4, name##_2, name##_1},                     \
                               {name##_p16, name##_p8, name##_p4, name##_p2, name##_p1}};

TILES(t_q4_0, tile32, MF_TYPE_Q4_0)
TILES(t_q4_1, tile32, MF_TYPE_Q4_1)
TILES(t_q5_0, tile32, MF_TYPE_Q5_0)
TILES(t_q5_1, tile32, MF_TYPE_Q5_1)
TILES(t_q8_0, tile32, MF_TYPE_Q8_0)
TILES(t_mxfp4, tile32, MF_TYPE_MXFP4)
TILES(t_q2_k, tilek, MF_TYPE_Q2_K)
TILES(t_q3_k, tilek, MF_TYPE_Q3_K)
TILES(t_q4_k, tilek, MF_TYPE_Q4_K)
TILES(t_q5_k, tilek, MF_TYPE_Q5_K)
TILES(t_q6_k, tilek, MF_TYPE_Q6_K)

static const tiles *tiles_of(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q4_0: return &t_q4_0;
    case MF_TYPE_Q4_1: return &t_q4_1;
    case MF_TYPE_Q5_0: return &t_q5_0;
    case MF_TYPE_Q5_1: return &t_q5_1;
    case MF_TYPE_Q8_0: return &t_q8_0;
    case MF_TYPE_MXFP4: return &t_mxfp4;
    case MF_TYPE_Q2_K: return &t_q2_k;
    case MF_TYPE_Q3_K: return &t_q3_k;
    case MF_TYPE_Q4_K: return &t_q4_k;
    case MF_TYPE_Q5_K: return &t_q5_k;
    case MF_TYPE_Q6_K: return &t_q6_k;
    default: return NULL;
    }
}

/* All tokens over one tile's 16 rows: 16 at a time, then 8, 4, 2, 1 as the rest's bits say.
 * pf (row-major tiles only) is prefetched by the first call. */
static void walk_tokens(const tile_fn *f, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int n_tok,
                        int64_t nb, float *y, int64_t ys, const uint8_t *pf)
{
    int t = 0;
    for (; t + 16 <= n_tok; t += 16, pf = NULL) f[0](w, rb, x + t * xs, xs, nb, y + t * ys, ys, pf);
    for (int g = 1; g < 5; g++)
        if ((n_tok - t) & (16 >> g)) {
            f[g](w, rb, x + t * xs, xs, nb, y + t * ys, ys, pf);
            t += 16 >> g, pf = NULL;
        }
}

void mf_matmul_rows_avx512(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1,
                           const void *qx, size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    const tiles *k = tiles_of(wtype);
    if (!k || n_tok < MF_AVX512_MIN_TOK) {
        mf_matmul_rows_avx2(wtype, W, n_in, r0, r1, qx, qx_stride, n_tok, y, y_stride);
        return;
    }
    const size_t rb = mf_type_row_bytes(wtype, n_in);
    const int64_t nb = n_in / mf_type_get(wtype)->blck;
    int64_t r = r0;
    for (; r + ROWS <= r1; r += ROWS) {
        const uint8_t *w = (const uint8_t *)W + (size_t)r * rb;
        /* the first tile over these rows prefetches the next 16 (when they are ours) */
        walk_tokens(k->t, w, rb, qx, qx_stride, n_tok, nb, y + r, y_stride, r + 2 * ROWS <= r1 ? w + ROWS * rb : NULL);
    }
    if (r < r1) mf_matmul_rows_avx2(wtype, W, n_in, r, r1, qx, qx_stride, n_tok, y, y_stride);
}

void mf_matmul_packed_avx512(uint32_t wtype, const void *P, int64_t n_in, int64_t g0, int64_t g1,
                             const void *qx, size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    const tiles *k = tiles_of(wtype);
    const size_t rb = mf_type_row_bytes(wtype, n_in);
    const int64_t nb = n_in / mf_type_get(wtype)->blck;
    for (int64_t g = g0; g < g1; g++)
        walk_tokens(k->p, (const uint8_t *)P + (size_t)g * ROWS * rb, rb, qx, qx_stride, n_tok, nb, y + g * ROWS,
                    y_stride, NULL);
}

#endif
