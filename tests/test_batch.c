/* test_batch.c — several sequences in one forward step (minfer.h mf_session_step) and the
 * batcher over them (batch.h), on the CPU backend (docs/batching.md §5).
 *   - batch invariance: a sequence's logits, at every generated position, are bit-identical
 *     whether it runs alone (its prompt in steps of max_batch, then one token per step) or
 *     batched with others that join at other steps, its prompt cut into other chunks beside
 *     their decode rows and theirs beside its own — on stories260K and on mkmodel files of
 *     float, quantized and K-quant types and gpt-oss (sliding window, sinks, experts), where
 *     the prompt and decode kernels differ; and the same as a one-sequence session for the
 *     quantized files;
 *   - each per-row operation of the backend (RMSNorm, a product of every type, q/k/v, the
 *     dense FFN, the experts with their routing) gives a row the same bits alone as among
 *     other rows;
 *   - the batcher: every request's text and token count equal its solo run, greedy, with
 *     requests joining while others generate; prefix reuse (the second turn reads only its
 *     new tokens: the count is asserted, and so is the text against a run without reuse);
 *     the free sequence with the longest prefix is chosen; a sliding-window ring limits what
 *     may be kept (the rule, and a test that breaking it changes the logits); cancel frees a
 *     sequence at once (from outside and from a delta callback); the schedule (every
 *     generating sequence advances each step, prompts in chunks of prompt_chunk); the end of
 *     the context; bad input to submit and to mf_session_step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "memory.h"
#include "minfer.h"
#include "session.h"

/* ---------------------------------------------------------------- models */

static mf_model *load_path(const char *path)
{
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s: %s", path, err.msg);
    return m;
}

/* an mkmodel file of this file's defaults and `extra`, loaded */
static mf_model *make_model(const char *name, const char *const *extra)
{
    const char *args[29] = {"--threads", "1", "--seed", "11"};
    int n = 4;
    for (int i = 0; extra[i]; i++) args[n++] = extra[i];
    args[n] = NULL;
    return mf_mkmodel_load(name, args);
}

static mf_session *open_session(mf_model *m, int n_seq, int n_ctx, int max_batch, int threads)
{
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_threads = threads;
    o.n_ctx = n_ctx;
    o.max_batch = max_batch;
    o.n_seq = n_seq;
    o.kv_f16 = 0;
    mf_err err;
    mf_session *s = mf_session_new(m, &o, &err);
    if (!s) fail_msg("%s", err.msg);
    return s;
}

static void fill(int32_t *t, int n, int V, uint64_t seed)
{
    mf_rng r = {seed * 0x9E3779B97F4A7C15ull + 1};
    for (int i = 0; i < n; i++) t[i] = (int32_t)(mf_rng_u64(&r) % (uint64_t)V);
}

/* ---------------------------------------------------------------- batch invariance */

#define NS 4  /* sequences */
#define GEN 8 /* tokens each generates */

typedef struct plan {
    int32_t prompt[NS][48];
    int n_prompt[NS];
    int join[NS]; /* the batched run's step at which the sequence starts */
} plan;

/* logits[s][g] (V floats): sequence s's logits before its g-th generated token */
typedef struct trace {
    float *lg[NS][GEN];
    int32_t tok[NS][GEN];
} trace;

static void trace_free(trace *t)
{
    for (int s = 0; s < NS; s++)
        for (int g = 0; g < GEN; g++) free(t->lg[s][g]);
}

/* the logits of sequence q's last step into t (g-th), and its greedy token */
static int32_t take(mf_session *ss, int q, trace *t, int g)
{
    mf_err err;
    int V = ss->m->hp.n_vocab;
    float *lg = mf_session_seq_logits(ss, q, &err);
    if (!lg) fail_msg("%s", err.msg);
    t->lg[q][g] = malloc(sizeof(float) * (size_t)V);
    memcpy(t->lg[q][g], lg, sizeof(float) * (size_t)V);
    int32_t tok = mf_session_seq_argmax(ss, q);
    if (tok < 0) fail_msg("sequence %d: argmax %d", q, tok);
    t->tok[q][g] = tok;
    return tok;
}

/* Sequence q alone in session ss: its prompt in steps of max_batch, then one token a step. */
static void run_alone(mf_session *ss, const plan *p, int q, trace *t)
{
    mf_err err;
    int B = mf_session_max_batch(ss);
    for (int done = 0; done < p->n_prompt[q];) {
        int c = p->n_prompt[q] - done < B ? p->n_prompt[q] - done : B;
        mf_seq_chunk ch = {q, p->prompt[q] + done, c, done + c == p->n_prompt[q]};
        if (mf_session_step(ss, &ch, 1, &err)) fail_msg("%s", err.msg);
        done += c;
    }
    for (int g = 0; g < GEN; g++) {
        int32_t tok = take(ss, q, t, g);
        if (g + 1 == GEN) break;
        mf_seq_chunk ch = {q, &t->tok[q][g], 1, 1};
        (void)tok;
        if (mf_session_step(ss, &ch, 1, &err)) fail_msg("%s", err.msg);
    }
}

/* All sequences together: sequence q joins at step join[q]; each step carries the decode
 * row of every generating sequence and a chunk of `chunk` prompt tokens of every reading one
 * (so prompts are cut otherwise than alone). */
