/* ctx.cu — the execution context of ctx.cuh: stream, cuBLAS handle, F16 scratch, and the
 * error bookkeeping every launcher uses. */
#include <cstdarg>
#include <cstdio>

#include "ctx.cuh"

int mf_cu_err(mf_err *err, cudaError_t e, const char *what)
{
    cudaGetLastError(); /* clear a sticky launch error so later calls start clean */
    return mf_errf(err, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

bool mf_cu_fail(mf_cu_ctx *c, const char *fmt, ...)
{
    if (c->failed) return false;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return false;
}

bool mf_cu_check(mf_cu_ctx *c, cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return true;
    return mf_cu_fail(c, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

bool mf_cu_blas_check(mf_cu_ctx *c, cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    return mf_cu_fail(c, "%s: cuBLAS status %d (%s)", what, (int)s, cublasGetStatusString(s));
}

bool mf_cu_launched(mf_cu_ctx *c, const char *kernel)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return true;
    return mf_cu_fail(c, "launch of %s failed: %s (%s)", kernel, cudaGetErrorString(e), cudaGetErrorName(e));
}

int mf_cu_ctx_init(mf_cu_ctx *c, size_t wh_cap, size_t xh_cap, mf_err *err)
{
    memset(c, 0, sizeof *c);
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return mf_cu_err(err, e, "cudaGetDevice");
    int v = 0;
    if ((e = cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess)
        return mf_cu_err(err, e, "cudaDeviceGetAttribute(multiProcessorCount)");
    c->sm_count = v;
    if ((e = cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) != cudaSuccess)
        return mf_cu_err(err, e, "cudaDeviceGetAttribute(maxSharedMemoryPerBlockOptin)");
    c->smem_optin = (size_t)v;
    /* a blocking stream: the legacy default stream (cudaMemcpy in read()) orders after it */
    if ((e = cudaStreamCreate(&c->stream)) != cudaSuccess) return mf_cu_err(err, e, "cudaStreamCreate");
    cublasStatus_t s = cublasCreate(&c->blas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        mf_cu_ctx_free(c);
        return mf_errf(err, "cublasCreate: status %d (%s)", (int)s, cublasGetStatusString(s));
    }
    if ((s = cublasSetStream(c->blas, c->stream)) != CUBLAS_STATUS_SUCCESS) {
        mf_cu_ctx_free(c);
        return mf_errf(err, "cublasSetStream: status %d (%s)", (int)s, cublasGetStatusString(s));
    }
    if (wh_cap && (e = cudaMalloc((void **)&c->wh, wh_cap * sizeof(__half))) != cudaSuccess) {
        mf_cu_ctx_free(c);
        return mf_cu_err(err, e, "cudaMalloc of the F16 weight tile scratch");
    }
    if (xh_cap && (e = cudaMalloc((void **)&c->xh, xh_cap * sizeof(__half))) != cudaSuccess) {
        mf_cu_ctx_free(c);
        return mf_cu_err(err, e, "cudaMalloc of the F16 activation scratch");
    }
    c->wh_cap = wh_cap;
    c->xh_cap = xh_cap;
    return 0;
}

void mf_cu_ctx_free(mf_cu_ctx *c)
{
    if (c->wh) cudaFree(c->wh);
    if (c->xh) cudaFree(c->xh);
    if (c->blas) cublasDestroy(c->blas);
    if (c->stream) cudaStreamDestroy(c->stream);
    memset(c, 0, sizeof *c);
}
