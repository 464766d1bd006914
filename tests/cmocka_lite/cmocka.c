/* cmocka.c (cmocka_lite) — the runner and assertions of cmocka.h beside this file.
 *
 * One test at a time: the runner sets a jump target, calls the test, and a failed assertion
 * or skip() jumps back to it with the outcome. The target is process state (like cmocka's
 * own), because assertions are called from other translation units (the harness). Output
 * follows cmocka's format ("[ RUN      ]", "[       OK ]", "[  FAILED  ]", "[  SKIPPED ]"),
 * on stdout; assertion messages go to stderr as cmocka's do. */
#include "cmocka.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OUTCOME_PASS = 0, OUTCOME_FAIL = 1, OUTCOME_SKIP = 2 };

static jmp_buf *g_target; /* the running test's way back to the runner; NULL between tests */

void print_message(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vprintf(format, ap);
    va_end(ap);
    fflush(stdout);
}

void print_error(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    vfprintf(stderr, format, ap);
    va_end(ap);
    fflush(stderr);
}

static void leave(int outcome, const char *file, int line)
{
    if (!g_target) {
        /* an assertion outside a running test (e.g. in a group fixture): nothing to return to */
        print_error("%s:%d: assertion outside a test\n", file, line);
        exit(1);
    }
    longjmp(*g_target, outcome);
}

void _fail(const char *file, int line)
{
    print_error("%s:%d: Failure!\n", file, line);
    leave(OUTCOME_FAIL, file, line);
    abort(); /* not reached: leave() does not return */
}

void _skip(const char *file, int line)
{
    leave(OUTCOME_SKIP, file, line);
    abort();
}

void _assert_true(uintmax_t result, const char *expression, const char *file, int line)
{
    if (result) return;
    print_error("%s\n", expression);
    _fail(file, line);
}

void _assert_int_equal(uintmax_t a, uintmax_t b, const char *file, int line)
{
    if (a == b) return;
    print_error("%" PRIuMAX " (%#" PRIxMAX ") != %" PRIuMAX " (%#" PRIxMAX ")\n", a, a, b, b);
    _fail(file, line);
}

void _assert_int_not_equal(uintmax_t a, uintmax_t b, const char *file, int line)
{
    if (a != b) return;
    print_error("%" PRIuMAX " (%#" PRIxMAX ") == %" PRIuMAX " (%#" PRIxMAX ")\n", a, a, b, b);
    _fail(file, line);
}

void _assert_string_equal(const char *a, const char *b, const char *file, int line)
{
    if (a && b && strcmp(a, b) == 0) return;
    print_error("\"%s\" != \"%s\"\n", a ? a : "(null)", b ? b : "(null)");
    _fail(file, line);
}

void _assert_memory_equal(const void *a, const void *b, size_t size, const char *file, int line)
{
    if (!a || !b) {
        print_error("memory comparison with a NULL pointer\n");
        _fail(file, line);
    }
    const unsigned char *pa = a, *pb = b;
    size_t diffs = 0, first = 0;
    for (size_t i = 0; i < size; i++)
        if (pa[i] != pb[i] && diffs++ == 0) first = i;
    if (!diffs) return;
    print_error("%zu of %zu bytes differ; first at offset %zu: 0x%02x != 0x%02x\n", diffs, size, first, pa[first],
                pb[first]);
    _fail(file, line);
}

/* one test with its fixtures; the outcome */
static int run_one(const struct CMUnitTest *t, void *group_state)
{
    jmp_buf target;
    void *volatile st = t->initial_state ? t->initial_state : group_state; /* read after a jump back */
    volatile int setup_done = 0;
    int outcome;
    g_target = &target;
    outcome = setjmp(target);
    if (outcome == 0) {
        void *s = st;
        if (t->setup_func && t->setup_func(&s) != 0) {
            print_error("setup of %s failed\n", t->name);
            outcome = OUTCOME_FAIL;
        } else {
            setup_done = 1;
            st = s;
            t->test_func(&s);
            st = s;
        }
    }
    g_target = NULL;
    if (setup_done && t->teardown_func) {
        void *s = st;
        if (t->teardown_func(&s) != 0) {
            print_error("teardown of %s failed\n", t->name);
            if (outcome == OUTCOME_PASS) outcome = OUTCOME_FAIL;
        }
    }
    return outcome;
}

int _cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests, size_t n,
                            CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
    void *group_state = NULL;
    size_t passed = 0, failed = 0, skipped = 0;
    const char **failed_names = calloc(n + 1, sizeof *failed_names); /* NULL-terminated */
    if (!failed_names) abort();
    print_message("[==========] %s: Running %zu test(s).\n", group_name, n);
    if (group_setup && group_setup(&group_state) != 0) {
        print_error("[  ERROR   ] %s: group setup failed\n", group_name);
        free(failed_names);
        return (int)(n ? n : 1);
    }
    for (size_t i = 0; i < n; i++) {
        const struct CMUnitTest *t = &tests[i];
        print_message("[ RUN      ] %s\n", t->name);
        switch (run_one(t, group_state)) {
        case OUTCOME_PASS:
            passed++;
            print_message("[       OK ] %s\n", t->name);
            break;
        case OUTCOME_SKIP:
            skipped++;
            print_message("[  SKIPPED ] %s\n", t->name);
            break;
        default:
            failed_names[failed++] = t->name;
            print_message("[  FAILED  ] %s\n", t->name);
            break;
        }
    }
    if (group_teardown && group_teardown(&group_state) != 0) {
        print_error("[  ERROR   ] %s: group teardown failed\n", group_name);
        failed++;
    }
    print_message("[==========] %s: %zu test(s) run.\n", group_name, n);
    print_message("[  PASSED  ] %zu test(s).\n", passed);
    if (skipped) print_message("[  SKIPPED ] %zu test(s).\n", skipped);
    if (failed) {
        print_message("[  FAILED  ] %zu test(s), listed below:\n", failed);
        for (size_t i = 0; i < failed && failed_names[i]; i++) print_message("[  FAILED  ] %s\n", failed_names[i]);
    }
    free(failed_names);
    return (int)failed;
}
