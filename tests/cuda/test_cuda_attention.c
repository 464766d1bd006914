/* test_cuda_attention.c — flash_attn.cu against a plain attention in float64 on the host:
 *   s_t = q·k_t·scale over the visible keys (t <= p; p − t < window on sliding layers),
 *   softmax with the sink joining the denominator (docs/moe.md §2), Σ w_t·v_t.
 * Cases: decode (n = 1) through the flash-decoding split + combine and through the one-pass
 * kernel, at sequence lengths 1, 7, 64, 333, 2048; prompts of 7, 64, 333 and 2048 rows at
 * positions 0 and 50; GQA ratios 1, 4, 8; head dims 64 and 128 (unrolled instances) and 8,
 * 16, 80, 256 (the generic one; 256 needs the shared-memory opt-in); float32 and binary16
 * caches; with and without a window (ring buffer of window + max_batch − 1 slots, so keys
 * wrap around) and sinks. Every cache slot holds distinct random data, so a wrong slot or
 * a key outside the window changes the result. Several sequences: caches of 3 sequences side
 * by side, the queries attend over the second or the third (decode, split and one-pass, and
 * prompts): a launch that read another sequence's keys would miss the reference.
 * More query heads per KV head than one block holds: G = 16 (one full block of query
 * vectors) and G = 32 (two blocks: blockIdx.y = 1 in the split launch) on decode and short
 * prompts. The grid-y edge: a 32 769-row prompt at G = 32 has 65 538 tiles of 16 query
 * vectors per KV head, more than gridDim.y allows (65535): the launch folds them into x
 * (geometry.cuh, whose arithmetic tests/test_cuda_host.c checks on the CPU); with a window
 * of 16 the reference stays cheap.
 * MINFER_GPU_QUICK=1 leaves out length 2048, the 333-row prompts and the grid-y edge
 * (sanitizer runs).
 * Tolerance: |out − ref| <= 1e-4·max|v| against the reference on the same cache values
 * (fp32 arithmetic: a score is a ≤ 256-term fp32 dot, worst-case relative error ~1.5e-5 of
 * Σ|q·k|·scale ≈ 5e-5 absolute, moving the weights by that relative amount). For binary16
 * caches also against the float32 values before rounding: 3e-3·max|v| (K and V rounded to
 * 11-bit significands, relative 4.9e-4 each, scores of size ~3 move by ~1.5e-3). */
#include "gpu_util.h"

#ifdef MF_HAVE_CUDA

typedef struct acase {
    int n, pos0, G, Hkv, hd, f16, sinks, window, split, n_ctx;
} acase;

static void attn_ref(const acase *c, int slots, const float *q, const float *kf, const float *vf, const float *sk,
                     float scale, double *out)
{
    int H = c->G * c->Hkv, hd = c->hd;
    double *s = malloc(sizeof(double) * (size_t)(c->pos0 + c->n));
    for (int r = 0; r < c->n; r++) {
        int p = c->pos0 + r, lo = c->window ? (p - c->window + 1 > 0 ? p - c->window + 1 : 0) : 0;
        for (int j = 0; j < H; j++) {
            int g = j / c->G;
            const float *qv = q + ((size_t)r * H + j) * hd;
            double M = c->sinks ? sk[j] : -INFINITY, Z = 0;
            for (int t = lo; t <= p; t++) {
                const float *kv = kf + ((size_t)g * slots + (size_t)(t % slots)) * hd;
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)qv[i] * kv[i];
                s[t] = d * scale;
                if (s[t] > M) M = s[t];
            }
            if (c->sinks) Z += exp(sk[j] - M);
            for (int t = lo; t <= p; t++) Z += exp(s[t] - M);
            double *o = out + ((size_t)r * H + j) * hd;
            for (int i = 0; i < hd; i++) o[i] = 0;
            for (int t = lo; t <= p; t++) {
                double w = exp(s[t] - M) / Z;
                const float *vv = vf + ((size_t)g * slots + (size_t)(t % slots)) * hd;
                for (int i = 0; i < hd; i++) o[i] += w * vv[i];
            }
        }
    }
    free(s);
}

