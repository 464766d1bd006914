/* quant.h — tensor block formats: dequantize, dot products (quantizers: quantize.h).
 *
 * The formats: docs/quantization.md §1 (number formats) and §2 (block layouts).
 * Types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, MXFP4
 * (mf_type_supported() in types.h).
 *
 * Two layers, as in llama.cpp:
 *
 * 1. The scalar reference (quant.c) — the teaching path and the truth for every test:
 *      mf_dequantize_row   block bytes -> floats, arithmetic order of docs/quantization.md §2
 *                          (bit-exact with ggml's CPU dequantizers)
 *      (mf_quantize_row    floats -> block bytes: quantize.h, quantize.c)
 *      mf_dot_ref          dot(dequantize(row), x), accumulated in double
 *
 * 2. The fast path used by the CPU backend. The activation vector x is first converted
 *    once into the "activation format" of the weight type (mf_act_type): 8-bit blocks
 *    (Q8_0-style per 32 values for the 32-element types and MXFP4, Q8_K-style per 256 for
 *    the K-quants) so the inner loop is an integer dot product; F32/F16/BF16 weights keep
 *    float activations. mf_vec_dot() is the dot of one weight row with a converted
 *    activation; mf_matmul_rows() the multi-row, multi-token kernel the thread pool calls.
 *    With MINFER_NATIVE these use AVX2/FMA/F16C (quant_avx2.c, selected at build time via
 *    __AVX2__, plus AVX-VNNI where the compiler targets it) and AVX-512 VNNI
 *    (quant_avx512.c), otherwise the scalar code of quant_dot.c with the same activations
 *    and the same integer sums.
 *    The converted activations are private blocks (quant_impl.h), not GGUF Q8_0/Q8_1/Q8_K
 *    blocks: only mf_act_bytes/mf_quantize_act/mf_vec_dot/mf_matmul_rows read them. For
 *    speed, give them a 64-byte aligned buffer (every block size is a multiple of 32).
 *    Rounding (as llama.cpp's x86 code, docs/quantization.md §4): per block of 32,
 *    d = max|x|/127 in f32, codes = round-to-nearest-even(x·127/max|x|), then d rounded to
 *    fp16 for the products; per block of 256 (K-quants) the same with d kept in f32.
 *    The error of the fast path against mf_dot_ref comes from rounding x to 8 bits:
 *    |err| <= sum_blocks (d_x/2) * sum_i |w_i| (+ the fp16 rounding of d_x and float
 *    rounding), tested in tests/test_quant_dot.c.
 *
 *    The canonical order. Every quantized kernel — scalar, AVX2, AVX-512, row-major or
 *    packed, 1 token or 16 — computes each (weight row, token) pair with the same float
 *    operations in the same order, so they all give the same bits (docs/cpu.md §3):
 *      acc = 0; for each block b in order:
 *        32-element types: acc = fma((float)isum_b, d_w·d_x, acc)
 *                          then, Q4_1/Q5_1: acc = fma(m_w, s_x, acc)
 *        K-quants:         acc = fma((float)dot_b, d·d_x, acc)
 *                          then, Q2_K/Q4_K/Q5_K: acc = fma(-(float)mins_b, dmin·d_x, acc)
 *      result = acc
 *    where isum_b, dot_b, mins_b are the exact integer sums of the block (quant_dot.c) and
 *    d_w·d_x one rounded float product. A row's result therefore never depends on how many
 *    tokens share the product, which rows a thread's chunk holds or the build's vector
 *    width: batch-invariant logits (tests/test_quant_dot.c, test_quant_pack.c).
 *
 * Preconditions (not checked: these are inner loops): the type is supported
 * (mf_type_supported) and n, n_in are multiples of its block size. mf_dequantize_row of an
 * unsupported type writes zeros.
 */
#ifndef MF_QUANT_H
#define MF_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* ---------------------------------------------------------------- scalars */

/* IEEE binary16 <-> binary32. to_f32 is exact (subnormals kept); from_f32 rounds to nearest
 * even (subnormal results included), |f| >= 65520 -> inf, NaN kept NaN (quiet). */
