/* fuzz_msg_relay.c - the decoders of RELAY_OPEN .. RELAY_CLOSE:
 * input is a type byte and a payload (fuzz_msg.h says what is checked). */
#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_family(data, size, MSG_FAMILY_RELAY);
}
