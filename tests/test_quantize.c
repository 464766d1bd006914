/* test_quantize.c — `minfer quantize` (engine/quantize_model.c), importance weights
 * (engine/quantize.c), `minfer imatrix` (engine/imatrix.c).
 *
 *  - Q4_0 and Q8_0 blocks equal blocks computed by hand from the formats' rule (scale from
 *    the signed extreme, nearest code; values chosen without rounding ties);
 *  - importance weights never raise the weighted error of a 32-element block (the searched
 *    scale is kept only when better) and lower it overall for every weighted type; with all
 *    weights 1 the K-quants give the unweighted bytes; with none every type does;
 *  - a quantized file, for every target: each converted tensor's bytes equal the scalar
 *    quantizer's on the source rows (one thread, no file), every other tensor and every
 *    metadata key is copied, general.file_type is set, the report's relative RMS error is
 *    the one recomputed here; the file loads and runs;
 *  - its logits match tools/reference.py's on the same file (skipped without numpy);
 *  - the recipes give the documented types per layer; overrides, --keep-output, fallbacks;
 *  - imatrix: the file's statistics equal those collected on the reference pass;
 *  - hostile input: unquantizable sources, bad patterns and types, a missing folder, a full
 *    disk, output = input, a foreign importance file: a clear error, no output (no
 *    temporary file either), the input untouched.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "imatrix.h"
#include "minfer.h"
#include "perplexity.h"
#include "quant.h"
#include "quantize.h"
#include "quantize_model.h"
#include "ref_forward.h"

/* ================================================================ hand-computed blocks */

static void hand_blocks(void **state)
{
    (void)state;
    float x[32];
    uint8_t b[34];
    /* Q4_0: x_j = (j - 16)/4, plus 0.05 for odd j (so no value is a tie). The extreme is
     * x_0 = -4: d = -4 / -8 = 0.5 (fp16 0x3800). x_j / d = (j - 16)/2 (+ 0.1): code
     * round(.) + 8 = ceil(j/2), clamped to 15. Byte j = code_j | code_{j+16} << 4. */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) / 4 + (j % 2 ? 0.05f : 0.0f);
    const uint8_t q4[18] = {0x00, 0x38, 0x80, 0x91, 0x91, 0xA2, 0xA2, 0xB3, 0xB3,
                            0xC4, 0xC4, 0xD5, 0xD5, 0xE6, 0xE6, 0xF7, 0xF7, 0xF8};
    assert_int_equal(mf_quantize_row(MF_TYPE_Q4_0, x, b, 32), 18);
    assert_memory_equal(b, q4, 18);
    /* Q4_0 with a scale fp16 cannot hold: x_0 = -1.3, the others 1. d = -1.3 / -8 = 0.1625
     * -> fp16 0x3133 = 0.16247559; codes from that stored d: -1.3/d = -8.0012 -> 0,
     * 1/d = 6.1548 -> 6 + 8 = 14. */
    for (int j = 0; j < 32; j++) x[j] = j ? 1.0f : -1.3f;
    const uint8_t q4b[18] = {0x33, 0x31, 0xE0, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE,
                             0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE};
    mf_quantize_row(MF_TYPE_Q4_0, x, b, 32);
    assert_memory_equal(b, q4b, 18);
    /* Q8_0: x_0 = -127, x_j = 3(j - 16) + 0.2 (j mod 3). d = max|x| / 127 = 1 (fp16
     * 0x3C00); codes round(x_j) = 3(j - 16) (the fractions are below one half), -127 first. */
    x[0] = -127;
    for (int j = 1; j < 32; j++) x[j] = (float)(3 * (j - 16)) + 0.2f * (float)(j % 3);
    const uint8_t q8[34] = {0x00, 0x3C, 0x81, 0xD3, 0xD6, 0xD9, 0xDC, 0xDF, 0xE2, 0xE5, 0xE8, 0xEB,
                            0xEE, 0xF1, 0xF4, 0xF7, 0xFA, 0xFD, 0x00, 0x03, 0x06, 0x09, 0x0C, 0x0F,
                            0x12, 0x15, 0x18, 0x1B, 0x1E, 0x21, 0x24, 0x27, 0x2A, 0x2D};
    assert_int_equal(mf_quantize_row(MF_TYPE_Q8_0, x, b, 32), 34);
    assert_memory_equal(b, q8, 34);
}

/* ================================================================ importance weights */

