/* quant_avx2.c — the AVX2/FMA twins of quant_dot.c's scalar dot products: the CPU backend's
 * inner loop. Compiled in every build; its body exists only when the compiler targets
 * AVX2 + FMA + F16C (MINFER_NATIVE=ON on any x86 CPU since 2013). Where the compiler also
 * targets AVX-VNNI (or AVX-512 VNNI), the byte dot product is one instruction (vpdpbusd)
 * instead of two (vpmaddubsw + vpmaddwd). tests/test_quant_dot.c checks whichever variant
 * is built against the scalar twin (same integers: only float rounding may differ) and
 * against the reference mf_dot_ref.
 *
 * Shape of every kernel: a tile of R weight rows × T tokens (4 × 1 for decoding, 4 × 4 for
 * batches, 1 × 1 and 1 × 4 for leftover rows). Per weight block each of the R blocks is
 * decoded once into a register — its codes as 32 unsigned bytes in element order — and
 * multiplied with the T activation blocks: integer sums in 8 lanes per (row, token) pair.
 * Four such sums are then transposed into one vector (reduce4), so a single float
 * conversion, scale product and FMA serve four pairs. mf_matmul_rows_avx2 walks the rows in
 * groups of 4 and, inside a group, all tokens, so the group's rows come from memory once
 * and from L1 afterwards; while it works on one group it prefetches the next.
 *
 * The integer part is exact and identical to the scalar code; a block's two half sums are
 * added as integers before the float steps, which follow quant.h's canonical order, so the
 * results equal the scalar twin's bit for bit. See docs/quantization.md for the measured
 * speeds. Packed matrices (the CPU backend's copies) use the 8-lane tiles of
 * quant_tiles.h instead, at the end of this file.
 */
#include "quant.h"
#include "quant_impl.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* ================================================================ primitives */

#if (defined(__AVX512VNNI__) && defined(__AVX512VL__)) || defined(__AVXVNNI__)
#define VNNI 1
#else
#define VNNI 0
#endif

/* acc + Σ of 4 adjacent u8·s8 products per 32-bit lane. vpdpbusd does not saturate; the
 * non-VNNI form does when two adjacent products exceed 32767 together, so callers keep
 * u <= 127 there. */
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

/* Software prefetch of the rows after the tile's own (pf; NULL: none), at the pace the tile
 * consumes its rows: while working on bytes [k·n, (k+1)·n) of its R rows, it asks for
 * bytes [k·n, (k+1)·n) of the next R. Why: R rows read in step are R streams inside one
 * page, which the hardware prefetchers follow poorly; without this a decode product
 * reached about half of the machine's plain read bandwidth (qbench, docs/quantization.md),
 * with it most of it. */
INLINE void prefetch_span(const uint8_t *pf, size_t off, size_t n)
{
    if (!pf) return;
    for (size_t i = 0; i < n; i += 64) _mm_prefetch((const char *)(pf + off + i), _MM_HINT_T0);
}

/* 16 bytes of nibbles -> 32 codes in element order: lane 0 = low nibbles (elements 0..15),
 * lane 1 = high nibbles (elements 16..31) — the Q4_0 order of docs/quantization.md §2 */
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
                                    _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i on = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(on, _mm256_set1_epi8(0x10));
}

/* ================================================================ 32-element weight types
 *
 * Codes as unsigned bytes; the activation's bias (quant_impl.h) removes the offset:
 *   Q4_0 q 0..15 (offset 8), Q5_0 0..31 (16), Q4_1/Q5_1 0..15/0..31 (no offset, min term
 *   m·s instead), MXFP4 2·E2M1 + 12 in 0..24 (offset 12), Q8_0 the signed bytes
 *   themselves (dotted as |w| · sign(a, w)).
 *
 * Q4_0 and Q4_1 with VNNI skip the nibble shift: the 16 bytes are loaded into both lanes
 * and masked with 0x0F (lane 0) and 0xF0 (lane 1), so lane 1 holds the high nibbles times
 * 16. vpdpbusd cannot overflow on that, the lanes 4..7 of every block's sum are 16 times
 * too large — and so is the Q4_0 bias there (quant_impl.h) — and the accumulator's lanes
 * 4..7 are divided by 16 once at the end (exact: a power of two). One load and one AND per
 * block instead of load, shift, insert, AND: the decoding loop is that much shorter. */

INLINE int high_x16(uint32_t wt) { return VNNI && (wt == MF_TYPE_Q4_0 || wt == MF_TYPE_Q4_1); }

