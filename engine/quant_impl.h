/* quant_impl.h — private to quant.c, quant_dot.c, quant_avx2.c, quant_avx512.c and the
 * quant tests: the activation blocks of the fast path and the per-build entry points.
 *
 * The activation vector of a matrix product is converted once into blocks of 8-bit
 * integers with one float scale per block, so the inner loop of every quantized weight
 * type is an integer dot product (see quant.h). Two block shapes:
 *
 * mf_act32 — 32 values, for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and MXFP4 weights (96 bytes):
 *
 *   byte 0                 32                        64     68     72     76         96
 *        +-----------------+-------------------------+------+------+------+----------+
 *        | qs[32] int8     | bias[8] int32           | d    | s    | corr | (padding)|
 *        +-----------------+-------------------------+------+------+------+----------+
 *   x[j] ≈ qs[j] · d.  d = max|x| / 127 rounded to fp16 (kept as a float); the codes are
 *   rounded with the unrounded f32 d, as llama.cpp does (docs/quantization.md §4).
 *   s = d · Σ qs (the min term of Q4_1/Q5_1: Σ (q·dw + m)·x = dw·Σ q·x + m·s).
 *   bias[k] = -off · (qs[4k] + qs[4k+1] + qs[4k+2] + qs[4k+3]), off the code offset of the
 *   weight type (8 for Q4_0, 16 for Q5_0, 12 for MXFP4's shifted table, 0 otherwise): the
 *   starting value of the AVX2 unsigned-by-signed byte dot, which then directly yields
 *   Σ (q - off)·x (quant_avx2.c). For Q4_0, bias[4..7] are 16 times that: its kernel keeps
 *   the high nibbles in place (codes × 16) in the lanes of elements 16..31. The scalar code
 *   ignores the bias.
 *   corr = -off' · Σ qs: the same correction for the whole block, the starting value of
 *   the AVX-512 kernels' sums (quant_avx512.c), whose 32-bit lanes hold one weight row
 *   each. off' = off, except for Q8_0: those kernels dot w + 128 (unsigned), so off' = 128
 *   (mf_act_corr_offset). The scalar code ignores it too.
 *
 * mf_actk — 256 values, for the K-quants (320 bytes, Q8_K-style):
 *
 *   byte 0                                   256               288    292      320
 *        +-----------------------------------+-----------------+------+--------+
 *        | qs[256] int8                      | bsums[16] int16 | d    | (pad)  |
 *        +-----------------------------------+-----------------+------+--------+
 *   x[j] ≈ qs[j] · d, d = max|x| / 127 in f32; bsums[k] = Σ qs[16k .. 16k+15] (the sums
 *   the K-quant mins and offsets multiply).
 *
 * Both sizes are multiples of 32 (every 32-byte load stays inside one cache line when the
 * buffer is 64-byte aligned). F32/F16/BF16 weights take the activations as plain floats.
 */
#ifndef MF_QUANT_IMPL_H
#define MF_QUANT_IMPL_H

#include "types.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct mf_act32 {
    int8_t qs[32];
    int32_t bias[8];
    float d;
    float s;
    int32_t corr;
    uint8_t pad[20];
} mf_act32;

typedef struct mf_actk {
    int8_t qs[256];
    int16_t bsums[16];
    float d;
    uint8_t pad[28];
} mf_actk;

_Static_assert(sizeof(mf_act32) == 96, "mf_act32 is 96 bytes");
_Static_assert(sizeof(mf_actk) == 320, "mf_actk is 320 bytes");

/* MXFP4 E2M1 values doubled (so they are integers): code c -> 2·E2M1(c) (docs/quantization.md §2). */
extern const float mf_e2m1_x2[16];
/* 2^(e-128), exactly as llama.cpp builds it (docs/quantization.md §2): e = 0 and 1 are the subnormals
 * 2^-128 and 2^-127, e = 255 gives 2^127 (no NaN). Inline: it is in the MXFP4 inner loop. */
