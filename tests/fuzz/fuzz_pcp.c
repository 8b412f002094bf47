/* fuzz_pcp.c - a datagram from port 5351 (the gateway, or anyone on the
 * LAN who spoofs it), as arbitrary bytes: nat_pcp_map_answer() reads
 * within it only (ASan: the input is copied to a buffer of exactly its
 * size), and takes as ours only an answer naming our nonce and port. */
#include "nat_pcp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t nonce[NAT_PCP_NONCE_LEN] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    struct nat_pcp_answer a;
    if (nat_pcp_map_answer(copy, size, nonce, 7071, &a) == 0 &&
        (size < NAT_PCP_MAP_LEN || memcmp(copy + 24, nonce, sizeof(nonce)) != 0))
        abort(); /* taken as ours without our nonce */
    (void)nat_pcp_result_str(a.result);
    free(copy);
    return 0;
}