INLINE __m256i codes32(uint32_t wt, const uint8_t *b)
{
    if (high_x16(wt)) {
        const __m256i mask = _mm256_set_m128i(_mm_set1_epi8((char)0xF0), _mm_set1_epi8(0x0F));
        __m128i v = _mm_loadu_si128((const __m128i *)(b + (wt == MF_TYPE_Q4_0 ? 2 : 4)));
        return _mm256_and_si256(_mm256_broadcastsi128_si256(v), mask);
    }
    switch (wt) {
    case MF_TYPE_Q4_0: return nibbles32(b + 2);
    case MF_TYPE_Q4_1: return nibbles32(b + 4);
    case MF_TYPE_Q5_0: return _mm256_or_si256(nibbles32(b + 6), fifth_bits(b + 2));
    case MF_TYPE_Q5_1: return _mm256_or_si256(nibbles32(b + 8), fifth_bits(b + 4));
    case MF_TYPE_Q8_0: return load32(b + 2);
    default: {
        /* 2·E2M1(c) + 12 for c = 0..15 (docs/quantization.md §2, shifted to be unsigned) */
        const __m256i tbl = _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0, 12, 13, 14, 15,
                                             16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0);
        return _mm256_shuffle_epi8(tbl, nibbles32(b + 1));
    }
    }
}

/* mf_e8m0_half(e) for every e, as float bit patterns: a table lookup replaces the ten
 * scalar instructions of the branchy definition in the MXFP4 loop (quant_avx512.c too). */
#define EH(e) ((e) < 2 ? 0x00200000u << ((e)&1) : (uint32_t)((e)-1) << 23)
#define EH4(e) EH(e), EH((e) + 1), EH((e) + 2), EH((e) + 3)
#define EH16(e) EH4(e), EH4((e) + 4), EH4((e) + 8), EH4((e) + 12)
#define EH64(e) EH16(e), EH16((e) + 16), EH16((e) + 32), EH16((e) + 48)
const uint32_t mf_e8m0_half_bits[256] = {EH64(0), EH64(64), EH64(128), EH64(192)};

/* The block scale in all 8 lanes (fp16 broadcast then converted: no scalar round trip). */
INLINE __m256 scale32(uint32_t wt, const uint8_t *b)
{
    if (wt == MF_TYPE_MXFP4) return _mm256_castsi256_ps(_mm256_set1_epi32((int)mf_e8m0_half_bits[b[0]]));
    uint16_t h;
    memcpy(&h, b, 2);
    return _mm256_cvtph_ps(_mm_set1_epi16((short)h));
}

/* The activation bias as this build's Q4_0 kernel needs it: without VNNI the high nibbles
 * are shifted down, so lanes 4..7 of the (×16) bias are shifted back. */
INLINE __m256i bias32(uint32_t wt, const mf_act32 *a)
{
    __m256i bias = load32(a->bias);
    if (wt == MF_TYPE_Q4_0 && !VNNI) bias = _mm256_srav_epi32(bias, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return bias;
}

/* Four blocks' 8-lane integer sums -> one vector: lane i holds sum i's lanes 0..3 (the
 * block's elements 0..15) and lane i + 4 its lanes 4..7 (elements 16..31). One float
 * conversion, scaling and accumulation then serves four (row, token) pairs; a transpose
 * by unpacks costs 7 cheap instructions against 3 of each float operation saved. */
INLINE __m256i reduce4(__m256i v0, __m256i v1, __m256i v2, __m256i v3)
{
    __m256i s01 = _mm256_add_epi32(_mm256_unpacklo_epi32(v0, v1), _mm256_unpackhi_epi32(v0, v1));
    __m256i s23 = _mm256_add_epi32(_mm256_unpacklo_epi32(v2, v3), _mm256_unpackhi_epi32(v2, v3));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
}

/* Integer block sum Σ (q - off)·a in 8 lanes (bias = -off·a, see quant_impl.h). */
INLINE __m256i block_dot(uint32_t wt, __m256i u, __m256i av, __m256i bias)
{
    if (wt == MF_TYPE_Q8_0) return dot_u8s8(bias, _mm256_abs_epi8(u), _mm256_sign_epi8(av, u));
    return dot_u8s8(bias, u, av);
}

/* A reduce4 result -> the 4 whole-block integer sums: lanes i and i + 4 added, after
 * undoing the ×16 of the high nibbles (exact: those lanes are multiples of 16). */
INLINE __m128i fold4(uint32_t wt, __m256i v)
{
    __m128i hi = _mm256_extracti128_si256(v, 1);
    if (high_x16(wt)) hi = _mm_srai_epi32(hi, 4);
    return _mm_add_epi32(_mm256_castsi256_si128(v), hi);
}

INLINE float min32(uint32_t wt, const uint8_t *blk) { return mf_simd_has_min32(wt) ? h2f(blk + 2) : 0.0f; }

/* The fp16 at byte offset `at` of up to 4 blocks (missing ones 0), converted together. */
INLINE __m128 f16x4(const uint8_t *blk, size_t rb, int R, int at)
{
    uint64_t h = 0;
    for (int r = 0; r < R; r++) {
        uint16_t v;
        memcpy(&v, blk + r * rb + at, 2);
        h |= (uint64_t)v << (16 * r);
    }
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)h));
}

