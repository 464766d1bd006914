/* test_prune.c — `minfer prune` (engine/prune.c) and `--skip-layers`.
 *
 *  - a pruned stories260K is a valid model whose every tensor is byte-identical to its
 *    source tensor (renamed), whose metadata is the source's with block_count lowered, and
 *    whose logits are bit-identical to the full model run with the same layers skipped
 *    (fast path and reference): the same weights go through the same operations;
 *  - per-layer metadata arrays lose the dropped entries (numbers and strings);
 *  - gpt-oss: drops that change a kept layer's attention kind are refused with the layer
 *    named, drops that keep them give a model equal to the skipped one;
 *  - hostile input: bad lists, out-of-range and repeated layers, dropping every layer, an
 *    output folder that does not exist: a clear error, no output, the input untouched.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "minfer.h"
#include "prune.h"
#include "ref_forward.h"

static const int32_t IDS[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 263};
#define N_IDS ((int)(sizeof IDS / sizeof IDS[0]))

static mf_model *load(const char *path)
{
    mf_err err;
    mf_model *m = mf_model_load(path, &err);
    if (!m) fail_msg("%s", err.msg);
    return m;
}

static float *fast_logits(mf_model *m, const int32_t *ids, int n)
{
    mf_err err;
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    o.n_ctx = n;
    o.n_threads = 1;
    mf_session *s = mf_session_new(m, &o, &err);
    if (!s) fail_msg("%s", err.msg);
    float *out = malloc(sizeof(float) * (size_t)n * m->hp.n_vocab);
    if (mf_session_eval(s, ids, n, out, &err)) fail_msg("%s", err.msg);
    mf_session_free(s);
    return out;
}

static float *ref_logits(const mf_model *m, const int32_t *ids, int n)
{
    mf_err err;
    int V = m->hp.n_vocab;
    mf_ref *r = mf_ref_new(m, n, &err);
    if (!r) fail_msg("%s", err.msg);
    float *out = malloc(sizeof(float) * (size_t)n * V);
    for (int t = 0; t < n; t++)
        if (mf_ref_forward(r, ids[t], t, out + (size_t)t * V, NULL, &err)) fail_msg("%s", err.msg);
    mf_ref_free(r);
    return out;
}

/* The pruned file at `pruned` equals `src` minus the layers drop[]: tensors renamed and
 * byte-identical, metadata identical but for block_count. */
static void assert_pruned_copy(const char *src, const char *pruned, const int *drop, int n_drop)
{
    mf_err err;
    mf_gguf *a = mf_gguf_open(src, &err), *b = mf_gguf_open(pruned, &err);
    assert_non_null(a);
    if (!b) fail_msg("%s", err.msg);
    mf_hparams ha, hb;
    assert_int_equal(mf_hparams_read(a, &ha, &err), 0);
    assert_int_equal(mf_hparams_read(b, &hb, &err), 0);
    assert_int_equal(hb.n_layers, ha.n_layers - n_drop);
    int map[64], k = 0;
    for (int l = 0; l < ha.n_layers; l++) {
        int gone = 0;
        for (int i = 0; i < n_drop; i++) gone |= drop[i] == l;
        map[l] = gone ? -1 : k++;
    }
    uint64_t kept = 0;
    for (uint64_t i = 0; i < mf_gguf_n_tensors(a); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(a, i);
        char name[96];
        int l;
        if (sscanf(t->name, "blk.%d.", &l) == 1) {
            if (map[l] < 0) { continue; }
            snprintf(name, sizeof name, "blk.%d.%s", map[l], strchr(t->name + 4, '.') + 1);
        } else {
            snprintf(name, sizeof name, "%s", t->name);
        }
        const mf_gguf_tensor *u = mf_gguf_find_tensor(b, name);
        if (!u) fail_msg("tensor %s (was %s) missing from the pruned file", name, t->name);
        assert_int_equal(u->type, t->type);
        assert_memory_equal(u->ne, t->ne, sizeof t->ne);
        assert_int_equal(u->nbytes, t->nbytes);
        assert_memory_equal(u->data, t->data, t->nbytes);
        kept++;
    }
    assert_int_equal(mf_gguf_n_tensors(b), kept);
    assert_int_equal(mf_gguf_n_kv(b), mf_gguf_n_kv(a));
    for (uint64_t i = 0; i < mf_gguf_n_kv(a); i++) {
        const mf_gguf_kv *x = mf_gguf_kv_at(a, i), *y = mf_gguf_find_kv(b, x->key);
        assert_non_null(y);
        assert_int_equal(x->type, y->type);
        if (strstr(x->key, ".block_count")) assert_int_equal(y->v.u, x->v.u - (uint64_t)n_drop);
        else if (x->type == MF_GGUF_STR) assert_string_equal(x->str, y->str);
        else if (x->type != MF_GGUF_ARR) assert_true(x->v.u == y->v.u);
        else if (x->arr_n != (uint64_t)ha.n_layers) assert_int_equal(x->arr_n, y->arr_n);
    }
    mf_gguf_close(a);
    mf_gguf_close(b);
}