/* c with caches of n_seq sequences, the queries attending over sequence seq's */
static void run_case_seq(mf_rng *r, const acase *c, int n_seq, int seq)
{
    int H = c->G * c->Hkv, hd = c->hd;
    /* ring buffer as mf_mem_kv_slots sizes it for steps of at most n tokens */
    int slots = c->window ? (c->window + c->n - 1 < c->n_ctx ? c->window + c->n - 1 : c->n_ctx) : c->n_ctx;
    size_t per_seq = (size_t)c->Hkv * slots * hd, cn = per_seq * (size_t)n_seq;
    size_t qn = (size_t)c->n * H * hd, so = per_seq * (size_t)seq; /* the queries' sequence */
    float *kf = rand_vec(r, cn, 1.0f), *vf = rand_vec(r, cn, 1.0f), *k0 = NULL, *v0 = NULL;
    void *kc = kf, *vc = vf;
    if (c->f16) {
        k0 = malloc(sizeof(float) * cn);
        v0 = malloc(sizeof(float) * cn);
        memcpy(k0, kf, sizeof(float) * cn);
        memcpy(v0, vf, sizeof(float) * cn);
        uint16_t *kh = malloc(2 * cn), *vh = malloc(2 * cn);
        for (size_t i = 0; i < cn; i++) {
            kh[i] = mf_f32_to_fp16(kf[i]);
            vh[i] = mf_f32_to_fp16(vf[i]);
            kf[i] = mf_fp16_to_f32(kh[i]);
            vf[i] = mf_fp16_to_f32(vh[i]);
        }
        kc = kh;
        vc = vh;
    }
    float *q = rand_vec(r, qn, 1.0f), *sk = rand_vec(r, (size_t)H, 2.0f), *out = malloc(sizeof(float) * qn);
    double *ref = malloc(sizeof(double) * qn);
    float scale = 1.0f / sqrtf((float)hd), vmax = 0;
    for (size_t i = 0; i < cn; i++) vmax = fmaxf(vmax, fabsf(vf[i]));
    mf_cuda_test_attn a = {q,        kc,  vc,     c->f16, slots,     c->n_ctx, c->pos0,
                           c->n,     H,   c->Hkv, hd,     c->window, scale,    c->sinks ? sk : NULL,
                           c->split, out, n_seq,  seq};
    mf_err err;
    GPU_OK(mf_cuda_test_attention(gpu_ctx, &a, &err), err);
    attn_ref(c, slots, q, kf + so, vf + so, sk, scale, ref);
    for (size_t i = 0; i < qn; i++)
        if (!(fabs(out[i] - ref[i]) <= 1e-4 * vmax))
            fail_msg(
                "attention n %d pos0 %d G %d hd %d f16 %d sinks %d window %d split %d: out[%zu] = %.9g, expected %.9g",
                c->n, c->pos0, c->G, hd, c->f16, c->sinks, c->window, c->split, i, out[i], ref[i]);
    if (c->f16) {
        attn_ref(c, slots, q, k0 + so, v0 + so, sk, scale, ref);
        for (size_t i = 0; i < qn; i++)
            if (!(fabs(out[i] - ref[i]) <= 3e-3 * vmax))
                fail_msg("attention (f16 cache vs f32 values) n %d G %d hd %d: out[%zu] = %.9g, expected %.9g", c->n,
                         c->G, hd, i, out[i], ref[i]);
        free(kc);
        free(vc);
        free(k0);
        free(v0);
    }
    free(kf);
    free(vf);
    free(q);
    free(sk);
    free(out);
    free(ref);
}

static void run_case(mf_rng *r, const acase *c) { run_case_seq(r, c, 1, 0); }

static void decode_lengths(void **state)
{
    (void)state;
    mf_rng r = {21};
    const int lens[] = {1, 7, 64, 333, 2048};
    const int Gs[] = {1, 4, 8};
    for (int li = 0; li < (gpu_quick() ? 4 : 5); li++)
        for (int gi = 0; gi < 3; gi++)
            for (int hd = 64; hd <= 128; hd += 64)
                for (int v = 0; v < 8; v++) {
                    acase c = {1, lens[li] - 1, Gs[gi], 2, hd, v & 1, (v >> 1) & 1, (v >> 2) & 1 ? 100 : 0, 1, 4096};
                    run_case(&r, &c);
                    if (v == 0 || v == 7) { /* the one-pass kernel on a decode row too */
                        c.split = 0;
                        run_case(&r, &c);
                    }
                }
}

static void prompt_rows(void **state)
{
    (void)state;
    mf_rng r = {22};
    const int ns[] = {7, 64, 333};
    const int Gs[] = {1, 4, 8};
    for (int ni = 0; ni < (gpu_quick() ? 2 : 3); ni++)
        for (int pos0 = 0; pos0 <= 50; pos0 += 50)
            for (int gi = 0; gi < 3; gi++)
                for (int v = 0; v < 8; v++) {
                    int hd = v % 2 ? 128 : 64;
                    acase c = {ns[ni], pos0, Gs[gi], 2, hd, (v >> 1) & 1, (v >> 2) & 1, v % 3 == 0 ? 40 : 0, 0, 1024};
                    run_case(&r, &c);
                }
    for (int gi = 0; gi < (gpu_quick() ? 0 : 3); gi++) { /* a 2048-token prompt, gpt-oss-like and Llama-like */
        acase c1 = {2048, 0, Gs[gi], 1, 64, 1, 1, 128, 0, 2048};
        acase c2 = {2048, 0, Gs[gi], 1, 128, 0, 0, 0, 0, 2048};
        run_case(&r, &c1);
        run_case(&r, &c2);
    }
}