/* The scales of up to 4 blocks, rb bytes apart. */
INLINE __m128 scales4(uint32_t wt, const uint8_t *blk, size_t rb, int R)
{
    if (wt != MF_TYPE_MXFP4) return f16x4(blk, rb, R, 0);
    uint32_t e[4] = {0, 0, 0, 0};
    for (int r = 0; r < R; r++) e[r] = mf_e8m0_half_bits[blk[r * rb]];
    return _mm_castsi128_ps(_mm_setr_epi32((int)e[0], (int)e[1], (int)e[2], (int)e[3]));
}

/* y[t·ys + r] = row r · token t for r < R, t < T; x points at token 0's mf_act32 blocks.
 * T = 1: the block sums of R <= 4 rows (missing rows padded with zeros) share one
 * accumulator, a lane per row. T = 4: each row's four token sums share one, a lane per
 * token. Either way every (row, token) pair gets the canonical steps of quant.h, block
 * after block: acc = fma(float(isum), d_w·d_x, acc), then acc = fma(m, s, acc) for the
 * types with a min. */
INLINE void tile32(const uint32_t wt, const int R, const int T, const uint8_t *w, size_t rb, const uint8_t *x,
                   size_t xs, int64_t nb, float *y, int64_t ys, const uint8_t *pf)
{
    const size_t bb = mf_simd_bytes32(wt);
    const __m256i zero = _mm256_setzero_si256();
    if (T == 1) {
        const mf_act32 *a = (const mf_act32 *)x;
        __m128 acc = _mm_setzero_ps();
        for (int64_t b = 0; b < nb; b++, a++) {
            __m256i av = load32(a->qs), bias = bias32(wt, a), v[4] = {zero, zero, zero, zero};
            const uint8_t *blk = w + b * bb;
            prefetch_span(pf, (size_t)b * R * bb, R * bb);
            for (int r = 0; r < R; r++) v[r] = block_dot(wt, codes32(wt, blk + r * rb), av, bias);
            __m128 d4 = _mm_mul_ps(scales4(wt, blk, rb, R), _mm_set1_ps(a->d));
            acc = _mm_fmadd_ps(_mm_cvtepi32_ps(fold4(wt, reduce4(v[0], v[1], v[2], v[3]))), d4, acc);
            if (mf_simd_has_min32(wt)) acc = _mm_fmadd_ps(f16x4(blk, rb, R, 2), _mm_set1_ps(a->s), acc);
        }
        float out[4];
        _mm_storeu_ps(out, acc);
        for (int r = 0; r < R; r++) y[r] = out[r];
        return;
    }
    __m128 acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        prefetch_span(pf, (size_t)b * R * bb, R * bb);
        const mf_act32 *a[4];
        __m256i av[4], bias[4];
        for (int t = 0; t < 4; t++) {
            a[t] = (const mf_act32 *)(x + t * xs) + b;
            av[t] = load32(a[t]->qs);
            bias[t] = bias32(wt, a[t]);
        }
        __m128 dx = _mm_setr_ps(a[0]->d, a[1]->d, a[2]->d, a[3]->d);
        __m128 s4 = mf_simd_has_min32(wt) ? _mm_setr_ps(a[0]->s, a[1]->s, a[2]->s, a[3]->s) : _mm_setzero_ps();
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + r * rb + b * bb;
            __m256i u = codes32(wt, blk);
            __m256i v = reduce4(block_dot(wt, u, av[0], bias[0]), block_dot(wt, u, av[1], bias[1]),
                                block_dot(wt, u, av[2], bias[2]), block_dot(wt, u, av[3], bias[3]));
            __m128 d4 = _mm_mul_ps(_mm256_castps256_ps128(scale32(wt, blk)), dx);
            acc[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(fold4(wt, v)), d4, acc[r]);
            if (mf_simd_has_min32(wt)) acc[r] = _mm_fmadd_ps(_mm_set1_ps(min32(wt, blk)), s4, acc[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        float out[4];
        _mm_storeu_ps(out, acc[r]);
        for (int t = 0; t < 4; t++) y[t * ys + r] = out[t];
    }
}

/* ================================================================ K-quants
 *
 * A super-block is 8 chunks of 32 elements. Per chunk: the codes as unsigned bytes
 * (kchunk), multiplied with the activation bytes (vpmaddubsw, 16-bit pair sums), then
 * with the chunk's scales as 16-bit words (vpmaddwd / vpdpwssd) into 32-bit lanes. After
 * the 8 chunks: the mins (Q2_K, Q4_K, Q5_K) or code offsets (Q3_K: 4, Q6_K: 32) against
 * the activation's 16 bsums, then one float scale per super-block. */

typedef struct kscales {
    __m256i sc;   /* scales as i16, arranged so that word_bcast(sc, j) gives chunk j's */
    __m256i corr; /* i16 per 16-element group: the mins, or the scales (for offsets) */
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
        /* docs/quantization.md §2 on 4 bytes at a time: sc/m 0..3 are bits 0-5 of bytes
         * 0..3 / 4..7; sc/m 4..7 are the nibbles of bytes 8..11 plus bits 6-7 of 0..3 / 4..7 */
        memcpy(&s0, b + 4, 4);
        memcpy(&s1, b + 8, 4);
        memcpy(&s2, b + 12, 4);
        uint64_t sc = (uint64_t)(s0 & 0x3F3F3F3Fu) | (uint64_t)((s2 & 0x0F0F0F0Fu) | ((s0 >> 6) & 0x03030303u) << 4)
                                                         << 32;
        uint64_t mn =
            (uint64_t)(s1 & 0x3F3F3F3Fu) | (uint64_t)(((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 6) & 0x03030303u) << 4) << 32;
        /* scale of chunk j in word j of both lanes; min of chunk j for bsums 2j and 2j+1 */
        k.sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
        __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn));
        k.corr = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
        return k;
    }
    case MF_TYPE_Q2_K: {
        __m128i s8 = _mm_loadu_si128((const __m128i *)b);
        __m128i sc = _mm_and_si128(s8, _mm_set1_epi8(0x0F));
        __m128i mn = _mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F));
        k.sc = evens_odds_i16(sc, 0);
        k.corr = _mm256_cvtepu8_epi16(mn);
        return k;
    }
    case MF_TYPE_Q3_K: {
        /* docs/quantization.md §2 scales at a time: low 4 bits from bytes 0..7 (low then
         * high nibbles), high 2 bits from bytes 8..11 shifted by 2·(k/4) */
        memcpy(&s0, b + 96, 4);
        memcpy(&s1, b + 100, 4);
        memcpy(&s2, b + 104, 4);
        /* built in registers: 4 stores then one 16-byte load would stall store forwarding */
        __m128i w = _mm_setr_epi32((int)((s0 & 0x0F0F0F0Fu) | (s2 & 0x03030303u) << 4),
                                   (int)((s1 & 0x0F0F0F0Fu) | ((s2 >> 2) & 0x03030303u) << 4),
                                   (int)(((s0 >> 4) & 0x0F0F0F0Fu) | ((s2 >> 4) & 0x03030303u) << 4),
                                   (int)(((s1 >> 4) & 0x0F0F0F0Fu) | ((s2 >> 6) & 0x03030303u) << 4));
        __m128i s8 = _mm_sub_epi8(w, _mm_set1_epi8(32));
        k.sc = evens_odds_i16(s8, 1);
        k.corr = _mm256_cvtepi8_epi16(s8);
        return k;
    }
    default: { /* Q6_K */
        __m128i s8 = _mm_loadu_si128((const __m128i *)(b + 192));
        k.sc = evens_odds_i16(s8, 1);
        k.corr = _mm256_cvtepi8_epi16(s8);
        return k;
    }
    }
}