static void stories_prune_is_skip(void **state)
{
    (void)state;
    const char *src = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(src);
    const char *out = mf_tmp_path("pruned.gguf");
    const int drop[] = {1, 3};
    mf_err err;
    size_t len0, len1;
    uint8_t *before = mf_read_file(src, &len0);
    if (mf_prune_file(src, out, drop, 2, NULL, &err)) fail_msg("%s", err.msg);
    assert_pruned_copy(src, out, drop, 2);
    uint8_t *after = mf_read_file(src, &len1);
    assert_true(len0 == len1 && memcmp(before, after, len0) == 0); /* input untouched */
    free(before);
    free(after);

    mf_model *full = load(src), *pruned = load(out);
    assert_int_equal(mf_model_skip_layers(full, drop, 2, &err), 0);
    assert_true(full->layers[1].skip && full->layers[3].skip && !full->layers[2].skip);
    float *a = fast_logits(full, IDS, N_IDS), *b = fast_logits(pruned, IDS, N_IDS);
    size_t nb = sizeof(float) * N_IDS * (size_t)full->hp.n_vocab;
    assert_memory_equal(a, b, nb);
    float *ra = ref_logits(full, IDS, N_IDS), *rb = ref_logits(pruned, IDS, N_IDS);
    assert_memory_equal(ra, rb, nb);
    /* and skipping changes the output (the flag is not ignored): stories260K's logits move
     * by several units without two of its five layers */
    mf_model *plain = load(src);
    float *c = fast_logits(plain, IDS, N_IDS);
    double maxdiff = 0;
    for (size_t i = 0; i < nb / 4; i++) maxdiff = fmax(maxdiff, fabs((double)c[i] - a[i]));
    assert_true(maxdiff > 1.0);
    free(a), free(b), free(c), free(ra), free(rb);
    mf_model_free(full);
    mf_model_free(pruned);
    mf_model_free(plain);
    unlink(out);
}

/* A copy of stories260K with per-layer arrays added (a number array and a string array
 * of length block_count, and an array of another length that must stay whole). */
static void write_with_layer_arrays(const char *src, const char *dst)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open(src, &err);
    assert_non_null(g);
    mf_gguf_writer *w = mf_gguf_writer_new();
    for (uint64_t i = 0; i < mf_gguf_n_kv(g); i++) assert_int_equal(mf_gguf_w_copy_kv(w, mf_gguf_kv_at(g, i)), 0);
    const int32_t per_layer[5] = {10, 11, 12, 13, 14}, other[4] = {1, 2, 3, 4};
    const char *names[5] = {"l0", "l1", "l2", "l3", "l4"};
    assert_int_equal(mf_gguf_w_arr(w, "llama.test_per_layer", MF_GGUF_I32, per_layer, 5), 0);
    assert_int_equal(mf_gguf_w_arr_str(w, "llama.test_names", names, NULL, 5), 0);
    assert_int_equal(mf_gguf_w_arr(w, "llama.test_other", MF_GGUF_I32, other, 4), 0);
    for (uint64_t i = 0; i < mf_gguf_n_tensors(g); i++) {
        const mf_gguf_tensor *t = mf_gguf_tensor_at(g, i);
        assert_true(mf_gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err) >= 0);
    }
    if (mf_gguf_w_write(w, dst, NULL, NULL, &err)) fail_msg("%s", err.msg);
    mf_gguf_writer_free(w);
    mf_gguf_close(g);
}

static void per_layer_arrays(void **state)
{
    (void)state;
    const char *src = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(src);
    const char *mid = mf_tmp_path("arrays.gguf"), *out = mf_tmp_path("arrays-pruned.gguf");
    write_with_layer_arrays(src, mid);
    const int drop[] = {3, 1};
    mf_err err;
    if (mf_prune_file(mid, out, drop, 2, NULL, &err)) fail_msg("%s", err.msg);
    assert_pruned_copy(mid, out, drop, 2);
    mf_gguf *g = mf_gguf_open(out, &err);
    assert_non_null(g);
    const mf_gguf_kv *kv = mf_gguf_find_kv(g, "llama.test_per_layer");
    assert_int_equal(kv->arr_n, 3);
    assert_int_equal(mf_gguf_arr_i32(kv, 0), 10);
    assert_int_equal(mf_gguf_arr_i32(kv, 1), 12);
    assert_int_equal(mf_gguf_arr_i32(kv, 2), 14);
    kv = mf_gguf_find_kv(g, "llama.test_names");
    assert_int_equal(kv->arr_n, 3);
    assert_memory_equal(kv->arr_str[1].ptr, "l2", 2);
    assert_int_equal(mf_gguf_find_kv(g, "llama.test_other")->arr_n, 4);
    mf_gguf_close(g);
    unlink(mid);
    unlink(out);
}

