/* pack.c — the packed weight layout (defined in quant_impl.h): packing, unpacking, the
 * scalar twin of the packed product, and the build's choice of packed kernels.
 *
 * Why: a decode step streams every weight once, and how fast it can do that depends on how
 * few instructions and how few concurrent streams each byte costs. In the file's layout a
 * tile of 16 rows is 16 streams whose blocks must be transposed into lane-per-row registers
 * (about 30 shuffles per block of 16 rows) and whose scales are gathered by 16 scalar loads;
 * packed, the same tile is one sequential stream read with plain vector loads. The packed
 * copy is made once when a session opens (backend_cpu.c), costs the matrices' size in
 * memory and a pass over them in time (docs/cpu.md §3).
 */
#include "quant.h"
#include "quant_impl.h"

#include <stdlib.h>
#include <string.h>

/* The fp16 (or, for MXFP4, byte) scale fields of a block: their block offsets, in the order
 * of their 16-row arrays in the packed block. Returns the count. */
static int fields(uint32_t wt, int bb, int at[2])
{
    int n = 0, lead = mf_pack_lead(wt), trail = mf_pack_trail(wt);
    if (wt == MF_TYPE_MXFP4) {
        at[0] = 0;
        return 1;
    }
    for (int o = 0; o < lead; o += 2) at[n++] = o;
    for (int o = bb - trail; o < bb; o += 2) at[n++] = o;
    return n;
}

void mf_pack_groups(uint32_t wtype, const void *W, int64_t n_in, int64_t g0, int64_t g1, void *P)
{
    const mf_type_info *ti = mf_type_get(wtype);
    const int bb = (int)ti->size, lead = mf_pack_lead(wtype), words = (bb - lead - mf_pack_trail(wtype)) / 4;
    const int64_t nb = n_in / ti->blck;
    const size_t rb = mf_type_row_bytes(wtype, n_in);
    int at[2], nf = fields(wtype, bb, at);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *dst = (uint8_t *)P + (size_t)g * MF_PACK_ROWS * rb + (size_t)b * MF_PACK_ROWS * bb;
            for (int r = 0; r < MF_PACK_ROWS; r++) {
                const uint8_t *src = (const uint8_t *)W + (size_t)(g * MF_PACK_ROWS + r) * rb + (size_t)b * bb;
                if (wtype == MF_TYPE_MXFP4) dst[r] = src[0];
                else
                    for (int f = 0; f < nf; f++) memcpy(dst + mf_pack_field(wtype, at[f], bb) + 2 * r, src + at[f], 2);
                for (int k = 0; k < words; k++) memcpy(dst + mf_pack_word(wtype, k) + 4 * r, src + lead + 4 * k, 4);
            }
        }
}

void mf_unpack_row(uint32_t wtype, const void *P, int64_t n_in, int64_t n_out, int64_t r, void *row)
{
    const mf_type_info *ti = mf_type_get(wtype);
    const int bb = (int)ti->size, lead = mf_pack_lead(wtype), words = (bb - lead - mf_pack_trail(wtype)) / 4;
    const int64_t nb = n_in / ti->blck, n16 = n_out / MF_PACK_ROWS * MF_PACK_ROWS;
    const size_t rb = mf_type_row_bytes(wtype, n_in);
    if (r >= n16) { /* a leftover row: stored as it is */
        memcpy(row, (const uint8_t *)P + (size_t)r * rb, rb);
        return;
    }
    int at[2], nf = fields(wtype, bb, at);
    const int64_t g = r / MF_PACK_ROWS, i = r % MF_PACK_ROWS;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *src = (const uint8_t *)P + (size_t)g * MF_PACK_ROWS * rb + (size_t)b * MF_PACK_ROWS * bb;
        uint8_t *dst = (uint8_t *)row + (size_t)b * bb;
        if (wtype == MF_TYPE_MXFP4) dst[0] = src[i];
        else
            for (int f = 0; f < nf; f++) memcpy(dst + at[f], src + mf_pack_field(wtype, at[f], bb) + 2 * i, 2);
        for (int k = 0; k < words; k++) memcpy(dst + lead + 4 * k, src + mf_pack_word(wtype, k) + 4 * i, 4);
    }
}

void mf_matmul_packed_scalar(uint32_t wtype, const void *P, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1,
                             const void *qx, size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    size_t rb = mf_type_row_bytes(wtype, n_in);
    uint8_t *row = malloc(rb);
    if (!row) return; /* tests only: a failed allocation shows as unwritten results */
    for (int64_t r = r0; r < r1; r++) {
        mf_unpack_row(wtype, P, n_in, n_out, r, row);
        for (int t = 0; t < n_tok; t++)
            y[t * y_stride + r] = mf_vec_dot_scalar(wtype, row, (const char *)qx + t * qx_stride, n_in);
    }
    free(row);
}

/* ================================================================ the build's choice */

int mf_pack_supported(uint32_t wtype)
{
#if defined(MF_QUANT_AVX2)
    return mf_act_type(wtype) != MF_TYPE_F32 && mf_type_supported(wtype);
#else
    (void)wtype;
    return 0;
#endif
}

void mf_pack_matrix(uint32_t wtype, const void *W, int64_t n_in, int64_t n_out, int64_t g0, int64_t g1, void *P)
{
    const int64_t full = n_out / MF_PACK_ROWS;
    mf_pack_groups(wtype, W, n_in, g0, g1 < full ? g1 : full, P);
    if (g1 > full && n_out > full * MF_PACK_ROWS) { /* the leftover rows, unchanged */
        size_t rb = mf_type_row_bytes(wtype, n_in), off = (size_t)full * MF_PACK_ROWS * rb;
        memcpy((uint8_t *)P + off, (const uint8_t *)W + off, (size_t)(n_out - full * MF_PACK_ROWS) * rb);
    }
}

void mf_matmul_packed(uint32_t wtype, const void *P, int64_t n_in, int64_t n_out, int64_t r0, int64_t r1,
                      const void *qx, size_t qx_stride, int n_tok, float *y, int64_t y_stride)
{
    const int64_t n16 = n_out / MF_PACK_ROWS * MF_PACK_ROWS;
    int64_t g1 = (r1 < n16 ? r1 : n16) / MF_PACK_ROWS;
#if defined(MF_QUANT_AVX512)
    if (r0 / MF_PACK_ROWS < g1)
        mf_matmul_packed_avx512(wtype, P, n_in, r0 / MF_PACK_ROWS, g1, qx, qx_stride, n_tok, y, y_stride);
#elif defined(MF_QUANT_AVX2)
    if (r0 / MF_PACK_ROWS < g1)
        mf_matmul_packed_avx2(wtype, P, n_in, r0 / MF_PACK_ROWS, g1, qx, qx_stride, n_tok, y, y_stride);
#else
    if (r0 < g1 * MF_PACK_ROWS)
        mf_matmul_packed_scalar(wtype, P, n_in, n_out, r0, g1 * MF_PACK_ROWS, qx, qx_stride, n_tok, y, y_stride);
#endif
    /* the leftover rows are row-major: the ordinary kernels, same results */
    int64_t l0 = r0 > n16 ? r0 : n16;
    if (l0 < r1) mf_matmul_rows(wtype, P, n_in, l0, r1, qx, qx_stride, n_tok, y, y_stride);
}