/* Bit `from` of every byte moved to bit `to` (both 0..7, constants once unrolled) and
 * isolated: one shift and one AND. */
INLINE __m256i bit_to(__m256i v, int from, int to)
{
    __m256i m = _mm256_set1_epi8((char)(1 << to));
    if (from > to) return _mm256_and_si256(_mm256_srli_epi16(v, from - to), m);
    if (from < to) return _mm256_and_si256(_mm256_slli_epi16(v, to - from), m);
    return _mm256_and_si256(v, m);
}

/* Codes of elements 32j .. 32j+31 as unsigned bytes (docs/quantization.md §2). */
INLINE __m256i kchunk(uint32_t wt, const uint8_t *b, int j)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    int h = j / 4, k2 = j % 4;
    switch (wt) {
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: {
        __m256i v = load32(b + (wt == MF_TYPE_Q4_K ? 16 : 48) + 32 * (j / 2));
        __m256i q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
        if (wt == MF_TYPE_Q4_K) return q;
        return _mm256_or_si256(q, bit_to(load32(b + 16), j, 4)); /* fifth bit: bit j of qh */
    }
    case MF_TYPE_Q2_K: return _mm256_and_si256(_mm256_srli_epi16(load32(b + 16 + 32 * h), 2 * k2), m2);
    case MF_TYPE_Q3_K: {
        __m256i low2 = _mm256_and_si256(_mm256_srli_epi16(load32(b + 32 + 32 * h), 2 * k2), m2);
        return _mm256_or_si256(low2, bit_to(load32(b), 4 * h + k2, 2)); /* hmask bit -> +4 */
    }
    default: { /* Q6_K: bits 2·k2, 2·k2+1 of qh moved straight to bits 4, 5 */
        __m256i v = load32(b + 64 * h + 32 * (k2 & 1)), qh = load32(b + 128 + 32 * h);
        __m256i low4 = _mm256_and_si256(k2 < 2 ? v : _mm256_srli_epi16(v, 4), m4);
        __m256i hi = k2 == 0   ? _mm256_slli_epi16(qh, 4)
                     : k2 == 1 ? _mm256_slli_epi16(qh, 2)
                     : k2 == 2 ? qh
                               : _mm256_srli_epi16(qh, 2);
        return _mm256_or_si256(low4, _mm256_and_si256(hi, _mm256_set1_epi8(0x30)));
    }
    }
}

