/* quant_tiles.h — the lane-per-row tiles, written once for two vector widths: included by
 * quant_avx512.c (VW = 16: zmm, a tile is the 16 rows of a group) and by quant_avx2.c
 * (VW = 8: ymm, a tile is half of a packed group, h = 0 or 1). Not a header to include
 * anywhere else: it instantiates static functions from the vector wrappers the including
 * file defines (vi, vf, v_load, v_and, ..., v_dot4; see quant_avx512.c for the list).
 *
 * Layout: one 32-bit lane per weight row. A register u holds 4 codes of each of VW rows
 * (lane r = codes 4j..4j+3 of row r), and one vpdpbusd multiplies it with the same 4
 * activation bytes of one token, broadcast to all lanes:
 *
 *     s[r] += Σ_{i<4} u[r][4j+i] · a[4j+i]          (4·VW byte products, 1 instruction)
 *
 * Eight of them give the integer block sums of VW rows for one token, already in separate
 * lanes: no horizontal reduction at all. Then one conversion, one scale product and one FMA
 * serve VW (row, token) pairs — the canonical steps of quant.h, block after block — and the
 * accumulator of token t is VW consecutive results y[t][r0 ..], stored as they are.
 *
 * Where the codes come from: a packed block (pk = 1, quant_impl.h) holds them in this
 * layout already, so they are plain loads; the file's row-major layout (pk = 0, VW = 16
 * only) is transposed on the fly by rows16/dwords16 of quant_avx512.c, which costs some 30
 * instructions per block and 16 rows.
 *
 * Offsets: the codes are unsigned bytes (vpdpbusd multiplies unsigned by signed); Q4_0,
 * Q5_0 and MXFP4 carry their offset (quant_impl.h), Q8_0 is dotted as w + 128 where the
 * byte dot is vpdpbusd (V_Q8_SIGNED = 0), else as |w|·sign(a, w) (plain AVX2, whose
 * vpmaddubsw would saturate on w + 128). The sum of a block starts from the activation's
 * corr = -off·Σa (quant_impl.h), so the integer sums are exactly the scalar twin's
 * Σ (q - off)·a, and with the same float steps the results equal the scalar twin's bit for
 * bit (tests/test_quant_pack.c, tests/test_quant_avx512.c).
 *
 * The including file defines VW, V_GROUP (tokens whose sums run interleaved: independent
 * vpdpbusd chains to hide its latency, as many as registers allow), V_MAXT (the largest
 * token count of a tile), V_Q8_SIGNED and V_HIGH_X16 (1 where the byte dot is vpdpbusd,
 * which cannot overflow on codes up to 240: see vcodes32), and the byte dots it has: dot4
 * (AVX-512: the vpdpbusd with a broadcast memory operand) or dot_u8s8 and dot_i16 (AVX2).
 */

/* ================================================================ vector wrappers
 *
 * The few operations the tiles use, on VW lanes of 32 bits: _mm512_OP / _mm256_OP, the
 * integer bitwise ones with the width in the suffix as well (_mm512_and_si512). */

#if VW == 16
typedef __m512i vi;
typedef __m512 vf;
#define V_(op) _mm512_##op
#define VSI_(op) _mm512_##op##512
#else
typedef __m256i vi;
typedef __m256 vf;
#define V_(op) _mm256_##op
#define VSI_(op) _mm256_##op##256
#endif
INLINE vi v_load(const void *p) { return VSI_(loadu_si)((const vi *)p); }
INLINE vi v_zero(void) { return VSI_(setzero_si)(); }
INLINE vi v_set1_8(char c) { return V_(set1_epi8)(c); }
INLINE vi v_set1_32(int v) { return V_(set1_epi32)(v); }
INLINE vi v_and(vi a, vi b) { return VSI_(and_si)(a, b); }
INLINE vi v_or(vi a, vi b) { return VSI_(or_si)(a, b); }
INLINE vi v_xor(vi a, vi b) { return VSI_(xor_si)(a, b); }
INLINE vi v_add32(vi a, vi b) { return V_(add_epi32)(a, b); }
INLINE vi v_sub32(vi a, vi b) { return V_(sub_epi32)(a, b); }
INLINE vi v_mullo32(vi a, vi b) { return V_(mullo_epi32)(a, b); }
INLINE vi v_srli16(vi a, int n) { return V_(srli_epi16)(a, n); }
INLINE vi v_slli16(vi a, int n) { return V_(slli_epi16)(a, n); }
INLINE vi v_srli32(vi a, int n) { return V_(srli_epi32)(a, n); }
INLINE vi v_slli32(vi a, int n) { return V_(slli_epi32)(a, n); }
INLINE vi v_srai32(vi a, int n) { return V_(srai_epi32)(a, n); }
INLINE vi v_sllv32(vi a, vi n) { return V_(sllv_epi32)(a, n); }
INLINE vi v_shuffle8(vi t, vi i) { return V_(shuffle_epi8)(t, i); }
INLINE vf v_zerof(void) { return V_(setzero_ps)(); }
INLINE vf v_set1f(float f) { return V_(set1_ps)(f); }
INLINE vf v_cvt(vi v) { return V_(cvtepi32_ps)(v); }
INLINE vf v_mulf(vf a, vf b) { return V_(mul_ps)(a, b); }
INLINE vf v_fmadd(vf a, vf b, vf c) { return V_(fmadd_ps)(a, b, c); }
INLINE vf v_fnmadd(vf a, vf b, vf c) { return V_(fnmadd_ps)(a, b, c); }
INLINE void v_storef(float *p, vf v) { V_(storeu_ps)(p, v); }

