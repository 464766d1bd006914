/* test_gptoss_ops.c — the gpt-oss specific pieces of the CPU backend, one at a time, on a
 * model built in memory so every weight is chosen by the test:
 *   - YaRN frequencies and mscale against docs/moe.md §4 (values and formula)
 *   - attention sinks (a sink that dominates; a sink that ties with the keys)
 *   - the sliding window boundary (key at distance W - 1 seen, at distance W not) and the
 *     ring buffer of the window cache across many decode steps
 *   - the router: top-k by value, ties to the lower expert, softmax over the k only
 *   - the clamped SwiGLU at its limits
 *   - only the selected experts' bytes are read (the others are NaN)
 * Each expected value is computed in the test from the formula (docs/moe.md) with plain loops.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "harness.h"
#include "rope.h"
#include "types.h"

/* ---------------------------------------------------------------- YaRN */

static void yarn_frequencies(void **state)
{
    (void)state;
    mf_hparams hp = {0};
    hp.n_rot = 64;
    hp.rope_freq_scale = 1.0f / 32;
    hp.rope_yarn = 1;
    hp.n_ctx_orig = 4096;
    hp.yarn_beta_fast = 32;
    hp.yarn_beta_slow = 1;
    hp.yarn_attn_factor = 1;
    float f[32];
    float ms = mf_rope_freqs(&hp, 150000.0f, f);
    /* mscale = 1 + 0.1 ln 32 (docs/moe.md §4) */
    assert_true(fabsf(ms - 1.3465736f) < 1e-6f);
    /* llama.cpp's frequencies (docs/moe.md §4; it accumulates powers in float, we compute them in
     * double: relative agreement 1e-5) */
    const int idx[] = {0, 1, 4, 8, 9, 10, 12, 14, 16, 17, 18, 20, 24, 28, 31};
    const double want[] = {1.0,         6.890443e-1, 2.254180e-1, 5.081327e-2, 3.162075e-2,
                           1.945097e-2, 7.015714e-3, 2.277272e-3, 5.809475e-4, 2.279478e-4,
                           3.830881e-5, 1.818834e-5, 4.099978e-6, 9.242090e-7, 3.023511e-7};
    for (size_t k = 0; k < sizeof idx / sizeof *idx; k++) assert_true(fabs(f[idx[k]] - want[k]) <= 1e-5 * want[k]);
    /* and the formula itself: low = floor(corr(32)) = 8, high = ceil(corr(1)) = 18 */
    double lo = floor(64 * log(4096 / (2 * M_PI * 32)) / (2 * log(150000.0)));
    double hi = ceil(64 * log(4096 / (2 * M_PI * 1)) / (2 * log(150000.0)));
    assert_true(lo == 8 && hi == 18);
    for (int i = 0; i < 32; i++) {
        double w = pow(150000.0, -2.0 * i / 64), ramp = 1 - fmin(1, fmax(0, (i - lo) / (hi - lo)));
        double e = w * ((1.0 / 32) * (1 - ramp) + ramp);
        assert_true(fabs(f[i] - e) <= 1e-6 * e);
    }
}

/* ---------------------------------------------------------------- a model in memory */

enum { D = 32, H = 4, HKV = 2, HD = 8, E = 4, K = 2, F = 32, W = 4, NV = 8 };

typedef struct fake {
    mf_model m;
    mf_layer layer[2];
    float *freq[2];
    float sinks[H], anorm[D], fnorm[D], onorm[D];
    float *wq, *wk, *wv, *wo, *router, *rbias, *gate, *up, *down, *gb, *ub, *db, *emb;
} fake;

static void wt(mf_weight *w, const char *name, float *data, int64_t e0, int64_t e1, int64_t e2)
{
    memset(w, 0, sizeof *w);
    w->name = name;
    w->type = MF_TYPE_F32;
    w->ne[0] = e0;
    w->ne[1] = e1;
    w->ne[2] = e2;
    w->ne[3] = 1;
    w->row_bytes = (size_t)e0 * 4;
    w->nbytes = (size_t)(e0 * e1 * e2) * 4;
    w->data = data;
}

static float *filled(size_t n, float v)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = v;
    return p;
}

/* identity-like projections so that q, k, v are the input itself: layer 0 slides, layer 1
 * does not (pattern 2) */
