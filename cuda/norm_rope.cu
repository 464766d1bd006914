/* norm_rope.cu — RMSNorm, and RoPE fused with the KV-cache write.
 *
 * rmsnorm_kernel:  out[r][i] = x[r][i] · (1 / sqrt(Σ_i x[r][i]² / d + eps)) · g[i]
 *   (docs/forward.md §2). CPU twin: cpu_rmsnorm (engine/cpu/backend_cpu.c; it sums the
 *   squares in double, this kernel in float over a tree of 256 partial sums — relative
 *   difference of the scale ≈ 1e-7 for the widths of real models). One 256-thread block per
 *   row: strided partial sums, warp shuffles, then 8 warp sums through shared memory.
 *   Traffic: the row read twice (the second time from L1/L2), written once.
 *
 * rope_kv_kernel: for row r at position p = pos[r] of sequence s = seq[r] (both read from
 *   device memory): every head of q rotated in place, every head of k rotated into slot
 *   p % slots of sequence s's cache of this layer, v copied there, as float32 or binary16
 *   (round to nearest even).
 *   Pair i of a head is (u[2i], u[2i+1]) (llama) or (u[i], u[i + n_rot/2]) (NeoX, gpt-oss);
 *   u' = (a·c − b·s, a·s + b·c) with c, s from the session's table [n_ctx][n_rot/2], which
 *   the host filled with mf_rope_cos_sin() — cos/sin in double, mscale (YaRN) included —
 *   so angles, and with mf_rope_pair's rounding the rotated values, are bit-identical to
 *   the CPU's (cpu_rope_kv, mf_rope_apply). Dims ≥ n_rot are copied unrotated.
 *   One 128-thread block per row; fusing the cache write saves writing the rotated k back
 *   and reading it again. Traffic per row: q read+written, k and v read, k and v written
 *   to the cache, the row's cos/sin (n_rot floats) read.
 *   Cache layout [n_seq][Hkv][slots][hd]: a KV head's keys are contiguous, so the attention
 *   kernels load a tile of keys as one contiguous block.
 */
#include "ctx.cuh"
#include "math.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

__global__ void rmsnorm_kernel(const float *x, const float *g, float eps, float *out, int d)
{
    __shared__ float part[32];
    const float *xr = x + (int64_t)blockIdx.x * d;
    float *o = out + (int64_t)blockIdx.x * d;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
    ss = mf_warp_sum(ss);
    if (threadIdx.x % MF_WARP == 0) part[threadIdx.x / MF_WARP] = ss;
    __syncthreads();
    if (threadIdx.x < MF_WARP) {
        float v = threadIdx.x < blockDim.x / MF_WARP ? part[threadIdx.x] : 0.0f;
        v = mf_warp_sum(v);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf(part[0] / (float)d + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = mf_mul(mf_mul(xr[i], scale), g[i]);
}

__device__ __forceinline__ void store_kv(void *cache, int64_t i, float v, int f16)
{
    if (f16) ((__half *)cache)[i] = __float2half_rn(v);
    else ((float *)cache)[i] = v;
}

__global__ void rope_kv_kernel(const mf_cu_rope_args a)
{
    const int r = blockIdx.x;
    const int p = a.pos[r];
    if (p < 0 || p >= a.n_ctx) return; /* the session checks the context; never index past the table */
    const int npair = a.n_rot / 2;
    const float *cs = a.cos_t + (int64_t)p * npair, *sn = a.sin_t + (int64_t)p * npair;
    const int64_t slot = p % a.slots;
    /* the row's sequence's cache */
    const int64_t so = (int64_t)a.seq[r] * a.seq_stride * (a.kv_f16 ? 2 : 4);
    void *kc = (char *)a.kc + so, *vc = (char *)a.vc + so;

    for (int idx = threadIdx.x; idx < a.H * npair; idx += blockDim.x) {
        int j = idx / npair, i = idx % npair, ia, ib;
        mf_rope_idx(i, a.n_rot, a.neox, &ia, &ib);
        float *u = a.q + ((int64_t)r * a.H + j) * a.hd;
        mf_rope_pair(&u[ia], &u[ib], cs[i], sn[i]);
    }
    for (int idx = threadIdx.x; idx < a.Hkv * npair; idx += blockDim.x) {
        int g = idx / npair, i = idx % npair, ia, ib;
        mf_rope_idx(i, a.n_rot, a.neox, &ia, &ib);
        const float *u = a.k + ((int64_t)r * a.Hkv + g) * a.hd;
        float x = u[ia], y = u[ib];
        mf_rope_pair(&x, &y, cs[i], sn[i]);
        int64_t base = ((int64_t)g * a.slots + slot) * a.hd;
        store_kv(kc, base + ia, x, a.kv_f16);
        store_kv(kc, base + ib, y, a.kv_f16);
    }
    const int rest = a.hd - a.n_rot;
    for (int idx = threadIdx.x; idx < a.Hkv * rest; idx += blockDim.x) {
        int g = idx / rest, i = a.n_rot + idx % rest;
        store_kv(kc, ((int64_t)g * a.slots + slot) * a.hd + i, a.k[((int64_t)r * a.Hkv + g) * a.hd + i], a.kv_f16);
    }
    for (int idx = threadIdx.x; idx < a.Hkv * a.hd; idx += blockDim.x) {
        int g = idx / a.hd, i = idx % a.hd;
        store_kv(vc, ((int64_t)g * a.slots + slot) * a.hd + i, a.v[(int64_t)r * a.Hkv * a.hd + idx], a.kv_f16);
    }
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

void mf_cu_rmsnorm(mf_cu_ctx *c, const float *x, const float *g, float eps, float *out, int rows, int d)
{
    if (c->failed || rows <= 0) return;
    rmsnorm_kernel<<<rows, 256, 0, c->stream>>>(x, g, eps, out, d);
    mf_cu_launched(c, "rmsnorm_kernel");
}

void mf_cu_rope_kv(mf_cu_ctx *c, const mf_cu_rope_args *a)
{
    if (c->failed || a->n <= 0) return;
    rope_kv_kernel<<<a->n, 128, 0, c->stream>>>(*a);
    mf_cu_launched(c, "rope_kv_kernel");
}
