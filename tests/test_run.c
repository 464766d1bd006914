/* test_run.c — the `minfer run` driver end to end, as a user calls it: streamed text, chat
 * formats (a scripted tiny gpt-oss file answering in harmony's final channel), seeds, stop
 * conditions, --logits-out, and the one-line errors for bad input; every context length
 * around the prompt's, prompt files (directories, NUL bytes), pieces of any length, and the
 * load progress line on a terminal. */
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
             "'assistant <|channel|> final <|message|> 4 <|return|>'",
             mf_tool_path("mkmodel"), m);
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
    snprintf(cmd, sizeof cmd, "%s run -m %s -c 8 -p 'Once upon a time there was a little girl named Lily who loved'",
             mf_tool_path("minfer"), model);
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
    /* BOS + "Once upon a time, there was" = the 8 ids of docs/reference.md §1 */
    /* the reference values are float32 arithmetic: the float32 cache (the default is binary16) */
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time, there was' -n 1 --temp 0 --kv-f32 --logits-out %s",
             mf_tool_path("minfer"), model, lf);
    assert_int_equal(sh(cmd, &a, &err), 0);
    size_t n;
    float *l = (float *)mf_read_file(lf, &n);
    assert_non_null(l);
    assert_int_equal(n, 8 * 512 * sizeof(float));
    /* llama.cpp's values (docs/reference.md §1): position 0 logit of id 403 = 17.0235, position 7 of id 261 = 19.5159 */
    assert_true(l[403] > 17.0225f && l[403] < 17.0245f);
    assert_true(l[7 * 512 + 261] > 19.5149f && l[7 * 512 + 261] < 19.5169f);
    free(l);
    free(a);
    free(err);
    unlink(lf);
}

/* minfer run with its arguments; stdout and stderr captured */
static mf_proc run(const char *const *args) { return mf_run_tool("minfer", args); }

/* the count K of "generate:     K tokens" on stderr, -1 if absent */
static int generated(const char *err)
{
    const char *g = strstr(err, "generate:");
    return g ? atoi(g + 9) : -1;
}

/* --stop: the text ends right before the first stop string that completes (it spans
 * several tokens here: " girl named" is "▁girl" "▁named"), nothing of it is printed,
 * and stderr says why; the earlier of two stops wins whatever their order on the command
 * line; a stop string that never occurs changes nothing. Bad stops are one-line errors. */
