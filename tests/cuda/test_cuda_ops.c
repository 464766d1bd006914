/* test_cuda_ops.c — the small kernels against their CPU twins:
 *   rmsnorm_kernel vs the formula in float64 (docs/forward.md §2): |err| <= 1e-5·|ref| + 1e-7
 *     (the scale is one float rounding away, the tree sum of squares ~1e-7 relative);
 *   rope_kv_kernel vs mf_rope_apply on the same cos/sin table (mf_rope_cos_sin): q and the
 *     cached k bit for bit, v copied bit for bit, binary16 caches equal to mf_f32_to_fp16 of
 *     the CPU's values; ring-buffer slots (p % slots) and untouched slots checked; rows of
 *     several sequences, each into its own sequence's cache;
 *   argmax_kernel vs cpu_argmax's rule (first index of the maximum; -1 when a value is NaN or
 *   ±∞), ties included. */
#include "gpu_util.h"
#include "rope.h"

#ifdef MF_HAVE_CUDA

static void rmsnorm_vs_formula(void **state)
{
    (void)state;
    mf_rng r = {10};
    const int ds[] = {8, 64, 172, 2048, 2880, 5001};
    const int rows_list[] = {1, 3, 64};
    for (size_t di = 0; di < sizeof ds / sizeof *ds; di++)
        for (size_t ri = 0; ri < 3; ri++) {
            int d = ds[di], rows = rows_list[ri];
            float *x = rand_vec(&r, (size_t)rows * d, di % 2 ? 30.0f : 0.01f), *g = rand_vec(&r, (size_t)d, 1.0f);
            float *out = malloc(sizeof(float) * (size_t)rows * d);
            mf_err err;
            GPU_OK(mf_cuda_test_rmsnorm(gpu_ctx, x, g, 1e-5f, rows, d, out, &err), err);
            for (int rr = 0; rr < rows; rr++) {
                double ss = 0;
                for (int i = 0; i < d; i++) ss += (double)x[rr * d + i] * x[rr * d + i];
                double sc = 1.0 / sqrt(ss / d + 1e-5);
                for (int i = 0; i < d; i++) {
                    double ref = x[rr * d + i] * sc * g[i], got = out[rr * d + i];
                    if (!(fabs(got - ref) <= 1e-5 * fabs(ref) + 1e-7))
                        fail_msg("rmsnorm d %d row %d i %d: %.9g vs %.9g", d, rr, i, got, ref);
                }
            }
            free(x);
            free(g);
            free(out);
        }
}

/* one configuration of rope_kv: n rows at pos0 into a cache of `slots` slots; with n_seq > 1
 * caches of n_seq sequences side by side, row r in sequence r % n_seq at position
 * (pos0 + 5r) % n_ctx */
static void rope_case(mf_rng *r, int H, int Hkv, int hd, int n_rot, int neox, int kv_f16, int n_ctx, int slots,
                      int pos0, int n, int n_seq)
{
    float freq[128];
    float *fr = freq;
    mf_model m;
    memset(&m, 0, sizeof m);
    m.hp.n_rot = n_rot;
    m.rope_freq = &fr;
    m.rope_mscale = neox ? 1.3465736f : 1.0f;
    for (int i = 0; i < n_rot / 2; i++) freq[i] = powf(10000.0f, -2.0f * i / n_rot);
    int half = n_rot / 2;
    float *ct = malloc(sizeof(float) * (size_t)n_ctx * half), *st = malloc(sizeof(float) * (size_t)n_ctx * half);
    for (int p = 0; p < n_ctx; p++) mf_rope_cos_sin(&m, 0, p, ct + (size_t)p * half, st + (size_t)p * half);

    size_t per_seq = (size_t)Hkv * slots * hd, cn = per_seq * (size_t)(n_seq > 1 ? n_seq : 1);
    size_t qn = (size_t)n * H * hd, kn = (size_t)n * Hkv * hd, es = kv_f16 ? 2 : 4;
    int32_t *rpos = malloc(sizeof(int32_t) * 2 * (size_t)n), *rseq = rpos + n;
    for (int i = 0; i < n; i++) {
        rpos[i] = n_seq > 1 ? (pos0 + 5 * i) % n_ctx : pos0 + i;
        rseq[i] = n_seq > 1 ? i % n_seq : 0;
    }
    float *q = rand_vec(r, qn, 1.0f), *k = rand_vec(r, kn, 1.0f), *v = rand_vec(r, kn, 1.0f);
    float *qref = malloc(sizeof(float) * qn);
    memcpy(qref, q, sizeof(float) * qn);
    uint8_t *kc = malloc(es * cn), *vc = malloc(es * cn), *kc0 = malloc(es * cn), *vc0 = malloc(es * cn);
    for (size_t i = 0; i < es * cn; i++) kc[i] = vc[i] = (uint8_t)mf_rng_u64(r);
    memcpy(kc0, kc, es * cn);
    memcpy(vc0, vc, es * cn);
    mf_cuda_test_rope a = {q,    k, v, kc,  vc, kv_f16, slots, ct,    st,   n_ctx,
                           pos0, n, H, Hkv, hd, n_rot,  neox,  n_seq, rpos, rseq};
    mf_err err;
    GPU_OK(mf_cuda_test_rope_kv(gpu_ctx, &a, &err), err);

    float *kr = malloc(sizeof(float) * (size_t)hd);
    for (int row = 0; row < n; row++) {
        int p = rpos[row];
        const float *c = ct + (size_t)p * half, *s = st + (size_t)p * half;
        for (int j = 0; j < H; j++) mf_rope_apply(qref + ((size_t)row * H + j) * hd, c, s, n_rot, neox);
        for (int g = 0; g < Hkv; g++) {
            memcpy(kr, k + ((size_t)row * Hkv + g) * hd, sizeof(float) * hd);
            mf_rope_apply(kr, c, s, n_rot, neox);
            for (int i = 0; i < hd; i++) {
                size_t at = per_seq * (size_t)rseq[row] + ((size_t)g * slots + (size_t)(p % slots)) * hd + i;
                float vv = v[((size_t)row * Hkv + g) * hd + i];
                if (kv_f16) {
                    uint16_t kb, vb;
                    memcpy(&kb, kc + 2 * at, 2);
                    memcpy(&vb, vc + 2 * at, 2);
                    if (kb != mf_f32_to_fp16(kr[i]) || vb != mf_f32_to_fp16(vv))
                        fail_msg("f16 cache row %d g %d i %d", row, g, i);
                    memcpy(kc0 + 2 * at, &kb, 2);
                    memcpy(vc0 + 2 * at, &vb, 2);
                } else {
                    if (memcmp(kc + 4 * at, &kr[i], 4) || memcmp(vc + 4 * at, &vv, 4))
                        fail_msg("f32 cache row %d g %d i %d", row, g, i);
                    memcpy(kc0 + 4 * at, &kr[i], 4);
                    memcpy(vc0 + 4 * at, &vv, 4);
                }
            }
        }
    }
    /* q rotated exactly as the CPU does; no other cache slot touched */
    assert_memory_equal(q, qref, sizeof(float) * qn);
    assert_memory_equal(kc, kc0, es * cn);
    assert_memory_equal(vc, vc0, es * cn);
    free(kr);
    free(rpos);
    free(q);
    free(k);
    free(v);
    free(qref);
    free(kc);
    free(vc);
    free(kc0);
    free(vc0);
    free(ct);
    free(st);
}

