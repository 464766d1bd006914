/* test_step_hook.c — the step protocol of forward.c against a backend that captures and
 * replays decode steps the way the CUDA backend does with graphs (backend.h: step_begin
 * returns 1 and the forward pass issues nothing). The backend here is a recording stand-in:
 * it counts the operations it is given and the steps it replays, so the protocol is tested
 * on a machine without a GPU.
 *   - a layer hook (mf_session_set_hook, used by `minfer check`) sees the embedding and every
 *     layer of every step, decode steps included: with a hook set, steps run eagerly
 *     (step_begin's eager = 1) instead of being replayed, where the hook would be skipped;
 *   - without a hook, decode steps after the first are replayed (nothing issued), prompts
 *     never are — the graph path is not switched off for everyone;
 *   - a hook whose copy of the hidden state fails makes the step fail with the reason
 *     (it used to be dropped silently);
 *   - several sequences: a decode step of n rows (one per sequence, every row's logits) is
 *     captured once per n and replayed for any sequences and positions; a step with two rows
 *     of one sequence, or rows without logits, never is. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "session.h"

#define LAYERS 3
#define D 4

#define N_SEQ 3

typedef struct recorder {
    int captured; /* a decode step of one row has been "captured" (bit n−1: of n rows) */
    int replays;  /* decode steps replayed (nothing issued) */
    int ops;      /* operations issued */
    int eager;    /* steps begun with eager = 1 */
    int fail_read;
} recorder;

static recorder *rec(mf_backend *be) { return (recorder *)be->impl; }

static int rec_step_begin(mf_backend *be, mf_bstate *st, const mf_step *s, int eager)
{
    (void)st;
    recorder *r = rec(be);
    r->eager += eager;
    if (!mf_step_is_decode(s, N_SEQ) || eager) return 0;
    if (r->captured & 1 << (s->n - 1)) {
        r->replays++;
        return 1;
    }
    r->captured |= 1 << (s->n - 1);
    return 0;
}
static int rec_step_end(mf_backend *be, mf_bstate *st, mf_err *err)
{
    (void)be, (void)st, (void)err;
    return 0;
}
static int rec_read(mf_backend *be, const float *buf, size_t n, float *host, mf_err *err)
{
    (void)buf;
    if (rec(be)->fail_read) return mf_errf(err, "read() during a graph capture");
    for (size_t i = 0; i < n; i++) host[i] = (float)rec(be)->ops; /* ops issued so far */
    return 0;
}
static void rec_embed(mf_backend *be, mf_bstate *st, const mf_weight *emb, float *x)
{
    (void)st, (void)emb, (void)x;
    rec(be)->ops++;
}
static void rec_rmsnorm(mf_backend *be, mf_bstate *st, const float *x, const mf_weight *g, float eps, float *out,
                        int rows)
{
    (void)st, (void)x, (void)g, (void)eps, (void)out, (void)rows;
    rec(be)->ops++;
}
static void rec_matmul(mf_backend *be, mf_bstate *st, const mf_weight *W, const mf_weight *b, const float *in,
                       float *out, int rows, int accumulate)
{
    (void)st, (void)W, (void)b, (void)in, (void)out, (void)rows, (void)accumulate;
    rec(be)->ops++;
}
static void rec_qkv(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const mf_weight *const b[3],
                    const float *h, float *q, float *k, float *v)
{
    (void)st, (void)W, (void)b, (void)h, (void)q, (void)k, (void)v;
    rec(be)->ops++;
}
static void rec_rope_kv(mf_backend *be, mf_bstate *st, int l, float *q, const float *k, const float *v)
{
    (void)st, (void)l, (void)q, (void)k, (void)v;
    rec(be)->ops++;
}
static void rec_attention(mf_backend *be, mf_bstate *st, int l, const mf_weight *sinks, const float *q, float *out)
{
    (void)st, (void)l, (void)sinks, (void)q, (void)out;
    rec(be)->ops++;
}
static void rec_ffn(mf_backend *be, mf_bstate *st, const mf_weight *const W[3], const float *h, float *x)
{
    (void)st, (void)W, (void)h, (void)x;
    rec(be)->ops++;
}
static void rec_moe(mf_backend *be, mf_bstate *st, const mf_weight *router, const mf_weight *router_b,
                    const mf_weight *const W[3], const mf_weight *const b[3], const float *h, float *x)
{
    (void)st, (void)router, (void)router_b, (void)W, (void)b, (void)h, (void)x;
    rec(be)->ops++;
}

