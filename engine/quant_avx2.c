/* quant_avx2.c — the AVX2/FMA twins of quant_dot.c's scalar dot products: the CPU backend's
 * inner loop. Compiled in every build; its body exists only when the compiler targets
 * AVX2 + FMA + F16C (MINFER_NATIVE=ON on any x86 CPU since 2013). Where the compiler also
 * targets AVX-VNNI (or AVX-512 VNNI), the byte dot product is one instruction (vpdpbusd)
 * instead of two (vpmaddubsw + vpmaddwd); tests/test_quant.c checks whichever is built
 * against the scalar code and against the reference.
 *
 * Shape of every kernel: a tile of R weight rows × T tokens. Per weight block, each of the
 * R blocks is decoded once into a register (its codes as 32 unsigned bytes in element
 * order), then multiplied with the T activation blocks. R·T accumulators stay in
 * registers for the whole row, so a weight byte is loaded from memory once per tile and
 * used T times. mf_matmul_rows_avx2 walks the rows in groups of 4 and, inside a group, all
 * tokens (tiles of 2 rows × 4 tokens, then the leftover tokens one at a time with 4 rows),
 * so the group's rows are read from memory once and from L1/L2 afterwards.
 *
 * The integer part is exact and identical to the scalar code; the float part (per-block
 * scale products, accumulation) runs in 8 lanes, so results differ from the scalar path
 * only by the order of float additions.
 */
#include "quant.h"
#include "quant_impl.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* ================================================================ primitives */

/* acc + Σ of 4 adjacent u8·s8 products per 32-bit lane. The non-VNNI form saturates when
 * two adjacent products exceed 32767 together: every caller keeps u <= 127. */
INLINE __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* acc + Σ of 2 adjacent i16·i16 products per 32-bit lane (vpdpwssd with VNNI). */
INLINE __m256i dot_i16(__m256i acc, __m256i a, __m256i b)
{
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpwssd_epi32(acc, a, b);
#elif defined(__AVXVNNI__)
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INLINE __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 16 bytes of nibbles -> 32 codes in element order: lane 0 = low nibbles (elements 0..15),
 * lane 1 = high nibbles (elements 16..31) — the Q4_0 order of quant-formats.md §3. */
INLINE __m256i nibbles32(const uint8_t *qs)
{
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i w = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(w, _mm256_set1_epi8(0x0F));
}

/* 32 bits -> 32 bytes, byte j = 0x10 when bit j is set (the Q5 fifth bits). */
INLINE __m256i fifth_bits(const uint8_t *qh)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h),
                                    _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                      0x0101010101010101, 0));
    __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(on, _mm256_set1_epi8(0x10));
}

/* ================================================================ 32-element weight types
 *
 * Codes as unsigned bytes; the activation's bias (quant_impl.h) removes the offset:
 *   Q4_0 q 0..15 (offset 8), Q5_0 0..31 (16), Q4_1/Q5_1 0..15/0..31 (no offset, min term
 *   m·s instead), MXFP4 2·E2M1 + 12 in 0..24 (offset 12), Q8_0 the signed bytes
 *   themselves (dotted as |w| · sign(a, w)). */

INLINE size_t bytes32(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q4_0: return 18;
    case MF_TYPE_Q4_1: return 20;
    case MF_TYPE_Q5_0: return 22;
    case MF_TYPE_Q5_1: return 24;
    case MF_TYPE_Q8_0: return 34;
    default: return 17;  /* MXFP4 */
    }
}

INLINE __m256i codes32(uint32_t wt, const uint8_t *b)
{
    switch (wt) {
    case MF_TYPE_Q4_0: return nibbles32(b + 2);
    case MF_TYPE_Q4_1: return nibbles32(b + 4);
    case MF_TYPE_Q5_0: return _mm256_or_si256(nibbles32(b + 6), fifth_bits(b + 2));
    case MF_TYPE_Q5_1: return _mm256_or_si256(nibbles32(b + 8), fifth_bits(b + 4));
    case MF_TYPE_Q8_0: return load32(b + 2);
    default: {
        /* 2·E2M1(c) + 12 for c = 0..15 (mxfp4.md §3, shifted to be unsigned) */
        const __m256i tbl = _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,
                                             12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
        return _mm256_shuffle_epi8(tbl, nibbles32(b + 1));
    }
    }
}

INLINE float scale32(uint32_t wt, const uint8_t *b)
{
    return wt == MF_TYPE_MXFP4 ? mf_e8m0_half(b[0]) : h2f(b);
}

INLINE int has_min(uint32_t wt) { return wt == MF_TYPE_Q4_1 || wt == MF_TYPE_Q5_1; }