/* the operations whose form differs between the widths */
#if VW == 16
INLINE vf v_as_f(vi v) { return _mm512_castsi512_ps(v); }
INLINE vi v_bcast128(__m128i v) { return _mm512_broadcast_i32x4(v); }
INLINE vi v_u8_to_32(const uint8_t *p)
{
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
}
INLINE vf v_f16(const void *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
/* lanes where v < 2 from a, the others from b */
INLINE vi v_select_lt2(vi v, vi a, vi b)
{
    return _mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(v, _mm512_set1_epi32(2)), b, a);
}
/* u + 16 in the bytes where rep has the bit of `bits` (one bit per byte) */
INLINE vi v_add16_where(vi u, vi rep, vi bits)
{
    return _mm512_mask_add_epi8(u, _mm512_test_epi8_mask(rep, bits), u, _mm512_set1_epi8(16));
}
/* two lanes of 16-bit values -> one lane holding the pair (lo, hi) */
INLINE vi v_pair16(vi lo, vi hi) { return _mm512_mask_blend_epi16(0xAAAAAAAAu, lo, _mm512_slli_epi32(hi, 16)); }
/* s + u · (the 4 activation bytes at p, broadcast), per lane */
INLINE vi v_dot4(vi s, vi u, const int8_t *p) { return dot4(s, u, p); }
INLINE vi v_dot4_signed(vi s, vi u, const int8_t *p) { return dot4(s, u, p); } /* unused: V_Q8_SIGNED 0 */
/* s + Σ of the two i16 products per lane, c times the bsum pair at p broadcast */
INLINE vi v_dotw(vi s, vi c, const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_dpwssd_epi32(s, c, _mm512_set1_epi32(v));
}
#else
INLINE vf v_as_f(vi v) { return _mm256_castsi256_ps(v); }
INLINE vi v_bcast128(__m128i v) { return _mm256_broadcastsi128_si256(v); }
INLINE vi v_u8_to_32(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}
INLINE vf v_f16(const void *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
INLINE vi v_select_lt2(vi v, vi a, vi b)
{
    return _mm256_blendv_epi8(b, a, _mm256_cmpgt_epi32(_mm256_set1_epi32(2), v));
}
INLINE vi v_add16_where(vi u, vi rep, vi bits)
{
    vi on = _mm256_cmpeq_epi8(_mm256_and_si256(rep, bits), bits);
    return _mm256_add_epi8(u, _mm256_and_si256(on, _mm256_set1_epi8(16)));
}
INLINE vi v_pair16(vi lo, vi hi) { return _mm256_blend_epi16(lo, _mm256_slli_epi32(hi, 16), 0xAA); }
INLINE vi v_bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}
INLINE vi v_dot4(vi s, vi u, const int8_t *p) { return dot_u8s8(s, u, v_bcast4(p)); }
/* signed codes w: |w| · sign(a, w), as block_dot does for Q8_0 */
INLINE vi v_dot4_signed(vi s, vi w, const int8_t *p)
{
    return dot_u8s8(s, _mm256_abs_epi8(w), _mm256_sign_epi8(v_bcast4(p), w));
}
INLINE vi v_dotw(vi s, vi c, const int16_t *p) { return dot_i16(s, c, v_bcast4((const int8_t *)(const void *)p)); }
#endif

/* ================================================================ loads */

/* Block byte offset of the 16 nibble bytes of a 32-element type (docs/quantization.md
 * §2). */
INLINE int vnibbles_at(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q4_0: return 2;
    case MF_TYPE_Q4_1: return 4;
    case MF_TYPE_Q5_0: return 6;
    case MF_TYPE_Q5_1: return 8;
    default: return 1; /* MXFP4 */
    }
}