static void run_batched(mf_session *ss, const plan *p, int chunk, trace *t)
{
    mf_err err;
    int fed[NS] = {0}, gen[NS] = {0};
    for (int step = 0;; step++) {
        mf_seq_chunk ch[NS];
        int n = 0, busy = 0;
        for (int q = 0; q < NS; q++) {
            if (step < p->join[q] || gen[q] == GEN) {
                busy |= gen[q] < GEN;
                continue;
            }
            busy = 1;
            if (fed[q] < p->n_prompt[q]) {
                int c = p->n_prompt[q] - fed[q] < chunk ? p->n_prompt[q] - fed[q] : chunk;
                ch[n++] = (mf_seq_chunk){q, p->prompt[q] + fed[q], c, fed[q] + c == p->n_prompt[q]};
                fed[q] += c;
            } else {
                ch[n++] = (mf_seq_chunk){q, &t->tok[q][gen[q] - 1], 1, 1};
            }
        }
        if (!busy) break;
        if (n == 0) continue;
        if (mf_session_step(ss, ch, n, &err)) fail_msg("%s", err.msg);
        for (int i = 0; i < n; i++) {
            int q = ch[i].seq;
            if (!ch[i].logits) continue;
            take(ss, q, t, gen[q]);
            gen[q]++;
        }
    }
}

static void expect_same(const trace *a, const trace *b, int V, const char *what, const char *model)
{
    for (int q = 0; q < NS; q++)
        for (int g = 0; g < GEN; g++)
            if (memcmp(a->lg[q][g], b->lg[q][g], sizeof(float) * (size_t)V) != 0) {
                int i = 0;
                while (a->lg[q][g][i] == b->lg[q][g][i]) i++;
                fail_msg("%s, %s: sequence %d, generated token %d: logit %d is %.9g alone and %.9g %s", model, what, q,
                         g, i, a->lg[q][g][i], b->lg[q][g][i], what);
            }
}

static void invariance_on(mf_model *m, const char *name, int compare_single)
{
    int V = m->hp.n_vocab;
    plan p = {.n_prompt = {21, 7, 40, 3}, .join = {0, 2, 3, 9}};
    for (int q = 0; q < NS; q++) fill(p.prompt[q], p.n_prompt[q], V, 100 + (uint64_t)q);
    trace alone = {0}, batched = {0}, single = {0};
    /* alone: each in a fresh session of NS sequences, in its own sequence */
    for (int q = 0; q < NS; q++) {
        mf_session *ss = open_session(m, NS, 96, 16, 2);
        run_alone(ss, &p, q, &alone);
        mf_session_free(ss);
    }
    mf_session *ss = open_session(m, NS, 96, 16, 2);
    run_batched(ss, &p, 5, &batched);
    mf_session_free(ss);
    expect_same(&alone, &batched, V, "batched", name);
    /* and in a one-sequence session (the float-weight products of a one-sequence prompt may
     * take OpenBLAS where it has vector kernels: compared for quantized files only) */
    if (compare_single) {
        for (int q = 0; q < NS; q++) {
            mf_session *s1 = open_session(m, 1, 96, 16, 2);
            plan p1 = p;
            memcpy(p1.prompt[0], p.prompt[q], sizeof p.prompt[q]);
            p1.n_prompt[0] = p.n_prompt[q];
            trace t1 = {0};
            run_alone(s1, &p1, 0, &t1);
            for (int g = 0; g < GEN; g++) {
                single.lg[q][g] = t1.lg[0][g];
                single.tok[q][g] = t1.tok[0][g];
            }
            mf_session_free(s1);
        }
        expect_same(&alone, &single, V, "in a one-sequence session", name);
    }
    print_message("%-22s %d sequences x %d tokens: logits bit-identical alone and batched%s\n", name, NS, GEN,
                  compare_single ? " (and in a one-sequence session)" : "");
    trace_free(&alone);
    trace_free(&batched);
    trace_free(&single);
}

static void logits_alone_equal_batched(void **state)
{
    (void)state;
    static const char *types[] = {"F32", "F16", "Q4_0", "Q8_0", "Q4_K", "Q6_K"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        const char *args[] = {"--arch", "llama", "--type", types[i], NULL};
        mf_model *m = make_model("inv-llama.gguf", args);
        char name[64];
        snprintf(name, sizeof name, "llama tiny %s", types[i]);
        invariance_on(m, name, i >= 2);
        mf_model_free(m);
    }
    /* gpt-oss: float weights everywhere (the experts' grouped products in float too), and
     * the preset's Q8_0 with MXFP4 experts */
    const char *oss32[] = {"--arch",        "gpt-oss", "--type",        "F32", "--embd-type", "F32",
                           "--output-type", "F32",     "--expert-type", "F32", NULL};
    mf_model *m = make_model("inv-oss32.gguf", oss32);
    invariance_on(m, "gpt-oss tiny F32", 0);
    mf_model_free(m);
    const char *oss[] = {"--arch", "gpt-oss", NULL};
    m = make_model("inv-oss.gguf", oss);
    invariance_on(m, "gpt-oss tiny", 1);
    mf_model_free(m);
    const char *path = mf_model_path("stories260K.gguf");
    if (access(path, R_OK) == 0) {
        m = load_path(path);
        invariance_on(m, "stories260K", 0);
        mf_model_free(m);
    }
}

/* ---------------------------------------------------------------- per-row ops */

/* op(rows r0 .. r0 + n) of the backend on the step set up in st; the row's output is
 * compared between a run of all rows and runs of one row each */
