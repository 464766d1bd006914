/* selftest_helper.c — an assertion that fails in another translation unit than the test
 * that calls it (as the harness's helpers do): it must still end only that test. */
#include "harness.h"

void selftest_helper_fail(void);

void selftest_helper_fail(void) { assert_int_equal(3, 4); }
