/* gpu_util.h — what the GPU tests share: skipping without a device, random weight
 * matrices in any type (quantized from N(0,1) data by engine/quant.c, so every block is a
 * realistic one), their float64 reference products, and error measures. Header-only
 * (static functions): each tests/cuda/test_*.c is its own executable. */
#ifndef MF_GPU_UTIL_H
#define MF_GPU_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "harness.h"
#include "quant.h"
#include "quantize.h"
#include "types.h"

#ifdef MF_HAVE_CUDA
#include "../../cuda/testapi.h"

/* The one context of a test executable (tests run in order, single-threaded). */
static mf_cuda_test *gpu_ctx;
static char gpu_why[256];

/* 1 when a GPU context exists; else the reason is in gpu_why */
static inline int gpu_open(size_t gemm_elems)
{
    char names[1][128];
    if (mf_cuda_devices(names, 1, gpu_why, sizeof gpu_why) <= 0) return 0;
    mf_err err;
    gpu_ctx = mf_cuda_test_new(gemm_elems, &err);
    if (!gpu_ctx) snprintf(gpu_why, sizeof gpu_why, "%.200s", err.msg);
    return gpu_ctx != NULL;
}

/* MINFER_GPU_QUICK=1: drop the largest cases (for compute-sanitizer runs, which slow every
 * kernel down by one or two orders of magnitude) */
static inline int gpu_quick(void)
{
    const char *e = getenv("MINFER_GPU_QUICK");
    return e && *e && *e != '0';
}

static inline void no_gpu(void **state)
{
    (void)state;
    char msg[320];
    snprintf(msg, sizeof msg, "no usable CUDA device: %s", gpu_why);
    mf_skip(msg);
}

/* call returns 0, or fail with the message it left in err */
#define GPU_OK(call, err)                                      \
    do {                                                       \
        if ((call) != 0) fail_msg("%s: %s", #call, (err).msg); \
    } while (0)

/* A weight matrix: bytes in `type`, and the same values dequantized (the reference). */
typedef struct gmat {
    mf_cuda_test_mat m;
    void *bytes;
    float *deq; /* [n_out][n_in] */
    float *bias;
} gmat;

static inline void gmat_free(gmat *g)
{
    free(g->bytes);
    free(g->deq);
    free(g->bias);
    memset(g, 0, sizeof *g);
}

/* n_stack matrices of n_out × n_in stacked (experts), values N(0, scale²) quantized */
static inline gmat gmat_rand(mf_rng *r, uint32_t type, int64_t n_in, int64_t n_out, int n_stack, float scale,
                             int with_bias)
{
    gmat g;
    memset(&g, 0, sizeof g);
    size_t rb = mf_type_row_bytes(type, n_in);
    int64_t rows = n_out * n_stack;
    g.bytes = malloc(rb * (size_t)rows);
    g.deq = malloc(sizeof(float) * (size_t)(rows * n_in));
    float *tmp = malloc(sizeof(float) * (size_t)n_in);
    assert_true(rb && g.bytes && g.deq && tmp);
    for (int64_t o = 0; o < rows; o++) {
        for (int64_t i = 0; i < n_in; i++) tmp[i] = mf_rng_normal(r) * scale;
        uint8_t *row = (uint8_t *)g.bytes + (size_t)o * rb;
        mf_quantize_row(type, tmp, row, n_in);
        mf_dequantize_row(type, row, g.deq + o * n_in, n_in);
    }
    free(tmp);
    if (with_bias) {
        g.bias = malloc(sizeof(float) * (size_t)rows);
        for (int64_t o = 0; o < rows; o++) g.bias[o] = mf_rng_normal(r);
    }
    g.m.type = type;
    g.m.w = g.bytes;
    g.m.n_in = n_in;
    g.m.n_out = n_out;
    g.m.bias = g.bias;
    return g;
}

static inline float *rand_vec(mf_rng *r, size_t n, float scale)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = mf_rng_normal(r) * scale;
    return v;
}

/* float64 dot of a dequantized row with x, and Σ|w·x| (the scale rounding errors live on) */
static inline double dot_ref(const float *w, const float *x, int64_t n, double *abs_sum)
{
    double s = 0, a = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)w[i] * x[i];
        a += fabs((double)w[i] * x[i]);
    }
    if (abs_sum) *abs_sum = a;
    return s;
}

static const uint32_t gpu_all_types[] = {MF_TYPE_F32,  MF_TYPE_F16,  MF_TYPE_BF16, MF_TYPE_Q4_0, MF_TYPE_Q4_1,
                                         MF_TYPE_Q5_0, MF_TYPE_Q5_1, MF_TYPE_Q8_0, MF_TYPE_Q2_K, MF_TYPE_Q3_K,
                                         MF_TYPE_Q4_K, MF_TYPE_Q5_K, MF_TYPE_Q6_K, MF_TYPE_MXFP4};
#define GPU_N_TYPES (sizeof gpu_all_types / sizeof *gpu_all_types)

static inline int gpu_is_float_type(uint32_t t) { return t == MF_TYPE_F32 || t == MF_TYPE_F16 || t == MF_TYPE_BF16; }

#else /* a build without the CUDA backend: every GPU test executable only says so */

static inline void no_cuda_build(void **state)
{
    (void)state;
    mf_skip("this build has no CUDA backend (MINFER_CUDA=OFF or no nvcc)");
}

#define MF_GPU_TEST_MAIN(name)                                              \
    int main(void)                                                          \
    {                                                                       \
        const struct CMUnitTest skip[] = {cmocka_unit_test(no_cuda_build)}; \
        return MF_RUN(name, skip);                                          \
    }

#endif

#endif
