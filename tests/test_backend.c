/* test_backend.c — the per-model and per-session halves of the backend contract (backend.h)
 * on the CPU backend:
 *   - a second prepare of a model on a backend returns the same mf_bmodel, counted: it
 *     lives until its last unprepare, and two states on it are independent (their caches
 *     hold different sequences, each gives the logits a session of its own gives);
 *   - the model holds nothing of any backend: two sessions on one model (each with its own
 *     backend) open side by side and compute the same logits bit for bit;
 *   - the backend picks the KV cache type a session leaves open (kv_f16_default). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "minfer.h"

static const int32_t ids[8] = {1, 403, 407, 261, 378, 432, 383, 286};

static mf_model *load(void)
{
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s", err.msg);
    return m;
}

static mf_session *open_cpu(mf_model *m)
{
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_threads = 2;
    o.n_ctx = 64;
    mf_err err;
    mf_session *s = mf_session_new(m, &o, &err);
    if (!s) fail_msg("%s", err.msg);
    return s;
}

static void two_sessions_one_model(void **state)
{
    (void)state;
    mf_model *m = load();
    int V = m->hp.n_vocab;
    mf_session *a = open_cpu(m), *b = open_cpu(m);
    float *la = malloc(sizeof(float) * 8 * (size_t)V), *lb = malloc(sizeof(float) * 8 * (size_t)V);
    mf_err err;
    /* interleaved: a's steps must not disturb b's cache */
    if (mf_session_eval(a, ids, 4, la, &err) || mf_session_eval(b, ids, 8, lb, &err) ||
        mf_session_eval(a, ids + 4, 4, la + 4 * (size_t)V, &err))
        fail_msg("%s", err.msg);
    assert_memory_equal(la, lb, sizeof(float) * 8 * (size_t)V);
    assert_int_equal(mf_session_kv_f16(a), mf_session_backend(a)->kv_f16_default);
    assert_int_equal(mf_session_kv_f16(a), 1); /* the CPU: binary16 (docs/cpu.md §4) */
    mf_session_free(a);
    mf_session_free(b);
    free(la);
    free(lb);
    mf_model_free(m);
}

/* One backend, one prepared model, two states: the prepared model is shared and counted. */
static void prepared_model_is_shared(void **state)
{
    (void)state;
    mf_model *m = load();
    mf_err err;
    mf_backend *be = mf_backend_cpu_new(2, &err);
    if (!be) fail_msg("%s", err.msg);
    mf_bmodel *p1 = be->prepare(be, m, NULL, NULL, &err), *p2 = be->prepare(be, m, NULL, NULL, &err);
    assert_non_null(p1);
    assert_ptr_equal(p1, p2);
    be->unprepare(be, p2); /* one reference left: p1 stays valid */
    mf_state_opts o = {.n_ctx = 32, .max_batch = 8};
    mf_bstate *s1 = be->state_new(be, p1, &o, &err), *s2 = be->state_new(be, p1, &o, &err);
    assert_non_null(s1);
    assert_non_null(s2);
    assert_true(s1 != s2);
    be->state_free(be, s1);
    be->state_free(be, s2);
    be->unprepare(be, p1);
    /* prepared again after the last unprepare: a new one (the old one is gone: ASan) */
    mf_bmodel *p3 = be->prepare(be, m, NULL, NULL, &err);
    assert_non_null(p3);
    be->unprepare(be, p3);
    be->free(be);
    mf_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_sessions_one_model),
        cmocka_unit_test(prepared_model_is_shared),
    };
    return mf_run("test_backend", tests, sizeof tests / sizeof *tests);
}
