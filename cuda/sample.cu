/* sample.cu — greedy decoding on the device: the index of the largest logit, so that only
 * one int (not n_vocab floats) crosses to the host per generated token.
 *
 * CPU twin: cpu_argmax (engine/cpu/backend_cpu.c): first index of the maximum, or -1 when
 * any value is not finite (NaN, ±inf: broken logits). Order used here (math.cuh
 * mf_topk_better): larger value first, equal values by lower index — identical to the
 * CPU's scan for finite inputs; a block-wide OR of "not finite" decides the -1.
 *
 * Grid / block: one block of 1024 threads; each thread scans a strided subset keeping its
 * best (value, index), then shuffles within warps and a 32-entry shared array across them.
 * Traffic: n floats read once (128 KB for a 32000-token vocabulary). */
#include "ctx.cuh"
#include "math.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

__device__ __forceinline__ void keep_better(float &bv, int &be, float v, int e)
{
    if (mf_topk_better(v, e, bv, be)) {
        bv = v;
        be = e;
    }
}

__global__ void __launch_bounds__(1024) argmax_kernel(const float *buf, int n, int32_t *out)
{
    __shared__ float sv[32];
    __shared__ int se[32];
    float bv = 0.0f;
    int be = -1, bad = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = buf[i];
        bad |= !isfinite(v);
        keep_better(bv, be, v, i);
    }
    bad = __syncthreads_or(bad);
    for (int off = 16; off > 0; off >>= 1) {
        float ov = __shfl_xor_sync(0xFFFFFFFFu, bv, off);
        int oe = __shfl_xor_sync(0xFFFFFFFFu, be, off);
        keep_better(bv, be, ov, oe);
    }
    const int warp = threadIdx.x / MF_WARP, lane = threadIdx.x % MF_WARP;
    if (lane == 0) {
        sv[warp] = bv;
        se[warp] = be;
    }
    __syncthreads();
    if (warp == 0) {
        bv = lane < (int)(blockDim.x / MF_WARP) ? sv[lane] : 0.0f;
        be = lane < (int)(blockDim.x / MF_WARP) ? se[lane] : -1;
        for (int off = 16; off > 0; off >>= 1) {
            float ov = __shfl_xor_sync(0xFFFFFFFFu, bv, off);
            int oe = __shfl_xor_sync(0xFFFFFFFFu, be, off);
            keep_better(bv, be, ov, oe);
        }
        if (lane == 0) *out = bad ? -1 : be < 0 ? 0 : be;
    }
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

void mf_cu_argmax(mf_cu_ctx *c, const float *buf, int n, int32_t *out)
{
    if (c->failed) return;
    argmax_kernel<<<1, 1024, 0, c->stream>>>(buf, n, out);
    mf_cu_launched(c, "argmax_kernel");
}
