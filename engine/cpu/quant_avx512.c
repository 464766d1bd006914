/* quant_avx512.c — the AVX-512 VNNI kernels: the lane-per-row tiles of quant_tiles.h with
 * 16 rows per zmm register, for every quantized type. Compiled in every build; its body
 * exists only when the compiler targets AVX-512 F, BW, VL and VNNI.
 *
 *  - Packed matrices (mf_matmul_packed, engine/cpu/pack.c): every token count, decoding
 *    included; the codes and scales are plain loads.
 *  - The file's row-major layout (mf_matmul_rows) for 2 tokens or more: the 16 rows of a
 *    tile are loaded as four registers of four rows and transposed dword-wise (4×4 in each
 *    128-bit lane: 8 unpacks), some 30 instructions per block and 16 rows, paid once for up
 *    to 16 tokens (the tile is 16 rows × T tokens, T = 16, 8, 4, 2 or 1; the 16
 *    accumulators, 8 code registers and a few temporaries fill the 32 zmm registers). The
 *    weight scales of 16 rows are 16 fp16 values 18 to 34 bytes apart: they are copied by
 *    scalar loads into a small table for SLAB blocks at a time and converted as one vector
 *    per block. One token, and the rows after the last group of 16, go to quant_avx2.c.
 *
 * Every result equals the scalar twin's bit for bit (quant.h's canonical order). See
 * docs/quantization.md §5–6 and docs/cpu.md §3 for the instruction counts and speeds.
 */
#include "quant.h"
#include "quant_impl.h"

#ifdef MF_QUANT_AVX512

#include <immintrin.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

enum {
    ROWS = 16, /* weight rows per tile: one per 32-bit lane */
    SLAB = 32, /* blocks whose scales are copied into the table in one go (row-major) */
};

/* ================================================================ row-major sources */

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

/* ================================================================ the byte dot */

/* s + u·a[0..3] per lane (vpdpbusd), the 4 activation bytes broadcast from memory. Written
 * as inline assembly because GCC turns _mm512_dpbusd_epi32(s, u, _mm512_set1_epi32(v))
 * into a separate vpbroadcastd per product instead of the {1to16} memory operand: one
 * instruction more per 64 multiply-adds, measured 6% slower on pp512. */
INLINE __m512i dot4(__m512i s, __m512i u, const int8_t *p)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s) : "v"(u), "m"(*(const int32_t *)(const void *)p));
    return s;
}

/* ================================================================ the tiles (16 lanes) */

#define VW 16
#define V_MAXT 16
#define V_GROUP \
    8 /* 8 independent vpdpbusd chains hide its latency; more would not
                         * leave registers for the codes */
#define V_Q8_SIGNED 0
#define V_HIGH_X16 1 /* vpdpbusd: no overflow on codes up to 240 */
#include "quant_tiles.h"

/* ================================================================ the row walk */

typedef void (*tile_fn)(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, int64_t ys,
                        const uint8_t *pf);

/* The tiles of one type by token count: 16, 8, 4, 2, 1; row-major (t) and packed (p). */
typedef struct tiles {
    tile_fn t[5], p[5];
} tiles;

#define TILE(name, tile, WT, T)                                                                                        \
    static void name##_##T(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y, int64_t ys, \
                           const uint8_t *pf)                                                                          \
    {                                                                                                                  \
        tile(0, WT, T, w, rb, 0, x, xs, nb, y, ys, pf);                                                                \
    }                                                                                                                  \
    static void name##_p##T(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int64_t nb, float *y,            \
                            int64_t ys, const uint8_t *pf)                                                             \
    {                                                                                                                  \
        tile(1, WT, T, w, rb, 0, x, xs, nb, y, ys, pf);                                                                \
    }
/* a list of macro calls, one row of the table per line: clang-format 14 cannot lay it out */
/* clang-format off */
#define TILES(name, tile, WT)                                                                           \
    TILE(name, tile, WT, 16) TILE(name, tile, WT, 8) TILE(name, tile, WT, 4) TILE(name, tile, WT, 2)    \
    TILE(name, tile, WT, 1)                                                                             \
    static const tiles name = {{name##_16, name##_8, name##_4, name##_2, name##_1},                     \
                               {name##_p16, name##_p8, name##_p4, name##_p2, name##_p1}};
/* clang-format on */

#define TILES_OF(name, tile, WT) TILES(t_##name, tile, WT)
V_TYPES(TILES_OF)

static const tiles *tiles_of(uint32_t wt)
{
#define CASE(name, tile, WT) \
    case WT: return &t_##name;
    switch (wt) {
        /* clang-format off */
    V_TYPES(CASE)
    default: return NULL;
        /* clang-format on */
    }
#undef CASE
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

void mf_matmul_rows_avx512(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                           size_t qx_stride, int n_tok, float *y, int64_t y_stride)
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

void mf_matmul_packed_avx512(uint32_t wtype, const void *P, int64_t n_in, int64_t g0, int64_t g1, const void *qx,
                             size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    const tiles *k = tiles_of(wtype);
    const size_t rb = mf_type_row_bytes(wtype, n_in);
    const int64_t nb = n_in / mf_type_get(wtype)->blck;
    for (int64_t g = g0; g < g1; g++)
        walk_tokens(k->p, (const uint8_t *)P + (size_t)g * ROWS * rb, rb, qx, qx_stride, n_tok, nb, y + g * ROWS,
                    y_stride, NULL);
}

#endif
