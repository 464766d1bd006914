/* act.cu — element-wise activations between two matrix products, for the paths that do not
 * fuse them into the GEMV (prompts through cuBLAS; gate and up of different types):
 *
 *   swiglu      g = silu(g)·u                      docs/forward.md §2
 *   swiglu_oai  g = clamped SwiGLU(g, u)           docs/moe.md §1
 *
 * CPU twins: the swiglu loop of engine/cpu/matmul.c and clamped_swiglu of engine/cpu/moe.c;
 * the scalar formulas are math.cuh's (checked on the host by tests/test_cuda_host.c).
 * One thread per element, grid-stride; memory traffic 12 bytes per element. */
#include "ctx.cuh"
#include "math.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

__global__ void swiglu_kernel(float *g, const float *u, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        g[i] = mf_swiglu(g[i], u[i]);
}

__global__ void swiglu_oai_kernel(float *g, const float *u, int64_t n, float limit, float alpha)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        g[i] = mf_swiglu_oai(g[i], u[i], limit, alpha);
}

unsigned grid_for(int64_t n)
{
    int64_t b = (n + 255) / 256;
    return (unsigned)(b > 65535 ? 65535 : (b < 1 ? 1 : b));
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

void mf_cu_swiglu(mf_cu_ctx *c, float *g, const float *u, int64_t n)
{
    if (c->failed || n <= 0) return;
    swiglu_kernel<<<grid_for(n), 256, 0, c->stream>>>(g, u, n);
    mf_cu_launched(c, "swiglu_kernel");
}

void mf_cu_swiglu_oai(mf_cu_ctx *c, float *g, const float *u, int64_t n, float limit, float alpha)
{
    if (c->failed || n <= 0) return;
    swiglu_oai_kernel<<<grid_for(n), 256, 0, c->stream>>>(g, u, n, limit, alpha);
    mf_cu_launched(c, "swiglu_oai_kernel");
}