/* The 16 bytes at block byte o of the tile's rows as lane-per-row words: Z[j] lane r =
 * bytes 4j..4j+3 of row r. Packed: payload words (quant_impl.h) of rows VW·h ..; row-major
 * (VW = 16): the 16 rows rb bytes apart, transposed. */
INLINE void vwords(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int h, int o, vi Z[4])
{
    if (pk) {
        const uint8_t *p = blk + mf_pack_word(wt, (o - mf_pack_lead(wt)) / 4) + 4 * VW * h;
        for (int j = 0; j < 4; j++) Z[j] = v_load(p + 64 * j);
        return;
    }
#if VW == 16
    rows16(blk + o, rb, Z);
#endif
}

/* The 32-bit words at block byte o of the tile's rows, one per lane. */
INLINE vi vword(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int h, int o)
{
    if (pk) return v_load(blk + mf_pack_word(wt, (o - mf_pack_lead(wt)) / 4) + 4 * VW * h);
#if VW == 16
    return dwords16(blk + o, rb);
#else
    return v_zero();
#endif
}

/* The fp16 field at block byte `at` of the tile's rows as floats (bb: block bytes). */
INLINE vf vf16(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int h, int at, int bb)
{
    if (pk) return v_f16(blk + mf_pack_field(wt, at, bb) + 2 * VW * h);
    _Alignas(64) uint16_t f[VW];
    for (int r = 0; r < VW; r++) memcpy(&f[r], blk + (size_t)r * rb + at, 2);
    return v_f16(f);
}

/* VW E8M0 bytes -> mf_e8m0_half of each as floats (quant_impl.h): (e - 1) << 23 for e >= 2,
 * the subnormals 0x00200000 << e for e = 0, 1. */
INLINE vf ve8m0(const uint8_t *e)
{
    vi v = v_u8_to_32(e);
    vi normal = v_slli32(v_sub32(v, v_set1_32(1)), 23);
    vi sub = v_sllv32(v_set1_32(0x00200000), v);
    return v_as_f(v_select_lt2(v, sub, normal));
}

/* ================================================================ 32-element types */

/* u[j] lane r = codes of elements 4j..4j+3 of the block of row r, as unsigned bytes:
 * Q4_0/Q4_1 0..15, Q5_0/Q5_1 0..31, MXFP4 2·E2M1 + 12 in 0..24, Q8_0 w + 128 (or w itself
 * with V_Q8_SIGNED). Elements 0..15 are the low nibbles of bytes 0..15, elements 16..31 the
 * high ones (Q4_0 order), so u[j] and u[j + 4] come from the same word j.
 * x16 (one-token tiles of the types vx16 names: Q4_0 and Q4_1 here, Q4_K in vkcodes):
 * u[4..7] are the high nibbles times 16 — the bytes masked with 0xF0, no shift — and the
 * caller divides their sums by 16 (exact). */
INLINE int vx16(uint32_t wt) { return V_HIGH_X16 && (wt == MF_TYPE_Q4_0 || wt == MF_TYPE_Q4_1 || wt == MF_TYPE_Q4_K); }
INLINE void vcodes32(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int h, int x16, vi u[8])
{
    vi Z[4];
    if (wt == MF_TYPE_Q8_0) {
        const vi flip = v_set1_8((char)0x80);
        for (int k = 0; k < 2; k++) {
            vwords(pk, wt, blk, rb, h, 2 + 16 * k, Z);
            for (int j = 0; j < 4; j++) u[4 * k + j] = V_Q8_SIGNED ? Z[j] : v_xor(Z[j], flip);
        }
        return;
    }
    const vi m4 = v_set1_8(0x0F), mf0 = v_set1_8((char)0xF0);
    vwords(pk, wt, blk, rb, h, vnibbles_at(wt), Z);
    for (int j = 0; j < 4; j++) {
        u[j] = v_and(Z[j], m4);
        u[j + 4] = x16 ? v_and(Z[j], mf0) : v_and(v_srli16(Z[j], 4), m4);
    }
    if (wt == MF_TYPE_Q5_0 || wt == MF_TYPE_Q5_1) {
        /* fifth bit of element e = bit e of the 32-bit qh: for u[j], byte j/2 of qh copied
         * to the 4 bytes of its lane, tested against one bit per byte, 16 added where set */
        vi q = vword(pk, wt, blk, rb, h, wt == MF_TYPE_Q5_0 ? 2 : 4);
        const vi lo = v_set1_32(0x08040201), hi = v_set1_32((int)0x80402010u);
        for (int j = 0; j < 8; j++) {
            const int c = j / 2; /* byte c of dword d is byte 4d + c of its 128-bit lane */
            vi rep = v_shuffle8(q, v_bcast128(_mm_setr_epi32(0x01010101 * c, 0x01010101 * (4 + c), 0x01010101 * (8 + c),
                                                             0x01010101 * (12 + c))));
            u[j] = v_add16_where(u[j], rep, j % 2 ? hi : lo);
        }
    }
    if (wt == MF_TYPE_MXFP4) {
        /* 2·E2M1(c) + 12 for c = 0..15 (docs/quantization.md §2), in each 128-bit lane for vpshufb */
        const vi tbl = v_bcast128(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0));
        for (int j = 0; j < 8; j++) u[j] = v_shuffle8(tbl, u[j]);
    }
}

