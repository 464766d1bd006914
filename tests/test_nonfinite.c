/* test_nonfinite.c — NaN and infinity from a model file (issue 11).
 *
 * A file can make the logits NaN: float keys outside their domain (RoPE bases, scaling
 * factors, epsilon), or NaN/inf in the weights. minfer refuses what it can check cheaply at
 * load — every float key, the vectors (norms, biases, sinks) and the MoE router — and for
 * the big matrices checks the logits at every generation step, naming the first stage (the
 * embeddings, a layer, the output matrix) whose output is not finite. Each case is a file
 * made by mkmodel and then rewritten (a key changed or added) or patched (one value made
 * NaN) here, and each must end with a one-line error and exit 1 — never token 0 forever. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "minfer.h"

static const char *mk(const char *name, const char *const *args)
{
    const char *path = mf_tmp_path(name);
    const char *full[24] = {"-o", path};
    int n = 2;
    for (int i = 0; args[i] && n < 23; i++) full[n++] = args[i];
    full[n] = NULL;
    mf_proc p = mf_run_tool("mkmodel", full);
    if (p.rc != 0) fail_msg("mkmodel: %s", p.err);
    mf_proc_free(&p);
    return path;
}

/* SRC copied to DST with the F32 key `key` set to v (added if absent). */
static void rewrite(const char *src, const char *dst, const char *key, float v)
{
    const mf_key_edit e = {.key = key, .type = MF_GGUF_F32, .f = v};
    mf_copy_gguf(src, dst, &e, 1);
}

/* Write `bytes` (n of them) into tensor `name` of the file at path, at byte `at` of its
 * data, every `stride` bytes `count` times. */
static void patch(const char *path, const char *name, uint64_t at, uint64_t stride, uint64_t count, const void *bytes,
                  size_t n)
{
    mf_err err;
    mf_gguf *g = mf_gguf_open(path, &err);
    if (!g) fail_msg("%s", err.msg);
    const mf_gguf_tensor *t = mf_gguf_find_tensor(g, name);
    if (!t) fail_msg("no tensor %s", name);
    uint64_t off = mf_gguf_data_offset(g) + t->offset + at;
    mf_gguf_close(g);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    for (uint64_t i = 0; i < count; i++) {
        assert_int_equal(fseeko(f, (off_t)(off + i * stride), SEEK_SET), 0);
        assert_int_equal(fwrite(bytes, 1, n, f), n);
    }
    assert_int_equal(fclose(f), 0);
}

static const float F_NAN = NAN;
static const uint16_t H_NAN = 0x7E00; /* binary16 NaN: the scale of a Q8_0 block */

/* minfer run on FILE with extra options: exit 1 and exactly one line on stderr holding
 * `phrase` (the statistics are not printed after an error). */
static void expect_run_error(const char *file, const char *const *opts, const char *phrase)
{
    const char *args[24] = {"run", "-m", file, "-p", "Once upon a time", "-n", "8", "--device", "cpu"};
    int n = 9;
    for (int i = 0; opts && opts[i]; i++) args[n++] = opts[i];
    args[n] = NULL;
    mf_proc p = mf_run_tool_timeout("minfer", args, 120);
    if (p.sig) fail_msg("%s: killed by signal %d: %s", file, p.sig, p.err);
    if (p.rc != 1) fail_msg("%s: exit %d, expected 1 (stdout '%.80s', stderr %s)", file, p.rc, p.out, p.err);
    if (!strstr(p.err, phrase)) fail_msg("%s: expected '%s' in: %s", file, phrase, p.err);
    const char *nl = strchr(p.err, '\n');
    if (!nl || nl[1]) fail_msg("%s: expected one line on stderr: %s", file, p.err);
    mf_proc_free(&p);
}

static void expect_load_error(const char *file, const char *phrase)
{
    mf_err err;
    mf_model *m = mf_model_load(file, &err);
    if (m) {
        mf_model_free(m);
        fail_msg("%s: loaded, expected '%s'", file, phrase);
    }
    if (!strstr(err.msg, phrase)) fail_msg("%s: expected '%s' in: %s", file, phrase, err.msg);
    expect_run_error(file, NULL, phrase);
}

static const char *const LLAMA[] = {"--layers",   "2", "--dim", "64", "--heads", "4",
                                    "--kv-heads", "2", "--ff",  "96", NULL};
static const char *const GPT_OSS[] = {"--arch", "gpt-oss", NULL};