static void stop_strings(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    char cmd[2048], *full, *a, *err;
    const char *base = "-p 'Once upon a time' -n 40 --temp 0";
    snprintf(cmd, sizeof cmd, "%s run -m %s %s", mf_tool_path("minfer"), model, base);
    assert_int_equal(sh(cmd, &full, &err), 0);
    free(err);
    const char *at = strstr(full, " girl named");
    if (!at || !strstr(full, "little")) fail_msg("the greedy text changed: %s", full);
    size_t keep = (size_t)(at - full);

    snprintf(cmd, sizeof cmd, "%s run -m %s %s --stop ' girl named'", mf_tool_path("minfer"), model, base);
    assert_int_equal(sh(cmd, &a, &err), 0);
    assert_int_equal(strlen(a), keep + 1); /* the text before the stop, then run's line end */
    assert_memory_equal(a, full, keep);
    assert_int_equal(a[keep], '\n');
    assert_non_null(strstr(err, "stopped at a stop string"));
    free(a);
    free(err);

    snprintf(cmd, sizeof cmd, "%s run -m %s %s --stop ' girl named' --stop ttle", mf_tool_path("minfer"), model, base);
    assert_int_equal(sh(cmd, &a, &err), 0);
    keep = (size_t)(strstr(full, "ttle") - full);
    assert_int_equal(strlen(a), keep + 1);
    assert_memory_equal(a, full, keep);
    free(a);
    free(err);

    snprintf(cmd, sizeof cmd, "%s run -m %s %s --stop 'purple dragon'", mf_tool_path("minfer"), model, base);
    assert_int_equal(sh(cmd, &a, &err), 0);
    assert_string_equal(a, full);
    assert_null(strstr(err, "stop string"));
    free(a);
    free(err);
    free(full);

    const char *bad[][2] = {
        {"--stop ''", "minfer run: --stop needs a non-empty string\n"},
        {"-c 8 --stop 'one two three four five six seven eight nine'",
         "minfer run: stop string 1 is 28 tokens long but the context holds 8\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "%s run -m %s -p hi %s --device cpu", mf_tool_path("minfer"), model, bad[i][0]);
        int rc = sh(cmd, &a, &err);
        assert_true(rc == 1 || rc == 2);
        if (!strstr(err, bad[i][1])) fail_msg("'%s': expected '%s' in: %s", bad[i][0], bad[i][1], err);
        assert_string_equal(a, "");
        free(a);
        free(err);
    }
}

/* Every context length around the prompt's token count n (issue 11: the first generated
 * token was stored one past the end of the token array when n == context, a heap overflow
 * that ASan reports and a Release build may abort on). A context of c >= n evaluates the
 * prompt, prints the token its logits give, and may evaluate c - n generated tokens, each
 * giving one more: min(c - n + 1, -n) tokens in all. */
static void context_edges(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    const int n = 5; /* BOS + "Once upon a time" = 1 403 407 261 378 */
    char ctx[16], prev[4096] = "";
    for (int c = n - 1; c <= n + 2; c++) {
        snprintf(ctx, sizeof ctx, "%d", c);
        const char *args[] = {"run", "-m", model,    "-p", "Once upon a time", "-c",  ctx,
                              "-n",  "3",  "--temp", "0",  "--device",         "cpu", NULL};
        mf_proc p = run(args);
        if (c < n) {
            assert_int_equal(p.rc, 1);
            assert_non_null(strstr(p.err, "the prompt has 5 tokens but the context holds 4"));
        } else {
            if (p.rc != 0) fail_msg("-c %d: exit %d: %s", c, p.rc, p.err);
            int want = c - n + 1 < 3 ? c - n + 1 : 3;
            if (generated(p.err) != want)
                fail_msg("-c %d: %d tokens generated, expected %d: %s", c, generated(p.err), want, p.err);
            char note[64];
            snprintf(note, sizeof note, "end of the context (%d tokens)", c);
            /* the note when the context, not -n, ended the generation */
            assert_true((strstr(p.err, note) != NULL) == (c - n + 1 < 3));
            /* greedy: each longer context continues the shorter one's text */
            assert_true(strlen(p.out) > 17 && strncmp(p.out, "Once upon a time", 16) == 0);
            size_t k = strlen(prev);
            if (k) assert_memory_equal(p.out, prev, k - 1); /* without the final newline */
            snprintf(prev, sizeof prev, "%s", p.out);
        }
        mf_proc_free(&p);
    }
    /* the same with sampling and a repetition penalty, which reads the token history */
    const char *sargs[] = {"run",    "-m",  model,    "-p", "Once upon a time", "-c",  "5",
                           "--temp", "0.8", "--seed", "3",  "--repeat-penalty", "1.3", "--device",
                           "cpu",    NULL};
    mf_proc p = run(sargs);
    if (p.rc != 0 || generated(p.err) != 1) fail_msg("sampling at -c 5: exit %d: %s", p.rc, p.err);
    mf_proc_free(&p);

    /* a prompt exactly as long as the default context (the model's own, here 5), and a
     * model whose context holds one token: BOS alone fills it */
    const char *m5 = mf_tmp_path("ctx5.gguf"), *m1 = mf_tmp_path("ctx1.gguf");
    const char *mk5[] = {"-o",      m5,  "--vocab-from", model, "--ctx", "5",  "--dim", "64",
                         "--heads", "2", "--kv-heads",   "1",   "--ff",  "64", NULL};
    const char *mk1[] = {"-o",      m1,  "--vocab-from", model, "--ctx", "1",  "--dim", "64",
                         "--heads", "2", "--kv-heads",   "1",   "--ff",  "64", NULL};
    mf_proc q = mf_run_tool("mkmodel", mk5);
    assert_int_equal(q.rc, 0);
    mf_proc_free(&q);
    q = mf_run_tool("mkmodel", mk1);
    assert_int_equal(q.rc, 0);
    mf_proc_free(&q);
    const char *d5[] = {"run", "-m", m5, "-p", "Once upon a time", "-n", "3", "--temp", "0", "--device", "cpu", NULL};
    p = run(d5);
    if (p.rc != 0 || generated(p.err) != 1 || !strstr(p.err, "end of the context (5 tokens)"))
        fail_msg("default context 5: exit %d: %s", p.rc, p.err);
    mf_proc_free(&p);
    const char *d1[] = {"run", "-m", m1, "-p", "", "--temp", "0", "--device", "cpu", NULL};
    p = run(d1);
    if (p.rc != 0 || generated(p.err) != 1 || !strstr(p.err, "end of the context (1 tokens)"))
        fail_msg("context 1: exit %d: %s", p.rc, p.err);
    mf_proc_free(&p);
    const char *d1b[] = {"run", "-m", m1, "-p", "Once", "--temp", "0.5", "--device", "cpu", NULL};
    p = run(d1b);
    assert_int_equal(p.rc, 1);
    assert_non_null(strstr(p.err, "the prompt has 2 tokens but the context holds 1"));
    mf_proc_free(&p);
    unlink(m5);
    unlink(m1);
}

/* What the user gave is what runs (issue 11): a directory is not an empty prompt, and a NUL
 * byte in a prompt file is text like any other byte, as `minfer tokenize -f` reads it. */
static void prompt_files(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    const char *dir[] = {"run", "-m", model, "-f", "/tmp", "--device", "cpu", NULL};
    mf_proc p = run(dir);
    assert_int_equal(p.rc, 1);
    assert_non_null(strstr(p.err, "minfer run: cannot read '/tmp': Is a directory"));
    assert_string_equal(p.out, "");
    mf_proc_free(&p);

    const char *f = mf_tmp_path("nul.txt");
    static const char text[] = "Once upon\0 a time"; /* 17 bytes, the NUL at offset 9 */
    FILE *fp = fopen(f, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, 17, fp), 17);
    fclose(fp);
    const char *tok[] = {"tokenize", "-m", model, "-f", f, NULL};
    mf_proc t = mf_run_tool("minfer", tok);
    assert_int_equal(t.rc, 0);
    int n_tok = 1;
    for (const char *c = t.out; *c; c++) n_tok += *c == ' ';
    assert_true(n_tok > 5); /* more than BOS + "Once upon": the text after the NUL counts */
    const char *r[] = {"run", "-m", model, "-f", f, "-n", "1", "--temp", "0", "--device", "cpu", NULL};
    p = run(r);
    if (p.rc != 0) fail_msg("exit %d: %s", p.rc, p.err);
    const char *pr = strstr(p.err, "prompt:");
    assert_non_null(pr);
    if (atoi(pr + 7) != n_tok) fail_msg("run saw %d prompt tokens, tokenize %d (%s)", atoi(pr + 7), n_tok, t.out);
    /* the echo is the whole file, NUL included */
    assert_true(p.out_len > 17);
    assert_memory_equal(p.out, text, 17);
    mf_proc_free(&p);
    mf_proc_free(&t);
    /* a chat message cannot carry a NUL: refused, not cut */
    const char *c[] = {"run", "-m", model, "-f", f, "--chat-format", "zephyr", "--device", "cpu", NULL};
    p = run(c);
    assert_int_equal(p.rc, 1);
    assert_non_null(strstr(p.err, "NUL byte at offset 9"));
    mf_proc_free(&p);
    unlink(f);
}

