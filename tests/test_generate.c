/* test_generate.c — one answer generated (engine/generate.c, docs/generate.md): stop strings
 * held back across tokens and never passed, UTF-8 characters never split, several and
 * overlapping stop strings, a randomized comparison with a plain reference of what must be
 * delivered after every token, logprobs, cancellation, harmony output read into content,
 * reasoning and tool calls (render -> tokens -> parse and back), and mf_generate on a
 * session: prefix reuse (the count evaluated on turn 2), the whole prompt cached, the
 * sliding-window ring's limit on going back, the context's end, bad parameters.
 *
 * The models are mkmodel files made at the start (a tiny Llama with an SPM vocabulary of
 * byte tokens, a tiny gpt-oss with the harmony vocabulary): tokens are chosen by the test
 * (mf_gen_next_token), so nothing depends on what random weights would generate, except
 * where mf_generate runs the model and the test compares two runs with each other. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "minfer.h"

static mf_model *llama, *oss;

static mf_model *make_model(const char *name, const char *args)
{
    const char *path = mf_tmp_path(name);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s -o %s %s > /dev/null 2>&1", mf_tool_path("mkmodel"), path, args);
    if (system(cmd) != 0) return NULL;
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    unlink(path); /* the mapping outlives the name */
    return m;
}

static int setup(void)
{
    llama = make_model("gen-llama.gguf", "--arch llama --preset tiny --seed 4");
    oss = make_model("gen-oss.gguf", "--arch gpt-oss --preset tiny --seed 5");
    return llama && oss ? 0 : -1;
}

static void teardown(void)
{
    mf_model_free(llama);
    mf_model_free(oss);
}

/* ------------------------------------------------------------------ capturing deltas */

#define MAX_DELTAS 4096

typedef struct capture {
    char text[3][8192]; /* concatenated content, reasoning, tool arguments */
    size_t len[3];
    int n, cancel_at; /* deltas seen; cancel at this delta (0: never) */
    int incomplete;   /* deltas of text ending inside a UTF-8 character */
    int n_calls;      /* tool calls announced */
    char call_name[4][64], call_id[4][64];
    int n_lp;
    int32_t lp_id[MAX_DELTAS];
    float lp[MAX_DELTAS];
    int n_top[MAX_DELTAS];
} capture;

static int on_delta(void *user, const mf_delta *d)
{
    capture *c = user;
    c->n++;
    assert_true(d->kind >= MF_DELTA_CONTENT && d->kind <= MF_DELTA_TOOL_CALL);
    if (d->kind == MF_DELTA_TOOL_CALL && d->tool_id) {
        assert_int_equal(d->tool_index, c->n_calls);
        assert_int_equal(d->len, 0);
        snprintf(c->call_id[c->n_calls], 64, "%s", d->tool_id);
        snprintf(c->call_name[c->n_calls], 64, "%s", d->tool_name);
        c->n_calls++;
    } else if (d->kind == MF_DELTA_TOOL_CALL) {
        assert_int_equal(d->tool_index, c->n_calls - 1);
    }
    assert_true(c->len[d->kind] + d->len < sizeof c->text[0]);
    memcpy(c->text[d->kind] + c->len[d->kind], d->text, d->len);
    c->len[d->kind] += d->len;
    c->text[d->kind][c->len[d->kind]] = 0;
    if (mf_utf8_complete(d->text, d->len) != d->len) c->incomplete++;
    for (int i = 0; i < d->n_lp; i++) {
        assert_true(c->n_lp < MAX_DELTAS);
        c->lp_id[c->n_lp] = d->lp[i].id;
        c->n_top[c->n_lp] = d->lp[i].n_top;
        c->lp[c->n_lp++] = d->lp[i].logprob;
    }
    return c->cancel_at && c->n >= c->cancel_at;
}

static int32_t tok(const mf_model *m, const char *text)
{
    int32_t id = mf_tok_find(m->tok, text);
    if (id < 0) fail_msg("no token '%s'", text);
    return id;
}

/* the ids of text (no BOS; the special tokens' texts parsed) */
static int ids_of(const mf_model *m, const char *text, int32_t *out, int cap)
{
    mf_err err;
    int64_t n = mf_tokenize(m->tok, text, strlen(text), 0, 1, out, cap, &err);
    if (n < 0 || n > cap) fail_msg("tokenize '%s': %s", text, err.msg);
    return (int)n;
}

/* Feeds ids one by one (the answer ends at the last one at the latest: max_tokens = n) and
 * returns the finished result (owned by g). */
static const mf_gen_result *feed(mf_gen *g, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (mf_gen_next_token(g, ids[i], 1000) < 0) break;
    return mf_gen_finish(g, MF_FINISH_LENGTH);
}

static mf_gen *gen_new(const mf_model *m, const char *const *stop, int n_stop, int max_tokens, capture *c)
{
    mf_gen_params p = mf_gen_defaults();
    p.sampler.temp = 0;
    p.stop = stop;
    p.n_stop = n_stop;
    p.max_tokens = max_tokens;
    p.format = m == oss ? MF_CHAT_HARMONY : MF_CHAT_NONE;
    mf_err err;
    mf_gen *g = mf_gen_new(m, &p, on_delta, c, &err);
    if (!g) fail_msg("%s", err.msg);
    return g;
}