static fake *make_fake(void)
{
    fake *f = calloc(1, sizeof *f);
    mf_hparams *hp = &f->m.hp;
    hp->arch = MF_ARCH_GPT_OSS;
    hp->n_ctx_train = 64;
    hp->n_embd = D;
    hp->n_layers = 2;
    hp->n_heads = H;
    hp->n_kv_heads = HKV;
    hp->head_dim = HD;
    hp->n_vocab = NV;
    hp->eps = 1e-5f;
    hp->rope_neox = 1;
    hp->n_rot = HD;
    hp->rope_base = 10000;
    hp->rope_freq_scale = 1;
    hp->window = W;
    hp->swa_pattern = 2;
    hp->has_sinks = 1;
    hp->attn_scale = 1.0f / sqrtf(HD);
    hp->n_experts = E;
    hp->n_experts_used = K;
    hp->n_ff_exp = F;
    hp->swiglu_limit = 7.0f;
    hp->swiglu_alpha = 1.702f;
    f->m.layers = f->layer;
    f->m.rope_freq = f->freq;
    f->m.rope_mscale = 1;
    for (int l = 0; l < 2; l++) {
        f->freq[l] = calloc(HD / 2, sizeof(float)); /* zero frequency: RoPE is the identity */
        f->layer[l].sliding = l == 0;
        wt(&f->layer[l].sinks, "sinks", f->sinks, H, 1, 1);
    }
    f->emb = filled((size_t)D * NV, 0.1f);
    wt(&f->m.tok_embd, "emb", f->emb, D, NV, 1);
    return f;
}

static void free_fake(fake *f)
{
    for (int l = 0; l < 2; l++) free(f->freq[l]);
    float *p[] = {f->wq, f->wk,   f->wv, f->wo, f->router, f->rbias, f->gate,
                  f->up, f->down, f->gb, f->ub, f->db,     f->emb};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) free(p[i]);
    free(f);
}

typedef struct rig {
    mf_backend *be;
    mf_bmodel *bm;
    mf_bstate *st;
} rig;

static rig open_rig(fake *f, int n_ctx, int max_batch)
{
    mf_err err;
    rig r;
    r.be = mf_backend_cpu_new(2, &err);
    assert_non_null(r.be);
    mf_state_opts o = {.n_ctx = n_ctx, .max_batch = max_batch};
    r.bm = r.be->prepare(r.be, &f->m, NULL, NULL, &err);
    if (!r.bm) fail_msg("%s", err.msg);
    r.st = r.be->state_new(r.be, r.bm, &o, &err);
    if (!r.st) fail_msg("%s", err.msg);
    return r;
}

/* a step of one token of sequence 0 at position p */
static void begin1(rig *r, int32_t tok, int32_t p)
{
    int32_t seq = 0, out = 0;
    mf_step s = {.n = 1, .tokens = &tok, .seq = &seq, .pos = &p, .n_out = 1, .out = &out};
    r->be->step_begin(r->be, r->st, &s, 0);
}

static void close_rig(rig *r)
{
    r->be->state_free(r->be, r->st);
    r->be->unprepare(r->be, r->bm);
    r->be->free(r->be);
}

/* ---------------------------------------------------------------- attention */

/* Feed keys/values with chosen contents one decode step at a time and return the attention
 * output of the last step for head `head`. key t has k = kval(t) in every dim, v = vval(t). */
static void attend(fake *f, rig *r, int layer, int n_steps, float (*kval)(int), float (*vval)(int), const float *qhead,
                   float *out_all)
{
    float q[H * HD], k[HKV * HD], v[HKV * HD];
    int32_t tok = 0;
    for (int p = 0; p < n_steps; p++) {
        for (int i = 0; i < H * HD; i++) q[i] = qhead[i % HD];
        for (int i = 0; i < HKV * HD; i++) k[i] = kval(p), v[i] = vval(p);
        begin1(r, tok, p);
        r->be->rope_kv(r->be, r->st, layer, q, k, v);
        r->be->attention(r->be, r->st, layer, &f->m.layers[layer].sinks, q, out_all);
    }
}

static float k_zero(int t)
{
    (void)t;
    return 0.0f;
}
static float v_pos(int t) { return (float)t; }
static float v_marked(int t) { return t == 0 ? 1000.0f : 1.0f; }

static void sink_dominates_and_ties(void **state)
{
    (void)state;
    fake *f = make_fake();
    float q[HD] = {0}, out[H * HD];
    /* all scores are 0 (k = 0), so with n keys: w_t = 1 / (n + e^S) */
    for (int h = 0; h < H; h++) f->sinks[h] = 30.0f; /* e^30 swamps the 3 keys */
    rig r = open_rig(f, 16, 1);
    attend(f, &r, 1, 3, k_zero, v_pos, q, out);
    for (int i = 0; i < H * HD; i++) assert_true(fabsf(out[i]) < 1e-11f);
    close_rig(&r);

    for (int h = 0; h < H; h++) f->sinks[h] = 0.0f; /* a sink equal to the keys: 4 equal shares */
    r = open_rig(f, 16, 1);
    attend(f, &r, 1, 3, k_zero, v_pos, q, out);
    /* o = (0 + 1 + 2) / (3 + 1) */
    for (int i = 0; i < H * HD; i++) assert_true(fabsf(out[i] - 0.75f) < 1e-6f);
    close_rig(&r);
    free_fake(f);
}