/* The sums of one super-block of one (row, token) pair: the scaled code dot (offsets
 * removed) and the min sum, 8 lanes each. */
typedef struct ksum {
    __m256i dot, mins;
} ksum;

INLINE ksum kfinish(uint32_t wt, __m256i iacc, const kscales *ks, const mf_actk *a)
{
    __m256i c = _mm256_madd_epi16(load32(a->bsums), ks->corr);
    if (wt == MF_TYPE_Q6_K) iacc = _mm256_sub_epi32(iacc, _mm256_slli_epi32(c, 5)); /* q - 32 */
    if (wt == MF_TYPE_Q3_K) iacc = _mm256_sub_epi32(iacc, _mm256_slli_epi32(c, 2)); /* q - 4 */
    return (ksum){iacc, c};
}

/* y[t·ys + r] = row r · token t for r < R, t < T (T = 1 or 4), as tile32: per super-block
 * the integer sums of four (row, token) pairs are reduced into one vector a lane per pair,
 * then the canonical steps of quant.h: acc = fma(float(dot), d·dx, acc), and for the types
 * with mins acc = fma(-float(mins), dmin·dx, acc). */
INLINE void tilek(const uint32_t wt, const int R, const int T, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,
                  int64_t nb, float *y, int64_t ys, const uint8_t *pf)
{
    const size_t bb = mf_simd_bytesk(wt);
    const int has_dmin = mf_simd_k_dmin_at(wt) >= 0;
    const int NR = R, NT = T;
    __m128 acc[4];
    for (int r = 0; r < 4; r++) acc[r] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * bb;
        prefetch_span(pf, (size_t)b * R * bb, R * bb);
        const mf_actk *a[4];
        for (int t = 0; t < NT; t++) a[t] = (const mf_actk *)(x + t * xs) + b;
        kscales ks[4];
        __m256i iacc[4][4];
        for (int r = 0; r < NR; r++) {
            ks[r] = kscales_of(wt, blk + r * rb);
            for (int t = 0; t < NT; t++) iacc[r][t] = _mm256_setzero_si256();
        }
        /* unrolled: the shifts and offsets of each chunk become constants */
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m256i u[4], sc[4], av[4];
            for (int t = 0; t < NT; t++) av[t] = load32(a[t]->qs + 32 * j);
            for (int r = 0; r < NR; r++) {
                u[r] = kchunk(wt, blk + r * rb, j);
                sc[r] = word_bcast(ks[r].sc, j);
                for (int t = 0; t < NT; t++) iacc[r][t] = dot_i16(iacc[r][t], _mm256_maddubs_epi16(u[r], av[t]), sc[r]);
            }
        }
        const __m256i zero = _mm256_setzero_si256();
        if (T == 1) {
            ksum k[4] = {{zero, zero}, {zero, zero}, {zero, zero}, {zero, zero}};
            for (int r = 0; r < R; r++) k[r] = kfinish(wt, iacc[r][0], &ks[r], a[0]);
            __m128 dx = _mm_set1_ps(a[0]->d);
            __m128 d4 = _mm_mul_ps(f16x4(blk, rb, R, mf_simd_k_d_at(wt)), dx);
            acc[0] =
                _mm_fmadd_ps(_mm_cvtepi32_ps(fold4(wt, reduce4(k[0].dot, k[1].dot, k[2].dot, k[3].dot))), d4, acc[0]);
            if (has_dmin) {
                __m128 m4 = _mm_mul_ps(f16x4(blk, rb, R, mf_simd_k_dmin_at(wt)), dx);
                acc[0] = _mm_fnmadd_ps(_mm_cvtepi32_ps(fold4(wt, reduce4(k[0].mins, k[1].mins, k[2].mins, k[3].mins))),
                                       m4, acc[0]);
            }
        } else {
            __m128 dx = _mm_setr_ps(a[0]->d, a[1]->d, a[2]->d, a[3]->d);
            for (int r = 0; r < R; r++) {
                ksum k[4];
                for (int t = 0; t < 4; t++) k[t] = kfinish(wt, iacc[r][t], &ks[r], a[t]);
                __m128 d4 = _mm_mul_ps(_mm_set1_ps(h2f(blk + r * rb + mf_simd_k_d_at(wt))), dx);
                acc[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(fold4(wt, reduce4(k[0].dot, k[1].dot, k[2].dot, k[3].dot))), d4,
                                      acc[r]);
                if (has_dmin) {
                    __m128 m4 = _mm_mul_ps(_mm_set1_ps(h2f(blk + r * rb + mf_simd_k_dmin_at(wt))), dx);
                    acc[r] = _mm_fnmadd_ps(
                        _mm_cvtepi32_ps(fold4(wt, reduce4(k[0].mins, k[1].mins, k[2].mins, k[3].mins))), m4, acc[r]);
                }
            }
        }
    }
    float out[4];
    if (T == 1) {
        _mm_storeu_ps(out, acc[0]);
        for (int r = 0; r < R; r++) y[r] = out[r];
        return;
    }
    for (int r = 0; r < R; r++) {
        _mm_storeu_ps(out, acc[r]);
        for (int t = 0; t < 4; t++) y[t * ys + r] = out[t];
    }
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

