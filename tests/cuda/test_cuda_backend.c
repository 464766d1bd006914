/* test_cuda_backend.c — the whole CUDA backend (backend_cuda.cu: upload, session state,
 * step protocol, CUDA graphs) through the session API, against the CPU backend on
 * stories260K.gguf (all F32, so both sides compute in fp32):
 *   - the llama-arch.md §6 prompt: the greedy argmax per position is the spec's, all logits
 *     agree with the CPU within 1e-4·max|logit| (float32 cache) / 5e-3 (binary16 cache:
 *     keys and values rounded to 11 bits, relative 4.9e-4, through 5 layers);
 *   - 40 decoded tokens, teacher-forced with the CPU's choice: logits within the same
 *     tolerances at every position, and with CUDA graphs bit-identical to without (the graph
 *     replays the very kernels at every position, reading it from device memory);
 *   - a 100-token prompt in steps of 64 (the cuBLAS SGEMM path, prompt attention with two
 *     rows' blocks spanning earlier steps) against the CPU;
 *   - one prompt evaluated token by token and as one batch: the two GPU paths agree.
 * Skips without a GPU or without the model file. */
#include "gpu_util.h"
#include "minfer.h"

static const int32_t spec_ids[8] = {1, 403, 407, 261, 378, 432, 383, 286};
static const int32_t spec_argmax[8] = {403, 407, 261, 378, 432, 383, 286, 261};

static mf_session *open_session(mf_model *m, const char *dev, int kv_f16, int no_graph, int max_batch)
{
    mf_session_opts o = mf_session_defaults();
    o.device = dev;
    o.kv_f16 = kv_f16;
    o.no_graph = no_graph;
    o.n_ctx = 256;
    o.max_batch = max_batch;
    o.n_threads = 2;
    mf_err err;
    mf_session *s = mf_session_new(m, &o, &err);
    if (!s) fail_msg("session on %s: %s", dev, err.msg);
    assert_string_equal(mf_session_backend(s)->name, dev);
    return s;
}

static float max_abs(const float *v, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(v[i]));
    return m;
}

static void close_enough(const char *what, const float *got, const float *ref, size_t n, double rel)
{
    double tol = rel * max_abs(ref, n);
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - ref[i]) <= tol)) fail_msg("%s: [%zu] %.9g vs CPU %.9g (tol %.3g)", what, i, got[i], ref[i], tol);
}

static mf_model *load_stories(void)
{
    const char *path = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(path);
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s", err.msg);
    return m;
}

static void prompt_and_decode_vs_cpu(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    int V = m->hp.n_vocab;
    mf_session *cpu = open_session(m, "cpu", 0, 1, 64);
    struct { int f16, no_graph; double tol; } var[3] = {{0, 0, 1e-4}, {0, 1, 1e-4}, {1, 0, 5e-3}};
    mf_session *gpu[3];
    for (int i = 0; i < 3; i++) gpu[i] = open_session(m, "cuda", var[i].f16, var[i].no_graph, 64);
    float *ref = malloc(sizeof(float) * 8 * (size_t)V), *got = malloc(sizeof(float) * 8 * (size_t)V);
    float *graph_logits = malloc(sizeof(float) * (size_t)V);
    mf_err err;
    GPU_OK(mf_session_eval(cpu, spec_ids, 8, ref, &err), err);
    for (int i = 0; i < 3; i++) {
        GPU_OK(mf_session_eval(gpu[i], spec_ids, 8, got, &err), err);
        close_enough("prompt logits", got, ref, 8 * (size_t)V, var[i].tol);
        for (int p = 0; p < 8; p++) {
            int best = 0;
            for (int j = 1; j < V; j++)
                if (got[(size_t)p * V + j] > got[(size_t)p * V + best]) best = j;
            assert_int_equal(best, spec_argmax[p]);
        }
        assert_int_equal(mf_session_argmax(gpu[i]), spec_argmax[7]);
    }
    for (int step = 0; step < 40; step++) {
        int32_t tok = mf_session_argmax(cpu);
        GPU_OK(mf_session_eval(cpu, &tok, 1, NULL, &err), err);
        const float *lc = mf_session_logits(cpu, &err);
        assert_non_null(lc);
        for (int i = 0; i < 3; i++) {
            GPU_OK(mf_session_eval(gpu[i], &tok, 1, NULL, &err), err);
            const float *lg = mf_session_logits(gpu[i], &err);
            if (!lg) fail_msg("%s", err.msg);
            close_enough("decode logits", lg, lc, (size_t)V, var[i].tol);
            if (i == 0) memcpy(graph_logits, lg, sizeof(float) * (size_t)V);
            if (i == 1) assert_memory_equal(lg, graph_logits, sizeof(float) * (size_t)V);
        }
    }
    for (int i = 0; i < 3; i++) mf_session_free(gpu[i]);
    mf_session_free(cpu);
    free(ref);
    free(got);
    free(graph_logits);
    mf_model_free(m);
}

static void long_prompt_vs_cpu(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    int V = m->hp.n_vocab, n = 100;
    mf_rng r = {41};
    int32_t ids[100];
    ids[0] = 1;
    for (int i = 1; i < n; i++) ids[i] = 3 + (int32_t)(mf_rng_u64(&r) % (uint64_t)(V - 3));
    mf_session *cpu = open_session(m, "cpu", 0, 1, 64), *gpu = open_session(m, "cuda", 0, 0, 64);
    float *ref = malloc(sizeof(float) * (size_t)n * V), *got = malloc(sizeof(float) * (size_t)n * V);
    mf_err err;
    GPU_OK(mf_session_eval(cpu, ids, n, ref, &err), err);
    GPU_OK(mf_session_eval(gpu, ids, n, got, &err), err);
    close_enough("100-token prompt logits", got, ref, (size_t)n * V, 1e-4);
    mf_session_free(gpu);
    mf_session_free(cpu);
    free(ref);
    free(got);
    mf_model_free(m);
}

static void token_by_token_equals_batch(void **state)
{
    (void)state;
    mf_model *m = load_stories();
    int V = m->hp.n_vocab;
    mf_session *a = open_session(m, "cuda", 0, 0, 64), *b = open_session(m, "cuda", 0, 0, 64);
    float *la = malloc(sizeof(float) * 8 * (size_t)V), *lb = malloc(sizeof(float) * (size_t)V);
    mf_err err;
    GPU_OK(mf_session_eval(a, spec_ids, 8, la, &err), err);
    for (int p = 0; p < 8; p++) {
        GPU_OK(mf_session_eval(b, &spec_ids[p], 1, NULL, &err), err);
        const float *l = mf_session_logits(b, &err);
        assert_non_null(l);
        memcpy(lb, l, sizeof(float) * (size_t)V);
        close_enough("one token at a time vs batch", lb, la + (size_t)p * V, (size_t)V, 1e-4);
    }
    mf_session_free(a);
    mf_session_free(b);
    free(la);
    free(lb);
    mf_model_free(m);
}

int main(void)
{
    char names[1][128];
    if (mf_cuda_devices(names, 1, gpu_why, sizeof gpu_why) <= 0) {
        const struct CMUnitTest skip[] = {cmocka_unit_test(no_gpu)};
        return MF_RUN("cuda_backend", skip);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prompt_and_decode_vs_cpu),
        cmocka_unit_test(long_prompt_vs_cpu),
        cmocka_unit_test(token_by_token_equals_batch),
    };
    return MF_RUN("cuda_backend", tests);
}
