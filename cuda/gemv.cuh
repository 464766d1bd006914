/* gemv.cuh — one warp's dot products of a weight row with up to NT activation rows: the
 * inner loop shared by the GEMV kernels (gemv_vec.cu) and the per-token expert kernels
 * (moe.cu). CPU twin: mf_matmul_rows / mf_dot_ref of engine/quant.c.
 *
 * Mapping. The 32 lanes walk the row together: lane L takes chunks L, L+32, L+64, … of 32
 * elements, so one warp-wide step reads 32 consecutive blocks of the row — a contiguous
 * span of memory, every byte of each fetched sector used. Each lane dequantizes its chunk in
 * registers (mf_dq32), multiplies it with the matching 32 activations of every token (two
 * 16-byte loads per 8 floats, cached in L1/L2: all rows of the matrix reuse them) and keeps
 * one partial sum per token. The caller reduces the partials across lanes (mf_warp_sum).
 *
 * Float rows (F32, F16, BF16) have no 32-element structure and any width: lane L takes
 * 16-byte groups L, L+32, … (4 floats or 8 halves) when the width and the activation
 * alignment allow it (vec = 1), single elements otherwise.
 */
#ifndef MF_CUDA_GEMV_CUH
#define MF_CUDA_GEMV_CUH

#include "dequant.cuh"

/* 8 halves (one 16-byte load) of an F16 or BF16 row -> floats */
template <int T> __device__ __forceinline__ void mf_unpack8(uint4 raw, float *w)
{
    uint32_t r[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if constexpr (T == MF_TYPE_F16) {
            w[2 * i] = mf_h2f(r[i] & 0xFFFF);
            w[2 * i + 1] = mf_h2f(r[i] >> 16);
        } else {
            w[2 * i] = mf_bf2f(r[i] & 0xFFFF);
            w[2 * i + 1] = mf_bf2f(r[i] >> 16);
        }
    }
}

/* acc[t] += this lane's share of row·x_t, t < nt <= NT. x_t = x + t·ldx. */
template <int T, int NT>
__device__ __forceinline__ void mf_row_dot(const uint8_t *row, int64_t n_in, const float *x, int64_t ldx, int nt,
                                           int vec, int lane, float *acc)
{
    if constexpr (T == MF_TYPE_F32 || T == MF_TYPE_F16 || T == MF_TYPE_BF16) {
        if (!vec) {
            /* misaligned activations or a width of no whole 16-byte groups (mf_gemv_vec_ok) */
            for (int64_t i = lane; i < n_in; i += MF_WARP) {
                float w = mf_dq_elem<T>(row, i);
#pragma unroll
                for (int t = 0; t < NT; t++)
                    if (t < nt) acc[t] += w * x[t * ldx + i];
            }
        } else if constexpr (T == MF_TYPE_F32) {
            const float4 *w4 = (const float4 *)row;
            for (int64_t i = lane; i < n_in / 4; i += MF_WARP) {
                float4 w = w4[i];
#pragma unroll
                for (int t = 0; t < NT; t++)
                    if (t < nt) {
                        float4 v = ((const float4 *)(x + t * ldx))[i];
                        acc[t] += w.x * v.x + w.y * v.y + w.z * v.z + w.w * v.w;
                    }
            }
        } else {
            const uint4 *w8 = (const uint4 *)row;
            for (int64_t i = lane; i < n_in / 8; i += MF_WARP) {
                float w[8];
                mf_unpack8<T>(w8[i], w);
#pragma unroll
                for (int t = 0; t < NT; t++)
                    if (t < nt) {
                        const float4 *xp = (const float4 *)(x + t * ldx + 8 * i);
                        float4 a = xp[0], b = xp[1];
                        acc[t] += w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
                                  w[6] * b.z + w[7] * b.w;
                    }
            }
        }
    } else {
        (void)vec;
        for (int64_t ch = lane; ch < n_in / 32; ch += MF_WARP) {
            float w[32];
            mf_dq32<T>(row, ch, w);
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < nt) {
                    const float4 *xp = (const float4 *)(x + t * ldx + 32 * ch);
                    float s = 0.0f;
#pragma unroll
                    for (int i = 0; i < 8; i++) {
                        float4 v = xp[i];
                        s += w[4 * i] * v.x + w[4 * i + 1] * v.y + w[4 * i + 2] * v.z + w[4 * i + 3] * v.w;
                    }
                    acc[t] += s;
                }
        }
    }
}

static inline bool mf_is_float(uint32_t type)
{
    return type == MF_TYPE_F32 || type == MF_TYPE_F16 || type == MF_TYPE_BF16;
}

/* Whether the 16-byte path applies: the activations 16-byte aligned with a row stride that
 * keeps them so, and (float weights) a width that is a whole number of 16-byte groups.
 * Quantized types need it (their chunks are 32 floats): the host refuses misaligned x. */
static inline int mf_gemv_vec_ok(uint32_t type, const float *x, int64_t ldx, int64_t n_in)
{
    int xa = ((uintptr_t)x % 16 == 0) && (ldx % 4 == 0);
    if (type == MF_TYPE_F32) return xa && n_in % 4 == 0;
    if (type == MF_TYPE_F16 || type == MF_TYPE_BF16) return xa && n_in % 8 == 0;
    return xa;
}

#endif