/* ------------------------------------------------------------------ stop strings */

/* A stop string spanning tokens is held back while it could still complete; text that
 * turns out not to be one is delivered; nothing from the stop string on ever is. */
static void stop_holdback(void **state)
{
    (void)state;
    /* "▁the" "▁cat" "▁was" "▁the" "▁dog": stop "cat was" covers parts of two tokens */
    int32_t ids[5] = {tok(llama, "\xe2\x96\x81the"),
                      tok(llama, "\xe2\x96\x81"
                                 "cat"),
                      tok(llama, "\xe2\x96\x81was"), tok(llama, "\xe2\x96\x81the"),
                      tok(llama, "\xe2\x96\x81"
                                 "dog")};
    const char *stop[] = {"cat was"};
    capture c = {0};
    mf_gen *g = gen_new(llama, stop, 1, 5, &c);
    assert_int_equal(mf_gen_next_token(g, ids[0], 100), ids[0]);
    assert_string_equal(c.text[0], " the");
    assert_int_equal(mf_gen_next_token(g, ids[1], 100), ids[1]);
    assert_string_equal(c.text[0], " the "); /* "cat" could begin the stop string */
    assert_int_equal(mf_gen_next_token(g, ids[2], 100), -1);
    const mf_gen_result *r = mf_gen_status(g);
    assert_int_equal(r->finish, MF_FINISH_STOP);
    assert_int_equal(r->stop_index, 0);
    assert_string_equal(r->content, " the ");
    assert_string_equal(c.text[0], " the ");
    assert_int_equal(r->n_generated, 3);
    mf_gen_free(g);

    /* a prefix that does not continue is delivered with the next token */
    memset(&c, 0, sizeof c);
    const char *stop2[] = {"cat is"};
    g = gen_new(llama, stop2, 1, 5, &c);
    r = feed(g, ids, 5);
    assert_int_equal(r->finish, MF_FINISH_LENGTH);
    assert_string_equal(r->content, " the cat was the dog");
    assert_string_equal(c.text[0], r->content);
    mf_gen_free(g);

    /* held-back text at the end of the answer is delivered (it is no stop string) */
    memset(&c, 0, sizeof c);
    const char *stop3[] = {" dog!"};
    g = gen_new(llama, stop3, 1, 5, &c);
    r = feed(g, ids, 5);
    assert_int_equal(r->finish, MF_FINISH_LENGTH);
    assert_string_equal(c.text[0], " the cat was the dog");

    /* a stop string at the very start: nothing at all */
    memset(&c, 0, sizeof c);
    const char *stop4[] = {" the"};
    mf_gen_free(g);
    g = gen_new(llama, stop4, 1, 5, &c);
    r = feed(g, ids, 5);
    assert_int_equal(r->finish, MF_FINISH_STOP);
    assert_string_equal(r->content, "");
    assert_int_equal(c.len[0], 0);
    mf_gen_free(g);
}

/* Several stop strings: the one that starts first wins, whichever completes first; stop
 * strings that overlap or are prefixes of each other. */
static void several_stops(void **state)
{
    (void)state;
    int32_t ids[64];
    int n = ids_of(llama, "abcxabcd", ids, 64); /* bytes and pieces; "▁" first */
    struct {
        const char *stop[3];
        int n;
        const char *content;
        int index;
    } cases[] = {
        {{"abcd", "bcx", "cd"}, 3, " a", 1},        /* "bcx" completes before "abcd" could */
        {{"cd", "abcd"}, 2, " abcx", 1},            /* both end at the same byte: the earlier start */
        {{"xab", "xabcd"}, 2, " abc", 0},           /* a stop that is a prefix of another */
        {{"abcxabcd", "zz"}, 2, " ", 0},            /* the whole text */
        {{"abcxabce", "bcxb"}, 2, " abcxabcd", -1}, /* near misses: all of it delivered */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        capture c = {0};
        mf_gen *g = gen_new(llama, cases[k].stop, cases[k].n, n, &c);
        const mf_gen_result *r = feed(g, ids, n);
        if (strcmp(r->content, cases[k].content)) fail_msg("case %zu: '%s' != '%s'", k, r->content, cases[k].content);
        assert_string_equal(c.text[0], r->content);
        assert_int_equal(r->finish, cases[k].index >= 0 ? MF_FINISH_STOP : MF_FINISH_LENGTH);
        assert_int_equal(r->stop_index, cases[k].index);
        mf_gen_free(g);
    }
}

/* A character split over byte tokens is never split between deltas; a stop string made of
 * multi-byte characters matches across them. */
