/* quantize.h — floats -> block bytes: the quantizer of every type minfer computes.
 *
 * The inverse of quant.h's dequantizers (same block layouts, docs/quantization.md §2-3):
 * used by mkmodel to write synthetic models and by `minfer quantize` (tools/cmd_quantize.c)
 * to convert real ones. Scalar C; a quantizer runs once per file, not per token.
 *
 * Types: F32, F16, BF16 (a conversion), Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (round to nearest from
 * the block's extreme), Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (a scale search per sub-block), MXFP4
 * (nearest E2M1 value under a power-of-two scale).
 */
#ifndef MF_QUANTIZE_H
#define MF_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* Quantize n floats into one row of `type`. Returns the number of bytes written
 * (mf_type_row_bytes(type, n)), 0 when the type has no quantizer or n is not a multiple of
 * its block size. Never produces NaN or inf scales: fp16 scales saturate at 65504, so
 * blocks beyond ~5e5 clamp. */
size_t mf_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

#endif
