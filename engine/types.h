/* types.h — the ggml tensor type table (ids 0..42 of the GGUF format).
 *
 * Every tensor in a GGUF file names one of these types. A type fixes the block size B
 * (elements per block) and the block byte size S; a row of n elements (n % B == 0) takes
 * (n / B) * S bytes (docs/gguf.md §1).
 *
 * Three kinds of id:
 *   - invalid: >= MF_TYPE_COUNT or a removed id (B == 0): the file is rejected at open,
 *     because the byte size of such a tensor cannot be known;
 *   - defined by the format but without a minfer kernel (IQ*, TQ*, ...): the file opens,
 *     `inspect` lists them, loading a model that uses one fails naming the type;
 *   - supported: dequantize/quantize/dot exist in quant.c (see mf_type_supported()).
 */
#ifndef MF_TYPES_H
#define MF_TYPES_H

#include <stddef.h>
#include <stdint.h>

enum mf_type {
    MF_TYPE_F32 = 0,
    MF_TYPE_F16 = 1,
    MF_TYPE_Q4_0 = 2,
    MF_TYPE_Q4_1 = 3,
    MF_TYPE_Q5_0 = 6,
    MF_TYPE_Q5_1 = 7,
    MF_TYPE_Q8_0 = 8,
    MF_TYPE_Q8_1 = 9,
    MF_TYPE_Q2_K = 10,
    MF_TYPE_Q3_K = 11,
    MF_TYPE_Q4_K = 12,
    MF_TYPE_Q5_K = 13,
    MF_TYPE_Q6_K = 14,
    MF_TYPE_Q8_K = 15,
    MF_TYPE_IQ2_XXS = 16,
    MF_TYPE_IQ2_XS = 17,
    MF_TYPE_IQ3_XXS = 18,
    MF_TYPE_IQ1_S = 19,
    MF_TYPE_IQ4_NL = 20,
    MF_TYPE_IQ3_S = 21,
    MF_TYPE_IQ2_S = 22,
    MF_TYPE_IQ4_XS = 23,
    MF_TYPE_I8 = 24,
    MF_TYPE_I16 = 25,
    MF_TYPE_I32 = 26,
    MF_TYPE_I64 = 27,
    MF_TYPE_F64 = 28,
    MF_TYPE_IQ1_M = 29,
    MF_TYPE_BF16 = 30,
    MF_TYPE_TQ1_0 = 34,
    MF_TYPE_TQ2_0 = 35,
    MF_TYPE_MXFP4 = 39,
    MF_TYPE_NVFP4 = 40,
    MF_TYPE_Q1_0 = 41,
    MF_TYPE_Q2_0 = 42,
    MF_TYPE_COUNT = 43
};

typedef struct mf_type_info {
    const char *name; /* "Q4_0"; for removed ids "removed(4)"-style names are not kept: NULL */
    uint32_t blck;    /* elements per block, 0 = removed/invalid id */
    uint32_t size;    /* bytes per block */
} mf_type_info;

/* NULL for ids outside [0, MF_TYPE_COUNT) or removed ids. */
const mf_type_info *mf_type_get(uint32_t type);

/* Name for messages: "Q4_0", or "unknown(57)" written into buf for anything invalid. */
const char *mf_type_name(uint32_t type, char buf[32]);

/* 1 when minfer has dequantize/dot kernels for this type (the types of quant.c). */
int mf_type_supported(uint32_t type);

/* Bytes of a row of n elements; 0 if the type is invalid or n is not a multiple of B. */
size_t mf_type_row_bytes(uint32_t type, int64_t n);

/* Index of the first of n F32 values at p that is NaN or infinite, -1 if all are finite.
 * p may have any alignment (the values are loaded with memcpy). */
int64_t mf_first_nonfinite_f32(const void *p, uint64_t n);

#endif
