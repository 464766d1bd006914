/* common.cuh — small pieces every CUDA file of minfer shares: the host+device qualifier,
 * aligned little-endian loads that also compile for the host, binary16 / bfloat16 / E8M0
 * decoding, warp reductions, and the constants of the launch geometry.
 *
 * "Host-testable": everything marked MF_HD compiles twice, once for the GPU and once for
 * the CPU (nvcc's host pass), so the host wrappers of host_twins.cu can run the very same
 * arithmetic on the CPU and tests/test_cuda_host.c can compare it with engine/quant.c and
 * plain C loops on a machine without a GPU. Without nvcc (a CPU-only build) this header,
 * dequant.cuh, math.cuh and geometry.cuh also compile as plain C++17, so that test runs in
 * every build; only the binary16 rounding (mf_f2h_bits, which needs cuda_fp16.h) is left out
 * there.
 */
#ifndef MF_CUDA_COMMON_CUH
#define MF_CUDA_COMMON_CUH

#include <cstdint>
#include <cstring>
#include <cmath>

#include "memory_sizes.h"

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define MF_HD __host__ __device__ __forceinline__
#else
#define MF_HD inline
#endif

/* Launch geometry shared by the kernels (documented in docs/cuda.md). */
#define MF_WARP 32
#define MF_GEMV_WARPS 4                        /* warps (= weight rows) per GEMV block */
#define MF_GEMV_MAX_TOK 8                      /* tokens one GEMV launch multiplies with each weight row */
#define MF_GEMM_MIN_ROWS MF_CUDA_GEMM_MIN_ROWS /* from here on matmul dequantizes + cuBLAS */

/* ---------------------------------------------------------------- loads
 * Block data is little-endian (docs/quantization.md §2 conventions) and so are both the x86 host
 * and the GPU, so a load is a plain load. On the device the pointer must be aligned to the
 * load width (each block type states the alignment its blocks have, see dequant.cuh); on the
 * host memcpy keeps the strict-aliasing rules. */
MF_HD uint32_t mf_ld_u16(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    return *(const uint16_t *)p;
#else
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#endif
}

MF_HD uint32_t mf_ld_u32(const uint8_t *p)
{
#ifdef __CUDA_ARCH__
    return *(const uint32_t *)p;
#else
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#endif
}

/* n 32-bit words from p, where p is only known to be ALIGN-byte aligned (1, 2 or >= 4):
 * the widest loads the alignment allows, assembled little-endian. */
template <int ALIGN> MF_HD void mf_ld_words(const uint8_t *p, uint32_t *w, int n)
{
    for (int i = 0; i < n; i++) {
        const uint8_t *q = p + 4 * i;
        if (ALIGN >= 4) w[i] = mf_ld_u32(q);
        else if (ALIGN == 2) w[i] = mf_ld_u16(q) | (mf_ld_u16(q + 2) << 16);
        else w[i] = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24);
    }
}

/* byte j of a little-endian word array */
MF_HD uint32_t mf_byte(const uint32_t *w, int j) { return (w[j >> 2] >> (8 * (j & 3))) & 0xFFu; }

/* ---------------------------------------------------------------- scalars */

MF_HD float mf_bits_f32(uint32_t b)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(b);
#else
    float f;
    memcpy(&f, &b, 4);
    return f;
#endif
}

MF_HD uint32_t mf_f32_bits(float f)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
#endif
}

/* IEEE binary16 -> float32, exact, subnormals kept (docs/quantization.md §1). The device uses the
 * hardware conversion; the host decodes the fields (E = 0: M·2^-24; E = 31: inf/NaN). */
MF_HD float mf_h2f(uint32_t h)
{
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half((unsigned short)h));
#else
    uint32_t s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
    float v;
    if (e == 0) v = (float)m * 5.9604644775390625e-8f;                         /* M · 2^-24, exact */
    else if (e == 31) return mf_bits_f32((s << 31) | 0x7F800000u | (m << 13)); /* inf, or NaN keeping M */
    else v = mf_bits_f32(((e + 112) << 23) | (m << 13));                       /* rebias 15 -> 127 */
    return s ? -v : v;
#endif
}

/* bfloat16 -> float32: the upper half of a binary32 (docs/quantization.md §1). */
MF_HD float mf_bf2f(uint32_t h) { return mf_bits_f32(h << 16); }

/* MXFP4 scale as llama.cpp applies it (docs/quantization.md §2): 2^(e-128), the half scale that pairs
 * with the doubled E2M1 table. e = 0, 1 are the subnormals 2^-128, 2^-127. */
MF_HD float mf_cu_e8m0_half(uint32_t e) { return mf_bits_f32(e < 2 ? (0x00200000u << e) : ((e - 1) << 23)); }

#ifdef __CUDACC__
/* float32 -> binary16 bits, round to nearest even (what the KV cache stores). cuda_fp16.h
 * has __float2half_rn for host and device; the bits are read through the __half_raw
 * conversion, also host and device, because __half_as_ushort is a device-only intrinsic in
 * CUDA 11 and early 12.x (host-callable only in newer headers, e.g. CUDA 13's). */
MF_HD uint32_t mf_f2h_bits(float f)
{
    __half_raw r = __float2half_rn(f);
    return r.x;
}
#endif

/* Products and sums that must round exactly as the C reference does: nvcc would otherwise
 * contract a·b + c into one fused multiply-add (one rounding instead of two). */
MF_HD float mf_mul(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

MF_HD float mf_add(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

MF_HD float mf_sub(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}

/* ---------------------------------------------------------------- warp reductions */
#ifdef __CUDACC__
__device__ __forceinline__ float mf_warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

__device__ __forceinline__ float mf_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}
#endif

#endif
