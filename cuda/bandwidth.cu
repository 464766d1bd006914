/* bandwidth.cu — the GPU memory-bandwidth probe of `minfer bench` (backend.h): a large
 * device-to-device copy, timed with events around each pass after one untimed warm-up,
 * counting bytes read plus bytes written (docs/benchmarks.md, "Method": the measured
 * ceiling the roofline is quoted against). Returns the median of `reps` passes in GB/s (1e9 bytes/s), or -1 when
 * there is no device or a call fails. */
#include <algorithm>
#include <vector>

#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}

extern "C" double mf_cuda_bandwidth(int device, size_t bytes, int reps)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || device < 0 || device >= n || reps < 1 || bytes < 1024) {
        cudaGetLastError();
        return -1.0;
    }
    void *src = nullptr, *dst = nullptr;
    cudaEvent_t t0 = nullptr, t1 = nullptr;
    std::vector<double> ms;
    bool ok = cudaSetDevice(device) == cudaSuccess && cudaMalloc(&src, bytes) == cudaSuccess &&
              cudaMalloc(&dst, bytes) == cudaSuccess && cudaMemset(src, 1, bytes) == cudaSuccess &&
              cudaEventCreate(&t0) == cudaSuccess && cudaEventCreate(&t1) == cudaSuccess;
    for (int i = -1; ok && i < reps; i++) { /* pass −1 warms up */
        float t = 0;
        ok = cudaEventRecord(t0) == cudaSuccess &&
             cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice) == cudaSuccess &&
             cudaEventRecord(t1) == cudaSuccess && cudaEventSynchronize(t1) == cudaSuccess &&
             cudaEventElapsedTime(&t, t0, t1) == cudaSuccess;
        if (ok && i >= 0) ms.push_back(t);
    }
    if (t0) cudaEventDestroy(t0);
    if (t1) cudaEventDestroy(t1);
    if (src) cudaFree(src);
    if (dst) cudaFree(dst);
    cudaGetLastError();
    if (!ok || ms.empty()) return -1.0;
    std::sort(ms.begin(), ms.end());
    double med = ms[ms.size() / 2];
    return med > 0 ? 2.0 * (double)bytes / (med * 1e-3) / 1e9 : -1.0;
}
