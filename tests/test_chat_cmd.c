/* test_chat_cmd.c — `minfer chat` driven as a user (or a script) drives it: messages through
 * a pipe, one a line; commands; the statistics that show turn 2 evaluating only its new
 * tokens; the context's end with and without --context-shift; a tool call and its result
 * with a harmony model scripted to call one; Ctrl-C stopping an answer, not the program; a
 * terminal (script(1)) for the line-editing path; one-line errors for bad input. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* Runs `minfer chat ARGS` with the n bytes of `input` on its stdin; stdout and stderr
 * captured. */
static mf_proc chat_n(const char *input, size_t n, const char *args)
{
    const char *in = mf_tmp_path("chat.in"), *out = mf_tmp_path("chat.out"), *err = mf_tmp_path("chat.err");
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(input, 1, n, f), n);
    fclose(f);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s chat %s --device cpu < %s > %s 2> %s", mf_tool_path("minfer"), args, in, out, err);
    int rc = system(cmd);
    mf_proc p = {0};
    p.out = mf_read_text(out, &p.out_len);
    p.err = mf_read_text(err, NULL);
    p.rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
    unlink(in);
    unlink(out);
    unlink(err);
    return p;
}

static mf_proc chat(const char *input, const char *args) { return chat_n(input, strlen(input), args); }

