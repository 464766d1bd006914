/* gemv_vec.cu — matrix × vector for decode (and batches of up to MF_GEMV_MAX_TOK tokens),
 * every weight type, weights read in their file format.
 *
 *   out[t][o] (+)= Σ_i W[o][i]·x[t][i] (+ b[o])        CPU twin: mf_cpu_matmul (engine/cpu/
 *                                                       matmul.c), reference mf_dot_ref
 *
 * Grid / block. One warp per weight row, MF_GEMV_WARPS (4) warps per 128-thread block,
 * grid = ⌈rows / 4⌉. The warp's lanes stride over the row 32 elements at a time (gemv.cuh),
 * dequantize in registers, and reduce their partial sums with 5 shuffles; lane t writes
 * token t's result. Up to three matrices with the same input (q, k, v) share one launch:
 * their rows are numbered one after the other and each warp finds its matrix.
 *
 * Memory traffic per call: the matrix once (n_out · row_bytes), the activations once per
 * block from L2 (n_tok · n_in · 4 per block, mostly L1 hits), n_tok · n_out · 4 written.
 * Decode is bound by the first term: TinyLlama Q4_0 reads ≈ 599 MB per token, so at
 * 3.35 TB/s (H100 SXM) the floor is 0.18 ms per token (docs/cuda.md, roofline).
 *
 * Why this design: one warp per row keeps a row's reads contiguous and needs no shared
 * memory or block-wide synchronization; 4 warps per block give the scheduler rows to switch
 * between while loads are in flight, and n_out / 4 blocks (512 for a 2048-row matrix) fill
 * the 132 SMs of an H100 several times over. The dense-FFN variant (swiglu = 1) computes the
 * gate and the up row in the same warp and writes silu(g)·u directly: one launch and no
 * round trip of the two F-wide vectors through memory.
 */
#include "ctx.cuh"
#include "gemv.cuh"
#include "math.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

struct gemv_job {
    const uint8_t *w;
    const float *b;
    float *out;
    int64_t ldo;
    size_t row_bytes;
};

struct gemv_args {
    gemv_job job[3];
    int64_t row_end[3]; /* cumulative row counts: matrix j owns [row_end[j−1], row_end[j]) */
    int n_jobs;
    int64_t n_in;
    const float *x;
    int64_t ldx;
    int nt;
    int accumulate;
    int vec;
    int swiglu; /* job 0 = gate, job 1 = up, output act */
    float *act;
    int64_t ld_act;
};

template <int T, int NT> __global__ void __launch_bounds__(MF_GEMV_WARPS *MF_WARP) gemv_kernel(const gemv_args a)
{
    const int warp = threadIdx.x / MF_WARP, lane = threadIdx.x % MF_WARP;
    const int64_t gr = (int64_t)blockIdx.x * MF_GEMV_WARPS + warp;

    if (a.swiglu) {
        if (gr >= a.row_end[0]) return; /* whole warp leaves together */
        float ag[NT], au[NT];
#pragma unroll
        for (int t = 0; t < NT; t++) ag[t] = au[t] = 0.0f;
        mf_row_dot<T, NT>(a.job[0].w + gr * a.job[0].row_bytes, a.n_in, a.x, a.ldx, a.nt, a.vec, lane, ag);
        mf_row_dot<T, NT>(a.job[1].w + gr * a.job[1].row_bytes, a.n_in, a.x, a.ldx, a.nt, a.vec, lane, au);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float g = mf_warp_sum(ag[t]), u = mf_warp_sum(au[t]);
            if (lane == t && t < a.nt) {
                if (a.job[0].b) g += a.job[0].b[gr];
                if (a.job[1].b) u += a.job[1].b[gr];
                a.act[t * a.ld_act + gr] = mf_swiglu(g, u);
            }
        }
        return;
    }

    /* which matrix this row belongs to (selects, not a dynamic index into the parameters) */
    const int j = gr < a.row_end[0] ? 0 : (gr < a.row_end[1] || a.n_jobs < 3 ? 1 : 2);
    if (j >= a.n_jobs || gr >= a.row_end[j]) return;
    const gemv_job J = j == 0 ? a.job[0] : (j == 1 ? a.job[1] : a.job[2]);
    const int64_t o = gr - (j == 0 ? 0 : (j == 1 ? a.row_end[0] : a.row_end[1]));

    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    mf_row_dot<T, NT>(J.w + o * J.row_bytes, a.n_in, a.x, a.ldx, a.nt, a.vec, lane, acc);
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float s = mf_warp_sum(acc[t]);
        if (lane == t && t < a.nt) {
            if (J.b) s += J.b[o];
            float *p = J.out + t * J.ldo + o;
            *p = a.accumulate ? *p + s : s;
        }
    }
}