/* G = 16 and 32 query heads per KV head (gpt-oss-120b has 64/8 = 8; models with 32+ exist):
 * the decode launch's second block row (blockIdx.y = 1 for G = 32) and prompt blocks that
 * cover half a row */
static void many_heads_per_kv_head(void **state)
{
    (void)state;
    mf_rng r = {24};
    const int lens[] = {1, 33, 333, 2048};
    for (int G = 16; G <= 32; G += 16)
        for (int li = 0; li < (gpu_quick() ? 3 : 4); li++)
            for (int v = 0; v < 8; v++) {
                int hd = v % 2 ? 128 : (v % 4 == 2 ? 16 : 64);
                acase c = {1, lens[li] - 1, G, 2, hd, (v >> 1) & 1, (v >> 2) & 1, v % 3 == 0 ? 100 : 0, 1, 4096};
                run_case(&r, &c);
                if (v % 4 == 0) { /* the one-pass kernel on the same decode row */
                    c.split = 0;
                    run_case(&r, &c);
                }
            }
    for (int G = 16; G <= 32; G += 16)
        for (int v = 0; v < 4; v++) {
            acase p = {7 + 26 * v, 5 * v, G, 2, v % 2 ? 128 : 64, v & 1, v >> 1, v == 3 ? 12 : 0, 0, 512};
            run_case(&r, &p);
        }
}

/* more than 65535 tiles per KV head: 32 769 rows · 32 heads / 16 = 65 538 (folded into x),
 * and 32 768 rows (65 536 tiles: the first count past the limit) with a binary16 cache */
static void grid_y_edge(void **state)
{
    (void)state;
    if (gpu_quick()) {
        print_message("grid_y_edge: left out under MINFER_GPU_QUICK (131 076 blocks)\n");
        return;
    }
    mf_rng r = {25};
    acase a = {32769, 0, 32, 2, 8, 0, 1, 16, 0, 32769};
    acase b = {32768, 3, 32, 1, 16, 1, 1, 16, 0, 32771};
    run_case(&r, &a);
    run_case(&r, &b);
}

/* head dims without an unrolled instance (tiny test models: 8, 16), an odd size (80) and
 * the largest supported (256, shared memory above 48 KiB) */
static void generic_head_dims(void **state)
{
    (void)state;
    mf_rng r = {23};
    const int hds[] = {8, 16, 80, 256};
    for (int hi = 0; hi < 4; hi++)
        for (int v = 0; v < 4; v++) {
            acase d = {1, 150, 2, 2, hds[hi], v & 1, v >> 1, v == 3 ? 64 : 0, 1, 512};
            acase p = {33, 20, 4, 1, hds[hi], v & 1, v >> 1, v == 3 ? 16 : 0, 0, 512};
            run_case(&r, &d);
            run_case(&r, &p);
        }
}

/* caches of 3 sequences: the queries see their own (the second or the third) only */
static void several_sequences(void **state)
{
    (void)state;
    mf_rng r = {26};
    for (int seq = 1; seq <= 2; seq++)
        for (int v = 0; v < 8; v++) {
            int hd = v % 2 ? 128 : 64, f16 = (v >> 1) & 1, win = (v >> 2) & 1 ? 40 : 0;
            acase d = {1, 90 + 7 * v, 4, 2, hd, f16, v & 1, win, 1, 512};
            acase one = d;
            one.split = 0;
            acase p = {19, 30 + v, 8, 2, hd, f16, v & 1, win, 0, 512};
            run_case_seq(&r, &d, 3, seq);
            run_case_seq(&r, &one, 3, seq);
            run_case_seq(&r, &p, 3, seq);
        }
}

int main(void)
{
    if (!gpu_open(0)) {
        const struct CMUnitTest skip[] = {cmocka_unit_test(no_gpu)};
        return MF_RUN("cuda_attention", skip);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decode_lengths),         cmocka_unit_test(prompt_rows), cmocka_unit_test(generic_head_dims),
        cmocka_unit_test(many_heads_per_kv_head), cmocka_unit_test(grid_y_edge), cmocka_unit_test(several_sequences),
    };
    int rc = MF_RUN("cuda_attention", tests);
    mf_cuda_test_free(gpu_ctx);
    return rc;
}

#else
MF_GPU_TEST_MAIN("cuda_attention")
#endif
