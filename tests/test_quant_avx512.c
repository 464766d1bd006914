/* test_quant_avx512.c — the AVX-512 VNNI batch tiles (engine/cpu/quant_avx512.c) against the
 * scalar twin (mf_matmul_rows_scalar), bit for bit.
 *
 * Why bit for bit: both compute the same integer sum per (row, token, block) and then the
 * same float steps in the same order (quant.h's canonical order), so any difference, even
 * in the last bit, means a different integer — a code, offset, scale or lane taken from the
 * wrong place. This file feeds them adversarial bytes: every code, sub-block scale and min
 * bit pattern, with power-of-two block scales (so that each float step is exact too and a
 * wrong integer cannot hide in a rounding) and zero mins. Realistic data, mins included,
 * are compared bit for bit by tests/test_quant_dot.c and tests/test_quant_pack.c.
 *
 * The data: weight blocks of random bytes (every code, sub-block scale and min bit
 * pattern) with the block scales overwritten by 0.5, 1 or 2; activations whose block
 * maximum is 127·2^-m (m = 0, 1, 2), so that the activation scale is 2^-m exactly and every
 * other element an integer times 2^-m. Shapes: every n_tok from 1 to 17 (the tiles of 16,
 * 8, 4, 2 and 1 tokens and their combinations), row ranges that start anywhere and leave
 * 0..15 rows to the AVX2 code, lengths beyond the 32-block scale table.
 *
 * Skipped (exit 77) in builds without the AVX-512 kernels. */
#include "harness.h"
#include "quant.h"
#include "quant_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef MF_QUANT_AVX512

static const uint32_t TYPES[] = {MF_TYPE_Q4_0, MF_TYPE_Q4_1, MF_TYPE_Q5_0, MF_TYPE_Q5_1, MF_TYPE_Q8_0, MF_TYPE_MXFP4,
                                 MF_TYPE_Q2_K, MF_TYPE_Q3_K, MF_TYPE_Q4_K, MF_TYPE_Q5_K, MF_TYPE_Q6_K};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

/* Byte offsets of the fp16 block scale and of the fp16 min (-1: none), docs/quantization.md §2;
 * MXFP4's scale is the E8M0 byte at 0. */
static int d_at(uint32_t t) { return t == MF_TYPE_Q2_K ? 80 : t == MF_TYPE_Q3_K ? 108 : t == MF_TYPE_Q6_K ? 208 : 0; }
static int min_at(uint32_t t)
{
    switch (t) {
    case MF_TYPE_Q4_1:
    case MF_TYPE_Q5_1:
    case MF_TYPE_Q4_K:
    case MF_TYPE_Q5_K: return 2;
    case MF_TYPE_Q2_K: return 82;
    default: return -1;
    }
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }

/* One row of random blocks with power-of-two scales and zero mins. */
static void exact_row(uint32_t type, mf_rng *rng, int64_t n, uint8_t *q)
{
    const mf_type_info *ti = mf_type_get(type);
    for (size_t i = 0; i < mf_type_row_bytes(type, n); i++) q[i] = (uint8_t)mf_rng_u64(rng);
    for (int64_t b = 0; b < n / ti->blck; b++) {
        uint8_t *blk = q + (size_t)b * ti->size;
        int e = (int)(mf_rng_u64(rng) % 3); /* scale 2^(e-1) */
        if (type == MF_TYPE_MXFP4) {
            blk[0] = (uint8_t)(127 + e); /* 2^(e8m0 - 128), docs/quantization.md §2 */
            continue;
        }
        put16(blk + d_at(type), mf_f32_to_fp16(ldexpf(1.0f, e - 1)));
        if (min_at(type) >= 0) put16(blk + min_at(type), 0);
    }
}

/* Activations whose every block (32 or 256 values) has max |x| = 127·2^-m and integer
 * multiples of 2^-m elsewhere. */
static void exact_act(uint32_t type, mf_rng *rng, int64_t n, float *x)
{
    const int B = mf_act_type(type) == MF_TYPE_Q8_K ? 256 : 32;
    for (int64_t b = 0; b < n / B; b++) {
        float unit = ldexpf(1.0f, -(int)(mf_rng_u64(rng) % 3));
        for (int j = 0; j < B; j++) x[b * B + j] = (float)((int)(mf_rng_u64(rng) % 255) - 127) * unit;
        x[b * B + (int)(mf_rng_u64(rng) % (uint64_t)B)] = (mf_rng_u64(rng) & 1 ? 127.0f : -127.0f) * unit;
    }
}

/* Rows [r0, r1) and n_tok tokens through mf_matmul_rows; the rows of the AVX-512 tiles
 * must equal the scalar twin exactly. Returns how many results were compared. */
