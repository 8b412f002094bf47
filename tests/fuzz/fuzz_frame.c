/* fuzz_frame.c - a byte stream as a link reads it: peek frame after frame
 * and decode each one, whatever its type (fuzz_msg.h says what is checked). */
#include "fuzz_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct wire_limits lim = wire_limits_default();
    size_t off = 0;
    while (off < size) {
        struct wire_frame_hdr hdr;
        struct wire_err err;
        int rc = wire_frame_peek(data + off, size - off, lim.max_frame, &hdr, &err);
        if (rc > 0 && (size_t)rc <= size - off)
            abort(); /* asked for bytes it already had */
        if (rc < 0 && err.code != rc)
            abort();
        if (rc != 0)
            break;
        if (hdr.frame_len != WIRE_FRAME_HDR_SIZE + hdr.payload_len || hdr.frame_len > size - off)
            abort();
        fuzz_check_payload(hdr.type, data + off + WIRE_FRAME_HDR_SIZE, hdr.payload_len, &lim);
        off += hdr.frame_len;
    }
    return 0;
}
