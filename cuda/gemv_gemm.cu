/* gemv_gemm.cu — matrix × matrix for prompts (MF_GEMM_MIN_ROWS tokens and more): weights
 * dequantized to F16 tiles, activations converted to F16 once, tensor-core GEMM by cuBLAS.
 *
 *   out[t][o] (+)= Σ_i W[o][i]·x[t][i] (+ b[o])        CPU twin: mf_cpu_matmul's BLAS path
 *                                                       (dequantized tiles + sgemm)
 *
 * Float32 weights skip the tiles: cublasSgemm on the weights and activations as they are
 * (FP32 math), so all-F32 models and the F32 router of gpt-oss keep full precision.
 *
 * Steps per call, other types: (1) x [rows][n_in] float -> xh [rows][n_in] binary16, once for all the
 * matrices of the call (q, k, v share it); (2) per matrix, per tile of weight rows (the whole
 * matrix when it fits in wh_cap elements, else ≤ wh_cap / n_in rows rounded down to a
 * multiple of 64, so each tile's output is as aligned as the first: mf_cu_gemm_tile_rows):
 * dequantize the tile into wh (one thread per 32-element chunk: mf_dq32, then
 * four 16-byte stores; float types one thread per element), then cublasGemmEx with F16
 * inputs, F32 accumulation and F32 output written (or, accumulate = 1, added: beta = 1)
 * into the tile's columns of out; (3) the bias, if any, added by a small kernel.
 *
 * cuBLAS sees column-major matrices: our row-major W tile [nr][n_in] is a column-major
 * n_in × nr matrix A (lda = n_in), x is n_in × rows (ldb = n_in) and out is n_out × rows
 * (ldc = ldo), so out_tile = Aᵀ·B: transa = T, transb = N, m = nr, n = rows, k = n_in.
 *
 * Why this design (docs/cuda.md): a prompt is compute-bound — 2·n_params flops per token,
 * 2.2 GFLOP for TinyLlama — and tensor cores are the only way to 20000 tokens/s. A hand
 * written mma.sync kernel that dequantizes inside the tile loop would save the F16 round
 * trip (2 bytes per weight written and read again, per tile, once per call — small next to
 * rows · n_in · n_out flops for rows in the hundreds) but could not be verified on this
 * project's GPU-less development machine; cuBLAS is correct by construction. Memory: the
 * tile scratch is bounded (64 MiB by default, backend_cuda.cu), not a dequantized model.
 *
 * Precision: F16 has an 11-bit significand (relative rounding 2^-11 ≈ 4.9e-4 per operand),
 * and range ±65504: the matmul inputs are RMS-normalized activations, attention outputs and
 * SwiGLU products — bounded, never the raw residual stream.
 */
#include "ctx.cuh"
#include "dequant.cuh"

namespace mf_kernels
{  // in every kernel name: the racecheck filter (ctx.cuh)
namespace
{

__global__ void to_half_kernel(const float *x, int64_t ldx, int64_t n_in, int rows, __half *xh)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_in * rows) return;
    int64_t r = i / n_in, c = i % n_in;
    xh[i] = __float2half_rn(x[r * ldx + c]);
}

/* rows [o0, o0 + nr) of W -> wh [nr][n_in] binary16 */
template <int T>
__global__ void dequant_tile_kernel(const uint8_t *w, size_t row_bytes, int64_t n_in, int64_t o0, int64_t nr,
                                    __half *wh)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if constexpr (mf_is_float_type<T>) {
        if (i >= nr * n_in) return;
        int64_t r = i / n_in, c = i % n_in;
        wh[i] = __float2half_rn(mf_dq_elem<T>(w + (o0 + r) * row_bytes, c));
    } else {
        int64_t nch = n_in / 32;
        if (i >= nr * nch) return;
        int64_t r = i / nch, ch = i % nch;
        float y[32];
        mf_dq32<T>(w + (o0 + r) * row_bytes, ch, y);
        uint4 *dst = (uint4 *)(wh + r * n_in + 32 * ch); /* 64-byte aligned: n_in % 32 == 0 */
#pragma unroll
        for (int q = 0; q < 4; q++) {
            __half2 h0 = __floats2half2_rn(y[8 * q], y[8 * q + 1]), h1 = __floats2half2_rn(y[8 * q + 2], y[8 * q + 3]);
            __half2 h2 = __floats2half2_rn(y[8 * q + 4], y[8 * q + 5]),
                    h3 = __floats2half2_rn(y[8 * q + 6], y[8 * q + 7]);
            uint4 v;
            v.x = *(uint32_t *)&h0;
            v.y = *(uint32_t *)&h1;
            v.z = *(uint32_t *)&h2;
            v.w = *(uint32_t *)&h3;
            dst[q] = v;
        }
    }
}

