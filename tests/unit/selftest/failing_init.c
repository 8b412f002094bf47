/* The CUnit runner's self-test (tests/unit/runner_selftest.sh): one suite
 * whose init fails next to one that passes. cunit_main.c must exit 1 for
 * it, although every test that ran passed. Not a test_*.c: it is built only
 * as this self-test, never run as a unit test of its own. */
#include "cunit_main.h"

#include <CUnit/CUnit.h>

static int init_fails(void)
{
    return 1; /* the fixture could not be set up */
}

static void test_never_runs(void)
{
    CU_FAIL("a suite whose init failed must not run its tests");
}

static void test_passes(void)
{
    CU_PASS("the other suite runs and passes");
}

int test_register(void)
{
    CU_pSuite broken = CU_add_suite("selftest_broken_fixture", init_fails, NULL);
    CU_pSuite fine = CU_add_suite("selftest_fine", NULL, NULL);
    if (broken == NULL || fine == NULL)
        return -1;
    if (CU_add_test(broken, "never runs", test_never_runs) == NULL ||
        CU_add_test(fine, "passes", test_passes) == NULL)
        return -1;
    return 0;
}