typedef void (*row_op)(mf_backend *be, mf_bstate *st, const mf_model *m, const float *in, float *out, int rows);

static void op_rmsnorm(mf_backend *be, mf_bstate *st, const mf_model *m, const float *in, float *out, int rows)
{
    be->rmsnorm(be, st, in, &m->layers[0].attn_norm, m->hp.eps, out, rows);
}
static void op_wo(mf_backend *be, mf_bstate *st, const mf_model *m, const float *in, float *out, int rows)
{
    be->matmul(be, st, &m->layers[0].wo, &m->layers[0].bo, in, out, rows, 1);
}
static void op_output(mf_backend *be, mf_bstate *st, const mf_model *m, const float *in, float *out, int rows)
{
    be->matmul(be, st, &m->output, NULL, in, out, rows, 0);
}
static void op_q(mf_backend *be, mf_bstate *st, const mf_model *m, const float *in, float *out, int rows)
{
    (void)rows; /* qkv works on the step's rows */
    const mf_layer *L = &m->layers[0];
    const mf_weight *w[3] = {&L->wq, &L->wk, &L->wv}, *b[3] = {&L->bq, &L->bk, &L->bv};
    int qw = m->hp.n_heads * m->hp.head_dim, kw = m->hp.n_kv_heads * m->hp.head_dim, n = rows;
    be->qkv(be, st, w, b, in, out, out + (size_t)n * qw, out + (size_t)n * (qw + kw));
}
static void op_ffn(mf_backend *be, mf_bstate *st, const mf_model *m, const float *in, float *out, int rows)
{
    (void)rows;
    const mf_layer *L = &m->layers[1];
    if (m->hp.n_experts) {
        const mf_weight *w[3] = {&L->gate_exps, &L->up_exps, &L->down_exps};
        const mf_weight *b[3] = {&L->gate_exps_b, &L->up_exps_b, &L->down_exps_b};
        be->moe(be, st, &L->router, &L->router_b, w, b, in, out);
    } else {
        const mf_weight *w[3] = {&L->ffn_gate, &L->ffn_up, &L->ffn_down};
        be->ffn(be, st, w, in, out);
    }
}

/* begin a step of n rows on the state (one sequence each, positions 0) */
static void begin_rows(mf_backend *be, mf_bstate *st, int n)
{
    int32_t tok[8] = {0}, seq[8], pos[8] = {0}, out[8];
    for (int i = 0; i < n; i++) seq[i] = out[i] = i;
    mf_step s = {.n = n, .tokens = tok, .seq = seq, .pos = pos, .n_out = n, .out = out};
    be->step_begin(be, st, &s, 0);
}

static void ops_on(mf_model *m, const char *name)
{
    enum { N = 7 };
    mf_err err;
    mf_backend *be = mf_backend_cpu_new(2, &err);
    if (!be) fail_msg("%s", err.msg);
    mf_bmodel *bm = be->prepare(be, m, NULL, NULL, &err);
    mf_state_opts o = {.n_ctx = 16, .max_batch = 8, .n_seq = 8};
    mf_bstate *st = be->state_new(be, bm, &o, &err);
    if (!st) fail_msg("%s", err.msg);
    const mf_hparams *hp = &m->hp;
    int d = hp->n_embd, qw = hp->n_heads * hp->head_dim, kw = hp->n_kv_heads * hp->head_dim;
    /* outputs: the widest is the logits, or q, k, v side by side */
    size_t wide = (size_t)(hp->n_vocab > qw + 2 * kw ? hp->n_vocab : qw + 2 * kw);
    size_t in_w = (size_t)(d > qw ? d : qw);
    float *in = malloc(sizeof(float) * N * in_w), *all = malloc(sizeof(float) * N * wide),
          *one = malloc(sizeof(float) * wide);
    mf_rng r = {7};
    struct {
        const char *what;
        row_op op;
        size_t in_w, out_w; /* row widths */
        int accumulate;     /* the op adds into out: start from the same values */
    } ops[] = {
        {"rmsnorm", op_rmsnorm, (size_t)d, (size_t)d, 0},
        {"attn_output", op_wo, (size_t)qw, (size_t)d, 1},
        {"output", op_output, (size_t)d, (size_t)hp->n_vocab, 0},
        {"qkv", op_q, (size_t)d, (size_t)(qw + 2 * kw), 0},
        {hp->n_experts ? "moe" : "ffn", op_ffn, (size_t)d, (size_t)d, 1},
    };
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        for (size_t i = 0; i < N * ops[k].in_w; i++) in[i] = mf_rng_normal(&r);
        for (size_t i = 0; i < N * ops[k].out_w; i++) all[i] = 0.25f;
        begin_rows(be, st, N);
        ops[k].op(be, st, m, in, all, N);
        for (int row = 0; row < N; row++) {
            for (size_t i = 0; i < ops[k].out_w; i++) one[i] = 0.25f;
            begin_rows(be, st, 1);
            ops[k].op(be, st, m, in + (size_t)row * ops[k].in_w, one, 1);
            /* qkv writes q, k, v of its rows side by side: row `row` of each part */
            size_t parts[3][2] = {{0, ops[k].out_w}, {0, 0}, {0, 0}};
            int np = 1;
            if (ops[k].op == op_q) {
                parts[0][1] = (size_t)qw;
                parts[1][0] = (size_t)qw, parts[1][1] = (size_t)kw;
                parts[2][0] = (size_t)(qw + kw), parts[2][1] = (size_t)kw;
                np = 3;
            }
            for (int p = 0; p < np; p++) {
                size_t off1 = parts[p][0], w = parts[p][1];
                const float *a = all + (size_t)N * off1 + (size_t)row * w, *b = one + off1;
                if (memcmp(a, b, sizeof(float) * w) != 0)
                    fail_msg("%s: %s of row %d among %d rows differs from the row alone (part %d)", name, ops[k].what,
                             row, N, p);
            }
        }
    }
    print_message("%-22s rmsnorm, products, qkv, %s: each row the same alone as among %d\n", name,
                  hp->n_experts ? "moe" : "ffn", N);
    free(in);
    free(all);
    free(one);
    be->state_free(be, st);
    be->unprepare(be, bm);
    be->free(be);
}

