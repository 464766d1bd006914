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

/* The same with importance weights imp[0..n) (one per element of the row; finite, >= 0,
 * not all zero in a block; NULL: none). The scale search then minimizes, per block,
 *     Σ_i imp_i (x_i - y_i)²,   y_i the value the stored block gives element i,
 * instead of the unweighted error (docs/quantize.md §3). For Q4_0, Q4_1, Q5_0, Q5_1 and
 * MXFP4 the format's own scale is kept unless a searched one has a smaller weighted error;
 * the K-quants weight every fit; Q8_0 and the float types ignore imp. With imp == NULL the
 * result is exactly mf_quantize_row's. */
size_t mf_quantize_row_imp(uint32_t type, const float *src, void *dst, int64_t n, const float *imp);

#endif