/* y[t·ys + r] = row r · token t for r < R, t < T; x points at token 0's mf_act32 blocks. */
INLINE void tile32(const uint32_t wt, const int R, const int T, const uint8_t *w, size_t rb,
                   const uint8_t *x, size_t xs, int64_t nb, float *y, int64_t ys)
{
    const size_t bb = bytes32(wt);
    __m256 acc[4][4];
    float macc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps(), macc[r][t] = 0;
    for (int64_t b = 0; b < nb; b++) {
        __m256i u[4];
        __m256 dw[4];
        float mw[4];
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + r * rb + b * bb;
            u[r] = codes32(wt, blk);
            dw[r] = _mm256_set1_ps(scale32(wt, blk));
            mw[r] = has_min(wt) ? h2f(blk + 2) : 0;
        }
        for (int t = 0; t < T; t++) {
            const mf_act32 *a = (const mf_act32 *)(x + t * xs) + b;
            __m256i av = load32(a->qs), bias = load32(a->bias);
            __m256 ad = _mm256_set1_ps(a->d);
            for (int r = 0; r < R; r++) {
                __m256i v = wt == MF_TYPE_Q8_0
                                ? dot_u8s8(bias, _mm256_abs_epi8(u[r]), _mm256_sign_epi8(av, u[r]))
                                : dot_u8s8(bias, u[r], av);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(dw[r], ad), acc[r][t]);
                if (has_min(wt)) macc[r][t] += mw[r] * a->s;
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r] = hsum(acc[r][t]) + macc[r][t];
}

/* ================================================================ K-quants
 *
 * A super-block is 8 chunks of 32 elements. Per chunk: the codes as unsigned bytes
 * (kchunk), multiplied with the activation bytes (vpmaddubsw, 16-bit pair sums), then
 * with the chunk's scales as 16-bit words (vpmaddwd / vpdpwssd) into 32-bit lanes. After
 * the 8 chunks: the mins (Q2_K, Q4_K, Q5_K) or code offsets (Q3_K: 4, Q6_K: 32) against
 * the activation's 16 bsums, then one float scale per super-block. */

typedef struct kscales {
    __m256i sc;    /* scales as i16, arranged so that shuffle ctrl[j] gives chunk j's */
    __m256i corr;  /* i16 per 16-element group: the mins, or the scales (for offsets) */
    float d, dmin;
} kscales;

/* Within each 128-bit lane, broadcast 16-bit word j. */
INLINE __m256i word_bcast(__m256i v, int j)
{
    const __m256i ctrl = _mm256_set1_epi16((short)(2 * j | (2 * j + 1) << 8));
    return _mm256_shuffle_epi8(v, ctrl);
}

/* 16 scale bytes (one per 16 elements) -> even ones in lane 0, odd ones in lane 1 as i16,
 * so word j of lane 0 / lane 1 holds the scale of the first / second half of chunk j. */
INLINE __m256i evens_odds_i16(__m128i s8, int is_signed)
{
    __m128i eo = _mm_shuffle_epi8(s8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    return is_signed ? _mm256_cvtepi8_epi16(eo) : _mm256_cvtepu8_epi16(eo);
}

INLINE kscales kscales_of(uint32_t wt, const uint8_t *b)
{
    kscales k;
    uint32_t s0, s1, s2;
    switch (wt) {
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: {
        /* quant-formats.md §4.1 on 4 bytes at a time: sc/m 0..3 are bits 0-5 of bytes
         * 0..3 / 4..7; sc/m 4..7 are the nibbles of bytes 8..11 plus bits 6-7 of 0..3 / 4..7 */
        memcpy(&s0, b + 4, 4);
        memcpy(&s1, b + 8, 4);
        memcpy(&s2, b + 12, 4);
        uint64_t sc = (uint64_t)(s0 & 0x3F3F3F3Fu) |
                      (uint64_t)((s2 & 0x0F0F0F0Fu) | ((s0 >> 6) & 0x03030303u) << 4) << 32;
        uint64_t mn = (uint64_t)(s1 & 0x3F3F3F3Fu) |
                      (uint64_t)(((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 6) & 0x03030303u) << 4) << 32;
        /* scale of chunk j in word j of both lanes; min of chunk j for bsums 2j and 2j+1 */
        k.sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
        __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn));
        k.corr = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
        k.d = h2f(b), k.dmin = h2f(b + 2);
        return k;
    }
    case MF_TYPE_Q2_K: {
        __m128i s8 = _mm_loadu_si128((const __m128i *)b);
        __m128i sc = _mm_and_si128(s8, _mm_set1_epi8(0x0F));
        __m128i mn = _mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F));
        k.sc = evens_odds_i16(sc, 0);
        k.corr = _mm256_cvtepu8_epi16(mn);
        k.d = h2f(b + 80), k.dmin = h2f(b + 82);
        return k;
    }
    case MF_TYPE_Q3_K: {
        /* quant-formats.md §4.5, 4 scales at a time: low 4 bits from bytes 0..7 (low then
         * high nibbles), high 2 bits from bytes 8..11 shifted by 2·(k/4) */
        uint32_t s[3];
        memcpy(s, b + 96, 12);
        uint32_t w[4] = {
            (s[0] & 0x0F0F0F0Fu) | (s[2] & 0x03030303u) << 4,
            (s[1] & 0x0F0F0F0Fu) | ((s[2] >> 2) & 0x03030303u) << 4,
            ((s[0] >> 4) & 0x0F0F0F0Fu) | ((s[2] >> 4) & 0x03030303u) << 4,
            ((s[1] >> 4) & 0x0F0F0F0Fu) | ((s[2] >> 6) & 0x03030303u) << 4,
        };
        __m128i s8 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)w), _mm_set1_epi8(32));
        k.sc = evens_odds_i16(s8, 1);
        k.corr = _mm256_cvtepi8_epi16(s8);
        k.d = h2f(b + 108), k.dmin = 0;
        return k;
    }
    default: { /* Q6_K */
        __m128i s8 = _mm_loadu_si128((const __m128i *)(b + 192));
        k.sc = evens_odds_i16(s8, 1);
        k.corr = _mm256_cvtepi8_epi16(s8);
        k.d = h2f(b + 208), k.dmin = 0;
        return k;
    }
    }
}

