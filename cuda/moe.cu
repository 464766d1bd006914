/* moe.cu — the mixture-of-experts block of gpt-oss on the GPU (docs/moe.md §1):
 *
 *   r   = W_r h + b_r                           router logits (GEMV / SGEMM, FP32)
 *   S   = top-k of r (ties: lower index)         topk_kernel, one warp per token
 *   w_e = softmax over the k selected            same kernel, lane 0, the CPU's order
 *   g = W_gate,e h + b_gate,e,  u = W_up,e h + b_up,e
 *   a = min(g, L)·σ(α·min(g, L))·(clamp(u, −L, L) + 1)
 *   y_e = W_down,e a + b_down,e ;   x += Σ_{e∈S} w_e·y_e  (selection order)
 *
 * CPU twin: mf_cpu_moe (engine/cpu/moe.c). Selection and routing weights are computed on
 * the device: no host round trip on the decode path.
 *
 * Decode (n < MF_MOE_GROUP_MIN tokens): per token, the experts are read where they are —
 *   expert_gate_up_kernel   grid (⌈F/4⌉, k, n): warp = one row of gate and up of the
 *                           expert in slot blockIdx.y (index read from device memory),
 *                           writes the clamped SwiGLU a directly (gate and up of one type;
 *                           otherwise two single-matrix launches and act.cu's kernel)
 *   expert_down_kernel      grid (⌈d/4⌉, 1, n): warp = one output row, loops over the k
 *                           slots, adds Σ w_e·y_e into x in selection order
 *   Four launches per layer (router, top-k, gate/up, down), position-independent shapes:
 *   capturable in a CUDA graph. Traffic per token: k of E expert matrices of each kind
 *   (the active 4/32 for gpt-oss-20b: 3 · 4 · 4.4 MB = 53 MB per layer), plus the router.
 *
 * Prompts (n >= MF_MOE_GROUP_MIN): tokens grouped by expert so each expert's weights are
 * read once per batch —
 *   sort_kernel    counting sort of the n·k (token, slot) pairs by expert on the device
 *                  (one block: count per expert, prefix sum, stable scatter: perm, inv)
 *   the counts come back to the host (one synchronization per layer: they size the
 *   per-expert products), gather_kernel copies each pair's input row into expert order,
 *   then per expert with c tokens: mf_cu_matmul (GEMV below 16 rows, F16 + cuBLAS above)
 *   for gate and up, one clamped-SwiGLU pass over all pairs, mf_cu_matmul for down, and
 *   combine_kernel adds Σ w_e·y_e per token in selection order.
 */
#include "ctx.cuh"
#include "gemv.cuh"
#include "math.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

constexpr int MOE_MAXK = 32;

/* One warp per token: k rounds of a warp-wide arg-max over the not yet chosen experts,
 * then the softmax over the chosen logits exactly as the CPU writes it:
 * m = r[sel0]; z = Σ e^(r_s − m) in slot order; w_s = e^(r_s − m) / z. */
__global__ void topk_kernel(const float *logits, int E, int k, int32_t *sel, float *selw)
{
    __shared__ int chosen[MOE_MAXK];
    const int t = blockIdx.x, lane = threadIdx.x;
    const float *r = logits + (int64_t)t * E;
    for (int s = 0; s < k; s++) {
        float bv = 0.0f;
        int be = -1;
        for (int e = lane; e < E; e += MF_WARP) {
            bool taken = false;
            for (int q = 0; q < s; q++) taken |= chosen[q] == e;
            if (!taken && mf_topk_better(r[e], e, bv, be)) {
                bv = r[e];
                be = e;
            }
        }
        for (int off = 16; off > 0; off >>= 1) {
            float ov = __shfl_xor_sync(0xFFFFFFFFu, bv, off);
            int oe = __shfl_xor_sync(0xFFFFFFFFu, be, off);
            if (mf_topk_better(ov, oe, bv, be)) {
                bv = ov;
                be = oe;
            }
        }
        if (lane == 0) chosen[s] = be;
        __syncwarp();
    }
    if (lane == 0) {
        float m = r[chosen[0]], z = 0.0f, w[MOE_MAXK];
        for (int s = 0; s < k; s++) z += w[s] = expf(r[chosen[s]] - m);
        for (int s = 0; s < k; s++) {
            sel[(int64_t)t * k + s] = chosen[s];
            selw[(int64_t)t * k + s] = w[s] / z;
        }
    }
}

