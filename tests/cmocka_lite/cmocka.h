/* cmocka.h (cmocka_lite) — a small stand-in for the part of cmocka (https://cmocka.org) that
 * minfer's tests use, for machines where libcmocka-dev cannot be installed (the lent GPU
 * machines have no package access). CMake picks it with -DMINFER_CMOCKA=BUNDLED, or with
 * AUTO when no cmocka is found (tests/CMakeLists.txt); the normal build uses the real one.
 *
 * What it provides, with cmocka's meaning:
 *   struct CMUnitTest, cmocka_unit_test, cmocka_unit_test_setup_teardown,
 *   cmocka_run_group_tests / _cmocka_run_group_tests (returns the number of failed tests;
 *   skipped tests are not failures),
 *   assert_true/false, assert_int_equal/not_equal (compared as uintmax_t, as cmocka does),
 *   assert_ptr_equal, assert_null/non_null, assert_string_equal, assert_memory_equal,
 *   fail, fail_msg, skip, print_message, print_error.
 * A failed assertion or skip() leaves the test by longjmp back into the runner, so it works
 * from helper functions in other files too (the harness). A test that crashes ends the
 * process with the signal — a failure, never a pass. Nothing else of cmocka (mocks,
 * expect_*, test_malloc leak checks) is here: a test using it does not compile against this
 * header, and the build compiles every test against it (tests/CMakeLists.txt), so that shows
 * on every build, not first on a GPU machine.
 */
#ifndef CMOCKA_H_
#define CMOCKA_H_

#include <stddef.h>
#include <stdint.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
    CMFixtureFunction setup_func;
    CMFixtureFunction teardown_func;
    void *initial_state;
};

#define cmocka_unit_test(f)     \
    {                           \
#f, f, NULL, NULL, NULL \
    }
#define cmocka_unit_test_setup_teardown(f, setup, teardown) \
    {                                                       \
#f, f, setup, teardown, NULL                        \
    }

int _cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *tests, size_t n,
                            CMFixtureFunction group_setup, CMFixtureFunction group_teardown);
#define cmocka_run_group_tests(tests, setup, teardown) \
    _cmocka_run_group_tests(#tests, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

void print_message(const char *format, ...) __attribute__((format(printf, 1, 2)));
void print_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

void _fail(const char *file, int line) __attribute__((noreturn));
void _skip(const char *file, int line) __attribute__((noreturn));
void _assert_true(uintmax_t result, const char *expression, const char *file, int line);
void _assert_int_equal(uintmax_t a, uintmax_t b, const char *file, int line);
void _assert_int_not_equal(uintmax_t a, uintmax_t b, const char *file, int line);
void _assert_string_equal(const char *a, const char *b, const char *file, int line);
void _assert_memory_equal(const void *a, const void *b, size_t size, const char *file, int line);

#define fail() _fail(__FILE__, __LINE__)
#define fail_msg(msg, ...)                              \
    do {                                                \
        print_error("ERROR: " msg "\n", ##__VA_ARGS__); \
        fail();                                         \
    } while (0)
#define skip() _skip(__FILE__, __LINE__)

#define assert_true(c) _assert_true((uintmax_t) !!(c), #c, __FILE__, __LINE__)
#define assert_false(c) _assert_true((uintmax_t) !(c), "!(" #c ")", __FILE__, __LINE__)
#define assert_int_equal(a, b) _assert_int_equal((uintmax_t)(a), (uintmax_t)(b), __FILE__, __LINE__)
#define assert_int_not_equal(a, b) _assert_int_not_equal((uintmax_t)(a), (uintmax_t)(b), __FILE__, __LINE__)
#define assert_ptr_equal(a, b)                                                                                    \
    _assert_int_equal((uintmax_t)(uintptr_t)(const void *)(a), (uintmax_t)(uintptr_t)(const void *)(b), __FILE__, \
                      __LINE__)
#define assert_null(p) _assert_true((uintmax_t)((const void *)(p) == NULL), #p " == NULL", __FILE__, __LINE__)
#define assert_non_null(p) _assert_true((uintmax_t)((const void *)(p) != NULL), #p " != NULL", __FILE__, __LINE__)
#define assert_string_equal(a, b) _assert_string_equal((const char *)(a), (const char *)(b), __FILE__, __LINE__)
#define assert_memory_equal(a, b, size) \
    _assert_memory_equal((const void *)(a), (const void *)(b), (size_t)(size), __FILE__, __LINE__)

#endif