static void utf8_boundaries(void **state)
{
    (void)state;
    /* "é" = C3 A9 and "🦙" = F0 9F A6 99 as single byte tokens */
    int32_t e[2] = {tok(llama, "<0xC3>"), tok(llama, "<0xA9>")};
    int32_t lla[4] = {tok(llama, "<0xF0>"), tok(llama, "<0x9F>"), tok(llama, "<0xA6>"), tok(llama, "<0x99>")};
    capture c = {0};
    mf_gen *g = gen_new(llama, NULL, 0, 20, &c);
    mf_gen_next_token(g, e[0], 100);
    assert_int_equal(c.len[0], 0); /* half a character: nothing yet */
    mf_gen_next_token(g, e[1], 100);
    assert_string_equal(c.text[0], "\xc3\xa9");
    for (int i = 0; i < 3; i++) mf_gen_next_token(g, lla[i], 100);
    assert_string_equal(c.text[0], "\xc3\xa9");
    mf_gen_next_token(g, lla[3], 100);
    assert_string_equal(c.text[0], "\xc3\xa9\xf0\x9f\xa6\x99");
    assert_int_equal(c.incomplete, 0);
    /* the answer ending inside a character delivers its bytes as they are (nothing follows) */
    mf_gen_next_token(g, lla[0], 100);
    const mf_gen_result *r = mf_gen_finish(g, MF_FINISH_LENGTH);
    assert_int_equal(strlen(r->content), 7);
    assert_int_equal(c.len[0], 7);
    mf_gen_free(g);

    /* a stop string of two emoji bytes sequences: "é🦙" stops; "é" then "🦙" delivered
     * only when the llama does not follow */
    memset(&c, 0, sizeof c);
    const char *stop[] = {"\xc3\xa9\xf0\x9f\xa6\x99"};
    g = gen_new(llama, stop, 1, 20, &c);
    int32_t seq[] = {tok(llama, "a"), e[0], e[1], lla[0], lla[1], lla[2], lla[3]};
    r = feed(g, seq, 7);
    assert_int_equal(r->finish, MF_FINISH_STOP);
    assert_string_equal(r->content, "a");
    assert_int_equal(c.incomplete, 0);
    mf_gen_free(g);
}

/* Randomized: token sequences over ASCII pieces and multi-byte characters given byte by
 * byte, random stop strings; after every token the delivered text must be exactly what a
 * plain reference says is safe — the text before the first stop string, and otherwise
 * everything up to the first tail that could begin one, cut back to a whole character. */
static size_t ref_safe(const char *t, size_t n, const char *const *stop, int n_stop, int *found)
{
    *found = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < n_stop; j++)
            if (n - i >= strlen(stop[j]) && !memcmp(t + i, stop[j], strlen(stop[j]))) {
                *found = 1;
                return i;
            }
    size_t hold = n;
    for (size_t i = 0; i < n && hold == n; i++)
        for (int j = 0; j < n_stop; j++)
            if (n - i < strlen(stop[j]) && !memcmp(t + i, stop[j], n - i)) {
                hold = i;
                break;
            }
    return mf_utf8_complete(t, hold);
}

static void stops_randomized(void **state)
{
    (void)state;
    const char *units[] = {"a", "b", " ", "ab", "\xc3\xa9", "\xf0\x9f\xa6\x99", "\xe2\x82\xac"};
    const char *pieces[] = {"a", "b", "\xe2\x96\x81", NULL, NULL, NULL, NULL}; /* "ab": a then b */
    mf_rng rng = {20250601};
    for (int trial = 0; trial < 400; trial++) {
        /* stops: 1 to 3 strings of 1 to 3 units */
        char stops[3][32];
        const char *stop[3];
        int n_stop = 1 + (int)(mf_rng_u64(&rng) % 3);
        for (int j = 0; j < n_stop; j++) {
            stops[j][0] = 0;
            int k = 1 + (int)(mf_rng_u64(&rng) % 3);
            for (int u = 0; u < k; u++) strcat(stops[j], units[mf_rng_u64(&rng) % 7]);
            stop[j] = stops[j];
        }
        /* the answer: 30 units as tokens (multi-byte characters as byte tokens) */
        int32_t ids[256];
        int n = 0;
        for (int u = 0; u < 30; u++) {
            int w = (int)(mf_rng_u64(&rng) % 7);
            if (w == 3) {
                ids[n++] = tok(llama, "a");
                ids[n++] = tok(llama, "b");
            } else if (pieces[w]) {
                ids[n++] = tok(llama, pieces[w]);
            } else {
                for (const unsigned char *p = (const unsigned char *)units[w]; *p; p++) {
                    char name[8];
                    snprintf(name, sizeof name, "<0x%02X>", *p);
                    ids[n++] = tok(llama, name);
                }
            }
        }
        capture c = {0};
        mf_gen *g = gen_new(llama, stop, n_stop, n, &c);
        char full[1024];
        size_t len = 0;
        int i = 0, found = 0;
        for (; i < n; i++) {
            char piece[16];
            size_t k = mf_tok_piece(llama->tok, ids[i], 0, piece, sizeof piece);
            memcpy(full + len, piece, k);
            len += k;
            int32_t next = mf_gen_next_token(g, ids[i], 1000);
            size_t want = ref_safe(full, len, stop, n_stop, &found);
            if (found || next < 0) break;
            if (c.len[0] != want)
                fail_msg("trial %d token %d: delivered %zu bytes, the reference says %zu", trial, i, c.len[0], want);
            assert_memory_equal(c.text[0], full, want);
        }
        const mf_gen_result *r = mf_gen_finish(g, MF_FINISH_LENGTH);
        size_t want = ref_safe(full, len, stop, n_stop, &found);
        if (!found) want = len; /* the end delivers what was held back */
        assert_int_equal(strlen(r->content), want);
        assert_memory_equal(r->content, full, want);
        assert_int_equal(c.len[0], want);
        assert_int_equal(r->finish, found ? MF_FINISH_STOP : MF_FINISH_LENGTH);
        assert_int_equal(c.incomplete, 0);
        mf_gen_free(g);
    }
}