static inline float mf_e8m0_half(uint8_t e)
{
    uint32_t u = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* The 6-bit scale and min of sub-block g (0..7) of a Q4_K/Q5_K block (docs/quantization.md §2). */
void mf_k4_scale_min(const uint8_t *scales12, int g, int *sc, int *m);

/* The code offset a weight type's unsigned codes carry (see bias above), and the one of the
 * AVX-512 kernels (see corr above). */
int mf_act_offset(uint32_t wtype);
int mf_act_corr_offset(uint32_t wtype);

/* The portable fast path (quant_dot.c): same activations, same integer products per block
 * as the SIMD code, plain loops. Always compiled, so tests compare both in one build. The
 * SIMD activation conversion must produce the same bytes as mf_quantize_act_scalar. */
void mf_quantize_act_scalar(uint32_t wtype, const float *x, void *qx, int64_t n);
float mf_vec_dot_scalar(uint32_t wtype, const void *row, const void *qx, int64_t n);
void mf_matmul_rows_scalar(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                           size_t qx_stride, int n_tok, float *y, int64_t y_stride);

/* Block geometry for the fast path: the SIMD kernels, the scalar twin and the packed layout
 * (docs/quantization.md §2). The same numbers as mf_type_get(), written as switches on purpose:
 * the kernels are instantiated per type, so these fold to constants inside the loops. */
/* Bytes of one block of a 32-element type (Q4_0 .. Q8_0, MXFP4). */
static inline size_t mf_simd_bytes32(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q4_0: return 18;
    case MF_TYPE_Q4_1: return 20;
    case MF_TYPE_Q5_0: return 22;
    case MF_TYPE_Q5_1: return 24;
    case MF_TYPE_Q8_0: return 34;
    default: return 17; /* MXFP4 */
    }
}
/* 1 for the 32-element types with an fp16 min at byte 2 (Q4_1, Q5_1). */
static inline int mf_simd_has_min32(uint32_t wt) { return wt == MF_TYPE_Q4_1 || wt == MF_TYPE_Q5_1; }
/* Bytes of one K-quant super-block. */
static inline size_t mf_simd_bytesk(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q2_K: return 84;
    case MF_TYPE_Q3_K: return 110;
    case MF_TYPE_Q4_K: return 144;
    case MF_TYPE_Q5_K: return 176;
    default: return 210; /* Q6_K */
    }
}
/* Byte offsets of a K-quant super-block's fp16 scale d and of its dmin (-1: none). */
static inline int mf_simd_k_d_at(uint32_t wt)
{
    return wt == MF_TYPE_Q2_K ? 80 : wt == MF_TYPE_Q3_K ? 108 : wt == MF_TYPE_Q6_K ? 208 : 0;
}
static inline int mf_simd_k_dmin_at(uint32_t wt)
{
    return wt == MF_TYPE_Q2_K ? 82 : wt == MF_TYPE_Q4_K || wt == MF_TYPE_Q5_K ? 2 : -1;
}
/* ---------------------------------------------------------------- the packed layout
 *
 * The decode product reads every weight once per token; in the file's row-major layout
 * the kernels read 16 rows in step (16 streams) and transpose them into one 32-bit lane
 * per row (quant_avx512.c). The CPU backend can instead repack a matrix once at load time
 * (engine/cpu/pack.c, docs/cpu.md §3) into groups of MF_PACK_ROWS rows in which block b of
 * the 16 rows is one contiguous "packed block" of 16 · block-bytes, laid out so that plain
 * loads give the kernels' lane-per-row registers:
 *
 *   [scale fields: for each fp16 field of the block (d, the min or dmin), the 16 rows'
 *    values as an array of 16 fp16 (32 bytes); MXFP4: the 16 E8M0 bytes]
 *   [payload: the rest of the block's bytes in order, as 32-bit words; word k of row r at
 *    byte 64·k + 4·r after the scale fields]
 *
 * Same size as the rows it replaces; groups follow each other, block after block, and the
 * n_out % 16 rows after the last whole group stay row-major at the end of the matrix. The
 * scale fields are the bytes at the start ("lead") and end ("trail") of the block:
 *   Q4_0, Q5_0, Q8_0: d (lead 2)   Q4_1, Q5_1, Q4_K, Q5_K: d, min/dmin (lead 4)
 *   MXFP4: e (lead 1)              Q2_K: d, dmin (trail 4)   Q3_K, Q6_K: d (trail 2)
 * so a field chunk at block byte o (o >= lead) is payload word (o - lead) / 4. Every chunk
 * the kernels load starts on a word (o - lead a multiple of 4); one that did not would read
 * the wrong bytes, which the bit-exact comparisons of tests/test_quant_pack.c would show. */