static const uint32_t WTYPES[] = {MF_TYPE_Q4_0, MF_TYPE_Q4_1, MF_TYPE_Q5_0, MF_TYPE_Q5_1, MF_TYPE_MXFP4,
                                  MF_TYPE_Q2_K, MF_TYPE_Q3_K, MF_TYPE_Q4_K, MF_TYPE_Q5_K, MF_TYPE_Q6_K};

static double weighted_err(uint32_t type, const uint8_t *q, const float *x, const float *w, int64_t n, int64_t i0,
                           int64_t i1)
{
    float *y = malloc(sizeof(float) * (size_t)n);
    mf_dequantize_row(type, q, y, n);
    double e = 0;
    for (int64_t i = i0; i < i1; i++) e += w[i] * ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    free(y);
    return e;
}

static void importance_weights(void **state)
{
    (void)state;
    enum { N = 8192 };
    float *x = malloc(sizeof(float) * N), *w = malloc(sizeof(float) * N), *ones = malloc(sizeof(float) * N);
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4);
    mf_rng r = {42};
    /* Gaussian weights; importance log-normal (a few columns matter 10-100 times more, as
     * activation statistics of real models do) */
    for (int i = 0; i < N; i++) x[i] = mf_rng_normal(&r), w[i] = expf(1.5f * mf_rng_normal(&r)), ones[i] = 1;
    for (size_t k = 0; k < sizeof WTYPES / sizeof *WTYPES; k++) {
        uint32_t t = WTYPES[k];
        const mf_type_info *ti = mf_type_get(t);
        size_t rb = mf_quantize_row(t, x, a, N);
        assert_int_equal(mf_quantize_row_imp(t, x, b, N, NULL), rb);
        assert_memory_equal(a, b, rb); /* no weights: the plain quantizer */
        mf_quantize_row_imp(t, x, b, N, w);
        double plain = weighted_err(t, a, x, w, N, 0, N), weighted = weighted_err(t, b, x, w, N, 0, N);
        if (ti->blck == 32) /* per block: never worse (the format's scale is the fallback) */
            for (int64_t i = 0; i < N; i += 32)
                assert_true(weighted_err(t, b, x, w, N, i, i + 32) <=
                            weighted_err(t, a, x, w, N, i, i + 32) * (1 + 1e-12));
        /* overall at least 5% lower: measured 12-35% on this data (docs/quantize.md §3) */
        print_message("%-6s weighted error with importance / without: %.3f\n", ti->name, weighted / plain);
        if (!(weighted < (t == MF_TYPE_MXFP4 ? 0.99 : 0.95) * plain))
            fail_msg("%s: weighted error %g vs unweighted %g", ti->name, weighted, plain);
        mf_quantize_row_imp(t, x, b, N, ones);
        if (ti->blck == 256) assert_memory_equal(a, b, rb); /* weights of 1 = the unweighted search */
    }
    /* Q8_0 and the float types ignore weights */
    size_t rb = mf_quantize_row(MF_TYPE_Q8_0, x, a, N);
    mf_quantize_row_imp(MF_TYPE_Q8_0, x, b, N, w);
    assert_memory_equal(a, b, rb);
    free(x), free(w), free(ones), free(a), free(b);
}

/* ================================================================ quantized files */

static mf_qplan *plan(const char *in, const char *target, const char *const *ov, int n_ov, int keep, const char *imat)
{
    mf_quant_opts o = {.target = target,
                       .overrides = ov,
                       .n_overrides = n_ov,
                       .keep_output = keep,
                       .imatrix = imat,
                       .n_threads = 2,
                       .report = 1};
    mf_err err;
    mf_qplan *p = mf_qplan_new(in, &o, &err);
    if (!p) fail_msg("%s: %s", target, err.msg);
    return p;
}

static const mf_qtensor *find_q(const mf_qplan *p, const char *name)
{
    for (int64_t i = 0; i < p->n; i++)
        if (!strcmp(p->t[i].src->name, name)) return &p->t[i];
    fail_msg("no tensor %s in the plan", name);
    return NULL;
}