INLINE void tilef(const uint32_t wt, const int R, const int T, const uint8_t *w, size_t rb, const uint8_t *x, size_t xs,
                  int64_t n, float *y, int64_t ys, const uint8_t *pf)
{
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    const size_t es = wt == MF_TYPE_F32 ? 4 : 2;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        prefetch_span(pf, (size_t)i * R * es, 8 * R * es);
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

/* ================================================================ activations
 *
 * The twins of quant_dot.c's act32_block/actk_block, byte for byte: the same f32
 * operations (max|x|, 127/max, x·(127/max)), the conversion to int32 in the default
 * rounding mode (nearest even, as nearbyintf), the same F16C rounding of d. */

/* max |x| over n floats (n a multiple of 8) */
static const float zero_block[256];

INLINE float amax8(const float *x, int n)
{
    const __m256 nosign = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        m = _mm256_max_ps(m, _mm256_and_ps(v, nosign));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    if (_mm256_movemask_ps(nan)) return NAN; /* as quant_dot.c's max_abs */
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 32 floats -> 32 int8 codes (x·id rounded to nearest even); returns the 8 sums of 4. */
INLINE __m256i codes_of(const float *x, float id, int8_t *qs)
{
    __m256 vid = _mm256_set1_ps(id);
    __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
    __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
    __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
    __m256i q3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
    /* packs work within 128-bit lanes: the permute restores element order */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    _mm256_storeu_si256((__m256i *)qs, _mm256_permutevar8x32_epi32(b, order));
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(q0, q1), _mm256_hadd_epi32(q2, q3));
    return _mm256_permutevar8x32_epi32(h, order);
}

void mf_quantize_act_avx2(uint32_t wtype, const float *x, void *qx, int64_t n)
{
    switch (mf_act_type(wtype)) {
    case MF_TYPE_F32: memcpy(qx, x, (size_t)n * sizeof(float)); return;
    case MF_TYPE_Q8_K:
        for (int64_t b = 0; b < n / 256; b++) {
            const float *xb = x + 256 * b;
            mf_actk *a = (mf_actk *)qx + b;
            float amax = amax8(xb, 256);
            float id = amax > 0 ? 127.0f / amax : 0.0f;
            if (!isfinite(amax)) xb = zero_block; /* no codes: quant_dot.c's zero_block says why */
            for (int c = 0; c < 8; c++) {
                /* sums of 4 in element order: lanes 0..3 are elements 0..15, 4..7 16..31 */
                __m256i s4 = codes_of(xb + 32 * c, id, a->qs + 32 * c);
                __m128i s = _mm_hadd_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
                s = _mm_hadd_epi32(s, s);
                a->bsums[2 * c] = (int16_t)_mm_cvtsi128_si32(s);
                a->bsums[2 * c + 1] = (int16_t)_mm_extract_epi32(s, 1);
            }
            a->d = amax / 127.0f;
            memset(a->pad, 0, sizeof a->pad);
        }
        return;
    default: {
        const int off = mf_act_offset(wtype), hi = wtype == MF_TYPE_Q4_0 ? 16 : 1, coff = mf_act_corr_offset(wtype);
        const __m256i mul = _mm256_setr_epi32(-off, -off, -off, -off, -off * hi, -off * hi, -off * hi, -off * hi);
        for (int64_t b = 0; b < n / 32; b++) {
            const float *xb = x + 32 * b;
            mf_act32 *a = (mf_act32 *)qx + b;
            float amax = amax8(xb, 32);
            float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
            if (!isfinite(amax)) xb = zero_block;
            __m256i s4 = codes_of(xb, id, a->qs);
            _mm256_storeu_si256((__m256i *)a->bias, _mm256_mullo_epi32(s4, mul));
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
            s = _mm_hadd_epi32(s, s);
            s = _mm_hadd_epi32(s, s);
            float d16 = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
            a->d = isinf(d16) ? d : d16;
            a->s = a->d * (float)_mm_cvtsi128_si32(s);
            a->corr = -coff * _mm_cvtsi128_si32(s);
            memset(a->pad, 0, sizeof a->pad);
        }
    }
    }
}

/* ================================================================ the row walk */

typedef void (*tile_fn)(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, int64_t ys,
                        const uint8_t *pf);

/* The four tile shapes of one type: 4 rows × 1 token, 1 × 1, 4 × 4, 1 × 4. The 4 × 4 tile is
 * RB rows at a time (4/RB calls): as many rows as keep the accumulators in registers. */
typedef struct tiles {
    tile_fn r4t1, r1t1, r4t4, r1t4;
} tiles;

#define TILES(name, tile, WT, RB)                                                                           \
    static void name##_r4t1(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, \
                            int64_t ys, const uint8_t *pf)                                                  \
    {                                                                                                       \
        tile(WT, 4, 1, w, rb, x, xs, nb, y, ys, pf);                                                        \
    }                                                                                                       \
    static void name##_r1t1(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, \
                            int64_t ys, const uint8_t *pf)                                                  \
    {                                                                                                       \
        tile(WT, 1, 1, w, rb, x, xs, nb, y, ys, pf);                                                        \
    }                                                                                                       \
    static void name##_r4t4(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, \
                            int64_t ys, const uint8_t *pf)                                                  \
    {                                                                                                       \
        for (int r = 0; r < 4; r += RB)                                                                     \
            tile(WT, RB, 4, w + r * rb, rb, x, xs, nb, y + r, ys, pf ? pf + r * rb : NULL);                 \
    }                                                                                                       \
    static void name##_r1t4(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, \
                            int64_t ys, const uint8_t *pf)                                                  \
    {                                                                                                       \
        tile(WT, 1, 4, w, rb, x, xs, nb, y, ys, pf);                                                        \
    }                                                                                                       \
    static const tiles name = {name##_r4t1, name##_r1t1, name##_r4t4, name##_r1t4};

/* Rows per batched K-quant tile: 4 × 4 pairs of 8-lane sums need 16 registers, which fit
 * beside the rest only in the 32 registers of AVX-512 (VL) encodings. */
#if defined(__AVX512VL__)
#define KRB 4
#else
#define KRB 2
#endif

TILES(t_f32, tilef, MF_TYPE_F32, 2)
TILES(t_f16, tilef, MF_TYPE_F16, 2)
TILES(t_bf16, tilef, MF_TYPE_BF16, 2)
TILES(t_q4_0, tile32, MF_TYPE_Q4_0, 4)
TILES(t_q4_1, tile32, MF_TYPE_Q4_1, 4)
TILES(t_q5_0, tile32, MF_TYPE_Q5_0, 4)
TILES(t_q5_1, tile32, MF_TYPE_Q5_1, 4)
TILES(t_q8_0, tile32, MF_TYPE_Q8_0, 4)
TILES(t_mxfp4, tile32, MF_TYPE_MXFP4, 4)
TILES(t_q2_k, tilek, MF_TYPE_Q2_K, KRB)
TILES(t_q3_k, tilek, MF_TYPE_Q3_K, KRB)
TILES(t_q4_k, tilek, MF_TYPE_Q4_K, KRB)
TILES(t_q5_k, tilek, MF_TYPE_Q5_K, KRB)
TILES(t_q6_k, tilek, MF_TYPE_Q6_K, KRB)

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

/* ================================================================ packed matrices
 *
 * The lane-per-row tiles of quant_tiles.h with 8 rows per ymm register: a packed group of
 * 16 rows is two tiles (h = 0, 1), the second reading the group from L2 (16 rows of a row
 * are at most a few tens of KB). For CPUs without AVX-512 (on AVX-512 builds
 * quant_avx512.c serves packed matrices); tests/test_quant_pack.c runs them in every AVX2
 * build. */

enum { SLAB = 32 }; /* quant_tiles.h's block loop step (its scale table is AVX-512's) */

#define VW 8
#define V_MAXT 4
#define V_GROUP 2 /* 16 ymm registers: 8 codes, 4 accumulators, 2 sums, constants */
#define V_Q8_SIGNED (!VNNI)
#define V_HIGH_X16 VNNI /* without VNNI the byte dot (vpmaddubsw) saturates on codes up to 240 */
#include "quant_tiles.h"

typedef void (*ptile_fn)(const uint8_t *w, size_t rb, int h, const uint8_t *x, size_t xs, int64_t nb, float *y,
                         int64_t ys);
#define PTILE(name, tile, WT, T)                                                                                  \
    static void name##_##T(const uint8_t *w, size_t rb, int h, const uint8_t *x, size_t xs, int64_t nb, float *y, \
                           int64_t ys)                                                                            \
    {                                                                                                             \
        tile(1, WT, T, w, rb, h, x, xs, nb, y, ys, NULL);                                                         \
    }
