/* host_twins.cu — host wrappers around the kernels' scalar math and launch geometry
 * (host_twins.h). No kernel and no CUDA runtime call here: this file runs on machines
 * without a GPU, and in a build without nvcc it is compiled as C++ (tests/CMakeLists.txt),
 * minus the binary16 rounding that needs cuda_fp16.h. */
#include <cmath>

#include "dequant.cuh"
#include "geometry.cuh"
#include "math.cuh"

#include "host_twins.h"

extern "C" int mf_cuda_host_dequant_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const uint8_t *row = (const uint8_t *)src;
    return mf_type_dispatch(type,
                            [&](auto tc) {
                                constexpr int T = decltype(tc)::value;
                                if constexpr (mf_is_float_type<T>) {
                                    for (int64_t i = 0; i < n; i++) dst[i] = mf_dq_elem<T>(row, i);
                                } else {
                                    for (int64_t ch = 0; ch < n / 32; ch++) mf_dq32<T>(row, ch, dst + 32 * ch);
                                }
                            })
               ? 0
               : -1;
}

extern "C" float mf_cuda_host_h2f(uint16_t h) { return mf_h2f(h); }
#ifdef __CUDACC__
extern "C" uint16_t mf_cuda_host_f2h(float f) { return (uint16_t)mf_f2h_bits(f); }
#endif
extern "C" float mf_cuda_host_bf2f(uint16_t h) { return mf_bf2f(h); }
extern "C" float mf_cuda_host_e8m0_half(uint8_t e) { return mf_cu_e8m0_half(e); }

extern "C" void mf_cuda_host_rope(float *u, const float *cos_v, const float *sin_v, int n_rot, int neox)
{
    for (int i = 0; i < n_rot / 2; i++) {
        int ia, ib;
        mf_rope_idx(i, n_rot, neox, &ia, &ib);
        mf_rope_pair(&u[ia], &u[ib], cos_v[i], sin_v[i]);
    }
}

extern "C" float mf_cuda_host_swiglu(float g, float u) { return mf_swiglu(g, u); }
extern "C" float mf_cuda_host_swiglu_oai(float g, float u, float limit, float alpha)
{
    return mf_swiglu_oai(g, u, limit, alpha);
}

/* the per-query recurrence of flash_attn_kernel, one tile of 32 keys at a time, sequential
 * where the kernel reduces across lanes */
static void attend_range(const float *s, const float *v, int t0, int t1, int hd, float *m, float *l, float *o)
{
    for (int a = t0; a < t1; a += 32) {
        int b = a + 32 < t1 ? a + 32 : t1;
        float mt = -INFINITY;
        for (int t = a; t < b; t++) mt = fmaxf(mt, s[t]);
        float mn = fmaxf(*m, mt);
        if (mn == -INFINITY) continue;
        float alpha = mf_sm_rescale(*m, mn), sum = 0.0f;
        for (int t = a; t < b; t++) sum += mf_sm_weight(s[t], mn);
        *l = *l * alpha + sum;
        for (int d = 0; d < hd; d++) o[d] *= alpha;
        for (int t = a; t < b; t++) {
            float p = mf_sm_weight(s[t], mn);
            for (int d = 0; d < hd; d++) o[d] += p * v[(int64_t)t * hd + d];
        }
        *m = mn;
    }
}

extern "C" void mf_cuda_host_attend(const float *s, const float *v, int n, int hd, int chunk, int has_sink, float sink,
                                    float *out)
{
    if (chunk <= 0) {
        float m = -INFINITY, l = 0.0f;
        for (int d = 0; d < hd; d++) out[d] = 0.0f;
        attend_range(s, v, 0, n, hd, &m, &l, out);
        float f = mf_sm_finish(m, l, has_sink, sink);
        for (int d = 0; d < hd; d++) out[d] *= f;
        return;
    }
    /* flash-decoding: states per split, then attn_combine_kernel's merge */
    int ns = (n + chunk - 1) / chunk;
    float *ms = new float[ns], *ls = new float[ns], *os = new float[(size_t)ns * hd];
    for (int x = 0; x < ns; x++) {
        ms[x] = -INFINITY;
        ls[x] = 0.0f;
        for (int d = 0; d < hd; d++) os[(size_t)x * hd + d] = 0.0f;
        int t1 = (x + 1) * chunk < n ? (x + 1) * chunk : n;
        attend_range(s, v, x * chunk, t1, hd, &ms[x], &ls[x], os + (size_t)x * hd);
    }
    float M = -INFINITY;
    for (int x = 0; x < ns; x++) M = fmaxf(M, ms[x]);
    if (has_sink) M = fmaxf(M, sink);
    float Z = has_sink ? expf(sink - M) : 0.0f;
    for (int x = 0; x < ns; x++) Z += ls[x] * expf(ms[x] - M);
    for (int d = 0; d < hd; d++) {
        float acc = 0.0f;
        for (int x = 0; x < ns; x++) acc += expf(ms[x] - M) * os[(size_t)x * hd + d];
        out[d] = acc / Z;
    }
    delete[] ms;
    delete[] ls;
    delete[] os;
}

extern "C" void mf_cuda_host_topk(const float *r, int E, int k, int32_t *sel, float *w)
{
    for (int s = 0; s < k; s++) {
        float bv = 0.0f;
        int be = -1;
        for (int e = 0; e < E; e++) {
            bool taken = false;
            for (int q = 0; q < s; q++) taken |= sel[q] == e;
            if (!taken && mf_topk_better(r[e], e, bv, be)) {
                bv = r[e];
                be = e;
            }
        }
        sel[s] = be;
    }
    float m = r[sel[0]], z = 0.0f;
    for (int s = 0; s < k; s++) z += w[s] = expf(r[sel[s]] - m);
    for (int s = 0; s < k; s++) w[s] /= z;
}

extern "C" int mf_cuda_host_topk_better(float va, int ea, float vb, int eb) { return mf_topk_better(va, ea, vb, eb); }

extern "C" void mf_cuda_host_attn_split(int span, int Hkv, int sm_count, int *chunk, int *nsplit)
{
    mf_cu_attn_split(span, Hkv, sm_count, chunk, nsplit);
}

extern "C" int mf_cuda_host_attn_grid(int64_t n, int64_t G, int64_t Hkv, int chunk, int64_t nsplit, long long grid[3],
                                      int64_t *tiles)
{
    mf_cu_grid g;
    if (mf_cu_attn_grid(n, G, Hkv, chunk, nsplit, &g, tiles)) return -1;
    grid[0] = g.x;
    grid[1] = g.y;
    grid[2] = g.z;
    return 0;
}

extern "C" int64_t mf_cuda_host_attn_tile(int chunk, unsigned bx, unsigned by, unsigned gy)
{
    return mf_cu_attn_tile(chunk, bx, by, gy);
}

extern "C" int64_t mf_cuda_host_gemm_tile_rows(size_t cap, int64_t n_in, int64_t n_out)
{
    return mf_cu_gemm_tile_rows(cap, n_in, n_out);
}