static void ops_rows_batch_invariant(void **state)
{
    (void)state;
    static const char *types[] = {"F32",  "F16",  "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                  "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        const char *args[] = {"--arch", "llama", "--type", types[i], "--output-type", types[i], NULL};
        mf_model *m = make_model("ops-llama.gguf", args);
        char name[64];
        snprintf(name, sizeof name, "llama tiny %s", types[i]);
        ops_on(m, name);
        mf_model_free(m);
    }
    const char *oss32[] = {"--arch",        "gpt-oss", "--type",        "F32", "--embd-type", "F32",
                           "--output-type", "F32",     "--expert-type", "F32", NULL};
    mf_model *m = make_model("ops-oss32.gguf", oss32);
    ops_on(m, "gpt-oss tiny F32");
    mf_model_free(m);
    const char *oss[] = {"--arch", "gpt-oss", NULL};
    m = make_model("ops-oss.gguf", oss);
    ops_on(m, "gpt-oss tiny");
    mf_model_free(m);
}

/* ---------------------------------------------------------------- the batcher */

/* what a request received */
typedef struct req {
    char text[4096];
    size_t len;
    int deltas, done, cancel_after; /* cancel_after > 0: the delta callback cancels then */
    mf_gen_result res;
    char content[4096];
} req;

static int on_delta(void *user, const mf_delta *d)
{
    req *r = user;
    assert_true(r->len + d->len < sizeof r->text);
    memcpy(r->text + r->len, d->text, d->len);
    r->len += d->len;
    r->text[r->len] = 0;
    r->deltas++;
    return r->cancel_after > 0 && r->deltas >= r->cancel_after;
}

static void on_done(void *user, const mf_gen_result *res)
{
    req *r = user;
    r->done++;
    r->res = *res;
    snprintf(r->content, sizeof r->content, "%s", res->content ? res->content : "");
    r->res.content = r->res.reasoning = NULL;
    r->res.calls = NULL;
}

static mf_batcher *open_batcher(mf_model *m, int n_seq, int n_ctx, int max_batch, int prompt_chunk)
{
    mf_batcher_opts o = {.session = mf_session_defaults(), .n_seq = n_seq, .prompt_chunk = prompt_chunk};
    o.session.device = "cpu";
    o.session.n_threads = 2;
    o.session.n_ctx = n_ctx;
    o.session.max_batch = max_batch;
    o.session.kv_f16 = 0;
    mf_err err;
    mf_batcher *b = mf_batcher_new(m, &o, &err);
    if (!b) fail_msg("%s", err.msg);
    return b;
}

static mf_gen_params greedy(int max_tokens)
{
    mf_gen_params p = {.sampler = mf_sampler_defaults(), .max_tokens = max_tokens};
    p.sampler.temp = 0;
    return p;
}

static int tokenize(const mf_model *m, const char *text, int32_t *ids, int cap)
{
    mf_err err;
    int64_t n = mf_tokenize(m->tok, text, strlen(text), 1, 0, ids, cap, &err);
    if (n < 0 || n > cap) fail_msg("tokenize: %s", err.msg);
    return (int)n;
}

static void run_until_idle(mf_batcher *b)
{
    mf_err err;
    for (int guard = 0; mf_batcher_active(b); guard++) {
        if (mf_batcher_step(b, &err) < 0) fail_msg("%s", err.msg);
        if (guard > 100000) fail_msg("the batcher does not finish");
    }
}

static mf_model *load_stories(void)
{
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    return load_path(path);
}

static const char *const stories[] = {
    "Once upon a time, there was a little girl named Lily.",
    "The dog ran to the park",
    "One day, a big bear",
    "Tom and Sue wanted to play a game. They looked for a ball in the garden, but",
    "The sun was hot.",
    "Once upon a time",
};
#define N_STORIES 6

/* Six requests on four sequences, joining while others generate (two wait for a free
 * sequence: submit says -2), against each alone in a fresh batcher: the same text, token
 * count and finish reason; the deltas add up to the result's content. */