/* a list of macro calls: clang-format 14 cannot lay it out */
/* clang-format off */
#define PTILES(name, tile, WT)                                        \
    PTILE(name, tile, WT, 4) PTILE(name, tile, WT, 2) PTILE(name, tile, WT, 1) \
    static const ptile_fn name[3] = {name##_4, name##_2, name##_1};
/* clang-format on */

#define PTILES_OF(name, tile, WT) PTILES(p_##name, tile, WT)
V_TYPES(PTILES_OF)

static const ptile_fn *ptiles_of(uint32_t wt)
{
#define CASE(name, tile, WT) \
    case WT: return p_##name;
    switch (wt) {
        /* clang-format off */
    V_TYPES(CASE)
    default: return NULL;
        /* clang-format on */
    }
#undef CASE
}

void mf_matmul_packed_avx2(uint32_t wtype, const void *P, int64_t n_in, int64_t g0, int64_t g1, const void *qx,
                           size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    const ptile_fn *f = ptiles_of(wtype);
    if (!f) return;
    const size_t rb = mf_type_row_bytes(wtype, n_in);
    const int64_t nb = n_in / mf_type_get(wtype)->blck;
    const uint8_t *x = qx;
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *w = (const uint8_t *)P + (size_t)g * MF_PACK_ROWS * rb;
        for (int h = 0; h < 2; h++) {
            float *yg = y + g * MF_PACK_ROWS + 8 * h;
            int t = 0;
            for (; t + 4 <= n_tok; t += 4)
                f[0](w, rb, h, x + t * qx_stride, qx_stride, nb, yg + t * y_stride, y_stride);
            if (n_tok - t >= 2) {
                f[1](w, rb, h, x + t * qx_stride, qx_stride, nb, yg + t * y_stride, y_stride);
                t += 2;
            }
            if (t < n_tok) f[2](w, rb, h, x + t * qx_stride, qx_stride, nb, yg + t * y_stride, y_stride);
        }
    }
}

