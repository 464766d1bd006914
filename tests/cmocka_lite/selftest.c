/* selftest.c — the bundled cmocka stand-in (cmocka_lite) must report what cmocka reports,
 * above all that a failed assertion is a failure: a test framework that passes everything
 * would turn every GPU test green. Built twice when libcmocka is installed — against it
 * (cmocka_selftest_system) and against cmocka_lite (cmocka_selftest_lite) — with the same
 * expectations, so the two are held to the same behaviour:
 *   - a group whose tests all pass returns 0, and mf_run gives exit status 0;
 *   - each deliberately failing assertion (every assert_* form, fail_msg, fail from a
 *     helper in another file) counts as one failed test, and the tests after it still run;
 *   - a skip (skip(), and mf_skip from the harness) is not a failure, and mf_run then
 *     returns 77 (ctest's "Skipped");
 *   - a process whose group has a failure exits with status 1 (checked in a child process).
 * The program prints the framework's own output and exits 0 only when all of this held. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void selftest_helper_fail(void); /* selftest_helper.c: a failing assertion in another file */

static int g_after_failure_ran;

static void all_assertions_pass(void **state)
{
    (void)state;
    int x = 3;
    const char s[] = "minfer";
    unsigned char m1[4] = {1, 2, 3, 4}, m2[4] = {1, 2, 3, 4};
    assert_true(x == 3);
    assert_false(x == 4);
    assert_int_equal(x, 3);
    assert_int_equal(-1, (int64_t)-1);
    assert_int_not_equal(x, 4);
    assert_ptr_equal(&x, &x);
    assert_null(NULL);
    assert_non_null(&x);
    assert_string_equal(s, "minfer");
    assert_memory_equal(m1, m2, sizeof m1);
}

static int fixture_state;
static int set_up(void **state)
{
    fixture_state = 42;
    *state = &fixture_state;
    return 0;
}
static int tear_down(void **state)
{
    assert_ptr_equal(*state, &fixture_state);
    fixture_state = 0;
    return 0;
}
static void fixture_passes_state(void **state) { assert_int_equal(*(int *)*state, 42); }

static void fails_int_equal(void **state)
{
    (void)state;
    assert_int_equal(1, 2);
}
static void fails_int_not_equal(void **state)
{
    (void)state;
    assert_int_not_equal(5, 5);
}
static void fails_true(void **state)
{
    (void)state;
    assert_true(0);
}
static void fails_false(void **state)
{
    (void)state;
    assert_false(1);
}
static void fails_null(void **state)
{
    (void)state;
    int x;
    assert_null(&x);
}
static void fails_non_null(void **state)
{
    (void)state;
    assert_non_null(NULL);
}
static void fails_ptr_equal(void **state)
{
    (void)state;
    int a, b;
    assert_ptr_equal(&a, &b);
}
static void fails_string_equal(void **state)
{
    (void)state;
    assert_string_equal("abc", "abd");
}
static void fails_memory_equal(void **state)
{
    (void)state;
    unsigned char a[64] = {0}, b[64] = {0};
    b[63] = 1; /* only the last byte differs */
    assert_memory_equal(a, b, sizeof a);
}
static void fails_msg(void **state)
{
    (void)state;
    fail_msg("deliberate failure %d", 7);
}
static void fails_in_helper(void **state)
{
    (void)state;
    selftest_helper_fail();
}
static void runs_after_failure(void **state)
{
    (void)state;
    g_after_failure_ran = 1;
}
static void skips_plain(void **state)
{
    (void)state;
    skip();
}
static void skips_with_reason(void **state)
{
    (void)state;
    mf_skip("deliberate skip from the harness");
}

#define N_DELIBERATE_FAILURES 11

static int expect(int cond, const char *what)
{
    if (!cond) fprintf(stderr, "cmocka selftest: NOT AS EXPECTED: %s\n", what);
    return cond ? 0 : 1;
}

int main(void)
{
    int bad = 0;
    const struct CMUnitTest passing[] = {
        cmocka_unit_test(all_assertions_pass),
        cmocka_unit_test_setup_teardown(fixture_passes_state, set_up, tear_down),
    };
    bad += expect(MF_RUN("selftest_passing", passing) == 0, "a group of passing tests returns 0");

    const struct CMUnitTest mixed[] = {
        cmocka_unit_test(all_assertions_pass), cmocka_unit_test(fails_int_equal), cmocka_unit_test(fails_int_not_equal),
        cmocka_unit_test(fails_true),          cmocka_unit_test(fails_false),     cmocka_unit_test(fails_null),
        cmocka_unit_test(fails_non_null),      cmocka_unit_test(fails_ptr_equal), cmocka_unit_test(fails_string_equal),
        cmocka_unit_test(fails_memory_equal),  cmocka_unit_test(fails_msg),       cmocka_unit_test(fails_in_helper),
        cmocka_unit_test(runs_after_failure),  cmocka_unit_test(skips_plain),
    };
    int failed = cmocka_run_group_tests(mixed, NULL, NULL);
    printf("cmocka selftest: the mixed group reported %d failed tests (%d deliberate)\n", failed,
           N_DELIBERATE_FAILURES);
    bad += expect(failed == N_DELIBERATE_FAILURES, "every deliberate failure is counted, a skip is not");
    bad += expect(g_after_failure_ran, "tests after a failure still run");

    const struct CMUnitTest skipping[] = {cmocka_unit_test(all_assertions_pass), cmocka_unit_test(skips_with_reason)};
    bad += expect(MF_RUN("selftest_skipping", skipping) == 77, "a group with a skip and no failure gives 77");

    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        const struct CMUnitTest one[] = {cmocka_unit_test(fails_int_equal)};
        exit(MF_RUN("selftest_child", one));
    }
    int st = 0;
    bad += expect(pid > 0 && waitpid(pid, &st, 0) == pid, "the child process ran");
    bad += expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a process with one failed test exits with status 1");

    printf("cmocka selftest: %s\n", bad ? "FAILED" : "all expectations held");
    return bad ? 1 : 0;
}
