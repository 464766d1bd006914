/* test_cuda_matmul.c — the matrix kernels against float64 references built from
 * engine/quant.c's mf_dequantize_row:
 *   - GEMV (gemv_vec.cu) and the prompt path (gemv_gemm.cu: F16 tiles + cuBLAS, SGEMM for
 *     F32) for all 14 types, odd shapes (1, 5, 67, 256 rows; widths from 1 element to 2880),
 *     1 … 33 tokens (one and several GEMV token groups, both paths), with and without bias
 *     and accumulation, three matrices fused in one launch (qkv);
 *   - the fused gate/up/SwiGLU GEMV; the embedding lookup (bit for bit); MXFP4 at every
 *     scale byte;
 *   - long rows of every block type, K-quants above all: n_in = 2304 is 9 super-blocks, 72
 *     chunks of 32, so each lane of the GEMV's warp takes 2 or 3 chunks that lie in
 *     different super-blocks (the widths above give K-quants only 256 = 8 chunks: lanes
 *     8 … 31 idle, one chunk each for the rest), and the prompt path splits the matrix into
 *     F16 tiles of 64 rows (64 + 3 for 67 rows: the second tile's output at a 256-byte
 *     offset).
 * The F16 tile scratch is 64·2880 + 1000 elements, so 2880- and 2304-wide matrices of more
 * than 64 rows are dequantized in several tiles of 64 rows (mf_cu_gemm_tile_rows).
 * Tolerances, per output: fp32 arithmetic (GEMV, SGEMM) |err| <= 1e-5·Σ|w·x| + 1e-6 — a few
 * hundred fp32 roundings of relative 6e-8 each; F16 operands (cuBLAS path) 2e-3·Σ|w·x| —
 * weights and activations each rounded to binary16 (relative 2^-11 ≈ 4.9e-4 each).
 * Outputs are NaN-poisoned before each launch (testapi.cu): an unwritten one fails. */
#include "gpu_util.h"

#ifdef MF_HAVE_CUDA

static void check_out(const char *what, uint32_t type, const gmat *g, const float *x, int rows, const float *init,
                      const float *out, double rel)
{
    int64_t n_in = g->m.n_in, n_out = g->m.n_out;
    for (int r = 0; r < rows; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double as, ref = dot_ref(g->deq + o * n_in, x + (int64_t)r * n_in, n_in, &as);
            if (g->bias) ref += g->bias[o];
            if (init) ref += init[(int64_t)r * n_out + o];
            double got = out[(int64_t)r * n_out + o], tol = rel * as + 1e-6;
            if (!(fabs(got - ref) <= tol))
                fail_msg("%s type %s n_in %lld n_out %lld rows %d: out[%d][%lld] = %.9g, expected %.9g (tol %.3g)",
                         what, mf_type_name(type, (char[32]){0}), (long long)n_in, (long long)n_out, rows, r,
                         (long long)o, got, ref, tol);
        }
}

static void matmul_all_types(void **state)
{
    (void)state;
    mf_rng r = {1};
    const int64_t outs[] = {1, 5, 67, 256};
    const int rows_list[] = {1, 2, 7, 8, 9, 16, 33};
    for (size_t ti = 0; ti < GPU_N_TYPES; ti++) {
        uint32_t t = gpu_all_types[ti];
        const int64_t ins_q[] = {32, 96, 256, 2880};
        const int64_t ins_f[] = {1, 7, 172, 2880};
        const int64_t *ins = gpu_is_float_type(t) ? ins_f : ins_q;
        int blck = (int)mf_type_get(t)->blck;
        for (int ii = 0; ii < 4; ii++) {
            if (ins[ii] % blck) continue;
            for (int oi = 0; oi < 4; oi++)
                for (size_t ri = 0; ri < sizeof rows_list / sizeof *rows_list; ri++)
                    for (int path = 1; path <= 2; path++) {
                        if (ins[ii] == 2880 && (oi != 2 || ri % 3 || gpu_quick()))
                            continue; /* keep the CPU reference short */
                        int rows = rows_list[ri], acc = (oi + (int)ri) % 2, bias = (oi + ii) % 2;
                        gmat g = gmat_rand(&r, t, ins[ii], outs[oi], 1, 1.0f, bias);
                        float *x = rand_vec(&r, (size_t)rows * ins[ii], 1.0f);
                        float *init = rand_vec(&r, (size_t)rows * outs[oi], 1.0f);
                        float *out = malloc(sizeof(float) * (size_t)rows * outs[oi]);
                        memcpy(out, init, sizeof(float) * (size_t)rows * outs[oi]);
                        mf_err err;
                        GPU_OK(mf_cuda_test_matmul(gpu_ctx, &g.m, 1, x, rows, &out, acc, path, &err), err);
                        double rel = path == 2 && t != MF_TYPE_F32 ? 2e-3 : 1e-5;
                        check_out(path == 1 ? "GEMV" : "GEMM", t, &g, x, rows, acc ? init : NULL, out, rel);
                        free(x);
                        free(init);
                        free(out);
                        gmat_free(&g);
                    }
        }
    }
}

