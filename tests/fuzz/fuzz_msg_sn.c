/* fuzz_msg_sn.c - the decoders of GOSSIP .. FWD_LOCATE_RESULT (supernode <-> supernode):
 * input is a type byte and a payload (fuzz_msg.h says what is checked). */
#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_family(data, size, MSG_FAMILY_SN_SN);
}