/* expert e's matrix and bias inside a stacked tensor */
__device__ __forceinline__ const uint8_t *expert_row(const mf_cu_mat &m, int e, int64_t o)
{
    return m.w + ((int64_t)e * m.n_out + o) * m.row_bytes;
}

__device__ __forceinline__ float expert_bias(const mf_cu_mat &m, int e, int64_t o)
{
    return m.bias ? m.bias[(int64_t)e * m.n_out + o] : 0.0f;
}

/* pair = token·k + slot. two = 1: gate (a.gate) and up (a.up) of the same type, output the
 * clamped SwiGLU into a.g. two = 0: the single matrix `m` into `out`. */
template <int T>
__global__ void __launch_bounds__(MF_GEMV_WARPS *MF_WARP)
    expert_gate_up_kernel(const mf_cu_moe_args a, const mf_cu_mat m, float *out, int two, int vec)
{
    const int warp = threadIdx.x / MF_WARP, lane = threadIdx.x % MF_WARP;
    const int64_t o = (int64_t)blockIdx.x * MF_GEMV_WARPS + warp;
    if (o >= a.F) return;
    const int slot = blockIdx.y, t = blockIdx.z;
    const int64_t pair = (int64_t)t * a.k + slot;
    const int e = a.sel[pair];
    const float *x = a.h + (int64_t)t * a.d;
    float pg[1] = {0.0f};
    mf_row_dot<T, 1>(expert_row(m, e, o), a.d, x, a.d, 1, vec, lane, pg);
    float g = mf_warp_sum(pg[0]) + expert_bias(m, e, o);
    if (!two) {
        if (lane == 0) out[pair * a.F + o] = g;
        return;
    }
    float pu[1] = {0.0f};
    mf_row_dot<T, 1>(expert_row(a.up, e, o), a.d, x, a.d, 1, vec, lane, pu);
    float u = mf_warp_sum(pu[0]) + expert_bias(a.up, e, o);
    if (lane == 0) out[pair * a.F + o] = mf_swiglu_oai(g, u, a.limit, a.alpha);
}

/* x[t][o] += Σ_slot w_slot · (W_down,e row o · a_pair + b_down,e[o]) */
template <int T>
__global__ void __launch_bounds__(MF_GEMV_WARPS *MF_WARP) expert_down_kernel(const mf_cu_moe_args a, int vec)
{
    const int warp = threadIdx.x / MF_WARP, lane = threadIdx.x % MF_WARP;
    const int64_t o = (int64_t)blockIdx.x * MF_GEMV_WARPS + warp;
    if (o >= a.d) return;
    const int t = blockIdx.z;
    float moe = 0.0f;
    for (int s = 0; s < a.k; s++) {
        const int64_t pair = (int64_t)t * a.k + s;
        const int e = a.sel[pair];
        float p[1] = {0.0f};
        mf_row_dot<T, 1>(expert_row(a.down, e, o), a.F, a.g + pair * a.F, a.F, 1, vec, lane, p);
        moe += a.selw[pair] * (mf_warp_sum(p[0]) + expert_bias(a.down, e, o));
    }
    if (lane == 0) a.x[(int64_t)t * a.d + o] += moe;
}

/* Counting sort of the N = n·k pairs by expert, stable (pair order within an expert).
 * One block; thread e counts expert e (all threads read the same sel[i] at once: one
 * broadcast load per step), thread 0 forms the offsets, then each expert scatters its pairs.
 * cnt[0..E) counts, cnt[E] = N, cnt[E+1 .. 2E+1] the E + 1 offsets. */