static void rope_kv_vs_cpu(void **state)
{
    (void)state;
    mf_rng r = {11};
    for (int neox = 0; neox <= 1; neox++)
        for (int f16 = 0; f16 <= 1; f16++) {
            rope_case(&r, 8, 4, 8, 8, neox, f16, 64, 64, 0, 7, 1); /* stories260K shape */
            rope_case(&r, 32, 4, 64, 64, neox, f16, 2048, 2048, 1000, 1, 1);
            rope_case(&r, 64, 8, 64, 64, neox, f16, 4096, 143, 4000, 16, 1); /* ring buffer, wraps */
            rope_case(&r, 4, 1, 128, 96, neox, f16, 512, 512, 3, 33, 1);     /* n_rot < head dim */
            rope_case(&r, 32, 4, 64, 64, neox, f16, 256, 256, 9, 12, 3);     /* rows of 3 sequences */
            rope_case(&r, 64, 8, 64, 64, neox, f16, 4096, 143, 4000, 10, 4); /* 4 sequences' rings */
        }
}

/* cpu_argmax's rule: the first index of the maximum, -1 when a value is not finite */
static int first_max(const float *b, int n)
{
    int best = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(b[i])) return -1;
        if (b[i] > b[best]) best = i;
    }
    return best;
}

static void argmax_vs_cpu(void **state)
{
    (void)state;
    mf_rng r = {12};
    const int ns[] = {1, 2, 31, 1024, 1025, 32000, 201088};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
        for (int variant = 0; variant < 6; variant++) {
            int n = ns[i];
            float *b = rand_vec(&r, (size_t)n, 3.0f);
            if (variant == 1 && n > 2) b[n / 3] = b[n - 1] = 100.0f; /* tie: the lower index */
            if (variant == 2)
                for (int j = 0; j < n; j++) b[j] = 0.5f; /* all equal: index 0 */
            if (variant == 3)
                for (int j = 0; j < n; j += 2) b[j] = -INFINITY; /* not finite: -1 */
            if (variant == 4) b[n - 1] = NAN;                    /* one NaN, at the end */
            if (variant == 5) b[n / 2] = INFINITY;
            int32_t got = -1;
            mf_err err;
            GPU_OK(mf_cuda_test_argmax(gpu_ctx, b, n, &got, &err), err);
            assert_int_equal(got, first_max(b, n));
            free(b);
        }
}

int main(void)
{
    if (!gpu_open(0)) {
        const struct CMUnitTest skip[] = {cmocka_unit_test(no_gpu)};
        return MF_RUN("cuda_ops", skip);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rmsnorm_vs_formula),
        cmocka_unit_test(rope_kv_vs_cpu),
        cmocka_unit_test(argmax_vs_cpu),
    };
    int rc = MF_RUN("cuda_ops", tests);
    mf_cuda_test_free(gpu_ctx);
    return rc;
}

#else
MF_GPU_TEST_MAIN("cuda_ops")
#endif
