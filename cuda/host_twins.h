/* host_twins.h — the CUDA backend's scalar math and launch geometry, compiled for the host
 * (by nvcc in CUDA builds, as C++ otherwise), callable from C. These wrappers run the very
 * __host__ __device__ functions the kernels use (dequant.cuh, math.cuh, common.cuh,
 * geometry.cuh) on the CPU, so tests/test_cuda_host.c can check them against
 * engine/quant.c, engine/rope.c and plain C loops on a machine without a GPU.
 * What they cannot check is the parallel structure of the kernels (indexing, reductions,
 * synchronization): that is what the GPU tests in tests/cuda/ are for. */
#ifndef MF_CUDA_HOST_TWINS_H
#define MF_CUDA_HOST_TWINS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dequantize n elements (a multiple of the block size) with mf_dq32 / mf_dq_elem;
 * -1 for a type without kernels */
int mf_cuda_host_dequant_row(uint32_t type, const void *src, float *dst, int64_t n);
float mf_cuda_host_h2f(uint16_t h);
/* binary16 rounding through cuda_fp16.h: only in builds with nvcc (MF_HAVE_CUDA) */
uint16_t mf_cuda_host_f2h(float f);
float mf_cuda_host_bf2f(uint16_t h);
float mf_cuda_host_e8m0_half(uint8_t e);

/* rotate the first n_rot values of one head in place (mf_rope_pair / mf_rope_idx) */
void mf_cuda_host_rope(float *u, const float *cos_v, const float *sin_v, int n_rot, int neox);
float mf_cuda_host_swiglu(float g, float u);
float mf_cuda_host_swiglu_oai(float g, float u, float limit, float alpha);

/* One query's attention output as the flash kernels compute it: scores s[n] (−∞ = masked),
 * values v[n][hd], keys taken in tiles of 32 with the online-softmax update; chunk > 0 splits
 * the keys into chunks of `chunk` whose states are merged as attn_combine_kernel does;
 * has_sink adds the sink logit to the denominator. */
void mf_cuda_host_attend(const float *s, const float *v, int n, int hd, int chunk, int has_sink, float sink,
                         float *out);

/* the router selection of topk_kernel: k indices (descending logit, ties by lower index)
 * and their softmax weights */
void mf_cuda_host_topk(const float *r, int E, int k, int32_t *sel, float *w);
/* the bool order behind it (1: (va, ea) ranks before (vb, eb)) */
int mf_cuda_host_topk_better(float va, int ea, float vb, int eb);

/* flash-decoding split of a layer: keys per split and number of splits */
void mf_cuda_host_attn_split(int span, int Hkv, int sm_count, int *chunk, int *nsplit);
/* the flash-attention grid {x, y, z} and tiles per KV head (mf_cu_attn_grid); -1: no grid */
int mf_cuda_host_attn_grid(int64_t n, int64_t G, int64_t Hkv, int chunk, int64_t nsplit, long long grid[3],
                           int64_t *tiles);
/* the query tile block (bx, by) of a grid with gy rows works on */
int64_t mf_cuda_host_attn_tile(int chunk, unsigned bx, unsigned by, unsigned gy);
/* weight rows per F16 tile of the prompt GEMM for a scratch of cap elements (0: too small) */
int64_t mf_cuda_host_gemm_tile_rows(size_t cap, int64_t n_in, int64_t n_out);

#ifdef __cplusplus
}
#endif

#endif