/* ------------------------------------------------------------------ logprobs, cancel, ends */

/* logprobs: the log-softmax of the logits as they came, the top ones sorted; every
 * generated token reported once, in order, even those a stop string cut off */
static void logprobs(void **state)
{
    (void)state;
    int V = llama->hp.n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)V), *copy = malloc(sizeof(float) * (size_t)V);
    /* with 3 alternatives, and with none (top_logprobs 0 once wrote top_id[-1]) */
    const char *stop[] = {"dog"};
    mf_gen_params p;
    capture c;
    mf_err err;
    mf_gen *g;
    for (int top = 3; top >= 0; top -= 3) {
        mf_rng rng = {7};
        p = mf_gen_defaults();
        p.sampler.temp = 0;
        p.logprobs = 1;
        p.top_logprobs = top;
        p.stop = stop;
        p.n_stop = 1;
        memset(&c, 0, sizeof c);
        g = mf_gen_new(llama, &p, on_delta, &c, &err);
        assert_non_null(g);
        assert_int_equal(mf_gen_wants_logits(g), 1);
        int32_t want[4] = {tok(llama, "\xe2\x96\x81the"),
                           tok(llama, "\xe2\x96\x81"
                                      "cat"),
                           tok(llama, "\xe2\x96\x81"),
                           tok(llama, "\xe2\x96\x81"
                                      "dog")};
        int n = 0;
        for (; n < 4; n++) {
            for (int v = 0; v < V; v++) logits[v] = mf_rng_normal(&rng);
            logits[want[n]] = 6.0f; /* greedy picks it */
            memcpy(copy, logits, sizeof(float) * (size_t)V);
            double z = 0;
            for (int v = 0; v < V; v++) z += exp((double)copy[v] - 6.0);
            int32_t got = mf_gen_next(g, logits, NULL, 0, 100);
            /* the entry of this token: once delivered, its value */
            if (n < 2) {
                assert_int_equal(got, want[n]);
                assert_int_equal(c.lp_id[n], want[n]);
                assert_true(fabs(c.lp[n] - (float)(-log(z))) < 1e-5);
            }
            if (got < 0) break;
        }
        const mf_gen_result *r = mf_gen_status(g);
        assert_int_equal(r->finish, MF_FINISH_STOP);
        assert_string_equal(r->content, " the cat  "); /* up to the stop string " dog" starts */
        assert_int_equal(c.n_lp, r->n_generated);
        assert_memory_equal(c.lp_id, want, sizeof want);
        mf_gen_free(g);
        for (int k = 0; k < c.n_lp; k++) assert_int_equal(c.n_top[k], top);
    }
    free(logits);
    free(copy);

    /* the top ones: sorted, the chosen token first under greedy decoding */
    float l[8] = {0.5f, 2.0f, -1.0f, 2.0f, 3.0f, -INFINITY, 0.0f, 1.0f};
    float *big = calloc((size_t)V, sizeof(float));
    for (int v = 0; v < V; v++) big[v] = -INFINITY;
    memcpy(big, l, sizeof l);
    p.n_stop = 0;
    p.top_logprobs = 4;
    memset(&c, 0, sizeof c);
    g = mf_gen_new(llama, &p, on_delta, &c, &err);
    assert_int_equal(mf_gen_next(g, big, NULL, 0, 100), 4);
    mf_gen_finish(g, MF_FINISH_LENGTH);
    mf_gen_free(g);
    free(big);
    assert_int_equal(c.n_lp, 1);
}

/* The same, watching the top list itself (a delta callback that copies it). */
static int top_check(void *user, const mf_delta *d)
{
    int *seen = user;
    for (int i = 0; i < d->n_lp; i++) {
        const mf_token_logprob *e = &d->lp[i];
        assert_int_equal(e->n_top, 4);
        /* 3.0, 2.0 (id 1), 2.0 (id 3: ties by id), 1.0 */
        int32_t ids[4] = {4, 1, 3, 7};
        assert_memory_equal(e->top_id, ids, sizeof ids);
        double lse = log(exp(0.5) + exp(2.0) + exp(-1.0) + exp(2.0) + exp(3.0) + exp(0.0) + exp(1.0));
        assert_true(fabs(e->top_logprob[0] - (3.0 - lse)) < 1e-5);
        assert_true(fabs(e->logprob - e->top_logprob[0]) < 1e-7);
        for (int k = 1; k < 4; k++) assert_true(e->top_logprob[k] <= e->top_logprob[k - 1]);
        (*seen)++;
    }
    return 0;
}