static void window_boundary_and_ring(void **state)
{
    (void)state;
    fake *f = make_fake();
    for (int h = 0; h < H; h++) f->sinks[h] = -INFINITY; /* no sink: plain softmax */
    float q[HD] = {0}, out[H * HD];
    /* query at p = W - 1: the key at distance W - 1 (t = 0, v = 1000) is still visible */
    rig r = open_rig(f, 64, 1);
    attend(f, &r, 0, W, k_zero, v_marked, q, out);
    assert_true(fabsf(out[0] - (1000.0f + (W - 1)) / W) < 1e-3f);
    close_rig(&r);
    /* query at p = W: t = 0 is at distance W and must be excluded (sliding layer 0)... */
    r = open_rig(f, 64, 1);
    attend(f, &r, 0, W + 1, k_zero, v_marked, q, out);
    assert_true(fabsf(out[0] - 1.0f) < 1e-6f);
    close_rig(&r);
    /* ...but not on the full-attention layer 1 */
    r = open_rig(f, 64, 1);
    attend(f, &r, 1, W + 1, k_zero, v_marked, q, out);
    assert_true(fabsf(out[0] - (1000.0f + W) / (W + 1)) < 1e-3f);
    close_rig(&r);
    /* the sliding layer's cache is a ring of W slots (max_batch 1): after 37 steps it holds
     * positions 33..36 and the output is their mean */
    r = open_rig(f, 64, 1);
    attend(f, &r, 0, 37, k_zero, v_pos, q, out);
    assert_true(fabsf(out[0] - (33 + 34 + 35 + 36) / 4.0f) < 1e-4f);
    close_rig(&r);
    free_fake(f);
}

/* ---------------------------------------------------------------- MoE */

/* experts: gate/up/down of expert e are scaled identities-ish chosen per test; router rows */
static void set_experts(fake *f, float gate_v, float up_v, int poison_unselected, const int *selected, int n_sel)
{
    mf_layer *L = &f->layer[0];
    f->router = filled((size_t)D * E, 0.0f);
    f->rbias = filled(E, 0.0f);
    f->gate = filled((size_t)D * F * E, 0.0f);
    f->up = filled((size_t)D * F * E, 0.0f);
    f->down = filled((size_t)F * D * E, 0.0f);
    f->gb = filled((size_t)F * E, 0.0f);
    f->ub = filled((size_t)F * E, 0.0f);
    f->db = filled((size_t)D * E, 0.0f);
    for (int e = 0; e < E; e++) {
        /* expert e: gate/up rows are constant biases (gate_v, up_v), down maps F -> D as
         * (e + 1) / F times the mean, plus a bias of e: y_e = (e + 1)·a + e per dim */
        for (int i = 0; i < F; i++) f->gb[e * F + i] = gate_v, f->ub[e * F + i] = up_v;
        for (int o = 0; o < D; o++) {
            for (int i = 0; i < F; i++) f->down[((size_t)e * D + o) * F + i] = (float)(e + 1) / F;
            f->db[e * D + o] = (float)e;
        }
    }
    if (poison_unselected)
        for (int e = 0; e < E; e++) {
            int sel = 0;
            for (int s = 0; s < n_sel; s++) sel |= selected[s] == e;
            if (sel) continue;
            for (size_t i = 0; i < (size_t)D * F; i++) {
                f->gate[(size_t)e * D * F + i] = NAN;
                f->up[(size_t)e * D * F + i] = NAN;
                f->down[(size_t)e * D * F + i] = NAN;
            }
            for (int i = 0; i < F; i++) f->gb[e * F + i] = f->ub[e * F + i] = NAN;
            for (int o = 0; o < D; o++) f->db[e * D + o] = NAN;
        }
    wt(&L->router, "router", f->router, D, E, 1);
    wt(&L->router_b, "router_b", f->rbias, E, 1, 1);
    wt(&L->gate_exps, "gate", f->gate, D, F, E);
    wt(&L->up_exps, "up", f->up, D, F, E);
    wt(&L->down_exps, "down", f->down, F, D, E);
    wt(&L->gate_exps_b, "gb", f->gb, F, E, 1);
    wt(&L->up_exps_b, "ub", f->ub, F, E, 1);
    wt(&L->down_exps_b, "db", f->db, D, E, 1);
}