static void keys_out_of_domain(void **state)
{
    (void)state;
    const char *oss = mk("nf-oss.gguf", GPT_OSS), *llama = mk("nf-llama.gguf", LLAMA),
               *bad = mf_tmp_path("nf-key.gguf");
    const struct {
        const char **src;
        const char *key;
        float v;
        const char *phrase;
    } cases[] = {
        {&oss, "gpt-oss.rope.freq_base_swa", INFINITY,
         "'gpt-oss.rope.freq_base_swa' = inf is invalid (must be a finite number > 1)"},
        {&oss, "gpt-oss.rope.freq_base_swa", NAN, "'gpt-oss.rope.freq_base_swa' = nan is invalid"},
        {&oss, "gpt-oss.rope.freq_base_swa", 0.5f, "'gpt-oss.rope.freq_base_swa' = 0.5 is invalid"},
        {&oss, "gpt-oss.rope.freq_base", INFINITY, "'gpt-oss.rope.freq_base' = inf is invalid"},
        {&oss, "gpt-oss.rope.scaling.attn_factor", 1e-40f,
         "'gpt-oss.rope.scaling.attn_factor' = 9.99995e-41 is invalid"},
        {&oss, "gpt-oss.rope.scaling.attn_factor", NAN, "'gpt-oss.rope.scaling.attn_factor' = nan is invalid"},
        {&oss, "gpt-oss.rope.scaling.factor", 1e-40f, "'gpt-oss.rope.scaling.factor' = 9.99995e-41 is invalid"},
        {&oss, "gpt-oss.rope.scaling.factor", INFINITY, "'gpt-oss.rope.scaling.factor' = inf is invalid"},
        {&oss, "gpt-oss.attention.layer_norm_rms_epsilon", NAN,
         "layer_norm_rms_epsilon' = nan is invalid (must be in (0, 1))"},
        {&llama, "llama.rope.freq_base", NAN, "'llama.rope.freq_base' = nan is invalid"},
        {&llama, "llama.rope.scaling.factor", -INFINITY, "'llama.rope.scaling.factor' = -inf is invalid"},
        {&llama, "llama.rope.scale_linear", 1e-38f, "'llama.rope.scale_linear' = 1e-38 is invalid"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rewrite(*cases[i].src, bad, cases[i].key, cases[i].v);
        expect_load_error(bad, cases[i].phrase);
    }
    /* in the domain: a sliding-window base of its own loads and runs */
    rewrite(oss, bad, "gpt-oss.rope.freq_base_swa", 10000.0f);
    const char *args[] = {"run", "-m", bad, "-p", "hi", "-n", "4", "--device", "cpu", NULL};
    mf_proc p = mf_run_tool("minfer", args);
    if (p.rc != 0) fail_msg("freq_base_swa 10000: %s", p.err);
    mf_proc_free(&p);
    unlink(bad);
    unlink(oss);
    unlink(llama);
}

/* NaN in a vector or the router: refused at load, naming the tensor and the element. */
static void vectors_and_router(void **state)
{
    (void)state;
    const struct {
        const char *const *shape;
        const char *tensor;
        uint64_t elem;
        const char *phrase;
    } cases[] = {
        {LLAMA, "blk.0.attn_norm.weight", 5, "tensor 'blk.0.attn_norm.weight' holds NaN at element 5"},
        {LLAMA, "output_norm.weight", 0, "tensor 'output_norm.weight' holds NaN at element 0"},
        {GPT_OSS, "blk.1.attn_sinks.weight", 2, "tensor 'blk.1.attn_sinks.weight' holds NaN at element 2"},
        {GPT_OSS, "blk.3.ffn_gate_inp.weight", 300, "tensor 'blk.3.ffn_gate_inp.weight' holds NaN at element 300"},
        {GPT_OSS, "blk.2.post_attention_norm.weight", 7, "tensor 'blk.2.post_attention_norm.weight' holds NaN"},
        {GPT_OSS, "blk.0.attn_q.bias", 1, "tensor 'blk.0.attn_q.bias' holds NaN at element 1"},
        {GPT_OSS, "blk.0.ffn_down_exps.bias", 9, "tensor 'blk.0.ffn_down_exps.bias' holds NaN at element 9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *f = mk("nf-vec.gguf", cases[i].shape);
        patch(f, cases[i].tensor, 4 * cases[i].elem, 0, 1, &F_NAN, 4);
        expect_load_error(f, cases[i].phrase);
        unlink(f);
    }
    /* +inf is refused the same way */
    const char *f = mk("nf-vec.gguf", GPT_OSS);
    const float inf = INFINITY;
    patch(f, "blk.0.ffn_gate_inp.bias", 0, 0, 1, &inf, 4);
    expect_load_error(f, "tensor 'blk.0.ffn_gate_inp.bias' holds +inf at element 0");
    unlink(f);
}

/* NaN in a matrix: the model loads; the first step with non-finite logits stops the run and
 * names where they came from. Greedy and sampling (with min-p off: issue 11's read before
 * the candidate array) both check. */
static void weights_named_at_run(void **state)
{
    (void)state;
    const char *const greedy[] = {"--temp", "0", NULL};
    const char *const sampled[] = {"--temp", "0.8", "--min-p", "0", "--seed", "1", NULL};
    const char *const *modes[] = {greedy, sampled};
    /* llama tiny, F32 everywhere (d 64): rows of 256 bytes */
    const char *f = mk("nf-w.gguf", LLAMA);
    patch(f, "blk.1.attn_q.weight", 0, 0, 1, &F_NAN, 4);
    for (int k = 0; k < 2; k++)
        expect_run_error(f, modes[k], "layer 1 (of 2, blk.1.*) is the first whose output holds NaN (position 0");
    unlink(f);
    f = mk("nf-w.gguf", LLAMA);
    patch(f, "token_embd.weight", 12, 256, 512, &F_NAN, 4); /* element 3 of every row */
    for (int k = 0; k < 2; k++)
        expect_run_error(f, modes[k],
                         "the token embedding (token_embd.weight) of token 1 at position 0 holds NaN (element 3)");
    unlink(f);
    f = mk("nf-w.gguf", LLAMA);
    patch(f, "output.weight", 4 * 64 * 7, 0, 1, &F_NAN, 4); /* row 7: the logit of token 7 */
    for (int k = 0; k < 2; k++)
        expect_run_error(
            f, modes[k],
            "the logits are not finite (NaN for token 7) although every layer's output is: the output norm or the output matrix (output.weight)");
    unlink(f);
    /* gpt-oss tiny: Q8_0 attention, the scale of every block of layer 2's V projection */
    f = mk("nf-w.gguf", GPT_OSS);
    patch(f, "blk.2.attn_v.weight", 0, 34, 4 * 32, &H_NAN, 2); /* [128 in, 32 out]: 4 blocks per row */
    for (int k = 0; k < 2; k++)
        expect_run_error(f, modes[k], "layer 2 (of 4, blk.2.*) is the first whose output holds NaN");
    unlink(f);
}

/* The prompt's logits are finite; the first generated token's embedding is not: the step
 * that evaluates it stops the run, naming the token and its position (the prompt's first
 * token is printed, then the error). */
static void nonfinite_during_generation(void **state)
{
    (void)state;
    const char *f = mk("nf-gen.gguf", LLAMA);
    mf_err err;
    mf_model *m = mf_model_load(f, &err);
    if (!m) fail_msg("%s", err.msg);
    mf_session_opts o = mf_session_defaults();
    o.device = "cpu";
    mf_session *s = mf_session_new(m, &o, &err);
    assert_non_null(s);
    int32_t ids[64];
    int64_t n = mf_tokenize(m->tok, "Once upon a time", 16, 1, 0, ids, 64, &err);
    assert_true(n > 0 && n < 64);
    assert_int_equal(mf_session_eval(s, ids, (int)n, NULL, &err), 0);
    int32_t first = mf_session_argmax(s);
    assert_true(first >= 0);
    mf_session_free(s);
    mf_model_free(m);
    patch(f, "token_embd.weight", 256ull * (uint64_t)first, 0, 1, &F_NAN, 4);
    char phrase[160];
    snprintf(phrase, sizeof phrase,
             "the token embedding (token_embd.weight) of token %d at position %d holds NaN (element 0)", first, (int)n);
    const char *const greedy[] = {"--temp", "0", NULL};
    expect_run_error(f, greedy, phrase);
    unlink(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_out_of_domain),
        cmocka_unit_test(vectors_and_router),
        cmocka_unit_test(weights_named_at_run),
        cmocka_unit_test(nonfinite_during_generation),
    };
    return MF_RUN("nonfinite", tests);
}
