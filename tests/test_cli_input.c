/* test_cli_input.c — every `minfer` command and mkmodel against inputs that are not what a
 * model file should be (issue 11): a FIFO given as the model must be refused at once, not
 * wait forever for a writer, and a bench that would measure nothing is a usage error. Each
 * run is bounded by an alarm, so a hang fails the test instead of stalling the suite. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* A run that must end by itself within the bound, exit 1 or 2, and say `phrase` in one line. */
static void expect_refusal(const char *tool, const char *const *args, const char *phrase)
{
    mf_proc p = mf_run_tool_timeout(tool, args, 30);
    if (p.sig == SIGALRM) fail_msg("%s %s: still running after 30 s (hang)", tool, args[0]);
    if (p.sig) fail_msg("%s %s: killed by signal %d: %s", tool, args[0], p.sig, p.err);
    if (p.rc != 1 && p.rc != 2) fail_msg("%s %s: exit %d, expected 1 or 2: %s", tool, args[0], p.rc, p.err);
    if (!strstr(p.err, phrase)) fail_msg("%s %s: expected '%s' in: %s", tool, args[0], phrase, p.err);
    const char *nl = strchr(p.err, '\n');
    if (!nl || nl[1]) fail_msg("%s %s: expected one line on stderr, got: %s", tool, args[0], p.err);
    mf_proc_free(&p);
}

static void fifo_as_model(void **state)
{
    (void)state;
    const char *f = mf_tmp_path("model.fifo"), *out = mf_tmp_path("fifo-out.gguf");
    unlink(f);
    assert_int_equal(mkfifo(f, 0600), 0);
    const char *phrase = "not a regular file (a FIFO)";
    const char *run[] = {"run", "-m", f, "-p", "hi", NULL};
    const char *tok[] = {"tokenize", "-m", f, "-p", "hi", NULL};
    const char *insp[] = {"inspect", f, NULL};
    const char *bench[] = {"bench", "-m", f, NULL};
    const char *check[] = {"check", "-m", f, NULL};
    const char *plan[] = {"plan", "-m", f, NULL};
    expect_refusal("minfer", run, phrase);
    expect_refusal("minfer", tok, phrase);
    expect_refusal("minfer", insp, phrase);
    expect_refusal("minfer", bench, phrase);
    expect_refusal("minfer", check, phrase);
    expect_refusal("minfer", plan, phrase);
    const char *mk[] = {"-o", out, "--vocab-from", f, NULL};
    expect_refusal("mkmodel", mk, phrase);
    assert_int_equal(access(out, F_OK), -1); /* no output file */
    /* the default model named by the environment goes through the same open */
    setenv("MINFER_MODEL", f, 1);
    const char *dflt[] = {"run", "-p", "hi", NULL};
    expect_refusal("minfer", dflt, phrase);
    unsetenv("MINFER_MODEL");
    unlink(f);
}

static void bench_without_tests(void **state)
{
    (void)state;
    /* nothing to measure: refused before the model is even opened (this one does not exist) */
    const char *b[] = {"bench", "-m", "/nonexistent.gguf", "-p", "0", "-n", "0", NULL};
    expect_refusal("minfer", b, "-p 0 and -n 0 leave nothing to measure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_as_model),
        cmocka_unit_test(bench_without_tests),
    };
    return MF_RUN("cli_input", tests);
}