/* The written file against its source and plan (see the header). */
static void check_file(const char *in, const char *out, const mf_qplan *p, uint32_t ftype)
{
    mf_err err;
    mf_gguf *a = mf_gguf_open(in, &err), *b = mf_gguf_open(out, &err);
    if (!a || !b) fail_msg("%s", err.msg);
    assert_int_equal(mf_gguf_n_tensors(a), mf_gguf_n_tensors(b));
    for (uint64_t i = 0; i < mf_gguf_n_tensors(a); i++) {
        const mf_gguf_tensor *s = mf_gguf_tensor_at(a, i), *t = mf_gguf_tensor_at(b, i);
        const mf_qtensor *q = &p->t[i];
        assert_string_equal(s->name, t->name);
        assert_memory_equal(s->ne, t->ne, sizeof s->ne);
        assert_int_equal(t->type, q->type);
        if (!q->convert) {
            assert_int_equal(t->type, s->type);
            assert_memory_equal(t->data, s->data, s->nbytes);
            continue;
        }
        /* the scalar quantizer, row by row, one thread */
        int64_t n = s->ne[0], rows = (int64_t)(s->n_elements / (uint64_t)n);
        size_t srb = mf_type_row_bytes(s->type, n), drb = mf_type_row_bytes(t->type, n);
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
        uint8_t *row = malloc(drb);
        double sse = 0, ssx = 0;
        for (int64_t r = 0; r < rows; r++) {
            mf_dequantize_row(s->type, (const uint8_t *)s->data + (size_t)r * srb, x, n);
            mf_quantize_row_imp(t->type, x, row, n, q->imp ? q->imp + (r / s->ne[1]) * n : NULL);
            if (memcmp(row, (const uint8_t *)t->data + (size_t)r * drb, drb))
                fail_msg("%s row %lld differs from the scalar quantizer", t->name, (long long)r);
            mf_dequantize_row(t->type, row, y, n);
            for (int64_t j = 0; j < n; j++)
                sse += ((double)x[j] - y[j]) * ((double)x[j] - y[j]), ssx += (double)x[j] * x[j];
        }
        assert_true(fabs(sqrt(sse / ssx) - q->rel_rms) <= 1e-9 + 1e-9 * q->rel_rms);
        free(x), free(y), free(row);
    }
    /* metadata: every key, same values, but the two the quantizer sets */
    for (uint64_t i = 0; i < mf_gguf_n_kv(a); i++) {
        const mf_gguf_kv *x = mf_gguf_kv_at(a, i), *y = mf_gguf_find_kv(b, x->key);
        assert_non_null(y);
        assert_int_equal(x->type, y->type);
        if (!strcmp(x->key, "general.file_type") || !strcmp(x->key, "general.quantization_version")) continue;
        if (x->type == MF_GGUF_STR) assert_memory_equal(x->str, y->str, x->str_len);
        else if (x->type == MF_GGUF_ARR) assert_int_equal(x->arr_n, y->arr_n);
        else assert_true(x->v.u == y->v.u);
    }
    uint32_t ft;
    assert_int_equal(mf_gguf_get_u32(b, "general.file_type", &ft, &err), 0);
    assert_int_equal(ft, ftype);
    mf_gguf_close(a);
    mf_gguf_close(b);
    mf_model *m = mf_model_load(out, &err);
    if (!m) fail_msg("%s does not load: %s", out, err.msg);
    mf_model_free(m);
}

static void every_target(void **state)
{
    (void)state;
    const char *src = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(src);
    const char *out = mf_tmp_path("q.gguf");
    const char *targets[] = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0", "Q4_1",   "Q5_0",   "Q5_1",
                             "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q3_K_M", "Q4_K_M", "Q5_K_M"};
    const uint32_t ftypes[] = {0, 1, 32, 7, 2, 3, 8, 9, 10, 11, 14, 16, 18, 12, 15, 17};
    for (size_t k = 0; k < sizeof targets / sizeof *targets; k++) {
        mf_qplan *p = plan(src, targets[k], NULL, 0, 0, NULL);
        mf_err err;
        if (mf_qplan_write(p, out, &err)) fail_msg("%s: %s", targets[k], err.msg);
        check_file(src, out, p, ftypes[k]);
        mf_qplan_free(p);
    }
    /* MXFP4 on every matrix of a dense model, through an override */
    const char *ov[] = {".=MXFP4"};
    mf_qplan *p = plan(src, "Q8_0", ov, 1, 0, NULL);
    mf_err err;
    if (mf_qplan_write(p, out, &err)) fail_msg("%s", err.msg);
    assert_int_equal(find_q(p, "blk.1.attn_q.weight")->type, MF_TYPE_MXFP4);
    check_file(src, out, p, 7);
    mf_qplan_free(p);
    unlink(out);
}

static int sh(const char *cmd)
{
    fflush(NULL);
    return system(cmd);
}

static void mkmodel(const char *out, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' %s > /dev/null 2>&1", mf_tool_path("mkmodel"), out, args);
    if (sh(cmd) != 0) fail_msg("mkmodel %s failed", args);
}

