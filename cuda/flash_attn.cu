/* flash_attn.cu — causal grouped-query attention over the KV cache in one fused kernel:
 * softmax(q·Kᵀ·scale + mask)·V with the online softmax, never materializing the scores.
 *
 *   for query row r (position p = pos0 + r), head j, KV head g = j / (H/Hkv), over the cache
 *   of the rows' sequence (one launch covers rows of one sequence: backend_cuda.cu launches
 *   once per run of rows of a sequence in a step of several):
 *     visible keys t: t <= p, and on sliding layers p − t < window
 *     s_t = (q_j · k_t)·scale;  with a sink S_j: M = max(max s_t, S_j),
 *     Z = Σ e^(s_t − M) + e^(S_j − M);  o_j = Σ e^(s_t − M)/Z · v_t
 *   CPU twin: mf_cpu_attention (engine/cpu/attention.c, two-pass softmax).
 *
 * One kernel family for every model: Llama (no window, no sinks), gpt-oss (window on the
 * sliding layers, sinks everywhere), head dims 64 and 128 compiled with the loops unrolled
 * (HD template) and any other head dim up to 256 through the generic instance (HD = 0;
 * the tiny test models use 8 and 16), KV cache in float32 or binary16 (KT template).
 *
 * Grid / block (128 threads = 4 warps, 16 "query vectors" per block; geometry.cuh):
 *   blockIdx.z  KV head g
 *   tile        a tile of 16 query vectors (row, head of g's group), row-major: the G query
 *               heads that share KV head g are neighbours, so one loaded K/V tile serves
 *               all of them (GQA) and, for prompts, several rows at once. Decode: tile =
 *               blockIdx.y. Prompts: tile = blockIdx.x·gridDim.y + blockIdx.y, folded into
 *               x when there are more than 65535 tiles (mf_cu_attn_grid)
 *   blockIdx.x  the split (flash-decoding)
 * Each warp owns 4 query vectors (round robin); lane L owns key L of the 32-key tile for
 * the scores and head dims L, L+32, … for the output accumulator.
 *
 *   per tile of 32 keys:                     shared memory (floats)
 *     load K, V tile (all 128 threads)        Qs [16][hd]      queries of the block
 *     s   = q·k_L·scale or −∞ (masked)        Ks [32][hd + 1]  +1: lanes read a column
 *     m'  = max(m, max_L s)   (5 shuffles)                      without bank conflicts
 *     o  *= e^(m − m'),  l = l·e^(m − m') + Σ_L e^(s − m')
 *     o  += Σ_L e^(s_L − m')·v_L   (p_L broadcast by shuffle)   Vs [32][hd]
 *
 * Prompts (chunk = 0): a block walks all keys its rows can see and writes the normalized
 * output (sink folded in by mf_sm_finish). Decode (n = 1, chunk > 0): block x handles keys
 * [lo + x·chunk, lo + (x+1)·chunk) of the visible range [lo, p] and writes its unnormalized
 * (o, m, l); attn_combine_kernel merges the splits and the sink. The grid is fixed by the
 * context size (nsplit = ⌈span/chunk⌉), blocks past the current length return at once: the
 * launch does not depend on the position, so a CUDA graph replays it at every position.
 * On a sliding layer lo = p − window + 1: keys outside the window are not even loaded, and
 * the cache is a ring buffer (position t at slot t % slots).
 *
 * Memory traffic: decode reads each visible key and value once (2·hd·elem bytes per key per
 * KV head) plus the partials (nsplit·H·(hd + 2)·4 bytes written and read); prompts read each
 * K/V tile once per block of 16 query vectors (from L2 for all but the first).
 *
 * Why FMA and not tensor cores: this version does the two products with CUDA-core FMAs. It
 * is simple enough to be verified by reading — the project had no GPU while it was written —
 * and for decode it is bound by reading the cache anyway. The prompt path is compute-bound;
 * an mma.sync version (QKᵀ and PV on tensor cores, the same online softmax) is the known
 * next step (docs/cuda.md, "not yet measured").
 */