static void batcher_outputs_equal_solo(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    int32_t ids[N_STORIES][128];
    int n[N_STORIES];
    for (int i = 0; i < N_STORIES; i++) n[i] = tokenize(m, stories[i], ids[i], 128);
    const int max_tokens[N_STORIES] = {40, 25, 60, 30, 45, 50};
    req solo[N_STORIES] = {0}, many[N_STORIES] = {0};
    mf_err err;
    for (int i = 0; i < N_STORIES; i++) {
        mf_batcher *b = open_batcher(m, 4, 256, 64, 8);
        mf_gen_params p = greedy(max_tokens[i]);
        if (mf_batcher_submit(b, ids[i], n[i], &p, on_delta, on_done, &solo[i], &err) < 0) fail_msg("%s", err.msg);
        run_until_idle(b);
        assert_int_equal(solo[i].done, 1);
        mf_batcher_free(b);
    }
    mf_batcher *b = open_batcher(m, 4, 256, 64, 8);
    int next = 0, busy_seen = 0;
    for (int step = 0; next < N_STORIES || mf_batcher_active(b); step++) {
        /* one new request every other step, while there is a free sequence */
        while (next < N_STORIES && step >= 2 * next) {
            mf_gen_params p = greedy(max_tokens[next]);
            int id = mf_batcher_submit(b, ids[next], n[next], &p, on_delta, on_done, &many[next], &err);
            if (id == -2) {
                busy_seen++;
                break;
            }
            if (id < 0) fail_msg("%s", err.msg);
            next++;
        }
        if (mf_batcher_step(b, &err) < 0) fail_msg("%s", err.msg);
    }
    assert_true(busy_seen > 0);
    for (int i = 0; i < N_STORIES; i++) {
        assert_int_equal(many[i].done, 1);
        if (strcmp(many[i].content, solo[i].content) != 0)
            fail_msg("request %d: batched \"%s\", alone \"%s\"", i, many[i].content, solo[i].content);
        assert_string_equal(many[i].text, many[i].content);
        assert_int_equal(many[i].res.n_generated, solo[i].res.n_generated);
        assert_int_equal(many[i].res.finish, solo[i].res.finish);
        assert_int_equal(many[i].res.n_prompt, n[i]);
    }
    mf_batcher_stats st;
    mf_batcher_stats_get(b, &st);
    uint64_t gen = 0, prompt = 0;
    for (int i = 0; i < N_STORIES; i++) gen += (uint64_t)many[i].res.n_generated, prompt += (uint64_t)n[i];
    assert_int_equal(st.generated_tokens, gen);
    assert_int_equal(st.prompt_tokens, prompt);
    assert_int_equal(st.n_seq, 4);
    assert_int_equal(st.active, 0);
    assert_true(st.decode_tok_s > 0);
    print_message("6 requests on 4 sequences: texts equal alone, %llu steps, %llu tokens generated\n",
                  (unsigned long long)st.steps, (unsigned long long)gen);
    mf_batcher_free(b);
    mf_model_free(m);
}

/* A conversation's second turn reads only its new tokens; the answer is the same as without
 * the cache; an unrelated request leaves the conversation's sequence alone. */
static void prefix_reuse(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    mf_batcher *b = open_batcher(m, 2, 256, 64, 8);
    mf_session *ss = mf_batcher_session(b);
    mf_err err;
    int32_t p1[256], p2[256], extra[64];
    int n1 = tokenize(m, stories[0], p1, 256);
    req r1 = {0}, r2 = {0}, r3 = {0}, fresh = {0};
    mf_gen_params p = greedy(20);
    if (mf_batcher_submit(b, p1, n1, &p, on_delta, on_done, &r1, &err) < 0) fail_msg("%s", err.msg);
    run_until_idle(b);
    /* the sequence that served it holds the prompt and every generated token but the last */
    int held = -1;
    for (int q = 0; q < 2; q++)
        if (mf_session_seq_pos(ss, q) > 0) held = q;
    assert_true(held >= 0);
    int pos = mf_session_seq_pos(ss, held);
    assert_int_equal(pos, n1 + r1.res.n_generated - 1);
    /* turn 2: everything so far, then new text */
    memcpy(p2, mf_session_seq_tokens(ss, held), sizeof(int32_t) * (size_t)pos);
    int ne = tokenize(m, " Then she went home.", extra, 64) - 1; /* without its BOS */
    memcpy(p2 + pos, extra + 1, sizeof(int32_t) * (size_t)ne);
    int n2 = pos + ne;
    if (mf_batcher_submit(b, p2, n2, &p, on_delta, on_done, &r2, &err) < 0) fail_msg("%s", err.msg);
    run_until_idle(b);
    assert_int_equal(r2.res.n_prompt, n2);
    assert_int_equal(r2.res.n_cached, pos); /* only the new tokens were evaluated */
    mf_batcher_stats st;
    mf_batcher_stats_get(b, &st);
    assert_int_equal(st.cached_tokens, pos);
    /* the same prompt without any cache: the same answer */
    mf_batcher *b2 = open_batcher(m, 2, 256, 64, 8);
    if (mf_batcher_submit(b2, p2, n2, &p, on_delta, on_done, &fresh, &err) < 0) fail_msg("%s", err.msg);
    run_until_idle(b2);
    assert_int_equal(fresh.res.n_cached, 0);
    assert_string_equal(r2.content, fresh.content);
    mf_batcher_free(b2);
    /* an unrelated prompt shares only BOS with the conversation: it takes the other sequence */
    int held_pos = mf_session_seq_pos(ss, held);
    int32_t p3[64];
    int n3 = tokenize(m, stories[2], p3, 64);
    if (mf_batcher_submit(b, p3, n3, &p, on_delta, on_done, &r3, &err) < 0) fail_msg("%s", err.msg);
    run_until_idle(b);
    assert_int_equal(r3.res.n_cached, 0);
    assert_int_equal(mf_session_seq_pos(ss, held), held_pos);
    mf_batcher_free(b);
    mf_model_free(m);
}