/* q, k, v in one launch: rows of three matrices numbered one after the other; each must land
 * in its own output (GEMV fused; the prompt path shares the converted activations) */
static void matmul_three_fused(void **state)
{
    (void)state;
    mf_rng r = {2};
    const uint32_t types[] = {MF_TYPE_Q8_0, MF_TYPE_Q4_K, MF_TYPE_F16};
    for (int ti = 0; ti < 3; ti++)
        for (int rows = 1; rows <= 20; rows += 19) {
            gmat g[3] = {gmat_rand(&r, types[ti], 256, 128, 1, 1.0f, 1), gmat_rand(&r, types[ti], 256, 32, 1, 1.0f, 1),
                         gmat_rand(&r, types[ti], 256, 33, 1, 1.0f, 0)};
            mf_cuda_test_mat m[3] = {g[0].m, g[1].m, g[2].m};
            float *x = rand_vec(&r, (size_t)rows * 256, 1.0f), *o[3];
            for (int j = 0; j < 3; j++) o[j] = malloc(sizeof(float) * (size_t)rows * g[j].m.n_out);
            mf_err err;
            GPU_OK(mf_cuda_test_matmul(gpu_ctx, m, 3, x, rows, o, 0, 0, &err), err);
            for (int j = 0; j < 3; j++) {
                check_out("fused", types[ti], &g[j], x, rows, NULL, o[j], rows >= 16 ? 2e-3 : 1e-5);
                free(o[j]);
                gmat_free(&g[j]);
            }
            free(x);
        }
}

/* act = silu(gate·x)·(up·x) in one GEMV launch */
static void gemv_swiglu_fused(void **state)
{
    (void)state;
    mf_rng r = {3};
    for (size_t ti = 0; ti < GPU_N_TYPES; ti++) {
        uint32_t t = gpu_all_types[ti];
        int64_t n_in = 512, F = 97;
        for (int rows = 1; rows <= 8; rows += 7) {
            gmat g = gmat_rand(&r, t, n_in, F, 1, 1.0f, 0), u = gmat_rand(&r, t, n_in, F, 1, 1.0f, 0);
            float *x = rand_vec(&r, (size_t)rows * n_in, 0.2f), *act = malloc(sizeof(float) * (size_t)rows * F);
            mf_err err;
            GPU_OK(mf_cuda_test_gemv_swiglu(gpu_ctx, &g.m, &u.m, x, rows, act, &err), err);
            for (int rr = 0; rr < rows; rr++)
                for (int64_t o = 0; o < F; o++) {
                    double ag, au;
                    double gv = dot_ref(g.deq + o * n_in, x + rr * n_in, n_in, &ag);
                    double uv = dot_ref(u.deq + o * n_in, x + rr * n_in, n_in, &au);
                    double ref = gv / (1 + exp(-gv)) * uv;
                    /* each dot within 1e-5·Σ|w·x|, propagated through the product */
                    double tol = 2e-5 * (ag * fabs(uv) + au * (fabs(gv) + 1)) + 1e-6;
                    double got = act[rr * F + o];
                    if (!(fabs(got - ref) <= tol))
                        fail_msg("swiglu type %u row %d out %lld: %.9g vs %.9g", t, rr, (long long)o, got, ref);
                }
            free(x);
            free(act);
            gmat_free(&g);
            gmat_free(&u);
        }
    }
}

/* the embedding row of each token, bit for bit (the kernel dequantizes with the same
 * arithmetic as mf_dequantize_row) */
static void embed_all_types(void **state)
{
    (void)state;
    mf_rng r = {4};
    for (size_t ti = 0; ti < GPU_N_TYPES; ti++) {
        uint32_t t = gpu_all_types[ti];
        int64_t d = gpu_is_float_type(t) ? 67 : 512, V = 300;
        gmat g = gmat_rand(&r, t, d, V, 1, 1.0f, 0);
        int32_t tok[9] = {0, 299, 5, 5, 17, 298, 1, 150, 0};
        float *x = malloc(sizeof(float) * 9 * (size_t)d);
        mf_err err;
        GPU_OK(mf_cuda_test_embed(gpu_ctx, &g.m, tok, 9, x, &err), err);
        for (int i = 0; i < 9; i++)
            for (int64_t j = 0; j < d; j++)
                if (memcmp(&x[i * d + j], &g.deq[tok[i] * d + j], 4))
                    fail_msg("embed type %u token %d element %lld: %.9g vs %.9g", t, tok[i], (long long)j, x[i * d + j],
                             g.deq[tok[i] * d + j]);
        free(x);
        gmat_free(&g);
    }
}