static int run_case(uint32_t type, int64_t n, int64_t rows, int64_t r0, int64_t r1, int n_tok, mf_rng *rng)
{
    size_t rb = mf_type_row_bytes(type, n), xs = mf_act_bytes(type, n) + 96; /* a padded stride */
    const int64_t ys = rows + 5;
    uint8_t *W = malloc(rb * (size_t)rows), *qx = malloc(xs * (size_t)n_tok);
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)(ys * n_tok) * sizeof *y);
    float *ys_ = malloc((size_t)(ys * n_tok) * sizeof *ys_);
    for (int64_t r = 0; r < rows; r++) exact_row(type, rng, n, W + (size_t)r * rb);
    for (int t = 0; t < n_tok; t++) {
        exact_act(type, rng, n, x);
        mf_quantize_act(type, x, qx + (size_t)t * xs, n);
    }
    for (int64_t i = 0; i < ys * n_tok; i++) y[i] = NAN;
    mf_matmul_rows(type, W, n, r0, r1, qx, xs, n_tok, y, ys);
    mf_matmul_rows_scalar(type, W, n, r0, r1, qx, xs, n_tok, ys_, ys);
    /* the AVX-512 tiles take whole groups of 16 rows from r0, when there are 2+ tokens */
    int64_t tiled_end = n_tok >= MF_AVX512_MIN_TOK ? r0 + (r1 - r0) / 16 * 16 : r0;
    int compared = 0;
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < ys; r++) {
            float got = y[t * ys + r];
            if (r < r0 || r >= r1) {
                if (!isnan(got))
                    fail_msg("%s: y[%d][%lld] written outside rows [%lld, %lld)", mf_type_get(type)->name, t,
                             (long long)r, (long long)r0, (long long)r1);
                continue;
            }
            if (r >= tiled_end) continue; /* AVX2 rows: test_quant_dot.c */
            float want = ys_[t * ys + r];
            if (!(got == want) || !isfinite(got))
                fail_msg("%s n=%lld n_tok=%d rows [%lld,%lld): y[%d][%lld] = %.9g, scalar twin %.9g",
                         mf_type_get(type)->name, (long long)n, n_tok, (long long)r0, (long long)r1, t, (long long)r,
                         got, want);
            compared++;
        }
    free(W), free(qx), free(x), free(y), free(ys_);
    return compared;
}

static void tiles_equal_scalar_twin(void **state)
{
    (void)state;
    mf_rng rng = {0xA512};
    const int64_t ranges[][2] = {{0, 53}, {0, 16}, {3, 19}, {5, 53}, {17, 50}, {1, 2}, {20, 35}};
    const int n_ranges = (int)(sizeof ranges / sizeof ranges[0]);
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = TYPES[k];
        int kq = mf_act_type(type) == MF_TYPE_Q8_K;
        /* one block; more blocks than the 32 of one scale table (quant_avx512.c SLAB) */
        const int64_t lens[2] = {kq ? 256 : 32, kq ? 2304 : 1088};
        int compared = 0;
        for (int n_tok = 1; n_tok <= 17; n_tok++) /* every token count, every range */
            for (int ri = 0; ri < n_ranges; ri++)
                compared += run_case(type, lens[0], 53, ranges[ri][0], ranges[ri][1], n_tok, &rng);
        const int toks[] = {2, 7, 16, 17};
        for (int ti = 0; ti < 4; ti++) compared += run_case(type, lens[1], 40, 3, 40, toks[ti], &rng);
        assert_true(compared > 10000); /* the tiles ran (not everything went to AVX2) */
    }
}

/* With zero activations every tile returns exactly 0: nothing carried over from an earlier
 * tile (accumulators, scale tables) and no NaN from scales times zero. */
static void tiles_zero_activations(void **state)
{
    (void)state;
    mf_rng rng = {77};
    for (size_t k = 0; k < N_TYPES; k++) {
        uint32_t type = TYPES[k];
        const int64_t n = mf_act_type(type) == MF_TYPE_Q8_K ? 512 : 64, rows = 32;
        size_t rb = mf_type_row_bytes(type, n), ab = mf_act_bytes(type, n);
        uint8_t *W = malloc(rb * rows), *qx = malloc(ab * 16);
        float *z = calloc((size_t)n, sizeof *z), y[16 * 32];
        for (int64_t r = 0; r < rows; r++) exact_row(type, &rng, n, W + (size_t)r * rb);
        for (int t = 0; t < 16; t++) mf_quantize_act(type, z, qx + (size_t)t * ab, n);
        mf_matmul_rows(type, W, n, 0, rows, qx, ab, 16, y, rows);
        for (int i = 0; i < 16 * 32; i++)
            if (y[i] != 0) fail_msg("%s: y[%d] = %g with zero activations", mf_type_get(type)->name, i, y[i]);
        free(W), free(qx), free(z);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiles_equal_scalar_twin),
        cmocka_unit_test(tiles_zero_activations),
    };
    return MF_RUN("quant_avx512", tests);
}

#else

static void no_avx512(void **state)
{
    (void)state;
    mf_skip("this build has no AVX-512 VNNI kernels (needs -march with AVX-512 F/BW/VL/VNNI)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(no_avx512)};
    return MF_RUN("quant_avx512", tests);
}

#endif