/* Codes of elements 32j .. 32j+31 as unsigned bytes (quant-formats.md §4.2–4.6). */
INLINE __m256i kchunk(uint32_t wt, const uint8_t *b, int j)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    int h = j / 4, k2 = j % 4;
    switch (wt) {
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: {
        __m256i v = load32(b + (wt == MF_TYPE_Q4_K ? 16 : 48) + 32 * (j / 2));
        __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
        if (wt == MF_TYPE_Q4_K) return q;
        __m256i hb = _mm256_and_si256(_mm256_srli_epi16(load32(b + 16), j), m1);
        return _mm256_or_si256(q, _mm256_slli_epi16(hb, 4));
    }
    case MF_TYPE_Q2_K:
        return _mm256_and_si256(_mm256_srli_epi16(load32(b + 16 + 32 * h), 2 * k2), m2);
    case MF_TYPE_Q3_K: {
        __m256i low2 = _mm256_and_si256(_mm256_srli_epi16(load32(b + 32 + 32 * h), 2 * k2), m2);
        __m256i hb = _mm256_and_si256(_mm256_srli_epi16(load32(b), 4 * h + k2), m1);
        return _mm256_or_si256(low2, _mm256_slli_epi16(hb, 2));
    }
    default: { /* Q6_K */
        __m256i v = load32(b + 64 * h + 32 * (k2 & 1));
        __m256i low4 = _mm256_and_si256(k2 < 2 ? v : _mm256_srli_epi16(v, 4), m4);
        __m256i high2 = _mm256_and_si256(_mm256_srli_epi16(load32(b + 128 + 32 * h), 2 * k2), m2);
        return _mm256_or_si256(low4, _mm256_slli_epi16(high2, 4));
    }
    }
}

INLINE size_t bytesk(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q2_K: return 84;
    case MF_TYPE_Q3_K: return 110;
    case MF_TYPE_Q4_K: return 144;
    case MF_TYPE_Q5_K: return 176;
    default: return 210;  /* Q6_K */
    }
}

INLINE void tilek(const uint32_t wt, const int R, const int T, const uint8_t *w, size_t rb,
                  const uint8_t *x, size_t xs, int64_t nb, float *y, int64_t ys)
{
    const size_t bb = bytesk(wt);
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        kscales ks[4];
        __m256i iacc[4][4];
        for (int r = 0; r < R; r++) ks[r] = kscales_of(wt, w + r * rb + b * bb);
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) iacc[r][t] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            __m256i u[4], sc[4];
            for (int r = 0; r < R; r++) {
                u[r] = kchunk(wt, w + r * rb + b * bb, j);
                sc[r] = word_bcast(ks[r].sc, j);
            }
            for (int t = 0; t < T; t++) {
                __m256i av = load32(((const mf_actk *)(x + t * xs) + b)->qs + 32 * j);
                for (int r = 0; r < R; r++)
                    iacc[r][t] = dot_i16(iacc[r][t], _mm256_maddubs_epi16(u[r], av), sc[r]);
            }
        }
        for (int t = 0; t < T; t++) {
            const mf_actk *a = (const mf_actk *)(x + t * xs) + b;
            __m256i bs = load32(a->bsums);
            for (int r = 0; r < R; r++) {
                __m256i c = _mm256_madd_epi16(bs, ks[r].corr);
                __m256i v = iacc[r][t];
                if (wt == MF_TYPE_Q6_K) v = _mm256_sub_epi32(v, _mm256_slli_epi32(c, 5));
                if (wt == MF_TYPE_Q3_K) v = _mm256_sub_epi32(v, _mm256_slli_epi32(c, 2));
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(ks[r].d * a->d), acc[r][t]);
                if (wt == MF_TYPE_Q2_K || wt == MF_TYPE_Q4_K || wt == MF_TYPE_Q5_K)
                    acc[r][t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(c), _mm256_set1_ps(ks[r].dmin * a->d),
                                                 acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) y[t * ys + r] = hsum(acc[r][t]);
}