#define MF_PACK_ROWS 16
static inline int mf_pack_lead(uint32_t wt)
{
    switch (wt) {
    case MF_TYPE_Q4_0:
    case MF_TYPE_Q5_0:
    case MF_TYPE_Q8_0: return 2;
    case MF_TYPE_Q4_1:
    case MF_TYPE_Q5_1:
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: return 4;
    case MF_TYPE_MXFP4: return 1;
    default: return 0;
    }
}
static inline int mf_pack_trail(uint32_t wt)
{
    return wt == MF_TYPE_Q2_K ? 4 : wt == MF_TYPE_Q3_K || wt == MF_TYPE_Q6_K ? 2 : 0;
}
/* Bytes of the scale fields of a packed block (the payload starts there). */
static inline int mf_pack_scale_bytes(uint32_t wt) { return MF_PACK_ROWS * (mf_pack_lead(wt) + mf_pack_trail(wt)); }
/* Where, in a packed block, the 16-row array of the fp16 field at block byte `at` starts. */
static inline int mf_pack_field(uint32_t wt, int at, int block_bytes)
{
    int lead = mf_pack_lead(wt);
    return 32 * (at < lead ? at / 2 : lead / 2 + (at - (block_bytes - mf_pack_trail(wt))) / 2);
}
/* Where, in a packed block, payload word k of row 0 is (row r: + 4·r). */
static inline int mf_pack_word(uint32_t wt, int k) { return mf_pack_scale_bytes(wt) + 64 * k; }

/* Pack groups [g0, g1) of 16 rows of W (n_in elements each) into P (same offsets as in
 * W); the caller copies the leftover rows. Scalar, any build: the layout's definition. */
void mf_pack_groups(uint32_t wtype, const void *W, int64_t n_in, int64_t g0, int64_t g1, void *P);
/* Row r of a packed matrix of n_out rows back in the file's layout (rb bytes). */
void mf_unpack_row(uint32_t wtype, const void *P, int64_t n_in, int64_t n_out, int64_t r, void *row);
/* The scalar twin of mf_matmul_packed (quant.h): unpacks each row and runs
 * mf_vec_dot_scalar, so it is exactly the row-major result. */
void mf_matmul_packed_scalar(uint32_t wtype, const void *P, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1,
                             const void *qx, size_t qx_stride, int n_tok, float *y, int64_t y_stride);

/* The AVX2/FMA kernels (quant_avx2.c); present only when the compiler targets AVX2, FMA and
 * F16C (the fp16 scale conversions; every AVX2 CPU has it). */
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MF_QUANT_AVX2 1
void mf_quantize_act_avx2(uint32_t wtype, const float *x, void *qx, int64_t n);
void mf_matmul_rows_avx2(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                         size_t qx_stride, int n_tok, float *y, int64_t y_stride);

/* Groups [g0, g1) of a packed matrix (every quantized type, any n_tok >= 1), 8-lane tiles. */
void mf_matmul_packed_avx2(uint32_t wtype, const void *P, int64_t n_in, int64_t g0, int64_t g1, const void *qx,
                           size_t qx_stride, int n_tok, float *y, int64_t y_stride);

/* mf_e8m0_half(e) for every e, as float bit patterns (quant_avx2.c): the MXFP4 block scale
 * by one table load instead of the branchy definition. */
extern const uint32_t mf_e8m0_half_bits[256];
#endif

/* The AVX-512 VNNI batch kernels (quant_avx512.c): 16 weight rows × up to 16 tokens per
 * tile for the 32-element types; mf_matmul_rows_avx512 hands everything else (fewer than
 * MF_AVX512_MIN_TOK tokens, other types, leftover rows) to mf_matmul_rows_avx2. */
#if defined(MF_QUANT_AVX2) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__)
#define MF_QUANT_AVX512 1
#define MF_AVX512_MIN_TOK 2
void mf_matmul_rows_avx512(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                           size_t qx_stride, int n_tok, float *y, int64_t y_stride);
/* Groups [g0, g1) of a packed matrix (every quantized type, any n_tok >= 1). */
void mf_matmul_packed_avx512(uint32_t wtype, const void *P, int64_t n_in, int64_t g0, int64_t g1, const void *qx,
                             size_t qx_stride, int n_tok, float *y, int64_t y_stride);
#endif

#endif