/* gpt-oss tiny: window 8 on layers 0 and 2; steps of at most 4 tokens make rings of 11
 * slots. A cache that has held 20 positions has lost those before 20 - 11 = 9 from its
 * rings; going back to position k needs positions k - 7 .. k - 1. */
static void ring_limits_reuse(void **state)
{
    (void)state;
    const char *oss[] = {"--arch", "gpt-oss", NULL};
    mf_model *m = make_model("ring-oss.gguf", oss);
    const mf_hparams *hp = &m->hp;
    assert_int_equal(hp->window, 8);
    assert_int_equal(mf_mem_kv_slots(hp, 0, 64, 4), 11);
    int V = hp->n_vocab;
    int32_t t[24], u[24], w[24];
    fill(t, 24, V, 5);
    memcpy(u, t, sizeof t);
    fill(u + 15, 9, V, 6); /* u shares t's first 15 tokens */
    memcpy(w, t, sizeof w);
    fill(w + 16, 8, V, 7); /* w its first 16 */
    mf_session *ss = open_session(m, 2, 64, 4, 1);
    mf_err err;
    /* sequence 0 holds t[0..20) */
    for (int i = 0; i < 20; i += 4) {
        mf_seq_chunk ch = {0, t + i, 4, 1};
        if (mf_session_step(ss, &ch, 1, &err)) fail_msg("%s", err.msg);
    }
    assert_int_equal(mf_session_seq_reusable(ss, 0, t, 24), 20);
    assert_int_equal(mf_session_seq_reusable(ss, 0, w, 24), 16); /* needs 9 .. 15 */
    assert_int_equal(mf_session_seq_reusable(ss, 0, u, 24), 0);  /* 15 needs 8 */
    assert_int_equal(mf_session_seq_reusable(ss, 0, t, 5), 0);   /* 5 needs 0 .. 4 */
    assert_int_equal(mf_session_seq_truncate(ss, 0, 15, &err), -1);
    assert_non_null(strstr(err.msg, "sliding-window"));
    assert_int_equal(mf_session_seq_truncate(ss, 0, 21, &err), -1);
    /* keeping 16 and going on equals evaluating from scratch, bit for bit */
    float *kept = malloc(sizeof(float) * (size_t)V), *scratch = malloc(sizeof(float) * (size_t)V);
    if (mf_session_seq_truncate(ss, 0, 16, &err)) fail_msg("%s", err.msg);
    mf_seq_chunk two = {0, w + 16, 2, 1};
    if (mf_session_step(ss, &two, 1, &err)) fail_msg("%s", err.msg);
    /* 18 positions now, but 18 and 19 were written over the slots of 7 and 8 before: the
     * history counts, not only the length (a cache that only ever held 18 could go back
     * to 15) */
    assert_int_equal(mf_session_seq_reusable(ss, 0, u, 24), 0);
    for (int i = 18; i < 24; i += 3) {
        mf_seq_chunk ch = {0, w + i, 3, 1};
        if (mf_session_step(ss, &ch, 1, &err)) fail_msg("%s", err.msg);
    }
    memcpy(kept, mf_session_seq_logits(ss, 0, &err), sizeof(float) * (size_t)V);
    for (int i = 0; i < 24; i += 4) {
        mf_seq_chunk ch = {1, w + i, 4, 1};
        if (mf_session_step(ss, &ch, 1, &err)) fail_msg("%s", err.msg);
    }
    memcpy(scratch, mf_session_seq_logits(ss, 1, &err), sizeof(float) * (size_t)V);
    assert_memory_equal(kept, scratch, sizeof(float) * (size_t)V);
    /* the rule is needed: cut sequence 0 back to 14 behind the session's back after 24
     * positions, and the ring hands position 14's query (which reads positions 7 .. 13) a key
     * of a later position. The CPU's rings are the 11 slots rounded up to a whole K tile
     * (memory.h mf_mem_cpu_kv_slots): 24 positions must have overwritten position 7. */
    mf_state_opts so = {.n_ctx = 64, .max_batch = 4, .n_seq = 2};
    assert_true(24 - mf_mem_cpu_kv_slots(hp, 0, &so) > 7);
    mf_session_reset(ss);
    for (int i = 0; i < 24; i += 4) {
        mf_seq_chunk ch = {0, t + i, 4, 1};
        if (mf_session_step(ss, &ch, 1, &err)) fail_msg("%s", err.msg);
    }
    ss->seq[0].pos = 14;
    mf_seq_chunk ch0 = {0, u + 14, 1, 1}, ch1;
    if (mf_session_step(ss, &ch0, 1, &err)) fail_msg("%s", err.msg);
    memcpy(kept, mf_session_seq_logits(ss, 0, &err), sizeof(float) * (size_t)V);
    for (int i = 0; i < 15; i += 4) {
        ch1 = (mf_seq_chunk){1, u + i, 15 - i < 4 ? 15 - i : 4, 1};
        if (mf_session_step(ss, &ch1, 1, &err)) fail_msg("%s", err.msg);
    }
    memcpy(scratch, mf_session_seq_logits(ss, 1, &err), sizeof(float) * (size_t)V);
    assert_true(memcmp(kept, scratch, sizeof(float) * (size_t)V) != 0);
    free(kept);
    free(scratch);
    mf_session_free(ss);
    mf_model_free(m);
}

/* Cancel: the done callback runs at once with "cancelled" and the sequence is free for the
 * next request; a delta callback that returns non-zero cancels its own request. */
