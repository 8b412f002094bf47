/* fuzz_announce.c - a datagram on the LAN's SSDP or NAT-PMP multicast port
 * (anyone on the LAN may send one), as arbitrary bytes: nat_announce_parse
 * reads within it only (ASan: the input is copied to a buffer of exactly
 * its size), and what it returns is consistent. */
#include "nat_announce.h"

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
    struct nat_announce a, before = {0};
    nat_announce_parse(copy, size, &a);
    if (a.kind == NAT_ANNOUNCE_NATPMP && size != 12)
        abort();
    if (a.kind == NAT_ANNOUNCE_NONE && (a.has_bootid || a.epoch != 0))
        abort();
    (void)nat_announce_restarted(&a, &before, 10);
    (void)nat_announce_restarted(&a, &a, 10);
    free(copy);
    return 0;
}