#include "ctx.cuh"
#include "math.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

constexpr int FA_WARPS = MF_FA_WARPS;
constexpr int FA_QPW = MF_FA_QPW; /* query vectors per warp */
constexpr int FA_QB = MF_FA_QB;   /* query vectors per block */
constexpr int FA_BK = MF_FA_BK;   /* keys per tile = lanes of a warp */
constexpr int FA_MAXDL = 8;       /* generic instance: hd <= 8·32 = 256 */

__device__ __forceinline__ float ld_kv(const float *p) { return *p; }
__device__ __forceinline__ float ld_kv(const __half *p) { return __half2float(*p); }

template <typename KT, int HD>
__global__ void __launch_bounds__(FA_WARPS *MF_WARP) flash_attn_kernel(const mf_cu_attn_args a)
{
    extern __shared__ float smem[];
    constexpr int NDL = HD ? (HD + MF_WARP - 1) / MF_WARP : FA_MAXDL;
    const int hd = HD ? HD : a.hd;
    float *Qs = smem;
    float *Ks = Qs + FA_QB * hd;
    float *Vs = Ks + FA_BK * (hd + 1);
    const int warp = threadIdx.x / MF_WARP, lane = threadIdx.x % MF_WARP;
    const int G = a.H / a.Hkv, g = blockIdx.z;
    const int64_t nq = (int64_t)a.n * G; /* query vectors of KV head g */
    const int64_t f0 = mf_cu_attn_tile(a.chunk, blockIdx.x, blockIdx.y, gridDim.y) * FA_QB;
    if (f0 >= nq) return;                              /* a fold's spare block (whole block: no barrier skipped) */
    const int64_t so = (int64_t)*a.seq * a.seq_stride; /* the sequence's cache */
    const KT *K = (const KT *)a.kc + so, *V = (const KT *)a.vc + so;

    /* the positions this block's rows span, and the keys they can see */
    const int p0 = *a.pos0;
    const int r_first = (int)(f0 / G);
    const int r_last = (int)min((int64_t)a.n - 1, (f0 + FA_QB - 1) / G);
    const int p_last = p0 + r_last;
    const int lo = a.window ? max(0, p0 + r_first - a.window + 1) : 0;
    int t_begin = lo, t_end = p_last + 1;
    if (a.chunk) {
        t_begin = lo + blockIdx.x * a.chunk;
        if (t_begin > p_last) return; /* past the current length: the combine skips it */
        t_end = min(t_end, t_begin + a.chunk);
    }

    for (int idx = threadIdx.x; idx < FA_QB * hd; idx += blockDim.x) {
        int qv = idx / hd, dd = idx % hd;
        int64_t f = f0 + qv;
        float v = 0.0f;
        if (f < nq) {
            int64_t r = f / G, j = (int64_t)g * G + f % G;
            v = a.q[(r * a.H + j) * hd + dd];
        }
        Qs[idx] = v;
    }

    float m[FA_QPW], l[FA_QPW], o[FA_QPW][NDL];
    int pq[FA_QPW];
    bool valid[FA_QPW];
#pragma unroll
    for (int qi = 0; qi < FA_QPW; qi++) {
        int64_t f = f0 + warp + FA_WARPS * qi;
        valid[qi] = f < nq;
        pq[qi] = p0 + (int)(f / G);
        m[qi] = -INFINITY;
        l[qi] = 0.0f;
#pragma unroll
        for (int i = 0; i < NDL; i++) o[qi][i] = 0.0f;
    }

    for (int t0 = t_begin; t0 < t_end; t0 += FA_BK) {
        __syncthreads(); /* the previous tile is no longer read */
        for (int idx = threadIdx.x; idx < FA_BK * hd; idx += blockDim.x) {
            int kt = idx / hd, dd = idx % hd, t = t0 + kt;
            float kv = 0.0f, vv = 0.0f;
            if (t < t_end) {
                int64_t off = ((int64_t)g * a.slots + t % a.slots) * hd + dd;
                kv = ld_kv(K + off);
                vv = ld_kv(V + off);
            }
            Ks[kt * (hd + 1) + dd] = kv;
            Vs[kt * hd + dd] = vv;
        }
        __syncthreads();
        const int nk = min(FA_BK, t_end - t0);
#pragma unroll
        for (int qi = 0; qi < FA_QPW; qi++) {
            if (!valid[qi]) continue; /* warp-uniform */
            const float *qrow = Qs + (warp + FA_WARPS * qi) * hd;
            const int t = t0 + lane;
            float s = -INFINITY;
            if (lane < nk && t <= pq[qi] && (a.window == 0 || pq[qi] - t < a.window)) {
                const float *krow = Ks + lane * (hd + 1);
                float dot = 0.0f;
#pragma unroll 16
                for (int dd = 0; dd < hd; dd++) dot += qrow[dd] * krow[dd];
                s = dot * a.scale;
            }
            const float mn = fmaxf(m[qi], mf_warp_max(s));
            if (mn == -INFINITY) continue; /* nothing visible to this query yet (uniform) */
            const float alpha = mf_sm_rescale(m[qi], mn);
            const float pw = mf_sm_weight(s, mn);
            l[qi] = l[qi] * alpha + mf_warp_sum(pw);
#pragma unroll
            for (int i = 0; i < NDL; i++) o[qi][i] *= alpha;
            for (int kt = 0; kt < nk; kt++) {
                const float pk = __shfl_sync(0xFFFFFFFFu, pw, kt);
                const float *vrow = Vs + kt * hd;
#pragma unroll
                for (int i = 0; i < NDL; i++) {
                    int dd = lane + MF_WARP * i;
                    if (dd < hd) o[qi][i] += pk * vrow[dd];
                }
            }
            m[qi] = mn;
        }
    }

#pragma unroll
    for (int qi = 0; qi < FA_QPW; qi++) {
        if (!valid[qi]) continue;
        int64_t f = f0 + warp + FA_WARPS * qi, r = f / G, j = (int64_t)g * G + f % G;
        if (a.chunk == 0) {
            const float fac = mf_sm_finish(m[qi], l[qi], a.sinks != nullptr, a.sinks ? a.sinks[j] : 0.0f);
            float *op = a.out + (r * a.H + j) * hd;
#pragma unroll
            for (int i = 0; i < NDL; i++) {
                int dd = lane + MF_WARP * i;
                if (dd < hd) op[dd] = o[qi][i] * fac;
            }
        } else {
            const int64_t pi = (int64_t)blockIdx.x * a.H + j; /* n == 1: row 0 */
            float *op = a.part_o + pi * hd;
#pragma unroll
            for (int i = 0; i < NDL; i++) {
                int dd = lane + MF_WARP * i;
                if (dd < hd) op[dd] = o[qi][i];
            }
            if (lane == 0) {
                a.part_ml[2 * pi] = m[qi];
                a.part_ml[2 * pi + 1] = l[qi];
            }
        }
    }
}