static void cancel_frees_at_once(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    mf_batcher *b = open_batcher(m, 1, 256, 64, 8);
    int32_t ids[64];
    int n = tokenize(m, stories[0], ids, 64);
    mf_err err;
    req a = {0}, c = {0}, d = {0};
    mf_gen_params p = greedy(100);
    int id = mf_batcher_submit(b, ids, n, &p, on_delta, on_done, &a, &err);
    assert_true(id >= 0);
    assert_int_equal(mf_batcher_submit(b, ids, n, &p, on_delta, on_done, &c, &err), -2);
    for (int i = 0; i < 3; i++) mf_batcher_step(b, &err);
    mf_batcher_cancel(b, id);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.res.finish, MF_FINISH_CANCELLED);
    assert_string_equal(mf_finish_name(a.res.finish), "cancelled");
    assert_int_equal(mf_batcher_active(b), 0);
    mf_batcher_cancel(b, id); /* again: ignored */
    mf_batcher_cancel(b, 12345);
    assert_int_equal(a.done, 1);
    /* the freed sequence takes the next request at once */
    d.cancel_after = 2;
    assert_true(mf_batcher_submit(b, ids, n, &p, on_delta, on_done, &d, &err) >= 0);
    run_until_idle(b);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.res.finish, MF_FINISH_CANCELLED);
    assert_int_equal(d.deltas, 2);
    mf_batcher_free(b);
    mf_model_free(m);
}

/* The schedule: each step every generating sequence advances by one token, a reading one by
 * prompt_chunk tokens (its prompt whole when nothing generates). */
static void schedule_decode_never_waits(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    mf_batcher *b = open_batcher(m, 3, 256, 64, 8);
    mf_session *ss = mf_batcher_session(b);
    mf_err err;
    int32_t a[64], c[64];
    int na = tokenize(m, stories[1], a, 64);
    int nc = 0;
    for (int i = 0; i < 41; i++) c[nc++] = (int32_t)(2 + i * 7 % 500);
    c[0] = 1;
    req ra = {0}, rc = {0};
    mf_gen_params p = greedy(-1);
    assert_true(mf_batcher_submit(b, a, na, &p, on_delta, on_done, &ra, &err) >= 0);
    if (mf_batcher_step(b, &err) < 0) fail_msg("%s", err.msg); /* its prompt, whole */
    int qa = mf_session_seq_pos(ss, 0) ? 0 : mf_session_seq_pos(ss, 1) ? 1 : 2;
    assert_int_equal(mf_session_seq_pos(ss, qa), na);
    assert_true(mf_batcher_submit(b, c, nc, &p, on_delta, on_done, &rc, &err) >= 0);
    int fed = 0, steps = 0;
    while (fed < nc && !ra.done) {
        int before[3];
        for (int q = 0; q < 3; q++) before[q] = mf_session_seq_pos(ss, q);
        if (mf_batcher_step(b, &err) < 0) fail_msg("%s", err.msg);
        if (ra.done) break;
        int grew = 0, other = 0;
        for (int q = 0; q < 3; q++) {
            int d = mf_session_seq_pos(ss, q) - before[q];
            if (q == qa) grew = d;
            else other += d;
        }
        assert_int_equal(grew, 1);
        assert_int_equal(other, nc - fed < 8 ? nc - fed : 8);
        fed += other;
        steps++;
    }
    assert_true(steps >= 5); /* 41 tokens in chunks of 8 */
    mf_batcher_free(b);
    mf_model_free(m);
}

/* The end of the context: the answer ends with "context" (or an end token) and never
 * overflows; a prompt that fills the context gets one token. */
static void context_end(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    mf_batcher *b = open_batcher(m, 2, 32, 16, 8);
    int32_t ids[64];
    for (int i = 0; i < 64; i++) ids[i] = (int32_t)(100 + i);
    ids[0] = 1;
    mf_err err;
    req r = {0}, full = {0};
    mf_gen_params p = greedy(-1);
    assert_true(mf_batcher_submit(b, ids, 28, &p, on_delta, on_done, &r, &err) >= 0);
    assert_true(mf_batcher_submit(b, ids, 32, &p, on_delta, on_done, &full, &err) >= 0);
    run_until_idle(b);
    /* tokens chosen at positions 28 .. 32: the fifth has no room left */
    if (r.res.finish == MF_FINISH_CONTEXT) assert_int_equal(r.res.n_generated, 5);
    else assert_int_equal(r.res.finish, MF_FINISH_STOP);
    assert_true(r.res.n_generated <= 5);
    assert_true(full.res.finish == MF_FINISH_CONTEXT || full.res.finish == MF_FINISH_STOP);
    assert_int_equal(full.res.n_generated, 1);
    assert_int_equal(mf_batcher_submit(b, ids, 33, &p, on_delta, on_done, &r, &err), -1);
    assert_non_null(strstr(err.msg, "33"));
    assert_non_null(strstr(err.msg, "32"));
    mf_batcher_free(b);
    mf_model_free(m);
}