/* llama tiny, 8 layers of F32 (every row a multiple of 256: no fallbacks) */
static const char *tiny8(void)
{
    const char *p = mf_tmp_path("tiny8.gguf");
    if (access(p, R_OK) != 0) mkmodel(p, "--preset tiny --layers 8 --type F32 --seed 9 --threads 1");
    return p;
}

static void recipes(void **state)
{
    (void)state;
    const char *src = tiny8();
    char name[64];
    /* _M recipes: attn_v and ffn_down in Q6_K on layers 0, 7 (first and last eighth) and
     * 3, 6 (every third in between), output Q6_K, the rest the base type */
    const char *rec[] = {"Q4_K_M", "Q5_K_M"};
    const uint32_t base[] = {MF_TYPE_Q4_K, MF_TYPE_Q5_K};
    for (int k = 0; k < 2; k++) {
        mf_qplan *p = plan(src, rec[k], NULL, 0, 0, NULL);
        assert_int_equal(p->n_notes, 0);
        assert_int_equal(find_q(p, "output.weight")->type, MF_TYPE_Q6_K);
        assert_int_equal(find_q(p, "token_embd.weight")->type, base[k]);
        for (int l = 0; l < 8; l++) {
            uint32_t more = l == 0 || l == 3 || l == 6 || l == 7 ? MF_TYPE_Q6_K : base[k];
            snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
            assert_int_equal(find_q(p, name)->type, more);
            snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
            assert_int_equal(find_q(p, name)->type, more);
            snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
            assert_int_equal(find_q(p, name)->type, base[k]);
            snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
            assert_int_equal(find_q(p, name)->type, MF_TYPE_F32);
        }
        mf_qplan_free(p);
    }
    /* Q3_K_M: attn_v Q5_K on layers 0-1 then Q4_K, attn_output Q4_K, ffn_down Q5_K on the
     * first sixteenth (none of 8 layers) then Q4_K, others Q3_K */
    mf_qplan *p = plan(src, "Q3_K_M", NULL, 0, 0, NULL);
    assert_int_equal(find_q(p, "output.weight")->type, MF_TYPE_Q6_K);
    for (int l = 0; l < 8; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        assert_int_equal(find_q(p, name)->type, l < 2 ? MF_TYPE_Q5_K : MF_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
        assert_int_equal(find_q(p, name)->type, MF_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        assert_int_equal(find_q(p, name)->type, MF_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        assert_int_equal(find_q(p, name)->type, MF_TYPE_Q3_K);
    }
    mf_qplan_free(p);
    /* overrides (the first match wins), --keep-output (beats everything) */
    const char *ov[] = {"blk\\.1\\.attn_v=Q8_0", "attn_v=F16", "^output=Q8_0"};
    p = plan(src, "Q4_0", ov, 3, 1, NULL);
    assert_int_equal(find_q(p, "blk.1.attn_v.weight")->type, MF_TYPE_Q8_0);
    assert_int_equal(find_q(p, "blk.2.attn_v.weight")->type, MF_TYPE_F16);
    assert_int_equal(find_q(p, "blk.2.attn_k.weight")->type, MF_TYPE_Q4_0);
    assert_int_equal(find_q(p, "output.weight")->type, MF_TYPE_F32);
    assert_string_equal(find_q(p, "output.weight")->rule, "--keep-output");
    mf_qplan_free(p);
}

static void fallbacks(void **state)
{
    (void)state;
    const char *src = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(src);
    /* stories260K: rows of 64 (d) and 172 (ffn_down: not even a multiple of 32) */
    mf_qplan *p = plan(src, "Q4_K", NULL, 0, 0, NULL);
    assert_int_equal(find_q(p, "blk.0.attn_q.weight")->type, MF_TYPE_Q5_0);
    assert_int_equal(find_q(p, "blk.0.attn_q.weight")->wanted, MF_TYPE_Q4_K);
    assert_int_equal(find_q(p, "blk.0.ffn_down.weight")->type, MF_TYPE_F16);
    assert_int_equal(p->n_notes, 2);
    assert_non_null(strstr(p->notes[0], "rows of 64 do not fit Q4_K's 256-element blocks: Q5_0 instead (32 matrices"));
    assert_non_null(strstr(p->notes[1], "rows of 172 do not fit Q4_K's 256-element blocks: F16 instead (5 matrices"));
    mf_qplan_free(p);
    const uint32_t want[][2] = {{MF_TYPE_Q2_K, MF_TYPE_Q4_0},
                                {MF_TYPE_Q3_K, MF_TYPE_Q4_0},
                                {MF_TYPE_Q5_K, MF_TYPE_Q5_1},
                                {MF_TYPE_Q6_K, MF_TYPE_Q8_0},
                                {MF_TYPE_Q4_0, MF_TYPE_Q4_0}};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        p = plan(src, mf_type_get(want[k][0])->name, NULL, 0, 0, NULL);
        assert_int_equal(find_q(p, "blk.3.ffn_up.weight")->type, want[k][1]);
        assert_int_equal(find_q(p, "blk.3.ffn_down.weight")->type, MF_TYPE_F16);
        mf_qplan_free(p);
    }
}

/* gpt-oss: experts MXFP4, attention Q8_0, router and every bias F32 */
static void gpt_oss_mxfp4(void **state)
{
    (void)state;
    const char *src = mf_tmp_path("oss32.gguf"), *out = mf_tmp_path("oss-mx.gguf");
    mkmodel(src, "--arch gpt-oss --preset tiny --type F32 --expert-type F32 --seed 4 --threads 1");
    mf_qplan *p = plan(src, "MXFP4", NULL, 0, 0, NULL);
    mf_err err;
    if (mf_qplan_write(p, out, &err)) fail_msg("%s", err.msg);
    check_file(src, out, p, 38);
    assert_int_equal(find_q(p, "blk.0.ffn_down_exps.weight")->type, MF_TYPE_MXFP4);
    assert_int_equal(find_q(p, "blk.0.ffn_gate_inp.weight")->type, MF_TYPE_F32);
    assert_int_equal(find_q(p, "blk.0.ffn_up_exps.bias")->type, MF_TYPE_F32);
    assert_int_equal(find_q(p, "blk.0.attn_q.weight")->type, MF_TYPE_Q8_0);
    mf_qplan_free(p);
    unlink(src);
    unlink(out);
}

/* ================================================================ logits vs reference.py */

static const int32_t IDS[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
#define N_IDS ((int)(sizeof IDS / sizeof IDS[0]))

/* A quantized file through minfer's reference pass (exact activations) against
 * tools/reference.py (float64, independent of the engine: docs/reference.md §1) on the same file: only float32
 * rounding differs, bound 2e-3 absolute on logits of magnitude ~10 (test_golden's atol).
 * And the fast path against the reference pass in its 8-bit activation mode (what the fast
 * path computes, up to the order of additions and rounding ties of the 8-bit codes, which
 * test_forward.c's assert_same_function explains): within 5% of the logit range. */
static void logits_match_reference_py(void **state)
{
    (void)state;
    if (!mf_have_numpy()) {
        mf_skip("/usr/bin/python3 with numpy is missing (apt-get install python3-numpy)");
        return;
    }
    const char *src = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(src);
    const char *targets[][2] = {{src, "Q4_K_M"}, {tiny8(), "Q4_K_M"}, {tiny8(), "Q3_K_M"}, {src, "Q4_1"}};
    for (size_t k = 0; k < sizeof targets / sizeof *targets; k++) {
        const char *out = mf_tmp_path("ref.gguf"), *lg = mf_tmp_path("ref.f32");
        mf_qplan *p = plan(targets[k][0], targets[k][1], NULL, 0, 0, NULL);
        mf_err err;
        if (mf_qplan_write(p, out, &err)) fail_msg("%s", err.msg);
        mf_qplan_free(p);
        mf_model *m = mf_model_load(out, &err);
        assert_non_null(m);
        int V = m->hp.n_vocab, n = N_IDS;
        int32_t ids[N_IDS];
        char toks[256] = "";
        for (int t = 0; t < n; t++) {
            ids[t] = IDS[t] % V;
            snprintf(toks + strlen(toks), sizeof toks - strlen(toks), "%d ", ids[t]);
        }
        float *exact = malloc(sizeof(float) * (size_t)n * V), *rounded = malloc(sizeof(float) * (size_t)n * V),
              *fast = malloc(sizeof(float) * (size_t)n * V);
        for (int mode = 0; mode < 2; mode++) {
            mf_ref *r = mf_ref_new(m, n, &err);
            mf_ref_round_activations(r, mode);
            for (int t = 0; t < n; t++)
                assert_int_equal(mf_ref_forward(r, ids[t], t, (mode ? rounded : exact) + (size_t)t * V, NULL, &err), 0);
            mf_ref_free(r);
        }
        mf_session_opts so = mf_session_defaults();
        so.device = "cpu";
        so.n_ctx = n;
        mf_session *s = mf_session_new(m, &so, &err);
        assert_int_equal(mf_session_eval(s, ids, n, fast, &err), 0);
        mf_session_free(s);
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 '%s/tools/reference.py' logits '%s' --tokens '%s' --out '%s' > /dev/null",
                 MF_SOURCE_DIR, out, toks, lg);
        assert_int_equal(sh(cmd), 0);
        size_t len;
        float *want = (float *)mf_read_file(lg, &len);
        assert_int_equal(len, sizeof(float) * (size_t)n * V);
        double d_ref = 0, d_fast = 0, range = 0;
        for (size_t i = 0; i < (size_t)n * V; i++) {
            d_ref = fmax(d_ref, fabs((double)exact[i] - want[i]));
            d_fast = fmax(d_fast, fabs((double)fast[i] - rounded[i]));
            range = fmax(range, fabs(rounded[i]));
        }
        print_message("%s %s: max |logit diff| reference pass vs reference.py %g, fast path vs rounded reference %g\n",
                      targets[k][0], targets[k][1], d_ref, d_fast);
        if (d_ref > 2e-3 || d_fast > 0.05 * range)
            fail_msg("%s %s: differences %g, %g", targets[k][0], targets[k][1], d_ref, d_fast);
        free(want), free(exact), free(rounded), free(fast);
        mf_model_free(m);
        unlink(out);
        unlink(lg);
    }
}

/* ================================================================ imatrix */

typedef struct refstat {
    mf_imatrix *im;
} refstat;

static void imatrix_matches_reference(void **state)
{
    (void)state;
    const char *src = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(src);
    const char *out = mf_tmp_path("im.gguf"), *text = MF_SOURCE_DIR "/tests/data/stories.txt";
    /* the reference pass is float32 arithmetic: the float32 cache (the default is binary16) */
    const char *args[] = {"imatrix", "-m",       src, "-f", text, "-o",       out, "-c",
                          "64",      "--chunks", "3", "-t", "2",  "--kv-f32", NULL};
    mf_proc pr = mf_run_tool("minfer", args);
    if (pr.rc) fail_msg("%s", pr.err);
    mf_proc_free(&pr);
    /* the same chunks through the reference pass with its observer */
    mf_err err;
    mf_model *m = mf_model_load(src, &err);
    char *t = mf_read_text(text, NULL);
    int32_t *tok;
    int n_chunks;
    assert_int_equal(mf_ppl_chunks(m, t, strlen(t), 64, &tok, &n_chunks, &err), 0);
    mf_imatrix *im = mf_imatrix_new(m, &err);
    mf_ref *r = mf_ref_new(m, 64, &err);
    mf_ref_observe(r, mf_imatrix_observe, im);
    float *lg = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 64; i++) assert_int_equal(mf_ref_forward(r, tok[c * 64 + i], i, lg, NULL, &err), 0);
    mf_gguf *g = mf_gguf_open(out, &err);
    if (!g) fail_msg("%s", err.msg);
    uint32_t chunks;
    assert_int_equal(mf_gguf_get_u32(g, "minfer.imatrix.chunks", &chunks, &err), 0);
    assert_int_equal(chunks, 3);
    int n_entries = 0;
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *e = mf_gguf_tensor_at(g, i);
        const float *v = e->data;
        assert_int_equal(e->type, MF_TYPE_F32);
        for (int64_t j = 0; j < e->ne[0]; j++) {
            double want = mf_imatrix_value(im, e->name, 0, j);
            /* float32 sums in a different order: 1e-4 relative */
            if (!(fabs(v[j] - want) <= 1e-4 * want + 1e-7))
                fail_msg("%s[%lld]: %g vs reference %g", e->name, (long long)j, v[j], want);
        }
        n_entries++;
    }
    assert_int_equal(n_entries, 1 + 5 * 7); /* output and 7 matrices per layer */
    mf_gguf_close(g);
    free(lg);
    mf_ref_free(r);
    mf_imatrix_free(im);
    free(tok);
    free(t);
    mf_model_free(m);
    /* quantize with it: every matrix but the (untied) embedding has weights */
    mf_qplan *p = plan(src, "Q4_0", NULL, 0, 0, out);
    assert_non_null(find_q(p, "blk.2.ffn_up.weight")->imp);
    assert_null(find_q(p, "token_embd.weight")->imp);
    assert_non_null(strstr(p->notes[p->n_notes - 1], "1 matrix without importance data (e.g. token_embd.weight)"));
    mf_qplan_free(p);
    unlink(out);
}

