/* fuzz_netwatch.c - what a read from an rtnetlink socket may hold
 * (nat/nat_netwatch.h), as arbitrary bytes: nat_netwatch_relevant() walks
 * the messages within the buffer only (ASan sees any read past it, the
 * input being copied to a buffer of exactly its size) and never loops. */
#include "nat_netwatch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    (void)nat_netwatch_relevant(copy, size);
    free(copy);
    return 0;
}