__global__ void sort_kernel(const int32_t *sel, int N, int E, int32_t *cnt, int32_t *perm, int32_t *inv)
{
    int32_t *off = cnt + E + 1;
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int c = 0;
        for (int i = 0; i < N; i++) c += sel[i] == e;
        cnt[e] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        off[0] = 0;
        for (int e = 0; e < E; e++) off[e + 1] = off[e] + cnt[e];
        cnt[E] = N;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int at = off[e];
        for (int i = 0; i < N; i++)
            if (sel[i] == e) {
                perm[at] = i;
                inv[i] = at;
                at++;
            }
    }
}

/* hg[j] = h[token of pair perm[j]] */
__global__ void gather_kernel(const float *h, int d, int k, const int32_t *perm, float *hg)
{
    const int64_t j = blockIdx.x;
    const float *src = h + (int64_t)(perm[j] / k) * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) hg[j * d + i] = src[i];
}

/* x[t] += Σ_slot w_slot · y[inv[t·k + slot]], the weighted expert outputs in slot order */
__global__ void combine_kernel(float *x, const float *y, const float *selw, const int32_t *inv, int d, int k)
{
    const int64_t t = blockIdx.x;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float moe = 0.0f;
        for (int s = 0; s < k; s++) moe += selw[t * k + s] * y[(int64_t)inv[t * k + s] * d + i];
        x[t * d + i] += moe;
    }
}

bool launch_gate_up(mf_cu_ctx *c, const mf_cu_moe_args *a, const mf_cu_mat &m, float *out, int two)
{
    dim3 grid(mf_cdiv(a->F, MF_GEMV_WARPS), a->k, a->n), block(MF_GEMV_WARPS * MF_WARP);
    int vec = mf_gemv_vec_ok(m.type, a->h, a->d, a->d);
    if (!vec && !mf_is_float(m.type)) return mf_cu_fail(c, "MoE: the layer input is not 16-byte aligned");
    bool ok = mf_type_dispatch(m.type, [&](auto tc) {
        constexpr int T = decltype(tc)::value;
        expert_gate_up_kernel<T><<<grid, block, 0, c->stream>>>(*a, m, out, two, vec);
    });
    if (!ok) return mf_cu_fail(c, "MoE: expert tensor type %u has no CUDA kernel", m.type);
    return mf_cu_launched(c, "expert_gate_up_kernel");
}

void moe_per_token(mf_cu_ctx *c, const mf_cu_moe_args *a)
{
    if (a->gate.type == a->up.type) {
        if (!launch_gate_up(c, a, a->gate, a->g, 1)) return;
    } else {
        if (!launch_gate_up(c, a, a->gate, a->g, 0) || !launch_gate_up(c, a, a->up, a->u, 0)) return;
        mf_cu_swiglu_oai(c, a->g, a->u, (int64_t)a->n * a->k * a->F, a->limit, a->alpha);
        if (c->failed) return;
    }
    dim3 grid(mf_cdiv(a->d, MF_GEMV_WARPS), 1, a->n), block(MF_GEMV_WARPS * MF_WARP);
    int vec = mf_gemv_vec_ok(a->down.type, a->g, a->F, a->F);
    if (!vec && !mf_is_float(a->down.type)) {
        mf_cu_fail(c, "MoE: the expert activations are not 16-byte aligned");
        return;
    }
    bool ok = mf_type_dispatch(a->down.type, [&](auto tc) {
        constexpr int T = decltype(tc)::value;
        expert_down_kernel<T><<<grid, block, 0, c->stream>>>(*a, vec);
    });
    if (!ok) {
        mf_cu_fail(c, "MoE: expert tensor type %u has no CUDA kernel", a->down.type);
        return;
    }
    mf_cu_launched(c, "expert_down_kernel");
}