/* Flash-decoding, second pass: merge the splits of head j (one block per head) and the
 * sink. With M = max over splits (and S), Z = Σ_s l_s·e^(m_s − M) (+ e^(S − M)),
 * out = Σ_s e^(m_s − M)·o_s / Z. Every split that ran saw at least one key (its first key
 * lo + x·chunk <= p is visible), so its m_s is finite. */
__global__ void attn_combine_kernel(const mf_cu_attn_args a)
{
    const int j = blockIdx.x, hd = a.hd;
    const int p = *a.pos0;
    const int lo = a.window ? max(0, p - a.window + 1) : 0;
    const int ns = min(a.nsplit, (p - lo) / a.chunk + 1);
    float M = -INFINITY;
    for (int s = 0; s < ns; s++) M = fmaxf(M, a.part_ml[2 * ((int64_t)s * a.H + j)]);
    const bool sink = a.sinks != nullptr;
    const float S = sink ? a.sinks[j] : 0.0f;
    if (sink) M = fmaxf(M, S);
    float Z = sink ? expf(S - M) : 0.0f;
    for (int s = 0; s < ns; s++) {
        int64_t pi = (int64_t)s * a.H + j;
        Z += a.part_ml[2 * pi + 1] * expf(a.part_ml[2 * pi] - M);
    }
    for (int dd = threadIdx.x; dd < hd; dd += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < ns; s++) {
            int64_t pi = (int64_t)s * a.H + j;
            acc += expf(a.part_ml[2 * pi] - M) * a.part_o[pi * hd + dd];
        }
        a.out[(int64_t)j * hd + dd] = acc / Z;
    }
}

