/* test_quant_pack.c — the packed weight layout (engine/quant_impl.h, engine/cpu/pack.c) and
 * the kernels that read it (engine/cpu/quant_avx512.c):
 *   - pack then unpack gives back every byte of every row, for every quantized type and
 *     matrices with and without leftover rows (n_out % 16);
 *   - mf_matmul_packed equals, bit for bit, both its scalar twin (unpack + the scalar dot)
 *     and mf_matmul_rows on the unpacked matrix: the same integers and the same canonical
 *     float steps (quant.h), so not even the last bit may differ. Realistic data (random
 *     rows quantized by mf_quantize_row, activations with outliers), every token count
 *     from 1 to 20, chunk ranges as the CPU backend cuts them (starting on a group,
 *     ending on a group or at the last row), rows longer than the kernels' scale tables;
 *   - batch invariance on the packed path: T tokens at once equal T products of one;
 *   - zero activations give exact zeros (nothing left over between tiles).
 * In builds without packed kernels (mf_pack_supported = 0) mf_matmul_packed runs the scalar
 * twin, and the same checks hold. */
#include "harness.h"
#include "quant.h"
#include "quant_impl.h"
#include "quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t TYPES[] = {MF_TYPE_Q4_0, MF_TYPE_Q4_1, MF_TYPE_Q5_0, MF_TYPE_Q5_1, MF_TYPE_Q8_0, MF_TYPE_MXFP4,
                                 MF_TYPE_Q2_K, MF_TYPE_Q3_K, MF_TYPE_Q4_K, MF_TYPE_Q5_K, MF_TYPE_Q6_K};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

static const char *tname(uint32_t t) { return mf_type_get(t)->name; }

/* A matrix of realistic rows and its packed copy. */
typedef struct mat {
    uint32_t type;
    int64_t n_in, n_out;
    size_t rb;
    uint8_t *W, *P;
} mat;

static mat make_mat(uint32_t type, int64_t n_in, int64_t n_out, mf_rng *rng)
{
    mat m = {type, n_in, n_out, mf_type_row_bytes(type, n_in), NULL, NULL};
    m.W = malloc(m.rb * (size_t)n_out);
    m.P = malloc(m.rb * (size_t)n_out);
    float *w = malloc(sizeof(float) * (size_t)n_in);
    for (int64_t r = 0; r < n_out; r++) {
        float scale = 0.02f + mf_rng_uniform(rng);
        for (int64_t i = 0; i < n_in; i++) w[i] = mf_rng_normal(rng) * scale;
        mf_quantize_row(type, w, m.W + (size_t)r * m.rb, n_in);
    }
    free(w);
    /* packed in two calls, as the backend's threads do: groups [0, 1) then the rest */
    int64_t groups = (n_out + MF_PACK_ROWS - 1) / MF_PACK_ROWS;
    memset(m.P, 0xA5, m.rb * (size_t)n_out);
    mf_pack_matrix(type, m.W, n_in, n_out, 0, 1, m.P);
    mf_pack_matrix(type, m.W, n_in, n_out, 1, groups, m.P);
    return m;
}

static void free_mat(mat *m) { free(m->W), free(m->P); }

static uint8_t *make_acts(uint32_t type, int64_t n, int n_tok, size_t xs, mf_rng *rng, int zero)
{
    uint8_t *qx = malloc(xs * (size_t)n_tok);
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int t = 0; t < n_tok; t++) {
        for (int64_t i = 0; i < n; i++) {
            float s = (i / 32) % 5 == 3 ? 20.0f : (i / 32) % 7 == 2 ? 0.01f : 1.0f;
            x[i] = zero ? 0.0f : mf_rng_normal(rng) * s;
        }
        mf_quantize_act(type, x, qx + (size_t)t * xs, n);
    }
    free(x);
    return qx;
}