static float clamped_swiglu(float g, float u)
{
    float gc = fminf(g, 7.0f), uc = fmaxf(fminf(u, 7.0f), -7.0f);
    return gc / (1.0f + expf(-1.702f * gc)) * (uc + 1.0f);
}

/* run the moe op on one row h (with x = 0 before) */
static void run_moe(fake *f, const float *h, float *x)
{
    rig r = open_rig(f, 8, 1);
    int32_t tok = 0;
    for (int i = 0; i < D; i++) x[i] = 0;
    begin1(&r, tok, 0);
    const mf_layer *L = &f->m.layers[0];
    const mf_weight *w[3] = {&L->gate_exps, &L->up_exps, &L->down_exps};
    const mf_weight *b[3] = {&L->gate_exps_b, &L->up_exps_b, &L->down_exps_b};
    r.be->moe(r.be, r.st, &L->router, &L->router_b, w, b, h, x);
    close_rig(&r);
}

static void router_ties_and_softmax(void **state)
{
    (void)state;
    fake *f = make_fake();
    /* router logits via the bias: experts 1 and 2 tie at 2.0, expert 3 has 1.0, 0 has 0.5;
     * k = 2 takes 1 and 2 (a tie between the top two is harmless); then with 1 == 3 tied
     * for second place behind 2, the lower index (1) must win */
    int sel[2] = {1, 2};
    set_experts(f, 1.0f, 1.0f, 1, sel, 2);
    f->rbias[0] = 0.5f, f->rbias[1] = 2.0f, f->rbias[2] = 2.0f, f->rbias[3] = 1.0f;
    float h[D], x[D];
    for (int i = 0; i < D; i++) h[i] = 0.5f;
    run_moe(f, h, x);
    float a = clamped_swiglu(1.0f, 1.0f);
    /* equal logits -> weights 1/2 each: y = ((2a + 1) + (3a + 2)) / 2 */
    for (int i = 0; i < D; i++) assert_true(fabsf(x[i] - ((2 * a + 1) + (3 * a + 2)) / 2) < 1e-5f);
    free_fake(f);

    f = make_fake();
    int sel2[2] = {2, 1};
    set_experts(f, 1.0f, 1.0f, 1, sel2, 2);
    f->rbias[0] = 0.5f, f->rbias[1] = 1.0f, f->rbias[2] = 3.0f, f->rbias[3] = 1.0f;
    run_moe(f, h, x);
    /* softmax over the two selected logits only: w2 = e^3 / (e^3 + e^1), w1 = e^1 / (...) */
    double w2 = exp(3.0) / (exp(3.0) + exp(1.0)), w1 = 1 - w2;
    for (int i = 0; i < D; i++) assert_true(fabs(x[i] - (w2 * (3 * a + 2) + w1 * (2 * a + 1))) < 1e-5);
    free_fake(f);
}

static void clamp_limits(void **state)
{
    (void)state;
    const float cases[][2] = {{100.0f, -100.0f}, {100.0f, 100.0f}, {-3.0f, 6.9f}, {7.0f, -7.0f}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        fake *f = make_fake();
        int sel[2] = {0, 1};
        set_experts(f, cases[c][0], cases[c][1], 0, sel, 2);
        f->rbias[0] = 5.0f, f->rbias[1] = 5.0f; /* experts 0 and 1, weight 1/2 each */
        float h[D], x[D];
        for (int i = 0; i < D; i++) h[i] = 1.0f;
        run_moe(f, h, x);
        float a = clamped_swiglu(cases[c][0], cases[c][1]);
        /* gate 100 -> 7 (upper clamp only), up ±100 -> ±7, then the +1 */
        if (c == 0) assert_true(fabsf(a - 7.0f / (1.0f + expf(-1.702f * 7.0f)) * -6.0f) < 1e-4f);
        for (int i = 0; i < D; i++) assert_true(fabsf(x[i] - ((1 * a + 0) + (2 * a + 1)) / 2) < 1e-4f * (1 + fabsf(a)));
        free_fake(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(yarn_frequencies),
        cmocka_unit_test(sink_dominates_and_ties),
        cmocka_unit_test(window_boundary_and_ring),
        cmocka_unit_test(router_ties_and_softmax),
        cmocka_unit_test(clamp_limits),
    };
    return MF_RUN("gpt-oss ops", tests);
}