template <typename KT> void *kernel_for(int hd)
{
    if (hd == 64) return (void *)flash_attn_kernel<KT, 64>;
    if (hd == 128) return (void *)flash_attn_kernel<KT, 128>;
    return (void *)flash_attn_kernel<KT, 0>;
}

template <typename KT> void launch(mf_cu_ctx *c, const mf_cu_attn_args *a, dim3 grid, size_t smem)
{
    dim3 block(FA_WARPS * MF_WARP);
    if (a->hd == 64) flash_attn_kernel<KT, 64><<<grid, block, smem, c->stream>>>(*a);
    else if (a->hd == 128) flash_attn_kernel<KT, 128><<<grid, block, smem, c->stream>>>(*a);
    else flash_attn_kernel<KT, 0><<<grid, block, smem, c->stream>>>(*a);
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

size_t mf_cu_attn_smem(int hd) { return (size_t)(FA_QB * hd + FA_BK * (hd + 1) + FA_BK * hd) * sizeof(float); }

int mf_cu_attn_configure(int hd, int kv_f16, size_t smem_optin, mf_err *err)
{
    if (hd < 1 || hd > FA_MAXDL * MF_WARP)
        return mf_errf(err, "attention: head dim %d is not supported by the CUDA kernels (1 to %d)", hd,
                       FA_MAXDL * MF_WARP);
    size_t smem = mf_cu_attn_smem(hd);
    if (smem <= 48 * 1024) return 0;
    if (smem > smem_optin)
        return mf_errf(err, "attention: head dim %d needs %zu bytes of shared memory per block, the device allows %zu",
                       hd, smem, smem_optin);
    void *k = kv_f16 ? kernel_for<__half>(hd) : kernel_for<float>(hd);
    cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return mf_cu_err(err, e, "cudaFuncSetAttribute(flash_attn_kernel shared memory)");
    return 0;
}

void mf_cu_attention(mf_cu_ctx *c, const mf_cu_attn_args *a)
{
    if (c->failed || a->n <= 0) return;
    const size_t smem = mf_cu_attn_smem(a->hd);
    if (a->chunk && a->n != 1) {
        mf_cu_fail(c, "attention: split (flash-decoding) launch with %d rows", a->n);
        return;
    }
    mf_cu_grid g;
    int64_t tiles;
    if (a->Hkv < 1 || a->H % a->Hkv || mf_cu_attn_grid(a->n, a->H / a->Hkv, a->Hkv, a->chunk, a->nsplit, &g, &tiles)) {
        mf_cu_fail(c, "attention: no CUDA grid holds %d rows of %d heads over %d KV heads (split %d)", a->n, a->H,
                   a->Hkv, a->nsplit);
        return;
    }
    dim3 grid((unsigned)g.x, (unsigned)g.y, (unsigned)g.z);
    if (a->kv_f16) launch<__half>(c, a, grid, smem);
    else launch<float>(c, a, grid, smem);
    if (!mf_cu_launched(c, a->chunk ? "flash_attn_kernel (split)" : "flash_attn_kernel") || !a->chunk) return;
    attn_combine_kernel<<<a->H, 64, 0, c->stream>>>(*a);
    mf_cu_launched(c, "attn_combine_kernel");
}