static void pack_roundtrip(void **state)
{
    (void)state;
    mf_rng rng = {0x9AC};
    const int64_t outs[] = {16, 37, 53, 5};
    for (size_t k = 0; k < N_TYPES; k++) {
        int64_t n_in = mf_act_type(TYPES[k]) == MF_TYPE_Q8_K ? 512 : 96;
        for (int o = 0; o < 4; o++) {
            mat m = make_mat(TYPES[k], n_in, outs[o], &rng);
            uint8_t *row = malloc(m.rb);
            for (int64_t r = 0; r < m.n_out; r++) {
                mf_unpack_row(m.type, m.P, n_in, m.n_out, r, row);
                if (memcmp(row, m.W + (size_t)r * m.rb, m.rb))
                    fail_msg("%s n_out=%lld: row %lld differs after pack + unpack", tname(m.type), (long long)m.n_out,
                             (long long)r);
            }
            free(row);
            free_mat(&m);
        }
    }
}

/* Rows [r0, r1) for n_tok tokens: packed kernel vs scalar twin vs the row-major kernels. */
static void check_case(const mat *m, int64_t r0, int64_t r1, int n_tok, const uint8_t *qx, size_t xs)
{
    const int64_t ys = m->n_out + 3;
    size_t ny = (size_t)(ys * n_tok);
    float *yp = malloc(sizeof(float) * ny), *ysc = malloc(sizeof(float) * ny), *yr = malloc(sizeof(float) * ny);
    for (size_t i = 0; i < ny; i++) yp[i] = ysc[i] = yr[i] = NAN;
    mf_matmul_packed(m->type, m->P, m->n_in, m->n_out, r0, r1, qx, xs, n_tok, yp, ys);
    mf_matmul_packed_scalar(m->type, m->P, m->n_in, m->n_out, r0, r1, qx, xs, n_tok, ysc, ys);
    mf_matmul_rows(m->type, m->W, m->n_in, r0, r1, qx, xs, n_tok, yr, ys);
#ifdef MF_QUANT_AVX2
    /* the 8-lane packed tiles too, also where the AVX-512 ones serve the backend: the
     * groups of [r0, r1) (the leftover rows are row-major: tested above) */
    float *y2 = malloc(sizeof(float) * ny);
    memcpy(y2, yp, sizeof(float) * ny);
    int64_t g1 = (r1 < m->n_out / 16 * 16 ? r1 : m->n_out / 16 * 16) / 16;
    if (r0 / 16 < g1) mf_matmul_packed_avx2(m->type, m->P, m->n_in, r0 / 16, g1, qx, xs, n_tok, y2, ys);
    if (memcmp(y2, yp, sizeof(float) * ny))
        fail_msg("%s n_in=%lld rows [%lld,%lld) n_tok=%d: the AVX2 packed tiles differ from mf_matmul_packed",
                 tname(m->type), (long long)m->n_in, (long long)r0, (long long)r1, n_tok);
    free(y2);
#endif
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < ys; r++) {
            size_t i = (size_t)(t * ys + r);
            if (r < r0 || r >= r1) {
                if (!isnan(yp[i]))
                    fail_msg("%s: y[%d][%lld] written outside rows [%lld, %lld)", tname(m->type), t, (long long)r,
                             (long long)r0, (long long)r1);
                continue;
            }
            if (memcmp(&yp[i], &ysc[i], sizeof(float)) || memcmp(&yp[i], &yr[i], sizeof(float)) || !isfinite(yp[i]))
                fail_msg(
                    "%s n_in=%lld n_out=%lld rows [%lld,%lld) n_tok=%d: y[%d][%lld] packed %.9g, scalar twin %.9g, "
                    "row-major %.9g",
                    tname(m->type), (long long)m->n_in, (long long)m->n_out, (long long)r0, (long long)r1, n_tok, t,
                    (long long)r, yp[i], ysc[i], yr[i]);
        }
    free(yp), free(ysc), free(yr);
}

static void packed_equals_rows(void **state)
{
    (void)state;
    mf_rng rng = {0x16};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = TYPES[k];
        int kq = mf_act_type(type) == MF_TYPE_Q8_K;
        /* one block per row, and more blocks than a scale table of the tiles (32) */
        const int64_t lens[2] = {kq ? 256 : 32, kq ? 2304 : 1088};
        for (int li = 0; li < 2; li++) {
            mat m = make_mat(type, lens[li], 53, &rng);
            size_t xs = mf_act_bytes(type, m.n_in) + 96; /* a padded stride */
            uint8_t *qx = make_acts(type, m.n_in, 20, xs, &rng, 0);
            const int64_t ranges[][2] = {{0, 53}, {0, 16}, {16, 48}, {32, 53}, {48, 53}};
            for (int ri = 0; ri < 5; ri++)
                for (int n_tok = 1; n_tok <= (li ? 20 : 17); n_tok += li ? 19 : 1)
                    check_case(&m, ranges[ri][0], ranges[ri][1], n_tok, qx, xs);
            free(qx);
            free_mat(&m);
        }
    }
}