float mf_fp16_to_f32(uint16_t h);
uint16_t mf_f32_to_fp16(float f);
/* bfloat16: upper half of a binary32; from_f32 rounds to nearest even. */
float mf_bf16_to_f32(uint16_t h);
uint16_t mf_f32_to_bf16(float f);
/* E8M0 (MXFP4 scale byte) -> 2^(e-127) as a float: e = 0 gives the subnormal 2^-127,
 * e = 255 NaN (OCP Microscaling Formats v1.0; docs/quantization.md §2). MXFP4 dequantization itself uses llama.cpp's
 * doubled table with 2^(e-128) (subnormal for e = 0, 1; 2^127 for e = 255), see quant.c. */
float mf_e8m0_to_f32(uint8_t e);

/* ---------------------------------------------------------------- reference (scalar) */

/* n must be a multiple of the type's block size. */
void mf_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
/* Σ dequantize(row)[i]·x[i], accumulated in double: the reference every kernel is tested
 * against. */
double mf_dot_ref(uint32_t type, const void *row, const float *x, int64_t n);

/* ---------------------------------------------------------------- fast path */

/* The activation format paired with a weight type: MF_TYPE_F32 (float x as is),
 * MF_TYPE_Q8_0, MF_TYPE_Q8_1 (Q8_0 plus the block sum, for Q4_1/Q5_1) or MF_TYPE_Q8_K. */
uint32_t mf_act_type(uint32_t wtype);
/* Bytes needed to hold n converted activations for weight type wtype. */
size_t mf_act_bytes(uint32_t wtype, int64_t n);
/* Convert x[0..n) (finite values) into the activation format of wtype. */
void mf_quantize_act(uint32_t wtype, const float *x, void *qx, int64_t n);
/* The values a converted activation stands for (qs · d per block): multiplying these by the
 * dequantized weights in exact arithmetic gives what mf_vec_dot computes, so a reference
 * that rounds its inputs through this function can be compared with the fast path tightly
 * (ref_forward.c's activation-rounding mode). */
void mf_act_dequantize(uint32_t wtype, const void *qx, float *x, int64_t n);
/* dot(row of wtype, converted activation), n elements. */
float mf_vec_dot(uint32_t wtype, const void *row, const void *qx, int64_t n);

/* y[t * y_stride + r] = dot(row r of W, activation t) for r in [r0, r1), t in [0, n_tok).
 * W is a row-major matrix of rows of n_in elements (row_bytes = mf_type_row_bytes(wtype,
 * n_in)); activation t starts at (const char *)qx + t * qx_stride. Each weight row is read
 * once for all tokens (the loop over tokens is inside), so small batches cost little more
 * memory traffic than one token. */
void mf_matmul_rows(uint32_t wtype, const void *W, int64_t n_in, int64_t r0, int64_t r1, const void *qx,
                    size_t qx_stride, int n_tok, float *y, int64_t y_stride);

/* Packed weights (quant_impl.h, docs/cpu.md §3): a matrix repacked at load into groups of
 * 16 interleaved rows, same size, for the kernels of this build. mf_pack_supported: this
 * build has packed kernels for the type. mf_pack_matrix packs rows [16·g0, 16·g1) of W into
 * P (P and W the same size; g1 = ceil(n_out / 16) also copies the leftover rows).
 * mf_matmul_packed is mf_matmul_rows on a packed matrix of n_out rows, for r0 a multiple
 * of 16 and r1 a multiple of 16 or n_out; it gives the same floats, bit for bit. */
int mf_pack_supported(uint32_t wtype);
void mf_pack_matrix(uint32_t wtype, const void *W, int64_t n_in, int64_t n_out, int64_t g0, int64_t g1, void *P);
void mf_matmul_packed(uint32_t wtype, const void *P, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1,
                      const void *qx, size_t qx_stride, int n_tok, float *y, int64_t y_stride);

/* The matrix kernels this build uses: "avx512-vnni+avx2", "avx2" or
 * "scalar" (for `minfer --version` and qbench's header). */
const char *mf_quant_kernels(void);

#endif
