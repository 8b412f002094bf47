/* Each tests/unit/test_*.c implements test_register(): add suites to the
 * CUnit registry, return 0 on success. cunit_main.c runs them. */
#ifndef SOVA_CUNIT_MAIN_H
#define SOVA_CUNIT_MAIN_H
int test_register(void);
#endif