/* A matrix of n_out realistic rows of the type (n32 or nk elements for the 32-element types
 * or the K-quants) and 20 converted activation rows, zeros if `zero`. */
typedef struct fixture {
    mat m;
    uint8_t *qx;
    size_t xs;
} fixture;

static fixture make_fixture(uint32_t type, int64_t n32, int64_t nk, int64_t n_out, int zero, mf_rng *rng)
{
    fixture f;
    int64_t n_in = mf_act_type(type) == MF_TYPE_Q8_K ? nk : n32;
    f.m = make_mat(type, n_in, n_out, rng);
    f.xs = mf_act_bytes(type, n_in);
    f.qx = make_acts(type, n_in, 20, f.xs, rng, zero);
    return f;
}

static void free_fixture(fixture *f)
{
    free(f->qx);
    free_mat(&f->m);
}

static void packed_batch_invariant(void **state)
{
    (void)state;
    mf_rng rng = {0x1B};
    for (size_t k = 0; k < N_TYPES; k++) {
        fixture f = make_fixture(TYPES[k], 288, 768, 37, 0, &rng);
        const mat *m = &f.m;
        float *yb = malloc(sizeof(float) * 20 * (size_t)m->n_out), *y1 = malloc(sizeof(float) * (size_t)m->n_out);
        for (int T = 1; T <= 20; T++) {
            mf_matmul_packed(m->type, m->P, m->n_in, m->n_out, 0, m->n_out, f.qx, f.xs, T, yb, m->n_out);
            for (int t = 0; t < T; t++) {
                mf_matmul_packed(m->type, m->P, m->n_in, m->n_out, 0, m->n_out, f.qx + (size_t)t * f.xs, f.xs, 1, y1,
                                 m->n_out);
                if (memcmp(yb + (size_t)t * m->n_out, y1, sizeof(float) * (size_t)m->n_out))
                    fail_msg("%s: token %d of %d differs from the same token alone", tname(m->type), t, T);
            }
        }
        free(yb), free(y1);
        free_fixture(&f);
    }
}

/* With zero activations every tile returns exactly 0: nothing carried over between tiles
 * (accumulators), no NaN from scales times zero. */
static void packed_zero_activations(void **state)
{
    (void)state;
    mf_rng rng = {5};
    for (size_t k = 0; k < N_TYPES; k++) {
        fixture f = make_fixture(TYPES[k], 64, 512, 32, 1, &rng);
        float y[16 * 32];
        for (int T = 1; T <= 16; T += 15) {
            mf_matmul_packed(f.m.type, f.m.P, f.m.n_in, 32, 0, 32, f.qx, f.xs, T, y, 32);
            for (int i = 0; i < T * 32; i++)
                if (y[i] != 0) fail_msg("%s: y[%d] = %g with zero activations", tname(f.m.type), i, y[i]);
        }
        free_fixture(&f);
    }
}

/* Which types this build packs: every quantized type with the AVX2 or AVX-512 kernels,
 * none in a scalar build (then the backend keeps the file's layout). */
static void supported_types(void **state)
{
    (void)state;
    assert_false(mf_pack_supported(MF_TYPE_F32));
    assert_false(mf_pack_supported(MF_TYPE_F16));
    assert_false(mf_pack_supported(MF_TYPE_IQ4_NL));
#ifdef MF_QUANT_AVX2
    for (size_t k = 0; k < N_TYPES; k++) assert_true(mf_pack_supported(TYPES[k]));
#else
    for (size_t k = 0; k < N_TYPES; k++) assert_false(mf_pack_supported(TYPES[k]));
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pack_roundtrip),         cmocka_unit_test(packed_equals_rows),
        cmocka_unit_test(packed_batch_invariant), cmocka_unit_test(packed_zero_activations),
        cmocka_unit_test(supported_types),
    };
    return MF_RUN("quant_pack", tests);
}