/* The byte dot of a code register with 4 activation bytes: offset codes, or Q8_0's signed
 * codes where V_Q8_SIGNED. */
INLINE vi vdot(uint32_t wt, vi s, vi u, const int8_t *p)
{
    if (V_Q8_SIGNED && wt == MF_TYPE_Q8_0) return v_dot4_signed(s, u, p);
    return v_dot4(s, u, p);
}

/* Where a block sum starts: -off·Σa (the code offset), or 0 for Q8_0's signed dot. */
INLINE vi vcorr(uint32_t wt, const mf_act32 *a)
{
    return V_Q8_SIGNED && wt == MF_TYPE_Q8_0 ? v_zero() : v_set1_32(a->corr);
}

/* Prefetch of a packed matrix: the group is one sequential stream, so the kernel asks for
 * the bytes MF_PACK_PREFETCH ahead of the block it works on (the hardware prefetchers stop
 * at every 4 KB page; this keeps the next pages' lines in flight). docs/cpu.md §3. */
#ifndef MF_PACK_PREFETCH
#define MF_PACK_PREFETCH 2048
#endif
INLINE void vprefetch(const uint8_t *p, size_t n)
{
    for (size_t o = 0; o < n; o += 64) _mm_prefetch((const char *)(p + MF_PACK_PREFETCH + o), _MM_HINT_T0);
}

/* y[t·ys + r] = row r · token t for the tile's VW rows, t < T, nb blocks per row. pk = 1: w
 * points at a packed group (block b at w + b·16·bb), the tile is its rows VW·h ..;
 * pk = 0 (VW = 16): w points at row 0 of 16 rows rb bytes apart, pf at rows to prefetch.
 * x points at token 0's mf_act32 blocks, xs bytes per token. */