/* A token whose piece is longer than any fixed buffer prints whole (issue 11: run cut pieces
 * at 256 bytes). The stories vocabulary with token 500 replaced by 300 'q's, in a file whose
 * output layer is scripted to follow "▁Once" with it. */
static void long_pieces(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    char longtok[301];
    memset(longtok, 'q', 300);
    longtok[300] = 0;
    const char *vf = mf_tmp_path("longvocab.gguf"), *mf = mf_tmp_path("long.gguf");
    mf_write_vocab_with(model, vf, 500, longtok, 300);

    char script[400];
    snprintf(script, sizeof script, "\xe2\x96\x81Once %s", longtok);
    const char *mk[] = {"-o",      mf,  "--vocab-from", vf,  "--script", script, "--dim", "64",
                        "--heads", "2", "--kv-heads",   "1", "--ff",     "64",   NULL};
    mf_proc q = mf_run_tool("mkmodel", mk);
    if (q.rc != 0) fail_msg("mkmodel: %s", q.err);
    mf_proc_free(&q);
    const char *r[] = {"run", "-m", mf, "-p", "Once", "-n", "1", "--temp", "0", "--device", "cpu", NULL};
    mf_proc p = run(r);
    if (p.rc != 0) fail_msg("exit %d: %s", p.rc, p.err);
    char want[400];
    snprintf(want, sizeof want, "Once%s\n", longtok);
    assert_string_equal(p.out, want);
    mf_proc_free(&p);
    unlink(vf);
    unlink(mf);
}

/* A model file of 256 MiB or more shows a progress line while it is read into memory, when
 * stderr is a terminal (here a pseudo-terminal made by script(1)); with stderr captured to a
 * file there is none. The file is sparse (mkmodel --sparse: zero weights, no disk blocks). */
static void load_progress_on_terminal(void **state)
{
    (void)state;
    if (system("command -v script > /dev/null 2>&1") != 0) mf_skip("script(1) is not installed");
    const char *big = mf_tmp_path("big.gguf"), *log = mf_tmp_path("big.log");
    const char *mk[] = {"-o",   big,    "--dim",    "2048", "--heads",  "16", "--kv-heads", "16",
                        "--ff", "4096", "--layers", "2",    "--sparse", "1",  NULL};
    mf_proc q = mf_run_tool("mkmodel", mk);
    if (q.rc != 0) fail_msg("mkmodel: %s", q.err);
    mf_proc_free(&q);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "script -qec \"'%s' run -m '%s' -p hi -n 1 --temp 0 --device cpu\" /dev/null > '%s' 2>&1",
             mf_tool_path("minfer"), big, log);
    assert_int_equal(system(cmd), 0);
    char *text = mf_read_text(log, NULL);
    char want[4200];
    snprintf(want, sizeof want, "minfer: reading %s: 100%% (0.3 of 0.3 GB)", big);
    if (!strstr(text, want)) fail_msg("no progress line '%s' in: %s", want, text);
    free(text);
    const char *r[] = {"run", "-m", big, "-p", "hi", "-n", "1", "--temp", "0", "--device", "cpu", NULL};
    mf_proc p = run(r);
    assert_int_equal(p.rc, 0);
    assert_null(strstr(p.err, "reading"));
    mf_proc_free(&p);
    unlink(big);
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(harmony_final_channel), cmocka_unit_test(seeds_and_errors),
        cmocka_unit_test(stop_strings),          cmocka_unit_test(logits_out),
        cmocka_unit_test(context_edges),         cmocka_unit_test(prompt_files),
        cmocka_unit_test(long_pieces),           cmocka_unit_test(load_progress_on_terminal),
    };
    return MF_RUN("run", tests);
}
