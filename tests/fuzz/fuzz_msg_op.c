/* fuzz_msg_op.c - the decoders of REGISTER .. CONNECT_REQUEST (peer <-> supernode):
 * input is a type byte and a payload (fuzz_msg.h says what is checked). */
#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_family(data, size, MSG_FAMILY_OP_SN);
}