INLINE void vtile32(const int pk, const uint32_t wt, const int T, const uint8_t *w, size_t rb, int h, const uint8_t *x,
                    size_t xs, int64_t nb, float *y, int64_t ys, const uint8_t *pf)
{
    const size_t bb = mf_simd_bytes32(wt), pbb = pk ? 16 * bb : bb;
    const int G = T < V_GROUP ? T : V_GROUP;
#if VW == 16
    scale_tab st;
#endif
    vf acc[V_MAXT];
    for (int t = 0; t < T; t++) acc[t] = v_zerof();
    for (int64_t b0 = 0; b0 < nb; b0 += SLAB) {
        const int n = nb - b0 < SLAB ? (int)(nb - b0) : SLAB;
#if VW == 16
        if (!pk) fill_scales(wt, w + b0 * bb, rb, n, &st);
#endif
        for (int i = 0; i < n; i++) {
            const int64_t b = b0 + i;
            const uint8_t *blk = w + b * pbb;
            if (pk && h == 0) vprefetch(blk, pbb);
            else if (pf && ((size_t)b * bb & 63) < bb)
                for (int r = 0; r < 16; r++)
                    _mm_prefetch((const char *)(pf + (size_t)r * rb + (size_t)b * bb), _MM_HINT_T1);
            vi u[8];
            const int x16 = T == 1 && vx16(wt);
            vcodes32(pk, wt, blk, rb, h, x16, u);
            vf dw = v_zerof(), mw = v_zerof();
            if (pk) {
                dw = wt == MF_TYPE_MXFP4 ? ve8m0(blk + VW * h) : vf16(1, wt, blk, rb, h, 0, (int)bb);
                if (mf_simd_has_min32(wt)) mw = vf16(1, wt, blk, rb, h, 2, (int)bb);
            }
#if VW == 16
            else {
                dw = scale_of(wt, &st, i);
                if (mf_simd_has_min32(wt)) mw = v_f16(st.m[i]);
            }
#endif
            if (T == 1) {
                /* one token: two chains of dot products instead of one of eight (latency);
                 * with x16 the second chain holds the high nibbles' sums times 16 */
                const mf_act32 *a = (const mf_act32 *)(const void *)x + b;
                vi s0 = vcorr(wt, a), s1 = v_zero(), s;
                if (x16) {
                    for (int j = 0; j < 4; j++) {
                        s0 = vdot(wt, s0, u[j], a->qs + 4 * j);
                        s1 = vdot(wt, s1, u[j + 4], a->qs + 4 * j + 16);
                    }
                    s = v_add32(s0, v_srai32(s1, 4));
                } else {
                    for (int j = 0; j < 8; j += 2) {
                        s0 = vdot(wt, s0, u[j], a->qs + 4 * j);
                        s1 = vdot(wt, s1, u[j + 1], a->qs + 4 * j + 4);
                    }
                    s = v_add32(s0, s1);
                }
                acc[0] = v_fmadd(v_cvt(s), v_mulf(dw, v_set1f(a->d)), acc[0]);
                if (mf_simd_has_min32(wt)) acc[0] = v_fmadd(mw, v_set1f(a->s), acc[0]);
                continue;
            }
            for (int t0 = 0; t0 < T; t0 += G) {
                const mf_act32 *a[V_GROUP];
                vi s[V_GROUP];
                for (int g = 0; g < G; g++) {
                    a[g] = (const mf_act32 *)(const void *)(x + (t0 + g) * xs) + b;
                    s[g] = vcorr(wt, a[g]);
                }
                for (int j = 0; j < 8; j++)
                    for (int g = 0; g < G; g++) s[g] = vdot(wt, s[g], u[j], a[g]->qs + 4 * j);
                for (int g = 0; g < G; g++) {
                    acc[t0 + g] = v_fmadd(v_cvt(s[g]), v_mulf(dw, v_set1f(a[g]->d)), acc[t0 + g]);
                    if (mf_simd_has_min32(wt)) acc[t0 + g] = v_fmadd(mw, v_set1f(a[g]->s), acc[t0 + g]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) v_storef(y + t * ys, acc[t]);
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
 * Here, per super-block and tile, the codes are first decoded into the lane-per-row layout
 * (64 registers' worth, kept in a stack buffer) with the scales as 32-bit lanes and the c
 * as 16-bit pairs. Per token: vpdpbusd over a sub-block's 4 or 8 words gives its sums of
 * the tile's rows, one vpmulld by the scales and one add fold them into dot; the 16 bsums
 * enter through 8 vpdpwssd (pairs of c times a broadcast pair of bsums) — into dot for the
 * offsets (exact integers: the scalar twin's), into a separate sum for the mins. */

INLINE int vk_has_min(uint32_t wt) { return mf_simd_k_dmin_at(wt) >= 0; }
/* elements per sub-block: 32 for Q4_K/Q5_K, 16 for the others */
INLINE int vk_sub(uint32_t wt) { return wt == MF_TYPE_Q4_K || wt == MF_TYPE_Q5_K ? 32 : 16; }
typedef struct vkdec {
    vi u[64];  /* u[j] lane r: codes of elements 4j..4j+3 of row r, unsigned */
    vi sc[16]; /* sub-block scales, int32 per row (8 used for 32-element sub-blocks) */
    vi c[8];   /* int16 pairs (c_2k, c_2k+1) per row, for the bsum pairs */
    vf d, dmin;
} vkdec;

/* Byte i of every 32-bit lane, zero-extended. */
INLINE vi vbyte(vi z, int i) { return v_and(v_srli32(z, 8 * i), v_set1_32(0xFF)); }
/* Bit `from` of every byte moved to bit `to` and isolated. */
INLINE vi vbit_to(vi v, int from, int to)
{
    vi m = v_set1_8((char)(1 << to));
    if (from > to) return v_and(v_srli16(v, from - to), m);
    if (from < to) return v_and(v_slli16(v, to - from), m);
    return v_and(v, m);
}

/* The code registers of a super-block come in parts of VK_PART(wt) registers (whole
 * sub-blocks): part c of Q4_K/Q5_K is one 64-element chunk of qs (u[16c ..]), part hh of
 * the others one 128-element half (u[32hh ..]). */
INLINE int vk_part(uint32_t wt) { return wt == MF_TYPE_Q4_K || wt == MF_TYPE_Q5_K ? 16 : 32; }

/* Codes (docs/quantization.md §2) of part `c` of super-block `blk` of the tile's rows:
 * u[0 .. vk_part) = the super-block's u[c·vk_part ..]. Each vwords load covers 16 bytes,
 * i.e. elements l = 16m .. 16m+15 of a 32-element group; its word q holds
 * l = 16m + 4q .. +3, which is u[j] with j = (element index of l)/4. */
INLINE void vkcodes(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int h, int c, int x16, vi *u)
{
    const vi m4 = v_set1_8(0x0F), m2 = v_set1_8(3), m30 = v_set1_8(0x30), mf0 = v_set1_8((char)0xF0);
    vi A[4], B[4], H[4];
    for (int m = 0; m < 2; m++) switch (wt) {
        case MF_TYPE_Q4_K:
        case MF_TYPE_Q5_K: /* element 64c + 32·(g%2) + l: nibble of qs[32c + l], low for even g */
            vwords(pk, wt, blk, rb, h, (wt == MF_TYPE_Q4_K ? 16 : 48) + 32 * c + 16 * m, A);
            if (wt == MF_TYPE_Q5_K) vwords(pk, wt, blk, rb, h, 16 + 16 * m, H); /* fifth bit: bit g of qh[l] */
            for (int q = 0; q < 4; q++) {
                /* x16 (Q4_K, one token): the odd sub-block's codes times 16, as vcodes32 */
                vi lo = v_and(A[q], m4), hi = x16 ? v_and(A[q], mf0) : v_and(v_srli16(A[q], 4), m4);
                if (wt == MF_TYPE_Q5_K) {
                    lo = v_or(lo, vbit_to(H[q], 2 * c, 4));
                    hi = v_or(hi, vbit_to(H[q], 2 * c + 1, 4));
                }
                u[4 * m + q] = lo;
                u[8 + 4 * m + q] = hi;
            }
            break;
        case MF_TYPE_Q2_K:
        case MF_TYPE_Q3_K: /* element 128c + 32·k2 + l: bits 2·k2 of qs[32c + l] (+ hmask bit 4c + k2) */
            vwords(pk, wt, blk, rb, h, (wt == MF_TYPE_Q2_K ? 16 : 32) + 32 * c + 16 * m, A);
            if (wt == MF_TYPE_Q3_K) vwords(pk, wt, blk, rb, h, 16 * m, H);
            for (int k2 = 0; k2 < 4; k2++)
                for (int q = 0; q < 4; q++) {
                    vi v = v_and(v_srli16(A[q], 2 * k2), m2);
                    if (wt == MF_TYPE_Q3_K) v = v_or(v, vbit_to(H[q], 4 * c + k2, 2)); /* u = q + 4 */
                    u[8 * k2 + 4 * m + q] = v;
                }
            break;
        default: /* Q6_K: low 4 bits from ql[64c + 32·(k2 & 1) + l] (high nibble for k2 >= 2),
                  * bits 4-5 from bits 2·k2 of qh[32c + l]; u = q + 32 */
            vwords(pk, wt, blk, rb, h, 64 * c + 16 * m, A);
            vwords(pk, wt, blk, rb, h, 64 * c + 32 + 16 * m, B);
            vwords(pk, wt, blk, rb, h, 128 + 32 * c + 16 * m, H);
            for (int q = 0; q < 4; q++) {
                vi l0 = v_and(A[q], m4), l1 = v_and(B[q], m4);
                vi l2 = v_and(v_srli16(A[q], 4), m4);
                vi l3 = v_and(v_srli16(B[q], 4), m4);
                int j = 4 * m + q;
                u[j] = v_or(l0, v_and(v_slli16(H[q], 4), m30));
                u[j + 8] = v_or(l1, v_and(v_slli16(H[q], 2), m30));
                u[j + 16] = v_or(l2, v_and(H[q], m30));
                u[j + 24] = v_or(l3, v_and(v_srli16(H[q], 2), m30));
            }
        }
}

/* Scales (sc, int32 per row), the bsum coefficients (c, int16 pairs) and d, dmin of
 * super-block `blk` of the tile's rows. */
INLINE void vkscales(const int pk, uint32_t wt, const uint8_t *blk, size_t rb, int h, vkdec *k)
{
    vi Z[4], cc[16];
    switch (wt) {
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: {
        /* docs/quantization.md §2 (Q4_K scales) on 4 bytes at a time, as quant_avx2.c: sc/m 0..3 are bits 0-5
         * of bytes 0..3 / 4..7, sc/m 4..7 the nibbles of bytes 8..11 plus bits 6-7 of 0..3 / 4..7 */
        vwords(pk, wt, blk, rb, h, 4, Z);
        const vi m6 = v_set1_8(0x3F), m4 = v_set1_8(0x0F), m2 = v_set1_8(3);
        vi sl = v_and(Z[0], m6), ml = v_and(Z[1], m6);
        vi sh = v_or(v_and(Z[2], m4), v_slli32(v_and(v_srli32(Z[0], 6), m2), 4));
        vi mh = v_or(v_and(v_srli32(Z[2], 4), m4), v_slli32(v_and(v_srli32(Z[1], 6), m2), 4));
        for (int g = 0; g < 8; g++) {
            k->sc[g] = vbyte(g < 4 ? sl : sh, g % 4);
            vi mn = vbyte(g < 4 ? ml : mh, g % 4);
            k->c[g] = v_pair16(mn, mn); /* the min of sub-block g serves bsums 2g and 2g+1 */
        }
        break;
    }
    case MF_TYPE_Q2_K: /* scales[s]: low nibble the scale, high nibble the min */
        vwords(pk, wt, blk, rb, h, 0, Z);
        for (int s = 0; s < 16; s++) {
            vi v = vbyte(Z[s / 4], s % 4);
            k->sc[s] = v_and(v, v_set1_32(0x0F));
            cc[s] = v_srli32(v, 4);
        }
        for (int p = 0; p < 8; p++) k->c[p] = v_pair16(cc[2 * p], cc[2 * p + 1]);
        break;
    case MF_TYPE_Q3_K: {
        /* docs/quantization.md §2 (Q3_K scales): low 4 bits from bytes 0..7 (low then high nibbles), high 2
         * bits from bytes 8..11 shifted by 2·(k/4). Loaded from byte 92 so that the 16-byte
         * load ends inside the block: words 1..3 are scales[0..11]. */
        vwords(pk, wt, blk, rb, h, 92, Z);
        const vi m4 = v_set1_8(0x0F), m2 = v_set1_8(3);
        vi w4[4];
        for (int q = 0; q < 4; q++) {
            vi low = v_and(q < 2 ? Z[1 + q] : v_srli32(Z[1 + q - 2], 4), m4);
            vi high = v_and(v_srli32(Z[3], 2 * q), m2);
            w4[q] = v_or(low, v_slli32(high, 4));
        }
        for (int s = 0; s < 16; s++) {
            k->sc[s] = v_sub32(vbyte(w4[s / 4], s % 4), v_set1_32(32));
            cc[s] = v_mullo32(k->sc[s], v_set1_32(-4)); /* q = u - 4 */
        }
        for (int p = 0; p < 8; p++) k->c[p] = v_pair16(cc[2 * p], cc[2 * p + 1]);
        break;
    }
    default: /* Q6_K: 16 signed bytes at 192 */
        vwords(pk, wt, blk, rb, h, 192, Z);
        for (int s = 0; s < 16; s++) {
            k->sc[s] = v_srai32(v_slli32(Z[s / 4], 24 - 8 * (s % 4)), 24);
            cc[s] = v_mullo32(k->sc[s], v_set1_32(-32)); /* q = u - 32 */
        }
        for (int p = 0; p < 8; p++) k->c[p] = v_pair16(cc[2 * p], cc[2 * p + 1]);
    }
    const int bb = (int)mf_simd_bytesk(wt);
    k->d = vf16(pk, wt, blk, rb, h, mf_simd_k_d_at(wt), bb);
    k->dmin = vk_has_min(wt) ? vf16(pk, wt, blk, rb, h, mf_simd_k_dmin_at(wt), bb) : v_zerof();
}

/* acc + one token's super-block result from its integer sub-block sums `dot`: the bsum
 * terms through k->c, then the float steps of the scalar twin. */
INLINE vf vk_finish(uint32_t wt, const vkdec *k, const mf_actk *a, vi dot, vf acc)
{
    vf dx = v_set1f(a->d);
    vi c = vk_has_min(wt) ? v_zero() : dot;
    for (int i = 0; i < 8; i++) c = v_dotw(c, k->c[i], a->bsums + 2 * i);
    if (vk_has_min(wt)) {
        acc = v_fmadd(v_cvt(dot), v_mulf(k->d, dx), acc);
        return v_fnmadd(v_cvt(c), v_mulf(k->dmin, dx), acc);
    }
    return v_fmadd(v_cvt(c), v_mulf(k->d, dx), acc);
}

/* As vtile32 for the K-quants: y[t·ys + r] = row r · token t, nb super-blocks per row.
 * Several tokens: the super-block's codes are decoded once into k.u and serve them all.
 * One token (decoding): nothing to reuse, so each part's codes are dotted as soon as they
 * are decoded, in registers, a sub-block's sums in two chains: no stores and reloads of
 * k.u (docs/quantization.md §5 has the instruction counts and speeds). The integer sums
 * are the same either way, so are the results. */
INLINE void vtilek(const int pk, const uint32_t wt, const int T, const uint8_t *w, size_t rb, int h, const uint8_t *x,
                   size_t xs, int64_t nb, float *y, int64_t ys, const uint8_t *pf)
{
    const size_t bb = mf_simd_bytesk(wt), pbb = pk ? 16 * bb : bb;
    const int G = T < V_GROUP ? T : V_GROUP, E = vk_sub(wt) / 4, NS = 256 / vk_sub(wt);
    vkdec k;
    vf acc[V_MAXT];
    for (int t = 0; t < T; t++) acc[t] = v_zerof();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * pbb;
        if (pk && h == 0) vprefetch(blk, pbb);
        else if (pf)
            for (int r = 0; r < 16; r++)
                for (size_t o = 0; o < bb; o += 64)
                    _mm_prefetch((const char *)(pf + (size_t)r * rb + (size_t)b * bb + o), _MM_HINT_T1);
        vkscales(pk, wt, blk, rb, h, &k);
        const int P = vk_part(wt);
        if (T == 1) {
            const mf_actk *a = (const mf_actk *)(const void *)x + b;
            vi dot = v_zero();
            const int x16 = vx16(wt);
            for (int c = 0; c < 64 / P; c++) {
                vi u[32];
                vkcodes(pk, wt, blk, rb, h, c, x16, u);
                for (int s = 0; s < P / E; s++) {
                    const int j = c * P + s * E; /* index of the sub-block's first register in k.u */
                    vi p0 = v_zero(), p1 = v_zero();
                    for (int q = 0; q < E; q += 2) {
                        p0 = v_dot4(p0, u[s * E + q], a->qs + 4 * (j + q));
                        p1 = v_dot4(p1, u[s * E + q + 1], a->qs + 4 * (j + q + 1));
                    }
                    vi ps = v_add32(p0, p1);
                    if (x16 && s % 2) ps = v_srai32(ps, 4); /* the high nibbles' sum was 16 times */
                    dot = v_add32(dot, v_mullo32(ps, k.sc[j / E]));
                }
            }
            acc[0] = vk_finish(wt, &k, a, dot, acc[0]);
            continue;
        }
        for (int c = 0; c < 64 / P; c++) vkcodes(pk, wt, blk, rb, h, c, 0, k.u + c * P);
        for (int t0 = 0; t0 < T; t0 += G) {
            const mf_actk *a[V_GROUP];
            vi dot[V_GROUP], p[V_GROUP];
            for (int g = 0; g < G; g++) {
                a[g] = (const mf_actk *)(const void *)(x + (t0 + g) * xs) + b;
                dot[g] = v_zero();
            }
            for (int s = 0; s < NS; s++) {
                for (int g = 0; g < G; g++) p[g] = v_zero();
                for (int q = 0; q < E; q++)
                    for (int g = 0; g < G; g++) p[g] = v_dot4(p[g], k.u[s * E + q], a[g]->qs + 4 * (s * E + q));
                for (int g = 0; g < G; g++) dot[g] = v_add32(dot[g], v_mullo32(p[g], k.sc[s]));
            }
            for (int g = 0; g < G; g++) acc[t0 + g] = vk_finish(wt, &k, a[g], dot[g], acc[t0 + g]);
        }
    }
    for (int t = 0; t < T; t++) v_storef(y + t * ys, acc[t]);
}

/* ================================================================ the types
 *
 * Every quantized type with its tile (name, tile, type id), for the including files to
 * instantiate and dispatch: X(name, tile, WT) once per type. */
/* a list of macro calls, one row of the table per line: clang-format 14 cannot lay it out */
/* clang-format off */
#define V_TYPES(X)                                                                               \
    X(q4_0, vtile32, MF_TYPE_Q4_0) X(q4_1, vtile32, MF_TYPE_Q4_1) X(q5_0, vtile32, MF_TYPE_Q5_0)     \
    X(q5_1, vtile32, MF_TYPE_Q5_1) X(q8_0, vtile32, MF_TYPE_Q8_0) X(mxfp4, vtile32, MF_TYPE_MXFP4)   \
    X(q2_k, vtilek, MF_TYPE_Q2_K) X(q3_k, vtilek, MF_TYPE_Q3_K) X(q4_k, vtilek, MF_TYPE_Q4_K)        \
    X(q5_k, vtilek, MF_TYPE_Q5_K) X(q6_k, vtilek, MF_TYPE_Q6_K)
/* clang-format on */