static void top_logprobs(void **state)
{
    (void)state;
    int V = llama->hp.n_vocab, seen = 0;
    float *big = malloc(sizeof(float) * (size_t)V);
    for (int v = 0; v < V; v++) big[v] = -INFINITY;
    float l[8] = {0.5f, 2.0f, -1.0f, 2.0f, 3.0f, -INFINITY, 0.0f, 1.0f};
    memcpy(big, l, sizeof l);
    mf_gen_params p = mf_gen_defaults();
    p.sampler.temp = 0;
    p.logprobs = 1;
    p.top_logprobs = 4;
    mf_err err;
    mf_gen *g = mf_gen_new(llama, &p, top_check, &seen, &err);
    assert_int_equal(mf_gen_next(g, big, NULL, 0, 100), 4);
    mf_gen_finish(g, MF_FINISH_LENGTH);
    assert_int_equal(seen, 1);
    mf_gen_free(g);
    free(big);
}

/* Cancel from the callback; end tokens; the context's end; max_tokens 0; bad logits. */
static void ends(void **state)
{
    (void)state;
    int32_t ids[8];
    int n = ids_of(llama, "the cat was the dog", ids, 8);
    capture c = {.cancel_at = 2};
    mf_gen *g = gen_new(llama, NULL, 0, -1, &c);
    const mf_gen_result *r = feed(g, ids, n);
    assert_int_equal(r->finish, MF_FINISH_CANCELLED);
    assert_int_equal(c.n, 2);
    assert_string_equal(r->content, c.text[0]); /* what was delivered, nothing more */
    assert_int_equal(r->n_generated, 2);
    mf_gen_free(g);
    /* the vocabulary's end token stops; its text is not part of the answer */
    memset(&c, 0, sizeof c);
    g = gen_new(llama, NULL, 0, -1, &c);
    assert_int_equal(mf_gen_next_token(g, ids[0], 10), ids[0]);
    assert_int_equal(mf_gen_next_token(g, mf_tok_eos(llama->tok), 10), -1);
    assert_int_equal(mf_gen_status(g)->finish, MF_FINISH_STOP);
    assert_int_equal(mf_gen_status(g)->stop_index, -1);
    assert_string_equal(mf_gen_status(g)->content, " the");
    mf_gen_free(g);
    /* a token chosen with no room left is part of the answer, which ends there */
    memset(&c, 0, sizeof c);
    g = gen_new(llama, NULL, 0, -1, &c);
    assert_int_equal(mf_gen_next_token(g, ids[0], 1), ids[0]);
    assert_int_equal(mf_gen_next_token(g, ids[1], 0), -1);
    assert_int_equal(mf_gen_status(g)->finish, MF_FINISH_CONTEXT);
    assert_string_equal(c.text[0], " the cat");
    mf_gen_free(g);
    /* max_tokens 0: finished before any token */
    memset(&c, 0, sizeof c);
    g = gen_new(llama, NULL, 0, 0, &c);
    assert_int_equal(mf_gen_status(g)->finish, MF_FINISH_LENGTH);
    assert_int_equal(mf_gen_next_token(g, ids[0], 10), -1);
    assert_int_equal(mf_gen_finish(g, MF_FINISH_NONE)->n_generated, 0);
    mf_gen_free(g);
    /* logits nothing can be drawn from */
    int V = llama->hp.n_vocab;
    float *l = malloc(sizeof(float) * (size_t)V);
    for (int v = 0; v < V; v++) l[v] = -INFINITY;
    mf_gen_params p = mf_gen_defaults();
    mf_err err;
    g = mf_gen_new(llama, &p, NULL, NULL, &err);
    assert_int_equal(mf_gen_next(g, l, NULL, 0, 10), -1);
    assert_int_equal(mf_gen_status(g)->finish, MF_FINISH_ERROR);
    assert_non_null(strstr(mf_gen_status(g)->error, "not finite"));
    mf_gen_free(g);
    free(l);
    /* a token outside the vocabulary */
    g = mf_gen_new(llama, &p, NULL, NULL, &err);
    assert_int_equal(mf_gen_next_token(g, V, 10), -1);
    assert_int_equal(mf_gen_status(g)->finish, MF_FINISH_ERROR);
    mf_gen_free(g);
}

/* Bad parameters: one line each. */
static void bad_params(void **state)
{
    (void)state;
    mf_err err;
    mf_gen_params p = mf_gen_defaults();
    const char *empty[] = {"ok", ""};
    p.stop = empty;
    p.n_stop = 2;
    assert_int_equal(mf_gen_check(llama, &p, 100, &err), -1);
    assert_string_equal(err.msg, "stop string 2 is empty");
    assert_null(mf_gen_new(llama, &p, NULL, NULL, &err));
    char long_stop[400];
    memset(long_stop, 'q', sizeof long_stop - 1);
    long_stop[sizeof long_stop - 1] = 0;
    const char *lng[] = {long_stop};
    p.stop = lng;
    p.n_stop = 1;
    assert_int_equal(mf_gen_check(llama, &p, 1000, &err), 0);
    assert_int_equal(mf_gen_check(llama, &p, 64, &err), -1);
    assert_non_null(strstr(err.msg, "but the context holds 64"));
    p.n_stop = 0;
    p.logprobs = 1;
    p.top_logprobs = 21;
    assert_int_equal(mf_gen_check(llama, &p, 0, &err), -1);
    assert_non_null(strstr(err.msg, "top_logprobs 21"));
    p = mf_gen_defaults();
    p.format = MF_CHAT_HARMONY;
    assert_int_equal(mf_gen_check(llama, &p, 0, &err), -1);
    assert_non_null(strstr(err.msg, "harmony"));
    p.format = 17;
    assert_int_equal(mf_gen_check(llama, &p, 0, &err), -1);
}

