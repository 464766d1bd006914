/* test_run.c — the `minfer run` driver end to end, as a user calls it: streamed text, chat
 * formats (a scripted tiny gpt-oss file answering in harmony's final channel), seeds, stop
 * conditions, --logits-out, and the one-line errors for bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* run a shell command; capture stdout and stderr into malloc'd strings; return the status */
static int sh(const char *cmd, char **out, char **err)
{
    const char *o = mf_tmp_path("run.out"), *e = mf_tmp_path("run.err");
    char full[4096];
    snprintf(full, sizeof full, "%s > %s 2> %s", cmd, o, e);
    int rc = system(full);
    *out = mf_read_text(o, NULL);
    *err = mf_read_text(e, NULL);
    unlink(o);
    unlink(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void harmony_final_channel(void **state)
{
    (void)state;
    const char *m = mf_tmp_path("chat.gguf");
    char cmd[2048], *out, *err;
    snprintf(cmd, sizeof cmd,
             "%s -o %s --arch gpt-oss --preset tiny --seed 15 --script "
             "'assistant <|channel|> final <|message|> 4 <|return|>'", mf_tool_path("mkmodel"), m);
    assert_int_equal(sh(cmd, &out, &err), 0);
    free(out);
    free(err);
    /* the prompt ends with <|start|>assistant: the scripted model continues with the final
     * channel header, the answer "4" and <|return|>. Only the answer reaches stdout. */
    snprintf(cmd, sizeof cmd, "%s run -m %s --chat -p 'What is 2+2?' --temp 0 --device cpu", mf_tool_path("minfer"), m);
    assert_int_equal(sh(cmd, &out, &err), 0);
    assert_string_equal(out, "4\n");
    assert_non_null(strstr(err, "stopped at end of text"));
    free(out);
    free(err);
    /* the same without --chat: raw prompt, no harmony parsing, so the structure tokens are
     * printed as text after the echoed prompt */
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'assistant' -n 3 --temp 0 --device cpu", mf_tool_path("minfer"), m);
    assert_int_equal(sh(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "assistant<|channel|>final<|message|>"));
    free(out);
    free(err);
    unlink(m);
}

static void seeds_and_errors(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    char cmd[2048], *a, *b, *err;
    /* same seed, same text; the text is the echoed prompt plus the continuation */
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time' -n 40 --seed 5", mf_tool_path("minfer"), model);
    assert_int_equal(sh(cmd, &a, &err), 0);
    free(err);
    assert_int_equal(sh(cmd, &b, &err), 0);
    assert_string_equal(a, b);
    assert_true(strncmp(a, "Once upon a time", 16) == 0 && strlen(a) > 40);
    assert_non_null(strstr(err, "seed 5"));
    assert_non_null(strstr(err, "prompt:"));
    assert_non_null(strstr(err, "tok/s"));
    free(a);
    free(b);
    free(err);

    /* a prompt longer than the context: both lengths in one line, exit 1 */
    snprintf(cmd, sizeof cmd, "%s run -m %s -c 8 -p 'Once upon a time there was a little girl named Lily who loved'", mf_tool_path("minfer"), model);
    assert_int_equal(sh(cmd, &a, &err), 1);
    assert_non_null(strstr(err, "context holds 8"));
    assert_non_null(strstr(err, "tokens"));
    free(a);
    free(err);
    /* generation that reaches the end of the context stops with a note */
    snprintf(cmd, sizeof cmd, "%s run -m %s -c 12 -p 'Once upon a time' --temp 0", mf_tool_path("minfer"), model);
    assert_int_equal(sh(cmd, &a, &err), 0);
    assert_non_null(strstr(err, "end of the context (12 tokens)"));
    free(a);
    free(err);
    /* bad options and files */
    const char *bad[][2] = {
        {"--temp abc", "bad value 'abc' for --temp"},
        {"--frobnicate", "unknown option '--frobnicate'"},
        {"-m /nonexistent.gguf", "/nonexistent.gguf: cannot open"},
        {"--device tpu", "unknown device 'tpu'"},
        {"--chat-format nope", "unknown chat format 'nope'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "%s run -m %s -p hi %s", mf_tool_path("minfer"), model, bad[i][0]);
        int rc = sh(cmd, &a, &err);
        assert_true(rc == 1 || rc == 2);
        if (!strstr(err, bad[i][1])) fail_msg("'%s': expected '%s' in: %s", bad[i][0], bad[i][1], err);
        assert_non_null(strchr(err, '\n'));
        free(a);
        free(err);
    }
}

static void logits_out(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    const char *lf = mf_tmp_path("logits.bin");
    char cmd[2048], *a, *err;
    /* BOS + "Once upon a time, there was" = the 8 ids of llama-arch.md §6 */
    /* the spec's values are float32 arithmetic: the float32 cache (the default is binary16) */
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time, there was' -n 1 --temp 0 --kv-f32 --logits-out %s",
             mf_tool_path("minfer"), model, lf);
    assert_int_equal(sh(cmd, &a, &err), 0);
    size_t n;
    float *l = (float *)mf_read_file(lf, &n);
    assert_non_null(l);
    assert_int_equal(n, 8 * 512 * sizeof(float));
    /* spec values: position 0 logit of id 403 = 17.0235, position 7 of id 261 = 19.5159 */
    assert_true(l[403] > 17.0225f && l[403] < 17.0245f);
    assert_true(l[7 * 512 + 261] > 19.5149f && l[7 * 512 + 261] < 19.5169f);
    free(l);
    free(a);
    free(err);
    unlink(lf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(harmony_final_channel),
        cmocka_unit_test(seeds_and_errors),
        cmocka_unit_test(logits_out),
    };
    return MF_RUN("run", tests);
}