typedef struct fixture {
    recorder r;
    mf_backend be;
    mf_layer layers[LAYERS];
    mf_model m;
    float buf[16][D];
    mf_session s;
} fixture;

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->be.name = "recorder";
    f->be.impl = &f->r;
    f->be.step_begin = rec_step_begin;
    f->be.step_end = rec_step_end;
    f->be.read = rec_read;
    f->be.embed = rec_embed;
    f->be.rmsnorm = rec_rmsnorm;
    f->be.matmul = rec_matmul;
    f->be.qkv = rec_qkv;
    f->be.rope_kv = rec_rope_kv;
    f->be.attention = rec_attention;
    f->be.ffn = rec_ffn;
    f->be.moe = rec_moe;
    f->m.hp.n_layers = LAYERS;
    f->m.hp.n_embd = D;
    f->m.layers = f->layers;
    f->s.m = &f->m;
    f->s.be = &f->be;
    f->s.max_batch = 4;
    f->s.buf.x = f->buf[0];
    f->s.buf.h = f->buf[4];
    f->s.buf.q = f->s.buf.k = f->s.buf.v = f->s.buf.attn_out = f->buf[8];
    f->s.buf.logits = f->buf[12];
}

typedef struct seen {
    int calls[LAYERS + 1]; /* per layer + 1 (the embedding is layer -1) */
    float last_ops;        /* what the read reported at the last call */
    int order_ok;
} seen;

static void hook(void *user, int layer, const float *x, int rows, int width)
{
    seen *v = user;
    assert_true(layer >= -1 && layer < LAYERS);
    assert_int_equal(width, D);
    assert_true(rows >= 1);
    v->calls[layer + 1]++;
    v->order_ok &= x[0] > v->last_ops || layer == -1; /* called after more ops were issued */
    v->last_ops = x[0];
}

/* a step of n rows: row r is a token of sequence seq[r] at position pos[r]; logits of the
 * rows out[0 .. n_out) (the hook as currently set) */
static int step_rows(fixture *f, int n, const int32_t *seq, const int32_t *pos, const int32_t *out, int n_out,
                     mf_err *err)
{
    int32_t tokens[4] = {1, 2, 3, 4};
    mf_step s = {.n = n, .tokens = tokens, .seq = seq, .pos = pos, .n_out = n_out, .out = out};
    mf_forward fw = mf_session_forward(&f->s);
    return mf_forward_step(&fw, &s, err);
}

/* one step of sequence 0 as mf_session_eval makes it: logits of the last row */
static int step(fixture *f, const int32_t *tokens, int n, int pos0, mf_err *err)
{
    (void)tokens;
    int32_t seq[4] = {0}, pos[4], out = n - 1;
    for (int i = 0; i < n; i++) pos[i] = pos0 + i;
    return step_rows(f, n, seq, pos, &out, 1, err);
}

/* 2-token prompt, then 5 decode steps (the first would be captured, the others replayed) */
static int run_steps(fixture *f, mf_err *err)
{
    int32_t prompt[2] = {1, 2}, tok = 3;
    if (step(f, prompt, 2, 0, err)) return -1;
    for (int p = 2; p < 7; p++)
        if (step(f, &tok, 1, p, err)) return -1;
    return 0;
}

#define OPS_PER_STEP (1 + 7 * LAYERS + 2) /* embed, 7 per layer, final norm and output */