/* ------------------------------------------------------------------ harmony */

/* Completions as the format writes them, tokenized and fed: analysis to reasoning, final
 * to content, a call to functions.NAME to a structured call ending the answer. */
static void harmony_output(void **state)
{
    (void)state;
    int32_t ids[512];
    int n = ids_of(oss,
                   "<|channel|>analysis<|message|>User asks 2+2.<|end|><|start|>assistant<|channel|>final"
                   "<|message|>It is 4.<|return|>",
                   ids, 512);
    capture c = {0};
    mf_gen *g = gen_new(oss, NULL, 0, -1, &c);
    const mf_gen_result *r = feed(g, ids, n);
    assert_int_equal(r->finish, MF_FINISH_STOP);
    assert_int_equal(r->n_generated, n);
    assert_string_equal(r->content, "It is 4.");
    assert_string_equal(r->reasoning, "User asks 2+2.");
    assert_string_equal(c.text[MF_DELTA_CONTENT], "It is 4.");
    assert_string_equal(c.text[MF_DELTA_REASONING], "User asks 2+2.");
    assert_int_equal(r->n_calls, 0);
    mf_gen_free(g);

    /* a preamble, then a call: content, then the call announced and its arguments streamed */
    n = ids_of(oss,
               "<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>commentary "
               "to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>",
               ids, 512);
    memset(&c, 0, sizeof c);
    g = gen_new(oss, NULL, 0, -1, &c);
    r = feed(g, ids, n);
    assert_int_equal(r->finish, MF_FINISH_TOOL_CALLS);
    assert_string_equal(r->content, "Checking.");
    assert_null(r->reasoning);
    assert_int_equal(r->n_calls, 1);
    assert_string_equal(r->calls[0].name, "get_weather");
    assert_string_equal(r->calls[0].arguments, "{\"city\": \"Paris\"}");
    assert_true(!strncmp(r->calls[0].id, "call_", 5) && strlen(r->calls[0].id) == 21);
    assert_int_equal(c.n_calls, 1);
    assert_string_equal(c.call_name[0], "get_weather");
    assert_string_equal(c.call_id[0], r->calls[0].id);
    assert_string_equal(c.text[MF_DELTA_TOOL_CALL], r->calls[0].arguments);
    mf_gen_free(g);

    /* stop strings watch the content only; a call's arguments are not cut */
    const char *stop[] = {"Paris", "4."};
    memset(&c, 0, sizeof c);
    g = gen_new(oss, stop, 2, -1, &c);
    r = feed(g, ids, n);
    assert_int_equal(r->finish, MF_FINISH_TOOL_CALLS);
    assert_string_equal(r->calls[0].arguments, "{\"city\": \"Paris\"}");
    mf_gen_free(g);
    n = ids_of(oss, "<|channel|>final<|message|>It is 4.<|return|>", ids, 512);
    memset(&c, 0, sizeof c);
    g = gen_new(oss, stop, 2, -1, &c);
    r = feed(g, ids, n);
    assert_int_equal(r->finish, MF_FINISH_STOP);
    assert_int_equal(r->stop_index, 1);
    assert_string_equal(r->content, "It is ");
    mf_gen_free(g);

    /* cut off inside the arguments: the call as far as it went, finish length */
    n = ids_of(oss, "<|start|>assistant to=functions.lookup<|channel|>commentary json<|message|>{\"q\": ", ids, 512);
    memset(&c, 0, sizeof c);
    g = gen_new(oss, NULL, 0, n, &c);
    r = feed(g, ids, n);
    assert_int_equal(r->finish, MF_FINISH_LENGTH);
    assert_int_equal(r->n_calls, 1);
    assert_string_equal(r->calls[0].name, "lookup");
    assert_string_equal(r->calls[0].arguments, "{\"q\": ");
    mf_gen_free(g);
}

/* Both directions: a conversation whose assistant turn is a tool call renders to exactly the
 * prompt followed by the model's completion (so the cache of that completion is reused
 * token for token), and parsing those tokens gives the same call back. */