/* expert e's slice of a stacked tensor as an ordinary matrix */
mf_cu_mat slice(const mf_cu_mat &m, int e)
{
    mf_cu_mat s = m;
    s.w = m.w + (size_t)e * (size_t)m.n_out * m.row_bytes;
    s.bias = m.bias ? m.bias + (size_t)e * (size_t)m.n_out : nullptr;
    return s;
}

void moe_grouped(mf_cu_ctx *c, const mf_cu_moe_args *a)
{
    const int N = a->n * a->k, E = a->E;
    if (c->capturing) {
        mf_cu_fail(c, "MoE: the grouped path synchronizes with the host and cannot be captured (%d tokens)", a->n);
        return;
    }
    const int sort_threads = E < 1024 ? ((E + 31) / 32) * 32 : 1024;
    sort_kernel<<<1, sort_threads, 0, c->stream>>>(a->sel, N, E, a->counts, a->perm, a->inv);
    if (!mf_cu_launched(c, "sort_kernel")) return;
    gather_kernel<<<N, 256, 0, c->stream>>>(a->h, a->d, a->k, a->perm, a->hg);
    if (!mf_cu_launched(c, "gather_kernel")) return;
    if (!mf_cu_check(c,
                     cudaMemcpyAsync(a->counts_host, a->counts, sizeof(int32_t) * 2 * (size_t)(E + 1),
                                     cudaMemcpyDeviceToHost, c->stream),
                     "MoE: copy of the expert counts") ||
        !mf_cu_check(c, cudaStreamSynchronize(c->stream), "MoE: wait for the expert counts"))
        return;
    const int32_t *cnt = a->counts_host, *off = a->counts_host + E + 1;
    for (int e = 0; e < E && !c->failed; e++) {
        if (!cnt[e]) continue;
        mf_cu_mat gm[2] = {slice(a->gate, e), slice(a->up, e)};
        float *outs[2] = {a->g + (int64_t)off[e] * a->F, a->u + (int64_t)off[e] * a->F};
        int64_t ldo[2] = {a->F, a->F};
        mf_cu_matmul(c, gm, outs, ldo, 2, a->hg + (int64_t)off[e] * a->d, a->d, cnt[e], 0);
    }
    mf_cu_swiglu_oai(c, a->g, a->u, (int64_t)N * a->F, a->limit, a->alpha);
    for (int e = 0; e < E && !c->failed; e++) {
        if (!cnt[e]) continue;
        mf_cu_mat dm = slice(a->down, e);
        float *out = a->y + (int64_t)off[e] * a->d;
        int64_t ldo = a->d;
        mf_cu_matmul(c, &dm, &out, &ldo, 1, a->g + (int64_t)off[e] * a->F, a->F, cnt[e], 0);
    }
    if (c->failed) return;
    combine_kernel<<<a->n, 256, 0, c->stream>>>(a->x, a->y, a->selw, a->inv, a->d, a->k);
    mf_cu_launched(c, "combine_kernel");
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

void mf_cu_moe(mf_cu_ctx *c, const mf_cu_moe_args *a)
{
    if (c->failed || a->n <= 0) return;
    if (a->k < 1 || a->k > MOE_MAXK || a->k > a->E) {
        mf_cu_fail(c, "MoE: %d experts per token of %d (1 to %d supported)", a->k, a->E, MOE_MAXK);
        return;
    }
    float *lo = a->logits;
    int64_t ldl = a->E;
    mf_cu_matmul(c, &a->router, &lo, &ldl, 1, a->h, a->d, a->n, 0);
    if (c->failed) return;
    topk_kernel<<<a->n, MF_WARP, 0, c->stream>>>(a->logits, a->E, a->k, a->sel, a->selw);
    if (!mf_cu_launched(c, "topk_kernel")) return;
    if (a->n < MF_MOE_GROUP_MIN) moe_per_token(c, a);
    else moe_grouped(c, a);
}