static void hook_sees_every_layer_of_every_step(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    seen v = {.order_ok = 1};
    mf_session_set_hook(&f.s, hook, &v);
    mf_err err;
    if (run_steps(&f, &err)) fail_msg("%s", err.msg);
    for (int l = 0; l <= LAYERS; l++)
        if (v.calls[l] != 6) fail_msg("layer %d: the hook was called %d times in 6 steps", l - 1, v.calls[l]);
    assert_true(v.order_ok);
    assert_int_equal(f.r.replays, 0);
    assert_int_equal(f.r.eager, 6);
    assert_int_equal(f.r.ops, 6 * OPS_PER_STEP);
    free(f.s.hook_buf);
}

static void without_hook_decode_is_replayed(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    mf_err err;
    if (run_steps(&f, &err)) fail_msg("%s", err.msg);
    assert_int_equal(f.r.eager, 0);
    assert_int_equal(f.r.replays, 4);            /* decode steps 2 … 5 */
    assert_int_equal(f.r.ops, 2 * OPS_PER_STEP); /* the prompt and the captured step */
    /* the hook set later switches replay off from the next step on, and off again later */
    seen v = {.order_ok = 1};
    mf_session_set_hook(&f.s, hook, &v);
    int32_t tok = 4;
    if (step(&f, &tok, 1, 7, &err)) fail_msg("%s", err.msg);
    assert_int_equal(v.calls[LAYERS], 1);
    mf_session_set_hook(&f.s, NULL, NULL);
    if (step(&f, &tok, 1, 8, &err)) fail_msg("%s", err.msg);
    assert_int_equal(f.r.replays, 5);
    free(f.s.hook_buf);
}

static void decode_of_several_sequences_replayed_per_row_count(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    mf_err err;
    int32_t all[3] = {0, 1, 2};
    /* decode steps of 2 rows (sequences 0 and 2, then 1 and 0: any pair), then of 3 */
    int32_t s02[2] = {0, 2}, s10[2] = {1, 0}, p2[2] = {5, 9}, p3[3] = {6, 10, 3};
    if (step_rows(&f, 2, s02, p2, all, 2, &err) || step_rows(&f, 2, s10, p2, all, 2, &err) ||
        step_rows(&f, 3, all, p3, all, 3, &err) || step_rows(&f, 3, all, p3, all, 3, &err) ||
        step_rows(&f, 2, s02, p3, all, 2, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(f.r.replays, 3);            /* the second of 2 rows, the second of 3, the third of 2 */
    assert_int_equal(f.r.ops, 2 * OPS_PER_STEP); /* the two captures */
    /* never captured: two rows of one sequence (a prompt chunk beside a decode row), a row
     * without logits, more rows than sequences */
    int32_t s001[3] = {0, 0, 1}, p001[3] = {0, 1, 7}, last2[2] = {1, 2}, s0122[4] = {0, 1, 2, 2}, p4[4] = {1, 1, 1, 2};
    int32_t four[4] = {0, 1, 2, 3};
    if (step_rows(&f, 3, s001, p001, last2, 2, &err) || step_rows(&f, 3, all, p3, all, 2, &err) ||
        step_rows(&f, 4, s0122, p4, four, 4, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(f.r.replays, 3);
    assert_int_equal(f.r.ops, 5 * OPS_PER_STEP);
}

static void failed_hook_copy_fails_the_step(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.r.fail_read = 1;
    seen v = {.order_ok = 1};
    mf_session_set_hook(&f.s, hook, &v);
    mf_err err;
    int32_t tok = 3;
    assert_int_equal(step(&f, &tok, 1, 0, &err), -1);
    assert_non_null(strstr(err.msg, "layer hook"));
    assert_non_null(strstr(err.msg, "graph capture"));
    assert_int_equal(v.calls[0], 0);
    free(f.s.hook_buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hook_sees_every_layer_of_every_step),
        cmocka_unit_test(without_hook_decode_is_replayed),
        cmocka_unit_test(decode_of_several_sequences_replayed_per_row_count),
        cmocka_unit_test(failed_hook_copy_fails_the_step),
    };
    return MF_RUN("step_hook", tests);
}