/* ================================================================ float weights */

INLINE __m256 load8f(uint32_t wt, const uint8_t *w, int64_t i)
{
    switch (wt) {
    case MF_TYPE_F32: return _mm256_loadu_ps((const float *)(const void *)w + i);
    case MF_TYPE_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 2 * i)));
    default: /* BF16: the upper half of a binary32 */
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + 2 * i))), 16));
    }
}

INLINE float load1f(uint32_t wt, const uint8_t *w, int64_t i)
{
    float v;
    uint16_t h;
    if (wt == MF_TYPE_F32) {
        memcpy(&v, w + 4 * i, 4);
        return v;
    }
    memcpy(&h, w + 2 * i, 2);
    return wt == MF_TYPE_F16 ? _cvtsh_ss(h) : mf_bf16_to_f32(h);
}

INLINE void tilef(const uint32_t wt, const int R, const int T, const uint8_t *w, size_t rb,
                  const uint8_t *x, size_t xs, int64_t n, float *y, int64_t ys)
{
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv[4];
        for (int r = 0; r < R; r++) wv[r] = load8f(wt, w + r * rb, i);
        for (int t = 0; t < T; t++) {
            __m256 xv = _mm256_loadu_ps((const float *)(const void *)(x + t * xs) + i);
            for (int r = 0; r < R; r++) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            const float *xt = (const float *)(const void *)(x + t * xs);
            float s = hsum(acc[r][t]);
            for (int64_t k = i; k < n; k++) s += load1f(wt, w + r * rb, k) * xt[k];
            y[t * ys + r] = s;
        }
}

/* ================================================================ the row walk */

typedef void (*tile_fn)(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb,
                        float *y, int64_t ys);

/* The four tile shapes of one type: 4 rows × 1 token, 1 × 1, 2 × 4, 1 × 4. */
typedef struct tiles { tile_fn r4t1, r1t1, r2t4, r1t4; } tiles;

#define TILES(name, tile, WT)                                                                 \
    static void name##_r4t1(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,        \
                            int64_t nb, float *y, int64_t ys)                                 \
    { tile(WT, 4, 1, w, rb, x, xs, nb, y, ys); }                                              \
    static void name##_r1t1(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,        \
                            int64_t nb, float *y, int64_t ys)                                 \
    { tile(WT, 1, 1, w, rb, x, xs, nb, y, ys); }                                              \
    static void name##_r2t4(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,        \
                            int64_t nb, float *y, int64_t ys)                                 \
    { tile(WT, 2, 4, w, rb, x, xs, nb, y, ys); }                                              \
    static void name##_r1t4(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,        \
                            int64_t nb, float *y, int64_t ys)                                 \
    { tile(WT, 1, 4, w, rb, x, xs, nb, y, ys); }                                              \
    static const tiles name = {name##_r4t1, name##_r1t1, name##_r2t4, name##_r1t4};

TILES(t_f32, tilef, MF_TYPE_F32)
TILES(t_f16, tilef, MF_TYPE_F16)
TILES(t_bf16, tilef, MF_TYPE_BF16)
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
    case MF_TYPE_F32: return &t_f32;
    case MF_TYPE_F16: return &t_f16;
    case MF_TYPE_BF16: return &t_bf16;
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

void mf_matmul_rows_avx2(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1,
                         const void *qx, size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    const tiles *k = tiles_of(wtype);
    const mf_type_info *ti = mf_type_get(wtype);
    if (!k) return;
    size_t rb = mf_type_row_bytes(wtype, n_in);
    int64_t nb = n_in / ti->blck;  /* blocks per row; elements for the float types */
    const uint8_t *x = qx;
    for (int64_t r = r0; r < r1;) {
        const uint8_t *w = (const uint8_t *)W + (size_t)r * rb;
        float *yr = y + r;
        int t = 0;
        if (r + 4 <= r1) {
            for (; t + 4 <= n_tok; t += 4) {
                k->r2t4(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride);
                k->r2t4(w + 2 * rb, rb, x + t * qx_stride, qx_stride, nb, yr + 2 + t * y_stride, y_stride);
            }
            for (; t < n_tok; t++) k->r4t1(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride);
            r += 4;
        } else {
            for (; t + 4 <= n_tok; t += 4) k->r1t4(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride);
            for (; t < n_tok; t++) k->r1t1(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride);
            r += 1;
        }
    }
}

#endif
