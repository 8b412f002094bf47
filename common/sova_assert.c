/* sova_assert.c - see sova_assert.h. */
#include "sova_assert.h"
#include "log.h"

#include <stdlib.h>

void sova_assert_failed(const char *file, int line, const char *func, const char *expr)
{
    sova_log(SOVA_LOG_ERROR, "assert", "%s:%d: %s: invariant failed: %s; aborting", file, line,
             func, expr);
    abort();
}
