/* matmul.cu — which kernel multiplies: the GEMV of gemv_vec.cu for few tokens (decode,
 * memory-bound: each weight byte is read once per MF_GEMV_MAX_TOK tokens), the F16 tiles +
 * cuBLAS GEMM of gemv_gemm.cu from MF_GEMM_MIN_ROWS tokens on (prompts, compute-bound).
 * CPU twin: mf_cpu_matmul, which switches from its quantized-dot path to OpenBLAS the same
 * way. Several matrices with one input (q, k, v) share a launch when they share a type. */
#include "ctx.cuh"

void mf_cu_matmul(mf_cu_ctx *c, const mf_cu_mat *m, float *const *out, const int64_t *ldo, int n_mats, const float *x,
                  int64_t ldx, int rows, int accumulate)
{
    if (c->failed || rows <= 0) return;
    if (rows >= MF_GEMM_MIN_ROWS && c->wh && c->xh) {
        mf_cu_gemm(c, m, out, ldo, n_mats, x, ldx, rows, accumulate);
        return;
    }
    int same = 1;
    for (int j = 1; j < n_mats; j++) same &= m[j].type == m[0].type && m[j].n_in == m[0].n_in;
    if (same) {
        mf_cu_gemv(c, m, out, ldo, n_mats, x, ldx, rows, accumulate);
        return;
    }
    for (int j = 0; j < n_mats; j++) mf_cu_gemv(c, &m[j], &out[j], &ldo[j], 1, x, ldx, rows, accumulate);
}
