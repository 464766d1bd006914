/* backend_stubs.c — what the engine answers about CUDA in a build without the CUDA backend
 * (MINFER_CUDA=OFF or no nvcc): no devices, and a constructor that says why. With CUDA
 * built, cuda/device.cu defines these instead. */
#include "backend.h"

#include <stdio.h>

#ifndef MF_HAVE_CUDA
int mf_cuda_devices(char names[][128], int cap, char *why, size_t why_len)
{
    (void)names;
    (void)cap;
    if (why && why_len) snprintf(why, why_len, "this build has no CUDA backend (MINFER_CUDA=OFF or no nvcc)");
    return 0;
}

double mf_cuda_bandwidth(int device, size_t bytes, int reps)
{
    (void)device;
    (void)bytes;
    (void)reps;
    return -1.0;
}

mf_backend *mf_backend_cuda_new(int device, mf_err *err)
{
    (void)device;
    mf_errf(err, "this build of minfer has no CUDA backend (rebuild with nvcc available and MINFER_CUDA=AUTO or ON)");
    return NULL;
}
#endif
