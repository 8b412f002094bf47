/* fuzz_bundle.c - a federation bundle (`sova-peer join BUNDLE`,
 * ordinary/op_join.h) on arbitrary bytes: parsed, its root certificate read
 * and its signature checked, with nothing read or written on disk. Checked:
 * no crash or leak, and a bundle taken as good names a root and at least
 * one bootstrap supernode. */
#include "err.h"
#include "op_join.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char root_id[NODE_ID_STR_LEN + 1] = "";
    char bootstrap[1024] = "";
    char err[512] = "";
    int rc = op_bundle_check((const char *)data, size, "fuzz.bundle", root_id, bootstrap,
                             sizeof(bootstrap), err, sizeof(err));
    if (rc == 0 && (root_id[0] == '\0' || bootstrap[0] == '\0'))
        abort(); /* good, but names no root or no supernode */
    if (rc != 0 && rc != SOVA_ERR_BAD_VALUE && rc != SOVA_ERR_NOMEM)
        abort(); /* a bundle is good, bad, or memory ran out */
    if (rc != 0 && err[0] == '\0')
        abort(); /* a refusal says why */
    return 0;
}