__global__ void add_bias_kernel(float *out, int64_t ldo, int64_t n_out, int rows, const float *b)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_out * rows) return;
    int64_t r = i / n_out, o = i % n_out;
    out[r * ldo + o] += b[o];
}

bool dequant_tile(mf_cu_ctx *c, const mf_cu_mat *m, int64_t o0, int64_t nr)
{
    bool quant = m->type != MF_TYPE_F32 && m->type != MF_TYPE_F16 && m->type != MF_TYPE_BF16;
    int64_t items = quant ? nr * (m->n_in / 32) : nr * m->n_in;
    bool ok = mf_type_dispatch(m->type, [&](auto tc) {
        constexpr int T = decltype(tc)::value;
        dequant_tile_kernel<T><<<mf_cdiv(items, 256), 256, 0, c->stream>>>(m->w, m->row_bytes, m->n_in, o0, nr, c->wh);
    });
    if (!ok) return mf_cu_fail(c, "GEMM: tensor type %u has no CUDA kernel", m->type);
    return mf_cu_launched(c, "dequant_tile_kernel");
}

}  // namespace
}  // namespace mf_kernels
using namespace mf_kernels;

void mf_cu_gemm(mf_cu_ctx *c, const mf_cu_mat *m, float *const *out, const int64_t *ldo, int n_mats, const float *x,
                int64_t ldx, int rows, int accumulate)
{
    if (c->failed) return;
    int64_t n_in = m[0].n_in;
    int need_half = 0;
    for (int j = 0; j < n_mats; j++) need_half |= m[j].type != MF_TYPE_F32;
    if (need_half) {
        if ((size_t)rows * (size_t)n_in > c->xh_cap) {
            mf_cu_fail(c, "GEMM: %d rows of %lld exceed the F16 activation scratch (%zu)", rows, (long long)n_in,
                       c->xh_cap);
            return;
        }
        to_half_kernel<<<mf_cdiv(n_in * rows, 256), 256, 0, c->stream>>>(x, ldx, n_in, rows, c->xh);
        if (!mf_cu_launched(c, "to_half_kernel")) return;
    }
    const float one = 1.0f, zero = 0.0f;
    for (int j = 0; j < n_mats; j++) {
        const mf_cu_mat *w = &m[j];
        if (w->n_in != n_in) {
            mf_cu_fail(c, "GEMM: matrices of one call differ in width");
            return;
        }
        if (w->type != MF_TYPE_F32 && w->type != MF_TYPE_F16 && w->type != MF_TYPE_BF16 && n_in % 32) {
            mf_cu_fail(c, "GEMM: a row of %lld elements is not a whole number of blocks", (long long)n_in);
            return;
        }
        if (!mf_cu_blas_check(c, cublasSetStream(c->blas, c->stream), "cublasSetStream")) return;
        if (w->type == MF_TYPE_F32) {
            /* float32 weights need no tile: SGEMM on the weights and activations as they are
             * (full FP32 — the router of gpt-oss stays exact, as on the CPU) */
            cublasStatus_t s = cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->n_out, rows, (int)n_in, &one,
                                           (const float *)w->w, (int)(w->row_bytes / 4), x, (int)ldx,
                                           accumulate ? &one : &zero, out[j], (int)ldo[j]);
            if (!mf_cu_blas_check(c, s, "cublasSgemm")) return;
        } else {
            /* whole matrix, or a multiple of 64 rows: every tile's output stays aligned */
            const int64_t tile = mf_cu_gemm_tile_rows(c->wh_cap, n_in, w->n_out);
            if (tile < 1) {
                mf_cu_fail(c, "GEMM: the F16 tile scratch (%zu elements) holds fewer than %d rows of %lld elements",
                           c->wh_cap, MF_GEMM_TILE_ALIGN, (long long)n_in);
                return;
            }
            for (int64_t o0 = 0; o0 < w->n_out; o0 += tile) {
                int64_t nr = w->n_out - o0 < tile ? w->n_out - o0 : tile;
                if (!dequant_tile(c, w, o0, nr)) return;
                cublasStatus_t s =
                    cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, rows, (int)n_in, &one, c->wh, CUDA_R_16F,
                                 (int)n_in, c->xh, CUDA_R_16F, (int)n_in, accumulate ? &one : &zero, out[j] + o0,
                                 CUDA_R_32F, (int)ldo[j], CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
                if (!mf_cu_blas_check(c, s, "cublasGemmEx")) return;
            }
        }
        if (w->bias) {
            add_bias_kernel<<<mf_cdiv(w->n_out * rows, 256), 256, 0, c->stream>>>(out[j], ldo[j], w->n_out, rows,
                                                                                  w->bias);
            if (!mf_cu_launched(c, "add_bias_kernel")) return;
        }
    }
}