static void harmony_round_trip(void **state)
{
    (void)state;
    const char *completion = "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>"
                             "commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Oslo\"}"
                             "<|call|>";
    mf_err err;
    mf_chat_opts o = {.reasoning = "low"};
    mf_chat_msg q = {.role = MF_ROLE_USER, .content = "Weather in Oslo?"};
    char *prompt = mf_chat_render_conv(MF_CHAT_HARMONY, &q, 1, &o, 1, &err);
    assert_non_null(prompt);
    /* parse */
    int32_t ids[512];
    int n = ids_of(oss, completion, ids, 512);
    capture c = {0};
    mf_gen *g = gen_new(oss, NULL, 0, -1, &c);
    const mf_gen_result *r = feed(g, ids, n);
    assert_int_equal(r->finish, MF_FINISH_TOOL_CALLS);
    /* render the result back into the history */
    mf_chat_msg conv[2] = {q,
                           {.role = MF_ROLE_ASSISTANT,
                            .content = r->content[0] ? r->content : NULL,
                            .reasoning = r->reasoning,
                            .tool_calls = r->calls,
                            .n_tool_calls = r->n_calls}};
    char *hist = mf_chat_render_conv(MF_CHAT_HARMONY, conv, 2, &o, 0, &err);
    if (!hist) fail_msg("%s", err.msg);
    char want[2048];
    snprintf(want, sizeof want, "%s%s", prompt, completion);
    assert_string_equal(hist, want);
    /* token for token */
    int32_t a[1024], b[1024];
    int64_t na = mf_chat_tokenize(oss->tok, MF_CHAT_HARMONY, hist, a, 1024, &err);
    int64_t np = mf_chat_tokenize(oss->tok, MF_CHAT_HARMONY, prompt, b, 1024, &err);
    assert_int_equal(na, np + n);
    assert_memory_equal(a, b, sizeof(int32_t) * (size_t)np);
    assert_memory_equal(a + np, ids, sizeof(int32_t) * (size_t)n);
    /* the history parsed again from after the prompt: the same structure */
    memset(&c, 0, sizeof c);
    mf_gen *g2 = gen_new(oss, NULL, 0, -1, &c);
    const mf_gen_result *r2 = feed(g2, a + np, (int)(na - np));
    assert_string_equal(r2->reasoning, r->reasoning);
    assert_int_equal(r2->n_calls, 1);
    assert_string_equal(r2->calls[0].name, r->calls[0].name);
    assert_string_equal(r2->calls[0].arguments, r->calls[0].arguments);
    mf_gen_free(g2);
    mf_gen_free(g);
    free(hist);
    free(prompt);
}

/* ------------------------------------------------------------------ mf_generate on a session */