/* MXFP4 edge values: row e has scale byte e in both of its blocks (2^-128 … 2^127, the
 * subnormal scales 0 and 1 included) and every code in both nibbles (−0, ±0.5 … ±6). The
 * embedding must equal mf_dequantize_row bit for bit (inf for the largest scales); the GEMV,
 * for the rows whose products stay finite (e <= 200), the float64 dot within
 * 1e-5·Σ|w·x| + 1e-40 (subnormal inputs keep their precision: no flush to zero). */
static void mxfp4_edge_values(void **state)
{
    (void)state;
    mf_rng r = {5};
    const int n_in = 64, rows = 256;
    uint8_t *w = malloc(17 * 2 * (size_t)rows);
    float *deq = malloc(sizeof(float) * (size_t)rows * n_in);
    for (int e = 0; e < rows; e++)
        for (int b = 0; b < 2; b++) {
            uint8_t *blk = w + (size_t)(e * 2 + b) * 17;
            blk[0] = (uint8_t)e;
            for (int j = 0; j < 16; j++) blk[1 + j] = (uint8_t)(((j + b) & 15) | ((15 - j) << 4));
        }
    for (int e = 0; e < rows; e++) mf_dequantize_row(MF_TYPE_MXFP4, w + (size_t)e * 34, deq + (size_t)e * n_in, n_in);
    mf_cuda_test_mat m = {MF_TYPE_MXFP4, w, n_in, rows, NULL};
    int32_t tok[256];
    for (int i = 0; i < rows; i++) tok[i] = i;
    float *x = malloc(sizeof(float) * (size_t)rows * n_in);
    mf_err err;
    GPU_OK(mf_cuda_test_embed(gpu_ctx, &m, tok, rows, x, &err), err);
    assert_memory_equal(x, deq, sizeof(float) * (size_t)rows * n_in);
    float *xv = rand_vec(&r, (size_t)n_in, 1.0f), *out = malloc(sizeof(float) * (size_t)rows);
    GPU_OK(mf_cuda_test_matmul(gpu_ctx, &m, 1, xv, 1, &out, 0, 1, &err), err);
    for (int e = 0; e <= 200; e++) {
        double as, ref = dot_ref(deq + (size_t)e * n_in, xv, n_in, &as);
        if (!(fabs(out[e] - ref) <= 1e-5 * as + 1e-40)) fail_msg("MXFP4 scale byte %d: %.9g vs %.9g", e, out[e], ref);
    }
    free(w);
    free(deq);
    free(x);
    free(xv);
    free(out);
}

/* 2304-wide rows of every block type: 72 chunks per row, 2–3 per lane, across super-blocks;
 * both paths, GEMV token groups of 1 and 8 (+1), cuBLAS tiles of 64 + 3 rows */
static void long_rows_all_block_types(void **state)
{
    (void)state;
    mf_rng r = {6};
    const int rows_list[] = {1, 8, 9, 16, 33};
    for (size_t ti = 0; ti < GPU_N_TYPES; ti++) {
        uint32_t t = gpu_all_types[ti];
        if (gpu_is_float_type(t)) continue;
        for (size_t ri = 0; ri < sizeof rows_list / sizeof *rows_list; ri++)
            for (int path = 1; path <= 2; path++) {
                if (gpu_quick() && ri % 2) continue;
                int rows = rows_list[ri], acc = (int)ri % 2;
                gmat g = gmat_rand(&r, t, 2304, 67, 1, 1.0f, (int)(ri + ti) % 2);
                float *x = rand_vec(&r, (size_t)rows * 2304, 1.0f);
                float *init = rand_vec(&r, (size_t)rows * 67, 1.0f);
                float *out = malloc(sizeof(float) * (size_t)rows * 67);
                memcpy(out, init, sizeof(float) * (size_t)rows * 67);
                mf_err err;
                GPU_OK(mf_cuda_test_matmul(gpu_ctx, &g.m, 1, x, rows, &out, acc, path, &err), err);
                check_out(path == 1 ? "GEMV long rows" : "GEMM long rows", t, &g, x, rows, acc ? init : NULL, out,
                          path == 2 ? 2e-3 : 1e-5);
                free(x);
                free(init);
                free(out);
                gmat_free(&g);
            }
    }
}

int main(void)
{
    /* F16 tile scratch of 64·2880 + 1000 elements: 64-row tiles for 2880- and 2304-wide
     * matrices of more than 64 rows (67 rows in 64 + 3) */
    if (!gpu_open(64 * 2880 + 1000)) {
        const struct CMUnitTest skip[] = {cmocka_unit_test(no_gpu)};
        return MF_RUN("cuda_matmul", skip);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_all_types),  cmocka_unit_test(matmul_three_fused),
        cmocka_unit_test(gemv_swiglu_fused), cmocka_unit_test(embed_all_types),
        cmocka_unit_test(mxfp4_edge_values), cmocka_unit_test(long_rows_all_block_types),
    };
    int rc = MF_RUN("cuda_matmul", tests);
    mf_cuda_test_free(gpu_ctx);
    return rc;
}

#else
MF_GPU_TEST_MAIN("cuda_matmul")
#endif
