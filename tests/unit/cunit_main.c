/* Shared main() for the CUnit test executables: each test file defines
 * test_register(), which adds its suites; we run them all and exit non-zero
 * if anything failed, so ctest sees the result.
 *
 * "Anything" includes a suite whose init (or cleanup) function failed: CUnit
 * then skips that suite's tests, counts no failed assertion and no failed
 * test, and records the suite's failure only in the failure list and the
 * failed-suites count. Checking failed tests alone let a unit test binary
 * whose fixture could not be set up pass with the other suites' results
 * (tests/unit/runner_selftest.sh keeps this from coming back). */
#include "cunit_main.h"

#include <CUnit/Basic.h>
#include <stdio.h>

/* Names the suites whose init or cleanup failed; returns how many. */
static unsigned report_suite_failures(void)
{
    unsigned n = 0;
    for (CU_pFailureRecord f = CU_get_failure_list(); f != NULL; f = f->pNext) {
        const char *what = NULL;
        if (f->type == CUF_SuiteInitFailed)
            what = "init";
        else if (f->type == CUF_SuiteCleanupFailed)
            what = "cleanup";
        if (what == NULL)
            continue;
        fprintf(stderr, "suite '%s': %s failed, its tests did not count\n",
                f->pSuite != NULL && f->pSuite->pName != NULL ? f->pSuite->pName : "?", what);
        n++;
    }
    return n;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (test_register() != 0 || CU_get_error() != CUE_SUCCESS) {
        fprintf(stderr, "test registration failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_ErrorCode run_rc = CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    unsigned records = CU_get_number_of_failure_records();
    unsigned run = CU_get_number_of_tests_run();
    unsigned named = report_suite_failures();
    CU_cleanup_registry();
    if (suites_failed > 0 || named > 0)
        fprintf(stderr, "%u suite(s) failed to set up or clean up\n",
                suites_failed > named ? suites_failed : named);
    if (run == 0) {
        fprintf(stderr, "no tests ran\n");
        return 1;
    }
    if (run_rc != CUE_SUCCESS && failed == 0 && suites_failed == 0 && records == 0)
        fprintf(stderr, "the CUnit run reported error %d\n", (int)run_rc);
    return failed || suites_failed || named || records || run_rc != CUE_SUCCESS ? 1 : 0;
}