/* Wrong input: one line each, nothing evaluated. */
static void bad_input(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    mf_batcher *b = open_batcher(m, 2, 32, 16, 8);
    int32_t ids[4] = {1, 2, 3, 4}, bad[3] = {1, 512, 3};
    mf_err err;
    req r = {0};
    mf_gen_params p = greedy(4);
    assert_int_equal(mf_batcher_submit(b, ids, 0, &p, on_delta, on_done, &r, &err), -1);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(mf_batcher_submit(b, bad, 3, &p, on_delta, on_done, &r, &err), -1);
    assert_non_null(strstr(err.msg, "512"));
    mf_gen_params stop = greedy(4);
    const char *const stops[] = {"x"};
    stop.stop = stops;
    stop.n_stop = 1;
    /* the stand-in generation refuses what it cannot do (stop strings) with a reason */
    if (mf_batcher_submit(b, ids, 4, &stop, on_delta, on_done, &r, &err) == -1) assert_true(strlen(err.msg) > 0);
    else run_until_idle(b);
    mf_batcher_free(b);
    /* mf_session_step */
    mf_session *ss = open_session(m, 2, 16, 8, 1);
    mf_seq_chunk two[2] = {{0, ids, 4, 1}, {0, ids, 4, 1}}, out_of_range = {2, ids, 4, 1}, many = {1, ids, 4, 1};
    assert_int_equal(mf_session_step(ss, two, 2, &err), -1);
    assert_non_null(strstr(err.msg, "twice"));
    assert_int_equal(mf_session_step(ss, &out_of_range, 1, &err), -1);
    assert_non_null(strstr(err.msg, "does not exist"));
    mf_seq_chunk badtok = {0, bad, 3, 1};
    assert_int_equal(mf_session_step(ss, &badtok, 1, &err), -1);
    assert_non_null(strstr(err.msg, "vocabulary"));
    mf_seq_chunk nine[2] = {{0, ids, 4, 1}, {1, ids, 4, 1}};
    int32_t five[5] = {1, 2, 3, 4, 5};
    nine[1].tokens = five;
    nine[1].n = 5;
    assert_int_equal(mf_session_step(ss, nine, 2, &err), -1);
    assert_non_null(strstr(err.msg, "more than 8"));
    for (int i = 0; i < 4; i++)
        if (mf_session_step(ss, &many, 1, &err)) fail_msg("%s", err.msg);
    assert_int_equal(mf_session_step(ss, &many, 1, &err), -1); /* 16 held, 4 more */
    assert_non_null(strstr(err.msg, "context of 16"));
    assert_int_equal(mf_session_seq_pos(ss, 0), 0); /* nothing evaluated by the failures */
    assert_null(mf_session_seq_logits(ss, 0, &err));
    assert_int_equal(mf_session_seq_argmax(ss, 0), -2);
    mf_session_free(ss);
    /* more sequences than one step holds */
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_ctx = 16;
    o.max_batch = 4;
    o.n_seq = 5;
    assert_null(mf_session_new(m, &o, &err));
    assert_non_null(strstr(err.msg, "5 sequences"));
    mf_model_free(m);
}

/* `minfer bench --parallel`: a result per number of sequences, the per-sequence rate, and
 * bad lists refused. */
static void bench_parallel_cli(void **state)
{
    (void)state;
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    const char *args[] = {"bench", "-m", path,       "-p",  "0",          "-n",  "4",      "-r", "1",
                          "-t",    "1",  "--device", "cpu", "--parallel", "1,3", "--json", NULL};
    mf_proc pr = mf_run_tool("minfer", args);
    if (pr.rc) fail_msg("minfer bench: %s", pr.err);
    const char *one = strstr(pr.out, "\"test\":\"tg4\""), *three = strstr(pr.out, "\"test\":\"tg4x3\"");
    assert_non_null(one);
    assert_non_null(three);
    assert_non_null(strstr(one, "\"parallel\":1"));
    double agg = mf_json_num(three, "tok_s_median"), each = mf_json_num(three, "tok_s_per_seq");
    assert_true(agg > 0);
    assert_true(fabs(each - agg / 3) <= 1e-3 * agg);
    assert_true(mf_json_num(three, "parallel") == 3);
    mf_proc_free(&pr);
    /* a prompt test of a model without experts (its multiply-add count divided by zero
     * experts once) */
    const char *pp[] = {"bench", "-m", path, "-p", "8", "-n", "0", "-r", "1", "-t", "1", "--device", "cpu", NULL};
    pr = mf_run_tool("minfer", pp);
    if (pr.rc) fail_msg("minfer bench -p 8: exit %d %s", pr.rc, pr.err);
    assert_non_null(strstr(pr.out, "pp8"));
    mf_proc_free(&pr);
    static const char *bad[] = {"0", "x", ",", "5000", "1,2,3,4,5,6,7,8,9"};
    for (int i = 0; i < 5; i++) {
        const char *a2[] = {"bench", "-m", path, "-n", "2", "--parallel", bad[i], NULL};
        pr = mf_run_tool("minfer", a2);
        assert_int_equal(pr.rc, 2);
        if (!strstr(pr.err, "--parallel")) fail_msg("--parallel %s: %s", bad[i], pr.err);
        mf_proc_free(&pr);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(logits_alone_equal_batched),
        cmocka_unit_test(ops_rows_batch_invariant),
        cmocka_unit_test(batcher_outputs_equal_solo),
        cmocka_unit_test(prefix_reuse),
        cmocka_unit_test(ring_limits_reuse),
        cmocka_unit_test(cancel_frees_at_once),
        cmocka_unit_test(schedule_decode_never_waits),
        cmocka_unit_test(context_end),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(bench_parallel_cli),
    };
    return MF_RUN("batch", tests);
}