/* one launch for tokens [0, nt) of a (x and the outputs already offset to the group) */
bool launch(mf_cu_ctx *c, uint32_t type, const gemv_args &a, int64_t total_rows)
{
    dim3 grid(mf_cdiv(total_rows, MF_GEMV_WARPS)), block(MF_GEMV_WARPS * MF_WARP);
    bool ok = mf_type_dispatch(type, [&](auto tc) {
        constexpr int T = decltype(tc)::value;
        if (a.nt == 1) gemv_kernel<T, 1><<<grid, block, 0, c->stream>>>(a);
        else gemv_kernel<T, MF_GEMV_MAX_TOK><<<grid, block, 0, c->stream>>>(a);
    });
    if (!ok) return mf_cu_fail(c, "GEMV: tensor type %u has no CUDA kernel", type);
    return mf_cu_launched(c, "gemv_kernel");
}

bool check_x(mf_cu_ctx *c, uint32_t type, const float *x, int64_t ldx, int64_t n_in)
{
    if (type == MF_TYPE_F32 || type == MF_TYPE_F16 || type == MF_TYPE_BF16) return true;
    if (n_in % 32)
        return mf_cu_fail(c, "GEMV: a row of %lld elements is not a whole number of blocks", (long long)n_in);
    if (!mf_gemv_vec_ok(type, x, ldx, n_in))
        return mf_cu_fail(c, "GEMV: activations at %p with row stride %lld are not 16-byte aligned", (const void *)x,
                          (long long)ldx);
    return true;
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

void mf_cu_gemv(mf_cu_ctx *c, const mf_cu_mat *m, float *const *out, const int64_t *ldo, int n_mats, const float *x,
                int64_t ldx, int rows, int accumulate)
{
    if (c->failed) return;
    if (n_mats < 1 || n_mats > 3) {
        mf_cu_fail(c, "GEMV: %d matrices in one launch (1 to 3)", n_mats);
        return;
    }
    if (!check_x(c, m[0].type, x, ldx, m[0].n_in)) return;
    gemv_args a = {};
    a.n_jobs = n_mats;
    a.n_in = m[0].n_in;
    a.ldx = ldx;
    a.accumulate = accumulate;
    a.vec = mf_gemv_vec_ok(m[0].type, x, ldx, m[0].n_in);
    int64_t total = 0;
    for (int j = 0; j < n_mats; j++) {
        if (m[j].type != m[0].type || m[j].n_in != m[0].n_in) {
            mf_cu_fail(c, "GEMV: fused matrices differ in type or width");
            return;
        }
        a.job[j].w = m[j].w;
        a.job[j].b = m[j].bias;
        a.job[j].ldo = ldo[j];
        a.job[j].row_bytes = m[j].row_bytes;
        total += m[j].n_out;
        a.row_end[j] = total;
    }
    for (int j = n_mats; j < 3; j++) a.row_end[j] = total;
    for (int t0 = 0; t0 < rows; t0 += MF_GEMV_MAX_TOK) {
        a.nt = rows - t0 < MF_GEMV_MAX_TOK ? rows - t0 : MF_GEMV_MAX_TOK;
        a.x = x + t0 * ldx;
        for (int j = 0; j < n_mats; j++) a.job[j].out = out[j] + t0 * ldo[j];
        if (!launch(c, m[0].type, a, total)) return;
    }
}

void mf_cu_gemv_swiglu(mf_cu_ctx *c, const mf_cu_mat *gate, const mf_cu_mat *up, const float *x, int64_t ldx, int rows,
                       float *act, int64_t ld_act)
{
    if (c->failed) return;
    if (gate->type != up->type || gate->n_in != up->n_in || gate->n_out != up->n_out) {
        mf_cu_fail(c, "GEMV SwiGLU: gate and up differ in type or shape");
        return;
    }
    if (!check_x(c, gate->type, x, ldx, gate->n_in)) return;
    gemv_args a = {};
    a.n_jobs = 2;
    a.n_in = gate->n_in;
    a.ldx = ldx;
    a.vec = mf_gemv_vec_ok(gate->type, x, ldx, gate->n_in);
    a.swiglu = 1;
    a.ld_act = ld_act;
    a.job[0].w = gate->w;
    a.job[0].b = gate->bias;
    a.job[0].row_bytes = gate->row_bytes;
    a.job[1].w = up->w;
    a.job[1].b = up->bias;
    a.job[1].row_bytes = up->row_bytes;
    a.row_end[0] = a.row_end[1] = a.row_end[2] = gate->n_out;
    for (int t0 = 0; t0 < rows; t0 += MF_GEMV_MAX_TOK) {
        a.nt = rows - t0 < MF_GEMV_MAX_TOK ? rows - t0 : MF_GEMV_MAX_TOK;
        a.x = x + t0 * ldx;
        a.act = act + t0 * ld_act;
        if (!launch(c, gate->type, a, gate->n_out)) return;
    }
}