/* ================================================================ hostile input */

static char tmpdir_path[64];

/* The folder holds exactly `want` (space-separated, sorted) */
static void assert_dir(const char *want)
{
    char got[1024];
    mf_list_dir(tmpdir_path, got, sizeof got);
    assert_string_equal(got, want);
}

static void hostile(void **state)
{
    (void)state;
    const char *shared = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(shared);
    snprintf(tmpdir_path, sizeof tmpdir_path, "/tmp/mf-quant-XXXXXX");
    assert_non_null(mkdtemp(tmpdir_path));
    char src[128], q4[128], out[128], bad_im[128], missing[128];
    snprintf(src, sizeof src, "%s/in.gguf", tmpdir_path);
    snprintf(q4, sizeof q4, "%s/q4.gguf", tmpdir_path);
    snprintf(out, sizeof out, "%s/out.gguf", tmpdir_path);
    snprintf(bad_im, sizeof bad_im, "%s/im.gguf", tmpdir_path);
    snprintf(missing, sizeof missing, "%s/no-such-folder/out.gguf", tmpdir_path);
    size_t len0, len1;
    uint8_t *orig = mf_read_file(shared, &len0);
    FILE *f = fopen(src, "wb");
    fwrite(orig, 1, len0, f);
    fclose(f);
    const char *mk[] = {"quantize", src, q4, "Q4_0", NULL};
    mf_proc p = mf_run_tool("minfer", mk);
    assert_int_equal(p.rc, 0);
    mf_proc_free(&p);
    /* an importance file whose entry has the wrong shape */
    mf_gguf_writer *w = mf_gguf_writer_new();
    float zeros[10] = {0};
    const int64_t ne[2] = {10, 1};
    mf_err err;
    assert_int_equal(mf_gguf_w_u32(w, "minfer.imatrix.version", 1), 0);
    assert_true(mf_gguf_w_tensor(w, "blk.0.attn_q.weight", MF_TYPE_F32, 2, ne, zeros, &err) >= 0);
    assert_int_equal(mf_gguf_w_write(w, bad_im, NULL, NULL, &err), 0);
    mf_gguf_writer_free(w);
    assert_dir("im.gguf in.gguf q4.gguf");

    struct {
        const char *args[12];
        const char *msg;
    } cases[] = {
        {{"quantize", q4, out, "Q8_0"}, "is stored as Q4_0, which minfer cannot quantize further"},
        {{"quantize", src, out, "Q7_0"}, "unknown target type 'Q7_0'"},
        {{"quantize", src, out, "Q4_0", "--tensor-type", "(attn=Q8_0"}, "bad pattern '(attn'"},
        {{"quantize", src, out, "Q4_0", "--tensor-type", "attn_v=Q9"}, "unknown type 'Q9'"},
        {{"quantize", src, out, "Q4_0", "--tensor-type", "attn_v=Q4_K_M"}, "unknown type 'Q4_K_M'"},
        {{"quantize", src, out, "Q4_0", "--tensor-type", "attn_v"}, "expected PATTERN=TYPE"},
        {{"quantize", src, out, "Q4_0", "--tensor-type", "norm=Q8_0"}, "matches no weight matrix"},
        {{"quantize", src, out, "MXFP4"}, "MXFP4 is for expert tensors"},
        {{"quantize", src, out, "Q4_0", "--imatrix", bad_im}, "entry 'blk.0.attn_q.weight' has shape [10, 1]"},
        {{"quantize", src, out, "Q4_0", "--imatrix", src}, "not a minfer imatrix file"},
        {{"quantize", src, missing, "Q4_0"}, "no-such-folder/out.gguf: cannot create: No such file or directory"},
        {{"quantize", src, src, "Q4_0"}, "is the input file"},
        {{"quantize", src, out}, "need IN.gguf OUT.gguf TYPE"},
        {{"quantize", src, out, "Q4_0", "-t", "0"}, "bad value '0' for -t"},
        {{"imatrix", "-m", src, "-f", MF_SOURCE_DIR "/tests/data/stories.txt", "-o", missing, "-c", "64", "--chunks",
          "1"},
         "no-such-folder/out.gguf: cannot create"},
        {{"imatrix", "-m", src, "-f", missing, "-o", out}, "cannot read"},
        {{"imatrix", "-m", src, "-f", MF_SOURCE_DIR "/tests/data/stories.txt", "-o", src}, "would replace an input"},
        {{"imatrix", "-m", src, "-f", MF_SOURCE_DIR "/tests/data/stories.txt", "-o", out, "-c", "100000"},
         "fewer than one chunk of 100000"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        p = mf_run_tool("minfer", cases[i].args);
        if (p.rc == 0 || !strstr(p.err, cases[i].msg)) fail_msg("case %zu: rc %d, stderr: %s", i, p.rc, p.err);
        mf_proc_free(&p);
        assert_dir("im.gguf in.gguf q4.gguf");
    }
    /* a full disk: a 64 KB file-size limit, the output needs ~330 KB */
    const char *full[] = {"quantize", src, out, "Q8_0", NULL};
    p = mf_run_tool_fsize("minfer", full, 64 << 10);
    if (p.rc != 1 || !strstr(p.err, "write failed: File too large") || !strstr(p.err, "nothing written to"))
        fail_msg("rc %d, stderr: %s", p.rc, p.err);
    mf_proc_free(&p);
    assert_dir("im.gguf in.gguf q4.gguf");
    /* a Q8_0 source is allowed, with a warning */
    const char *q8[] = {"quantize", q4, out, "Q4_0", NULL};
    p = mf_run_tool("minfer", q8);
    assert_int_equal(p.rc, 0); /* Q4_0 -> Q4_0: nothing to convert, copied */
    mf_proc_free(&p);
    unlink(out);
    const char *mk8[] = {"quantize", src, out, "Q8_0", NULL};
    p = mf_run_tool("minfer", mk8);
    mf_proc_free(&p);
    char out2[160];
    snprintf(out2, sizeof out2, "%s/out2.gguf", tmpdir_path);
    const char *from8[] = {"quantize", out, out2, "Q4_0", NULL};
    p = mf_run_tool("minfer", from8);
    assert_int_equal(p.rc, 0);
    assert_non_null(strstr(p.err, "warning: some source tensors are Q8_0"));
    mf_proc_free(&p);
    /* the input never changed */
    uint8_t *now = mf_read_file(src, &len1);
    assert_true(len0 == len1 && memcmp(orig, now, len0) == 0);
    free(now);
    free(orig);
    unlink(out2), unlink(out), unlink(src), unlink(q4), unlink(bad_im);
    rmdir(tmpdir_path);
}

/* Ctrl-C during `minfer quantize`: the process is signalled once its first tensor is
 * written (its progress line says so); it must stop with the writer's "interrupted" error,
 * leave no temporary file and no output, and the input untouched. */
static void interrupted(void **state)
{
    (void)state;
    char dir[] = "/tmp/mf-quant-int-XXXXXX", src[64], out[64], ls[256];
    assert_non_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/in.gguf", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    /* 6 layers of 512 x 1536 F32 matrices: 43 tensors, long enough to be caught mid-way */
    const char *mk[] = {"-o",         src, "--layers", "6",    "--dim",   "512", "--heads", "8",
                        "--kv-heads", "8", "--ff",     "1536", "--vocab", "512", NULL};
    mf_proc p = mf_run_tool("mkmodel", mk);
    if (p.rc) fail_msg("mkmodel: %s", p.err);
    mf_proc_free(&p);
    size_t len0, len1;
    uint8_t *orig = mf_read_file(src, &len0);

    int errp[2];
    assert_int_equal(pipe(errp), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(errp[1], 2);
        close(errp[0]);
        close(errp[1]);
        execl(mf_tool_path("minfer"), "minfer", "quantize", src, out, "Q4_K", "--report", "-t", "1", (char *)NULL);
        _exit(127);
    }
    close(errp[1]);
    char err[8192];
    size_t n = 0;
    int signalled = 0;
    for (;;) {
        ssize_t r = read(errp[0], err + n, sizeof err - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        err[n] = 0;
        if (!signalled && strstr(err, "[1/")) {
            kill(pid, SIGINT);
            signalled = 1;
        }
        if (n == sizeof err - 1) break;
    }
    close(errp[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!signalled) fail_msg("no progress line seen: %s", err);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 1 || !strstr(err, "interrupted before tensor") ||
        !strstr(err, "nothing written to"))
        fail_msg("status %d, stderr: %s", st, err);
    mf_list_dir(dir, ls, sizeof ls);
    assert_string_equal(ls, "in.gguf");
    uint8_t *now = mf_read_file(src, &len1);
    assert_true(len0 == len1 && memcmp(orig, now, len0) == 0);
    free(now);
    free(orig);
    unlink(src);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_blocks),
        cmocka_unit_test(importance_weights),
        cmocka_unit_test(every_target),
        cmocka_unit_test(recipes),
        cmocka_unit_test(fallbacks),
        cmocka_unit_test(gpt_oss_mxfp4),
        cmocka_unit_test(logits_match_reference_py),
        cmocka_unit_test(imatrix_matches_reference),
        cmocka_unit_test(hostile),
        cmocka_unit_test(interrupted),
    };
    int rc = MF_RUN("quantize", tests);
    unlink(mf_tmp_path("tiny8.gguf"));
    return rc;
}