static mf_session *session(mf_model *m, int n_ctx, int max_batch)
{
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_threads = 1;
    o.n_ctx = n_ctx;
    o.max_batch = max_batch;
    mf_err err;
    mf_session *s = mf_session_new(m, &o, &err);
    if (!s) fail_msg("%s", err.msg);
    return s;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb)
{
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* Turn 2 of a conversation evaluates only what is new: the cached tokens of turn 1 (its
 * prompt and the answer's evaluated tokens) are kept, and the answer is the one a fresh
 * session gives. */
static void prefix_reuse(void **state)
{
    (void)state;
    mf_session *s = session(llama, 256, 64);
    mf_err err;
    mf_gen_params p = mf_gen_defaults();
    p.sampler.temp = 0;
    p.max_tokens = 6;
    mf_chat_msg turn1[] = {{.role = MF_ROLE_USER, .content = "Once upon a time there was a girl"}};
    char *t1 = mf_chat_render_conv(MF_CHAT_NONE, turn1, 1, NULL, 1, &err);
    int32_t p1[256], p2[256];
    int n1 = (int)mf_chat_tokenize(llama->tok, MF_CHAT_NONE, t1, p1, 256, &err);
    mf_gen_result r1;
    assert_int_equal(mf_generate(s, p1, n1, &p, NULL, NULL, &r1, &err), 0);
    assert_int_equal(r1.n_prompt, n1);
    assert_int_equal(r1.n_cached, 0);
    assert_int_equal(r1.n_generated, 6);
    assert_int_equal(r1.n_decode, 5); /* the last token is chosen, not evaluated */
    assert_int_equal(mf_session_pos(s), n1 + 5);

    mf_chat_msg turn2[] = {
        turn1[0], {.role = MF_ROLE_ASSISTANT, .content = r1.content}, {.role = MF_ROLE_USER, .content = "The end"}};
    char *t2 = mf_chat_render_conv(MF_CHAT_NONE, turn2, 3, NULL, 1, &err);
    int n2 = (int)mf_chat_tokenize(llama->tok, MF_CHAT_NONE, t2, p2, 256, &err);
    int cached = common_prefix(mf_session_tokens(s), mf_session_pos(s), p2, n2);
    assert_true(cached >= n1); /* at least the whole first prompt */
    mf_gen_result r2;
    assert_int_equal(mf_generate(s, p2, n2, &p, NULL, NULL, &r2, &err), 0);
    assert_int_equal(r2.n_cached, cached);
    /* the count evaluated on turn 2: the new tokens only */
    assert_int_equal(r2.n_prompt - r2.n_cached, n2 - cached);
    assert_true(n2 - cached < n2 - n1 + 6);

    /* the same answer from a fresh session */
    mf_session *f = session(llama, 256, 64);
    mf_gen_result r3;
    assert_int_equal(mf_generate(f, p2, n2, &p, NULL, NULL, &r3, &err), 0);
    assert_int_equal(r3.n_cached, 0);
    assert_string_equal(r2.content, r3.content);

    /* the whole prompt in the cache with its logits: nothing evaluated */
    int n4 = mf_session_pos(s);
    int32_t p4[256];
    memcpy(p4, mf_session_tokens(s), sizeof(int32_t) * (size_t)n4);
    mf_gen_result r4;
    p.max_tokens = 1;
    assert_int_equal(mf_generate(s, p4, n4, &p, NULL, NULL, &r4, &err), 0);
    assert_int_equal(r4.n_cached, n4);
    /* a prompt shorter than the cache: its last token is evaluated again for its logits */
    mf_gen_result r5;
    assert_int_equal(mf_generate(s, p4, n1, &p, NULL, NULL, &r5, &err), 0);
    assert_int_equal(r5.n_cached, n1 - 1);
    assert_true(!strncmp(r1.content, r5.content, strlen(r5.content))); /* the same first token */
    mf_gen_result_free(&r1);
    mf_gen_result_free(&r2);
    mf_gen_result_free(&r3);
    mf_gen_result_free(&r4);
    mf_gen_result_free(&r5);
    free(t1);
    free(t2);
    mf_session_free(s);
    mf_session_free(f);
}

/* Sliding-window layers (gpt-oss tiny: window 8): with steps of at most 4 tokens the ring
 * has 8 + 4 - 1 = 11 slots. After 40 positions it holds 29..39, so the cache can go back to
 * position 36 (the query there needs 29..35) but not to 35 (it needs 28): then the prompt
 * is evaluated from the start. Going back and evaluating again gives the logits a fresh
 * session gives, bit for bit (the same steps). */
static void sliding_window_rewind(void **state)
{
    (void)state;
    assert_int_equal(oss->hp.window, 8);
    mf_session *s = session(oss, 128, 4), *f = session(oss, 128, 4);
    int32_t t[48];
    mf_rng rng = {99};
    for (int i = 0; i < 48; i++) t[i] = (int32_t)(mf_rng_u64(&rng) % 200);
    mf_err err;
    assert_int_equal(mf_session_eval(s, t, 40, NULL, &err), 0);
    int32_t u[48];
    memcpy(u, t, sizeof u);
    u[36] ^= 1; /* differs from position 36 on */
    assert_int_equal(mf_session_reusable(s, u, 48), 36);
    u[36] = t[36];
    u[35] ^= 1; /* from 35 on: the ring no longer holds position 28 */
    assert_int_equal(mf_session_reusable(s, u, 48), 0);
    assert_int_equal(mf_session_truncate(s, 35, &err), -1);
    assert_non_null(strstr(err.msg, "sliding-window"));
    /* back to 36 with different tokens after it: the fresh session's logits */
    u[35] = t[35];
    for (int i = 36; i < 48; i++) u[i] = (t[i] + 7) % 200;
    assert_int_equal(mf_session_truncate(s, 36, &err), 0);
    assert_int_equal(mf_session_pos(s), 36);
    assert_int_equal(mf_session_has_logits(s), 0);
    assert_int_equal(mf_session_eval(s, u + 36, 12, NULL, &err), 0);
    assert_int_equal(mf_session_eval(f, u, 48, NULL, &err), 0);
    int V = oss->hp.n_vocab;
    float *a = malloc(sizeof(float) * (size_t)V);
    memcpy(a, mf_session_logits(s, &err), sizeof(float) * (size_t)V);
    assert_memory_equal(a, mf_session_logits(f, &err), sizeof(float) * (size_t)V);
    assert_memory_equal(mf_session_tokens(s), u, sizeof u);
    /* mf_generate falls back to the start when the rings cannot go back that far */
    u[20] ^= 1;
    mf_gen_params p = mf_gen_defaults();
    p.sampler.temp = 0;
    p.max_tokens = 1;
    mf_gen_result r;
    assert_int_equal(mf_generate(s, u, 48, &p, NULL, NULL, &r, &err), 0);
    assert_int_equal(r.n_cached, 0);
    mf_gen_result_free(&r);
    free(a);
    mf_session_free(s);
    mf_session_free(f);
}

/* mf_generate's one-line refusals, and the context's end. */
static void generate_limits(void **state)
{
    (void)state;
    mf_session *s = session(llama, 16, 16);
    mf_err err;
    mf_gen_params p = mf_gen_defaults();
    p.sampler.temp = 0;
    int32_t ids[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    mf_gen_result r;
    assert_int_equal(mf_generate(s, ids, 0, &p, NULL, NULL, &r, &err), -1);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(mf_generate(s, ids, 17, &p, NULL, NULL, &r, &err), -1);
    assert_string_equal(err.msg, "the prompt has 17 tokens but the context holds 16");
    /* 14 prompt tokens: two more fit, the third is chosen and ends the answer */
    assert_int_equal(mf_generate(s, ids, 14, &p, NULL, NULL, &r, &err), 0);
    assert_int_equal(r.finish, MF_FINISH_CONTEXT);
    assert_int_equal(r.n_generated, 3);
    assert_int_equal(mf_session_pos(s), 16);
    mf_gen_result_free(&r);
    mf_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_holdback),
        cmocka_unit_test(several_stops),
        cmocka_unit_test(utf8_boundaries),
        cmocka_unit_test(stops_randomized),
        cmocka_unit_test(logprobs),
        cmocka_unit_test(top_logprobs),
        cmocka_unit_test(ends),
        cmocka_unit_test(bad_params),
        cmocka_unit_test(harmony_output),
        cmocka_unit_test(harmony_round_trip),
        cmocka_unit_test(prefix_reuse),
        cmocka_unit_test(sliding_window_rewind),
        cmocka_unit_test(generate_limits),
    };
    if (setup()) {
        fprintf(stderr, "test_generate: mkmodel could not make the test models\n");
        return 1;
    }
    int rc = MF_RUN("generate", tests);
    teardown();
    return rc;
}