void mf_matmul_rows_avx2(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                         size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    const tiles *k = tiles_of(wtype);
    const mf_type_info *ti = mf_type_get(wtype);
    if (!k) return;
    size_t rb = mf_type_row_bytes(wtype, n_in);
    int64_t nb = n_in / ti->blck; /* blocks per row; elements for the float types */
    const uint8_t *x = qx;
    for (int64_t r = r0; r < r1;) {
        const uint8_t *w = (const uint8_t *)W + (size_t)r * rb;
        float *yr = y + r;
        int t = 0;
        if (r + 4 <= r1) {
            /* the first tile over these rows prefetches the next 4 (when they are ours) */
            const uint8_t *pf = r + 8 <= r1 ? w + 4 * rb : NULL;
            for (; t + 4 <= n_tok; t += 4, pf = NULL)
                k->r4t4(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride, pf);
            for (; t < n_tok; t++, pf = NULL)
                k->r4t1(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride, pf);
            r += 4;
        } else {
            for (; t + 4 <= n_tok; t += 4)
                k->r1t4(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride, NULL);
            for (; t < n_tok; t++) k->r1t1(w, rb, x + t * qx_stride, qx_stride, nb, yr + t * y_stride, y_stride, NULL);
            r += 1;
        }
    }
}

#endif