/* the numbers of the k-th statistics line: prompt P (C cached, E evaluated); -1 if absent */
static int stats(const char *err, int k, int *p, int *c, int *e)
{
    const char *s = err;
    for (int i = 0; i <= k; i++) {
        s = strstr(s, "minfer chat: prompt ");
        if (!s) return -1;
        if (i < k) s++;
    }
    return sscanf(s, "minfer chat: prompt %d tokens (%d cached, %d evaluated)", p, c, e) == 3 ? 0 : -1;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* A scripted conversation on stories260K (no chat template: one running text): turn 2
 * evaluates only what is new; /reset and the first message again gives the first answer
 * again; empty lines and unknown commands are one-line errors and nothing is lost. */
static void piped_conversation(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    char args[1024];
    snprintf(args, sizeof args, "-m %s -n 12 --temp 0", model);
    mf_proc p = chat("Once upon a time\nThe end\n\n/bogus\n/reset\nOnce upon a time\n/exit\nnot read\n", args);
    if (p.rc != 0) fail_msg("exit %d: %s", p.rc, p.err);
    /* three answers, one line each */
    assert_int_equal(count_lines(p.out), 3);
    char a1[256], a3[256];
    sscanf(p.out, "%255[^\n]", a1);
    const char *l3 = strrchr(p.out, '\n');
    while (l3 > p.out && l3[-1] != '\n') l3--;
    sscanf(l3, "%255[^\n]", a3);
    assert_string_equal(a1, a3);
    assert_true(strlen(a1) > 10);
    int P1, C1, E1, P2, C2, E2, P3, C3, E3;
    assert_int_equal(stats(p.err, 0, &P1, &C1, &E1), 0);
    assert_int_equal(stats(p.err, 1, &P2, &C2, &E2), 0);
    assert_int_equal(stats(p.err, 2, &P3, &C3, &E3), 0);
    assert_int_equal(C1, 0);
    assert_int_equal(E1, P1);
    /* turn 2: the first prompt and the answer's evaluated tokens are reused (the running
     * text retokenizes the same here), only "\nThe end" is new */
    assert_int_equal(C2, P1 + 11);
    assert_int_equal(E2, P2 - C2);
    assert_true(E2 <= 8);
    /* after /reset the same first message: all of it was in the cache, its last token is
     * evaluated again for its logits */
    assert_int_equal(P3, P1);
    assert_int_equal(C3, P1 - 1);
    assert_non_null(strstr(p.err, "minfer chat: empty message"));
    assert_non_null(strstr(p.err, "minfer chat: unknown command '/bogus'"));
    assert_non_null(strstr(p.err, "the conversation is forgotten"));
    assert_null(strstr(p.out, "not read"));
    mf_proc_free(&p);

    /* the system prompt comes first in the running text: a new one changes everything after
     * the BOS, which is all evaluated again */
    p = chat("Once upon a time\n/system A story.\nThe end\n/system\n", args);
    assert_int_equal(p.rc, 0);
    assert_int_equal(stats(p.err, 1, &P2, &C2, &E2), 0);
    assert_int_equal(C2, 1);
    assert_non_null(strstr(p.err, "new system prompt"));
    assert_non_null(strstr(p.err, "no system prompt"));
    mf_proc_free(&p);

    /* a line with a NUL byte is refused whole (its text would end there), and the next one
     * is answered as a first message */
    static const char nul[] = "Once upon\0 a time\nThe end\n";
    p = chat_n(nul, sizeof nul - 1, args);
    assert_int_equal(p.rc, 0);
    assert_non_null(strstr(p.err, "minfer chat: the line holds a NUL byte, which is not text (not sent)\n"));
    assert_int_equal(count_lines(p.out), 1);
    assert_int_equal(stats(p.err, 0, &P1, &C1, &E1), 0);
    assert_int_equal(C1, 0);
    assert_int_equal(stats(p.err, 1, &P1, &C1, &E1), -1);
    mf_proc_free(&p);
}

/* The context's end: an answer that fills it says so; the next message does not fit and is
 * refused with both numbers (the conversation stays, /reset goes on); with --context-shift
 * the oldest turn goes instead. */
static void context_limits(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    char args[1024];
    snprintf(args, sizeof args, "-m %s -c 40 --temp 0", model);
    mf_proc p = chat("Once upon a time\nThe end\n/reset\nThe cat\n", args);
    if (p.rc != 0) fail_msg("exit %d: %s", p.rc, p.err);
    assert_non_null(strstr(p.err, "stopped at the end of the context (40 tokens)"));
    assert_non_null(strstr(p.err, "but the context holds 40: /reset, or start with --context-shift"));
    assert_int_equal(count_lines(p.out), 2); /* the first answer and the one after /reset */
    int P, C, E;
    assert_int_equal(stats(p.err, 1, &P, &C, &E), 0);
    assert_int_equal(stats(p.err, 2, &P, &C, &E), -1);
    mf_proc_free(&p);

    /* a stop string that cannot fit in the context, an empty one: one line each, exit 1 / 2 */
    snprintf(args, sizeof args, "-m %s -c 8 --stop 'one two three four five six seven eight nine'", model);
    p = chat("hi\n", args);
    assert_int_equal(p.rc, 1);
    assert_string_equal(p.err, "minfer chat: stop string 1 is 28 tokens long but the context holds 8\n");
    assert_string_equal(p.out, "");
    mf_proc_free(&p);
    snprintf(args, sizeof args, "-m %s --stop ''", model);
    p = chat("hi\n", args);
    assert_int_equal(p.rc, 2);
    assert_string_equal(p.err, "minfer chat: --stop needs a non-empty string\n");
    mf_proc_free(&p);

    snprintf(args, sizeof args, "-m %s -c 40 --temp 0 --context-shift --system Tales", model);
    p = chat("Once upon a time\nThe end\n", args);
    if (p.rc != 0) fail_msg("exit %d: %s", p.rc, p.err);
    assert_non_null(strstr(p.err, "context shift: the 2 oldest messages dropped"));
    assert_int_equal(stats(p.err, 1, &P, &C, &E), 0);
    assert_true(P <= 30); /* the system prompt and "The end", room for an answer */
    assert_int_equal(count_lines(p.out), 2);
    mf_proc_free(&p);
}

/* A harmony model scripted to answer with a call to function x: the call is printed, the
 * next line is its result, and the model goes on from there (the cache of the turn reused). */
static void tool_calls(void **state)
{
    (void)state;
    const char *m = mf_tmp_path("tool.gguf"), *tools = mf_tmp_path("tools.json"), *bad = mf_tmp_path("bad.json");
    char script[256];
    snprintf(script, sizeof script, "assistant <|channel|> final \xc4\xa0to = x <|message|> { } <|call|>");
    const char *mk[] = {"-o", m, "--arch", "gpt-oss", "--preset", "tiny", "--seed", "15", "--script", script, NULL};
    mf_proc q = mf_run_tool("mkmodel", mk);
    if (q.rc) fail_msg("mkmodel: %s", q.err);
    mf_proc_free(&q);
    FILE *f = fopen(tools, "w");
    fputs("[{\"type\": \"function\", \"function\": {\"name\": \"x\", \"description\": \"Does x.\"}}]", f);
    fclose(f);
    char args[1024];
    snprintf(args, sizeof args, "-m %s --tools %s -c 1024 --temp 0 -n 20", m, tools);
    mf_proc p = chat("Do x\n42\n", args);
    if (p.rc != 0) fail_msg("exit %d: %s", p.rc, p.err);
    assert_string_equal(p.out, "[call x {}]\n[call x {}]\n");
    int P1, C1, E1, P2, C2, E2;
    assert_int_equal(stats(p.err, 0, &P1, &C1, &E1), 0);
    assert_int_equal(stats(p.err, 1, &P2, &C2, &E2), 0);
    assert_non_null(strstr(p.err, "; tool_calls\n"));
    /* turn 2 keeps turn 1's prompt; its call is rendered as the format writes calls
     * ("<|channel|>commentary to=functions.x"), which differs from the scripted header after
     * its first token */
    assert_int_equal(C2, P1 + 1);
    mf_proc_free(&p);

    /* a tools file that is not a list of functions, and tools for a model without harmony */
    f = fopen(bad, "w");
    fputs("[{\"type\": \"function\", \"function\": {\"name\": \"x\"}", f);
    fclose(f);
    snprintf(args, sizeof args, "-m %s --tools %s", m, bad);
    p = chat("hi\n", args);
    assert_int_equal(p.rc, 1);
    assert_non_null(strstr(p.err, "bad.json: tools: invalid JSON at line 1"));
    assert_int_equal(count_lines(p.err), 1);
    mf_proc_free(&p);
    const char *model = mf_model_path("stories260K.gguf");
    if (access(model, R_OK) == 0) {
        snprintf(args, sizeof args, "-m %s --tools %s", model, tools);
        p = chat("hi\n", args);
        assert_int_equal(p.rc, 1);
        assert_non_null(strstr(p.err, "--tools needs a harmony model"));
        mf_proc_free(&p);
    }
    snprintf(args, sizeof args, "-m %s --tools /nonexistent.json", m);
    p = chat("hi\n", args);
    assert_int_equal(p.rc, 1);
    assert_non_null(strstr(p.err, "cannot read '/nonexistent.json'"));
    mf_proc_free(&p);
    snprintf(args, sizeof args, "-m %s --chat-format vicuna", m);
    p = chat("hi\n", args);
    assert_int_equal(p.rc, 2);
    assert_non_null(strstr(p.err, "unknown chat format 'vicuna'"));
    mf_proc_free(&p);
    unlink(m);
    unlink(tools);
    unlink(bad);
}

/* Waits (at most about 60 s) until the file holds `n` copies of `what`; its text, or NULL. */
static char *wait_for(const char *path, const char *what, int n)
{
    for (int tries = 0; tries < 6000; tries++) {
        char *t = mf_read_text(path, NULL);
        int k = 0;
        for (const char *s = t ? strstr(t, what) : NULL; s; s = strstr(s + 1, what)) k++;
        if (k >= n) return t;
        free(t);
        usleep(10000);
    }
    return NULL;
}

/* Ctrl-C (SIGINT) while an answer is written stops that answer, not the program; the next
 * message is answered, and a second Ctrl-C stops that answer too (the flag is down again
 * between answers); the program then ends normally at the end of its input. The model is
 * big enough that an answer to the end of its context would take seconds. */
static void ctrl_c_stops_the_answer(void **state)
{
    (void)state;
    const char *m = mf_tmp_path("slow.gguf");
    const char *mk[] = {"-o",         m,   "--dim", "512",  "--layers", "8",    "--heads", "8",
                        "--kv-heads", "8", "--ff",  "1024", "--ctx",    "4096", NULL};
    mf_proc q = mf_run_tool("mkmodel", mk);
    if (q.rc) fail_msg("mkmodel: %s", q.err);
    mf_proc_free(&q);
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    const char *err = mf_tmp_path("slow.err");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        FILE *e = freopen(err, "w", stderr);
        (void)e;
        close(in[1]);
        close(out[0]);
        execl(mf_tool_path("minfer"), "minfer", "chat", "-m", m, "--temp", "0", "-t", "1", "--device", "cpu", "-c",
              "4096", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    char buf[4096];
    const char *msgs[2] = {"the\n", "dog\n"};
    for (int turn = 0; turn < 2; turn++) {
        assert_true(write(in[1], msgs[turn], 4) == 4);
        /* the answer has begun once its first bytes arrive (the previous answer's output was
         * all read before its "stopped" line came) */
        assert_true(read(out[0], buf, sizeof buf) > 0);
        kill(pid, SIGINT);
        char *e = wait_for(err, "minfer chat: stopped (Ctrl-C)", turn + 1);
        if (!e) {
            kill(pid, SIGKILL);
            fail_msg("answer %d was not stopped by SIGINT", turn + 1);
        }
        free(e);
        /* what the stopped answer still wrote (its line end) */
        struct timeval tv = {0, 100000};
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(out[0], &rd);
        while (select(out[0] + 1, &rd, NULL, NULL, &tv) > 0 && read(out[0], buf, sizeof buf) > 0) {
            FD_ZERO(&rd);
            FD_SET(out[0], &rd);
            tv = (struct timeval){0, 100000};
        }
    }
    close(in[1]);
    while (read(out[0], buf, sizeof buf) > 0) {}
    close(out[0]);
    int st;
    waitpid(pid, &st, 0);
    char *e = mf_read_text(err, NULL);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("status %d: %s", st, e);
    int P, C, E;
    assert_int_equal(stats(e, 1, &P, &C, &E), 0); /* the second message was answered */
    assert_int_equal(stats(e, 2, &P, &C, &E), -1);
    /* both answers end cancelled */
    const char *c1 = strstr(e, "; cancelled\n");
    assert_non_null(c1);
    assert_non_null(strstr(c1 + 1, "; cancelled\n"));
    free(e);
    unlink(err);
    unlink(m);
}

/* On a terminal (a pseudo-terminal made by script(1)) the line is read by the line editor
 * and the prompt shows; /exit ends the session. */
static void on_a_terminal(void **state)
{
    (void)state;
    const char *model = mf_model_path("stories260K.gguf");
    MF_REQUIRE_FILE(model);
    if (system("command -v script > /dev/null 2>&1") != 0) mf_skip("script(1) is not installed");
    const char *log = mf_tmp_path("tty.log");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "printf 'Once upon a time\\n/exit\\n' | script -qec \"'%s' chat -m '%s' -n 8 --temp 0 --device cpu\" "
             "/dev/null > '%s' 2>&1",
             mf_tool_path("minfer"), model, log);
    assert_int_equal(system(cmd), 0);
    char *text = mf_read_text(log, NULL);
    if (!strstr(text, "> ") || !strstr(text, "minfer chat: prompt 5 tokens")) fail_msg("%s", text);
    free(text);
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(piped_conversation),      cmocka_unit_test(context_limits), cmocka_unit_test(tool_calls),
        cmocka_unit_test(ctrl_c_stops_the_answer), cmocka_unit_test(on_a_terminal),
    };
    return MF_RUN("chat_cmd", tests);
}
