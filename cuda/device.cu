/* device.cu — which CUDA devices exist (minfer --version, device selection).
 *
 * Built whenever nvcc is found, also on machines without a GPU: there the runtime reports
 * no device (or no driver) and minfer runs on the CPU with a one-line note. */
#include <cstdio>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}

extern "C" int mf_cuda_devices(char names[][128], int cap, char *why, size_t why_len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why && why_len) snprintf(why, why_len, "%s", cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky error so later calls start clean */
        return 0;
    }
    if (n == 0 && why && why_len) snprintf(why, why_len, "the CUDA runtime sees none");
    for (int i = 0; i < n && i < cap; i++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
            snprintf(names[i], 128, "%.60s (sm_%d%d, %.1f GiB, %d SMs)", p.name, p.major, p.minor,
                     (double)p.totalGlobalMem / (1024.0 * 1024 * 1024), p.multiProcessorCount);
        else snprintf(names[i], 128, "device %d (properties unavailable)", i);
    }
    return n;
}
