/* fuzz_msg_peer.c - the decoders of MANIFEST_GET .. DATA (peer <-> peer):
 * input is a type byte and a payload (fuzz_msg.h says what is checked). */
#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_family(data, size, MSG_FAMILY_PEER);
}