static int mkmodel(const char *out, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' %s > /dev/null 2>&1", mf_tool_path("mkmodel"), out, args);
    return system(cmd);
}

/* gpt-oss tiny: 4 layers, pattern 2 (layers 0 and 2 slide, 1 and 3 attend to everything). */
static void gpt_oss_keeps_layer_kinds(void **state)
{
    (void)state;
    const char *src = mf_tmp_path("oss.gguf"), *out = mf_tmp_path("oss-pruned.gguf");
    if (mkmodel(src, "--arch gpt-oss --preset tiny --seed 5 --threads 1") != 0) fail_msg("mkmodel failed");
    mf_err err;
    const int bad1[] = {1}, bad2[] = {0}, bad3[] = {0, 3}, good[] = {2, 3}, good2[] = {1, 2};
    assert_int_equal(mf_prune_file(src, out, bad1, 1, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "would move layer 2 (sliding-window attention) to index 1"));
    assert_non_null(strstr(err.msg, "multiple of 2"));
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(mf_prune_file(src, out, bad2, 1, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "would move layer 1 (full attention) to index 0"));
    assert_int_equal(mf_prune_file(src, out, bad3, 2, NULL, &err), -1);
    assert_int_equal(access(out, F_OK), -1);

    const int *drops[] = {good, good2};
    for (int k = 0; k < 2; k++) {
        if (mf_prune_file(src, out, drops[k], 2, NULL, &err)) fail_msg("%s", err.msg);
        assert_pruned_copy(src, out, drops[k], 2);
        mf_model *full = load(src), *pruned = load(out);
        assert_int_equal(pruned->hp.n_layers, 2);
        assert_true(pruned->layers[0].sliding && !pruned->layers[1].sliding);
        assert_int_equal(mf_model_skip_layers(full, drops[k], 2, &err), 0);
        int32_t ids[12];
        for (int i = 0; i < 12; i++) ids[i] = (int32_t)(7 * i + 3) % full->hp.n_vocab;
        float *a = fast_logits(full, ids, 12), *b = fast_logits(pruned, ids, 12);
        assert_memory_equal(a, b, sizeof(float) * 12 * (size_t)full->hp.n_vocab);
        free(a);
        free(b);
        mf_model_free(full);
        mf_model_free(pruned);
    }
    unlink(src);
    unlink(out);
}

static void hostile_input(void **state)
{
    (void)state;
    const char *src = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(src);
    const char *out = mf_tmp_path("hostile.gguf");
    size_t len0, len1;
    uint8_t *before = mf_read_file(src, &len0);
    struct {
        const char *list, *msg;
    } cases[] = {
        {"7", "cannot drop layer 7: the model has layers 0..4"},
        {"1,1", "layer 1 is listed twice"},
        {"0-4", "dropping all 5 layers would leave no model"},
        {"1,x", "bad value '1,x' for --drop-layers"},
        {"3-1", "bad value '3-1' for --drop-layers"},
        {"-1", "bad value '-1' for --drop-layers"},
        {"", "bad value '' for --drop-layers"},
        {"99999999999", "bad value '99999999999'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *args[] = {"prune", src, out, "--drop-layers", cases[i].list, NULL};
        mf_proc p = mf_run_tool("minfer", args);
        if (p.rc == 0 || !strstr(p.err, cases[i].msg)) fail_msg("%s: rc %d, stderr: %s", cases[i].list, p.rc, p.err);
        assert_int_equal(access(out, F_OK), -1);
        mf_proc_free(&p);
    }
    const char *args[] = {"prune", src, "/nonexistent-dir/p.gguf", "--drop-layers", "1", NULL};
    mf_proc p = mf_run_tool("minfer", args);
    assert_int_equal(p.rc, 1);
    assert_non_null(strstr(p.err, "/nonexistent-dir/p.gguf: cannot create: No such file or directory"));
    mf_proc_free(&p);
    const char *args2[] = {"prune", src, out, NULL};
    p = mf_run_tool("minfer", args2);
    assert_int_equal(p.rc, 2);
    mf_proc_free(&p);
    /* --skip-layers is checked against the model */
    const char *args3[] = {"run", "-m", src, "-p", "Once", "-n", "1", "--skip-layers", "5", NULL};
    p = mf_run_tool("minfer", args3);
    assert_int_equal(p.rc, 1);
    assert_non_null(strstr(p.err, "--skip-layers: cannot skip layer 5: the model has layers 0..4"));
    mf_proc_free(&p);
    uint8_t *after = mf_read_file(src, &len1);
    assert_true(len0 == len1 && memcmp(before, after, len0) == 0);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stories_prune_is_skip),
        cmocka_unit_test(per_layer_arrays),
        cmocka_unit_test(gpt_oss_keeps_layer_kinds),
        cmocka_unit_test(hostile_input),
    };
    return MF_RUN("prune", tests);
}
