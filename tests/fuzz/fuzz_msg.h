/* fuzz_msg.h - the property every message fuzz target checks, shared by
 * tests/fuzz/fuzz_*.c (a header, so the fuzz_*.c glob does not build it).
 *
 * For any bytes: decoding never crashes, leaks or reads out of bounds, and a
 * failure names its error. For bytes that decode: the message re-encodes
 * under the same limits into no more bytes than it came from (only unknown
 * extensions are dropped), and decode(encode(x)) == x. Any violation aborts,
 * which libFuzzer reports as a crash. */
#ifndef SOVA_FUZZ_MSG_H
#define SOVA_FUZZ_MSG_H

#include <stdint.h>
#include <stdlib.h>

#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits, so the fuzzer also reaches every "too large" path. */
static inline struct wire_limits fuzz_tight_limits(void)
{
    struct wire_limits lim = wire_limits_default();
    lim.max_frame = 256;
    lim.max_keywords = 2;
    lim.max_keyword_len = 4;
    lim.max_addrs = 2;
    lim.max_name_len = 8;
    lim.max_hits = 2;
    lim.max_sources = 2;
    lim.max_relay_data = 8;
    lim.max_data = 8;
    lim.max_bloom_bytes = 4;
    lim.max_manifest_hashes = 2;
    return lim;
}

static inline void fuzz_check_payload(uint8_t type, const uint8_t *payload, size_t len,
                                      const struct wire_limits *lim)
{
    struct msg m, again;
    struct wire_err err;
    int rc = msg_decode(type, payload, len, lim, &m, &err);
    if (rc != 0) {
        if (err.code != rc || m.type != 0)
            abort();
        return;
    }
    struct wire_buf out;
    wire_buf_init(&out);
    if (msg_encode(&m, lim, &out, &err) != 0)
        abort();
    size_t out_payload = out.len - WIRE_FRAME_HDR_SIZE;
    if (out_payload > len || out.data[WIRE_LENGTH_SIZE] != type)
        abort();
    if (msg_decode(type, out.data + WIRE_FRAME_HDR_SIZE, out_payload, lim, &again, &err) != 0)
        abort();
    if (!msg_equal(&m, &again, lim))
        abort();
    msg_clear(&again);
    msg_clear(&m);
    wire_buf_free(&out);
}

/* Input: one type byte, then a payload. A type byte outside the family is
 * mapped onto one of its types, so no input is wasted. */
static inline int fuzz_family(const uint8_t *data, size_t size, enum msg_family family)
{
    uint8_t types[256];
    size_t n = 0;
    if (size < 1)
        return 0;
    for (unsigned t = 0; t < 256; t++)
        if (msg_type_family((uint8_t)t) == family)
            types[n++] = (uint8_t)t;
    if (n == 0)
        abort();
    uint8_t type = msg_type_family(data[0]) == family ? data[0] : types[data[0] % n];
    const struct wire_limits defaults = wire_limits_default(), tight = fuzz_tight_limits();
    fuzz_check_payload(type, data + 1, size - 1, &defaults);
    fuzz_check_payload(type, data + 1, size - 1, &tight);
    return 0;
}

#endif
